//! Acceptance tests of the control plane against the running lab: the seeds' scenarios driven
//! with rvsadm only, live counters, -Z, -C, rules restored at restart, permissions, and 200
//! edits under load. Ignored by a plain `cargo test`; scripts/test.sh runs them.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
#[ignore = "needs root and the lab (scripts/test.sh)"]
fn seeds_scenario_edits_change_traffic() {
    fresh(1);
    adm(&["-A", "-t", "10.0.0.13:80", "-s", "rr"]);
    adm(&["-a", "-t", "10.0.0.13:80", "-r", "192.168.8.14", "-m"]);
    adm(&["-a", "-t", "10.0.0.13:80", "-r", "192.168.8.15", "-m"]);
    let l = adm(&["-L", "-n"]);
    assert!(
        l.contains("TCP  10.0.0.13:80 rr\n")
            && l.contains(
                "  -> 192.168.8.14:80              Masq    1      0          0         \n"
            ),
        "ipvsadm-format listing, port copied from the service: {l:?}"
    );
    let a: Vec<String> = (0..4).map(|_| curl_vip()).collect();
    // As in the kernel, the newest real server (RS2) heads the list: rr starts there.
    assert_eq!(a, ["hello RS2", "hello RS1", "hello RS2", "hello RS1"]);
    // -E to wrr and -e -w 20 on RS2: RS2 now takes 20 of every 21 new connections.
    adm(&["-E", "-t", "10.0.0.13:80", "-s", "wrr"]);
    adm(&[
        "-e",
        "-t",
        "10.0.0.13:80",
        "-r",
        "192.168.8.15",
        "-m",
        "-w",
        "20",
    ]);
    let b: Vec<String> = (0..21).map(|_| curl_vip()).collect();
    assert_eq!(b.iter().filter(|x| *x == "hello RS2").count(), 20, "{b:?}");
    let l = adm(&["-L", "-n"]);
    assert!(l.contains("TCP  10.0.0.13:80 wrr\n"), "{l}");
    assert!(l.contains("192.168.8.15:80              Masq    20"), "{l}");
    // InActConn shows the finished connections waiting in TIME_WAIT.
    let inact: u32 = l
        .lines()
        .find(|x| x.contains("192.168.8.15:80"))
        .and_then(|x| x.split_whitespace().nth(5))
        .and_then(|x| x.parse().ok())
        .unwrap();
    assert!(inact >= 20, "InActConn counts TIME_WAIT connections: {l}");
}

#[test]
#[ignore = "needs root and the lab (scripts/test.sh)"]
fn active_connections_zero_and_clear() {
    fresh(1);
    adm(&["-A", "-t", "10.0.0.13:80", "-s", "rr"]);
    adm(&["-a", "-t", "10.0.0.13:80", "-r", "192.168.8.14:80", "-m"]);
    // A slow download keeps one connection ESTABLISHED: ActiveConn 1.
    let big = "/run/rvs/www-rs1/slow.bin";
    std::fs::write(big, vec![7u8; 4 << 20]).unwrap();
    let mut dl = Command::new("ip")
        .args([
            "netns",
            "exec",
            "rvs-client",
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "--limit-rate",
            "1M",
            "http://10.0.0.13/slow.bin",
        ])
        .spawn()
        .unwrap();
    let seen = wait_for(Duration::from_secs(5), || {
        adm(&["-L", "-n"]).contains("192.168.8.14:80              Masq    1      1 ")
    });
    assert!(
        seen,
        "ActiveConn 1 while the transfer runs: {}",
        adm(&["-L", "-n"])
    );
    assert!(dl.wait().unwrap().success());
    let s = adm(&["-L", "-n", "--stats", "--exact"]);
    assert!(
        !s.contains("        0        0        0        0        0\n  ->"),
        "{s}"
    );
    adm(&["-Z"]);
    let s = adm(&["-L", "-n", "--stats"]);
    let svc = s.lines().find(|x| x.starts_with("TCP")).unwrap();
    assert_eq!(
        svc, "TCP  10.0.0.13:80                        0        0        0        0        0",
        "-Z zeroes the counters: {s}"
    );
    adm(&["-C"]);
    assert_eq!(
        adm(&["-L", "-n"]),
        "IP Virtual Server version 1.2.1 (size=262144)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
    );
    let _ = std::fs::remove_file(big);
}

