//! Picking up a new configuration snapshot: this core's per-service scheduler state and
//! per-destination view, kept, updated or rebuilt as the snapshot's changes require.

use super::{share, Lb};
use crate::config::ServiceId;
use crate::config::Snapshot;
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

impl Lb {
    /// Picks up a new configuration (between bursts). Existing connections keep their real
    /// server whatever changed. Per-service scheduler state is kept when the scheduler and the
    /// destination list are unchanged, updated when the list or flags changed (wrr and friends
    /// then restart as in the kernel) and rebuilt when the scheduler changed.
    pub fn apply_snapshot(&mut self, snap: Arc<Snapshot>) {
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
        for svc in snap.services() {
            if let Some(inc) = st.svc_incarnation.get_mut(svc.id.index()) {
                if *inc != svc.incarnation {
                    *inc = svc.incarnation;
                    st.stats.reset_service(svc.id);
                }
            }
            let views: Vec<DestView> = svc
                .dests
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
                .collect();
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
                        rt.sched
                            .update_after(&views, svc.sched_flags, &svc.list_changes);
                    }
                    rt.views = views;
                    rt
                }
                _ => {
                    let seed =
                        st.params.seed ^ ((st.params.core_id as u64) << 32) ^ svc.id.0 as u64;
                    // Snapshots are validated, so the name is known; wlc is a safe fallback
                    // that keeps `svcs` aligned with the snapshot's services.
                    let mut sched = AnyScheduler::new(&svc.scheduler, svc.sched_flags, seed)
                        .unwrap_or_else(|_| AnyScheduler::Wlc(Wlc::new()));
                    sched.update_after(&views, svc.sched_flags, &svc.list_changes);
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
