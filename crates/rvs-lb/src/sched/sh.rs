//! Source hashing (ip_vs_sh.c).
//!
//! A 256-bucket table (`IP_VS_SH_TAB_BITS` = 8) is tiled with the dests in list order, each
//! repeated `weight` times (a weight-0 dest still takes one bucket), the pattern repeating until
//! the table is full. The bucket is `hash_32(port + caddr, 8)` with the port 0 unless `sh-port`.
//! An unavailable dest gives no destination, unless `sh-fallback` probes the table as
//! `ip_vs_sh_get_fallback()` does.

use super::common::{has_ports, hash_32, NO_DEST};
use super::{DestView, Flow, SchedFlags, Scheduler};
use crate::Time;
use std::fmt;

pub const SH_TAB_BITS: u32 = 8;
pub const SH_TAB_SIZE: usize = 1 << SH_TAB_BITS;
const SH_TAB_MASK: u32 = (SH_TAB_SIZE as u32) - 1;

/// Source hashing: the bucket table (dest indices) and the service flags.
#[derive(Clone)]
pub struct Sh {
    buckets: Box<[u32; SH_TAB_SIZE]>,
    flags: SchedFlags,
}

impl fmt::Debug for Sh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sh")
            .field("flags", &self.flags)
            .field("buckets[..8]", &&self.buckets[..8])
            .finish()
    }
}

/// `ip_vs_sh_hashkey()` for IPv4: `(offset + hash_32(port + addr, 8)) & mask`.
#[inline]
pub(crate) fn sh_hashkey(addr: u32, port: u16, offset: u32) -> usize {
    (offset.wrapping_add(hash_32((port as u32).wrapping_add(addr), SH_TAB_BITS)) & SH_TAB_MASK)
        as usize
}

impl Sh {
    pub fn new(flags: SchedFlags) -> Sh {
        Sh {
            buckets: Box::new([NO_DEST; SH_TAB_SIZE]),
            flags,
        }
    }

    /// The dest index stored in each bucket (`None` for an empty service).
    pub fn buckets(&self) -> impl Iterator<Item = Option<usize>> + '_ {
        self.buckets
            .iter()
            .map(|&b| (b != NO_DEST).then_some(b as usize))
    }

    /// The dest in `bucket` if it is in range; `Err` for an empty bucket (the kernel's NULL).
    #[inline]
    fn at<'a>(&self, dests: &'a [DestView], bucket: usize) -> Result<(usize, &'a DestView), ()> {
        let i = *self.buckets.get(bucket).ok_or(())? as usize;
        // An index past the list (dests shorter than at the last update) counts as empty.
        dests.get(i).map(|d| (i, d)).ok_or(())
    }
}

impl Scheduler for Sh {
    /// `ip_vs_sh_reassign()`, run on every add, edit and delete.
    fn update(&mut self, dests: &[DestView], flags: SchedFlags) {
        self.flags = flags;
        if dests.is_empty() {
            self.buckets.fill(NO_DEST);
            return;
        }
        let mut p = 0usize;
        let mut d_count = 0u64;
        for b in self.buckets.iter_mut() {
            *b = u32::try_from(p).unwrap_or(NO_DEST);
            d_count += 1;
            // Don't move to the next dest until it has filled its weight.
            if d_count >= dests[p].weight as u64 {
                p = (p + 1) % dests.len();
                d_count = 0;
            }
        }
    }

