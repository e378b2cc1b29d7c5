//! Tests of the IPVS control state, driven as rvsadm drives it: listings, edits, refusals,
//! restore, connections, trash purging, mark rules, rules files and the socket.

use super::listings::conn_proto_name;
use super::*;
use crate::ipvsadm::args::parse_with;
use crate::ipvsadm::client::{execute, ClientOpts, Outcome};
use crate::ipvsadm::names::NumericNames;
use crate::model::{self, ConnEntry, ListSnapshot, MarkRuleEntry};
use crate::proto::{self, DestRef, Envelope, ServiceConf, ServiceRef};
use rvs_lb::config::{Proto, ServiceId, ServiceKey};
use rvs_lb::NANOS_PER_SEC;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Two workers, capacity 4096 each, connections as given.
struct Fake {
    snap: Mutex<Arc<Snapshot>>,
    published: AtomicUsize,
    cores: Vec<Arc<CoreStats>>,
    conns: Vec<ConnInfo>,
    expired: Mutex<Vec<DestId>>,
}

impl Dataplane for Fake {
    fn current(&self) -> Arc<Snapshot> {
        self.snap.lock().unwrap().clone()
    }
    fn publish(&self, snapshot: Snapshot) {
        *self.snap.lock().unwrap() = Arc::new(snapshot);
        self.published.fetch_add(1, Ordering::SeqCst);
    }
    fn core_stats(&self) -> &[Arc<CoreStats>] {
        &self.cores
    }
    fn conn_tab_size(&self) -> u32 {
        4096 * self.cores.len() as u32
    }
    fn list_conns(&self) -> Result<Vec<ConnInfo>, String> {
        Ok(self.conns.clone())
    }
    fn expire_dest_conns(&self, dest: DestId) {
        self.expired.lock().unwrap().push(dest);
    }
}

fn setup_with(conns: Vec<ConnInfo>) -> (Arc<Fake>, Ipvs) {
    let fake = Arc::new(Fake {
        snap: Mutex::new(Arc::new(Snapshot::empty())),
        published: AtomicUsize::new(0),
        cores: vec![Arc::new(CoreStats::new(0)), Arc::new(CoreStats::new(1))],
        conns,
        expired: Mutex::new(Vec::new()),
    });
    let ipvs = Ipvs::new(fake.clone());
    (fake, ipvs)
}

fn setup() -> (Arc<Fake>, Ipvs) {
    setup_with(Vec::new())
}

/// Sends a request through its JSON wire form, as the socket server would.
fn wire(ipvs: &Ipvs, req: &Request) -> Response {
    let line = serde_json::to_string(&Envelope {
        v: 1,
        req: req.clone(),
    })
    .unwrap();
    let env: Envelope = serde_json::from_str(&line).unwrap();
    // The appliance's handler answers ping itself (liveness), everything else goes to Ipvs.
    let resp = match env.req {
        Request::Ping => Response::ok(serde_json::json!({ "version": "test" })),
        req => ipvs.handle(req),
    };
    serde_json::from_str(&serde_json::to_string(&resp).unwrap()).unwrap()
}

/// Runs an rvsadm command line (numeric names) against `ipvs`, exactly as the binary does.
fn rvsadm_full(ipvs: &Ipvs, line: &str, opts: ClientOpts, stdin: &str) -> Outcome {
    let argv: Vec<String> = std::iter::once("rvsadm")
        .chain(line.split_whitespace())
        .map(String::from)
        .collect();
    let cmd = match parse_with(&argv, &NumericNames) {
        Ok(c) => c,
        Err(e) => return Outcome::fail(&e.message, e.exit_code),
    };
    let mut call = |r: &Request| -> Result<Response, Outcome> { Ok(wire(ipvs, r)) };
    let mut input = || Ok(stdin.to_string());
    execute(cmd, opts, &mut call, &NumericNames, &mut input)
}

fn rvsadm(ipvs: &Ipvs, line: &str) -> Outcome {
    rvsadm_full(ipvs, line, ClientOpts::default(), "")
}

