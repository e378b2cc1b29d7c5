//! The kernel twins' life cycle, on `net_null` ports (root, no hugepages, no lab): rvs makes
//! them at start with the ports' MACs, MTUs and addresses, they vanish when it stops, and a
//! twin that cannot be made is a one-line error at start that leaves nothing behind.

mod common;
use common::wait_for;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// A scratch directory and an rvs config on two net_null ports with `public` / `private`
/// extra lines in their sections.
fn config(tag: &str, public: &str, private: &str) -> (PathBuf, PathBuf) {
    let pid = std::process::id();
    let dir = std::env::temp_dir().join(format!("rvs-twin-{tag}-{pid}"));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("rvs.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[eal]
memory_mb = 256
no_huge = true
file_prefix = "rvs-twin-{tag}-{pid}"
[public]
device = "net_null0"
addresses = ["198.18.71.1/24", "198.18.72.1/24"]
mtu = 1400
{public}
[private]
device = "net_null1"
addresses = ["198.18.73.1/24"]
{private}
[control]
socket = "{dir}/rvs.sock"
"#,
            dir = dir.display()
        ),
    )
    .unwrap();
    (dir, cfg)
}

fn spawn(cfg: &Path) -> Child {
    Command::new(common::bin("rvs"))
        .arg("--config")
        .arg(cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rvs")
}

fn sys(ifname: &str, file: &str) -> Option<String> {
    std::fs::read_to_string(format!("/sys/class/net/{ifname}/{file}"))
        .ok()
        .map(|s| s.trim().to_string())
}

fn addrs(ifname: &str) -> String {
    let o = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "dev", ifname])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Waits for a child that should exit by itself; kills it if it hangs.
fn exit_of(mut child: Child) -> (Option<i32>, String) {
    let t = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err);
            return (s.code(), err);
        }
        if t.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("rvs did not exit");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn twins_get_the_ports_mac_mtu_and_addresses_and_vanish_with_rvs() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let pid = std::process::id() % 100_000;
    let (pubk, privk) = (format!("rvstp{pid}"), format!("rvstq{pid}"));
    let (dir, cfg) = config(
        "life",
        &format!("kernel_interface = \"{pubk}\"\nkernel_backend = \"tap\""),
        &format!("kernel_interface = \"{privk}\""),
    );
    let child = spawn(&cfg);
    let sock = dir.join("rvs.sock");
    let up = wait_for(Duration::from_secs(60), || {
        sys(&privk, "operstate").is_some()
            && addrs(&privk).contains("198.18.73.1/24")
            && sock.exists()
    });
    let stats = Command::new(common::bin("rvsadm"))
        .args([
            "--socket",
            sock.to_str().unwrap(),
            "--stats-ports",
            "--json",
        ])
        .output()
        .unwrap();
    let pub_addrs = addrs(&pubk);
    let (pub_mtu, pub_mac, pub_flags) = (
        sys(&pubk, "mtu"),
        sys(&pubk, "address"),
        sys(&pubk, "flags"),
    );
    // Stop it (SIGTERM) before asserting, so a failure leaves nothing running.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let (code, err) = exit_of(child);
    let gone = wait_for(Duration::from_secs(5), || {
        sys(&pubk, "operstate").is_none() && sys(&privk, "operstate").is_none()
    });
    let _ = std::fs::remove_dir_all(&dir);
    assert!(up, "the twins came up with their addresses: {err}");
    assert_eq!(code, Some(0), "{err}");
    assert!(gone, "the twins vanish with rvs");
    assert!(
        pub_addrs.contains("198.18.71.1/24") && pub_addrs.contains("198.18.72.1/24"),
        "{pub_addrs}"
    );
    assert_eq!(pub_mtu.as_deref(), Some("1400"));
    let flags = u32::from_str_radix(pub_flags.unwrap().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "up");
    let s: serde_json::Value = serde_json::from_slice(&stats.stdout).expect("port stats");
    assert_eq!(
        s["ports"][0]["mac"].as_str(),
        pub_mac.as_deref(),
        "the port's MAC"
    );
    assert_eq!(s["ports"][0]["kernel"], format!("{pubk} (tap)"));
    assert!(
        s["ports"][1]["kernel"]
            .as_str()
            .unwrap()
            .starts_with(&privk),
        "{s}"
    );
    assert!(err.contains("kernel twin up"), "logged: {err}");
}

#[test]
fn a_twin_that_cannot_be_made_is_a_one_line_error_at_start() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let vhost = Path::new("/dev/vhost-net").exists();
    let mut cases = vec![
        ("taken", "kernel_interface = \"lo\"", "is taken"),
        (
            "long",
            "kernel_interface = \"rvs-twin-name-too-long\"",
            "1..15 characters",
        ),
    ];
    if !vhost {
        cases.push((
            "vhost",
            "kernel_interface = \"rvstv0\"\nkernel_backend = \"virtio-user\"",
            "needs /dev/vhost-net",
        ));
    }
    for (tag, line, want) in cases {
        let (dir, cfg) = config(tag, line, "");
        let (code, err) = exit_of(spawn(&cfg));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(code, Some(1), "{tag}: {err}");
        let last = err.lines().last().unwrap_or("");
        assert!(
            last.starts_with("rvs: error:") && last.contains(want),
            "{tag}: {err}"
        );
        assert!(!err.contains("rvs: ready"), "{tag}: {err}");
    }
    assert!(sys("rvstv0", "operstate").is_none(), "nothing left behind");
}
