//! Port bring-up: the RSS plan per driver and role (client-endpoint hashing where the NIC can,
//! software handover elsewhere), RETA and key programming with read-back, rte_flow rules, TX
//! offloads, and the steering both ports end up sharing. Called by `control::app` at start;
//! every way of failing on the way to hardware steering leaves a working port and a reason.

use super::app::AppError;
use crate::dpdk::{self, DevInfo, Mempool, Port, PortConf, RxQueue, TxQueue, L4};
use crate::lb::steer::{default_reta, Steer, RSS_KEY};
use crate::lb::PortRole;

// ---- Steering: client-endpoint-only RSS where the driver can, software handover elsewhere ----

/// Drivers that accept source-only/destination-only hash fields only in an rte_flow RSS action
/// (their port-level `rss_hf` rejects them; dpdk-notes).
const FLOW_RSS_DRIVERS: [&str; 3] = ["net_ice", "net_i40e", "net_iavf"];

/// IPv4 hash functions rvs enables, where advertised, to spread receive work over the queues.
const SPREAD_HF: u64 = dpdk::port::RSS_IPV4
    | dpdk::port::RSS_FRAG_IPV4
    | dpdk::port::RSS_NONFRAG_IPV4_TCP
    | dpdk::port::RSS_NONFRAG_IPV4_UDP
    | dpdk::port::RSS_NONFRAG_IPV4_OTHER;

const L4_HF: u64 = dpdk::port::RSS_NONFRAG_IPV4_TCP | dpdk::port::RSS_NONFRAG_IPV4_UDP;

/// The hash-field modifiers that make a port hash only the client endpoint: the source on the
/// public port, the destination on the private port.
pub fn endpoint_hf(role: PortRole) -> u64 {
    use crate::dpdk::port::*;
    match role {
        PortRole::Public => RSS_L3_SRC_ONLY | RSS_L4_SRC_ONLY,
        PortRole::Private => RSS_L3_DST_ONLY | RSS_L4_DST_ONLY,
    }
}

/// How a port's RSS is set up, decided from its driver and advertised hash fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RssPlan {
    /// One worker: no RSS.
    Single,
    /// Client-endpoint-only hashing in the port's `rss_hf` (the mlx5 way).
    PortHash { hf: u64 },
    /// Port RSS with `hf` (key, RETA, spreading) plus rte_flow rules that hash IPv4 TCP and UDP
    /// on the client endpoint with the given types (ice, i40e, iavf).
    FlowHash { hf: u64, tcp: u64, udp: u64 },
    /// No client-endpoint hashing: software handover. RSS with `hf`, if nonzero, only spreads
    /// receive work.
    Software { hf: u64, why: String },
}

/// The plan for a port of `info`'s driver carrying `role`, with `workers` RX queues.
pub fn plan_rss(role: PortRole, info: &DevInfo, workers: usize) -> RssPlan {
    if workers <= 1 {
        return RssPlan::Single;
    }
    let spread = info.flow_type_rss_offloads & SPREAD_HF;
    let ep = endpoint_hf(role);
    if FLOW_RSS_DRIVERS.contains(&info.driver.as_str()) {
        if spread & L4_HF != L4_HF {
            return RssPlan::Software {
                hf: spread,
                why: "driver does not advertise TCP/UDP RSS".into(),
            };
        }
        return RssPlan::FlowHash {
            hf: spread,
            tcp: ep | dpdk::port::RSS_NONFRAG_IPV4_TCP,
            udp: ep | dpdk::port::RSS_NONFRAG_IPV4_UDP,
        };
    }
    if info.flow_type_rss_offloads & (ep | L4_HF) == ep | L4_HF {
        return RssPlan::PortHash { hf: ep | spread };
    }
    RssPlan::Software {
        hf: spread,
        why: "driver cannot hash the client endpoint only".into(),
    }
}

/// rvs's RSS key sized for a driver that takes `size`-byte keys ([`RSS_KEY`], repeated if the
/// driver's key is longer; only the first bytes matter to a client-endpoint hash). `None`:
/// keep the driver's key (it is read back either way).
fn rss_key(size: u8) -> Option<Vec<u8>> {
    (size != 0).then(|| {
        (0..size as usize)
            .map(|i| RSS_KEY[i % RSS_KEY.len()])
            .collect()
    })
}

