//! Schedulers: one file each behind the [`Scheduler`] trait, with the kernel's semantics
//! (net/netfilter/ipvs/ip_vs_*.c). State is per core: every worker owns one scheduler instance per
//! service and feeds it its own connection counts.
//!
//! Contract:
//! - [`AnyScheduler::new`] and [`AnyScheduler::update`] run off the per-packet path (when a worker
//!   picks up a new configuration snapshot); they may allocate.
//! - [`AnyScheduler::schedule`] runs once per new connection on the fast path: no allocation, no
//!   lock, no syscall, no formatting.

use crate::Time;
use std::net::Ipv4Addr;

/// What a scheduler sees of one real server: its configuration plus this core's connection counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestView {
    pub addr: Ipv4Addr,
    pub port: u16,
    /// Current weight 0..=65535; 0 means quiesced (no new connections).
    pub weight: u32,
    /// Last non-zero weight (the kernel's `last_weight`, used by mh).
    pub last_weight: u32,
    /// This core's active connections to the server (TCP ESTABLISHED, SYN_SENT, SYN_RECV, SYNACK).
    pub activeconns: u32,
    /// This core's inactive connections (other TCP states, all UDP).
    pub inactconns: u32,
    /// OVERLOAD flag set by the upper/lower connection thresholds.
    pub overloaded: bool,
}

impl DestView {
    /// The kernel's availability test for new connections: weight > 0 and not OVERLOAD.
    pub fn available(&self) -> bool {
        self.weight > 0 && !self.overloaded
    }

    /// `ip_vs_dest_conn_overhead()`: activeconns * 256 + inactconns.
    pub fn overhead(&self) -> u64 {
        ((self.activeconns as u64) << 8) + self.inactconns as u64
    }
}

/// Scheduler flags (`-b`), bit values as the kernel's IP_VS_SVC_F_SCHED1..3.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SchedFlags(pub u32);

impl SchedFlags {
    pub const SCHED1: u32 = 0x0008;
    pub const SCHED2: u32 = 0x0010;
    pub const SCHED3: u32 = 0x0020;
    /// sh-fallback / mh-fallback are SCHED1; sh-port / mh-port are SCHED2.
    pub fn fallback(self) -> bool {
        self.0 & Self::SCHED1 != 0
    }
    pub fn port(self) -> bool {
        self.0 & Self::SCHED2 != 0
    }
}

/// The packet fields schedulers may key on (network byte order is not used: plain values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// IPPROTO_TCP (6) or IPPROTO_UDP (17).
    pub proto: u8,
    pub caddr: Ipv4Addr,
    pub cport: u16,
    /// Destination of the client's packet (the VIP): dh, lblc and lblcr key on it.
    pub vaddr: Ipv4Addr,
    pub vport: u16,
}

/// Returned for a scheduler name the appliance does not implement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Scheduler or persistence engine not found")]
pub struct UnknownScheduler;

pub(crate) mod common;
pub mod dh;
pub mod fo;
pub mod lblc;
pub mod lblcr;
pub mod lc;
pub mod mh;
pub mod nq;
pub mod ovf;
pub mod rr;
pub mod sed;
pub mod sh;
pub mod twos;
pub mod wlc;
pub mod wrr;

pub use dh::Dh;
pub use fo::Fo;
pub use lblc::Lblc;
pub use lblcr::Lblcr;
pub use lc::Lc;
pub use mh::Mh;
pub use nq::Nq;
pub use ovf::Ovf;
pub use rr::Rr;
pub use sed::Sed;
pub use sh::Sh;
pub use twos::Twos;
pub use wlc::Wlc;
pub use wrr::Wrr;

/// A scheduling algorithm bound to one service on one core.
pub trait Scheduler {
    /// The service's destinations (in the kernel's list order, newest first) or its flags changed. Runs off
    /// the fast path; may allocate. Call it with the initial list before the first `schedule`.
    fn update(&mut self, dests: &[DestView], flags: SchedFlags);

    /// Like [`Scheduler::update`], after a batch of list changes the kernel would have seen one
    /// by one (`changes`, oldest first, the last one describing `dests`). Only a scheduler whose
    /// state depends on every event (wrr) needs more than one update.
    fn update_after(
        &mut self,
        dests: &[DestView],
        flags: SchedFlags,
        changes: &[crate::config::WeightSummary],
    ) {
        let _ = changes;
        self.update(dests, flags);
    }

