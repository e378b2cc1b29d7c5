//! Power of two choices (ip_vs_twos.c): two weighted-random picks among the available dests;
//! the second replaces the first only when strictly less loaded per weight
//! (`w2 * oh1 > w1 * oh2`, with the wlc overhead).
//!
//! As in the kernel, each random value is drawn from `[0, total_weight]` (inclusive) and the pick
//! is the first dest whose running weight sum reaches it, which favours the first available dest
//! by one unit. Randomness comes from a per-instance xorshift64* generator seeded at construction,
//! so each worker's sequence is reproducible from its seed (the kernel uses get_random_u32_below).

use super::{DestView, Flow, SchedFlags, Scheduler};
use crate::Time;

/// Power of two choices: the PRNG state.
#[derive(Debug, Clone)]
pub struct Twos {
    state: u64,
}

impl Twos {
    pub fn new(seed: u64) -> Twos {
        // splitmix64 spreads close seeds apart and never yields the all-zero xorshift state for
        // the seeds worth worrying about; a zero result is replaced anyway.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Twos {
            state: if z == 0 { 0x2545_F491_4F6C_DD1D } else { z },
        }
    }

    /// xorshift64*.
    #[inline]
    fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-enough value in `[0, n)` (multiply-shift; n > 0).
    #[inline]
    fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

impl Scheduler for Twos {
    fn update(&mut self, _dests: &[DestView], _flags: SchedFlags) {}

    fn schedule(&mut self, dests: &[DestView], _flow: &Flow, _now: Time) -> Option<usize> {
        let total: u64 = dests
            .iter()
            .filter(|d| d.available())
            .map(|d| d.weight as u64)
            .sum();
        if total == 0 {
            return None;
        }
        // Inclusive of total_weight, like the kernel's `get_random_u32_below(total + 1)`.
        let mut r1 = self.below(total + 1) as i128;
        let mut r2 = self.below(total + 1) as i128;
        let mut c1: Option<(usize, u64, u32)> = None;
        let mut c2: Option<(usize, u64, u32)> = None;
        for (i, d) in dests.iter().enumerate() {
            if !d.available() {
                continue;
            }
            r1 -= d.weight as i128;
            r2 -= d.weight as i128;
            if r1 <= 0 && c1.is_none() {
                c1 = Some((i, d.overhead(), d.weight));
            }
            if r2 <= 0 && c2.is_none() {
                c2 = Some((i, d.overhead(), d.weight));
            }
            if c1.is_some() && c2.is_some() {
                break;
            }
        }
        match (c1, c2) {
            (Some((i1, oh1, w1)), Some((i2, oh2, w2))) => {
                if (w2 as u128) * (oh1 as u128) > (w1 as u128) * (oh2 as u128) {
                    Some(i2)
                } else {
                    Some(i1)
                }
            }
            (Some((i, _, _)), None) | (None, Some((i, _, _))) => Some(i),
            (None, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::common::test_util::{any_flow, dests};

    #[test]
    fn never_picks_unavailable() {
        let mut d = dests(&[0, 3, 0, 2, 5]);
        d[4].overloaded = true;
        let mut s = Twos::new(7);
        let mut seen = [0usize; 5];
        for _ in 0..2000 {
            let i = s.schedule(&d, &any_flow(), 0);
            assert!(i == Some(1) || i == Some(3), "{i:?}");
            seen[i.unwrap_or(0)] += 1;
        }
        assert!(seen[1] > 0 && seen[3] > 0);
    }

    #[test]
    fn none_when_nothing_available() {
        let mut s = Twos::new(1);
        assert_eq!(s.schedule(&[], &any_flow(), 0), None);
        let mut d = dests(&[0, 4]);
        d[1].overloaded = true;
        assert_eq!(s.schedule(&d, &any_flow(), 0), None);
    }

    #[test]
    fn idle_servers_split_by_weight() {
        // With no load the first choice always stands, so picks follow the weights (the first
        // dest gets one extra unit: 2/7, 5/7 of the [0, 6] range).
        let d = dests(&[1, 5]);
        let mut s = Twos::new(42);
        let mut seen = [0u32; 2];
        for _ in 0..7000 {
            seen[s.schedule(&d, &any_flow(), 0).unwrap_or(0)] += 1;
        }
        assert!((1700..2300).contains(&seen[0]), "{seen:?}");
    }

    #[test]
    fn lighter_of_the_two_wins() {
        // B carries all the load: whenever the two choices differ, A wins, so A is picked far
        // more often than its 2/3 share of single random picks.
        let mut d = dests(&[1, 1]);
        d[1].activeconns = 10;
        let mut s = Twos::new(3);
        let mut a = 0u32;
        for _ in 0..3000 {
            if s.schedule(&d, &any_flow(), 0) == Some(0) {
                a += 1;
            }
        }
        // P(A) = 1 - P(both picks are B) = 1 - (1/3)^2 = 8/9 ~ 2667 of 3000.
        assert!((2550..2780).contains(&a), "{a}");
    }

    #[test]
    fn same_seed_same_sequence() {
        let d = dests(&[1, 2, 3, 4]);
        let mut s1 = Twos::new(99);
        let mut s2 = Twos::new(99);
        let a: Vec<_> = (0..50).map(|_| s1.schedule(&d, &any_flow(), 0)).collect();
        let b: Vec<_> = (0..50).map(|_| s2.schedule(&d, &any_flow(), 0)).collect();
        assert_eq!(a, b);
        let mut s3 = Twos::new(100);
        let c: Vec<_> = (0..50).map(|_| s3.schedule(&d, &any_flow(), 0)).collect();
        assert_ne!(a, c);
    }
}
