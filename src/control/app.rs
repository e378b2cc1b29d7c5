//! Bringing the appliance up and down, and the management core's loop (on the main lcore):
//! neighbour resolution, gratuitous ARP, signals. Workers run on the other lcores.

use super::ports::{bring_up_port, choose_steering, tx_offload_names};
use super::proto::{NeighReply, PortReport, PortStatsReply, Request, Response, WorkerReport};
use super::report::{HwPortCounters, NeighRow, PortCountersSnapshot};
use super::server::{self, Handler};
use crate::config::{ApplianceConfig, Interface};
use crate::dataplane::l3::PortInfo;
use crate::dataplane::neigh::{NeighActions, NeighTable, NeighTimers};
use crate::dataplane::shared::{NeighEvent, Shared, TscClock};
use crate::dataplane::worker::{Handover, Worker, WorkerSetup};
use crate::dataplane::{counters, latency};
use crate::dpdk::port::stats_of;
use crate::dpdk::{self, Eal, Mempool, Port, PortId, RingTx};
use crate::lb::conn::MemAdvice;
use crate::lb::{Lb, LbParams, PortRole, Snapshot};
use crate::net::{arp, MacAddr};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

/// The running appliance, as the control handler sees it.
struct Mgmt {
    shared: Arc<Shared>,
    port_ids: [PortId; 2],
    drivers: [String; 2],
    /// How packets reach their owner core on each port (decided at start).
    steering: [String; 2],
    /// The TX offloads enabled on each port ([`tx_offload_names`]).
    tx_offloads: [String; 2],
    lcores: Vec<u32>,
    neigh: Mutex<[NeighTable; 2]>,
    clock: TscClock,
    /// The IPVS configuration and statistics (every ipvsadm request).
    ipvs: super::ipvs::Ipvs,
}

impl Handler for Mgmt {
    fn handle(&self, req: Request) -> Response {
        match req {
            Request::Ping => Response::ok(serde_json::json!({
                "version": env!("CARGO_PKG_VERSION"),
            })),
            Request::PortStats => self.port_stats(),
            Request::Neighbours => {
                let now = self.clock.ns(dpdk::tsc());
                let t = self.neigh.lock().unwrap_or_else(|e| e.into_inner());
                let rows: Vec<(String, Vec<NeighRow>)> = PortRole::ALL
                    .iter()
                    .map(|r| (r.name().to_string(), t[r.index()].rows(now)))
                    .collect();
                json_ok(&NeighReply { ports: rows })
            }
            other => self.ipvs.handle(other),
        }
    }
}

fn json_ok<T: serde::Serialize>(v: &T) -> Response {
    match serde_json::to_value(v) {
        Ok(v) => Response::ok(v),
        Err(e) => Response::err(format!("internal error: {e}"), 255),
    }
}

impl Mgmt {
    fn port_stats(&self) -> Response {
        let mut ports = Vec::new();
        for role in PortRole::ALL {
            let info = self.shared.port(role);
            let mut sw = PortCountersSnapshot::default();
            for w in &self.shared.counters {
                sw.add(&counters::snapshot(w.port(role)));
            }
            let link = link_of(self.port_ids[role.index()]);
            ports.push(PortReport {
                role: role.name().into(),
                device: info.iface.device.clone(),
                driver: self.drivers[role.index()].clone(),
                steering: self.steering[role.index()].clone(),
                tx_offloads: self.tx_offloads[role.index()].clone(),
                mac: info.mac.to_string(),
                addresses: info.iface.addresses.iter().map(|a| a.to_string()).collect(),
                link_up: link.up,
                speed_mbps: link.speed_mbps,
                hw: stats_of(self.port_ids[role.index()])
                    .map(hw_counters)
                    .unwrap_or_default(),
                sw,
            });
        }
        let workers = self
            .shared
            .counters
            .iter()
            .enumerate()
            .map(|(i, w)| WorkerReport {
                worker: i,
                lcore: self.lcores.get(i).copied().unwrap_or(0),
                handed_in: w.handed_in.load(Ordering::Relaxed),
                loops: w.loops.load(Ordering::Relaxed),
                latency: latency::report(&[&w.latency], self.shared.tsc_hz),
                ports: PortRole::ALL
                    .iter()
                    .map(|r| counters::snapshot(w.port(*r)))
                    .collect(),
            })
            .collect();
        json_ok(&PortStatsReply { ports, workers })
    }
}

/// The control state reaches the workers through their shared state.
impl super::ipvs::Dataplane for Shared {
    fn current(&self) -> Arc<Snapshot> {
        self.lb.load()
    }

    fn publish(&self, snapshot: Snapshot) {
        self.lb.publish(snapshot);
    }

