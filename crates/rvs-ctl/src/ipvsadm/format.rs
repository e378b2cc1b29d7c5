//! Byte-exact renderers for everything `ipvsadm` 1.31 prints, as `String`s.
//!
//! Formats follow ipvsadm.c (`print_title`, `print_service_entry`, `print_largenum`,
//! `print_conn`, `list_timeout`, `list_daemon`) and were checked against the output of the real
//! ipvsadm 1.31 binary. C `printf` padding (`%-28s`, `%-10u`, ...) pads and never truncates; the
//! explicit truncations ipvsadm does (service name to 33 bytes, real-server name to 28 bytes in
//! listings, any `host:port` to 59 bytes) are reproduced.
//!
//! Deliberate difference (documented): services and real servers are sorted in true unsigned
//! order. ipvsadm compares fwmarks and addresses with `int` subtraction, so values more than 2^31
//! apart compare inverted (it lists 200.0.0.1 before 10.0.0.1 and fwmark 4294967295 before
//! TCP services); rvsadm lists 10.0.0.1 first and fwmark services after address services.

use super::names::{truncate_bytes, Names};
use crate::model::{
    ConnEntry, DaemonEntry, DaemonState, DestEntry, Fwd, ListSnapshot, MarkRuleEntry, ServiceEntry,
    ServiceProto, TimeoutTriple, TunCsum, TunType, TunnelInfo, SVC_F_SCHED1, SVC_F_SCHED2,
    SVC_F_SCHED3, SVC_F_SCHED_MASK,
};
use std::cmp::Ordering;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// The IPVS version rvs reports (the kernel's IP_VS_VERSION_CODE 0x010201).
pub const IPVS_VERSION: &str = "1.2.1";

/// List modifiers (`-n --stats --rate --thresholds --persistent-conn --tun-info --nosort -X`).
/// When several are given the first in this order wins, as in ipvsadm: stats, rate,
/// thresholds, persistent-conn, tun-info.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListFormat {
    pub numeric: bool,
    pub stats: bool,
    pub rate: bool,
    pub thresholds: bool,
    pub persistent_conn: bool,
    pub tun_info: bool,
    pub nosort: bool,
    pub exact: bool,
}