/// stdout of a command that must succeed.
fn ok(ipvs: &Ipvs, line: &str) -> String {
    let o = rvsadm(ipvs, line);
    assert_eq!((o.code, o.stderr.as_str()), (0, ""), "{line}");
    o.stdout
}

fn err(ipvs: &Ipvs, line: &str) -> (String, i32) {
    let o = rvsadm(ipvs, line);
    assert_eq!(o.stdout, "", "{line}");
    (o.stderr, o.code)
}

const SETUP: &[&str] = &[
    "-A -t 192.0.2.10:80 -s rr",
    "-a -t 192.0.2.10:80 -r 10.0.0.2:8080 -m -w 3",
    "-a -t 192.0.2.10:80 -r 10.0.0.1:8080 -m",
    "-A -u 192.0.2.10:53 -s sh -b sh-port",
    "-a -u 192.0.2.10:53 -r 10.0.0.3 -m -w 0 -x 100 -y 10",
    "-A -t 192.0.2.11:0 -p 600 -M 255.255.255.0",
    "-A -f 7 -s wrr -p",
    "-a -f 7 -r 10.0.0.4 -m",
];

fn configured() -> (Arc<Fake>, Ipvs) {
    let (fake, ipvs) = setup();
    for l in SETUP {
        ok(&ipvs, l);
    }
    (fake, ipvs)
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn golden_list_numeric_with_live_counts() {
    let (fake, ipvs) = configured();
    assert_eq!(fake.published.load(Ordering::SeqCst), SETUP.len());
    // Ids in creation order: dests 10.0.0.2 = 0, 10.0.0.1 = 1, 10.0.0.3 = 2, 10.0.0.4 = 3.
    let [c0, c1] = [&fake.cores[0], &fake.cores[1]];
    c0.dest(DestId(1)).unwrap().activeconns.set(2);
    c1.dest(DestId(1)).unwrap().activeconns.set(1);
    c1.dest(DestId(1)).unwrap().inactconns.set(4);
    c0.dest(DestId(0)).unwrap().inactconns.set(5);
    c0.dest(DestId(2)).unwrap().inactconns.set(3);
    c1.dest(DestId(2)).unwrap().inactconns.set(4);
    c1.dest(DestId(2)).unwrap().persistconns.set(2);
    let expected = "\
IP Virtual Server version 1.2.1 (size=8192)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  192.0.2.10:80 rr
  -> 10.0.0.1:8080                Masq    1      3          4         
  -> 10.0.0.2:8080                Masq    3      0          5         
TCP  192.0.2.11:0 wlc persistent 600 mask 255.255.255.0
UDP  192.0.2.10:53 sh (sh-port)
  -> 10.0.0.3:53                  Masq    0      0          7         
FWM  7 wrr persistent 360
  -> 10.0.0.4:0                   Masq    1      0          0         
";
    assert_eq!(ok(&ipvs, "-L -n"), expected);
    assert_eq!(ok(&ipvs, "-ln"), expected);

    // --nosort keeps configuration order: services as added, real servers newest first
    // (the kernel's list order).
    let nosort = ok(&ipvs, "-L -n --nosort");
    let firsts: Vec<&str> = nosort
        .lines()
        .skip(3)
        .map(|l| l.split_whitespace().nth(1).unwrap_or(""))
        .collect();
    assert_eq!(
        firsts,
        [
            "192.0.2.10:80",
            "10.0.0.1:8080",
            "10.0.0.2:8080",
            "192.0.2.10:53",
            "10.0.0.3:53",
            "192.0.2.11:0",
            "7",
            "10.0.0.4:0"
        ]
    );

    assert_eq!(
        ok(&ipvs, "-L -n --thresholds -u 192.0.2.10:53"),
        "\
Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn 
  -> RemoteAddress:Port
UDP  192.0.2.10:53 sh (sh-port)
  -> 10.0.0.3:53                  100        10         0          7         
"
    );
    assert_eq!(
        ok(&ipvs, "-L -n --persistent-conn -u 192.0.2.10:53"),
        "\
Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn 
  -> RemoteAddress:Port
UDP  192.0.2.10:53 sh (sh-port)
  -> 10.0.0.3:53                  0         2           0          7         
"
    );
    assert_eq!(
        err(&ipvs, "-L -n -t 192.0.2.10:81"),
        ("No such service\n".to_string(), 1)
    );
    assert_eq!(
        ok(&ipvs, "-L --timeout"),
        "Timeout (tcp tcpfin udp): 900 120 300\n"
    );
    ok(&ipvs, "--set 3600 0 60");
    assert_eq!(
        ok(&ipvs, "-L --timeout"),
        "Timeout (tcp tcpfin udp): 3600 120 60\n"
    );
    assert_eq!(ok(&ipvs, "-L --daemon"), "");
}

/// `n` connections of one 100-byte packet in and one 1000-byte packet out each.
fn traffic(c: &CoreStats, svc: u16, dest: u16, n: u64) {
    let d = c.dest(DestId(dest)).unwrap();
    for t in [c.service(ServiceId(svc)).unwrap(), &d.traffic, &c.total] {
        t.conns.add(n);
        t.inpkts.add(n);
        t.inbytes.add(100 * n);
        t.outpkts.add(n);
        t.outbytes.add(1000 * n);
    }
}

#[test]
fn stats_sum_over_cores_and_zero_keeps_baselines() {
    let (fake, ipvs) = configured();
    let [c0, c1] = [&fake.cores[0], &fake.cores[1]];
    traffic(c0, 0, 1, 3);
    traffic(c1, 0, 1, 4);
    traffic(c1, 1, 2, 5);
    let stats = "\
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  192.0.2.10:80                       7        7        7      700     7000
  -> 10.0.0.1:8080                       7        7        7      700     7000
  -> 10.0.0.2:8080                       0        0        0        0        0
";
    assert_eq!(ok(&ipvs, "-L -n --stats -t 192.0.2.10:80"), stats);

    // Zeroing another service leaves this one alone.
    ok(&ipvs, "-Z -u 192.0.2.10:53");
    assert_eq!(ok(&ipvs, "-L -n --stats -t 192.0.2.10:80"), stats);
    let snap: ListSnapshot =
        serde_json::from_str(&rvsadm_full(&ipvs, "-L -n -u 192.0.2.10:53", json(), "").stdout)
            .unwrap();
    assert_eq!(snap.services[0].stats, model::Stats::default());
    assert_eq!(snap.services[0].dests[0].stats.conns, 0);

    ok(&ipvs, "-Z");
    traffic(c0, 0, 0, 2);
    assert_eq!(
        ok(&ipvs, "-L -n --stats -t 192.0.2.10:80"),
        "\
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  192.0.2.10:80                       2        2        2      200     2000
  -> 10.0.0.1:8080                       0        0        0        0        0
  -> 10.0.0.2:8080                       2        2        2      200     2000
"
    );
    let snap: ListSnapshot =
        serde_json::from_str(&rvsadm_full(&ipvs, "-L -n", json(), "").stdout).unwrap();
    assert_eq!(
        snap.total.unwrap().stats,
        model::Stats {
            conns: 2,
            inpkts: 2,
            outpkts: 2,
            inbytes: 200,
            outbytes: 2000
        }
    );
    // Counters never go back: no publication for -Z.
    assert_eq!(fake.published.load(Ordering::SeqCst), SETUP.len());
    assert_eq!(
        err(&ipvs, "-Z -t 192.0.2.99:80"),
        ("No such service\n".to_string(), 255)
    );
}

fn json() -> ClientOpts {
    ClientOpts {
        json: true,
        ..ClientOpts::default()
    }
}

#[test]
fn rates_come_from_the_estimator_every_two_seconds() {
    let (fake, ipvs) = configured();
    let s = NANOS_PER_SEC;
    ipvs.tick(10 * s);
    // 2000 connections and 200000 bytes in over 2 s: the first step is a quarter of the rate.
    traffic(&fake.cores[0], 0, 1, 2000);
    ipvs.tick(11 * s); // not due yet
    ipvs.tick(12 * s);
    let out = ok(&ipvs, "-L -n --rate -t 192.0.2.10:80");
    assert_eq!(
        out,
        "\
Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS
  -> RemoteAddress:Port
TCP  192.0.2.10:80                     250      250      250    25000   250000
  -> 10.0.0.1:8080                     250      250      250    25000   250000
  -> 10.0.0.2:8080                       0        0        0        0        0
"
    );
    // -Z zeroes the rates too.
    ok(&ipvs, "-Z -t 192.0.2.10:80");
    let snap: ListSnapshot =
        serde_json::from_str(&rvsadm_full(&ipvs, "-L -n -t 192.0.2.10:80", json(), "").stdout)
            .unwrap();
    assert_eq!(snap.services[0].rates, model::Rates::default());
    assert_eq!(snap.services[0].dests[0].rates, model::Rates::default());
}

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

#[test]
fn connections_listing() {
    let conn = |proto, cport, state: &'static str, exp, tpl| ConnInfo {
        proto,
        caddr: ip("198.51.100.7"),
        cport,
        vaddr: ip("192.0.2.10"),
        vport: 80,
        daddr: ip("10.0.0.1"),
        dport: 8080,
        state,
        expires_secs: exp,
        is_template: tpl,
        n_control: 0,
        dest: DestId(1),
        svc: ServiceId(0),
    };
    let (_, ipvs) = setup_with(vec![
        conn(6, 40000, "ESTABLISHED", 899, false),
        conn(17, 5353, "UDP", 61, false),
        conn(6, 0, "NONE", 360, true),
    ]);
    assert_eq!(
        ok(&ipvs, "-L -n -c"),
        "\
IPVS connection entries
pro expire state       source             virtual            destination
TCP 14:59  ESTABLISHED 198.51.100.7:40000 192.0.2.10:80      10.0.0.1:8080
UDP 01:01  UDP         198.51.100.7:5353  192.0.2.10:80      10.0.0.1:8080
TCP 06:00  NONE        198.51.100.7:0     192.0.2.10:80      10.0.0.1:8080
"
    );
    let conns: Vec<ConnEntry> =
        serde_json::from_str(&rvsadm_full(&ipvs, "-L -c", json(), "").stdout).unwrap();
    assert_eq!(conns.len(), 3);
    assert_eq!(conns[1].proto, "UDP");
    assert_eq!(conns[1].expires_secs, 61);
    assert_eq!(conn_proto_name(0), "IP");
}

