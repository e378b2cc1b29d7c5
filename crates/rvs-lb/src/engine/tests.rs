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

// ---- end-to-end ----

#[test]
fn tcp_handshake_both_directions() {
    let mut lb = lb_with(snap("rr", &[1, 1]));
    let mut p = tcp(cip(1), 40000, VIP, 80, SYN);
    let len = p.len() as u64;
    assert_eq!(routed(lb.process(&mut p, PUB, 0), &p), FWD_PRIV);
    assert_eq!(p, tcp_ttl(cip(1), 40000, rip(1), 8080, SYN, 63));
    assert!(checksums_ok(&p));

    let mut r = tcp(rip(1), 8080, cip(1), 40000, SYN | ACK);
    assert_eq!(routed(lb.process(&mut r, PRIV, S / 10), &r), FWD_PUB);
    assert_eq!(r, tcp_ttl(VIP, 80, cip(1), 40000, SYN | ACK, 63));

    let mut a = tcp(cip(1), 40000, VIP, 80, ACK);
    assert_eq!(routed(lb.process(&mut a, PUB, S / 5), &a), FWD_PRIV);
    assert_eq!(a, tcp_ttl(cip(1), 40000, rip(1), 8080, ACK, 63));

    let mut out = Vec::new();
    assert_eq!(lb.list_conns(0, 10, S, &mut out), None);
    assert_eq!(out.len(), 1);
    let c = &out[0];
    assert_eq!(
        (c.proto, c.caddr, c.cport, c.vaddr, c.vport, c.daddr, c.dport, c.state),
        (6, cip(1), 40000, VIP, 80, rip(1), 8080, "ESTABLISHED")
    );
    assert_eq!(c.expires_secs, 899);
    let st = lb.stats();
    let svc = st.service(ServiceId(0)).unwrap().read();
    assert_eq!((svc.conns, svc.inpkts, svc.outpkts), (1, 2, 1));
    assert_eq!((svc.inbytes, svc.outbytes), (2 * len, len));
    assert_eq!(st.total.read(), svc);
    let g = st.dest(id_of(&lb, rip(1))).unwrap().gauges();
    assert_eq!((g.activeconns, g.inactconns), (1, 0));

    // Close: client FIN, server FIN, client ACK -> the entry becomes inactive.
    for (pkt, role) in [
        (tcp(cip(1), 40000, VIP, 80, FIN | ACK), PUB),
        (tcp(rip(1), 8080, cip(1), 40000, FIN | ACK), PRIV),
        (tcp(cip(1), 40000, VIP, 80, ACK), PUB),
    ] {
        let mut pkt = pkt;
        assert!(matches!(
            lb.process(&mut pkt, role, S),
            Verdict::Forward { .. }
        ));
    }
    let mut out = Vec::new();
    lb.list_conns(0, 10, S, &mut out);
    assert_eq!(out[0].state, "TIME_WAIT");
    let g = lb.stats().dest(id_of(&lb, rip(1))).unwrap().gauges();
    assert_eq!((g.activeconns, g.inactconns), (0, 1));
    // TIME_WAIT lasts 120 s.
    assert_eq!(lb.tick(120 * S, usize::MAX), 0);
    assert_eq!(lb.tick(122 * S, usize::MAX), 1);
    assert_eq!(lb.conn_count(), 0);
    assert_eq!(
        lb.stats()
            .dest(id_of(&lb, rip(1)))
            .unwrap()
            .gauges()
            .inactconns,
        0
    );
}

fn repr(p: &[u8]) -> Ipv4Repr {
    Ipv4Repr::parse(p).unwrap()
}

fn entries(lb: &Lb, l: Lookup) -> Vec<*const u8> {
    let mut v = Vec::new();
    lb.prefetch_entries([l], |a| v.push(a));
    v
}

#[test]
fn prefetch_names_the_bucket_and_entry_of_the_connection() {
    let mut lb = lb_with(snap("rr", &[1, 1]));
    let syn = tcp(cip(9), 40009, VIP, 80, SYN);
    let (l, bucket) = lb.prefetch_lookup(&repr(&syn), PUB);
    assert!(bucket.is_some());
    // Empty bucket: only the free entry, which `create` will use.
    let before = entries(&lb, l);
    assert_eq!(before.len(), 1);
    let mut p = syn.clone();
    assert_eq!(routed(lb.process(&mut p, PUB, 0), &p), FWD_PRIV);
    // Now the bucket leads to the entry the connection took, and a new free entry follows.
    let after = entries(&lb, l);
    assert_eq!(after.len(), 2);
    assert_eq!(after[0], before[0]);
    assert_ne!(after[1], before[0]);
    // The reply names the same lookup from the other side.
    let reply = tcp(rip(1), 8080, cip(9), 40009, SYN | ACK);
    assert_eq!(lb.prefetch_lookup(&repr(&reply), PRIV), (l, bucket));
    // Nothing for what is not looked up by client endpoint.
    let frag = ip_packet(cip(9), VIP, 17, 64, 0x0001, 5, &[0; 8]);
    let (none, addr) = lb.prefetch_lookup(&repr(&frag), PUB);
    assert_eq!((none, addr), (Lookup::default(), None));
    assert_eq!(entries(&lb, none).len(), 1);
}

#[test]
fn a_header_that_does_not_fit_its_bytes_is_malformed() {
    let mut lb = lb_with(snap("rr", &[1]));
    let syn = tcp(cip(9), 40009, VIP, 80, SYN);
    let h = repr(&syn);
    let mut short = syn[..syn.len() - 1].to_vec();
    assert_eq!(
        lb.process_parsed(&mut short, &h, PUB, 0),
        Verdict::Drop(DropReason::Malformed)
    );
    assert_eq!(lb.conn_count(), 0);
    let mut p = syn.clone();
    assert_eq!(routed(lb.process_parsed(&mut p, &h, PUB, 0), &p), FWD_PRIV);
}

