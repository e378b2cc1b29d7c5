//! Applying requests: refusing what the lb configuration cannot express, turning requests into
//! operations, applying them all or nothing (one request, or a whole restore; `-Z` too) and
//! parsing rules files into restore operations.

use super::state::cores_iter;
use super::{Core, OpError, EXIT_USAGE, FWD_UNSUPPORTED, OPS_UNSUPPORTED, SCTP_UNSUPPORTED};
use crate::ipvsadm::names::Names;
use crate::ipvsadm::restore::parse_restore_with;
use crate::model::{self, Fwd, MarkRuleEntry};
use crate::proto::{self, DestConf, Request, ServiceConf, ServiceRef};
use rvs_lb::config::{
    Config, ConfigError, DestId, DestSpec, Forward, MarkRule, Persistence, Proto, ServiceId,
    ServiceKey, ServiceSpec, Snapshot,
};
use rvs_lb::sched::{SchedFlags, SCHED_FLAGS_MASK};
use rvs_lb::stats::{sum_dest, sum_service, sum_total, CoreStats, Estimator};
use std::net::Ipv4Addr;
use std::sync::Arc;

/// One configuration change, already checked for what the lb configuration cannot express.
#[derive(Debug, Clone, PartialEq)]
enum Op {
    AddService { spec: ServiceSpec, pe: bool },
    EditService { spec: ServiceSpec, pe: bool },
    DeleteService(ServiceKey),
    Clear,
    AddDest(ServiceKey, DestSpec),
    EditDest(ServiceKey, DestSpec),
    DeleteDest(ServiceKey, Ipv4Addr, u16),
    SetTimeouts(model::TimeoutTriple),
    Zero(Option<ServiceKey>),
    AddMark(MarkRule),
    DeleteMark(MarkRule),
}

fn lb_proto(p: model::ServiceProto) -> Result<Proto, OpError> {
    match p {
        model::ServiceProto::Tcp => Ok(Proto::Tcp),
        model::ServiceProto::Udp => Ok(Proto::Udp),
        model::ServiceProto::Sctp => Err(OpError::rejected(SCTP_UNSUPPORTED)),
        model::ServiceProto::Fwmark => Err(OpError::rejected(
            "a mark rule's proto must be \"tcp\" or \"udp\"",
        )),
    }
}

/// The lb key of a service reference.
pub fn service_key(r: &ServiceRef) -> Result<ServiceKey, OpError> {
    match r.proto {
        model::ServiceProto::Fwmark => Ok(ServiceKey::Fwmark(r.fwmark)),
        p => {
            let proto = lb_proto(p)?;
            if r.fwmark != 0 {
                return Err(OpError::rejected(
                    "fwmark is only valid with proto \"fwmark\"",
                ));
            }
            Ok(ServiceKey::Addr {
                proto,
                vaddr: r.addr,
                vport: r.port,
            })
        }
    }
}

fn service_spec(c: &ServiceConf) -> Result<(ServiceSpec, bool), OpError> {
    let key = service_key(&c.key())?;
    if c.ops {
        return Err(OpError::rejected(OPS_UNSUPPORTED));
    }
    if c.flags & !SCHED_FLAGS_MASK != 0 {
        return Err(OpError::rejected(format!(
            "invalid scheduler flags {:#x}: only 0x08, 0x10 and 0x20 exist",
            c.flags
        )));
    }
    let spec = ServiceSpec {
        key,
        scheduler: c.sched.clone(),
        sched_flags: SchedFlags(c.flags),
        persistence: c.persistent.map(|timeout| Persistence {
            timeout,
            netmask: c.netmask,
        }),
    };
    Ok((spec, c.pe.is_some()))
}

fn dest_spec(d: &DestConf) -> Result<DestSpec, OpError> {
    if d.fwd != Fwd::Masq {
        return Err(OpError::rejected(FWD_UNSUPPORTED));
    }
    Ok(DestSpec {
        addr: d.addr,
        port: d.port,
        weight: d.weight,
        u_threshold: d.u_threshold,
        l_threshold: d.l_threshold,
        forward: Forward::Masq,
    })
}

