//! rvs's own metrics: ports (per worker, and the NIC's counters), drops by reason, handover,
//! the exception path, the connection tables, the added-latency histogram, the health checks
//! and the build.

use crate::{family, n, real, Field, Kind, Labels, Scrape, Value};
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::MetricType;
use rvs_ctl::checks::ChecksReport;
use rvs_ctl::proto::{PortReport, PortStatsReply, WorkerReport};
use rvs_ctl::report::{LatencyReport, PortCountersSnapshot};
use std::fmt::Error;

/// Upper bounds (seconds) of the latency histogram's buckets. The workers keep finer buckets
/// (6.25% wide); these are the ones a dashboard needs around the 10 us target.
const LATENCY_BOUNDS: [f64; 14] = [
    1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 1e-1,
];

pub(crate) fn encode(s: &Scrape, enc: &mut DescriptorEncoder) -> Result<(), Error> {
    let info = Info::new(vec![("version", s.version.clone())]);
    info.encode(enc.encode_descriptor("rvs_build", "The running rvs.", None, MetricType::Info)?)?;
    family(
        enc,
        "rvs_metrics_gather_seconds",
        "How long reading this scrape's reports from the appliance took.",
        Kind::Gauge,
        [(Labels::new(), real(s.gather_secs))],
    )?;
    ports(&s.ports, enc)?;
    workers(&s.ports.workers, enc)?;
    if let Some(h) = s.checks_heartbeat_secs {
        family(
            enc,
            "rvs_checks_heartbeat_age_seconds",
            "Seconds since the checker thread last ticked (every 100 ms; over 2 s: stalled).",
            Kind::Gauge,
            [(Labels::new(), real(h))],
        )?;
        family(
            enc,
            "rvs_checks_report_ok",
            "1 when the checker thread answered this scrape (0: no rvs_check*/rvs_checker_*).",
            Kind::Gauge,
            [(Labels::new(), n(u8::from(s.checks.is_some())))],
        )?;
    }
    if let Some(c) = &s.checks {
        checks(c, enc)?;
    }
    Ok(())
}

fn port_worker(p: usize, w: &WorkerReport, ports: &[PortReport]) -> Labels {
    vec![
        (
            "port",
            ports
                .get(p)
                .map_or_else(|| p.to_string(), |r| r.role.clone()),
        ),
        ("worker", w.worker.to_string()),
    ]
}

const PORT_COUNTERS: [Field<PortCountersSnapshot, u64>; 9] = [
    ("rx_packets", "Packets received", |c| c.rx_packets),
    ("rx_bytes", "Bytes received", |c| c.rx_bytes),
    ("tx_packets", "Packets sent", |c| c.tx_packets),
    ("tx_bytes", "Bytes sent", |c| c.tx_bytes),
    ("arp_replies", "ARP replies sent", |c| c.arp_replies),
    ("echo_replies", "ICMP echo replies sent", |c| c.echo_replies),
    (
        "handed_over",
        "Packets handed to the worker that owns their connection",
        |c| c.handed_over,
    ),
    (
        "fragments_out",
        "IPv4 fragments built for an egress MTU",
        |c| c.fragments_out,
    ),
    (
        "to_kernel",
        "Packets passed to the kernel twin (exception path)",
        |c| c.to_kernel,
    ),
];

