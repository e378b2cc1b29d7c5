//! Steering bring-up on DPDK virtual ports: EAL without hugepages or PCI (`--no-huge
//! --no-pci --no-shconf`), `net_null` and `net_pcap` vdevs. No NIC and no lab needed; runs as
//! root (CI runs the suite as root). Hardware steering itself cannot be exercised here: these
//! drivers cannot hash the client endpoint only, so what is checked is that every way of
//! failing ends in software handover with a reason, that the ports keep working, and that the
//! RETA/key programming and read-back the hardware path relies on work on a real driver.

mod common;

use rvs::control::ports::{bring_up_port, choose_steering, plan_rss, RssPlan};
use rvs::dpdk::{port, Burst, Eal, Mempool};
use rvs::lb::steer::{default_reta, Steer, RSS_KEY};
use rvs::lb::PortRole;

const WORKERS: usize = 2;

/// An empty pcap file (global header only) for net_pcap's rx_pcap.
fn empty_pcap(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("empty.pcap");
    let mut h = Vec::new();
    h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&4u16.to_le_bytes());
    h.extend_from_slice(&0i32.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&65535u32.to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes());
    std::fs::write(&p, h).unwrap();
    p
}

#[test]
fn steering_falls_back_to_software_on_virtual_ports() {
    let dir = std::env::temp_dir().join(format!("rvs-steer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = empty_pcap(&dir);
    let out = |n: &str| dir.join(n).display().to_string();
    let pcap_dev = format!(
        "net_pcap0,rx_pcap={p},rx_pcap={p},tx_pcap={a},tx_pcap={b}",
        p = pcap.display(),
        a = out("tx0.pcap"),
        b = out("tx1.pcap")
    );
    let prefix = format!("rvs-steer-{}", std::process::id());
    let args = common::test_eal_args(
        &prefix,
        (0..6).map(|i| format!("net_null{i}")).chain([pcap_dev]),
    );
    let eal = Eal::init(&args).expect("EAL init (--no-huge) failed: run as root");
    let pool = Mempool::new("steer_test", 4095, 0, 2176, 0).unwrap();

    // 1. Automatic: net_null (plain RSS, no source/destination-only fields) on the public
    //    port, net_pcap (no RSS) on the private port.
    let public = bring_up_port(
        PortRole::Public,
        "net_null0",
        1500,
        true,
        WORKERS,
        &pool,
        None,
    )
    .unwrap();
    let private = bring_up_port(
        PortRole::Private,
        "net_pcap0",
        1500,
        true,
        WORKERS,
        &pool,
        None,
    )
    .unwrap();
    assert_eq!(public.info.driver, "net_null");
    assert_eq!(private.info.driver, "net_pcap");
    assert!(matches!(
        plan_rss(PortRole::Public, &public.info, WORKERS),
        RssPlan::Software { .. }
    ));
    assert!(public.steering.mirror.is_none());
    assert!(private.steering.mirror.is_none());
    let (steer, lines) = choose_steering([&public.steering, &private.steering], WORKERS);
    assert_eq!(steer, Steer::software(WORKERS));
    for l in &lines {
        assert_eq!(
            l,
            "software handover (driver cannot hash the client endpoint only)"
        );
    }
    assert_eq!(public.rxq.len(), WORKERS);
    assert_eq!(private.txq.len(), WORKERS);

    // 2. Forced port-level plan on a driver that does not advertise the fields: the
    //    configuration is rejected, the port comes up without RSS and still receives.
    let hf = port::RSS_NONFRAG_IPV4_TCP
        | port::RSS_NONFRAG_IPV4_UDP
        | port::RSS_L3_SRC_ONLY
        | port::RSS_L4_SRC_ONLY;
    let mut forced = bring_up_port(
        PortRole::Public,
        "net_null1",
        1500,
        true,
        WORKERS,
        &pool,
        Some(RssPlan::PortHash { hf }),
    )
    .unwrap();
    assert!(forced.steering.mirror.is_none());
    assert!(
        forced
            .steering
            .how
            .starts_with("RSS configuration rejected"),
        "{}",
        forced.steering.how
    );
    let mut b = Burst::new();
    assert!(
        forced.rxq[0].rx_burst(&mut b) > 0,
        "net_null delivers zeroed mbufs"
    );
    drop(b);

    // 3. Forced rte_flow plan: port RSS, key and RETA are accepted, the flow rule is not
    //    (net_null has no rte_flow): software, with the rule's error as the reason.
    let plan = RssPlan::FlowHash {
        hf: port::RSS_NONFRAG_IPV4_TCP | port::RSS_NONFRAG_IPV4_UDP,
        tcp: port::RSS_NONFRAG_IPV4_TCP | port::RSS_L3_DST_ONLY | port::RSS_L4_DST_ONLY,
        udp: port::RSS_NONFRAG_IPV4_UDP | port::RSS_L3_DST_ONLY | port::RSS_L4_DST_ONLY,
    };
    let flowed = bring_up_port(
        PortRole::Private,
        "net_null2",
        1500,
        true,
        WORKERS,
        &pool,
        Some(plan),
    )
    .unwrap();
    assert!(flowed.steering.mirror.is_none());
    assert!(
        flowed
            .steering
            .how
            .starts_with("rte_flow tcp RSS rule rejected: rte_flow_validate"),
        "{}",
        flowed.steering.how
    );
    assert_eq!(flowed.port.flow_count(), 0);
    // What the hardware path mirrors is read back from the driver: the RETA rvs programmed
    // (bucket i -> queue i mod workers) and the key.
    let size = flowed.port.info().unwrap().reta_size;
    assert!(size > 0);
    let reta = flowed.port.reta(size).unwrap();
    assert_eq!(reta, default_reta(size as usize, WORKERS));
    let conf = flowed.port.rss_conf().unwrap();
    assert_eq!(conf.key, RSS_KEY.to_vec());
    assert_eq!(
        Steer::toeplitz(&conf.key, &reta, WORKERS).unwrap(),
        Steer::toeplitz(&RSS_KEY, &default_reta(size as usize, WORKERS), WORKERS).unwrap()
    );

    // 4. The RETA round trip with a non-trivial table, on a port rvs configured itself.
    let mut p = bring_up_port(PortRole::Public, "net_null3", 1500, true, 3, &pool, None).unwrap();
    let size = p.port.info().unwrap().reta_size as usize;
    let custom: Vec<u16> = (0..size).map(|i| ((i * 7 + 1) % 3) as u16).collect();
    p.port.set_reta(&custom).unwrap();
    assert_eq!(p.port.reta(size as u16).unwrap(), custom);
    assert!(
        p.port.set_reta(&vec![3; size]).is_err(),
        "queue 3 does not exist"
    );

    // 5. One worker: no RSS at all.
    let single = bring_up_port(PortRole::Public, "net_null4", 1500, true, 1, &pool, None).unwrap();
    assert_eq!(single.steering.how, "single worker");
    let (steer, lines) = choose_steering([&single.steering, &single.steering], 1);
    assert_eq!(steer, Steer::software(1));
    assert_eq!(lines[0], "single worker");

    drop((public, private, forced, flowed, p, single));
    drop(eal);
    let _ = std::fs::remove_dir_all(&dir);
}
