//! From the statement tree to typed values: top level, virtual_server_group, virtual_server,
//! real_server. Checkers are in checker.rs. Unlike keepalived, which logs and skips what it does
//! not understand, every doubt is an error: a health-check config that silently loses a server
//! is worse than one refused at start.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};
use std::time::Duration;

use crate::lex::{Files, Node};
use crate::model::*;
use crate::ParseError;

/// Top-level sections that are about something else than LVS (VRRP, BFD, global settings,
/// routes...): every other root keyword of keepalived 2.2 (`install_keyword_root` calls).
pub const IGNORED_SECTIONS: &[&str] = &[
    "global_defs",
    "vrrp_script",
    "vrrp_instance",
    "vrrp_sync_group",
    "vrrp_track_file",
    "vrrp_track_process",
    "static_ipaddress",
    "static_routes",
    "static_rules",
    "linkbeat_interfaces",
    "linkbeat_use_polling",
    "interface_up_down_delays",
    "net_namespace",
    "net_namespace_ipvs",
    "namespace_with_ipsets",
    "instance",
    "use_pid_dir",
    "child_wait_time",
    "bfd_instance",
    "garp_group",
    "track_file",
    "track_group",
    "track_process",
];

pub const NOT_NAT: &str = "not supported yet: rvs implements NAT (masquerading) only";

pub struct Cx<'a> {
    pub files: &'a Files,
}

