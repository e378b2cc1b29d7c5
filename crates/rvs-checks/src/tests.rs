//! Accepted configurations, defaults, lexing, includes, the keepalived cross-check, and a
//! proptest that no input panics.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use proptest::prelude::*;

use crate::*;

pub const LAB: &str = r#"
! The lab's example.
global_defs {
    router_id rvs_lab
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        10.0.0.13
    }
}
virtual_server 10.0.0.13 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 192.168.8.14 80 {
        weight 1
        HTTP_GET {
            url {
                path /
                status_code 200
            }
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
        TCP_CHECK {
            connect_timeout 2
        }
    }
    real_server 192.168.8.15 80 {   # second backend
        MISC_CHECK {
            misc_path "/usr/local/bin/check backend 15"
            misc_dynamic
        }
    }
}
"#;

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rvs-checks-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn lab_example() {
    let c = parse_str(LAB, "keepalived.conf").unwrap();
    let kws: Vec<_> = c
        .ignored
        .iter()
        .map(|i| (i.keyword.as_str(), i.at.line))
        .collect();
    assert_eq!(kws, [("global_defs", 3), ("vrrp_instance", 6)]);
    assert_eq!(c.virtual_servers.len(), 1);
    let vs = &c.virtual_servers[0];
    assert_eq!(
        vs.addr,
        VsAddr::Ip(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 13), 80))
    );
    assert_eq!(vs.lb_algo, "rr");
    assert_eq!(vs.protocol, Proto::Tcp);
    assert_eq!(vs.delay_loop, Duration::from_secs(1));
    assert_eq!(vs.real_servers.len(), 2);
    let r14 = &vs.real_servers[0];
    assert_eq!((r14.addr, r14.port), (Ipv4Addr::new(192, 168, 8, 14), 80));
    assert_eq!(r14.checkers.len(), 2);
    let http = &r14.checkers[0];
    let CheckKind::Http(h) = &http.kind else {
        panic!("{http:?}")
    };
    assert!(!h.tls);
    assert_eq!(h.urls[0].path, "/");
    assert_eq!(h.urls[0].status_codes, [(200, 200)]);
    assert_eq!(http.common.connect_timeout, Duration::from_secs(1));
    assert_eq!(http.common.retry, 1);
    assert_eq!(http.common.delay_before_retry, Duration::from_secs(1));
    assert_eq!(http.common.connect_ip, Ipv4Addr::new(192, 168, 8, 14));
    assert_eq!(http.common.connect_port, 80);
    let tcp = &r14.checkers[1];
    assert_eq!(tcp.kind, CheckKind::Tcp);
    assert_eq!(tcp.common.connect_timeout, Duration::from_secs(2));
    // Inherited delay_loop, and warmup defaults to it.
    assert_eq!(tcp.common.delay_loop, Duration::from_secs(1));
    assert_eq!(tcp.common.warmup, Duration::from_secs(1));
    let misc = &vs.real_servers[1].checkers[0];
    let CheckKind::Misc(m) = &misc.kind else {
        panic!("{misc:?}")
    };
    assert_eq!(m.misc_path, "/usr/local/bin/check backend 15");
    assert!(m.misc_dynamic);
    assert_eq!(misc.common.retry, 0);
    assert_eq!(misc.at.line, 36);
}

#[test]
fn defaults_when_omitted() {
    let c = parse_str(
        "virtual_server 10.0.0.1 80 {\n real_server 10.1.0.1 8080 {\n HTTP_GET {\n url {\n path /h\n }\n }\n DNS_CHECK {\n }\n }\n real_server 10.1.0.2 8080\n}\n",
        "d.conf",
    )
    .unwrap();
    let vs = &c.virtual_servers[0];
    assert_eq!(vs.lb_algo, "wlc");
    assert_eq!(vs.protocol, Proto::Tcp);
    assert_eq!(vs.lb_kind, LbKind::Nat);
    assert_eq!(vs.delay_loop, Duration::from_secs(60));
    assert_eq!(vs.connect_timeout, Duration::from_secs(5));
    assert_eq!((vs.quorum, vs.hysteresis, vs.weight), (1, 0, 1));
    assert_eq!(vs.persistence_timeout, None);
    assert!(!vs.alpha && !vs.omega && !vs.inhibit_on_failure);
    let rs = &vs.real_servers[0];
    assert_eq!(rs.weight, 1);
    let http = &rs.checkers[0];
    let CheckKind::Http(h) = &http.kind else {
        panic!()
    };
    assert_eq!(h.urls[0].status_codes, [DEFAULT_STATUS_CODES]);
    assert_eq!(http.common.retry, 1);
    assert_eq!(http.common.delay_before_retry, Duration::from_secs(3));
    assert_eq!(http.common.connect_timeout, Duration::from_secs(5));
    assert_eq!(http.common.warmup, Duration::from_secs(60));
    let dns = &rs.checkers[1];
    assert_eq!(
        dns.kind,
        CheckKind::Dns(DnsCheck {
            qtype: "SOA".into(),
            name: String::new()
        })
    );
    assert_eq!(dns.common.retry, 3);
    assert_eq!(dns.common.delay_before_retry, Duration::from_secs(60));
    // A real_server without a block: no checker.
    assert!(vs.real_servers[1].checkers.is_empty());
}

