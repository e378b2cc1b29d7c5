//! Building listings from the core's state and the workers' counters: `-L` (services, real
//! servers, totals, rates), `-L -c` connections, `-L --timeout` and the mark rules.

use super::state::cores_iter;
use super::{service_key, Core, OpError, EXIT_LIST};
use crate::model::{
    self, ConnEntry, DestEntry, Fwd, ListSnapshot, MarkRuleEntry, ServiceEntry, TotalEntry,
};
use crate::proto::ServiceRef;
use rvs_lb::config::{MarkRule, Proto, Service, ServiceId, ServiceKey};
use rvs_lb::stats::{sum_dest, sum_service, sum_total, CoreStats, Estimator, Traffic};
use rvs_lb::ConnInfo;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

fn mark_entry(r: &MarkRule) -> MarkRuleEntry {
    MarkRuleEntry {
        mark: r.mark,
        proto: match r.proto {
            Proto::Tcp => model::ServiceProto::Tcp,
            Proto::Udp => model::ServiceProto::Udp,
        },
        vaddr: r.vaddr,
        port_lo: r.port_lo,
        port_hi: r.port_hi,
    }
}

fn stats_of(t: &Traffic) -> model::Stats {
    model::Stats {
        conns: t.conns,
        inpkts: t.inpkts,
        outpkts: t.outpkts,
        inbytes: t.inbytes,
        outbytes: t.outbytes,
    }
}

fn rates_of(e: Option<&Estimator>) -> model::Rates {
    let r = e.map(Estimator::rates).unwrap_or_default();
    model::Rates {
        cps: r.cps,
        inpps: r.inpps,
        outpps: r.outpps,
        inbps: r.inbps,
        outbps: r.outbps,
    }
}

fn sat32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// Kernel-style protocol name of a connection entry.
pub(super) fn conn_proto_name(p: u8) -> String {
    match Proto::from_number(p) {
        Some(p) => p.name().to_string(),
        None if p == 0 => "IP".to_string(),
        None => p.to_string(),
    }
}

/// Connections as `-L -c` lists them.
pub fn conn_entries(conns: &[ConnInfo]) -> Vec<ConnEntry> {
    conns
        .iter()
        .map(|c| ConnEntry {
            proto: conn_proto_name(c.proto),
            caddr: c.caddr,
            cport: c.cport,
            vaddr: c.vaddr,
            vport: c.vport,
            daddr: c.daddr,
            dport: c.dport,
            state: c.state.to_string(),
            expires_secs: u64::from(c.expires_secs),
            pe_name: None,
            pe_data: None,
        })
        .collect()
}

impl Core {
    fn service_entry(&self, s: &Service, cores: &[Arc<CoreStats>]) -> ServiceEntry {
        let (proto, addr, port, fwmark) = match s.key {
            ServiceKey::Addr {
                proto,
                vaddr,
                vport,
            } => (
                match proto {
                    Proto::Tcp => model::ServiceProto::Tcp,
                    Proto::Udp => model::ServiceProto::Udp,
                },
                vaddr,
                vport,
                0,
            ),
            ServiceKey::Fwmark(m) => (model::ServiceProto::Fwmark, Ipv4Addr::UNSPECIFIED, 0, m),
        };
        let base = |m: &HashMap<ServiceId, (u64, Traffic)>| {
            m.get(&s.id)
                .filter(|(inc, _)| *inc == s.incarnation)
                .map(|(_, t)| *t)
                .unwrap_or_default()
        };
        let traffic = sum_service(cores_iter(cores), s.id).since(&base(&self.svc_base));
        let est = self
            .svc_est
            .get(&s.id)
            .filter(|(inc, _)| *inc == s.incarnation)
            .map(|(_, e)| e);
        let dests = s
            .dests
            .iter()
            .map(|d| {
                let (t, g) = sum_dest(cores_iter(cores), d.id);
                let b = self
                    .dest_base
                    .get(&d.id)
                    .filter(|(inc, _)| *inc == d.incarnation)
                    .map(|(_, t)| *t)
                    .unwrap_or_default();
                let e = self
                    .dest_est
                    .get(&d.id)
                    .filter(|(inc, _)| *inc == d.incarnation)
                    .map(|(_, e)| e);
                DestEntry {
                    addr: d.addr,
                    port: d.port,
                    fwd: Fwd::Masq,
                    weight: i32::try_from(d.weight).unwrap_or(i32::MAX),
                    u_threshold: d.u_threshold,
                    l_threshold: d.l_threshold,
                    activeconns: sat32(g.activeconns),
                    inactconns: sat32(g.inactconns),
                    persistconns: sat32(g.persistconns),
                    stats: stats_of(&t.since(&b)),
                    rates: rates_of(e),
                    tunnel: None,
                }
            })
            .collect();
        ServiceEntry {
            proto,
            addr,
            port,
            fwmark,
            sched: s.scheduler.clone(),
            flags: s.sched_flags.0,
            persistent: s.persistence.map(|p| p.timeout),
            netmask: s
                .persistence
                .map(|p| p.netmask)
                .unwrap_or(Ipv4Addr::BROADCAST),
            pe_name: None,
            ops: false,
            stats: stats_of(&traffic),
            rates: rates_of(est),
            dests,
        }
    }

    /// `-L [service]`: services in configuration (insertion) order with live counters summed
    /// over `cores`. A missing service is "No such service" with exit 1.
    pub fn list(
        &self,
        service: Option<&ServiceRef>,
        cores: &[Arc<CoreStats>],
        conn_tab_size: u32,
    ) -> Result<ListSnapshot, OpError> {
        let services = match service {
            Some(r) => {
                let key = service_key(r).map_err(OpError::for_listing)?;
                let s = self
                    .config
                    .service(&key)
                    .ok_or_else(|| OpError::new("No such service", EXIT_LIST))?;
                vec![self.service_entry(s, cores)]
            }
            None => self
                .config
                .services()
                .iter()
                .map(|s| self.service_entry(s, cores))
                .collect(),
        };
        let total = sum_total(cores_iter(cores)).since(&self.total_base);
        Ok(ListSnapshot {
            conn_tab_size,
            services,
            total: Some(TotalEntry {
                stats: stats_of(&total),
                rates: rates_of(self.total_est.as_ref()),
            }),
        })
    }

    /// `-L --timeout`.
    pub fn timeouts(&self) -> model::TimeoutTriple {
        let (tcp, tcpfin, udp) = self.config.timeouts().triple();
        model::TimeoutTriple { tcp, tcpfin, udp }
    }

    pub fn mark_rules(&self) -> Vec<MarkRuleEntry> {
        self.config.mark_rules().iter().map(mark_entry).collect()
    }
}
