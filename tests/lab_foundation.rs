//! Acceptance tests of the foundation against the running lab (`scripts/lab.sh up`): ARP and
//! ping of the appliance's addresses, counters, malformed frames, start-up errors, shutdown.
//! They need root and the lab, so they are ignored by a plain `cargo test`; scripts/test.sh
//! runs them with `--ignored --test-threads=1`.

mod common;
use common::*;
use std::process::Command;
use std::time::Duration;

#[test]
#[ignore = "needs root and the lab (scripts/test.sh)"]
fn client_pings_and_arps_the_vip() {
    require_lab();
    let before = port_stats();
    let o = netns(
        "rvs-client",
        &["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.0.0.13"],
    );
    assert!(o.status.success(), "ping VIP: {}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("3 received"));

    let o = netns(
        "rvs-client",
        &["arping", "-c", "2", "-w", "4", "-I", "eth0", "10.0.0.13"],
    );
    assert!(o.status.success(), "arping VIP: {}", text(&o));
    let mac = port_mac(&before, "public");
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .to_lowercase()
            .contains(&mac),
        "arping answered by the appliance's MAC {mac}: {}",
        text(&o)
    );

    let after = port_stats();
    let d = |n: &str| counter(&after, "public", n) - counter(&before, "public", n);
    assert!(d("echo_replies") >= 3, "echo replies counted");
    assert!(d("arp_replies") >= 2, "ARP replies counted");
    assert!(d("rx_packets") >= 5 && d("tx_packets") >= 5);
}

#[test]
#[ignore = "needs root and the lab (scripts/test.sh)"]
fn real_server_pings_the_dip() {
    require_lab();
    let before = port_stats();
    let o = netns(
        "rvs-rs1",
        &["ping", "-c", "3", "-i", "0.2", "-W", "2", "192.168.8.13"],
    );
    assert!(o.status.success(), "ping DIP: {}", text(&o));
    let after = port_stats();
    assert!(
        counter(&after, "private", "echo_replies") - counter(&before, "private", "echo_replies")
            >= 3
    );
    // The VIP is not an address of the private port: no answer there.
    let o = netns("rvs-rs1", &["ping", "-c", "1", "-W", "1", "10.0.0.13"]);
    assert!(
        !o.status.success(),
        "VIP must not answer on the private side"
    );
}

/// Ethernet + IPv4 + ICMP echo request from the client to the VIP, checksums correct.
fn echo_frame(dst_mac: [u8; 6], src_mac: [u8; 6]) -> Vec<u8> {
    let mut ip = vec![
        0x45, 0, 0, 28, 0x77, 0x77, 0, 0, 64, 1, 0, 0, 10, 0, 0, 12, 10, 0, 0, 13,
    ];
    let c = csum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut icmp = vec![8, 0, 0, 0, 0x12, 0x34, 0, 1];
    let c = csum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&icmp);
    f
}

#[test]
#[ignore = "needs root and the lab (scripts/test.sh)"]
fn malformed_frames_are_dropped_and_counted() {
    require_lab();
    let before = port_stats();
    let vip_mac = mac_bytes(&port_mac(&before, "public"));
    let cli_mac = ns_mac("rvs-client", "eth0");
    let good = echo_frame(vip_mac, cli_mac);

    let mut bad_csum = good.clone();
    bad_csum[24] ^= 0x5a; // IPv4 header checksum
    let mut truncated = good.clone();
    truncated[16..18].copy_from_slice(&200u16.to_be_bytes()); // total length beyond the frame
    let c = {
        truncated[24] = 0;
        truncated[25] = 0;
        csum(&truncated[14..34])
    };
    truncated[24..26].copy_from_slice(&c.to_be_bytes());
    let mut bad_version = good.clone();
    bad_version[14] = 0x65;

    inject(
        "rvs-client",
        "eth0",
        // (A frame shorter than 14 bytes cannot be sent through a packet socket; runts are
        // covered by the unit tests of dataplane::l3.)
        &[bad_csum.clone(), bad_csum, truncated, bad_version],
    );
    let counted = wait_for(Duration::from_secs(3), || {
        let s = port_stats();
        counter(&s, "public", "ipv4_bad_checksum") - counter(&before, "public", "ipv4_bad_checksum")
            >= 2
            && counter(&s, "public", "ipv4_malformed")
                - counter(&before, "public", "ipv4_malformed")
                >= 2
    });
    assert!(counted, "drops counted: {}", port_stats());
    // Malformed frames never get an answer; the well-formed one does, and ping still works.
    let s = port_stats();
    assert_eq!(
        counter(&s, "public", "echo_replies"),
        counter(&before, "public", "echo_replies"),
        "no reply to malformed echo requests"
    );
    let o = netns(
        "rvs-client",
        &["ping", "-c", "2", "-i", "0.2", "-W", "2", "10.0.0.13"],
    );
    assert!(o.status.success(), "appliance still answers: {}", text(&o));
}