fn mark_rule(r: &MarkRuleEntry) -> Result<MarkRule, OpError> {
    Ok(MarkRule {
        mark: r.mark,
        proto: lb_proto(r.proto)?,
        vaddr: r.vaddr,
        port_lo: r.port_lo,
        port_hi: r.port_hi,
    })
}

/// The configuration change a request asks for; other requests are not operations.
fn op_of(req: &Request) -> Result<Op, OpError> {
    Ok(match req {
        Request::AddService { service } => {
            let (spec, pe) = service_spec(service)?;
            Op::AddService { spec, pe }
        }
        Request::EditService { service } => {
            let (spec, pe) = service_spec(service)?;
            Op::EditService { spec, pe }
        }
        Request::DeleteService { service } => Op::DeleteService(service_key(service)?),
        Request::Clear => Op::Clear,
        Request::AddDest { service, dest } => Op::AddDest(service_key(service)?, dest_spec(dest)?),
        Request::EditDest { service, dest } => {
            Op::EditDest(service_key(service)?, dest_spec(dest)?)
        }
        Request::DeleteDest { service, dest } => {
            Op::DeleteDest(service_key(service)?, dest.addr, dest.port)
        }
        Request::SetTimeouts { timeouts } => Op::SetTimeouts(*timeouts),
        Request::Zero { service } => Op::Zero(service.as_ref().map(service_key).transpose()?),
        Request::AddMarkRule { rule } => Op::AddMark(mark_rule(rule)?),
        Request::DeleteMarkRule { rule } => Op::DeleteMark(mark_rule(rule)?),
        other => {
            return Err(OpError::new(
                format!("'{}' is not allowed in restore input", other.name()),
                EXIT_USAGE,
            ))
        }
    })
}

/// Applies one operation to `c` (which the caller discards on error). Returns whether the
/// configuration changed; `Zero` only records its target in `zeros`.
fn apply_op(c: &mut Config, op: Op, zeros: &mut Vec<Option<ServiceKey>>) -> Result<bool, OpError> {
    match op {
        Op::AddService { spec, pe } => {
            // The kernel looks the service up before it looks for the scheduler.
            if c.service(&spec.key).is_some() {
                return Err(ConfigError::ServiceExists.into());
            }
            if pe {
                return Err(ConfigError::SchedulerNotFound.into());
            }
            c.add_service(spec)?;
        }
        Op::EditService { spec, pe } => {
            if c.service(&spec.key).is_none() {
                return Err(ConfigError::NoSuchService.into());
            }
            if pe {
                return Err(ConfigError::SchedulerNotFound.into());
            }
            c.edit_service(spec)?;
        }
        Op::DeleteService(key) => c.delete_service(&key)?,
        Op::Clear => c.clear(),
        Op::AddDest(key, spec) => {
            c.add_dest(&key, spec)?;
        }
        Op::EditDest(key, spec) => c.edit_dest(&key, spec)?,
        Op::DeleteDest(key, addr, port) => c.delete_dest(&key, addr, port)?,
        Op::SetTimeouts(t) => c.set_timeouts(t.tcp, t.tcpfin, t.udp)?,
        Op::Zero(key) => {
            if let Some(k) = &key {
                if c.service(k).is_none() {
                    return Err(ConfigError::NoSuchService.into());
                }
            }
            zeros.push(key);
            return Ok(false);
        }
        Op::AddMark(r) => c.add_mark_rule(r)?,
        Op::DeleteMark(r) => c.delete_mark_rule(&r)?,
    }
    Ok(true)
}

impl Core {
    /// Applies one request (an operation). On success returns the snapshot to publish, `None`
    /// when the configuration did not change (`zero`).
    pub fn apply(
        &mut self,
        req: &Request,
        cores: &[Arc<CoreStats>],
    ) -> Result<Option<Snapshot>, OpError> {
        self.apply_all(std::slice::from_ref(req), None, cores)
    }

