//! The IPVS core, sans-IO. Nothing here knows about DPDK, sockets or threads: functions take a
//! packet buffer, the role of the port it arrived on and the time, and return a verdict.
// Input paths never panic: no unwrap, expect or panic outside tests (tests may).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod config;
pub mod conn;
pub mod engine;
pub mod frag;
pub mod sched;
pub mod stats;
pub mod steer;
pub mod tcp_state;

pub use config::{
    ConfigError, DestId, DestSpec, Proto, ServiceId, ServiceKey, ServiceSpec, Snapshot,
};
pub use conn::ConnInfo;
pub use engine::{Lb, LbParams, Lookup, Prepared, Verdict};
pub use stats::{CoreStats, DropReason};
pub use steer::steer;

/// Which of the appliance's two ports a packet arrived on (or leaves by).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortRole {
    /// Faces clients; carries the VIPs.
    Public,
    /// Faces the real servers; carries the DIP.
    Private,
}

impl PortRole {
    pub const ALL: [PortRole; 2] = [PortRole::Public, PortRole::Private];

    pub fn index(self) -> usize {
        match self {
            PortRole::Public => 0,
            PortRole::Private => 1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PortRole::Public => "public",
            PortRole::Private => "private",
        }
    }
}

/// Monotonic time in nanoseconds since an arbitrary epoch (the dataplane derives it from the TSC).
pub type Time = u64;

pub const NANOS_PER_SEC: Time = 1_000_000_000;
