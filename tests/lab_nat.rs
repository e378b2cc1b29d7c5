//! Acceptance tests of the LVS-NAT data path against the running lab: services configured with
//! rvsadm only (ipvsadm syntax), real clients and real servers in namespaces, traffic through
//! the appliance. Ignored by a plain `cargo test`; scripts/test.sh runs them.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const VIP: &str = "10.0.0.13";

/// One HTTP request from the client to the VIP; the body, or an error with curl's exit code.
fn curl(url: &str) -> Result<String, i32> {
    let o = netns("rvs-client", &["curl", "-s", "-m", "5", url]);
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
    } else {
        Err(o.status.code().unwrap_or(-1))
    }
}

fn rr_service() {
    adm(&["-A", "-t", "10.0.0.13:80", "-s", "rr"]);
    adm(&["-a", "-t", "10.0.0.13:80", "-r", "192.168.8.14:80", "-m"]);
    adm(&["-a", "-t", "10.0.0.13:80", "-r", "192.168.8.15:80", "-m"]);
}

#[test]
#[ignore = "needs root and the lab (scripts/test.sh)"]
fn rr_alternates_between_real_servers() {
    fresh(1);
    rr_service();
    let got: Vec<String> = (0..4)
        .map(|_| curl(&format!("http://{VIP}/")).expect("request through the VIP"))
        .collect();
    // RS1 was added first, RS2 second: as in the kernel, the newest server heads the list and
    // rr starts there.
    assert_eq!(got, ["hello RS2", "hello RS1", "hello RS2", "hello RS1"]);
    let l = adm(&["-L", "-n", "--stats"]);
    assert!(l.contains("TCP  10.0.0.13:80"), "{l}");
}

#[test]
#[ignore = "needs root and the lab (scripts/test.sh)"]
fn wrr_weights_1_and_2_split_300_connections_100_200() {
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
        "1",
    ]);
    adm(&[
        "-a",
        "-t",
        "10.0.0.13:80",
        "-r",
        "192.168.8.15:80",
        "-m",
        "-w",
        "2",
    ]);
    // 300 sequential connections from one curl process (each URL is a new connection).
    let urls: Vec<String> = (0..300).map(|i| format!("http://{VIP}/?{i}")).collect();
    let mut args = vec![
        "curl",
        "-s",
        "-m",
        "60",
        "-w",
        "\n",
        "-H",
        "Connection: close",
    ];
    args.extend(urls.iter().map(|u| u.as_str()));
    let mut full = vec!["netns", "exec", "rvs-client"];
    full.extend(args);
    let o = run("ip", &full);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let rs1 = out.matches("hello RS1").count();
    let rs2 = out.matches("hello RS2").count();
    assert_eq!((rs1, rs2), (100, 200), "wrr 1:2 over 300 connections");
    let stats = adm(&["-L", "-n", "--stats", "--exact"]);
    assert!(stats.contains("300"), "300 connections scheduled: {stats}");
}

#[test]
#[ignore = "needs root and the lab (scripts/test.sh)"]
fn port_mapping_and_refused_ports() {
    fresh(1);
    // The reference's port-mapping example.
    adm(&["-A", "-t", "10.0.0.13:80", "-s", "wrr"]);
    adm(&[
        "-a",
        "-t",
        "10.0.0.13:80",
        "-r",
        "192.168.8.14:80",
        "-m",
        "-w",
        "1",
    ]);
    adm(&[
        "-a",
        "-t",
        "10.0.0.13:80",
        "-r",
        "192.168.8.15:8000",
        "-m",
        "-w",
        "2",
    ]);
    adm(&["-A", "-t", "10.0.0.13:21", "-s", "rr"]);
    adm(&["-a", "-t", "10.0.0.13:21", "-r", "192.168.8.15:21", "-m"]);
    let got: Vec<String> = (0..3)
        .map(|_| curl(&format!("http://{VIP}/")).unwrap())
        .collect();
    assert_eq!(got.iter().filter(|b| *b == "hello RS1").count(), 1);
    assert_eq!(
        got.iter().filter(|b| *b == "hello RS2").count(),
        2,
        "RS2:8000"
    );
    assert_eq!(curl(&format!("http://{VIP}:21/")).unwrap(), "hello RS2");
    let l = adm(&["-L", "-n"]);
    assert!(l.contains("192.168.8.15:8000"), "{l}");
    // Any other VIP port is refused at once, not left hanging.
    let t = Instant::now();
    let r = curl(&format!("http://{VIP}:8080/"));
    assert_eq!(r, Err(7), "curl: connection refused");
    assert!(t.elapsed() < Duration::from_secs(4), "refused quickly");
}

