//! The configuration's value types: protocols, ids, service keys, mark rules, the `-A`/`-a`
//! specs, services and real servers as published, the trash entry and the timeouts.

use super::DEFAULT_PERSISTENT_TIMEOUT;
use crate::sched::SchedFlags;
use crate::tcp_state::{TcpState, DEFAULT_TCP_TIMEOUTS, DEFAULT_UDP_TIMEOUT, N_TCP_STATES};
use std::net::Ipv4Addr;

/// Transport protocols rvs balances.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    /// IP protocol number.
    pub const fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
        }
    }

    pub const fn from_number(n: u8) -> Option<Proto> {
        match n {
            6 => Some(Proto::Tcp),
            17 => Some(Proto::Udp),
            _ => None,
        }
    }

    /// As ipvsadm prints it ("TCP", "UDP").
    pub const fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
        }
    }

    pub(crate) const fn slot(self) -> usize {
        match self {
            Proto::Tcp => 0,
            Proto::Udp => 1,
        }
    }
}

/// Index of a service in the per-core per-service counter arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceId(pub u16);

impl ServiceId {
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// Index of a destination in the per-core per-dest counter and state arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DestId(pub u16);

impl DestId {
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// How a service is addressed (the kernel's service lookup keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceKey {
    /// `-t|-u VIP:port`. Port 0 means "every port of the VIP" and needs persistence.
    Addr {
        proto: Proto,
        vaddr: Ipv4Addr,
        vport: u16,
    },
    /// `-f MARK`: matches packets that a [`MarkRule`] marked with this value, TCP or UDP.
    Fwmark(u32),
}

impl ServiceKey {
    pub fn tcp(vaddr: Ipv4Addr, vport: u16) -> ServiceKey {
        ServiceKey::Addr {
            proto: Proto::Tcp,
            vaddr,
            vport,
        }
    }

    pub fn udp(vaddr: Ipv4Addr, vport: u16) -> ServiceKey {
        ServiceKey::Addr {
            proto: Proto::Udp,
            vaddr,
            vport,
        }
    }

    /// The virtual port, 0 for port-zero and fwmark services.
    pub fn vport(&self) -> u16 {
        match self {
            ServiceKey::Addr { vport, .. } => *vport,
            ServiceKey::Fwmark(_) => 0,
        }
    }
}

/// The firewall-mark equivalent: rvs has no iptables, so a mark is given to packets by rules of
/// the form "protocol, VIP, destination port range". The first matching rule (in insertion
/// order) marks the packet; a fwmark service with that mark then takes it, exactly as the kernel
/// consults fwmark services before address services. A mark with no service leaves the packet
/// to the address services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MarkRule {
    pub mark: u32,
    pub proto: Proto,
    pub vaddr: Ipv4Addr,
    /// Inclusive destination port range.
    pub port_lo: u16,
    pub port_hi: u16,
}

impl MarkRule {
    pub(super) fn matches(&self, proto: Proto, port: u16) -> bool {
        self.proto == proto && self.port_lo <= port && port <= self.port_hi
    }
}

/// `-p [timeout] [-M netmask]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Persistence {
    /// Template timeout in seconds, 1..=MAX_TIMEOUT.
    pub timeout: u32,
    /// Client address mask of the template key (`-M`), default /32.
    pub netmask: Ipv4Addr,
}

impl Default for Persistence {
    fn default() -> Self {
        Persistence {
            timeout: DEFAULT_PERSISTENT_TIMEOUT,
            netmask: Ipv4Addr::BROADCAST,
        }
    }
}

/// Forwarding method. rvs is LVS-NAT only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Forward {
    #[default]
    Masq,
}

impl Forward {
    /// As ipvsadm prints it in listings.
    pub fn name(self) -> &'static str {
        match self {
            Forward::Masq => "Masq",
        }
    }
}

/// What `-A`/`-E` carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    pub key: ServiceKey,
    pub scheduler: String,
    pub sched_flags: SchedFlags,
    pub persistence: Option<Persistence>,
}

impl ServiceSpec {
    /// A service with ipvsadm's defaults: wlc, no flags, not persistent.
    pub fn new(key: ServiceKey) -> ServiceSpec {
        ServiceSpec {
            key,
            scheduler: crate::sched::DEFAULT_SCHEDULER.to_string(),
            sched_flags: SchedFlags::default(),
            persistence: None,
        }
    }

    pub fn scheduler(mut self, name: &str) -> ServiceSpec {
        self.scheduler = name.to_string();
        self
    }

    pub fn persistent(mut self, p: Persistence) -> ServiceSpec {
        self.persistence = Some(p);
        self
    }

