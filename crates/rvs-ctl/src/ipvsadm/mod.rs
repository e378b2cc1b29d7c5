//! The pure heart of `rvsadm`, the ipvsadm 1.31-compatible CLI: argument parsing with
//! ipvsadm's legality rules, messages and exit codes ([`args`]), byte-exact output ([`format`]),
//! restore-file parsing ([`restore`]), the C-library name/number semantics they share
//! ([`names`]) and what the client does with a command ([`client`]: requests sent, text
//! printed). No I/O here beyond reading `/etc/services` and `/etc/hosts` in
//! [`names::SystemNames`]; the client's socket and stdin are callbacks.
//!
//! Deliberate differences from ipvsadm 1.31 (each documented where it lives):
//! - `-v` prints rvsadm's own version line ([`format::version_line`]).
//! - Sorting uses true unsigned order ([`format`]).
//! - Restore is all-or-nothing, skips `#` comment lines and refuses list/save/help/version lines
//!   ([`restore`]).
//! - IPv6 input is refused with "Operation not supported with specified address family" ([`args`]).
//! - Reverse host lookups use `/etc/hosts` only ([`names::SystemNames`]).
//! - `-b ,` (only commas) is an error instead of ipvsadm's crash ([`args`]).
//! - rvs extras `--add-mark`, `--del-mark`, `--list-marks` (firewall-mark rules, [`args`]); the
//!   daemon refuses `-g`/`-i`, SCTP, `-o`, `--pe`, weights above 65535 and the sync daemon
//!   (`crate::ipvs`, docs/control-api.md).

pub mod args;
pub mod client;
pub mod format;
pub mod names;
pub mod restore;

#[cfg(test)]
mod tests_args;
#[cfg(test)]
mod tests_format;
#[cfg(test)]
mod tests_restore;
