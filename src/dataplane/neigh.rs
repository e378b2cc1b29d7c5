//! Neighbour (ARP) resolution.
//!
//! The management core owns one [`NeighTable`] per port: it learns from the ARP packets workers
//! pass up, decides when to send requests (on a miss reported by a worker, to refresh entries in
//! use, with retries and back-off) and expires entries. Workers only read an immutable
//! [`NeighSnapshot`], published whenever the table changes and picked up between bursts.

use crate::control::report::{NeighRow, NeighState};
use crate::lb::{Time, NANOS_PER_SEC};
use crate::net::MacAddr;
use std::collections::HashMap;
use std::net::Ipv4Addr;

/// Timers (kernel-like defaults: reachable 30 s, 3 probes 1 s apart).
#[derive(Debug, Clone, Copy)]
pub struct NeighTimers {
    /// An entry confirmed this recently is used without question.
    pub reachable: Time,
    /// Interval between probes of one address.
    pub retrans: Time,
    /// Probes before giving up on an address.
    pub max_probes: u32,
    /// How long a failed address is not probed again (suppresses ARP storms).
    pub failed_hold: Time,
}

impl Default for NeighTimers {
    fn default() -> Self {
        NeighTimers {
            reachable: 30 * NANOS_PER_SEC,
            retrans: NANOS_PER_SEC,
            max_probes: 3,
            failed_hold: 5 * NANOS_PER_SEC,
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    mac: Option<MacAddr>,
    state: NeighState,
    confirmed: Time,
    last_probe: Time,
    probes: u32,
    /// Refreshes only matter for entries in use; workers report misses, and stale entries
    /// that nobody asked for are dropped instead of probed forever.
    wanted: bool,
}

/// What the table wants done after an update.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct NeighActions {
    /// Addresses to send an ARP request for.
    pub probe: Vec<Ipv4Addr>,
    /// The set of resolved addresses changed: publish a new snapshot.
    pub changed: bool,
}

/// The management core's table for one port.
#[derive(Debug)]
pub struct NeighTable {
    entries: HashMap<Ipv4Addr, Entry>,
    capacity: usize,
    timers: NeighTimers,
}

impl NeighTable {
    pub fn new(capacity: usize, timers: NeighTimers) -> Self {
        NeighTable {
            entries: HashMap::new(),
            capacity,
            timers,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Adds a configured entry that ARP never changes and that never expires.
    pub fn add_permanent(&mut self, ip: Ipv4Addr, mac: MacAddr) {
        self.entries.insert(
            ip,
            Entry {
                mac: Some(mac),
                state: NeighState::Permanent,
                confirmed: 0,
                last_probe: 0,
                probes: 0,
                wanted: false,
            },
        );
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// An ARP packet told us `ip` is at `mac`. `solicited_or_for_us` is true for replies and for
    /// requests aimed at our addresses; other ARP only updates an address we already track (as
    /// Linux does), so a host cannot fill the table by broadcasting.
    pub fn learn(
        &mut self,
        ip: Ipv4Addr,
        mac: MacAddr,
        solicited_or_for_us: bool,
        now: Time,
        out: &mut NeighActions,
    ) {
        if !mac.is_unicast() || mac.is_zero() {
            return;
        }
        if let Some(e) = self.entries.get_mut(&ip) {
            if e.state == NeighState::Permanent {
                return;
            }
            if e.mac != Some(mac) || e.state != NeighState::Reachable {
                out.changed |= e.mac != Some(mac);
            }
            e.mac = Some(mac);
            e.state = NeighState::Reachable;
            e.confirmed = now;
            e.probes = 0;
            return;
        }
        if !solicited_or_for_us || self.entries.len() >= self.capacity {
            return;
        }
        self.entries.insert(
            ip,
            Entry {
                mac: Some(mac),
                state: NeighState::Reachable,
                confirmed: now,
                last_probe: 0,
                probes: 0,
                wanted: false,
            },
        );
        out.changed = true;
    }

    /// A worker needs `ip` and has no MAC for it (or asks for a refresh of a stale one).
    pub fn want(&mut self, ip: Ipv4Addr, now: Time, out: &mut NeighActions) {
        let t = self.timers;
        match self.entries.get_mut(&ip) {
            Some(e) => {
                e.wanted = true;
                match e.state {
                    NeighState::Failed if now.saturating_sub(e.last_probe) >= t.failed_hold => {
                        e.state = NeighState::Incomplete;
                        e.probes = 1;
                        e.last_probe = now;
                        out.probe.push(ip);
                    }
                    NeighState::Incomplete if now.saturating_sub(e.last_probe) >= t.retrans => {
                        e.probes += 1;
                        e.last_probe = now;
                        out.probe.push(ip);
                    }
                    _ => {}
                }
            }
            None => {
                if self.entries.len() >= self.capacity {
                    return;
                }
                self.entries.insert(
                    ip,
                    Entry {
                        mac: None,
                        state: NeighState::Incomplete,
                        confirmed: 0,
                        last_probe: now,
                        probes: 1,
                        wanted: true,
                    },
                );
                out.probe.push(ip);
            }
        }
    }

    /// Periodic work: retries, refreshes, expiry.
    pub fn tick(&mut self, now: Time, out: &mut NeighActions) {
        let t = self.timers;
        let mut remove = Vec::new();
        for (ip, e) in self.entries.iter_mut() {
            match e.state {
                NeighState::Incomplete => {
                    if now.saturating_sub(e.last_probe) >= t.retrans {
                        if e.probes >= t.max_probes {
                            e.state = NeighState::Failed;
                            e.last_probe = now;
                        } else {
                            e.probes += 1;
                            e.last_probe = now;
                            out.probe.push(*ip);
                        }
                    }
                }
                NeighState::Reachable => {
                    if now.saturating_sub(e.confirmed) >= t.reachable {
                        e.state = NeighState::Stale;
                        e.probes = 0;
                    }
                }
                NeighState::Stale => {
                    if !e.wanted && e.probes == 0 {
                        // Not used since it went stale: forget it rather than probe.
                        remove.push(*ip);
                    } else if now.saturating_sub(e.last_probe) >= t.retrans {
                        if e.probes >= t.max_probes {
                            // The neighbour stopped answering: stop using its old MAC.
                            remove.push(*ip);
                        } else {
                            e.probes += 1;
                            e.last_probe = now;
                            out.probe.push(*ip);
                        }
                    }
                }
                NeighState::Failed => {
                    if now.saturating_sub(e.last_probe) >= t.failed_hold {
                        remove.push(*ip);
                    }
                }
                NeighState::Permanent => {}
            }
            if e.state == NeighState::Reachable {
                e.wanted = false;
            }
        }
        for ip in remove {
            if let Some(e) = self.entries.remove(&ip) {
                out.changed |= e.mac.is_some();
            }
        }
    }

    /// Marks the entries a worker used recently as wanted (so they are refreshed, not dropped).
    pub fn touch(&mut self, ip: Ipv4Addr) {
        if let Some(e) = self.entries.get_mut(&ip) {
            e.wanted = true;
        }
    }

    pub fn lookup(&self, ip: Ipv4Addr) -> Option<MacAddr> {
        self.entries.get(&ip).and_then(|e| e.mac)
    }

    /// The resolved entries, for publication to workers.
    pub fn snapshot(&self) -> NeighSnapshot {
        NeighSnapshot::from_pairs(
            self.entries
                .iter()
                .filter_map(|(ip, e)| e.mac.map(|m| (*ip, m))),
        )
    }

    pub fn rows(&self, now: Time) -> Vec<NeighRow> {
        let mut v: Vec<NeighRow> = self
            .entries
            .iter()
            .map(|(ip, e)| NeighRow {
                ip: *ip,
                mac: e.mac.map(|m| m.to_string()),
                state: e.state,
                age_ms: if e.mac.is_some() {
                    now.saturating_sub(e.confirmed) / 1_000_000
                } else {
                    0
                },
            })
            .collect();
        v.sort_by_key(|r| u32::from(r.ip));
        v
    }
}

/// An immutable open-addressing map IPv4 -> MAC that workers probe per packet: one multiply,
/// a short linear probe, no allocation.
#[derive(Debug, Clone)]
pub struct NeighSnapshot {
    /// (ip as u32, mac); ip 0 marks an empty slot (0.0.0.0 is never a neighbour).
    slots: Vec<(u32, MacAddr)>,
    mask: usize,
    len: usize,
}

impl Default for NeighSnapshot {
    fn default() -> Self {
        Self::from_pairs(std::iter::empty())
    }
}

impl NeighSnapshot {
    pub fn from_pairs(pairs: impl Iterator<Item = (Ipv4Addr, MacAddr)>) -> Self {
        let pairs: Vec<(u32, MacAddr)> = pairs
            .map(|(ip, m)| (u32::from(ip), m))
            .filter(|(ip, _)| *ip != 0)
            .collect();
        let cap = (pairs.len() * 2).next_power_of_two().max(16);
        let mut slots = vec![(0u32, MacAddr([0; 6])); cap];
        let mask = cap - 1;
        for (ip, m) in &pairs {
            let mut i = Self::slot(*ip, mask);
            while slots[i].0 != 0 && slots[i].0 != *ip {
                i = (i + 1) & mask;
            }
            slots[i] = (*ip, *m);
        }
        NeighSnapshot {
            slots,
            mask,
            len: pairs.len(),
        }
    }

    #[inline(always)]
    fn slot(ip: u32, mask: usize) -> usize {
        (ip.wrapping_mul(0x9E37_79B1) >> 16) as usize & mask
    }

    #[inline]
    pub fn get(&self, ip: Ipv4Addr) -> Option<MacAddr> {
        let ip = u32::from(ip);
        if ip == 0 {
            return None;
        }
        let mut i = Self::slot(ip, self.mask);
        // The table is at most half full, so the probe ends at an empty slot.
        for _ in 0..=self.mask {
            let (k, m) = self.slots[i];
            if k == ip {
                return Some(m);
            }
            if k == 0 {
                return None;
            }
            i = (i + 1) & self.mask;
        }
        None
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Time = NANOS_PER_SEC;

    fn ip(d: u8) -> Ipv4Addr {
        Ipv4Addr::new(192, 168, 8, d)
    }
    fn mac(d: u8) -> MacAddr {
        MacAddr([2, 0, 0, 0, 0, d])
    }

    #[test]
    fn miss_probes_then_learns() {
        let mut t = NeighTable::new(16, NeighTimers::default());
        let mut a = NeighActions::default();
        t.want(ip(14), 0, &mut a);
        assert_eq!(a.probe, vec![ip(14)]);
        assert!(!a.changed);
        // A second miss within the retransmit interval sends nothing.
        let mut a = NeighActions::default();
        t.want(ip(14), S / 2, &mut a);
        assert!(a.probe.is_empty());
        let mut a = NeighActions::default();
        t.learn(ip(14), mac(14), true, S / 2, &mut a);
        assert!(a.changed);
        assert_eq!(t.lookup(ip(14)), Some(mac(14)));
        assert_eq!(t.snapshot().get(ip(14)), Some(mac(14)));
    }

    #[test]
    fn unanswered_probes_fail_then_expire() {
        let mut t = NeighTable::new(16, NeighTimers::default());
        let mut a = NeighActions::default();
        t.want(ip(99), 0, &mut a);
        let mut probes = a.probe.len();
        for s in 1..=10 {
            let mut a = NeighActions::default();
            t.tick(s * S, &mut a);
            probes += a.probe.len();
        }
        assert_eq!(probes, 3, "max_probes probes, then silence");
        assert!(t.is_empty(), "failed entry expires after the hold");
    }

    #[test]
    fn unsolicited_arp_does_not_create_entries() {
        let mut t = NeighTable::new(16, NeighTimers::default());
        let mut a = NeighActions::default();
        t.learn(ip(50), mac(50), false, 0, &mut a);
        assert!(t.is_empty());
        t.learn(ip(50), MacAddr([0xff; 6]), true, 0, &mut a);
        assert!(t.is_empty(), "broadcast MAC is never learned");
    }

    #[test]
    fn gratuitous_arp_updates_a_known_entry() {
        let mut t = NeighTable::new(16, NeighTimers::default());
        let mut a = NeighActions::default();
        t.learn(ip(14), mac(14), true, 0, &mut a);
        let mut a = NeighActions::default();
        t.learn(ip(14), mac(99), false, S, &mut a);
        assert!(a.changed);
        assert_eq!(t.lookup(ip(14)), Some(mac(99)));
    }

    #[test]
    fn stale_entries_in_use_are_refreshed_unused_ones_dropped() {
        let mut t = NeighTable::new(16, NeighTimers::default());
        let mut a = NeighActions::default();
        t.learn(ip(14), mac(14), true, 0, &mut a);
        t.learn(ip(15), mac(15), true, 0, &mut a);
        let mut a = NeighActions::default();
        t.tick(31 * S, &mut a); // both go stale
        t.touch(ip(14));
        let mut a = NeighActions::default();
        t.tick(32 * S, &mut a);
        assert_eq!(a.probe, vec![ip(14)]);
        assert!(a.changed, "unused stale entry removed");
        assert_eq!(t.lookup(ip(15)), None);
        // It answers: back to reachable, still usable throughout.
        assert_eq!(t.lookup(ip(14)), Some(mac(14)));
        let mut a = NeighActions::default();
        t.learn(ip(14), mac(14), false, 32 * S, &mut a);
        assert_eq!(t.rows(32 * S)[0].state, NeighState::Reachable);
    }

    #[test]
    fn stale_entry_that_stops_answering_is_removed() {
        let mut t = NeighTable::new(16, NeighTimers::default());
        let mut a = NeighActions::default();
        t.learn(ip(14), mac(14), true, 0, &mut a);
        t.tick(31 * S, &mut a);
        t.touch(ip(14));
        for s in 32..40 {
            let mut a = NeighActions::default();
            t.tick(s * S, &mut a);
        }
        assert_eq!(t.lookup(ip(14)), None);
    }

    #[test]
    fn permanent_entries_ignore_arp_and_time() {
        let mut t = NeighTable::new(16, NeighTimers::default());
        t.add_permanent(ip(1), mac(1));
        let mut a = NeighActions::default();
        t.learn(ip(1), mac(9), true, S, &mut a);
        for s in 0..100 {
            t.tick(s * S, &mut a);
            t.want(ip(1), s * S, &mut a);
        }
        assert!(a.probe.is_empty());
        assert_eq!(t.lookup(ip(1)), Some(mac(1)));
    }

    #[test]
    fn capacity_is_enforced() {
        let mut t = NeighTable::new(2, NeighTimers::default());
        let mut a = NeighActions::default();
        for d in 1..10 {
            t.want(ip(d), 0, &mut a);
        }
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn snapshot_lookup_matches_a_hashmap() {
        let pairs: Vec<_> = (1..=200u32)
            .map(|i| {
                (
                    Ipv4Addr::from(0x0a00_0000 + i * 7919),
                    MacAddr([2, 0, 0, 0, (i >> 8) as u8, i as u8]),
                )
            })
            .collect();
        let s = NeighSnapshot::from_pairs(pairs.iter().copied());
        assert_eq!(s.len(), 200);
        for (ip, m) in &pairs {
            assert_eq!(s.get(*ip), Some(*m));
        }
        assert_eq!(s.get(Ipv4Addr::new(1, 2, 3, 4)), None);
        assert_eq!(s.get(Ipv4Addr::UNSPECIFIED), None);
        assert_eq!(
            NeighSnapshot::default().get(Ipv4Addr::new(1, 1, 1, 1)),
            None
        );
    }
}
