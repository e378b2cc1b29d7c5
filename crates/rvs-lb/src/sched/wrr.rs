//! Interleaved weighted round-robin (ip_vs_wrr.c).
//!
//! `di` is the gcd of the positive weights, `mw = max_weight - (di - 1)`; `cw` starts at `mw` and
//! drops by `di` after every full pass. Each pick is the next dest (after the last pick) that is not
//! OVERLOAD and has `weight >= cw`. Weights are read live at pick time; `di` and `mw` are computed
//! at update time, like the kernel computes them when a dest is added, edited or removed.

use super::{DestView, Flow, SchedFlags, Scheduler};
use crate::config::WeightSummary;
use crate::Time;

/// Weighted round-robin state (the kernel's `struct ip_vs_wrr_mark`).
#[derive(Debug, Clone, Default)]
pub struct Wrr {
    /// Last picked dest; `None` is the list head.
    cl: Option<usize>,
    /// Current weight threshold.
    cw: i64,
    /// Maximum weight minus (di - 1).
    mw: i64,
    /// Gcd of the positive weights (1 when there are none).
    di: i64,
}

impl Wrr {
    pub fn new() -> Wrr {
        // init_service on an empty service: di = 1, mw = 0, cw = 0.
        Wrr {
            di: 1,
            ..Wrr::default()
        }
    }

    /// `ip_vs_wrr_dest_changed()`.
    fn dest_changed(&mut self, dests: &[DestView]) {
        let w = WeightSummary::of_weights(dests.iter().map(|d| d.weight));
        self.changed_to(i64::from(w.gcd), i64::from(w.max));
    }

    /// The list changed; its positive weights' gcd is now `di` and its largest weight `max`.
    fn changed_to(&mut self, di: i64, max: i64) {
        self.cl = None;
        self.di = di;
        self.mw = max - (self.di - 1);
        if self.cw > self.mw || self.cw == 0 {
            self.cw = self.mw;
        } else if self.di > 1 {
            self.cw = (self.cw / self.di) * self.di + 1;
        }
    }

    #[inline]
    fn eligible(d: &DestView, cw: i64) -> bool {
        !d.overloaded && d.weight as i64 >= cw
    }
}

impl Scheduler for Wrr {
    /// Every update is one kernel dest-change event (`add_dest`/`del_dest`/`upd_dest`): the
    /// position goes back to the head and cw is adjusted, so call it only when the service's
    /// destinations changed.
    fn update(&mut self, dests: &[DestView], _flags: SchedFlags) {
        self.dest_changed(dests);
    }

    /// The kernel adjusts cw at every change, so a batch (an atomic restore) is replayed event
    /// by event: `ipvsadm -R` of the same lines leaves the kernel's wrr where this leaves rvs's.
    fn update_after(&mut self, dests: &[DestView], flags: SchedFlags, changes: &[WeightSummary]) {
        if let Some((_, earlier)) = changes.split_last() {
            for c in earlier {
                self.changed_to(i64::from(c.gcd), i64::from(c.max));
            }
        }
        self.update(dests, flags);
    }