/// `rvsadm -v`. Deliberate difference: rvsadm names itself instead of printing
/// `ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)`.
pub fn version_line() -> String {
    format!(
        "rvsadm v{} (ipvsadm 1.31 compatible, rvs data path)\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// `rvsadm -h`: the version line, then ipvsadm 1.31's usage text with `program` substituted.
pub fn usage(program: &str) -> String {
    let mut s = version_line();
    s.push_str(&USAGE_BODY.replace("{P}", program));
    s
}

/// `IP Virtual Server version 1.2.1 (size=4096)`: the first line of `-L` (not of `-S`).
pub fn header(conn_tab_size: u32) -> String {
    // ipvsadm prints the size with %d.
    format!(
        "IP Virtual Server version {} (size={})\n",
        IPVS_VERSION, conn_tab_size as i32
    )
}

/// The two title lines of a service listing.
pub fn title(fmt: &ListFormat) -> String {
    if fmt.stats {
        format!(
            "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port\n",
            "Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        )
    } else if fmt.rate {
        format!(
            "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port\n",
            "Prot LocalAddress:Port", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
        )
    } else if fmt.thresholds {
        format!(
            "{:<33} {:<10} {:<10} {:<10} {:<10}\n  -> RemoteAddress:Port\n",
            "Prot LocalAddress:Port", "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
        )
    } else if fmt.persistent_conn {
        format!(
            "{:<33} {:<9} {:<11} {:<10} {:<10}\n  -> RemoteAddress:Port\n",
            "Prot LocalAddress:Port", "Weight", "PersistConn", "ActiveConn", "InActConn"
        )
    } else if fmt.tun_info {
        "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n".to_string()
    } else {
        "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n".to_string()
    }
}

/// `print_largenum`: 9 columns; K/M/G/T suffixes from 10^8 up, or exact digits with `--exact`.
pub fn largenum(v: u64, exact: bool) -> String {
    if exact {
        let digits = v.to_string();
        let width = if digits.len() <= 8 {
            9
        } else {
            digits.len() + 1
        };
        return format!("{:>width$}", digits);
    }
    if v < 100_000_000 {
        format!("{:>9}", v)
    } else if v < 1_000_000_000 {
        format!("{:>8}K", v / 1_000)
    } else if v < 100_000_000_000 {
        format!("{:>8}M", v / 1_000_000)
    } else if v < 100_000_000_000_000 {
        format!("{:>8}G", v / 1_000_000_000)
    } else {
        format!("{:>8}T", v / 1_000_000_000_000)
    }
}

/// `addrport_to_anyname`: `addr:port`, or host and service names without `-n`. `proto` selects
/// the services table; `None` (unknown protocol) prints the number.
fn addrport(
    addr: Ipv4Addr,
    port: u16,
    proto: Option<ServiceProto>,
    numeric: bool,
    names: &dyn Names,
) -> String {
    let s = if numeric {
        format!("{}:{}", addr, port)
    } else {
        let host = names.addr_to_host(addr).unwrap_or_else(|| addr.to_string());
        let serv = proto
            .and_then(|p| names.port_to_service(port, p))
            .unwrap_or_else(|| port.to_string());
        format!("{}:{}", host, serv)
    };
    // ipvsadm formats into a 60-byte buffer.
    truncate_bytes(&s, 59).to_string()
}

fn is_fwmark(svc: &ServiceEntry) -> bool {
    svc.proto == ServiceProto::Fwmark
}

/// The service part of a line: `TCP  1.2.3.4:80` / `FWM  5`, or `-t 1.2.3.4:80` / `-f 5` for -S.
fn svc_name(svc: &ServiceEntry, rule: bool, numeric: bool, names: &dyn Names) -> String {
    if is_fwmark(svc) {
        // ipvsadm prints the mark with %d: marks above 2^31-1 show negative.
        let mark = svc.fwmark as i32;
        return if rule {
            format!("-f {}", mark)
        } else {
            format!("FWM  {}", mark)
        };
    }
    let vname = addrport(svc.addr, svc.port, Some(svc.proto), numeric, names);
    if rule {
        let opt = match svc.proto {
            ServiceProto::Tcp | ServiceProto::Fwmark => "-t",
            ServiceProto::Udp => "-u",
            ServiceProto::Sctp => "--sctp-service",
        };
        format!("{} {}", opt, vname)
    } else {
        let p = match svc.proto {
            ServiceProto::Tcp | ServiceProto::Fwmark => "TCP",
            ServiceProto::Udp => "UDP",
            ServiceProto::Sctp => "SCTP",
        };
        truncate_bytes(&format!("{:<4} {}", p, vname), 33).to_string()
    }
}

/// `print_sched_flags`: sh and mh name their two flags and never print flag-3.
fn sched_flags(sched: &str, flags: u32) -> String {
    let mut out: Vec<&str> = Vec::new();
    match sched {
        "sh" | "mh" => {
            let (fallback, port) = if sched == "sh" {
                ("sh-fallback", "sh-port")
            } else {
                ("mh-fallback", "mh-port")
            };
            if flags & SVC_F_SCHED1 != 0 {
                out.push(fallback);
            }
            if flags & SVC_F_SCHED2 != 0 {
                out.push(port);
            }
        }
        _ => {
            if flags & SVC_F_SCHED1 != 0 {
                out.push("flag-1");
            }
            if flags & SVC_F_SCHED2 != 0 {
                out.push("flag-2");
            }
            if flags & SVC_F_SCHED3 != 0 {
                out.push("flag-3");
            }
        }
    }
    out.join(",")
}

const HOST_MASK: Ipv4Addr = Ipv4Addr::new(255, 255, 255, 255);

fn fwd_name(fwd: Fwd) -> &'static str {
    match fwd {
        Fwd::Masq => "Masq",
        Fwd::Local => "Local",
        Fwd::Tunnel => "Tunnel",
        Fwd::Route => "Route",
    }
}

fn fwd_switch(fwd: Fwd) -> &'static str {
    match fwd {
        Fwd::Masq => "-m",
        Fwd::Tunnel => "-i",
        Fwd::Local | Fwd::Route => "-g",
    }
}

fn tunnel_of(d: &DestEntry) -> TunnelInfo {
    d.tunnel.unwrap_or(TunnelInfo {
        tun_type: TunType::Ipip,
        port: 0,
        csum: TunCsum::NoCsum,
    })
}

fn csum_short(c: TunCsum) -> &'static str {
    match c {
        TunCsum::NoCsum => "-c",
        TunCsum::Csum => "+c",
        TunCsum::RemCsum => "r+c",
    }
}

