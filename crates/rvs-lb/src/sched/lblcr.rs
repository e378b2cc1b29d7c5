//! Locality-based least-connection with replication (ip_vs_lblcr.c).
//!
//! The cache maps the destination address (the VIP here) to a *set* of dests, newest first.
//! A lookup takes the set's weighted least-connection member (skipping OVERLOAD and weight 0).
//! If the set has more than one member and was not modified for `expiration` (the
//! `lblcr_expiration` sysctl, 24 h), its weighted most-loaded member is dropped. If there is no
//! usable member, or it is overloaded in the lblc sense, wlc over the whole service picks a dest,
//! which joins the set.
//!
//! Bounded memory: a set-associative table preallocated at construction, [`LBLCR_SET_CAP`]
//! members per set. Entries unused for `expiration` are treated as gone (the kernel's full sweep);
//! a full cache set replaces its least recently used entry. When a member set is full, its most
//! loaded member is dropped to make room (the kernel's sets are unbounded). Members whose dest
//! leaves the service are dropped at the next update (the kernel keeps them, unusable, until
//! they are erased as the most loaded member or the entry expires).

use super::common::{least_weighted, locality_overloaded, ratio_gt, DestKey, Remap, NO_DEST};
use super::lblc::{
    cache_geometry, find_slot, victim_slot, CacheSlot, LOCALITY_DEFAULT_CAPACITY,
    LOCALITY_DEFAULT_EXPIRATION, WAYS,
};
use super::{DestView, Flow, SchedFlags, Scheduler};
use crate::Time;
use std::fmt;

/// Most members one destination address's server set can hold.
pub const LBLCR_SET_CAP: usize = 8;

#[derive(Debug, Clone, Copy)]
struct Entry {
    daddr: u32,
    lastuse: Time,
    /// Last change of the member set.
    lastmod: Time,
    used: bool,
    len: u8,
    /// Dest indices, newest first (the kernel adds at the list head).
    members: [u32; LBLCR_SET_CAP],
}

const EMPTY: Entry = Entry {
    daddr: 0,
    lastuse: 0,
    lastmod: 0,
    used: false,
    len: 0,
    members: [NO_DEST; LBLCR_SET_CAP],
};

impl CacheSlot for Entry {
    fn key(&self) -> u32 {
        self.daddr
    }
    fn in_use(&self) -> bool {
        self.used
    }
    fn last_use(&self) -> Time {
        self.lastuse
    }
}

impl Entry {
    fn members(&self) -> &[u32] {
        let n = (self.len as usize).min(LBLCR_SET_CAP);
        &self.members[..n]
    }

    /// `ip_vs_dest_set_min()`: the first usable member (not OVERLOAD, weight > 0, still in the
    /// service) seeds the search; later ones replace it only when strictly less loaded.
    fn min(&self, dests: &[DestView]) -> Option<usize> {
        let mut least: Option<(usize, u64, u32)> = None;
        for &m in self.members() {
            let Some(d) = dests.get(m as usize) else {
                continue;
            };
            if d.overloaded {
                continue;
            }
            match least {
                None => {
                    if d.weight > 0 {
                        least = Some((m as usize, d.overhead(), d.weight));
                    }
                }
                Some((_, loh, lw)) => {
                    let doh = d.overhead();
                    if ratio_gt(loh, lw, doh, d.weight) {
                        least = Some((m as usize, doh, d.weight));
                    }
                }
            }
        }
        least.map(|(i, _, _)| i)
    }

    /// `ip_vs_dest_set_max()`: the weighted most-loaded member with weight > 0 (OVERLOAD is not
    /// considered); the first wins ties.
    fn max(&self, dests: &[DestView]) -> Option<usize> {
        let mut most: Option<(usize, u64, u32)> = None;
        for &m in self.members() {
            let Some(d) = dests.get(m as usize) else {
                continue;
            };
            if d.weight == 0 {
                continue;
            }
            let doh = d.overhead();
            // moh/mw < doh/dw  <=>  moh*dw < doh*mw
            if most.map_or(true, |(_, moh, mw)| ratio_gt(doh, d.weight, moh, mw)) {
                most = Some((m as usize, doh, d.weight));
            }
        }
        most.map(|(i, _, _)| i)
    }

    fn erase(&mut self, dest: usize, now: Time) {
        let n = self.members().len();
        if let Some(p) = self.members().iter().position(|&m| m as usize == dest) {
            self.members.copy_within(p + 1..n, p);
            if let Some(last) = self.members.get_mut(n - 1) {
                *last = NO_DEST;
            }
            self.len = (n - 1) as u8;
            self.lastmod = now;
        }
    }

    /// `ip_vs_dest_set_insert(set, dest, check=true)`: add at the head unless already a member.
    fn insert(&mut self, dest: usize, dests: &[DestView], now: Time) {
        if self.members().iter().any(|&m| m as usize == dest) {
            return;
        }
        if self.members().len() >= LBLCR_SET_CAP {
            // Full: make room by dropping the most loaded member (or the oldest if none has a
            // weight).
            let victim = self
                .max(dests)
                .or_else(|| self.members().last().map(|&m| m as usize));
            if let Some(v) = victim {
                self.erase(v, now);
            }
            if self.members().len() >= LBLCR_SET_CAP {
                return;
            }
        }
        let n = self.members().len();
        self.members.copy_within(0..n, 1);
        self.members[0] = u32::try_from(dest).unwrap_or(NO_DEST);
        self.len = (n + 1) as u8;
        self.lastmod = now;
    }
}

