//! The pure heart of `rvsadm`, the ipvsadm 1.31-compatible CLI: argument parsing with
//! ipvsadm's legality rules, messages and exit codes ([`args`]), byte-exact output ([`format`]),
//! restore-file parsing ([`restore`]) and the C-library name/number semantics they share
//! ([`names`]). No I/O here beyond reading `/etc/services` and `/etc/hosts` in
//! [`names::SystemNames`].
//!
//! Deliberate differences from ipvsadm 1.31 (each documented where it lives):
//! - `-v` prints rvsadm's own version line ([`format::version_line`]).
//! - Sorting uses true unsigned order ([`format`]).
//! - Restore is all-or-nothing, skips `#` comment lines and refuses list/save/help/version lines
//!   ([`restore`]).
//! - IPv6 input is refused with "Operation not supported with specified address family" ([`args`]).
//! - Reverse host lookups use `/etc/hosts` only ([`names::SystemNames`]).
//! - `-b ,` (only commas) is an error instead of ipvsadm's crash ([`args`]).

pub mod args;
pub mod format;
pub mod names;
pub mod restore;

#[cfg(test)]
mod tests_args;
#[cfg(test)]
mod tests_format;
#[cfg(test)]
mod tests_restore;