fn ports(r: &PortStatsReply, enc: &mut DescriptorEncoder) -> Result<(), Error> {
    let per_worker = || {
        r.workers.iter().flat_map(|w| {
            w.ports
                .iter()
                .enumerate()
                .map(move |(p, c)| (port_worker(p, w, &r.ports), c))
        })
    };
    for (name, help, get) in PORT_COUNTERS {
        family(
            enc,
            &format!("rvs_port_{name}"),
            &format!("{help}, by port and worker."),
            Kind::Counter,
            per_worker().map(|(l, c)| (l, n(get(c)))),
        )?;
    }
    family(
        enc,
        "rvs_port_drops",
        "Packets dropped, by port, worker and reason (reason=\"lb\": see rvs_lb_drops_total).",
        Kind::Counter,
        per_worker().flat_map(|(l, c)| {
            c.drops.iter().map(move |(reason, v)| {
                let mut l = l.clone();
                l.push(("reason", reason.clone()));
                (l, n(*v))
            })
        }),
    )?;
    let by_port = |p: &PortReport| vec![("port", p.role.clone())];
    family(
        enc,
        "rvs_port_from_kernel",
        "Packets the kernel twin sent out of the port (exception path).",
        Kind::Counter,
        r.ports.iter().map(|p| (by_port(p), n(p.sw.from_kernel))),
    )?;
    family(
        enc,
        "rvs_port_kernel_drops",
        "Exception-path packets dropped (twin queue full, no mbuf, TX full).",
        Kind::Counter,
        r.ports.iter().map(|p| (by_port(p), n(p.sw.kernel_drops))),
    )?;
    family(
        enc,
        "rvs_port_link_up",
        "1 when the port's link is up.",
        Kind::Gauge,
        r.ports.iter().map(|p| (by_port(p), n(u8::from(p.link_up)))),
    )?;
    let info = |p: &PortReport| {
        vec![
            ("port", p.role.clone()),
            ("device", p.device.clone()),
            ("driver", p.driver.clone()),
            ("steering", p.steering.clone()),
            ("mac", p.mac.clone()),
        ]
    };
    family(
        enc,
        "rvs_port_info",
        "The port's device, driver, steering and MAC address (value 1).",
        Kind::Gauge,
        r.ports.iter().map(|p| (info(p), n(1u8))),
    )?;
    let nic: [Field<PortReport, u64>; 8] = [
        ("rx_packets", "Packets the NIC received", |p| p.hw.ipackets),
        ("tx_packets", "Packets the NIC sent", |p| p.hw.opackets),
        ("rx_bytes", "Bytes the NIC received", |p| p.hw.ibytes),
        ("tx_bytes", "Bytes the NIC sent", |p| p.hw.obytes),
        (
            "rx_missed",
            "Packets the NIC dropped for lack of RX descriptors",
            |p| p.hw.imissed,
        ),
        ("rx_errors", "Erroneous packets the NIC received", |p| {
            p.hw.ierrors
        }),
        ("tx_errors", "Packets the NIC failed to send", |p| {
            p.hw.oerrors
        }),
        ("rx_nombuf", "RX mbuf allocation failures", |p| {
            p.hw.rx_nombuf
        }),
    ];
    for (name, help, get) in nic {
        family(
            enc,
            &format!("rvs_nic_{name}"),
            &format!("{help} (DPDK's port statistics)."),
            Kind::Counter,
            r.ports.iter().map(|p| (by_port(p), n(get(p)))),
        )?;
    }
    Ok(())
}

type WorkerValue = fn(&WorkerReport) -> Value;

fn workers(ws: &[WorkerReport], enc: &mut DescriptorEncoder) -> Result<(), Error> {
    let w = |w: &WorkerReport| vec![("worker", w.worker.to_string())];
    let one: [(&str, &str, Kind, WorkerValue); 8] = [
        ("rvs_worker_loops", "Poll loops run.", Kind::Counter, |w| {
            n(w.loops)
        }),
        (
            "rvs_worker_handed_in",
            "Packets other workers handed to this one.",
            Kind::Counter,
            |w| n(w.handed_in),
        ),
        (
            "rvs_conn_table_entries",
            "Connection-table entries in use (connections and persistence templates).",
            Kind::Gauge,
            |w| n(w.engine.table_entries),
        ),
        (
            "rvs_conn_table_capacity",
            "Connection-table entries allocated.",
            Kind::Gauge,
            |w| n(w.engine.table_capacity),
        ),
        (
            "rvs_connections_new",
            "Connections created (templates excluded).",
            Kind::Counter,
            |w| n(w.engine.conns_created),
        ),
        (
            "rvs_templates_new",
            "Persistence templates created.",
            Kind::Counter,
            |w| n(w.engine.templates_created),
        ),
        (
            "rvs_connections_expired",
            "Connection-table entries freed by timeout, flush or reuse.",
            Kind::Counter,
            |w| n(w.engine.conns_expired),
        ),
        (
            "rvs_latency_samples",
            "Bursts timed for the latency histogram (one in 16).",
            Kind::Counter,
            |w| n(w.latency.samples),
        ),
    ];
    for (name, help, kind, get) in one {
        family(enc, name, help, kind, ws.iter().map(|x| (w(x), get(x))))?;
    }
    family(
        enc,
        "rvs_lb_drops",
        "Packets the load-balancing engine dropped, by worker and reason.",
        Kind::Counter,
        ws.iter().flat_map(|x| {
            x.engine.drops.iter().map(move |(reason, v)| {
                let mut l = w(x);
                l.push(("reason", reason.clone()));
                (l, n(*v))
            })
        }),
    )?;
    let mut m = enc.encode_descriptor(
        "rvs_latency_seconds",
        "Added latency: from the return of a sampled RX burst to the return of its TX burst.",
        None,
        MetricType::Histogram,
    )?;
    for x in ws {
        let (sum, count, buckets) = histogram(&x.latency);
        let labels = w(x);
        m.encode_family(&labels)?
            .encode_histogram::<Labels>(sum, count, &buckets, None)?;
    }
    Ok(())
}

