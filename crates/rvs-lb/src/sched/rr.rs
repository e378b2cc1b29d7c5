//! Round-robin (ip_vs_rr.c): the next available dest after the last pick, in list order.

use super::common::{keys_of, DestKey};
use super::{DestView, Flow, SchedFlags, Scheduler};
use crate::Time;
use std::collections::HashSet;

/// Round-robin state: the position of the last pick (the kernel's `sched_data` list pointer).
#[derive(Debug, Clone, Default)]
pub struct Rr {
    /// Index of the last picked dest; `None` is the list head (nothing picked yet).
    pos: Option<usize>,
    /// Dest keys at the last update, to follow the position across list changes.
    keys: Vec<DestKey>,
}

impl Rr {
    pub fn new() -> Rr {
        Rr::default()
    }
}

impl Scheduler for Rr {
    fn update(&mut self, dests: &[DestView], _flags: SchedFlags) {
        // The kernel's pointer stays on the same dest when others are added or removed; when the
        // dest itself is deleted it moves to the previous entry (ip_vs_rr_del_dest), i.e. the
        // nearest surviving predecessor, or the head.
        if let Some(p) = self.pos {
            let present: HashSet<DestKey> = dests.iter().map(|d| (d.addr, d.port)).collect();
            let find = |k: &DestKey| dests.iter().position(|d| (d.addr, d.port) == *k);
            let upto = p.saturating_add(1).min(self.keys.len());
            self.pos = self.keys[..upto]
                .iter()
                .rev()
                .find(|k| present.contains(k))
                .and_then(find);
        }
        self.keys = keys_of(dests);
    }

    fn schedule(&mut self, dests: &[DestView], _flow: &Flow, _now: Time) -> Option<usize> {
        let n = dests.len();
        let hit = match self.pos {
            // Scan after the last pick, wrapping round to the last pick itself.
            Some(p) if p < n => (1..=n)
                .map(|off| (p + off) % n)
                .find(|&i| dests[i].available()),
            // From the head: one pass over the list.
            _ => (0..n).find(|&i| dests[i].available()),
        };
        if hit.is_some() {
            self.pos = hit;
        }
        hit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::common::test_util::{any_flow, dests};

    fn run(s: &mut Rr, d: &[DestView], n: usize) -> Vec<Option<usize>> {
        (0..n).map(|_| s.schedule(d, &any_flow(), 0)).collect()
    }

    #[test]
    fn cycles_in_list_order() {
        let d = dests(&[1, 1]);
        let mut s = Rr::new();
        s.update(&d, SchedFlags::default());
        assert_eq!(run(&mut s, &d, 4), [Some(0), Some(1), Some(0), Some(1)]);
        let d = dests(&[1, 5, 1]); // weight is ignored beyond > 0
        let mut s = Rr::new();
        s.update(&d, SchedFlags::default());
        assert_eq!(
            run(&mut s, &d, 6),
            [Some(0), Some(1), Some(2), Some(0), Some(1), Some(2)]
        );
    }

    #[test]
    fn skips_weight_zero_and_overloaded() {
        let mut d = dests(&[1, 0, 1, 1]);
        d[3].overloaded = true;
        let mut s = Rr::new();
        s.update(&d, SchedFlags::default());
        assert_eq!(run(&mut s, &d, 4), [Some(0), Some(2), Some(0), Some(2)]);
        // A single available dest is picked again and again (the scan wraps onto itself).
        d[0].weight = 0;
        assert_eq!(run(&mut s, &d, 3), [Some(2), Some(2), Some(2)]);
    }

    #[test]
    fn none_when_empty_or_all_unavailable() {
        let mut s = Rr::new();
        assert_eq!(s.schedule(&[], &any_flow(), 0), None);
        let mut d = dests(&[0, 1]);
        d[1].overloaded = true;
        s.update(&d, SchedFlags::default());
        assert_eq!(run(&mut s, &d, 2), [None, None]);
    }

    #[test]
    fn position_survives_updates() {
        let d = dests(&[1, 1, 1]);
        let mut s = Rr::new();
        s.update(&d, SchedFlags::default());
        assert_eq!(run(&mut s, &d, 2), [Some(0), Some(1)]);
        // Deleting the last-picked dest (B) moves the position to its predecessor (A), so the
        // next pick is C, now at index 1.
        let mut d2 = d.clone();
        d2.remove(1);
        s.update(&d2, SchedFlags::default());
        assert_eq!(run(&mut s, &d2, 2), [Some(1), Some(0)]);
        // Adding a dest at the tail keeps the position on A.
        let mut d3 = d2.clone();
        d3.push(crate::sched::common::test_util::dest(9, 1));
        s.update(&d3, SchedFlags::default());
        assert_eq!(run(&mut s, &d3, 3), [Some(1), Some(2), Some(0)]);
    }

    #[test]
    fn deleting_first_dest_after_pick_restarts_from_head() {
        let d = dests(&[1, 1, 1]);
        let mut s = Rr::new();
        s.update(&d, SchedFlags::default());
        assert_eq!(s.schedule(&d, &any_flow(), 0), Some(0));
        let d2 = d[1..].to_vec();
        s.update(&d2, SchedFlags::default());
        assert_eq!(run(&mut s, &d2, 3), [Some(0), Some(1), Some(0)]);
    }
}
