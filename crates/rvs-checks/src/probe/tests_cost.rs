//! What TCP_CHECK costs the checker thread: run with
//! `cargo test -p rvs-checks --release tcp_probe_cost -- --ignored --nocapture`.
//! Ignored by default: a timing measurement, not a pass/fail property on a shared machine.

use std::time::{Duration, Instant};

use nix::sys::resource::{getrusage, UsageWho};

use super::test_util::*;
use super::{probe, ProbeCx, Verdict};
use crate::model::CheckKind;

/// (user, system) CPU time of the calling thread.
fn thread_cpu() -> (Duration, Duration) {
    let u = getrusage(UsageWho::RUSAGE_THREAD).unwrap();
    let t =
        |tv: nix::sys::time::TimeVal| Duration::new(tv.tv_sec() as u64, tv.tv_usec() as u32 * 1000);
    (t(u.user_time()), t(u.system_time()))
}

#[test]
#[ignore]
fn tcp_probe_cost() {
    // The server on its own thread, so that the probe thread's CPU time is the checker's
    // (loopback handshakes are still partly processed in the connecting thread).
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            drop(c);
        }
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    const N: usize = 20_000;
    const CONCURRENT: usize = 100;
    let s = spec(CheckKind::Tcp, port, ms(3000));
    let cx = ProbeCx::default();
    println!(
        "probe future: {} bytes",
        std::mem::size_of_val(&probe(&s, &cx))
    );
    let (wall, cpu, ups) = rt.block_on(async {
        let t0 = Instant::now();
        let c0 = thread_cpu();
        let mut ups = 0;
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..N / CONCURRENT {
            for _ in 0..CONCURRENT {
                let (s, cx) = (s.clone(), cx.clone());
                set.spawn(async move { probe(&s, &cx).await == Verdict::Up });
            }
            while let Some(r) = set.join_next().await {
                ups += usize::from(r.unwrap());
            }
        }
        let c1 = thread_cpu();
        (t0.elapsed(), (c1.0 - c0.0, c1.1 - c0.1), ups)
    });
    let pct = |d: Duration| (d / N as u32).as_secs_f64() * 10_000.0 * 100.0;
    println!(
        "{N} TCP probes: {ups} up, wall {wall:?}; checker thread user {:?} ({:.1}% of a core at \
         10,000/s), system {:?} ({:.1}%, loopback handshakes included)",
        cpu.0,
        pct(cpu.0),
        cpu.1,
        pct(cpu.1)
    );
}
