//! The per-core LVS-NAT engine: bytes, arrival port and time in; rewritten bytes and a verdict
//! out. One [`Lb`] per worker core; nothing here is shared between cores except the read-only
//! [`Snapshot`] and the single-writer [`CoreStats`].
//!
//! Public port (clients -> VIP):
//! - TCP/UDP: look the connection up; a miss schedules a new one (TCP only on SYN without RST,
//!   UDP on any packet), with persistence templates when the service is persistent; then DNAT
//!   `VIP:vport -> RIP:rport` with RFC 1624 incremental IP and TCP/UDP checksum updates (a UDP
//!   checksum of 0 stays 0) and a TTL decrement. A SYN hitting a TIME_WAIT/CLOSE connection
//!   that no template controls replaces it (`conn_reuse_mode` 1).
//! - A VIP port without service, or a service without available real server: ICMP port
//!   unreachable (the client sees "connection refused", not a hang).
//! - Related ICMP errors (destination unreachable including fragmentation needed, source quench,
//!   time exceeded) about a connection's reply: outer destination, quoted source address and
//!   port, quoted IP checksum and the full ICMP checksum are rewritten (ip_vs_in_icmp).
//!
//! Private port (real servers -> clients): outbound lookup, SNAT `RIP:rport -> VIP:vport`;
//! related ICMP errors translated the other way (ip_vs_out_icmp). A reply from a known real
//! server endpoint without connection is dropped and counted; anything else is `NotService`.
//!
//! Forwarding checks, made before anything is rewritten so the dataplane can quote the
//! unmodified packet: TTL <= 1 gives ICMP time exceeded; DF with a length above the egress MTU
//! gives ICMP fragmentation needed carrying that MTU. rvs does not fragment: an oversized packet
//! without DF is dropped and counted. Those checks are made before a new connection is created
//! and before the TCP state moves, so a refused packet leaves no state behind.
//!
//! Deliberate differences from the kernel (documented for operators):
//! - A real server deleted from its service keeps serving its existing connections (the kernel
//!   drops their packets); [`Lb::expire_dest_conns`] ends them on request.
//! - Non-SYN TCP segments to a service without connection are dropped (`not_syn`); the kernel
//!   hands them to its local stack, which answers with a RST.
//! - Connection thresholds (`-x`/`-y`) apply per core: each core enforces
//!   `ceil(threshold / n_cores)` against its own connection counts (schedulers are per core).
//! - Checksums are updated incrementally only; the IP header checksum is not verified on input
//!   (an incremental update keeps a bad checksum bad, so the end host still drops the packet).
//!
//! Fragments: see frag.rs and steer.rs.

use crate::config::{
    DestId, Proto, Service, ServiceId, ServiceKey, Snapshot, SvcLookup, MAX_DESTS, MAX_SERVICES,
};
use crate::conn::{Conn, ConnInfo, ConnTable, MemAdvice, NewConn};
use crate::frag::{FragAction, FragKey, FragTable, DEFAULT_FRAG_TIMEOUT_SECS};
use crate::sched::{AnyScheduler, DestView, Flow, Scheduler, Wlc};
use crate::stats::{CoreStats, DropReason};
use crate::steer::Steer;
use crate::tcp_state::{is_syn_without_rst, TcpDir, TcpState};
use crate::{PortRole, Time};
use rvs_net::checksum;
use rvs_net::icmp;
use rvs_net::ipv4::{Ipv4Packet, Protocol};
use rvs_net::is_unicast_host;
use rvs_net::l4::{rewrite_endpoint, Side};
use std::net::Ipv4Addr;
use std::sync::Arc;

/// What the dataplane does with the packet after [`Lb::process`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The packet was rewritten in place; route it on its (new) destination address out of
    /// `port`.
    Forward { port: PortRole },
    /// Drop it; the reason has been counted.
    Drop(DropReason),
    /// Drop it and answer with an ICMP error built from the packet, which is left unmodified.
    /// `src`: the source address to use, if the error must come from a particular address (the
    /// VIP for port unreachable); `None` means the address of the port the packet came in on.
    IcmpError {
        icmp_type: u8,
        code: u8,
        rest: u32,
        src: Option<Ipv4Addr>,
    },
    /// Not load-balancer traffic (not to a VIP, not a reply, ICMP echo, ...): the dataplane's.
    NotService,
    /// Another core owns this packet's connection: pass the unmodified packet to `core`, which
    /// calls `process` with it.
    Handover { core: usize },
}

/// Construction parameters of one worker's engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbParams {
    /// Connection table entries (connections plus persistence templates).
    pub conn_capacity: usize,
    pub core_id: usize,
    pub n_cores: usize,
    /// IP MTU of the public and private ports.
    pub mtu_public: u16,
    pub mtu_private: u16,
    /// Seeds the connection-table hash and the randomised schedulers.
    pub seed: u64,
    /// Fragmented datagrams tracked at once.
    pub frag_capacity: usize,
    pub frag_timeout_secs: u32,
    /// Applied to the connection table's memory before it is touched (huge pages).
    pub mem_advice: Option<MemAdvice>,
}

impl Default for LbParams {
    fn default() -> Self {
        LbParams {
            conn_capacity: 1 << 20,
            core_id: 0,
            n_cores: 1,
            mtu_public: 1500,
            mtu_private: 1500,
            seed: 0x5eed,
            frag_capacity: 4096,
            frag_timeout_secs: DEFAULT_FRAG_TIMEOUT_SECS,
            mem_advice: None,
        }
    }
}

/// This core's scheduler for one service.
struct SvcRt {
    id: ServiceId,
    incarnation: u64,
    sched: AnyScheduler,
    /// Same order as the service's `dests`; counts refreshed before each decision.
    views: Vec<DestView>,
}

/// This core's view of one destination id.
#[derive(Debug, Clone, Copy)]
struct DestRt {
    incarnation: u64,
    /// In a service of the current snapshot (else trashed: serves only old connections).
    live: bool,
    svc_idx: u32,
    addr: Ipv4Addr,
    port: u16,
}

impl Default for DestRt {
    fn default() -> Self {
        DestRt {
            incarnation: 0,
            live: false,
            svc_idx: 0,
            addr: Ipv4Addr::UNSPECIFIED,
            port: 0,
        }
    }
}

/// Parsed IPv4 header fields.
#[derive(Debug, Clone, Copy)]
struct Hdr {
    hl: usize,
    tl: usize,
    proto: u8,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    df: bool,
    mf: bool,
    off: u16,
    ident: u16,
}

fn parse(ip: &[u8]) -> Option<Hdr> {
    let p = Ipv4Packet::new_checked(ip).ok()?;
    Some(Hdr {
        hl: p.header_len(),
        tl: p.total_len() as usize,
        proto: p.protocol(),
        src: p.src(),
        dst: p.dst(),
        ttl: p.ttl(),
        df: p.dont_frag(),
        mf: p.more_frags(),
        off: p.frag_offset(),
        ident: p.ident(),
    })
}

/// `(proto, client address, client port)` of an unfragmented TCP/UDP packet (or first
/// fragment), as the connection table is keyed; `None` for anything else.
#[inline]
fn client_endpoint(ip: &[u8], role: PortRole) -> Option<(u8, u32, u16)> {
    let hdr = ip.get(..20)?;
    let proto = hdr[9];
    if proto != Protocol::TCP && proto != Protocol::UDP {
        return None;
    }
    if u16::from_be_bytes([hdr[6], hdr[7]]) & 0x1fff != 0 {
        return None;
    }
    let hl = usize::from(hdr[0] & 0x0f) * 4;
    let ports = ip.get(hl..hl + 4)?;
    let (addr, port) = match role {
        PortRole::Public => (&hdr[12..16], &ports[0..2]),
        PortRole::Private => (&hdr[16..20], &ports[2..4]),
    };
    Some((
        proto,
        u32::from_be_bytes([addr[0], addr[1], addr[2], addr[3]]),
        u16::from_be_bytes([port[0], port[1]]),
    ))
}

enum SchedFail {
    NoDest,
    Full,
}

fn share(threshold: u32, n_cores: usize) -> u32 {
    if threshold == 0 {
        0
    } else {
        threshold.div_ceil(n_cores.max(1) as u32).max(1)
    }
}

fn other(role: PortRole) -> PortRole {
    match role {
        PortRole::Public => PortRole::Private,
        PortRole::Private => PortRole::Public,
    }
}

/// One worker core's load balancer.
pub struct Lb {
    snap: Arc<Snapshot>,
    st: State,
}

struct State {
    params: LbParams,
    conns: ConnTable,
    frags: FragTable,
    svcs: Vec<SvcRt>,
    dests: Vec<DestRt>,
    svc_incarnation: Vec<u64>,
    stats: Arc<CoreStats>,
    steer: Steer,
}

impl Lb {
    /// An engine steering with [`Steer::software`] over `params.n_cores` cores.
    pub fn new(params: LbParams, snapshot: Arc<Snapshot>) -> Lb {
        let steer = Steer::software(params.n_cores);
        Lb::with_steer(params, snapshot, steer)
    }

    /// An engine whose ownership checks (fragments) follow `steer`, the steering the
    /// dataplane uses. Panics if `steer` is not over `params.n_cores` cores.
    pub fn with_steer(params: LbParams, snapshot: Arc<Snapshot>, steer: Steer) -> Lb {
        assert_eq!(
            steer.cores(),
            params.n_cores.max(1),
            "steering over another core count"
        );
        let stats = Arc::new(CoreStats::new(params.core_id));
        let conns = ConnTable::with_advice(
            params.conn_capacity,
            params.seed,
            Arc::clone(&stats),
            params.mem_advice,
        );
        let frags = FragTable::new(
            params.frag_capacity,
            params.seed.rotate_left(17),
            params.frag_timeout_secs,
        );
        let mut lb = Lb {
            snap: Arc::new(Snapshot::empty()),
            st: State {
                params,
                conns,
                frags,
                svcs: Vec::new(),
                dests: vec![DestRt::default(); MAX_DESTS],
                svc_incarnation: vec![0; MAX_SERVICES],
                stats,
                steer,
            },
        };
        lb.apply_snapshot(snapshot);
        lb
    }

