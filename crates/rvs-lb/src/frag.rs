//! Fragment tracking (no reassembly).
//!
//! The first fragment of a datagram carries the TCP/UDP ports: it finds or creates the
//! connection and records here what every later fragment of the same datagram, keyed by
//! `(src, dst, ident, proto)` and the arrival port, must get: the same address rewrite (ports and
//! the transport checksum live in the first fragment only, and the incremental checksum update
//! made there is valid for the whole datagram), or a hand-over to the owner core.
//!
//! Non-first fragments that arrive before their first fragment are dropped and counted (not
//! held): rvs has no buffer of its own to hold packets in. Linux and BSD stacks send fragments
//! in order.
//!
//! The table is preallocated and 4-way set associative: an entry goes when all bytes of its
//! datagram have been seen or after `timeout`, and a set whose four entries are all live refuses
//! a new datagram (counted by the engine).

use crate::config::{DestId, ServiceId};
use crate::conn::{secs_to_ticks, tick_of};
use crate::{PortRole, Time};
use std::net::Ipv4Addr;

const WAYS: usize = 4;

/// Default lifetime of a tracked datagram (Linux `ipfrag_time`).
pub const DEFAULT_FRAG_TIMEOUT_SECS: u32 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FragKey {
    pub src: u32,
    pub dst: u32,
    pub ident: u16,
    pub proto: u8,
    /// Arrival port index (public 0, private 1).
    pub role: u8,
}

impl FragKey {
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr, ident: u16, proto: u8, role: PortRole) -> FragKey {
        FragKey {
            src: src.into(),
            dst: dst.into(),
            ident,
            proto,
            role: role.index() as u8,
        }
    }
}

/// What later fragments get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragAction {
    /// Rewrite the destination (public arrival) or source (private arrival) address to `addr`;
    /// count the bytes for `svc` / `dest`.
    Rewrite {
        addr: Ipv4Addr,
        svc: ServiceId,
        dest: DestId,
    },
    /// Another core owns the connection.
    Handover { core: usize },
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    key: FragKey,
    used: bool,
    action: FragAction,
    expires: u32,
    received: u32,
    /// Datagram payload length, known once the last fragment is seen (0 = unknown).
    total: u32,
}

impl Entry {
    const EMPTY: Entry = Entry {
        key: FragKey {
            src: 0,
            dst: 0,
            ident: 0,
            proto: 0,
            role: 0,
        },
        used: false,
        action: FragAction::Handover { core: 0 },
        expires: 0,
        received: 0,
        total: 0,
    };

    fn live(&self, now_t: u32) -> bool {
        self.used && (self.expires.wrapping_sub(now_t) as i32) > 0
    }
}

pub struct FragTable {
    entries: Vec<Entry>,
    set_mask: usize,
    seed: u64,
    timeout: u32,
}

impl FragTable {
    /// Room for about `capacity` datagrams in flight (rounded up to a power of two, >= 4).
    pub fn new(capacity: usize, seed: u64, timeout_secs: u32) -> FragTable {
        let sets = capacity.div_ceil(WAYS).next_power_of_two().max(1);
        FragTable {
            entries: vec![Entry::EMPTY; sets * WAYS],
            set_mask: sets - 1,
            seed,
            timeout: secs_to_ticks(timeout_secs.max(1)),
        }
    }

    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    fn set_of(&self, k: &FragKey) -> usize {
        let x = ((k.src as u64) << 32 | k.dst as u64) ^ self.seed;
        let y = (k.ident as u64) << 16 | (k.proto as u64) << 8 | k.role as u64;
        let mut h = x.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ y.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        h ^= h >> 31;
        ((h >> 16) as usize & self.set_mask) * WAYS
    }