/// What a port contributes to steering after bring-up.
#[derive(Debug, Clone)]
pub struct PortSteering {
    /// When the port hashes the client endpoint: the mirror built from the key and RETA it
    /// reported back.
    pub mirror: Option<Steer>,
    /// How the port hashes the client endpoint, or why it does not.
    pub how: String,
}

impl PortSteering {
    fn software(why: impl Into<String>) -> PortSteering {
        PortSteering {
            mirror: None,
            how: why.into(),
        }
    }
}

// ---- TX offloads ----

/// The TX offloads to enable on a port of `info`: the IPv4 header checksum when the port has
/// it and the configuration allows it (`tx_checksum_offload`). TCP/UDP checksums stay in
/// software: NAT updates them incrementally (RFC 1624), which is exact and cheaper than
/// preparing the pseudo-header an offload needs.
///
/// Not on ixgbe and i40e: any TX offload but MBUF_FAST_FREE moves them from their vector TX
/// function to the scalar one for every packet, a bad trade for checksums that only the rare
/// fragments rvs builds need.
pub fn choose_tx_offloads(info: &DevInfo, checksum_offload: bool) -> u64 {
    const VECTOR_TX_NEEDS_NO_OFFLOAD: [&str; 2] = ["net_ixgbe", "net_i40e"];
    let mut o = 0;
    if checksum_offload
        && info.tx_offload_capa & dpdk::port::TX_OFFLOAD_IPV4_CKSUM != 0
        && !VECTOR_TX_NEEDS_NO_OFFLOAD.contains(&info.driver.as_str())
    {
        o |= dpdk::port::TX_OFFLOAD_IPV4_CKSUM;
    }
    o
}

/// TX offload bits as reported (log, `rvsadm --stats-ports`): "ipv4_cksum", or "none".
pub fn tx_offload_names(bits: u64) -> String {
    let names: Vec<&str> = [
        (dpdk::port::TX_OFFLOAD_IPV4_CKSUM, "ipv4_cksum"),
        (dpdk::port::TX_OFFLOAD_UDP_CKSUM, "udp_cksum"),
        (dpdk::port::TX_OFFLOAD_TCP_CKSUM, "tcp_cksum"),
        (dpdk::port::TX_OFFLOAD_MBUF_FAST_FREE, "mbuf_fast_free"),
    ]
    .iter()
    .filter(|(b, _)| bits & b != 0)
    .map(|(_, n)| *n)
    .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(",")
    }
}

/// A started port, its queues (queue i for worker i) and its steering.
#[derive(Debug)]
pub struct PortUp {
    pub port: Port,
    pub rxq: Vec<RxQueue>,
    pub txq: Vec<TxQueue>,
    pub info: DevInfo,
    pub steering: PortSteering,
    /// The TX offloads the port was configured with (`TX_OFFLOAD_*` bits).
    pub tx_offloads: u64,
}

