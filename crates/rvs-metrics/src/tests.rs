use super::http::{bind, Limits};
use super::*;
use rvs_ctl::checks::{CheckerReport, HalfOpenReport, RsReport, VsReport};
use rvs_ctl::model::{DestEntry, Fwd, Rates, ServiceEntry, ServiceProto, Stats, TotalEntry};
use rvs_ctl::proto::{PortReport, WorkerReport};
use rvs_ctl::report::{EngineReport, LatencyReport, PortCountersSnapshot};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn stats(conns: u64) -> Stats {
    Stats {
        conns,
        inpkts: conns * 10,
        outpkts: conns * 8,
        inbytes: conns * 1000,
        outbytes: conns * 5000,
    }
}

fn dest(last: u8, weight: i32, active: u32) -> DestEntry {
    DestEntry {
        addr: Ipv4Addr::new(192, 168, 8, last),
        port: 80,
        fwd: Fwd::Masq,
        weight,
        u_threshold: 0,
        l_threshold: 0,
        activeconns: active,
        inactconns: 1,
        persistconns: 0,
        stats: stats(u64::from(active)),
        rates: Rates::default(),
        tunnel: None,
    }
}

fn service(proto: ServiceProto, fwmark: u32, dests: Vec<DestEntry>) -> ServiceEntry {
    let fw = proto == ServiceProto::Fwmark;
    ServiceEntry {
        proto,
        addr: if fw {
            Ipv4Addr::UNSPECIFIED
        } else {
            Ipv4Addr::new(10, 0, 0, 13)
        },
        port: if fw { 0 } else { 80 },
        fwmark,
        sched: "wrr".into(),
        flags: 0,
        persistent: None,
        netmask: Ipv4Addr::BROADCAST,
        pe_name: None,
        ops: false,
        stats: stats(7),
        rates: Rates::default(),
        dests,
    }
}

fn port_counters(rx: u64) -> PortCountersSnapshot {
    PortCountersSnapshot {
        rx_packets: rx,
        drops: vec![("runt".into(), 2), ("lb".into(), 1)],
        ..Default::default()
    }
}

pub(crate) fn sample() -> Scrape {
    let port = |role: &str| PortReport {
        role: role.into(),
        device: format!("net_af_packet_{role}"),
        driver: "net_af_packet".into(),
        steering: "software".into(),
        tx_offloads: "none".into(),
        kernel: String::new(),
        mac: "02:00:00:00:00:01".into(),
        addresses: vec![],
        link_up: true,
        speed_mbps: 10000,
        hw: Default::default(),
        sw: port_counters(5),
    };
    let worker = |i: usize| WorkerReport {
        worker: i,
        lcore: i as u32 + 1,
        handed_in: 3,
        loops: 1000,
        latency: LatencyReport {
            samples: 4,
            sum_ns: 13_000.0,
            buckets: vec![(1500.0, 2), (3000.0, 1), (7000.0, 1)],
            ..Default::default()
        },
        ports: vec![port_counters(10), port_counters(20)],
        engine: EngineReport {
            table_entries: 12,
            table_capacity: 1024,
            conns_created: 40,
            templates_created: 0,
            conns_expired: 28,
            drops: vec![("conn_table_full".into(), 3), ("not_syn".into(), 0)],
        },
    };
    Scrape {
        list: ListSnapshot {
            conn_tab_size: 2048,
            services: vec![
                service(ServiceProto::Tcp, 0, vec![dest(14, 2, 5), dest(15, 1, 0)]),
                service(ServiceProto::Fwmark, 7, vec![dest(14, 1, 1)]),
            ],
            total: Some(TotalEntry {
                stats: stats(42),
                rates: Rates::default(),
            }),
        },
        ports: PortStatsReply {
            ports: vec![port("public"), port("private")],
            workers: vec![worker(0), worker(1)],
        },
        checks: Some(ChecksReport {
            file: "/etc/rvs/keepalived.conf".into(),
            loaded_secs: 1.0,
            heartbeat_secs: 0.1,
            probes: 2,
            half_open: Some(HalfOpenReport {
                via: "data plane".into(),
                sent: 9,
                answers: 8,
                lost: 0,
            }),
            virtual_servers: vec![VsReport {
                service: "TCP  10.0.0.13:80".into(),
                quorum: 1,
                hysteresis: 0,
                alive_weight: 2,
                quorum_up: true,
                sorry_server: None,
                sorry_active: false,
                real_servers: vec![RsReport {
                    server: "192.168.8.14:80".into(),
                    up: true,
                    weight: 2,
                    table_weight: Some(2),
                    inhibit_on_failure: false,
                    changed_secs: 3.0,
                    checkers: vec![CheckerReport {
                        kind: "TCP_CHECK".into(),
                        target: "[192.168.8.14]:tcp:80".into(),
                        up: true,
                        last_result: Some("ok".into()),
                        last_secs: Some(0.5),
                        changed_secs: 3.0,
                        failures: 0,
                        attempts: 17,
                    }],
                }],
            }],
        }),
        checks_heartbeat_secs: Some(0.1),
        version: "0.1.0".into(),
        gather_secs: 0.002,
    }
}

