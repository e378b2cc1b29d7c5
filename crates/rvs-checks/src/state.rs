//! keepalived's health-check state machine, without clocks or sockets: probe results in,
//! log lines, scripts to run and IPVS operations out. Given a time, so it is tested exactly.
//!
//! - A checker goes down after `retry + 1` failed attempts in a row (`delay_before_retry`
//!   apart), up at the first success; a real server is up when all its checkers are.
//! - A real server that goes down leaves its services (weight 0 with `inhibit_on_failure`); its
//!   connections are not cut, as in IPVS.
//! - A service whose live weight falls below `quorum - hysteresis` has lost quorum: with a
//!   sorry server, the live servers leave and the sorry server serves; at `quorum + hysteresis`
//!   the reverse (keepalived's update_quorum_state(), check/ipwrapper.c).
//!
//! The IPVS table is driven from the desired state: each change computes what every owned
//! service should hold and the operations from what was applied to that. A reload is the same
//! computation against a new plan, so probes, real servers and services that did not change
//! keep their state and cause no operation at all.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use rvs_ctl::proto::{DestConf, DestRef, Request, ServiceConf, ServiceRef};

use crate::plan::{kind_name, rs_name, target_of, Plan, PlannedVs, ProbePlan};
use crate::probe::{success_log, Verdict};

pub type ProbeId = u64;

#[derive(Debug, Clone)]
pub struct ProbeState {
    pub plan: ProbePlan,
    pub up: bool,
    /// Failed attempts in a row.
    pub failures: u32,
    /// The weight a misc_dynamic check last set.
    pub dyn_weight: Option<u32>,
    /// The last attempt: when, and None for a success or the failure's reason.
    pub last: Option<(Instant, Option<String>)>,
    pub changed: Instant,
    pub attempts: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Info(String),
    Warn(String),
    /// A notify_up/notify_down/quorum_up/quorum_down script.
    Run(String),
}

#[derive(Debug, Clone, Copy)]
pub struct MemberState {
    pub alive: bool,
    pub changed: Instant,
}

type DestKey = (Ipv4Addr, u16);
type MemberKey = (ServiceRef, Ipv4Addr, u16);

/// What is in the IPVS table for one owned service.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub conf: ServiceConf,
    pub dests: BTreeMap<DestKey, DestConf>,
}

/// The whole state of the checks; cloned to try a reload.
#[derive(Debug, Clone)]
pub struct State {
    pub plan: Plan,
    /// `plan.probes[i]` is probe `ids[i]`.
    pub ids: Vec<ProbeId>,
    pub probes: HashMap<ProbeId, ProbeState>,
    next_id: ProbeId,
    pub members: HashMap<MemberKey, MemberState>,
    pub quorum_up: HashMap<ServiceRef, bool>,
    pub applied: HashMap<ServiceRef, Applied>,
    /// The services (indices into `plan.services`) each probe's result can change: a result
    /// reconciles those only, so one server's change costs its services, not all of them.
    by_probe: HashMap<ProbeId, Vec<usize>>,
}

/// What a reconciliation found: the operations to apply, then to hand to [`State::commit`].
#[derive(Debug, Clone)]
pub struct Change {
    pub ops: Vec<Request>,
    desired: HashMap<ServiceRef, Applied>,
    /// Every service was reconciled (services no longer planned are deleted).
    full: bool,
}

impl State {
    /// The state before any probe ran (alpha checkers down, the others up), nothing applied.
    pub fn new(plan: Plan, now: Instant) -> State {
        let mut s = State {
            plan: Plan::default(),
            ids: Vec::new(),
            probes: HashMap::new(),
            next_id: 1,
            members: HashMap::new(),
            quorum_up: HashMap::new(),
            applied: HashMap::new(),
            by_probe: HashMap::new(),
        };
        s.reload(plan, now);
        s
    }

