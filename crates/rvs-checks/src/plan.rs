//! From a parsed keepalived.conf to what the engine runs: the IPVS services it owns (groups
//! expanded, one per address and port as keepalived creates them), their real servers, and
//! the distinct probes. Two checkers that would send the same bytes to the same server on the
//! same schedule are one probe, however many virtual servers list that server: keepalived runs
//! one per virtual server, which at scale is most of its load.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::time::Duration;

use rvs_ctl::model::{Fwd, ServiceProto};
use rvs_ctl::proto::{DestConf, ServiceConf, ServiceRef};

use crate::model::*;
use crate::probe::ProbeSpec;
use crate::ParseError;

/// Services one virtual_server_group may expand to: a typo'd /8 range must not create 16
/// million services.
pub const MAX_GROUP_SERVICES: usize = 4096;

/// A probe and its schedule. Equal plans are one probe.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProbePlan {
    pub spec: ProbeSpec,
    pub delay_loop: Duration,
    pub retry: u32,
    pub delay_before_retry: Duration,
    pub warmup: Duration,
    /// Starts down (keepalived's `alpha`): not in the table until it first passes.
    pub alpha: bool,
    pub log_all_failures: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRs {
    pub addr: Ipv4Addr,
    pub port: u16,
    pub weight: u32,
    pub u_threshold: u32,
    pub l_threshold: u32,
    pub inhibit_on_failure: bool,
    pub notify_up: Option<String>,
    pub notify_down: Option<String>,
    /// Indices into [`Plan::probes`]; empty: always up (a real_server without checkers).
    pub probes: Vec<usize>,
}

