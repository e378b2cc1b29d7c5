//! Per-core counters and the kernel's rate estimator.
//!
//! Every worker owns one [`CoreStats`] (shared as `Arc<CoreStats>` with the management core).
//! Only the owning worker writes it, with a relaxed load followed by a relaxed store (no locked
//! read-modify-write on the fast path); the management core reads with relaxed loads and sums
//! over cores. A reader may see a value that is a few packets old, never a torn one.
//!
//! Per-service and per-destination counters are preallocated arrays indexed by
//! [`ServiceId`]/[`DestId`] (see [`MAX_SERVICES`], [`MAX_DESTS`]).
//!
//! `-Z` is implemented by the management core as a baseline: it remembers the summed
//! [`Traffic`] at the time of zeroing and shows `current.since(&baseline)`; it also calls
//! [`Estimator::zero`]. Counters themselves are never reset by another core.

use crate::config::{DestId, ServiceId, MAX_DESTS, MAX_SERVICES};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A counter with a single writer.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Owner core only: add without a locked instruction.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Owner core only.
    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Relaxed);
    }

    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// Plain traffic totals (what ipvsadm `--stats` shows).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
}

impl Traffic {
    pub fn add(&mut self, o: &Traffic) {
        self.conns = self.conns.wrapping_add(o.conns);
        self.inpkts = self.inpkts.wrapping_add(o.inpkts);
        self.outpkts = self.outpkts.wrapping_add(o.outpkts);
        self.inbytes = self.inbytes.wrapping_add(o.inbytes);
        self.outbytes = self.outbytes.wrapping_add(o.outbytes);
    }

    /// `kstats - kstats0`: the values shown after `-Z` took `baseline`.
    pub fn since(&self, baseline: &Traffic) -> Traffic {
        Traffic {
            conns: self.conns.wrapping_sub(baseline.conns),
            inpkts: self.inpkts.wrapping_sub(baseline.inpkts),
            outpkts: self.outpkts.wrapping_sub(baseline.outpkts),
            inbytes: self.inbytes.wrapping_sub(baseline.inbytes),
            outbytes: self.outbytes.wrapping_sub(baseline.outbytes),
        }
    }
}

/// conns, inpkts, outpkts, inbytes, outbytes (bytes are IP datagram lengths, as `skb->len`).
#[derive(Debug, Default)]
pub struct TrafficCounters {
    pub conns: Counter,
    pub inpkts: Counter,
    pub outpkts: Counter,
    pub inbytes: Counter,
    pub outbytes: Counter,
}

impl TrafficCounters {
    pub fn read(&self) -> Traffic {
        Traffic {
            conns: self.conns.get(),
            inpkts: self.inpkts.get(),
            outpkts: self.outpkts.get(),
            inbytes: self.inbytes.get(),
            outbytes: self.outbytes.get(),
        }
    }

    #[inline]
    pub fn count_in(&self, bytes: u64) {
        self.inpkts.inc();
        self.inbytes.add(bytes);
    }

    #[inline]
    pub fn count_out(&self, bytes: u64) {
        self.outpkts.inc();
        self.outbytes.add(bytes);
    }

    fn reset(&self) {
        self.conns.set(0);
        self.inpkts.set(0);
        self.outpkts.set(0);
        self.inbytes.set(0);
        self.outbytes.set(0);
    }
}

/// This core's connection counts for one destination.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DestGauges {
    pub activeconns: u64,
    pub inactconns: u64,
    pub persistconns: u64,
    /// Entries (connections and templates) bound to the destination. Changes only when an entry
    /// is bound or unbound, so a reader that sees 0 after the destination left every snapshot a
    /// worker uses knows the id is free on that worker.
    pub refcnt: u64,
}

impl DestGauges {
    pub fn add(&mut self, o: &DestGauges) {
        self.activeconns += o.activeconns;
        self.inactconns += o.inactconns;
        self.persistconns += o.persistconns;
        self.refcnt += o.refcnt;
    }
}

#[derive(Debug, Default)]
pub struct DestCounters {
    pub traffic: TrafficCounters,
    pub activeconns: Counter,
    pub inactconns: Counter,
    pub persistconns: Counter,
    pub refcnt: Counter,
}

impl DestCounters {
    pub fn gauges(&self) -> DestGauges {
        DestGauges {
            activeconns: self.activeconns.get(),
            inactconns: self.inactconns.get(),
            persistconns: self.persistconns.get(),
            refcnt: self.refcnt.get(),
        }
    }
}

