//! Locality-based least-connection (ip_vs_lblc.c).
//!
//! A cache maps the packet's destination address (the VIP here) to a dest. The cached dest is
//! reused while it still belongs to the service, has weight > 0 and is not "overloaded" in the
//! lblc sense (`activeconns > weight` while some dest of the service has `activeconns * 2 <
//! weight`). Otherwise wlc picks a dest and the entry is rewritten. Like the kernel, the reuse
//! test does not look at the OVERLOAD flag (threshold) of the cached dest.
//!
//! Bounded memory: the cache is a set-associative table (8 ways) preallocated at construction.
//! An entry unused for `expiration` (the kernel's `lblc_expiration` sysctl, 24 h) is treated as
//! gone, as the kernel's periodic full sweep would have removed it. When a set is full, the least
//! recently used entry of that set is replaced; the kernel instead lets its table grow and, above
//! 16384 entries, collects entries idle for 6 minutes.

use super::common::{hash_32, least_weighted, locality_overloaded, DestKey, Remap, NO_DEST};
use super::{DestView, Flow, SchedFlags, Scheduler};
use crate::{Time, NANOS_PER_SEC};
use std::fmt;

/// The kernel's `max_size` (`IP_VS_LBLC_TAB_SIZE * 16`), used as the default cache capacity.
pub const LOCALITY_DEFAULT_CAPACITY: usize = 16384;
/// `DEFAULT_EXPIRATION` of lblc/lblcr: 24 hours.
pub const LOCALITY_DEFAULT_EXPIRATION: Time = 24 * 60 * 60 * NANOS_PER_SEC;
/// Entries per set of the set-associative caches.
pub(crate) const WAYS: usize = 8;

/// Rounds a requested capacity to a power-of-two number of sets of [`WAYS`] entries; returns
/// (sets, hash bits).
pub(crate) fn cache_geometry(capacity: usize) -> (usize, u32) {
    let sets = (capacity / WAYS).clamp(1, 1 << 24).next_power_of_two();
    (sets, sets.trailing_zeros())
}

/// The cache set for a destination address.
#[inline]
pub(crate) fn set_of(daddr: u32, bits: u32) -> usize {
    if bits == 0 {
        0
    } else {
        hash_32(daddr, bits) as usize
    }
}

/// What the set-associative locality caches (lblc, lblcr) need to know of an entry.
pub(crate) trait CacheSlot {
    fn key(&self) -> u32;
    fn in_use(&self) -> bool;
    fn last_use(&self) -> Time;
}

/// The kernel's sweep removes an entry once `now >= lastuse + expiration`.
#[inline]
pub(crate) fn slot_expired<E: CacheSlot>(e: &E, now: Time, expiration: Time) -> bool {
    now.saturating_sub(e.last_use()) >= expiration
}

#[inline]
fn set_range(daddr: u32, bits: u32) -> std::ops::Range<usize> {
    let start = set_of(daddr, bits) * WAYS;
    start..start + WAYS
}

/// The slot holding a live entry for `daddr`.
pub(crate) fn find_slot<E: CacheSlot>(
    slots: &[E],
    bits: u32,
    expiration: Time,
    daddr: u32,
    now: Time,
) -> Option<usize> {
    set_range(daddr, bits).find(|&s| {
        slots
            .get(s)
            .is_some_and(|e| e.in_use() && e.key() == daddr && !slot_expired(e, now, expiration))
    })
}

/// A slot for a new entry: a free or expired one, else the least recently used of the set.
pub(crate) fn victim_slot<E: CacheSlot>(
    slots: &[E],
    bits: u32,
    expiration: Time,
    daddr: u32,
    now: Time,
) -> usize {
    let range = set_range(daddr, bits);
    let mut best = range.start;
    let mut best_use = Time::MAX;
    for s in range {
        let Some(e) = slots.get(s) else {
            continue;
        };
        if !e.in_use() || slot_expired(e, now, expiration) {
            return s;
        }
        if e.last_use() < best_use {
            best = s;
            best_use = e.last_use();
        }
    }
    best
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    daddr: u32,
    /// Index into the service's dests; [`NO_DEST`] once that dest has been removed.
    dest: u32,
    lastuse: Time,
    used: bool,
}

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

const EMPTY: Entry = Entry {
    daddr: 0,
    dest: NO_DEST,
    lastuse: 0,
    used: false,
};

/// Locality-based least-connection state: the daddr → dest cache.
#[derive(Clone)]
pub struct Lblc {
    slots: Vec<Entry>,
    bits: u32,
    expiration: Time,
    keys: Vec<DestKey>,
}

impl fmt::Debug for Lblc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lblc")
            .field("capacity", &self.slots.len())
            .field("entries", &self.slots.iter().filter(|e| e.used).count())
            .field("expiration", &self.expiration)
            .finish()
    }
}

impl Default for Lblc {
    fn default() -> Lblc {
        Lblc::new()
    }
}