#[test]
#[ignore = "needs root and the lab (scripts/test.sh)"]
fn errors_have_ipvsadm_messages_and_exit_codes_and_change_nothing() {
    fresh(1);
    adm(&["-A", "-t", "10.0.0.13:80", "-s", "rr"]);
    adm(&["-a", "-t", "10.0.0.13:80", "-r", "192.168.8.14:80", "-m"]);
    let before = adm(&["-S", "-n"]);
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["-A", "-t", "10.0.0.13:80", "-s", "rr"],
            255,
            "Service already exists",
        ),
        (
            &["-E", "-t", "10.0.0.13:81", "-s", "rr"],
            255,
            "No such service",
        ),
        (
            &["-a", "-t", "10.0.0.13:81", "-r", "192.168.8.14", "-m"],
            255,
            "Service not defined",
        ),
        (
            &["-a", "-t", "10.0.0.13:80", "-r", "192.168.8.14", "-m"],
            255,
            "Destination already exists",
        ),
        (
            &["-d", "-t", "10.0.0.13:80", "-r", "192.168.8.99"],
            255,
            "No such destination",
        ),
        (
            &["-A", "-t", "10.0.0.13:81", "-s", "nosuch"],
            255,
            "Scheduler or persistence engine not found",
        ),
        (
            &["-A", "-t", "10.0.0.13:0", "-s", "rr"],
            2,
            "Zero port specified for non-persistent service",
        ),
        (
            &["-a", "-t", "10.0.0.13:80", "-r", "192.168.8.15", "-g"],
            255,
            "forwarding method not supported",
        ),
        (
            &["-a", "-t", "10.0.0.13:80"],
            2,
            "You need to supply the 'real-server' option for the 'add-server' command",
        ),
        (&["-L", "-t", "10.0.0.13:99"], 1, "No such service"),
    ];
    for (args, code, msg) in cases {
        let o = rvsadm(args);
        assert_eq!(o.status.code(), Some(*code), "{args:?}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(msg),
            "{args:?} should say {msg:?}: {}",
            text(&o)
        );
    }
    assert_eq!(
        adm(&["-S", "-n"]),
        before,
        "failed operations changed nothing"
    );
    // A restore with a bad line applies nothing and names the line.
    let mut c = Command::new(bin("rvsadm"))
        .arg("-R")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut i = c.stdin.take().unwrap();
        i.write_all(
            b"-A -t 10.0.0.13:8080 -s rr\n-a -t 10.0.0.13:8080 -r 192.168.8.14:80 -m -w 70000\n",
        )
        .unwrap();
    }
    let o = c.wait_with_output().unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("line 2"),
        "{}",
        text(&o)
    );
    assert_eq!(adm(&["-S", "-n"]), before, "bad restore applied nothing");
}

#[test]
#[ignore = "needs root and the lab (scripts/test.sh)"]
fn non_root_users_are_refused() {
    require_lab();
    let o = run(
        "runuser",
        &[
            "-u",
            "nobody",
            "--",
            bin("rvsadm").to_str().unwrap(),
            "-L",
            "-n",
        ],
    );
    assert_eq!(o.status.code(), Some(255), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Permission denied (you must be root)"),
        "{}",
        text(&o)
    );
}

#[test]
#[ignore = "needs root and the lab (scripts/test.sh)"]
fn restart_with_saved_rules_restores_the_same_listing() {
    fresh(1);
    // A service port no other test uses, so no earlier connection is still bound to it (the
    // listing must show configuration, not leftovers).
    adm(&[
        "-A",
        "-t",
        "10.0.0.13:8088",
        "-s",
        "wlc",
        "-p",
        "120",
        "-M",
        "255.255.255.0",
    ]);
    adm(&[
        "-a",
        "-t",
        "10.0.0.13:8088",
        "-r",
        "192.168.8.14:80",
        "-m",
        "-w",
        "3",
        "-x",
        "100",
        "-y",
        "50",
    ]);
    adm(&[
        "-a",
        "-t",
        "10.0.0.13:8088",
        "-r",
        "192.168.8.15:8000",
        "-m",
        "-w",
        "0",
    ]);
    adm(&["-A", "-u", "10.0.0.13:53", "-s", "sh", "-b", "sh-port"]);
    adm(&["-a", "-u", "10.0.0.13:53", "-r", "192.168.8.15:53", "-m"]);
    let saved = adm(&["-S", "-n"]);
    let listing = adm(&["-L", "-n"]);
    let rules = "/run/rvs/test-rules";
    std::fs::write(rules, &saved).unwrap();
    let lab = root().join("scripts/lab.sh");
    run("bash", &[lab.to_str().unwrap(), "stop-rvs"]);
    let o = run(
        "bash",
        &[lab.to_str().unwrap(), "start-rvs", "--rules", rules],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(adm(&["-L", "-n"]), listing, "same -L -n after restart");
    assert_eq!(adm(&["-S", "-n"]), saved);
    // -S | -R round-trips too.
    adm(&["-C"]);
    let mut c = Command::new(bin("rvsadm"))
        .arg("-R")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        c.stdin.take().unwrap().write_all(saved.as_bytes()).unwrap();
    }
    assert!(c.wait().unwrap().success());
    assert_eq!(adm(&["-S", "-n"]), saved);
    // Back to the plain lab config.
    run("bash", &[lab.to_str().unwrap(), "stop-rvs"]);
    let o = run("bash", &[lab.to_str().unwrap(), "start-rvs"]);
    assert!(o.status.success(), "{}", text(&o));
    let _ = std::fs::remove_file(rules);
}