fn csum_opt(c: TunCsum) -> &'static str {
    match c {
        TunCsum::NoCsum => "--tun-nocsum",
        TunCsum::Csum => "--tun-csum",
        TunCsum::RemCsum => "--tun-remcsum",
    }
}

/// The TunnelInfo column of `--tun-info`.
fn tun_info(d: &DestEntry) -> String {
    if d.fwd != Fwd::Tunnel {
        return "n/a".to_string();
    }
    let t = tunnel_of(d);
    let s = match t.tun_type {
        TunType::Ipip => "ipip".to_string(),
        TunType::Gue => format!("gue:{}:{}", t.port, csum_short(t.csum)),
        TunType::Gre => format!("gre:{}", csum_short(t.csum)),
    };
    // ipvsadm formats it into 16 bytes.
    truncate_bytes(&s, 15).to_string()
}

/// True unsigned service order: fwmark (0 for address services), protocol, address, port.
pub fn cmp_services(a: &ServiceEntry, b: &ServiceEntry) -> Ordering {
    let key = |s: &ServiceEntry| {
        (
            if is_fwmark(s) { s.fwmark } else { 0 },
            s.proto.ipproto(),
            u32::from(s.addr),
            s.port,
        )
    };
    key(a).cmp(&key(b))
}

/// True unsigned real-server order: address, port.
pub fn cmp_dests(a: &DestEntry, b: &DestEntry) -> Ordering {
    (u32::from(a.addr), a.port).cmp(&(u32::from(b.addr), b.port))
}

