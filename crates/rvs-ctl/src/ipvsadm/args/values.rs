//! Option value parsers with ipvsadm's rules: addresses and ports (`parse_service`, which also
//! recognises IPv6), timeouts, fwmarks and scheduler flags. Pure functions of their text, kept
//! apart from the parser's state; the mark extras use them too.

use super::ParseError;
use crate::ipvsadm::names::{c_strtol, inet_aton, string_to_number, Names};
use crate::model::{ServiceProto, SVC_F_SCHED1, SVC_F_SCHED2, SVC_F_SCHED3, SVC_F_SCHED_MASK};
use std::net::{Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Af {
    V4,
    V6,
}

/// Result of ipvsadm's `parse_service`.
pub(super) struct Endpoint {
    pub(super) af: Af,
    pub(super) addr: Ipv4Addr,
    pub(super) port: Option<u16>,
}

pub(super) fn to_u32(v: Option<i64>) -> Option<u32> {
    v.and_then(|v| u32::try_from(v).ok())
}

/// `parse_timeout`: a whole decimal in `min..=max`.
pub(super) fn parse_timeout(s: &str, min: u32, max: u32) -> Result<u32, ParseError> {
    to_u32(string_to_number(s, i64::from(min), i64::from(max)))
        .ok_or_else(|| ParseError::fail(format!("invalid timeout value `{}' specified", s)))
}

/// `parse_fwmark`: 1..=u32::MAX, whole string.
pub(super) fn parse_fwmark(s: &str) -> Result<u32, ParseError> {
    c_strtol(s)
        .filter(|&v| v > 0)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| ParseError::fail(format!("invalid fwmark value `{}' specified", s)))
}

/// `parse_sched_flags`: comma list (empty items skipped); sh-* and mh-* need that scheduler.
pub(super) fn parse_sched_flags(sched: &str, arg: &str) -> Result<u32, ParseError> {
    let mut flags = 0u32;
    let mut any = false;
    for flag in arg.split(',').filter(|f| !f.is_empty()) {
        any = true;
        let (bit, needs) = match flag {
            "flag-1" => (SVC_F_SCHED1, None),
            "flag-2" => (SVC_F_SCHED2, None),
            "flag-3" => (SVC_F_SCHED3, None),
            "sh-fallback" => (SVC_F_SCHED1, Some("sh")),
            "sh-port" => (SVC_F_SCHED2, Some("sh")),
            "mh-fallback" => (SVC_F_SCHED1, Some("mh")),
            "mh-port" => (SVC_F_SCHED2, Some("mh")),
            _ => {
                return Err(ParseError::fail(format!(
                    "invalid scheduler flag `{}'",
                    flag
                )))
            }
        };
        if needs.is_some_and(|n| n != sched) {
            return Err(ParseError::fail(format!(
                "incompatible scheduler flag `{}'",
                flag
            )));
        }
        flags |= bit;
    }
    if !any {
        // ipvsadm crashes on a list of only commas; rvsadm refuses it.
        return Err(ParseError::fail(format!(
            "invalid scheduler flag `{}'",
            arg
        )));
    }
    Ok(flags & SVC_F_SCHED_MASK)
}

/// ipvsadm's `parse_service`: `host[:port]` or `[v6addr]:port`. Numbers come first (whole-string
/// decimal port, `inet_aton` address), then names through `names`. A digits-only string is
/// refused (it is a port, not a host).
pub(super) fn parse_service(
    buf: &str,
    proto: Option<ServiceProto>,
    names: &dyn Names,
) -> Option<Endpoint> {
    if buf.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut host = buf;
    let mut port_str: Option<&str> = None;
    if let Some(inner) = buf.strip_prefix('[') {
        let (h, rest) = inner.split_once(']')?;
        let p = rest.strip_prefix(':')?;
        host = h;
        port_str = Some(p);
    }
    let (af, addr) = if host.parse::<Ipv6Addr>().is_ok() {
        (Af::V6, Ipv4Addr::UNSPECIFIED)
    } else {
        // ipvsadm searches the last ':' again here, so "[1.2.3.4]:80" loses its port.
        match host.rfind(':') {
            Some(i) => {
                port_str = host.get(i + 1..);
                host = host.get(..i).unwrap_or("");
            }
            None => port_str = None,
        }
        let a = inet_aton(host).or_else(|| {
            if host.is_empty() {
                None
            } else {
                names.host_to_addr(host)
            }
        })?;
        (Af::V4, a)
    };
    let port = match port_str {
        None => None,
        Some(p) => Some(
            string_to_number(p, 0, 65535)
                .and_then(|v| u16::try_from(v).ok())
                .or_else(|| proto.and_then(|pr| names.service_to_port(p, pr)))?,
        ),
    };
    Some(Endpoint { af, addr, port })
}