    /// This core's counters, for the management core.
    pub fn stats(&self) -> &Arc<CoreStats> {
        &self.st.stats
    }

    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snap
    }

    pub fn params(&self) -> &LbParams {
        &self.st.params
    }

    /// The steering this engine's core runs with: the owner of any packet is
    /// `steer().core(ip, role)`.
    #[inline]
    pub fn steer(&self) -> &Steer {
        &self.st.steer
    }

    /// Entries in the connection table (connections and templates).
    pub fn conn_count(&self) -> usize {
        self.st.conns.len()
    }

    /// Picks up a new configuration (between bursts). Existing connections keep their real
    /// server whatever changed. Per-service scheduler state is kept when the scheduler and the
    /// destination list are unchanged, updated when the list or flags changed (wrr and friends
    /// then restart as in the kernel) and rebuilt when the scheduler changed.
    pub fn apply_snapshot(&mut self, snap: Arc<Snapshot>) {
        let st = &mut self.st;
        let n = st.params.n_cores;
        // Only the previous snapshot's real servers can be live: clear those, not all
        // MAX_DESTS slots (hundreds of KiB per edit, measured under 1000 edits/s).
        for svc in self.snap.services() {
            for d in &svc.dests {
                if let Some(rt) = st.dests.get_mut(d.id.index()) {
                    rt.live = false;
                }
            }
        }
        for (si, svc) in snap.services().iter().enumerate() {
            for d in &svc.dests {
                let Some(rt) = st.dests.get_mut(d.id.index()) else {
                    continue;
                };
                if rt.incarnation != d.incarnation {
                    rt.incarnation = d.incarnation;
                    st.conns.reset_dest(d.id);
                }
                rt.live = true;
                rt.svc_idx = si as u32;
                rt.addr = d.addr;
                rt.port = d.port;
                st.conns
                    .configure_dest(d.id, share(d.u_threshold, n), share(d.l_threshold, n));
            }
        }
        let mut old: Vec<Option<SvcRt>> =
            std::mem::take(&mut st.svcs).into_iter().map(Some).collect();
        let old_snap = &self.snap;
        for svc in snap.services() {
            if let Some(inc) = st.svc_incarnation.get_mut(svc.id.index()) {
                if *inc != svc.incarnation {
                    *inc = svc.incarnation;
                    st.stats.reset_service(svc.id);
                }
            }
            let views: Vec<DestView> = svc
                .dests
                .iter()
                .map(|d| DestView {
                    addr: d.addr,
                    port: d.port,
                    weight: d.weight,
                    last_weight: d.last_weight,
                    activeconns: 0,
                    inactconns: 0,
                    overloaded: false,
                })
                .collect();
            let prev = old
                .iter_mut()
                .find(|o| {
                    o.as_ref()
                        .is_some_and(|o| o.id == svc.id && o.incarnation == svc.incarnation)
                })
                .and_then(Option::take);
            let prev_cfg = old_snap
                .services()
                .iter()
                .find(|s| s.id == svc.id && s.incarnation == svc.incarnation);
            let rt = match (prev, prev_cfg) {
                (Some(mut rt), Some(pc)) if pc.scheduler == svc.scheduler => {
                    if pc.dests != svc.dests || pc.sched_flags != svc.sched_flags {
                        rt.sched
                            .update_after(&views, svc.sched_flags, &svc.list_changes);
                    }
                    rt.views = views;
                    rt
                }
                _ => {
                    let seed =
                        st.params.seed ^ ((st.params.core_id as u64) << 32) ^ svc.id.0 as u64;
                    // Snapshots are validated, so the name is known; wlc is a safe fallback
                    // that keeps `svcs` aligned with the snapshot's services.
                    let mut sched = AnyScheduler::new(&svc.scheduler, svc.sched_flags, seed)
                        .unwrap_or_else(|_| AnyScheduler::Wlc(Wlc::new()));
                    sched.update_after(&views, svc.sched_flags, &svc.list_changes);
                    SvcRt {
                        id: svc.id,
                        incarnation: svc.incarnation,
                        sched,
                        views,
                    }
                }
            };
            st.svcs.push(rt);
        }
        st.conns.set_timeouts(snap.timeouts());
        st.stats.acked_generation.set(snap.generation());
        self.snap = snap;
    }

    /// Processes one IPv4 packet (`ip` runs from the IP header to the end of the frame and may
    /// carry Ethernet padding after `total_len`). Rewrites it in place when forwarding.
    ///
    /// Contract with the dataplane: call it on the core [`Lb::steer`]`().core(..)` names for
    /// the packet, or on the core a `Verdict::Handover` named. Only the fragment path re-checks
    /// ownership; other packets are trusted to be on their owner core. Checksums are updated
    /// incrementally (no offload request is needed; with TX checksum offload the dataplane may
    /// recompute instead).
    pub fn process(&mut self, ip: &mut [u8], role: PortRole, now: Time) -> Verdict {
        let v = self.st.process(&self.snap, ip, role, now);
        if let Verdict::Drop(r) = v {
            self.st.stats.engine.drop(r);
        }
        v
    }

    /// Burst prefetch, step 1: the connection-table bucket that `process` will look up for
    /// this packet (same arguments), or `None` when it will not look one up by client endpoint
    /// (fragments, ICMP, other protocols, short packets). Cheap: reads only the headers.
    #[inline]
    pub fn lookup_hint(&self, ip: &[u8], role: PortRole) -> Option<u32> {
        let (proto, caddr, cport) = client_endpoint(ip, role)?;
        Some(self.st.conns.bucket_of(proto, caddr, cport))
    }

    /// Burst prefetch, step 2: the bucket word of a hint (prefetch its address).
    #[inline]
    pub fn hint_bucket(&self, hint: u32) -> Option<&u32> {
        self.st.conns.bucket_ref(hint)
    }

    /// Burst prefetch, step 3 (once the bucket is cached): the first entry of its chain, which
    /// is the connection itself unless buckets collide. Also the entry a new connection would
    /// take, via [`Lb::next_free_entry`].
    #[inline]
    pub fn hint_entry(&self, hint: u32) -> Option<&Conn> {
        self.st.conns.chain_head(hint)
    }

    /// The connection entry the next new connection will be written into.
    #[inline]
    pub fn next_free_entry(&self) -> Option<&Conn> {
        self.st.conns.next_free()
    }

    /// Runs connection expiry with at most `budget` units of work; returns entries freed.
    pub fn tick(&mut self, now: Time, budget: usize) -> usize {
        self.st.conns.tick(now, budget)
    }

    /// Appends up to `max` connections from `cursor` (start with 0) to `out`; returns the next
    /// cursor, `None` when done. Runs between bursts, not per packet.
    pub fn list_conns(
        &self,
        cursor: usize,
        max: usize,
        now: Time,
        out: &mut Vec<ConnInfo>,
    ) -> Option<usize> {
        self.st.conns.list(cursor, max, now, out)
    }

    /// Ends, in chunks of `budget` table slots, the connections and templates bound to `dest`
    /// (e.g. after its removal). Returns the next cursor, `None` when done.
    pub fn expire_dest_conns(
        &mut self,
        dest: DestId,
        cursor: usize,
        budget: usize,
    ) -> Option<usize> {
        self.st
            .conns
            .expire_matching(cursor, budget, |c| c.dest_id() == dest)
    }

    /// Ends every connection and template, in chunks.
    pub fn flush_conns(&mut self, cursor: usize, budget: usize) -> Option<usize> {
        self.st.conns.expire_matching(cursor, budget, |_| true)
    }
}

impl State {
    fn process(&mut self, snap: &Snapshot, ip: &mut [u8], role: PortRole, now: Time) -> Verdict {
        let Some(h) = parse(ip) else {
            return Verdict::Drop(DropReason::Malformed);
        };
        match h.proto {
            Protocol::TCP | Protocol::UDP => {
                if h.off != 0 {
                    return self.later_fragment(ip, &h, role, now);
                }
                let tcp = h.proto == Protocol::TCP;
                let l4 = ip.get(h.hl..h.tl).unwrap_or(&[]);
                let (sport, dport, flags) = match l4 {
                    [a, b, c, d, ..] if l4.len() >= if tcp { 20 } else { 8 } => {
                        let flags = if tcp {
                            l4.get(13).copied().unwrap_or(0)
                        } else {
                            0
                        };
                        (
                            u16::from_be_bytes([*a, *b]),
                            u16::from_be_bytes([*c, *d]),
                            flags,
                        )
                    }
                    _ => {
                        return Verdict::Drop(if h.mf {
                            DropReason::FragTooShort
                        } else {
                            DropReason::Malformed
                        })
                    }
                };
                if h.mf && self.params.n_cores > 1 {
                    let me = self.params.core_id;
                    let owner = match role {
                        PortRole::Public => self.steer.endpoint_core(h.src, sport),
                        PortRole::Private => self.steer.endpoint_core(h.dst, dport),
                    };
                    let tracker = self.steer.fragment_core(h.src, h.dst, h.ident, h.proto);
                    if owner != me && tracker != me {
                        // Mis-steered: the tracking core must see the first fragment so that
                        // it can route the later ones.
                        self.stats.engine.handovers.inc();
                        return Verdict::Handover { core: tracker };
                    }
                    if owner != me {
                        let key = FragKey::new(h.src, h.dst, h.ident, h.proto, role);
                        let len = (h.tl - h.hl) as u32;
                        if !self
                            .frags
                            .insert(key, FragAction::Handover { core: owner }, len, now)
                        {
                            return Verdict::Drop(DropReason::FragTableFull);
                        }
                        self.stats.engine.handovers.inc();
                        return Verdict::Handover { core: owner };
                    }
                }
                match role {
                    PortRole::Public => self.in_l4(snap, ip, &h, sport, dport, flags, now),
                    PortRole::Private => self.out_l4(snap, ip, &h, sport, dport, flags, now),
                }
            }
            Protocol::ICMP => self.icmp(ip, &h, role, now),
            _ => Verdict::NotService,
        }
    }

    /// The forwarding checks, before any rewrite.
    fn egress_check(&self, ip: &[u8], h: &Hdr, egress: PortRole) -> Option<Verdict> {
        if h.ttl <= 1 {
            return Some(self.icmp_error(ip, h, icmp::TIME_EXCEEDED, icmp::TTL_EXCEEDED, 0, None));
        }
        let mtu = match egress {
            PortRole::Public => self.params.mtu_public,
            PortRole::Private => self.params.mtu_private,
        };
        // Without DF an oversized packet goes on: the dataplane fragments it for the egress MTU,
        // as the kernel's IP output does for IPVS (which sets ignore_df).
        if h.tl > mtu as usize && h.df {
            return Some(self.icmp_error(
                ip,
                h,
                icmp::DEST_UNREACH,
                icmp::FRAG_NEEDED,
                mtu as u32,
                None,
            ));
        }
        None
    }

    /// An ICMP error about `ip`, unless RFC 1122 3.2.2 forbids one.
    fn icmp_error(
        &self,
        ip: &[u8],
        h: &Hdr,
        icmp_type: u8,
        code: u8,
        rest: u32,
        src: Option<Ipv4Addr>,
    ) -> Verdict {
        let about_error =
            h.proto == Protocol::ICMP && ip.get(h.hl).is_some_and(|t| icmp::is_error_type(*t));
        if h.off != 0 || !is_unicast_host(h.src) || h.dst.octets()[0] >= 224 || about_error {
            return Verdict::Drop(DropReason::IcmpSuppressed);
        }
        let e = &self.stats.engine;
        match (icmp_type, code) {
            (icmp::TIME_EXCEEDED, _) => e.ttl_exceeded.inc(),
            (icmp::DEST_UNREACH, icmp::FRAG_NEEDED) => e.frag_needed.inc(),
            _ => {}
        }
        Verdict::IcmpError {
            icmp_type,
            code,
            rest,
            src,
        }
    }

