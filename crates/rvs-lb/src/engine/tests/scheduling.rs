//! Engine tests: schedulers, persistence, edits, and schedulers prepared on the management core.

use super::*;

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
