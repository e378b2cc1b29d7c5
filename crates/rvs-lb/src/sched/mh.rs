//! Maglev hashing (ip_vs_mh.c).
//!
//! Every dest gets a preference list of the table's positions, `offset + k * skip (mod M)`, from
//! two keyed hashes of its address and port. The lookup table (M = 4093, the kernel's default
//! `CONFIG_IP_VS_MH_TAB_INDEX` 12) is filled in rounds: per round each dest in list order takes its
//! next free preferred position `turns` times, where `turns = (last_weight / gcd) >> rshift`
//! (at least 1 for a non-zero last_weight) and `rshift` keeps `max/gcd` within 6 bits. A client's
//! slot is `hash(caddr [+ cport with mh-port]) % M`.
//!
//! The table is built from **last_weight**: a dest set to weight 0 keeps its slots and is
//! unavailable, so its clients get no destination unless `mh-fallback` probes other slots.
//!
//! Hash: SipHash-1-3 of the 32-bit value `offset + port + addr` (little-endian bytes) with the
//! kernel's fixed keys, returning the low 32 bits of `v0^v1^v2^v3` — which is what the kernel's
//! `hsiphash()` computes on 64-bit machines, so tables should match the kernel's on x86-64
//! (not verified against a running kernel).

use super::common::{gcd, has_ports, NO_DEST};
use super::{DestView, Flow, SchedFlags, Scheduler};
use crate::Time;
use std::fmt;
use std::net::Ipv4Addr;

/// Lookup table size: `primes[CONFIG_IP_VS_MH_TAB_INDEX - 8]` with the default index 12.
pub const MH_TAB_SIZE: usize = 4093;
/// `IP_VS_MH_TAB_BITS` = `CONFIG_IP_VS_MH_TAB_INDEX / 2`: the weight resolution.
const MH_TAB_BITS: u32 = 6;
/// More dests than table slots is rejected by the kernel (EINVAL); the control plane must refuse
/// such a configuration.
pub const MH_MAX_DESTS: usize = MH_TAB_SIZE;

/// `generate_hash_secret()`: both words of each key are the same constant.
const HASH1: (u64, u64) = (2_654_435_761, 2_654_435_761);
const HASH2: (u64, u64) = (2_654_446_892, 2_654_446_892);

#[inline]
fn sipround(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13);
    v[1] ^= v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16);
    v[3] ^= v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21);
    v[3] ^= v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17);
    v[1] ^= v[2];
    v[2] = v[2].rotate_left(32);
}

/// SipHash-1-3 of a 4-byte message (the u32 in little-endian order), truncated to 32 bits.
#[inline]
pub(crate) fn siphash13_u32(m: u32, key: (u64, u64)) -> u32 {
    let mut v = [
        0x736f_6d65_7073_6575 ^ key.0,
        0x646f_7261_6e64_6f6d ^ key.1,
        0x6c79_6765_6e65_7261 ^ key.0,
        0x7465_6462_7974_6573 ^ key.1,
    ];
    // No full 8-byte block; the final block carries the length (4) in its top byte.
    let b = (4u64 << 56) | m as u64;
    v[3] ^= b;
    sipround(&mut v);
    v[0] ^= b;
    v[2] ^= 0xff;
    sipround(&mut v);
    sipround(&mut v);
    sipround(&mut v);
    (v[0] ^ v[1] ^ v[2] ^ v[3]) as u32
}

/// `ip_vs_mh_hashkey()` for IPv4.
#[inline]
fn mh_hashkey(addr: u32, port: u16, key: (u64, u64), offset: u32) -> u32 {
    siphash13_u32(offset.wrapping_add(port as u32).wrapping_add(addr), key)
}

/// Maglev hashing: the lookup table (dest indices) and the service flags.
#[derive(Clone)]
pub struct Mh {
    lookup: Vec<u32>,
    flags: SchedFlags,
    /// (addr, port, last_weight) the table was built from; an identical update is a no-op.
    built_from: Option<Vec<(Ipv4Addr, u16, u32)>>,
}

impl fmt::Debug for Mh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mh")
            .field("flags", &self.flags)
            .field("dests", &self.built_from.as_ref().map_or(0, Vec::len))
            .finish()
    }
}

