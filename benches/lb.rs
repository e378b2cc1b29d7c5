//! Micro-benchmarks of the sans-IO core (no DPDK, no I/O): ns per packet for
//! - `conn_lookup`: `ConnTable::lookup_in` of an established connection, flows in random order;
//! - `lb_established_in` / `lb_established_out`: `Lb::process` of a client packet (public port)
//!   or a reply (private port) of an established UDP connection: lookup, NAT, checksums, TTL;
//! - `lb_burst_in`: `lb_established_in` the way the worker runs it, in bursts of 32: each
//!   packet's header parsed once (`Ipv4Repr`) and its bucket prefetched, then every bucket's
//!   entry, then the packets processed from their parsed headers (ns per packet);
//! - `lb_new_conn`: `Lb::process` of a SYN from a new client endpoint (service lookup, wlc over
//!   4 real servers, connection creation, NAT) into a table already holding N connections;
//! - `nat_rewrite`, `checksum`: the rewrite and checksum primitives;
//! - `copy_baseline`: what the harness itself does per packet in the `lb_*` benches (copy a
//!   46-byte template, write the flow's endpoint), to subtract.
//!
//! Tables get the transparent-huge-page advice rvs gives them (`RVS_BENCH_THP=0`: 4 KiB pages).
//!
//! Table sizes: 1k, 64k, 1M and 10M connections (`RVS_BENCH_SIZES=1000,65536` to choose; the
//! new-connection bench stops at 1M). Flows are visited in a random order over the whole table,
//! so large tables miss the caches as they would under real traffic. See docs/benchmarks.md.
//!
//! Time is this thread's on-CPU time (the scheduler's account in /proc/thread-self/schedstat),
//! not wall time: on a shared machine the benchmark thread is descheduled for long stretches,
//! which wall time would count. `RVS_BENCH_CLOCK=wall` measures wall time instead. Samples are
//! flat and long (>= 100 ms) so the scheduler's accounting granularity does not matter.
//! Run: `cargo bench --bench lb` (add `-- conn_lookup` to filter).

use criterion::measurement::WallTime;
use criterion::{
    black_box, criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion,
    SamplingMode, Throughput,
};
use rvs::lb::config::{DestSpec, ServiceKey, ServiceSpec, Snapshot};
use rvs::lb::conn::{ConnTable, MemAdvice, NewConn};
use rvs::lb::{CoreStats, DestId, Lb, LbParams, Lookup, PortRole, ServiceId, Verdict};
use rvs::net::checksum;
use rvs::net::ipv4::{self, Ipv4Repr, Protocol};
use rvs::net::l4::{self, Side};
use rvs::net::tcp::{Flags, TcpSegment};
use rvs::net::udp::UdpDatagram;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 13);
const RIP: Ipv4Addr = Ipv4Addr::new(192, 168, 8, 14);
const NOW: u64 = 1_000_000_000;
/// IPv4 packet length of a 64-byte frame (60 without FCS, minus 14 of Ethernet).
const IP_LEN: usize = 46;

/// On-CPU nanoseconds of the calling thread so far (0 if unavailable).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn wall_clock() -> bool {
    std::env::var("RVS_BENCH_CLOCK").is_ok_and(|v| v == "wall")
}

/// A measurement window: on-CPU time by default (see the module comment), else wall time.
struct Window {
    wall: Instant,
    cpu: u64,
}

impl Window {
    fn start() -> Window {
        Window {
            cpu: thread_cpu_ns(),
            wall: Instant::now(),
        }
    }
    fn elapsed(&self) -> Duration {
        let w = self.wall.elapsed();
        let c = thread_cpu_ns().saturating_sub(self.cpu);
        if wall_clock() || c == 0 {
            w
        } else {
            Duration::from_nanos(c)
        }
    }
}

/// Runs `f` `iters` times in one window.
fn timed(iters: u64, mut f: impl FnMut()) -> Duration {
    let w = Window::start();
    for _ in 0..iters {
        f();
    }
    w.elapsed()
}

fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(4));
    g.throughput(Throughput::Elements(1));
    g
}

fn sizes(max: usize) -> Vec<usize> {
    let s =
        std::env::var("RVS_BENCH_SIZES").unwrap_or_else(|_| "1000,65536,1048576,10485760".into());
    s.split(',')
        .filter_map(|x| x.trim().parse::<usize>().ok())
        .filter(|n| *n > 0 && *n <= max)
        .collect()
}

