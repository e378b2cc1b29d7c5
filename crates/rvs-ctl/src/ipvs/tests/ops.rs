//! Control state tests: operations, refused requests, save and restore.

use super::*;

#[test]
fn refused_operations_change_nothing() {
    let (fake, ipvs) = configured();
    let before = ipvs.core().config().clone();
    let cases: &[(&str, &str, i32)] = &[
            ("-A -t 192.0.2.10:80", "Service already exists", 255),
            // The kernel finds the duplicate before it looks for the scheduler.
            ("-A -t 192.0.2.10:80 -s nosuch", "Service already exists", 255),
            ("-E -t 192.0.2.10:81 -s rr", "No such service", 255),
            ("-D -t 192.0.2.10:81", "No such service", 255),
            ("-D -f 8", "No such service", 255),
            ("-A -t 192.0.2.12:80 -s nosuch", "Scheduler or persistence engine not found", 255),
            ("-E -t 192.0.2.10:80 -s random", "Scheduler or persistence engine not found", 255),
            ("-A -t 192.0.2.12:80 --pe sip", "Scheduler or persistence engine not found", 255),
            ("-A -t 192.0.2.12:0", "Zero port specified for non-persistent service", 2),
            ("-A -u 192.0.2.12:53 -o", OPS_UNSUPPORTED, 255),
            ("-A -t 192.0.2.12:80 -o", "One-Packet Scheduling is only for UDP virtual services", 2),
            ("-A --sctp-service 192.0.2.12:80", SCTP_UNSUPPORTED, 255),
            ("-A -t 192.0.2.12:80 -s sh -b mh-port", "incompatible scheduler flag `mh-port'", 2),
            ("-a -t 192.0.2.10:81 -r 10.0.0.9 -m", "Service not defined", 255),
            ("-a -t 192.0.2.10:80 -r 10.0.0.1:8080 -m", "Destination already exists", 255),
            ("-a -t 192.0.2.10:80 -r 10.0.0.9 -m -w 65536", "Numerical result out of range", 255),
            ("-a -t 192.0.2.10:80 -r 10.0.0.9 -m -x 5 -y 6", "Numerical result out of range", 255),
            ("-a -t 192.0.2.10:80 -r 10.0.0.9 -m -y 1", "Numerical result out of range", 255),
            ("-a -t 192.0.2.10:80 -r 10.0.0.9 -m -w -1", "illegal weight specified", 2),
            ("-a -t 192.0.2.10:80 -r 10.0.0.9 -m -x x", "illegal u_threshold specified", 2),
            ("-a -t 192.0.2.10:80 -r 224.0.0.1 -m", "Invalid operation.  Possibly wrong module version, address not unicast, ...", 255),
            ("-a -t 192.0.2.10:80 -r 10.0.0.9", FWD_UNSUPPORTED, 255),
            ("-a -t 192.0.2.10:80 -r 10.0.0.9 -g", FWD_UNSUPPORTED, 255),
            ("-a -t 192.0.2.10:80 -r 10.0.0.9 -i", FWD_UNSUPPORTED, 255),
            ("-e -t 192.0.2.10:80 -r 10.0.0.1:8080 -w 2", FWD_UNSUPPORTED, 255),
            ("-e -t 192.0.2.10:80 -r 10.0.0.9:8080 -m", "No such destination", 255),
            ("-e -t 192.0.2.10:80 -r 10.0.0.1:8080 -m -w 70000", "Numerical result out of range", 255),
            ("-d -t 192.0.2.10:80 -r 10.0.0.9:8080", "No such destination", 255),
            ("-d -t 192.0.2.10:81 -r 10.0.0.1:8080", "Service not defined", 255),
            ("-a -t 192.0.2.10:80 -m", "You need to supply the 'real-server' option for the 'add-server' command", 2),
            ("-A -t 192.0.2.12:80 -r 10.0.0.1", "Illegal 'real-server' option with the 'add-service' command", 2),
            ("-L -c -t 192.0.2.10:80", "The option 'service-address' conflicts with the 'connection' option in the 'list' command", 2),
            ("--set 10 20", "--set option requires 3 timeout values", 2),
            ("--set 2678401 0 0", "invalid timeout value `2678401' specified", 2),
            ("-A -t 192.0.2.12:80 -p 2678401", "invalid timeout value `2678401' specified", 2),
            ("--start-daemon master", proto::NO_SYNC_DAEMON, 255),
            ("--stop-daemon backup", proto::NO_SYNC_DAEMON, 255),
            ("--add-mark -f 7 -t 192.0.2.10:9-8", "illegal mark rule address[:port[-port]] specified", 2),
            ("--add-mark -t 192.0.2.10:80", "You need to supply the 'fwmark-service' option for the 'add-mark' command", 2),
            ("--del-mark -f 7 -t 192.0.2.10:80", "No such mark rule", 255),
            ("-Z -t 192.0.2.10:81", "No such service", 255),
        ];
    for (line, msg, code) in cases {
        assert_eq!(err(&ipvs, line), (format!("{msg}\n"), *code), "{line}");
    }
    // The same checks over raw JSON, where the parser's checks do not exist.
    let svc = |proto, port| ServiceConf {
        proto,
        addr: ip("192.0.2.12"),
        port,
        fwmark: 0,
        sched: "wlc".into(),
        flags: 0,
        persistent: None,
        netmask: Ipv4Addr::BROADCAST,
        pe: None,
        ops: false,
    };
    let json_cases: Vec<(Request, &str, i32)> = vec![
        (
            Request::AddService {
                service: svc(model::ServiceProto::Tcp, 0),
            },
            "Zero port specified for non-persistent service",
            2,
        ),
        (
            Request::AddService {
                service: ServiceConf {
                    flags: 0x40,
                    ..svc(model::ServiceProto::Tcp, 80)
                },
            },
            "invalid scheduler flags 0x40: only 0x08, 0x10 and 0x20 exist",
            255,
        ),
        (
            Request::AddService {
                service: ServiceConf {
                    persistent: Some(MAX_TIMEOUT_FOR_TEST + 1),
                    ..svc(model::ServiceProto::Tcp, 80)
                },
            },
            "Numerical result out of range",
            255,
        ),
        (
            Request::SetTimeouts {
                timeouts: model::TimeoutTriple {
                    tcp: MAX_TIMEOUT_FOR_TEST + 1,
                    tcpfin: 0,
                    udp: 0,
                },
            },
            "Numerical result out of range",
            255,
        ),
        (
            Request::AddService {
                service: ServiceConf {
                    fwmark: 3,
                    ..svc(model::ServiceProto::Tcp, 80)
                },
            },
            "fwmark is only valid with proto \"fwmark\"",
            255,
        ),
        (
            Request::AddService {
                service: svc(model::ServiceProto::Fwmark, 0),
            },
            "Invalid operation.  Possibly wrong module version, address not unicast, ...",
            255,
        ),
        (
            Request::ExpireDest {
                service: ServiceRef {
                    proto: model::ServiceProto::Tcp,
                    addr: ip("192.0.2.10"),
                    port: 80,
                    fwmark: 0,
                },
                dest: DestRef {
                    addr: ip("10.0.0.77"),
                    port: 0,
                },
            },
            "No such destination",
            255,
        ),
        (
            Request::AddMarkRule {
                rule: MarkRuleEntry {
                    mark: 1,
                    proto: model::ServiceProto::Sctp,
                    vaddr: ip("192.0.2.10"),
                    port_lo: 1,
                    port_hi: 2,
                },
            },
            SCTP_UNSUPPORTED,
            255,
        ),
    ];
    for (req, msg, code) in json_cases {
        let r = wire(&ipvs, &req);
        assert_eq!(
            (r.ok, r.error.as_deref(), r.exit_code),
            (false, Some(msg), Some(code)),
            "{req:?}"
        );
    }
    let r = ipvs.handle(Request::Ping);
    assert_eq!(
        (r.error.as_deref(), r.exit_code),
        (Some("'ping' is not an IPVS request"), Some(255))
    );
    assert_eq!(*ipvs.core().config(), before);
    assert_eq!(*fake.current().config(), before);
    assert_eq!(fake.published.load(Ordering::SeqCst), SETUP.len());
    assert!(fake.expired.lock().unwrap().is_empty());
}

