//! State shared between the management core and the workers. Workers only read it (or write
//! their own counters), and never block on it.

use super::counters::WorkerCounters;
use super::l3::PortInfo;
use super::neigh::NeighSnapshot;
use crate::lb::{ConnInfo, CoreStats, DestId, Lb, LbParams, PortRole, Prepared, Snapshot};
use crate::net::MacAddr;
use arc_swap::{ArcSwap, ArcSwapOption};
use crossbeam_queue::ArrayQueue;
use rvs_checks::probe::plane::SynPlane;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A value the management core replaces wholesale and workers pick up between bursts: one
/// atomic load of the generation per burst in the steady state, an Arc clone on change.
#[derive(Debug)]
pub struct Published<T> {
    gen: AtomicU64,
    val: ArcSwap<T>,
}

impl<T> Published<T> {
    pub fn new(v: T) -> Self {
        Published {
            gen: AtomicU64::new(1),
            val: ArcSwap::from_pointee(v),
        }
    }

    pub fn from_arc(v: Arc<T>) -> Self {
        Published {
            gen: AtomicU64::new(1),
            val: ArcSwap::new(v),
        }
    }

    pub fn publish(&self, v: T) {
        self.val.store(Arc::new(v));
        self.gen.fetch_add(1, Ordering::Release);
    }

    pub fn generation(&self) -> u64 {
        self.gen.load(Ordering::Acquire)
    }

    pub fn load(&self) -> Arc<T> {
        self.val.load_full()
    }
}

/// A worker's local view of a [`Published`] value.
#[derive(Debug)]
pub struct Subscribed<T> {
    gen: u64,
    pub cur: Arc<T>,
}

impl<T> Subscribed<T> {
    pub fn new(p: &Published<T>) -> Self {
        let gen = p.generation();
        Subscribed { gen, cur: p.load() }
    }

    /// Picks up a newer value; returns whether it changed.
    #[inline(always)]
    pub fn refresh(&mut self, p: &Published<T>) -> bool {
        let g = p.generation();
        if g == self.gen {
            return false;
        }
        self.gen = g;
        self.cur = p.load();
        true
    }
}

/// The management core's exception-path counters for one port.
#[derive(Debug, Default)]
pub struct KernelCounters {
    /// Frames the kernel twin transmitted, queued for the port.
    pub from_kernel: AtomicU64,
    /// Frames lost between the workers and the twin, or between the twin and the port (a
    /// full ring or twin queue, a twin that is gone).
    pub drops: AtomicU64,
}

/// Messages from workers to the management core about neighbours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeighEvent {
    /// ARP taught us `ip` is at `mac`.
    Learned {
        port: PortRole,
        ip: Ipv4Addr,
        mac: MacAddr,
        solicited: bool,
    },
    /// A worker has packets for `ip` and no MAC.
    Want { port: PortRole, ip: Ipv4Addr },
}

/// Slow requests from the management core to one worker, served between bursts with bounded
/// work per poll-loop iteration.
#[derive(Debug)]
pub enum WorkerCmd {
    /// Append up to `max` connections from `cursor` to `buf` (preallocated by the requester).
    ListConns {
        cursor: usize,
        max: usize,
        buf: Vec<ConnInfo>,
    },
    /// End the connections and templates bound to a destination.
    ExpireDest(DestId),
    /// End every connection.
    FlushConns,
}

/// A worker's answer to [`WorkerCmd::ListConns`].
#[derive(Debug)]
pub struct ConnChunk {
    pub next: Option<usize>,
    pub buf: Vec<ConnInfo>,
}

/// Connections listed per worker request: bounds the work a worker does between two bursts.
pub const LIST_CHUNK: usize = 2048;

