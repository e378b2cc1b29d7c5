//! Engine tests: TCP/UDP forwarding both ways, the prefetch, drops and the egress checks.

use super::*;

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
fn udp_both_directions_zero_checksum_and_expiry() {
    let mut lb = lb_with(udp_service(53, 5353));
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

#[test]
fn with_a_host_stack_what_no_service_takes_is_the_hosts() {
    let host = LbParams {
        host_stack: true,
        ..params()
    };
    let mut lb = Lb::new(host, Arc::new(snap("rr", &[1])));
    // A VIP port without service (the kernel answers RST / port unreachable, or listens),
    // a RST to it, a segment that is not a SYN to a service port, UDP to another port.
    for mut p in [
        tcp(cip(1), 1000, VIP, 22, SYN),
        tcp(cip(1), 1000, VIP, 22, RST),
        tcp(cip(1), 1001, VIP, 80, ACK),
        tcp(cip(1), 1001, VIP, 80, FIN | ACK),
        udp(cip(1), 1000, VIP, 53),
    ] {
        let before = p.clone();
        assert_eq!(lb.process(&mut p, PUB, 0), Verdict::NotService);
        assert_eq!(p, before, "unmodified, for the host");
    }
    assert_eq!(lb.conn_count(), 0);
    assert_eq!(lb.stats().engine.drops_for(DropReason::NotSyn), 0);
    // An ICMP error about one of the host's own connections from the VIP.
    let quoted = tcp(VIP, 40000, cip(9), 443, SYN);
    let mut e = icmp_error_pkt(cip(9), VIP, 3, 3, 0, &quoted[..28]);
    assert_eq!(lb.process(&mut e, PUB, 0), Verdict::NotService);
    assert_eq!(lb.stats().engine.drops_for(DropReason::IcmpNoConnection), 0);
    // Balancing is unchanged: a SYN to the service still makes a connection ...
    let mut s = tcp(cip(1), 1002, VIP, 80, SYN);
    assert_eq!(routed(lb.process(&mut s, PUB, 0), &s), FWD_PRIV);
    // ... and a service without available server is still answered by rvs.
    let mut lb = Lb::new(
        LbParams {
            host_stack: true,
            ..params()
        },
        Arc::new(snap("wlc", &[0])),
    );
    let mut p = tcp(cip(1), 1000, VIP, 80, SYN);
    assert!(matches!(
        lb.process(&mut p, PUB, 0),
        Verdict::IcmpError { .. }
    ));
}
