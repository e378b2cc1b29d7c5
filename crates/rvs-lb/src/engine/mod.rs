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
//!   unreachable (the client sees "connection refused", not a hang). With `host_stack` (a
//!   kernel twin shares the port), a port without service is `NotService`: the host's kernel
//!   answers it (RST, port unreachable) or has a listener there.
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
//! - Without `host_stack`, non-SYN TCP segments to a service without connection are dropped
//!   (`not_syn`); the kernel hands them to its local stack, which answers with a RST, and so
//!   does rvs with `host_stack` (`NotService`, sent up to the kernel twin).
//! - Connection thresholds (`-x`/`-y`) apply per core: each core enforces
//!   `ceil(threshold / n_cores)` against its own connection counts (schedulers are per core).
//! - Checksums are updated incrementally only; the IP header checksum is not verified on input
//!   (an incremental update keeps a bad checksum bad, so the end host still drops the packet).
//!
//! Fragments: see frag.rs and steer.rs.

use crate::config::{DestId, Snapshot, MAX_DESTS, MAX_SERVICES};
use crate::conn::{Conn, ConnInfo, ConnTable, MemAdvice};
use crate::frag::{FragAction, FragKey, FragTable, DEFAULT_FRAG_TIMEOUT_SECS};
use crate::stats::{CoreStats, DropReason};
use crate::steer::Steer;
use crate::{PortRole, Time};
use rvs_net::ipv4::{Ipv4Repr, Protocol};
use std::net::Ipv4Addr;
use std::sync::Arc;

pub use apply::Prepared;
use apply::{DestRt, SvcRt};

/// What the dataplane does with the packet after [`Lb::process`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The packet was rewritten in place; route it out of `port` towards `dst`, its (new)
    /// destination address.
    Forward { port: PortRole, dst: Ipv4Addr },
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
    /// processes it (parsing it again: the representation does not travel with it).
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
    /// The host's own stack shares the public port (a kernel twin): what a VIP receives that no
    /// service or connection takes (a port without service, a TCP segment other than a SYN
    /// without connection, an ICMP error about no connection) is `NotService`, for the host,
    /// as a kernel director hands it to its local stack (which answers RST or port
    /// unreachable). Without it rvs answers ICMP port unreachable or drops, itself.
    pub host_stack: bool,
}

impl LbParams {
    /// The IP MTU of the port `role`.
    pub fn mtu(&self, role: PortRole) -> u16 {
        match role {
            PortRole::Public => self.mtu_public,
            PortRole::Private => self.mtu_private,
        }
    }
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
            host_stack: false,
        }
    }
}

/// `(proto, client address, client port)` of an unfragmented TCP/UDP packet (or first
/// fragment), as the connection table is keyed; `None` for anything else.
#[inline]
fn client_endpoint(h: &Ipv4Repr, role: PortRole) -> Option<(u8, u32, u16)> {
    let (sport, dport) = h.ports?;
    Some(match role {
        PortRole::Public => (h.protocol, u32::from(h.src), sport),
        PortRole::Private => (h.protocol, u32::from(h.dst), dport),
    })
}

/// The connection-table lookup [`Lb::process_parsed`] will make for a packet, known from its
/// header alone, so that a burst's table reads can be started before any of its packets is
/// processed. Opaque: the table's layout stays inside the engine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lookup(Option<u32>);

impl Lookup {
    /// No lookup (what `Default` gives), for initialising arrays.
    pub const NONE: Lookup = Lookup(None);
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

    /// Processes one IPv4 packet (`ip` runs from the IP header to the end of the frame and may
    /// carry Ethernet padding after `total_len`): [`Ipv4Repr::parse`] then
    /// [`Lb::process_parsed`]. For callers that have not parsed the packet already.
    pub fn process(&mut self, ip: &mut [u8], role: PortRole, now: Time) -> Verdict {
        match Ipv4Repr::parse(ip) {
            Ok(h) => self.process_parsed(ip, &h, role, now),
            Err(_) => {
                self.st.stats.engine.drop(DropReason::Malformed);
                Verdict::Drop(DropReason::Malformed)
            }
        }
    }