    /// Applies `ops` all or nothing. Errors name the failing operation's line: `lines[i]` when
    /// given, else i + 1.
    pub fn restore(
        &mut self,
        ops: &[Request],
        lines: Option<&[usize]>,
        cores: &[Arc<CoreStats>],
    ) -> Result<Option<Snapshot>, OpError> {
        if let Some(l) = lines {
            if l.len() != ops.len() {
                return Err(OpError::new(
                    format!(
                        "restore: {} line numbers for {} operations",
                        l.len(),
                        ops.len()
                    ),
                    EXIT_USAGE,
                ));
            }
        }
        let line = |i: usize| lines.and_then(|l| l.get(i).copied()).unwrap_or(i + 1);
        self.apply_all(ops, Some(&line), cores)
    }

    fn apply_all(
        &mut self,
        ops: &[Request],
        line: Option<&dyn Fn(usize) -> usize>,
        cores: &[Arc<CoreStats>],
    ) -> Result<Option<Snapshot>, OpError> {
        let mut work = self.config.clone();
        work.begin_batch();
        let mut zeros = Vec::new();
        let mut changed = false;
        for (i, req) in ops.iter().enumerate() {
            let r = op_of(req).and_then(|op| apply_op(&mut work, op, &mut zeros));
            match (r, line) {
                (Ok(c), _) => changed |= c,
                (Err(e), Some(l)) => return Err(e.at_line(l(i))),
                (Err(e), None) => return Err(e),
            }
        }
        let snap = if changed {
            let snap = Snapshot::new(work.clone()).map_err(OpError::from)?;
            self.config = work;
            Some(snap)
        } else {
            None
        };
        for z in zeros {
            self.zero(z.as_ref(), cores);
        }
        Ok(snap)
    }

    /// `-Z`: remembers the current counters as the new zero and restarts the estimators.
    fn zero(&mut self, key: Option<&ServiceKey>, cores: &[Arc<CoreStats>]) {
        // (service id, incarnation, [(dest id, incarnation)])
        type Target = (ServiceId, u64, Vec<(DestId, u64)>);
        let targets: Vec<Target> = self
            .config
            .services()
            .iter()
            .filter(|s| match key {
                Some(k) => s.key == *k,
                None => true,
            })
            .map(|s| {
                (
                    s.id,
                    s.incarnation,
                    s.dests.iter().map(|d| (d.id, d.incarnation)).collect(),
                )
            })
            .collect();
        for (id, inc, dests) in targets {
            let t = sum_service(cores_iter(cores), id);
            self.svc_base.insert(id, (inc, t));
            self.svc_est.insert(id, (inc, Estimator::new(t)));
            for (did, dinc) in dests {
                let (t, _) = sum_dest(cores_iter(cores), did);
                self.dest_base.insert(did, (dinc, t));
                self.dest_est.insert(did, (dinc, Estimator::new(t)));
            }
        }
        if key.is_none() {
            let t = sum_total(cores_iter(cores));
            self.total_base = t;
            self.total_est = Some(Estimator::new(t));
        }
    }
}

/// Parses rules in `ipvsadm -S` syntax (plus the `--add-mark` extra) into the operations a
/// `restore` applies, with their line numbers. Errors read "line N: message".
pub fn rules_to_ops(text: &str, names: &dyn Names) -> Result<(Vec<Request>, Vec<usize>), OpError> {
    let cmds = parse_restore_with(text, "rvs", names)
        .map_err(|e| OpError::new(e.to_string(), e.error.exit_code))?;
    let mut ops = Vec::with_capacity(cmds.len());
    let mut lines = Vec::with_capacity(cmds.len());
    for (line, cmd) in &cmds {
        let req = proto::request_of(cmd)
            .map_err(|e| OpError::new(e.message, e.exit_code).at_line(*line))?;
        ops.push(req);
        lines.push(*line);
    }
    Ok((ops, lines))
}
