//! Weighted least-connection (ip_vs_wlc.c), the default scheduler: the smallest
//! `overhead / weight`, compared as `loh * w_d > doh * w_least` so the first in list order wins
//! ties.

use super::common::least_weighted;
use super::{DestView, Flow, SchedFlags, Scheduler};
use crate::Time;

/// Weighted least-connection: stateless.
#[derive(Debug, Clone, Default)]
pub struct Wlc;

impl Wlc {
    pub fn new() -> Wlc {
        Wlc
    }
}

impl Scheduler for Wlc {
    fn update(&mut self, _dests: &[DestView], _flags: SchedFlags) {}

    fn schedule(&mut self, dests: &[DestView], _flow: &Flow, _now: Time) -> Option<usize> {
        least_weighted(dests, DestView::overhead)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::common::test_util::{any_flow, dests};

    #[test]
    fn least_overhead_per_weight() {
        let mut d = dests(&[1, 3]);
        d[0].activeconns = 1; // 256 / 1
        d[1].activeconns = 2; // 512 / 3
        let mut s = Wlc::new();
        s.update(&d, SchedFlags::default());
        assert_eq!(s.schedule(&d, &any_flow(), 0), Some(1));
        // Inactive connections count too: 256/1 against (512+300)/3 = 270.7.
        d[1].inactconns = 300;
        assert_eq!(s.schedule(&d, &any_flow(), 0), Some(0));
    }

    #[test]
    fn ties_go_to_the_first() {
        let mut d = dests(&[1, 2, 2]);
        d[0].activeconns = 1; // 256/1
        d[1].activeconns = 2; // 512/2
        d[2].activeconns = 2;
        let mut s = Wlc::new();
        assert_eq!(s.schedule(&d, &any_flow(), 0), Some(0));
        let d = dests(&[1, 1, 1]);
        assert_eq!(s.schedule(&d, &any_flow(), 0), Some(0));
    }

    #[test]
    fn weight_zero_and_overloaded_never_win() {
        let mut d = dests(&[0, 1, 5]);
        d[1].activeconns = 10;
        d[2].overloaded = true;
        let mut s = Wlc::new();
        // A is idle but quiesced, C is idle but overloaded: B takes it despite its load.
        assert_eq!(s.schedule(&d, &any_flow(), 0), Some(1));
        d[1].overloaded = true;
        assert_eq!(s.schedule(&d, &any_flow(), 0), None);
        assert_eq!(s.schedule(&[], &any_flow(), 0), None);
    }

    #[test]
    fn huge_counts_do_not_overflow() {
        let mut d = dests(&[65535, 65535]);
        d[0].activeconns = u32::MAX;
        d[0].inactconns = u32::MAX;
        d[1].activeconns = u32::MAX;
        d[1].inactconns = u32::MAX - 1;
        let mut s = Wlc::new();
        assert_eq!(s.schedule(&d, &any_flow(), 0), Some(1));
    }
}
