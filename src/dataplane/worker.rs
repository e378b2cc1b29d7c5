//! The worker poll loop: one per worker lcore, never sleeping, never blocking.

use super::counters::{bump, PortDropReason, WorkerCounters};
use super::kernel::KernelUp;
use super::l3::{self, PortInfo, ReplyKind, Rx};
use super::neigh::NeighSnapshot;
use super::shared::{ConnChunk, NeighEvent, Shared, Subscribed, TscClock, WorkerCmd};
use super::synprobe;
use crate::dpdk::{self, Burst, Mbuf, Mempool, RingRx, RingTx, RxQueue, TxQueue, BURST_SIZE};
use crate::lb::{self, DestId, Lb, Lookup, PortRole, Snapshot, Time, Verdict, NANOS_PER_SEC};
use crate::net::ipv4::Ipv4Repr;
use crate::net::{ethernet, icmp, MacAddr};
use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// How long a packet may wait for its next hop to be resolved.
const HOLD_TIME: Time = NANOS_PER_SEC;

/// A packet waiting for ARP.
struct Held {
    mbuf: Mbuf,
    port: PortRole,
    next_hop: Ipv4Addr,
    deadline: Time,
}

/// ICMP errors a worker may send per second (a flood of bad packets must not become a flood
/// of replies).
const ICMP_ERRORS_PER_SEC: u64 = 1000;

/// Slots of the connection table a pending expire/flush request walks per loop iteration.
const EXPIRE_BUDGET: usize = 1024;

/// Connection-expiry work per loop iteration.
const TICK_BUDGET: usize = 64;

/// Half-open health-check SYNs worker 0 sends per loop iteration, at most.
const SYN_BUDGET: usize = 32;

/// ... and how long it lets them gather first: one TX burst (one doorbell, on af_packet one
/// syscall) per millisecond instead of one per SYN; a check's answer is 1 ms later at most.
const SYN_GATHER: Time = NANOS_PER_SEC / 1000;

/// One burst in this many carries a latency sample (two TSC reads).
const LATENCY_SAMPLE_EVERY: u32 = 16;

/// A packet this core owns, waiting for the rest of its burst before the load balancer runs on
/// it: the burst's connection-table lines are prefetched first so that their misses overlap.
#[derive(Debug, Clone, Copy)]
struct Pending {
    role: PortRole,
    l3: u16,
    handed_in: bool,
    /// The header, parsed once on arrival.
    h: Ipv4Repr,
    /// The connection-table lookup the load balancer will make (`Lb::prefetch_lookup`).
    lookup: Lookup,
}

const NO_PENDING: Pending = Pending {
    role: PortRole::Public,
    l3: 0,
    handed_in: false,
    h: Ipv4Repr {
        header_len: 0,
        total_len: 0,
        protocol: 0,
        src: Ipv4Addr::UNSPECIFIED,
        dst: Ipv4Addr::UNSPECIFIED,
        ttl: 0,
        dont_frag: false,
        more_frags: false,
        frag_offset: 0,
        ident: 0,
        ports: None,
    },
    lookup: Lookup::NONE,
};

/// The rings between this worker and every other one, for handing packets to their owner.
pub struct Handover {
    /// `to[j]` carries packets to worker j (None for ourselves).
    pub to: Vec<Option<RingTx>>,
    /// `from[j]` carries packets from worker j.
    pub from: Vec<Option<RingRx>>,
}

/// A pending connection expiry request being worked through in chunks.
#[derive(Debug, Clone, Copy)]
enum Expiring {
    Dest(DestId, usize),
    All(usize),
}