impl Lblc {
    /// A cache of [`LOCALITY_DEFAULT_CAPACITY`] entries, 24 h expiration.
    pub fn new() -> Lblc {
        Lblc::with_params(LOCALITY_DEFAULT_CAPACITY, LOCALITY_DEFAULT_EXPIRATION)
    }

    /// `capacity` is rounded up to a power of two (at least 8); `expiration` is the
    /// `lblc_expiration` sysctl.
    pub fn with_params(capacity: usize, expiration: Time) -> Lblc {
        let (sets, bits) = cache_geometry(capacity);
        Lblc {
            slots: vec![EMPTY; sets * WAYS],
            bits,
            expiration,
            keys: Vec::new(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Number of live (used, not expired at `now`) entries.
    pub fn entries(&self, now: Time) -> usize {
        self.slots
            .iter()
            .filter(|e| e.used && !self.expired(e, now))
            .count()
    }

    #[inline]
    fn expired(&self, e: &Entry, now: Time) -> bool {
        slot_expired(e, now, self.expiration)
    }

    fn find(&self, daddr: u32, now: Time) -> Option<usize> {
        find_slot(&self.slots, self.bits, self.expiration, daddr, now)
    }

    fn victim(&self, daddr: u32, now: Time) -> usize {
        victim_slot(&self.slots, self.bits, self.expiration, daddr, now)
    }
}

impl Scheduler for Lblc {
    fn update(&mut self, dests: &[DestView], _flags: SchedFlags) {
        let remap = Remap::new(&self.keys, dests);
        if !remap.is_identity(dests.len()) {
            for e in self.slots.iter_mut().filter(|e| e.used) {
                e.dest = remap.get(e.dest).unwrap_or(NO_DEST);
            }
        }
        self.keys = dests.iter().map(|d| (d.addr, d.port)).collect();
    }

    fn schedule(&mut self, dests: &[DestView], flow: &Flow, now: Time) -> Option<usize> {
        let daddr = u32::from(flow.vaddr);
        let found = self.find(daddr, now);
        if let Some(e) = found.and_then(|s| self.slots.get_mut(s)) {
            e.lastuse = now;
            let i = e.dest as usize;
            if let Some(d) = dests.get(i) {
                if d.weight > 0 && !locality_overloaded(d, dests) {
                    return Some(i);
                }
            }
        }
        // No entry, or it is invalid: schedule by wlc and (re)write the entry.
        let pick = least_weighted(dests, DestView::overhead)?;
        let dest = u32::try_from(pick).unwrap_or(NO_DEST);
        match found {
            // ip_vs_lblc_new() on an existing entry: point it at the new dest (its lastuse was
            // refreshed by the lookup above).
            Some(s) => {
                if let Some(e) = self.slots.get_mut(s) {
                    e.dest = dest;
                }
            }
            None => {
                let s = self.victim(daddr, now);
                if let Some(e) = self.slots.get_mut(s) {
                    *e = Entry {
                        daddr,
                        dest,
                        lastuse: now,
                        used: true,
                    };
                }
            }
        }
        Some(pick)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::common::test_util::{any_flow, dests};
    use std::net::Ipv4Addr;

    const SEC: Time = NANOS_PER_SEC;

    fn to_vip(v: Ipv4Addr) -> Flow {
        Flow {
            vaddr: v,
            ..any_flow()
        }
    }

    fn vip(i: u32) -> Ipv4Addr {
        Ipv4Addr::from(0xC000_0200 + i)
    }

    fn lblc(d: &[DestView]) -> Lblc {
        let mut s = Lblc::new();
        s.update(d, SchedFlags::default());
        s
    }

    #[test]
    fn caches_and_reuses_per_destination_address() {
        let mut d = dests(&[1, 1]);
        let mut s = lblc(&d);
        assert_eq!(s.schedule(&d, &to_vip(vip(1)), SEC), Some(0)); // wlc tie: the first
        d[0].activeconns = 1;
        // Cached: A again, although B is now less loaded (A is not lblc-overloaded: 1 <= 1).
        assert_eq!(s.schedule(&d, &to_vip(vip(1)), 2 * SEC), Some(0));
        // Another address is scheduled on its own: wlc gives B.
        assert_eq!(s.schedule(&d, &to_vip(vip(2)), 3 * SEC), Some(1));
        assert_eq!(s.entries(3 * SEC), 2);
    }

    #[test]
    fn overloaded_cached_dest_is_replaced() {
        let mut d = dests(&[1, 4]);
        let mut s = lblc(&d);
        d[1].activeconns = 3; // B: 768/4 = 192 > A: 0/1 -> A
        assert_eq!(s.schedule(&d, &to_vip(vip(1)), SEC), Some(0));
        // A: 2 active > weight 1, but no dest has active*2 < weight (B: 6 < 4 is false): kept.
        d[0].activeconns = 2;
        assert_eq!(s.schedule(&d, &to_vip(vip(1)), SEC), Some(0));
        // B drops to 1 active (2 < 4): A counts as overloaded; wlc picks B (256/4 < 512/1).
        d[1].activeconns = 1;
        assert_eq!(s.schedule(&d, &to_vip(vip(1)), SEC), Some(1));
        // The entry now points at B and stays there when A becomes idle again.
        d[0].activeconns = 0;
        assert_eq!(s.schedule(&d, &to_vip(vip(1)), SEC), Some(1));
    }

    #[test]
    fn quiesced_or_removed_cached_dest_is_replaced() {
        let mut d = dests(&[1, 1, 1]);
        let mut s = lblc(&d);
        assert_eq!(s.schedule(&d, &to_vip(vip(1)), SEC), Some(0));
        d[0].weight = 0;
        assert_eq!(s.schedule(&d, &to_vip(vip(1)), SEC), Some(1));
        // Remove B (the cached dest): C moves to index 1, the entry is invalid, wlc picks C.
        let d2 = vec![d[0].clone(), d[2].clone()];
        s.update(&d2, SchedFlags::default());
        assert_eq!(s.schedule(&d2, &to_vip(vip(1)), SEC), Some(1));
        // An entry follows its dest when the list changes around it: cache vip 2 on C, then
        // delete A and add an idle D. C moves to index 0 and stays cached although wlc would
        // now pick D.
        let mut d3 = d2.clone();
        d3[0].weight = 1;
        d3[0].activeconns = 5;
        s.update(&d3, SchedFlags::default());
        assert_eq!(s.schedule(&d3, &to_vip(vip(2)), SEC), Some(1));
        let mut d4 = vec![d3[1].clone(), crate::sched::common::test_util::dest(7, 1)];
        d4[0].activeconns = 1;
        s.update(&d4, SchedFlags::default());
        assert_eq!(s.schedule(&d4, &to_vip(vip(2)), SEC), Some(0));
        assert_eq!(s.schedule(&d4, &to_vip(vip(3)), SEC), Some(1));
    }

    #[test]
    fn overload_flag_of_cached_dest_is_not_checked() {
        // Kernel behaviour: a cached dest flagged OVERLOAD (connection threshold) is reused.
        let mut d = dests(&[1, 1]);
        let mut s = lblc(&d);
        assert_eq!(s.schedule(&d, &to_vip(vip(1)), SEC), Some(0));
        d[0].overloaded = true;
        assert_eq!(s.schedule(&d, &to_vip(vip(1)), SEC), Some(0));
        // A new address never gets an OVERLOAD dest: wlc skips it.
        assert_eq!(s.schedule(&d, &to_vip(vip(2)), SEC), Some(1));
    }

    #[test]
    fn entries_expire_after_expiration() {
        let mut d = dests(&[1, 1]);
        let mut s = Lblc::with_params(64, 100 * SEC);
        s.update(&d, SchedFlags::default());
        assert_eq!(s.schedule(&d, &to_vip(vip(1)), 0), Some(0));
        d[0].activeconns = 1;
        // Used at 99 s: still cached, and the use refreshes it.
        assert_eq!(s.schedule(&d, &to_vip(vip(1)), 99 * SEC), Some(0));
        assert_eq!(s.schedule(&d, &to_vip(vip(1)), 198 * SEC), Some(0));
        // 100 s idle: gone, wlc picks B.
        assert_eq!(s.entries(298 * SEC), 0);
        assert_eq!(s.schedule(&d, &to_vip(vip(1)), 298 * SEC), Some(1));
        assert_eq!(s.entries(298 * SEC), 1);
        // An expired entry re-created with the same dest is live again.
        let d = dests(&[1, 1]);
        let mut s = Lblc::with_params(8, 100 * SEC);
        s.update(&d, SchedFlags::default());
        assert_eq!(s.schedule(&d, &to_vip(vip(1)), 0), Some(0));
        assert_eq!(s.schedule(&d, &to_vip(vip(1)), 150 * SEC), Some(0));
        assert_eq!(s.entries(150 * SEC), 1);
        assert_eq!(s.entries(249 * SEC), 1);
    }

    #[test]
    fn memory_is_bounded_and_lru_is_evicted() {
        let d = dests(&[1, 1]);
        let mut s = Lblc::with_params(8, LOCALITY_DEFAULT_EXPIRATION); // one set of 8 ways
        assert_eq!(s.capacity(), 8);
        s.update(&d, SchedFlags::default());
        for i in 0..1000u32 {
            assert!(s.schedule(&d, &to_vip(vip(i)), i as Time).is_some());
        }
        assert_eq!(s.entries(1000), 8);
        // The newest 8 addresses are cached; older ones were evicted least recently used first.
        assert!(s.find(u32::from(vip(999)), 1000).is_some());
        assert!(s.find(u32::from(vip(992)), 1000).is_some());
        assert!(s.find(u32::from(vip(991)), 1000).is_none());
    }

    #[test]
    fn none_when_nothing_available() {
        let mut s = lblc(&[]);
        assert_eq!(s.schedule(&[], &to_vip(vip(1)), SEC), None);
        let mut d = dests(&[0, 1]);
        d[1].overloaded = true;
        let mut s = lblc(&d);
        assert_eq!(s.schedule(&d, &to_vip(vip(1)), SEC), None);
        assert_eq!(s.entries(SEC), 0);
    }
}
