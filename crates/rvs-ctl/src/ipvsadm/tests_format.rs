//! Golden tests of the renderers. Every expected string below was produced by the real ipvsadm
//! 1.31 binary (run against a fake kernel interface) from the same data the models here hold,
//! except where a comment says otherwise (rvsadm's deliberate differences).

use super::format::*;
use super::names::NumericNames;
use super::tests_args::FakeNames;
use crate::model::*;
use std::net::Ipv4Addr;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn stats(v: [u64; 5]) -> Stats {
    Stats {
        conns: v[0],
        inpkts: v[1],
        outpkts: v[2],
        inbytes: v[3],
        outbytes: v[4],
    }
}

fn rates(v: [u64; 5]) -> Rates {
    Rates {
        cps: v[0],
        inpps: v[1],
        outpps: v[2],
        inbps: v[3],
        outbps: v[4],
    }
}

#[allow(clippy::too_many_arguments)]
fn svc(
    proto: ServiceProto,
    addr: &str,
    port: u16,
    fwmark: u32,
    sched: &str,
    flags: u32,
    persistent: Option<u32>,
    netmask: &str,
    ops: bool,
) -> ServiceEntry {
    ServiceEntry {
        proto,
        addr: ip(addr),
        port,
        fwmark,
        sched: sched.to_string(),
        flags,
        persistent,
        netmask: ip(netmask),
        pe_name: None,
        ops,
        stats: Stats::default(),
        rates: Rates::default(),
        dests: Vec::new(),
    }
}

/// (addr, port, fwd, weight, u_thr, l_thr, active, inact, persist)
#[allow(clippy::too_many_arguments)]
fn dest(
    addr: &str,
    port: u16,
    fwd: Fwd,
    weight: i32,
    u: u32,
    l: u32,
    active: u32,
    inact: u32,
    persist: u32,
) -> DestEntry {
    DestEntry {
        addr: ip(addr),
        port,
        fwd,
        weight,
        u_threshold: u,
        l_threshold: l,
        activeconns: active,
        inactconns: inact,
        persistconns: persist,
        stats: Stats::default(),
        rates: Rates::default(),
        tunnel: None,
    }
}

const HOST: &str = "255.255.255.255";

/// Data set 1: stats and rates at every largenum threshold, Masq/Tunnel/Route servers, sh flags,
/// a persistent port-0 service and a fwmark service. Listed in the order a kernel might return
/// it (unsorted) so sorting is exercised.
fn g1() -> ListSnapshot {
    let mut a = svc(
        ServiceProto::Tcp,
        "10.0.0.1",
        80,
        0,
        "rr",
        0,
        None,
        HOST,
        false,
    );
    a.stats = stats([100, 2000, 1500, 123456789, 987654321]);
    a.rates = rates([1, 2, 3, 4, 5]);
    let mut d2 = dest("192.168.10.2", 8080, Fwd::Tunnel, 65535, 100, 10, 0, 0, 0);
    d2.stats = stats([0, 0, 0, 100_000_000_000, 100_000_000_000_000]);
    let mut d1 = dest("192.168.10.1", 8080, Fwd::Masq, 1, 0, 0, 3, 17, 0);
    d1.stats = stats([
        100_000_000,
        99_999_999,
        999_999_999,
        1_000_000_000,
        99_999_999_999,
    ]);
    d1.rates = rates([1, 2, 3, 4, 5]);
    a.dests = vec![d2, d1];
    let mut b = svc(
        ServiceProto::Udp,
        "10.0.0.2",
        53,
        0,
        "sh",
        0x18,
        None,
        HOST,
        false,
    );
    b.dests = vec![dest("192.168.10.3", 53, Fwd::Route, 0, 0, 0, 0, 4, 1)];
    let mut c = svc(
        ServiceProto::Tcp,
        "100.0.0.1",
        0,
        0,
        "wlc",
        0,
        Some(360),
        HOST,
        false,
    );
    c.stats = stats([
        99_999_999,
        100_000_000,
        999_999_999,
        99_999_999_999_999,
        100_000_000_000_000,
    ]);
    c.rates = rates([4294967295, 100_000_000, 999_999_999, 1_000_000_000, 0]);
    let d = svc(
        ServiceProto::Fwmark,
        "0.0.0.0",
        0,
        5,
        "lc",
        0,
        None,
        HOST,
        false,
    );
    ListSnapshot {
        conn_tab_size: 4096,
        services: vec![a, b, c, d],
        total: None,
    }
}

/// Data set 2: persistence with masks, ops, SCTP, a fwmark service with every flag and a Local
/// server, sh/mh flag names (flag-3 hidden for them), negative weight and u32::MAX counters.
fn g2() -> ListSnapshot {
    let mut a = svc(
        ServiceProto::Tcp,
        "10.0.0.1",
        80,
        0,
        "wrr",
        0,
        Some(300),
        "255.255.255.0",
        false,
    );
    a.dests = vec![
        dest("10.0.0.9", 80, Fwd::Masq, 5, 0, 0, 0, 0, 0),
        dest("10.0.0.2", 80, Fwd::Masq, 5, 0, 0, 0, 0, 0),
        dest("10.0.0.2", 79, Fwd::Masq, 5, 0, 0, 0, 0, 0),
    ];
    let b = svc(
        ServiceProto::Udp,
        "10.0.0.1",
        5060,
        0,
        "rr",
        0,
        Some(60),
        HOST,
        true,
    );
    let mut c = svc(
        ServiceProto::Sctp,
        "10.0.0.3",
        80,
        0,
        "rr",
        0,
        None,
        HOST,
        false,
    );
    c.dests = vec![dest("10.0.1.2", 80, Fwd::Masq, 5, 0, 0, 0, 0, 0)];
    let mut d = svc(
        ServiceProto::Fwmark,
        "0.0.0.0",
        0,
        100,
        "dh",
        0x38,
        Some(100),
        "255.255.0.0",
        false,
    );
    d.dests = vec![dest("10.0.0.2", 0, Fwd::Local, 5, 0, 0, 0, 0, 0)];
    let e = svc(
        ServiceProto::Tcp,
        "10.0.0.1",
        443,
        0,
        "sh",
        0x38,
        None,
        HOST,
        false,
    );
    let f = svc(
        ServiceProto::Tcp,
        "10.0.0.1",
        444,
        0,
        "mh",
        0x18,
        None,
        HOST,
        false,
    );
    let g = svc(
        ServiceProto::Tcp,
        "10.0.0.1",
        445,
        0,
        "rr",
        0x20,
        None,
        HOST,
        false,
    );
    let h = svc(
        ServiceProto::Tcp,
        "10.0.0.1",
        1,
        0,
        "sh",
        0x20,
        None,
        HOST,
        false,
    );
    let i = svc(
        ServiceProto::Tcp,
        "10.0.0.1",
        7,
        0,
        "rr",
        0,
        Some(0),
        "0.0.0.0",
        false,
    );
    let mut j = svc(
        ServiceProto::Udp,
        "10.0.0.1",
        0,
        0,
        "rr",
        0,
        Some(7),
        HOST,
        false,
    );
    let mut j1 = dest(
        "1.2.3.4",
        65535,
        Fwd::Masq,
        0,
        0,
        0,
        4294967295,
        4294967295,
        4294967295,
    );
    j1.rates = rates([4294967295, 4294967295, 4294967295, 0, 0]);
    let j2 = dest(
        "1.2.3.5",
        65535,
        Fwd::Masq,
        -1,
        4294967295,
        4294967295,
        0,
        0,
        0,
    );
    j.dests = vec![j1, j2];
    ListSnapshot {
        conn_tab_size: 65536,
        services: vec![a, b, c, d, e, f, g, h, i, j],
        total: None,
    }
}