fn has(text: &str, line: &str) {
    assert!(
        text.lines().any(|l| l == line),
        "missing line {line:?} in:\n{text}"
    );
}

#[test]
fn node_exporter_names_labels_and_values() {
    let t = encode(&Arc::new(sample()), Format::PrometheusText).unwrap();
    has(&t, "# TYPE node_ipvs_connections_total counter");
    has(&t, "node_ipvs_connections_total 42");
    has(&t, "node_ipvs_incoming_packets_total 420");
    has(&t, "node_ipvs_outgoing_bytes_total 210000");
    has(&t, "# TYPE node_ipvs_backend_weight gauge");
    has(
        &t,
        "node_ipvs_backend_weight{local_address=\"10.0.0.13\",local_port=\"80\",\
         remote_address=\"192.168.8.14\",remote_port=\"80\",proto=\"TCP\",local_mark=\"\"} 2",
    );
    has(
        &t,
        "node_ipvs_backend_connections_active{local_address=\"10.0.0.13\",local_port=\"80\",\
         remote_address=\"192.168.8.14\",remote_port=\"80\",proto=\"TCP\",local_mark=\"\"} 5",
    );
    // A fwmark service as /proc/net/ip_vs shows it: no address, the mark in hex.
    has(
        &t,
        "node_ipvs_backend_connections_inactive{local_address=\"\",local_port=\"0\",\
         remote_address=\"192.168.8.14\",remote_port=\"80\",proto=\"FWM\",\
         local_mark=\"00000007\"} 1",
    );
    has(
        &t,
        "rvs_service_connections_total{local_address=\"10.0.0.13\",local_port=\"80\",\
         proto=\"TCP\",local_mark=\"\"} 7",
    );
}

#[test]
fn appliance_metrics() {
    let t = encode(&Arc::new(sample()), Format::PrometheusText).unwrap();
    has(&t, "rvs_build_info{version=\"0.1.0\"} 1");
    has(
        &t,
        "rvs_port_rx_packets_total{port=\"private\",worker=\"1\"} 20",
    );
    has(
        &t,
        "rvs_port_drops_total{port=\"public\",worker=\"0\",reason=\"runt\"} 2",
    );
    has(
        &t,
        "rvs_lb_drops_total{worker=\"1\",reason=\"conn_table_full\"} 3",
    );
    has(&t, "rvs_conn_table_entries{worker=\"0\"} 12");
    has(&t, "rvs_conn_table_capacity{worker=\"0\"} 1024");
    has(&t, "rvs_connections_new_total{worker=\"1\"} 40");
    // 1.5 us and 3 us fall under the 2 us and 5 us bounds; cumulative counts; exact sum.
    has(
        &t,
        "rvs_latency_seconds_bucket{worker=\"0\",le=\"1e-06\"} 0",
    );
    has(
        &t,
        "rvs_latency_seconds_bucket{worker=\"0\",le=\"2e-06\"} 2",
    );
    has(
        &t,
        "rvs_latency_seconds_bucket{worker=\"0\",le=\"5e-06\"} 3",
    );
    has(
        &t,
        "rvs_latency_seconds_bucket{worker=\"0\",le=\"1e-05\"} 4",
    );
    has(&t, "rvs_latency_seconds_bucket{worker=\"0\",le=\"+Inf\"} 4");
    has(&t, "rvs_latency_seconds_count{worker=\"0\"} 4");
    has(&t, "rvs_latency_seconds_sum{worker=\"0\"} 0.000013");
    has(
        &t,
        "rvs_check_real_server_up{virtual_server=\"TCP 10.0.0.13:80\",\
         real_server=\"192.168.8.14:80\"} 1",
    );
    has(
        &t,
        "rvs_checker_attempts_total{virtual_server=\"TCP 10.0.0.13:80\",\
         real_server=\"192.168.8.14:80\",index=\"0\",checker=\"TCP_CHECK\",\
         target=\"[192.168.8.14]:tcp:80\"} 17",
    );
    has(
        &t,
        "rvs_checks_half_open_syns_sent_total{via=\"data plane\"} 9",
    );
}