    fn schedule(&mut self, dests: &[DestView], _flow: &Flow, _now: Time) -> Option<usize> {
        let n = dests.len();
        if self.mw <= 0 || self.di <= 0 {
            return None;
        }
        // A position past the end (list shorter than at the last update) counts as the head.
        let last = self.cl.filter(|&c| c < n);

        // First, partial pass: the dests after the last pick, at the current cw.
        let start = last.map_or(0, |c| c + 1);
        if let Some(i) = (start..n).find(|&i| Self::eligible(&dests[i], self.cw)) {
            self.cl = Some(i);
            return Some(i);
        }

        // The remaining passes start at the head. Precompute the best weight a full pass could
        // match, so passes that cannot find anything are skipped arithmetically instead of being
        // scanned (the kernel scans them; the outcome and the final state are the same).
        let best = |upto: usize| {
            dests[..upto]
                .iter()
                .filter(|d| !d.overloaded)
                .map(|d| d.weight as i64)
                .max()
                .unwrap_or(0)
        };
        let best_all = best(n);
        let best_to_last = last.map_or(best_all, |c| best(c + 1));

        let mut stop: Option<usize> = None;
        let mut last_pass = false;
        let mut restarted = false;
        loop {
            // One decrement of cw between passes, exactly as the kernel does it.
            self.cw -= self.di;
            if self.cw <= 0 {
                self.cw = self.mw;
                if last_pass || last.is_none() {
                    self.cl = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = self.cw <= self.di;
            if last_pass && restarted && last.is_some() {
                stop = last;
            }

            // Full pass from the head, ending early at `stop` (checked after the dest itself).
            let reach = if stop.is_some() {
                best_to_last
            } else {
                best_all
            };
            if reach >= self.cw {
                let end = stop.map_or(n, |s| s + 1);
                if let Some(i) = (0..end).find(|&i| Self::eligible(&dests[i], self.cw)) {
                    self.cl = Some(i);
                    return Some(i);
                }
            }
            if let Some(s) = stop {
                self.cl = Some(s);
                return None;
            }
            // Nothing at this cw: skip straight to the next cw that can match, as long as no
            // boundary the kernel reacts to (cw <= di, cw <= 0) is crossed on the way.
            if self.cw > self.di {
                let target = reach.max(self.di);
                if self.cw - self.di > target {
                    let steps = (self.cw - target + self.di - 1) / self.di;
                    // Leave one step for the loop head so its checks run on the final value.
                    self.cw -= (steps - 1) * self.di;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::common::test_util::{any_flow, dests};

    fn run(s: &mut Wrr, d: &[DestView], n: usize) -> Vec<Option<usize>> {
        (0..n).map(|_| s.schedule(d, &any_flow(), 0)).collect()
    }

    fn fresh(d: &[DestView]) -> Wrr {
        let mut s = Wrr::new();
        s.update(d, SchedFlags::default());
        s
    }

    #[test]
    fn weights_1_2_3_interleave() {
        // A=1, B=2, C=3: di=1, mw=3. cw=3: C; cw=2: B, C; cw=1: A, B, C; then cw wraps to 3.
        let d = dests(&[1, 2, 3]);
        let mut s = fresh(&d);
        let (a, b, c) = (Some(0), Some(1), Some(2));
        assert_eq!(run(&mut s, &d, 12), [c, b, c, a, b, c, c, b, c, a, b, c]);
    }

    #[test]
    fn weights_4_3_2_interleave() {
        // cw=4: A; cw=3: A, B; cw=2: A, B, C; cw=1: A, B, C.
        let d = dests(&[4, 3, 2]);
        let mut s = fresh(&d);
        let (a, b, c) = (Some(0), Some(1), Some(2));
        assert_eq!(run(&mut s, &d, 9), [a, a, b, a, b, c, a, b, c]);
    }

    #[test]
    fn weights_with_common_divisor() {
        // 2 and 4: di=2, mw=3. cw=3: B; cw=1: A, B; cw wraps to 3: B ...
        let d = dests(&[2, 4]);
        let mut s = fresh(&d);
        assert_eq!(
            run(&mut s, &d, 6),
            [Some(1), Some(0), Some(1), Some(1), Some(0), Some(1)]
        );
    }

    #[test]
    fn weights_1_and_2_over_300_picks() {
        let d = dests(&[1, 2]);
        let mut s = fresh(&d);
        let mut count = [0usize; 2];
        for _ in 0..300 {
            let i = s.schedule(&d, &any_flow(), 0);
            count[i.unwrap_or(9)] += 1;
        }
        assert_eq!(count, [100, 200]);
    }

    #[test]
    fn skips_zero_and_overloaded() {
        // C (weight 3) is overloaded and D has weight 0: A and B share 1:2.
        let mut d = dests(&[1, 2, 3, 0]);
        d[2].overloaded = true;
        let mut s = fresh(&d);
        assert_eq!(
            run(&mut s, &d, 6),
            [Some(1), Some(0), Some(1), Some(1), Some(0), Some(1)]
        );
    }

    #[test]
    fn none_when_empty_or_all_unavailable() {
        let mut s = fresh(&[]);
        assert_eq!(s.schedule(&[], &any_flow(), 0), None);
        let d = dests(&[0, 0]);
        let mut s = fresh(&d);
        assert_eq!(run(&mut s, &d, 2), [None, None]);
        // All overloaded with a large weight range: terminates (no 65535 scanned passes needed)
        // and keeps returning None.
        let mut d = dests(&[65535, 1, 7]);
        for x in &mut d {
            x.overloaded = true;
        }
        let mut s = fresh(&d);
        assert_eq!(run(&mut s, &d, 3), [None, None, None]);
        // Once one comes back the rotation resumes.
        d[1].overloaded = false;
        assert_eq!(run(&mut s, &d, 2), [Some(1), Some(1)]);
    }

    #[test]
    fn heavy_overloaded_light_available() {
        // Only the weight-1 dest can take connections: found at cw=1 after skipping 65534 passes.
        let mut d = dests(&[65535, 1]);
        d[0].overloaded = true;
        let mut s = fresh(&d);
        assert_eq!(run(&mut s, &d, 3), [Some(1), Some(1), Some(1)]);
        d[0].overloaded = false;
        // cw restarts at mw = 65535: the big one takes the next 65534 picks of this cycle.
        assert_eq!(run(&mut s, &d, 2), [Some(0), Some(0)]);
    }

    #[test]
    fn update_resets_position_and_keeps_cw() {
        let d = dests(&[1, 2, 3]);
        let mut s = fresh(&d);
        // cw is now 2, position on B.
        assert_eq!(run(&mut s, &d, 2), [Some(2), Some(1)]);
        // Without an update the next pick would be C; after one (even re-applying the same
        // weights, like `ipvsadm -e` does) the scan restarts at the head with cw = 2: B.
        s.update(&d, SchedFlags::default());
        assert_eq!(run(&mut s, &d, 2), [Some(1), Some(2)]);

        let mut s = fresh(&d);
        assert_eq!(run(&mut s, &d, 2), [Some(2), Some(1)]);
        let d2 = dests(&[2, 2, 3]); // A edited: position back to the head, cw kept at 2
        s.update(&d2, SchedFlags::default());
        assert_eq!(run(&mut s, &d2, 3), [Some(0), Some(1), Some(2)]);
    }

    #[test]
    fn update_adjusts_cw_like_kernel() {
        // cw above the new mw is reset to mw.
        let d = dests(&[5, 1]);
        let mut s = fresh(&d);
        assert_eq!(run(&mut s, &d, 1), [Some(0)]); // cw = 5
        let d2 = dests(&[2, 1]);
        s.update(&d2, SchedFlags::default()); // mw = 2 < cw: cw = 2
        assert_eq!(run(&mut s, &d2, 3), [Some(0), Some(0), Some(1)]);
        // With di > 1, cw is snapped to a multiple of di plus 1.
        let d = dests(&[5, 1]);
        let mut s = fresh(&d);
        assert_eq!(run(&mut s, &d, 3), [Some(0), Some(0), Some(0)]); // cw = 3
        let d3 = dests(&[4, 2]); // di = 2, mw = 3, cw = (3/2)*2+1 = 3
        s.update(&d3, SchedFlags::default());
        assert_eq!(run(&mut s, &d3, 3), [Some(0), Some(0), Some(1)]);
    }

    /// The kernel's loop transcribed without the pass skipping, as an oracle.
    fn naive(s: &mut Wrr, dests: &[DestView]) -> Option<usize> {
        if s.mw == 0 {
            return None;
        }
        let last = s.cl;
        let mut pos = last;
        let (mut stop, mut last_pass, mut restarted) = (None, false, false);
        loop {
            for (i, d) in dests.iter().enumerate().skip(pos.map_or(0, |p| p + 1)) {
                if Wrr::eligible(d, s.cw) {
                    s.cl = Some(i);
                    return Some(i);
                }
                if stop == Some(i) {
                    s.cl = Some(i);
                    return None;
                }
            }
            pos = None;
            s.cw -= s.di;
            if s.cw <= 0 {
                s.cw = s.mw;
                if last_pass || last.is_none() {
                    s.cl = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = s.cw <= s.di;
            if last_pass && restarted && last.is_some() {
                stop = last;
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 300, ..proptest::prelude::ProptestConfig::default()
        })]

        #[test]
        fn matches_the_kernel_loop(
            weights in proptest::collection::vec(0u32..40, 1..6),
            toggles in proptest::collection::vec((0usize..6, proptest::bool::ANY), 40),
            reweight in proptest::collection::vec(0u32..40, 1..6),
        ) {
            let mut d = dests(&weights);
            let mut fast = fresh(&d);
            let mut slow = fast.clone();
            for (k, &(i, ov)) in toggles.iter().enumerate() {
                if let Some(x) = d.get_mut(i) {
                    x.overloaded = ov;
                }
                if k == 20 {
                    // A configuration change half-way (list length may change too).
                    d = dests(&reweight);
                    fast.update(&d, SchedFlags::default());
                    slow.update(&d, SchedFlags::default());
                }
                let a = fast.schedule(&d, &any_flow(), 0);
                let b = naive(&mut slow, &d);
                proptest::prop_assert_eq!(a, b);
                proptest::prop_assert_eq!((fast.cl, fast.cw), (slow.cl, slow.cw));
            }
        }
    }

    #[test]
    fn shorter_list_than_update_is_safe() {
        let d = dests(&[1, 2, 3]);
        let mut s = fresh(&d);
        assert_eq!(run(&mut s, &d, 1), [Some(2)]);
        let short = dests(&[1]);
        for _ in 0..5 {
            assert_eq!(s.schedule(&short, &any_flow(), 0), Some(0));
        }
    }
}