/// Configures and starts the port `device` for `role` with one RX/TX queue pair per worker,
/// programming client-endpoint-only RSS where the driver can (`plan` overrides
/// [`plan_rss`]; tests use it) and IPv4 header checksum offload where the port has it and
/// `checksum_offload` allows it. Whatever fails on the way to hardware steering leaves a
/// working port and a reason, never an error.
pub fn bring_up_port(
    role: PortRole,
    device: &str,
    mtu: u16,
    checksum_offload: bool,
    workers: usize,
    pool: &Mempool,
    plan: Option<RssPlan>,
) -> Result<PortUp, AppError> {
    let mut p = Port::by_name(device)
        .map_err(|e| AppError::Precheck(format!("{} port: {}: {}", role.name(), e.op, e.text)))?;
    let info = p.info()?;
    if (info.max_rx_queues as usize) < workers || (info.max_tx_queues as usize) < workers {
        return Err(AppError::Precheck(format!(
            "{} port {} ({}) supports {} RX / {} TX queues, {workers} workers need one each \
             (af_packet: add qpairs={workers} to devargs)",
            role.name(),
            device,
            info.driver,
            info.max_rx_queues,
            info.max_tx_queues
        )));
    }
    let plan = plan.unwrap_or_else(|| plan_rss(role, &info, workers));
    let tx_offloads = choose_tx_offloads(&info, checksum_offload);
    let base = PortConf {
        rx_queues: workers as u16,
        tx_queues: workers as u16,
        mtu: if mtu == 1500 { 0 } else { mtu as u32 },
        tx_offloads,
        ..Default::default()
    };
    let (hf, key) = match &plan {
        RssPlan::Single => (0, None),
        RssPlan::PortHash { hf } | RssPlan::FlowHash { hf, .. } => {
            (*hf, rss_key(info.hash_key_size))
        }
        RssPlan::Software { hf, .. } => (*hf, None),
    };
    let conf = PortConf {
        rss_hf: hf,
        rss_key: key,
        ..base.clone()
    };
    let bad = |e: dpdk::Error| AppError::Precheck(format!("{} port {device}: {e}", role.name()));
    let mut rejected = None;
    let (rxq, txq) = match p.configure(&conf, pool) {
        Ok(q) => q,
        Err(e)
            if hf != 0
                && matches!(
                    e.kind,
                    dpdk::ErrorKind::InvalidArgument | dpdk::ErrorKind::Unsupported
                ) =>
        {
            // RSS refused: run without it (every packet on queue 0, handed over from there).
            rejected = Some(format!("RSS configuration rejected: {}", e.text));
            p.configure(&base, pool).map_err(bad)?
        }
        Err(e) => return Err(bad(e)),
    };
    p.start()?;
    let steering = match (&plan, rejected) {
        (_, Some(why)) => PortSteering::software(why),
        (RssPlan::Single, None) => PortSteering::software("single worker"),
        (RssPlan::Software { why, .. }, None) => PortSteering::software(why.clone()),
        (RssPlan::PortHash { .. } | RssPlan::FlowHash { .. }, None) => {
            match program_endpoint_hash(role, &mut p, &plan, workers) {
                Ok(s) => s,
                Err(why) => PortSteering::software(why),
            }
        }
    };
    Ok(PortUp {
        port: p,
        rxq,
        txq,
        info,
        steering,
        tx_offloads,
    })
}

/// On a started port configured for `plan`: RETA bucket i -> queue (worker) i mod workers, the
/// rte_flow rules if the plan has them, then the key and RETA the port reports back, mirrored.
fn program_endpoint_hash(
    role: PortRole,
    p: &mut Port,
    plan: &RssPlan,
    workers: usize,
) -> Result<PortSteering, String> {
    let side = match role {
        PortRole::Public => "source",
        PortRole::Private => "destination",
    };
    // The RETA size may change with the queue count (mlx5): ask after configure.
    let size = p.info().map_err(|e| e.to_string())?.reta_size;
    if size == 0 {
        return Err("driver reports no RSS redirection table".into());
    }
    p.set_reta(&default_reta(size as usize, workers))
        .map_err(|e| format!("RETA update failed: {}", e.text))?;
    let how = match plan {
        RssPlan::FlowHash { tcp, udp, .. } => {
            for (l4, types) in [(L4::Tcp, *tcp), (L4::Udp, *udp)] {
                p.add_rss_flow(l4, types).map_err(|e| {
                    format!(
                        "rte_flow {} RSS rule rejected: {}: {}",
                        l4.name(),
                        e.op,
                        e.text
                    )
                })?;
            }
            format!("rte_flow RSS on the client {side} address and port")
        }
        _ => format!("port RSS on the client {side} address and port"),
    };
    let conf = p
        .rss_conf()
        .map_err(|e| format!("cannot read the RSS key back: {}", e.text))?;
    if let RssPlan::PortHash { .. } = plan {
        let need = endpoint_hf(role) | L4_HF;
        if conf.hf & need != need {
            return Err(format!(
                "port reports rss_hf {:#x}, without the client-endpoint fields",
                conf.hf
            ));
        }
    }
    let reta = p
        .reta(size)
        .map_err(|e| format!("cannot read the RETA back: {}", e.text))?;
    let mirror = Steer::toeplitz(&conf.key, &reta, workers)
        .map_err(|e| format!("cannot mirror the port's RSS: {e}"))?;
    Ok(PortSteering {
        mirror: Some(mirror),
        how,
    })
}