impl Cx<'_> {
    pub fn err(&self, n: &Node, msg: impl Into<String>) -> ParseError {
        self.files.err(n.file, n.line, n.keyword(), msg.into())
    }

    pub fn at(&self, n: &Node) -> Location {
        Location {
            file: self.files.name(n.file).to_string(),
            line: n.line,
        }
    }

    pub fn args<'n>(&self, n: &'n Node) -> Vec<&'n str> {
        n.words.iter().skip(1).map(|w| w.text.as_str()).collect()
    }

    /// Exactly one value, no block.
    pub fn one<'n>(&self, n: &'n Node) -> Result<&'n str, ParseError> {
        self.no_block(n)?;
        match self.args(n).as_slice() {
            [v] => Ok(v),
            [] => Err(self.err(n, "missing value")),
            more => Err(self.err(n, format!("expects one value, got {}", more.len()))),
        }
    }

    pub fn none(&self, n: &Node) -> Result<(), ParseError> {
        self.no_block(n)?;
        match self.args(n).first() {
            None => Ok(()),
            Some(v) => Err(self.err(n, format!("takes no value, got \"{v}\""))),
        }
    }

    pub fn no_block(&self, n: &Node) -> Result<(), ParseError> {
        match n.block {
            Some(_) => Err(self.err(n, "takes no '{' block")),
            None => Ok(()),
        }
    }

    pub fn block<'n>(&self, n: &'n Node) -> Result<&'n [Node], ParseError> {
        n.block
            .as_deref()
            .ok_or_else(|| self.err(n, "expects a '{' block"))
    }

    /// keepalived's `check_true_false()`; the keyword alone means true.
    pub fn boolean(&self, n: &Node) -> Result<bool, ParseError> {
        self.no_block(n)?;
        match self.args(n).as_slice() {
            [] | ["true" | "on" | "yes"] => Ok(true),
            ["false" | "off" | "no"] => Ok(false),
            [v] => Err(self.err(n, format!("\"{v}\" is not one of true/false/on/off/yes/no"))),
            more => Err(self.err(n, format!("expects at most one value, got {}", more.len()))),
        }
    }

    pub fn u32_in(&self, n: &Node, s: &str, min: u32, max: u32) -> Result<u32, ParseError> {
        match s.parse::<u32>() {
            Ok(v) if (min..=max).contains(&v) => Ok(v),
            _ => Err(self.err(n, format!("\"{s}\" is not a number in {min}..={max}"))),
        }
    }

    /// keepalived's `read_timer()`: seconds with up to 6 decimals (TIMER_HZ_DIGITS);
    /// `min_us` as its min_time argument.
    pub fn timer(&self, n: &Node, s: &str, min_us: u64) -> Result<Duration, ParseError> {
        let bad = || self.err(n, format!("\"{s}\" is not a duration in seconds"));
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty() && frac.is_empty() || !digits(int) || !digits(frac) || frac.len() > 6 {
            return Err(bad());
        }
        let secs: u64 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| bad())?
        };
        let micros: u64 = format!("{frac:0<6}").parse().map_err(|_| bad())?;
        let total = secs
            .checked_mul(1_000_000)
            .and_then(|v| v.checked_add(micros));
        match total {
            Some(us) if us >= min_us && secs <= u64::from(u32::MAX) => {
                Ok(Duration::from_micros(us))
            }
            Some(_) if secs <= u64::from(u32::MAX) => {
                Err(self.err(n, format!("\"{s}\" is too small")))
            }
            _ => Err(bad()),
        }
    }

    pub fn ipv4(&self, n: &Node, s: &str) -> Result<Ipv4Addr, ParseError> {
        if let Ok(a) = s.parse::<Ipv4Addr>() {
            return Ok(a);
        }
        if s.parse::<Ipv6Addr>().is_ok() {
            return Err(self.err(n, format!("\"{s}\": IPv6 is not supported yet")));
        }
        Err(self.err(n, format!("\"{s}\" is not an IPv4 address")))
    }

    pub fn port(&self, n: &Node, s: &str) -> Result<u16, ParseError> {
        match s.parse::<u16>() {
            Ok(p) if p > 0 => Ok(p),
            _ => Err(self.err(n, format!("\"{s}\" is not a port (1-65535)"))),
        }
    }

    /// A script or command line: the value as written; several words are joined again.
    pub fn script(&self, n: &Node) -> Result<String, ParseError> {
        self.no_block(n)?;
        if let [_, w] = n.words.as_slice() {
            if w.text.is_empty() {
                return Err(self.err(n, "missing value"));
            }
            return Ok(w.text.clone());
        }
        let parts: Vec<String> = n.words[1..]
            .iter()
            .map(|w| {
                if w.quoted && w.text.contains(char::is_whitespace) {
                    format!("\"{}\"", w.text)
                } else {
                    w.text.clone()
                }
            })
            .collect();
        if parts.is_empty() || parts.iter().all(String::is_empty) {
            return Err(self.err(n, "missing value"));
        }
        Ok(parts.join(" "))
    }

    pub fn lb_kind(&self, n: &Node) -> Result<LbKind, ParseError> {
        let args = self.args(n);
        match args.first().copied() {
            Some("NAT") if args.len() == 1 => Ok(LbKind::Nat),
            Some("NAT") => Err(self.err(n, "NAT takes no tunnel options")),
            Some("DR" | "TUN") => Err(self.err(n, NOT_NAT)),
            Some(v) => Err(self.err(n, format!("unknown forwarding method \"{v}\""))),
            None => Err(self.err(n, "missing value")),
        }
    }
}

pub fn config(cx: &Cx, nodes: &[Node]) -> Result<ChecksConfig, ParseError> {
    let mut cfg = ChecksConfig::default();
    for n in nodes {
        let kw = n.keyword();
        match kw {
            "virtual_server" => cfg.virtual_servers.push(virtual_server(cx, n)?),
            "virtual_server_group" => {
                let g = group(cx, n)?;
                if cfg.groups.iter().any(|o| o.name == g.name) {
                    return Err(cx.err(n, format!("group \"{}\" is defined twice", g.name)));
                }
                cfg.groups.push(g);
            }
            "SSL" => cfg.ssl = Some(ssl(cx, n)?),
            k if IGNORED_SECTIONS.contains(&k) => cfg.ignored.push(Ignored {
                keyword: k.to_string(),
                at: cx.at(n),
            }),
            k if k.starts_with('$') || k.starts_with('@') || k.starts_with('~') => {
                return Err(cx.err(
                    n,
                    "not supported yet: keepalived parameter definitions ($NAME=), \
                     conditional lines (@id) and sequences (~SEQ)",
                ))
            }
            _ => return Err(cx.err(n, "unknown top-level keyword")),
        }
    }
    for vs in &cfg.virtual_servers {
        if let VsAddr::Group(name) = &vs.addr {
            if !cfg.groups.iter().any(|g| &g.name == name) {
                return Err(ParseError {
                    file: vs.at.file.clone(),
                    line: vs.at.line,
                    keyword: "virtual_server".into(),
                    msg: format!("group \"{name}\" is not defined by a virtual_server_group"),
                });
            }
        }
    }
    Ok(cfg)
}