/// One service and its real servers (`print_service_entry`). `rule` selects the `-S` format.
pub fn service_entry(
    svc: &ServiceEntry,
    fmt: &ListFormat,
    rule: bool,
    names: &dyn Names,
) -> String {
    let mut out = String::new();
    let name = svc_name(svc, rule, fmt.numeric, names);
    let has_flags = svc.flags & SVC_F_SCHED_MASK != 0;
    if rule {
        let _ = write!(out, "-A {} -s {}", name, svc.sched);
        if let Some(t) = svc.persistent {
            let _ = write!(out, " -p {}", t);
            if svc.netmask != HOST_MASK {
                let _ = write!(out, " -M {}", svc.netmask);
            }
        }
        if let Some(pe) = &svc.pe_name {
            let _ = write!(out, " --pe {}", pe);
        }
        if svc.ops {
            out.push_str(" -o");
        }
        if has_flags {
            let _ = write!(out, " -b {}", sched_flags(&svc.sched, svc.flags));
        }
    } else if fmt.stats {
        let _ = write!(out, "{:<33}", name);
        for v in [
            svc.stats.conns,
            svc.stats.inpkts,
            svc.stats.outpkts,
            svc.stats.inbytes,
            svc.stats.outbytes,
        ] {
            out.push_str(&largenum(v, fmt.exact));
        }
    } else if fmt.rate {
        let _ = write!(out, "{:<33}", name);
        for v in [
            svc.rates.cps,
            svc.rates.inpps,
            svc.rates.outpps,
            svc.rates.inbps,
            svc.rates.outbps,
        ] {
            out.push_str(&largenum(v, fmt.exact));
        }
    } else {
        let _ = write!(out, "{} {}", name, svc.sched);
        if has_flags {
            let _ = write!(out, " ({})", sched_flags(&svc.sched, svc.flags));
        }
        if let Some(t) = svc.persistent {
            let _ = write!(out, " persistent {}", t);
            if svc.netmask != HOST_MASK {
                let _ = write!(out, " mask {}", svc.netmask);
            }
            if let Some(pe) = &svc.pe_name {
                let _ = write!(out, " pe {}", pe);
            }
        }
        if svc.ops {
            out.push_str(" ops");
        }
    }
    out.push('\n');

    let mut dests: Vec<&DestEntry> = svc.dests.iter().collect();
    if !fmt.nosort {
        dests.sort_by(|a, b| cmp_dests(a, b));
    }
    for d in dests {
        let full = addrport(d.addr, d.port, Some(svc.proto), fmt.numeric, names);
        if rule {
            let _ = write!(
                out,
                "-a {} -r {} {} -w {}",
                name,
                full,
                fwd_switch(d.fwd),
                d.weight
            );
            if d.fwd == Fwd::Tunnel {
                let t = tunnel_of(d);
                match t.tun_type {
                    TunType::Ipip => out.push_str(" --tun-type ipip"),
                    TunType::Gue => {
                        let _ = write!(
                            out,
                            " --tun-type gue --tun-port {} {}",
                            t.port,
                            csum_opt(t.csum)
                        );
                    }
                    TunType::Gre => {
                        let _ = write!(out, " --tun-type gre {}", csum_opt(t.csum));
                    }
                }
            }
            out.push('\n');
            continue;
        }
        let dname = truncate_bytes(&full, 28);
        if fmt.stats {
            let _ = write!(out, "  -> {:<28}", dname);
            for v in [
                d.stats.conns,
                d.stats.inpkts,
                d.stats.outpkts,
                d.stats.inbytes,
                d.stats.outbytes,
            ] {
                out.push_str(&largenum(v, fmt.exact));
            }
            out.push('\n');
        } else if fmt.rate {
            let _ = write!(
                out,
                "  -> {:<28} {:>8} {:>8} {:>8}",
                dname, d.rates.cps, d.rates.inpps, d.rates.outpps
            );
            out.push_str(&largenum(d.rates.inbps, fmt.exact));
            out.push_str(&largenum(d.rates.outbps, fmt.exact));
            out.push('\n');
        } else if fmt.thresholds {
            let _ = writeln!(
                out,
                "  -> {:<28} {:<10} {:<10} {:<10} {:<10}",
                dname, d.u_threshold, d.l_threshold, d.activeconns, d.inactconns
            );
        } else if fmt.persistent_conn {
            // %-9u: a negative weight prints as its unsigned value.
            let _ = writeln!(
                out,
                "  -> {:<28} {:<9} {:<11} {:<10} {:<10}",
                dname, d.weight as u32, d.persistconns, d.activeconns, d.inactconns
            );
        } else if fmt.tun_info {
            let _ = writeln!(
                out,
                "  -> {:<28} {:<7} {:<13} {:<6} {:<10} {:<10}",
                dname,
                fwd_name(d.fwd),
                tun_info(d),
                d.weight,
                d.activeconns,
                d.inactconns
            );
        } else {
            let _ = writeln!(
                out,
                "  -> {:<28} {:<7} {:<6} {:<10} {:<10}",
                dname,
                fwd_name(d.fwd),
                d.weight,
                d.activeconns,
                d.inactconns
            );
        }
    }
    out
}

fn sorted(services: &[ServiceEntry], nosort: bool) -> Vec<&ServiceEntry> {
    let mut v: Vec<&ServiceEntry> = services.iter().collect();
    if !nosort {
        v.sort_by(|a, b| cmp_services(a, b));
    }
    v
}

/// `-L` (no service given): header, titles, every service.
pub fn list_all(snap: &ListSnapshot, fmt: &ListFormat, names: &dyn Names) -> String {
    let mut out = header(snap.conn_tab_size);
    out.push_str(&title(fmt));
    for s in sorted(&snap.services, fmt.nosort) {
        out.push_str(&service_entry(s, fmt, false, names));
    }
    out
}

/// `-L -t|-u|-f service`: titles and that one service, no header.
pub fn list_service(svc: &ServiceEntry, fmt: &ListFormat, names: &dyn Names) -> String {
    let mut out = title(fmt);
    out.push_str(&service_entry(svc, fmt, false, names));
    out
}

