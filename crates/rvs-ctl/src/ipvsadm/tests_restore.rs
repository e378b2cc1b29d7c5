//! Restore parsing, and the round trip model -> `-S` text -> restore -> model.

use super::args::*;
use super::format::save;
use super::names::NumericNames;
use super::restore::*;
use super::tests_args::FakeNames;
use crate::model::*;
use proptest::prelude::*;
use std::net::Ipv4Addr;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn restore(input: &str) -> Result<Vec<(usize, Command)>, RestoreError> {
    parse_restore_with(input, "rvsadm", &NumericNames)
}

fn key(addr: &str, port: u16) -> ServiceKey {
    ServiceKey {
        proto: ServiceProto::Tcp,
        addr: ip(addr),
        port,
        fwmark: 0,
    }
}

#[test]
fn lines_tokens_comments_and_numbers() {
    let input = "# saved by hand\r\n\
                 -A -t 10.0.0.1:80 -s rr\r\n\
                 \n\
                 \t  \n\
                 ipvsadm -a -t 10.0.0.1:80 -r 1.1.1.1 -m\n\
                 ipvsadm\n\
                 -A   -t\t10.0.0.2:80   ipvsadm  -s ipvsadm wrr\n\
                 rvsadm -C\n\
                 #-A -t 10.0.0.3:80\n\
                 -Z";
    let got = restore(input).unwrap();
    let rr = ServiceSpec {
        key: key("10.0.0.1", 80),
        sched: "rr".to_string(),
        flags: 0,
        persistent: None,
        netmask: Ipv4Addr::BROADCAST,
        pe: None,
        ops: false,
    };
    let wrr = ServiceSpec {
        key: key("10.0.0.2", 80),
        sched: "wrr".to_string(),
        ..rr.clone()
    };
    let d = DestSpec {
        addr: ip("1.1.1.1"),
        port: 80,
        fwd: Fwd::Masq,
        weight: 1,
        u_threshold: 0,
        l_threshold: 0,
        tunnel: None,
    };
    assert_eq!(
        got,
        vec![
            (2, Command::AddService(rr)),
            (5, Command::AddDest(key("10.0.0.1", 80), d)),
            (7, Command::AddService(wrr)),
            (8, Command::Flush),
            (10, Command::Zero(None)),
        ]
    );
}

fn fails(input: &str, line: usize, message: &str, exit_code: i32) {
    assert_eq!(
        restore(input),
        Err(RestoreError {
            line,
            error: ParseError {
                message: message.to_string(),
                exit_code,
            },
        }),
        "for {input:?}"
    );
}

#[test]
fn first_bad_line_fails_everything() {
    fails(
        "-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 1.1.1.2 -m -w 70000000000\n-A -t 10.0.0.4:80\n",
        2,
        "illegal weight specified",
        2,
    );
    fails(
        "-A -t 10.0.0.1:80 -s rr # trailing\n",
        1,
        "unexpected argument #",
        2,
    );
    fails(
        "\n\n-A\n",
        3,
        "You need to supply the 'service-address' option for the 'add-service' command",
        2,
    );
    fails(
        "-A -t \"10.0.0.1:80\"\n",
        1,
        "illegal virtual server address[:port] specified",
        2,
    );
    fails(
        "-A -t 10.0.0.1:80\n-R\n",
        2,
        "Try `rvsadm -h' or 'rvsadm --help' for more information.",
        255,
    );
    fails("-L -n\n", 1, "'-L' is not allowed in restore input", 2);
    fails("-Sn\n", 1, "'-Sn' is not allowed in restore input", 2);
    fails("-v\n", 1, "'-v' is not allowed in restore input", 2);
    fails(
        "--bogus\n",
        1,
        "Try `rvsadm -h' or 'rvsadm --help' for more information.",
        255,
    );
    fails("-L --bogus\n", 1, "--bogus: unknown option", 255);
    let e = restore("-A -t 10.0.0.1:80\n-A -t 10.0.0.1\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 2: Zero port specified for non-persistent service"
    );
    assert_eq!(restore(""), Ok(vec![]));
    assert_eq!(restore("\n# only a comment\n"), Ok(vec![]));
}

/// Applies add commands to build the model they describe (what the control plane would hold).
fn apply(cmds: &[(usize, Command)]) -> Vec<ServiceEntry> {
    let mut out: Vec<ServiceEntry> = Vec::new();
    for (_, c) in cmds {
        match c {
            Command::AddService(s) => out.push(ServiceEntry {
                proto: s.key.proto,
                addr: s.key.addr,
                port: s.key.port,
                fwmark: s.key.fwmark,
                sched: s.sched.clone(),
                flags: s.flags,
                persistent: s.persistent,
                netmask: s.netmask,
                pe_name: s.pe.clone(),
                ops: s.ops,
                stats: Stats::default(),
                rates: Rates::default(),
                dests: Vec::new(),
            }),
            Command::AddDest(k, d) => {
                let svc = out
                    .iter_mut()
                    .find(|s| {
                        s.proto == k.proto
                            && s.addr == k.addr
                            && s.port == k.port
                            && s.fwmark == k.fwmark
                    })
                    .expect("service added before its servers");
                svc.dests.push(DestEntry {
                    addr: d.addr,
                    port: d.port,
                    fwd: d.fwd,
                    weight: d.weight,
                    u_threshold: d.u_threshold,
                    l_threshold: d.l_threshold,
                    activeconns: 0,
                    inactconns: 0,
                    persistconns: 0,
                    stats: Stats::default(),
                    rates: Rates::default(),
                    tunnel: d.tunnel,
                });
            }
            other => panic!("unexpected command {other:?}"),
        }
    }
    out
}