    /// Refreshes the scheduler's view of this core's counts and asks it for a destination of
    /// service `si`: an index into `svc.dests`.
    fn pick(&mut self, si: usize, svc: &Service, flow: &Flow, now: Time) -> Option<usize> {
        let rt = self.svcs.get_mut(si)?;
        if rt.views.len() != svc.dests.len() {
            return None;
        }
        for (v, d) in rt.views.iter_mut().zip(&svc.dests) {
            let a = self.conns.dest_acct(d.id);
            v.activeconns = a.active;
            v.inactconns = a.inact;
            v.overloaded = a.overloaded;
        }
        let i = rt.sched.schedule(&rt.views, flow, now)?;
        (i < svc.dests.len()).then_some(i)
    }

    fn count_new(&self, svc: ServiceId, dest: DestId) {
        let s = &self.stats;
        if let Some(c) = s.service(svc) {
            c.conns.inc();
        }
        if let Some(c) = s.dest(dest) {
            c.traffic.conns.inc();
        }
        s.total.conns.inc();
    }

    fn count(&self, svc: ServiceId, dest: DestId, bytes: usize, inbound: bool) {
        let s = &self.stats;
        let b = bytes as u64;
        let (svc_c, dest_c) = (s.service(svc), s.dest(dest).map(|d| &d.traffic));
        for c in [svc_c, dest_c, Some(&s.total)].into_iter().flatten() {
            if inbound {
                c.count_in(b);
            } else {
                c.count_out(b);
            }
        }
    }

    /// `ip_vs_schedule` / `ip_vs_sched_persist`: a new connection for a client packet to service
    /// `si`.
    #[allow(clippy::too_many_arguments)]
    fn schedule(
        &mut self,
        snap: &Snapshot,
        si: usize,
        h: &Hdr,
        sport: u16,
        dport: u16,
        now: Time,
    ) -> Result<u32, SchedFail> {
        let svc = snap.services().get(si).ok_or(SchedFail::NoDest)?;
        let flow = Flow {
            proto: h.proto,
            caddr: h.src,
            cport: sport,
            vaddr: h.dst,
            vport: dport,
        };
        let mut conn = NewConn {
            proto: h.proto,
            caddr: h.src,
            cport: sport,
            vaddr: h.dst,
            vport: dport,
            daddr: Ipv4Addr::UNSPECIFIED,
            dport: 0,
            dest: DestId(0),
            svc: svc.id,
        };
        let Some(pers) = svc.persistence else {
            if self.conns.free_entries() < 1 {
                return Err(SchedFail::Full);
            }
            let d = self.pick(si, svc, &flow, now).ok_or(SchedFail::NoDest)?;
            let d = svc.dests.get(d).ok_or(SchedFail::NoDest)?;
            conn.daddr = d.addr;
            conn.dport = if d.port != 0 { d.port } else { dport };
            conn.dest = d.id;
            let i = self.conns.create(&conn, None, now).ok_or(SchedFail::Full)?;
            self.count_new(svc.id, d.id);
            return Ok(i);
        };

        // Persistent: template <proto, caddr & mask, 0, vaddr, vport>; fwmark templates use
        // <IPPROTO_IP, caddr & mask, 0, fwmark, 0>; port-zero services use vport 0.
        let cnet = Ipv4Addr::from(u32::from(h.src) & u32::from(pers.netmask));
        let (tproto, tvaddr, tvport, zero_port) = match svc.key {
            ServiceKey::Fwmark(m) => (0u8, Ipv4Addr::from(m), 0u16, true),
            ServiceKey::Addr { vport: 0, .. } => (h.proto, h.dst, 0, true),
            ServiceKey::Addr { vport, .. } => (h.proto, h.dst, vport, false),
        };
        let mut tmpl = self
            .conns
            .lookup_template(tproto, cnet, tvaddr, tvport, now);
        if let Some(t) = tmpl {
            // ip_vs_check_template: the template's server must still be in this service.
            let valid = self.conns.get(t).is_some_and(|c| {
                self.dests
                    .get(c.dest as usize)
                    .is_some_and(|d| d.live && d.svc_idx as usize == si)
            });
            if !valid {
                self.conns.invalidate_template(t);
                tmpl = None;
            }
        }
        let (t, did, daddr, dport_cfg) = match tmpl {
            Some(t) => {
                if self.conns.free_entries() < 1 {
                    return Err(SchedFail::Full);
                }
                let did = self.conns.get(t).map(|c| c.dest).ok_or(SchedFail::NoDest)?;
                let d = self.dests.get(did as usize).ok_or(SchedFail::NoDest)?;
                (t, DestId(did), d.addr, d.port)
            }
            None => {
                if self.conns.free_entries() < 2 {
                    return Err(SchedFail::Full);
                }
                let d = self.pick(si, svc, &flow, now).ok_or(SchedFail::NoDest)?;
                let d = svc.dests.get(d).ok_or(SchedFail::NoDest)?;
                let tc = NewConn {
                    proto: tproto,
                    caddr: cnet,
                    cport: 0,
                    vaddr: tvaddr,
                    vport: tvport,
                    daddr: d.addr,
                    dport: if zero_port { 0 } else { d.port },
                    dest: d.id,
                    svc: svc.id,
                };
                let t = self
                    .conns
                    .create(&tc, Some(pers.timeout), now)
                    .ok_or(SchedFail::Full)?;
                (t, d.id, d.addr, d.port)
            }
        };
        conn.daddr = daddr;
        conn.dport = if zero_port || dport_cfg == 0 {
            dport
        } else {
            dport_cfg
        };
        conn.dest = did;
        let i = self.conns.create(&conn, None, now).ok_or(SchedFail::Full)?;
        self.conns.control_add(i, t);
        self.conns.touch(t, now);
        self.count_new(svc.id, did);
        Ok(i)
    }

    fn frag_record(&mut self, h: &Hdr, role: PortRole, action: FragAction, now: Time) -> bool {
        if !h.mf {
            return true;
        }
        let key = FragKey::new(h.src, h.dst, h.ident, h.proto, role);
        self.frags.insert(key, action, (h.tl - h.hl) as u32, now)
    }