proptest! {
    #[test]
    fn prefetch_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        let lb = lb_with(snap("rr", &[1]));
        if let Ok(h) = Ipv4Repr::parse(&bytes) {
            for role in [PUB, PRIV] {
                let (l, addr) = lb.prefetch_lookup(&h, role);
                prop_assert_eq!(addr.is_some(), h.ports.is_some());
                prop_assert!(!entries(&lb, l).is_empty());
            }
        }
    }

    /// A representation that does not describe the bytes it comes with (a dataplane bug) is
    /// refused or processed, never a panic.
    #[test]
    fn mismatched_header_and_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..120),
        other in proptest::collection::vec(any::<u8>(), 20..120),
        public in any::<bool>(),
    ) {
        let mut other = other;
        other[0] = 0x45;
        let len = other.len() as u16;
        other[2..4].copy_from_slice(&len.to_be_bytes());
        other[6] &= 0x3f;
        if let Ok(h) = Ipv4Repr::parse(&other) {
            let mut lb = lb_with(mixed_snapshot());
            let mut b = bytes;
            let _ = lb.process_parsed(&mut b, &h, if public { PUB } else { PRIV }, 0);
        }
    }
}

#[test]
fn rr_alternates() {
    let mut lb = lb_with(snap("rr", &[1, 1, 1]));
    let got: Vec<Ipv4Addr> = (0..6)
        .map(|i| syn_to(&mut lb, cip(1), 1000 + i, 0))
        .collect();
    assert_eq!(got, [rip(1), rip(2), rip(3), rip(1), rip(2), rip(3)]);
}

#[test]
fn wrr_one_to_two_over_300() {
    let mut lb = lb_with(snap("wrr", &[1, 2]));
    for i in 0..300 {
        syn_to(&mut lb, cip((i % 250) as u8 + 1), 2000 + i, 0);
    }
    assert_eq!(
        (
            dest_conns(&lb, id_of(&lb, rip(1)).0),
            dest_conns(&lb, id_of(&lb, rip(2)).0)
        ),
        (100, 200)
    );
    assert_eq!(lb.stats().service(ServiceId(0)).unwrap().conns.get(), 300);
}

#[test]
fn persistence_keeps_client_on_one_dest() {
    let s = Snapshot::empty()
        .add_service(
            ServiceSpec::new(web())
                .scheduler("rr")
                .persistent(Persistence {
                    timeout: 60,
                    netmask: Ipv4Addr::new(255, 255, 255, 255),
                }),
        )
        .unwrap()
        .add_dest(&web(), DestSpec::new(rip(1), 8080))
        .unwrap()
        .add_dest(&web(), DestSpec::new(rip(2), 8080))
        .unwrap();
    let mut lb = lb_with(s);
    let first = syn_to(&mut lb, cip(1), 1000, 0);
    for port in 1001..1010 {
        assert_eq!(syn_to(&mut lb, cip(1), port, S), first);
    }
    // Another client gets the other server (rr moved once).
    let other = syn_to(&mut lb, cip(2), 1000, S);
    assert_ne!(other, first);
    let mut out = Vec::new();
    lb.list_conns(0, 100, S, &mut out);
    let t: Vec<&ConnInfo> = out.iter().filter(|c| c.is_template).collect();
    assert_eq!(t.len(), 2);
    let t1 = t.iter().find(|c| c.caddr == cip(1)).unwrap();
    assert_eq!(
        (
            t1.proto,
            t1.cport,
            t1.vaddr,
            t1.vport,
            t1.daddr,
            t1.dport,
            t1.state,
            t1.n_control
        ),
        (6, 0, VIP, 80, first, 8080, "NONE", 10)
    );
    assert_eq!(t1.expires_secs, 60);
    let g = lb.stats().dest(id_of(&lb, first)).unwrap().gauges();
    assert_eq!((g.persistconns, g.activeconns), (1, 10));
    // The template outlives its 60 s while connections exist, and still pins the client.
    assert_eq!(syn_to(&mut lb, cip(1), 2000, 100 * S), first);
}

#[test]
fn persistence_netmask_and_port_zero() {
    let k = ServiceKey::tcp(VIP, 0);
    let s = Snapshot::empty()
        .add_service(ServiceSpec::new(k).scheduler("rr").persistent(Persistence {
            timeout: 300,
            netmask: Ipv4Addr::new(255, 255, 255, 0),
        }))
        .unwrap()
        .add_dest(&k, DestSpec::new(rip(2), 0))
        .unwrap()
        .add_dest(&k, DestSpec::new(rip(1), 0))
        .unwrap();
    let mut lb = lb_with(s);
    // Any port of the VIP; the real server port is the packet's port.
    let mut p = tcp(cip(1), 1000, VIP, 443, SYN);
    assert_eq!(routed(lb.process(&mut p, PUB, 0), &p), FWD_PRIV);
    assert_eq!(ends(&p), (cip(1), 1000, rip(1), 443));
    // Same /24, other port: same server (template vport 0).
    let mut p = tcp(cip(99), 1000, VIP, 22, SYN);
    assert_eq!(routed(lb.process(&mut p, PUB, 0), &p), FWD_PRIV);
    assert_eq!(ends(&p), (cip(99), 1000, rip(1), 22));
    let mut out = Vec::new();
    lb.list_conns(0, 100, 0, &mut out);
    let t: Vec<&ConnInfo> = out.iter().filter(|c| c.is_template).collect();
    assert_eq!(t.len(), 1);
    assert_eq!((t[0].caddr, t[0].vport, t[0].dport), (cip(0), 0, 0));
}