    /// Moves to `plan`, keeping the state of every probe, real server and service it shares
    /// with the current one. Returns the probes to start and those to stop.
    pub fn reload(&mut self, plan: Plan, now: Instant) -> (Vec<ProbeId>, Vec<ProbeId>) {
        let mut old: HashMap<ProbePlan, ProbeId> = HashMap::new();
        for (i, p) in self.plan.probes.iter().enumerate() {
            old.insert(p.clone(), self.ids[i]);
        }
        let mut ids = Vec::with_capacity(plan.probes.len());
        let mut started = Vec::new();
        let mut probes = HashMap::new();
        for p in &plan.probes {
            let id = match old.remove(p) {
                Some(id) => id,
                None => {
                    let id = self.next_id;
                    self.next_id += 1;
                    started.push(id);
                    id
                }
            };
            let st = self.probes.remove(&id).unwrap_or(ProbeState {
                plan: p.clone(),
                up: !p.alpha,
                failures: 0,
                dyn_weight: None,
                last: None,
                changed: now,
                attempts: 0,
            });
            probes.insert(id, st);
            ids.push(id);
        }
        let stopped: Vec<ProbeId> = old.into_values().collect();
        self.probes = probes;
        self.ids = ids;
        let mut members = HashMap::new();
        let mut by_probe: HashMap<ProbeId, Vec<usize>> = HashMap::new();
        for (i, vs) in plan.services.iter().enumerate() {
            let key = vs.key();
            for rs in &vs.real_servers {
                let mk = (key, rs.addr, rs.port);
                let m = self.members.get(&mk).copied().unwrap_or(MemberState {
                    alive: self.rs_up(&rs.probes),
                    changed: now,
                });
                members.insert(mk, m);
                for &p in &rs.probes {
                    let v = by_probe.entry(self.ids[p]).or_default();
                    if v.last() != Some(&i) {
                        v.push(i);
                    }
                }
            }
        }
        self.members = members;
        self.by_probe = by_probe;
        // A service new to the state starts with quorum as its live weight says.
        let quorum_up = plan
            .services
            .iter()
            .map(|vs| {
                let key = vs.key();
                let q = self.quorum_up.get(&key).copied();
                (
                    key,
                    q.unwrap_or_else(|| self.live_weight(vs) >= u64::from(vs.quorum)),
                )
            })
            .collect();
        self.quorum_up = quorum_up;
        self.plan = plan;
        (started, stopped)
    }

    fn rs_up(&self, probes: &[usize]) -> bool {
        probes
            .iter()
            .all(|&i| self.probes.get(&self.ids[i]).is_some_and(|p| p.up))
    }

    /// A real server's weight when up: what a misc_dynamic check said, else its own.
    fn rs_weight(&self, rs: &crate::plan::PlannedRs) -> u32 {
        rs.probes
            .iter()
            .filter_map(|&i| self.probes.get(&self.ids[i]).and_then(|p| p.dyn_weight))
            .next_back()
            .unwrap_or(rs.weight)
    }

    /// The sum of the weights of a service's live real servers.
    pub fn live_weight(&self, vs: &PlannedVs) -> u64 {
        let key = vs.key();
        vs.real_servers
            .iter()
            .filter(|rs| {
                self.members
                    .get(&(key, rs.addr, rs.port))
                    .is_some_and(|m| m.alive)
            })
            .map(|rs| u64::from(self.rs_weight(rs)))
            .sum()
    }

    /// One attempt's result. Returns when to run the probe next (None: the probe is no longer
    /// configured) and whether the state changed so that [`State::reconcile`] is due.
    pub fn on_result(
        &mut self,
        id: ProbeId,
        v: Verdict,
        now: Instant,
        acts: &mut Vec<Action>,
    ) -> Option<(Duration, bool)> {
        let p = self.probes.get_mut(&id)?;
        p.attempts += 1;
        let kind = kind_name(&p.plan.spec.kind);
        match v {
            Verdict::Up | Verdict::UpWeight(_) => {
                let w = match v {
                    Verdict::UpWeight(w) => Some(w),
                    _ => None,
                };
                let changed = !p.up || w != p.dyn_weight;
                p.failures = 0;
                p.last = Some((now, None));
                p.dyn_weight = w;
                if !p.up {
                    p.up = true;
                    p.changed = now;
                    acts.push(Action::Info(success_log(&p.plan.spec)));
                }
                Some((p.plan.delay_loop, changed))
            }
            Verdict::Down(f) => {
                p.failures = p.failures.saturating_add(1);
                p.last = Some((now, Some(f.reason)));
                if !p.up {
                    if p.plan.log_all_failures {
                        acts.push(Action::Info(f.log));
                    }
                    return Some((p.plan.delay_loop, false));
                }
                acts.push(Action::Info(f.log));
                if p.failures <= p.plan.retry {
                    return Some((p.plan.delay_before_retry, false));
                }
                p.up = false;
                p.changed = now;
                p.dyn_weight = None;
                acts.push(Action::Warn(format!(
                    "{kind} on service {} failed after {} retries.",
                    target_of(&p.plan.spec),
                    p.plan.retry
                )));
                Some((p.plan.delay_loop, true))
            }
        }
    }