/// Everything one worker owns.
pub struct Worker {
    idx: usize,
    shared: Arc<Shared>,
    rxq: [RxQueue; 2],
    txq: [TxQueue; 2],
    tx: [Burst; 2],
    /// Frames built by the management core (ARP requests, gratuitous ARP) to transmit; only
    /// worker 0 has them.
    mgmt: Option<[RingRx; 2]>,
    /// What goes up to the ports' kernel twins.
    kernel: KernelUp,
    /// The ports as last published (their addresses follow the kernel twins').
    ports: [Subscribed<PortInfo>; 2],
    neigh: [Subscribed<NeighSnapshot>; 2],
    /// Preallocated; never grows past its capacity.
    hold: Vec<Held>,
    hold_cap: usize,
    clock: TscClock,
    lb: Lb,
    lb_snap: Subscribed<Snapshot>,
    handover: Handover,
    /// Per destination core, packets waiting to be enqueued on its ring.
    ho_out: Vec<Burst>,
    pool: Mempool,
    icmp_tokens: u64,
    icmp_refill: Time,
    expiring: Option<Expiring>,
    /// Port id -> role, for packets handed in from other cores.
    port_ids: [u16; 2],
    /// Owned packets of the current burst, and what is known of each (same order).
    pending: Burst,
    pending_meta: [Pending; BURST_SIZE],
    /// Non-empty poll iterations, for latency sampling.
    busy_loops: u32,
    /// When worker 0 next sends the health checks' SYNs (`SYN_GATHER`).
    syn_due: Time,
}

/// The construction inputs of a worker.
pub struct WorkerSetup {
    pub idx: usize,
    pub shared: Arc<Shared>,
    pub rxq: [RxQueue; 2],
    pub txq: [TxQueue; 2],
    pub mgmt: Option<[RingRx; 2]>,
    pub kernel: KernelUp,
    pub hold_cap: usize,
    pub lb: Lb,
    pub handover: Handover,
    pub pool: Mempool,
    pub port_ids: [u16; 2],
}

impl Worker {
    pub fn new(s: WorkerSetup) -> Self {
        let shared = s.shared;
        let neigh = [
            Subscribed::new(&shared.neigh[0]),
            Subscribed::new(&shared.neigh[1]),
        ];
        let clock = TscClock::new(shared.tsc_hz);
        let lb_snap = Subscribed::new(&shared.lb);
        let ports = [
            Subscribed::new(&shared.ports[0]),
            Subscribed::new(&shared.ports[1]),
        ];
        let n = shared.workers();
        Worker {
            idx: s.idx,
            rxq: s.rxq,
            txq: s.txq,
            tx: [Burst::new(), Burst::new()],
            mgmt: s.mgmt,
            kernel: s.kernel,
            ports,
            neigh,
            hold: Vec::with_capacity(s.hold_cap),
            hold_cap: s.hold_cap,
            clock,
            lb: s.lb,
            lb_snap,
            handover: s.handover,
            ho_out: (0..n).map(|_| Burst::new()).collect(),
            pool: s.pool,
            icmp_tokens: ICMP_ERRORS_PER_SEC,
            icmp_refill: 0,
            expiring: None,
            port_ids: s.port_ids,
            pending: Burst::new(),
            pending_meta: [NO_PENDING; BURST_SIZE],
            busy_loops: 0,
            syn_due: 0,
            shared,
        }
    }

    fn counters(&self) -> &WorkerCounters {
        &self.shared.counters[self.idx]
    }