#[test]
fn fwmark_service_matches_rule_ports() {
    let s = Snapshot::empty()
        .edit(|c| {
            c.add_service(ServiceSpec::new(ServiceKey::Fwmark(1)).scheduler("rr"))?;
            c.add_dest(&ServiceKey::Fwmark(1), DestSpec::new(rip(1), 0))?;
            c.add_mark_rule(MarkRule {
                mark: 1,
                proto: Proto::Tcp,
                vaddr: VIP,
                port_lo: 8000,
                port_hi: 8999,
            })
        })
        .unwrap();
    let mut lb = lb_with(s);
    let mut p = tcp(cip(1), 1000, VIP, 8443, SYN);
    assert_eq!(routed(lb.process(&mut p, PUB, 0), &p), FWD_PRIV);
    assert_eq!(ends(&p), (cip(1), 1000, rip(1), 8443));
    let mut p = tcp(cip(1), 1000, VIP, 9000, SYN);
    assert!(matches!(
        lb.process(&mut p, PUB, 0),
        Verdict::IcmpError { .. }
    ));
}

#[test]
fn weight_zero_keeps_existing_sends_new_elsewhere() {
    let s = snap("rr", &[1, 1]);
    let mut lb = lb_with(s.clone());
    assert_eq!(syn_to(&mut lb, cip(1), 1000, 0), rip(1));
    let s2 = s
        .edit_dest(&web(), DestSpec::new(rip(1), 8080).weight(0))
        .unwrap();
    lb.apply_snapshot(Arc::new(s2));
    // The existing connection still flows both ways.
    let mut a = tcp(cip(1), 1000, VIP, 80, ACK);
    assert_eq!(routed(lb.process(&mut a, PUB, S), &a), FWD_PRIV);
    assert_eq!(ends(&a).2, rip(1));
    let mut r = tcp(rip(1), 8080, cip(1), 1000, ACK);
    assert_eq!(routed(lb.process(&mut r, PRIV, S), &r), FWD_PUB);
    for port in 2000..2005 {
        assert_eq!(syn_to(&mut lb, cip(2), port, S), rip(2));
    }
}

#[test]
fn removed_dest_keeps_serving_until_expired() {
    let s = snap("rr", &[1, 1]);
    let mut lb = lb_with(s.clone());
    assert_eq!(syn_to(&mut lb, cip(1), 1000, 0), rip(1));
    let id = id_of(&lb, rip(1));
    let s2 = s.delete_dest(&web(), rip(1), 8080).unwrap();
    assert_eq!(s2.config().trash()[0].dest.id, id);
    lb.apply_snapshot(Arc::new(s2));
    let mut a = tcp(cip(1), 1000, VIP, 80, ACK);
    assert_eq!(routed(lb.process(&mut a, PUB, S), &a), FWD_PRIV);
    assert_eq!(ends(&a).2, rip(1));
    let mut r = tcp(rip(1), 8080, cip(1), 1000, ACK);
    assert_eq!(routed(lb.process(&mut r, PRIV, S), &r), FWD_PUB);
    assert_eq!(ends(&r).0, VIP);
    // Its traffic is still counted under its id.
    assert_eq!(lb.stats().dest(id).unwrap().traffic.read().inpkts, 2);
    for port in 2000..2004 {
        assert_eq!(syn_to(&mut lb, cip(2), port, S), rip(2));
    }
    // Expire on request.
    let mut cur = Some(0);
    while let Some(c) = cur {
        cur = lb.expire_dest_conns(id, c, 100);
    }
    assert_eq!(lb.stats().dest(id).unwrap().gauges().refcnt, 0);
    let mut a = tcp(cip(1), 1000, VIP, 80, ACK);
    assert_eq!(
        lb.process(&mut a, PUB, S),
        Verdict::Drop(DropReason::NotSyn)
    );
    let mut r = tcp(rip(1), 8080, cip(1), 1000, ACK);
    // rip(1) is no longer a configured server: not ours.
    assert_eq!(lb.process(&mut r, PRIV, S), Verdict::NotService);
}

#[test]
fn edits_keep_connections_on_their_dest() {
    let s = snap("rr", &[1, 1]);
    let mut lb = lb_with(s.clone());
    let dests: Vec<Ipv4Addr> = (0..4)
        .map(|i| syn_to(&mut lb, cip(1), 100 + i, 0))
        .collect();
    let s2 = s
        .edit_service(ServiceSpec::new(web()).scheduler("wlc"))
        .unwrap()
        .add_dest(&web(), DestSpec::new(rip(3), 8080).weight(100))
        .unwrap();
    lb.apply_snapshot(Arc::new(s2));
    for (i, d) in dests.iter().enumerate() {
        let mut a = tcp(cip(1), 100 + i as u16, VIP, 80, ACK);
        assert_eq!(routed(lb.process(&mut a, PUB, S), &a), FWD_PRIV);
        assert_eq!(ends(&a).2, *d);
    }
    // wlc now prefers the heavy, empty server.
    assert_eq!(syn_to(&mut lb, cip(2), 1, S), rip(3));
}

#[test]
fn udp_both_directions_zero_checksum_and_expiry() {
    let k = ServiceKey::udp(VIP, 53);
    let s = Snapshot::empty()
        .add_service(ServiceSpec::new(k).scheduler("rr"))
        .unwrap()
        .add_dest(&k, DestSpec::new(rip(1), 5353))
        .unwrap();
    let mut lb = lb_with(s);
    let mut q = udp(cip(1), 5000, VIP, 53);
    assert_eq!(routed(lb.process(&mut q, PUB, 0), &q), FWD_PRIV);
    assert_eq!(q, udp_ttl(cip(1), 5000, rip(1), 5353, b"query", 63));
    let mut r = udp_ttl(rip(1), 5353, cip(1), 5000, b"answer", 64);
    assert_eq!(routed(lb.process(&mut r, PRIV, S), &r), FWD_PUB);
    assert_eq!(r, udp_ttl(VIP, 53, cip(1), 5000, b"answer", 63));
    // No checksum stays no checksum.
    let seg = udp_seg(cip(1), 5000, VIP, 53, b"nocsum", false);
    let mut n = ip_packet(cip(1), VIP, 17, 64, 0, 9, &seg);
    assert_eq!(routed(lb.process(&mut n, PUB, 2 * S), &n), FWD_PRIV);
    let seg2 = udp_seg(cip(1), 5000, rip(1), 5353, b"nocsum", false);
    assert_eq!(n, ip_packet(cip(1), rip(1), 17, 63, 0, 9, &seg2));
    // UDP stays inactive; 300 s after the last packet it is gone.
    let g = lb.stats().dest(DestId(0)).unwrap().gauges();
    assert_eq!((g.activeconns, g.inactconns), (0, 1));
    let mut out = Vec::new();
    lb.list_conns(0, 10, 2 * S, &mut out);
    assert_eq!((out[0].state, out[0].expires_secs), ("UDP", 300));
    assert_eq!(lb.tick(301 * S, usize::MAX), 0);
    assert_eq!(lb.tick(303 * S, usize::MAX), 1);
}

