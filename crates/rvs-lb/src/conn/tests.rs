//! Tests of the connection table: layout, lookups, expiry, accounting, listing.

use super::*;
use crate::config::{DestId, ServiceId};
use crate::stats::CoreStats;
use crate::tcp_state::flags::*;
use crate::tcp_state::{TcpDir, TcpState};
use crate::{Time, NANOS_PER_SEC};
use std::net::Ipv4Addr;
use std::sync::Arc;

const S: Time = NANOS_PER_SEC;

fn table(cap: usize) -> ConnTable {
    ConnTable::new(cap, 42, Arc::new(CoreStats::new(0)))
}

fn nc(cport: u16, dest: u16) -> NewConn {
    NewConn {
        proto: 6,
        caddr: Ipv4Addr::new(198, 51, 100, 7),
        cport,
        vaddr: Ipv4Addr::new(192, 0, 2, 1),
        vport: 80,
        daddr: Ipv4Addr::new(10, 0, 0, dest as u8 + 1),
        dport: 8080,
        dest: DestId(dest),
        svc: ServiceId(0),
    }
}

fn udp(cport: u16) -> NewConn {
    NewConn {
        proto: 17,
        vport: 53,
        dport: 53,
        ..nc(cport, 0)
    }
}

#[test]
fn size_and_bytes_per_connection() {
    assert_eq!(std::mem::size_of::<Conn>(), 64);
    assert_eq!(std::mem::align_of::<Conn>(), 64);
    let cap = 1 << 16;
    let t = table(cap);
    let wheel = WHEEL_SLOTS * 4;
    assert_eq!(t.memory_bytes() - wheel, cap * 68);
    // Worst case (capacity just above a power of two): < 72 bytes per connection.
    let t = table((1 << 16) + 1);
    let per = (t.memory_bytes() - wheel) as f64 / t.capacity() as f64;
    assert!(per < 72.0, "{per}");
}

#[test]
fn both_directions_find_one_entry() {
    let mut t = table(16);
    let n = nc(40000, 0);
    let i = t.create(&n, None, 0).unwrap();
    assert_eq!(
        t.lookup_in(6, n.caddr, n.cport, n.vaddr, n.vport, 0),
        Some(i)
    );
    assert_eq!(
        t.lookup_out(6, n.daddr, n.dport, n.caddr, n.cport, 0),
        Some(i)
    );
    // Wrong field anywhere: no match.
    assert_eq!(t.lookup_in(17, n.caddr, n.cport, n.vaddr, n.vport, 0), None);
    assert_eq!(
        t.lookup_in(6, n.caddr, n.cport + 1, n.vaddr, n.vport, 0),
        None
    );
    assert_eq!(t.lookup_in(6, n.caddr, n.cport, n.daddr, n.vport, 0), None);
    assert_eq!(t.lookup_out(6, n.daddr, 80, n.caddr, n.cport, 0), None);
    assert_eq!(t.lookup_out(6, n.vaddr, n.dport, n.caddr, n.cport, 0), None);
    // Templates are not connections.
    assert_eq!(t.lookup_template(6, n.caddr, n.vaddr, n.vport, 0), None);
}

#[test]
fn full_table_refuses_new_keeps_old() {
    let mut t = table(4);
    let ids: Vec<u32> = (0..4)
        .map(|p| t.create(&nc(p, 0), None, 0).unwrap())
        .collect();
    assert_eq!(t.create(&nc(99, 0), None, 0), None);
    assert_eq!(t.len(), 4);
    for (p, i) in ids.iter().enumerate() {
        let n = nc(p as u16, 0);
        assert_eq!(
            t.lookup_in(6, n.caddr, n.cport, n.vaddr, n.vport, 0),
            Some(*i)
        );
    }
    assert_eq!(t.dest_acct(DestId(0)).inact, 4);
}

#[test]
fn active_inactive_accounting_follows_tcp_state() {
    let mut t = table(8);
    let i = t.create(&nc(1, 3), None, 0).unwrap();
    let a = t.dest_acct(DestId(3));
    assert_eq!((a.active, a.inact, a.refs), (0, 1, 1));
    assert_eq!(t.tcp_transition(i, TcpDir::Input, SYN), TcpState::SynRecv);
    assert_eq!(
        (t.dest_acct(DestId(3)).active, t.dest_acct(DestId(3)).inact),
        (1, 0)
    );
    t.tcp_transition(i, TcpDir::Output, SYN | ACK);
    t.tcp_transition(i, TcpDir::Input, ACK);
    assert_eq!(t.get(i).unwrap().state_name(), "ESTABLISHED");
    assert_eq!(
        t.tcp_transition(i, TcpDir::Input, FIN | ACK),
        TcpState::CloseWait
    );
    assert_eq!(
        (t.dest_acct(DestId(3)).active, t.dest_acct(DestId(3)).inact),
        (0, 1)
    );
    // Gauges are published to the stats.
    let g = t.stats.dest(DestId(3)).unwrap().gauges();
    assert_eq!((g.activeconns, g.inactconns, g.refcnt), (0, 1, 1));
    t.expire_now(i);
    let a = t.dest_acct(DestId(3));
    assert_eq!((a.active, a.inact, a.refs), (0, 0, 0));
    assert_eq!(t.stats.dest(DestId(3)).unwrap().gauges().refcnt, 0);
}