fn ssl(cx: &Cx, n: &Node) -> Result<SslContext, ParseError> {
    let mut s = SslContext::default();
    for k in cx.block(n)? {
        let v = Some(cx.one(k)?.to_string());
        match k.keyword() {
            "password" => s.password = v,
            "ca" => s.ca = v,
            "certificate" => s.certificate = v,
            "key" => s.key = v,
            _ => return Err(cx.err(k, "unknown keyword in SSL")),
        }
    }
    Ok(s)
}

fn group(cx: &Cx, n: &Node) -> Result<VirtualServerGroup, ParseError> {
    let name = cx.args(n);
    let name = match name.as_slice() {
        [name] => name.to_string(),
        [] => return Err(cx.err(n, "missing group name")),
        _ => return Err(cx.err(n, "expects one group name")),
    };
    let mut entries = Vec::new();
    for e in cx.block(n)? {
        cx.no_block(e)?;
        let a = cx.args(e);
        let entry = match (e.keyword(), a.as_slice()) {
            ("fwmark", [m]) => VsgEntry::Fwmark(cx.u32_in(e, m, 0, u32::MAX)?),
            ("fwmark", [_, "inet"]) => VsgEntry::Fwmark(cx.u32_in(e, a[0], 0, u32::MAX)?),
            ("fwmark", _) => return Err(cx.err(e, "expects a mark (and optionally inet)")),
            (range, [port]) => vsg_range(cx, e, range, port)?,
            (_, []) => return Err(cx.err(e, "missing port")),
            _ => return Err(cx.err(e, "expects an address or range and a port")),
        };
        entries.push(entry);
    }
    // keepalived drops an empty group with a warning; a virtual_server naming it would then fail.
    if entries.is_empty() {
        return Err(cx.err(n, format!("group \"{name}\" has no entries")));
    }
    Ok(VirtualServerGroup {
        name,
        entries,
        at: cx.at(n),
    })
}

/// `IP`, `IP-LASTOCTET`, `IP-IP` or `IP/LEN` (alloc_vsg_entry() in check_data.c).
fn vsg_range(cx: &Cx, n: &Node, s: &str, port: &str) -> Result<VsgEntry, ParseError> {
    let port = cx.port(n, port)?;
    let (first, last) = if let Some((ip, len)) = s.split_once('/') {
        let first = cx.ipv4(n, ip)?;
        let len = cx.u32_in(n, len, 1, 32)?;
        let host = u32::MAX.checked_shr(len).unwrap_or(0);
        if u32::from(first) & host != 0 {
            return Err(cx.err(n, format!("\"{s}\": address has bits set below the mask")));
        }
        (first, Ipv4Addr::from(u32::from(first) | host))
    } else if let Some((ip, end)) = s.split_once('-') {
        let first = cx.ipv4(n, ip)?;
        let last = if end.contains('.') {
            cx.ipv4(n, end)?
        } else {
            let o = first.octets();
            let e = cx.u32_in(n, end, 0, 255)?;
            Ipv4Addr::new(o[0], o[1], o[2], e as u8)
        };
        if last < first {
            return Err(cx.err(n, format!("\"{s}\": range ends before it starts")));
        }
        (first, last)
    } else {
        let a = cx.ipv4(n, s)?;
        (a, a)
    };
    Ok(VsgEntry::Range { first, last, port })
}

