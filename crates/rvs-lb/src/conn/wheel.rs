//! Expiry: the timer wheel (insert, unlink, re-arm on touch), the bounded `tick`, freeing
//! entries, `expire_matching` and the listing.

use super::entry::{later, tick_of, Conn, ConnInfo, F_INVALID, F_USED, NIL, TICK_NANOS};
use super::ConnTable;
use crate::{Time, NANOS_PER_SEC};
use std::net::Ipv4Addr;

/// Timer wheel slots (power of two).
pub const WHEEL_SLOTS: usize = 8192;
/// A template whose timer fires while it still controls connections is re-armed with this
/// (`ip_vs_conn_expire`: `cp->timeout = 60*HZ`).
pub const TEMPLATE_LINGER_SECS: u32 = 60;

const SLOT_MASK: u32 = WHEEL_SLOTS as u32 - 1;

impl ConnTable {
    pub(super) fn start(&mut self, now_t: u32) {
        if !self.started {
            self.started = true;
            self.wheel_pos = now_t;
        }
    }

    /// Restarts the entry's timer with its current timeout (`ip_vs_conn_put`).
    pub fn touch(&mut self, i: u32, now: Time) {
        let now_t = tick_of(now);
        let Some(e) = self
            .entries
            .get_mut(i as usize)
            .filter(|e| e.flags & F_USED != 0)
        else {
            return;
        };
        e.expires = now_t.wrapping_add(e.timeout);
        // The slot fires at the first tick >= wheel_pos with its residue.
        let fire = self
            .wheel_pos
            .wrapping_add((e.slot as u32).wrapping_sub(self.wheel_pos) & SLOT_MASK);
        if later(fire, e.expires) {
            self.wheel_unlink(i);
            self.wheel_insert(i);
        }
    }

    pub(super) fn wheel_insert(&mut self, i: u32) {
        let base = self.wheel_pos;
        let Some(e) = self.entries.get_mut(i as usize) else {
            return;
        };
        let d = e.expires.wrapping_sub(base);
        let d = if (d as i32) < 0 { 0 } else { d.min(SLOT_MASK) };
        let slot = base.wrapping_add(d) & SLOT_MASK;
        let head = self.wheel[slot as usize];
        e.slot = slot as u16;
        e.timer_prev = NIL;
        e.timer_next = head;
        if head != NIL {
            self.entries[head as usize].timer_prev = i;
        }
        self.wheel[slot as usize] = i;
    }

    fn wheel_unlink(&mut self, i: u32) {
        let Some(e) = self.entries.get(i as usize) else {
            return;
        };
        let (prev, next, slot) = (e.timer_prev, e.timer_next, e.slot as usize);
        if prev == NIL {
            if let Some(h) = self.wheel.get_mut(slot) {
                if *h == i {
                    *h = next;
                }
            }
        } else {
            self.entries[prev as usize].timer_next = next;
        }
        if next != NIL {
            self.entries[next as usize].timer_prev = prev;
        }
        let e = &mut self.entries[i as usize];
        e.timer_prev = NIL;
        e.timer_next = NIL;
    }

    /// Frees an entry now. A template that still controls connections is not freed: it is
    /// invalidated and left to its timer.
    pub fn expire_now(&mut self, i: u32) -> bool {
        match self.get(i) {
            Some(e) if e.n_control() > 0 => {
                self.invalidate_template(i);
                false
            }
            Some(_) => {
                self.free(i);
                true
            }
            None => false,
        }
    }

    fn free(&mut self, i: u32) {
        self.hash_unlink(i);
        self.wheel_unlink(i);
        let e = self.entries[i as usize];
        let mut orphan = None;
        if let Some(t) = e.control() {
            if let Some(te) = self.entries.get_mut(t as usize) {
                te.link = te.link.saturating_sub(1);
                // An invalidated template is never found again: once it controls nothing it
                // has no purpose, so it goes now rather than at its timer (this lets a removed
                // server's references drop to zero promptly).
                if te.link == 0 && te.flags & F_INVALID != 0 {
                    orphan = Some(t);
                }
            }
        }
        self.unbind(e.dest, e.flags);
        let free_head = self.free_head;
        let slot = &mut self.entries[i as usize];
        *slot = Conn::EMPTY;
        slot.hash_next = free_head;
        self.free_head = i;
        self.len = self.len.saturating_sub(1);
        self.stats.engine.conns_expired.inc();
        self.stats.engine.table_entries.set(self.len as u64);
        if let Some(t) = orphan {
            // A template has no control of its own, so this recursion is one level deep.
            self.free(t);
        }
    }

