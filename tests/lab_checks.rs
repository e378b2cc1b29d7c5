//! Acceptance tests of the health checks (issue 12) in the lab: rvs restarted with
//! `scripts/lab.sh start-rvs --checks FILE`, real servers stopped and started with
//! `scripts/lab.sh stop-server N` / `start-server N`, a client making requests through the VIP
//! the whole time. Every test puts the lab back as it found it (plain rvs, both servers up).
//! Ignored by a plain `cargo test`; scripts/test.sh runs them.

mod common;
use common::*;
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const RUN: &str = "/run/rvs";
const CHECKS: &str = "/run/rvs/lab-checks.conf";

fn lab(args: &[&str]) -> Output {
    let lab = root().join("scripts/lab.sh");
    let mut a = vec![lab.to_str().unwrap()];
    a.extend_from_slice(args);
    run("bash", &a)
}

fn lab_ok(args: &[&str]) {
    let o = lab(args);
    assert!(o.status.success(), "lab.sh {args:?}: {}", text(&o));
}

/// rvs running the checks in `conf`; dropping it restores the plain lab.
struct ChecksLab;

impl ChecksLab {
    fn start(conf: &str) -> ChecksLab {
        Self::start_with(conf, &[])
    }

    /// With more `lab.sh start-rvs` options (`--tcp-check half-open`).
    fn start_with(conf: &str, opts: &[&str]) -> ChecksLab {
        require_lab();
        std::fs::write(CHECKS, conf).unwrap();
        lab_ok(&["stop-rvs"]);
        let guard = ChecksLab;
        let mut args = vec!["start-rvs", "--checks", CHECKS];
        args.extend_from_slice(opts);
        lab_ok(&args);
        guard
    }
}

impl Drop for ChecksLab {
    fn drop(&mut self) {
        for n in ["1", "2"] {
            if !std::path::Path::new(&format!("{RUN}/http-rs{n}.pid")).exists() {
                let _ = lab(&["start-server", n]);
            }
        }
        let _ = lab(&["stop-rvs"]);
        let _ = lab(&["start-rvs"]);
    }
}

/// The weight `rvsadm -L -n` shows for `rs` in the first service listed, None if absent.
fn weight_of(rs: &str) -> Option<u32> {
    let t = adm(&["-L", "-n"]);
    t.lines()
        .find(|l| l.trim_start().starts_with(&format!("-> {rs} ")))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|w| w.parse().ok())
}

fn log() -> String {
    std::fs::read_to_string(format!("{RUN}/rvs.log")).unwrap_or_default()
}