    fn schedule(&mut self, dests: &[DestView], flow: &Flow, _now: Time) -> Option<usize> {
        let addr = u32::from(flow.caddr);
        let port = if self.flags.port() && has_ports(flow.proto) {
            flow.cport
        } else {
            0
        };
        let ihash = sh_hashkey(addr, port, 0);
        let (i, d) = self.at(dests, ihash).ok()?;
        if d.available() {
            return Some(i);
        }
        if !self.flags.fallback() {
            return None;
        }
        // Loop round the table from a point derived from the original hash (deterministic).
        for offset in 0..SH_TAB_SIZE as u32 {
            let roffset = (offset + ihash as u32) % SH_TAB_SIZE as u32;
            let hash = sh_hashkey(addr, port, roffset);
            let (i, d) = self.at(dests, hash).ok()?;
            if d.available() {
                return Some(i);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::common::test_util::{dests, flow};
    use std::net::Ipv4Addr;

    const FALLBACK: SchedFlags = SchedFlags(SchedFlags::SCHED1);
    const PORT: SchedFlags = SchedFlags(SchedFlags::SCHED2);

    fn sh(d: &[DestView], flags: SchedFlags) -> Sh {
        let mut s = Sh::new(flags);
        s.update(d, flags);
        s
    }

    #[test]
    fn table_is_tiled_by_weight_in_list_order() {
        let s = sh(&dests(&[1, 2]), SchedFlags::default());
        let t: Vec<Option<usize>> = s.buckets().collect();
        assert_eq!(
            &t[..7],
            &[
                Some(0),
                Some(1),
                Some(1),
                Some(0),
                Some(1),
                Some(1),
                Some(0)
            ]
        );
        assert_eq!(t.iter().filter(|b| **b == Some(0)).count(), 86);
        assert_eq!(t.iter().filter(|b| **b == Some(1)).count(), 170);
        // A weight-0 dest still takes one bucket per cycle.
        let s = sh(&dests(&[0, 3]), SchedFlags::default());
        let t: Vec<Option<usize>> = s.buckets().collect();
        assert_eq!(&t[..5], &[Some(0), Some(1), Some(1), Some(1), Some(0)]);
        // Weights past the table size fill it with the first dest.
        let s = sh(&dests(&[300, 1]), SchedFlags::default());
        assert!(s.buckets().all(|b| b == Some(0)));
        // An empty service has an empty table.
        let s = sh(&[], SchedFlags::default());
        assert!(s.buckets().all(|b| b.is_none()));
    }

    #[test]
    fn bucket_distribution_is_proportional_to_weight() {
        let s = sh(&dests(&[1, 2, 5]), SchedFlags::default());
        let mut count = [0usize; 3];
        for b in s.buckets() {
            count[b.unwrap_or(0)] += 1;
        }
        // 32 cycles of 8 buckets fill the table exactly.
        assert_eq!(count, [32, 64, 160]);
    }

    #[test]
    fn hash_matches_kernel_formula() {
        // 10.0.0.1 = 0x0A000001: hash_32(0x0A000001, 8) = 0x27 = 39 (see common.rs).
        assert_eq!(sh_hashkey(0x0A00_0001, 0, 0), 39);
        // With port 80: hash_32(0x0A000051, 8); 0x0A000051 * 0x61C88647 mod 2^32 = 0xB6727C77.
        assert_eq!(sh_hashkey(0x0A00_0001, 80, 0), 0xB6);
        // The offset is added after hashing, modulo 256.
        assert_eq!(sh_hashkey(0x0A00_0001, 0, 250), (39 + 250) % 256);
    }

    #[test]
    fn same_client_same_dest_and_port_only_with_sh_port() {
        let d = dests(&[1, 1, 1]);
        let c = Ipv4Addr::new(10, 0, 0, 1);
        let mut s = sh(&d, SchedFlags::default());
        // Bucket 39 holds dest 39 % 3 = 0; the port is ignored without sh-port.
        for port in [1000, 2000, 80] {
            assert_eq!(s.schedule(&d, &flow(c, port), 0), Some(0));
        }
        let mut s = sh(&d, PORT);
        // Bucket 0xB6 = 182 holds dest 182 % 3 = 2.
        assert_eq!(s.schedule(&d, &flow(c, 80), 0), Some(2));
        assert_eq!(s.schedule(&d, &flow(c, 80), 0), Some(2));
        // ICMP has no ports: port 0 even with sh-port.
        let mut icmp = flow(c, 80);
        icmp.proto = 1;
        assert_eq!(s.schedule(&d, &icmp, 0), Some(0));
    }

    #[test]
    fn unavailable_dest_without_fallback_gives_none() {
        let mut d = dests(&[1, 1, 1]);
        let c = Ipv4Addr::new(10, 0, 0, 1); // bucket 39 -> dest 0
        d[0].overloaded = true;
        let mut s = sh(&d, SchedFlags::default());
        assert_eq!(s.schedule(&d, &flow(c, 1), 0), None);
        d[0].overloaded = false;
        d[0].weight = 0; // live weight 0 (the table still has it, as in the kernel until reassign)
        assert_eq!(s.schedule(&d, &flow(c, 1), 0), None);
    }

    #[test]
    fn fallback_probes_from_twice_the_hash() {
        let mut d = dests(&[1, 1, 1]);
        let c = Ipv4Addr::new(10, 0, 0, 1); // ihash = 39 -> dest 0
        d[0].overloaded = true;
        let mut s = sh(&d, FALLBACK);
        // Probe k looks at bucket (39 + (39 + k) % 256) % 256 = 78 + k: bucket 78 holds dest 0,
        // bucket 79 holds dest 1.
        assert_eq!(s.schedule(&d, &flow(c, 1), 0), Some(1));
        d[1].overloaded = true; // 79 -> 1 (unavailable), 80 -> dest 2
        assert_eq!(s.schedule(&d, &flow(c, 1), 0), Some(2));
        d[2].weight = 0;
        assert_eq!(s.schedule(&d, &flow(c, 1), 0), None);
        // An available primary is returned directly with fallback too.
        d[0].overloaded = false;
        assert_eq!(s.schedule(&d, &flow(c, 1), 0), Some(0));
    }

    #[test]
    fn none_on_empty_and_shorter_list() {
        let mut s = sh(&[], FALLBACK);
        let f = flow(Ipv4Addr::new(1, 2, 3, 4), 5);
        assert_eq!(s.schedule(&[], &f, 0), None);
        let d = dests(&[1, 1, 1]);
        let mut s = sh(&d, SchedFlags::default());
        // Bucket 39 holds dest 0; with one dest left every in-range pick is index 0.
        let c = Ipv4Addr::new(10, 0, 0, 1);
        assert_eq!(s.schedule(&d[..1], &flow(c, 1), 0), Some(0));
        assert_eq!(s.schedule(&[], &flow(c, 1), 0), None);
    }
}