    /// Polls until the management core clears `running`.
    pub fn run(mut self) -> i32 {
        let mut rx = Burst::new();
        let mut spare = Burst::new();
        while self.shared.running.load(Ordering::Relaxed) {
            let now = self.clock.ns(dpdk::tsc());
            let mut neigh_changed = false;
            for r in PortRole::ALL {
                self.ports[r.index()].refresh(&self.shared.ports[r.index()]);
                neigh_changed |= self.neigh[r.index()].refresh(&self.shared.neigh[r.index()]);
            }
            if neigh_changed || !self.hold.is_empty() {
                self.service_hold(now);
            }
            if self.lb_snap.refresh(&self.shared.lb) {
                let generation = self.lb_snap.cur.generation();
                let prepared = self.shared.take_prepared(self.idx, generation);
                self.lb.apply_prepared(self.lb_snap.cur.clone(), prepared);
            }
            // TSC at the return of this iteration's first non-empty RX burst, when sampled.
            let mut rx_tsc = 0;
            self.receive_handed_in(&mut rx, now);
            for role in PortRole::ALL {
                let n = self.rxq[role.index()].rx_burst(&mut rx);
                if n == 0 {
                    continue;
                }
                if rx_tsc == 0 {
                    self.busy_loops = self.busy_loops.wrapping_add(1);
                    if self.busy_loops % LATENCY_SAMPLE_EVERY == 0 {
                        rx_tsc = dpdk::tsc();
                    }
                }
                let c = &self.shared.counters[self.idx].ports[role.index()];
                bump(&c.rx_packets, n as u64);
                let mut it = rx.drain();
                while let Some(m) = it.next() {
                    dpdk::prefetch(it.peek_data_ptr(1));
                    self.handle(m, role, now);
                }
                self.run_pending(now);
            }
            if let Some(mut rings) = self.mgmt.take() {
                for role in PortRole::ALL {
                    if rings[role.index()].dequeue(&mut spare) > 0 {
                        for m in spare.drain() {
                            self.send(role, m);
                        }
                    }
                }
                self.mgmt = Some(rings);
                self.send_syns(now);
            }
            for role in PortRole::ALL {
                self.flush(role);
            }
            if rx_tsc != 0 {
                self.counters()
                    .latency
                    .record(dpdk::tsc().wrapping_sub(rx_tsc));
            }
            self.flush_handover();
            let c = &self.shared.counters[self.idx];
            self.kernel.flush([&c.ports[0], &c.ports[1]]);
            self.lb.tick(now, TICK_BUDGET);
            self.serve_command(now);
            if now >= self.icmp_refill {
                self.icmp_tokens = ICMP_ERRORS_PER_SEC;
                self.icmp_refill = now + NANOS_PER_SEC;
            }
            bump(&self.counters().loops, 1);
        }
        0
    }

    #[inline(always)]
    fn handle(&mut self, mut m: Mbuf, role: PortRole, now: Time) {
        let c = &self.shared.counters[self.idx].ports[role.index()];
        bump(&c.rx_bytes, m.len() as u64);
        if m.is_chained() {
            c.drop(PortDropReason::Chained);
            return;
        }
        if self.ports[role.index()].cur.iface.kernel.is_some() && l3::is_arp(m.data()) {
            // Before rvs answers it in place: the kernel keeps its own neighbour table.
            self.copy_up(role, &m, now);
        }
        let shared = &*self.shared;
        let c = &shared.counters[self.idx].ports[role.index()];
        let port = &*self.ports[role.index()].cur;
        let mut learned = None;
        let rx = l3::receive(m.data_mut(), port, &mut learned);
        // Answers to the data plane's health-check SYNs are taken before the exception path
        // (and the load balancer) would see them; the test is on the private port only, and
        // for packets the load balancer gets, a look at the parsed header.
        if let (PortRole::Private, Some(plane)) = (role, &shared.syn) {
            if let Some(reset) = synprobe::take(m.data_mut(), port, &rx, plane) {
                if reset.is_some_and(|len| m.set_len(len).is_ok()) {
                    self.send(role, m);
                }
                return;
            }
        }
        if let Some((ip, mac, solicited)) = learned {
            let _ = shared.events.push(NeighEvent::Learned {
                port: role,
                ip,
                mac,
                solicited,
            });
        }
        match rx {
            Rx::Reply { len, kind } => {
                if m.set_len(len).is_err() {
                    c.drop(PortDropReason::Ipv4Malformed);
                    return;
                }
                match kind {
                    ReplyKind::Arp => bump(&c.arp_replies, 1),
                    ReplyKind::Echo => bump(&c.echo_replies, 1),
                }
                self.send(role, m);
            }
            Rx::Consumed => {}
            Rx::ToKernel => self.kernel.push(role, m, now, c),
            Rx::Drop(r) => c.drop(r),
            Rx::Ipv4 { l3, h } => {
                let n = self.ho_out.len();
                if n > 1 {
                    let owner = self.lb.steer().core_of(&h, &m.data()[l3..], role);
                    if owner != self.idx {
                        self.hand_over(owner, m, role);
                        return;
                    }
                }
                self.queue_owned(m, role, l3, h, false, now);
            }
        }
    }

