//! The worker: burst RX on both ports, L2/L3 handling, load balancing, neighbour resolution,
//! L2 rewrite, burst TX. Per-core state and counters.

pub mod counters;
pub mod kernel;
pub mod l3;
pub mod latency;
pub mod neigh;
pub mod shared;
pub mod synprobe;
pub mod worker;