    pub fn flags(mut self, f: SchedFlags) -> ServiceSpec {
        self.sched_flags = f;
        self
    }
}

/// What `-a`/`-e` carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DestSpec {
    pub addr: Ipv4Addr,
    /// 0 = the service's virtual port (ipvsadm copies it); on port-zero and fwmark services, 0
    /// means "the packet's destination port".
    pub port: u16,
    pub weight: u32,
    pub u_threshold: u32,
    pub l_threshold: u32,
    pub forward: Forward,
}

impl DestSpec {
    /// ipvsadm's defaults: weight 1, no thresholds.
    pub fn new(addr: Ipv4Addr, port: u16) -> DestSpec {
        DestSpec {
            addr,
            port,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            forward: Forward::Masq,
        }
    }

    pub fn weight(mut self, w: u32) -> DestSpec {
        self.weight = w;
        self
    }

    pub fn thresholds(mut self, upper: u32, lower: u32) -> DestSpec {
        self.u_threshold = upper;
        self.l_threshold = lower;
        self
    }
}

/// A real server as published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dest {
    pub id: DestId,
    pub addr: Ipv4Addr,
    pub port: u16,
    pub weight: u32,
    /// Last non-zero weight (`last_weight`, used by mh).
    pub last_weight: u32,
    pub u_threshold: u32,
    pub l_threshold: u32,
    pub forward: Forward,
    /// Changes whenever `id` is (re)allocated; workers zero the id's counters when it changes.
    pub incarnation: u64,
}

/// The weights of a service's real servers after one change of its list (an add, edit or
/// delete): what the kernel's wrr recomputes at each such event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeightSummary {
    /// Gcd of the positive weights (1 when there is none).
    pub gcd: u32,
    /// The largest weight (0 when there is no real server).
    pub max: u32,
}

impl WeightSummary {
    /// Of a list's weights, as `ip_vs_wrr_gcd_weight` and `ip_vs_wrr_max_weight` compute them.
    pub fn of_weights(weights: impl Iterator<Item = u32> + Clone) -> WeightSummary {
        let g = weights
            .clone()
            .filter(|&w| w > 0)
            .fold(0u64, |g, w| crate::sched::common::gcd(u64::from(w), g));
        WeightSummary {
            // A gcd of u32 weights is at most the largest of them.
            gcd: g.max(1) as u32,
            max: weights.max().unwrap_or(0),
        }
    }

    pub fn of(dests: &[Dest]) -> WeightSummary {
        Self::of_weights(dests.iter().map(|d| d.weight))
    }
}

/// A virtual service as published. `dests` is in the kernel's list order, newest first (which
/// rr, wrr, sh and friends depend on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub id: ServiceId,
    pub key: ServiceKey,
    pub scheduler: String,
    pub sched_flags: SchedFlags,
    pub persistence: Option<Persistence>,
    pub dests: Vec<Dest>,
    /// One entry per change of `dests` since the previous snapshot, oldest first. The kernel
    /// sees every ipvsadm command (a restore too) as its own event, and wrr's position depends
    /// on each; a snapshot can carry many (an atomic restore), so workers replay them.
    pub list_changes: Vec<WeightSummary>,
    pub incarnation: u64,
}

impl Service {
    pub fn dest(&self, addr: Ipv4Addr, port: u16) -> Option<&Dest> {
        self.dests.iter().find(|d| d.addr == addr && d.port == port)
    }
}

/// A deleted destination kept for its connections and counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrashedDest {
    pub dest: Dest,
    /// The service it belonged to (re-adding to a service with this key restores it).
    pub service: ServiceKey,
    /// Generation of the first configuration without it. Workers that acknowledged this
    /// generation or later create no new connection to it.
    pub removed_in: u64,
}

/// Connection timeouts in seconds (`--set` edits tcp = ESTABLISHED, tcpfin = FIN_WAIT,
/// udp = UDP_NORMAL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timeouts {
    pub tcp: [u32; N_TCP_STATES],
    pub udp: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp: DEFAULT_TCP_TIMEOUTS,
            udp: DEFAULT_UDP_TIMEOUT,
        }
    }
}

impl Timeouts {
    /// `(tcp, tcpfin, udp)` as `ipvsadm -L --timeout` shows them.
    pub fn triple(&self) -> (u32, u32, u32) {
        (
            self.tcp[TcpState::Established.index()],
            self.tcp[TcpState::FinWait.index()],
            self.udp,
        )
    }

    pub fn tcp_state(&self, s: TcpState) -> u32 {
        self.tcp[s.index()]
    }
}