fn checks() -> serde_json::Value {
    let o = rvsadm(&["--list-checks", "--json"]);
    assert!(o.status.success(), "--list-checks: {}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The last result of the first checker of real server `rs` ("IP:PORT") of service `svc`.
fn last_result(svc: &str, rs: &str) -> Option<String> {
    let c = checks();
    let vs = c["virtual_servers"]
        .as_array()?
        .iter()
        .find(|v| v["service"] == svc)?
        .clone();
    let r = vs["real_servers"]
        .as_array()?
        .iter()
        .find(|r| r["server"] == rs)?
        .clone();
    r["checkers"][0]["last_result"].as_str().map(str::to_string)
}

/// Each request's start and what came back (the body, or why it failed).
type Log = Arc<Mutex<Vec<(Instant, Result<String, String>)>>>;

/// A client requesting http://VIP/ from rvs-client back to back; each request is recorded
/// with when it started and what came back.
struct Client {
    stop: Arc<AtomicBool>,
    got: Log,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Client {
    fn start() -> Client {
        let stop = Arc::new(AtomicBool::new(false));
        let got: Log = Arc::new(Mutex::new(Vec::new()));
        let (s, g) = (stop.clone(), got.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let t = Instant::now();
                let o = netns(
                    "rvs-client",
                    &["curl", "-s", "-m", "3", "http://10.0.0.13/"],
                );
                let r = if o.status.success() {
                    Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
                } else {
                    Err(format!("curl exit {:?}", o.status.code()))
                };
                g.lock().unwrap().push((t, r));
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Client {
            stop,
            got,
            thread: Some(thread),
        }
    }

    /// Requests started after `t`.
    fn since(&self, t: Instant) -> Vec<Result<String, String>> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(s, _)| *s >= t)
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// Waits until `n` requests started after `t` completed.
    fn wait_count(&self, t: Instant, n: usize) -> Vec<Result<String, String>> {
        assert!(
            wait_for(Duration::from_secs(60), || self.since(t).len() >= n),
            "the client made fewer than {n} requests in 60 s"
        );
        self.since(t)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

const HTTP_LAB: &str = r#"
# The lab's service with keepalived's HTTP_GET on /.
global_defs {
    router_id rvs-lab
}
virtual_server 10.0.0.13 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    INHIBIT
    real_server 192.168.8.14 80 {
        weight 1
        HTTP_GET {
            url {
                path /
                status_code 200
            }
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
    real_server 192.168.8.15 80 {
        weight 1
        HTTP_GET {
            url {
                path /
                status_code 200
            }
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
}
"#;

/// delay_loop + connect_timeout * (retry + 1) + 1 s, the issue's bound for the lab's config.
const BOUND: Duration = Duration::from_secs(1 + 2 + 1);

/// Stops RS1 under load, checks it leaves within BOUND (removed, or weight 0 when `inhibit`)
/// and that no request fails afterwards; starts it, checks it is back within BOUND.
fn stop_and_start_rs1(inhibit: bool) {
    let conf = HTTP_LAB.replace("INHIBIT", if inhibit { "inhibit_on_failure" } else { "" });
    let _lab = ChecksLab::start(&conf);
    assert!(
        wait_for(Duration::from_secs(10), || weight_of("192.168.8.14:80")
            == Some(1)
            && weight_of("192.168.8.15:80") == Some(1)),
        "both servers in the table at start:\n{}",
        adm(&["-L", "-n"])
    );
    let client = Client::start();
    client.wait_count(Instant::now(), 4);

    let stopped = Instant::now();
    lab_ok(&["stop-server", "1"]);
    let gone = |w: Option<u32>| if inhibit { w == Some(0) } else { w.is_none() };
    assert!(
        wait_for(BOUND, || gone(weight_of("192.168.8.14:80"))),
        "RS1 still serving {BOUND:?} after its server stopped:\n{}\n{}",
        adm(&["-L", "-n"]),
        adm(&["--list-checks"])
    );
    let left = Instant::now();
    eprintln!("RS1 left after {:?}", left - stopped);
    let after = client.wait_count(left + Duration::from_millis(200), 20);
    assert!(
        after.iter().all(|r| r.as_deref() == Ok("hello RS2")),
        "after RS1 left, every request must reach RS2: {after:?}"
    );
    let reason = last_result("TCP  10.0.0.13:80", "192.168.8.14:80").unwrap_or_default();
    assert!(reason.contains("connection refused"), "reason: {reason}");
    let l = log();
    let verb = if inhibit { "Disabling" } else { "Removing" };
    assert!(
        l.contains(&format!(
            "{verb} service [192.168.8.14]:tcp:80 from VS [10.0.0.13]:tcp:80"
        )),
        "keepalived's words in the log:\n{l}"
    );

    let started = Instant::now();
    lab_ok(&["start-server", "1"]);
    assert!(
        wait_for(BOUND, || weight_of("192.168.8.14:80") == Some(1)),
        "RS1 not back {BOUND:?} after its server started:\n{}",
        adm(&["-L", "-n"])
    );
    eprintln!("RS1 back after {:?}", started.elapsed());
    let back = Instant::now();
    let after = client.wait_count(back + Duration::from_millis(200), 10);
    assert!(after.iter().all(|r| r.is_ok()), "{after:?}");
    assert!(
        after.iter().any(|r| r.as_deref() == Ok("hello RS1")),
        "{after:?}"
    );
    assert!(
        after.iter().any(|r| r.as_deref() == Ok("hello RS2")),
        "{after:?}"
    );
}

#[test]
#[ignore = "needs root and the lab (scripts/test.sh)"]
fn a_stopped_server_leaves_within_the_bound_and_returns() {
    stop_and_start_rs1(false);
}

#[test]
#[ignore = "needs root and the lab (scripts/test.sh)"]
fn inhibit_on_failure_sets_weight_zero_and_back() {
    stop_and_start_rs1(true);
}

#[test]
#[ignore = "needs root and the lab (scripts/test.sh)"]
fn quorum_lost_sends_clients_to_the_sorry_server_and_back() {
    let conf = HTTP_LAB.replace("INHIBIT", "quorum 1\n    sorry_server 192.168.8.16 80");
    let _lab = ChecksLab::start(&conf);
    assert!(wait_for(Duration::from_secs(10), || weight_of(
        "192.168.8.15:80"
    ) == Some(1)));
    lab_ok(&["stop-server", "1"]);
    lab_ok(&["stop-server", "2"]);
    assert!(
        wait_for(Duration::from_secs(15), || weight_of("192.168.8.16:80")
            == Some(1)),
        "sorry server not in the table:\n{}",
        adm(&["-L", "-n"])
    );
    assert_eq!(weight_of("192.168.8.14:80"), None);
    assert_eq!(weight_of("192.168.8.15:80"), None);
    let o = netns(
        "rvs-client",
        &["curl", "-s", "-m", "3", "http://10.0.0.13/"],
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "hello SORRY");
    assert!(
        log().contains("Lost quorum 1-0=1 > 0 for VS [10.0.0.13]:tcp:80"),
        "{}",
        log()
    );
    let c = checks();
    assert_eq!(c["virtual_servers"][0]["sorry_active"], true);

    lab_ok(&["start-server", "2"]);
    assert!(
        wait_for(Duration::from_secs(10), || weight_of("192.168.8.15:80")
            == Some(1)
            && weight_of("192.168.8.16:80").is_none()),
        "real pool not back:\n{}",
        adm(&["-L", "-n"])
    );
    let o = netns(
        "rvs-client",
        &["curl", "-s", "-m", "3", "http://10.0.0.13/"],
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "hello RS2");
    assert!(
        log().contains("Gained quorum 1+0=1 <= 1 for VS [10.0.0.13]:tcp:80"),
        "{}",
        log()
    );
}

/// Scripts for MISC_CHECK, written to the run directory.
fn script(name: &str, body: &str) -> String {
    let p = format!("{RUN}/lab-check-{name}.sh");
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    run("chmod", &["755", &p]);
    p
}

#[test]
#[ignore = "needs root and the lab (scripts/test.sh)"]
fn misc_exit_codes_hangs_and_http_failure_reasons() {
    let ok = script("ok", "exit 0");
    let fail = script("fail", "exit 1");
    let dynamic = script("dyn", "exit 5");
    let pidfile = format!("{RUN}/lab-check-hang.pid");
    let _ = std::fs::remove_file(&pidfile);
    let hang = script("hang", &format!("echo $$ > {pidfile}\nexec sleep 30"));
    let vs = |port: u16, rs: &str, check: &str| {
        format!(
            "virtual_server 10.0.0.13 {port} {{\n delay_loop 1\n lb_kind NAT\n protocol TCP\n \
             real_server {rs} 80 {{\n  {check}\n }}\n}}\n"
        )
    };
    let misc = |path: &str, extra: &str| {
        format!("MISC_CHECK {{\n   misc_path \"{path}\"\n   misc_timeout 1\n   {extra}\n  }}")
    };
    let http = |url: &str| {
        format!("HTTP_GET {{\n   url {{\n    path /\n    {url}\n   }}\n   connect_timeout 1\n   retry 0\n  }}")
    };
    let conf = [
        vs(81, "192.168.8.14", &misc(&ok, "")),
        vs(82, "192.168.8.14", &misc(&fail, "")),
        vs(83, "192.168.8.14", &misc(&dynamic, "misc_dynamic")),
        vs(84, "192.168.8.14", &misc(&hang, "")),
        vs(85, "192.168.8.14", &http("status_code 201")),
        vs(
            86,
            "192.168.8.14",
            &http("digest 00112233445566778899aabbccddeeff"),
        ),
    ]
    .concat();
    let _lab = ChecksLab::start(&conf);
    let svc = |p: u16| format!("TCP  10.0.0.13:{p}");
    let rs = "192.168.8.14:80";
    let settled = || {
        (81..=86).all(|p| last_result(&svc(p), rs).is_some())
            && [82, 84, 85, 86]
                .iter()
                .all(|&p| last_result(&svc(p), rs).is_some_and(|r| r != "ok"))
    };
    assert!(
        wait_for(Duration::from_secs(20), settled),
        "{}",
        adm(&["--list-checks"])
    );
    assert_eq!(last_result(&svc(81), rs).as_deref(), Some("ok"));
    assert_eq!(last_result(&svc(82), rs).as_deref(), Some("exit status 1"));
    assert_eq!(last_result(&svc(83), rs).as_deref(), Some("ok"));
    let hang_reason = last_result(&svc(84), rs).unwrap();
    assert!(hang_reason.contains("timed out"), "{hang_reason}");
    assert_eq!(
        last_result(&svc(85), rs).as_deref(),
        Some("HTTP status 200")
    );
    assert_eq!(
        last_result(&svc(86), rs).as_deref(),
        Some("digest mismatch")
    );
    // The table: 81 up (weight 1), 83 up with weight 5 - 2, the others removed.
    let t = adm(&["-L", "-n"]);
    let svc_block = |p: u16| {
        t.split("TCP  ")
            .find(|b| b.starts_with(&format!("10.0.0.13:{p} ")))
            .unwrap_or("")
            .to_string()
    };
    assert!(svc_block(81).contains("-> 192.168.8.14:80"), "{t}");
    let b83 = svc_block(83);
    let w83: Vec<&str> = b83
        .lines()
        .find(|l| l.contains("-> 192.168.8.14:80"))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    assert_eq!(
        w83.get(3),
        Some(&"3"),
        "misc_dynamic exit 5 is weight 3:\n{t}"
    );
    for p in [82, 84, 85, 86] {
        assert!(
            !svc_block(p).contains("-> 192.168.8.14:80"),
            "port {p}:\n{t}"
        );
    }
    // The hanging script was killed, not left behind.
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    let pid = pid.trim();
    assert!(
        wait_for(Duration::from_secs(3), || !std::path::Path::new(&format!(
            "/proc/{pid}"
        ))
        .exists()),
        "the script that outlived misc_timeout (pid {pid}) is still running"
    );
}

#[test]
#[ignore = "needs root and the lab (scripts/test.sh)"]
fn a_reload_changing_one_checker_keeps_the_others_state() {
    let conf = HTTP_LAB.replace("INHIBIT", "");
    let _lab = ChecksLab::start(&conf);
    assert!(wait_for(Duration::from_secs(10), || weight_of(
        "192.168.8.14:80"
    ) == Some(1)
        && weight_of("192.168.8.15:80") == Some(1)));
    let client = Client::start();
    let t0 = Instant::now();
    client.wait_count(t0, 3);
    let before = log();
    // RS2's checker changes (connect_timeout 1 -> 2); RS1's does not.
    let i = conf.rfind("connect_timeout 1").unwrap();
    let changed = format!("{}connect_timeout 2{}", &conf[..i], &conf[i + 17..]);
    std::fs::write(CHECKS, &changed).unwrap();
    let out = adm(&["--reload-checks"]);
    assert!(out.contains("1 new, 1 stopped"), "{out}");
    assert!(out.contains(", 0 IPVS operations"), "{out}");
    // And again by SIGHUP, with nothing changed.
    let pid = std::fs::read_to_string(format!("{RUN}/rvs.pid")).unwrap();
    run("kill", &["-HUP", pid.trim()]);
    assert!(
        wait_for(Duration::from_secs(5), || log()
            .contains("0 new, 0 stopped")),
        "{}",
        log()
    );
    let after = client.wait_count(t0, 30);
    assert!(
        after.iter().all(|r| r.is_ok()),
        "a request failed across the reload: {after:?}"
    );
    let new_log = &log()[before.len()..];
    assert!(
        !new_log.contains("Removing service") && !new_log.contains("Adding service"),
        "a server flapped:\n{new_log}"
    );
    assert_eq!(weight_of("192.168.8.14:80"), Some(1));
    assert_eq!(weight_of("192.168.8.15:80"), Some(1));
}

#[test]
#[ignore = "needs root and the lab (scripts/test.sh)"]
fn bad_check_files_name_file_line_and_keyword_and_change_nothing() {
    let conf = HTTP_LAB.replace("INHIBIT", "");
    let _lab = ChecksLab::start(&conf);
    assert!(wait_for(Duration::from_secs(10), || weight_of(
        "192.168.8.15:80"
    ) == Some(1)));
    let table = adm(&["-L", "-n"]);
    let cases = [
        ("lb_kind DR", "lb_kind: "),
        ("lb_algo nosuch", "lb_algo: "),
        ("delay_loop x", "delay_loop: "),
        ("quorum -1", "quorum: "),
    ];
    for (bad, keyword) in cases {
        let broken = conf.replacen("protocol TCP", &format!("protocol TCP\n    {bad}"), 1);
        std::fs::write(CHECKS, &broken).unwrap();
        let o = rvsadm(&["--reload-checks"]);
        assert!(!o.status.success(), "{bad}: reload accepted");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(&format!("{CHECKS}:11: {keyword}")),
            "{bad}: {err}"
        );
        // rvs --check says the same.
        let c = run(
            bin("rvs").to_str().unwrap(),
            &["--check", "--config", &format!("{RUN}/lab.toml")],
        );
        assert_eq!(c.status.code(), Some(1), "{bad}: {}", text(&c));
        assert!(String::from_utf8_lossy(&c.stderr).contains(&format!("{CHECKS}:11: {keyword}")));
    }
    assert_eq!(adm(&["-L", "-n"]), table, "nothing applied");
    std::fs::write(CHECKS, &conf).unwrap();
    assert!(adm(&["--reload-checks"]).contains("0 IPVS operations"));
}

#[test]
#[ignore = "needs root and the lab (scripts/test.sh)"]
fn checks_come_from_the_dip() {
    // A one-shot listener on RS1 port 9000 that writes down who connected.
    let who = format!("{RUN}/lab-check-peer");
    let _ = std::fs::remove_file(&who);
    let py = format!(
        "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
         s.bind(('192.168.8.14',9000))\ns.listen(8)\nc,a=s.accept()\nopen('{who}','w').write(a[0])\n"
    );
    let mut l = std::process::Command::new("ip")
        .args(["netns", "exec", "rvs-rs1", "/usr/bin/python3", "-c", &py])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let conf = "virtual_server 10.0.0.13 9000 {\n delay_loop 1\n lb_kind NAT\n protocol TCP\n \
                real_server 192.168.8.14 9000 {\n  TCP_CHECK {\n   connect_timeout 1\n  }\n }\n}\n";
    let _lab = ChecksLab::start(conf);
    let seen = wait_for(Duration::from_secs(10), || {
        std::path::Path::new(&who).exists()
    });
    let _ = l.kill();
    let _ = l.wait();
    assert!(seen, "no check reached RS1:9000");
    assert_eq!(std::fs::read_to_string(&who).unwrap(), "192.168.8.13");
}

#[test]
#[ignore = "needs root and the lab (scripts/test.sh)"]
fn half_open_tcp_checks_from_the_data_plane() {
    // TCP_CHECK by SYN from the data plane: worker 0 sends it out of the private port from the
    // DIP, the workers take the SYN-ACK (answering it with the RST) or RST before the
    // exception path: none of it goes up to rvs-priv-k.
    let conf = "virtual_server 10.0.0.13 80 {\n delay_loop 1\n lb_algo rr\n lb_kind NAT\n \
                protocol TCP\n real_server 192.168.8.14 80 {\n  TCP_CHECK {\n   \
                connect_timeout 1\n   retry 0\n  }\n }\n real_server 192.168.8.15 80 {\n  \
                TCP_CHECK {\n   connect_timeout 1\n   retry 0\n  }\n }\n}\n";
    let _lab = ChecksLab::start_with(conf, &["--tcp-check", "half-open"]);
    let up = || weight_of("192.168.8.14:80") == Some(1) && weight_of("192.168.8.15:80") == Some(1);
    assert!(
        wait_for(Duration::from_secs(10), up),
        "{}",
        adm(&["--list-checks"])
    );
    let half_open = || checks()["half_open"].clone();
    let (ports0, h0) = (port_stats(), half_open());
    assert_eq!(h0["via"], "data plane", "{h0}");
    std::thread::sleep(Duration::from_secs(5));
    let (ports1, h1) = (port_stats(), half_open());
    let n = |h: &serde_json::Value, k: &str| h[k].as_u64().unwrap();
    let (sent, answers) = (
        n(&h1, "sent") - n(&h0, "sent"),
        n(&h1, "answers") - n(&h0, "answers"),
    );
    // Two servers checked every second for 5 s.
    assert!(
        sent >= 8 && answers >= 8,
        "sent +{sent}, answers +{answers}"
    );
    let up_kernel =
        counter(&ports1, "private", "to_kernel") - counter(&ports0, "private", "to_kernel");
    assert!(
        up_kernel < answers / 2,
        "answers went up to the kernel: to_kernel +{up_kernel}, answers +{answers}"
    );
    assert!(
        adm(&["--list-checks"]).contains("Half-open TCP checks via the data plane: "),
        "{}",
        adm(&["--list-checks"])
    );
    lab_ok(&["stop-server", "1"]);
    assert!(
        wait_for(BOUND, || weight_of("192.168.8.14:80").is_none()),
        "{}",
        adm(&["--list-checks"])
    );
    assert_eq!(
        last_result("TCP  10.0.0.13:80", "192.168.8.14:80").as_deref(),
        Some("connection refused")
    );
    lab_ok(&["start-server", "1"]);
    assert!(wait_for(BOUND, up), "{}", adm(&["--list-checks"]));
    let o = netns(
        "rvs-client",
        &["curl", "-s", "-m", "3", "http://10.0.0.13/"],
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("hello RS"),
        "{}",
        text(&o)
    );
    assert_eq!(n(&half_open(), "lost"), 0);
}
