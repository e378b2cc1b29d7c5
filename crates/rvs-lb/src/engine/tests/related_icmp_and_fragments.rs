//! Engine tests: related ICMP errors, fragments and steering across cores.

use super::*;

/// The SYN+ACK a real server sends, after SNAT: VIP:80 -> client.
fn snatted_reply(lb: &mut Lb, c: Ipv4Addr, cport: u16, d: Ipv4Addr) -> Vec<u8> {
    let mut r = tcp(d, 8080, c, cport, SYN | ACK);
    assert_eq!(routed(lb.process(&mut r, PRIV, 0), &r), FWD_PUB);
    r
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
    let mut lb = lb_with(udp_service(53, 5353));
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

#[test]
fn with_a_host_stack_fragments_of_the_hosts_datagrams_go_up_whole() {
    let host = LbParams {
        host_stack: true,
        ..params()
    };
    let mut lb = Lb::new(host, Arc::new(udp_service(53, 5353)));
    let data = vec![0x5au8; 3000];
    // UDP to a VIP port without service, fragmented: every fragment is the host's.
    let mut frags = fragments(cip(1), 5000, VIP, 4789, &data, 1480, 0x5151);
    assert!(frags.len() > 1);
    for f in frags.iter_mut() {
        let before = f.clone();
        assert_eq!(lb.process(f, PUB, 0), Verdict::NotService);
        assert_eq!(*f, before);
    }
    // A fragment of a balanced datagram still follows its first fragment.
    let mut frags = fragments(cip(1), 5000, VIP, 53, &data, 1480, 0x5252);
    for f in frags.iter_mut() {
        let v = lb.process(f, PUB, 0);
        assert_eq!(routed(v, f), FWD_PRIV);
    }
    assert_eq!(lb.stats().engine.drops_for(DropReason::FragOutOfOrder), 0);
}
