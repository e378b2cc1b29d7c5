//! The health checks at scale (docs/benchmarks.md, "Health checks"): N real servers with
//! TCP_CHECK every delay_loop, run by the real engine against listeners in this process; the
//! checker thread's CPU time over a window with everything up, then the detection latency of
//! servers whose listener closes at a known instant (connection refused from then on).
//!
//! Run it where 10.77.0.0/16 is local (scripts/bench-checks.sh makes a namespace with
//! `ip route add local 10.77.0.0/16 dev lo`):
//!
//!     checks_bench --servers 10000 --fail 1000 --window 20 [--half-open]
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

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A listener with a backlog deep enough for 10,000 checks a second (std's is 128).
fn listen(port: u16) -> socket2::Socket {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.set_reuse_address(true).unwrap();
    s.bind(&std::net::SocketAddr::from(([0, 0, 0, 0], port)).into())
        .expect("bind (run in the bench namespace)");
    s.listen(8192).unwrap();
    s
}

/// Accepts and closes connections until the listener is shut down.
fn serve(l: TcpListener) {
    while let Ok((s, _)) = l.accept() {
        drop(s);
    }
}

/// The CPU time (user, system; seconds) of the thread named `name` in this process.
fn thread_cpu(name: &str) -> (f64, f64) {
    let tick = 100.0; // USER_HZ on Linux
    for t in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim() == name {
            let stat = std::fs::read_to_string(t.path().join("stat")).unwrap();
            let after = &stat[stat.rfind(')').unwrap() + 2..];
            let f: Vec<&str> = after.split_whitespace().collect();
            let utime: f64 = f[11].parse().unwrap();
            let stime: f64 = f[12].parse().unwrap();
            return (utime / tick, stime / tick);
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

    let (l80, l81) = (listen(80), listen(81));
    let (h80, h81) = (l80.try_clone().unwrap(), l81.try_clone().unwrap());
    let t80 = std::thread::spawn(move || serve(l80.into()));
    let t81 = std::thread::spawn(move || serve(l81.into()));

    let rec = Arc::new(Recorder::default());
    let opts = rvs_checks::engine::Options {
        tcp_half_open: args.iter().any(|a| a == "--half-open"),
        plane: None,
    };
    let checks = Checks::start(&path, rec.clone(), opts.clone()).expect("start");
    // Warm up: every probe has run at least twice (warmup spreads the first over delay_loop).
    std::thread::sleep(Duration::from_secs(3 * delay_loop));
    let r = checks.list().expect("list");
    let up = r
        .virtual_servers
        .iter()
        .flat_map(|v| &v.real_servers)
        .filter(|s| s.up)
        .count();
    let (u0, s0) = thread_cpu("rvs-checks");
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(window));
    let (u1, s1) = thread_cpu("rvs-checks");
    let secs = t0.elapsed().as_secs_f64();
    let (user, sys) = ((u1 - u0) / secs, (s1 - s0) / secs);
    let attempts_per_s = {
        let r2 = checks.list().expect("list");
        let n: u64 = r2
            .virtual_servers
            .iter()
            .flat_map(|v| &v.real_servers)
            .flat_map(|s| &s.checkers)
            .map(|c| c.attempts)
            .sum();
        n
    };

    // Detection: close port 81 now; every server behind it must leave.
    // shutdown() on a listening socket wakes the accept and resets what is queued; closing it
    // then makes every new connection to :81 refused.
    let _ = h81.shutdown(std::net::Shutdown::Both);
    t81.join().unwrap();
    drop(h81);
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
        "{{\"mode\":\"{}\",\"servers\":{servers},\"up_before\":{up},\"probes\":{},\"delay_loop_s\":{delay_loop},\
         \"window_s\":{window},\"checker_cpu_user\":{user:.4},\"checker_cpu_sys\":{sys:.4},\"attempts_total\":{attempts_per_s},\"failed\":{fail},\
         \"detected\":{},\"false_removals\":{wrong},\"detect_p50_s\":{:.3},\"detect_p99_s\":{:.3},\
         \"detect_max_s\":{:.3}}}",
        if opts.tcp_half_open { "half-open" } else { "connect" },
        r.probes,
        lat.len(),
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    drop(checks);
    // The same connects without rvs: one blocking connect + close per server per second in a
    // plain thread. On one machine the kernel charges both ends of a handshake to the
    // connecting thread, so this is the part of the checker's CPU that is TCP itself.
    let base = std::thread::Builder::new()
        .name("baseline".into())
        .spawn(move || {
            let t = Instant::now();
            for sec in 0..window {
                for i in 0..servers - fail {
                    let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 77, 0, 1)) + i);
                    let _ = std::net::TcpStream::connect((ip, 80));
                }
                let next = t + Duration::from_secs(sec + 1);
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            let (u, s) = thread_cpu("baseline");
            let secs = t.elapsed().as_secs_f64();
            (u / secs, s / secs)
        })
        .unwrap();
    let (bu, bs) = base.join().unwrap();
    println!(
        "{{\"baseline_connects_per_s\":{},\"baseline_cpu_user\":{bu:.4},\"baseline_cpu_sys\":{bs:.4}}}",
        servers - fail
    );
    let _ = h80.shutdown(std::net::Shutdown::Both);
    t80.join().unwrap();
    let _ = std::fs::remove_file(&path);
}