    /// Picks a destination for a new connection: an index into `dests`, or `None` when no
    /// destination is available (the caller answers ICMP port unreachable and drops). Fast path:
    /// no allocation, lock, syscall or formatting. Never panics; if `dests` differs from the last
    /// `update` the result is still a valid index into `dests` (or `None`).
    fn schedule(&mut self, dests: &[DestView], flow: &Flow, now: Time) -> Option<usize>;
}

/// The default scheduler of ipvsadm (`DEF_SCHED`).
pub const DEFAULT_SCHEDULER: &str = "wlc";

/// Every scheduler name accepted by [`AnyScheduler::new`], in ipvsadm's `SCHEDULERS` order
/// followed by "twos" (kernel only; ipvsadm 1.31 passes any name through).
pub const NAMES: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos",
];

/// One of the schedulers, dispatched by `match` (no trait objects on the fast path).
#[derive(Debug, Clone)]
pub enum AnyScheduler {
    Rr(Rr),
    Wrr(Wrr),
    Lc(Lc),
    Wlc(Wlc),
    Sed(Sed),
    Nq(Nq),
    Sh(Sh),
    Dh(Dh),
    Mh(Mh),
    Fo(Fo),
    Ovf(Ovf),
    Lblc(Lblc),
    Lblcr(Lblcr),
    Twos(Twos),
}

impl AnyScheduler {
    /// The scheduler called `name` (case-sensitive, like the kernel's lookup). `seed` feeds the
    /// randomised schedulers (twos); give each worker its own.
    pub fn new(name: &str, flags: SchedFlags, seed: u64) -> Result<AnyScheduler, UnknownScheduler> {
        Ok(match name {
            "rr" => AnyScheduler::Rr(Rr::new()),
            "wrr" => AnyScheduler::Wrr(Wrr::new()),
            "lc" => AnyScheduler::Lc(Lc::new()),
            "wlc" => AnyScheduler::Wlc(Wlc::new()),
            "sed" => AnyScheduler::Sed(Sed::new()),
            "nq" => AnyScheduler::Nq(Nq::new()),
            "sh" => AnyScheduler::Sh(Sh::new(flags)),
            "dh" => AnyScheduler::Dh(Dh::new()),
            "mh" => AnyScheduler::Mh(Mh::new(flags)),
            "fo" => AnyScheduler::Fo(Fo::new()),
            "ovf" => AnyScheduler::Ovf(Ovf::new()),
            "lblc" => AnyScheduler::Lblc(Lblc::new()),
            "lblcr" => AnyScheduler::Lblcr(Lblcr::new()),
            "twos" => AnyScheduler::Twos(Twos::new(seed)),
            _ => return Err(UnknownScheduler),
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            AnyScheduler::Rr(_) => "rr",
            AnyScheduler::Wrr(_) => "wrr",
            AnyScheduler::Lc(_) => "lc",
            AnyScheduler::Wlc(_) => "wlc",
            AnyScheduler::Sed(_) => "sed",
            AnyScheduler::Nq(_) => "nq",
            AnyScheduler::Sh(_) => "sh",
            AnyScheduler::Dh(_) => "dh",
            AnyScheduler::Mh(_) => "mh",
            AnyScheduler::Fo(_) => "fo",
            AnyScheduler::Ovf(_) => "ovf",
            AnyScheduler::Lblc(_) => "lblc",
            AnyScheduler::Lblcr(_) => "lblcr",
            AnyScheduler::Twos(_) => "twos",
        }
    }
}

impl Scheduler for AnyScheduler {
    fn update_after(
        &mut self,
        dests: &[DestView],
        flags: SchedFlags,
        changes: &[crate::config::WeightSummary],
    ) {
        match self {
            AnyScheduler::Wrr(s) => s.update_after(dests, flags, changes),
            other => other.update(dests, flags),
        }
    }

