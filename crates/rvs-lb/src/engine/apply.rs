//! Picking up a new configuration snapshot: this core's per-service scheduler state and
//! per-destination view, kept, updated or rebuilt as the snapshot's changes require.
//!
//! Building a scheduler can be heavy (an lblc/lblcr cache is 16k slots, an mh table 4093
//! entries filled from permutations): the management core builds those ahead, per worker, with
//! [`Lb::prepare`], and publishes them with the snapshot; the worker only moves them in.

use super::{share, Lb, LbParams};
use crate::config::{Service, ServiceId, Snapshot};
use crate::sched::{AnyScheduler, DestView, Scheduler, Wlc};
use std::net::Ipv4Addr;
use std::sync::Arc;

/// This core's scheduler for one service.
pub(super) struct SvcRt {
    pub(super) id: ServiceId,
    pub(super) incarnation: u64,
    pub(super) sched: AnyScheduler,
    /// Same order as the service's `dests`; counts refreshed before each decision.
    pub(super) views: Vec<DestView>,
}

/// This core's view of one destination id.
#[derive(Debug, Clone, Copy)]
pub(super) struct DestRt {
    pub(super) incarnation: u64,
    /// In a service of the current snapshot (else trashed: serves only old connections).
    pub(super) live: bool,
    pub(super) svc_idx: u32,
    pub(super) addr: Ipv4Addr,
    pub(super) port: u16,
}

impl Default for DestRt {
    fn default() -> Self {
        DestRt {
            incarnation: 0,
            live: false,
            svc_idx: 0,
            addr: Ipv4Addr::UNSPECIFIED,
            port: 0,
        }
    }
}

/// Schedulers the management core built for one worker and one snapshot ([`Lb::prepare`]),
/// so that the worker picking the snapshot up neither allocates nor computes them between
/// bursts.
#[derive(Debug)]
pub struct Prepared {
    generation: u64,
    /// Per service of the snapshot, in its order: a scheduler ready to move in, if needed.
    scheds: Vec<Option<AnyScheduler>>,
}

impl Prepared {
    /// The generation of the snapshot these schedulers were prepared for.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

/// Whether a scheduler's state is a function of its destination list and flags alone (a table
/// rebuilt from scratch on every change), so that one built elsewhere can replace an update in
/// place. Others keep state across updates (rr's position, wrr's weight, lblc's cache): they
/// are updated where they run.
fn rebuilt_on_change(name: &str) -> bool {
    matches!(name, "sh" | "dh" | "mh")
}

/// The scheduler's view of a service's destinations, before this core's counts are filled in.
fn views_of(svc: &Service) -> Vec<DestView> {
    svc.dests
        .iter()
        .map(|d| DestView {
            addr: d.addr,
            port: d.port,
            weight: d.weight,
            last_weight: d.last_weight,
            activeconns: 0,
            inactconns: 0,
            overloaded: false,
        })
        .collect()
}

/// A new scheduler for `svc` on the core of `params`, updated with its destinations.
fn fresh(svc: &Service, views: &[DestView], params: &LbParams) -> AnyScheduler {
    let seed = params.seed ^ ((params.core_id as u64) << 32) ^ svc.id.0 as u64;
    // Snapshots are validated, so the name is known; wlc is a safe fallback that keeps `svcs`
    // aligned with the snapshot's services.
    let mut sched = AnyScheduler::new(&svc.scheduler, svc.sched_flags, seed)
        .unwrap_or_else(|_| AnyScheduler::Wlc(Wlc::new()));
    sched.update_after(views, svc.sched_flags, &svc.list_changes);
    sched
}

impl Lb {
    /// On the management core: the schedulers the worker with `params` needs to move from
    /// snapshot `prev` to `next` (the one published before it): a fresh one for every new
    /// service or changed scheduler, and a rebuilt table (sh, dh, mh) for every changed
    /// destination list. Give the result to that worker's [`Lb::apply_prepared`] with `next`.
    /// If the worker skipped `prev`, what it still needs it builds itself (counted in
    /// `scheds_built`): correct, just not free.
    pub fn prepare(params: &LbParams, prev: &Snapshot, next: &Snapshot) -> Prepared {
        let scheds = next
            .services()
            .iter()
            .map(|svc| {
                let pc = prev
                    .services()
                    .iter()
                    .find(|s| s.id == svc.id && s.incarnation == svc.incarnation);
                let needed = match pc {
                    Some(pc) if pc.scheduler == svc.scheduler => {
                        rebuilt_on_change(&svc.scheduler)
                            && (pc.dests != svc.dests || pc.sched_flags != svc.sched_flags)
                    }
                    _ => true,
                };
                needed.then(|| fresh(svc, &views_of(svc), params))
            })
            .collect();
        Prepared {
            generation: next.generation(),
            scheds,
        }
    }