#[test]
fn port_unreachable_for_vip_port_without_service() {
    let mut lb = lb_with(snap("rr", &[1]));
    for mut p in [tcp(cip(1), 1000, VIP, 81, SYN), udp(cip(1), 1000, VIP, 80)] {
        let before = p.clone();
        assert_eq!(
            lb.process(&mut p, PUB, 0),
            Verdict::IcmpError {
                icmp_type: 3,
                code: 3,
                rest: 0,
                src: Some(VIP)
            }
        );
        assert_eq!(p, before);
    }
    assert_eq!(lb.stats().engine.no_service.get(), 2);
    // Not a VIP at all: the dataplane's business.
    let mut p = tcp(cip(1), 1000, Ipv4Addr::new(192, 0, 2, 99), 80, SYN);
    assert_eq!(lb.process(&mut p, PUB, 0), Verdict::NotService);
    // A RST to a closed port gets nothing back.
    let mut p = tcp(cip(1), 1000, VIP, 81, RST);
    assert_eq!(
        lb.process(&mut p, PUB, 0),
        Verdict::Drop(DropReason::NotSyn)
    );
}

#[test]
fn no_available_dest_is_port_unreachable() {
    let mut lb = lb_with(snap("wlc", &[0, 0]));
    let mut p = tcp(cip(1), 1000, VIP, 80, SYN);
    assert!(matches!(
        lb.process(&mut p, PUB, 0),
        Verdict::IcmpError {
            icmp_type: 3,
            code: 3,
            ..
        }
    ));
    assert_eq!(lb.stats().engine.no_dest.get(), 1);
    assert_eq!(lb.conn_count(), 0);
}

#[test]
fn reply_without_connection_is_dropped_and_counted() {
    let mut lb = lb_with(snap("rr", &[1]));
    let mut r = tcp(rip(1), 8080, cip(1), 1000, ACK);
    assert_eq!(
        lb.process(&mut r, PRIV, 0),
        Verdict::Drop(DropReason::NoConnection)
    );
    assert_eq!(lb.stats().engine.drops_for(DropReason::NoConnection), 1);
    let mut r = tcp(rip(1), 22, cip(1), 1000, ACK);
    assert_eq!(lb.process(&mut r, PRIV, 0), Verdict::NotService);
    // A client ACK without connection.
    let mut a = tcp(cip(1), 1000, VIP, 80, ACK);
    assert_eq!(
        lb.process(&mut a, PUB, 0),
        Verdict::Drop(DropReason::NotSyn)
    );
}

#[test]
fn full_table_drops_new_keeps_old() {
    let mut lb = Lb::new(
        LbParams {
            conn_capacity: 2,
            ..params()
        },
        Arc::new(snap("rr", &[1, 1])),
    );
    syn_to(&mut lb, cip(1), 1, 0);
    syn_to(&mut lb, cip(1), 2, 0);
    let mut p = tcp(cip(1), 3, VIP, 80, SYN);
    assert_eq!(
        lb.process(&mut p, PUB, 0),
        Verdict::Drop(DropReason::ConnTableFull)
    );
    assert_eq!(lb.stats().engine.drops_for(DropReason::ConnTableFull), 1);
    for (port, d) in [(1, rip(1)), (2, rip(2))] {
        let mut a = tcp(cip(1), port, VIP, 80, ACK);
        assert_eq!(routed(lb.process(&mut a, PUB, S), &a), FWD_PRIV);
        assert_eq!(ends(&a).2, d);
    }
    // rr did not advance on the refused SYN.
    assert_eq!(dest_conns(&lb, 0) + dest_conns(&lb, 1), 2);
}

#[test]
fn ttl_and_mtu_checks_leave_packet_and_state_untouched() {
    let mut lb = Lb::new(
        LbParams {
            mtu_private: 60,
            ..params()
        },
        Arc::new(snap("rr", &[1])),
    );
    let mut p = tcp_ttl(cip(1), 1000, VIP, 80, SYN, 1);
    let before = p.clone();
    assert_eq!(
        lb.process(&mut p, PUB, 0),
        Verdict::IcmpError {
            icmp_type: 11,
            code: 0,
            rest: 0,
            src: None
        }
    );
    assert_eq!(p, before);
    assert_eq!(lb.conn_count(), 0);
    // 45-byte packet fits 60; a 70-byte DF packet does not.
    let seg = tcp_seg(cip(1), 1000, VIP, 80, SYN, &[0u8; 30]);
    let mut big = ip_packet(cip(1), VIP, 6, 64, 0x4000, 1, &seg);
    assert_eq!(
        lb.process(&mut big, PUB, 0),
        Verdict::IcmpError {
            icmp_type: 3,
            code: 4,
            rest: 60,
            src: None
        }
    );
    assert_eq!(lb.conn_count(), 0);
    // Without DF it is forwarded; the dataplane fragments it for the egress MTU.
    let mut big = ip_packet(cip(1), VIP, 6, 64, 0, 1, &seg);
    assert_eq!(routed(lb.process(&mut big, PUB, 0), &big), FWD_PRIV);
    assert_eq!(lb.conn_count(), 1);
    lb.flush_conns(0, usize::MAX);
    assert_eq!(lb.stats().engine.ttl_exceeded.get(), 1);
    assert_eq!(lb.stats().engine.frag_needed.get(), 1);
    // Never an ICMP error to a non-unicast source.
    let mut p = tcp_ttl(Ipv4Addr::new(0, 0, 0, 0), 1000, VIP, 80, SYN, 1);
    assert_eq!(
        lb.process(&mut p, PUB, 0),
        Verdict::Drop(DropReason::IcmpSuppressed)
    );
}

