//! Acceptance tests of the Prometheus endpoint (`[metrics] listen`, which the lab sets to
//! 127.0.0.1:9642): Debian's own Prometheus scrapes the lab's rvs every second, and its query
//! API returns what rvsadm shows; `promtool check metrics` finds nothing to say about the
//! exposition; bad HTTP clients get a status and a close while the appliance keeps
//! forwarding and answering rvsadm. Ignored by a plain `cargo test`; scripts/test.sh runs them.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const METRICS: &str = "127.0.0.1:9642";
const PROMETHEUS: &str = "127.0.0.1:19090";
const RS1: &str = "192.168.8.14";

/// A Prometheus server scraping the lab's rvs every second; killed on drop.
struct Prometheus {
    child: Child,
    dir: PathBuf,
}

impl Prometheus {
    fn start() -> Prometheus {
        let dir = std::env::temp_dir().join(format!("rvs-lab-prometheus.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let cf = dir.join("prometheus.yml");
        std::fs::write(
            &cf,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: rvs\n    static_configs:\n\
                 \x20     - targets: ['{METRICS}']\n"
            ),
        )
        .unwrap();
        let out = std::fs::File::create(dir.join("prometheus.out")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", cf.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={PROMETHEUS}"))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start prometheus (apt-get install prometheus; scripts/setup-host.sh does)");
        let p = Prometheus { child, dir };
        let ready = wait_for(Duration::from_secs(60), || {
            http_get(PROMETHEUS, "/-/ready").is_some_and(|(code, _)| code == 200)
        });
        assert!(ready, "prometheus did not become ready:\n{}", p.log());
        p
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.out")).unwrap_or_default()
    }

