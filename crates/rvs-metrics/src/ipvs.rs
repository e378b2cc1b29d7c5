//! The IPVS metrics. `node_ipvs_*` are node_exporter's IPVS collector's, with its names, types
//! and labels, so that dashboards and alerts written for a kernel director keep working:
//! node_exporter reads `/proc/net/ip_vs_stats` (the totals) and `/proc/net/ip_vs` (the real
//! servers), whose `FWM` lines have no address (`local_address=""`, `local_port="0"`) and the
//! mark as 8 hex digits. `rvs_service_*` and `rvs_backend_*` add what node_exporter cannot see:
//! traffic per service and per real server.

use crate::{family, n, Field, Kind, Labels, Value};
use prometheus_client::encoding::DescriptorEncoder;
use rvs_ctl::model::{DestEntry, ListSnapshot, ServiceEntry, ServiceProto, Stats};
use std::fmt::Error;

/// The labels node_exporter gives a service: local address, port, protocol and mark.
fn service_labels(s: &ServiceEntry) -> Labels {
    let (addr, port, proto, mark) = match s.proto {
        ServiceProto::Fwmark => (String::new(), 0, "FWM", format!("{:08X}", s.fwmark)),
        p => (
            s.addr.to_string(),
            s.port,
            match p {
                ServiceProto::Udp => "UDP",
                ServiceProto::Sctp => "SCTP",
                _ => "TCP",
            },
            String::new(),
        ),
    };
    vec![
        ("local_address", addr),
        ("local_port", port.to_string()),
        ("proto", proto.to_string()),
        ("local_mark", mark),
    ]
}

/// node_exporter's backend labels, in its order.
fn backend_labels(s: &ServiceEntry, d: &DestEntry) -> Labels {
    let mut l = service_labels(s);
    let (mark, proto) = (l.remove(3), l.remove(2));
    l.push(("remote_address", d.addr.to_string()));
    l.push(("remote_port", d.port.to_string()));
    l.push(proto);
    l.push(mark);
    l
}

const TRAFFIC: [Field<Stats, u64>; 5] = [
    ("connections", "connections made", |s| s.conns),
    ("incoming_packets", "incoming packets", |s| s.inpkts),
    ("outgoing_packets", "outgoing packets", |s| s.outpkts),
    ("incoming_bytes", "incoming bytes", |s| s.inbytes),
    ("outgoing_bytes", "outgoing bytes", |s| s.outbytes),
];

pub(crate) fn encode(list: &ListSnapshot, enc: &mut DescriptorEncoder) -> Result<(), Error> {
    let total = list.total.as_ref().map(|t| t.stats).unwrap_or_default();
    for (name, what, get) in TRAFFIC {
        family(
            enc,
            &format!("node_ipvs_{name}"),
            &format!("The total number of {what} (all services, as /proc/net/ip_vs_stats)."),
            Kind::Counter,
            [(Labels::new(), n(get(&total)))],
        )?;
    }
    let backends = || {
        list.services
            .iter()
            .flat_map(|s| s.dests.iter().map(move |d| (s, d)))
    };
    let gauges: [Field<DestEntry, Value>; 3] = [
        (
            "node_ipvs_backend_connections_active",
            "The current active connections by local and remote address.",
            |d| n(d.activeconns),
        ),
        (
            "node_ipvs_backend_connections_inactive",
            "The current inactive connections by local and remote address.",
            |d| n(d.inactconns),
        ),
        (
            "node_ipvs_backend_weight",
            "The current backend weight by local and remote address.",
            |d| n(d.weight.max(0).unsigned_abs()),
        ),
    ];
    for (name, help, get) in gauges {
        let rows = backends().map(|(s, d)| (backend_labels(s, d), get(d)));
        family(enc, name, help, Kind::Gauge, rows)?;
    }
    for (name, what, get) in TRAFFIC {
        family(
            enc,
            &format!("rvs_service_{name}"),
            &format!("The number of {what} by a virtual service (ipvsadm -L -n --stats)."),
            Kind::Counter,
            list.services
                .iter()
                .map(|s| (service_labels(s), n(get(&s.stats)))),
        )?;
        family(
            enc,
            &format!("rvs_backend_{name}"),
            &format!("The number of {what} by a real server of a service."),
            Kind::Counter,
            backends().map(|(s, d)| (backend_labels(s, d), n(get(&d.stats)))),
        )?;
    }
    family(
        enc,
        "rvs_backend_connections_persistent",
        "Persistence templates pointing at a real server (ipvsadm -L --persistent-conn).",
        Kind::Gauge,
        backends().map(|(s, d)| (backend_labels(s, d), n(d.persistconns))),
    )?;
    family(
        enc,
        "rvs_services",
        "Virtual services configured.",
        Kind::Gauge,
        [(Labels::new(), n(list.services.len() as u64))],
    )
}