/// Everything the management core and the workers share.
#[derive(Debug)]
pub struct Shared {
    pub running: AtomicBool,
    /// What the workers know of each port; republished when its addresses change (the kernel
    /// twin's addresses are followed at run time).
    pub ports: [Published<PortInfo>; 2],
    /// The management core's side of each port's exception path (its only writer).
    pub kernel: [KernelCounters; 2],
    pub counters: Vec<WorkerCounters>,
    pub neigh: [Published<NeighSnapshot>; 2],
    /// Workers -> management core; lock-free and bounded (a full queue loses an event, which
    /// the next packet for that neighbour raises again).
    pub events: ArrayQueue<NeighEvent>,
    pub tsc_hz: u64,
    /// The load-balancing configuration workers run with.
    pub lb: Published<Snapshot>,
    /// Per worker, the schedulers prepared for the latest snapshot (`Lb::prepare`), which the
    /// worker takes when it picks the snapshot up; stored before the snapshot is published.
    prepared: Vec<ArcSwapOption<Prepared>>,
    /// Each worker's engine parameters, to prepare its schedulers with.
    lb_params: Vec<LbParams>,
    /// Each worker's load-balancing counters (written by that worker only).
    pub lb_stats: Vec<Arc<CoreStats>>,
    /// Management core -> worker requests, and the answers.
    pub cmds: Vec<ArrayQueue<WorkerCmd>>,
    pub chunks: Vec<ArrayQueue<ConnChunk>>,
    /// One lister at a time, so answers are not interleaved (management side only).
    list_lock: Mutex<()>,
    /// The half-open health checks' queues, when they run through the data plane: worker 0
    /// sends the SYNs, every worker hands back the answers it receives.
    pub syn: Option<Arc<SynPlane>>,
}

impl Shared {
    /// The state of workers running `engines` (in worker order) from `snapshot`.
    pub fn new(ports: [PortInfo; 2], tsc_hz: u64, snapshot: Arc<Snapshot>, engines: &[Lb]) -> Self {
        let workers = engines.len();
        let lb = Published::from_arc(snapshot);
        let lb_stats = engines.iter().map(|e| e.stats().clone()).collect();
        let lb_params: Vec<LbParams> = engines.iter().map(|e| e.params().clone()).collect();
        let [public, private] = ports;
        Shared {
            running: AtomicBool::new(true),
            ports: [Published::new(public), Published::new(private)],
            kernel: Default::default(),
            counters: (0..workers).map(|_| WorkerCounters::default()).collect(),
            neigh: [
                Published::new(NeighSnapshot::default()),
                Published::new(NeighSnapshot::default()),
            ],
            events: ArrayQueue::new(4096),
            tsc_hz,
            lb,
            prepared: (0..workers).map(|_| ArcSwapOption::empty()).collect(),
            lb_params,
            lb_stats,
            cmds: (0..workers).map(|_| ArrayQueue::new(64)).collect(),
            chunks: (0..workers).map(|_| ArrayQueue::new(4)).collect(),
            list_lock: Mutex::new(()),
            syn: None,
        }
    }

    pub fn workers(&self) -> usize {
        self.lb_stats.len()
    }

    /// Worker `idx`'s connection-table capacity (0 for no such worker).
    pub fn conn_capacity(&self, idx: usize) -> usize {
        self.lb_params.get(idx).map_or(0, |p| p.conn_capacity)
    }

    /// Connection-table entries over all workers.
    pub fn conn_table_entries(&self) -> usize {
        self.lb_params.iter().map(|p| p.conn_capacity).sum()
    }

    /// Publishes a new load-balancing configuration (management core, one publisher), with
    /// each worker's schedulers built here rather than on the worker between bursts.
    pub fn publish_lb(&self, snapshot: Snapshot) {
        let prev = self.lb.load();
        for (slot, params) in self.prepared.iter().zip(&self.lb_params) {
            slot.store(Some(Arc::new(Lb::prepare(params, &prev, &snapshot))));
        }
        self.lb.publish(snapshot);
    }

    /// The schedulers prepared for worker `idx` and the snapshot of `generation`, taken (once)
    /// by that worker when it picks the snapshot up; `None` if there are none for that
    /// snapshot (then it builds its own). Schedulers prepared for another snapshot stay for it.
    pub fn take_prepared(&self, idx: usize, generation: u64) -> Option<Prepared> {
        let slot = self.prepared.get(idx)?;
        let ours = slot
            .load()
            .as_ref()
            .is_some_and(|p| p.generation() == generation);
        if !ours {
            return None;
        }
        // Replaced in between (a newer publication): that one is lost, and the worker builds
        // what the newer snapshot needs itself. Correct, and as rare as two publications
        // within these few instructions.
        let p = slot.swap(None)?;
        if p.generation() != generation {
            return None;
        }
        Arc::try_unwrap(p).ok()
    }

    /// The current view of a port (management side; workers keep a [`Subscribed`] one).
    pub fn port(&self, role: PortRole) -> Arc<PortInfo> {
        self.ports[role.index()].load()
    }