const MAX_TIMEOUT_FOR_TEST: u32 = rvs_lb::config::MAX_TIMEOUT;

#[test]
fn edits_apply_and_publish() {
    let (fake, ipvs) = configured();
    ok(&ipvs, "-E -t 192.0.2.10:80 -s wlc -p 60");
    ok(
        &ipvs,
        "-e -t 192.0.2.10:80 -r 10.0.0.2:8080 -m -w 7 -x 10 -y 2",
    );
    ok(&ipvs, "-d -t 192.0.2.10:80 -r 10.0.0.1:8080");
    ok(&ipvs, "-D -u 192.0.2.10:53");
    ok(&ipvs, "-A -u 192.0.2.10:53 -s rr");
    // The re-added server comes back from the trash with its id.
    ok(&ipvs, "-a -u 192.0.2.10:53 -r 10.0.0.3:53 -m");
    assert_eq!(
        ok(&ipvs, "-S -n"),
        "\
-A -t 192.0.2.10:80 -s wlc -p 60
-a -t 192.0.2.10:80 -r 10.0.0.2:8080 -m -w 7
-A -t 192.0.2.11:0 -s wlc -p 600 -M 255.255.255.0
-A -u 192.0.2.10:53 -s rr
-a -u 192.0.2.10:53 -r 10.0.0.3:53 -m -w 1
-A -f 7 -s wrr -p 360
-a -f 7 -r 10.0.0.4:0 -m -w 1
"
    );
    let c = ipvs.core().config().clone();
    let udp = c.service(&ServiceKey::udp(ip("192.0.2.10"), 53)).unwrap();
    assert_eq!(udp.dests[0].id, DestId(2));
    assert_eq!(c.trash().len(), 1);
    assert_eq!(fake.published.load(Ordering::SeqCst), SETUP.len() + 6);
    assert_eq!(*fake.current().config(), c);
    ok(&ipvs, "-C");
    assert_eq!(
        ok(&ipvs, "-L -n"),
        "\
IP Virtual Server version 1.2.1 (size=8192)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
"
    );
    assert_eq!(ok(&ipvs, "-S"), "");
}