#[test]
fn inheritance_vs_rs_checker() {
    let c = parse_str(
        "virtual_server 10.0.0.1 80 {\n retry 4\n weight 7\n inhibit_on_failure\n connect_timeout 2.5\n real_server 10.1.0.1 80 {\n delay_before_retry 0.25\n TCP_CHECK {\n }\n TCP_CHECK { retry 0 }\n }\n persistence_granularity 255.255.255.0\n}\n",
        "i.conf",
    )
    .unwrap();
    let vs = &c.virtual_servers[0];
    assert_eq!(vs.persistence_timeout, Some(360));
    let rs = &vs.real_servers[0];
    assert_eq!(rs.weight, 7);
    assert!(rs.inhibit_on_failure);
    let a = &rs.checkers[0].common;
    assert_eq!(a.retry, 4);
    assert_eq!(a.delay_before_retry, Duration::from_millis(250));
    assert_eq!(a.connect_timeout, Duration::from_millis(2500));
    assert_eq!(rs.checkers[1].common.retry, 0);
}

#[test]
fn vs_options() {
    let c = parse_str(
        r#"virtual_server_group G { 10.0.0.1-10 80
 10.0.1.0/30 443
 fwmark 7 }
virtual_server group G { lvs_sched sh
 sh-port
 flag-3
 persistence_timeout
 quorum 2
 hysteresis 1
 quorum_up "/bin/echo up now"
 sorry_server 10.9.9.9 80
 sorry_server_inhibit
 alpha
 omega
 protocol udp
 real_server 10.1.0.1 80 { UDP_CHECK { payload 0a0B
 require_reply } }
}
virtual_server fwmark 12 { real_server 10.1.0.1 80 { SSL_GET { url { path /x
 digest 0123456789abcdef0123456789ABCDEF
 status_code 200-299 301 }
 nb_get_retry 2 } } }
"#,
        "o.conf",
    )
    .unwrap();
    let g = &c.groups[0];
    assert_eq!(
        g.entries,
        [
            VsgEntry::Range {
                first: Ipv4Addr::new(10, 0, 0, 1),
                last: Ipv4Addr::new(10, 0, 0, 10),
                port: 80
            },
            VsgEntry::Range {
                first: Ipv4Addr::new(10, 0, 1, 0),
                last: Ipv4Addr::new(10, 0, 1, 3),
                port: 443
            },
            VsgEntry::Fwmark(7),
        ]
    );
    let vs = &c.virtual_servers[0];
    assert_eq!(vs.addr, VsAddr::Group("G".into()));
    assert_eq!(vs.lb_algo, "sh");
    assert_eq!(vs.sched_flags, 0x10 | 0x20);
    assert_eq!(vs.persistence_timeout, Some(360));
    assert_eq!((vs.quorum, vs.hysteresis), (2, 1));
    assert_eq!(vs.quorum_up.as_deref(), Some("/bin/echo up now"));
    assert_eq!(
        vs.sorry_server,
        Some(SorryServer {
            addr: Ipv4Addr::new(10, 9, 9, 9),
            port: Some(80),
            inhibit: true
        })
    );
    assert_eq!(vs.protocol, Proto::Udp);
    let CheckKind::Udp(u) = &vs.real_servers[0].checkers[0].kind else {
        panic!()
    };
    assert_eq!(u.payload.as_deref(), Some(&[0x0a, 0x0b][..]));
    assert_eq!(u.require_reply.as_deref(), Some(&[][..]));
    let vs2 = &c.virtual_servers[1];
    assert_eq!(vs2.addr, VsAddr::Fwmark(12));
    let ck = &vs2.real_servers[0].checkers[0];
    let CheckKind::Http(h) = &ck.kind else {
        panic!()
    };
    assert!(h.tls);
    assert_eq!(h.urls[0].status_codes, [(200, 299), (301, 301)]);
    assert_eq!(h.urls[0].digest.unwrap()[0], 0x01);
    assert_eq!(ck.common.retry, 2);
}