    fn core_stats(&self) -> &[Arc<crate::lb::CoreStats>] {
        &self.lb_stats
    }

    fn conn_tab_size(&self) -> u32 {
        let total = self.conn_capacity.saturating_mul(self.lb_stats.len());
        u32::try_from(total).unwrap_or(u32::MAX)
    }

    fn list_conns(&self) -> Result<Vec<crate::lb::ConnInfo>, String> {
        Shared::list_conns(self)
    }

    fn expire_dest_conns(&self, dest: crate::lb::DestId) {
        Shared::expire_dest_conns(self, dest);
    }
}

/// The NIC counters as the control protocol reports them.
fn hw_counters(s: dpdk::PortStats) -> HwPortCounters {
    HwPortCounters {
        ipackets: s.ipackets,
        opackets: s.opackets,
        ibytes: s.ibytes,
        obytes: s.obytes,
        imissed: s.imissed,
        ierrors: s.ierrors,
        oerrors: s.oerrors,
        rx_nombuf: s.rx_nombuf,
    }
}

fn link_of(id: PortId) -> dpdk::LinkStatus {
    // Link state through a temporary handle would close the port on drop; query by id.
    dpdk::port::link_of(id)
}

/// Builds and sends management frames through worker 0's rings.
struct MgmtTx {
    pool: Mempool,
    rings: [RingTx; 2],
}

impl MgmtTx {
    fn send_frame(&mut self, role: PortRole, build: impl FnOnce(&mut [u8]) -> Option<usize>) {
        let Some(mut m) = self.pool.alloc() else {
            return;
        };
        if m.set_len(arp::FRAME_LEN).is_err() {
            return;
        }
        let Some(n) = build(m.data_mut()) else {
            return;
        };
        if m.set_len(n).is_err() {
            return;
        }
        let mut b = dpdk::Burst::new();
        let _ = b.push(m);
        self.rings[role.index()].enqueue(&mut b);
        // Whatever did not fit is freed with `b`.
    }

    fn arp_request(&mut self, role: PortRole, mac: MacAddr, iface: &Interface, target: Ipv4Addr) {
        let src = iface
            .addresses
            .iter()
            .find(|a| a.contains(target))
            .map(|a| a.addr)
            .unwrap_or_else(|| iface.primary());
        self.send_frame(role, |buf| arp::build_request(buf, mac, src, target).ok());
    }

    fn gratuitous(&mut self, role: PortRole, mac: MacAddr, ip: Ipv4Addr) {
        self.send_frame(role, |buf| arp::build_gratuitous(buf, mac, ip).ok());
    }
}

/// Runs the appliance until SIGINT/SIGTERM. Returns after a clean shutdown.
pub fn run(cfg: ApplianceConfig) -> Result<(), AppError> {
    precheck(&cfg)?;
    // Bind the control socket before EAL so "in use" fails fast and touches no device.
    let bound = server::bind(&cfg.control.socket, &cfg.control.group)?;

    let term = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, term.clone())
            .map_err(|e| AppError::Precheck(format!("cannot install signal handler: {e}")))?;
    }

    let eal = Eal::init(&cfg.eal_args()).map_err(|e| {
        AppError::Precheck(format!(
            "EAL initialisation failed: {} (check hugepages, lcores and device arguments)",
            e.text
        ))
    })?;
    let mut app = Appliance {
        server: None,
        workers: None,
        ports: Vec::new(),
        _eal: eal,
    };
    let result = run_with_eal(&cfg, bound, term, &mut app);
    drop(app);
    if result.is_ok() {
        eprintln!("rvs: stopped");
    }
    result
}

/// Everything that reaches into DPDK, owned in the order it must be torn down: Rust drops
/// fields in declaration order, so whatever path leaves `run` (a clean stop, or an error at any
/// step of the start), the control clients are disconnected and joined first (they read port
/// statistics), then the workers are stopped and joined, then the ports are stopped and closed,
/// and only then does `rte_eal_cleanup` run.
struct Appliance {
    server: Option<server::Server>,
    workers: Option<dpdk::LcoreGroup>,
    ports: Vec<Port>,
    _eal: Eal,
}

