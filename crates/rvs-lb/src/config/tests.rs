//! Tests of the configuration: edits, their errors, validation and the snapshot lookups.

use super::*;
use crate::tcp_state::TcpState;
use std::net::Ipv4Addr;

fn vip() -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, 10)
}
fn rip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, n)
}

fn base() -> (Config, ServiceKey) {
    let mut c = Config::default();
    let k = ServiceKey::tcp(vip(), 80);
    c.add_service(ServiceSpec::new(k).scheduler("rr")).unwrap();
    (c, k)
}

#[test]
fn error_messages_are_ipvsadm_text() {
    let cases = [
        (ConfigError::ServiceExists, "Service already exists"),
        (ConfigError::NoSuchService, "No such service"),
        (ConfigError::ServiceNotDefined, "Service not defined"),
        (ConfigError::DestExists, "Destination already exists"),
        (ConfigError::NoSuchDest, "No such destination"),
        (
            ConfigError::SchedulerNotFound,
            "Scheduler or persistence engine not found",
        ),
        (ConfigError::OutOfRange, "Numerical result out of range"),
        (
            ConfigError::Invalid,
            "Invalid operation.  Possibly wrong module version, address not unicast, ...",
        ),
        (ConfigError::NoMemory, "Memory allocation problem"),
        (
            ConfigError::ZeroPortNonPersistent,
            "Zero port specified for non-persistent service",
        ),
    ];
    for (e, s) in cases {
        assert_eq!(e.to_string(), s);
    }
}

#[test]
fn service_add_edit_delete() {
    let (mut c, k) = base();
    assert_eq!(c.generation(), 1);
    assert_eq!(
        c.add_service(ServiceSpec::new(k)),
        Err(ConfigError::ServiceExists)
    );
    let k2 = ServiceKey::udp(vip(), 53);
    assert_eq!(
        c.edit_service(ServiceSpec::new(k2)),
        Err(ConfigError::NoSuchService)
    );
    assert_eq!(c.delete_service(&k2), Err(ConfigError::NoSuchService));
    assert_eq!(
        c.add_service(ServiceSpec::new(k2).scheduler("nosuch")),
        Err(ConfigError::SchedulerNotFound)
    );
    assert_eq!(
        c.add_service(ServiceSpec::new(ServiceKey::tcp(vip(), 0))),
        Err(ConfigError::ZeroPortNonPersistent)
    );
    let id2 = c.add_service(ServiceSpec::new(k2)).unwrap();
    assert_eq!(id2, ServiceId(1));
    c.edit_service(
        ServiceSpec::new(k)
            .scheduler("wrr")
            .persistent(Persistence::default()),
    )
    .unwrap();
    let s = c.service(&k).unwrap();
    assert_eq!(s.scheduler, "wrr");
    assert_eq!(s.persistence.map(|p| p.timeout), Some(360));
    c.delete_service(&k).unwrap();
    assert!(c.service(&k).is_none());
    // The freed id is reused.
    assert_eq!(c.add_service(ServiceSpec::new(k)).unwrap(), ServiceId(0));
    assert_eq!(c.generation(), 5);
    c.validate().unwrap();
}

#[test]
fn failed_edit_changes_nothing() {
    let (mut c, k) = base();
    c.add_dest(&k, DestSpec::new(rip(1), 80)).unwrap();
    let before = c.clone();
    assert_eq!(
        c.edit_dest(&k, DestSpec::new(rip(1), 80).thresholds(10, 20)),
        Err(ConfigError::OutOfRange)
    );
    assert_eq!(
        c.add_dest(&k, DestSpec::new(rip(2), 80).thresholds(0, 5)),
        Err(ConfigError::OutOfRange)
    );
    assert_eq!(
        c.add_dest(&k, DestSpec::new(rip(2), 80).weight(65536)),
        Err(ConfigError::OutOfRange)
    );
    assert_eq!(
        c.add_dest(&k, DestSpec::new(Ipv4Addr::new(224, 0, 0, 1), 80)),
        Err(ConfigError::Invalid)
    );
    assert_eq!(
        c.set_timeouts(MAX_TIMEOUT + 1, 0, 0),
        Err(ConfigError::OutOfRange)
    );
    assert_eq!(c, before);
}

