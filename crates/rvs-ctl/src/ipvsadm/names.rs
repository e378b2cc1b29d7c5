//! Address, number and name handling with the C library semantics ipvsadm relies on:
//! `inet_aton` (short and octal/hex forms), `strtol`-based range checks, `atoi`, and the
//! `/etc/services` / `/etc/hosts` lookups, behind the [`Names`] trait so tests stay pure.

use crate::model::ServiceProto;
use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};

/// Name lookups in both directions. Every method may answer `None` ("no such name"), which makes
/// the caller fall back to numbers exactly as ipvsadm does when the C library finds nothing.
pub trait Names {
    /// Forward host lookup (`gethostbyname`, IPv4 only). Only called for strings `inet_aton`
    /// rejects.
    fn host_to_addr(&self, name: &str) -> Option<Ipv4Addr>;
    /// Port of a service name for a protocol (`getservbyname`).
    fn service_to_port(&self, name: &str, proto: ServiceProto) -> Option<u16>;
    /// Reverse host lookup (`gethostbyaddr`), used by listings without `-n`.
    fn addr_to_host(&self, addr: Ipv4Addr) -> Option<String>;
    /// Service name of a port (`getservbyport`), used by listings without `-n`.
    fn port_to_service(&self, port: u16, proto: ServiceProto) -> Option<String>;
}

/// Knows no names at all: numeric input only, numeric output. Pure and fast; what `-n` needs.
#[derive(Debug, Clone, Copy, Default)]
pub struct NumericNames;

impl Names for NumericNames {
    fn host_to_addr(&self, _name: &str) -> Option<Ipv4Addr> {
        None
    }
    fn service_to_port(&self, _name: &str, _proto: ServiceProto) -> Option<u16> {
        None
    }
    fn addr_to_host(&self, _addr: Ipv4Addr) -> Option<String> {
        None
    }
    fn port_to_service(&self, _port: u16, _proto: ServiceProto) -> Option<String> {
        None
    }
}

/// Protocol name as `/etc/services` spells it. Fwmark services are stored as TCP by ipvsadm.
fn proto_name(proto: ServiceProto) -> &'static str {
    match proto {
        ServiceProto::Tcp | ServiceProto::Fwmark => "tcp",
        ServiceProto::Udp => "udp",
        ServiceProto::Sctp => "sctp",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ServiceLine {
    name: String,
    aliases: Vec<String>,
    port: u16,
    proto: String,
}

/// A parsed `/etc/services`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServicesDb {
    lines: Vec<ServiceLine>,
}

impl ServicesDb {
    /// Parses `/etc/services` text: `name port/proto [aliases...] [# comment]`. Malformed lines are
    /// skipped, as the C library does.
    pub fn parse(text: &str) -> ServicesDb {
        let mut lines = Vec::new();
        for raw in text.lines() {
            let line = raw.split('#').next().unwrap_or("");
            let mut toks = line.split_ascii_whitespace();
            let (Some(name), Some(pp)) = (toks.next(), toks.next()) else {
                continue;
            };
            let Some((port, proto)) = pp.split_once('/') else {
                continue;
            };
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            lines.push(ServiceLine {
                name: name.to_string(),
                aliases: toks.map(str::to_string).collect(),
                port,
                proto: proto.to_string(),
            });
        }
        ServicesDb { lines }
    }

    /// Loads the system file; an unreadable file is an empty database (numbers only).
    pub fn load_system() -> ServicesDb {
        std::fs::read_to_string("/etc/services")
            .map(|t| ServicesDb::parse(&t))
            .unwrap_or_default()
    }

    /// `getservbyname`: the first entry of that protocol whose name or alias matches.
    pub fn port_of(&self, name: &str, proto: ServiceProto) -> Option<u16> {
        let p = proto_name(proto);
        self.lines
            .iter()
            .find(|l| l.proto == p && (l.name == name || l.aliases.iter().any(|a| a == name)))
            .map(|l| l.port)
    }

    /// `getservbyport`: the official name of the first entry with that port and protocol.
    pub fn name_of(&self, port: u16, proto: ServiceProto) -> Option<&str> {
        let p = proto_name(proto);
        self.lines
            .iter()
            .find(|l| l.proto == p && l.port == port)
            .map(|l| l.name.as_str())
    }
}

/// A parsed `/etc/hosts`, used for reverse lookups only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostsDb {
    entries: Vec<(Ipv4Addr, String)>,
}

impl HostsDb {
    /// Parses `/etc/hosts` text: `addr name [aliases...] [# comment]`; IPv6 lines are ignored.
    pub fn parse(text: &str) -> HostsDb {
        let mut entries = Vec::new();
        for raw in text.lines() {
            let line = raw.split('#').next().unwrap_or("");
            let mut toks = line.split_ascii_whitespace();
            if let (Some(a), Some(name)) = (toks.next(), toks.next()) {
                if let Ok(addr) = a.parse::<Ipv4Addr>() {
                    entries.push((addr, name.to_string()));
                }
            }
        }
        HostsDb { entries }
    }

    pub fn load_system() -> HostsDb {
        std::fs::read_to_string("/etc/hosts")
            .map(|t| HostsDb::parse(&t))
            .unwrap_or_default()
    }

    /// The official (first) name of the first line with this address.
    pub fn name_of(&self, addr: Ipv4Addr) -> Option<&str> {
        self.entries
            .iter()
            .find(|(a, _)| *a == addr)
            .map(|(_, n)| n.as_str())
    }
}