impl Mh {
    pub fn new(flags: SchedFlags) -> Mh {
        Mh {
            lookup: vec![NO_DEST; MH_TAB_SIZE],
            flags,
            built_from: None,
        }
    }

    /// The dest index in each of the 4093 slots (`None` when no dest has a non-zero last_weight).
    pub fn slots(&self) -> impl Iterator<Item = Option<usize>> + '_ {
        self.lookup
            .iter()
            .map(|&b| (b != NO_DEST).then_some(b as usize))
    }

    /// `ip_vs_mh_reassign()`: permutation plus population.
    fn reassign(&mut self, dests: &[DestView]) {
        let m = MH_TAB_SIZE as u32;
        // More dests than slots: the kernel refuses; leave no stale indices behind.
        if dests.len() > MH_MAX_DESTS {
            self.lookup.fill(NO_DEST);
            return;
        }
        // ip_vs_mh_gcd_weight() / ip_vs_mh_shift_weight().
        let g = dests
            .iter()
            .filter(|d| d.last_weight > 0)
            .fold(0u64, |g, d| gcd(d.last_weight as u64, g));
        if g == 0 {
            self.lookup.fill(NO_DEST);
            return;
        }
        let max = dests
            .iter()
            .map(|d| d.last_weight as u64)
            .max()
            .unwrap_or(0);
        let mw = max / g;
        let fls = 64 - mw.leading_zeros();
        let rshift = fls.saturating_sub(MH_TAB_BITS);

        // ip_vs_mh_permutate().
        struct Setup {
            skip: u32,
            perm: u32,
            turns: u64,
        }
        let mut setup: Vec<Setup> = dests
            .iter()
            .map(|d| {
                let a = u32::from(d.addr);
                let offset = mh_hashkey(a, d.port, HASH1, 0) % m;
                let skip = mh_hashkey(a, d.port, HASH2, 0) % (m - 1) + 1;
                let lw = d.last_weight as u64;
                let t = (lw / g) >> rshift;
                let turns = if t > 0 { t } else { (lw != 0) as u64 };
                Setup {
                    skip,
                    perm: offset,
                    turns,
                }
            })
            .collect();

        // ip_vs_mh_populate(): rounds over the list; each dest takes `turns` slots in a row.
        let mut taken = vec![false; MH_TAB_SIZE];
        let mut n = 0usize;
        let mut dt_count = 0u64;
        'fill: while n < MH_TAB_SIZE {
            let mut di = 0usize;
            while let Some(ds) = setup.get_mut(di) {
                if ds.turns < 1 {
                    di += 1;
                    continue;
                }
                let mut c = ds.perm as usize;
                while taken.get(c).copied().unwrap_or(false) {
                    ds.perm += ds.skip;
                    if ds.perm >= m {
                        ds.perm -= m;
                    }
                    c = ds.perm as usize;
                }
                if let (Some(t), Some(l)) = (taken.get_mut(c), self.lookup.get_mut(c)) {
                    *t = true;
                    *l = di as u32;
                }
                n += 1;
                if n == MH_TAB_SIZE {
                    break 'fill;
                }
                dt_count += 1;
                if dt_count >= ds.turns {
                    dt_count = 0;
                    di += 1;
                }
            }
        }
    }

    #[inline]
    fn at<'a>(&self, dests: &'a [DestView], slot: u32) -> Option<(usize, &'a DestView)> {
        let i = *self.lookup.get(slot as usize)?;
        dests.get(i as usize).map(|d| (i as usize, d))
    }
}

impl Scheduler for Mh {
    fn update(&mut self, dests: &[DestView], flags: SchedFlags) {
        self.flags = flags;
        let now: Vec<(Ipv4Addr, u16, u32)> = dests
            .iter()
            .map(|d| (d.addr, d.port, d.last_weight))
            .collect();
        if self.built_from.as_ref() != Some(&now) {
            self.reassign(dests);
            self.built_from = Some(now);
        }
    }

