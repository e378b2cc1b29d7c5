//! Bringing the appliance up and down: the checks before EAL, the start in named steps
//! (`run_with_eal`), and teardown in a fixed order (`Appliance`). Once up, the main lcore runs
//! the management core (`control::mgmt`); workers run on the other lcores.

use super::mgmt::{management_loop, neigh_table, IpvsApply, Mgmt, MgmtTx, Signals};
use super::ports::{bring_up_port, choose_steering, tx_offload_names, PortUp};
use super::server;
use super::twin::Twins;
use crate::config::{ApplianceConfig, Interface};
use crate::dataplane::kernel::{worker_bucket, KernelUp};
use crate::dataplane::l3::PortInfo;
use crate::dataplane::neigh::NeighTimers;
use crate::dataplane::shared::{Shared, TscClock};
use crate::dataplane::worker::{Handover, Worker, WorkerSetup};
use crate::dpdk::{self, Eal, LcoreGroup, Mempool, Port, PortId, RingRx, RingTx, RxQueue, TxQueue};
use crate::lb::conn::MemAdvice;
use crate::lb::steer::Steer;
use crate::lb::{Lb, LbParams, PortRole, Snapshot};
use crate::net::MacAddr;
use rvs_checks::probe::plane::SynPlane;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Entries of each half-open health-check queue (data plane <-> checker): more than a delay_loop
/// of 10,000 servers' SYNs, should every check fall due at once.
const SYN_QUEUE: usize = 32 * 1024;

/// Startup failures, each a one-line message for the operator.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Config(#[from] crate::config::ApplianceConfigError),
    #[error("{0}")]
    Control(#[from] server::ServerError),
    #[error("{0}")]
    Precheck(String),
    #[error("DPDK: {0}")]
    Dpdk(#[from] dpdk::Error),
}

/// Checks what can be checked before EAL touches anything.
fn precheck(cfg: &ApplianceConfig) -> Result<(), AppError> {
    for (role, i) in [("public", &cfg.public), ("private", &cfg.private)] {
        super::twin::precheck(role, i).map_err(AppError::Precheck)?;
        if let Some(ifname) = i.kernel_iface() {
            if !std::path::Path::new("/sys/class/net").join(ifname).exists() {
                return Err(AppError::Precheck(format!(
                    "{role} interface: kernel interface {ifname:?} (device {}) does not exist",
                    i.device
                )));
            }
        }
    }
    if !cfg.eal.no_huge {
        let free = free_hugepage_mb();
        if free < cfg.eal.memory_mb as u64 {
            return Err(AppError::Precheck(format!(
                "hugepages: {free} MiB free, {} MiB needed (eal.memory_mb); reserve them with \
                 scripts/setup-host.sh or set eal.no_huge = true",
                cfg.eal.memory_mb
            )));
        }
    }
    Ok(())
}

/// Free hugepage memory in MiB over all page sizes.
fn free_hugepage_mb() -> u64 {
    let Ok(dirs) = std::fs::read_dir("/sys/kernel/mm/hugepages") else {
        return 0;
    };
    let mut total_kb = 0u64;
    for d in dirs.flatten() {
        let name = d.file_name().to_string_lossy().to_string();
        let Some(kb) = name
            .strip_prefix("hugepages-")
            .and_then(|s| s.strip_suffix("kB"))
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        let free = std::fs::read_to_string(d.path().join("free_hugepages"))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0);
        total_kb += kb * free;
    }
    total_kb / 1024
}

