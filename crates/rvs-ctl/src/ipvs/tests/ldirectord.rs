//! Debian's ldirectord (1:4.12.0, `/usr/sbin/ldirectord`) driving rvsadm: the command lines it
//! builds are accepted, and its own parsers of `-L -n` and `-L -n --thresholds` (regular
//! expressions copied verbatim from `ld_read_ipvsadm` and `ld_read_ipvsadm_thresholds`) read
//! back exactly what was configured, with no line they do not recognise. Its decisions (add or
//! edit, quiesce or skip, restore or skip) depend on that reading. tests/lab_ldirectord.rs runs
//! the real ldirectord against the lab.

use super::*;
use regex::Regex;
use std::collections::BTreeMap;

/// ldirectord's service lines, tried in this order (`persistent ... mask`, `persistent`, plain).
const SERVICE: [&str; 3] = [
    r"^(\w+)\s+(\d+\.\d+\.\d+\.\d+\:\d+|\[[0-9A-Fa-f:]+\]:\d+|\d+)( IPv6)?\s+(\w+)\s+persistent\s+(\d+)\s+mask\s+(.*)",
    r"^(\w+)\s+(\d+\.\d+\.\d+\.\d+\:\d+|\[[0-9A-Fa-f:]+\]:\d+|\d+)( IPv6)?\s+(\w+)\s+persistent\s+(\d+)",
    r"^(\w+)\s+(\d+\.\d+\.\d+\.\d+\:\d+|\[[0-9A-Fa-f:]+\]:\d+|\d+)( IPv6)?\s+(\w+)",
];
/// A real server in `-L -n`: address, forward, weight.
const REAL: &str = r"^  ->\s+(\d+\.\d+\.\d+\.\d+\:\d+|\[[0-9A-Fa-f:]+\]:\d+)\s+(\w+)\s+(\d+)";
/// A real server in `-L -n --thresholds`: address, upper, lower threshold.
const REAL_THRESHOLDS: &str =
    r"^  ->\s+(\d+\.\d+\.\d+\.\d+\:\d+|\[[0-9A-Fa-f:]+\]:\d+)\s+(\d+)\s+(\d+)\s+(\d+)";

#[derive(Debug, Default, PartialEq)]
struct Svc {
    scheduler: String,
    persistent: Option<String>,
    netmask: Option<String>,
    /// address -> (forward as ldirectord names it, weight, u-threshold, l-threshold)
    real: BTreeMap<String, (String, String, String, String)>,
}

/// ldirectord's reading of the listings: `"VIP:PORT tcp"` / `"7 fwm"` -> service.
fn ldirectord_reads(ipvs: &Ipvs) -> BTreeMap<String, Svc> {
    let service: Vec<Regex> = SERVICE.iter().map(|r| Regex::new(r).unwrap()).collect();
    let key = |c: &regex::Captures| {
        format!(
            "{} {}{}",
            &c[2],
            c[1].to_lowercase(),
            if c.get(3).is_some() { "6" } else { "" }
        )
    };
    let mut out = BTreeMap::new();
    let list = ok(ipvs, "-L -n");
    let real = Regex::new(REAL).unwrap();
    let mut cur: Option<String> = None;
    // "Skip the first three lines".
    for line in list.lines().skip(3) {
        if let Some((i, c)) = service
            .iter()
            .enumerate()
            .find_map(|(i, r)| r.captures(line).map(|c| (i, c)))
        {
            let k = key(&c);
            out.insert(
                k.clone(),
                Svc {
                    scheduler: c[4].to_string(),
                    persistent: (i < 2).then(|| c[5].to_string()),
                    netmask: (i == 0).then(|| c[6].to_string()),
                    ..Svc::default()
                },
            );
            cur = Some(k);
        } else if let Some(c) = real.captures(line) {
            let fwd = match &c[2] {
                "Route" => "gate",
                "Tunnel" => "ipip",
                "Masq" => "masq",
                other => panic!("forward {other} unknown to ldirectord: {line:?}"),
            };
            let svc = out
                .get_mut(cur.as_ref().expect("real before service"))
                .unwrap();
            svc.real.insert(
                c[1].to_string(),
                (fwd.into(), c[3].to_string(), String::new(), String::new()),
            );
        } else {
            panic!("ldirectord: \"Unknown line read from ipvsadm\": {line:?}\n{list}");
        }
    }
    let thr = ok(ipvs, "-L -n --thresholds");
    let real = Regex::new(REAL_THRESHOLDS).unwrap();
    cur = None;
    for line in thr.lines().skip(3) {
        if let Some(c) = service.iter().find_map(|r| r.captures(line)) {
            cur = Some(key(&c));
        } else if let Some(c) = real.captures(line) {
            let r = out
                .get_mut(cur.as_ref().expect("real before service"))
                .and_then(|s| s.real.get_mut(&c[1]))
                .expect("a real server of -L -n");
            r.2 = c[2].to_string();
            r.3 = c[3].to_string();
        } else {
            panic!("ldirectord (thresholds): unknown line {line:?}\n{thr}");
        }
    }
    out
}