fn drops_total(s: &serde_json::Value) -> u64 {
    s["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            p["sw"]["drops"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d[1].as_u64().unwrap())
                .sum::<u64>()
        })
        .sum()
}

#[test]
#[ignore = "needs root and the lab (scripts/test.sh)"]
fn two_hundred_edits_under_load_lose_nothing() {
    fresh(1);
    adm(&["-A", "-t", "10.0.0.13:80", "-s", "rr"]);
    adm(&["-a", "-t", "10.0.0.13:80", "-r", "192.168.8.14:80", "-m"]);
    adm(&["-a", "-t", "10.0.0.13:80", "-r", "192.168.8.15:80", "-m"]);
    let file = "/run/rvs/www-rs1/edit.bin";
    std::fs::write(
        file,
        (0..(8u32 << 20))
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    std::fs::copy(file, "/run/rvs/www-rs2/edit.bin").unwrap();
    let before = port_stats();
    // Continuous new connections, and one long transfer that must survive every edit.
    let load = Command::new("ip")
        .args([
            "netns",
            "exec",
            "rvs-client",
            "bash",
            "-c",
            "fail=0; ok=0; for i in $(seq 400); do \
               c=$(curl -s -m 5 -o /dev/null -w '%{http_code}' http://10.0.0.13/) ; \
               if [ \"$c\" = 200 ]; then ok=$((ok+1)); else fail=$((fail+1)); fi; \
             done; echo \"$ok $fail\"",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut long = Command::new("ip")
        .args([
            "netns",
            "exec",
            "rvs-client",
            "curl",
            "-s",
            "-m",
            "120",
            "--limit-rate",
            "1M",
            "-o",
            "/tmp/rvs-edit.bin",
            "http://10.0.0.13/edit.bin",
        ])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let scheds = ["wrr", "rr", "wlc", "lc"];
    for i in 0..200 {
        let w = (i % 5 + 1).to_string();
        match i % 4 {
            0 => adm(&[
                "-e",
                "-t",
                "10.0.0.13:80",
                "-r",
                "192.168.8.14:80",
                "-m",
                "-w",
                &w,
            ]),
            1 => adm(&["-E", "-t", "10.0.0.13:80", "-s", scheds[(i / 4) % 4]]),
            2 => adm(&["-d", "-t", "10.0.0.13:80", "-r", "192.168.8.15:80"]),
            _ => adm(&[
                "-a",
                "-t",
                "10.0.0.13:80",
                "-r",
                "192.168.8.15:80",
                "-m",
                "-w",
                &w,
            ]),
        };
        std::thread::sleep(Duration::from_millis(15));
    }
    let out = load.wait_with_output().unwrap();
    let res = String::from_utf8_lossy(&out.stdout);
    assert_eq!(res.trim(), "400 0", "no failed connection during 200 edits");
    assert!(long.wait().unwrap().success(), "long transfer survived");
    let got = std::fs::read("/tmp/rvs-edit.bin").unwrap();
    assert_eq!(got, std::fs::read(file).unwrap(), "byte-identical");
    let after = port_stats();
    assert_eq!(
        drops_total(&after),
        drops_total(&before),
        "no packet dropped: {after}"
    );
    let _ = std::fs::remove_file("/tmp/rvs-edit.bin");
}
