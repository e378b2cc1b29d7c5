//! rvs-pktgen: a paced packet generator for the latency benchmark (scripts/bench-latency.sh).
//!
//! `net_pcap` replay always offers a full burst, so it can only measure an appliance at its
//! maximum rate. This is a second DPDK process that owns two `net_memif` server ports; rvs's
//! public and private ports are the matching memif clients. It loads the pcaps written by
//! `rvs-pcapgen` into memory and:
//! 1. primes: sends every public-port packet once (so that every connection exists);
//! 2. runs: sends public and private packets alternately at `--rate` packets per second in
//!    total (0 = as fast as it can), paced on the TSC, for `--duration` seconds, and drains and
//!    counts what rvs transmits back.
//!
//! It prints one JSON line with what it sent and received. rvs measures its own RX-to-TX time
//! (`rvsadm --stats-ports`: per-worker latency); the generator only controls the offered load.

use clap::Parser;
use rvs::dpdk::{self, Burst, Eal, Mempool, Port, PortConf, RxQueue, TxQueue, BURST_SIZE};
use std::path::{Path, PathBuf};
use std::process::exit;

#[derive(Parser, Debug)]
#[command(name = "rvs-pktgen", version)]
/// Paced replay of rvs-pcapgen pcaps into rvs over net_memif (see docs/benchmarks.md).
struct Args {
    /// Packets for rvs's public port (client -> VIP).
    #[arg(long)]
    public_pcap: PathBuf,
    /// Packets for rvs's private port (real server -> client replies); optional.
    #[arg(long)]
    private_pcap: Option<PathBuf>,
    /// memif socket of the public port (this process is the memif server).
    #[arg(long)]
    public_socket: PathBuf,
    /// memif socket of the private port.
    #[arg(long)]
    private_socket: PathBuf,
    /// Offered load in packets per second over both ports; 0 = unpaced (as fast as possible).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Seconds of paced traffic after priming.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Rate of the priming pass (packets per second).
    #[arg(long, default_value_t = 1_000_000)]
    prime_rate: u64,
    /// Seconds to wait for rvs to connect to both memif sockets.
    #[arg(long, default_value_t = 30.0)]
    connect_timeout: f64,
    /// CPU for the generator's (only) lcore.
    #[arg(long, default_value_t = 0)]
    cpu: u32,
    /// EAL file prefix (must differ from rvs's).
    #[arg(long, default_value = "rvs-pktgen")]
    file_prefix: String,
}

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("rvs-pktgen: {msg}");
    exit(1)
}

/// Reads a classic pcap (either byte order, microsecond or nanosecond) into frames.
fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let b = std::fs::read(path).unwrap_or_else(|e| fail(format!("{}: {e}", path.display())));
    if b.len() < 24 {
        fail(format!("{}: not a pcap file", path.display()));
    }
    let magic = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let le = match magic {
        0xa1b2_c3d4 | 0xa1b2_3c4d => true,
        0xd4c3_b2a1 | 0x4d3c_b2a1 => false,
        _ => fail(format!("{}: not a classic pcap file", path.display())),
    };
    let rd = |o: usize| {
        let x = [b[o], b[o + 1], b[o + 2], b[o + 3]];
        if le {
            u32::from_le_bytes(x)
        } else {
            u32::from_be_bytes(x)
        }
    };
    let mut out = Vec::new();
    let mut o = 24;
    while o + 16 <= b.len() {
        let caplen = rd(o + 8) as usize;
        let start = o + 16;
        let Some(frame) = b.get(start..start + caplen) else {
            fail(format!("{}: truncated record", path.display()));
        };
        out.push(frame.to_vec());
        o = start + caplen;
    }
    if out.is_empty() {
        fail(format!("{}: no packets", path.display()));
    }
    out
}

struct Side {
    frames: Vec<Vec<u8>>,
    next: usize,
    rxq: RxQueue,
    txq: TxQueue,
    tx: Burst,
    sent: u64,
    tx_full: u64,
    received: u64,
}

impl Side {
    fn queue_next(&mut self, pool: &Mempool) -> bool {
        let f = &self.frames[self.next];
        let Some(mut m) = pool.alloc() else {
            return false;
        };
        if m.set_len(f.len()).is_err() {
            return false;
        }
        m.data_mut().copy_from_slice(f);
        self.next += 1;
        if self.next == self.frames.len() {
            self.next = 0;
        }
        self.tx.push(m).is_ok()
    }

    fn flush(&mut self) {
        let n = self.tx.len() as u64;
        if n == 0 {
            return;
        }
        let sent = self.txq.tx_burst(&mut self.tx) as u64;
        self.sent += sent;
        if sent < n {
            // rvs is behind: keep the rest for the next round (backpressure, not loss).
            self.tx_full += 1;
        }
    }

    fn drain(&mut self, spare: &mut Burst) {
        let n = self.rxq.rx_burst(spare);
        self.received += n as u64;
        *spare = Burst::new();
    }
}

fn open_port(name: &str, pool: &Mempool) -> (Port, RxQueue, TxQueue) {
    let mut p = Port::by_name(name).unwrap_or_else(|e| fail(e));
    let conf = PortConf {
        rx_queues: 1,
        tx_queues: 1,
        ..Default::default()
    };
    let (mut rx, mut tx) = p.configure(&conf, pool).unwrap_or_else(|e| fail(e));
    p.start().unwrap_or_else(|e| fail(e));
    (p, rx.remove(0), tx.remove(0))
}

