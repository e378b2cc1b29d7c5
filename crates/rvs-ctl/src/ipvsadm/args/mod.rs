//! `rvsadm` command-line parsing with ipvsadm 1.31's exact rules, messages and exit codes.
//!
//! The parser reproduces popt's behaviour as ipvsadm uses it (checked against the real binary).
//! Here live the public types, [`parse`]/[`parse_with`] and [`check_operation`]; the pieces:
//! - `popt`: ipvsadm's option table and popt's scanning of it (clusters, values, `--`);
//! - `legality`: ipvsadm's option bits and its command/option and tunnel/option tables;
//! - `parser`: the command-then-options loop and what each option sets, with its child
//!   `parser::process` (ipvsadm's `process_options`: legality, per-command rules, the result);
//! - `values`: the option value parsers (`parse_service`, timeouts, fwmarks, scheduler flags);
//! - `mark`: the rvs firewall-mark extras.
//!
//! rvs extras: a first argument of `--add-mark`, `--del-mark` or `--list-marks` selects the
//! firewall-mark rule commands, parsed by a small strict parser of their own (see `mark`).
//!
//! Exit codes: 2 for ipvsadm's `fail()`, 255 for popt errors and the "Try" hint.
//!
//! Kernel ("operation") errors are not parse errors: scheduler names are accepted here and
//! checked by [`check_operation`], which the caller runs before applying a command (ipvsadm
//! learns them from the kernel and exits 255).
//!
//! IPv6 (`[addr]:port`, `-6`) is recognised with ipvsadm's rules (so the same messages come out
//! in the same order), then refused after all other checks with "Operation not supported with
//! specified address family" (255): what ipvsadm says when the kernel interface lacks IPv6.

mod legality;
mod mark;
mod parser;
mod popt;
mod values;

use super::format::ListFormat;
use super::names::{Names, SystemNames};
use crate::model::{DaemonState, Fwd, MarkRuleEntry, ServiceProto, TimeoutTriple, TunnelInfo};
use mark::{parse_mark, MarkCmd};
use parser::Parser;
use std::fmt;
use std::net::Ipv4Addr;

/// Upper bound of every timeout: 31 days.
pub const MAX_TIMEOUT: u32 = 86400 * 31;
/// `-p` without a value (IPVS_SVC_PERSISTENT_TIMEOUT; the man page's 300 is wrong).
pub const DEFAULT_PERSISTENT_TIMEOUT: u32 = 360;
/// Exit status of ipvsadm's `fail()`.
pub const EXIT_FAIL: i32 = 2;
/// Exit status of popt errors, the "Try" hint and kernel errors (`exit(-1)`).
pub const EXIT_POPT: i32 = 255;

/// A refused command line: print `message` and a newline to stderr, exit with `exit_code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    pub exit_code: i32,
}

impl ParseError {
    fn fail(message: impl Into<String>) -> ParseError {
        ParseError {
            message: message.into(),
            exit_code: EXIT_FAIL,
        }
    }
    fn popt(message: impl Into<String>) -> ParseError {
        ParseError {
            message: message.into(),
            exit_code: EXIT_POPT,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseError {}

/// Identifies a virtual service. Fwmark services have `proto: Fwmark`, address 0.0.0.0, port 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServiceKey {
    pub proto: ServiceProto,
    pub addr: Ipv4Addr,
    pub port: u16,
    pub fwmark: u32,
}

/// `-A` / `-E`: the whole service definition (an edit replaces every field, as in the kernel:
/// `-E` without `-p` removes persistence, without `-s` sets wlc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    pub key: ServiceKey,
    /// At most 15 bytes (ipvsadm truncates). Not validated here: see [`check_operation`].
    pub sched: String,
    /// Scheduler flags (`SVC_F_SCHED*`).
    pub flags: u32,
    /// Persistence timeout, 1..=MAX_TIMEOUT.
    pub persistent: Option<u32>,
    /// Persistence granularity, 255.255.255.255 unless `-M`.
    pub netmask: Ipv4Addr,
    /// `--pe` engine name (at most 15 bytes).
    pub pe: Option<String>,
    pub ops: bool,
}

/// `-a` / `-e` / `-d`: a real server. For `-d` only `addr` and `port` matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DestSpec {
    pub addr: Ipv4Addr,
    /// Already final: the vport when `-r` had no port (at the time `-r` was read, as ipvsadm
    /// does) and always the vport for `-g`/`-i` on non-fwmark services.
    pub port: u16,
    /// `-g` (Route, the default), `-i` (Tunnel) or `-m` (Masq). The rvs data path implements
    /// Masq only; refusing the others is the caller's job.
    pub fwd: Fwd,
    /// 0..=i32::MAX (ipvsadm 1.31 accepts up to INT_MAX, not 65535); default 1. `-e` without
    /// `-w` sets 1 again, as ipvsadm does.
    pub weight: i32,
    pub u_threshold: u32,
    pub l_threshold: u32,
    /// Present exactly when `fwd` is `Tunnel` (IPIP unless `--tun-type`).
    pub tunnel: Option<TunnelInfo>,
}