#[test]
fn expire_conns_for_live_and_removed_servers() {
    let (fake, ipvs) = configured();
    let opts = ClientOpts {
        expire_conns: true,
        ..ClientOpts::default()
    };
    let o = rvsadm_full(&ipvs, "-d -t 192.0.2.10:80 -r 10.0.0.1:8080", opts, "");
    assert_eq!(o, Outcome::default());
    assert!(ipvs
        .core()
        .config()
        .service(&ServiceKey::tcp(ip("192.0.2.10"), 80))
        .unwrap()
        .dest(ip("10.0.0.1"), 8080)
        .is_none());
    // Already removed: only the connections are ended.
    let o = rvsadm_full(&ipvs, "-d -t 192.0.2.10:80 -r 10.0.0.1:8080", opts, "");
    assert_eq!(o, Outcome::default());
    // After -D the service's servers are in the trash too.
    ok(&ipvs, "-D -f 7");
    let o = rvsadm_full(&ipvs, "-d -f 7 -r 10.0.0.4", opts, "");
    assert_eq!(o, Outcome::default());
    assert_eq!(
        *fake.expired.lock().unwrap(),
        [DestId(1), DestId(1), DestId(3)]
    );
    let o = rvsadm_full(&ipvs, "-d -t 192.0.2.10:80 -r 10.0.0.9", opts, "");
    assert_eq!((o.stderr.as_str(), o.code), ("No such destination\n", 255));
    let o = rvsadm_full(&ipvs, "-d -t 192.0.2.99:80 -r 10.0.0.9", opts, "");
    assert_eq!((o.stderr.as_str(), o.code), ("Service not defined\n", 255));
    let o = rvsadm_full(&ipvs, "-C", opts, "");
    assert_eq!(
        (o.stderr.as_str(), o.code),
        ("--expire-conns goes with -d (delete-server) only\n", 2)
    );
}

