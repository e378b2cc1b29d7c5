//! The worker poll loop: one per worker lcore, never sleeping, never blocking.

use super::counters::{bump, DropReason, WorkerCounters};
use super::l3::{self, ReplyKind, Rx};
use super::neigh::NeighSnapshot;
use super::shared::{NeighEvent, Shared, Subscribed, TscClock};
use crate::dpdk::{self, Burst, Mbuf, RingRx, RxQueue, TxQueue};
use crate::lb::{PortRole, Time, NANOS_PER_SEC};
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
    neigh: [Subscribed<NeighSnapshot>; 2],
    /// Preallocated; never grows past its capacity.
    hold: Vec<Held>,
    hold_cap: usize,
    clock: TscClock,
}

impl Worker {
    pub fn new(
        idx: usize,
        shared: Arc<Shared>,
        rxq: [RxQueue; 2],
        txq: [TxQueue; 2],
        mgmt: Option<[RingRx; 2]>,
        hold_cap: usize,
    ) -> Self {
        let neigh = [
            Subscribed::new(&shared.neigh[0]),
            Subscribed::new(&shared.neigh[1]),
        ];
        let clock = TscClock::new(shared.tsc_hz);
        Worker {
            idx,
            shared,
            rxq,
            txq,
            tx: [Burst::new(), Burst::new()],
            mgmt,
            neigh,
            hold: Vec::with_capacity(hold_cap),
            hold_cap,
            clock,
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
                neigh_changed |= self.neigh[r.index()].refresh(&self.shared.neigh[r.index()]);
            }
            if neigh_changed || !self.hold.is_empty() {
                self.service_hold(now);
            }
            for role in PortRole::ALL {
                let n = self.rxq[role.index()].rx_burst(&mut rx);
                if n == 0 {
                    continue;
                }
                let c = &self.shared.counters[self.idx].ports[role.index()];
                bump(&c.rx_packets, n as u64);
                let mut it = rx.drain();
                while let Some(m) = it.next() {
                    dpdk::prefetch(it.peek_data_ptr(1));
                    self.handle(m, role, now);
                }
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
            }
            for role in PortRole::ALL {
                self.flush(role);
            }
            bump(&self.counters().loops, 1);
        }
        0
    }

    #[inline(always)]
    fn handle(&mut self, mut m: Mbuf, role: PortRole, now: Time) {
        let shared = &*self.shared;
        let c = &shared.counters[self.idx].ports[role.index()];
        bump(&c.rx_bytes, m.len() as u64);
        if m.is_chained() {
            c.drop(DropReason::Chained);
            return;
        }
        let port = shared.port(role);
        let mut learned = None;
        let rx = l3::receive(m.data_mut(), port, &mut learned);
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
                    c.drop(DropReason::Ipv4Malformed);
                    return;
                }
                match kind {
                    ReplyKind::Arp => bump(&c.arp_replies, 1),
                    ReplyKind::Echo => bump(&c.echo_replies, 1),
                }
                self.send(role, m);
            }
            Rx::Consumed => {}
            Rx::Drop(r) => c.drop(r),
            Rx::Ipv4 { l3: _ } => {
                let _ = now;
                // Not one of ours and no load-balancing verdict for it.
                c.drop(DropReason::NotLocal);
            }
        }
    }

    /// Routes a packet whose IPv4 destination is `dst` out of `out`, resolving the next hop.
    #[allow(dead_code)]
    fn forward(&mut self, mut m: Mbuf, out: PortRole, dst: Ipv4Addr, now: Time) {
        let port = self.shared.port(out);
        let Some(nh) = port.iface.next_hop(dst) else {
            self.counters().port(out).drop(DropReason::NoRoute);
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
            self.counters().port(out).drop(DropReason::ArpHoldFull);
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
                let port = self.shared.port(h.port);
                l3::set_l2(h.mbuf.data_mut(), port, mac);
                self.send(h.port, h.mbuf);
            } else if now >= h.deadline {
                let h = self.hold.swap_remove(i);
                self.counters().port(h.port).drop(DropReason::ArpTimeout);
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
                self.counters().port(role).drop(DropReason::TxFull);
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
                c.drop(DropReason::TxFull);
            }
            self.tx[i] = Burst::new();
        }
    }
}