    fn update(&mut self, dests: &[DestView], flags: SchedFlags) {
        match self {
            AnyScheduler::Rr(s) => s.update(dests, flags),
            AnyScheduler::Wrr(s) => s.update(dests, flags),
            AnyScheduler::Lc(s) => s.update(dests, flags),
            AnyScheduler::Wlc(s) => s.update(dests, flags),
            AnyScheduler::Sed(s) => s.update(dests, flags),
            AnyScheduler::Nq(s) => s.update(dests, flags),
            AnyScheduler::Sh(s) => s.update(dests, flags),
            AnyScheduler::Dh(s) => s.update(dests, flags),
            AnyScheduler::Mh(s) => s.update(dests, flags),
            AnyScheduler::Fo(s) => s.update(dests, flags),
            AnyScheduler::Ovf(s) => s.update(dests, flags),
            AnyScheduler::Lblc(s) => s.update(dests, flags),
            AnyScheduler::Lblcr(s) => s.update(dests, flags),
            AnyScheduler::Twos(s) => s.update(dests, flags),
        }
    }

    #[inline]
    fn schedule(&mut self, dests: &[DestView], flow: &Flow, now: Time) -> Option<usize> {
        match self {
            AnyScheduler::Rr(s) => s.schedule(dests, flow, now),
            AnyScheduler::Wrr(s) => s.schedule(dests, flow, now),
            AnyScheduler::Lc(s) => s.schedule(dests, flow, now),
            AnyScheduler::Wlc(s) => s.schedule(dests, flow, now),
            AnyScheduler::Sed(s) => s.schedule(dests, flow, now),
            AnyScheduler::Nq(s) => s.schedule(dests, flow, now),
            AnyScheduler::Sh(s) => s.schedule(dests, flow, now),
            AnyScheduler::Dh(s) => s.schedule(dests, flow, now),
            AnyScheduler::Mh(s) => s.schedule(dests, flow, now),
            AnyScheduler::Fo(s) => s.schedule(dests, flow, now),
            AnyScheduler::Ovf(s) => s.schedule(dests, flow, now),
            AnyScheduler::Lblc(s) => s.schedule(dests, flow, now),
            AnyScheduler::Lblcr(s) => s.schedule(dests, flow, now),
            AnyScheduler::Twos(s) => s.schedule(dests, flow, now),
        }
    }
}

/// The scheduler-flag bits a service may carry.
pub const SCHED_FLAGS_MASK: u32 = SchedFlags::SCHED1 | SchedFlags::SCHED2 | SchedFlags::SCHED3;

/// Checks flag *bits* for a scheduler. The bits are shared (`sh-fallback` = `mh-fallback` =
/// `flag-1`, `sh-port` = `mh-port` = `flag-2`), so bits alone cannot tell `sh-port` on wlc
/// (refused by ipvsadm) from `flag-2` on wlc (accepted), and the kernel checks nothing: this only
/// refuses bits outside SCHED1..3 and unknown scheduler names. The name-level ipvsadm check is
/// [`parse_sched_flags`].
pub fn check_flags(name: &str, flags: SchedFlags) -> Result<(), &'static str> {
    if !NAMES.contains(&name) {
        return Err("Scheduler or persistence engine not found");
    }
    if flags.0 & !SCHED_FLAGS_MASK != 0 {
        return Err("invalid scheduler flag");
    }
    Ok(())
}

/// Why a `-b` argument was refused; `Display` is ipvsadm's message (printed by `fail(2, ...)`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchedFlagError {
    /// `sh-*` without sh, or `mh-*` without mh.
    #[error("incompatible scheduler flag `{0}'")]
    Incompatible(&'static str),
    #[error("invalid scheduler flag `{0}'")]
    Invalid(String),
}

/// ipvsadm's `parse_sched_flags(sched, optarg)`: a comma-separated list of `flag-1`, `flag-2`,
/// `flag-3`, `sh-fallback`, `sh-port`, `mh-fallback`, `mh-port`. `sched` is the scheduler given
/// by `-s` *before* `-b` on the command line; when absent or empty, ipvsadm checks against the
/// default "wlc" (so `-b sh-port -s sh` is refused, exactly as ipvsadm 1.31 does). Empty items are
/// skipped like strtok does; an argument with no item at all is refused.
pub fn parse_sched_flags(sched: Option<&str>, arg: &str) -> Result<SchedFlags, SchedFlagError> {
    let sched = match sched {
        Some(s) if !s.is_empty() => s,
        _ => DEFAULT_SCHEDULER,
    };
    let mut flags = 0u32;
    let mut any = false;
    for flag in arg.split(',').filter(|f| !f.is_empty()) {
        any = true;
        let (bit, only, name) = match flag {
            "flag-1" => (SchedFlags::SCHED1, None, "flag-1"),
            "flag-2" => (SchedFlags::SCHED2, None, "flag-2"),
            "flag-3" => (SchedFlags::SCHED3, None, "flag-3"),
            "sh-fallback" => (SchedFlags::SCHED1, Some("sh"), "sh-fallback"),
            "sh-port" => (SchedFlags::SCHED2, Some("sh"), "sh-port"),
            "mh-fallback" => (SchedFlags::SCHED1, Some("mh"), "mh-fallback"),
            "mh-port" => (SchedFlags::SCHED2, Some("mh"), "mh-port"),
            other => return Err(SchedFlagError::Invalid(other.to_string())),
        };
        flags |= bit;
        if only.is_some_and(|s| s != sched) {
            return Err(SchedFlagError::Incompatible(name));
        }
    }
    if !any {
        return Err(SchedFlagError::Invalid(String::new()));
    }
    Ok(SchedFlags(flags))
}

