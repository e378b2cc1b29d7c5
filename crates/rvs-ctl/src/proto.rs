//! The control protocol spoken on the Unix socket (documented in docs/control-api.md).
//!
//! One request per line, one response per line, both JSON objects. Requests carry the protocol
//! version `v`; the server answers every request (an error reply for a malformed one) and closes
//! the connection after an error it cannot recover from (oversized or half-sent message).

use super::ipvsadm::args::{self, Command, ParseError};
use super::model::{Fwd, MarkRuleEntry, ServiceProto, TimeoutTriple};
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// Protocol version this build speaks.
pub const VERSION: u32 = 1;
/// Largest request line accepted, in bytes (a `restore` of a full table is a few MiB).
pub const MAX_REQUEST: usize = 16 << 20;

/// A request: `{"v":1,"cmd":"port_stats"}`. Decoded strictly: `cmd` must be a string (serde
/// alone would take an integer as the index of a variant, so `{"v":1,"cmd":0}` would be a
/// `ping`), in the envelope and in every operation of a `restore`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Envelope {
    pub v: u32,
    #[serde(flatten)]
    pub req: Request,
}

/// What serde derives for [`Envelope`]; reached only after [`require_string_cmds`].
#[derive(Deserialize)]
struct RawEnvelope {
    v: u32,
    #[serde(flatten)]
    req: Request,
}

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let value = serde_json::Value::deserialize(d)?;
        require_string_cmds(&value).map_err(D::Error::custom)?;
        let raw: RawEnvelope = serde_json::from_value(value).map_err(D::Error::custom)?;
        Ok(Envelope {
            v: raw.v,
            req: raw.req,
        })
    }
}

/// Every `cmd` of a request (and of a restore's `ops`) is a JSON string.
fn require_string_cmds(v: &serde_json::Value) -> Result<(), String> {
    let Some(obj) = v.as_object() else {
        return Ok(()); // not an object: the derived decoder gives the error
    };
    match obj.get("cmd") {
        None => return Ok(()),
        Some(serde_json::Value::String(_)) => {}
        Some(other) => {
            return Err(format!(
                "`cmd` must be a string naming a command, not {other}"
            ))
        }
    }
    if let Some(serde_json::Value::Array(ops)) = obj.get("ops") {
        for op in ops {
            require_string_cmds(op)?;
        }
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Liveness check; answers the daemon's version.
    Ping,
    /// Per-port and per-worker counters.
    PortStats,
    /// The neighbour (ARP) tables of both ports.
    Neighbours,
    /// Every health checker's state: answers a [`super::checks::ChecksReport`].
    ListChecks,
    /// Re-reads the checks file and applies the difference (as SIGHUP does).
    ReloadChecks,

    /// `-A`: add a virtual service.
    AddService {
        service: ServiceConf,
    },
    /// `-E`: replace a service's scheduler, flags and persistence (real servers stay).
    EditService {
        service: ServiceConf,
    },
    /// `-D`: delete a service (its connections keep their real servers until they end).
    DeleteService {
        service: ServiceRef,
    },
    /// `-C`: delete every service (mark rules and timeouts stay).
    Clear,
    /// `-a`: add a real server to a service.
    AddDest {
        service: ServiceRef,
        dest: DestConf,
    },
    /// `-e`: replace a real server's weight and thresholds.
    EditDest {
        service: ServiceRef,
        dest: DestConf,
    },
    /// `-d`: remove a real server (its connections continue; see `expire_dest`).
    DeleteDest {
        service: ServiceRef,
        dest: DestRef,
    },
    /// `-Z [service]`: zero the counters and rates of one service (and its real servers) or of
    /// everything.
    Zero {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        service: Option<ServiceRef>,
    },
    /// `--set tcp tcpfin udp`: a 0 leaves that timeout unchanged.
    SetTimeouts {
        timeouts: TimeoutTriple,
    },
    /// `-L --timeout`: answers [`TimeoutTriple`].
    GetTimeouts,
    /// `-L [service]`: answers a [`super::model::ListSnapshot`] (one service when given).
    List {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        service: Option<ServiceRef>,
    },
    /// `-L -c`: answers `Vec<`[`super::model::ConnEntry`]`>`.
    ListConns,
    /// `-R`: the operations (`add_service` ... `delete_mark_rule`, `zero`, `set_timeouts`)
    /// applied all or nothing. `lines` optionally numbers them for error messages (default: 1,
    /// 2, 3, ...).
    Restore {
        ops: Vec<Request>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lines: Option<Vec<usize>>,
    },
    /// End the connections bound to a real server, live or already removed.
    ExpireDest {
        service: ServiceRef,
        dest: DestRef,
    },
    /// Add a firewall-mark rule (the rvs stand-in for an iptables MARK rule).
    AddMarkRule {
        rule: MarkRuleEntry,
    },
    DeleteMarkRule {
        rule: MarkRuleEntry,
    },
    /// Answers `Vec<`[`MarkRuleEntry`]`>` in match order.
    ListMarkRules,
}

impl Request {
    /// The `cmd` tag, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Ping => "ping",
            Request::PortStats => "port_stats",
            Request::Neighbours => "neighbours",
            Request::ListChecks => "list_checks",
            Request::ReloadChecks => "reload_checks",
            Request::AddService { .. } => "add_service",
            Request::EditService { .. } => "edit_service",
            Request::DeleteService { .. } => "delete_service",
            Request::Clear => "clear",
            Request::AddDest { .. } => "add_dest",
            Request::EditDest { .. } => "edit_dest",
            Request::DeleteDest { .. } => "delete_dest",
            Request::Zero { .. } => "zero",
            Request::SetTimeouts { .. } => "set_timeouts",
            Request::GetTimeouts => "get_timeouts",
            Request::List { .. } => "list",
            Request::ListConns => "list_conns",
            Request::Restore { .. } => "restore",
            Request::ExpireDest { .. } => "expire_dest",
            Request::AddMarkRule { .. } => "add_mark_rule",
            Request::DeleteMarkRule { .. } => "delete_mark_rule",
            Request::ListMarkRules => "list_mark_rules",
        }
    }
}