/// What `-L` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListTarget {
    All,
    Service(ServiceKey),
    /// `-c`
    Connections,
    /// `--timeout`
    Timeout,
    /// `--daemon`
    Daemon,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListOpts {
    pub target: ListTarget,
    pub format: ListFormat,
}

/// `--start-daemon` / `--stop-daemon` arguments. rvs runs no sync daemon: the caller answers
/// these as unsupported; they are parsed so that errors match ipvsadm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonSpec {
    pub state: DaemonState,
    /// "eth0" for `--start-daemon` when not given.
    pub mcast_ifn: String,
    pub syncid: Option<u32>,
    pub sync_maxlen: Option<u32>,
    pub mcast_group: Option<String>,
    pub mcast_port: Option<u16>,
    pub mcast_ttl: Option<u8>,
}

/// One parsed ipvsadm command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    AddService(ServiceSpec),
    EditService(ServiceSpec),
    DeleteService(ServiceKey),
    /// `-C`
    Flush,
    AddDest(ServiceKey, DestSpec),
    EditDest(ServiceKey, DestSpec),
    DeleteDest(ServiceKey, DestSpec),
    List(ListOpts),
    /// `-S [-n]`
    Save {
        numeric: bool,
    },
    /// `-Z [service]`: `None` zeroes everything.
    Zero(Option<ServiceKey>),
    /// `--set tcp tcpfin udp`: a 0 leaves that timeout unchanged.
    SetTimeouts(TimeoutTriple),
    /// `-R`: read rules from stdin (see `restore`).
    Restore,
    StartDaemon(DaemonSpec),
    StopDaemon(DaemonSpec),
    /// `-h`: print [`super::format::usage`] with this program name to stdout, exit 0.
    Help {
        program: String,
    },
    /// `-v`: print [`super::format::version_line`], exit 0.
    Version,
    /// rvs extra `--add-mark -f MARK -t|-u ADDR[:PORT[-PORT]]`: a firewall-mark rule.
    AddMarkRule(MarkRuleEntry),
    /// rvs extra `--del-mark -f MARK -t|-u ADDR[:PORT[-PORT]]`.
    DeleteMarkRule(MarkRuleEntry),
    /// rvs extra `--list-marks`: print the mark rules as `--add-mark` lines.
    ListMarkRules,
}

/// Parses `argv` as `std::env::args()` gives it: `argv[0]` is the program name (used in the
/// "Try" hint and `-h`), options follow. No options at all lists everything (ipvsadm with no
/// arguments). Names are resolved with [`SystemNames`].
pub fn parse(argv: &[String]) -> Result<Command, ParseError> {
    parse_with(argv, &SystemNames::load())
}

/// [`parse`] with explicit name lookups (tests pass a fake; [`super::names::NumericNames`]
/// accepts numbers only).
pub fn parse_with(argv: &[String], names: &dyn Names) -> Result<Command, ParseError> {
    let program = argv.first().map(String::as_str).unwrap_or("rvsadm");
    let args = argv.get(1..).unwrap_or(&[]);
    if args.is_empty() {
        return Ok(Command::List(ListOpts {
            target: ListTarget::All,
            format: ListFormat::default(),
        }));
    }
    if let Some(mark_cmd) = args.first().and_then(|a| MarkCmd::of(a)) {
        return parse_mark(mark_cmd, args.get(1..).unwrap_or(&[]), names);
    }
    Parser::new(program, args, names).run()
}

/// The error text ipvsadm prints when the kernel lacks a scheduler or persistence engine.
pub const ENOENT_SCHED: &str = "Scheduler or persistence engine not found";
/// strerror(ERANGE), what ipvsadm prints when the kernel refuses thresholds.
pub const ERANGE_TEXT: &str = "Numerical result out of range";

/// Checks the kernel makes when a command is applied (ipvsadm prints them and exits 255):
/// an unknown scheduler or any persistence engine (rvs implements none) on `-A`/`-E`, and a
/// lower threshold above the upper one on `-a`/`-e`. The caller runs this at apply time.
pub fn check_operation(cmd: &Command) -> Result<(), ParseError> {
    match cmd {
        Command::AddService(s) | Command::EditService(s)
            if !rvs_lb::sched::NAMES.contains(&s.sched.as_str()) || s.pe.is_some() =>
        {
            Err(ParseError::popt(ENOENT_SCHED))
        }
        Command::AddDest(_, d) | Command::EditDest(_, d) if d.l_threshold > d.u_threshold => {
            Err(ParseError::popt(ERANGE_TEXT))
        }
        _ => Ok(()),
    }
}