fn fmt() -> ListFormat {
    ListFormat {
        numeric: true,
        ..ListFormat::default()
    }
}

#[test]
fn largenum_thresholds() {
    let cases: &[(u64, &str)] = &[
        (0, "        0"),
        (99_999_999, " 99999999"),
        (100_000_000, "  100000K"),
        (999_999_999, "  999999K"),
        (1_000_000_000, "    1000M"),
        (99_999_999_999, "   99999M"),
        (100_000_000_000, "     100G"),
        (99_999_999_999_999, "   99999G"),
        (100_000_000_000_000, "     100T"),
        (u64::MAX, "18446744T"),
    ];
    for (v, want) in cases {
        assert_eq!(largenum(*v, false), *want, "value {v}");
    }
}

#[test]
fn largenum_exact_widths() {
    let cases: &[(u64, &str)] = &[
        (0, "        0"),
        (12_345_678, " 12345678"),
        (99_999_999, " 99999999"),
        (100_000_000, " 100000000"),
        (100_000_000_000_000, " 100000000000000"),
        (u64::MAX, " 18446744073709551615"),
    ];
    for (v, want) in cases {
        assert_eq!(largenum(*v, true), *want, "value {v}");
    }
}

fn check(got: String, want: &str) {
    assert_eq!(got, want, "\n--- got ---\n{got}\n--- want ---\n{want}");
}

#[test]
fn g1_every_list_mode() {
    let s = g1();
    let n = &NumericNames;
    check(list_all(&s, &fmt(), n), G1_LIST);
    let mut f = fmt();
    f.stats = true;
    check(list_all(&s, &f, n), G1_STATS);
    f.exact = true;
    check(list_all(&s, &f, n), G1_STATS_X);
    let mut f = fmt();
    f.rate = true;
    check(list_all(&s, &f, n), G1_RATE);
    f.exact = true;
    check(list_all(&s, &f, n), G1_RATE_X);
    let mut f = fmt();
    f.thresholds = true;
    check(list_all(&s, &f, n), G1_THRESH);
    let mut f = fmt();
    f.persistent_conn = true;
    check(list_all(&s, &f, n), G1_PCONN);
    let mut f = fmt();
    f.tun_info = true;
    check(list_all(&s, &f, n), G1_TUN);
    check(save(&s.services, true, n), G1_SAVE);
}

#[test]
fn g2_every_list_mode() {
    let s = g2();
    let n = &NumericNames;
    check(list_all(&s, &fmt(), n), G2_LIST);
    let mut f = fmt();
    f.stats = true;
    check(list_all(&s, &f, n), G2_STATS);
    f.exact = true;
    check(list_all(&s, &f, n), G2_STATS_X);
    let mut f = fmt();
    f.rate = true;
    check(list_all(&s, &f, n), G2_RATE);
    f.exact = true;
    check(list_all(&s, &f, n), G2_RATE_X);
    let mut f = fmt();
    f.thresholds = true;
    check(list_all(&s, &f, n), G2_THRESH);
    let mut f = fmt();
    f.persistent_conn = true;
    check(list_all(&s, &f, n), G2_PCONN);
    let mut f = fmt();
    f.tun_info = true;
    check(list_all(&s, &f, n), G2_TUN);
    check(save(&s.services, true, n), G2_SAVE);
}

#[test]
fn precedence_of_list_modifiers() {
    // ipvsadm: stats beats rate and thresholds; rate beats thresholds; thresholds beats
    // persistent-conn, which beats tun-info.
    let s = g1();
    let n = &NumericNames;
    let mut f = fmt();
    f.stats = true;
    f.rate = true;
    f.thresholds = true;
    check(list_all(&s, &f, n), G1_STATS);
    let mut f = fmt();
    f.rate = true;
    f.thresholds = true;
    f.persistent_conn = true;
    check(list_all(&s, &f, n), G1_RATE);
    let mut f = fmt();
    f.thresholds = true;
    f.persistent_conn = true;
    f.tun_info = true;
    check(list_all(&s, &f, n), G1_THRESH);
    let mut f = fmt();
    f.persistent_conn = true;
    f.tun_info = true;
    check(list_all(&s, &f, n), G1_PCONN);
}

#[test]
fn names_and_truncation_without_numeric() {
    let s = g1();
    let names = FakeNames::new();
    let f = ListFormat::default();
    check(list_all(&s, &f, &names), G1_NAMES_LIST);
    let mut fs = f;
    fs.stats = true;
    check(list_all(&s, &fs, &names), G1_NAMES_STATS);
    check(save(&s.services, false, &names), G1_NAMES_SAVE);
}

#[test]
fn single_service_and_nosort() {
    let s = g1();
    let n = &NumericNames;
    let mut f = fmt();
    f.stats = true;
    check(list_service(&s.services[0], &f, n), G1_SVC_STATS);
    let mut f = fmt();
    f.nosort = true;
    check(list_service(&s.services[0], &f, n), G1_SVC_NOSORT);
    check(list_all(&s, &f, n), G1_NOSORT);
}