/// The steering both ports run with, and the line reported for each port. Hardware steering
/// needs both ports to hash the client endpoint with the same key and RETA: one function must
/// place both directions of a connection.
pub fn choose_steering(ports: [&PortSteering; 2], workers: usize) -> (Steer, [String; 2]) {
    if workers <= 1 {
        return (
            Steer::software(1),
            ["single worker".into(), "single worker".into()],
        );
    }
    let sw = |why: &str| format!("software handover ({why})");
    match (&ports[0].mirror, &ports[1].mirror) {
        (Some(a), Some(b)) if a == b => (
            a.clone(),
            [
                format!("hardware ({})", ports[0].how),
                format!("hardware ({})", ports[1].how),
            ],
        ),
        (Some(_), Some(_)) => {
            let why = sw("both ports hash the client endpoint, but with different keys or RETAs");
            (Steer::software(workers), [why.clone(), why])
        }
        (Some(_), None) => (
            Steer::software(workers),
            [
                sw(&format!(
                    "hashes the client endpoint, but the private port cannot: {}",
                    ports[1].how
                )),
                sw(&ports[1].how),
            ],
        ),
        (None, Some(_)) => (
            Steer::software(workers),
            [
                sw(&ports[0].how),
                sw(&format!(
                    "hashes the client endpoint, but the public port cannot: {}",
                    ports[0].how
                )),
            ],
        ),
        (None, None) => (
            Steer::software(workers),
            [sw(&ports[0].how), sw(&ports[1].how)],
        ),
    }
}

#[cfg(test)]
mod steering_tests {
    use super::*;
    use crate::dpdk::port::*;

    fn info(driver: &str, rss: u64) -> DevInfo {
        DevInfo {
            driver: driver.into(),
            max_rx_queues: 16,
            max_tx_queues: 16,
            min_mtu: 68,
            max_mtu: 9000,
            rx_offload_capa: 0,
            tx_offload_capa: 0,
            flow_type_rss_offloads: rss,
            reta_size: 512,
            hash_key_size: 40,
        }
    }

    const MLX5_LIKE: u64 = RSS_IPV4
        | RSS_FRAG_IPV4
        | RSS_NONFRAG_IPV4_TCP
        | RSS_NONFRAG_IPV4_UDP
        | RSS_NONFRAG_IPV4_OTHER
        | RSS_L3_SRC_ONLY
        | RSS_L3_DST_ONLY
        | RSS_L4_SRC_ONLY
        | RSS_L4_DST_ONLY;
    const PLAIN: u64 = RSS_IPV4 | RSS_NONFRAG_IPV4_TCP | RSS_NONFRAG_IPV4_UDP;

    #[test]
    fn plans_follow_driver_and_role() {
        let spread = MLX5_LIKE & SPREAD_HF;
        assert_eq!(
            plan_rss(PortRole::Public, &info("mlx5_pci", MLX5_LIKE), 4),
            RssPlan::PortHash {
                hf: spread | RSS_L3_SRC_ONLY | RSS_L4_SRC_ONLY
            }
        );
        assert_eq!(
            plan_rss(PortRole::Private, &info("mlx5_pci", MLX5_LIKE), 4),
            RssPlan::PortHash {
                hf: spread | RSS_L3_DST_ONLY | RSS_L4_DST_ONLY
            }
        );
        // Source-only bits advertised, destination-only not: the private port cannot.
        let half = PLAIN | RSS_L3_SRC_ONLY | RSS_L4_SRC_ONLY;
        assert!(matches!(
            plan_rss(PortRole::Public, &info("x", half), 2),
            RssPlan::PortHash { .. }
        ));
        assert!(matches!(
            plan_rss(PortRole::Private, &info("x", half), 2),
            RssPlan::Software { .. }
        ));
        // ice/i40e/iavf: rte_flow whatever the port advertises for endpoint bits.
        for d in ["net_ice", "net_i40e", "net_iavf"] {
            assert_eq!(
                plan_rss(PortRole::Private, &info(d, PLAIN), 2),
                RssPlan::FlowHash {
                    hf: PLAIN,
                    tcp: RSS_NONFRAG_IPV4_TCP | RSS_L3_DST_ONLY | RSS_L4_DST_ONLY,
                    udp: RSS_NONFRAG_IPV4_UDP | RSS_L3_DST_ONLY | RSS_L4_DST_ONLY,
                }
            );
            assert!(matches!(
                plan_rss(PortRole::Public, &info(d, RSS_IPV4), 2),
                RssPlan::Software { .. }
            ));
        }
        // ixgbe/virtio-like (plain RSS) and af_packet/pcap (none): software; RSS spreads only.
        assert_eq!(
            plan_rss(PortRole::Public, &info("net_ixgbe", PLAIN), 2),
            RssPlan::Software {
                hf: PLAIN,
                why: "driver cannot hash the client endpoint only".into()
            }
        );
        assert_eq!(
            plan_rss(PortRole::Public, &info("net_af_packet", 0), 2),
            RssPlan::Software {
                hf: 0,
                why: "driver cannot hash the client endpoint only".into()
            }
        );
        assert_eq!(
            plan_rss(PortRole::Public, &info("mlx5_pci", MLX5_LIKE), 1),
            RssPlan::Single
        );
    }