fn label(n: usize) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{}M", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{}k", n >> 10),
        n => n.to_string(),
    }
}

/// Client endpoint of flow i (as rvs-pcapgen: addresses in 172.16.0.0/12 first, then ports).
fn client(i: usize) -> (Ipv4Addr, u16) {
    let addrs = (1usize << 20) - 2;
    (
        Ipv4Addr::from(0xac10_0001 + (i % addrs) as u32),
        (1024 + (i / addrs) % 64512) as u16,
    )
}

/// The client endpoint of the flow at `order[*k]`, advancing `k` round the permutation.
#[inline(always)]
fn next_client(order: &[u32], k: &mut usize) -> (Ipv4Addr, u16) {
    let c = client(order[*k] as usize);
    *k += 1;
    if *k == order.len() {
        *k = 0;
    }
    c
}

/// A seeded random permutation of 0..n (xorshift Fisher-Yates).
fn permutation(n: usize, seed: u64) -> Vec<u32> {
    let mut v: Vec<u32> = (0..n as u32).collect();
    let mut x = seed | 1;
    for i in (1..n).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let j = (((x >> 32) * (i as u64 + 1)) >> 32) as usize;
        v.swap(i, j);
    }
    v
}

fn udp_packet(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> [u8; IP_LEN] {
    let mut p = [0u8; IP_LEN];
    ipv4::write_header(&mut p, 0, IP_LEN as u16, 64, Protocol::UDP, src, dst).expect("header");
    let (_, seg) = p.split_at_mut(ipv4::MIN_HEADER_LEN);
    let mut u = UdpDatagram::new_unchecked(seg);
    u.set_src_port(sport);
    u.set_dst_port(dport);
    u.set_len((IP_LEN - ipv4::MIN_HEADER_LEN) as u16);
    u.fill_checksum(src, dst);
    p
}

fn syn_packet(src: Ipv4Addr, sport: u16) -> [u8; IP_LEN] {
    let mut p = [0u8; IP_LEN];
    ipv4::write_header(&mut p, 0, 40, 64, Protocol::TCP, src, VIP).expect("header");
    let seg = &mut p[ipv4::MIN_HEADER_LEN..40];
    let mut t = TcpSegment::new_unchecked(seg);
    t.set_src_port(sport);
    t.set_dst_port(80);
    t.set_seq(1);
    t.set_header_len(20);
    t.set_flags(Flags::SYN);
    t.set_window(65535);
    t.fill_checksum(src, VIP);
    p
}

fn set_src(p: &mut [u8; IP_LEN], a: Ipv4Addr, port: u16) {
    p[12..16].copy_from_slice(&a.octets());
    p[20..22].copy_from_slice(&port.to_be_bytes());
}

fn set_dst(p: &mut [u8; IP_LEN], a: Ipv4Addr, port: u16) {
    p[16..20].copy_from_slice(&a.octets());
    p[22..24].copy_from_slice(&port.to_be_bytes());
}

/// An engine with UDP VIP:80 -> RIP:80 and TCP VIP:80 (wlc) -> 4 real servers, able to hold
/// `capacity` connections, and `n` established UDP connections (flows 0..n).
/// The table memory advice rvs uses (transparent huge pages); `RVS_BENCH_THP=0` for 4 KiB
/// pages, to compare.
fn mem_advice() -> Option<MemAdvice> {
    if std::env::var("RVS_BENCH_THP").is_ok_and(|v| v == "0") {
        None
    } else {
        Some(MemAdvice(rvs::dpdk::advise_hugepages))
    }
}

fn engine(n: usize, capacity: usize) -> Lb {
    let udp = ServiceKey::udp(VIP, 80);
    let tcp = ServiceKey::tcp(VIP, 80);
    let mut s = Snapshot::empty()
        .add_service(ServiceSpec::new(udp).scheduler("rr"))
        .and_then(|s| s.add_dest(&udp, DestSpec::new(RIP, 80)))
        .and_then(|s| s.add_service(ServiceSpec::new(tcp).scheduler("wlc")))
        .expect("config");
    for k in 0..4u8 {
        let rip = Ipv4Addr::new(192, 168, 8, 14 + k);
        s = s.add_dest(&tcp, DestSpec::new(rip, 80)).expect("dest");
    }
    let params = LbParams {
        conn_capacity: capacity,
        mem_advice: mem_advice(),
        ..LbParams::default()
    };
    let mut lb = Lb::new(params, Arc::new(s));
    let mut p = udp_packet(VIP, 1, VIP, 80);
    let tmpl = p;
    for i in 0..n {
        let (a, port) = client(i);
        p.copy_from_slice(&tmpl);
        set_src(&mut p, a, port);
        let v = lb.process(&mut p, PortRole::Public, NOW);
        assert_eq!(
            v,
            Verdict::Forward {
                port: PortRole::Private,
                dst: RIP
            },
            "setup flow {i}"
        );
    }
    assert_eq!(lb.conn_count(), n);
    lb
}

fn conn_lookup(c: &mut Criterion) {
    let mut g = group(c, "conn_lookup");
    for n in sizes(usize::MAX) {
        let mut t = ConnTable::with_advice(n, 0x5eed, Arc::new(CoreStats::new(0)), mem_advice());
        for i in 0..n {
            let (a, port) = client(i);
            let nc = NewConn {
                proto: Protocol::UDP,
                caddr: a,
                cport: port,
                vaddr: VIP,
                vport: 80,
                daddr: RIP,
                dport: 80,
                dest: DestId(0),
                svc: ServiceId(0),
            };
            t.create(&nc, None, NOW).expect("capacity");
        }
        eprintln!(
            "conn_lookup/{}: table {} bytes = {:.1} bytes per connection",
            label(n),
            t.memory_bytes(),
            t.memory_bytes() as f64 / n as f64
        );
        let order = permutation(n, 7);
        let mut k = 0usize;
        g.bench_with_input(BenchmarkId::from_parameter(label(n)), &n, |b, _| {
            b.iter_custom(|iters| {
                timed(iters, || {
                    let (a, port) = next_client(&order, &mut k);
                    black_box(t.lookup_in(Protocol::UDP, a, port, VIP, 80, NOW));
                })
            })
        });
    }
    g.finish();
}

fn lb_established(c: &mut Criterion) {
    for (name, role) in [
        ("lb_established_in", PortRole::Public),
        ("lb_established_out", PortRole::Private),
    ] {
        let mut g = group(c, name);
        for n in sizes(usize::MAX) {
            let mut lb = engine(n, n);
            let order = permutation(n, 11);
            let tmpl = match role {
                PortRole::Public => udp_packet(VIP, 1, VIP, 80),
                PortRole::Private => udp_packet(RIP, 80, VIP, 1),
            };
            let mut p = tmpl;
            let mut k = 0usize;
            g.bench_with_input(BenchmarkId::from_parameter(label(n)), &n, |b, _| {
                b.iter_custom(|iters| {
                    timed(iters, || {
                        let (a, port) = next_client(&order, &mut k);
                        p.copy_from_slice(&tmpl);
                        match role {
                            PortRole::Public => set_src(&mut p, a, port),
                            PortRole::Private => set_dst(&mut p, a, port),
                        }
                        black_box(lb.process(&mut p, role, NOW));
                    })
                })
            });
            // The benchmark measured forwarding, not a drop path.
            let (a, port) = client(0);
            p.copy_from_slice(&tmpl);
            match role {
                PortRole::Public => set_src(&mut p, a, port),
                PortRole::Private => set_dst(&mut p, a, port),
            }
            assert!(matches!(
                lb.process(&mut p, role, NOW),
                Verdict::Forward { .. }
            ));
        }
        g.finish();
    }
}

/// Packets per burst in `lb_burst_in` (the dataplane's RX burst).
const BURST: usize = 32;

/// `lb_established_in` the way the worker runs it: 32 packets at a time, every packet's bucket
/// prefetched, then every bucket's first entry, then the packets processed
/// (`Worker::queue_owned` / `run_pending`). Reported per packet.
fn lb_burst_in(c: &mut Criterion) {
    let mut g = group(c, "lb_burst_in");
    g.throughput(Throughput::Elements(BURST as u64));
    for n in sizes(usize::MAX) {
        let mut lb = engine(n, n);
        let order = permutation(n, 11);
        let tmpl = udp_packet(VIP, 1, VIP, 80);
        let mut pkts = [tmpl; BURST];
        let mut meta = [(
            Ipv4Repr::parse(&tmpl).expect("template parses"),
            Lookup::NONE,
        ); BURST];
        let mut k = 0usize;
        g.bench_with_input(BenchmarkId::from_parameter(label(n)), &n, |b, _| {
            b.iter_custom(|iters| {
                timed(iters, || {
                    for (p, (h, l)) in pkts.iter_mut().zip(meta.iter_mut()) {
                        let (a, port) = next_client(&order, &mut k);
                        p.copy_from_slice(&tmpl);
                        set_src(p, a, port);
                        // The worker's one parse (l3::receive), then the first prefetch pass.
                        let Ok(parsed) = Ipv4Repr::parse(p) else {
                            continue;
                        };
                        *h = parsed;
                        let (lookup, fetch) = lb.prefetch_lookup(h, PortRole::Public);
                        *l = lookup;
                        if let Some(a) = fetch {
                            rvs::dpdk::prefetch(a);
                        }
                    }
                    lb.prefetch_entries(meta.iter().map(|m| m.1), rvs::dpdk::prefetch);
                    for (p, (h, _)) in pkts.iter_mut().zip(meta.iter()) {
                        black_box(lb.process_parsed(p, h, PortRole::Public, NOW));
                    }
                })
            })
        });
        let (a, port) = client(0);
        let mut p = tmpl;
        set_src(&mut p, a, port);
        assert!(matches!(
            lb.process(&mut p, PortRole::Public, NOW),
            Verdict::Forward { .. }
        ));
    }
    g.finish();
}

/// Timed new connections per fresh engine (the rest of the engine's setup is not timed).
const NEW_CHUNK: usize = 1 << 18;

fn lb_new_conn(c: &mut Criterion) {
    let mut g = group(c, "lb_new_conn");
    g.sample_size(10);
    for n in sizes(1 << 20) {
        g.bench_with_input(BenchmarkId::from_parameter(label(n)), &n, |b, &n| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters as usize;
                while left > 0 {
                    let chunk = left.min(NEW_CHUNK);
                    let mut lb = engine(n, n + NEW_CHUNK);
                    let tmpl = syn_packet(VIP, 1);
                    let mut p = tmpl;
                    let w = Window::start();
                    for j in 0..chunk {
                        let (a, port) = client(n + j);
                        p.copy_from_slice(&tmpl);
                        set_src(&mut p, a, port);
                        black_box(lb.process(&mut p, PortRole::Public, NOW));
                    }
                    total += w.elapsed();
                    assert_eq!(lb.conn_count(), n + chunk, "every SYN made a connection");
                    left -= chunk;
                }
                total
            })
        });
    }
    g.finish();
}