#[test]
fn true_unsigned_order_is_a_deliberate_difference() {
    // ipvsadm lists 200.0.0.1 before 10.0.0.1, fwmark 4294967295 before every address service
    // and 10.0.0.9 after 192.168.10.2 (int subtraction). rvsadm sorts unsigned.
    let mut hi = svc(
        ServiceProto::Tcp,
        "200.0.0.1",
        80,
        0,
        "rr",
        0,
        None,
        HOST,
        false,
    );
    hi.dests = vec![
        dest("200.1.1.1", 80, Fwd::Masq, 1, 0, 0, 0, 0, 0),
        dest("10.0.0.9", 80, Fwd::Masq, 1, 0, 0, 0, 0, 0),
        dest("192.168.10.2", 80, Fwd::Masq, 1, 0, 0, 0, 0, 0),
    ];
    let snap = ListSnapshot {
        conn_tab_size: 4096,
        services: vec![
            svc(
                ServiceProto::Fwmark,
                "0.0.0.0",
                0,
                u32::MAX,
                "rr",
                0,
                None,
                HOST,
                false,
            ),
            hi,
            svc(
                ServiceProto::Tcp,
                "10.0.0.1",
                80,
                0,
                "rr",
                0,
                None,
                HOST,
                false,
            ),
        ],
        total: None,
    };
    let want = concat!(
        "IP Virtual Server version 1.2.1 (size=4096)\n",
        "Prot LocalAddress:Port Scheduler Flags\n",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
        "TCP  10.0.0.1:80 rr\n",
        "TCP  200.0.0.1:80 rr\n",
        "  -> 10.0.0.9:80                  Masq    1      0          0         \n",
        "  -> 192.168.10.2:80              Masq    1      0          0         \n",
        "  -> 200.1.1.1:80                 Masq    1      0          0         \n",
        // ipvsadm prints fwmarks with %d.
        "FWM  -1 rr\n",
    );
    check(list_all(&snap, &fmt(), &NumericNames), want);
    let want_save = concat!(
        "-A -t 10.0.0.1:80 -s rr\n",
        "-A -t 200.0.0.1:80 -s rr\n",
        "-a -t 200.0.0.1:80 -r 10.0.0.9:80 -m -w 1\n",
        "-a -t 200.0.0.1:80 -r 192.168.10.2:80 -m -w 1\n",
        "-a -t 200.0.0.1:80 -r 200.1.1.1:80 -m -w 1\n",
        "-A -f -1 -s rr\n",
    );
    check(save(&snap.services, true, &NumericNames), want_save);
}

#[test]
fn tunnel_info_and_rules() {
    // Formats from ipvsadm 1.31's fwd_tun_info / print_tunnel_rule (the fake kernel interface
    // used for the other goldens cannot carry tunnel attributes).
    let mut s = svc(
        ServiceProto::Tcp,
        "10.0.0.1",
        80,
        0,
        "rr",
        0,
        None,
        HOST,
        false,
    );
    let mut gue = dest("10.0.1.1", 80, Fwd::Tunnel, 2, 0, 0, 1, 2, 0);
    gue.tunnel = Some(TunnelInfo {
        tun_type: TunType::Gue,
        port: 6080,
        csum: TunCsum::RemCsum,
    });
    let mut gre = dest("10.0.1.2", 80, Fwd::Tunnel, 3, 0, 0, 0, 0, 0);
    gre.tunnel = Some(TunnelInfo {
        tun_type: TunType::Gre,
        port: 0,
        csum: TunCsum::Csum,
    });
    let mut ipip = dest("10.0.1.3", 80, Fwd::Tunnel, 4, 0, 0, 0, 0, 0);
    ipip.tunnel = Some(TunnelInfo {
        tun_type: TunType::Ipip,
        port: 0,
        csum: TunCsum::NoCsum,
    });
    let mut gue2 = dest("10.0.1.4", 80, Fwd::Tunnel, 5, 0, 0, 0, 0, 0);
    gue2.tunnel = Some(TunnelInfo {
        tun_type: TunType::Gue,
        port: 65535,
        csum: TunCsum::NoCsum,
    });
    s.dests = vec![
        gue,
        gre,
        ipip,
        gue2,
        dest("10.0.1.5", 80, Fwd::Masq, 1, 0, 0, 0, 0, 0),
    ];
    let mut f = fmt();
    f.tun_info = true;
    let want = concat!(
        "Prot LocalAddress:Port Scheduler Flags\n",
        "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n",
        "TCP  10.0.0.1:80 rr\n",
        "  -> 10.0.1.1:80                  Tunnel  gue:6080:r+c  2      1          2         \n",
        "  -> 10.0.1.2:80                  Tunnel  gre:+c        3      0          0         \n",
        "  -> 10.0.1.3:80                  Tunnel  ipip          4      0          0         \n",
        "  -> 10.0.1.4:80                  Tunnel  gue:65535:-c  5      0          0         \n",
        "  -> 10.0.1.5:80                  Masq    n/a           1      0          0         \n",
    );
    check(list_service(&s, &f, &NumericNames), want);
    let want_save = concat!(
        "-A -t 10.0.0.1:80 -s rr\n",
        "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -i -w 2 --tun-type gue --tun-port 6080 --tun-remcsum\n",
        "-a -t 10.0.0.1:80 -r 10.0.1.2:80 -i -w 3 --tun-type gre --tun-csum\n",
        "-a -t 10.0.0.1:80 -r 10.0.1.3:80 -i -w 4 --tun-type ipip\n",
        "-a -t 10.0.0.1:80 -r 10.0.1.4:80 -i -w 5 --tun-type gue --tun-port 65535 --tun-nocsum\n",
        "-a -t 10.0.0.1:80 -r 10.0.1.5:80 -m -w 1\n",
    );
    check(
        save(std::slice::from_ref(&s), true, &NumericNames),
        want_save,
    );
}