    /// Every connection of every worker, gathered chunk by chunk (workers answer between
    /// bursts, so a million connections never stall packet processing). Blocks the caller.
    pub fn list_conns(&self) -> Result<Vec<ConnInfo>, String> {
        let _g = self.list_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut all = Vec::new();
        for w in 0..self.workers() {
            while self.chunks[w].pop().is_some() {}
            let mut cursor = 0;
            loop {
                let cmd = WorkerCmd::ListConns {
                    cursor,
                    max: LIST_CHUNK,
                    buf: Vec::with_capacity(LIST_CHUNK),
                };
                if self.cmds[w].push(cmd).is_err() {
                    return Err(format!("worker {w} is busy; try again"));
                }
                let t = Instant::now();
                let chunk = loop {
                    if let Some(c) = self.chunks[w].pop() {
                        break c;
                    }
                    if !self.running.load(Ordering::Relaxed) || t.elapsed() > Duration::from_secs(5)
                    {
                        return Err(format!("worker {w} did not answer"));
                    }
                    std::thread::sleep(Duration::from_micros(200));
                };
                all.extend(chunk.buf);
                match chunk.next {
                    Some(c) => cursor = c,
                    None => break,
                }
            }
        }
        Ok(all)
    }

    /// Asks every worker to end the connections bound to `dest`.
    pub fn expire_dest_conns(&self, dest: DestId) {
        for q in &self.cmds {
            let _ = q.push(WorkerCmd::ExpireDest(dest));
        }
    }

    /// Asks every worker to end all connections.
    pub fn flush_conns(&self) {
        for q in &self.cmds {
            let _ = q.push(WorkerCmd::FlushConns);
        }
    }
}

/// Converts TSC ticks to nanoseconds with one multiply and shift (no division per burst).
#[derive(Debug, Clone, Copy)]
pub struct TscClock {
    mult: u128,
}

impl TscClock {
    pub fn new(hz: u64) -> Self {
        let hz = hz.max(1) as u128;
        TscClock {
            mult: (1_000_000_000u128 << 32) / hz,
        }
    }

    #[inline(always)]
    pub fn ns(&self, tsc: u64) -> u64 {
        ((tsc as u128 * self.mult) >> 32) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsc_clock_converts() {
        let c = TscClock::new(2_500_000_000);
        let one_sec = c.ns(2_500_000_000) as i64;
        assert!((one_sec - 1_000_000_000).abs() <= 1, "{one_sec}");
        let err = (c.ns(25_000_000_000_000) as i128 - 10_000_000_000_000i128).abs();
        assert!(err < 10_000, "{err}");
    }

    #[test]
    fn subscription_sees_new_values_once() {
        let p = Published::new(1u32);
        let mut s = Subscribed::new(&p);
        assert!(!s.refresh(&p));
        p.publish(2);
        assert!(s.refresh(&p));
        assert_eq!(*s.cur, 2);
        assert!(!s.refresh(&p));
    }

    #[test]
    fn published_snapshots_carry_each_workers_prepared_schedulers() {
        use crate::lb::config::{DestSpec, ServiceKey, ServiceSpec};
        let port = super::super::l3::tests::port;
        let empty = Arc::new(Snapshot::empty());
        let engines: Vec<Lb> = (0..2)
            .map(|i| {
                let params = LbParams {
                    conn_capacity: 1024,
                    core_id: i,
                    n_cores: 2,
                    ..LbParams::default()
                };
                Lb::new(params, empty.clone())
            })
            .collect();
        let shared = Shared::new([port(), port()], 1, empty, &engines);
        let web = ServiceKey::tcp(Ipv4Addr::new(10, 0, 0, 13), 80);
        let snap = Snapshot::empty()
            .add_service(ServiceSpec::new(web).scheduler("mh"))
            .and_then(|s| s.add_dest(&web, DestSpec::new(Ipv4Addr::new(192, 168, 8, 14), 80)))
            .unwrap();
        shared.publish_lb(snap);
        for (i, mut lb) in engines.into_iter().enumerate() {
            let mut sub = Subscribed::new(&shared.lb);
            assert!(!sub.refresh(&shared.lb));
            let generation = sub.cur.generation();
            assert!(
                shared.take_prepared(i, generation + 1).is_none(),
                "not another's"
            );
            let p = shared.take_prepared(i, generation);
            assert!(p.is_some(), "worker {i} has its schedulers");
            assert!(shared.take_prepared(i, generation).is_none(), "taken once");
            lb.apply_prepared(sub.cur.clone(), p);
            assert_eq!(lb.stats().engine.scheds_built.get(), 0);
        }
        assert!(shared.take_prepared(2, 0).is_none());
    }
}