#[test]
fn syn_on_time_wait_reschedules() {
    let mut lb = lb_with(snap("rr", &[1, 1]));
    assert_eq!(syn_to(&mut lb, cip(1), 1000, 0), rip(1));
    for (p, role) in [
        (tcp(rip(1), 8080, cip(1), 1000, SYN | ACK), PRIV),
        (tcp(cip(1), 1000, VIP, 80, ACK), PUB),
        (tcp(cip(1), 1000, VIP, 80, FIN | ACK), PUB),
        (tcp(rip(1), 8080, cip(1), 1000, FIN | ACK), PRIV),
    ] {
        let mut p = p;
        assert!(matches!(
            lb.process(&mut p, role, S),
            Verdict::Forward { .. }
        ));
    }
    let mut out = Vec::new();
    lb.list_conns(0, 10, S, &mut out);
    assert_eq!(out[0].state, "TIME_WAIT");
    assert_eq!(syn_to(&mut lb, cip(1), 1000, 2 * S), rip(2));
    assert_eq!(lb.stats().engine.conns_reused.get(), 1);
    assert_eq!(lb.conn_count(), 1);
    assert_eq!(
        lb.stats().dest(id_of(&lb, rip(1))).unwrap().gauges().refcnt,
        0
    );
}

#[test]
fn upper_threshold_overloads_dest() {
    let s = Snapshot::empty()
        .add_service(ServiceSpec::new(web()).scheduler("rr"))
        .unwrap()
        .add_dest(&web(), DestSpec::new(rip(1), 8080).thresholds(2, 0))
        .unwrap()
        .add_dest(&web(), DestSpec::new(rip(2), 8080))
        .unwrap();
    let mut lb = lb_with(s);
    for port in 0..10 {
        syn_to(&mut lb, cip(1), port, 0);
    }
    assert_eq!((dest_conns(&lb, 0), dest_conns(&lb, 1)), (2, 8));
}

/// The SYN+ACK a real server sends, after SNAT: VIP:80 -> client.
fn snatted_reply(lb: &mut Lb, c: Ipv4Addr, cport: u16, d: Ipv4Addr) -> Vec<u8> {
    let mut r = tcp(d, 8080, c, cport, SYN | ACK);
    assert_eq!(routed(lb.process(&mut r, PRIV, 0), &r), FWD_PUB);
    r
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

#[test]
fn related_icmp_from_public_side() {
    let mut lb = lb_with(snap("rr", &[1]));
    syn_to(&mut lb, cip(1), 1000, 0);
    let reply = snatted_reply(&mut lb, cip(1), 1000, rip(1));
    // A router on the client's path cannot forward our 45-byte reply: MTU 40.
    let router = Ipv4Addr::new(203, 0, 113, 1);
    let mut e = icmp_error_pkt(router, VIP, 3, 4, 40, &reply[..28]);
    let inpkts = lb.stats().total.inpkts.get();
    assert_eq!(routed(lb.process(&mut e, PUB, S), &e), FWD_PRIV);
    // Expected: the quote as the real server sent it (source RIP:8080, TTL as forwarded),
    // outer destination RIP.
    let mut q = reply[..28].to_vec();
    q[12..16].copy_from_slice(&rip(1).octets());
    q[10] = 0;
    q[11] = 0;
    let c = checksum::internet(&q[..20]);
    q[10..12].copy_from_slice(&c.to_be_bytes());
    q[20..22].copy_from_slice(&8080u16.to_be_bytes());
    let mut want = icmp_error_pkt(router, rip(1), 3, 4, 40, &q);
    want[8] = 63;
    want[10] = 0;
    want[11] = 0;
    let c = checksum::internet(&want[..20]);
    want[10..12].copy_from_slice(&c.to_be_bytes());
    assert_eq!(e, want);
    assert_eq!(lb.stats().engine.icmp_in.get(), 1);
    assert_eq!(lb.stats().total.inpkts.get(), inpkts + 1);
    // Unrelated: no connection, bad checksum, echo.
    let other = tcp(VIP, 80, cip(2), 5, ACK);
    let mut e = icmp_error_pkt(router, VIP, 3, 4, 40, &other[..28]);
    assert_eq!(
        lb.process(&mut e, PUB, S),
        Verdict::Drop(DropReason::IcmpNoConnection)
    );
    let mut e = icmp_error_pkt(router, VIP, 11, 0, 0, &reply[..28]);
    e[25] ^= 0xff;
    assert_eq!(
        lb.process(&mut e, PUB, S),
        Verdict::Drop(DropReason::IcmpBadChecksum)
    );
    let mut ping = icmp_error_pkt(cip(1), VIP, 8, 0, 0x0001_0001, b"ping");
    assert_eq!(lb.process(&mut ping, PUB, S), Verdict::NotService);
}

#[test]
fn related_icmp_from_private_side() {
    let k = ServiceKey::udp(VIP, 53);
    let s = Snapshot::empty()
        .add_service(ServiceSpec::new(k).scheduler("rr"))
        .unwrap()
        .add_dest(&k, DestSpec::new(rip(1), 5353))
        .unwrap();
    let mut lb = lb_with(s);
    let mut q = udp(cip(1), 5000, VIP, 53);
    assert_eq!(routed(lb.process(&mut q, PUB, 0), &q), FWD_PRIV);
    // The real server has nothing on 5353: port unreachable quoting what it received.
    let mut e = icmp_error_pkt(rip(1), cip(1), 3, 3, 0, &q[..28]);
    assert_eq!(routed(lb.process(&mut e, PRIV, S), &e), FWD_PUB);
    let orig = udp_ttl(cip(1), 5000, VIP, 53, b"query", 63);
    let mut quote = orig[..28].to_vec();
    // The quoted UDP checksum is left as the real server saw it (as the kernel does).
    quote[26..28].copy_from_slice(&q[26..28]);
    let mut want = icmp_error_pkt(VIP, cip(1), 3, 3, 0, &quote);
    want[8] = 63;
    want[10] = 0;
    want[11] = 0;
    let c = checksum::internet(&want[..20]);
    want[10..12].copy_from_slice(&c.to_be_bytes());
    assert_eq!(e, want);
    assert_eq!(lb.stats().engine.icmp_out.get(), 1);
    // TTL 1 on a forwarded error: dropped, never an error about an error.
    let mut e = icmp_error_pkt(rip(1), cip(1), 3, 3, 0, &q[..28]);
    e[8] = 1;
    assert_eq!(
        lb.process(&mut e, PRIV, S),
        Verdict::Drop(DropReason::IcmpUndeliverable)
    );
}

/// A UDP datagram from `src` split into fragments of `chunk` payload bytes.
fn fragments(
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    data: &[u8],
    chunk: usize,
    id: u16,
) -> Vec<Vec<u8>> {
    let seg = udp_seg(src, sport, dst, dport, data, true);
    let pieces: Vec<&[u8]> = seg.chunks(chunk).collect();
    let n = pieces.len();
    pieces
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mf = if i + 1 < n { 0x2000 } else { 0 };
            let off = (i * chunk / 8) as u16;
            ip_packet(src, dst, 17, 64, mf | off, id, p)
        })
        .collect()
}