    /// Queues a packet this core owns for [`Worker::run_pending`], prefetching the
    /// connection-table bucket its lookup will read.
    #[inline(always)]
    fn queue_owned(
        &mut self,
        m: Mbuf,
        role: PortRole,
        l3: usize,
        h: Ipv4Repr,
        handed_in: bool,
        now: Time,
    ) {
        if self.pending.is_full() {
            self.run_pending(now);
        }
        let (lookup, fetch) = self.lb.prefetch_lookup(&h, role);
        if let Some(a) = fetch {
            dpdk::prefetch(a);
        }
        let i = self.pending.len();
        if self.pending.push(m).is_ok() {
            self.pending_meta[i] = Pending {
                role,
                l3: l3 as u16,
                handed_in,
                h,
                lookup,
            };
        }
    }

    /// Runs the load balancer on the queued packets. By now their buckets are (being) fetched:
    /// prefetch the connection entries the buckets point to (and the entry a new connection
    /// would take), then process in order, so that one burst's misses overlap instead of
    /// queueing one behind the other.
    #[inline(always)]
    fn run_pending(&mut self, now: Time) {
        let n = self.pending.len();
        if n == 0 {
            return;
        }
        self.lb.prefetch_entries(
            self.pending_meta[..n].iter().map(|p| p.lookup),
            dpdk::prefetch,
        );
        let mut batch = std::mem::take(&mut self.pending);
        for (i, m) in batch.drain().enumerate() {
            let p = self.pending_meta[i];
            self.balance(m, &p, now);
        }
    }

    /// Runs the load balancer on an IPv4 packet this core owns.
    #[inline(always)]
    fn balance(&mut self, mut m: Mbuf, p: &Pending, now: Time) {
        let (role, l3) = (p.role, usize::from(p.l3));
        let v = match m.data_mut().get_mut(l3..) {
            Some(ip) => self.lb.process_parsed(ip, &p.h, role, now),
            None => Verdict::Drop(lb::DropReason::Malformed),
        };
        match v {
            Verdict::Forward { port, dst } => self.forward(m, port, dst, now),
            Verdict::Drop(_) => self.counters().port(role).drop(PortDropReason::Lb),
            Verdict::NotService => {
                let port = &*self.ports[role.index()].cur;
                let c = &self.shared.counters[self.idx].ports[role.index()];
                if port.iface.kernel.is_some() && l3::for_host(port, p.h.dst) {
                    self.kernel.push(role, m, now, c);
                } else {
                    c.drop(PortDropReason::NotLocal);
                }
            }
            Verdict::IcmpError {
                icmp_type,
                code,
                rest,
                src,
            } => self.icmp_error(&m, role, l3, icmp_type, code, rest, src),
            Verdict::Handover { core } => {
                if p.handed_in || core >= self.ho_out.len() || core == self.idx {
                    // Ownership must converge in one hop; anything else is a bug, not a loop.
                    self.counters()
                        .port(role)
                        .drop(PortDropReason::HandoverFull);
                } else {
                    self.hand_over(core, m, role);
                }
            }
        }
    }

