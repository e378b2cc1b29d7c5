//! Control state tests: listings, stats, zeroing and rate estimates.

use super::*;

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