/// The workers' fine buckets folded into [`LATENCY_BOUNDS`] (a fine bucket counts under the
/// first bound at or above its own upper bound, so no sample is reported as faster than it
/// was): `(sum, count, [(bound, count in this bucket)])` ending with `+Inf`.
pub(crate) fn histogram(r: &LatencyReport) -> (f64, u64, Vec<(f64, u64)>) {
    let mut out: Vec<(f64, u64)> = LATENCY_BOUNDS
        .iter()
        .chain(&[f64::INFINITY])
        .map(|b| (*b, 0))
        .collect();
    for (ub_ns, count) in &r.buckets {
        let secs = ub_ns / 1e9;
        if let Some(slot) = out.iter_mut().find(|(b, _)| secs <= *b) {
            slot.1 += count;
        }
    }
    let count = out.iter().map(|b| b.1).sum();
    (r.sum_ns / 1e9, count, out)
}

fn checks(c: &ChecksReport, enc: &mut DescriptorEncoder) -> Result<(), Error> {
    let vs_label = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let vs = |v: &rvs_ctl::checks::VsReport| vec![("virtual_server", vs_label(&v.service))];
    let rs_rows = || {
        c.virtual_servers.iter().flat_map(move |v| {
            v.real_servers.iter().map(move |r| {
                let mut l = vs(v);
                l.push(("real_server", r.server.clone()));
                (l, r)
            })
        })
    };
    let b = |v: bool| n(u8::from(v));
    family(
        enc,
        "rvs_check_real_server_up",
        "1 when every checker of the real server passes.",
        Kind::Gauge,
        rs_rows().map(|(l, r)| (l, b(r.up))),
    )?;
    family(
        enc,
        "rvs_check_real_server_weight",
        "The weight the real server has when up (configured or set by MISC_CHECK's misc_dynamic).",
        Kind::Gauge,
        rs_rows().map(|(l, r)| (l, n(r.weight))),
    )?;
    let checker_rows = || {
        rs_rows().flat_map(|(l, r)| {
            r.checkers.iter().enumerate().map(move |(i, k)| {
                let mut l = l.clone();
                // The index keeps two checkers of one kind and target (two URLs) apart.
                l.push(("index", i.to_string()));
                l.push(("checker", k.kind.clone()));
                l.push(("target", k.target.clone()));
                (l, k)
            })
        })
    };
    family(
        enc,
        "rvs_checker_up",
        "1 when the checker passes.",
        Kind::Gauge,
        checker_rows().map(|(l, k)| (l, b(k.up))),
    )?;
    family(
        enc,
        "rvs_checker_attempts",
        "Attempts the checker made.",
        Kind::Counter,
        checker_rows().map(|(l, k)| (l, n(k.attempts))),
    )?;
    family(
        enc,
        "rvs_checker_failures_in_a_row",
        "Failed attempts in a row.",
        Kind::Gauge,
        checker_rows().map(|(l, k)| (l, n(k.failures))),
    )?;
    family(
        enc,
        "rvs_check_quorum_up",
        "1 while the virtual server's alive weight meets its quorum.",
        Kind::Gauge,
        c.virtual_servers.iter().map(|v| (vs(v), b(v.quorum_up))),
    )?;
    family(
        enc,
        "rvs_check_sorry_server_active",
        "1 while the sorry server serves the virtual server.",
        Kind::Gauge,
        c.virtual_servers.iter().map(|v| (vs(v), b(v.sorry_active))),
    )?;
    family(
        enc,
        "rvs_checks_probes",
        "Distinct probes running (one per real server and checker spec).",
        Kind::Gauge,
        [(Labels::new(), n(c.probes as u64))],
    )?;
    let ho = c.half_open.iter();
    let via = |h: &rvs_ctl::checks::HalfOpenReport| vec![("via", h.via.clone())];
    let half_open: [Field<rvs_ctl::checks::HalfOpenReport, u64>; 3] = [
        ("syns_sent", "SYNs the half-open TCP checks sent", |h| {
            h.sent
        }),
        (
            "answers",
            "SYN-ACKs and RSTs the half-open TCP checks received",
            |h| h.answers,
        ),
        (
            "lost",
            "Half-open SYNs or answers lost to a full queue",
            |h| h.lost,
        ),
    ];
    for (name, help, get) in half_open {
        family(
            enc,
            &format!("rvs_checks_half_open_{name}"),
            &format!("{help}."),
            Kind::Counter,
            ho.clone().map(|h| (via(h), n(get(h)))),
        )?;
    }
    Ok(())
}