/// Why the engine dropped a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DropReason {
    /// Not a well-formed IPv4 packet, or a truncated TCP/UDP/ICMP header.
    Malformed = 0,
    /// A real server's packet (or an ICMP error about one) matching no connection.
    NoConnection,
    /// A client TCP segment that is not a SYN and matches no connection.
    NotSyn,
    /// The connection table is full: a new connection was refused.
    ConnTableFull,
    /// An ICMP error would be due but must not be sent (about an ICMP error, a non-first
    /// fragment, or to a non-unicast source).
    IcmpSuppressed,
    /// An ICMP error to forward whose TTL ran out or that exceeds the egress MTU.
    IcmpUndeliverable,
    /// A related ICMP error whose checksum does not verify.
    IcmpBadChecksum,
    /// A related ICMP error that is itself fragmented (the kernel would reassemble it).
    IcmpFragmented,
    /// A related ICMP error matching no connection.
    IcmpNoConnection,
    /// A non-first fragment arrived before its first fragment (not held: dropped).
    FragOutOfOrder,
    /// No room to track a fragmented datagram.
    FragTableFull,
    /// A first fragment too short to carry the TCP/UDP ports.
    FragTooShort,
}

impl DropReason {
    pub const COUNT: usize = 12;
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::Malformed,
        DropReason::NoConnection,
        DropReason::NotSyn,
        DropReason::ConnTableFull,
        DropReason::IcmpSuppressed,
        DropReason::IcmpUndeliverable,
        DropReason::IcmpBadChecksum,
        DropReason::IcmpFragmented,
        DropReason::IcmpNoConnection,
        DropReason::FragOutOfOrder,
        DropReason::FragTableFull,
        DropReason::FragTooShort,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    /// Stable snake_case name for counters output.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::NoConnection => "no_connection",
            DropReason::NotSyn => "not_syn",
            DropReason::ConnTableFull => "conn_table_full",
            DropReason::IcmpSuppressed => "icmp_suppressed",
            DropReason::IcmpUndeliverable => "icmp_undeliverable",
            DropReason::IcmpBadChecksum => "icmp_bad_checksum",
            DropReason::IcmpFragmented => "icmp_fragmented",
            DropReason::IcmpNoConnection => "icmp_no_connection",
            DropReason::FragOutOfOrder => "frag_out_of_order",
            DropReason::FragTableFull => "frag_table_full",
            DropReason::FragTooShort => "frag_too_short",
        }
    }
}

/// Engine events other than per-service traffic.
#[derive(Debug, Default)]
pub struct EngineCounters {
    pub drops: [Counter; DropReason::COUNT],
    /// Connections created (excluding templates).
    pub conns_created: Counter,
    pub templates_created: Counter,
    /// Entries freed by timeout, flush or reuse.
    pub conns_expired: Counter,
    /// SYNs that replaced a TIME_WAIT/CLOSE connection (conn_reuse_mode).
    pub conns_reused: Counter,
    /// ICMP port unreachable due: service without an available real server.
    pub no_dest: Counter,
    /// ICMP port unreachable due: packet to a VIP port with no service.
    pub no_service: Counter,
    /// ICMP time exceeded due.
    pub ttl_exceeded: Counter,
    /// ICMP fragmentation needed due.
    pub frag_needed: Counter,
    /// Related ICMP errors translated client->server and server->client.
    pub icmp_in: Counter,
    pub icmp_out: Counter,
    /// Fragments rewritten through the fragment table.
    pub frags: Counter,
    /// Packets handed to another core.
    pub handovers: Counter,
    /// Current entries in the connection table (connections and templates).
    pub table_entries: Counter,
    /// Schedulers this core built or rebuilt itself on a snapshot change because the management
    /// core had not prepared them ([`crate::engine::Prepared`]), e.g. after it skipped a
    /// generation. Internal (tests); not reported by rvsadm.
    pub scheds_built: Counter,
}

impl EngineCounters {
    #[inline]
    pub fn drop(&self, r: DropReason) {
        if let Some(c) = self.drops.get(r.index()) {
            c.inc();
        }
    }

    pub fn drops_for(&self, r: DropReason) -> u64 {
        self.drops.get(r.index()).map_or(0, Counter::get)
    }
}

/// All counters of one worker core.
#[derive(Debug)]
pub struct CoreStats {
    pub core_id: usize,
    services: Box<[TrafficCounters]>,
    dests: Box<[DestCounters]>,
    /// Sum over all services (ipvsadm's "total" stats).
    pub total: TrafficCounters,
    pub engine: EngineCounters,
    /// Generation of the last snapshot this core applied.
    pub acked_generation: Counter,
}

impl CoreStats {
    pub fn new(core_id: usize) -> CoreStats {
        CoreStats {
            core_id,
            services: (0..MAX_SERVICES)
                .map(|_| TrafficCounters::default())
                .collect(),
            dests: (0..MAX_DESTS).map(|_| DestCounters::default()).collect(),
            total: TrafficCounters::default(),
            engine: EngineCounters::default(),
            acked_generation: Counter::default(),
        }
    }

