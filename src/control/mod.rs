//! The management core: the control socket server, the request protocol, applying
//! configuration, neighbour resolution and statistics. Never runs on a worker core.
//!
//! Everything but the composition root (`app`) is the `rvs-ctl` crate, which builds without
//! DPDK; it is re-exported here under its old paths.

pub mod app;
mod metrics;
mod mgmt;
pub mod netlink;
pub mod ports;
mod telemetry;
mod twin;
pub use rvs_ctl::{ipvs, ipvsadm, model, proto, report, server};