fn udp_service(port: u16, rport: u16) -> Snapshot {
    let k = ServiceKey::udp(VIP, port);
    Snapshot::empty()
        .add_service(ServiceSpec::new(k).scheduler("rr"))
        .unwrap()
        .add_dest(&k, DestSpec::new(rip(1), rport))
        .unwrap()
}

fn reassembled_ok(frags: &[Vec<u8>], src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let mut seg = Vec::new();
    for f in frags {
        assert!(Ipv4Packet::new_checked(&f[..]).unwrap().verify_checksum());
        seg.extend_from_slice(&f[20..]);
    }
    assert_eq!(l4_csum(src, dst, 17, &seg), 0, "datagram checksum");
    seg
}

#[test]
fn fragments_single_core() {
    let mut lb = lb_with(udp_service(53, 5353));
    let data: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
    let mut frags = fragments(cip(1), 5000, VIP, 53, &data, 1480, 0x4242);
    assert_eq!(frags.len(), 3);
    for f in frags.iter_mut() {
        assert_eq!(routed(lb.process(f, PUB, 0), f), FWD_PRIV);
        assert_eq!(Ipv4Packet::new_checked(&f[..]).unwrap().dst(), rip(1));
    }
    let seg = reassembled_ok(&frags, cip(1), rip(1));
    assert_eq!(u16::from_be_bytes([seg[2], seg[3]]), 5353);
    assert_eq!(&seg[8..], &data[..]);
    assert_eq!(lb.stats().engine.frags.get(), 2);
    assert_eq!(lb.stats().total.inpkts.get(), 3);
    // The reply, fragmented too.
    let mut back = fragments(rip(1), 5353, cip(1), 5000, &data, 1480, 0x9999);
    for f in back.iter_mut() {
        assert_eq!(routed(lb.process(f, PRIV, 0), f), FWD_PUB);
    }
    let seg = reassembled_ok(&back, VIP, cip(1));
    assert_eq!(u16::from_be_bytes([seg[0], seg[1]]), 53);
    // A later fragment before its first: dropped and counted.
    let mut frags = fragments(cip(1), 5000, VIP, 53, &data, 1480, 0x4343);
    assert_eq!(
        lb.process(&mut frags[1], PUB, 0),
        Verdict::Drop(DropReason::FragOutOfOrder)
    );
    assert_eq!(lb.stats().engine.drops_for(DropReason::FragOutOfOrder), 1);
    // Tiny first fragment.
    let mut tiny = ip_packet(cip(1), VIP, 17, 64, 0x2000, 5, &[0, 1, 0, 53]);
    assert_eq!(
        lb.process(&mut tiny, PUB, 0),
        Verdict::Drop(DropReason::FragTooShort)
    );
}

#[test]
fn fragments_across_cores_hand_over_to_owner() {
    let n = 4;
    let snap = Arc::new(udp_service(53, 53));
    let mut lbs: Vec<Lb> = (0..n)
        .map(|c| {
            Lb::new(
                LbParams {
                    core_id: c,
                    n_cores: n,
                    ..params()
                },
                Arc::clone(&snap),
            )
        })
        .collect();
    let data = vec![7u8; 2000];
    // Find a datagram whose tracking core is not its owner.
    let (port, id) = (5000u16..)
        .map(|p| (p, p ^ 0x5a5a))
        .find(|(p, id)| endpoint_core(cip(1), *p, n) != fragment_core(cip(1), VIP, *id, 17, n))
        .unwrap();
    let owner = endpoint_core(cip(1), port, n);
    let mut frags = fragments(cip(1), port, VIP, 53, &data, 1480, id);
    let mut handed = 0;
    for f in frags.iter_mut() {
        let core = steer(f, PUB, n);
        assert_ne!(core, owner);
        match lbs[core].process(f, PUB, 0) {
            Verdict::Handover { core: c } => {
                assert_eq!(c, owner);
                handed += 1;
                assert_eq!(routed(lbs[c].process(f, PUB, 0), f), FWD_PRIV);
            }
            v => panic!("{v:?}"),
        }
    }
    assert_eq!(handed, 2);
    reassembled_ok(&frags, cip(1), rip(1));
    assert_eq!(lbs[owner].conn_count(), 1);
    assert_eq!(lbs.iter().map(Lb::conn_count).sum::<usize>(), 1);
    // Unfragmented packets of the flow steer straight to the owner.
    let q = udp(cip(1), port, VIP, 53);
    assert_eq!(steer(&q, PUB, n), owner);
    // A first fragment given to a core that is neither tracker nor owner goes to the
    // tracker, which routes the rest.
    let frags = fragments(cip(1), port, VIP, 53, &data, 1480, id.wrapping_add(1));
    let tracker = steer(&frags[0], PUB, n);
    if let Some(stray) = (0..n).find(|c| *c != tracker && *c != owner) {
        let mut f = frags[0].clone();
        assert_eq!(
            lbs[stray].process(&mut f, PUB, 0),
            Verdict::Handover { core: tracker }
        );
        assert_eq!(f, frags[0]);
    }
}