#[test]
fn dest_add_edit_delete_and_trash_restore() {
    let (mut c, k) = base();
    let missing = ServiceKey::tcp(vip(), 81);
    assert_eq!(
        c.add_dest(&missing, DestSpec::new(rip(1), 80)),
        Err(ConfigError::ServiceNotDefined)
    );
    assert_eq!(
        c.delete_dest(&missing, rip(1), 80),
        Err(ConfigError::ServiceNotDefined)
    );
    let d1 = c.add_dest(&k, DestSpec::new(rip(1), 0)).unwrap();
    // Port 0 stays 0, as in the kernel (`-> RIP:0`; connections then go to the vport).
    // ipvsadm copies the vport only when -r has no port at all, before the request.
    assert_eq!(c.service(&k).unwrap().dests[0].port, 0);
    assert_eq!(
        c.add_dest(&k, DestSpec::new(rip(1), 0)),
        Err(ConfigError::DestExists)
    );
    let d2 = c
        .add_dest(&k, DestSpec::new(rip(2), 8080).weight(3))
        .unwrap();
    assert_eq!((d1, d2), (DestId(0), DestId(1)));
    assert_eq!(
        c.edit_dest(&k, DestSpec::new(rip(3), 80)),
        Err(ConfigError::NoSuchDest)
    );
    c.edit_dest(&k, DestSpec::new(rip(2), 8080).weight(0))
        .unwrap();
    let d = c.service(&k).unwrap().dest(rip(2), 8080).unwrap().clone();
    assert_eq!((d.weight, d.last_weight), (0, 3));
    let inc = d.incarnation;

    c.delete_dest(&k, rip(2), 8080).unwrap();
    assert_eq!(
        c.delete_dest(&k, rip(2), 8080),
        Err(ConfigError::NoSuchDest)
    );
    assert_eq!(c.trash().len(), 1);
    assert_eq!(c.trash()[0].removed_in, c.generation());
    // A new server cannot take the trashed id.
    let d3 = c.add_dest(&k, DestSpec::new(rip(3), 80)).unwrap();
    assert_eq!(d3, DestId(2));
    // Re-adding restores id and incarnation.
    let again = c
        .add_dest(&k, DestSpec::new(rip(2), 8080).weight(5))
        .unwrap();
    assert_eq!(again, DestId(1));
    let d = c.service(&k).unwrap().dest(rip(2), 8080).unwrap();
    assert_eq!((d.incarnation, d.weight, d.last_weight), (inc, 5, 5));
    assert!(c.trash().is_empty());
    // List order is the kernel's: newest first (the re-added server is the newest).
    let order: Vec<u16> = c
        .service(&k)
        .unwrap()
        .dests
        .iter()
        .map(|d| d.id.0)
        .collect();
    assert_eq!(order, [1, 2, 0]);

    // Deleting the service trashes all of its servers; purge frees the ids.
    c.delete_service(&k).unwrap();
    assert_eq!(c.trash().len(), 3);
    c.purge_trash(|t| t.dest.id == DestId(2));
    assert_eq!(c.trash().len(), 1);
    c.add_service(ServiceSpec::new(k)).unwrap();
    assert_eq!(
        c.add_dest(&k, DestSpec::new(rip(9), 80)).unwrap(),
        DestId(0)
    );
    c.validate().unwrap();
}

#[test]
fn timeouts_set_skips_zero() {
    let mut c = Config::default();
    assert_eq!(c.timeouts().triple(), (900, 120, 300));
    c.set_timeouts(0, 60, 0).unwrap();
    assert_eq!(c.timeouts().triple(), (900, 60, 300));
    c.set_timeouts(100, 0, 20).unwrap();
    assert_eq!(c.timeouts().triple(), (100, 60, 20));
    assert_eq!(c.timeouts().tcp_state(TcpState::SynRecv), 60);
}

#[test]
fn persistence_limits() {
    let mut c = Config::default();
    let k = ServiceKey::tcp(vip(), 0);
    let p = |t| Persistence {
        timeout: t,
        netmask: Ipv4Addr::new(255, 255, 255, 0),
    };
    assert_eq!(
        c.add_service(ServiceSpec::new(k).persistent(p(0))),
        Err(ConfigError::OutOfRange)
    );
    assert_eq!(
        c.add_service(ServiceSpec::new(k).persistent(p(MAX_TIMEOUT + 1))),
        Err(ConfigError::OutOfRange)
    );
    c.add_service(ServiceSpec::new(k).persistent(p(MAX_TIMEOUT)))
        .unwrap();
    assert_eq!(
        c.add_service(ServiceSpec::new(ServiceKey::Fwmark(0))),
        Err(ConfigError::Invalid)
    );
}

#[test]
fn ids_run_out_with_enomem() {
    let mut c = Config::default();
    let k = ServiceKey::udp(vip(), 53);
    for s in 0..64u16 {
        c.add_service(ServiceSpec::new(ServiceKey::udp(vip(), 1000 + s)))
            .unwrap();
    }
    c.add_service(ServiceSpec::new(k)).unwrap();
    for i in 0..MAX_DESTS {
        let a = Ipv4Addr::from(0x0a00_0000u32 + i as u32 + 1);
        let key = ServiceKey::udp(vip(), 1000 + (i % 64) as u16);
        assert_eq!(c.add_dest(&key, DestSpec::new(a, 53)), Ok(DestId(i as u16)));
    }
    assert_eq!(
        c.add_dest(&k, DestSpec::new(Ipv4Addr::new(11, 0, 0, 1), 53)),
        Err(ConfigError::NoMemory)
    );
}

