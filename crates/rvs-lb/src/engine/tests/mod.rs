//! The engine's tests, by topic in the files below; packet builders and engine set-ups here.

use super::nat::nat_endpoint;
use super::*;
use crate::config::{DestSpec, MarkRule, Persistence, Proto, ServiceId, ServiceKey, ServiceSpec};
use crate::steer::{endpoint_core, fragment_core, steer};
use crate::tcp_state::flags::{ACK, FIN, RST, SYN};
use crate::NANOS_PER_SEC as S;
use proptest::prelude::*;
use rvs_net::checksum;
use rvs_net::ipv4::Ipv4Packet;
use rvs_net::l4::Side;

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const PUB: PortRole = PortRole::Public;
const PRIV: PortRole = PortRole::Private;
/// Forward verdicts as [`routed`] returns them.
const FWD_PRIV: Verdict = Verdict::Forward {
    port: PRIV,
    dst: Ipv4Addr::UNSPECIFIED,
};
const FWD_PUB: Verdict = Verdict::Forward {
    port: PUB,
    dst: Ipv4Addr::UNSPECIFIED,
};

/// `v` with a forward verdict's destination checked against the rewritten packet `p` (the
/// worker routes on the verdict, so it must name where the packet now goes) and cleared, for
/// comparing with [`FWD_PRIV`] / [`FWD_PUB`].
fn routed(v: Verdict, p: &[u8]) -> Verdict {
    match v {
        Verdict::Forward { port, dst } => {
            assert_eq!(
                dst,
                Ipv4Addr::new(p[16], p[17], p[18], p[19]),
                "verdict's dst"
            );
            Verdict::Forward {
                port,
                dst: Ipv4Addr::UNSPECIFIED,
            }
        }
        other => other,
    }
}

fn rip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, n)
}
fn cip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 51, 100, n)
}

// ---- packet builders (checksums computed from scratch) ----

fn ip_packet(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    ttl: u8,
    frag: u16,
    id: u16,
    l4: &[u8],
) -> Vec<u8> {
    let tl = (20 + l4.len()) as u16;
    let mut v = vec![0x45, 0];
    v.extend_from_slice(&tl.to_be_bytes());
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&frag.to_be_bytes());
    v.extend_from_slice(&[ttl, proto, 0, 0]);
    v.extend_from_slice(&src.octets());
    v.extend_from_slice(&dst.octets());
    let c = checksum::internet(&v);
    v[10..12].copy_from_slice(&c.to_be_bytes());
    v.extend_from_slice(l4);
    v
}

fn l4_csum(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, seg: &[u8]) -> u16 {
    let ph = checksum::pseudo_header_v4(src, dst, proto, seg.len() as u16);
    checksum::finish(checksum::sum(seg, ph))
}

fn tcp_seg(
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    flags: u8,
    data: &[u8],
) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&0x0102_0304u32.to_be_bytes());
    t.extend_from_slice(&0u32.to_be_bytes());
    t.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(data);
    let c = l4_csum(src, dst, 6, &t);
    t[16..18].copy_from_slice(&c.to_be_bytes());
    t
}

fn tcp_ttl(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, flags: u8, ttl: u8) -> Vec<u8> {
    let seg = tcp_seg(src, sport, dst, dport, flags, b"hello");
    ip_packet(src, dst, 6, ttl, 0x4000, 7, &seg)
}

fn tcp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, flags: u8) -> Vec<u8> {
    tcp_ttl(src, sport, dst, dport, flags, 64)
}

fn udp_seg(
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    data: &[u8],
    with_csum: bool,
) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(data);
    if with_csum {
        let c = match l4_csum(src, dst, 17, &u) {
            0 => 0xffff,
            c => c,
        };
        u[6..8].copy_from_slice(&c.to_be_bytes());
    }
    u
}

fn udp_ttl(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, data: &[u8], ttl: u8) -> Vec<u8> {
    ip_packet(
        src,
        dst,
        17,
        ttl,
        0,
        9,
        &udp_seg(src, sport, dst, dport, data, true),
    )
}

fn udp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    udp_ttl(src, sport, dst, dport, b"query", 64)
}

fn ends(p: &[u8]) -> (Ipv4Addr, u16, Ipv4Addr, u16) {
    let ip = Ipv4Packet::new_checked(p).unwrap();
    let l4 = ip.payload();
    (
        ip.src(),
        u16::from_be_bytes([l4[0], l4[1]]),
        ip.dst(),
        u16::from_be_bytes([l4[2], l4[3]]),
    )
}

/// Full recomputation: IP header and TCP/UDP checksums verify.
fn checksums_ok(p: &[u8]) -> bool {
    let ip = Ipv4Packet::new_checked(p).unwrap();
    if !ip.verify_checksum() {
        return false;
    }
    let seg = ip.payload();
    match ip.protocol() {
        17 if seg[6..8] == [0, 0] => true,
        6 | 17 => {
            let ph =
                checksum::pseudo_header_v4(ip.src(), ip.dst(), ip.protocol(), seg.len() as u16);
            checksum::fold(checksum::sum(seg, ph)) == 0xffff
        }
        _ => checksum::internet(seg) == 0,
    }
}