fn run_rvs_with(config: &str) -> std::process::Output {
    let dir = std::env::temp_dir().join(format!("rvs-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rvs.toml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(bin("rvs"))
        .arg("--config")
        .arg(&path)
        .output()
        .expect("run rvs");
    let _ = std::fs::remove_dir_all(&dir);
    out
}

const GOOD: &str = r#"
[eal]
memory_mb = 256
no_huge = true
file_prefix = "rvs-badcfg"
[public]
device = "net_af_packet0"
devargs = "iface=rvs-pub"
addresses = ["10.0.0.13/24"]
[private]
device = "net_af_packet1"
devargs = "iface=rvs-priv"
addresses = ["192.168.8.13/24"]
[control]
socket = "/run/rvs-test-bad/rvs.sock"
"#;

#[test]
#[ignore = "needs root and the lab (scripts/test.sh)"]
fn broken_configs_exit_nonzero_with_one_clear_line() {
    let cases: Vec<(String, &str)> = vec![
        (GOOD.replace("[private]", "[private\n"), "expected"),
        (
            GOOD.replace("10.0.0.13/24", "10.0.0.13"),
            "needs a prefix length",
        ),
        (
            GOOD.replace("iface=rvs-pub", "iface=rvs-nosuch"),
            "kernel interface \"rvs-nosuch\"",
        ),
        (
            GOOD.replace("no_huge = true", "no_huge = false")
                .replace("memory_mb = 256", "memory_mb = 100000000"),
            "hugepages:",
        ),
        (
            GOOD.replace("/run/rvs-test-bad/rvs.sock", "/run/rvs/rvs.sock"),
            "in use by a running rvs",
        ),
        (GOOD.replace("[eal]", "[eal]\nbogus = 1"), "unknown field"),
    ];
    for (cfg, want) in cases {
        let o = run_rvs_with(&cfg);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(
            o.status.code(),
            Some(1),
            "exit 1 for {want:?}: {}",
            text(&o)
        );
        let last = err.lines().last().unwrap_or("");
        assert!(
            last.starts_with("rvs: error:") && last.contains(want),
            "last stderr line should be the error containing {want:?}: {}",
            text(&o)
        );
    }
    let o = Command::new(bin("rvs"))
        .args(["--config", "/nonexistent/rvs.toml"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot read /nonexistent/rvs.toml"));
    // The running appliance is unaffected by all of this.
    require_lab();
}

#[test]
#[ignore = "needs root and the lab (scripts/test.sh)"]
fn sigterm_stops_cleanly_and_restart_serves_again() {
    require_lab();
    let lab = root().join("scripts/lab.sh");
    let pid: i32 = std::fs::read_to_string("/run/rvs/rvs.pid")
        .expect("pid file")
        .trim()
        .parse()
        .unwrap();
    let o = run("bash", &[lab.to_str().unwrap(), "stop-rvs"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "process gone"
    );
    assert!(
        !std::path::Path::new("/run/rvs/rvs.sock").exists(),
        "socket removed on shutdown"
    );
    let log = std::fs::read_to_string("/run/rvs/rvs.log").unwrap();
    assert!(log.contains("rvs: stopped"), "clean stop logged: {log}");
    assert!(!rvsadm(&["--stats-ports"]).status.success());
    let o = run("bash", &[lab.to_str().unwrap(), "start-rvs"]);
    assert!(o.status.success(), "restart: {}", text(&o));
    let o = netns(
        "rvs-client",
        &["ping", "-c", "2", "-i", "0.2", "-W", "2", "10.0.0.13"],
    );
    assert!(o.status.success(), "serves again: {}", text(&o));
}