#[test]
fn save_restore_round_trip() {
    let (_, ipvs) = configured();
    // Thresholds are not saved (as ipvsadm); drop them so the states compare equal.
    ok(&ipvs, "-e -u 192.0.2.10:53 -r 10.0.0.3 -m -w 0");
    let saved = ok(&ipvs, "-S -n");
    assert_eq!(
        saved,
        "\
-A -t 192.0.2.10:80 -s rr
-a -t 192.0.2.10:80 -r 10.0.0.1:8080 -m -w 1
-a -t 192.0.2.10:80 -r 10.0.0.2:8080 -m -w 3
-A -t 192.0.2.11:0 -s wlc -p 600 -M 255.255.255.0
-A -u 192.0.2.10:53 -s sh -b sh-port
-a -u 192.0.2.10:53 -r 10.0.0.3:53 -m -w 0
-A -f 7 -s wrr -p 360
-a -f 7 -r 10.0.0.4:0 -m -w 1
"
    );
    let (fake2, other) = setup();
    let o = rvsadm_full(&other, "-R", ClientOpts::default(), &saved);
    assert_eq!((o.code, o.stdout.as_str(), o.stderr.as_str()), (0, "", ""));
    // One restore, one publication.
    assert_eq!(fake2.published.load(Ordering::SeqCst), 1);
    assert_eq!(ok(&other, "-S -n"), saved);
    let a = ipvs.core().list(None, &[], 0).unwrap();
    let mut b = other.core().list(None, &[], 0).unwrap();
    // Same services, same servers, same parameters (order: as -S sorted them).
    let mut a_sorted = a.services.clone();
    a_sorted.sort_by(crate::ipvsadm::format::cmp_services);
    for s in a_sorted.iter_mut().chain(b.services.iter_mut()) {
        s.dests.sort_by(crate::ipvsadm::format::cmp_dests);
    }
    assert_eq!(a_sorted, b.services);
    assert_eq!(ok(&other, "-L -n"), ok(&ipvs, "-L -n"));
}