#[test]
fn steering_agrees_across_directions() {
    let n = 8;
    let mut lb = lb_with(snap("rr", &[1]));
    for i in 0..200u16 {
        let c = Ipv4Addr::new(198, 51, (i % 7) as u8, (i * 13 % 251) as u8 + 1);
        let port = 1024 + i * 97;
        let req = tcp(c, port, VIP, 80, SYN);
        let core = steer(&req, PUB, n);
        let mut fwd = req.clone();
        assert_eq!(routed(lb.process(&mut fwd, PUB, 0), &fwd), FWD_PRIV);
        // Reply from the real server, an ICMP error about the reply from the public side,
        // and one about the forwarded request from the private side.
        let reply = tcp(rip(1), 8080, c, port, SYN | ACK);
        assert_eq!(steer(&reply, PRIV, n), core);
        let mut snat = reply.clone();
        assert_eq!(routed(lb.process(&mut snat, PRIV, 0), &snat), FWD_PUB);
        let e1 = icmp_error_pkt(Ipv4Addr::new(203, 0, 113, 1), VIP, 11, 0, 0, &snat[..28]);
        assert_eq!(steer(&e1, PUB, n), core);
        let e2 = icmp_error_pkt(rip(1), c, 3, 3, 0, &fwd[..28]);
        assert_eq!(steer(&e2, PRIV, n), core);
    }
}

// ---- properties ----

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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..120), public in any::<bool>()) {
        let role = if public { PUB } else { PRIV };
        let mut b = bytes.clone();
        with_fuzz_lb(1, |lb| lb.process(&mut b, role, 0));
        let _ = steer(&bytes, role, 4);
    }

    #[test]
    fn never_panics_on_plausible_headers(
        proto in prop_oneof![Just(1u8), Just(6u8), Just(17u8), any::<u8>()],
        frag in any::<u16>(),
        ihl in 5u8..16,
        to_vip in any::<bool>(),
        src in any::<u32>(),
        rest in proptest::collection::vec(any::<u8>(), 0..100),
        public in any::<bool>(),
        n_cores in 1usize..4,
    ) {
        let dst = if to_vip { VIP } else { rip(1) };
        let mut p = ip_packet(Ipv4Addr::from(src), dst, proto, 64, frag, 1, &rest);
        p[0] = 0x40 | ihl;
        let role = if public { PUB } else { PRIV };
        // Related-ICMP shaped input with a random quote.
        let mut e = icmp_error_pkt(Ipv4Addr::from(src), dst, 3, 4, 0, &rest);
        with_fuzz_lb(n_cores, |lb| {
            lb.process(&mut p, role, 0);
            lb.process(&mut e, role, 0)
        });
        let _ = steer(&e, role, 3);
    }

    #[test]
    fn rewritten_packets_verify_and_match_from_scratch(
        c in any::<u32>().prop_map(|x| Ipv4Addr::from(0x0100_0000 | (x & 0x7fff_ffff))),
        cport in 1u16..,
        data in proptest::collection::vec(any::<u8>(), 0..64),
        use_udp in any::<bool>(),
    ) {
        let mut lb = lb_with(mixed_snapshot());
        let (mut p, want, mut r, rwant) = if use_udp {
            (
                udp_ttl(c, cport, VIP, 53, &data, 64),
                udp_ttl(c, cport, rip(5), 53, &data, 63),
                udp_ttl(rip(5), 53, c, cport, &data, 64),
                udp_ttl(VIP, 53, c, cport, &data, 63),
            )
        } else {
            let t = |s, sp, d, dp, ttl| ip_packet(s, d, 6, ttl, 0x4000, 7, &tcp_seg(s, sp, d, dp, SYN, &data));
            (t(c, cport, VIP, 80, 64), t(c, cport, rip(1), 8080, 63), t(rip(1), 8080, c, cport, 64), t(VIP, 80, c, cport, 63))
        };
        prop_assert_eq!(routed(lb.process(&mut p, PUB, 0), &p), FWD_PRIV);
        prop_assert!(checksums_ok(&p));
        prop_assert_eq!(&p, &want);
        prop_assert_eq!(routed(lb.process(&mut r, PRIV, 0), &r), FWD_PUB);
        prop_assert!(checksums_ok(&r));
        prop_assert_eq!(&r, &rwant);
    }

    #[test]
    fn steer_is_the_same_for_request_reply_and_their_icmp_errors(
        c in any::<u32>().prop_map(Ipv4Addr::from),
        cport in any::<u16>(),
        r in any::<u32>().prop_map(Ipv4Addr::from),
        rport in any::<u16>(),
        vport in any::<u16>(),
        use_udp in any::<bool>(),
        n in 1usize..16,
    ) {
        let mk = |s, sp, d, dp| if use_udp {
            udp_ttl(s, sp, d, dp, b"x", 64)
        } else {
            tcp(s, sp, d, dp, ACK)
        };
        let req = mk(c, cport, VIP, vport);
        let core = steer(&req, PUB, n);
        prop_assert!(core < n);
        // What the real server receives and what it answers.
        let fwd = mk(c, cport, r, rport);
        let reply = mk(r, rport, c, cport);
        prop_assert_eq!(steer(&reply, PRIV, n), core);
        // The reply as the client sees it, and errors about both directions.
        let snat = mk(VIP, vport, c, cport);
        let router = Ipv4Addr::new(203, 0, 113, 1);
        let e_pub = icmp_error_pkt(router, VIP, 3, 4, 1400, &snat[..28]);
        prop_assert_eq!(steer(&e_pub, PUB, n), core);
        let e_priv = icmp_error_pkt(r, c, 11, 0, 0, &fwd[..28]);
        prop_assert_eq!(steer(&e_priv, PRIV, n), core);
        prop_assert_eq!(endpoint_core(c, cport, n), core);
    }

    #[test]
    fn nat_then_reverse_nat_restores_bytes(
        c in any::<u32>(),
        cport in any::<u16>(),
        new_addr in any::<u32>(),
        new_port in any::<u16>(),
        data in proptest::collection::vec(any::<u8>(), 0..64),
        use_udp in any::<bool>(),
        dst_side in any::<bool>(),
    ) {
        let c = Ipv4Addr::from(c);
        let orig = if use_udp {
            udp_ttl(c, cport, VIP, 53, &data, 64)
        } else {
            ip_packet(c, VIP, 6, 64, 0, 3, &tcp_seg(c, cport, VIP, 80, ACK, &data))
        };
        let h = repr(&orig);
        let (side, old_addr, old_port) = if dst_side {
            (Side::Dst, VIP, if use_udp { 53 } else { 80 })
        } else {
            (Side::Src, c, cport)
        };
        let mut p = orig.clone();
        nat_endpoint(&mut p, &h, side, Ipv4Addr::from(new_addr), Some(new_port));
        prop_assert!(checksums_ok(&p));
        nat_endpoint(&mut p, &h, side, old_addr, Some(old_port));
        prop_assert_eq!(p, orig);
    }
}

