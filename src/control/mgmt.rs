//! The management core (the main lcore) once the appliance is up: the control handler
//! (`Mgmt`: port statistics, neighbours, every ipvsadm request), how the IPVS control state
//! reaches the workers (`impl Dataplane for Shared`), and the management loop: neighbour
//! resolution and gratuitous ARP, sent through worker 0's rings. Started by `control::app`.

use super::proto::{NeighReply, PortReport, PortStatsReply, Request, Response, WorkerReport};
use super::report::{EngineReport, HwPortCounters, NeighRow, PortCountersSnapshot};
use super::server::Handler;
use super::twin::Twins;
use crate::config::Interface;
use crate::dataplane::neigh::{NeighActions, NeighTable, NeighTimers};
use crate::dataplane::shared::{NeighEvent, Shared, TscClock};
use crate::dataplane::{counters, latency};
use crate::dpdk::port::stats_of;
use crate::dpdk::{self, Mempool, PortId, RingTx};
use crate::lb::stats::DropReason;
use crate::lb::{PortRole, Snapshot};
use crate::net::{arp, MacAddr};
use rvs_checks::engine::{Apply, Checks};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The running appliance, as the control handler sees it.
pub(super) struct Mgmt {
    pub(super) shared: Arc<Shared>,
    pub(super) port_ids: [PortId; 2],
    pub(super) drivers: [String; 2],
    /// How packets reach their owner core on each port (decided at start).
    pub(super) steering: [String; 2],
    /// The TX offloads enabled on each port ([`super::ports::tx_offload_names`]).
    pub(super) tx_offloads: [String; 2],
    /// Each port's kernel twin as `rvsadm --stats-ports` shows it ("" for none); the
    /// management loop updates it when a twin goes away.
    pub(super) kernel: Mutex<[String; 2]>,
    pub(super) lcores: Vec<u32>,
    pub(super) neigh: Mutex<[NeighTable; 2]>,
    pub(super) clock: TscClock,
    /// The IPVS configuration and statistics (every ipvsadm request).
    pub(super) ipvs: super::ipvs::Ipvs,
    /// The health checks, when `[checks] file` is configured; taken (and so stopped) when the
    /// management loop ends.
    pub(super) checks: Mutex<Option<Checks>>,
}

/// How the checks change the IPVS table: as one `restore`, all or nothing. Weak, so that the
/// checks (owned by `Mgmt`) do not keep `Mgmt` alive.
pub(super) struct IpvsApply(pub(super) std::sync::Weak<Mgmt>);

impl Apply for IpvsApply {
    fn apply(&self, ops: Vec<Request>) -> Result<(), String> {
        let mgmt = self.0.upgrade().ok_or("the appliance is stopping")?;
        let r = mgmt.ipvs.handle(Request::Restore { ops, lines: None });
        if r.ok {
            Ok(())
        } else {
            Err(r.error.unwrap_or_else(|| "refused".into()))
        }
    }
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
            Request::ListChecks => self.with_checks(|c| c.list().map(|r| json_ok(&r))),
            Request::ReloadChecks => self.with_checks(|c| {
                c.reload()
                    .map(|s| Response::ok(serde_json::json!({ "summary": s })))
            }),
            other => self.ipvs.handle(other),
        }
    }
}

impl Mgmt {
    /// The checker thread's heartbeat age, when the appliance runs health checks.
    pub(super) fn checks_heartbeat(&self) -> Option<f64> {
        self.checks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|c| c.heartbeat_secs())
    }

    fn with_checks(&self, f: impl FnOnce(&Checks) -> Result<Response, String>) -> Response {
        let checks = self.checks.lock().unwrap_or_else(|e| e.into_inner());
        match checks.as_ref() {
            None => Response::err(
                "no health checks: the appliance runs without a [checks] file",
                1,
            ),
            Some(c) => f(c).unwrap_or_else(|e| Response::err(e, 1)),
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
            let k = &self.shared.kernel[role.index()];
            sw.from_kernel += k.from_kernel.load(Ordering::Relaxed);
            sw.kernel_drops += k.drops.load(Ordering::Relaxed);
            let kernel =
                self.kernel.lock().unwrap_or_else(|e| e.into_inner())[role.index()].clone();
            let link = link_of(self.port_ids[role.index()]);
            ports.push(PortReport {
                role: role.name().into(),
                device: info.iface.device.clone(),
                driver: self.drivers[role.index()].clone(),
                steering: self.steering[role.index()].clone(),
                tx_offloads: self.tx_offloads[role.index()].clone(),
                kernel,
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
                engine: self.engine_report(i),
            })
            .collect();
        json_ok(&PortStatsReply { ports, workers })
    }

    fn engine_report(&self, worker: usize) -> EngineReport {
        let Some(core) = self.shared.lb_stats.get(worker) else {
            return EngineReport::default();
        };
        let e = &core.engine;
        EngineReport {
            table_entries: e.table_entries.get(),
            table_capacity: self.shared.conn_capacity(worker) as u64,
            conns_created: e.conns_created.get(),
            templates_created: e.templates_created.get(),
            conns_expired: e.conns_expired.get(),
            drops: DropReason::ALL
                .iter()
                .map(|r| (r.name().to_string(), e.drops_for(*r)))
                .collect(),
        }
    }
}