#[cfg(test)]
mod tests {
    use super::common::test_util::{any_flow, dest};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_round_trip_and_are_case_sensitive() {
        assert_eq!(NAMES.len(), 14);
        for &n in NAMES {
            let s = AnyScheduler::new(n, SchedFlags::default(), 1);
            assert_eq!(s.map(|s| s.name()), Ok(n));
        }
        for bad in ["WLC", "Rr", "", "wlc ", "random", "lblcrr"] {
            assert_eq!(
                AnyScheduler::new(bad, SchedFlags::default(), 1).map(|s| s.name()),
                Err(UnknownScheduler)
            );
        }
        assert_eq!(
            UnknownScheduler.to_string(),
            "Scheduler or persistence engine not found"
        );
    }

    #[test]
    fn any_scheduler_dispatches() {
        let d = vec![dest(0, 1), dest(1, 1)];
        let mut s = AnyScheduler::new("rr", SchedFlags::default(), 0).map_err(|_| ());
        let picks: Vec<Option<usize>> = match s.as_mut() {
            Ok(s) => {
                s.update(&d, SchedFlags::default());
                (0..3).map(|_| s.schedule(&d, &any_flow(), 0)).collect()
            }
            Err(()) => Vec::new(),
        };
        assert_eq!(picks, [Some(0), Some(1), Some(0)]);
        fn assert_traits<T: Clone + Send + std::fmt::Debug>() {}
        assert_traits::<AnyScheduler>();
    }

    #[test]
    fn ipvsadm_sched_flag_parsing() {
        let f = |s: Option<&str>, a: &str| parse_sched_flags(s, a);
        assert_eq!(f(Some("sh"), "sh-fallback,sh-port"), Ok(SchedFlags(0x18)));
        assert_eq!(f(Some("mh"), "mh-port"), Ok(SchedFlags(0x10)));
        assert_eq!(f(None, "flag-1,flag-3"), Ok(SchedFlags(0x28)));
        assert_eq!(f(Some("rr"), ",flag-2,,"), Ok(SchedFlags(0x10)));
        assert_eq!(
            f(Some("wlc"), "sh-port").map_err(|e| e.to_string()),
            Err("incompatible scheduler flag `sh-port'".to_string())
        );
        // No -s before -b: checked against the default wlc.
        assert_eq!(
            f(None, "mh-fallback").map_err(|e| e.to_string()),
            Err("incompatible scheduler flag `mh-fallback'".to_string())
        );
        assert_eq!(
            f(Some("sh"), "mh-port").map_err(|e| e.to_string()),
            Err("incompatible scheduler flag `mh-port'".to_string())
        );
        assert_eq!(
            f(Some("sh"), "sh-port,bogus").map_err(|e| e.to_string()),
            Err("invalid scheduler flag `bogus'".to_string())
        );
        assert_eq!(
            f(Some("sh"), "").map_err(|e| e.to_string()),
            Err("invalid scheduler flag `'".to_string())
        );
    }

    #[test]
    fn flag_bits_check() {
        assert_eq!(check_flags("sh", SchedFlags(0x18)), Ok(()));
        assert_eq!(check_flags("wlc", SchedFlags(0x38)), Ok(()));
        assert_eq!(
            check_flags("wlc", SchedFlags(0x01)),
            Err("invalid scheduler flag")
        );
        assert_eq!(
            check_flags("WLC", SchedFlags(0)),
            Err("Scheduler or persistence engine not found")
        );
    }

