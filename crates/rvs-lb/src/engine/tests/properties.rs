//! Engine tests: properties over arbitrary and plausible packets.

use super::*;

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