fn copy_baseline(c: &mut Criterion) {
    let mut g = group(c, "copy_baseline");
    let n = 1 << 20;
    let order = permutation(n, 11);
    let tmpl = udp_packet(VIP, 1, VIP, 80);
    let mut p = tmpl;
    let mut k = 0usize;
    g.bench_function("template_copy_and_endpoint", |b| {
        b.iter_custom(|iters| {
            timed(iters, || {
                let (a, port) = next_client(&order, &mut k);
                p.copy_from_slice(&tmpl);
                set_src(&mut p, a, port);
                black_box(&mut p);
            })
        })
    });
    g.finish();
}

fn primitives(c: &mut Criterion) {
    let mut g = group(c, "nat_rewrite");
    // Two rewrites per iteration (there and back).
    g.throughput(Throughput::Elements(2));
    let tmpl = udp_packet(Ipv4Addr::new(172, 16, 0, 1), 1024, VIP, 80);
    let mut p = tmpl;
    g.bench_function("dnat_udp_64B", |b| {
        b.iter_custom(|iters| {
            timed(iters, || {
                black_box(l4::nat_rewrite(black_box(&mut p[..]), Side::Dst, RIP, 80).ok());
                // Alternate the destination so every call really rewrites.
                black_box(l4::nat_rewrite(black_box(&mut p[..]), Side::Dst, VIP, 80).ok());
            })
        })
    });
    g.finish();

    let mut g = group(c, "checksum");
    for len in [20usize, 1480] {
        let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_with_input(BenchmarkId::new("full", len), &data, |b, d| {
            b.iter_custom(|iters| {
                timed(iters, || {
                    black_box(checksum::internet(black_box(d)));
                })
            })
        });
    }
    g.throughput(Throughput::Elements(1));
    g.bench_function("incremental_addr_port", |b| {
        b.iter_custom(|iters| {
            timed(iters, || {
                black_box(checksum::update_addr_port(
                    black_box(0x1234),
                    black_box(0x0a00_000d),
                    black_box(0xc0a8_080e),
                    black_box(80),
                    black_box(8080),
                ));
            })
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    primitives,
    copy_baseline,
    conn_lookup,
    lb_established,
    lb_burst_in,
    lb_new_conn
);
criterion_main!(benches);
