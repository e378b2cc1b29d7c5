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

use crate::config::{DestId, Snapshot, MAX_DESTS, MAX_SERVICES};
use crate::conn::{Conn, ConnInfo, ConnTable, MemAdvice};
use crate::frag::{FragAction, FragKey, FragTable, DEFAULT_FRAG_TIMEOUT_SECS};
use crate::stats::{CoreStats, DropReason};
use crate::steer::Steer;
use crate::{PortRole, Time};
use rvs_net::ipv4::{Ipv4Packet, Protocol};
use std::net::Ipv4Addr;
use std::sync::Arc;

use apply::{DestRt, SvcRt};

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
}

mod apply;
mod nat;
mod related_icmp;
mod schedule;

#[cfg(test)]
mod tests;