    /// Brings every real server's and service's state up to date with the probes (logging
    /// and queueing scripts for each transition) and returns the IPVS operations that take
    /// the table from what was applied to what should be; hand it to [`State::commit`] once
    /// applied.
    pub fn reconcile(&mut self, now: Instant, acts: &mut Vec<Action>) -> Change {
        let all: Vec<usize> = (0..self.plan.services.len()).collect();
        self.reconcile_services(&all, true, now, acts)
    }

    /// [`State::reconcile`] for the services probe `id` is part of, after its result.
    pub fn reconcile_probe(&mut self, id: ProbeId, now: Instant, acts: &mut Vec<Action>) -> Change {
        self.reconcile_probes(&[id], now, acts)
    }

    /// [`State::reconcile`] for the services any of `ids` is part of: the results of one
    /// moment, one change (ids no longer planned are skipped).
    pub fn reconcile_probes(
        &mut self,
        ids: &[ProbeId],
        now: Instant,
        acts: &mut Vec<Action>,
    ) -> Change {
        let mut which: Vec<usize> = ids
            .iter()
            .filter_map(|id| self.by_probe.get(id))
            .flatten()
            .copied()
            .collect();
        which.sort_unstable();
        which.dedup();
        self.reconcile_services(&which, false, now, acts)
    }

    fn reconcile_services(
        &mut self,
        which: &[usize],
        full: bool,
        now: Instant,
        acts: &mut Vec<Action>,
    ) -> Change {
        let plan = std::mem::take(&mut self.plan);
        let mut desired = HashMap::new();
        for vs in which.iter().filter_map(|&i| plan.services.get(i)) {
            let key = vs.key();
            for rs in &vs.real_servers {
                let up = self.rs_up(&rs.probes);
                let Some(m) = self.members.get_mut(&(key, rs.addr, rs.port)) else {
                    continue;
                };
                if m.alive != up {
                    m.alive = up;
                    m.changed = now;
                    let (verb, dir) = match (up, rs.inhibit_on_failure) {
                        (true, false) => ("Adding", "to"),
                        (true, true) => ("Enabling", "to"),
                        (false, false) => ("Removing", "from"),
                        (false, true) => ("Disabling", "from"),
                    };
                    let line = format!(
                        "{verb} service {} {dir} VS {}",
                        rs_name(vs, rs.addr, rs.port),
                        vs.name
                    );
                    acts.push(if up {
                        Action::Info(line)
                    } else {
                        Action::Warn(line)
                    });
                    let script = if up { &rs.notify_up } else { &rs.notify_down };
                    if let Some(s) = script {
                        acts.push(Action::Run(s.clone()));
                    }
                }
            }
            let sum = self.live_weight(vs);
            let (q, h) = (u64::from(vs.quorum), u64::from(vs.hysteresis));
            let was = self.quorum_up.get(&key).copied().unwrap_or(true);
            let now_up = if was { sum + h >= q } else { sum >= q + h };
            if now_up != was {
                self.quorum_up.insert(key, now_up);
                if now_up {
                    acts.push(Action::Info(format!(
                        "Gained quorum {q}+{h}={} <= {sum} for VS {}",
                        q + h,
                        vs.name
                    )));
                } else {
                    acts.push(Action::Warn(format!(
                        "Lost quorum {q}-{h}={} > {sum} for VS {}",
                        q.saturating_sub(h),
                        vs.name
                    )));
                }
                if let (Some(sorry), Some(d)) = (&vs.sorry, vs.sorry_dest(1)) {
                    let rs = rs_name(vs, d.addr, d.port);
                    let line = match (now_up, sorry.inhibit) {
                        (false, false) => format!("Adding sorry server {rs} to VS {}", vs.name),
                        (false, true) => format!("Enabling sorry server {rs} to VS {}", vs.name),
                        (true, false) => format!("Removing sorry server {rs} from VS {}", vs.name),
                        (true, true) => format!("Disabling sorry server {rs} from VS {}", vs.name),
                    };
                    acts.push(Action::Info(line));
                }
                let script = if now_up {
                    &vs.quorum_up
                } else {
                    &vs.quorum_down
                };
                if let Some(s) = script {
                    acts.push(Action::Run(s.clone()));
                }
            }
            desired.insert(key, self.desired(vs, now_up));
        }
        self.plan = plan;
        Change {
            ops: diff(&self.applied, &desired, full),
            desired,
            full,
        }
    }