/// Runs the appliance until SIGINT/SIGTERM. Returns after a clean shutdown.
pub fn run(cfg: ApplianceConfig) -> Result<(), AppError> {
    if !cfg.eal.no_huge {
        // Before the hugepage precheck: a killed run's files still hold its hugepages.
        match dpdk::runtime::reclaim(&cfg.eal.file_prefix) {
            Ok(dpdk::runtime::Reclaim::Clean) => {}
            Ok(dpdk::runtime::Reclaim::Removed {
                runtime_dir,
                hugepage_files,
            }) => tracing::warn!(
                "removed what an earlier run of file prefix {:?} left behind (runtime \
                 directory: {}, hugepage files: {hugepage_files})",
                cfg.eal.file_prefix,
                if runtime_dir { "yes" } else { "no" }
            ),
            Err(e) => return Err(AppError::Precheck(e.to_string())),
        }
    }
    precheck(&cfg)?;
    // Bind the control socket and the metrics endpoint before EAL so "in use" fails fast and
    // touches no device.
    let bound = server::bind(&cfg.control.socket, &cfg.control.group)?;
    let metrics = match cfg.metrics.listen {
        Some(addr) => {
            Some(rvs_metrics::http::bind(addr).map_err(|e| AppError::Precheck(e.to_string()))?)
        }
        None => None,
    };

    let sig = Signals {
        term: Arc::new(AtomicBool::new(false)),
        hup: Arc::new(AtomicBool::new(false)),
    };
    for (s, flag) in [
        (signal_hook::consts::SIGINT, &sig.term),
        (signal_hook::consts::SIGTERM, &sig.term),
        (signal_hook::consts::SIGHUP, &sig.hup),
    ] {
        signal_hook::flag::register(s, flag.clone())
            .map_err(|e| AppError::Precheck(format!("cannot install signal handler: {e}")))?;
    }

    let mut eal = Eal::init(&cfg.eal_args()).map_err(|e| {
        AppError::Precheck(format!(
            "EAL initialisation failed: {} (check hugepages, lcores and device arguments)",
            e.text
        ))
    })?;
    if !cfg.eal.no_huge {
        if let Err(e) = eal.enable_capture() {
            // Forwarding does not need it; only dpdk-dumpcap/dpdk-pdump cannot attach.
            tracing::warn!("packet capture unavailable: {}", e.text);
        }
    }
    let mut app = Appliance {
        metrics: None,
        server: None,
        workers: None,
        ports: Vec::new(),
        _eal: eal,
    };
    let result = run_with_eal(&cfg, (bound, metrics), sig, &mut app);
    drop(app);
    if result.is_ok() {
        eprintln!("rvs: stopped");
    }
    result
}

/// Everything that reaches into DPDK, owned in the order it must be torn down: Rust drops
/// fields in declaration order, so whatever path leaves `run` (a clean stop, or an error at any
/// step of the start), the metrics endpoint is stopped and the control clients are disconnected
/// and joined first (they read port statistics), then the workers are stopped and joined, then the ports are stopped and closed,
/// and only then does `rte_eal_cleanup` run.
struct Appliance {
    metrics: Option<rvs_metrics::http::Endpoint>,
    server: Option<server::Server>,
    workers: Option<dpdk::LcoreGroup>,
    ports: Vec<Port>,
    _eal: Eal,
}

/// The start, step by step, then the management loop until SIGINT/SIGTERM. Whatever DPDK
/// object a step creates that must outlive it goes into `app` as soon as it exists, so an
/// error at any later step (every `?` below) still tears everything down in order.
fn run_with_eal(
    cfg: &ApplianceConfig,
    (bound, metrics): (server::Bound, Option<rvs_metrics::http::Bound>),
    sig: Signals,
    app: &mut Appliance,
) -> Result<(), AppError> {
    let lcores = worker_lcores(cfg)?;
    let pool = Mempool::new("rvs_pkts", cfg.tables.mbufs, 256, cfg.tables.mbuf_size, 0)?;
    let ports = start_ports(cfg, &pool, &mut app.ports)?;
    let (shared, engines) = build_dataplane(cfg, &ports.facts, &ports.steer);
    let mut rings = Rings::new(lcores.len(), [&cfg.public, &cfg.private])?;
    let mut twins = start_twins(cfg, &ports.facts, &pool, &mut rings, &mut app.ports)?;
    let kit = WorkerKit {
        shared: shared.clone(),
        engines,
        queues: ports.queues,
        to: rings.to,
        from: rings.from,
        mgmt: rings.mgmt_rx,
        kernel: std::mem::take(&mut rings.kernel_tx),
        kernel_rate: [&cfg.public, &cfg.private].map(|i| i.kernel.as_ref().map(|k| k.rate)),
        pool,
        port_ids: ports.facts.ids.map(|id| id.0),
        hold_cap: cfg.tables.arp_hold as usize,
    };
    // From here on every `?` returns with the workers running: `Appliance` stops and joins them.
    launch_workers(kit, &lcores, &mut app.workers)?;
    let mgmt = build_mgmt(cfg, &shared, &ports.facts, lcores, &twins);
    start_serving(cfg, &mgmt, bound, &mut app.server)?;
    if let Err(e) = super::telemetry::register(&mgmt) {
        // The appliance works without them; dpdk-telemetry.py then shows the ethdev commands.
        tracing::warn!("telemetry: rvs commands not registered: {e}");
    }
    if let Some(m) = metrics {
        let source = Arc::new(super::metrics::MetricsSource(Arc::downgrade(&mgmt)));
        let limits = rvs_metrics::http::Limits {
            max_clients: cfg.metrics.max_clients,
            ..Default::default()
        };
        let endpoint = m
            .serve(source, limits)
            .map_err(|e| AppError::Precheck(e.to_string()))?;
        tracing::info!("metrics: http://{}/metrics", endpoint.local_addr());
        app.metrics = Some(endpoint);
    }
    let mut tx = MgmtTx {
        pool,
        rings: rings.mgmt_tx,
    };
    tx.announce(&shared);
    report_ready(cfg, &ports.facts.macs);

    management_loop(&mgmt, &mut tx, &mut twins, &sig);
    // Shutdown: `Appliance` (dropped by the caller) disconnects the clients, stops the
    // workers and the ports, then cleans up the EAL.
    Ok(())
}