#[test]
fn persistence_engine_placement() {
    // From the ipvsadm source: " pe %s" sits inside the persistent part of a listing, while -S
    // prints " --pe %s" after -p/-M (not verifiable with the fake kernel interface).
    let mut s = svc(
        ServiceProto::Udp,
        "10.0.0.1",
        5060,
        0,
        "rr",
        0x8,
        Some(30),
        "255.255.255.0",
        true,
    );
    s.pe_name = Some("sip".to_string());
    check(
        service_entry(&s, &fmt(), false, &NumericNames),
        "UDP  10.0.0.1:5060 rr (flag-1) persistent 30 mask 255.255.255.0 pe sip ops\n",
    );
    check(
        service_entry(&s, &fmt(), true, &NumericNames),
        "-A -u 10.0.0.1:5060 -s rr -p 30 -M 255.255.255.0 --pe sip -o -b flag-1\n",
    );
}

fn conn(
    proto: &str,
    c: (&str, u16),
    v: (&str, u16),
    d: (&str, u16),
    state: &str,
    exp: u64,
) -> ConnEntry {
    ConnEntry {
        proto: proto.to_string(),
        caddr: ip(c.0),
        cport: c.1,
        vaddr: ip(v.0),
        vport: v.1,
        daddr: ip(d.0),
        dport: d.1,
        state: state.to_string(),
        expires_secs: exp,
        pe_name: None,
        pe_data: None,
    }
}

fn conns() -> Vec<ConnEntry> {
    let mut sip = conn(
        "UDP",
        ("192.168.0.4", 5060),
        ("10.0.0.1", 5060),
        ("192.168.10.1", 5060),
        "UDP",
        123,
    );
    sip.pe_name = Some("sip".to_string());
    sip.pe_data = Some("3132333435".to_string());
    vec![
        conn(
            "TCP",
            ("192.168.0.1", 54321),
            ("10.0.0.1", 80),
            ("192.168.10.1", 8080),
            "ESTABLISHED",
            899,
        ),
        conn(
            "UDP",
            ("192.168.0.2", 53),
            ("10.0.0.1", 53),
            ("192.168.10.1", 53),
            "UDP",
            299,
        ),
        conn(
            "TCP",
            ("192.168.0.3", 0),
            ("10.0.0.1", 80),
            ("192.168.10.1", 8080),
            "NONE",
            359,
        ),
        // A fwmark template: the kernel prints the mark where the VIP goes.
        conn(
            "IP",
            ("192.168.0.3", 0),
            ("0.0.0.5", 0),
            ("192.168.10.1", 0),
            "NONE",
            3600,
        ),
        sip,
        conn(
            "TCP",
            ("192.168.0.5", 54321),
            ("10.0.0.1", 80),
            ("192.168.10.1", 8080),
            "SYN_RECV",
            5,
        ),
    ]
}

#[test]
fn connection_listing() {
    let want = concat!(
        "IPVS connection entries\n",
        "pro expire state       source             virtual            destination\n",
        "TCP 14:59  ESTABLISHED 192.168.0.1:54321  10.0.0.1:80        192.168.10.1:8080\n",
        "UDP 04:59  UDP         192.168.0.2:53     10.0.0.1:53        192.168.10.1:53\n",
        "TCP 05:59  NONE        192.168.0.3:0      10.0.0.1:80        192.168.10.1:8080\n",
        "IP  60:00  NONE        192.168.0.3:0      0.0.0.5:0          192.168.10.1:0\n",
        "UDP 02:03  UDP         192.168.0.4:5060   10.0.0.1:5060      192.168.10.1:5060\n",
        "TCP 00:05  SYN_RECV    192.168.0.5:54321  10.0.0.1:80        192.168.10.1:8080\n",
    );
    check(list_conns(&conns(), &fmt(), &NumericNames), want);
    let mut f = fmt();
    f.persistent_conn = true;
    let want_pe = concat!(
        "IPVS connection entries\n",
        "pro expire state       source             virtual            destination        pe name          pe_data\n",
        "TCP 14:59  ESTABLISHED 192.168.0.1:54321  10.0.0.1:80        192.168.10.1:8080\n",
        "UDP 04:59  UDP         192.168.0.2:53     10.0.0.1:53        192.168.10.1:53\n",
        "TCP 05:59  NONE        192.168.0.3:0      10.0.0.1:80        192.168.10.1:8080\n",
        "IP  60:00  NONE        192.168.0.3:0      0.0.0.5:0          192.168.10.1:0\n",
        "UDP 02:03  UDP         192.168.0.4:5060   10.0.0.1:5060      192.168.10.1:5060 sip                3132333435\n",
        "TCP 00:05  SYN_RECV    192.168.0.5:54321  10.0.0.1:80        192.168.10.1:8080\n",
    );
    check(list_conns(&conns(), &f, &NumericNames), want_pe);
    // Without -n ports get service names (tcp/udp tables); addresses without a name stay numbers.
    let want_names = concat!(
        "IPVS connection entries\n",
        "pro expire state       source             virtual            destination\n",
        "TCP 14:59  ESTABLISHED 192.168.0.1:54321  10.0.0.1:http      192.168.10.1:http-alt\n",
        "UDP 04:59  UDP         192.168.0.2:domain 10.0.0.1:domain    192.168.10.1:domain\n",
        "TCP 05:59  NONE        192.168.0.3:0      10.0.0.1:http      192.168.10.1:http-alt\n",
        "IP  60:00  NONE        192.168.0.3:0      0.0.0.5:0          192.168.10.1:0\n",
        "UDP 02:03  UDP         192.168.0.4:sip    10.0.0.1:sip       192.168.10.1:sip\n",
        "TCP 00:05  SYN_RECV    192.168.0.5:54321  10.0.0.1:http      192.168.10.1:http-alt\n",
    );
    check(
        list_conns(
            &conns(),
            &ListFormat::default(),
            &FakeNames::services_only(),
        ),
        want_names,
    );
}

