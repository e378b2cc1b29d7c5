//! rvs's commands on DPDK's telemetry socket, beside the standard `/ethdev/...` ones, so that
//! `dpdk-telemetry.py -f <file_prefix>` shows the appliance's own state:
//! `/rvs/stats` (totals), `/rvs/services` (one dict per virtual service, keyed by its index:
//! DPDK refuses addresses as keys) and
//! `/rvs/service,<SERVICE>` (one service's real servers; SERVICE as `/rvs/services` shows it,
//! e.g. `TCP 10.0.0.13:80` or `FWM 7`). Answered on DPDK's telemetry thread from the same
//! reports as the control socket.

use super::metrics::reports;
use super::mgmt::Mgmt;
use super::model::{ServiceEntry, ServiceProto};
use crate::dpdk::telemetry::{register as register_cmd, Handler, Reply, Value};
use std::sync::{Arc, Weak};

/// A service as `/rvs/services` shows it and `/rvs/service` takes it (ipvsadm's notation).
fn name(s: &ServiceEntry) -> String {
    match s.proto {
        ServiceProto::Fwmark => format!("FWM {}", s.fwmark),
        ServiceProto::Tcp => format!("TCP {}:{}", s.addr, s.port),
        ServiceProto::Udp => format!("UDP {}:{}", s.addr, s.port),
        ServiceProto::Sctp => format!("SCTP {}:{}", s.addr, s.port),
    }
}

/// The parameter of `/rvs/service` as a service name: spaces collapsed, protocol upper case.
fn normalise(p: &str) -> String {
    p.split_whitespace()
        .map(|w| w.to_string())
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase()
}

fn u(k: &str, v: u64) -> (String, Value) {
    (k.to_string(), Value::U64(v))
}

fn stats(mgmt: &Mgmt) -> Result<Reply, String> {
    let (list, ports) = reports(mgmt)?;
    let mut d = vec![
        (
            "version".to_string(),
            Value::Str(env!("CARGO_PKG_VERSION").into()),
        ),
        u("workers", ports.workers.len() as u64),
        u("services", list.services.len() as u64),
        u(
            "real_servers",
            list.services.iter().map(|s| s.dests.len() as u64).sum(),
        ),
    ];
    let e = |f: fn(&super::report::EngineReport) -> u64| -> u64 {
        ports.workers.iter().map(|w| f(&w.engine)).sum()
    };
    d.push(u("conn_table_entries", e(|x| x.table_entries)));
    d.push(u("conn_table_capacity", e(|x| x.table_capacity)));
    d.push(u("connections_created", e(|x| x.conns_created)));
    d.push(u(
        "lb_drops",
        e(|x| x.drops.iter().map(|r| r.1).sum::<u64>()),
    ));
    if let Some(t) = &list.total {
        d.push(u("conns", t.stats.conns));
        d.push(u("inpkts", t.stats.inpkts));
        d.push(u("outpkts", t.stats.outpkts));
    }
    for p in &ports.ports {
        let r = &p.role;
        d.push(u(&format!("{r}_rx_packets"), p.sw.rx_packets));
        d.push(u(&format!("{r}_tx_packets"), p.sw.tx_packets));
        d.push(u(&format!("{r}_drops"), p.sw.total_drops()));
        d.push(u(&format!("{r}_to_kernel"), p.sw.to_kernel));
    }
    Ok(Reply::Dict(d))
}

fn services(mgmt: &Mgmt) -> Result<Reply, String> {
    let (list, _) = reports(mgmt)?;
    Ok(Reply::List(
        list.services
            .iter()
            .map(|s| {
                let active = s.dests.iter().map(|d| u64::from(d.activeconns)).sum();
                let inactive = s.dests.iter().map(|d| u64::from(d.inactconns)).sum();
                vec![
                    ("service".to_string(), Value::Str(name(s))),
                    ("scheduler".to_string(), Value::Str(s.sched.clone())),
                    u("real_servers", s.dests.len() as u64),
                    u("active_conns", active),
                    u("inactive_conns", inactive),
                    u("conns", s.stats.conns),
                    u("inpkts", s.stats.inpkts),
                    u("outpkts", s.stats.outpkts),
                    u("inbytes", s.stats.inbytes),
                    u("outbytes", s.stats.outbytes),
                ]
            })
            .collect(),
    ))
}

fn service(mgmt: &Mgmt, which: &str) -> Result<Reply, String> {
    let which = normalise(which);
    if which.is_empty() {
        return Err(
            "usage: /rvs/service,SERVICE (as /rvs/services shows it, e.g. TCP 10.0.0.13:80)".into(),
        );
    }
    let (list, _) = reports(mgmt)?;
    let s = list
        .services
        .iter()
        .find(|s| name(s) == which)
        .ok_or_else(|| format!("no service {which} (see /rvs/services)"))?;
    Ok(Reply::List(
        s.dests
            .iter()
            .map(|d| {
                vec![
                    (
                        "real_server".to_string(),
                        Value::Str(format!("{}:{}", d.addr, d.port)),
                    ),
                    u("weight", d.weight.max(0).unsigned_abs().into()),
                    u("active_conns", d.activeconns.into()),
                    u("inactive_conns", d.inactconns.into()),
                    u("persistent_conns", d.persistconns.into()),
                    u("conns", d.stats.conns),
                    u("inpkts", d.stats.inpkts),
                    u("outpkts", d.stats.outpkts),
                ]
            })
            .collect(),
    ))
}

/// Registers the commands; they answer an error once the appliance is stopping (`Mgmt` gone).
pub(super) fn register(mgmt: &Arc<Mgmt>) -> Result<(), crate::dpdk::Error> {
    type Cmd = fn(&Mgmt, &str) -> Result<Reply, String>;
    let cmds: [(&str, &str, Cmd); 3] = [
        (
            "/rvs/stats",
            "rvs totals: services, connections, port packets and drops. No parameters",
            |m, _| stats(m),
        ),
        (
            "/rvs/services",
            "rvs virtual services (the first 255), keyed 0, 1, ...: service, scheduler, counters. No parameters",
            |m, _| services(m),
        ),
        (
            "/rvs/service",
            "One rvs service's real servers. Parameter: a service as /rvs/services shows it",
            service,
        ),
    ];
    for (cmd, help, f) in cmds {
        let weak: Weak<Mgmt> = Arc::downgrade(mgmt);
        let h: Handler = Arc::new(move |params: &str| {
            let m = weak.upgrade().ok_or("the appliance is stopping")?;
            f(&m, params)
        });
        register_cmd(cmd, help, h)?;
    }
    Ok(())
}