#[test]
fn restore_is_all_or_nothing_and_names_the_line() {
    let (fake, ipvs) = configured();
    let before = ipvs.core().config().clone();
    let cases: &[(&str, &str, i32)] = &[
            (
                "-A -t 192.0.2.20:80 -s rr\n-a -t 192.0.2.20:80 -r 10.0.1.1 -m\n\n# comment\n-a -t 192.0.2.20:80 -r 10.0.1.2 -m -w 70000\n",
                "line 5: Numerical result out of range",
                255,
            ),
            (
                "-A -t 192.0.2.20:80 -s rr\n-A -t 192.0.2.10:80 -s rr\n",
                "line 2: Service already exists",
                255,
            ),
            (
                "-C\n-A -t 192.0.2.20:80 -s rr\n-A -t 192.0.2.20:80 -s wrr\n",
                "line 3: Service already exists",
                255,
            ),
            (
                "-A -t 192.0.2.20:80 -s rr\n-a -t 192.0.2.20:80 -r 10.0.1.1 -g\n",
                "line 2: forwarding method not supported: rvs only does masquerading (-m)",
                255,
            ),
            (
                "-A -t 192.0.2.20:80 -s rr\n-a -t 192.0.2.20:80\n",
                "line 2: You need to supply the 'real-server' option for the 'add-server' command",
                2,
            ),
            (
                "-A -t 192.0.2.20:80 -s rr\n--start-daemon master\n",
                "line 2: Connection synchronisation is not supported: rvs runs no sync daemon",
                255,
            ),
            (
                "-A -t 192.0.2.20:80 -s rr\n-L -n\n",
                "line 2: '-L' is not allowed in restore input",
                2,
            ),
            (
                "-Z -t 192.0.2.30:80\n",
                "line 1: No such service",
                255,
            ),
        ];
    for (input, msg, code) in cases {
        let o = rvsadm_full(&ipvs, "-R", ClientOpts::default(), input);
        assert_eq!(
            (o.stderr.as_str(), o.code),
            (format!("{msg}\n").as_str(), *code),
            "{input}"
        );
        assert_eq!(*ipvs.core().config(), before, "{input}");
    }
    assert_eq!(fake.published.load(Ordering::SeqCst), SETUP.len());

    // Over JSON: explicit line numbers, or positions when absent; no nesting.
    let bad = Request::AddService {
        service: ServiceConf {
            proto: model::ServiceProto::Tcp,
            addr: ip("192.0.2.10"),
            port: 80,
            fwmark: 0,
            sched: "rr".into(),
            flags: 0,
            persistent: None,
            netmask: Ipv4Addr::BROADCAST,
            pe: None,
            ops: false,
        },
    };
    let r = wire(
        &ipvs,
        &Request::Restore {
            ops: vec![Request::Zero { service: None }, bad.clone()],
            lines: Some(vec![10, 20]),
        },
    );
    assert_eq!(r.error.as_deref(), Some("line 20: Service already exists"));
    let r = wire(
        &ipvs,
        &Request::Restore {
            ops: vec![bad.clone(), Request::ListConns],
            lines: None,
        },
    );
    assert_eq!(r.error.as_deref(), Some("line 1: Service already exists"));
    let r = wire(
        &ipvs,
        &Request::Restore {
            ops: vec![Request::Clear, Request::ListConns],
            lines: None,
        },
    );
    assert_eq!(
        (r.error.as_deref(), r.exit_code),
        (
            Some("line 2: 'list_conns' is not allowed in restore input"),
            Some(2)
        )
    );
    assert_eq!(*ipvs.core().config(), before);
    // A good restore with a -Z and a clear in the middle applies once.
    let o = rvsadm_full(
        &ipvs,
        "-R",
        ClientOpts::default(),
        "ipvsadm -C\n-A -u 192.0.2.20:53 -s rr\n-Z\n-a -u 192.0.2.20:53 -r 10.0.1.1 -m\n",
    );
    assert_eq!(o, Outcome::default());
    assert_eq!(fake.published.load(Ordering::SeqCst), SETUP.len() + 1);
    assert_eq!(
        ok(&ipvs, "-S -n"),
        "-A -u 192.0.2.20:53 -s rr\n-a -u 192.0.2.20:53 -r 10.0.1.1:53 -m -w 1\n"
    );
}
