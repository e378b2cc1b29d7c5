//! rvs's control plane without the appliance: the control protocol and its wire types, the
//! ipvsadm-compatible command line (parser, legality tables, output formats, restore), the
//! IPVS control state the management core owns, and the Unix-socket server and client. It
//! builds and tests without DPDK: `rvsadm` is built from here.
// Input paths never panic: no unwrap, expect or panic outside tests (tests may).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod checks;
pub mod ipvs;
pub mod ipvsadm;
pub mod model;
pub mod proto;
pub mod report;
pub mod server;