#[test]
fn openmetrics_when_asked() {
    assert_eq!(Format::from_accept(None), Format::PrometheusText);
    let om = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
    assert_eq!(Format::from_accept(Some(om)), Format::OpenMetrics);
    let t = encode(&Arc::new(sample()), Format::OpenMetrics).unwrap();
    has(&t, "# TYPE node_ipvs_connections counter");
    has(&t, "node_ipvs_connections_total 42");
    assert!(t.ends_with("# EOF\n"));
}

#[test]
fn no_checks_no_checker_samples() {
    let mut s = sample();
    s.checks = None;
    s.checks_heartbeat_secs = None;
    let t = encode(&Arc::new(s), Format::PrometheusText).unwrap();
    assert!(!t.contains("rvs_check"), "{t}");
}

#[test]
fn a_stalled_checker_still_shows_its_heartbeat() {
    let mut s = sample();
    s.checks = None;
    s.checks_heartbeat_secs = Some(7.5);
    let t = encode(&Arc::new(s), Format::PrometheusText).unwrap();
    has(&t, "rvs_checks_heartbeat_age_seconds 7.5");
    has(&t, "rvs_checks_report_ok 0");
    assert!(!t.contains("rvs_checker_up"), "{t}");
}

/// Counts the scrapes asked of it; optionally slow.
struct Fake {
    calls: AtomicUsize,
    delay: Duration,
}

impl Source for Fake {
    fn scrape(&self) -> Result<Scrape, String> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(self.delay);
        Ok(sample())
    }
}

fn endpoint(delay: Duration, limits: Limits) -> (super::http::Endpoint, Arc<Fake>) {
    let fake = Arc::new(Fake {
        calls: AtomicUsize::new(0),
        delay,
    });
    let e = bind("127.0.0.1:0".parse().unwrap())
        .unwrap()
        .serve(fake.clone(), limits)
        .unwrap();
    (e, fake)
}

/// Sends `req` and reads until the server closes (or 10 s pass).
fn exchange(addr: std::net::SocketAddr, req: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(req).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn status(resp: &str) -> &str {
    resp.lines().next().unwrap_or("")
}

#[test]
fn serves_metrics_and_answers_bad_requests_with_a_status() {
    let (e, fake) = endpoint(Duration::ZERO, Limits::default());
    let a = e.local_addr();
    let r = exchange(
        a,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status(&r), "HTTP/1.1 200 OK");
    assert!(r.contains("content-type: text/plain; version=0.0.4"), "{r}");
    assert!(r.contains("\nnode_ipvs_connections_total 42\n"), "{r}");
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1);

    let r = exchange(
        a,
        b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status(&r), "HTTP/1.1 404 Not Found");
    let r = exchange(
        a,
        b"POST /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status(&r), "HTTP/1.1 405 Method Not Allowed");
    let r = exchange(a, b"\x16\x03\x01 garbage\r\n\r\n");
    assert_eq!(status(&r), "HTTP/1.1 400 Bad Request");
    let mut huge = b"GET /".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 100_000));
    huge.extend(b" HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = exchange(a, &huge);
    assert_eq!(status(&r), "HTTP/1.1 431 Request Header Fields Too Large");
    // None of these asked the appliance for anything.
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
}

#[test]
fn slow_clients_are_cut_and_too_many_are_refused() {
    let limits = Limits {
        max_clients: 2,
        header_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let (e, _) = endpoint(Duration::ZERO, limits);
    let a = e.local_addr();
    // A head that never completes: closed at the timeout, without a response (hyper's
    // behaviour; 408 is optional in RFC 9110).
    let t0 = std::time::Instant::now();
    let r = exchange(a, b"GET /metrics HTTP/1.1\r\nHost: x\r\n");
    assert!(
        t0.elapsed() < Duration::from_secs(9),
        "the server closed it"
    );
    assert!(r.is_empty(), "{r:?}");
    // Two idle clients hold both slots; the third gets a 503 without being read.
    let idle: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(a).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(100));
    let r = exchange(a, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status(&r), "HTTP/1.1 503 Service Unavailable");
    drop(idle);
}

#[test]
fn concurrent_scrapes_share_one_reading() {
    let (e, fake) = endpoint(Duration::from_millis(300), Limits::default());
    let a = e.local_addr();
    let clients: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                exchange(
                    a,
                    b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                )
            })
        })
        .collect();
    for c in clients {
        assert_eq!(status(&c.join().unwrap()), "HTTP/1.1 200 OK");
    }
    let calls = fake.calls.load(Ordering::SeqCst);
    assert!(
        calls <= 3,
        "8 simultaneous scrapes read the appliance {calls} times"
    );
}