/// What survives `-S`: no counters, no thresholds, Local saved as -g, sorted.
fn normalize(mut v: Vec<ServiceEntry>) -> Vec<ServiceEntry> {
    for s in &mut v {
        s.stats = Stats::default();
        s.rates = Rates::default();
        for d in &mut s.dests {
            d.u_threshold = 0;
            d.l_threshold = 0;
            d.activeconns = 0;
            d.inactconns = 0;
            d.persistconns = 0;
            d.stats = Stats::default();
            d.rates = Rates::default();
            if d.fwd == Fwd::Local {
                d.fwd = Fwd::Route;
            }
            if d.fwd == Fwd::Tunnel && d.tunnel.is_none() {
                d.tunnel = Some(TunnelInfo {
                    tun_type: TunType::Ipip,
                    port: 0,
                    csum: TunCsum::NoCsum,
                });
            }
        }
        s.dests.sort_by(super::format::cmp_dests);
    }
    v.sort_by(super::format::cmp_services);
    v
}

fn round_trip(services: &[ServiceEntry], numeric: bool, names: &dyn super::names::Names) {
    let text = save(services, numeric, names);
    let cmds = parse_restore_with(&text, "rvsadm", names)
        .unwrap_or_else(|e| panic!("restore failed: {e}\n{text}"));
    assert_eq!(
        normalize(apply(&cmds)),
        normalize(services.to_vec()),
        "through:\n{text}"
    );
}

fn entry(proto: ServiceProto, addr: &str, port: u16, sched: &str) -> ServiceEntry {
    ServiceEntry {
        proto,
        addr: ip(addr),
        port,
        fwmark: 0,
        sched: sched.to_string(),
        flags: 0,
        persistent: None,
        netmask: Ipv4Addr::BROADCAST,
        pe_name: None,
        ops: false,
        stats: Stats::default(),
        rates: Rates::default(),
        dests: Vec::new(),
    }
}

fn dest_entry(addr: &str, port: u16, fwd: Fwd, weight: i32) -> DestEntry {
    DestEntry {
        addr: ip(addr),
        port,
        fwd,
        weight,
        u_threshold: 7,
        l_threshold: 3,
        activeconns: 1,
        inactconns: 2,
        persistconns: 3,
        stats: Stats::default(),
        rates: Rates::default(),
        tunnel: None,
    }
}

#[test]
fn round_trip_fixed_models() {
    let mut a = entry(ServiceProto::Tcp, "10.0.0.1", 80, "wrr");
    a.persistent = Some(300);
    a.netmask = ip("255.255.255.0");
    a.dests = vec![
        dest_entry("192.168.10.1", 8080, Fwd::Masq, 0),
        dest_entry("192.168.10.7", 80, Fwd::Route, 65535),
        dest_entry("192.168.10.3", 80, Fwd::Local, 5),
        dest_entry("192.168.10.4", 80, Fwd::Tunnel, 2147483647),
    ];
    let mut b = entry(ServiceProto::Udp, "10.0.0.1", 53, "sh");
    b.flags = SVC_F_SCHED1 | SVC_F_SCHED2;
    b.ops = true;
    let mut c = entry(ServiceProto::Fwmark, "0.0.0.0", 0, "mh");
    c.fwmark = 2147483647;
    c.flags = SVC_F_SCHED2;
    c.persistent = Some(2678400);
    c.pe_name = Some("sip".to_string());
    c.dests = vec![dest_entry("192.168.10.5", 0, Fwd::Masq, 1)];
    let mut d = entry(ServiceProto::Sctp, "10.0.0.9", 0, "rr");
    d.persistent = Some(1);
    d.flags = SVC_F_SCHED3;
    let mut g = dest_entry("192.168.10.6", 0, Fwd::Tunnel, 1);
    g.tunnel = Some(TunnelInfo {
        tun_type: TunType::Gue,
        port: 6080,
        csum: TunCsum::RemCsum,
    });
    d.dests = vec![g];
    let services = vec![a, b, c, d];
    round_trip(&services, true, &NumericNames);
    // Names out and back in: vip.example.com <-> 10.0.0.1, http <-> 80, domain <-> 53.
    round_trip(&services, false, &FakeNames::new());
}