    #[allow(clippy::too_many_arguments)]
    fn in_l4(
        &mut self,
        snap: &Snapshot,
        ip: &mut [u8],
        h: &Hdr,
        sport: u16,
        dport: u16,
        flags: u8,
        now: Time,
    ) -> Verdict {
        let tcp = h.proto == Protocol::TCP;
        let syn = tcp && is_syn_without_rst(flags);
        let mut found = self
            .conns
            .lookup_in(h.proto, h.src, sport, h.dst, dport, now);
        if let (Some(i), true) = (found, syn) {
            // conn_reuse_mode 1: a new SYN on a finished, uncontrolled connection reschedules.
            let reuse = self.conns.get(i).is_some_and(|c| {
                matches!(c.tcp_state(), TcpState::TimeWait | TcpState::Close)
                    && c.control().is_none()
            });
            if reuse && self.egress_check(ip, h, PortRole::Private).is_none() {
                self.conns.expire_now(i);
                self.stats.engine.conns_reused.inc();
                found = None;
            }
        }
        let i = match found {
            Some(i) => {
                if let Some(v) = self.egress_check(ip, h, PortRole::Private) {
                    return v;
                }
                i
            }
            None => {
                let Some(proto) = Proto::from_number(h.proto) else {
                    return Verdict::NotService;
                };
                let si = match snap.lookup(proto, h.dst, dport) {
                    SvcLookup::NotVip => return Verdict::NotService,
                    SvcLookup::NoService => {
                        if tcp && flags & crate::tcp_state::flags::RST != 0 {
                            return Verdict::Drop(DropReason::NotSyn);
                        }
                        self.stats.engine.no_service.inc();
                        return self.icmp_error(
                            ip,
                            h,
                            icmp::DEST_UNREACH,
                            icmp::PORT_UNREACH,
                            0,
                            Some(h.dst),
                        );
                    }
                    SvcLookup::Found(si) => si,
                };
                if tcp && !syn {
                    return Verdict::Drop(DropReason::NotSyn);
                }
                if let Some(v) = self.egress_check(ip, h, PortRole::Private) {
                    return v;
                }
                match self.schedule(snap, si, h, sport, dport, now) {
                    Ok(i) => i,
                    Err(SchedFail::Full) => return Verdict::Drop(DropReason::ConnTableFull),
                    Err(SchedFail::NoDest) => {
                        self.stats.engine.no_dest.inc();
                        return self.icmp_error(
                            ip,
                            h,
                            icmp::DEST_UNREACH,
                            icmp::PORT_UNREACH,
                            0,
                            Some(h.dst),
                        );
                    }
                }
            }
        };
        let Some(c) = self.conns.get(i).copied() else {
            return Verdict::Drop(DropReason::NoConnection);
        };
        let (daddr, rport) = (Ipv4Addr::from(c.daddr), c.dport);
        let action = FragAction::Rewrite {
            addr: daddr,
            svc: c.svc_id(),
            dest: c.dest_id(),
        };
        if !self.frag_record(h, PortRole::Public, action, now) {
            return Verdict::Drop(DropReason::FragTableFull);
        }
        if tcp {
            self.conns.tcp_transition(i, TcpDir::Input, flags);
        }
        self.conns.touch(i, now);
        self.count(c.svc_id(), c.dest_id(), h.tl, true);
        nat(ip, h, Side::Dst, daddr, Some(rport));
        Verdict::Forward {
            port: PortRole::Private,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn out_l4(
        &mut self,
        snap: &Snapshot,
        ip: &mut [u8],
        h: &Hdr,
        sport: u16,
        dport: u16,
        flags: u8,
        now: Time,
    ) -> Verdict {
        let Some(i) = self
            .conns
            .lookup_out(h.proto, h.src, sport, h.dst, dport, now)
        else {
            let known =
                Proto::from_number(h.proto).is_some_and(|p| snap.is_dest_endpoint(p, h.src, sport));
            return if known {
                Verdict::Drop(DropReason::NoConnection)
            } else {
                Verdict::NotService
            };
        };
        if let Some(v) = self.egress_check(ip, h, PortRole::Public) {
            return v;
        }
        let Some(c) = self.conns.get(i).copied() else {
            return Verdict::Drop(DropReason::NoConnection);
        };
        let vaddr = Ipv4Addr::from(c.vaddr);
        let action = FragAction::Rewrite {
            addr: vaddr,
            svc: c.svc_id(),
            dest: c.dest_id(),
        };
        if !self.frag_record(h, PortRole::Private, action, now) {
            return Verdict::Drop(DropReason::FragTableFull);
        }
        if h.proto == Protocol::TCP {
            self.conns.tcp_transition(i, TcpDir::Output, flags);
        }
        self.conns.touch(i, now);
        self.count(c.svc_id(), c.dest_id(), h.tl, false);
        nat(ip, h, Side::Src, vaddr, Some(c.vport));
        Verdict::Forward {
            port: PortRole::Public,
        }
    }

    /// A non-first fragment: the rewrite its first fragment recorded.
    fn later_fragment(&mut self, ip: &mut [u8], h: &Hdr, role: PortRole, now: Time) -> Verdict {
        let key = FragKey::new(h.src, h.dst, h.ident, h.proto, role);
        match self
            .frags
            .account(key, h.off, (h.tl - h.hl) as u32, h.mf, now)
        {
            None => Verdict::Drop(DropReason::FragOutOfOrder),
            Some(FragAction::Handover { core }) => {
                self.stats.engine.handovers.inc();
                Verdict::Handover { core }
            }
            Some(FragAction::Rewrite { addr, svc, dest }) => {
                let egress = other(role);
                if let Some(v) = self.egress_check(ip, h, egress) {
                    return v;
                }
                let inbound = role == PortRole::Public;
                self.count(svc, dest, h.tl, inbound);
                self.stats.engine.frags.inc();
                let side = if inbound { Side::Dst } else { Side::Src };
                nat(ip, h, side, addr, None);
                Verdict::Forward { port: egress }
            }
        }
    }

    /// Related ICMP errors (ip_vs_in_icmp / ip_vs_out_icmp). Anything else is not ours.
    fn icmp(&mut self, ip: &mut [u8], h: &Hdr, role: PortRole, now: Time) -> Verdict {
        if h.off != 0 {
            return Verdict::NotService;
        }
        let Some(msg) = ip.get(h.hl..h.tl) else {
            return Verdict::Drop(DropReason::Malformed);
        };
        let Some(&t) = msg.first() else {
            return Verdict::Drop(DropReason::Malformed);
        };
        if !matches!(
            t,
            icmp::DEST_UNREACH | icmp::SOURCE_QUENCH | icmp::TIME_EXCEEDED
        ) {
            return Verdict::NotService;
        }
        if h.mf {
            return Verdict::Drop(DropReason::IcmpFragmented);
        }
        let Some(quoted) = msg.get(icmp::HEADER_LEN..) else {
            return Verdict::Drop(DropReason::Malformed);
        };
        let Ok(q) = Ipv4Packet::new_checked_quoted(quoted) else {
            return Verdict::NotService;
        };
        let qproto = q.protocol();
        if q.frag_offset() != 0 || !matches!(qproto, Protocol::TCP | Protocol::UDP) {
            return Verdict::NotService;
        }
        let qhl = q.header_len();
        let Some(ql4) = quoted.get(qhl..qhl + 8) else {
            return Verdict::NotService;
        };
        let qsport = u16::from_be_bytes([ql4[0], ql4[1]]);
        let qdport = u16::from_be_bytes([ql4[2], ql4[3]]);
        let (qsrc, qdst) = (q.src(), q.dst());
        // The quoted packet is one we sent: public side VIP -> client, private side client ->
        // RIP. Look it up as the kernel does (inbound with addresses reversed / outbound).
        let found = match role {
            PortRole::Public => self
                .conns
                .lookup_in(qproto, qdst, qdport, qsrc, qsport, now),
            PortRole::Private => self
                .conns
                .lookup_out(qproto, qdst, qdport, qsrc, qsport, now),
        };
        let Some(c) = found.and_then(|i| self.conns.get(i).copied()) else {
            return Verdict::Drop(DropReason::IcmpNoConnection);
        };
        let outer_ok = match role {
            PortRole::Public => u32::from(h.dst) == c.vaddr,
            PortRole::Private => u32::from(h.dst) == c.caddr,
        };
        if !outer_ok {
            return Verdict::NotService;
        }
        if checksum::internet(msg) != 0 {
            return Verdict::Drop(DropReason::IcmpBadChecksum);
        }
        let egress = other(role);
        let mtu = match egress {
            PortRole::Public => self.params.mtu_public,
            PortRole::Private => self.params.mtu_private,
        };
        if h.ttl <= 1 || h.tl > mtu as usize {
            return Verdict::Drop(DropReason::IcmpUndeliverable);
        }
        let inbound = role == PortRole::Public;
        self.count(c.svc_id(), c.dest_id(), h.tl, inbound);
        let e = &self.stats.engine;
        if inbound {
            e.icmp_in.inc();
        } else {
            e.icmp_out.inc();
        }
        let (new_addr, new_port) = if inbound {
            (Ipv4Addr::from(c.daddr), c.dport)
        } else {
            (Ipv4Addr::from(c.vaddr), c.vport)
        };
        let (hl, tl) = (h.hl, h.tl);
        let mut p = Ipv4Packet::new_unchecked(&mut *ip);
        if inbound {
            p.set_dst_incremental(new_addr);
        } else {
            p.set_src_incremental(new_addr);
        }
        p.decrement_ttl_incremental();
        let Some(msg) = ip.get_mut(hl..tl) else {
            return Verdict::Drop(DropReason::Malformed);
        };
        if let Some(qb) = msg.get_mut(icmp::HEADER_LEN..) {
            let mut q = Ipv4Packet::new_unchecked(&mut *qb);
            if inbound {
                q.set_src(new_addr);
            } else {
                q.set_dst(new_addr);
            }
            q.fill_checksum();
            if let Some(ports) = qb.get_mut(qhl..qhl + 4) {
                let at = if inbound { 0 } else { 2 };
                ports[at..at + 2].copy_from_slice(&new_port.to_be_bytes());
            }
        }
        msg[2] = 0;
        msg[3] = 0;
        let c = checksum::internet(msg);
        msg[2..4].copy_from_slice(&c.to_be_bytes());
        Verdict::Forward { port: egress }
    }
}

/// In-place NAT of one endpoint plus the TTL decrement of forwarding.
fn nat(ip: &mut [u8], h: &Hdr, side: Side, addr: Ipv4Addr, port: Option<u16>) {
    nat_endpoint(ip, h, side, addr, port);
    Ipv4Packet::new_unchecked(&mut *ip).decrement_ttl_incremental();
}

/// Rewrites one endpoint in place: the address (IP header checksum updated) and, when `port` is
/// given (an unfragmented packet or a first fragment), the port with the TCP/UDP checksum
/// update, which covers the address through the pseudo header. Lengths were checked by the
/// caller.
fn nat_endpoint(ip: &mut [u8], h: &Hdr, side: Side, addr: Ipv4Addr, port: Option<u16>) {
    let mut p = Ipv4Packet::new_unchecked(&mut *ip);
    let old = match side {
        Side::Src => p.set_src_incremental(addr),
        Side::Dst => p.set_dst_incremental(addr),
    };
    if let (Some(port), Some(seg)) = (port, ip.get_mut(h.hl..h.tl)) {
        // Cannot fail: the caller checked the protocol and the header length.
        let _ = rewrite_endpoint(h.proto, seg, side, old, addr, port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DestSpec, MarkRule, Persistence, ServiceSpec};
    use crate::steer::{endpoint_core, fragment_core, steer};
    use crate::tcp_state::flags::{ACK, FIN, RST, SYN};
    use crate::NANOS_PER_SEC as S;
    use proptest::prelude::*;

    const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
    const PUB: PortRole = PortRole::Public;
    const PRIV: PortRole = PortRole::Private;
    const FWD_PRIV: Verdict = Verdict::Forward { port: PRIV };
    const FWD_PUB: Verdict = Verdict::Forward { port: PUB };

    fn rip(n: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, n)
    }
    fn cip(n: u8) -> Ipv4Addr {
        Ipv4Addr::new(198, 51, 100, n)
    }

    // ---- packet builders (checksums computed from scratch) ----

    fn ip_packet(
        src: Ipv4Addr,
        dst: Ipv4Addr,
        proto: u8,
        ttl: u8,
        frag: u16,
        id: u16,
        l4: &[u8],
    ) -> Vec<u8> {
        let tl = (20 + l4.len()) as u16;
        let mut v = vec![0x45, 0];
        v.extend_from_slice(&tl.to_be_bytes());
        v.extend_from_slice(&id.to_be_bytes());
        v.extend_from_slice(&frag.to_be_bytes());
        v.extend_from_slice(&[ttl, proto, 0, 0]);
        v.extend_from_slice(&src.octets());
        v.extend_from_slice(&dst.octets());
        let c = checksum::internet(&v);
        v[10..12].copy_from_slice(&c.to_be_bytes());
        v.extend_from_slice(l4);
        v
    }

    fn l4_csum(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, seg: &[u8]) -> u16 {
        let ph = checksum::pseudo_header_v4(src, dst, proto, seg.len() as u16);
        checksum::finish(checksum::sum(seg, ph))
    }

    fn tcp_seg(
        src: Ipv4Addr,
        sport: u16,
        dst: Ipv4Addr,
        dport: u16,
        flags: u8,
        data: &[u8],
    ) -> Vec<u8> {
        let mut t = Vec::new();
        t.extend_from_slice(&sport.to_be_bytes());
        t.extend_from_slice(&dport.to_be_bytes());
        t.extend_from_slice(&0x0102_0304u32.to_be_bytes());
        t.extend_from_slice(&0u32.to_be_bytes());
        t.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        t.extend_from_slice(data);
        let c = l4_csum(src, dst, 6, &t);
        t[16..18].copy_from_slice(&c.to_be_bytes());
        t
    }

    fn tcp_ttl(
        src: Ipv4Addr,
        sport: u16,
        dst: Ipv4Addr,
        dport: u16,
        flags: u8,
        ttl: u8,
    ) -> Vec<u8> {
        let seg = tcp_seg(src, sport, dst, dport, flags, b"hello");
        ip_packet(src, dst, 6, ttl, 0x4000, 7, &seg)
    }

    fn tcp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, flags: u8) -> Vec<u8> {
        tcp_ttl(src, sport, dst, dport, flags, 64)
    }

    fn udp_seg(
        src: Ipv4Addr,
        sport: u16,
        dst: Ipv4Addr,
        dport: u16,
        data: &[u8],
        with_csum: bool,
    ) -> Vec<u8> {
        let mut u = Vec::new();
        u.extend_from_slice(&sport.to_be_bytes());
        u.extend_from_slice(&dport.to_be_bytes());
        u.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend_from_slice(data);
        if with_csum {
            let c = match l4_csum(src, dst, 17, &u) {
                0 => 0xffff,
                c => c,
            };
            u[6..8].copy_from_slice(&c.to_be_bytes());
        }
        u
    }

    fn udp_ttl(
        src: Ipv4Addr,
        sport: u16,
        dst: Ipv4Addr,
        dport: u16,
        data: &[u8],
        ttl: u8,
    ) -> Vec<u8> {
        ip_packet(
            src,
            dst,
            17,
            ttl,
            0,
            9,
            &udp_seg(src, sport, dst, dport, data, true),
        )
    }

    fn udp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
        udp_ttl(src, sport, dst, dport, b"query", 64)
    }

    fn ends(p: &[u8]) -> (Ipv4Addr, u16, Ipv4Addr, u16) {
        let ip = Ipv4Packet::new_checked(p).unwrap();
        let l4 = ip.payload();
        (
            ip.src(),
            u16::from_be_bytes([l4[0], l4[1]]),
            ip.dst(),
            u16::from_be_bytes([l4[2], l4[3]]),
        )
    }

    /// Full recomputation: IP header and TCP/UDP checksums verify.
    fn checksums_ok(p: &[u8]) -> bool {
        let ip = Ipv4Packet::new_checked(p).unwrap();
        if !ip.verify_checksum() {
            return false;
        }
        let seg = ip.payload();
        match ip.protocol() {
            17 if seg[6..8] == [0, 0] => true,
            6 | 17 => {
                let ph =
                    checksum::pseudo_header_v4(ip.src(), ip.dst(), ip.protocol(), seg.len() as u16);
                checksum::fold(checksum::sum(seg, ph)) == 0xffff
            }
            _ => checksum::internet(seg) == 0,
        }
    }