#[test]
fn glued_braces_comments_and_escapes() {
    let c = parse_str(
        "virtual_server 10.0.0.1 80{ # c1\nreal_server 10.1.0.1 80{TCP_CHECK{connect_port 81}}! c2\nreal_server 10.1.0.2 80\n{\nMISC_CHECK {\nmisc_path /bin/x\\#y # real comment\n}\n}\n}\n",
        "g.conf",
    )
    .unwrap();
    let vs = &c.virtual_servers[0];
    assert_eq!(vs.real_servers[0].checkers[0].common.connect_port, 81);
    let CheckKind::Misc(m) = &vs.real_servers[1].checkers[0].kind else {
        panic!()
    };
    assert_eq!(m.misc_path, "/bin/x#y");
}

#[test]
fn line_continuation() {
    let c = parse_str(
        "virtual_server 10.0.0.1 \\\n 80 {\n real_server 10.1.0.1 80\n}\n",
        "c.conf",
    )
    .unwrap();
    assert_eq!(c.virtual_servers[0].at.line, 1);
}

#[test]
fn include_relative_and_error_in_included_file() {
    let d = tmpdir("inc");
    std::fs::create_dir_all(d.join("conf.d")).unwrap();
    std::fs::write(
        d.join("keepalived.conf"),
        "global_defs {\n}\ninclude conf.d/*.conf\ninclude none/*.conf\n",
    )
    .unwrap();
    std::fs::write(
        d.join("conf.d/a.conf"),
        "virtual_server 10.0.0.1 80 {\n real_server 10.1.0.1 80\n}\n",
    )
    .unwrap();
    std::fs::write(
        d.join("conf.d/b.conf"),
        "virtual_server 10.0.0.2 80 {\n real_server 10.1.0.1 80\n}\n",
    )
    .unwrap();
    let c = parse_file(&d.join("keepalived.conf")).unwrap();
    assert_eq!(c.virtual_servers.len(), 2);
    assert!(c.virtual_servers[1].at.file.ends_with("conf.d/b.conf"));

    std::fs::write(
        d.join("conf.d/b.conf"),
        "virtual_server 10.0.0.2 80 {\n\n real_server 10.1.0.400 80\n}\n",
    )
    .unwrap();
    let e = parse_file(&d.join("keepalived.conf")).unwrap_err();
    assert!(e.file.ends_with("conf.d/b.conf"), "{e}");
    assert_eq!((e.line, e.keyword.as_str()), (3, "real_server"));
    assert!(
        e.to_string()
            .ends_with("b.conf:3: real_server: \"10.1.0.400\" is not an IPv4 address"),
        "{e}"
    );

    std::fs::write(d.join("keepalived.conf"), "\ninclude missing.conf\n").unwrap();
    let e = parse_file(&d.join("keepalived.conf")).unwrap_err();
    assert!(
        e.file.ends_with("keepalived.conf") && e.line == 2 && e.keyword == "include",
        "{e}"
    );

    std::fs::write(d.join("keepalived.conf"), "include keepalived.conf\n").unwrap();
    let e = parse_file(&d.join("keepalived.conf")).unwrap_err();
    assert!(e.msg.contains("nested deeper"), "{e}");
    let _ = std::fs::remove_dir_all(&d);
}

/// Cross-check: what is accepted here keepalived accepts too (`keepalived -t`, 2.2+).
#[test]
fn keepalived_config_test_accepts_examples() {
    let bin = ["/usr/sbin/keepalived", "/usr/local/sbin/keepalived"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(bin) = bin else {
        eprintln!("skipped: keepalived is not installed (apt-get install keepalived)");
        return;
    };
    let d = tmpdir("kat");
    let f = d.join("keepalived.conf");
    std::fs::write(&f, LAB).unwrap();
    parse_file(&f).unwrap();
    let out = std::process::Command::new(bin)
        .arg("-t")
        .arg("-f")
        .arg(&f)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "keepalived -t refused the lab example: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&d);
}

proptest! {
    #[test]
    fn random_input_never_panics(s in "[ -~\n\t{}\"#!\\\\]{0,400}") {
        let _ = parse_str(&s, "p.conf");
    }

    #[test]
    fn keyword_soup_never_panics(words in proptest::collection::vec(prop_oneof![
        Just("virtual_server"), Just("real_server"), Just("10.0.0.1"), Just("80"), Just("{"),
        Just("}"), Just("\n"), Just("HTTP_GET"), Just("url"), Just("path"), Just("/"),
        Just("status_code"), Just("200-299"), Just("TCP_CHECK"), Just("group"), Just("G"),
        Just("virtual_server_group"), Just("include"), Just("delay_loop"), Just("1.5"),
        Just("persistence_timeout"), Just("\"q q\""), Just("global_defs"), Just("fwmark"),
    ], 0..60)) {
        let _ = parse_str(&words.join(" "), "p.conf");
    }
}