#[test]
fn trash_is_purged_when_no_worker_can_use_it() {
    let (fake, ipvs) = configured();
    ok(&ipvs, "-d -t 192.0.2.10:80 -r 10.0.0.1:8080");
    let published = fake.published.load(Ordering::SeqCst);
    let gen = ipvs.core().config().generation();
    let s = NANOS_PER_SEC;
    // Workers have not acknowledged the configuration without the server.
    ipvs.tick(2 * s);
    assert_eq!(ipvs.core().config().trash().len(), 1);
    for c in &fake.cores {
        c.acked_generation.set(gen);
    }
    // A worker still has a connection bound to it.
    fake.cores[1].dest(DestId(1)).unwrap().refcnt.set(1);
    ipvs.tick(4 * s);
    assert_eq!(ipvs.core().config().trash().len(), 1);
    assert_eq!(fake.published.load(Ordering::SeqCst), published);
    fake.cores[1].dest(DestId(1)).unwrap().refcnt.set(0);
    ipvs.tick(5 * s); // not due
    assert_eq!(ipvs.core().config().trash().len(), 1);
    ipvs.tick(6 * s);
    assert!(ipvs.core().config().trash().is_empty());
    assert_eq!(fake.published.load(Ordering::SeqCst), published + 1);
    assert!(fake.current().config().trash().is_empty());
    // The freed id is reused for a new server.
    ok(&ipvs, "-a -t 192.0.2.10:80 -r 10.0.0.9 -m");
    let c = ipvs.core().config().clone();
    let svc = c.service(&ServiceKey::tcp(ip("192.0.2.10"), 80)).unwrap();
    assert_eq!(svc.dest(ip("10.0.0.9"), 80).unwrap().id, DestId(1));
}