impl PlannedRs {
    pub fn dest(&self, weight: u32) -> DestConf {
        DestConf {
            addr: self.addr,
            port: self.port,
            fwd: Fwd::Masq,
            weight,
            u_threshold: self.u_threshold,
            l_threshold: self.l_threshold,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedVs {
    pub conf: ServiceConf,
    /// keepalived's notation for logs: "[10.0.0.13]:tcp:80" or "FWM 7".
    pub name: String,
    pub quorum: u32,
    pub hysteresis: u32,
    pub quorum_up: Option<String>,
    pub quorum_down: Option<String>,
    /// keepalived's `omega`: at shutdown, run the down notifiers as if everything went down.
    pub omega: bool,
    pub sorry: Option<SorryServer>,
    pub real_servers: Vec<PlannedRs>,
}

impl PlannedVs {
    pub fn key(&self) -> ServiceRef {
        self.conf.key()
    }

    /// The sorry server as a destination (port 0 = the service's, as keepalived).
    pub fn sorry_dest(&self, weight: u32) -> Option<DestConf> {
        self.sorry.as_ref().map(|s| DestConf {
            addr: s.addr,
            port: s.port.unwrap_or(self.conf.port),
            fwd: Fwd::Masq,
            weight,
            u_threshold: 0,
            l_threshold: 0,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    pub services: Vec<PlannedVs>,
    pub probes: Vec<ProbePlan>,
}

/// keepalived's `[IP]:proto:PORT`.
pub fn endpoint(addr: Ipv4Addr, proto: &str, port: u16) -> String {
    format!("[{addr}]:{proto}:{port}")
}

/// keepalived's protocol word for a service's endpoints (fwmark services carry TCP).
fn proto_name(p: ServiceProto) -> &'static str {
    match p {
        ServiceProto::Udp => "udp",
        _ => "tcp",
    }
}

fn err(at: &Location, keyword: &str, msg: impl Into<String>) -> ParseError {
    ParseError {
        file: at.file.clone(),
        line: at.line,
        keyword: keyword.to_string(),
        msg: msg.into(),
    }
}

/// The IPVS services of one virtual_server block.
fn services_of(cfg: &ChecksConfig, vs: &VirtualServer) -> Result<Vec<ServiceConf>, ParseError> {
    let proto = match vs.protocol {
        Proto::Udp => ServiceProto::Udp,
        _ => ServiceProto::Tcp,
    };
    let netmask = vs.persistence_granularity.unwrap_or(Ipv4Addr::BROADCAST);
    let conf = |proto, addr, port, fwmark| ServiceConf {
        proto,
        addr,
        port,
        fwmark,
        sched: vs.lb_algo.clone(),
        flags: vs.sched_flags,
        persistent: vs.persistence_timeout,
        netmask,
        pe: None,
        ops: false,
    };
    if vs.ops {
        return Err(err(
            &vs.at,
            "virtual_server",
            "ops: one-packet scheduling is not supported by rvs",
        ));
    }
    Ok(match &vs.addr {
        VsAddr::Ip(sa) => vec![conf(proto, *sa.ip(), sa.port(), 0)],
        VsAddr::Fwmark(m) => vec![conf(ServiceProto::Fwmark, Ipv4Addr::UNSPECIFIED, 0, *m)],
        VsAddr::Group(name) => {
            let Some(g) = cfg.groups.iter().find(|g| &g.name == name) else {
                return Err(err(&vs.at, "virtual_server", format!("no group {name}")));
            };
            let mut out = Vec::new();
            for e in &g.entries {
                match e {
                    VsgEntry::Fwmark(m) => {
                        out.push(conf(ServiceProto::Fwmark, Ipv4Addr::UNSPECIFIED, 0, *m))
                    }
                    VsgEntry::Range { first, last, port } => {
                        let (a, b) = (u32::from(*first), u32::from(*last));
                        if b < a || (b - a) as usize >= MAX_GROUP_SERVICES {
                            return Err(err(
                                &g.at,
                                "virtual_server_group",
                                format!("range {first}-{last} is empty or over {MAX_GROUP_SERVICES} addresses"),
                            ));
                        }
                        for ip in a..=b {
                            out.push(conf(proto, Ipv4Addr::from(ip), *port, 0));
                        }
                    }
                }
                if out.len() > MAX_GROUP_SERVICES {
                    return Err(err(
                        &g.at,
                        "virtual_server_group",
                        format!("expands to over {MAX_GROUP_SERVICES} services"),
                    ));
                }
            }
            out
        }
    })
}

fn service_name(c: &ServiceConf) -> String {
    match c.proto {
        ServiceProto::Fwmark => format!("FWM {}", c.fwmark),
        p => endpoint(c.addr, proto_name(p), c.port),
    }
}

/// The probe of one checker of `rs` in `vs`.
fn probe_of(vs: &VirtualServer, rs: &RealServer, c: &Checker) -> ProbePlan {
    let timeout = match &c.kind {
        CheckKind::Misc(m) => m
            .misc_timeout
            .map(|s| Duration::from_secs(u64::from(s)))
            .unwrap_or(c.common.delay_loop),
        _ => c.common.connect_timeout,
    };
    // keepalived's order for the Host: header: the checker's, the real server's, the
    // virtual server's (a url's own wins over all, inside the probe).
    let virtualhost = match &c.kind {
        CheckKind::Http(h) => h
            .virtualhost
            .clone()
            .or_else(|| rs.virtualhost.clone())
            .or_else(|| vs.virtualhost.clone()),
        _ => None,
    };
    ProbePlan {
        spec: ProbeSpec {
            kind: c.kind.clone(),
            connect_ip: c.common.connect_ip,
            connect_port: c.common.connect_port,
            bindto: c.common.bindto,
            bind_port: c.common.bind_port,
            bind_if: c.common.bind_if.clone(),
            fwmark: c.common.fwmark,
            timeout,
            virtualhost,
        },
        delay_loop: c.common.delay_loop,
        retry: c.common.retry,
        delay_before_retry: c.common.delay_before_retry,
        warmup: c.common.warmup,
        alpha: c.common.alpha,
        log_all_failures: c.common.log_all_failures,
    }
}

/// Builds the plan, or the first error (file, line, keyword): a service defined twice (also
/// through groups), a sorry server that is also a real server. (The parser refuses a real
/// server listed twice.)
pub fn plan(cfg: &ChecksConfig) -> Result<Plan, ParseError> {
    let mut out = Plan::default();
    let mut probe_ids: HashMap<ProbePlan, usize> = HashMap::new();
    let mut seen: HashSet<ServiceRef> = HashSet::new();
    for vs in &cfg.virtual_servers {
        let mut rss = Vec::new();
        for rs in &vs.real_servers {
            let mut probes = Vec::new();
            for c in &rs.checkers {
                let p = probe_of(vs, rs, c);
                let next = probe_ids.len();
                let id = *probe_ids.entry(p.clone()).or_insert_with(|| {
                    out.probes.push(p);
                    next
                });
                probes.push(id);
            }
            rss.push(PlannedRs {
                addr: rs.addr,
                port: rs.port,
                weight: rs.weight,
                u_threshold: rs.uthreshold.unwrap_or(0),
                l_threshold: rs.lthreshold.unwrap_or(0),
                inhibit_on_failure: rs.inhibit_on_failure,
                notify_up: rs.notify_up.clone(),
                notify_down: rs.notify_down.clone(),
                probes,
            });
        }
        if let Some(s) = &vs.sorry_server {
            if rss
                .iter()
                .any(|r| r.addr == s.addr && Some(r.port) == s.port)
            {
                return Err(err(
                    &vs.at,
                    "sorry_server",
                    "is also a real_server of this virtual_server",
                ));
            }
        }
        for conf in services_of(cfg, vs)? {
            if !seen.insert(conf.key()) {
                return Err(err(
                    &vs.at,
                    "virtual_server",
                    format!("{} is defined twice", service_name(&conf)),
                ));
            }
            out.services.push(PlannedVs {
                name: service_name(&conf),
                conf,
                quorum: vs.quorum,
                hysteresis: vs.hysteresis,
                quorum_up: vs.quorum_up.clone(),
                quorum_down: vs.quorum_down.clone(),
                omega: vs.omega,
                sorry: vs.sorry_server.clone(),
                real_servers: rss.clone(),
            });
        }
    }
    Ok(out)
}

/// keepalived's name of a checker kind, for listings and logs.
pub fn kind_name(k: &CheckKind) -> &'static str {
    match k {
        CheckKind::Tcp => "TCP_CHECK",
        CheckKind::Http(h) if h.tls => "SSL_GET",
        CheckKind::Http(_) => "HTTP_GET",
        CheckKind::Misc(_) => "MISC_CHECK",
        CheckKind::Udp(_) => "UDP_CHECK",
        CheckKind::Dns(_) => "DNS_CHECK",
    }
}

/// What a probe targets, in keepalived's notation (MISC_CHECK: the script).
pub fn target_of(s: &ProbeSpec) -> String {
    match &s.kind {
        CheckKind::Misc(m) => m.misc_path.clone(),
        CheckKind::Udp(_) | CheckKind::Dns(_) => endpoint(s.connect_ip, "udp", s.connect_port),
        _ => endpoint(s.connect_ip, "tcp", s.connect_port),
    }
}

/// The name of a real server in a service, keepalived's way.
pub fn rs_name(vs: &PlannedVs, addr: Ipv4Addr, port: u16) -> String {
    endpoint(addr, proto_name(vs.conf.proto), port)
}