    /// Sends a copy of a frame up to the kernel twin of `role` (within its rate limit).
    fn copy_up(&mut self, role: PortRole, m: &Mbuf, now: Time) {
        let c = &self.shared.counters[self.idx].ports[role.index()];
        if !self.kernel.admit(role, now, c) {
            return;
        }
        let Some(mut copy) = self.pool.alloc() else {
            c.drop(PortDropReason::NoMbuf);
            return;
        };
        if copy.set_len(m.len()).is_err() {
            bump(&c.kernel_drops, 1);
            return;
        }
        copy.data_mut().copy_from_slice(m.data());
        self.kernel.push_admitted(role, copy, c);
    }

    /// Sends the health checks' queued SYNs (worker 0, within its budget) out of the private
    /// port, resolving each server's next hop as any forwarded packet's.
    fn send_syns(&mut self, now: Time) {
        let Some(plane) = self.shared.syn.clone() else {
            return;
        };
        if now < self.syn_due && plane.queued() < SYN_BUDGET {
            return;
        }
        self.syn_due = now + SYN_GATHER;
        for _ in 0..SYN_BUDGET {
            let Some(r) = plane.next_request() else {
                return;
            };
            let Some(mut m) = self.pool.alloc() else {
                self.counters()
                    .port(PortRole::Private)
                    .drop(PortDropReason::NoMbuf);
                return;
            };
            let src = synprobe::source_for(&self.ports[PortRole::Private.index()].cur, r.dst);
            if m.set_len(synprobe::SYN_FRAME_LEN).is_err()
                || synprobe::write_syn(m.data_mut(), src, &r).is_none()
            {
                return;
            }
            bump(&plane.sent, 1);
            self.forward_one(m, PortRole::Private, r.dst, now);
        }
    }

    /// Queues a packet for its owner core (sent in bursts at the end of the iteration).
    #[inline(always)]
    fn hand_over(&mut self, core: usize, m: Mbuf, role: PortRole) {
        bump(&self.counters().port(role).handed_over, 1);
        if let Err(m) = self.ho_out[core].push(m) {
            self.flush_handover_to(core);
            if self.ho_out[core].push(m).is_err() {
                self.counters()
                    .port(role)
                    .drop(PortDropReason::HandoverFull);
            }
        }
    }

    fn flush_handover(&mut self) {
        for core in 0..self.ho_out.len() {
            if !self.ho_out[core].is_empty() {
                self.flush_handover_to(core);
            }
        }
    }

    fn flush_handover_to(&mut self, core: usize) {
        if let Some(Some(ring)) = self.handover.to.get_mut(core) {
            ring.enqueue(&mut self.ho_out[core]);
        }
        if !self.ho_out[core].is_empty() {
            // The owner's ring is full: drop the rest, counted on the port each came in on.
            let mut left = std::mem::take(&mut self.ho_out[core]);
            for m in left.drain() {
                let role = self.role_of(&m);
                self.counters()
                    .port(role)
                    .drop(PortDropReason::HandoverFull);
            }
        }
    }

    /// The port a packet came in on (the PMD records its port id in the mbuf).
    #[inline(always)]
    fn role_of(&self, m: &Mbuf) -> PortRole {
        if m.port() == self.port_ids[1] {
            PortRole::Private
        } else {
            PortRole::Public
        }
    }

    /// Processes packets other cores handed to us as their owner.
    fn receive_handed_in(&mut self, rx: &mut Burst, now: Time) {
        for j in 0..self.handover.from.len() {
            let got = match self.handover.from[j].as_mut() {
                Some(r) => r.dequeue(rx),
                None => 0,
            };
            if got == 0 {
                continue;
            }
            bump(&self.counters().handed_in, got as u64);
            // Written by the other core: headers and data are all cold here.
            rx.prefetch_all();
            for m in rx.drain() {
                let role = self.role_of(&m);
                let l3 = ethernet::HEADER_LEN;
                // The sending core validated it; only its parsed header did not travel with it.
                match m.data().get(l3..).map(Ipv4Repr::parse) {
                    Some(Ok(h)) => self.queue_owned(m, role, l3, h, true, now),
                    _ => self
                        .counters()
                        .port(role)
                        .drop(PortDropReason::Ipv4Malformed),
                }
            }
            self.run_pending(now);
        }
    }