#[test]
fn timeouts_daemon_header_version() {
    assert_eq!(
        timeouts(&TimeoutTriple::default()),
        "Timeout (tcp tcpfin udp): 900 120 300\n"
    );
    assert_eq!(
        timeouts(&TimeoutTriple {
            tcp: 2678400,
            tcpfin: 0,
            udp: 1
        }),
        "Timeout (tcp tcpfin udp): 2678400 0 1\n"
    );
    assert_eq!(daemons(&[]), "");
    let d = [
        DaemonEntry {
            state: DaemonState::Master,
            mcast_ifn: "eth0".to_string(),
            syncid: 7,
            sync_maxlen: None,
            mcast_group: None,
            mcast_port: None,
            mcast_ttl: None,
        },
        DaemonEntry {
            state: DaemonState::Backup,
            mcast_ifn: "eth1".to_string(),
            syncid: 9,
            sync_maxlen: Some(1472),
            mcast_group: Some("224.0.0.81".to_string()),
            mcast_port: Some(8848),
            mcast_ttl: Some(1),
        },
    ];
    assert_eq!(
        daemons(&d),
        "master sync daemon (mcast=eth0, syncid=7)\nbackup sync daemon (mcast=eth1, syncid=9, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n"
    );
    assert_eq!(
        header(4096),
        "IP Virtual Server version 1.2.1 (size=4096)\n"
    );
    assert_eq!(
        version_line(),
        format!(
            "rvsadm v{} (ipvsadm 1.31 compatible, rvs data path)\n",
            env!("CARGO_PKG_VERSION")
        )
    );
    let u = usage("rvsadm");
    assert!(u.starts_with(&version_line()));
    assert!(u.contains("\n  rvsadm -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe persistence_engine] [-b sched-flags]\n"));
    assert!(u.ends_with("  --mcast-ttl ttl                     Multicast TTL (default=1)\n"));
    assert!(!u.contains("{P}"));
    assert_eq!(u.lines().count(), 82);
}

#[test]
fn model_json_round_trip() {
    let s = g2();
    let json = serde_json::to_string(&s).unwrap();
    let back: ListSnapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(back, s);
    assert!(json.contains("\"proto\":\"fwmark\""));
    assert!(json.contains("\"addr\":\"10.0.0.1\""));
}

const G1_LIST: &str = concat!(
    "IP Virtual Server version 1.2.1 (size=4096)\n",
    "Prot LocalAddress:Port Scheduler Flags\n",
    "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
    "TCP  10.0.0.1:80 rr\n",
    "  -> 192.168.10.1:8080            Masq    1      3          17        \n",
    "  -> 192.168.10.2:8080            Tunnel  65535  0          0         \n",
    "TCP  100.0.0.1:0 wlc persistent 360\n",
    "UDP  10.0.0.2:53 sh (sh-fallback,sh-port)\n",
    "  -> 192.168.10.3:53              Route   0      0          4         \n",
    "FWM  5 lc\n",
);

const G1_STATS: &str = concat!(
    "IP Virtual Server version 1.2.1 (size=4096)\n",
    "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n",
    "  -> RemoteAddress:Port\n",
    "TCP  10.0.0.1:80                       100     2000     1500  123456K  987654K\n",
    "  -> 192.168.10.1:8080             100000K 99999999  999999K    1000M   99999M\n",
    "  -> 192.168.10.2:8080                   0        0        0     100G     100T\n",
    "TCP  100.0.0.1:0                  99999999  100000K  999999K   99999G     100T\n",
    "UDP  10.0.0.2:53                         0        0        0        0        0\n",
    "  -> 192.168.10.3:53                     0        0        0        0        0\n",
    "FWM  5                                   0        0        0        0        0\n",
);

const G1_RATE: &str = concat!(
    "IP Virtual Server version 1.2.1 (size=4096)\n",
    "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n",
    "  -> RemoteAddress:Port\n",
    "TCP  10.0.0.1:80                         1        2        3        4        5\n",
    "  -> 192.168.10.1:8080                   1        2        3        4        5\n",
    "  -> 192.168.10.2:8080                   0        0        0        0        0\n",
    "TCP  100.0.0.1:0                     4294M  100000K  999999K    1000M        0\n",
    "UDP  10.0.0.2:53                         0        0        0        0        0\n",
    "  -> 192.168.10.3:53                     0        0        0        0        0\n",
    "FWM  5                                   0        0        0        0        0\n",
);

const G1_THRESH: &str = concat!(
    "IP Virtual Server version 1.2.1 (size=4096)\n",
    "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n",
    "  -> RemoteAddress:Port\n",
    "TCP  10.0.0.1:80 rr\n",
    "  -> 192.168.10.1:8080            0          0          3          17        \n",
    "  -> 192.168.10.2:8080            100        10         0          0         \n",
    "TCP  100.0.0.1:0 wlc persistent 360\n",
    "UDP  10.0.0.2:53 sh (sh-fallback,sh-port)\n",
    "  -> 192.168.10.3:53              0          0          0          4         \n",
    "FWM  5 lc\n",
);

const G1_PCONN: &str = concat!(
    "IP Virtual Server version 1.2.1 (size=4096)\n",
    "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n",
    "  -> RemoteAddress:Port\n",
    "TCP  10.0.0.1:80 rr\n",
    "  -> 192.168.10.1:8080            1         0           3          17        \n",
    "  -> 192.168.10.2:8080            65535     0           0          0         \n",
    "TCP  100.0.0.1:0 wlc persistent 360\n",
    "UDP  10.0.0.2:53 sh (sh-fallback,sh-port)\n",
    "  -> 192.168.10.3:53              0         1           0          4         \n",
    "FWM  5 lc\n",
);

const G1_TUN: &str = concat!(
    "IP Virtual Server version 1.2.1 (size=4096)\n",
    "Prot LocalAddress:Port Scheduler Flags\n",
    "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n",
    "TCP  10.0.0.1:80 rr\n",
    "  -> 192.168.10.1:8080            Masq    n/a           1      3          17        \n",
    "  -> 192.168.10.2:8080            Tunnel  ipip          65535  0          0         \n",
    "TCP  100.0.0.1:0 wlc persistent 360\n",
    "UDP  10.0.0.2:53 sh (sh-fallback,sh-port)\n",
    "  -> 192.168.10.3:53              Route   n/a           0      0          4         \n",
    "FWM  5 lc\n",
);

const G1_STATS_X: &str = concat!(
    "IP Virtual Server version 1.2.1 (size=4096)\n",
    "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n",
    "  -> RemoteAddress:Port\n",
    "TCP  10.0.0.1:80                       100     2000     1500 123456789 987654321\n",
    "  -> 192.168.10.1:8080            100000000 99999999 999999999 1000000000 99999999999\n",
    "  -> 192.168.10.2:8080                   0        0        0 100000000000 100000000000000\n",
    "TCP  100.0.0.1:0                  99999999 100000000 999999999 99999999999999 100000000000000\n",
    "UDP  10.0.0.2:53                         0        0        0        0        0\n",
    "  -> 192.168.10.3:53                     0        0        0        0        0\n",
    "FWM  5                                   0        0        0        0        0\n",
);