fn any_addr() -> Ipv4Addr {
    Ipv4Addr::UNSPECIFIED
}

fn host_mask() -> Ipv4Addr {
    Ipv4Addr::BROADCAST
}

fn default_sched() -> String {
    rvs_lb::sched::DEFAULT_SCHEDULER.to_string()
}

fn default_weight() -> u32 {
    1
}

fn masq() -> Fwd {
    Fwd::Masq
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// Names a virtual service: `{"proto":"tcp","addr":"192.0.2.10","port":80}` or
/// `{"proto":"fwmark","fwmark":7}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceRef {
    pub proto: ServiceProto,
    #[serde(default = "any_addr")]
    pub addr: Ipv4Addr,
    #[serde(default)]
    pub port: u16,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fwmark: u32,
}

impl From<&args::ServiceKey> for ServiceRef {
    fn from(k: &args::ServiceKey) -> Self {
        ServiceRef {
            proto: k.proto,
            addr: k.addr,
            port: k.port,
            fwmark: k.fwmark,
        }
    }
}

/// A whole service definition (`-A`/`-E`). Omitted fields take ipvsadm's defaults: scheduler
/// "wlc", no flags, not persistent, netmask 255.255.255.255.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConf {
    pub proto: ServiceProto,
    #[serde(default = "any_addr")]
    pub addr: Ipv4Addr,
    #[serde(default)]
    pub port: u16,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fwmark: u32,
    #[serde(default = "default_sched")]
    pub sched: String,
    /// Scheduler flag bits (`SVC_F_SCHED1..3` = 0x08, 0x10, 0x20), as listings report them.
    #[serde(default)]
    pub flags: u32,
    /// Persistence timeout in seconds (1..=2678400); absent = not persistent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent: Option<u32>,
    #[serde(default = "host_mask")]
    pub netmask: Ipv4Addr,
    /// Persistence engine: rvs has none, so any value is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pe: Option<String>,
    /// One-packet scheduling: not supported by rvs, `true` is refused.
    #[serde(default, skip_serializing_if = "is_false")]
    pub ops: bool,
}