    #[test]
    fn every_scheduler_none_on_empty_and_all_unavailable() {
        let mut d = vec![dest(0, 0), dest(1, 3), dest(2, 2)];
        d[1].overloaded = true;
        d[2].overloaded = true;
        let flags = SchedFlags(SchedFlags::SCHED1); // fallback for sh/mh too
        for &n in NAMES {
            let Ok(mut s) = AnyScheduler::new(n, flags, 5) else {
                panic!("{n} must exist");
            };
            s.update(&[], flags);
            assert_eq!(s.schedule(&[], &any_flow(), 0), None, "{n} on empty");
            s.update(&d, flags);
            for k in 0..4 {
                assert_eq!(s.schedule(&d, &any_flow(), k), None, "{n} all unavailable");
            }
        }
    }

    fn arb_dest() -> impl Strategy<Value = DestView> {
        (
            0u8..16,
            prop_oneof![Just(0u32), 1u32..6, Just(65535u32)],
            0u32..4,
            0u32..12,
            0u32..12,
            proptest::bool::weighted(0.2),
        )
            .prop_map(|(a, w, lw, ac, ic, ov)| DestView {
                addr: std::net::Ipv4Addr::new(10, 1, 0, a),
                port: 80,
                weight: w,
                last_weight: if w > 0 { w } else { lw },
                activeconns: ac,
                inactconns: ic,
                overloaded: ov,
            })
    }

    fn arb_flow() -> impl Strategy<Value = Flow> {
        (
            any::<u32>(),
            any::<u16>(),
            0u32..4,
            prop_oneof![Just(6u8), Just(17u8), Just(1u8)],
        )
            .prop_map(|(c, p, v, proto)| Flow {
                proto,
                caddr: c.into(),
                cport: p,
                vaddr: std::net::Ipv4Addr::from(0xC000_0200 + v),
                vport: 80,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

        /// No scheduler panics; every pick is in range and available. Exception (kernel
        /// semantics): lblc reuses a cached dest without looking at its OVERLOAD flag, so for it
        /// only weight > 0 is guaranteed.
        #[test]
        fn picks_are_valid(
            dests in proptest::collection::vec(arb_dest(), 0..10),
            other in proptest::collection::vec(arb_dest(), 0..10),
            flows in proptest::collection::vec(arb_flow(), 1..8),
            flags in 0u32..64,
            seed in any::<u64>(),
        ) {
            let flags = SchedFlags(flags & SCHED_FLAGS_MASK);
            for &n in NAMES {
                let Ok(mut s) = AnyScheduler::new(n, flags, seed) else {
                    return Err(TestCaseError::fail(format!("{n} missing")));
                };
                s.update(&dests, flags);
                for (k, f) in flows.iter().enumerate() {
                    let now = (k as Time) * 3_600 * crate::NANOS_PER_SEC * 7;
                    // Consistent list, then a list that differs from the last update.
                    for list in [&dests, &other] {
                        if let Some(i) = s.schedule(list, f, now) {
                            prop_assert!(i < list.len(), "{} gave {} of {}", n, i, list.len());
                            let d = &list[i];
                            if n == "lblc" {
                                prop_assert!(d.weight > 0, "lblc gave weight 0");
                            } else {
                                prop_assert!(d.available(), "{} gave unavailable {:?}", n, d);
                            }
                        }
                    }
                }
                s.update(&other, flags);
                for f in &flows {
                    if let Some(i) = s.schedule(&other, f, 0) {
                        prop_assert!(i < other.len());
                    }
                }
            }
        }

        /// Whenever some dest is available, the load-based and round-robin schedulers find one.
        #[test]
        fn finds_a_dest_when_one_is_available(
            dests in proptest::collection::vec(arb_dest(), 1..10),
            f in arb_flow(),
        ) {
            let any_avail = dests.iter().any(DestView::available);
            for n in ["rr", "wrr", "lc", "wlc", "sed", "nq", "fo", "lblc", "lblcr", "twos"] {
                let Ok(mut s) = AnyScheduler::new(n, SchedFlags::default(), 9) else {
                    return Err(TestCaseError::fail("missing"));
                };
                s.update(&dests, SchedFlags::default());
                prop_assert_eq!(s.schedule(&dests, &f, 0).is_some(), any_avail, "{}", n);
            }
        }
    }
}
