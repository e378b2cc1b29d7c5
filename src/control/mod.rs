//! The management core: the control socket server, the request protocol, applying
//! configuration, neighbour resolution and statistics. Never runs on a worker core.

pub mod app;
pub mod ipvs;
pub mod ipvsadm;
pub mod model;
pub mod proto;
pub mod report;
pub mod server;