/// Applies `steps` (each from the one before) on two engines, one taking schedulers prepared
/// by `Lb::prepare` and one building its own; returns both and the picks of `syns` new
/// connections after every step, which must not differ.
fn prepared_and_local(steps: &[Snapshot], syns: u16) -> (Lb, Lb) {
    let mut with = lb_with(Snapshot::empty());
    let mut without = lb_with(Snapshot::empty());
    let mut prev = Snapshot::empty();
    for (k, s) in steps.iter().enumerate() {
        let p = Lb::prepare(with.params(), &prev, s);
        with.apply_prepared(Arc::new(s.clone()), Some(p));
        without.apply_snapshot(Arc::new(s.clone()));
        for i in 0..syns {
            let port = 1000 * (k as u16 + 1) + i;
            let c = cip(i as u8 % 7 + 1);
            assert_eq!(
                syn_to(&mut with, c, port, S),
                syn_to(&mut without, c, port, S),
                "step {k}, SYN {i}"
            );
        }
        prev = s.clone();
    }
    (with, without)
}

#[test]
fn prepared_schedulers_are_moved_in_not_built() {
    for sched in ["mh", "sh", "dh", "lblc", "lblcr", "rr", "wrr", "twos"] {
        let s1 = snap(sched, &[1, 2, 3]);
        let s2 = s1
            .add_dest(&web(), DestSpec::new(rip(9), 8080).weight(2))
            .unwrap();
        let s3 = s2
            .edit_dest(&web(), DestSpec::new(rip(2), 8080).weight(5))
            .unwrap();
        let s4 = s3
            .edit_service(ServiceSpec::new(web()).scheduler("mh"))
            .unwrap();
        let (with, without) = prepared_and_local(&[s1, s2, s3, s4], 40);
        assert_eq!(with.stats().engine.scheds_built.get(), 0, "{sched}");
        // Without preparation the worker built the new service's scheduler and the one it
        // changed to, and rebuilt every table the edits changed.
        let tables = if matches!(sched, "mh" | "sh" | "dh") {
            2
        } else {
            0
        };
        let changed = if sched == "mh" { 1 } else { 2 };
        assert_eq!(
            without.stats().engine.scheds_built.get(),
            changed + tables,
            "{sched}"
        );
    }
}

#[test]
fn preparation_for_another_snapshot_is_not_used() {
    let s1 = snap("mh", &[1, 1]);
    let s2 = s1
        .add_dest(&web(), DestSpec::new(rip(9), 8080).weight(1))
        .unwrap();
    let mut lb = lb_with(Snapshot::empty());
    // Prepared for s1, offered with s2 (the worker skipped a generation): built here.
    let p = Lb::prepare(lb.params(), &Snapshot::empty(), &s1);
    lb.apply_prepared(Arc::new(s2.clone()), Some(p));
    assert_eq!(lb.stats().engine.scheds_built.get(), 1);
    let mut local = lb_with(s2);
    for i in 0..20 {
        assert_eq!(
            syn_to(&mut lb, cip(1), 3000 + i, S),
            syn_to(&mut local, cip(1), 3000 + i, S)
        );
    }
}

/// Schedulers prepared for the right snapshot but against another base (the worker skipped a
/// generation, or the preparation raced a publication) replace only rebuilt tables: state that
/// lives across updates (rr's position, lblc's cache) is kept.
#[test]
fn preparation_against_another_base_keeps_live_scheduler_state() {
    for sched in ["rr", "wrr", "lblc", "twos"] {
        let s1 = snap(sched, &[1, 1, 1]);
        let mut lb = lb_with(s1.clone());
        let mut local = lb_with(s1.clone());
        for i in 0..5 {
            assert_eq!(
                syn_to(&mut lb, cip(1), 100 + i, S),
                syn_to(&mut local, cip(1), 100 + i, S)
            );
        }
        let s2 = s1
            .add_dest(&web(), DestSpec::new(rip(9), 8080).weight(1))
            .unwrap();
        // Prepared as if the service were new: a fresh scheduler that must not be used.
        let p = Lb::prepare(lb.params(), &Snapshot::empty(), &s2);
        lb.apply_prepared(Arc::new(s2.clone()), Some(p));
        local.apply_snapshot(Arc::new(s2));
        for i in 0..12 {
            assert_eq!(
                syn_to(&mut lb, cip(2), 200 + i, S),
                syn_to(&mut local, cip(2), 200 + i, S),
                "{sched} SYN {i}"
            );
        }
    }
}