    #[inline]
    pub fn service(&self, id: ServiceId) -> Option<&TrafficCounters> {
        self.services.get(id.index())
    }

    #[inline]
    pub fn dest(&self, id: DestId) -> Option<&DestCounters> {
        self.dests.get(id.index())
    }

    /// Owner core only: a new incarnation of a service id starts from zero.
    pub fn reset_service(&self, id: ServiceId) {
        if let Some(s) = self.service(id) {
            s.reset();
        }
    }

    /// Owner core only: a new incarnation of a dest id starts from zero.
    pub fn reset_dest(&self, id: DestId) {
        if let Some(d) = self.dest(id) {
            d.traffic.reset();
            d.activeconns.set(0);
            d.inactconns.set(0);
            d.persistconns.set(0);
            d.refcnt.set(0);
        }
    }
}

/// Management side: sum of one service's traffic over cores.
pub fn sum_service<'a>(cores: impl IntoIterator<Item = &'a CoreStats>, id: ServiceId) -> Traffic {
    let mut t = Traffic::default();
    for c in cores {
        if let Some(s) = c.service(id) {
            t.add(&s.read());
        }
    }
    t
}

/// Management side: one destination's traffic and connection counts over cores.
pub fn sum_dest<'a>(
    cores: impl IntoIterator<Item = &'a CoreStats>,
    id: DestId,
) -> (Traffic, DestGauges) {
    let mut t = Traffic::default();
    let mut g = DestGauges::default();
    for c in cores {
        if let Some(d) = c.dest(id) {
            t.add(&d.traffic.read());
            g.add(&d.gauges());
        }
    }
    (t, g)
}

/// Management side: the totals over cores.
pub fn sum_total<'a>(cores: impl IntoIterator<Item = &'a CoreStats>) -> Traffic {
    let mut t = Traffic::default();
    for c in cores {
        t.add(&c.total.read());
    }
    t
}

/// Seconds between [`Estimator::update`] calls.
pub const ESTIMATOR_INTERVAL_SECS: u64 = 2;

/// Rates as `ipvsadm --rate` shows them (per second).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rates {
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

/// ip_vs_est.c: an exponentially weighted average (weight 1/4) of the per-second rate, sampled
/// every 2 s. Packet and connection rates are kept scaled by 2^10, byte rates by 2^5.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Estimator {
    last: Traffic,
    cps: i64,
    inpps: i64,
    outpps: i64,
    inbps: i64,
    outbps: i64,
}

fn ewma(avg: &mut i64, last: &mut u64, now: u64, shift: u32) {
    // The delta over 2 s, scaled: << 9 is (2^10 / 2 s) and << 4 is (2^5 / 2 s).
    let rate = (now.wrapping_sub(*last) << shift) as i64;
    *last = now;
    // Arithmetic shift of a signed difference, as `((s64)rate - (s64)e->cps) >> 2`.
    *avg = avg.wrapping_add(rate.wrapping_sub(*avg) >> 2);
}

impl Estimator {
    /// Starts estimating from the current totals (rates 0).
    pub fn new(current: Traffic) -> Estimator {
        Estimator {
            last: current,
            ..Estimator::default()
        }
    }

    /// One 2-second step with the current summed totals.
    pub fn update(&mut self, now: &Traffic) {
        ewma(&mut self.cps, &mut self.last.conns, now.conns, 9);
        ewma(&mut self.inpps, &mut self.last.inpkts, now.inpkts, 9);
        ewma(&mut self.outpps, &mut self.last.outpkts, now.outpkts, 9);
        ewma(&mut self.inbps, &mut self.last.inbytes, now.inbytes, 4);
        ewma(&mut self.outbps, &mut self.last.outbytes, now.outbytes, 4);
    }

    /// `ip_vs_read_estimator`: round the scaled averages to per-second values.
    pub fn rates(&self) -> Rates {
        let pps = |x: i64| (x.wrapping_add(0x1FF) >> 10).max(0) as u64;
        let bps = |x: i64| (x.wrapping_add(0xF) >> 5).max(0) as u64;
        Rates {
            cps: pps(self.cps),
            inpps: pps(self.inpps),
            outpps: pps(self.outpps),
            inbps: bps(self.inbps),
            outbps: bps(self.outbps),
        }
    }