    /// Processes one IPv4 packet whose header the dataplane has parsed into `h` (from these
    /// bytes: a header that does not fit them is dropped as malformed). Rewrites it in place
    /// when forwarding.
    ///
    /// Contract with the dataplane: call it on the core [`Lb::steer`]`().core_of(..)` names
    /// for the packet, or on the core a `Verdict::Handover` named. Only the fragment path
    /// re-checks ownership; other packets are trusted to be on their owner core. Checksums are
    /// updated incrementally (no offload request is needed; with TX checksum offload the
    /// dataplane may recompute instead).
    #[inline]
    pub fn process_parsed(
        &mut self,
        ip: &mut [u8],
        h: &Ipv4Repr,
        role: PortRole,
        now: Time,
    ) -> Verdict {
        let v = if h.fits(ip) {
            self.st.process(&self.snap, ip, h, role, now)
        } else {
            Verdict::Drop(DropReason::Malformed)
        };
        if let Verdict::Drop(r) = v {
            self.st.stats.engine.drop(r);
        }
        v
    }

    /// Burst prefetch, first pass (as each packet of a burst is queued): the lookup `process`
    /// will make for the packet, and the address to prefetch for it now (its hash bucket).
    /// Reads nothing but `h`.
    #[inline]
    pub fn prefetch_lookup(&self, h: &Ipv4Repr, role: PortRole) -> (Lookup, Option<*const u8>) {
        let Some((proto, caddr, cport)) = client_endpoint(h, role) else {
            return (Lookup(None), None);
        };
        let b = self.st.conns.bucket_of(proto, caddr, cport);
        let addr = self
            .st
            .conns
            .bucket_ref(b)
            .map(|w| w as *const u32 as *const u8);
        (Lookup(Some(b)), addr)
    }

    /// Burst prefetch, second pass (once the burst is queued, so that its buckets have
    /// arrived): `fetch` is called with the address of each connection entry those buckets lead
    /// to, and of the entry the next new connection will take. Two passes because the entry's
    /// address is read from the bucket: asking for both at once would wait for each bucket.
    #[inline]
    pub fn prefetch_entries(
        &self,
        lookups: impl IntoIterator<Item = Lookup>,
        mut fetch: impl FnMut(*const u8),
    ) {
        for l in lookups {
            if let Some(e) = l.0.and_then(|b| self.st.conns.chain_head(b)) {
                fetch(e as *const Conn as *const u8);
            }
        }
        if let Some(e) = self.st.conns.next_free() {
            fetch(e as *const Conn as *const u8);
        }
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
    /// `h` fits `ip` (checked by the caller). Inlined into `Lb::process_parsed`, as it was
    /// before the engine's split into modules moved it away from its caller (measured).
    #[inline(always)]
    fn process(
        &mut self,
        snap: &Snapshot,
        ip: &mut [u8],
        h: &Ipv4Repr,
        role: PortRole,
        now: Time,
    ) -> Verdict {
        match h.protocol {
            Protocol::TCP | Protocol::UDP => {
                if h.frag_offset != 0 {
                    return self.later_fragment(ip, h, role, now);
                }
                let tcp = h.protocol == Protocol::TCP;
                // Ports from the parsed header; the flags and the length check from the bytes.
                let min_len = if tcp { 20 } else { 8 };
                let (sport, dport, flags) = match (h.ports, ip.get(h.hl()..h.tl())) {
                    (Some((sport, dport)), Some(l4)) if l4.len() >= min_len => {
                        let flags = if tcp {
                            l4.get(13).copied().unwrap_or(0)
                        } else {
                            0
                        };
                        (sport, dport, flags)
                    }
                    _ => {
                        return Verdict::Drop(if h.more_frags {
                            DropReason::FragTooShort
                        } else {
                            DropReason::Malformed
                        })
                    }
                };
                if h.more_frags && self.params.n_cores > 1 {
                    let me = self.params.core_id;
                    let owner = match role {
                        PortRole::Public => self.steer.endpoint_core(h.src, sport),
                        PortRole::Private => self.steer.endpoint_core(h.dst, dport),
                    };
                    let tracker = self.steer.fragment_core(h.src, h.dst, h.ident, h.protocol);
                    if owner != me && tracker != me {
                        // Mis-steered: the tracking core must see the first fragment so that
                        // it can route the later ones.
                        self.stats.engine.handovers.inc();
                        return Verdict::Handover { core: tracker };
                    }
                    if owner != me {
                        let key = FragKey::new(h.src, h.dst, h.ident, h.protocol, role);
                        let len = (h.tl() - h.hl()) as u32;
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
                    PortRole::Public => self.in_l4(snap, ip, h, sport, dport, flags, now),
                    PortRole::Private => self.out_l4(snap, ip, h, sport, dport, flags, now),
                }
            }
            Protocol::ICMP => self.icmp(ip, h, role, now),
            _ => Verdict::NotService,
        }
    }
}

mod apply;
mod nat;
mod related_icmp;
mod schedule;

#[cfg(test)]
mod tests;