#[test]
fn lookup_order_fwmark_exact_port0() {
    let mut c = Config::default();
    let exact = ServiceKey::tcp(vip(), 80);
    let zero = ServiceKey::tcp(vip(), 0);
    let fw = ServiceKey::Fwmark(7);
    c.add_service(ServiceSpec::new(exact)).unwrap();
    c.add_service(ServiceSpec::new(zero).persistent(Persistence::default()))
        .unwrap();
    c.add_service(ServiceSpec::new(fw)).unwrap();
    let rule = MarkRule {
        mark: 7,
        proto: Proto::Tcp,
        vaddr: vip(),
        port_lo: 8000,
        port_hi: 8010,
    };
    c.add_mark_rule(rule).unwrap();
    assert_eq!(c.add_mark_rule(rule), Err(ConfigError::MarkRuleExists));
    // A rule for a mark nobody serves makes its address no VIP by itself.
    let other = Ipv4Addr::new(192, 0, 2, 99);
    c.add_mark_rule(MarkRule {
        mark: 8,
        vaddr: other,
        ..rule
    })
    .unwrap();
    let s = Snapshot::new(c.clone()).unwrap();
    assert_eq!(s.lookup(Proto::Tcp, vip(), 80), SvcLookup::Found(0));
    assert_eq!(s.lookup(Proto::Tcp, vip(), 443), SvcLookup::Found(1));
    assert_eq!(s.lookup(Proto::Tcp, vip(), 8005), SvcLookup::Found(2));
    assert_eq!(s.lookup(Proto::Udp, vip(), 8005), SvcLookup::NoService);
    assert_eq!(s.lookup(Proto::Udp, vip(), 80), SvcLookup::NoService);
    assert_eq!(s.lookup(Proto::Tcp, rip(1), 80), SvcLookup::NotVip);
    assert_eq!(s.lookup(Proto::Tcp, other, 8005), SvcLookup::NotVip);
    assert!(s.is_vip(vip()) && !s.is_vip(other));
    // Deleting the exact service uncovers the port-zero one.
    let s = s.delete_service(&exact).unwrap();
    assert_eq!(s.lookup(Proto::Tcp, vip(), 80), SvcLookup::Found(0));
    assert_eq!(s.services()[0].key, zero);
    c.delete_mark_rule(&rule).unwrap();
    assert_eq!(c.delete_mark_rule(&rule), Err(ConfigError::NoSuchMarkRule));
}

#[test]
fn dest_endpoints() {
    let (c, k) = base();
    let s = Snapshot::new(c)
        .unwrap()
        .add_dest(&k, DestSpec::new(rip(1), 8080))
        .unwrap();
    assert!(s.is_dest_endpoint(Proto::Tcp, rip(1), 8080));
    assert!(!s.is_dest_endpoint(Proto::Udp, rip(1), 8080));
    assert!(!s.is_dest_endpoint(Proto::Tcp, rip(1), 80));
    let s = s.delete_dest(&k, rip(1), 8080).unwrap();
    assert!(!s.is_dest_endpoint(Proto::Tcp, rip(1), 8080));
}

#[test]
fn snapshot_edit_is_atomic() {
    let (c, k) = base();
    let s = Snapshot::new(c).unwrap();
    let g = s.generation();
    let r = s.edit(|c| {
        c.add_dest(&k, DestSpec::new(rip(1), 80))?;
        c.add_dest(&k, DestSpec::new(rip(1), 80))
    });
    assert_eq!(r.map(|_| ()), Err(ConfigError::DestExists));
    assert_eq!(s.generation(), g);
    assert!(s.service(&k).unwrap().dests.is_empty());
}

#[test]
fn validate_rejects_broken_configs() {
    let (mut c, k) = base();
    c.add_dest(&k, DestSpec::new(rip(1), 80)).unwrap();
    let mut bad = c.clone();
    bad.services[0].dests[0].l_threshold = 9;
    assert_eq!(Snapshot::new(bad).map(|_| ()), Err(ConfigError::OutOfRange));
    let mut bad = c.clone();
    let d = bad.services[0].dests[0].clone();
    bad.services[0].dests.push(Dest { id: DestId(5), ..d });
    assert_eq!(bad.validate(), Err(ConfigError::DestExists));
    let mut bad = c.clone();
    let d = bad.services[0].dests[0].clone();
    bad.services[0].dests.push(Dest { addr: rip(2), ..d });
    assert_eq!(bad.validate(), Err(ConfigError::Invalid));
    let mut bad = c;
    bad.timeouts.udp = 0;
    assert_eq!(bad.validate(), Err(ConfigError::OutOfRange));
}