fn real<'a>(
    m: &'a BTreeMap<String, Svc>,
    svc: &str,
    rs: &str,
) -> Option<&'a (String, String, String, String)> {
    m.get(svc)?.real.get(rs)
}

fn r(f: &str, w: &str, u: &str, l: &str) -> (String, String, String, String) {
    (f.into(), w.into(), u.into(), l.into())
}

/// The command lines of ld_start, service checks and ld_stop for an ldirectord.cf with a
/// persistent TCP service with a netmask, a UDP `sh` service with sched-flags and a fwmark
/// service; strings as ldirectord builds them (`$$v{flags}` ends with a space).
#[test]
fn ldirectord_command_lines_and_its_reading_of_the_listings() {
    let (_fake, ipvs) = setup();
    let (t, u, f) = ("192.0.2.10:80 tcp", "192.0.2.10:53 udp", "7 fwm");
    assert!(ldirectord_reads(&ipvs).is_empty());

    // ld_start: services it does not see are added (-A), the others edited (-E).
    ok(&ipvs, "-A -t 192.0.2.10:80 -s wrr -p 300 -M 255.255.255.0 ");
    ok(&ipvs, "-A -u 192.0.2.10:53 -s sh -b sh-port ");
    ok(&ipvs, "-A -f 7 -s rr ");
    let m = ldirectord_reads(&ipvs);
    assert_eq!(
        (&m[t].scheduler, &m[t].persistent, &m[t].netmask),
        (
            &"wrr".into(),
            &Some("300".into()),
            &Some("255.255.255.0".into())
        )
    );
    assert_eq!((m[u].scheduler.as_str(), &m[u].persistent), ("sh", &None));
    assert_eq!(m[f].scheduler, "rr");
    ok(&ipvs, "-E -t 192.0.2.10:80 -s wrr -p 300 -M 255.255.255.0 ");
    ok(&ipvs, "-E -f 7 -s rr ");

    // A real server it does not see yet: up (_restore_service adds it, thresholds first), then
    // down until checked (_remove_service, quiescent: weight 0).
    for (v, rs, w, x, y) in [
        ("-t 192.0.2.10:80", "10.0.0.1:8080", "2", "0", "0"),
        ("-t 192.0.2.10:80", "10.0.0.2:8080", "1", "0", "0"),
        ("-u 192.0.2.10:53", "10.0.0.3:53", "1", "100", "10"),
        ("-f 7", "10.0.0.4:80", "1", "0", "0"),
    ] {
        ok(&ipvs, &format!("-a {v} -x {x} -y {y} -r {rs} -m -w {w}"));
        ok(&ipvs, &format!("-e {v} -r {rs} -m -w 0"));
    }
    let m = ldirectord_reads(&ipvs);
    assert_eq!(
        real(&m, t, "10.0.0.1:8080"),
        Some(&r("masq", "0", "0", "0"))
    );
    // As in the kernel, -e sets every field: the quiesce line has no -x/-y, so the thresholds
    // are 0 now. The restore below compares them too and sets them again.
    assert_eq!(real(&m, u, "10.0.0.3:53"), Some(&r("masq", "0", "0", "0")));
    assert_eq!(real(&m, f, "10.0.0.4:80"), Some(&r("masq", "0", "0", "0")));
    // ...and quiescing again is skipped: it reads weight 0 and forward -m.

    // Checks pass: restored (-e, since it is listed) with the configured weight and thresholds.
    ok(
        &ipvs,
        "-e -t 192.0.2.10:80 -x 0 -y 0 -r 10.0.0.1:8080 -m -w 2",
    );
    ok(
        &ipvs,
        "-e -u 192.0.2.10:53 -x 100 -y 10 -r 10.0.0.3:53 -m -w 1",
    );
    ok(&ipvs, "-e -f 7 -x 0 -y 0 -r 10.0.0.4:80 -m -w 1");
    let m = ldirectord_reads(&ipvs);
    // It reads back what it set, so the next restore is skipped (weight, thresholds, forward).
    assert_eq!(
        real(&m, t, "10.0.0.1:8080"),
        Some(&r("masq", "2", "0", "0"))
    );
    assert_eq!(
        real(&m, t, "10.0.0.2:8080"),
        Some(&r("masq", "0", "0", "0"))
    );
    assert_eq!(
        real(&m, u, "10.0.0.3:53"),
        Some(&r("masq", "1", "100", "10"))
    );
    assert_eq!(real(&m, f, "10.0.0.4:80"), Some(&r("masq", "1", "0", "0")));

    // quiescent=no: a failed real server is deleted; ld_stop (cleanstop=yes) purges the rest.
    ok(&ipvs, "-d -t 192.0.2.10:80 -r 10.0.0.2:8080");
    assert_eq!(real(&ldirectord_reads(&ipvs), t, "10.0.0.2:8080"), None);
    ok(&ipvs, "-d -t 192.0.2.10:80 -r 10.0.0.1:8080");
    ok(&ipvs, "-D -t 192.0.2.10:80");
    ok(&ipvs, "-d -u 192.0.2.10:53 -r 10.0.0.3:53");
    ok(&ipvs, "-D -u 192.0.2.10:53");
    ok(&ipvs, "-D -f 7");
    assert!(ldirectord_reads(&ipvs).is_empty());
}

/// What rvs refuses of what ldirectord can be configured to send: a plain error, which
/// ldirectord logs ("system(...) failed") and carries on.
#[test]
fn ldirectord_options_rvs_refuses() {
    let (_fake, ipvs) = setup();
    ok(&ipvs, "-A -t 192.0.2.10:80 -s rr ");
    for (line, msg) in [
        // ops=yes on a UDP virtual.
        ("-A -u 192.0.2.10:53 -o -s rr ", "One-Packet Scheduling"),
        // A real server with "gate" or "ipip" (e.g. a fallback=127.0.0.1:80 gate).
        (
            "-a -t 192.0.2.10:80 -x 0 -y 0 -r 10.0.0.1:80 -g -w 1",
            "forwarding method not supported",
        ),
        (
            "-a -t 192.0.2.10:80 -x 0 -y 0 -r 10.0.0.1:80 -i -w 1",
            "forwarding method not supported",
        ),
        // An IPv6 fwmark virtual.
        ("-A -f 8 -6 -s rr ", "address family"),
    ] {
        let o = rvsadm(&ipvs, line);
        assert!(
            o.code != 0 && o.stderr.contains(msg),
            "{line}: {} {:?}",
            o.code,
            o.stderr
        );
    }
}