    /// Records the first fragment (`len` payload bytes at offset 0). Replaces a stale entry
    /// with the same key; `false` if the set is full of live datagrams.
    pub fn insert(&mut self, key: FragKey, action: FragAction, len: u32, now: Time) -> bool {
        let now_t = tick_of(now);
        let base = self.set_of(&key);
        let Some(set) = self.entries.get_mut(base..base + WAYS) else {
            return false;
        };
        let slot = match set.iter().position(|e| e.used && e.key == key) {
            Some(i) => Some(i),
            None => set.iter().position(|e| !e.live(now_t)),
        };
        let Some(e) = slot.and_then(|i| set.get_mut(i)) else {
            return false;
        };
        *e = Entry {
            key,
            used: true,
            action,
            expires: now_t.wrapping_add(self.timeout),
            received: len,
            total: 0,
        };
        true
    }

    /// A later fragment (`off` bytes into the datagram, `len` payload bytes, `more` = MF): the
    /// action recorded for its datagram, if any. Forgets the datagram once all of it was seen.
    pub fn account(
        &mut self,
        key: FragKey,
        off: u16,
        len: u32,
        more: bool,
        now: Time,
    ) -> Option<FragAction> {
        let now_t = tick_of(now);
        let base = self.set_of(&key);
        let set = self.entries.get_mut(base..base + WAYS)?;
        let e = set.iter_mut().find(|e| e.used && e.key == key)?;
        if !e.live(now_t) {
            e.used = false;
            return None;
        }
        e.received = e.received.saturating_add(len);
        if !more {
            e.total = off as u32 + len;
        }
        let action = e.action;
        if e.total != 0 && e.received >= e.total {
            e.used = false;
        }
        Some(action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Time = crate::NANOS_PER_SEC;

    fn key(ident: u16) -> FragKey {
        FragKey::new(
            Ipv4Addr::new(198, 51, 100, 1),
            Ipv4Addr::new(192, 0, 2, 1),
            ident,
            17,
            PortRole::Public,
        )
    }

    fn rw() -> FragAction {
        FragAction::Rewrite {
            addr: Ipv4Addr::new(10, 0, 0, 1),
            svc: ServiceId(1),
            dest: DestId(2),
        }
    }

    #[test]
    fn tracks_until_complete() {
        let mut t = FragTable::new(64, 1, 30);
        assert!(t.insert(key(1), rw(), 1480, 0));
        // Last fragment first (out of order among the later ones), then the middle one.
        assert_eq!(t.account(key(1), 2960, 100, false, S), Some(rw()));
        assert_eq!(t.account(key(1), 1480, 1480, true, S), Some(rw()));
        // All 3060 bytes seen: forgotten.
        assert_eq!(t.account(key(1), 1480, 1480, true, S), None);
        assert_eq!(t.account(key(2), 8, 8, false, 0), None);
    }

    #[test]
    fn keys_are_distinct_by_role_and_proto() {
        let mut t = FragTable::new(64, 1, 30);
        assert!(t.insert(key(5), FragAction::Handover { core: 3 }, 8, 0));
        let mut k = key(5);
        k.role = 1;
        assert_eq!(t.account(k, 8, 8, true, 0), None);
        k = key(5);
        k.proto = 6;
        assert_eq!(t.account(k, 8, 8, true, 0), None);
        assert_eq!(
            t.account(key(5), 8, 8, true, 0),
            Some(FragAction::Handover { core: 3 })
        );
    }

    #[test]
    fn full_set_refuses_until_timeout() {
        let mut t = FragTable::new(4, 1, 30);
        assert_eq!(t.capacity(), 4);
        for i in 0..4 {
            assert!(t.insert(key(i), rw(), 8, 0));
        }
        assert!(!t.insert(key(9), rw(), 8, 0));
        // Re-inserting a known datagram's first fragment is fine.
        assert!(t.insert(key(2), rw(), 8, 0));
        // After the timeout the stale entries make room and no longer match.
        assert_eq!(t.account(key(0), 8, 8, true, 31 * S), None);
        assert!(t.insert(key(9), rw(), 8, 31 * S));
        assert_eq!(t.account(key(9), 8, 8, true, 31 * S), Some(rw()));
    }
}