const G1_RATE_X: &str = concat!(
    "IP Virtual Server version 1.2.1 (size=4096)\n",
    "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n",
    "  -> RemoteAddress:Port\n",
    "TCP  10.0.0.1:80                         1        2        3        4        5\n",
    "  -> 192.168.10.1:8080                   1        2        3        4        5\n",
    "  -> 192.168.10.2:8080                   0        0        0        0        0\n",
    "TCP  100.0.0.1:0                  4294967295 100000000 999999999 1000000000        0\n",
    "UDP  10.0.0.2:53                         0        0        0        0        0\n",
    "  -> 192.168.10.3:53                     0        0        0        0        0\n",
    "FWM  5                                   0        0        0        0        0\n",
);

const G1_SAVE: &str = concat!(
    "-A -t 10.0.0.1:80 -s rr\n",
    "-a -t 10.0.0.1:80 -r 192.168.10.1:8080 -m -w 1\n",
    "-a -t 10.0.0.1:80 -r 192.168.10.2:8080 -i -w 65535 --tun-type ipip\n",
    "-A -t 100.0.0.1:0 -s wlc -p 360\n",
    "-A -u 10.0.0.2:53 -s sh -b sh-fallback,sh-port\n",
    "-a -u 10.0.0.2:53 -r 192.168.10.3:53 -g -w 0\n",
    "-A -f 5 -s lc\n",
);

const G2_LIST: &str = concat!(
    "IP Virtual Server version 1.2.1 (size=65536)\n",
    "Prot LocalAddress:Port Scheduler Flags\n",
    "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
    "TCP  10.0.0.1:1 sh ()\n",
    "TCP  10.0.0.1:7 rr persistent 0 mask 0.0.0.0\n",
    "TCP  10.0.0.1:80 wrr persistent 300 mask 255.255.255.0\n",
    "  -> 10.0.0.2:79                  Masq    5      0          0         \n",
    "  -> 10.0.0.2:80                  Masq    5      0          0         \n",
    "  -> 10.0.0.9:80                  Masq    5      0          0         \n",
    "TCP  10.0.0.1:443 sh (sh-fallback,sh-port)\n",
    "TCP  10.0.0.1:444 mh (mh-fallback,mh-port)\n",
    "TCP  10.0.0.1:445 rr (flag-3)\n",
    "UDP  10.0.0.1:0 rr persistent 7\n",
    "  -> 1.2.3.4:65535                Masq    0      4294967295 4294967295\n",
    "  -> 1.2.3.5:65535                Masq    -1     0          0         \n",
    "UDP  10.0.0.1:5060 rr persistent 60 ops\n",
    "SCTP 10.0.0.3:80 rr\n",
    "  -> 10.0.1.2:80                  Masq    5      0          0         \n",
    "FWM  100 dh (flag-1,flag-2,flag-3) persistent 100 mask 255.255.0.0\n",
    "  -> 10.0.0.2:0                   Local   5      0          0         \n",
);

const G2_STATS: &str = concat!(
    "IP Virtual Server version 1.2.1 (size=65536)\n",
    "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n",
    "  -> RemoteAddress:Port\n",
    "TCP  10.0.0.1:1                          0        0        0        0        0\n",
    "TCP  10.0.0.1:7                          0        0        0        0        0\n",
    "TCP  10.0.0.1:80                         0        0        0        0        0\n",
    "  -> 10.0.0.2:79                         0        0        0        0        0\n",
    "  -> 10.0.0.2:80                         0        0        0        0        0\n",
    "  -> 10.0.0.9:80                         0        0        0        0        0\n",
    "TCP  10.0.0.1:443                        0        0        0        0        0\n",
    "TCP  10.0.0.1:444                        0        0        0        0        0\n",
    "TCP  10.0.0.1:445                        0        0        0        0        0\n",
    "UDP  10.0.0.1:0                          0        0        0        0        0\n",
    "  -> 1.2.3.4:65535                       0        0        0        0        0\n",
    "  -> 1.2.3.5:65535                       0        0        0        0        0\n",
    "UDP  10.0.0.1:5060                       0        0        0        0        0\n",
    "SCTP 10.0.0.3:80                         0        0        0        0        0\n",
    "  -> 10.0.1.2:80                         0        0        0        0        0\n",
    "FWM  100                                 0        0        0        0        0\n",
    "  -> 10.0.0.2:0                          0        0        0        0        0\n",
);

const G2_RATE: &str = concat!(
    "IP Virtual Server version 1.2.1 (size=65536)\n",
    "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n",
    "  -> RemoteAddress:Port\n",
    "TCP  10.0.0.1:1                          0        0        0        0        0\n",
    "TCP  10.0.0.1:7                          0        0        0        0        0\n",
    "TCP  10.0.0.1:80                         0        0        0        0        0\n",
    "  -> 10.0.0.2:79                         0        0        0        0        0\n",
    "  -> 10.0.0.2:80                         0        0        0        0        0\n",
    "  -> 10.0.0.9:80                         0        0        0        0        0\n",
    "TCP  10.0.0.1:443                        0        0        0        0        0\n",
    "TCP  10.0.0.1:444                        0        0        0        0        0\n",
    "TCP  10.0.0.1:445                        0        0        0        0        0\n",
    "UDP  10.0.0.1:0                          0        0        0        0        0\n",
    "  -> 1.2.3.4:65535                4294967295 4294967295 4294967295        0        0\n",
    "  -> 1.2.3.5:65535                       0        0        0        0        0\n",
    "UDP  10.0.0.1:5060                       0        0        0        0        0\n",
    "SCTP 10.0.0.3:80                         0        0        0        0        0\n",
    "  -> 10.0.1.2:80                         0        0        0        0        0\n",
    "FWM  100                                 0        0        0        0        0\n",
    "  -> 10.0.0.2:0                          0        0        0        0        0\n",
);