    /// An instant query's samples: (labels, value).
    fn query(&self, q: &str) -> Vec<(serde_json::Value, f64)> {
        let o = run(
            "curl",
            &[
                "-s",
                "-m",
                "10",
                "-G",
                "--data-urlencode",
                &format!("query={q}"),
                &format!("http://{PROMETHEUS}/api/v1/query"),
            ],
        );
        let v: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("query {q}: {e}: {}", text(&o)));
        assert_eq!(v["status"], "success", "query {q}: {v}");
        v["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let val = s["value"][1].as_str().unwrap().parse::<f64>().unwrap();
                (s["metric"].clone(), val)
            })
            .collect()
    }

    /// Polls a query until its single sample satisfies `f`; returns that value.
    fn wait_value(&self, q: &str, what: &str, f: impl Fn(f64) -> bool) -> f64 {
        let t = Instant::now();
        loop {
            let r = self.query(q);
            if let [(_, v)] = r.as_slice() {
                if f(*v) {
                    eprintln!("{what}: {v} after {:.1} s", t.elapsed().as_secs_f64());
                    return *v;
                }
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "{what}: {q} gave {r:?} for 60 s\nprometheus:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// GET over HTTP/1.1 with curl: (status, body), or None if nothing answered.
fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let o = run(
        "curl",
        &[
            "-s",
            "-m",
            "5",
            "-w",
            "\n%{http_code}",
            &format!("http://{addr}{path}"),
        ],
    );
    let s = String::from_utf8_lossy(&o.stdout).into_owned();
    let (body, code) = s.rsplit_once('\n')?;
    let code: u16 = code.parse().ok()?;
    (code != 0).then(|| (code, body.to_string()))
}

/// Sends raw bytes and reads until the server closes: the whole response (10 s at most).
fn raw(req: &[u8]) -> String {
    let mut s = TcpStream::connect(METRICS).expect("connect to the metrics endpoint");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(req);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Runs `cmd` with `input` on its standard input; its output.
fn pipe(cmd: &str, args: &[&str], input: &str) -> std::process::Output {
    let mut p = Command::new(cmd)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {cmd}: {e}"));
    p.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    p.wait_with_output().unwrap()
}

fn status_line(r: &str) -> &str {
    r.lines().next().unwrap_or("")
}

/// The service's and RS1's `Conns` in `rvsadm -L -n --stats`.
fn rvsadm_conns() -> (u64, u64) {
    let l = adm(&["-L", "-n", "--stats"]);
    let conns = |prefix: &str| -> u64 {
        let line = l
            .lines()
            .find(|x| x.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in\n{l}"));
        // "TCP  VIP:PORT  Conns ..." and "  -> RIP:PORT  Conns ...": the third field.
        line.split_whitespace().nth(2).unwrap().parse().unwrap()
    };
    (conns("TCP  10.0.0.13:80"), conns(&format!("  -> {RS1}:80")))
}

fn lab_service() {
    fresh(1);
    adm(&["-A", "-t", "10.0.0.13:80", "-s", "wrr"]);
    adm(&[
        "-a",
        "-t",
        "10.0.0.13:80",
        "-r",
        "192.168.8.14:80",
        "-m",
        "-w",
        "2",
    ]);
    adm(&[
        "-a",
        "-t",
        "10.0.0.13:80",
        "-r",
        "192.168.8.15:80",
        "-m",
        "-w",
        "1",
    ]);
}

#[test]
#[ignore = "needs the lab (scripts/lab.sh up) and prometheus; run by scripts/test.sh"]
fn prometheus_scrapes_rvs_and_its_queries_match_rvsadm() {
    lab_service();
    let prom = Prometheus::start();
    prom.wait_value("up{job=\"rvs\"}", "target up", |v| v == 1.0);
    // The totals live as long as rvs (as /proc/net/ip_vs_stats: -C does not reset them).
    let total0 = prom.wait_value("node_ipvs_connections_total", "total before", |_| true);

    // Traffic, then the same numbers in rvsadm and in Prometheus once it has scraped again.
    for _ in 0..12 {
        assert!(curl_vip().starts_with("hello RS"));
    }
    let (svc, rs1) = rvsadm_conns();
    assert_eq!(svc, 12, "rvsadm counted every request");
    let sel = "local_address=\"10.0.0.13\",local_port=\"80\",proto=\"TCP\"";
    prom.wait_value(
        &format!("rvs_service_connections_total{{{sel}}}"),
        "service connections",
        |v| v == svc as f64,
    );
    prom.wait_value(
        &format!("rvs_backend_connections_total{{{sel},remote_address=\"{RS1}\"}}"),
        "RS1 connections",
        |v| v == rs1 as f64,
    );
    prom.wait_value("node_ipvs_connections_total", "total connections", |v| {
        v == total0 + svc as f64
    });
    // The connection rate over a window that holds the requests.
    let rate = prom.query(&format!("rate(rvs_service_connections_total{{{sel}}}[1m])"));
    assert_eq!(rate.len(), 1, "{rate:?}");
    assert!(
        rate[0].1 > 0.0,
        "a connection rate after 12 requests: {rate:?}"
    );

    // A backend's weight, as rvsadm shows it, and again after an edit.
    let weight = |q: &str| format!("node_ipvs_backend_weight{{{sel},remote_address=\"{q}\"}}");
    prom.wait_value(&weight(RS1), "RS1 weight", |v| v == 2.0);
    adm(&[
        "-e",
        "-t",
        "10.0.0.13:80",
        "-r",
        "192.168.8.14:80",
        "-m",
        "-w",
        "5",
    ]);
    let listing = adm(&["-L", "-n"]);
    let rs1_line: Vec<&str> = listing
        .lines()
        .find(|l| l.starts_with(&format!("  -> {RS1}:80 ")))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(rs1_line[3], "5", "rvsadm shows the new weight:\n{listing}");
    prom.wait_value(&weight(RS1), "RS1 weight after -e", |v| v == 5.0);
    // Labels as node_exporter's: proto, local_mark and the remote port are all there.
    let all = prom.query(&weight(RS1));
    assert_eq!(all[0].0["remote_port"], "80");
    assert_eq!(
        all[0].0["local_mark"],
        serde_json::Value::Null,
        "empty label is absent"
    );

    // The data plane's own counters reach Prometheus too.
    prom.wait_value(
        "sum(rvs_port_rx_packets_total{port=\"public\"})",
        "public rx packets",
        |v| v >= 12.0 * 3.0,
    );
    prom.wait_value(
        "rvs_conn_table_capacity{worker=\"0\"}",
        "table capacity",
        |v| v == 262_144.0,
    );
    adm(&["-C"]);
}

/// The queries of docs/grafana-dashboard.json with Grafana's variables filled in.
fn dashboard_queries() -> Vec<(String, String)> {
    let d: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("docs/grafana-dashboard.json")).unwrap(),
    )
    .expect("docs/grafana-dashboard.json is JSON");
    let mut out = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            let q = t["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "1m")
                .replace("$instance", ".*");
            out.push((p["title"].as_str().unwrap().to_string(), q));
        }
    }
    out
}

#[test]
#[ignore = "needs the lab (scripts/lab.sh up) and prometheus; run by scripts/test.sh"]
fn the_dashboard_queries_work_against_prometheus() {
    lab_service();
    let prom = Prometheus::start();
    prom.wait_value("up{job=\"rvs\"}", "target up", |v| v == 1.0);
    for _ in 0..6 {
        curl_vip();
    }
    // Two scrapes after the traffic, so rates have two samples that differ.
    std::thread::sleep(Duration::from_secs(3));
    let queries = dashboard_queries();
    assert!(queries.len() >= 20, "{queries:?}");
    let mut empty = Vec::new();
    for (title, q) in &queries {
        // `query` asserts the query parses and runs (status success).
        if prom.query(q).is_empty() {
            empty.push(format!("{title}: {q}"));
        }
    }
    // Without drops, health checks or handover in this lab, those panels may be empty; the
    // traffic, weight, latency and table panels must show data.
    for must in [
        "New connections per service",
        "New connections per real server",
        "Real server weight",
        "Port packets per second",
        "Connection table occupancy per worker",
        "Added latency (sampled bursts)",
    ] {
        assert!(
            !empty.iter().any(|e| e.starts_with(&format!("{must}:"))),
            "{must} shows nothing; empty panels: {empty:#?}"
        );
    }
    adm(&["-C"]);
}

#[test]
#[ignore = "needs the lab (scripts/lab.sh up) and promtool; run by scripts/test.sh"]
fn promtool_finds_the_exposition_clean() {
    lab_service();
    curl_vip();
    let (code, body) = http_get(METRICS, "/metrics").expect("the metrics endpoint answers");
    assert_eq!(code, 200);
    for name in [
        "node_ipvs_backend_connections_active",
        "node_ipvs_incoming_bytes_total",
        "rvs_port_drops_total",
        "rvs_lb_drops_total",
        "rvs_latency_seconds_bucket",
        "rvs_build_info",
    ] {
        assert!(body.contains(name), "{name} missing from\n{body}");
    }
    let o = pipe("promtool", &["check", "metrics"], &body);
    assert!(
        o.status.success() && o.stdout.is_empty() && o.stderr.is_empty(),
        "promtool check metrics: {}",
        text(&o)
    );
    adm(&["-C"]);
}

#[test]
#[ignore = "needs the lab (scripts/lab.sh up); run by scripts/test.sh"]
fn bad_scrapers_get_a_status_and_a_close_and_change_nothing() {
    lab_service();
    assert_eq!(
        status_line(&raw(b"\x16\x03\x01\x00garbage\r\n\r\n")),
        "HTTP/1.1 400 Bad Request"
    );
    let mut huge = b"GET /".to_vec();
    huge.extend(std::iter::repeat_n(b'x', 1 << 20));
    huge.extend(b" HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(
        status_line(&raw(&huge)),
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    assert_eq!(
        status_line(&raw(
            b"DELETE /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )),
        "HTTP/1.1 405 Method Not Allowed"
    );
    assert_eq!(http_get(METRICS, "/nothing").map(|r| r.0), Some(404));

    // 64 clients that connect and say nothing: the first 16 (max_clients) hold a slot until
    // the header timeout, the rest are told 503 at once. Meanwhile the appliance forwards,
    // answers rvsadm, and the control plane is not held up.
    let idle: Vec<TcpStream> = (0..64)
        .map(|_| TcpStream::connect(METRICS).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        status_line(&raw(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")),
        "HTTP/1.1 503 Service Unavailable"
    );
    assert!(curl_vip().starts_with("hello RS"));
    assert!(adm(&["-L", "-n"]).contains("TCP  10.0.0.13:80 wrr"));
    drop(idle);
    // Slots free again: a normal scrape works.
    let ok = wait_for(Duration::from_secs(15), || {
        http_get(METRICS, "/metrics").is_some_and(|(c, b)| c == 200 && b.contains("node_ipvs"))
    });
    assert!(
        ok,
        "the endpoint serves again once the idle clients are gone"
    );
    // A client that starts a request and stalls is closed at the header timeout (5 s).
    let t = Instant::now();
    let r = raw(b"GET /metrics HTTP/1.1\r\nHost: x\r\n");
    assert!(r.is_empty(), "no response to half a request: {r:?}");
    assert!(
        t.elapsed() < Duration::from_secs(9),
        "closed, not left open"
    );
    adm(&["-C"]);
}

/// Sends commands to the lab rvs's telemetry socket with DPDK's own client; one JSON reply per
/// command.
fn telemetry(cmds: &[&str]) -> Vec<serde_json::Value> {
    let o = pipe(
        "dpdk-telemetry.py",
        &["-f", "rvs-lab"],
        &(cmds.join("\n") + "\n"),
    );
    assert!(o.status.success(), "dpdk-telemetry.py: {}", text(&o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l.trim()).ok())
        .filter(|v| {
            v.as_object().is_some_and(|m| {
                m.keys()
                    .any(|k| cmds.iter().any(|c| c.starts_with(k.as_str())))
            })
        })
        .collect()
}

#[test]
#[ignore = "needs the lab (scripts/lab.sh up); run by scripts/test.sh"]
fn dpdk_telemetry_shows_rvs_state() {
    lab_service();
    adm(&["-A", "-f", "7", "-s", "rr"]);
    for _ in 0..3 {
        curl_vip();
    }
    let (svc, _) = rvsadm_conns();
    let r = telemetry(&[
        "/rvs/stats",
        "/rvs/services",
        "/rvs/service,tcp 10.0.0.13:80",
        "/rvs/service,UDP 10.0.0.13:53",
        "/",
    ]);
    assert_eq!(r.len(), 5, "{r:?}");
    let stats = &r[0]["/rvs/stats"];
    assert_eq!(stats["services"], 2, "{stats}");
    assert_eq!(stats["real_servers"], 2);
    assert_eq!(stats["conn_table_capacity"], 262_144);
    assert!(
        stats["public_rx_packets"].as_u64().unwrap() >= 3 * 3,
        "{stats}"
    );
    let services = r[1]["/rvs/services"].as_object().unwrap();
    let tcp = services
        .values()
        .find(|s| s["service"] == "TCP 10.0.0.13:80")
        .unwrap_or_else(|| panic!("{services:?}"));
    assert_eq!(tcp["scheduler"], "wrr");
    assert_eq!(tcp["conns"], svc, "the counts rvsadm shows");
    assert!(services.values().any(|s| s["service"] == "FWM 7"));
    let reals = r[2]["/rvs/service"].as_object().unwrap();
    let rs1 = reals
        .values()
        .find(|d| d["real_server"] == "192.168.8.14:80")
        .unwrap_or_else(|| panic!("{reals:?}"));
    assert_eq!(rs1["weight"], 2);
    assert_eq!(
        r[3]["/rvs/service"]["error"],
        "no service UDP 10.0.0.13:53 (see /rvs/services)"
    );
    // Beside the standard commands.
    let all: Vec<&str> = r[4]["/"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    for c in [
        "/ethdev/stats",
        "/rvs/stats",
        "/rvs/services",
        "/rvs/service",
    ] {
        assert!(all.contains(&c), "{c} missing from {all:?}");
    }
    adm(&["-C"]);
}

/// Hugepage files of the lab's EAL prefix (`rvs-labmap_<n>`).
fn lab_hugefiles() -> usize {
    std::fs::read_dir("/dev/hugepages")
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("rvs-labmap_"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
#[ignore = "needs the lab (scripts/lab.sh up) and dpdk-dumpcap; run by scripts/test.sh"]
fn dpdk_dumpcap_captures_the_public_port_with_a_filter() {
    lab_service();
    let dir = std::env::temp_dir().join(format!("rvs-dumpcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("public.pcap");
    // Line-buffered: it prints "Capturing on" to stdout once the primary has installed its
    // callbacks, and a pipe would hold that line until exit.
    let mut cap = Command::new("stdbuf")
        .args([
            "-oL",
            "dpdk-dumpcap",
            "--file-prefix=rvs-lab",
            "-i",
            "net_af_packet0",
            "-p",
        ])
        .args(["-f", "tcp port 80", "-P", "-a", "duration:60", "-w"])
        .arg(&file)
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("dpdk-dumpcap (package dpdk)");
    let mut out = std::io::BufReader::new(cap.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut all = String::new();
        let mut line = String::new();
        while std::io::BufRead::read_line(&mut out, &mut line).unwrap_or(0) > 0 {
            if line.contains("Capturing on") {
                let _ = tx.send(Ok(()));
            }
            all.push_str(&line);
            line.clear();
        }
        let _ = tx.send(Err(all));
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(())) => {}
        other => {
            let _ = cap.kill();
            panic!("dpdk-dumpcap did not attach to rvs: {other:?}");
        }
    }
    for _ in 0..3 {
        assert!(curl_vip().starts_with("hello RS"));
    }
    // Not TCP port 80: the filter keeps it out of the file.
    let o = netns(
        "rvs-client",
        &["ping", "-c", "2", "-i", "0.2", "-W", "1", "10.0.0.13"],
    );
    assert!(o.status.success(), "ping the VIP: {}", text(&o));
    std::thread::sleep(Duration::from_millis(500));
    let o = run("kill", &["-INT", &cap.id().to_string()]);
    assert!(o.status.success(), "{}", text(&o));
    // 22.11's dumpcap exits 1 after Ctrl-C even when the capture was written: the file,
    // not the status, is what is checked.
    let _ = cap.wait().unwrap();

    let o = run("tcpdump", &["-nn", "-r", file.to_str().unwrap()]);
    assert!(o.status.success(), "tcpdump -r: {}", text(&o));
    let lines = String::from_utf8_lossy(&o.stdout).into_owned();
    let syns = lines
        .lines()
        .filter(|l| l.contains(" IP 10.0.0.12.") && l.contains("> 10.0.0.13.80: Flags [S]"))
        .count();
    assert!(
        syns >= 3,
        "the client's SYNs to the VIP in the capture:\n{lines}"
    );
    assert!(
        lines
            .lines()
            .any(|l| l.contains(" IP 10.0.0.13.80 > 10.0.0.12.")),
        "the replies leaving the public port (tx) are captured too:\n{lines}"
    );
    assert!(
        !lines.contains("ICMP"),
        "the filter let ICMP through:\n{lines}"
    );
    // The capture is gone; forwarding goes on.
    assert!(curl_vip().starts_with("hello RS"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "needs the lab (scripts/lab.sh up); run by scripts/test.sh"]
fn a_killed_rvs_leaves_files_the_next_start_reclaims_and_a_stop_removes() {
    fresh(1);
    let lab = root().join("scripts/lab.sh");
    let lab = lab.to_str().unwrap();
    let free = || -> u64 {
        let m = std::fs::read_to_string("/proc/meminfo").unwrap();
        let l = m
            .lines()
            .find(|l| l.starts_with("HugePages_Free:"))
            .unwrap();
        l.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    let running = lab_hugefiles();
    assert!(running > 0, "a primary with hugepages keeps them in files");
    let pid = std::fs::read_to_string("/run/rvs/rvs.pid").unwrap();
    let o = run("kill", &["-KILL", pid.trim()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(wait_for(Duration::from_secs(10), || !std::path::Path::new(
        &format!("/proc/{}", pid.trim())
    )
    .exists()));
    assert_eq!(
        lab_hugefiles(),
        running,
        "a killed primary leaves its hugepage files"
    );
    assert!(std::path::Path::new("/var/run/dpdk/rvs-lab/config").exists());
    let held = free();

    let o = run("bash", &[lab, "start-rvs"]);
    assert!(o.status.success(), "restart after a crash: {}", text(&o));
    let log = std::fs::read_to_string("/run/rvs/rvs.log").unwrap();
    assert!(
        log.contains("left behind (runtime directory: yes, hugepage files:"),
        "the start says what it reclaimed:\n{log}"
    );
    assert_eq!(
        lab_hugefiles(),
        running,
        "the dead run's files are gone, the new run has its own"
    );
    assert_eq!(free(), held, "the new run's pages came from the dead run's");
    lab_service();
    assert!(curl_vip().starts_with("hello RS"));

    let o = run("bash", &[lab, "stop-rvs"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        lab_hugefiles(),
        0,
        "a clean stop removes its hugepage files"
    );
    assert!(!std::path::Path::new("/var/run/dpdk/rvs-lab").exists());
    assert_eq!(free(), held + running as u64, "and gives their pages back");
    let o = run("bash", &[lab, "start-rvs"]);
    assert!(o.status.success(), "{}", text(&o));
}
