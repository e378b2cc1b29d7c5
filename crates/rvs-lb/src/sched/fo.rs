//! Weighted fail-over (ip_vs_fo.c): the available dest with the highest weight; the first in list
//! order wins ties.

use super::{DestView, Flow, SchedFlags, Scheduler};
use crate::Time;

/// Weighted fail-over: stateless.
#[derive(Debug, Clone, Default)]
pub struct Fo;

impl Fo {
    pub fn new() -> Fo {
        Fo
    }
}

impl Scheduler for Fo {
    fn update(&mut self, _dests: &[DestView], _flags: SchedFlags) {}

    fn schedule(&mut self, dests: &[DestView], _flow: &Flow, _now: Time) -> Option<usize> {
        let mut best: Option<usize> = None;
        let mut hw = 0u32;
        for (i, d) in dests.iter().enumerate() {
            // `weight > hw` with hw starting at 0 also excludes weight 0.
            if !d.overloaded && d.weight > hw {
                best = Some(i);
                hw = d.weight;
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::common::test_util::{any_flow, dests};

    #[test]
    fn highest_weight_first_wins_ties() {
        let mut d = dests(&[3, 5, 5, 2]);
        d[1].activeconns = 1000; // load is not considered
        let mut s = Fo::new();
        s.update(&d, SchedFlags::default());
        assert_eq!(s.schedule(&d, &any_flow(), 0), Some(1));
        d[1].overloaded = true;
        assert_eq!(s.schedule(&d, &any_flow(), 0), Some(2));
        d[2].weight = 0;
        assert_eq!(s.schedule(&d, &any_flow(), 0), Some(0));
    }

    #[test]
    fn none_when_nothing_available() {
        let mut d = dests(&[0, 4]);
        d[1].overloaded = true;
        let mut s = Fo::new();
        assert_eq!(s.schedule(&d, &any_flow(), 0), None);
        assert_eq!(s.schedule(&[], &any_flow(), 0), None);
    }
}
