//! rvs extras: firewall-mark rules (no ipvsadm equivalent; iptables sets marks on Linux).
//! `--add-mark`, `--del-mark` and `--list-marks` have a small strict parser of their own, kept
//! apart from the ipvsadm emulation it shares nothing with but the value parsers.

use super::values::parse_fwmark;
use super::{Command, ParseError};
use crate::ipvsadm::names::{inet_aton, string_to_number, Names};
use crate::model::{MarkRuleEntry, ServiceProto};
use std::net::Ipv4Addr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MarkCmd {
    Add,
    Del,
    List,
}

impl MarkCmd {
    pub(super) fn of(arg: &str) -> Option<MarkCmd> {
        match arg {
            "--add-mark" => Some(MarkCmd::Add),
            "--del-mark" => Some(MarkCmd::Del),
            "--list-marks" => Some(MarkCmd::List),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            MarkCmd::Add => "add-mark",
            MarkCmd::Del => "del-mark",
            MarkCmd::List => "list-marks",
        }
    }
}

/// `--add-mark|--del-mark -f MARK -t|-u ADDR[:PORT[-PORT]]` (options in any order, each once;
/// no port means every port) and `--list-marks` (no options). Errors exit 2, like `fail()`.
pub(super) fn parse_mark(
    cmd: MarkCmd,
    args: &[String],
    names: &dyn Names,
) -> Result<Command, ParseError> {
    let mut mark: Option<u32> = None;
    let mut target: Option<(ServiceProto, Ipv4Addr, u16, u16)> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if cmd == MarkCmd::List {
            return Err(ParseError::fail(format!("unexpected argument {}", a)));
        }
        let opt = match a.as_str() {
            "-f" | "--fwmark-service" => 'f',
            "-t" | "--tcp-service" => 't',
            "-u" | "--udp-service" => 'u',
            _ => return Err(ParseError::fail(format!("unexpected argument {}", a))),
        };
        let value = it
            .next()
            .ok_or_else(|| ParseError::popt(format!("{}: missing argument", a)))?;
        if opt == 'f' {
            if mark.is_some() {
                return Err(ParseError::fail(
                    "multiple 'fwmark-service' options specified",
                ));
            }
            mark = Some(parse_fwmark(value)?);
            continue;
        }
        if target.is_some() {
            return Err(ParseError::fail(
                "multiple 'service-address' options specified",
            ));
        }
        let proto = if opt == 't' {
            ServiceProto::Tcp
        } else {
            ServiceProto::Udp
        };
        let (lo, hi, addr) = parse_mark_target(value, proto, names)
            .ok_or_else(|| ParseError::fail("illegal mark rule address[:port[-port]] specified"))?;
        target = Some((proto, addr, lo, hi));
    }
    if cmd == MarkCmd::List {
        return Ok(Command::ListMarkRules);
    }
    let Some(mark) = mark else {
        return Err(ParseError::fail(format!(
            "You need to supply the 'fwmark-service' option for the '{}' command",
            cmd.name()
        )));
    };
    let Some((proto, vaddr, port_lo, port_hi)) = target else {
        return Err(ParseError::fail(format!(
            "You need to supply the 'service-address' option for the '{}' command",
            cmd.name()
        )));
    };
    let rule = MarkRuleEntry {
        mark,
        proto,
        vaddr,
        port_lo,
        port_hi,
    };
    Ok(if cmd == MarkCmd::Add {
        Command::AddMarkRule(rule)
    } else {
        Command::DeleteMarkRule(rule)
    })
}

/// `ADDR`, `ADDR:PORT` or `ADDR:LO-HI` (ports numeric or, alone, a service name).
fn parse_mark_target(
    s: &str,
    proto: ServiceProto,
    names: &dyn Names,
) -> Option<(u16, u16, Ipv4Addr)> {
    // As parse_service: digits alone are a port, not a host.
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (host, ports) = match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    };
    let addr = inet_aton(host).or_else(|| {
        if host.is_empty() || host.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            names.host_to_addr(host)
        }
    })?;
    let port = |p: &str| {
        string_to_number(p, 0, 65535)
            .and_then(|v| u16::try_from(v).ok())
            .or_else(|| names.service_to_port(p, proto))
    };
    let (lo, hi) = match ports {
        None => (0, u16::MAX),
        Some(p) => match p.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => {
                let v = port(p)?;
                (v, v)
            }
        },
    };
    (lo <= hi).then_some((lo, hi, addr))
}