#[test]
fn mark_rules_and_fwmark_services() {
    let (fake, ipvs) = configured();
    ok(&ipvs, "--add-mark -f 7 -t 192.0.2.10:8000-8010");
    ok(&ipvs, "--add-mark -u 192.0.2.10:53 -f 9");
    ok(&ipvs, "--add-mark -f 7 -t 192.0.2.12");
    assert_eq!(
        err(&ipvs, "--add-mark -f 7 -t 192.0.2.12"),
        ("Mark rule already exists\n".to_string(), 255)
    );
    let listed = ok(&ipvs, "--list-marks");
    assert_eq!(
        listed,
        "\
--add-mark -f 7 -t 192.0.2.10:8000-8010
--add-mark -f 9 -u 192.0.2.10:53
--add-mark -f 7 -t 192.0.2.12
"
    );
    // The published snapshot sends marked traffic to the fwmark service.
    let snap = fake.current();
    let fw = snap
        .services()
        .iter()
        .position(|s| s.key == ServiceKey::Fwmark(7))
        .unwrap();
    assert_eq!(
        snap.lookup(Proto::Tcp, ip("192.0.2.10"), 8005),
        rvs_lb::config::SvcLookup::Found(fw)
    );
    ok(&ipvs, "--del-mark -f 9 -u 192.0.2.10:53");
    // Rules restore through -R (and rules files) like services.
    let (_, other) = setup();
    let o = rvsadm_full(&other, "-R", ClientOpts::default(), &listed);
    assert_eq!(o, Outcome::default());
    assert_eq!(ok(&other, "--list-marks"), listed);
    let rules: Vec<MarkRuleEntry> =
        serde_json::from_str(&rvsadm_full(&ipvs, "--list-marks", json(), "").stdout).unwrap();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[1].port_hi, u16::MAX);
}