/// The lcores the workers run on: the first `workers.count` worker lcores EAL has.
fn worker_lcores(cfg: &ApplianceConfig) -> Result<Vec<u32>, AppError> {
    let nworkers = cfg.workers.count as usize;
    let mut lcores = dpdk::worker_lcores();
    if lcores.len() < nworkers {
        return Err(AppError::Precheck(format!(
            "{} worker lcores available, {nworkers} configured",
            lcores.len()
        )));
    }
    lcores.truncate(nworkers);
    Ok(lcores)
}

/// A port's queues: queue i is worker i's.
struct PortQueues {
    rx: Vec<RxQueue>,
    tx: Vec<TxQueue>,
}

/// What the management core and the workers need to know of the two ports ([public,
/// private]).
struct PortFacts {
    ids: [PortId; 2],
    macs: [MacAddr; 2],
    drivers: [String; 2],
    /// How packets reach their owner core on each port (the line `choose_steering` reports).
    steering: [String; 2],
    /// The TX offloads each port was configured with (`TX_OFFLOAD_*` bits).
    tx_offloads: [u64; 2],
}

/// The two ports, started; the `Port`s themselves are owned by `Appliance`.
struct StartedPorts {
    /// [public, private].
    queues: [PortQueues; 2],
    /// The steering both ports run with (each worker gets its own copy).
    steer: Steer,
    facts: PortFacts,
}

/// Brings up the public then the private port with one queue pair per worker, chooses the
/// steering both run with, and hands the ports to `owned` (in `Appliance`).
fn start_ports(
    cfg: &ApplianceConfig,
    pool: &Mempool,
    owned: &mut Vec<Port>,
) -> Result<StartedPorts, AppError> {
    let nworkers = cfg.workers.count as usize;
    let up = |role: PortRole, iface: &Interface| {
        bring_up_port(
            role,
            &iface.device,
            iface.mtu,
            iface.tx_checksum_offload,
            nworkers,
            pool,
            None,
        )
    };
    let ups = [
        up(PortRole::Public, &cfg.public)?,
        up(PortRole::Private, &cfg.private)?,
    ];
    let (steer, steering) = choose_steering([&ups[0].steering, &ups[1].steering], nworkers);
    let [public, private] = ups;
    let mut adopt = |role: PortRole, iface: &Interface, up: PortUp| {
        tracing::info!(
            port = role.name(),
            device = %iface.device,
            driver = %up.info.driver,
            steering = steering[role.index()].as_str(),
            tx_offloads = %tx_offload_names(up.tx_offloads),
            "port started"
        );
        owned.push(up.port);
        let queues = PortQueues {
            rx: up.rxq,
            tx: up.txq,
        };
        (up.info.driver, up.tx_offloads, queues)
    };
    let (pub_driver, pub_offloads, pub_queues) = adopt(PortRole::Public, &cfg.public, public);
    let (priv_driver, priv_offloads, priv_queues) = adopt(PortRole::Private, &cfg.private, private);
    let macs = [MacAddr(owned[0].mac()?), MacAddr(owned[1].mac()?)];
    Ok(StartedPorts {
        queues: [pub_queues, priv_queues],
        steer,
        facts: PortFacts {
            ids: [owned[0].id(), owned[1].id()],
            macs,
            drivers: [pub_driver, priv_driver],
            steering,
            tx_offloads: [pub_offloads, priv_offloads],
        },
    })
}