/// `-S [-n]`: rules only (thresholds are not saved, as in ipvsadm), always sorted.
pub fn save(services: &[ServiceEntry], numeric: bool, names: &dyn Names) -> String {
    let fmt = ListFormat {
        numeric,
        ..ListFormat::default()
    };
    let mut out = String::new();
    for s in sorted(services, false) {
        out.push_str(&service_entry(s, &fmt, true, names));
    }
    out
}

fn conn_proto(p: &str) -> Option<ServiceProto> {
    match p {
        "TCP" => Some(ServiceProto::Tcp),
        "UDP" => Some(ServiceProto::Udp),
        "SCTP" => Some(ServiceProto::Sctp),
        _ => None,
    }
}

/// `-L -c [--persistent-conn]`. Only `fmt.numeric` and `fmt.persistent_conn` matter. The pe
/// columns appear only for entries that have both a pe name and pe data, as in ipvsadm.
pub fn list_conns(conns: &[ConnEntry], fmt: &ListFormat, names: &dyn Names) -> String {
    let mut out = String::from("IPVS connection entries\n");
    if fmt.persistent_conn {
        let _ = writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} {:<18} {:<16} pe_data",
            "state", "source", "virtual", "destination", "pe name"
        );
    } else {
        let _ = writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} destination",
            "state", "source", "virtual"
        );
    }
    for c in conns {
        let proto = conn_proto(&c.proto);
        let cname = addrport(c.caddr, c.cport, proto, fmt.numeric, names);
        let vname = addrport(c.vaddr, c.vport, proto, fmt.numeric, names);
        let dname = addrport(c.daddr, c.dport, proto, fmt.numeric, names);
        let expire = format!("{:02}:{:02}", c.expires_secs / 60, c.expires_secs % 60);
        match (&c.pe_name, &c.pe_data) {
            (Some(pn), Some(pd)) if fmt.persistent_conn => {
                let _ = writeln!(
                    out,
                    "{:<3} {:<6} {:<11} {:<18} {:<18} {:<16} {:<18} {}",
                    c.proto, expire, c.state, cname, vname, dname, pn, pd
                );
            }
            _ => {
                let _ = writeln!(
                    out,
                    "{:<3} {:<6} {:<11} {:<18} {:<18} {}",
                    c.proto, expire, c.state, cname, vname, dname
                );
            }
        }
    }
    out
}

/// `-L --timeout`.
pub fn timeouts(t: &TimeoutTriple) -> String {
    // ipvsadm prints them with %d.
    format!(
        "Timeout (tcp tcpfin udp): {} {} {}\n",
        t.tcp as i32, t.tcpfin as i32, t.udp as i32
    )
}

/// `-L --daemon`: one line per running sync daemon; empty when none runs (always, for rvs).
pub fn daemons(list: &[DaemonEntry]) -> String {
    let mut out = String::new();
    for d in list {
        let role = match d.state {
            DaemonState::Master => "master",
            DaemonState::Backup => "backup",
        };
        let _ = write!(
            out,
            "{} sync daemon (mcast={}, syncid={}",
            role, d.mcast_ifn, d.syncid as i32
        );
        if let Some(v) = d.sync_maxlen {
            let _ = write!(out, ", maxlen={}", v);
        }
        if let Some(v) = &d.mcast_group {
            let _ = write!(out, ", group={}", v);
        }
        if let Some(v) = d.mcast_port {
            let _ = write!(out, ", port={}", v);
        }
        if let Some(v) = d.mcast_ttl {
            let _ = write!(out, ", ttl={}", v);
        }
        out.push_str(")\n");
    }
    out
}

/// rvs extra `--list-marks`: one `--add-mark` line per rule, in rule (match) order, so the
/// output can be fed back through `-R` or a rules file.
pub fn mark_rules(rules: &[MarkRuleEntry]) -> String {
    let mut out = String::new();
    for r in rules {
        let opt = match r.proto {
            ServiceProto::Udp => "-u",
            _ => "-t",
        };
        let _ = write!(out, "--add-mark -f {} {} {}", r.mark, opt, r.vaddr);
        if (r.port_lo, r.port_hi) == (0, u16::MAX) {
            // every port: no port part
        } else if r.port_lo == r.port_hi {
            let _ = write!(out, ":{}", r.port_lo);
        } else {
            let _ = write!(out, ":{}-{}", r.port_lo, r.port_hi);
        }
        out.push('\n');
    }
    out
}