    /// `ip_vs_zero_estimator`: rates to 0, deltas measured from `current` on.
    pub fn zero(&mut self, current: Traffic) {
        *self = Estimator::new(current);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn counters_single_writer_concurrent_reader() {
        let s = Arc::new(CoreStats::new(0));
        let w = Arc::clone(&s);
        let writer = std::thread::spawn(move || {
            for _ in 0..100_000 {
                w.total.count_in(60);
            }
        });
        let mut last = 0;
        while !writer.is_finished() {
            let v = s.total.inpkts.get();
            assert!(v >= last, "a single-writer counter never goes back");
            last = v;
        }
        writer.join().unwrap();
        assert_eq!(s.total.read().inpkts, 100_000);
        assert_eq!(s.total.read().inbytes, 6_000_000);
    }

    #[test]
    fn per_id_arrays_and_sums() {
        let a = CoreStats::new(0);
        let b = CoreStats::new(1);
        a.service(ServiceId(3)).unwrap().conns.add(2);
        b.service(ServiceId(3)).unwrap().conns.add(5);
        b.service(ServiceId(3)).unwrap().count_out(100);
        let t = sum_service([&a, &b], ServiceId(3));
        assert_eq!(
            t,
            Traffic {
                conns: 7,
                outpkts: 1,
                outbytes: 100,
                ..Traffic::default()
            }
        );
        assert!(a.service(ServiceId(MAX_SERVICES as u16)).is_none());
        assert!(a.dest(DestId((MAX_DESTS - 1) as u16)).is_some());
        let d = b.dest(DestId(9)).unwrap();
        d.activeconns.set(3);
        d.refcnt.set(4);
        a.dest(DestId(9)).unwrap().inactconns.set(1);
        let (_, g) = sum_dest([&a, &b], DestId(9));
        assert_eq!(
            g,
            DestGauges {
                activeconns: 3,
                inactconns: 1,
                persistconns: 0,
                refcnt: 4
            }
        );
        b.reset_dest(DestId(9));
        assert_eq!(b.dest(DestId(9)).unwrap().gauges(), DestGauges::default());
        b.reset_service(ServiceId(3));
        assert_eq!(b.service(ServiceId(3)).unwrap().read(), Traffic::default());
        a.engine.drop(DropReason::FragTableFull);
        assert_eq!(a.engine.drops_for(DropReason::FragTableFull), 1);
        assert_eq!(a.engine.drops_for(DropReason::Malformed), 0);
    }

    #[test]
    fn drop_reason_table_is_consistent() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        let mut names: Vec<&str> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
    }

    #[test]
    fn zero_is_a_baseline() {
        let before = Traffic {
            conns: 10,
            inpkts: 100,
            outpkts: 90,
            inbytes: 6000,
            outbytes: 90000,
        };
        let later = Traffic {
            conns: 12,
            inpkts: 130,
            outpkts: 95,
            inbytes: 7800,
            outbytes: 99000,
        };
        assert_eq!(
            later.since(&before),
            Traffic {
                conns: 2,
                inpkts: 30,
                outpkts: 5,
                inbytes: 1800,
                outbytes: 9000
            }
        );
        assert_eq!(before.since(&before), Traffic::default());
    }

    /// Reference model of ip_vs_est.c with u64 fields and the same casts.
    fn kernel_step(avg: u64, last: u64, now: u64, shift: u32) -> u64 {
        let rate = (now - last) << shift;
        avg.wrapping_add((((rate as i64) - (avg as i64)) >> 2) as u64)
    }

    #[test]
    fn estimator_matches_kernel_arithmetic() {
        let mut e = Estimator::new(Traffic::default());
        let mut kc: u64 = 0;
        let mut kb: u64 = 0;
        let mut t = Traffic::default();
        // 1000 conn/s and 1 MB/s for 20 intervals, then silence.
        for step in 0..40u64 {
            let prev = t;
            if step < 20 {
                t.conns += 2000;
                t.inbytes += 2_000_000;
            }
            kc = kernel_step(kc, prev.conns, t.conns, 9);
            kb = kernel_step(kb, prev.inbytes, t.inbytes, 4);
            e.update(&t);
            assert_eq!(e.rates().cps, (kc + 0x1FF) >> 10, "step {step}");
            assert_eq!(e.rates().inbps, (kb + 0xF) >> 5, "step {step}");
        }
        // First step: avg = rate/4 = 250 conn/s.
        let mut e = Estimator::new(Traffic::default());
        e.update(&Traffic {
            conns: 2000,
            ..Traffic::default()
        });
        assert_eq!(e.rates().cps, 250);
        // Converges to the true rate.
        let mut t = Traffic::default();
        let mut e = Estimator::new(t);
        for _ in 0..100 {
            t.inpkts += 20_000;
            t.outbytes += 3_000_000;
            e.update(&t);
        }
        assert_eq!(e.rates().inpps, 10_000);
        assert_eq!(e.rates().outbps, 1_500_000);
        e.zero(t);
        assert_eq!(e.rates(), Rates::default());
        t.inpkts += 2000;
        e.update(&t);
        assert_eq!(e.rates().inpps, 250);
    }
}