    /// `ip_vs_conn_expire` when due: frees the entry, or re-arms a template that still controls
    /// connections. Returns whether it was freed.
    pub(super) fn expire_if_due(&mut self, i: u32, now_t: u32) -> bool {
        let Some(e) = self.entries.get(i as usize) else {
            return false;
        };
        if later(e.expires, now_t) {
            return false;
        }
        if e.n_control() > 0 {
            let linger = self.linger_ticks;
            let e = &mut self.entries[i as usize];
            e.timeout = linger;
            e.expires = now_t.wrapping_add(linger);
            return false;
        }
        self.free(i);
        true
    }

    /// Runs the timer wheel up to `now`, doing at most `budget` units of work (one per slot
    /// visited and one per entry examined). Returns the number of entries freed.
    pub fn tick(&mut self, now: Time, budget: usize) -> usize {
        let now_t = tick_of(now);
        self.start(now_t);
        // After a long pause every slot is visited once, not once per missed rotation.
        if now_t.wrapping_sub(self.wheel_pos) as i32 >= WHEEL_SLOTS as i32 {
            self.wheel_pos = now_t.wrapping_sub(SLOT_MASK);
        }
        let mut budget = budget;
        let mut freed = 0;
        while budget > 0 && !later(self.wheel_pos, now_t) {
            budget -= 1;
            let slot = (self.wheel_pos & SLOT_MASK) as usize;
            let head = self.wheel[slot];
            if head == NIL {
                self.wheel_pos = self.wheel_pos.wrapping_add(1);
                continue;
            }
            self.wheel_unlink(head);
            if self.expire_if_due(head, now_t) {
                freed += 1;
            } else {
                // Not due (or a re-armed template): file it under its expiry.
                self.wheel_insert(head);
            }
        }
        freed
    }

    /// Expires, in bounded chunks, the entries for which `pred` holds (connections first freed,
    /// templates still controlling connections invalidated). Scans entries from `cursor`;
    /// returns the cursor to continue from, or `None` when the scan is complete.
    pub fn expire_matching(
        &mut self,
        cursor: usize,
        budget: usize,
        pred: impl Fn(&Conn) -> bool,
    ) -> Option<usize> {
        let end = cursor.saturating_add(budget.max(1)).min(self.entries.len());
        for i in cursor..end {
            if let Some(e) = self.get(i as u32) {
                if pred(e) {
                    self.expire_now(i as u32);
                }
            }
        }
        if end >= self.entries.len() {
            None
        } else {
            Some(end)
        }
    }

    /// Appends up to `max` entries starting at slot `cursor` to `out`; returns the cursor to
    /// continue from, or `None` when the table has been walked.
    pub fn list(
        &self,
        cursor: usize,
        max: usize,
        now: Time,
        out: &mut Vec<ConnInfo>,
    ) -> Option<usize> {
        let now_t = tick_of(now);
        let mut taken = 0;
        let mut i = cursor;
        while i < self.entries.len() {
            if taken >= max {
                return Some(i);
            }
            if let Some(e) = self.get(i as u32) {
                let left = e.expires.wrapping_sub(now_t) as i32;
                let secs = (left.max(0) as u64 * TICK_NANOS / NANOS_PER_SEC) as u32;
                out.push(ConnInfo {
                    proto: e.proto,
                    caddr: Ipv4Addr::from(e.caddr),
                    cport: e.cport,
                    vaddr: Ipv4Addr::from(e.vaddr),
                    vport: e.vport,
                    daddr: Ipv4Addr::from(e.daddr),
                    dport: e.dport,
                    state: e.state_name(),
                    expires_secs: secs,
                    is_template: e.is_template(),
                    n_control: e.n_control(),
                    dest: e.dest_id(),
                    svc: e.svc_id(),
                });
                taken += 1;
            }
            i += 1;
        }
        None
    }

    /// Seconds until entry `i` expires (0 if due).
    pub fn expires_in_secs(&self, i: u32, now: Time) -> Option<u32> {
        let e = self.get(i)?;
        let left = e.expires.wrapping_sub(tick_of(now)) as i32;
        Some((left.max(0) as u64 * TICK_NANOS / NANOS_PER_SEC) as u32)
    }
}