/// The state the workers share with the management core, and one load-balancing engine per
/// worker, built here (allocation happens off the workers).
fn build_dataplane(
    cfg: &ApplianceConfig,
    ports: &PortFacts,
    steer: &Steer,
) -> (Arc<Shared>, Vec<Lb>) {
    let nworkers = cfg.workers.count as usize;
    let port_infos = [
        PortInfo {
            role: PortRole::Public,
            mac: ports.macs[0],
            iface: cfg.public.clone(),
            tx_ip_csum: ports.tx_offloads[0] & dpdk::port::TX_OFFLOAD_IPV4_CKSUM != 0,
        },
        PortInfo {
            role: PortRole::Private,
            mac: ports.macs[1],
            iface: cfg.private.clone(),
            tx_ip_csum: ports.tx_offloads[1] & dpdk::port::TX_OFFLOAD_IPV4_CKSUM != 0,
        },
    ];
    let snapshot = Arc::new(Snapshot::empty());
    let seed = dpdk::tsc();
    let engines: Vec<Lb> = (0..nworkers)
        .map(|i| {
            // Each worker gets its own copy of the steering tables.
            Lb::with_steer(
                LbParams {
                    conn_capacity: cfg.tables.connections as usize,
                    core_id: i,
                    n_cores: nworkers,
                    mtu_public: cfg.public.mtu,
                    mtu_private: cfg.private.mtu,
                    seed: seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                    mem_advice: Some(MemAdvice(dpdk::advise_hugepages)),
                    host_stack: cfg.public.kernel.is_some(),
                    ..LbParams::default()
                },
                snapshot.clone(),
                steer.clone(),
            )
        })
        .collect();
    let mut shared = Shared::new(port_infos, dpdk::tsc_hz(), snapshot, &engines);
    if cfg.checks.file.is_some() && cfg.checks.tcp_check == crate::config::TcpCheckMode::HalfOpen {
        shared.syn = Some(Arc::new(SynPlane::new(SYN_QUEUE)));
    }
    (Arc::new(shared), engines)
}

/// The rings between lcores.
struct Rings {
    /// Handover, one SPSC ring per ordered pair of workers: worker i sends to worker j on
    /// `to[i][j]`, which worker j receives on `from[j][i]` (`None` on the diagonal).
    to: Vec<Vec<Option<RingTx>>>,
    from: Vec<Vec<Option<RingRx>>>,
    /// The management core's frames, one ring per port, which worker 0 drains.
    mgmt_tx: [RingTx; 2],
    mgmt_rx: [RingRx; 2],
    /// The exception path: `kernel_tx[w][p]` carries what worker w sends up to port p's
    /// kernel twin (None without one), which the management core receives on `kernel_rx[p][w]`.
    kernel_tx: Vec<[Option<RingTx>; 2]>,
    kernel_rx: [Vec<RingRx>; 2],
}

impl Rings {
    fn new(nworkers: usize, ifaces: [&Interface; 2]) -> Result<Rings, AppError> {
        let mut to: Vec<Vec<Option<RingTx>>> = (0..nworkers)
            .map(|_| (0..nworkers).map(|_| None).collect())
            .collect();
        let mut from: Vec<Vec<Option<RingRx>>> = (0..nworkers)
            .map(|_| (0..nworkers).map(|_| None).collect())
            .collect();
        for i in 0..nworkers {
            for j in 0..nworkers {
                if i != j {
                    let (t, r) = dpdk::mbuf_ring(&format!("rvs_ho_{i}_{j}"), 4096, 0)?;
                    to[i][j] = Some(t);
                    from[j][i] = Some(r);
                }
            }
        }
        let (mgmt_pub_tx, mgmt_pub_rx) = dpdk::mbuf_ring("rvs_mgmt_pub", 1024, 0)?;
        let (mgmt_priv_tx, mgmt_priv_rx) = dpdk::mbuf_ring("rvs_mgmt_priv", 1024, 0)?;
        let mut kernel_tx: Vec<[Option<RingTx>; 2]> = (0..nworkers).map(|_| [None, None]).collect();
        let mut kernel_rx: [Vec<RingRx>; 2] = [Vec::new(), Vec::new()];
        for (p, iface) in ifaces.iter().enumerate() {
            if iface.kernel.is_none() {
                continue;
            }
            for (w, slot) in kernel_tx.iter_mut().enumerate() {
                let (t, r) = dpdk::mbuf_ring(&format!("rvs_kernel_{w}_{p}"), 1024, 0)?;
                slot[p] = Some(t);
                kernel_rx[p].push(r);
            }
        }
        Ok(Rings {
            to,
            from,
            mgmt_tx: [mgmt_pub_tx, mgmt_priv_tx],
            mgmt_rx: [mgmt_pub_rx, mgmt_priv_rx],
            kernel_tx,
            kernel_rx,
        })
    }
}

