//! The typed result of parsing. Defaults are keepalived's; each names where in keepalived's
//! sources (acassen/keepalived, 2.2.x / master 9cbce3e2) it comes from.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

pub use rvs_lb::Proto;

/// `alloc_vs()` in keepalived/check/check_data.c: `delay_loop = KEEPALIVED_DEFAULT_DELAY`
/// (60 * TIMER_HZ, keepalived/include/check_data.h).
pub const DEFAULT_DELAY_LOOP: Duration = Duration::from_secs(60);
/// `alloc_vs()`: `connection_to = 5 * TIMER_HZ`, inherited by real servers and checkers in
/// `validate_check_config()` (check_data.c).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// `pto_handler()` (check_parser.c): `persistence_timeout` with no value, or
/// `persistence_granularity` without a timeout, means IPVS_SVC_PERSISTENT_TIMEOUT (6 * 60,
/// keepalived/include/libipvs.h).
pub const DEFAULT_PERSISTENCE_TIMEOUT: u32 = 360;
/// `pto_handler()`: LVS_MAX_TIMEOUT (86400 * 31, keepalived/include/global_data.h).
pub const MAX_PERSISTENCE_TIMEOUT: u32 = 86400 * 31;
/// `rs_weight_handler()`: 0..=IPVS_WEIGHT_LIMIT (INT32_MAX, keepalived/include/ip_vs.h).
pub const MAX_WEIGHT: u32 = i32::MAX as u32;
/// `validate_check_config()` (check_data.c): no lb_algo means IPVS_DEF_SCHED "wlc"
/// (keepalived/include/ipvswrapper.h).
pub const DEFAULT_SCHEDULER: &str = "wlc";
/// `url_check()` (check_http.c): no status_code means HTTP_DEFAULT_STATUS_CODE_MIN..MAX,
/// 200-299 (keepalived/include/check_http.h); codes must be in 100..=599.
pub const DEFAULT_STATUS_CODES: (u16, u16) = (200, 299);

/// Where a section starts, for the caller's log lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: usize,
}

/// A top-level section that is not about LVS, skipped whole; the caller logs one line each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    pub keyword: String,
    pub at: Location,
}