impl ServiceConf {
    pub fn key(&self) -> ServiceRef {
        ServiceRef {
            proto: self.proto,
            addr: self.addr,
            port: self.port,
            fwmark: self.fwmark,
        }
    }
}

impl From<&args::ServiceSpec> for ServiceConf {
    fn from(s: &args::ServiceSpec) -> Self {
        ServiceConf {
            proto: s.key.proto,
            addr: s.key.addr,
            port: s.key.port,
            fwmark: s.key.fwmark,
            sched: s.sched.clone(),
            flags: s.flags,
            persistent: s.persistent,
            netmask: s.netmask,
            pe: s.pe.clone(),
            ops: s.ops,
        }
    }
}

/// A real server (`-a`/`-e`). `port` 0 means the service's port; `fwd` defaults to "masq"
/// (the only method rvs implements; "route", "tunnel" and "local" are refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestConf {
    pub addr: Ipv4Addr,
    #[serde(default)]
    pub port: u16,
    #[serde(default = "masq")]
    pub fwd: Fwd,
    /// 0..=65535, default 1.
    #[serde(default = "default_weight")]
    pub weight: u32,
    #[serde(default)]
    pub u_threshold: u32,
    #[serde(default)]
    pub l_threshold: u32,
}

impl From<&args::DestSpec> for DestConf {
    fn from(d: &args::DestSpec) -> Self {
        DestConf {
            addr: d.addr,
            port: d.port,
            fwd: d.fwd,
            // The parser allows 0..=i32::MAX.
            weight: u32::try_from(d.weight).unwrap_or(u32::MAX),
            u_threshold: d.u_threshold,
            l_threshold: d.l_threshold,
        }
    }
}

/// Names a real server of a service; `port` 0 means the service's port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestRef {
    pub addr: Ipv4Addr,
    #[serde(default)]
    pub port: u16,
}

/// What rvs says to `--start-daemon`/`--stop-daemon`.
pub const NO_SYNC_DAEMON: &str =
    "Connection synchronisation is not supported: rvs runs no sync daemon";

/// The request that carries out an ipvsadm command that changes state (`-A -E -D -C -a -e -d -Z
/// --set` and the mark-rule extras). Listing, saving, restoring, help and version are the
/// client's business and are refused here, as are the sync-daemon commands.
pub fn request_of(cmd: &Command) -> Result<Request, ParseError> {
    Ok(match cmd {
        Command::AddService(s) => Request::AddService { service: s.into() },
        Command::EditService(s) => Request::EditService { service: s.into() },
        Command::DeleteService(k) => Request::DeleteService { service: k.into() },
        Command::Flush => Request::Clear,
        Command::AddDest(k, d) => Request::AddDest {
            service: k.into(),
            dest: d.into(),
        },
        Command::EditDest(k, d) => Request::EditDest {
            service: k.into(),
            dest: d.into(),
        },
        Command::DeleteDest(k, d) => Request::DeleteDest {
            service: k.into(),
            dest: DestRef {
                addr: d.addr,
                port: d.port,
            },
        },
        Command::Zero(k) => Request::Zero {
            service: k.as_ref().map(ServiceRef::from),
        },
        Command::SetTimeouts(t) => Request::SetTimeouts { timeouts: *t },
        Command::AddMarkRule(r) => Request::AddMarkRule { rule: *r },
        Command::DeleteMarkRule(r) => Request::DeleteMarkRule { rule: *r },
        Command::StartDaemon(_) | Command::StopDaemon(_) => {
            return Err(ParseError {
                message: NO_SYNC_DAEMON.to_string(),
                exit_code: args::EXIT_POPT,
            })
        }
        Command::List(_)
        | Command::Save { .. }
        | Command::Restore
        | Command::Help { .. }
        | Command::Version
        | Command::ListMarkRules => {
            return Err(ParseError {
                message: "not a configuration command".to_string(),
                exit_code: args::EXIT_FAIL,
            })
        }
    })
}