/// ipvsadm 1.31 `-h` text after its version line (captured from the real binary); `{P}` is the
/// program name.
const USAGE_BODY: &str = r#"Usage:
  {P} -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe persistence_engine] [-b sched-flags]
  {P} -D virtual-service
  {P} -C
  {P} -R
  {P} -S [-n]
  {P} -a|e virtual-service -r server-address [options]
  {P} -d virtual-service -r server-address
  {P} -L|l [virtual-service] [options]
  {P} -Z [virtual-service]
  {P} --set tcp tcpfin udp
  {P} --start-daemon {master|backup} [daemon-options]
  {P} --stop-daemon {master|backup}
  {P} -h

Commands:
Either long or short options are allowed.
  --add-service     -A        add virtual service with options
  --edit-service    -E        edit virtual service with options
  --delete-service  -D        delete virtual service
  --clear           -C        clear the whole table
  --restore         -R        restore rules from stdin
  --save            -S        save rules to stdout
  --add-server      -a        add real server with options
  --edit-server     -e        edit real server with options
  --delete-server   -d        delete real server
  --list            -L|-l     list the table
  --zero            -Z        zero counters in a service or all services
  --set tcp tcpfin udp        set connection timeout values
  --start-daemon              start connection sync daemon
  --stop-daemon               stop connection sync daemon
  --help            -h        display this help message

virtual-service:
  --tcp-service|-t  service-address   service-address is host[:port]
  --udp-service|-u  service-address   service-address is host[:port]
  --sctp-service    service-address   service-address is host[:port]
  --fwmark-service|-f fwmark          fwmark is an integer greater than zero

Options:
  --ipv6         -6                   fwmark entry uses IPv6
  --scheduler    -s scheduler         one of rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh,
                                      the default scheduler is wlc.
  --pe            engine              alternate persistence engine may be sip,
                                      not set by default.
  --persistent   -p [timeout]         persistent service
  --netmask      -M netmask           persistent granularity mask
  --real-server  -r server-address    server-address is host (and port)
  --gatewaying   -g                   gatewaying (direct routing) (default)
  --ipip         -i                   ipip encapsulation (tunneling)
  --masquerading -m                   masquerading (NAT)
  --tun-type      type                one of ipip|gue|gre,
                                      the default tunnel type is ipip.
  --tun-port      port                tunnel destination port
  --tun-nocsum                        tunnel encapsulation without checksum
  --tun-csum                          tunnel encapsulation with checksum
  --tun-remcsum                       tunnel encapsulation with remote checksum
  --weight       -w weight            capacity of real server
  --u-threshold  -x uthreshold        upper threshold of connections
  --l-threshold  -y lthreshold        lower threshold of connections
  --connection   -c                   output of current IPVS connections
  --timeout                           output of timeout (tcp tcpfin udp)
  --daemon                            output of daemon information
  --stats                             output of statistics information
  --rate                              output of rate information
  --exact                             expand numbers (display exact values)
  --thresholds                        output of thresholds information
  --persistent-conn                   output of persistent connection info
  --tun-info                          output of tunnel information
  --nosort                            disable sorting output of service/server entries
  --sort                              does nothing, for backwards compatibility
  --ops          -o                   one-packet scheduling
  --numeric      -n                   numeric output of addresses and ports
  --sched-flags  -b flags             scheduler flags (comma-separated)
Daemon Options:
  --syncid sid                        syncid for connection sync (default=255)
  --sync-maxlen length                Max sync message length (default=1472)
  --mcast-interface interface         multicast interface for connection sync
  --mcast-group address               IPv4/IPv6 group (default=224.0.0.81)
  --mcast-port port                   UDP port (default=8848)
  --mcast-ttl ttl                     Multicast TTL (default=1)
"#;