    fn desired(&self, vs: &PlannedVs, quorum_up: bool) -> Applied {
        let key = vs.key();
        let sorry_serving = !quorum_up && vs.sorry.is_some();
        let mut dests = BTreeMap::new();
        for rs in &vs.real_servers {
            let alive = self
                .members
                .get(&(key, rs.addr, rs.port))
                .is_some_and(|m| m.alive);
            let w = if alive && !sorry_serving {
                Some(self.rs_weight(rs))
            } else if rs.inhibit_on_failure {
                Some(0)
            } else {
                None
            };
            if let Some(w) = w {
                dests.insert((rs.addr, rs.port), rs.dest(w));
            }
        }
        let sorry_inhibit = vs.sorry.as_ref().is_some_and(|s| s.inhibit);
        let sorry = if sorry_serving {
            vs.sorry_dest(1)
        } else if sorry_inhibit {
            vs.sorry_dest(0)
        } else {
            None
        };
        if let Some(d) = sorry {
            dests.insert((d.addr, d.port), d);
        }
        Applied {
            conf: vs.conf.clone(),
            dests,
        }
    }

    /// Records that the operations of a [`Change`] were applied.
    pub fn commit(&mut self, c: Change) {
        if c.full {
            self.applied = c.desired;
        } else {
            self.applied.extend(c.desired);
        }
    }

    /// The table weight of a destination of an owned service, as applied.
    pub fn table_weight(&self, key: &ServiceRef, addr: Ipv4Addr, port: u16) -> Option<u32> {
        self.applied
            .get(key)
            .and_then(|a| a.dests.get(&(addr, port)))
            .map(|d| d.weight)
    }

    /// The scripts keepalived's `omega` runs at shutdown: `notify_down` of every live real
    /// server and `quorum_down` of every service that has quorum, for the services with omega.
    pub fn omega_scripts(&self) -> Vec<String> {
        let mut out = Vec::new();
        for vs in self.plan.services.iter().filter(|v| v.omega) {
            let key = vs.key();
            for rs in &vs.real_servers {
                let alive = self
                    .members
                    .get(&(key, rs.addr, rs.port))
                    .is_some_and(|m| m.alive);
                if let (true, Some(s)) = (alive, &rs.notify_down) {
                    out.push(s.clone());
                }
            }
            if let (true, Some(s)) = (self.quorum_up.get(&key) == Some(&true), &vs.quorum_down) {
                out.push(s.clone());
            }
        }
        out
    }
}

/// The operations from `from` to `to`: services added first, then per service the real
/// servers removed, changed and added; with `full`, services no longer owned are deleted last
/// (otherwise `to` holds only some of the owned services).
pub fn diff(
    from: &HashMap<ServiceRef, Applied>,
    to: &HashMap<ServiceRef, Applied>,
    full: bool,
) -> Vec<Request> {
    let mut ops = Vec::new();
    let mut keys: Vec<&ServiceRef> = to.keys().collect();
    keys.sort_by_key(|k| (k.fwmark, k.addr, k.port, k.proto.ipproto()));
    for key in keys {
        let want = &to[key];
        let have = from.get(key);
        match have {
            None => ops.push(Request::AddService {
                service: want.conf.clone(),
            }),
            Some(h) if h.conf != want.conf => ops.push(Request::EditService {
                service: want.conf.clone(),
            }),
            _ => {}
        }
        let empty = BTreeMap::new();
        let have_dests = have.map(|h| &h.dests).unwrap_or(&empty);
        for (k, d) in have_dests {
            if !want.dests.contains_key(k) {
                ops.push(Request::DeleteDest {
                    service: *key,
                    dest: DestRef {
                        addr: d.addr,
                        port: d.port,
                    },
                });
            }
        }
        for (k, d) in &want.dests {
            match have_dests.get(k) {
                Some(h) if h == d => {}
                Some(_) => ops.push(Request::EditDest {
                    service: *key,
                    dest: *d,
                }),
                None => ops.push(Request::AddDest {
                    service: *key,
                    dest: *d,
                }),
            }
        }
    }
    if !full {
        return ops;
    }
    let mut gone: Vec<&ServiceRef> = from.keys().filter(|k| !to.contains_key(k)).collect();
    gone.sort_by_key(|k| (k.fwmark, k.addr, k.port, k.proto.ipproto()));
    for key in gone {
        ops.push(Request::DeleteService { service: *key });
    }
    ops
}