    fn params() -> LbParams {
        LbParams {
            conn_capacity: 1024,
            frag_capacity: 64,
            ..LbParams::default()
        }
    }

    fn web() -> ServiceKey {
        ServiceKey::tcp(VIP, 80)
    }

    /// VIP:80 TCP with the given scheduler and real servers 10.0.0.1.. :8080 with `weights`,
    /// listed in that order: added last to first, since a new server goes to the head of the
    /// list as in the kernel (rip(1) is the newest, with the highest id).
    fn snap(sched: &str, weights: &[u32]) -> Snapshot {
        let mut s = Snapshot::empty()
            .add_service(ServiceSpec::new(web()).scheduler(sched))
            .unwrap();
        for (i, w) in weights.iter().enumerate().rev() {
            s = s
                .add_dest(&web(), DestSpec::new(rip(i as u8 + 1), 8080).weight(*w))
                .unwrap();
        }
        s
    }

    fn lb_with(s: Snapshot) -> Lb {
        Lb::new(params(), Arc::new(s))
    }

    fn syn_to(lb: &mut Lb, c: Ipv4Addr, port: u16, now: Time) -> Ipv4Addr {
        let mut p = tcp(c, port, VIP, 80, SYN);
        assert_eq!(lb.process(&mut p, PUB, now), FWD_PRIV);
        ends(&p).2
    }

    fn dest_conns(lb: &Lb, id: u16) -> u64 {
        lb.stats().dest(DestId(id)).unwrap().traffic.conns.get()
    }

    /// The id of the real server at `addr` in the engine's current configuration.
    fn id_of(lb: &Lb, addr: Ipv4Addr) -> DestId {
        lb.snapshot()
            .services()
            .iter()
            .flat_map(|s| s.dests.iter())
            .find(|d| d.addr == addr)
            .map(|d| d.id)
            .expect("a real server at that address")
    }

    // ---- end-to-end ----

    #[test]
    fn tcp_handshake_both_directions() {
        let mut lb = lb_with(snap("rr", &[1, 1]));
        let mut p = tcp(cip(1), 40000, VIP, 80, SYN);
        let len = p.len() as u64;
        assert_eq!(lb.process(&mut p, PUB, 0), FWD_PRIV);
        assert_eq!(p, tcp_ttl(cip(1), 40000, rip(1), 8080, SYN, 63));
        assert!(checksums_ok(&p));

        let mut r = tcp(rip(1), 8080, cip(1), 40000, SYN | ACK);
        assert_eq!(lb.process(&mut r, PRIV, S / 10), FWD_PUB);
        assert_eq!(r, tcp_ttl(VIP, 80, cip(1), 40000, SYN | ACK, 63));

        let mut a = tcp(cip(1), 40000, VIP, 80, ACK);
        assert_eq!(lb.process(&mut a, PUB, S / 5), FWD_PRIV);
        assert_eq!(a, tcp_ttl(cip(1), 40000, rip(1), 8080, ACK, 63));

        let mut out = Vec::new();
        assert_eq!(lb.list_conns(0, 10, S, &mut out), None);
        assert_eq!(out.len(), 1);
        let c = &out[0];
        assert_eq!(
            (c.proto, c.caddr, c.cport, c.vaddr, c.vport, c.daddr, c.dport, c.state),
            (6, cip(1), 40000, VIP, 80, rip(1), 8080, "ESTABLISHED")
        );
        assert_eq!(c.expires_secs, 899);
        let st = lb.stats();
        let svc = st.service(ServiceId(0)).unwrap().read();
        assert_eq!((svc.conns, svc.inpkts, svc.outpkts), (1, 2, 1));
        assert_eq!((svc.inbytes, svc.outbytes), (2 * len, len));
        assert_eq!(st.total.read(), svc);
        let g = st.dest(id_of(&lb, rip(1))).unwrap().gauges();
        assert_eq!((g.activeconns, g.inactconns), (1, 0));

        // Close: client FIN, server FIN, client ACK -> the entry becomes inactive.
        for (pkt, role) in [
            (tcp(cip(1), 40000, VIP, 80, FIN | ACK), PUB),
            (tcp(rip(1), 8080, cip(1), 40000, FIN | ACK), PRIV),
            (tcp(cip(1), 40000, VIP, 80, ACK), PUB),
        ] {
            let mut pkt = pkt;
            assert!(matches!(
                lb.process(&mut pkt, role, S),
                Verdict::Forward { .. }
            ));
        }
        let mut out = Vec::new();
        lb.list_conns(0, 10, S, &mut out);
        assert_eq!(out[0].state, "TIME_WAIT");
        let g = lb.stats().dest(id_of(&lb, rip(1))).unwrap().gauges();
        assert_eq!((g.activeconns, g.inactconns), (0, 1));
        // TIME_WAIT lasts 120 s.
        assert_eq!(lb.tick(120 * S, usize::MAX), 0);
        assert_eq!(lb.tick(122 * S, usize::MAX), 1);
        assert_eq!(lb.conn_count(), 0);
        assert_eq!(
            lb.stats()
                .dest(id_of(&lb, rip(1)))
                .unwrap()
                .gauges()
                .inactconns,
            0
        );
    }

    #[test]
    fn lookup_hint_names_the_bucket_of_the_connection() {
        let mut lb = lb_with(snap("rr", &[1, 1]));
        let syn = tcp(cip(9), 40009, VIP, 80, SYN);
        let hint = lb.lookup_hint(&syn, PUB).unwrap();
        // Empty bucket: no chain head yet; the free entry is what `create` will use.
        assert!(lb.hint_entry(hint).is_none());
        assert!(lb.next_free_entry().is_some());
        let mut p = syn.clone();
        assert_eq!(lb.process(&mut p, PUB, 0), FWD_PRIV);
        let e = lb
            .hint_entry(hint)
            .expect("connection at the head of its bucket");
        assert_eq!((Ipv4Addr::from(e.caddr), e.cport), (cip(9), 40009));
        assert!(lb.hint_bucket(hint).is_some());
        // The reply names the same bucket from the other side.
        let reply = tcp(rip(1), 8080, cip(9), 40009, SYN | ACK);
        assert_eq!(lb.lookup_hint(&reply, PRIV), Some(hint));
        // No hint for what is not looked up by client endpoint.
        let frag = ip_packet(cip(9), VIP, 17, 64, 0x0001, 5, &[0; 8]);
        assert_eq!(lb.lookup_hint(&frag, PUB), None);
        assert_eq!(lb.lookup_hint(&syn[..22], PUB), None);
        assert_eq!(lb.lookup_hint(&[], PRIV), None);
    }