    /// Picks up a new configuration (between bursts), building whatever schedulers it needs
    /// here: [`Lb::apply_prepared`] without preparation (tests, tools).
    pub fn apply_snapshot(&mut self, snap: Arc<Snapshot>) {
        self.apply_prepared(snap, None);
    }

    /// Picks up a new configuration (between bursts). Existing connections keep their real
    /// server whatever changed. Per-service scheduler state is kept when the scheduler and the
    /// destination list are unchanged, updated when the list or flags changed (wrr and friends
    /// then restart as in the kernel) and rebuilt when the scheduler changed. Schedulers in
    /// `prepared` (from [`Lb::prepare`] for this snapshot) are moved in instead of built.
    pub fn apply_prepared(&mut self, snap: Arc<Snapshot>, prepared: Option<Prepared>) {
        let mut ready = prepared
            .filter(|p| p.generation == snap.generation())
            .map(|p| p.scheds)
            .unwrap_or_default();
        let st = &mut self.st;
        let n = st.params.n_cores;
        // Only the previous snapshot's real servers can be live: clear those, not all
        // MAX_DESTS slots (hundreds of KiB per edit, measured under 1000 edits/s).
        for svc in self.snap.services() {
            for d in &svc.dests {
                if let Some(rt) = st.dests.get_mut(d.id.index()) {
                    rt.live = false;
                }
            }
        }
        for (si, svc) in snap.services().iter().enumerate() {
            for d in &svc.dests {
                let Some(rt) = st.dests.get_mut(d.id.index()) else {
                    continue;
                };
                if rt.incarnation != d.incarnation {
                    rt.incarnation = d.incarnation;
                    st.conns.reset_dest(d.id);
                }
                rt.live = true;
                rt.svc_idx = si as u32;
                rt.addr = d.addr;
                rt.port = d.port;
                st.conns
                    .configure_dest(d.id, share(d.u_threshold, n), share(d.l_threshold, n));
            }
        }
        let mut old: Vec<Option<SvcRt>> =
            std::mem::take(&mut st.svcs).into_iter().map(Some).collect();
        let old_snap = &self.snap;
        for (si, svc) in snap.services().iter().enumerate() {
            if let Some(inc) = st.svc_incarnation.get_mut(svc.id.index()) {
                if *inc != svc.incarnation {
                    *inc = svc.incarnation;
                    st.stats.reset_service(svc.id);
                }
            }
            let views = views_of(svc);
            let ready = ready
                .get_mut(si)
                .and_then(Option::take)
                .filter(|s| s.name() == svc.scheduler);
            let prev = old
                .iter_mut()
                .find(|o| {
                    o.as_ref()
                        .is_some_and(|o| o.id == svc.id && o.incarnation == svc.incarnation)
                })
                .and_then(Option::take);
            let prev_cfg = old_snap
                .services()
                .iter()
                .find(|s| s.id == svc.id && s.incarnation == svc.incarnation);
            let rt = match (prev, prev_cfg) {
                (Some(mut rt), Some(pc)) if pc.scheduler == svc.scheduler => {
                    if pc.dests != svc.dests || pc.sched_flags != svc.sched_flags {
                        match ready {
                            Some(s) if rebuilt_on_change(&svc.scheduler) => rt.sched = s,
                            _ => {
                                if rebuilt_on_change(&svc.scheduler) {
                                    st.stats.engine.scheds_built.inc();
                                }
                                rt.sched
                                    .update_after(&views, svc.sched_flags, &svc.list_changes);
                            }
                        }
                    }
                    rt.views = views;
                    rt
                }
                _ => {
                    let sched = ready.unwrap_or_else(|| {
                        st.stats.engine.scheds_built.inc();
                        fresh(svc, &views, &st.params)
                    });
                    SvcRt {
                        id: svc.id,
                        incarnation: svc.incarnation,
                        sched,
                        views,
                    }
                }
            };
            st.svcs.push(rt);
        }
        st.conns.set_timeouts(snap.timeouts());
        st.stats.acked_generation.set(snap.generation());
        self.snap = snap;
    }
}
