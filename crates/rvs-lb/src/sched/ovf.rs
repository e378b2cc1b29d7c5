//! Overflow-connection (ip_vs_ovf.c): the highest-weight dest that is not OVERLOAD, has
//! weight > 0 and has no more active connections than its weight; the first wins ties. Only
//! active connections count, which is why the kernel warns it may not suit UDP.

use super::{DestView, Flow, SchedFlags, Scheduler};
use crate::Time;

/// Overflow-connection: stateless.
#[derive(Debug, Clone, Default)]
pub struct Ovf;

impl Ovf {
    pub fn new() -> Ovf {
        Ovf
    }
}

impl Scheduler for Ovf {
    fn update(&mut self, _dests: &[DestView], _flags: SchedFlags) {}

    fn schedule(&mut self, dests: &[DestView], _flow: &Flow, _now: Time) -> Option<usize> {
        let mut best: Option<(usize, u32)> = None;
        for (i, d) in dests.iter().enumerate() {
            let w = d.weight;
            if d.overloaded || d.activeconns > w || w == 0 {
                continue;
            }
            if best.map_or(true, |(_, hw)| w > hw) {
                best = Some((i, w));
            }
        }
        best.map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::common::test_util::{any_flow, dests};

    #[test]
    fn fills_highest_weight_then_overflows() {
        let mut d = dests(&[2, 3, 3]);
        let mut s = Ovf::new();
        s.update(&d, SchedFlags::default());
        assert_eq!(s.schedule(&d, &any_flow(), 0), Some(1));
        // activeconns == weight still qualifies ("> weight" is the cut-off).
        d[1].activeconns = 3;
        assert_eq!(s.schedule(&d, &any_flow(), 0), Some(1));
        d[1].activeconns = 4;
        assert_eq!(s.schedule(&d, &any_flow(), 0), Some(2));
        d[2].activeconns = 4;
        d[2].inactconns = 0;
        assert_eq!(s.schedule(&d, &any_flow(), 0), Some(0));
        d[0].activeconns = 3;
        assert_eq!(s.schedule(&d, &any_flow(), 0), None);
    }

    #[test]
    fn inactive_ignored_and_unavailable_skipped() {
        let mut d = dests(&[0, 1, 9]);
        d[1].inactconns = 50_000;
        d[2].overloaded = true;
        let mut s = Ovf::new();
        assert_eq!(s.schedule(&d, &any_flow(), 0), Some(1));
        d[1].weight = 0;
        assert_eq!(s.schedule(&d, &any_flow(), 0), None);
        assert_eq!(s.schedule(&[], &any_flow(), 0), None);
    }
}