/// The control state reaches the workers through their shared state.
impl super::ipvs::Dataplane for Shared {
    fn current(&self) -> Arc<Snapshot> {
        self.lb.load()
    }

    fn publish(&self, snapshot: Snapshot) {
        self.publish_lb(snapshot);
    }

    fn core_stats(&self) -> &[Arc<crate::lb::CoreStats>] {
        &self.lb_stats
    }

    fn conn_tab_size(&self) -> u32 {
        let total = self.conn_table_entries();
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
pub(super) struct MgmtTx {
    pub(super) pool: Mempool,
    pub(super) rings: [RingTx; 2],
}

impl MgmtTx {
    /// Queues frames for worker 0 to send out of `role`; returns how many were taken (the
    /// rest stay in `b`).
    pub(super) fn enqueue(&mut self, role: PortRole, b: &mut dpdk::Burst) -> usize {
        self.rings[role.index()].enqueue(b)
    }

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

    pub(super) fn gratuitous(&mut self, role: PortRole, mac: MacAddr, ip: Ipv4Addr) {
        self.send_frame(role, |buf| arp::build_gratuitous(buf, mac, ip).ok());
    }

    /// Announces every address (VIPs and the DIP) so neighbours' caches point at us.
    pub(super) fn announce(&mut self, shared: &Shared) {
        for role in PortRole::ALL {
            let p = shared.port(role);
            for a in &p.iface.addresses {
                self.gratuitous(role, p.mac, a.addr);
            }
        }
    }
}

pub(super) fn neigh_table(iface: &Interface, capacity: usize, timers: NeighTimers) -> NeighTable {
    let mut t = NeighTable::new(capacity, timers);
    for (ip, mac) in &iface.neighbours {
        t.add_permanent(*ip, *mac);
    }
    t
}

/// The signals the management loop acts on.
pub(super) struct Signals {
    /// SIGINT/SIGTERM: stop.
    pub(super) term: Arc<AtomicBool>,
    /// SIGHUP: reload the checks file.
    pub(super) hup: Arc<AtomicBool>,
}

pub(super) fn management_loop(mgmt: &Mgmt, tx: &mut MgmtTx, twins: &mut Twins, sig: &Signals) {
    let shared = &mgmt.shared;
    let mut last_tick = 0u64;
    let mut last_garp = mgmt.clock.ns(dpdk::tsc());
    let mut garps_left = 2u32;
    while !sig.term.load(Ordering::Relaxed) {
        if sig.hup.swap(false, Ordering::Relaxed) {
            match mgmt
                .checks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
            {
                Some(c) => {
                    tracing::info!("SIGHUP: reloading the checks file");
                    c.reload_async()
                }
                None => tracing::info!("SIGHUP: no checks file configured, nothing to reload"),
            }
        }
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
            tx.announce(shared);
        }
        // Rate estimation (every 2 s inside) and purging of removed real servers.
        mgmt.ipvs.tick(now);
        // The exception path's latency is the host's RTT: poll it often while it carries
        // traffic, yet never spin (the management core may share a CPU with the host's
        // daemons). 256 frames per ring and iteration keep up with any sane kernel_rate.
        let pause = if twins.service(mgmt, tx) == 0 {
            1000
        } else {
            50
        };
        std::thread::sleep(Duration::from_micros(pause));
    }
    // Stop the checker thread before the workers and ports go: it publishes configurations.
    drop(mgmt.checks.lock().unwrap_or_else(|e| e.into_inner()).take());
}