    fn schedule(&mut self, dests: &[DestView], flow: &Flow, _now: Time) -> Option<usize> {
        let m = MH_TAB_SIZE as u32;
        let addr = u32::from(flow.caddr);
        let port = if self.flags.port() && has_ports(flow.proto) {
            flow.cport
        } else {
            0
        };
        let ihash = mh_hashkey(addr, port, HASH1, 0) % m;
        // An empty slot or an index past the list is the kernel's NULL.
        let (i, d) = self.at(dests, ihash)?;
        if d.available() {
            return Some(i);
        }
        if !self.flags.fallback() {
            return None;
        }
        for offset in 0..m {
            let roffset = (offset + ihash) % m;
            let hash = mh_hashkey(addr, port, HASH1, roffset) % m;
            let (i, d) = self.at(dests, hash)?;
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
    use crate::sched::common::test_util::{dest, dests, flow};

    const FALLBACK: SchedFlags = SchedFlags(SchedFlags::SCHED1);
    const PORT: SchedFlags = SchedFlags(SchedFlags::SCHED2);

    fn mh(d: &[DestView], flags: SchedFlags) -> Mh {
        let mut s = Mh::new(flags);
        s.update(d, flags);
        s
    }

    fn counts(s: &Mh, n: usize) -> Vec<usize> {
        let mut c = vec![0usize; n];
        for i in s.slots().flatten() {
            c[i] += 1;
        }
        c
    }

    fn client(k: u32) -> Ipv4Addr {
        Ipv4Addr::from(0x6400_0000u32.wrapping_add(k.wrapping_mul(2_654_435_761)))
    }

    #[test]
    fn siphash13_reference_values() {
        // SipHash-1-3 of the 4 little-endian bytes, low 32 bits. The zero-key values equal Rust
        // std's SipHasher13 (DefaultHasher::new(), keys 0/0: 0x182e2c74c37b7090 and
        // 0x15deddea3d667eda); the keyed one was computed with an independent Python SipHash-1-3.
        assert_eq!(siphash13_u32(1, (0, 0)), 0xc37b_7090);
        assert_eq!(siphash13_u32(0x0A00_0001, (0, 0)), 0x3d66_7eda);
        assert_eq!(siphash13_u32(0x0A00_0001, HASH1), 0x0308_0ce4);
    }

    #[test]
    fn weights_are_exact_per_round() {
        // Turns 1, 2, 3: 682 full rounds of 6 slots, then one more slot for the first dest.
        let s = mh(&dests(&[1, 2, 3]), SchedFlags::default());
        assert_eq!(counts(&s, 3), [683, 1364, 2046]);
        // Equal weights with a common divisor behave as weight 1 each: 4093 = 3 * 1364 + 1.
        let s = mh(&dests(&[4, 4, 4]), SchedFlags::default());
        assert_eq!(counts(&s, 3), [1365, 1364, 1364]);
        // Large weights are shifted down to 6 bits of resolution: 1000/1 has 10 bits, so
        // rshift = 4: turns 62 and 1 (63 per round, 64 full rounds = 4032, then 61 more).
        let s = mh(&dests(&[1000, 1]), SchedFlags::default());
        assert_eq!(counts(&s, 2), [64 * 62 + 61, 64]);
    }

    #[test]
    fn uses_last_weight_and_ignores_never_weighted() {
        let mut d = dests(&[1, 1, 1]);
        d[1].weight = 0; // quiesced: keeps last_weight 1 and its slots
        d[2].weight = 0;
        d[2].last_weight = 0; // added with weight 0: no slots
        let s = mh(&d, SchedFlags::default());
        assert_eq!(counts(&s, 3), [2047, 2046, 0]);
        // No dest with a last_weight: an empty table.
        let mut z = dests(&[0, 0]);
        z[0].last_weight = 0;
        z[1].last_weight = 0;
        let mut s = mh(&z, SchedFlags::default());
        assert!(s.slots().all(|x| x.is_none()));
        assert_eq!(s.schedule(&z, &flow(client(1), 1), 0), None);
    }

    #[test]
    fn quiesced_dest_gives_none_without_fallback() {
        let mut d = dests(&[1, 1, 1]);
        let s0 = mh(&d, SchedFlags::default());
        d[1].weight = 0;
        let mut s = mh(&d, SchedFlags::default());
        let mut fb = mh(&d, FALLBACK);
        let (mut none, mut moved) = (0, 0);
        for k in 0..3000 {
            let f = flow(client(k), 1);
            let slot = mh_hashkey(u32::from(f.caddr), 0, HASH1, 0) % MH_TAB_SIZE as u32;
            let owner = s0.slots().nth(slot as usize).flatten();
            match s.schedule(&d, &f, 0) {
                None => {
                    none += 1;
                    assert_eq!(owner, Some(1));
                    // With fallback the client goes to one of the others.
                    let alt = fb.schedule(&d, &f, 0);
                    assert!(alt == Some(0) || alt == Some(2), "{alt:?}");
                    moved += 1;
                }
                Some(i) => {
                    assert_eq!(Some(i), owner);
                    assert_eq!(fb.schedule(&d, &f, 0), Some(i));
                }
            }
        }
        // About a third of the clients were on the quiesced dest.
        assert!((800..1200).contains(&none), "{none}");
        assert_eq!(moved, none);
        // Everything unavailable: None even with fallback (after a full probe of the table).
        let mut all = d.clone();
        for x in &mut all {
            x.overloaded = true;
        }
        assert_eq!(fb.schedule(&all, &flow(client(5), 1), 0), None);
    }

    #[test]
    fn removing_one_of_n_remaps_about_one_nth() {
        const N: u8 = 10;
        let d: Vec<DestView> = (0..N).map(|i| dest(i, 1)).collect();
        let mut before = mh(&d, SchedFlags::default());
        let mut d2 = d.clone();
        d2.remove(4);
        let mut after = mh(&d2, SchedFlags::default());
        let keys = 20_000u32;
        let (mut on_removed, mut disturbed) = (0u32, 0u32);
        for k in 0..keys {
            let f = flow(client(k), 1);
            let a = before.schedule(&d, &f, 0).map(|i| d[i].addr);
            let b = after.schedule(&d2, &f, 0).map(|i| d2[i].addr);
            assert!(b.is_some());
            if a == Some(d[4].addr) {
                on_removed += 1;
            } else if a != b {
                disturbed += 1;
            }
        }
        // ~1/N of the keys were on the removed dest and must move; Maglev moves few others.
        assert!((1600..2400).contains(&on_removed), "{on_removed}");
        assert!(
            disturbed < keys / 50,
            "{disturbed} of {keys} keys moved needlessly"
        );
    }

    #[test]
    fn stable_and_port_sensitive_only_with_mh_port() {
        let d = dests(&[1, 1, 1, 1, 1, 1, 1, 1]);
        let mut s = mh(&d, SchedFlags::default());
        let c = client(42);
        let first = s.schedule(&d, &flow(c, 1), 0);
        assert!(first.is_some());
        for p in [2, 3, 80, 443, 65535] {
            assert_eq!(s.schedule(&d, &flow(c, p), 0), first);
        }
        let mut sp = mh(&d, PORT);
        let picks: std::collections::HashSet<Option<usize>> = (0..64u16)
            .map(|p| sp.schedule(&d, &flow(c, 1000 + p), 0))
            .collect();
        assert!(picks.len() > 1, "mh-port must spread one client's ports");
        // Same port, same answer.
        assert_eq!(
            sp.schedule(&d, &flow(c, 1000), 0),
            sp.schedule(&d, &flow(c, 1000), 0)
        );
    }

    #[test]
    fn too_many_dests_or_shorter_list_is_safe() {
        let big: Vec<DestView> = (0..(MH_MAX_DESTS as u32 + 1))
            .map(|i| DestView {
                addr: Ipv4Addr::from(0x0A00_0000 + i),
                ..dest(0, 1)
            })
            .collect();
        let mut s = mh(&big, SchedFlags::default());
        assert_eq!(s.schedule(&big, &flow(client(1), 1), 0), None);
        let d = dests(&[1, 1, 1]);
        let mut s = mh(&d, FALLBACK);
        for k in 0..200 {
            let r = s.schedule(&d[..1], &flow(client(k), 1), 0);
            assert!(r.is_none() || r == Some(0));
        }
        assert_eq!(s.schedule(&[], &flow(client(1), 1), 0), None);
    }
}