/// A response: `{"v":1,"ok":true,"data":{...}}` or
/// `{"v":1,"ok":false,"error":"No such service","exit_code":255}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub v: u32,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The exit code an ipvsadm-compatible client should use for this error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub data: serde_json::Value,
}

impl Response {
    pub fn ok(data: serde_json::Value) -> Self {
        Response {
            v: VERSION,
            ok: true,
            error: None,
            exit_code: None,
            data,
        }
    }

    pub fn err(msg: impl Into<String>, exit_code: i32) -> Self {
        Response {
            v: VERSION,
            ok: false,
            error: Some(msg.into()),
            exit_code: Some(exit_code),
            data: serde_json::Value::Null,
        }
    }
}

/// Per-port report in `port_stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortReport {
    pub role: String,
    pub device: String,
    pub driver: String,
    /// How packets reach the core that owns their connection (detected at start).
    #[serde(default)]
    pub steering: String,
    /// The TX offloads enabled on the port ("ipv4_cksum", or "none").
    #[serde(default)]
    pub tx_offloads: String,
    /// The port's kernel twin: "NAME (backend)", "NAME (backend, gone)" once deleted from
    /// outside, or "" when the port has none.
    #[serde(default)]
    pub kernel: String,
    pub mac: String,
    pub addresses: Vec<String>,
    pub link_up: bool,
    pub speed_mbps: u32,
    /// The NIC's own counters.
    pub hw: super::report::HwPortCounters,
    /// Software counters summed over workers.
    pub sw: super::report::PortCountersSnapshot,
}

/// Per-worker report in `port_stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerReport {
    pub worker: usize,
    pub lcore: u32,
    pub handed_in: u64,
    pub loops: u64,
    /// Sampled RX-to-TX residence time of this worker's bursts (one burst in 16).
    #[serde(default)]
    pub latency: super::report::LatencyReport,
    pub ports: Vec<super::report::PortCountersSnapshot>,
    /// The worker's connection table and engine drops.
    #[serde(default)]
    pub engine: super::report::EngineReport,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortStatsReply {
    pub ports: Vec<PortReport>,
    pub workers: Vec<WorkerReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeighReply {
    pub ports: Vec<(String, Vec<super::report::NeighRow>)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_reject_garbage() {
        let e: Envelope = serde_json::from_str(r#"{"v":1,"cmd":"port_stats"}"#).unwrap();
        assert_eq!(e.req, Request::PortStats);
        assert!(serde_json::from_str::<Envelope>(r#"{"v":1,"cmd":"reboot"}"#).is_err());
        assert!(serde_json::from_str::<Envelope>(r#"{"cmd":"ping"}"#).is_err());
        // A variant index, a bool or null where the command name belongs is not a command.
        for bad in [
            r#"{"v":1,"cmd":0}"#,
            r#"{"v":1,"cmd":1}"#,
            r#"{"v":1,"cmd":true}"#,
            r#"{"v":1,"cmd":null}"#,
            r#"{"v":1,"cmd":"restore","ops":[{"cmd":6}]}"#,
            r#"{"v":1,"cmd":"restore","ops":[{"cmd":"clear"},{"cmd":"restore","ops":[{"cmd":0}]}]}"#,
        ] {
            let e = serde_json::from_str::<Envelope>(bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains("`cmd` must be a string"), "{bad}: {e}");
        }
        let e: Envelope =
            serde_json::from_str(r#"{"v":1,"cmd":"restore","ops":[{"cmd":"clear"}]}"#).unwrap();
        assert_eq!(
            e.req,
            Request::Restore {
                ops: vec![Request::Clear],
                lines: None
            }
        );
        let s = serde_json::to_string(&Envelope {
            v: 1,
            req: Request::Neighbours,
        })
        .unwrap();
        assert_eq!(s, r#"{"v":1,"cmd":"neighbours"}"#);
    }

    #[test]
    fn error_response_shape() {
        let s = serde_json::to_string(&Response::err("No such service", 255)).unwrap();
        assert_eq!(
            s,
            r#"{"v":1,"ok":false,"error":"No such service","exit_code":255}"#
        );
    }
}