#[test]
fn udp_expires_after_300s_refreshed_per_packet() {
    let mut t = table(8);
    let n = udp(5000);
    let i = t.create(&n, None, 0).unwrap();
    t.touch(i, 0);
    assert_eq!(t.get(i).unwrap().state_name(), "UDP");
    assert_eq!(t.expires_in_secs(i, 0), Some(300));
    // A packet at 200 s pushes expiry to 500 s.
    t.touch(i, 200 * S);
    t.tick(299 * S, usize::MAX);
    t.tick(499 * S, usize::MAX);
    assert_eq!(t.len(), 1);
    assert_eq!(t.tick(501 * S, usize::MAX), 1);
    assert_eq!(t.len(), 0);
    assert_eq!(
        t.lookup_in(17, n.caddr, n.cport, n.vaddr, n.vport, 501 * S),
        None
    );
    assert_eq!(t.dest_acct(DestId(0)).inact, 0);
}

#[test]
fn shorter_timeout_moves_the_timer() {
    let mut t = table(8);
    let i = t.create(&nc(1, 0), None, 0).unwrap();
    t.tcp_transition(i, TcpDir::Input, SYN);
    t.tcp_transition(i, TcpDir::Input, ACK);
    t.touch(i, 0); // ESTABLISHED: 900 s
    t.tcp_transition(i, TcpDir::Input, RST); // CLOSE: 10 s
    t.touch(i, S);
    assert_eq!(t.tick(10 * S, usize::MAX), 0);
    assert_eq!(t.tick(12 * S, usize::MAX), 1);
    assert!(t.is_empty());
}

#[test]
fn lookup_frees_overdue_entries_without_tick() {
    let mut t = table(8);
    let n = udp(7);
    let i = t.create(&n, None, 0).unwrap();
    t.touch(i, 0);
    assert_eq!(
        t.lookup_in(17, n.caddr, n.cport, n.vaddr, n.vport, 299 * S),
        Some(i)
    );
    assert_eq!(
        t.lookup_in(17, n.caddr, n.cport, n.vaddr, n.vport, 600 * S),
        None
    );
    assert!(t.is_empty());
}

#[test]
fn tick_work_is_bounded() {
    let mut t = table(1000);
    for p in 0..1000 {
        let i = t.create(&udp(p), None, 0).unwrap();
        t.touch(i, 0);
    }
    let mut total = 0;
    let mut calls = 0;
    while total < 1000 {
        let f = t.tick(400 * S, 16);
        assert!(f <= 16);
        total += f;
        calls += 1;
        assert!(calls < 1000, "no progress");
    }
    assert!(t.is_empty());
    assert_eq!(t.free_entries(), 1000);
    // Every entry is reusable afterwards.
    for p in 0..1000 {
        assert!(t.create(&udp(p), None, 400 * S).is_some());
    }
}

#[test]
fn long_pause_and_long_timeouts() {
    let mut t = table(8);
    // A template with a 31-day timeout spans many wheel rotations.
    let tpl = t.create(&nc(0, 1), Some(86400 * 31), 0).unwrap();
    let c = t.create(&udp(9), None, 0).unwrap();
    t.touch(c, 0);
    // Nothing for 10 days, then one tick: the UDP entry goes, the template stays.
    let now = 10 * 86400 * S;
    let mut freed = 0;
    for _ in 0..10 {
        freed += t.tick(now, 4096);
    }
    assert_eq!(freed, 1);
    assert!(t.get(tpl).is_some());
    assert_eq!(t.expires_in_secs(tpl, now), Some(21 * 86400));
    let end = 31 * 86400 * S + 2 * S;
    for d in 11..=31u64 {
        for _ in 0..4 {
            t.tick(d * 86400 * S, 4096);
        }
    }
    for _ in 0..4 {
        t.tick(end, 4096);
    }
    assert!(t.is_empty());
}

