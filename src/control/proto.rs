//! The control protocol spoken on the Unix socket (documented in docs/control-api.md).
//!
//! One request per line, one response per line, both JSON objects. Requests carry the protocol
//! version `v`; the server answers every request (an error reply for a malformed one) and closes
//! the connection after an error it cannot recover from (oversized or half-sent message).

use serde::{Deserialize, Serialize};

/// Protocol version this build speaks.
pub const VERSION: u32 = 1;
/// Largest request line accepted, in bytes.
pub const MAX_REQUEST: usize = 1 << 20;

/// A request: `{"v":1,"cmd":"port_stats"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub v: u32,
    #[serde(flatten)]
    pub req: Request,
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
    pub mac: String,
    pub addresses: Vec<String>,
    pub link_up: bool,
    pub speed_mbps: u32,
    /// The NIC's own counters.
    pub hw: crate::dpdk::port::PortStatsReport,
    /// Software counters summed over workers.
    pub sw: crate::dataplane::counters::PortCountersSnapshot,
}

/// Per-worker report in `port_stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerReport {
    pub worker: usize,
    pub lcore: u32,
    pub handed_in: u64,
    pub loops: u64,
    pub ports: Vec<crate::dataplane::counters::PortCountersSnapshot>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortStatsReply {
    pub ports: Vec<PortReport>,
    pub workers: Vec<WorkerReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeighReply {
    pub ports: Vec<(String, Vec<crate::dataplane::neigh::NeighRow>)>,
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
