//! Destination hashing (ip_vs_dh.c).
//!
//! A 256-bucket table filled round-robin with the dests in list order, one bucket per dest per
//! cycle: unlike sh, `ip_vs_dh_reassign()` does not repeat a dest by weight. The bucket is
//! `hash_32(daddr, 8)` where daddr is the packet's destination (the VIP here). The dest in the
//! bucket is returned if it has weight > 0 and is not OVERLOAD; there is no fallback.

use super::common::{hash_32, NO_DEST};
use super::{DestView, Flow, SchedFlags, Scheduler};
use crate::Time;
use std::fmt;

pub const DH_TAB_BITS: u32 = 8;
pub const DH_TAB_SIZE: usize = 1 << DH_TAB_BITS;

/// Destination hashing: the bucket table (dest indices).
#[derive(Clone)]
pub struct Dh {
    buckets: Box<[u32; DH_TAB_SIZE]>,
}

impl fmt::Debug for Dh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dh")
            .field("buckets[..8]", &&self.buckets[..8])
            .finish()
    }
}

impl Default for Dh {
    fn default() -> Dh {
        Dh::new()
    }
}

/// `ip_vs_dh_hashkey()` for IPv4.
#[inline]
pub(crate) fn dh_hashkey(addr: u32) -> usize {
    hash_32(addr, DH_TAB_BITS) as usize
}

impl Dh {
    pub fn new() -> Dh {
        Dh {
            buckets: Box::new([NO_DEST; DH_TAB_SIZE]),
        }
    }

    /// The dest index stored in each bucket (`None` for an empty service).
    pub fn buckets(&self) -> impl Iterator<Item = Option<usize>> + '_ {
        self.buckets
            .iter()
            .map(|&b| (b != NO_DEST).then_some(b as usize))
    }
}

impl Scheduler for Dh {
    /// `ip_vs_dh_reassign()` (the kernel runs it on add and delete; the table does not depend on
    /// weights, so running it on every update gives the same table).
    fn update(&mut self, dests: &[DestView], _flags: SchedFlags) {
        let n = dests.len();
        for (b, slot) in self.buckets.iter_mut().enumerate() {
            *slot = if n == 0 {
                NO_DEST
            } else {
                u32::try_from(b % n).unwrap_or(NO_DEST)
            };
        }
    }

    fn schedule(&mut self, dests: &[DestView], flow: &Flow, _now: Time) -> Option<usize> {
        let b = dh_hashkey(u32::from(flow.vaddr));
        let i = *self.buckets.get(b)? as usize;
        let d = dests.get(i)?;
        d.available().then_some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::common::test_util::{any_flow, dests};
    use std::net::Ipv4Addr;

    fn dh(d: &[DestView]) -> Dh {
        let mut s = Dh::new();
        s.update(d, SchedFlags::default());
        s
    }

    fn to_vip(v: Ipv4Addr) -> Flow {
        Flow {
            vaddr: v,
            ..any_flow()
        }
    }

    #[test]
    fn one_bucket_per_dest_regardless_of_weight() {
        let s = dh(&dests(&[1, 5, 2]));
        let t: Vec<Option<usize>> = s.buckets().collect();
        assert_eq!(
            &t[..6],
            &[Some(0), Some(1), Some(2), Some(0), Some(1), Some(2)]
        );
        let mut count = [0usize; 3];
        for b in &t {
            count[b.unwrap_or(0)] += 1;
        }
        assert_eq!(count, [86, 85, 85]);
        assert!(dh(&[]).buckets().all(|b| b.is_none()));
    }

    #[test]
    fn keyed_on_destination_address() {
        // hash_32(0xC0000201, 8) = 50 (0xC0000201 * 0x61C88647 mod 2^32 = 0x32D51447);
        // hash_32(0xC0000202, 8) = 148 (product 0x949D9A8E).
        assert_eq!(dh_hashkey(0xC000_0201), 50);
        assert_eq!(dh_hashkey(0xC000_0202), 148);
        let d = dests(&[1, 1, 1]);
        let mut s = dh(&d);
        let v1 = Ipv4Addr::new(192, 0, 2, 1);
        let v2 = Ipv4Addr::new(192, 0, 2, 2);
        // Bucket 50 -> dest 50 % 3 = 2; bucket 148 -> dest 1; the client does not matter.
        for c in 1..20u8 {
            let mut f = to_vip(v1);
            f.caddr = Ipv4Addr::new(198, 51, 100, c);
            f.cport = 1000 + c as u16;
            assert_eq!(s.schedule(&d, &f, 0), Some(2));
        }
        assert_eq!(s.schedule(&d, &to_vip(v2), 0), Some(1));
    }

    #[test]
    fn unavailable_gives_none() {
        let mut d = dests(&[1, 1, 1]);
        let v1 = Ipv4Addr::new(192, 0, 2, 1); // dest 2
        d[2].overloaded = true;
        let mut s = dh(&d);
        assert_eq!(s.schedule(&d, &to_vip(v1), 0), None);
        d[2].overloaded = false;
        d[2].weight = 0;
        assert_eq!(s.schedule(&d, &to_vip(v1), 0), None);
        let mut e = dh(&[]);
        assert_eq!(e.schedule(&[], &to_vip(v1), 0), None);
        // Shorter list than at the update: out-of-range bucket entries give None.
        assert_eq!(s.schedule(&d[..1], &to_vip(v1), 0), None);
    }
}