fn main() {
    let a = Args::parse();
    let public = read_pcap(&a.public_pcap);
    let private = a.private_pcap.as_deref().map(read_pcap);
    let vdev = |i: u32, s: &Path| {
        format!(
            "net_memif{i},role=server,id={i},socket={},socket-abstract=no",
            s.display()
        )
    };
    let eal_args = vec![
        "rvs-pktgen".to_string(),
        "-l".into(),
        a.cpu.to_string(),
        "--no-huge".into(),
        "-m".into(),
        "512".into(),
        "--no-pci".into(),
        "--file-prefix".into(),
        a.file_prefix.clone(),
        "--log-level".into(),
        "error".into(),
        "--vdev".into(),
        vdev(0, &a.public_socket),
        "--vdev".into(),
        vdev(1, &a.private_socket),
    ];
    let eal = Eal::init(&eal_args).unwrap_or_else(|e| fail(e));
    let pool = Mempool::new("pktgen", 16383, 256, 2176, -1).unwrap_or_else(|e| fail(e));
    let (mut p0, rx0, tx0) = open_port("net_memif0", &pool);
    let (mut p1, rx1, tx1) = open_port("net_memif1", &pool);
    let hz = dpdk::tsc_hz();
    let secs = |t: u64| t as f64 / hz as f64;

    // Wait for rvs (the memif clients) on both ports.
    let t0 = dpdk::tsc();
    while !(p0.link().up && p1.link().up) {
        if secs(dpdk::tsc() - t0) > a.connect_timeout {
            fail("rvs did not connect to the memif sockets in time");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    eprintln!("rvs-pktgen: connected");

    let mk = |frames, rxq, txq| Side {
        frames,
        next: 0,
        rxq,
        txq,
        tx: Burst::new(),
        sent: 0,
        tx_full: 0,
        received: 0,
    };
    let mut sides = [
        mk(public, rx0, tx0),
        mk(private.unwrap_or_default(), rx1, tx1),
    ];
    let mut spare = Burst::new();

    // Pass 1: every public packet once, paced at --prime-rate.
    let n_prime = sides[0].frames.len() as u64;
    let start = dpdk::tsc();
    let mut queued = 0u64;
    while queued < n_prime {
        let due = ((secs(dpdk::tsc() - start) * a.prime_rate as f64) as u64).min(n_prime);
        while queued < due && sides[0].tx.len() < BURST_SIZE {
            if !sides[0].queue_next(&pool) {
                break;
            }
            queued += 1;
        }
        sides[0].flush();
        for s in sides.iter_mut() {
            s.drain(&mut spare);
        }
    }
    // What rvs has not taken yet is still queued: finish it.
    while !sides[0].tx.is_empty() && secs(dpdk::tsc() - start) < a.connect_timeout {
        sides[0].flush();
        for s in sides.iter_mut() {
            s.drain(&mut spare);
        }
    }
    let primed_sent = sides[0].sent;
    std::thread::sleep(std::time::Duration::from_millis(500));
    for s in sides.iter_mut() {
        s.drain(&mut spare);
        s.sent = 0;
        s.tx_full = 0;
        s.received = 0;
    }
    eprintln!("rvs-pktgen: primed {primed_sent} flows; running");

    // Pass 2: alternate ports at --rate in total.
    let both = !sides[1].frames.is_empty();
    let start = dpdk::tsc();
    let end = start + (a.duration * hz as f64) as u64;
    let mut queued = 0u64;
    let mut turn = 0usize;
    loop {
        let now = dpdk::tsc();
        if now >= end {
            break;
        }
        let due = if a.rate == 0 {
            queued + BURST_SIZE as u64
        } else {
            (secs(now - start) * a.rate as f64) as u64
        };
        let mut budget = BURST_SIZE;
        while queued < due && budget > 0 {
            let s = &mut sides[turn];
            if s.tx.len() == BURST_SIZE || !s.queue_next(&pool) {
                break;
            }
            queued += 1;
            budget -= 1;
            if both {
                turn ^= 1;
            }
        }
        for s in sides.iter_mut() {
            s.flush();
            s.drain(&mut spare);
        }
    }
    let elapsed = secs(dpdk::tsc() - start);
    std::thread::sleep(std::time::Duration::from_millis(200));
    for s in sides.iter_mut() {
        s.drain(&mut spare);
    }
    let sent: u64 = sides.iter().map(|s| s.sent).sum();
    let received: u64 = sides.iter().map(|s| s.received).sum();
    println!(
        "{{\"rate_asked\":{},\"elapsed_s\":{:.3},\"sent\":{},\"sent_pps\":{:.0},\"tx_full_rounds\":{},\"received\":{},\"received_pps\":{:.0},\"primed\":{}}}",
        a.rate,
        elapsed,
        sent,
        sent as f64 / elapsed,
        sides.iter().map(|s| s.tx_full).sum::<u64>(),
        received,
        received as f64 / elapsed,
        primed_sent
    );
    let _ = p0.stop();
    let _ = p1.stop();
    drop(sides);
    drop(p0);
    drop(p1);
    drop(eal);
}
