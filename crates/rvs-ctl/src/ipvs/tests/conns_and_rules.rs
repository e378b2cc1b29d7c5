//! Control state tests: connections, expiry, trash, mark rules, rules files, the socket.

use super::*;

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
