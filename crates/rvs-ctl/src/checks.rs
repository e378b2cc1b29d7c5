//! The health checkers' state as `list_checks` answers it, and `rvsadm --list-checks`'s text.
//! Ages are seconds before the moment of the answer, so the text needs no clock.

use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// A checker thread silent this long is stalled (it ticks every 100 ms).
pub const STALLED_SECS: f64 = 2.0;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChecksReport {
    /// The checks file as configured.
    pub file: String,
    /// Seconds since it was last (re)loaded successfully.
    pub loaded_secs: f64,
    /// Seconds since the checker thread last showed it is alive (it ticks every 100 ms).
    pub heartbeat_secs: f64,
    /// Distinct probes running (one per real server and checker spec, however many virtual
    /// servers share them).
    pub probes: usize,
    /// How half-open TCP checks reach the servers, when they run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub half_open: Option<HalfOpenReport>,
    pub virtual_servers: Vec<VsReport>,
}

/// The half-open TCP checker's wire and its counts since start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HalfOpenReport {
    /// "data plane" (the appliance) or "raw socket".
    pub via: String,
    /// SYNs sent, and SYN-ACKs or RSTs received for the checker's ports.
    pub sent: u64,
    pub answers: u64,
    /// SYNs or answers a full queue lost (each costs a resend or a timeout).
    pub lost: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VsReport {
    /// As ipvsadm lists it: "TCP  10.0.0.13:80" or "FWM  7".
    pub service: String,
    pub quorum: u32,
    pub hysteresis: u32,
    /// Sum of the weights of the real servers that are up.
    pub alive_weight: u64,
    pub quorum_up: bool,
    /// "IP:PORT" of the sorry server, if any, and whether it is serving now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sorry_server: Option<String>,
    pub sorry_active: bool,
    pub real_servers: Vec<RsReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RsReport {
    /// "IP:PORT".
    pub server: String,
    pub up: bool,
    /// The weight it has when up (configured, or what a misc_dynamic check set).
    pub weight: u32,
    /// What the IPVS table holds for it: a weight, or None when it is not in the table.
    pub table_weight: Option<u32>,
    pub inhibit_on_failure: bool,
    /// Seconds since it last went up or down (or since it was configured).
    pub changed_secs: f64,
    pub checkers: Vec<CheckerReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckerReport {
    /// "TCP_CHECK", "HTTP_GET", ...
    pub kind: String,
    /// keepalived's notation of what it probes: "[192.168.8.14]:tcp:80".
    pub target: String,
    pub up: bool,
    /// The last attempt: "ok" or the reason it failed; None before the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_result: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_secs: Option<f64>,
    pub changed_secs: f64,
    /// Failed attempts in a row (retries count here before the checker goes down).
    pub failures: u32,
    pub attempts: u64,
}

fn age(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.1}s")
    } else if s < 3600.0 {
        format!("{:.0}s", s)
    } else {
        format!("{:.1}h", s / 3600.0)
    }
}

/// The text `rvsadm --list-checks` prints.
pub fn format_text(r: &ChecksReport) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Checks file {} (loaded {} ago); checker thread {} (last tick {} ago); {} probes",
        r.file,
        age(r.loaded_secs),
        if r.heartbeat_secs < STALLED_SECS {
            "alive"
        } else {
            "STALLED"
        },
        age(r.heartbeat_secs),
        r.probes
    );
    if let Some(h) = &r.half_open {
        let _ = writeln!(
            o,
            "Half-open TCP checks via the {}: {} SYNs sent, {} answers, {} lost",
            h.via, h.sent, h.answers, h.lost
        );
    }
    for vs in &r.virtual_servers {
        let sorry = match &vs.sorry_server {
            Some(s) if vs.sorry_active => format!(", sorry server {s} ACTIVE"),
            Some(s) => format!(", sorry server {s}"),
            None => String::new(),
        };
        let _ = writeln!(
            o,
            "{}  quorum {}{} {} (alive weight {}){}",
            vs.service,
            vs.quorum,
            if vs.hysteresis > 0 {
                format!("±{}", vs.hysteresis)
            } else {
                String::new()
            },
            if vs.quorum_up { "up" } else { "LOST" },
            vs.alive_weight,
            sorry
        );
        for rs in &vs.real_servers {
            let table = match rs.table_weight {
                Some(w) => format!("in table weight {w}"),
                None => "not in table".to_string(),
            };
            let _ = writeln!(
                o,
                "  -> {:<21} {:<4} weight {}  {}  changed {} ago",
                rs.server,
                if rs.up { "UP" } else { "DOWN" },
                rs.weight,
                table,
                age(rs.changed_secs)
            );
            for c in &rs.checkers {
                let last = match (&c.last_result, c.last_secs) {
                    (Some(res), Some(s)) => format!("last {res} {} ago", age(s)),
                    _ => "not run yet".to_string(),
                };
                let fails = if c.failures > 0 {
                    format!(", {} failed in a row", c.failures)
                } else {
                    String::new()
                };
                let _ = writeln!(
                    o,
                    "       {} {} {}: {}{}, changed {} ago",
                    c.kind,
                    c.target,
                    if c.up { "up" } else { "down" },
                    last,
                    fails,
                    age(c.changed_secs)
                );
            }
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_shows_every_level() {
        let r = ChecksReport {
            file: "/etc/rvs/keepalived.conf".into(),
            loaded_secs: 12.0,
            heartbeat_secs: 0.05,
            probes: 1,
            half_open: None,
            virtual_servers: vec![VsReport {
                service: "TCP  10.0.0.13:80".into(),
                quorum: 1,
                hysteresis: 0,
                alive_weight: 0,
                quorum_up: false,
                sorry_server: Some("192.168.8.16:80".into()),
                sorry_active: true,
                real_servers: vec![RsReport {
                    server: "192.168.8.14:80".into(),
                    up: false,
                    weight: 1,
                    table_weight: None,
                    inhibit_on_failure: false,
                    changed_secs: 3.25,
                    checkers: vec![CheckerReport {
                        kind: "HTTP_GET".into(),
                        target: "[192.168.8.14]:tcp:80".into(),
                        up: false,
                        last_result: Some("HTTP status 503".into()),
                        last_secs: Some(0.2),
                        changed_secs: 3.25,
                        failures: 2,
                        attempts: 9,
                    }],
                }],
            }],
        };
        let t = format_text(&r);
        assert!(t.starts_with(
            "Checks file /etc/rvs/keepalived.conf (loaded 12s ago); checker thread alive"
        ));
        assert!(t.contains("TCP  10.0.0.13:80  quorum 1 LOST (alive weight 0), sorry server 192.168.8.16:80 ACTIVE"));
        assert!(
            t.contains("  -> 192.168.8.14:80       DOWN weight 1  not in table  changed 3.2s ago")
        );
        assert!(t.contains(
            "       HTTP_GET [192.168.8.14]:tcp:80 down: last HTTP status 503 0.2s ago, 2 failed in a row, changed 3.2s ago"
        ));
        assert!(!t.contains("Half-open"));
        let mut h = r.clone();
        h.half_open = Some(HalfOpenReport {
            via: "data plane".into(),
            sent: 30,
            answers: 29,
            lost: 0,
        });
        assert!(format_text(&h).contains(
            "\nHalf-open TCP checks via the data plane: 30 SYNs sent, 29 answers, 0 lost\n"
        ));
        let mut stalled = r.clone();
        stalled.heartbeat_secs = 5.0;
        assert!(format_text(&stalled).contains("checker thread STALLED (last tick 5.0s ago)"));
    }
}