fn arb_service() -> impl Strategy<Value = ServiceEntry> {
    let proto = prop_oneof![
        Just(ServiceProto::Tcp),
        Just(ServiceProto::Udp),
        Just(ServiceProto::Sctp),
        Just(ServiceProto::Fwmark)
    ];
    (
        proto,
        any::<u32>(),
        any::<u16>(),
        1u32..=i32::MAX as u32,
        0usize..rvs_lb::sched::NAMES.len(),
        0u32..8,
        proptest::option::of(1u32..=MAX_TIMEOUT),
        any::<u32>(),
        any::<bool>(),
        any::<bool>(),
        proptest::collection::vec(
            (
                any::<u32>(),
                any::<u16>(),
                0u8..4,
                0i32..=i32::MAX,
                0u8..3,
                1u16..=65535,
                0u8..3,
            ),
            0..5,
        ),
    )
        .prop_map(
            |(proto, addr, port, mark, si, fl, pers, mask, ops, pe, dests)| {
                let sched = rvs_lb::sched::NAMES[si].to_string();
                let fwmark = proto == ServiceProto::Fwmark;
                // sh/mh never print flag-3, so it cannot survive -S for them.
                let mut flags = fl << 3;
                if sched == "sh" || sched == "mh" {
                    flags &= SVC_F_SCHED1 | SVC_F_SCHED2;
                }
                let port = if fwmark {
                    0
                } else if pers.is_none() && port == 0 {
                    1
                } else {
                    port
                };
                let mut s = ServiceEntry {
                    proto,
                    addr: if fwmark {
                        Ipv4Addr::UNSPECIFIED
                    } else {
                        Ipv4Addr::from(addr)
                    },
                    port,
                    fwmark: if fwmark { mark } else { 0 },
                    sched,
                    flags,
                    persistent: pers,
                    // The mask is only saved with persistence.
                    netmask: if pers.is_some() {
                        Ipv4Addr::from(mask)
                    } else {
                        Ipv4Addr::BROADCAST
                    },
                    pe_name: pe.then(|| "sip".to_string()),
                    ops: ops && matches!(proto, ServiceProto::Udp | ServiceProto::Fwmark),
                    stats: Stats::default(),
                    rates: Rates::default(),
                    dests: Vec::new(),
                };
                for (da, dp, f, w, tt, tport, cs) in dests {
                    let fwd = [Fwd::Masq, Fwd::Route, Fwd::Tunnel, Fwd::Local][usize::from(f)];
                    // -g and -i force the vport on address services.
                    let dport = if !fwmark && fwd != Fwd::Masq {
                        s.port
                    } else {
                        dp
                    };
                    let daddr = Ipv4Addr::from(da);
                    if s.dests.iter().any(|d| d.addr == daddr && d.port == dport) {
                        continue;
                    }
                    let csum = [TunCsum::NoCsum, TunCsum::Csum, TunCsum::RemCsum][usize::from(cs)];
                    let tunnel = (fwd == Fwd::Tunnel).then(|| match tt {
                        0 => TunnelInfo {
                            tun_type: TunType::Ipip,
                            port: 0,
                            csum: TunCsum::NoCsum,
                        },
                        1 => TunnelInfo {
                            tun_type: TunType::Gue,
                            port: tport,
                            csum,
                        },
                        _ => TunnelInfo {
                            tun_type: TunType::Gre,
                            port: 0,
                            csum: if csum == TunCsum::RemCsum {
                                TunCsum::Csum
                            } else {
                                csum
                            },
                        },
                    });
                    s.dests.push(DestEntry {
                        addr: daddr,
                        port: dport,
                        fwd,
                        weight: w,
                        u_threshold: 0,
                        l_threshold: 0,
                        activeconns: 0,
                        inactconns: 0,
                        persistconns: 0,
                        stats: Stats::default(),
                        rates: Rates::default(),
                        tunnel,
                    });
                }
                s
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn save_then_restore_reproduces_the_model(
        services in proptest::collection::vec(arb_service(), 0..6)
    ) {
        let mut uniq: Vec<ServiceEntry> = Vec::new();
        for s in services {
            if !uniq.iter().any(|u| {
                u.proto == s.proto && u.addr == s.addr && u.port == s.port && u.fwmark == s.fwmark
            }) {
                uniq.push(s);
            }
        }
        round_trip(&uniq, true, &NumericNames);
    }

    /// Arbitrary argument vectors never panic and always give an exit code ipvsadm uses.
    #[test]
    fn parse_never_panics(args in proptest::collection::vec(
        prop_oneof![
            "-[A-Za-z0-9=:,.]{0,6}",
            "--[a-z-]{0,16}(=[a-z0-9.:]{0,8})?",
            "[0-9.:\\[\\]a-z]{0,20}",
            Just("-p".to_string()),
            Just("--".to_string()),
        ],
        0..8,
    )) {
        let mut argv = vec!["rvsadm".to_string()];
        argv.extend(args);
        if let Err(e) = parse_with(&argv, &NumericNames) {
            prop_assert!(e.exit_code == 2 || e.exit_code == 255);
            prop_assert!(!e.message.is_empty());
        }
    }

    #[test]
    fn restore_never_panics(input in "[-A-Za-z0-9 .:#\\t\\r\\n]{0,200}") {
        let _ = restore(&input);
    }
}
