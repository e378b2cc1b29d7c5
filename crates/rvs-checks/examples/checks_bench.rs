//! The health checks at scale (docs/benchmarks.md, "Health checks"): N real servers with
//! TCP_CHECK every delay_loop, run by the real engine against listeners in this process; the
//! checker thread's CPU time over a window with everything up, then the detection latency of
//! servers whose listener closes at a known instant (connection refused from then on).
//!
//! Run it where 10.77.0.0/16 is local (scripts/bench-checks.sh makes a namespace with
//! `ip route add local 10.77.0.0/16 dev lo`):
//!
//!     checks_bench --servers 10000 --fail 1000 --window 20
//!
//! Prints one JSON object. Nothing here is a test: numbers, not assertions.

use std::collections::HashMap;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rvs_checks::engine::{Apply, Checks};
use rvs_ctl::proto::Request;

/// Records when each real server left the table.
#[derive(Default)]
struct Recorder {
    removed: Mutex<HashMap<(Ipv4Addr, u16), Instant>>,
    ops: Mutex<u64>,
}

impl Apply for Recorder {
    fn apply(&self, ops: Vec<Request>) -> Result<(), String> {
        let now = Instant::now();
        *self.ops.lock().unwrap() += ops.len() as u64;
        for op in ops {
            if let Request::DeleteDest { dest, .. } = op {
                self.removed
                    .lock()
                    .unwrap()
                    .entry((dest.addr, dest.port))
                    .or_insert(now);
            }
        }
        Ok(())
    }
}

struct Rec(Arc<Recorder>);
impl Apply for Rec {
    fn apply(&self, ops: Vec<Request>) -> Result<(), String> {
        self.0.apply(ops)
    }
}

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Accepts and closes connections until the listener is dropped (it is non-blocking).
fn serve(l: TcpListener, stop: Arc<std::sync::atomic::AtomicBool>) {
    l.set_nonblocking(true).unwrap();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        match l.accept() {
            Ok((s, _)) => drop(s),
            Err(_) => std::thread::sleep(Duration::from_micros(200)),
        }
    }
}

/// The CPU time (user + system, seconds) of the thread named `name` in this process.
fn thread_cpu(name: &str) -> f64 {
    let tick = 100.0; // USER_HZ on Linux
    for t in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim() == name {
            let stat = std::fs::read_to_string(t.path().join("stat")).unwrap();
            let after = &stat[stat.rfind(')').unwrap() + 2..];
            let f: Vec<&str> = after.split_whitespace().collect();
            let utime: f64 = f[11].parse().unwrap();
            let stime: f64 = f[12].parse().unwrap();
            return (utime + stime) / tick;
        }
    }
    panic!("no thread {name}");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let servers = arg(&args, "--servers", 10000) as u32;
    let fail = arg(&args, "--fail", 1000) as u32;
    let window = arg(&args, "--window", 20);
    let delay_loop = arg(&args, "--delay-loop", 1);
    let per_vs = 100u32;
    // Servers 0..servers-fail on port 80, the last `fail` on port 81 (closed at the instant T).
    let mut conf = String::new();
    for v in 0..servers.div_ceil(per_vs) {
        conf += &format!(
            "virtual_server 10.0.{}.{} 80 {{\n delay_loop {delay_loop}\n lb_algo rr\n lb_kind NAT\n protocol TCP\n",
            v / 250,
            v % 250 + 1
        );
        for i in v * per_vs..((v + 1) * per_vs).min(servers) {
            let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 77, 0, 1)) + i);
            let port = if i >= servers - fail { 81 } else { 80 };
            conf += &format!(
                " real_server {ip} {port} {{\n  TCP_CHECK {{\n   connect_timeout 1\n   retry 0\n  }}\n }}\n"
            );
        }
        conf += "}\n";
    }
    let path = std::env::temp_dir().join(format!("checks-bench-{}.conf", std::process::id()));
    std::fs::write(&path, conf).unwrap();

    let stop80 = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop81 = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let l80 = TcpListener::bind("0.0.0.0:80").expect("bind :80 (run in the bench namespace)");
    let l81 = TcpListener::bind("0.0.0.0:81").expect("bind :81");
    let (s80, s81) = (stop80.clone(), stop81.clone());
    let t80 = std::thread::spawn(move || serve(l80, s80));
    let t81 = std::thread::spawn(move || serve(l81, s81));

    let rec = Arc::new(Recorder::default());
    let checks = Checks::start(&path, Arc::new(Rec(rec.clone()))).expect("start");
    // Warm up: every probe has run at least twice (warmup spreads the first over delay_loop).
    std::thread::sleep(Duration::from_secs(3 * delay_loop));
    let r = checks.list().expect("list");
    let up = r
        .virtual_servers
        .iter()
        .flat_map(|v| &v.real_servers)
        .filter(|s| s.up)
        .count();
    let c0 = thread_cpu("rvs-checks");
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(window));
    let cpu = (thread_cpu("rvs-checks") - c0) / t0.elapsed().as_secs_f64();

    // Detection: close port 81 now; every server behind it must leave.
    stop81.store(true, std::sync::atomic::Ordering::Relaxed);
    t81.join().unwrap();
    let t_fail = Instant::now();
    let deadline = t_fail + Duration::from_secs(10 * delay_loop + 10);
    while rec.removed.lock().unwrap().len() < fail as usize && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut lat: Vec<f64> = rec
        .removed
        .lock()
        .unwrap()
        .values()
        .map(|t| t.saturating_duration_since(t_fail).as_secs_f64())
        .collect();
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| {
        if lat.is_empty() {
            f64::NAN
        } else {
            lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1]
        }
    };
    let wrong = rec
        .removed
        .lock()
        .unwrap()
        .keys()
        .filter(|(_, port)| *port == 80)
        .count();
    println!(
        "{{\"servers\":{servers},\"up_before\":{up},\"probes\":{},\"delay_loop_s\":{delay_loop},\
         \"window_s\":{window},\"checker_cpu_fraction\":{cpu:.4},\"failed\":{fail},\
         \"detected\":{},\"false_removals\":{wrong},\"detect_p50_s\":{:.3},\"detect_p99_s\":{:.3},\
         \"detect_max_s\":{:.3}}}",
        r.probes,
        lat.len(),
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    drop(checks);
    stop80.store(true, std::sync::atomic::Ordering::Relaxed);
    t80.join().unwrap();
    let _ = std::fs::remove_file(&path);
}
