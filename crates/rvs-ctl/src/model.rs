//! Plain state types as the control plane reports them: the JSON control protocol carries them and
//! the `rvsadm` formatter renders them (`control::ipvsadm::format`).
//!
//! IPv4 only: addresses are [`Ipv4Addr`]. rvs has no IPv6 data path; `rvsadm` rejects IPv6 input
//! with the error the kernel gives for an unsupported family. Moving to `IpAddr` later only touches
//! the address fields and the formatter's `[addr]:port` branch.

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// Service protocol. `Fwmark` services match on a firewall mark instead of address/port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceProto {
    Tcp,
    Udp,
    Sctp,
    Fwmark,
}

impl ServiceProto {
    /// IP protocol number as ipvsadm sorts and looks up ports by it. `Fwmark` services carry
    /// TCP, the "sane value" ipvsadm stores for `-f`.
    pub fn ipproto(self) -> u8 {
        match self {
            ServiceProto::Tcp | ServiceProto::Fwmark => 6,
            ServiceProto::Udp => 17,
            ServiceProto::Sctp => 132,
        }
    }
}

/// Forwarding method of a real server (the kernel's IP_VS_CONN_F_FWD_MASK values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fwd {
    /// `-m`, NAT: the only method the rvs data path implements.
    Masq,
    /// LOCALNODE: listed as "Local", saved as `-g`.
    Local,
    /// `-i`, IP-in-IP (or GUE/GRE) tunnelling.
    Tunnel,
    /// `-g`, direct routing (ipvsadm's default).
    Route,
}

/// Tunnel encapsulation of a `Tunnel` real server (ipvsadm 1.31 `--tun-*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunType {
    Ipip,
    Gue,
    Gre,
}

/// Tunnel checksum mode: `--tun-nocsum` (default), `--tun-csum`, `--tun-remcsum`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunCsum {
    #[default]
    NoCsum,
    Csum,
    RemCsum,
}

/// Tunnel parameters of a real server. `port` is 0 when not set (only GUE uses it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TunnelInfo {
    pub tun_type: TunType,
    pub port: u16,
    pub csum: TunCsum,
}

/// Cumulative counters (`--stats`), 64-bit as the kernel's netlink `stats64`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
}

/// Estimated rates (`--rate`), per second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rates {
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

/// Scheduler flag bits of [`ServiceEntry::flags`], as the kernel's IP_VS_SVC_F_SCHED1..3.
pub const SVC_F_SCHED1: u32 = 0x0008;
pub const SVC_F_SCHED2: u32 = 0x0010;
pub const SVC_F_SCHED3: u32 = 0x0020;
/// All scheduler flag bits.
pub const SVC_F_SCHED_MASK: u32 = SVC_F_SCHED1 | SVC_F_SCHED2 | SVC_F_SCHED3;

/// One virtual service with its real servers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceEntry {
    pub proto: ServiceProto,
    /// 0.0.0.0 for fwmark services.
    pub addr: Ipv4Addr,
    /// 0 for fwmark services.
    pub port: u16,
    /// 0 unless `proto` is `Fwmark`.
    pub fwmark: u32,
    pub sched: String,
    /// Scheduler flags only (`SVC_F_SCHED*`); persistence and one-packet are separate fields.
    pub flags: u32,
    /// Persistence timeout in seconds, `None` when not persistent.
    pub persistent: Option<u32>,
    /// Persistence granularity; 255.255.255.255 is the default and is not printed.
    pub netmask: Ipv4Addr,
    /// Persistence engine (`--pe`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pe_name: Option<String>,
    /// One-packet scheduling (`-o`).
    pub ops: bool,
    pub stats: Stats,
    pub rates: Rates,
    pub dests: Vec<DestEntry>,
}

/// One real server of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DestEntry {
    pub addr: Ipv4Addr,
    pub port: u16,
    pub fwd: Fwd,
    pub weight: i32,
    pub u_threshold: u32,
    pub l_threshold: u32,
    pub activeconns: u32,
    pub inactconns: u32,
    pub persistconns: u32,
    pub stats: Stats,
    pub rates: Rates,
    /// Tunnel parameters; `None` for non-tunnel servers (a `Tunnel` server without it is IPIP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<TunnelInfo>,
}

/// One connection (or persistence template) as `/proc/net/ip_vs_conn` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnEntry {
    /// As the kernel prints it: "TCP", "UDP", "SCTP", or "IP" for fwmark templates.
    pub proto: String,
    pub caddr: Ipv4Addr,
    pub cport: u16,
    /// The VIP; for fwmark templates the mark, as the kernel prints it (`Ipv4Addr::from(mark)`).
    pub vaddr: Ipv4Addr,
    pub vport: u16,
    pub daddr: Ipv4Addr,
    pub dport: u16,
    /// Kernel state name: "ESTABLISHED", "SYN_RECV", "UDP", "NONE", ...
    pub state: String,
    pub expires_secs: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pe_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pe_data: Option<String>,
}

/// The three timeouts `--set` writes and `--timeout` lists, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeoutTriple {
    pub tcp: u32,
    pub tcpfin: u32,
    pub udp: u32,
}

impl Default for TimeoutTriple {
    /// The kernel defaults: ESTABLISHED 900 s, FIN_WAIT 120 s, UDP 300 s.
    fn default() -> Self {
        TimeoutTriple {
            tcp: 900,
            tcpfin: 120,
            udp: 300,
        }
    }
}

/// Sync daemon role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DaemonState {
    Master,
    Backup,
}

/// A running sync daemon as `--daemon` lists it (rvs runs none; kept for format completeness).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonEntry {
    pub state: DaemonState,
    pub mcast_ifn: String,
    pub syncid: u32,
    #[serde(default)]
    pub sync_maxlen: Option<u32>,
    #[serde(default)]
    pub mcast_group: Option<String>,
    #[serde(default)]
    pub mcast_port: Option<u16>,
    #[serde(default)]
    pub mcast_ttl: Option<u8>,
}

/// Everything `-L` / `-S` print.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListSnapshot {
    /// Connection table size, printed as `size=` in the header.
    pub conn_tab_size: u32,
    pub services: Vec<ServiceEntry>,
    /// Totals over all services (the kernel's `/proc/net/ip_vs_stats`); ipvsadm prints none,
    /// JSON consumers may use them. `None` when the source has no totals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<TotalEntry>,
}

/// Totals over all services, since the last `-Z` without a service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotalEntry {
    pub stats: Stats,
    pub rates: Rates,
}

/// An rvs firewall-mark rule (the stand-in for an iptables mangle rule): TCP or UDP packets to
/// `vaddr` with a destination port in `port_lo..=port_hi` get `mark`, which a `-f mark` service
/// then takes. `proto` is `Tcp` or `Udp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkRuleEntry {
    pub mark: u32,
    pub proto: ServiceProto,
    pub vaddr: Ipv4Addr,
    pub port_lo: u16,
    pub port_hi: u16,
}
