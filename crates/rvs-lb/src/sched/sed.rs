//! Shortest expected delay (ip_vs_sed.c): the smallest `(activeconns + 1) / weight`; inactive
//! connections are ignored. Same comparison and tie rule as wlc.

use super::common::least_weighted;
use super::{DestView, Flow, SchedFlags, Scheduler};
use crate::Time;

/// `ip_vs_sed_dest_overhead()`.
#[inline]
pub(crate) fn sed_overhead(d: &DestView) -> u64 {
    d.activeconns as u64 + 1
}

/// Shortest expected delay: stateless.
#[derive(Debug, Clone, Default)]
pub struct Sed;

impl Sed {
    pub fn new() -> Sed {
        Sed
    }
}

impl Scheduler for Sed {
    fn update(&mut self, _dests: &[DestView], _flags: SchedFlags) {}

    fn schedule(&mut self, dests: &[DestView], _flow: &Flow, _now: Time) -> Option<usize> {
        least_weighted(dests, sed_overhead)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::common::test_util::{any_flow, dests};

    #[test]
    fn expected_delay_counts_the_new_job() {
        // A: (0+1)/1 = 1, B: (1+1)/3 = 0.67: B even though A is idle (wlc would pick A).
        let mut d = dests(&[1, 3]);
        d[1].activeconns = 1;
        let mut s = Sed::new();
        s.update(&d, SchedFlags::default());
        assert_eq!(s.schedule(&d, &any_flow(), 0), Some(1));
        // B: (2+1)/3 = 1 ties with A: the first wins.
        d[1].activeconns = 2;
        assert_eq!(s.schedule(&d, &any_flow(), 0), Some(0));
    }

    #[test]
    fn inactive_connections_ignored() {
        let mut d = dests(&[1, 1]);
        d[0].inactconns = 1000;
        d[1].activeconns = 1;
        let mut s = Sed::new();
        assert_eq!(s.schedule(&d, &any_flow(), 0), Some(0));
    }

    #[test]
    fn unavailable_skipped() {
        let mut d = dests(&[0, 1, 1]);
        d[1].overloaded = true;
        d[2].activeconns = 50;
        let mut s = Sed::new();
        assert_eq!(s.schedule(&d, &any_flow(), 0), Some(2));
        d[2].weight = 0;
        assert_eq!(s.schedule(&d, &any_flow(), 0), None);
        assert_eq!(s.schedule(&[], &any_flow(), 0), None);
    }
}