#[test]
fn rules_file_is_applied_atomically() {
    let (fake, ipvs) = setup();
    let dir = std::env::temp_dir().join(format!("rvs-ipvs-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.rules");
    std::fs::write(
            &good,
            "# rvs rules\n--add-mark -f 5 -t 192.0.2.10:443\n-A -f 5 -s rr\n-a -f 5 -r 10.0.0.1 -m\n--set 600 0 0\n",
        )
        .unwrap();
    ipvs.load_rules_file(&good).unwrap();
    assert_eq!(fake.published.load(Ordering::SeqCst), 1);
    assert_eq!(
        ok(&ipvs, "-S -n"),
        "-A -f 5 -s rr\n-a -f 5 -r 10.0.0.1:0 -m -w 1\n"
    );
    assert_eq!(
        ok(&ipvs, "-L --timeout"),
        "Timeout (tcp tcpfin udp): 600 120 300\n"
    );
    let bad = dir.join("bad.rules");
    std::fs::write(
        &bad,
        "-A -t 192.0.2.10:80\n-a -t 192.0.2.10:80 -r 10.0.0.1 -m -w 99999\n",
    )
    .unwrap();
    assert_eq!(
        ipvs.load_rules_file(&bad),
        Err(format!(
            "rules file {}: line 2: Numerical result out of range",
            bad.display()
        ))
    );
    let unparsable = dir.join("unparsable.rules");
    std::fs::write(
        &unparsable,
        "-A -t 192.0.2.10:80\n-A -t 192.0.2.10:81 -x 5\n",
    )
    .unwrap();
    assert_eq!(
        ipvs.load_rules_file(&unparsable),
        Err(format!(
            "rules file {}: line 2: Illegal 'u-threshold' option with the 'add-service' command",
            unparsable.display()
        ))
    );
    let missing = dir.join("missing.rules");
    assert!(ipvs
        .load_rules_file(&missing)
        .unwrap_err()
        .starts_with(&format!("rules file {}: ", missing.display())));
    assert_eq!(fake.published.load(Ordering::SeqCst), 1);
    assert_eq!(
        ok(&ipvs, "-S -n"),
        "-A -f 5 -s rr\n-a -f 5 -r 10.0.0.1:0 -m -w 1\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

struct Served(Ipvs);

impl crate::server::Handler for Served {
    fn handle(&self, req: Request) -> Response {
        self.0.handle(req)
    }
}

#[test]
fn over_the_socket_a_large_restore_and_listing() {
    use crate::server::{bind, call};
    let (fake, ipvs) = setup();
    let dir = std::env::temp_dir().join(format!("rvs-ipvs-sock-{}", std::process::id()));
    let path = dir.join("rvs.sock");
    let group = nix::unistd::Group::from_gid(nix::unistd::getgid())
        .ok()
        .flatten()
        .map(|g| g.name)
        .unwrap_or_else(|| "root".into());
    let srv = bind(&path, &group).unwrap().serve(Arc::new(Served(ipvs)));
    // 2000 services with two servers each: a restore request over 1 MiB.
    let mut rules = String::new();
    for i in 0..2000u32 {
        let vip = Ipv4Addr::from(0xc000_0200 + i / 100);
        let port = 1000 + i % 100;
        rules.push_str(&format!("-A -t {vip}:{port} -s rr\n"));
        for r in 1..=2 {
            rules.push_str(&format!(
                "-a -t {vip}:{port} -r 10.1.{r}.{} -m\n",
                i % 250 + 1
            ));
        }
    }
    let mut client = |req: &Request| -> Result<Response, Outcome> {
        call(&path, req).map_err(|e| Outcome::fail(&e.to_string(), 1))
    };
    let cmd = parse_with(&["rvsadm".to_string(), "-R".to_string()], &NumericNames).unwrap();
    let mut input = || Ok(rules.clone());
    let o = execute(
        cmd,
        ClientOpts::default(),
        &mut client,
        &NumericNames,
        &mut input,
    );
    assert_eq!(o, Outcome::default());
    assert_eq!(fake.published.load(Ordering::SeqCst), 1);
    assert_eq!(fake.current().services().len(), 2000);
    let cmd = parse_with(&["rvsadm", "-S", "-n"].map(String::from), &NumericNames).unwrap();
    let saved = execute(
        cmd,
        ClientOpts::default(),
        &mut client,
        &NumericNames,
        &mut input,
    );
    assert_eq!(saved.code, 0);
    assert_eq!(saved.stdout.lines().count(), 6000);
    assert!(saved.stdout.starts_with(
        "-A -t 192.0.2.0:1000 -s rr\n-a -t 192.0.2.0:1000 -r 10.1.1.1:1000 -m -w 1\n"
    ));
    drop(srv);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn json_requests_decode_and_reject_unknown_fields() {
    let (fake, ipvs) = setup();
    let lines = [
        r#"{"v":1,"cmd":"add_service","service":{"proto":"tcp","addr":"192.0.2.10","port":80,"sched":"rr"}}"#,
        r#"{"v":1,"cmd":"add_dest","service":{"proto":"tcp","addr":"192.0.2.10","port":80},"dest":{"addr":"10.0.0.1","port":8080,"weight":2}}"#,
        r#"{"v":1,"cmd":"add_service","service":{"proto":"fwmark","fwmark":3,"persistent":300,"netmask":"255.255.255.0"}}"#,
        r#"{"v":1,"cmd":"set_timeouts","timeouts":{"tcp":0,"tcpfin":30,"udp":0}}"#,
        r#"{"v":1,"cmd":"zero"}"#,
        r#"{"v":1,"cmd":"zero","service":{"proto":"fwmark","fwmark":3}}"#,
    ];
    for l in lines {
        let env: Envelope = serde_json::from_str(l).unwrap();
        let r = ipvs.handle(env.req);
        assert!(r.ok, "{l}: {r:?}");
    }
    assert_eq!(
        ok(&ipvs, "-S -n"),
        "\
-A -t 192.0.2.10:80 -s rr
-a -t 192.0.2.10:80 -r 10.0.0.1:8080 -m -w 2
-A -f 3 -s wlc -p 300 -M 255.255.255.0
"
    );
    assert_eq!(fake.published.load(Ordering::SeqCst), 4);
    for bad in [
        r#"{"v":1,"cmd":"add_service","service":{"proto":"tcp","addr":"192.0.2.10","port":80,"schedular":"rr"}}"#,
        r#"{"v":1,"cmd":"add_dest","service":{"proto":"tcp","addr":"192.0.2.10","port":80},"dest":{"addr":"10.0.0.1","weigth":2}}"#,
        r#"{"v":1,"cmd":"add_dest","service":{"proto":"tcp","addr":"192.0.2.10","port":80},"dest":{"addr":"10.0.0.1","weight":-1}}"#,
        r#"{"v":1,"cmd":"zero","sevice":{"proto":"fwmark","fwmark":3}}"#,
        r#"{"v":1,"cmd":"add_service"}"#,
    ] {
        assert!(serde_json::from_str::<Envelope>(bad).is_err(), "{bad}");
    }
    // Replies: a listing's data is a ListSnapshot; an error carries text and exit code.
    let r: serde_json::Value = serde_json::to_value(ipvs.handle(Request::GetTimeouts)).unwrap();
    assert_eq!(
        r,
        serde_json::json!({"v":1,"ok":true,"data":{"tcp":900,"tcpfin":30,"udp":300}})
    );
    let r = serde_json::to_string(&ipvs.handle(Request::List {
        service: Some(ServiceRef {
            proto: model::ServiceProto::Udp,
            addr: ip("192.0.2.10"),
            port: 80,
            fwmark: 0,
        }),
    }))
    .unwrap();
    assert_eq!(
        r,
        r#"{"v":1,"ok":false,"error":"No such service","exit_code":1}"#
    );
    // Requests serialise to the documented shape.
    let s = serde_json::to_string(&Envelope {
        v: 1,
        req: Request::DeleteDest {
            service: ServiceRef {
                proto: model::ServiceProto::Fwmark,
                addr: Ipv4Addr::UNSPECIFIED,
                port: 0,
                fwmark: 3,
            },
            dest: DestRef {
                addr: ip("10.0.0.1"),
                port: 0,
            },
        },
    })
    .unwrap();
    assert_eq!(
        s,
        r#"{"v":1,"cmd":"delete_dest","service":{"proto":"fwmark","addr":"0.0.0.0","port":0,"fwmark":3},"dest":{"addr":"10.0.0.1","port":0}}"#
    );
}