#[test]
fn template_lives_while_it_controls() {
    let mut t = table(8);
    let mut tn = nc(0, 2);
    tn.caddr = Ipv4Addr::new(198, 51, 100, 0);
    let tpl = t.create(&tn, Some(60), 0).unwrap();
    let a = t.dest_acct(DestId(2));
    assert_eq!((a.persist, a.inact, a.refs), (1, 0, 1));
    assert_eq!(t.lookup_template(6, tn.caddr, tn.vaddr, 80, 0), Some(tpl));
    let c = t.create(&nc(1234, 2), None, 0).unwrap();
    t.control_add(c, tpl);
    t.tcp_transition(c, TcpDir::Input, SYN);
    t.tcp_transition(c, TcpDir::Input, ACK);
    t.touch(c, 0);
    assert_eq!(t.get(tpl).unwrap().n_control(), 1);
    assert_eq!(t.get(c).unwrap().control(), Some(tpl));
    // The template's 60 s pass; it is kept (re-armed for 60 s) while the connection lives.
    t.tick(100 * S, usize::MAX);
    assert!(t.get(tpl).is_some());
    assert_eq!(
        t.lookup_template(6, tn.caddr, tn.vaddr, 80, 100 * S),
        Some(tpl)
    );
    // expire_now on a controlling template only invalidates it.
    assert!(!t.expire_now(tpl));
    assert_eq!(t.lookup_template(6, tn.caddr, tn.vaddr, 80, 100 * S), None);
    // The connection closes: the invalidated template, now useless, goes with it.
    assert!(t.expire_now(c));
    assert!(t.get(tpl).is_none());
    assert!(t.is_empty());
    assert_eq!(t.tick(200 * S, usize::MAX), 0);
    let a = t.dest_acct(DestId(2));
    assert_eq!((a.persist, a.inact, a.active, a.refs), (0, 0, 0, 0));
}

#[test]
fn valid_template_expires_at_its_timer_after_last_connection() {
    let mut t = table(8);
    let mut tn = nc(0, 2);
    tn.caddr = Ipv4Addr::new(198, 51, 100, 0);
    let tpl = t.create(&tn, Some(60), 0).unwrap();
    let c = t.create(&nc(1, 2), None, 0).unwrap();
    t.control_add(c, tpl);
    t.tcp_transition(c, TcpDir::Input, RST);
    t.touch(c, 0); // CLOSE: 10 s
    assert_eq!(t.tick(20 * S, usize::MAX), 1);
    assert_eq!(t.get(tpl).unwrap().n_control(), 0);
    // Still reusable until its own 60 s run out.
    assert_eq!(
        t.lookup_template(6, tn.caddr, tn.vaddr, 80, 30 * S),
        Some(tpl)
    );
    assert_eq!(t.tick(59 * S, usize::MAX), 0);
    assert_eq!(t.tick(61 * S, usize::MAX), 1);
    assert!(t.is_empty());
}

#[test]
fn lookup_never_returns_a_freed_entry() {
    // A connection and its invalidated template in one chain; the lookup that expires the
    // connection frees both and must not wander into the free list.
    // Same (proto, caddr, cport 0): same bucket.
    let mut t = table(2);
    let n = udp(0);
    let tpl = t.create(&n, Some(600), 0).unwrap();
    let c = t.create(&n, None, 0).unwrap();
    t.touch(c, 0);
    t.control_add(c, tpl);
    t.invalidate_template(tpl);
    assert_eq!(t.lookup_in(17, n.caddr, 0, n.vaddr, n.vport, 400 * S), None);
    assert!(t.is_empty());
    assert_eq!(t.free_entries(), 2);
    assert!(t.create(&n, None, 400 * S).is_some());
    assert!(t.create(&n, Some(60), 400 * S).is_some());
    assert!(t.create(&n, None, 400 * S).is_none());
}

#[test]
fn stale_indexes_are_harmless() {
    let mut t = table(4);
    let i = t.create(&udp(1), None, 0).unwrap();
    assert!(t.expire_now(i));
    t.touch(i, S);
    assert_eq!(t.tcp_transition(i, TcpDir::Input, SYN), TcpState::None);
    assert!(!t.expire_now(i));
    t.control_add(i, i);
    t.invalidate_template(i);
    t.touch(NIL, S);
    assert_eq!(t.tick(1000 * S, usize::MAX), 0);
    assert!(t.is_empty());
    assert_eq!(t.free_entries(), 4);
    for p in 0..4 {
        assert!(t.create(&udp(p), None, 0).is_some());
    }
}