fn run_with_eal(
    cfg: &ApplianceConfig,
    bound: server::Bound,
    term: Arc<AtomicBool>,
    app: &mut Appliance,
) -> Result<(), AppError> {
    let nworkers = cfg.workers.count as usize;
    let lcores = dpdk::worker_lcores();
    if lcores.len() < nworkers {
        return Err(AppError::Precheck(format!(
            "{} worker lcores available, {nworkers} configured",
            lcores.len()
        )));
    }
    let pool = Mempool::new("rvs_pkts", cfg.tables.mbufs, 256, cfg.tables.mbuf_size, 0)?;

    let mut ups = Vec::new();
    for (role, iface) in [
        (PortRole::Public, &cfg.public),
        (PortRole::Private, &cfg.private),
    ] {
        ups.push(bring_up_port(
            role,
            &iface.device,
            iface.mtu,
            iface.tx_checksum_offload,
            nworkers,
            &pool,
            None,
        )?);
    }
    let (steer, steerings) = choose_steering([&ups[0].steering, &ups[1].steering], nworkers);
    let ports = &mut app.ports;
    let mut queues = Vec::new();
    let mut drivers = Vec::new();
    let mut tx_offloads = Vec::new();
    for ((role, iface), up) in [
        (PortRole::Public, &cfg.public),
        (PortRole::Private, &cfg.private),
    ]
    .into_iter()
    .zip(ups)
    {
        tracing::info!(
            port = role.name(),
            device = %iface.device,
            driver = %up.info.driver,
            steering = steerings[role.index()].as_str(),
            tx_offloads = %tx_offload_names(up.tx_offloads),
            "port started"
        );
        drivers.push(up.info.driver);
        tx_offloads.push(up.tx_offloads);
        queues.push((up.rxq, up.txq));
        ports.push(up.port);
    }
    let macs = [MacAddr(ports[0].mac()?), MacAddr(ports[1].mac()?)];
    let port_infos = [
        PortInfo {
            role: PortRole::Public,
            mac: macs[0],
            iface: cfg.public.clone(),
            tx_ip_csum: tx_offloads[0] & dpdk::port::TX_OFFLOAD_IPV4_CKSUM != 0,
        },
        PortInfo {
            role: PortRole::Private,
            mac: macs[1],
            iface: cfg.private.clone(),
            tx_ip_csum: tx_offloads[1] & dpdk::port::TX_OFFLOAD_IPV4_CKSUM != 0,
        },
    ];
    // One load-balancing engine per worker, built here (allocation happens off the workers).
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
                    ..LbParams::default()
                },
                snapshot.clone(),
                steer.clone(),
            )
        })
        .collect();
    let lb_stats = engines.iter().map(|e| e.stats().clone()).collect();
    let shared = Arc::new(Shared::new(
        port_infos,
        dpdk::tsc_hz(),
        snapshot,
        lb_stats,
        cfg.tables.connections as usize,
    ));
    // Handover rings: one SPSC ring per ordered pair of workers.
    let mut to: Vec<Vec<Option<dpdk::RingTx>>> = (0..nworkers)
        .map(|_| (0..nworkers).map(|_| None).collect())
        .collect();
    let mut from: Vec<Vec<Option<dpdk::RingRx>>> = (0..nworkers)
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
    let port_ids = [ports[0].id().0, ports[1].id().0];
    let (mgmt_pub_tx, mgmt_pub_rx) = dpdk::mbuf_ring("rvs_mgmt_pub", 1024, 0)?;
    let (mgmt_priv_tx, mgmt_priv_rx) = dpdk::mbuf_ring("rvs_mgmt_priv", 1024, 0)?;
    let mut mgmt_rings = Some([mgmt_pub_rx, mgmt_priv_rx]);

    // Hand each worker its queues: queue i of both ports.
    let (pub_q, priv_q) = {
        let mut it = queues.into_iter();
        let a = it
            .next()
            .ok_or_else(|| AppError::Precheck("no public queues".into()))?;
        let b = it
            .next()
            .ok_or_else(|| AppError::Precheck("no private queues".into()))?;
        (a, b)
    };
    let mut pub_rx = pub_q.0.into_iter();
    let mut pub_tx = pub_q.1.into_iter();
    let mut priv_rx = priv_q.0.into_iter();
    let mut priv_tx = priv_q.1.into_iter();
    let workers = app.workers.insert(dpdk::LcoreGroup::new({
        let shared = shared.clone();
        move || shared.running.store(false, Ordering::SeqCst)
    }));
    let mut engines = engines.into_iter();
    let mut to = to.into_iter();
    let mut from = from.into_iter();
    for (i, lcore) in lcores.iter().take(nworkers).enumerate() {
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
            shared: shared.clone(),
            rxq: [a, b],
            txq: [c, d],
            mgmt: if i == 0 { mgmt_rings.take() } else { None },
            hold_cap: cfg.tables.arp_hold as usize,
            lb,
            handover: Handover { to, from },
            pool,
            port_ids,
        });
        workers.launch(*lcore, move || w.run())?;
    }

    let timers = NeighTimers::default();
    let mgmt = Arc::new(Mgmt {
        shared: shared.clone(),
        port_ids: [ports[0].id(), ports[1].id()],
        drivers: [drivers[0].clone(), drivers[1].clone()],
        steering: steerings,
        tx_offloads: [
            tx_offload_names(tx_offloads[0]),
            tx_offload_names(tx_offloads[1]),
        ],
        lcores: lcores.iter().take(nworkers).copied().collect(),
        neigh: Mutex::new([
            neigh_table(&cfg.public, cfg.tables.neighbours as usize, timers),
            neigh_table(&cfg.private, cfg.tables.neighbours as usize, timers),
        ]),
        clock: TscClock::new(dpdk::tsc_hz()),
        ipvs: super::ipvs::Ipvs::new(shared.clone()),
    });
    for r in PortRole::ALL {
        let t = mgmt.neigh.lock().unwrap_or_else(|e| e.into_inner());
        shared.neigh[r.index()].publish(t[r.index()].snapshot());
    }
    if let Some(path) = &cfg.rules.file {
        // An error here returns with the workers running: `Appliance` stops and joins them.
        mgmt.ipvs
            .load_rules_file(path)
            .map_err(AppError::Precheck)?;
    }
    app.server = Some(bound.serve(mgmt.clone()));
    let mut tx = MgmtTx {
        pool,
        rings: [mgmt_pub_tx, mgmt_priv_tx],
    };

    // Announce every address (VIPs and the DIP) so neighbours' caches point at us.
    for role in PortRole::ALL {
        let p = shared.port(role);
        for a in &p.iface.addresses {
            tx.gratuitous(role, p.mac, a.addr);
        }
    }
    tracing::info!(
        workers = nworkers,
        socket = %cfg.control.socket.display(),
        "rvs ready"
    );
    eprintln!(
        "rvs: ready: {} worker(s); public {} {}; private {} {}; control {}",
        nworkers,
        macs[0],
        cfg.public
            .addresses
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(","),
        macs[1],
        cfg.private
            .addresses
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(","),
        cfg.control.socket.display()
    );

    management_loop(&mgmt, &mut tx, &term);
    // Shutdown: `Appliance` (dropped by the caller) disconnects the clients, stops the
    // workers and the ports, then cleans up the EAL.
    Ok(())
}