/// Locality-based least-connection with replication: the daddr → server-set cache.
#[derive(Clone)]
pub struct Lblcr {
    slots: Vec<Entry>,
    bits: u32,
    expiration: Time,
    keys: Vec<DestKey>,
}

impl fmt::Debug for Lblcr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lblcr")
            .field("capacity", &self.slots.len())
            .field("entries", &self.slots.iter().filter(|e| e.used).count())
            .field("expiration", &self.expiration)
            .finish()
    }
}

impl Default for Lblcr {
    fn default() -> Lblcr {
        Lblcr::new()
    }
}

impl Lblcr {
    /// A cache of [`LOCALITY_DEFAULT_CAPACITY`] entries, 24 h expiration.
    pub fn new() -> Lblcr {
        Lblcr::with_params(LOCALITY_DEFAULT_CAPACITY, LOCALITY_DEFAULT_EXPIRATION)
    }

    /// `capacity` is rounded up to a power of two (at least 8); `expiration` is the
    /// `lblcr_expiration` sysctl (entry lifetime and set-shrink delay).
    pub fn with_params(capacity: usize, expiration: Time) -> Lblcr {
        let (sets, bits) = cache_geometry(capacity);
        Lblcr {
            slots: vec![EMPTY; sets * WAYS],
            bits,
            expiration,
            keys: Vec::new(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Members (dest indices, newest first) cached for a destination address at `now`.
    pub fn members(&self, daddr: std::net::Ipv4Addr, now: Time) -> Option<&[u32]> {
        let s = self.find(u32::from(daddr), now)?;
        self.slots.get(s).map(Entry::members)
    }

    fn find(&self, daddr: u32, now: Time) -> Option<usize> {
        find_slot(&self.slots, self.bits, self.expiration, daddr, now)
    }

    fn victim(&self, daddr: u32, now: Time) -> usize {
        victim_slot(&self.slots, self.bits, self.expiration, daddr, now)
    }
}

impl Scheduler for Lblcr {
    fn update(&mut self, dests: &[DestView], _flags: SchedFlags) {
        let remap = Remap::new(&self.keys, dests);
        if !remap.is_identity(dests.len()) {
            for e in self.slots.iter_mut().filter(|e| e.used) {
                let mut kept = [NO_DEST; LBLCR_SET_CAP];
                let mut n = 0usize;
                for &m in e.members() {
                    if let (Some(new), Some(slot)) = (remap.get(m), kept.get_mut(n)) {
                        *slot = new;
                        n += 1;
                    }
                }
                e.members = kept;
                e.len = n as u8;
            }
        }
        self.keys = dests.iter().map(|d| (d.addr, d.port)).collect();
    }

    fn schedule(&mut self, dests: &[DestView], flow: &Flow, now: Time) -> Option<usize> {
        let daddr = u32::from(flow.vaddr);
        let expiration = self.expiration;
        if let Some(e) = self.find(daddr, now).and_then(|s| self.slots.get_mut(s)) {
            e.lastuse = now;
            let dest = e.min(dests);
            // More than one member and unchanged for long enough: drop the most loaded.
            if e.members().len() > 1 && now.saturating_sub(e.lastmod) > expiration {
                if let Some(m) = e.max(dests) {
                    e.erase(m, now);
                }
            }
            if let Some(i) = dest {
                if let Some(d) = dests.get(i) {
                    if !locality_overloaded(d, dests) {
                        return Some(i);
                    }
                }
            }
            let pick = least_weighted(dests, DestView::overhead)?;
            e.insert(pick, dests, now);
            return Some(pick);
        }
        let pick = least_weighted(dests, DestView::overhead)?;
        let slot = self.victim(daddr, now);
        if let Some(e) = self.slots.get_mut(slot) {
            *e = Entry {
                daddr,
                lastuse: now,
                lastmod: now,
                used: true,
                ..EMPTY
            };
            e.insert(pick, dests, now);
        }
        Some(pick)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::common::test_util::{any_flow, dests};
    use crate::NANOS_PER_SEC;
    use std::net::Ipv4Addr;

    const SEC: Time = NANOS_PER_SEC;

    fn to_vip(v: Ipv4Addr) -> Flow {
        Flow {
            vaddr: v,
            ..any_flow()
        }
    }

    const V: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

    fn lblcr(d: &[DestView], exp: Time) -> Lblcr {
        let mut s = Lblcr::with_params(64, exp);
        s.update(d, SchedFlags::default());
        s
    }

    #[test]
    fn set_grows_when_members_are_overloaded() {
        let mut d = dests(&[1, 4, 4]);
        let mut s = lblcr(&d, 1000 * SEC);
        assert_eq!(s.schedule(&d, &to_vip(V), SEC), Some(0));
        assert_eq!(s.members(V, SEC), Some(&[0u32][..]));
        // A busy (2 > 1) while B and C have room (0*2 < 4): A is overloaded; wlc picks B, which
        // joins the set at its head.
        d[0].activeconns = 2;
        assert_eq!(s.schedule(&d, &to_vip(V), 2 * SEC), Some(1));
        assert_eq!(s.members(V, 2 * SEC), Some(&[1u32, 0][..]));
        // Now the least-connection member of the set is used: B (0/4) over A (512/1).
        assert_eq!(s.schedule(&d, &to_vip(V), 3 * SEC), Some(1));
        // C is never considered while a member is fine, even when it is idle and B is busier.
        d[1].activeconns = 2;
        assert_eq!(s.schedule(&d, &to_vip(V), 4 * SEC), Some(1));
    }

    #[test]
    fn set_min_ties_go_to_the_newest_member() {
        let mut d = dests(&[1, 1]);
        let mut s = lblcr(&d, 1000 * SEC);
        assert_eq!(s.schedule(&d, &to_vip(V), SEC), Some(0));
        d[0].activeconns = 2; // overloaded: 2 > 1 while B has 0*2 < 1
        assert_eq!(s.schedule(&d, &to_vip(V), SEC), Some(1));
        // Equalise: both 2 active, neither lblc-overloaded (nobody has active*2 < weight).
        d[1].activeconns = 2;
        assert_eq!(s.schedule(&d, &to_vip(V), SEC), Some(1));
    }

    #[test]
    fn most_loaded_member_dropped_after_expiration_without_change() {
        let mut d = dests(&[1, 1]);
        let mut s = lblcr(&d, 100 * SEC);
        assert_eq!(s.schedule(&d, &to_vip(V), 0), Some(0));
        d[0].activeconns = 2;
        assert_eq!(s.schedule(&d, &to_vip(V), SEC), Some(1)); // set {B, A}, lastmod 1 s
        d[0].activeconns = 1;
        d[1].activeconns = 1;
        // Used at 100 s, 99 s after the last change of {B, A}: no shrink yet.
        assert_eq!(s.schedule(&d, &to_vip(V), 100 * SEC), Some(1));
        assert_eq!(s.members(V, 100 * SEC), Some(&[1u32, 0][..]));
        // More than 100 s after the change: the most loaded member (A, 768 against 256) goes.
        d[0].activeconns = 3;
        assert_eq!(s.schedule(&d, &to_vip(V), 101 * SEC + 1), Some(1));
        assert_eq!(s.members(V, 101 * SEC + 1), Some(&[1u32][..]));
    }

    #[test]
    fn entries_expire_and_members_follow_updates() {
        let mut d = dests(&[1, 1, 1]);
        let mut s = lblcr(&d, 100 * SEC);
        assert_eq!(s.schedule(&d, &to_vip(V), 0), Some(0));
        assert_eq!(s.members(V, 100 * SEC), None); // idle for the whole lifetime
        assert_eq!(s.members(V, 99 * SEC), Some(&[0u32][..]));
        // Rebuild: {C, A} then remove A: only C (now index 1) remains.
        let mut s = lblcr(&d, 100 * SEC);
        assert_eq!(s.schedule(&d, &to_vip(V), 0), Some(0));
        d[0].activeconns = 2;
        d[1].activeconns = 1;
        assert_eq!(s.schedule(&d, &to_vip(V), 0), Some(2));
        assert_eq!(s.members(V, 0), Some(&[2u32, 0][..]));
        let d2 = vec![d[1].clone(), d[2].clone()];
        s.update(&d2, SchedFlags::default());
        assert_eq!(s.members(V, 0), Some(&[1u32][..]));
        assert_eq!(s.schedule(&d2, &to_vip(V), 0), Some(1));
    }

    #[test]
    fn member_sets_are_bounded() {
        let n = LBLCR_SET_CAP + 3;
        let mut d = dests(&vec![1; n]);
        let mut s = lblcr(&d, 1000 * SEC);
        // Make every new pick overloaded so each schedule adds the next dest.
        for k in 0..n {
            let got = s.schedule(&d, &to_vip(V), SEC);
            assert_eq!(got, Some(k));
            d[k].activeconns = 2 + k as u32;
        }
        let m = s.members(V, SEC).map(|m| m.len());
        assert_eq!(m, Some(LBLCR_SET_CAP));
    }

    #[test]
    fn overloaded_or_quiesced_members_skipped_and_none_when_nothing() {
        let mut d = dests(&[1, 1]);
        let mut s = lblcr(&d, 1000 * SEC);
        assert_eq!(s.schedule(&d, &to_vip(V), SEC), Some(0));
        d[0].overloaded = true; // unlike lblc, set_min skips OVERLOAD members
        assert_eq!(s.schedule(&d, &to_vip(V), SEC), Some(1));
        d[1].weight = 0;
        assert_eq!(s.schedule(&d, &to_vip(V), SEC), None);
        let mut e = lblcr(&[], SEC);
        assert_eq!(e.schedule(&[], &to_vip(V), SEC), None);
    }
}