fn udp_query(payload: &str) -> String {
    let o = Command::new("ip")
        .args([
            "netns",
            "exec",
            "rvs-client",
            "socat",
            "-t",
            "2",
            "-",
            "UDP4:10.0.0.13:53",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(payload.as_bytes())?;
            c.wait_with_output()
        })
        .expect("socat");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
#[ignore = "needs root and the lab (scripts/test.sh)"]
fn udp_service_answers_through_the_vip_and_fragments_arrive_whole() {
    fresh(1);
    adm(&["-A", "-u", "10.0.0.13:53", "-s", "rr"]);
    adm(&["-a", "-u", "10.0.0.13:53", "-r", "192.168.8.14:53", "-m"]);
    adm(&["-a", "-u", "10.0.0.13:53", "-r", "192.168.8.15:53", "-m"]);
    let a = udp_query("ping");
    assert!(
        a == "hello RS1 ping" || a == "hello RS2 ping",
        "UDP answer through the VIP: {a:?}"
    );
    // A 4000-byte datagram: the client's kernel fragments it (MTU 1500), rvs forwards the
    // fragments, the real server's kernel reassembles it and answers with all of it (itself
    // fragmented on the way back).
    let big: String = (0..4000).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    let before = port_stats();
    let a = udp_query(&big);
    assert!(
        a.ends_with(&big) && a.len() == "hello RS1 ".len() + 4000,
        "whole datagram echoed: {} bytes",
        a.len()
    );
    // af_packet's kernel side reassembles fragments before rvs reads them (PACKET_FANOUT
    // DEFRAG); rvs then fragments the datagram again for the 1500-byte egress MTU, in both
    // directions.
    let after = port_stats();
    for port in ["private", "public"] {
        assert!(
            counter(&after, port, "fragments_out") - counter(&before, port, "fragments_out") >= 3,
            "datagram fragmented again towards the {port} side: {after}"
        );
    }
    let l = adm(&["-L", "-n", "-c"]);
    assert!(l.contains("UDP"), "UDP connection listed: {l}");
}

#[test]
#[ignore = "needs root and the lab (scripts/test.sh)"]
fn persistence_keeps_a_client_on_one_server() {
    fresh(1);
    adm(&["-A", "-t", "10.0.0.13:80", "-s", "rr", "-p", "60"]);
    adm(&["-a", "-t", "10.0.0.13:80", "-r", "192.168.8.14:80", "-m"]);
    adm(&["-a", "-t", "10.0.0.13:80", "-r", "192.168.8.15:80", "-m"]);
    let got: Vec<String> = (0..20)
        .map(|_| curl(&format!("http://{VIP}/")).unwrap())
        .collect();
    assert!(
        got.iter().all(|b| b == &got[0]),
        "all 20 on one server: {got:?}"
    );
    let l = adm(&["-L", "-n"]);
    assert!(l.contains("persistent 60"), "{l}");
}

fn make_big_file(mb: usize) -> String {
    let p = "/run/rvs/www-rs1/big.bin";
    if std::fs::metadata(p).map(|m| m.len()).unwrap_or(0) != (mb as u64) << 20 {
        let o = run(
            "dd",
            &[
                "if=/dev/urandom",
                &format!("of={p}"),
                "bs=1M",
                &format!("count={mb}"),
            ],
        );
        assert!(o.status.success(), "{}", text(&o));
        std::fs::copy(p, "/run/rvs/www-rs2/big.bin").unwrap();
    }
    let o = run("sha256sum", &[p]);
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Starts downloading big.bin through the VIP into a file; `finish` checks it.
fn download(rate: Option<&str>) -> (std::process::Child, String) {
    let out = format!(
        "/tmp/rvs-dl-{}-{}.bin",
        std::process::id(),
        rate.unwrap_or("full")
    );
    let mut args = vec![
        "netns",
        "exec",
        "rvs-client",
        "curl",
        "-s",
        "-m",
        "300",
        "-o",
        &out,
    ];
    if let Some(r) = rate {
        args.push("--limit-rate");
        args.push(r);
    }
    let url = format!("http://{VIP}/big.bin");
    args.push(&url);
    let child = Command::new("ip").args(&args).spawn().expect("curl");
    (child, out)
}

/// Waits for a download; returns (sha256, bytes) of what arrived.
fn finish((mut c, path): (std::process::Child, String)) -> (String, u64) {
    let st = c.wait().unwrap();
    assert!(st.success(), "download failed: {st:?}");
    let n = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let o = run("sha256sum", &[&path]);
    let _ = std::fs::remove_file(&path);
    let sha = String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string();
    (sha, n)
}

#[test]
#[ignore = "needs root and the lab (scripts/test.sh)"]
fn weight_zero_lets_a_transfer_finish_and_moves_new_connections() {
    fresh(1);
    let want = make_big_file(40);
    rr_service();
    let dl = download(Some("8M"));
    // Find which real server carries the transfer, then quiesce it.
    let mut busy = None;
    assert!(wait_for(Duration::from_secs(5), || {
        let c = adm(&["-L", "-n", "-c"]);
        busy = if c.contains("192.168.8.14:80") {
            Some(("192.168.8.14:80", "hello RS2"))
        } else if c.contains("192.168.8.15:80") {
            Some(("192.168.8.15:80", "hello RS1"))
        } else {
            None
        };
        busy.is_some()
    }));
    let (rs, other) = busy.unwrap();
    adm(&["-e", "-t", "10.0.0.13:80", "-r", rs, "-m", "-w", "0"]);
    for _ in 0..6 {
        assert_eq!(
            curl(&format!("http://{VIP}/")).unwrap(),
            other,
            "new connections avoid {rs}"
        );
    }
    let (sha, n) = finish(dl);
    assert_eq!(n, 40 << 20, "transfer completed");
    assert_eq!(sha, want, "byte-identical");
}

fn conc(n: usize) -> serde_json::Value {
    let script = root().join("tests/tools/conc_client.py");
    let o = netns(
        "rvs-client",
        &[
            "/usr/bin/python3",
            script.to_str().unwrap(),
            VIP,
            "80",
            &n.to_string(),
            "120",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    serde_json::from_slice(&o.stdout).expect("json")
}

fn sum_workers(s: &serde_json::Value, f: impl Fn(&serde_json::Value) -> u64) -> u64 {
    s["workers"].as_array().unwrap().iter().map(f).sum()
}

fn multicore(workers: usize) {
    fresh(workers);
    rr_service();
    let r = conc(2000);
    assert_eq!(
        r["ok"], 2000,
        "all 2000 concurrent connections complete: {r}"
    );
    assert_eq!(r["max_open"], 2000, "all open at once: {r}");
    // Scheduler state is per core (as the design requires): each core runs its own rr, so
    // the split is exact per core and within one connection per core overall.
    let rs1 = r["by_body"]["hello RS1"].as_i64().unwrap_or(0);
    let rs2 = r["by_body"]["hello RS2"].as_i64().unwrap_or(0);
    assert_eq!(rs1 + rs2, 2000, "{r}");
    assert!((rs1 - rs2).abs() <= workers as i64, "rr per core: {r}");
    // Ownership: every packet handed over by a receiving core was processed by its owner, none
    // was lost on the way, and every core took part.
    std::thread::sleep(Duration::from_millis(300));
    let s = port_stats();
    let handed_over = sum_workers(&s, |w| {
        w["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["handed_over"].as_u64().unwrap())
            .sum()
    });
    let handed_in = sum_workers(&s, |w| w["handed_in"].as_u64().unwrap());
    assert_eq!(handed_over, handed_in, "handed over == handed in: {s}");
    assert!(
        handed_over > 0,
        "with {workers} workers some packets change core: {s}"
    );
    for p in ["public", "private"] {
        assert_eq!(counter(&s, p, "handover_full"), 0);
    }
    for w in s["workers"].as_array().unwrap() {
        let rx: u64 = w["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["rx_packets"].as_u64().unwrap())
            .sum();
        assert!(rx > 0, "worker {} received traffic: {s}", w["worker"]);
    }
}

#[test]
#[ignore = "needs root and the lab (scripts/test.sh)"]
fn two_workers_2000_concurrent_connections_and_200mb_download() {
    multicore(2);
    let want = make_big_file(200);
    let (sha, n) = finish(download(None));
    assert_eq!(n, 200 << 20);
    assert_eq!(sha, want, "200 MB through the VIP byte-identical");
}

#[test]
#[ignore = "needs root and the lab (scripts/test.sh)"]
fn zz_four_workers_2000_concurrent_connections() {
    multicore(4);
    // Leave the lab as the other tests expect it.
    fresh(1);
}