fn neigh_table(iface: &Interface, capacity: usize, timers: NeighTimers) -> NeighTable {
    let mut t = NeighTable::new(capacity, timers);
    for (ip, mac) in &iface.neighbours {
        t.add_permanent(*ip, *mac);
    }
    t
}

fn management_loop(mgmt: &Mgmt, tx: &mut MgmtTx, term: &AtomicBool) {
    let shared = &mgmt.shared;
    let mut last_tick = 0u64;
    let mut last_garp = mgmt.clock.ns(dpdk::tsc());
    let mut garps_left = 2u32;
    while !term.load(Ordering::Relaxed) {
        let now = mgmt.clock.ns(dpdk::tsc());
        let mut acts = [NeighActions::default(), NeighActions::default()];
        {
            let mut tables = mgmt.neigh.lock().unwrap_or_else(|e| e.into_inner());
            while let Some(ev) = shared.events.pop() {
                match ev {
                    NeighEvent::Learned {
                        port,
                        ip,
                        mac,
                        solicited,
                    } => {
                        tables[port.index()].learn(ip, mac, solicited, now, &mut acts[port.index()])
                    }
                    NeighEvent::Want { port, ip } => {
                        tables[port.index()].touch(ip);
                        tables[port.index()].want(ip, now, &mut acts[port.index()])
                    }
                }
            }
            if now.saturating_sub(last_tick) >= 100_000_000 {
                last_tick = now;
                for r in PortRole::ALL {
                    tables[r.index()].tick(now, &mut acts[r.index()]);
                }
            }
            for r in PortRole::ALL {
                if acts[r.index()].changed {
                    shared.neigh[r.index()].publish(tables[r.index()].snapshot());
                }
            }
        }
        for r in PortRole::ALL {
            let p = shared.port(r);
            for ip in std::mem::take(&mut acts[r.index()].probe) {
                tx.arp_request(r, p.mac, &p.iface, ip);
            }
        }
        // Repeat the start-up announcement a couple of times, a second apart, in case the
        // first went out before the link was up.
        if garps_left > 0 && now.saturating_sub(last_garp) >= 1_000_000_000 {
            garps_left -= 1;
            last_garp = now;
            for role in PortRole::ALL {
                let p = shared.port(role);
                for a in &p.iface.addresses {
                    tx.gratuitous(role, p.mac, a.addr);
                }
            }
        }
        // Rate estimation (every 2 s inside) and purging of removed real servers.
        mgmt.ipvs.tick(now);
        std::thread::sleep(Duration::from_millis(2));
    }
}