/// Makes the kernel twins of the ports that have one (their `Port`s go to `owned`, torn
/// down with the others), and opens netlink to follow them.
fn start_twins(
    cfg: &ApplianceConfig,
    ports: &PortFacts,
    pool: &Mempool,
    rings: &mut Rings,
    owned: &mut Vec<Port>,
) -> Result<Twins, AppError> {
    if cfg.public.kernel.is_none() && cfg.private.kernel.is_none() {
        return Ok(Twins {
            twins: Vec::new(),
            host: None,
        });
    }
    let mut host = super::twin::Host::open()
        .map_err(|e| AppError::Precheck(format!("kernel twins need netlink: {e}")))?;
    let mut twins = Vec::new();
    for role in PortRole::ALL {
        let iface = [&cfg.public, &cfg.private][role.index()];
        if iface.kernel.is_none() {
            continue;
        }
        let from = std::mem::take(&mut rings.kernel_rx[role.index()]);
        let t = super::twin::create(
            role,
            iface,
            ports.macs[role.index()],
            pool,
            from,
            &mut host.rtnl,
            owned,
        )
        .map_err(AppError::Precheck)?;
        twins.push(t);
    }
    host.settle();
    Ok(Twins {
        twins,
        host: Some(host),
    })
}

/// What the workers are launched with: worker i takes element i of every list.
struct WorkerKit {
    shared: Arc<Shared>,
    engines: Vec<Lb>,
    /// [public, private].
    queues: [PortQueues; 2],
    to: Vec<Vec<Option<RingTx>>>,
    from: Vec<Vec<Option<RingRx>>>,
    /// Worker 0's alone: the management core's frames.
    mgmt: [RingRx; 2],
    /// Per worker, its rings up to the kernel twins, and each port's rate limit.
    kernel: Vec<[Option<RingTx>; 2]>,
    kernel_rate: [Option<u32>; 2],
    pool: Mempool,
    port_ids: [u16; 2],
    hold_cap: usize,
}

/// Launches one worker per lcore of `lcores`, each on queue i of both ports, in a group that
/// `workers` (in `Appliance`) owns before the first launch.
fn launch_workers(
    kit: WorkerKit,
    lcores: &[u32],
    workers: &mut Option<LcoreGroup>,
) -> Result<(), AppError> {
    let [pub_q, priv_q] = kit.queues;
    let mut pub_rx = pub_q.rx.into_iter();
    let mut pub_tx = pub_q.tx.into_iter();
    let mut priv_rx = priv_q.rx.into_iter();
    let mut priv_tx = priv_q.tx.into_iter();
    let workers = workers.insert(LcoreGroup::new({
        let shared = kit.shared.clone();
        move || shared.running.store(false, Ordering::SeqCst)
    }));
    let mut mgmt_rings = Some(kit.mgmt);
    let mut engines = kit.engines.into_iter();
    let mut to = kit.to.into_iter();
    let mut from = kit.from.into_iter();
    let mut kernel = kit.kernel.into_iter();
    let start = TscClock::new(kit.shared.tsc_hz).ns(dpdk::tsc());
    let n = lcores.len();
    for (i, lcore) in lcores.iter().enumerate() {
        let (Some(a), Some(b), Some(c), Some(d), Some(lb), Some(to), Some(from)) = (
            pub_rx.next(),
            priv_rx.next(),
            pub_tx.next(),
            priv_tx.next(),
            engines.next(),
            to.next(),
            from.next(),
        ) else {
            return Err(AppError::Precheck("queue setup mismatch".into()));
        };
        let w = Worker::new(WorkerSetup {
            idx: i,
            shared: kit.shared.clone(),
            rxq: [a, b],
            txq: [c, d],
            mgmt: if i == 0 { mgmt_rings.take() } else { None },
            kernel: KernelUp::new(
                kernel.next().unwrap_or([None, None]),
                kit.kernel_rate
                    .map(|r| worker_bucket(r.unwrap_or(1), n, start)),
            ),
            hold_cap: kit.hold_cap,
            lb,
            handover: Handover { to, from },
            pool: kit.pool,
            port_ids: kit.port_ids,
        });
        workers.launch(*lcore, move || w.run())?;
    }
    Ok(())
}

