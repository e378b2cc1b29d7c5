//! [`Core`], the management core's IPVS state: the configuration, `-Z` baselines and rate
//! estimators, and the periodic work (estimator steps, trash purging).

use super::{service_key, OpError};
use crate::proto::{DestRef, ServiceRef};
use rvs_lb::config::{Config, ConfigError, DestId, ServiceId, Snapshot};
use rvs_lb::stats::{
    sum_dest, sum_service, sum_total, CoreStats, Estimator, Traffic, ESTIMATOR_INTERVAL_SECS,
};
use rvs_lb::{Time, NANOS_PER_SEC};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub(super) fn cores_iter(cores: &[Arc<CoreStats>]) -> impl Iterator<Item = &CoreStats> {
    cores.iter().map(|c| &**c)
}

/// Estimator period in nanoseconds.
const EST_PERIOD: Time = ESTIMATOR_INTERVAL_SECS * NANOS_PER_SEC;

/// The management core's IPVS state, free of threads and I/O.
#[derive(Debug, Clone)]
pub struct Core {
    pub(super) config: Config,
    /// `-Z` baselines, valid for one incarnation of an id.
    pub(super) svc_base: HashMap<ServiceId, (u64, Traffic)>,
    pub(super) dest_base: HashMap<DestId, (u64, Traffic)>,
    pub(super) total_base: Traffic,
    pub(super) svc_est: HashMap<ServiceId, (u64, Estimator)>,
    pub(super) dest_est: HashMap<DestId, (u64, Estimator)>,
    pub(super) total_est: Option<Estimator>,
    /// When the next estimator step is due.
    next_est: Option<Time>,
}

impl Core {
    /// Starts from `config` (normally the snapshot the workers run), counters as they are.
    pub fn new(config: Config) -> Core {
        Core {
            config,
            svc_base: HashMap::new(),
            dest_base: HashMap::new(),
            total_base: Traffic::default(),
            svc_est: HashMap::new(),
            dest_est: HashMap::new(),
            total_est: None,
            next_est: None,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The id of a real server, live or in the trash (removed, connections may remain).
    pub fn find_dest(&self, service: &ServiceRef, dest: &DestRef) -> Result<DestId, OpError> {
        let key = service_key(service)?;
        let port = if dest.port == 0 {
            key.vport()
        } else {
            dest.port
        };
        let live = self.config.service(&key);
        if let Some(d) = live.and_then(|s| s.dest(dest.addr, port)) {
            return Ok(d.id);
        }
        if let Some(t) = self
            .config
            .trash()
            .iter()
            .find(|t| t.service == key && t.dest.addr == dest.addr && t.dest.port == port)
        {
            return Ok(t.dest.id);
        }
        Err(if live.is_some() {
            ConfigError::NoSuchDest.into()
        } else {
            ConfigError::ServiceNotDefined.into()
        })
    }

    /// Periodic work; call as often as convenient (every management-loop pass is fine). Every
    /// [`ESTIMATOR_INTERVAL_SECS`] it steps the rate estimators and purges trashed real servers
    /// no worker can still use. Returns the snapshot to publish when the purge changed the
    /// configuration.
    pub fn tick(&mut self, now: Time, cores: &[Arc<CoreStats>]) -> Option<Snapshot> {
        if let Some(next) = self.next_est {
            if now < next {
                return None;
            }
        }
        // Keep a steady 2 s cadence; after a long stall, restart it from now.
        self.next_est = Some(match self.next_est {
            Some(n) if now - n < EST_PERIOD => n + EST_PERIOD,
            _ => now.saturating_add(EST_PERIOD),
        });
        self.step_estimators(cores);
        self.purge(cores)
    }

    fn step_estimators(&mut self, cores: &[Arc<CoreStats>]) {
        let mut live_svcs = Vec::new();
        let mut live_dests = Vec::new();
        for s in self.config.services() {
            live_svcs.push((s.id, s.incarnation));
            live_dests.extend(s.dests.iter().map(|d| (d.id, d.incarnation)));
        }
        for &(id, inc) in &live_svcs {
            let t = sum_service(cores_iter(cores), id);
            match self.svc_est.get_mut(&id) {
                Some((i, e)) if *i == inc => e.update(&t),
                _ => {
                    self.svc_est.insert(id, (inc, Estimator::new(t)));
                }
            }
        }
        for &(id, inc) in &live_dests {
            let (t, _) = sum_dest(cores_iter(cores), id);
            match self.dest_est.get_mut(&id) {
                Some((i, e)) if *i == inc => e.update(&t),
                _ => {
                    self.dest_est.insert(id, (inc, Estimator::new(t)));
                }
            }
        }
        let t = sum_total(cores_iter(cores));
        match &mut self.total_est {
            Some(e) => e.update(&t),
            None => self.total_est = Some(Estimator::new(t)),
        }
        // Forget ids that are gone; a trashed server keeps its baseline (re-adding it restores
        // its counters, so its -Z baseline must survive too). Sets, not list scans: with
        // 10,000 real servers a scan per entry was 10^8 comparisons every period.
        let svcs: HashSet<ServiceId> = live_svcs.iter().map(|&(i, _)| i).collect();
        let dests: HashSet<DestId> = live_dests.iter().map(|&(i, _)| i).collect();
        let trash: HashSet<DestId> = self.config.trash().iter().map(|t| t.dest.id).collect();
        self.svc_est.retain(|id, _| svcs.contains(id));
        self.svc_base.retain(|id, _| svcs.contains(id));
        self.dest_est.retain(|id, _| dests.contains(id));
        self.dest_base
            .retain(|id, _| dests.contains(id) || trash.contains(id));
    }

    /// Frees trashed real servers once every worker runs a configuration without them and none
    /// holds a connection or template bound to them.
    fn purge(&mut self, cores: &[Arc<CoreStats>]) -> Option<Snapshot> {
        if self.config.trash().is_empty() {
            return None;
        }
        let min_acked = cores
            .iter()
            .map(|c| c.acked_generation.get())
            .min()
            .unwrap_or(u64::MAX);
        let mut work = self.config.clone();
        work.begin_batch();
        work.purge_trash(|t| {
            min_acked < t.removed_in || sum_dest(cores_iter(cores), t.dest.id).1.refcnt > 0
        });
        if work.trash().len() == self.config.trash().len() {
            return None;
        }
        let snap = Snapshot::new(work.clone()).ok()?;
        self.config = work;
        Some(snap)
    }
}
