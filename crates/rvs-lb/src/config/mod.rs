//! The configuration the control plane edits and publishes to workers.
//!
//! [`Config`] is plain data edited by value: every edit method checks its arguments first and
//! only then mutates, so a failed edit leaves the configuration unchanged (the control plane can
//! apply a whole `-R` restore to a scratch copy and publish only if every line succeeded).
//! [`Snapshot`] is an immutable, validated `Config` plus the lookup index the fast path uses;
//! workers receive it as `Arc<Snapshot>` and pick it up between bursts.
//!
//! Identity and lifetime of real servers: every service and destination gets a small numeric id
//! ([`ServiceId`] < [`MAX_SERVICES`], [`DestId`] < [`MAX_DESTS`]) that indexes the per-core
//! preallocated statistics arrays. Deleting a destination (or its service) moves it to the
//! *trash* with its id, like the kernel's `dest_trash`: connections already bound to it keep
//! working and keep being counted under that id, and re-adding the same server to the same
//! service restores it (and its counters). An id is reused only after the control plane purges
//! the trash entry ([`Config::purge_trash`]), which it must do only once every worker has
//! acknowledged a snapshot without the destination and reports no connection referencing it.
//! Each allocation also gets a fresh `incarnation` number so workers notice a reused id and zero
//! its counters.
//!
//! Errors display the exact text `ipvsadm` prints for the kernel's errno (libipvs
//! `ipvs_strerror`), or ipvsadm's own message where ipvsadm rejects the input itself.

mod edits;
mod errors;
mod snapshot;
mod types;

pub use edits::Config;
pub use errors::ConfigError;
pub use snapshot::{Snapshot, SvcLookup};
pub use types::{
    Dest, DestId, DestSpec, Forward, MarkRule, Persistence, Proto, Service, ServiceId, ServiceKey,
    ServiceSpec, Timeouts, TrashedDest, WeightSummary,
};

/// Number of service ids (size of the per-core per-service counter arrays).
pub const MAX_SERVICES: usize = 4096;
/// Number of destination ids, live plus trashed (size of the per-core per-dest arrays).
pub const MAX_DESTS: usize = 16384;
/// Largest timeout ipvsadm accepts (`MAX_TIMEOUT`, 31 days), in seconds.
pub const MAX_TIMEOUT: u32 = 86400 * 31;
/// `IPVS_SVC_PERSISTENT_TIMEOUT` (the man page's 300 is wrong).
pub const DEFAULT_PERSISTENT_TIMEOUT: u32 = 6 * 60;
/// Largest weight ipvsadm accepts.
pub const MAX_WEIGHT: u32 = 65535;
/// Largest connection threshold (`INT_MAX`).
pub const MAX_THRESHOLD: u32 = i32::MAX as u32;
/// Most firewall-mark rules (the stand-in for iptables mangle rules).
pub const MAX_MARK_RULES: usize = 4096;

#[cfg(test)]
mod tests;