const G2_THRESH: &str = concat!(
    "IP Virtual Server version 1.2.1 (size=65536)\n",
    "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n",
    "  -> RemoteAddress:Port\n",
    "TCP  10.0.0.1:1 sh ()\n",
    "TCP  10.0.0.1:7 rr persistent 0 mask 0.0.0.0\n",
    "TCP  10.0.0.1:80 wrr persistent 300 mask 255.255.255.0\n",
    "  -> 10.0.0.2:79                  0          0          0          0         \n",
    "  -> 10.0.0.2:80                  0          0          0          0         \n",
    "  -> 10.0.0.9:80                  0          0          0          0         \n",
    "TCP  10.0.0.1:443 sh (sh-fallback,sh-port)\n",
    "TCP  10.0.0.1:444 mh (mh-fallback,mh-port)\n",
    "TCP  10.0.0.1:445 rr (flag-3)\n",
    "UDP  10.0.0.1:0 rr persistent 7\n",
    "  -> 1.2.3.4:65535                0          0          4294967295 4294967295\n",
    "  -> 1.2.3.5:65535                4294967295 4294967295 0          0         \n",
    "UDP  10.0.0.1:5060 rr persistent 60 ops\n",
    "SCTP 10.0.0.3:80 rr\n",
    "  -> 10.0.1.2:80                  0          0          0          0         \n",
    "FWM  100 dh (flag-1,flag-2,flag-3) persistent 100 mask 255.255.0.0\n",
    "  -> 10.0.0.2:0                   0          0          0          0         \n",
);

const G2_PCONN: &str = concat!(
    "IP Virtual Server version 1.2.1 (size=65536)\n",
    "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n",
    "  -> RemoteAddress:Port\n",
    "TCP  10.0.0.1:1 sh ()\n",
    "TCP  10.0.0.1:7 rr persistent 0 mask 0.0.0.0\n",
    "TCP  10.0.0.1:80 wrr persistent 300 mask 255.255.255.0\n",
    "  -> 10.0.0.2:79                  5         0           0          0         \n",
    "  -> 10.0.0.2:80                  5         0           0          0         \n",
    "  -> 10.0.0.9:80                  5         0           0          0         \n",
    "TCP  10.0.0.1:443 sh (sh-fallback,sh-port)\n",
    "TCP  10.0.0.1:444 mh (mh-fallback,mh-port)\n",
    "TCP  10.0.0.1:445 rr (flag-3)\n",
    "UDP  10.0.0.1:0 rr persistent 7\n",
    "  -> 1.2.3.4:65535                0         4294967295  4294967295 4294967295\n",
    "  -> 1.2.3.5:65535                4294967295 0           0          0         \n",
    "UDP  10.0.0.1:5060 rr persistent 60 ops\n",
    "SCTP 10.0.0.3:80 rr\n",
    "  -> 10.0.1.2:80                  5         0           0          0         \n",
    "FWM  100 dh (flag-1,flag-2,flag-3) persistent 100 mask 255.255.0.0\n",
    "  -> 10.0.0.2:0                   5         0           0          0         \n",
);

const G2_TUN: &str = concat!(
    "IP Virtual Server version 1.2.1 (size=65536)\n",
    "Prot LocalAddress:Port Scheduler Flags\n",
    "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n",
    "TCP  10.0.0.1:1 sh ()\n",
    "TCP  10.0.0.1:7 rr persistent 0 mask 0.0.0.0\n",
    "TCP  10.0.0.1:80 wrr persistent 300 mask 255.255.255.0\n",
    "  -> 10.0.0.2:79                  Masq    n/a           5      0          0         \n",
    "  -> 10.0.0.2:80                  Masq    n/a           5      0          0         \n",
    "  -> 10.0.0.9:80                  Masq    n/a           5      0          0         \n",
    "TCP  10.0.0.1:443 sh (sh-fallback,sh-port)\n",
    "TCP  10.0.0.1:444 mh (mh-fallback,mh-port)\n",
    "TCP  10.0.0.1:445 rr (flag-3)\n",
    "UDP  10.0.0.1:0 rr persistent 7\n",
    "  -> 1.2.3.4:65535                Masq    n/a           0      4294967295 4294967295\n",
    "  -> 1.2.3.5:65535                Masq    n/a           -1     0          0         \n",
    "UDP  10.0.0.1:5060 rr persistent 60 ops\n",
    "SCTP 10.0.0.3:80 rr\n",
    "  -> 10.0.1.2:80                  Masq    n/a           5      0          0         \n",
    "FWM  100 dh (flag-1,flag-2,flag-3) persistent 100 mask 255.255.0.0\n",
    "  -> 10.0.0.2:0                   Local   n/a           5      0          0         \n",
);

const G2_STATS_X: &str = concat!(
    "IP Virtual Server version 1.2.1 (size=65536)\n",
    "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n",
    "  -> RemoteAddress:Port\n",
    "TCP  10.0.0.1:1                          0        0        0        0        0\n",
    "TCP  10.0.0.1:7                          0        0        0        0        0\n",
    "TCP  10.0.0.1:80                         0        0        0        0        0\n",
    "  -> 10.0.0.2:79                         0        0        0        0        0\n",
    "  -> 10.0.0.2:80                         0        0        0        0        0\n",
    "  -> 10.0.0.9:80                         0        0        0        0        0\n",
    "TCP  10.0.0.1:443                        0        0        0        0        0\n",
    "TCP  10.0.0.1:444                        0        0        0        0        0\n",
    "TCP  10.0.0.1:445                        0        0        0        0        0\n",
    "UDP  10.0.0.1:0                          0        0        0        0        0\n",
    "  -> 1.2.3.4:65535                       0        0        0        0        0\n",
    "  -> 1.2.3.5:65535                       0        0        0        0        0\n",
    "UDP  10.0.0.1:5060                       0        0        0        0        0\n",
    "SCTP 10.0.0.3:80                         0        0        0        0        0\n",
    "  -> 10.0.1.2:80                         0        0        0        0        0\n",
    "FWM  100                                 0        0        0        0        0\n",
    "  -> 10.0.0.2:0                          0        0        0        0        0\n",
);