    /// Answers an offending packet with an ICMP error, back out of the port it came in on to
    /// the neighbour that sent it.
    #[allow(clippy::too_many_arguments)]
    fn icmp_error(
        &mut self,
        m: &Mbuf,
        role: PortRole,
        l3: usize,
        icmp_type: u8,
        code: u8,
        rest: u32,
        src: Option<Ipv4Addr>,
    ) {
        if self.icmp_tokens == 0 {
            return;
        }
        let Some(mut out) = self.pool.alloc() else {
            self.counters().port(role).drop(PortDropReason::NoMbuf);
            return;
        };
        let room = out
            .tailroom()
            .min(ethernet::HEADER_LEN + icmp::MAX_ERROR_LEN);
        if out.set_len(room).is_err() {
            return;
        }
        let port = &*self.ports[role.index()].cur;
        let src = src.unwrap_or_else(|| port.iface.primary());
        let d = m.data();
        let Some(peer) = MacAddr::from_bytes(&d[6..12]) else {
            return;
        };
        let buf = out.data_mut();
        if ethernet::write_header(buf, peer, port.mac, ethernet::EtherType::IPV4).is_err() {
            return;
        }
        let Ok(n) = icmp::build_error(
            &mut buf[ethernet::HEADER_LEN..],
            src,
            icmp_type,
            code,
            rest,
            &d[l3..],
        ) else {
            return;
        };
        if out.set_len(ethernet::HEADER_LEN + n).is_ok() {
            self.icmp_tokens -= 1;
            self.send(role, out);
        }
    }

    /// Serves one management request, or continues a pending expiry, with bounded work.
    fn serve_command(&mut self, now: Time) {
        if let Some(e) = self.expiring {
            self.expiring = match e {
                Expiring::Dest(d, c) => self
                    .lb
                    .expire_dest_conns(d, c, EXPIRE_BUDGET)
                    .map(|c| Expiring::Dest(d, c)),
                Expiring::All(c) => self.lb.flush_conns(c, EXPIRE_BUDGET).map(Expiring::All),
            };
            return;
        }
        let Some(cmd) = self.shared.cmds[self.idx].pop() else {
            return;
        };
        match cmd {
            WorkerCmd::ListConns {
                cursor,
                max,
                mut buf,
            } => {
                let max = max.min(buf.capacity().saturating_sub(buf.len()));
                let next = self.lb.list_conns(cursor, max, now, &mut buf);
                let _ = self.shared.chunks[self.idx].push(ConnChunk { next, buf });
            }
            WorkerCmd::ExpireDest(d) => self.expiring = Some(Expiring::Dest(d, 0)),
            WorkerCmd::FlushConns => self.expiring = Some(Expiring::All(0)),
        }
    }