    proptest! {
        #[test]
        fn lookup_hint_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let lb = lb_with(snap("rr", &[1]));
            for role in [PUB, PRIV] {
                if let Some(h) = lb.lookup_hint(&bytes, role) {
                    prop_assert!(lb.hint_bucket(h).is_some());
                    let _ = lb.hint_entry(h);
                }
            }
        }
    }

    #[test]
    fn rr_alternates() {
        let mut lb = lb_with(snap("rr", &[1, 1, 1]));
        let got: Vec<Ipv4Addr> = (0..6)
            .map(|i| syn_to(&mut lb, cip(1), 1000 + i, 0))
            .collect();
        assert_eq!(got, [rip(1), rip(2), rip(3), rip(1), rip(2), rip(3)]);
    }

    #[test]
    fn wrr_one_to_two_over_300() {
        let mut lb = lb_with(snap("wrr", &[1, 2]));
        for i in 0..300 {
            syn_to(&mut lb, cip((i % 250) as u8 + 1), 2000 + i, 0);
        }
        assert_eq!(
            (
                dest_conns(&lb, id_of(&lb, rip(1)).0),
                dest_conns(&lb, id_of(&lb, rip(2)).0)
            ),
            (100, 200)
        );
        assert_eq!(lb.stats().service(ServiceId(0)).unwrap().conns.get(), 300);
    }

    #[test]
    fn persistence_keeps_client_on_one_dest() {
        let s = Snapshot::empty()
            .add_service(
                ServiceSpec::new(web())
                    .scheduler("rr")
                    .persistent(Persistence {
                        timeout: 60,
                        netmask: Ipv4Addr::new(255, 255, 255, 255),
                    }),
            )
            .unwrap()
            .add_dest(&web(), DestSpec::new(rip(1), 8080))
            .unwrap()
            .add_dest(&web(), DestSpec::new(rip(2), 8080))
            .unwrap();
        let mut lb = lb_with(s);
        let first = syn_to(&mut lb, cip(1), 1000, 0);
        for port in 1001..1010 {
            assert_eq!(syn_to(&mut lb, cip(1), port, S), first);
        }
        // Another client gets the other server (rr moved once).
        let other = syn_to(&mut lb, cip(2), 1000, S);
        assert_ne!(other, first);
        let mut out = Vec::new();
        lb.list_conns(0, 100, S, &mut out);
        let t: Vec<&ConnInfo> = out.iter().filter(|c| c.is_template).collect();
        assert_eq!(t.len(), 2);
        let t1 = t.iter().find(|c| c.caddr == cip(1)).unwrap();
        assert_eq!(
            (
                t1.proto,
                t1.cport,
                t1.vaddr,
                t1.vport,
                t1.daddr,
                t1.dport,
                t1.state,
                t1.n_control
            ),
            (6, 0, VIP, 80, first, 8080, "NONE", 10)
        );
        assert_eq!(t1.expires_secs, 60);
        let g = lb.stats().dest(id_of(&lb, first)).unwrap().gauges();
        assert_eq!((g.persistconns, g.activeconns), (1, 10));
        // The template outlives its 60 s while connections exist, and still pins the client.
        assert_eq!(syn_to(&mut lb, cip(1), 2000, 100 * S), first);
    }

    #[test]
    fn persistence_netmask_and_port_zero() {
        let k = ServiceKey::tcp(VIP, 0);
        let s = Snapshot::empty()
            .add_service(ServiceSpec::new(k).scheduler("rr").persistent(Persistence {
                timeout: 300,
                netmask: Ipv4Addr::new(255, 255, 255, 0),
            }))
            .unwrap()
            .add_dest(&k, DestSpec::new(rip(2), 0))
            .unwrap()
            .add_dest(&k, DestSpec::new(rip(1), 0))
            .unwrap();
        let mut lb = lb_with(s);
        // Any port of the VIP; the real server port is the packet's port.
        let mut p = tcp(cip(1), 1000, VIP, 443, SYN);
        assert_eq!(lb.process(&mut p, PUB, 0), FWD_PRIV);
        assert_eq!(ends(&p), (cip(1), 1000, rip(1), 443));
        // Same /24, other port: same server (template vport 0).
        let mut p = tcp(cip(99), 1000, VIP, 22, SYN);
        assert_eq!(lb.process(&mut p, PUB, 0), FWD_PRIV);
        assert_eq!(ends(&p), (cip(99), 1000, rip(1), 22));
        let mut out = Vec::new();
        lb.list_conns(0, 100, 0, &mut out);
        let t: Vec<&ConnInfo> = out.iter().filter(|c| c.is_template).collect();
        assert_eq!(t.len(), 1);
        assert_eq!((t[0].caddr, t[0].vport, t[0].dport), (cip(0), 0, 0));
    }

    #[test]
    fn fwmark_service_matches_rule_ports() {
        let s = Snapshot::empty()
            .edit(|c| {
                c.add_service(ServiceSpec::new(ServiceKey::Fwmark(1)).scheduler("rr"))?;
                c.add_dest(&ServiceKey::Fwmark(1), DestSpec::new(rip(1), 0))?;
                c.add_mark_rule(MarkRule {
                    mark: 1,
                    proto: Proto::Tcp,
                    vaddr: VIP,
                    port_lo: 8000,
                    port_hi: 8999,
                })
            })
            .unwrap();
        let mut lb = lb_with(s);
        let mut p = tcp(cip(1), 1000, VIP, 8443, SYN);
        assert_eq!(lb.process(&mut p, PUB, 0), FWD_PRIV);
        assert_eq!(ends(&p), (cip(1), 1000, rip(1), 8443));
        let mut p = tcp(cip(1), 1000, VIP, 9000, SYN);
        assert!(matches!(
            lb.process(&mut p, PUB, 0),
            Verdict::IcmpError { .. }
        ));
    }

    #[test]
    fn weight_zero_keeps_existing_sends_new_elsewhere() {
        let s = snap("rr", &[1, 1]);
        let mut lb = lb_with(s.clone());
        assert_eq!(syn_to(&mut lb, cip(1), 1000, 0), rip(1));
        let s2 = s
            .edit_dest(&web(), DestSpec::new(rip(1), 8080).weight(0))
            .unwrap();
        lb.apply_snapshot(Arc::new(s2));
        // The existing connection still flows both ways.
        let mut a = tcp(cip(1), 1000, VIP, 80, ACK);
        assert_eq!(lb.process(&mut a, PUB, S), FWD_PRIV);
        assert_eq!(ends(&a).2, rip(1));
        let mut r = tcp(rip(1), 8080, cip(1), 1000, ACK);
        assert_eq!(lb.process(&mut r, PRIV, S), FWD_PUB);
        for port in 2000..2005 {
            assert_eq!(syn_to(&mut lb, cip(2), port, S), rip(2));
        }
    }

    #[test]
    fn removed_dest_keeps_serving_until_expired() {
        let s = snap("rr", &[1, 1]);
        let mut lb = lb_with(s.clone());
        assert_eq!(syn_to(&mut lb, cip(1), 1000, 0), rip(1));
        let id = id_of(&lb, rip(1));
        let s2 = s.delete_dest(&web(), rip(1), 8080).unwrap();
        assert_eq!(s2.config().trash()[0].dest.id, id);
        lb.apply_snapshot(Arc::new(s2));
        let mut a = tcp(cip(1), 1000, VIP, 80, ACK);
        assert_eq!(lb.process(&mut a, PUB, S), FWD_PRIV);
        assert_eq!(ends(&a).2, rip(1));
        let mut r = tcp(rip(1), 8080, cip(1), 1000, ACK);
        assert_eq!(lb.process(&mut r, PRIV, S), FWD_PUB);
        assert_eq!(ends(&r).0, VIP);
        // Its traffic is still counted under its id.
        assert_eq!(lb.stats().dest(id).unwrap().traffic.read().inpkts, 2);
        for port in 2000..2004 {
            assert_eq!(syn_to(&mut lb, cip(2), port, S), rip(2));
        }
        // Expire on request.
        let mut cur = Some(0);
        while let Some(c) = cur {
            cur = lb.expire_dest_conns(id, c, 100);
        }
        assert_eq!(lb.stats().dest(id).unwrap().gauges().refcnt, 0);
        let mut a = tcp(cip(1), 1000, VIP, 80, ACK);
        assert_eq!(
            lb.process(&mut a, PUB, S),
            Verdict::Drop(DropReason::NotSyn)
        );
        let mut r = tcp(rip(1), 8080, cip(1), 1000, ACK);
        // rip(1) is no longer a configured server: not ours.
        assert_eq!(lb.process(&mut r, PRIV, S), Verdict::NotService);
    }

    #[test]
    fn edits_keep_connections_on_their_dest() {
        let s = snap("rr", &[1, 1]);
        let mut lb = lb_with(s.clone());
        let dests: Vec<Ipv4Addr> = (0..4)
            .map(|i| syn_to(&mut lb, cip(1), 100 + i, 0))
            .collect();
        let s2 = s
            .edit_service(ServiceSpec::new(web()).scheduler("wlc"))
            .unwrap()
            .add_dest(&web(), DestSpec::new(rip(3), 8080).weight(100))
            .unwrap();
        lb.apply_snapshot(Arc::new(s2));
        for (i, d) in dests.iter().enumerate() {
            let mut a = tcp(cip(1), 100 + i as u16, VIP, 80, ACK);
            assert_eq!(lb.process(&mut a, PUB, S), FWD_PRIV);
            assert_eq!(ends(&a).2, *d);
        }
        // wlc now prefers the heavy, empty server.
        assert_eq!(syn_to(&mut lb, cip(2), 1, S), rip(3));
    }

    #[test]
    fn udp_both_directions_zero_checksum_and_expiry() {
        let k = ServiceKey::udp(VIP, 53);
        let s = Snapshot::empty()
            .add_service(ServiceSpec::new(k).scheduler("rr"))
            .unwrap()
            .add_dest(&k, DestSpec::new(rip(1), 5353))
            .unwrap();
        let mut lb = lb_with(s);
        let mut q = udp(cip(1), 5000, VIP, 53);
        assert_eq!(lb.process(&mut q, PUB, 0), FWD_PRIV);
        assert_eq!(q, udp_ttl(cip(1), 5000, rip(1), 5353, b"query", 63));
        let mut r = udp_ttl(rip(1), 5353, cip(1), 5000, b"answer", 64);
        assert_eq!(lb.process(&mut r, PRIV, S), FWD_PUB);
        assert_eq!(r, udp_ttl(VIP, 53, cip(1), 5000, b"answer", 63));
        // No checksum stays no checksum.
        let seg = udp_seg(cip(1), 5000, VIP, 53, b"nocsum", false);
        let mut n = ip_packet(cip(1), VIP, 17, 64, 0, 9, &seg);
        assert_eq!(lb.process(&mut n, PUB, 2 * S), FWD_PRIV);
        let seg2 = udp_seg(cip(1), 5000, rip(1), 5353, b"nocsum", false);
        assert_eq!(n, ip_packet(cip(1), rip(1), 17, 63, 0, 9, &seg2));
        // UDP stays inactive; 300 s after the last packet it is gone.
        let g = lb.stats().dest(DestId(0)).unwrap().gauges();
        assert_eq!((g.activeconns, g.inactconns), (0, 1));
        let mut out = Vec::new();
        lb.list_conns(0, 10, 2 * S, &mut out);
        assert_eq!((out[0].state, out[0].expires_secs), ("UDP", 300));
        assert_eq!(lb.tick(301 * S, usize::MAX), 0);
        assert_eq!(lb.tick(303 * S, usize::MAX), 1);
    }

    #[test]
    fn port_unreachable_for_vip_port_without_service() {
        let mut lb = lb_with(snap("rr", &[1]));
        for mut p in [tcp(cip(1), 1000, VIP, 81, SYN), udp(cip(1), 1000, VIP, 80)] {
            let before = p.clone();
            assert_eq!(
                lb.process(&mut p, PUB, 0),
                Verdict::IcmpError {
                    icmp_type: 3,
                    code: 3,
                    rest: 0,
                    src: Some(VIP)
                }
            );
            assert_eq!(p, before);
        }
        assert_eq!(lb.stats().engine.no_service.get(), 2);
        // Not a VIP at all: the dataplane's business.
        let mut p = tcp(cip(1), 1000, Ipv4Addr::new(192, 0, 2, 99), 80, SYN);
        assert_eq!(lb.process(&mut p, PUB, 0), Verdict::NotService);
        // A RST to a closed port gets nothing back.
        let mut p = tcp(cip(1), 1000, VIP, 81, RST);
        assert_eq!(
            lb.process(&mut p, PUB, 0),
            Verdict::Drop(DropReason::NotSyn)
        );
    }

    #[test]
    fn no_available_dest_is_port_unreachable() {
        let mut lb = lb_with(snap("wlc", &[0, 0]));
        let mut p = tcp(cip(1), 1000, VIP, 80, SYN);
        assert!(matches!(
            lb.process(&mut p, PUB, 0),
            Verdict::IcmpError {
                icmp_type: 3,
                code: 3,
                ..
            }
        ));
        assert_eq!(lb.stats().engine.no_dest.get(), 1);
        assert_eq!(lb.conn_count(), 0);
    }

    #[test]
    fn reply_without_connection_is_dropped_and_counted() {
        let mut lb = lb_with(snap("rr", &[1]));
        let mut r = tcp(rip(1), 8080, cip(1), 1000, ACK);
        assert_eq!(
            lb.process(&mut r, PRIV, 0),
            Verdict::Drop(DropReason::NoConnection)
        );
        assert_eq!(lb.stats().engine.drops_for(DropReason::NoConnection), 1);
        let mut r = tcp(rip(1), 22, cip(1), 1000, ACK);
        assert_eq!(lb.process(&mut r, PRIV, 0), Verdict::NotService);
        // A client ACK without connection.
        let mut a = tcp(cip(1), 1000, VIP, 80, ACK);
        assert_eq!(
            lb.process(&mut a, PUB, 0),
            Verdict::Drop(DropReason::NotSyn)
        );
    }

    #[test]
    fn full_table_drops_new_keeps_old() {
        let mut lb = Lb::new(
            LbParams {
                conn_capacity: 2,
                ..params()
            },
            Arc::new(snap("rr", &[1, 1])),
        );
        syn_to(&mut lb, cip(1), 1, 0);
        syn_to(&mut lb, cip(1), 2, 0);
        let mut p = tcp(cip(1), 3, VIP, 80, SYN);
        assert_eq!(
            lb.process(&mut p, PUB, 0),
            Verdict::Drop(DropReason::ConnTableFull)
        );
        assert_eq!(lb.stats().engine.drops_for(DropReason::ConnTableFull), 1);
        for (port, d) in [(1, rip(1)), (2, rip(2))] {
            let mut a = tcp(cip(1), port, VIP, 80, ACK);
            assert_eq!(lb.process(&mut a, PUB, S), FWD_PRIV);
            assert_eq!(ends(&a).2, d);
        }
        // rr did not advance on the refused SYN.
        assert_eq!(dest_conns(&lb, 0) + dest_conns(&lb, 1), 2);
    }

    #[test]
    fn ttl_and_mtu_checks_leave_packet_and_state_untouched() {
        let mut lb = Lb::new(
            LbParams {
                mtu_private: 60,
                ..params()
            },
            Arc::new(snap("rr", &[1])),
        );
        let mut p = tcp_ttl(cip(1), 1000, VIP, 80, SYN, 1);
        let before = p.clone();
        assert_eq!(
            lb.process(&mut p, PUB, 0),
            Verdict::IcmpError {
                icmp_type: 11,
                code: 0,
                rest: 0,
                src: None
            }
        );
        assert_eq!(p, before);
        assert_eq!(lb.conn_count(), 0);
        // 45-byte packet fits 60; a 70-byte DF packet does not.
        let seg = tcp_seg(cip(1), 1000, VIP, 80, SYN, &[0u8; 30]);
        let mut big = ip_packet(cip(1), VIP, 6, 64, 0x4000, 1, &seg);
        assert_eq!(
            lb.process(&mut big, PUB, 0),
            Verdict::IcmpError {
                icmp_type: 3,
                code: 4,
                rest: 60,
                src: None
            }
        );
        assert_eq!(lb.conn_count(), 0);
        // Without DF it is forwarded; the dataplane fragments it for the egress MTU.
        let mut big = ip_packet(cip(1), VIP, 6, 64, 0, 1, &seg);
        assert_eq!(
            lb.process(&mut big, PUB, 0),
            Verdict::Forward {
                port: PortRole::Private
            }
        );
        assert_eq!(lb.conn_count(), 1);
        lb.flush_conns(0, usize::MAX);
        assert_eq!(lb.stats().engine.ttl_exceeded.get(), 1);
        assert_eq!(lb.stats().engine.frag_needed.get(), 1);
        // Never an ICMP error to a non-unicast source.
        let mut p = tcp_ttl(Ipv4Addr::new(0, 0, 0, 0), 1000, VIP, 80, SYN, 1);
        assert_eq!(
            lb.process(&mut p, PUB, 0),
            Verdict::Drop(DropReason::IcmpSuppressed)
        );
    }

    #[test]
    fn syn_on_time_wait_reschedules() {
        let mut lb = lb_with(snap("rr", &[1, 1]));
        assert_eq!(syn_to(&mut lb, cip(1), 1000, 0), rip(1));
        for (p, role) in [
            (tcp(rip(1), 8080, cip(1), 1000, SYN | ACK), PRIV),
            (tcp(cip(1), 1000, VIP, 80, ACK), PUB),
            (tcp(cip(1), 1000, VIP, 80, FIN | ACK), PUB),
            (tcp(rip(1), 8080, cip(1), 1000, FIN | ACK), PRIV),
        ] {
            let mut p = p;
            assert!(matches!(
                lb.process(&mut p, role, S),
                Verdict::Forward { .. }
            ));
        }
        let mut out = Vec::new();
        lb.list_conns(0, 10, S, &mut out);
        assert_eq!(out[0].state, "TIME_WAIT");
        assert_eq!(syn_to(&mut lb, cip(1), 1000, 2 * S), rip(2));
        assert_eq!(lb.stats().engine.conns_reused.get(), 1);
        assert_eq!(lb.conn_count(), 1);
        assert_eq!(
            lb.stats().dest(id_of(&lb, rip(1))).unwrap().gauges().refcnt,
            0
        );
    }

    #[test]
    fn upper_threshold_overloads_dest() {
        let s = Snapshot::empty()
            .add_service(ServiceSpec::new(web()).scheduler("rr"))
            .unwrap()
            .add_dest(&web(), DestSpec::new(rip(1), 8080).thresholds(2, 0))
            .unwrap()
            .add_dest(&web(), DestSpec::new(rip(2), 8080))
            .unwrap();
        let mut lb = lb_with(s);
        for port in 0..10 {
            syn_to(&mut lb, cip(1), port, 0);
        }
        assert_eq!((dest_conns(&lb, 0), dest_conns(&lb, 1)), (2, 8));
    }

    /// The SYN+ACK a real server sends, after SNAT: VIP:80 -> client.
    fn snatted_reply(lb: &mut Lb, c: Ipv4Addr, cport: u16, d: Ipv4Addr) -> Vec<u8> {
        let mut r = tcp(d, 8080, c, cport, SYN | ACK);
        assert_eq!(lb.process(&mut r, PRIV, 0), FWD_PUB);
        r
    }

    fn icmp_error_pkt(
        src: Ipv4Addr,
        dst: Ipv4Addr,
        t: u8,
        code: u8,
        rest: u32,
        quoted: &[u8],
    ) -> Vec<u8> {
        let mut m = vec![t, code, 0, 0];
        m.extend_from_slice(&rest.to_be_bytes());
        m.extend_from_slice(quoted);
        let c = checksum::internet(&m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
        ip_packet(src, dst, 1, 64, 0, 0x77, &m)
    }

    #[test]
    fn related_icmp_from_public_side() {
        let mut lb = lb_with(snap("rr", &[1]));
        syn_to(&mut lb, cip(1), 1000, 0);
        let reply = snatted_reply(&mut lb, cip(1), 1000, rip(1));
        // A router on the client's path cannot forward our 45-byte reply: MTU 40.
        let router = Ipv4Addr::new(203, 0, 113, 1);
        let mut e = icmp_error_pkt(router, VIP, 3, 4, 40, &reply[..28]);
        let inpkts = lb.stats().total.inpkts.get();
        assert_eq!(lb.process(&mut e, PUB, S), FWD_PRIV);
        // Expected: the quote as the real server sent it (source RIP:8080, TTL as forwarded),
        // outer destination RIP.
        let mut q = reply[..28].to_vec();
        q[12..16].copy_from_slice(&rip(1).octets());
        q[10] = 0;
        q[11] = 0;
        let c = checksum::internet(&q[..20]);
        q[10..12].copy_from_slice(&c.to_be_bytes());
        q[20..22].copy_from_slice(&8080u16.to_be_bytes());
        let mut want = icmp_error_pkt(router, rip(1), 3, 4, 40, &q);
        want[8] = 63;
        want[10] = 0;
        want[11] = 0;
        let c = checksum::internet(&want[..20]);
        want[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(e, want);
        assert_eq!(lb.stats().engine.icmp_in.get(), 1);
        assert_eq!(lb.stats().total.inpkts.get(), inpkts + 1);
        // Unrelated: no connection, bad checksum, echo.
        let other = tcp(VIP, 80, cip(2), 5, ACK);
        let mut e = icmp_error_pkt(router, VIP, 3, 4, 40, &other[..28]);
        assert_eq!(
            lb.process(&mut e, PUB, S),
            Verdict::Drop(DropReason::IcmpNoConnection)
        );
        let mut e = icmp_error_pkt(router, VIP, 11, 0, 0, &reply[..28]);
        e[25] ^= 0xff;
        assert_eq!(
            lb.process(&mut e, PUB, S),
            Verdict::Drop(DropReason::IcmpBadChecksum)
        );
        let mut ping = icmp_error_pkt(cip(1), VIP, 8, 0, 0x0001_0001, b"ping");
        assert_eq!(lb.process(&mut ping, PUB, S), Verdict::NotService);
    }

    #[test]
    fn related_icmp_from_private_side() {
        let k = ServiceKey::udp(VIP, 53);
        let s = Snapshot::empty()
            .add_service(ServiceSpec::new(k).scheduler("rr"))
            .unwrap()
            .add_dest(&k, DestSpec::new(rip(1), 5353))
            .unwrap();
        let mut lb = lb_with(s);
        let mut q = udp(cip(1), 5000, VIP, 53);
        assert_eq!(lb.process(&mut q, PUB, 0), FWD_PRIV);
        // The real server has nothing on 5353: port unreachable quoting what it received.
        let mut e = icmp_error_pkt(rip(1), cip(1), 3, 3, 0, &q[..28]);
        assert_eq!(lb.process(&mut e, PRIV, S), FWD_PUB);
        let orig = udp_ttl(cip(1), 5000, VIP, 53, b"query", 63);
        let mut quote = orig[..28].to_vec();
        // The quoted UDP checksum is left as the real server saw it (as the kernel does).
        quote[26..28].copy_from_slice(&q[26..28]);
        let mut want = icmp_error_pkt(VIP, cip(1), 3, 3, 0, &quote);
        want[8] = 63;
        want[10] = 0;
        want[11] = 0;
        let c = checksum::internet(&want[..20]);
        want[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(e, want);
        assert_eq!(lb.stats().engine.icmp_out.get(), 1);
        // TTL 1 on a forwarded error: dropped, never an error about an error.
        let mut e = icmp_error_pkt(rip(1), cip(1), 3, 3, 0, &q[..28]);
        e[8] = 1;
        assert_eq!(
            lb.process(&mut e, PRIV, S),
            Verdict::Drop(DropReason::IcmpUndeliverable)
        );
    }

    /// A UDP datagram from `src` split into fragments of `chunk` payload bytes.
    fn fragments(
        src: Ipv4Addr,
        sport: u16,
        dst: Ipv4Addr,
        dport: u16,
        data: &[u8],
        chunk: usize,
        id: u16,
    ) -> Vec<Vec<u8>> {
        let seg = udp_seg(src, sport, dst, dport, data, true);
        let pieces: Vec<&[u8]> = seg.chunks(chunk).collect();
        let n = pieces.len();
        pieces
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mf = if i + 1 < n { 0x2000 } else { 0 };
                let off = (i * chunk / 8) as u16;
                ip_packet(src, dst, 17, 64, mf | off, id, p)
            })
            .collect()
    }

    fn udp_service(port: u16, rport: u16) -> Snapshot {
        let k = ServiceKey::udp(VIP, port);
        Snapshot::empty()
            .add_service(ServiceSpec::new(k).scheduler("rr"))
            .unwrap()
            .add_dest(&k, DestSpec::new(rip(1), rport))
            .unwrap()
    }

    fn reassembled_ok(frags: &[Vec<u8>], src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
        let mut seg = Vec::new();
        for f in frags {
            assert!(Ipv4Packet::new_checked(&f[..]).unwrap().verify_checksum());
            seg.extend_from_slice(&f[20..]);
        }
        assert_eq!(l4_csum(src, dst, 17, &seg), 0, "datagram checksum");
        seg
    }

    #[test]
    fn fragments_single_core() {
        let mut lb = lb_with(udp_service(53, 5353));
        let data: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let mut frags = fragments(cip(1), 5000, VIP, 53, &data, 1480, 0x4242);
        assert_eq!(frags.len(), 3);
        for f in frags.iter_mut() {
            assert_eq!(lb.process(f, PUB, 0), FWD_PRIV);
            assert_eq!(Ipv4Packet::new_checked(&f[..]).unwrap().dst(), rip(1));
        }
        let seg = reassembled_ok(&frags, cip(1), rip(1));
        assert_eq!(u16::from_be_bytes([seg[2], seg[3]]), 5353);
        assert_eq!(&seg[8..], &data[..]);
        assert_eq!(lb.stats().engine.frags.get(), 2);
        assert_eq!(lb.stats().total.inpkts.get(), 3);
        // The reply, fragmented too.
        let mut back = fragments(rip(1), 5353, cip(1), 5000, &data, 1480, 0x9999);
        for f in back.iter_mut() {
            assert_eq!(lb.process(f, PRIV, 0), FWD_PUB);
        }
        let seg = reassembled_ok(&back, VIP, cip(1));
        assert_eq!(u16::from_be_bytes([seg[0], seg[1]]), 53);
        // A later fragment before its first: dropped and counted.
        let mut frags = fragments(cip(1), 5000, VIP, 53, &data, 1480, 0x4343);
        assert_eq!(
            lb.process(&mut frags[1], PUB, 0),
            Verdict::Drop(DropReason::FragOutOfOrder)
        );
        assert_eq!(lb.stats().engine.drops_for(DropReason::FragOutOfOrder), 1);
        // Tiny first fragment.
        let mut tiny = ip_packet(cip(1), VIP, 17, 64, 0x2000, 5, &[0, 1, 0, 53]);
        assert_eq!(
            lb.process(&mut tiny, PUB, 0),
            Verdict::Drop(DropReason::FragTooShort)
        );
    }

    #[test]
    fn fragments_across_cores_hand_over_to_owner() {
        let n = 4;
        let snap = Arc::new(udp_service(53, 53));
        let mut lbs: Vec<Lb> = (0..n)
            .map(|c| {
                Lb::new(
                    LbParams {
                        core_id: c,
                        n_cores: n,
                        ..params()
                    },
                    Arc::clone(&snap),
                )
            })
            .collect();
        let data = vec![7u8; 2000];
        // Find a datagram whose tracking core is not its owner.
        let (port, id) = (5000u16..)
            .map(|p| (p, p ^ 0x5a5a))
            .find(|(p, id)| endpoint_core(cip(1), *p, n) != fragment_core(cip(1), VIP, *id, 17, n))
            .unwrap();
        let owner = endpoint_core(cip(1), port, n);
        let mut frags = fragments(cip(1), port, VIP, 53, &data, 1480, id);
        let mut handed = 0;
        for f in frags.iter_mut() {
            let core = steer(f, PUB, n);
            assert_ne!(core, owner);
            match lbs[core].process(f, PUB, 0) {
                Verdict::Handover { core: c } => {
                    assert_eq!(c, owner);
                    handed += 1;
                    assert_eq!(lbs[c].process(f, PUB, 0), FWD_PRIV);
                }
                v => panic!("{v:?}"),
            }
        }
        assert_eq!(handed, 2);
        reassembled_ok(&frags, cip(1), rip(1));
        assert_eq!(lbs[owner].conn_count(), 1);
        assert_eq!(lbs.iter().map(Lb::conn_count).sum::<usize>(), 1);
        // Unfragmented packets of the flow steer straight to the owner.
        let q = udp(cip(1), port, VIP, 53);
        assert_eq!(steer(&q, PUB, n), owner);
        // A first fragment given to a core that is neither tracker nor owner goes to the
        // tracker, which routes the rest.
        let frags = fragments(cip(1), port, VIP, 53, &data, 1480, id.wrapping_add(1));
        let tracker = steer(&frags[0], PUB, n);
        if let Some(stray) = (0..n).find(|c| *c != tracker && *c != owner) {
            let mut f = frags[0].clone();
            assert_eq!(
                lbs[stray].process(&mut f, PUB, 0),
                Verdict::Handover { core: tracker }
            );
            assert_eq!(f, frags[0]);
        }
    }

    #[test]
    fn steering_agrees_across_directions() {
        let n = 8;
        let mut lb = lb_with(snap("rr", &[1]));
        for i in 0..200u16 {
            let c = Ipv4Addr::new(198, 51, (i % 7) as u8, (i * 13 % 251) as u8 + 1);
            let port = 1024 + i * 97;
            let req = tcp(c, port, VIP, 80, SYN);
            let core = steer(&req, PUB, n);
            let mut fwd = req.clone();
            assert_eq!(lb.process(&mut fwd, PUB, 0), FWD_PRIV);
            // Reply from the real server, an ICMP error about the reply from the public side,
            // and one about the forwarded request from the private side.
            let reply = tcp(rip(1), 8080, c, port, SYN | ACK);
            assert_eq!(steer(&reply, PRIV, n), core);
            let mut snat = reply.clone();
            assert_eq!(lb.process(&mut snat, PRIV, 0), FWD_PUB);
            let e1 = icmp_error_pkt(Ipv4Addr::new(203, 0, 113, 1), VIP, 11, 0, 0, &snat[..28]);
            assert_eq!(steer(&e1, PUB, n), core);
            let e2 = icmp_error_pkt(rip(1), c, 3, 3, 0, &fwd[..28]);
            assert_eq!(steer(&e2, PRIV, n), core);
        }
    }

    // ---- properties ----

    fn mixed_snapshot() -> Snapshot {
        let u = ServiceKey::udp(VIP, 53);
        let z = ServiceKey::tcp(Ipv4Addr::new(192, 0, 2, 11), 0);
        snap("rr", &[1, 2])
            .edit(|c| {
                c.add_service(ServiceSpec::new(u).scheduler("wrr"))?;
                c.add_dest(&u, DestSpec::new(rip(5), 53))?;
                c.add_service(ServiceSpec::new(z).persistent(Persistence::default()))?;
                c.add_dest(&z, DestSpec::new(rip(6), 0))
            })
            .unwrap()
    }

    thread_local! {
        /// One small engine per core count, shared by the fuzz cases of a test thread (state
        /// accumulates across cases, which widens coverage).
        static FUZZ: std::cell::RefCell<Vec<Lb>> = std::cell::RefCell::new(
            (1..4)
                .map(|n| Lb::new(LbParams { conn_capacity: 8, frag_capacity: 4, n_cores: n, ..params() }, Arc::new(mixed_snapshot())))
                .collect(),
        );
    }

    fn with_fuzz_lb(n_cores: usize, f: impl FnOnce(&mut Lb) -> Verdict) {
        FUZZ.with(|l| {
            if let Some(lb) = l.borrow_mut().get_mut(n_cores - 1) {
                f(lb);
            }
        });
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..120), public in any::<bool>()) {
            let role = if public { PUB } else { PRIV };
            let mut b = bytes.clone();
            with_fuzz_lb(1, |lb| lb.process(&mut b, role, 0));
            let _ = steer(&bytes, role, 4);
        }

        #[test]
        fn never_panics_on_plausible_headers(
            proto in prop_oneof![Just(1u8), Just(6u8), Just(17u8), any::<u8>()],
            frag in any::<u16>(),
            ihl in 5u8..16,
            to_vip in any::<bool>(),
            src in any::<u32>(),
            rest in proptest::collection::vec(any::<u8>(), 0..100),
            public in any::<bool>(),
            n_cores in 1usize..4,
        ) {
            let dst = if to_vip { VIP } else { rip(1) };
            let mut p = ip_packet(Ipv4Addr::from(src), dst, proto, 64, frag, 1, &rest);
            p[0] = 0x40 | ihl;
            let role = if public { PUB } else { PRIV };
            // Related-ICMP shaped input with a random quote.
            let mut e = icmp_error_pkt(Ipv4Addr::from(src), dst, 3, 4, 0, &rest);
            with_fuzz_lb(n_cores, |lb| {
                lb.process(&mut p, role, 0);
                lb.process(&mut e, role, 0)
            });
            let _ = steer(&e, role, 3);
        }

        #[test]
        fn rewritten_packets_verify_and_match_from_scratch(
            c in any::<u32>().prop_map(|x| Ipv4Addr::from(0x0100_0000 | (x & 0x7fff_ffff))),
            cport in 1u16..,
            data in proptest::collection::vec(any::<u8>(), 0..64),
            use_udp in any::<bool>(),
        ) {
            let mut lb = lb_with(mixed_snapshot());
            let (mut p, want, mut r, rwant) = if use_udp {
                (
                    udp_ttl(c, cport, VIP, 53, &data, 64),
                    udp_ttl(c, cport, rip(5), 53, &data, 63),
                    udp_ttl(rip(5), 53, c, cport, &data, 64),
                    udp_ttl(VIP, 53, c, cport, &data, 63),
                )
            } else {
                let t = |s, sp, d, dp, ttl| ip_packet(s, d, 6, ttl, 0x4000, 7, &tcp_seg(s, sp, d, dp, SYN, &data));
                (t(c, cport, VIP, 80, 64), t(c, cport, rip(1), 8080, 63), t(rip(1), 8080, c, cport, 64), t(VIP, 80, c, cport, 63))
            };
            prop_assert_eq!(lb.process(&mut p, PUB, 0), FWD_PRIV);
            prop_assert!(checksums_ok(&p));
            prop_assert_eq!(&p, &want);
            prop_assert_eq!(lb.process(&mut r, PRIV, 0), FWD_PUB);
            prop_assert!(checksums_ok(&r));
            prop_assert_eq!(&r, &rwant);
        }

        #[test]
        fn steer_is_the_same_for_request_reply_and_their_icmp_errors(
            c in any::<u32>().prop_map(Ipv4Addr::from),
            cport in any::<u16>(),
            r in any::<u32>().prop_map(Ipv4Addr::from),
            rport in any::<u16>(),
            vport in any::<u16>(),
            use_udp in any::<bool>(),
            n in 1usize..16,
        ) {
            let mk = |s, sp, d, dp| if use_udp {
                udp_ttl(s, sp, d, dp, b"x", 64)
            } else {
                tcp(s, sp, d, dp, ACK)
            };
            let req = mk(c, cport, VIP, vport);
            let core = steer(&req, PUB, n);
            prop_assert!(core < n);
            // What the real server receives and what it answers.
            let fwd = mk(c, cport, r, rport);
            let reply = mk(r, rport, c, cport);
            prop_assert_eq!(steer(&reply, PRIV, n), core);
            // The reply as the client sees it, and errors about both directions.
            let snat = mk(VIP, vport, c, cport);
            let router = Ipv4Addr::new(203, 0, 113, 1);
            let e_pub = icmp_error_pkt(router, VIP, 3, 4, 1400, &snat[..28]);
            prop_assert_eq!(steer(&e_pub, PUB, n), core);
            let e_priv = icmp_error_pkt(r, c, 11, 0, 0, &fwd[..28]);
            prop_assert_eq!(steer(&e_priv, PRIV, n), core);
            prop_assert_eq!(endpoint_core(c, cport, n), core);
        }

        #[test]
        fn nat_then_reverse_nat_restores_bytes(
            c in any::<u32>(),
            cport in any::<u16>(),
            new_addr in any::<u32>(),
            new_port in any::<u16>(),
            data in proptest::collection::vec(any::<u8>(), 0..64),
            use_udp in any::<bool>(),
            dst_side in any::<bool>(),
        ) {
            let c = Ipv4Addr::from(c);
            let orig = if use_udp {
                udp_ttl(c, cport, VIP, 53, &data, 64)
            } else {
                ip_packet(c, VIP, 6, 64, 0, 3, &tcp_seg(c, cport, VIP, 80, ACK, &data))
            };
            let h = parse(&orig).unwrap();
            let (side, old_addr, old_port) = if dst_side {
                (Side::Dst, VIP, if use_udp { 53 } else { 80 })
            } else {
                (Side::Src, c, cport)
            };
            let mut p = orig.clone();
            nat_endpoint(&mut p, &h, side, Ipv4Addr::from(new_addr), Some(new_port));
            prop_assert!(checksums_ok(&p));
            nat_endpoint(&mut p, &h, side, old_addr, Some(old_port));
            prop_assert_eq!(p, orig);
        }
    }
}