const G2_RATE_X: &str = concat!(
    "IP Virtual Server version 1.2.1 (size=65536)\n",
    "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n",
    "  -> RemoteAddress:Port\n",
    "TCP  10.0.0.1:1                          0        0        0        0        0\n",
    "TCP  10.0.0.1:7                          0        0        0        0        0\n",
    "TCP  10.0.0.1:80                         0        0        0        0        0\n",
    "  -> 10.0.0.2:79                         0        0        0        0        0\n",
    "  -> 10.0.0.2:80                         0        0        0        0        0\n",
    "  -> 10.0.0.9:80                         0        0        0        0        0\n",
    "TCP  10.0.0.1:443                        0        0        0        0        0\n",
    "TCP  10.0.0.1:444                        0        0        0        0        0\n",
    "TCP  10.0.0.1:445                        0        0        0        0        0\n",
    "UDP  10.0.0.1:0                          0        0        0        0        0\n",
    "  -> 1.2.3.4:65535                4294967295 4294967295 4294967295        0        0\n",
    "  -> 1.2.3.5:65535                       0        0        0        0        0\n",
    "UDP  10.0.0.1:5060                       0        0        0        0        0\n",
    "SCTP 10.0.0.3:80                         0        0        0        0        0\n",
    "  -> 10.0.1.2:80                         0        0        0        0        0\n",
    "FWM  100                                 0        0        0        0        0\n",
    "  -> 10.0.0.2:0                          0        0        0        0        0\n",
);

const G2_SAVE: &str = concat!(
    "-A -t 10.0.0.1:1 -s sh -b \n",
    "-A -t 10.0.0.1:7 -s rr -p 0 -M 0.0.0.0\n",
    "-A -t 10.0.0.1:80 -s wrr -p 300 -M 255.255.255.0\n",
    "-a -t 10.0.0.1:80 -r 10.0.0.2:79 -m -w 5\n",
    "-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 5\n",
    "-a -t 10.0.0.1:80 -r 10.0.0.9:80 -m -w 5\n",
    "-A -t 10.0.0.1:443 -s sh -b sh-fallback,sh-port\n",
    "-A -t 10.0.0.1:444 -s mh -b mh-fallback,mh-port\n",
    "-A -t 10.0.0.1:445 -s rr -b flag-3\n",
    "-A -u 10.0.0.1:0 -s rr -p 7\n",
    "-a -u 10.0.0.1:0 -r 1.2.3.4:65535 -m -w 0\n",
    "-a -u 10.0.0.1:0 -r 1.2.3.5:65535 -m -w -1\n",
    "-A -u 10.0.0.1:5060 -s rr -p 60 -o\n",
    "-A --sctp-service 10.0.0.3:80 -s rr\n",
    "-a --sctp-service 10.0.0.3:80 -r 10.0.1.2:80 -m -w 5\n",
    "-A -f 100 -s dh -p 100 -M 255.255.0.0 -b flag-1,flag-2,flag-3\n",
    "-a -f 100 -r 10.0.0.2:0 -g -w 5\n",
);

const G1_NAMES_LIST: &str = concat!(
    "IP Virtual Server version 1.2.1 (size=4096)\n",
    "Prot LocalAddress:Port Scheduler Flags\n",
    "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
    "TCP  vip.example.com:http rr\n",
    "  -> 192.168.10.1:http-alt        Masq    1      3          17        \n",
    "  -> averyveryverylonghostname.ex Tunnel  65535  0          0         \n",
    "TCP  abcdefghijklmnopqrstuvwxyz.e wlc persistent 360\n",
    "UDP  10.0.0.2:domain sh (sh-fallback,sh-port)\n",
    "  -> 192.168.10.3:domain          Route   0      0          4         \n",
    "FWM  5 lc\n",
);

const G1_NAMES_STATS: &str = concat!(
    "IP Virtual Server version 1.2.1 (size=4096)\n",
    "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n",
    "  -> RemoteAddress:Port\n",
    "TCP  vip.example.com:http              100     2000     1500  123456K  987654K\n",
    "  -> 192.168.10.1:http-alt         100000K 99999999  999999K    1000M   99999M\n",
    "  -> averyveryverylonghostname.ex        0        0        0     100G     100T\n",
    "TCP  abcdefghijklmnopqrstuvwxyz.e 99999999  100000K  999999K   99999G     100T\n",
    "UDP  10.0.0.2:domain                     0        0        0        0        0\n",
    "  -> 192.168.10.3:domain                 0        0        0        0        0\n",
    "FWM  5                                   0        0        0        0        0\n",
);

const G1_NAMES_SAVE: &str = concat!(
    "-A -t vip.example.com:http -s rr\n",
    "-a -t vip.example.com:http -r 192.168.10.1:http-alt -m -w 1\n",
    "-a -t vip.example.com:http -r averyveryverylonghostname.example.com:http-alt -i -w 65535 --tun-type ipip\n",
    "-A -t abcdefghijklmnopqrstuvwxyz.example.org:0 -s wlc -p 360\n",
    "-A -u 10.0.0.2:domain -s sh -b sh-fallback,sh-port\n",
    "-a -u 10.0.0.2:domain -r 192.168.10.3:domain -g -w 0\n",
    "-A -f 5 -s lc\n",
);

const G1_SVC_STATS: &str = concat!(
    "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n",
    "  -> RemoteAddress:Port\n",
    "TCP  10.0.0.1:80                       100     2000     1500  123456K  987654K\n",
    "  -> 192.168.10.1:8080             100000K 99999999  999999K    1000M   99999M\n",
    "  -> 192.168.10.2:8080                   0        0        0     100G     100T\n",
);

const G1_SVC_NOSORT: &str = concat!(
    "Prot LocalAddress:Port Scheduler Flags\n",
    "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
    "TCP  10.0.0.1:80 rr\n",
    "  -> 192.168.10.2:8080            Tunnel  65535  0          0         \n",
    "  -> 192.168.10.1:8080            Masq    1      3          17        \n",
);

const G1_NOSORT: &str = concat!(
    "IP Virtual Server version 1.2.1 (size=4096)\n",
    "Prot LocalAddress:Port Scheduler Flags\n",
    "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
    "TCP  10.0.0.1:80 rr\n",
    "  -> 192.168.10.2:8080            Tunnel  65535  0          0         \n",
    "  -> 192.168.10.1:8080            Masq    1      3          17        \n",
    "UDP  10.0.0.2:53 sh (sh-fallback,sh-port)\n",
    "  -> 192.168.10.3:53              Route   0      0          4         \n",
    "TCP  100.0.0.1:0 wlc persistent 360\n",
    "FWM  5 lc\n",
);