    /// Routes a packet whose IPv4 destination is `dst` out of `out`, fragmenting it for the
    /// egress MTU when needed (the load balancer has already refused DF packets that do not
    /// fit), resolving the next hop. Fragment headers are written whole: where the port has
    /// IPv4 checksum offload, their checksum is left to it.
    fn forward(&mut self, m: Mbuf, out: PortRole, dst: Ipv4Addr, now: Time) {
        let port = &*self.ports[out.index()].cur;
        let (mtu, csum_offload) = (port.iface.mtu as usize, port.tx_ip_csum);
        let l3 = ethernet::HEADER_LEN;
        if m.len() <= l3 + mtu {
            return self.forward_one(m, out, dst, now);
        }
        let ip = &m.data()[l3..];
        let Some(n) = l3::fragments_needed(ip, mtu) else {
            self.counters()
                .port(out)
                .drop(PortDropReason::Ipv4Malformed);
            return;
        };
        if n == 1 {
            return self.forward_one(m, out, dst, now);
        }
        for i in 0..n {
            let Some(mut f) = self.pool.alloc() else {
                self.counters().port(out).drop(PortDropReason::NoMbuf);
                return;
            };
            if f.set_len((l3 + mtu).min(f.tailroom())).is_err() {
                return;
            }
            let buf = f.data_mut();
            buf[..l3].copy_from_slice(&m.data()[..l3]);
            let Some(len) =
                l3::write_fragment(&m.data()[l3..], mtu, i, &mut buf[l3..], csum_offload)
            else {
                self.counters()
                    .port(out)
                    .drop(PortDropReason::Ipv4Malformed);
                return;
            };
            let hl = usize::from(buf[l3] & 0x0f) * 4;
            if f.set_len(l3 + len).is_ok() && (!csum_offload || f.request_ipv4_cksum(l3, hl)) {
                bump(&self.counters().port(out).fragments_out, 1);
                self.forward_one(f, out, dst, now);
            }
        }
    }

    fn forward_one(&mut self, mut m: Mbuf, out: PortRole, dst: Ipv4Addr, now: Time) {
        let port = &*self.ports[out.index()].cur;
        let Some(nh) = port.iface.next_hop(dst) else {
            self.counters().port(out).drop(PortDropReason::NoRoute);
            return;
        };
        match self.neigh[out.index()].cur.get(nh) {
            Some(mac) => {
                l3::set_l2(m.data_mut(), port, mac);
                self.send(out, m);
            }
            None => self.hold_packet(m, out, nh, now),
        }
    }

    fn hold_packet(&mut self, m: Mbuf, out: PortRole, nh: Ipv4Addr, now: Time) {
        let _ = self
            .shared
            .events
            .push(NeighEvent::Want { port: out, ip: nh });
        if self.hold.len() >= self.hold_cap {
            self.counters().port(out).drop(PortDropReason::ArpHoldFull);
            return;
        }
        self.hold.push(Held {
            mbuf: m,
            port: out,
            next_hop: nh,
            deadline: now + HOLD_TIME,
        });
    }

    /// Sends held packets whose next hop is now known; drops the ones that waited too long.
    fn service_hold(&mut self, now: Time) {
        let mut i = 0;
        while i < self.hold.len() {
            let h = &self.hold[i];
            if let Some(mac) = self.neigh[h.port.index()].cur.get(h.next_hop) {
                let mut h = self.hold.swap_remove(i);
                let port = &*self.ports[h.port.index()].cur;
                l3::set_l2(h.mbuf.data_mut(), port, mac);
                self.send(h.port, h.mbuf);
            } else if now >= h.deadline {
                let h = self.hold.swap_remove(i);
                self.counters()
                    .port(h.port)
                    .drop(PortDropReason::ArpTimeout);
            } else {
                i += 1;
            }
        }
    }

    #[inline(always)]
    fn send(&mut self, role: PortRole, m: Mbuf) {
        bump(
            &self.shared.counters[self.idx].ports[role.index()].tx_bytes,
            m.len() as u64,
        );
        if let Err(m) = self.tx[role.index()].push(m) {
            self.flush(role);
            if self.tx[role.index()].push(m).is_err() {
                self.counters().port(role).drop(PortDropReason::TxFull);
            }
        }
    }

    #[inline(always)]
    fn flush(&mut self, role: PortRole) {
        let i = role.index();
        if self.tx[i].is_empty() {
            return;
        }
        let sent = self.txq[i].tx_burst(&mut self.tx[i]);
        let c = &self.shared.counters[self.idx].ports[i];
        bump(&c.tx_packets, sent as u64);
        let left = self.tx[i].len();
        if left > 0 {
            // The NIC ring is full: drop the rest now rather than stall the poll loop.
            for _ in 0..left {
                c.drop(PortDropReason::TxFull);
            }
            self.tx[i] = Burst::new();
        }
    }
}