#[test]
fn overload_hysteresis() {
    let mut t = table(64);
    // u=4, l=0: set at total >= 4, cleared at unbind when total*4 < 12, i.e. total <= 2.
    t.configure_dest(DestId(0), 4, 0);
    let ids: Vec<u32> = (0..4)
        .map(|p| t.create(&nc(p, 0), None, 0).unwrap())
        .collect();
    assert!(t.dest_acct(DestId(0)).overloaded);
    t.expire_now(ids[0]);
    assert!(t.dest_acct(DestId(0)).overloaded, "3*4 = 12 is not < 12");
    t.expire_now(ids[1]);
    assert!(!t.dest_acct(DestId(0)).overloaded);
    // With l=2: cleared only when total < 2.
    t.configure_dest(DestId(1), 3, 2);
    let ids: Vec<u32> = (10..13)
        .map(|p| t.create(&nc(p, 1), None, 0).unwrap())
        .collect();
    assert!(t.dest_acct(DestId(1)).overloaded);
    t.expire_now(ids[0]);
    assert!(t.dest_acct(DestId(1)).overloaded);
    t.expire_now(ids[1]);
    assert!(!t.dest_acct(DestId(1)).overloaded);
    // Raising u clears OVERLOAD; lowering does not.
    t.configure_dest(DestId(2), 1, 0);
    t.create(&nc(20, 2), None, 0).unwrap();
    assert!(t.dest_acct(DestId(2)).overloaded);
    t.configure_dest(DestId(2), 1, 0);
    assert!(t.dest_acct(DestId(2)).overloaded);
    t.configure_dest(DestId(2), 5, 0);
    assert!(!t.dest_acct(DestId(2)).overloaded);
    // Templates do not count towards the threshold.
    t.configure_dest(DestId(3), 1, 0);
    t.create(&nc(30, 3), Some(60), 0).unwrap();
    assert!(!t.dest_acct(DestId(3)).overloaded);
}

#[test]
fn listing_in_chunks() {
    let mut t = table(10);
    for p in 0..7 {
        let i = t.create(&nc(p, 0), None, 0).unwrap();
        t.tcp_transition(i, TcpDir::Input, SYN);
        t.touch(i, 0);
    }
    let tpl = t.create(&udp(0), Some(360), 0).unwrap();
    let _ = tpl;
    t.expire_now(3);
    let mut out = Vec::new();
    let mut cur = Some(0);
    let mut chunks = 0;
    while let Some(c) = cur {
        cur = t.list(c, 3, 5 * S, &mut out);
        chunks += 1;
    }
    assert_eq!(chunks, 3);
    assert_eq!(out.len(), 7);
    let syn = out.iter().filter(|c| c.state == "SYN_RECV").count();
    assert_eq!(syn, 6);
    assert!(out
        .iter()
        .all(|c| c.state != "SYN_RECV" || c.expires_secs == 55));
    let tp: Vec<&ConnInfo> = out.iter().filter(|c| c.is_template).collect();
    assert_eq!(tp.len(), 1);
    assert_eq!(
        (tp[0].state, tp[0].proto, tp[0].expires_secs),
        ("UDP", 17, 355)
    );
}

#[test]
fn expire_matching_by_dest() {
    let mut t = table(32);
    for p in 0..10 {
        t.create(&nc(p, p % 2), None, 0).unwrap();
    }
    let mut cur = Some(0);
    while let Some(c) = cur {
        cur = t.expire_matching(c, 4, |e| e.dest_id() == DestId(1));
    }
    assert_eq!(t.len(), 5);
    assert_eq!(t.dest_acct(DestId(1)).refs, 0);
    assert_eq!(t.dest_acct(DestId(0)).refs, 5);
}

#[test]
fn many_entries_same_bucket_chain_integrity() {
    // Random create/expire churn keeps the index and the free list consistent.
    let mut t = table(64);
    let mut live: Vec<(u16, u32)> = Vec::new();
    let mut x: u32 = 12345;
    for step in 0..5000u32 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let port = (x >> 16) as u16 % 200;
        let n = nc(port, port % 4);
        let found = t.lookup_in(6, n.caddr, n.cport, n.vaddr, n.vport, 0);
        let known = live.iter().find(|(p, _)| *p == port).map(|(_, i)| *i);
        assert_eq!(found, known, "step {step}");
        match found {
            Some(i) => {
                assert!(t.expire_now(i));
                live.retain(|(p, _)| *p != port);
            }
            None => match t.create(&n, None, 0) {
                Some(i) => live.push((port, i)),
                None => assert_eq!(live.len(), 64),
            },
        }
        assert_eq!(t.len(), live.len());
    }
    let total: u32 = (0..4).map(|d| t.dest_acct(DestId(d)).refs).sum();
    assert_eq!(total as usize, live.len());
}