fn params() -> LbParams {
    LbParams {
        conn_capacity: 1024,
        frag_capacity: 64,
        ..LbParams::default()
    }
}

fn web() -> ServiceKey {
    ServiceKey::tcp(VIP, 80)
}

/// VIP:80 TCP with the given scheduler and real servers 10.0.0.1.. :8080 with `weights`,
/// listed in that order: added last to first, since a new server goes to the head of the
/// list as in the kernel (rip(1) is the newest, with the highest id).
fn snap(sched: &str, weights: &[u32]) -> Snapshot {
    let mut s = Snapshot::empty()
        .add_service(ServiceSpec::new(web()).scheduler(sched))
        .unwrap();
    for (i, w) in weights.iter().enumerate().rev() {
        s = s
            .add_dest(&web(), DestSpec::new(rip(i as u8 + 1), 8080).weight(*w))
            .unwrap();
    }
    s
}

/// A UDP service on VIP:`port` with one real server, rip(1):`rport`.
fn udp_service(port: u16, rport: u16) -> Snapshot {
    let k = ServiceKey::udp(VIP, port);
    Snapshot::empty()
        .add_service(ServiceSpec::new(k).scheduler("rr"))
        .unwrap()
        .add_dest(&k, DestSpec::new(rip(1), rport))
        .unwrap()
}

fn lb_with(s: Snapshot) -> Lb {
    Lb::new(params(), Arc::new(s))
}

fn syn_to(lb: &mut Lb, c: Ipv4Addr, port: u16, now: Time) -> Ipv4Addr {
    let mut p = tcp(c, port, VIP, 80, SYN);
    assert_eq!(routed(lb.process(&mut p, PUB, now), &p), FWD_PRIV);
    ends(&p).2
}

fn dest_conns(lb: &Lb, id: u16) -> u64 {
    lb.stats().dest(DestId(id)).unwrap().traffic.conns.get()
}

/// The id of the real server at `addr` in the engine's current configuration.
fn id_of(lb: &Lb, addr: Ipv4Addr) -> DestId {
    lb.snapshot()
        .services()
        .iter()
        .flat_map(|s| s.dests.iter())
        .find(|d| d.addr == addr)
        .map(|d| d.id)
        .expect("a real server at that address")
}

/// The header of a packet a test built (so it parses).
fn repr(p: &[u8]) -> Ipv4Repr {
    Ipv4Repr::parse(p).unwrap()
}

/// What `prefetch_entries` asks to fetch for one lookup.
fn entries(lb: &Lb, l: Lookup) -> Vec<*const u8> {
    let mut v = Vec::new();
    lb.prefetch_entries([l], |a| v.push(a));
    v
}

/// Services of every kind (TCP rr, UDP wrr, persistent port-zero) for the fuzz engines.
fn mixed_snapshot() -> Snapshot {
    let u = ServiceKey::udp(VIP, 53);
    let z = ServiceKey::tcp(Ipv4Addr::new(192, 0, 2, 11), 0);
    snap("rr", &[1, 2])
        .edit(|c| {
            c.add_service(ServiceSpec::new(u).scheduler("wrr"))?;
            c.add_dest(&u, DestSpec::new(rip(5), 53))?;
            c.add_service(ServiceSpec::new(z).persistent(Persistence::default()))?;
            c.add_dest(&z, DestSpec::new(rip(6), 0))
        })
        .unwrap()
}

thread_local! {
    /// One small engine per core count, shared by the fuzz cases of a test thread (state
    /// accumulates across cases, which widens coverage).
    static FUZZ: std::cell::RefCell<Vec<Lb>> = std::cell::RefCell::new(
        (1..4)
            .map(|n| Lb::new(LbParams { conn_capacity: 8, frag_capacity: 4, n_cores: n, ..params() }, Arc::new(mixed_snapshot())))
            .collect(),
    );
}

fn with_fuzz_lb(n_cores: usize, f: impl FnOnce(&mut Lb) -> Verdict) {
    FUZZ.with(|l| {
        if let Some(lb) = l.borrow_mut().get_mut(n_cores - 1) {
            f(lb);
        }
    });
}

fn icmp_error_pkt(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    t: u8,
    code: u8,
    rest: u32,
    quoted: &[u8],
) -> Vec<u8> {
    let mut m = vec![t, code, 0, 0];
    m.extend_from_slice(&rest.to_be_bytes());
    m.extend_from_slice(quoted);
    let c = checksum::internet(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    ip_packet(src, dst, 1, 64, 0, 0x77, &m)
}

mod forwarding;
mod properties;
mod related_icmp_and_fragments;
mod scheduling;
