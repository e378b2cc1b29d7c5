//! Helpers for the lab tests: they drive the namespaces built by `scripts/lab.sh up` and the
//! rvs it started, and read the appliance's counters through rvsadm. Also the EAL arguments of
//! the root-only `dpdk_*` tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A binary of the workspace: next to this test's own profile directory first (the test is
/// `<target>/<profile>/deps/<test>-<hash>`, so a `CARGO_TARGET_DIR` elsewhere works), then
/// `target/release`, then `target/debug`.
pub fn bin(name: &str) -> PathBuf {
    if let Some(p) = std::env::current_exe()
        .ok()
        .and_then(|e| Some(e.parent()?.parent()?.join(name)))
        .filter(|p| p.exists())
    {
        return p;
    }
    let rel = root().join("target/release").join(name);
    if rel.exists() {
        rel
    } else {
        root().join("target/debug").join(name)
    }
}

pub fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"))
}

/// Runs a command inside a lab namespace.
pub fn netns(ns: &str, args: &[&str]) -> Output {
    let mut a = vec!["netns", "exec", ns];
    a.extend_from_slice(args);
    run("ip", &a)
}

pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn rvsadm(args: &[&str]) -> Output {
    Command::new(bin("rvsadm"))
        .args(args)
        .output()
        .expect("run rvsadm")
}

/// The appliance's counters (`rvsadm --stats-ports --json`).
pub fn port_stats() -> serde_json::Value {
    let o = rvsadm(&["--stats-ports", "--json"]);
    assert!(
        o.status.success(),
        "rvsadm --stats-ports failed: {}",
        text(&o)
    );
    serde_json::from_slice(&o.stdout).expect("json")
}

/// A software counter of a port ("public"/"private"): a top-level field or a drop reason.
pub fn counter(stats: &serde_json::Value, port: &str, name: &str) -> u64 {
    let p = stats["ports"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["role"] == port))
        .unwrap_or_else(|| panic!("no port {port} in {stats}"));
    if let Some(v) = p["sw"][name].as_u64() {
        return v;
    }
    p["sw"]["drops"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d[0] == name))
        .and_then(|d| d[1].as_u64())
        .unwrap_or_else(|| panic!("no counter {name} on {port}"))
}

pub fn port_mac(stats: &serde_json::Value, port: &str) -> String {
    stats["ports"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["role"] == port))
        .and_then(|p| p["mac"].as_str())
        .expect("mac")
        .to_string()
}

/// Requires the lab to be up; a clear failure otherwise.
pub fn require_lab() {
    let o = rvsadm(&["--stats-ports"]);
    assert!(
        o.status.success(),
        "the lab is not running: start it with `scripts/lab.sh up` (or run scripts/test.sh)\n{}",
        text(&o)
    );
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

/// Sends raw Ethernet frames (hex) out of `ifname` in namespace `ns`, with a packet socket.
pub fn inject(ns: &str, ifname: &str, frames: &[Vec<u8>]) {
    let hex: Vec<String> = frames
        .iter()
        .map(|f| f.iter().map(|b| format!("{b:02x}")).collect())
        .collect();
    let script = "import socket,sys\n\
        s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\n\
        s.bind((sys.argv[1],0))\n\
        [s.send(bytes.fromhex(h)) for h in sys.argv[2:]]\n";
    let mut args = vec!["/usr/bin/python3", "-c", script, ifname];
    args.extend(hex.iter().map(|s| s.as_str()));
    let o = netns(ns, &args);
    assert!(o.status.success(), "inject failed: {}", text(&o));
}

pub fn mac_bytes(s: &str) -> [u8; 6] {
    let v: Vec<u8> = s
        .split(':')
        .map(|h| u8::from_str_radix(h, 16).expect("mac"))
        .collect();
    v.try_into().expect("6 bytes")
}

/// The MAC of an interface inside a namespace.
pub fn ns_mac(ns: &str, ifname: &str) -> [u8; 6] {
    let o = netns(ns, &["cat", &format!("/sys/class/net/{ifname}/address")]);
    mac_bytes(String::from_utf8_lossy(&o.stdout).trim())
}

/// Internet checksum, written independently of the code under test.
pub fn csum(b: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in b.chunks(2) {
        s += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// One HTTP request from the client namespace to the VIP; requires success and returns the
/// body (trimmed).
pub fn curl_vip() -> String {
    let o = netns(
        "rvs-client",
        &["curl", "-s", "-m", "5", "http://10.0.0.13/"],
    );
    assert!(o.status.success(), "request through the VIP: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Runs rvsadm and requires success; returns its standard output.
pub fn adm(args: &[&str]) -> String {
    let o = rvsadm(args);
    assert!(o.status.success(), "rvsadm {args:?}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A lab rvs with `workers` workers and no virtual services (restarting rvs only when the
/// worker count differs).
pub fn fresh(workers: usize) {
    require_lab();
    let s = port_stats();
    if s["workers"].as_array().map(|a| a.len()) != Some(workers) {
        let lab = root().join("scripts/lab.sh");
        let o = run("bash", &[lab.to_str().unwrap(), "stop-rvs"]);
        assert!(o.status.success(), "{}", text(&o));
        let n = workers.to_string();
        let o = run(
            "bash",
            &[lab.to_str().unwrap(), "start-rvs", "--workers", &n],
        );
        assert!(
            o.status.success(),
            "restart with {workers} workers: {}",
            text(&o)
        );
    }
    adm(&["-C"]);
}

/// EAL arguments for an in-process test on virtual devices: one lcore, no hugepages, no PCI,
/// no shared config, its own file prefix, then `--vdev` for each of `vdevs`.
pub fn test_eal_args(prefix: &str, vdevs: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut args: Vec<String> = [
        "rvs-test",
        "-l",
        "0",
        "--no-huge",
        "--no-shconf",
        "--no-pci",
        "--no-telemetry",
        "-m",
        "256",
        "--file-prefix",
        prefix,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for v in vdevs {
        args.push("--vdev".into());
        args.push(v);
    }
    args
}
