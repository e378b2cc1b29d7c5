//! Least-connection (ip_vs_lc.c): the available dest with the smallest overhead
//! (`activeconns * 256 + inactconns`); weight only matters as "not zero".

use super::{DestView, Flow, SchedFlags, Scheduler};
use crate::Time;

/// Least-connection: stateless.
#[derive(Debug, Clone, Default)]
pub struct Lc;

impl Lc {
    pub fn new() -> Lc {
        Lc
    }
}

impl Scheduler for Lc {
    fn update(&mut self, _dests: &[DestView], _flags: SchedFlags) {}

    fn schedule(&mut self, dests: &[DestView], _flow: &Flow, _now: Time) -> Option<usize> {
        let mut least: Option<(usize, u64)> = None;
        for (i, d) in dests.iter().enumerate() {
            if !d.available() {
                continue;
            }
            let doh = d.overhead();
            // Strict `<`: the first in list order wins ties.
            if least.map_or(true, |(_, loh)| doh < loh) {
                least = Some((i, doh));
            }
        }
        least.map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::common::test_util::{any_flow, dests};

    #[test]
    fn least_overhead_ignoring_weight() {
        let mut d = dests(&[1, 100, 1]);
        d[0].activeconns = 1; // 256
        d[1].inactconns = 300; // 300
        d[2].activeconns = 1; // 256
        let mut s = Lc::new();
        s.update(&d, SchedFlags::default());
        // A and C tie at 256: the first wins; B's weight does not help it.
        assert_eq!(s.schedule(&d, &any_flow(), 0), Some(0));
        d[0].inactconns = 1; // 257
        assert_eq!(s.schedule(&d, &any_flow(), 0), Some(2));
        // One active connection weighs 256 inactive ones.
        d[1].inactconns = 255;
        assert_eq!(s.schedule(&d, &any_flow(), 0), Some(1));
    }

    #[test]
    fn skips_unavailable() {
        let mut d = dests(&[0, 1, 1]);
        d[1].overloaded = true;
        d[2].activeconns = 1000;
        let mut s = Lc::new();
        assert_eq!(s.schedule(&d, &any_flow(), 0), Some(2));
        d[2].weight = 0;
        assert_eq!(s.schedule(&d, &any_flow(), 0), None);
        assert_eq!(s.schedule(&[], &any_flow(), 0), None);
    }
}
