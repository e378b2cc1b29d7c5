//! rvs: the Linux Virtual Server NAT model as a DPDK poll-mode appliance.
//!
//! Layers (see docs/architecture.md):
//! - [`dpdk`]: generated FFI and safe wrappers; the only module allowed raw-pointer code.
//! - [`net`]: zero-copy header views and checksums; no DPDK types.
//! - [`lb`]: the IPVS core, sans-IO: bytes, a port role and a time in, verdicts out.
//! - [`dataplane`]: the worker loop tying ports, `net` and `lb` together.
//! - [`control`]: the management core: control socket, config publication, stats.
// Input paths never panic: no unwrap, expect or panic outside tests (tests may).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod config;
pub mod control;
pub mod dataplane;
/// Bindings and safe wrappers: the `rvs-dpdk` crate, the only one with `unsafe` code.
pub use rvs_dpdk as dpdk;
/// The IPVS core: the `rvs-lb` crate (builds and tests without DPDK).
pub use rvs_lb as lb;
/// Header views and checksums: the `rvs-net` crate (builds and tests without DPDK).
pub use rvs_net as net;