    #[test]
    fn key_is_sized_for_the_driver() {
        assert_eq!(rss_key(0), None);
        assert_eq!(rss_key(40).unwrap(), RSS_KEY.to_vec());
        let k = rss_key(52).unwrap();
        assert_eq!(k.len(), 52);
        assert_eq!(&k[..40], &RSS_KEY[..]);
    }

    fn hw(reta: Vec<u16>, how: &str) -> PortSteering {
        PortSteering {
            mirror: Some(Steer::toeplitz(&RSS_KEY, &reta, 2).unwrap()),
            how: how.into(),
        }
    }

    #[test]
    fn hardware_only_when_both_ports_agree() {
        let a = hw(
            default_reta(128, 2),
            "port RSS on the client source address and port",
        );
        let b = hw(
            default_reta(128, 2),
            "port RSS on the client destination address and port",
        );
        let (s, lines) = choose_steering([&a, &b], 2);
        assert!(s.is_hardware());
        assert_eq!(&s, a.mirror.as_ref().unwrap());
        assert_eq!(
            lines[0],
            "hardware (port RSS on the client source address and port)"
        );
        assert_eq!(
            lines[1],
            "hardware (port RSS on the client destination address and port)"
        );

        // Different RETAs: software on both.
        let c = hw(vec![1, 0], "x");
        let (s, lines) = choose_steering([&a, &c], 2);
        assert_eq!(s, Steer::software(2));
        assert!(lines[0].contains("different keys or RETAs"), "{lines:?}");

        // One port cannot: software, and the capable port says why.
        let d = PortSteering::software("driver cannot hash the client endpoint only");
        let (s, lines) = choose_steering([&a, &d], 2);
        assert_eq!(s, Steer::software(2));
        assert_eq!(
            lines[0],
            "software handover (hashes the client endpoint, but the private port cannot: \
             driver cannot hash the client endpoint only)"
        );
        assert_eq!(
            lines[1],
            "software handover (driver cannot hash the client endpoint only)"
        );
        let (s, lines) = choose_steering([&d, &d], 2);
        assert_eq!(s, Steer::software(2));
        assert_eq!(lines[1], lines[0]);

        let (s, lines) = choose_steering([&a, &b], 1);
        assert_eq!(s, Steer::software(1));
        assert_eq!(
            lines,
            ["single worker".to_string(), "single worker".to_string()]
        );
    }

    #[test]
    fn tx_checksum_offload_only_where_advertised_and_allowed() {
        let mut i = info("net_tap", 0);
        i.tx_offload_capa = TX_OFFLOAD_IPV4_CKSUM | TX_OFFLOAD_UDP_CKSUM | TX_OFFLOAD_TCP_CKSUM;
        assert_eq!(choose_tx_offloads(&i, true), TX_OFFLOAD_IPV4_CKSUM);
        assert_eq!(tx_offload_names(choose_tx_offloads(&i, true)), "ipv4_cksum");
        assert_eq!(choose_tx_offloads(&i, false), 0, "configured off");
        i.tx_offload_capa = TX_OFFLOAD_UDP_CKSUM | TX_OFFLOAD_MBUF_FAST_FREE;
        assert_eq!(choose_tx_offloads(&i, true), 0, "not advertised");
        for d in ["net_ixgbe", "net_i40e"] {
            let mut v = info(d, 0);
            v.tx_offload_capa = TX_OFFLOAD_IPV4_CKSUM;
            assert_eq!(choose_tx_offloads(&v, true), 0, "{d} keeps its vector TX");
        }
        assert_eq!(tx_offload_names(0), "none");
        assert_eq!(
            tx_offload_names(TX_OFFLOAD_IPV4_CKSUM | TX_OFFLOAD_MBUF_FAST_FREE),
            "ipv4_cksum,mbuf_fast_free"
        );
    }
}