/// The management core's state, with the configured permanent neighbours published to the
/// workers.
fn build_mgmt(
    cfg: &ApplianceConfig,
    shared: &Arc<Shared>,
    ports: &PortFacts,
    lcores: Vec<u32>,
    twins: &Twins,
) -> Arc<Mgmt> {
    let timers = NeighTimers::default();
    let mgmt = Arc::new(Mgmt {
        shared: shared.clone(),
        port_ids: ports.ids,
        drivers: ports.drivers.clone(),
        steering: ports.steering.clone(),
        tx_offloads: ports.tx_offloads.map(tx_offload_names),
        kernel: Mutex::new({
            let mut k = [String::new(), String::new()];
            for t in &twins.twins {
                k[t.role.index()] = t.describe();
            }
            k
        }),
        lcores,
        neigh: Mutex::new([
            neigh_table(&cfg.public, cfg.tables.neighbours as usize, timers),
            neigh_table(&cfg.private, cfg.tables.neighbours as usize, timers),
        ]),
        clock: TscClock::new(dpdk::tsc_hz()),
        ipvs: super::ipvs::Ipvs::new(shared.clone()),
        checks: Mutex::new(None),
    });
    for r in PortRole::ALL {
        let t = mgmt.neigh.lock().unwrap_or_else(|e| e.into_inner());
        shared.neigh[r.index()].publish(t[r.index()].snapshot());
    }
    mgmt
}

/// Applies the rules file, if any, starts the health checks, if any (their services must not
/// clash with the rules file's), then serves the control socket (the server goes to `server`,
/// in `Appliance`).
fn start_serving(
    cfg: &ApplianceConfig,
    mgmt: &Arc<Mgmt>,
    bound: server::Bound,
    server: &mut Option<server::Server>,
) -> Result<(), AppError> {
    if let Some(path) = &cfg.rules.file {
        // An error here returns with the workers running: `Appliance` stops and joins them.
        mgmt.ipvs
            .load_rules_file(path)
            .map_err(AppError::Precheck)?;
    }
    if let Some(path) = &cfg.checks.file {
        let apply = Arc::new(IpvsApply(Arc::downgrade(mgmt)));
        let opts = rvs_checks::engine::Options {
            tcp_half_open: cfg.checks.tcp_check == crate::config::TcpCheckMode::HalfOpen,
            plane: mgmt.shared.syn.clone(),
        };
        let checks = rvs_checks::engine::Checks::start(path, apply, opts)
            .map_err(|e| AppError::Precheck(format!("checks {e}")))?;
        *mgmt.checks.lock().unwrap_or_else(|e| e.into_inner()) = Some(checks);
    }
    *server = Some(bound.serve(mgmt.clone()));
    Ok(())
}

/// Tells the log and the operator that the appliance is up.
fn report_ready(cfg: &ApplianceConfig, macs: &[MacAddr; 2]) {
    let addresses = |iface: &Interface| {
        iface
            .addresses
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    tracing::info!(
        workers = cfg.workers.count as usize,
        socket = %cfg.control.socket.display(),
        "rvs ready"
    );
    eprintln!(
        "rvs: ready: {} worker(s); public {} {}; private {} {}; control {}",
        cfg.workers.count as usize,
        macs[0],
        addresses(&cfg.public),
        macs[1],
        addresses(&cfg.private),
        cfg.control.socket.display()
    );
}
