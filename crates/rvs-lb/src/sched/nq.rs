//! Never queue (ip_vs_nq.c): the first available dest with no active connection; otherwise the
//! sed choice.

use super::common::ratio_gt;
use super::sed::sed_overhead;
use super::{DestView, Flow, SchedFlags, Scheduler};
use crate::Time;

/// Never queue: stateless.
#[derive(Debug, Clone, Default)]
pub struct Nq;

impl Nq {
    pub fn new() -> Nq {
        Nq
    }
}

impl Scheduler for Nq {
    fn update(&mut self, _dests: &[DestView], _flags: SchedFlags) {}

    fn schedule(&mut self, dests: &[DestView], _flow: &Flow, _now: Time) -> Option<usize> {
        let mut least: Option<(usize, u64, u32)> = None;
        for (i, d) in dests.iter().enumerate() {
            if !d.available() {
                continue;
            }
            // An idle server is returned at once.
            if d.activeconns == 0 {
                return Some(i);
            }
            let doh = sed_overhead(d);
            if least.map_or(true, |(_, loh, lw)| ratio_gt(loh, lw, doh, d.weight)) {
                least = Some((i, doh, d.weight));
            }
        }
        least.map(|(i, _, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::common::test_util::{any_flow, dests};

    #[test]
    fn first_idle_wins() {
        let mut d = dests(&[5, 1, 1]);
        d[0].activeconns = 2;
        d[1].inactconns = 900; // inactive connections do not make a server busy
        let mut s = Nq::new();
        s.update(&d, SchedFlags::default());
        assert_eq!(s.schedule(&d, &any_flow(), 0), Some(1));
    }

    #[test]
    fn all_busy_falls_back_to_sed() {
        let mut d = dests(&[5, 1, 2]);
        d[0].activeconns = 9; // 10/5 = 2
        d[1].activeconns = 1; // 2/1 = 2
        d[2].activeconns = 2; // 3/2 = 1.5
        let mut s = Nq::new();
        assert_eq!(s.schedule(&d, &any_flow(), 0), Some(2));
        d[2].activeconns = 3; // 4/2 = 2: three-way tie, the first wins
        assert_eq!(s.schedule(&d, &any_flow(), 0), Some(0));
    }

    #[test]
    fn idle_but_unavailable_skipped() {
        let mut d = dests(&[0, 1, 1]);
        d[1].overloaded = true;
        d[2].activeconns = 3;
        let mut s = Nq::new();
        assert_eq!(s.schedule(&d, &any_flow(), 0), Some(2));
        d[2].overloaded = true;
        assert_eq!(s.schedule(&d, &any_flow(), 0), None);
        assert_eq!(s.schedule(&[], &any_flow(), 0), None);
    }
}