fn virtual_server(cx: &Cx, n: &Node) -> Result<VirtualServer, ParseError> {
    let addr = match cx.args(n).as_slice() {
        ["group", name] => VsAddr::Group(name.to_string()),
        ["fwmark", m] => VsAddr::Fwmark(cx.u32_in(n, m, 0, u32::MAX)?),
        [ip, port] if *ip != "group" && *ip != "fwmark" => {
            VsAddr::Ip(SocketAddrV4::new(cx.ipv4(n, ip)?, cx.port(n, port)?))
        }
        [] => return Err(cx.err(n, "missing address")),
        ["group" | "fwmark"] => return Err(cx.err(n, "missing value")),
        [ip] => {
            cx.ipv4(n, ip)?;
            return Err(cx.err(n, "missing port"));
        }
        _ => return Err(cx.err(n, "expects IP PORT, fwmark N or group NAME")),
    };
    let mut vs = VirtualServer {
        addr,
        at: cx.at(n),
        protocol: Proto::Tcp,
        lb_algo: DEFAULT_SCHEDULER.to_string(),
        lb_kind: LbKind::Nat,
        sched_flags: 0,
        sched_flag_names: Vec::new(),
        ops: false,
        persistence_timeout: None,
        persistence_granularity: None,
        delay_loop: DEFAULT_DELAY_LOOP,
        connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        retry: None,
        delay_before_retry: None,
        warmup: None,
        alpha: false,
        omega: false,
        quorum: 1,
        hysteresis: 0,
        quorum_up: None,
        quorum_down: None,
        weight: 1,
        sorry_server: None,
        inhibit_on_failure: false,
        ha_suspend: false,
        virtualhost: None,
        real_servers: Vec::new(),
    };
    // Real servers inherit from the virtual server whatever the order of the keywords, as
    // keepalived resolves inheritance after parsing: collect them first.
    let mut rs_nodes = Vec::new();
    let body = cx.block(n)?;
    for k in body {
        match k.keyword() {
            "real_server" => rs_nodes.push(k),
            "ip_family" => match cx.one(k)? {
                "inet" => {}
                "inet6" => return Err(cx.err(k, "IPv6 is not supported yet")),
                v => return Err(cx.err(k, format!("unknown address family \"{v}\""))),
            },
            // vs_retry_handler(): 1..=UINT32_MAX at this level (checkers allow 0).
            "retry" => vs.retry = Some(cx.u32_in(k, cx.one(k)?, 1, u32::MAX)?),
            "delay_before_retry" => vs.delay_before_retry = Some(cx.timer(k, cx.one(k)?, 0)?),
            "warmup" => vs.warmup = Some(cx.timer(k, cx.one(k)?, 0)?),
            "connect_timeout" => vs.connect_timeout = cx.timer(k, cx.one(k)?, 1)?,
            "delay_loop" => vs.delay_loop = cx.timer(k, cx.one(k)?, 1)?,
            "inhibit_on_failure" => {
                cx.none(k)?;
                vs.inhibit_on_failure = true
            }
            "lb_algo" | "lvs_sched" => {
                let s = cx.one(k)?;
                if !rvs_lb::sched::NAMES.contains(&s) {
                    return Err(cx.err(
                        k,
                        format!(
                            "unknown scheduler \"{s}\" (one of {})",
                            rvs_lb::sched::NAMES.join(" ")
                        ),
                    ));
                }
                vs.lb_algo = s.to_string();
            }
            // Deprecated no-op in keepalived.
            "hashed" => cx.none(k)?,
            "ops" => {
                cx.none(k)?;
                vs.ops = true
            }
            f @ ("flag-1" | "flag-2" | "flag-3" | "sh-port" | "sh-fallback" | "mh-port"
            | "mh-fallback") => {
                cx.none(k)?;
                vs.sched_flag_names.push(f.to_string())
            }
            "lb_kind" | "lvs_method" => vs.lb_kind = cx.lb_kind(k)?,
            "persistence_engine" => return Err(cx.err(k, "not supported yet")),
            "persistence_timeout" => {
                cx.no_block(k)?;
                vs.persistence_timeout = Some(match cx.args(k).as_slice() {
                    [] => DEFAULT_PERSISTENCE_TIMEOUT,
                    [v] => cx.u32_in(k, v, 1, MAX_PERSISTENCE_TIMEOUT)?,
                    _ => return Err(cx.err(k, "expects at most one value")),
                });
            }
            "persistence_granularity" => {
                let s = cx.one(k)?;
                vs.persistence_granularity = Some(cx.ipv4(k, s)?)
            }
            "protocol" => {
                let p = cx.one(k)?;
                vs.protocol = match p.to_ascii_uppercase().as_str() {
                    "TCP" => Proto::Tcp,
                    "UDP" => Proto::Udp,
                    "SCTP" => return Err(cx.err(k, "SCTP is not supported yet")),
                    _ => return Err(cx.err(k, format!("unknown protocol \"{p}\""))),
                }
            }
            "ha_suspend" => {
                cx.none(k)?;
                vs.ha_suspend = true
            }
            // Mail alerts and SNMP are keepalived's, not rvs's: accepted, checked, unused.
            "smtp_alert" => {
                cx.boolean(k)?;
            }
            "snmp_name" => {
                cx.one(k)?;
            }
            "virtualhost" => vs.virtualhost = Some(cx.one(k)?.to_string()),
            "alpha" => {
                cx.none(k)?;
                vs.alpha = true
            }
            "omega" => {
                cx.none(k)?;
                vs.omega = true
            }
            "quorum_up" => vs.quorum_up = Some(cx.script(k)?),
            "quorum_down" => vs.quorum_down = Some(cx.script(k)?),
            "quorum" => vs.quorum = cx.u32_in(k, cx.one(k)?, 1, u32::MAX)?,
            "hysteresis" => vs.hysteresis = cx.u32_in(k, cx.one(k)?, 0, u32::MAX)?,
            // vs_weight_handler(): 1..=IPVS_WEIGHT_LIMIT.
            "weight" => vs.weight = cx.u32_in(k, cx.one(k)?, 1, MAX_WEIGHT)?,
            "sorry_server" => {
                cx.no_block(k)?;
                let (addr, port) = match cx.args(k).as_slice() {
                    [ip] => (cx.ipv4(k, ip)?, None),
                    [ip, port] => (cx.ipv4(k, ip)?, Some(cx.port(k, port)?)),
                    [] => return Err(cx.err(k, "missing address")),
                    _ => return Err(cx.err(k, "expects IP [PORT]")),
                };
                let inhibit = vs.sorry_server.as_ref().is_some_and(|s| s.inhibit);
                vs.sorry_server = Some(SorryServer {
                    addr,
                    port,
                    inhibit,
                });
            }
            "sorry_server_inhibit" => {
                cx.none(k)?;
                match vs.sorry_server.as_mut() {
                    Some(s) => s.inhibit = true,
                    None => return Err(cx.err(k, "used before or without sorry_server")),
                }
            }
            "sorry_server_lvs_method" => {
                if vs.sorry_server.is_none() {
                    return Err(cx.err(k, "used before or without sorry_server"));
                }
                cx.lb_kind(k)?;
            }
            _ => return Err(cx.err(k, "unknown keyword in virtual_server")),
        }
    }
    if !vs.sched_flag_names.is_empty() {
        let joined = vs.sched_flag_names.join(",");
        vs.sched_flags = rvs_lb::sched::parse_sched_flags(Some(&vs.lb_algo), &joined)
            .map_err(|e| cx.err(n, format!("lb_algo {}: {e}", vs.lb_algo)))?
            .0;
    }
    // pgr_handler(): a granularity without a timeout turns persistence on with the default.
    if vs.persistence_granularity.is_some() && vs.persistence_timeout.is_none() {
        vs.persistence_timeout = Some(DEFAULT_PERSISTENCE_TIMEOUT);
    }
    for k in rs_nodes {
        let rs = crate::checker::real_server(cx, k, &vs)?;
        if vs
            .real_servers
            .iter()
            .any(|o| o.addr == rs.addr && o.port == rs.port)
        {
            return Err(cx.err(
                k,
                format!(
                    "{}:{} is already a real server of this virtual_server",
                    rs.addr, rs.port
                ),
            ));
        }
        vs.real_servers.push(rs);
    }
    // keepalived ignores such a virtual server with a warning; silently serving nothing is
    // not what the operator meant.
    if vs.real_servers.is_empty() {
        return Err(cx.err(n, "has no real_server"));
    }
    Ok(vs)
}