/// The system's names: `/etc/services` for ports, the resolver (`getaddrinfo` through
/// `ToSocketAddrs`) for forward host lookups, `/etc/hosts` for reverse lookups.
///
/// Deliberate difference: ipvsadm's `gethostbyaddr` may ask DNS for PTR records; std offers no
/// reverse lookup without libc FFI, so rvsadm consults `/etc/hosts` only and otherwise
/// prints the number (what ipvsadm prints when the lookup finds nothing).
#[derive(Debug, Clone, Default)]
pub struct SystemNames {
    pub services: ServicesDb,
    pub hosts: HostsDb,
}

impl SystemNames {
    pub fn load() -> SystemNames {
        SystemNames {
            services: ServicesDb::load_system(),
            hosts: HostsDb::load_system(),
        }
    }
}

impl Names for SystemNames {
    fn host_to_addr(&self, name: &str) -> Option<Ipv4Addr> {
        // An empty or blank name never resolves (gethostbyname("") fails).
        if name.trim().is_empty() {
            return None;
        }
        let addrs = (name, 0u16).to_socket_addrs().ok()?;
        addrs.into_iter().find_map(|a| match a {
            SocketAddr::V4(v4) => Some(*v4.ip()),
            SocketAddr::V6(_) => None,
        })
    }
    fn service_to_port(&self, name: &str, proto: ServiceProto) -> Option<u16> {
        self.services.port_of(name, proto)
    }
    fn addr_to_host(&self, addr: Ipv4Addr) -> Option<String> {
        self.hosts.name_of(addr).map(str::to_string)
    }
    fn port_to_service(&self, port: u16, proto: ServiceProto) -> Option<String> {
        self.services.name_of(port, proto).map(str::to_string)
    }
}

/// C `isspace` in the "C" locale.
pub(crate) fn c_isspace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// glibc `inet_aton`: one to four parts separated by dots, each decimal, octal (leading 0) or
/// hex (0x); the last part fills the remaining bytes ("10.1" is 10.0.0.1); trailing whitespace
/// and anything after it is ignored.
pub fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let b = s.as_bytes();
    let mut i = 0usize;
    let mut parts: [u64; 3] = [0; 3];
    let mut nparts = 0usize;
    let mut val: u64;
    let mut digit;
    loop {
        // Each part must start with a digit.
        if !b.get(i).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        val = 0;
        digit = false;
        let mut base = 10u64;
        if b.get(i) == Some(&b'0') {
            i += 1;
            if matches!(b.get(i), Some(b'x') | Some(b'X')) {
                base = 16;
                i += 1;
            } else {
                base = 8;
                digit = true;
            }
        }
        while let Some(&c) = b.get(i) {
            let d = if c.is_ascii_digit() {
                if base == 8 && (c == b'8' || c == b'9') {
                    return None;
                }
                u64::from(c - b'0')
            } else if base == 16 && c.is_ascii_hexdigit() {
                u64::from(c.to_ascii_lowercase() - b'a') + 10
            } else {
                break;
            };
            val = val * base + d;
            if val > u64::from(u32::MAX) {
                return None;
            }
            digit = true;
            i += 1;
        }
        if b.get(i) == Some(&b'.') {
            if val > 0xff {
                return None;
            }
            *parts.get_mut(nparts)? = val;
            nparts += 1;
            i += 1;
        } else {
            break;
        }
    }
    if !digit {
        return None;
    }
    if let Some(&c) = b.get(i) {
        if !c_isspace(char::from(c)) {
            return None;
        }
    }
    let limit: u64 = match nparts {
        0 => 0xffff_ffff,
        1 => 0x00ff_ffff,
        2 => 0xffff,
        _ => 0xff,
    };
    if val > limit {
        return None;
    }
    let mut out = val;
    for (k, p) in parts.iter().take(nparts).enumerate() {
        out |= p << (24 - 8 * k);
    }
    u32::try_from(out).ok().map(Ipv4Addr::from)
}

/// C `strtol(s, &end, 10)` accepted only when it consumed the whole (non-empty) string and did
/// not overflow a 64-bit `long`.
pub fn c_strtol(s: &str) -> Option<i64> {
    let t = s.trim_start_matches(c_isspace);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut v: i64 = 0;
    for c in digits.bytes() {
        let d = i64::from(c - b'0');
        v = if neg {
            v.checked_mul(10)?.checked_sub(d)?
        } else {
            v.checked_mul(10)?.checked_add(d)?
        };
    }
    Some(v)
}

/// ipvsadm's `string_to_number`: a whole-string decimal in `min..=max`.
pub fn string_to_number(s: &str, min: i64, max: i64) -> Option<i64> {
    c_strtol(s).filter(|v| (min..=max).contains(v))
}

/// C `atoi`: leading whitespace, optional sign, then as many digits as there are (0 if none).
pub fn c_atoi(s: &str) -> i64 {
    let t = s.trim_start_matches(c_isspace);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut v: i64 = 0;
    for c in digits.bytes().take_while(u8::is_ascii_digit) {
        v = v.saturating_mul(10).saturating_add(i64::from(c - b'0'));
    }
    if neg {
        -v
    } else {
        v
    }
}

/// Truncates to at most `max` bytes without splitting a character (C copies bytes; names are
/// ASCII in practice, this only keeps odd input from panicking).
pub fn truncate_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