/// Everything rvs takes from a keepalived.conf.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChecksConfig {
    pub virtual_servers: Vec<VirtualServer>,
    pub groups: Vec<VirtualServerGroup>,
    /// The top-level `SSL { ... }` block used by SSL_GET.
    pub ssl: Option<SslContext>,
    pub ignored: Vec<Ignored>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SslContext {
    pub password: Option<String>,
    pub ca: Option<String>,
    pub certificate: Option<String>,
    pub key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VsAddr {
    Ip(SocketAddrV4),
    Fwmark(u32),
    /// `virtual_server group NAME`: the name is checked to be a defined group.
    Group(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualServerGroup {
    pub name: String,
    pub entries: Vec<VsgEntry>,
    pub at: Location,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VsgEntry {
    /// `IP PORT`, `IP-LAST PORT` (last octet), `IP-IP PORT` or `IP/LEN PORT`: first..=last.
    Range {
        first: Ipv4Addr,
        last: Ipv4Addr,
        port: u16,
    },
    Fwmark(u32),
}

/// The only forwarding method rvs implements; DR and TUN are refused at parse time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LbKind {
    #[default]
    Nat,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SorryServer {
    pub addr: Ipv4Addr,
    /// None: keepalived uses the virtual server's port (`validate_check_config()`).
    pub port: Option<u16>,
    pub inhibit: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VirtualServer {
    pub addr: VsAddr,
    pub at: Location,
    /// `protocol`; keepalived spells it case-insensitively. Default TCP.
    pub protocol: Proto,
    /// `lb_algo` / `lvs_sched`; default [`DEFAULT_SCHEDULER`].
    pub lb_algo: String,
    pub lb_kind: LbKind,
    /// Scheduler flag bits (rvs_lb::sched::SchedFlags), from `flag-1`.. `mh-fallback`.
    pub sched_flags: u32,
    /// The flag keywords as written, for messages.
    pub sched_flag_names: Vec<String>,
    /// `ops` (one-packet scheduling).
    pub ops: bool,
    /// Seconds; None = not persistent.
    pub persistence_timeout: Option<u32>,
    pub persistence_granularity: Option<Ipv4Addr>,
    pub delay_loop: Duration,
    pub connect_timeout: Duration,
    /// vs-level defaults for the real servers' checkers (None: the checker type's default).
    pub retry: Option<u32>,
    pub delay_before_retry: Option<Duration>,
    pub warmup: Option<Duration>,
    pub alpha: bool,
    pub omega: bool,
    /// Default 1 (`alloc_vs()`).
    pub quorum: u32,
    /// Default 0 (`alloc_vs()`).
    pub hysteresis: u32,
    pub quorum_up: Option<String>,
    pub quorum_down: Option<String>,
    /// Default weight of real servers without `weight`; default 1 (`alloc_vs()`).
    pub weight: u32,
    pub sorry_server: Option<SorryServer>,
    pub inhibit_on_failure: bool,
    pub ha_suspend: bool,
    pub virtualhost: Option<String>,
    pub real_servers: Vec<RealServer>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RealServer {
    pub addr: Ipv4Addr,
    pub port: u16,
    pub at: Location,
    /// The server's own `weight`, else the virtual server's `weight` (default 1).
    pub weight: u32,
    pub uthreshold: Option<u32>,
    pub lthreshold: Option<u32>,
    /// Own setting, else the virtual server's.
    pub inhibit_on_failure: bool,
    pub alpha: bool,
    pub notify_up: Option<String>,
    pub notify_down: Option<String>,
    pub virtualhost: Option<String>,
    /// Effective values (own, else the virtual server's), also applied to `checkers`.
    pub delay_loop: Duration,
    pub connect_timeout: Duration,
    pub retry: Option<u32>,
    pub delay_before_retry: Option<Duration>,
    pub warmup: Option<Duration>,
    pub checkers: Vec<Checker>,
}

/// Options every checker has, with keepalived's inheritance already resolved
/// (checker, else real server, else virtual server, else the checker type's default:
/// `validate_check_config()` in check_data.c).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Common {
    /// Address probed; default the real server's (`queue_checker()` in check_api.c).
    pub connect_ip: Ipv4Addr,
    /// Port probed; default the real server's.
    pub connect_port: u16,
    pub bindto: Option<Ipv4Addr>,
    pub bind_port: Option<u16>,
    pub bind_if: Option<String>,
    pub fwmark: Option<u32>,
    pub connect_timeout: Duration,
    /// Default 1 (`queue_checker()`); MISC_CHECK 0 (`misc_check_handler()`); DNS_CHECK 3
    /// (DNS_DEFAULT_RETRY, check_dns.h).
    pub retry: u32,
    /// Default 1 s (`queue_checker()`); HTTP_GET/SSL_GET 3 s (`http_get_handler()`);
    /// DNS_CHECK the delay_loop (`dns_check_handler()`).
    pub delay_before_retry: Duration,
    /// Default the delay_loop (`validate_check_config()`).
    pub warmup: Duration,
    pub delay_loop: Duration,
    /// Own setting, else the real server's.
    pub alpha: bool,
    pub log_all_failures: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HttpProtocol {
    V1_0,
    V1_1,
    /// `1.0C`: HTTP/1.0 with `Connection: close`.
    V1_0C,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Url {
    pub path: String,
    /// MD5 of the body, 16 bytes from 32 hex characters.
    pub digest: Option<[u8; 16]>,
    /// Accepted status codes as inclusive ranges; default [`DEFAULT_STATUS_CODES`].
    pub status_codes: Vec<(u16, u16)>,
    pub virtualhost: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HttpCheck {
    pub tls: bool,
    pub urls: Vec<Url>,
    pub virtualhost: Option<String>,
    pub http_protocol: Option<HttpProtocol>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MiscCheck {
    /// The command line as written (keepalived splits it into arguments itself).
    pub misc_path: String,
    /// Seconds; None = the delay_loop (`misc_check_thread()`).
    pub misc_timeout: Option<u32>,
    pub misc_dynamic: bool,
    pub user: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Hash)]
pub struct UdpCheck {
    pub payload: Option<Vec<u8>>,
    pub require_reply: Option<Vec<u8>>,
    /// Default 0 (`udp_check_handler()`).
    pub min_reply_length: u16,
    /// Default UINT8_MAX = 255 (`udp_check_handler()`), odd as that is.
    pub max_reply_length: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DnsCheck {
    /// Default SOA (DNS_DEFAULT_TYPE, check_dns.h).
    pub qtype: String,
    /// Default "" (DNS_DEFAULT_NAME), the root.
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CheckKind {
    Tcp,
    Http(HttpCheck),
    Misc(MiscCheck),
    Udp(UdpCheck),
    Dns(DnsCheck),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checker {
    pub kind: CheckKind,
    /// MISC_CHECK has no connection: its connect_* fields are the real server's, unused.
    pub common: Common,
    pub at: Location,
}
