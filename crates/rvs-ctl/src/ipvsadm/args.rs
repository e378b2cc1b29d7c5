//! `rvsadm` command-line parsing with ipvsadm 1.31's exact rules, messages and exit codes.
//!
//! The parser reproduces popt's behaviour as ipvsadm uses it (checked against the real binary):
//! - the first option must be a command (`-A -E -D -C -R -S -a -e -d -L -l -Z --set
//!   --start-daemon --stop-daemon`) or `-h`/`-v`; anything else prints the "Try ..." hint (255);
//! - a later command letter is "invalid option `-X'" (exit 2): ipvsadm never reaches its
//!   "multiple commands specified" message, so neither does rvsadm;
//! - short options cluster (`-Ln`, `-lnc`); an option needing a value takes the rest of the
//!   cluster (`-t10.0.0.1:80`, `-s=rr` strips the `=`) or else the next argument, whatever it
//!   looks like (`-s -p` sets the scheduler to "-p");
//! - `-p` has an optional value: the rest of the cluster (`-p60`, `-p=60`), `--persistent=60`,
//!   or the next argument unless it starts with '-';
//! - long options match exactly (`--sched` is unknown), `--` ends options, non-option words are
//!   collected and only `--set` consumes them;
//! - options are processed in order, so the first failing one reports.
//!
//! rvs extras: a first argument of `--add-mark`, `--del-mark` or `--list-marks` selects the
//! firewall-mark rule commands, parsed by a small strict parser of their own (see `parse_mark`).
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

use super::format::ListFormat;
use super::names::{c_atoi, inet_aton, string_to_number, truncate_bytes, Names, SystemNames};
use crate::model::{
    DaemonState, Fwd, MarkRuleEntry, ServiceProto, TimeoutTriple, TunCsum, TunType, TunnelInfo,
    SVC_F_SCHED1, SVC_F_SCHED2, SVC_F_SCHED3, SVC_F_SCHED_MASK,
};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

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

// ---------------------------------------------------------------------------------------------
// rvs extras: firewall-mark rules (no ipvsadm equivalent; iptables sets marks on Linux)

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MarkCmd {
    Add,
    Del,
    List,
}

impl MarkCmd {
    fn of(arg: &str) -> Option<MarkCmd> {
        match arg {
            "--add-mark" => Some(MarkCmd::Add),
            "--del-mark" => Some(MarkCmd::Del),
            "--list-marks" => Some(MarkCmd::List),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            MarkCmd::Add => "add-mark",
            MarkCmd::Del => "del-mark",
            MarkCmd::List => "list-marks",
        }
    }
}

/// `--add-mark|--del-mark -f MARK -t|-u ADDR[:PORT[-PORT]]` (options in any order, each once;
/// no port means every port) and `--list-marks` (no options). Errors exit 2, like `fail()`.
fn parse_mark(cmd: MarkCmd, args: &[String], names: &dyn Names) -> Result<Command, ParseError> {
    let mut mark: Option<u32> = None;
    let mut target: Option<(ServiceProto, Ipv4Addr, u16, u16)> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if cmd == MarkCmd::List {
            return Err(ParseError::fail(format!("unexpected argument {}", a)));
        }
        let opt = match a.as_str() {
            "-f" | "--fwmark-service" => 'f',
            "-t" | "--tcp-service" => 't',
            "-u" | "--udp-service" => 'u',
            _ => return Err(ParseError::fail(format!("unexpected argument {}", a))),
        };
        let value = it
            .next()
            .ok_or_else(|| ParseError::popt(format!("{}: missing argument", a)))?;
        if opt == 'f' {
            if mark.is_some() {
                return Err(ParseError::fail(
                    "multiple 'fwmark-service' options specified",
                ));
            }
            mark = Some(parse_fwmark(value)?);
            continue;
        }
        if target.is_some() {
            return Err(ParseError::fail(
                "multiple 'service-address' options specified",
            ));
        }
        let proto = if opt == 't' {
            ServiceProto::Tcp
        } else {
            ServiceProto::Udp
        };
        let (lo, hi, addr) = parse_mark_target(value, proto, names)
            .ok_or_else(|| ParseError::fail("illegal mark rule address[:port[-port]] specified"))?;
        target = Some((proto, addr, lo, hi));
    }
    if cmd == MarkCmd::List {
        return Ok(Command::ListMarkRules);
    }
    let Some(mark) = mark else {
        return Err(ParseError::fail(format!(
            "You need to supply the 'fwmark-service' option for the '{}' command",
            cmd.name()
        )));
    };
    let Some((proto, vaddr, port_lo, port_hi)) = target else {
        return Err(ParseError::fail(format!(
            "You need to supply the 'service-address' option for the '{}' command",
            cmd.name()
        )));
    };
    let rule = MarkRuleEntry {
        mark,
        proto,
        vaddr,
        port_lo,
        port_hi,
    };
    Ok(if cmd == MarkCmd::Add {
        Command::AddMarkRule(rule)
    } else {
        Command::DeleteMarkRule(rule)
    })
}

/// `ADDR`, `ADDR:PORT` or `ADDR:LO-HI` (ports numeric or, alone, a service name).
fn parse_mark_target(
    s: &str,
    proto: ServiceProto,
    names: &dyn Names,
) -> Option<(u16, u16, Ipv4Addr)> {
    // As parse_service: digits alone are a port, not a host.
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (host, ports) = match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    };
    let addr = inet_aton(host).or_else(|| {
        if host.is_empty() || host.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            names.host_to_addr(host)
        }
    })?;
    let port = |p: &str| {
        string_to_number(p, 0, 65535)
            .and_then(|v| u16::try_from(v).ok())
            .or_else(|| names.service_to_port(p, proto))
    };
    let (lo, hi) = match ports {
        None => (0, u16::MAX),
        Some(p) => match p.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => {
                let v = port(p)?;
                (v, v)
            }
        },
    };
    (lo <= hi).then_some((lo, hi, addr))
}

// ---------------------------------------------------------------------------------------------
// popt emulation

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArgKind {
    None,
    Required,
    Optional,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opt {
    AddService,
    EditService,
    DeleteService,
    Clear,
    List,
    Zero,
    AddServer,
    EditServer,
    DeleteServer,
    Set,
    Help,
    Version,
    Restore,
    Save,
    StartDaemon,
    StopDaemon,
    Tcp,
    Udp,
    Sctp,
    Fwmark,
    Scheduler,
    Persistent,
    Netmask,
    RealServer,
    Masq,
    Ipip,
    Gatewaying,
    Weight,
    UThreshold,
    LThreshold,
    Numeric,
    Connection,
    McastInterface,
    SyncId,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    Sort,
    Exact,
    Ipv6,
    Ops,
    Pe,
    SchedFlags,
    McastGroup,
    McastPort,
    McastTtl,
    SyncMaxlen,
    TunInfo,
    TunType,
    TunPort,
    TunNocsum,
    TunCsum,
    TunRemcsum,
}

struct OptDef {
    long: &'static str,
    short: Option<char>,
    arg: ArgKind,
    opt: Opt,
}

const fn od(long: &'static str, short: Option<char>, arg: ArgKind, opt: Opt) -> OptDef {
    OptDef {
        long,
        short,
        arg,
        opt,
    }
}

use ArgKind::{None as NoArg, Optional as OptArg, Required as ReqArg};

/// ipvsadm 1.31's option table (long name, short letter, argument).
const OPTIONS: &[OptDef] = &[
    od("add-service", Some('A'), NoArg, Opt::AddService),
    od("edit-service", Some('E'), NoArg, Opt::EditService),
    od("delete-service", Some('D'), NoArg, Opt::DeleteService),
    od("clear", Some('C'), NoArg, Opt::Clear),
    od("list", Some('L'), NoArg, Opt::List),
    od("list", Some('l'), NoArg, Opt::List),
    od("zero", Some('Z'), NoArg, Opt::Zero),
    od("add-server", Some('a'), NoArg, Opt::AddServer),
    od("edit-server", Some('e'), NoArg, Opt::EditServer),
    od("delete-server", Some('d'), NoArg, Opt::DeleteServer),
    od("set", None, NoArg, Opt::Set),
    od("help", Some('h'), NoArg, Opt::Help),
    od("version", Some('v'), NoArg, Opt::Version),
    od("restore", Some('R'), NoArg, Opt::Restore),
    od("save", Some('S'), NoArg, Opt::Save),
    od("start-daemon", None, ReqArg, Opt::StartDaemon),
    od("stop-daemon", None, ReqArg, Opt::StopDaemon),
    od("tcp-service", Some('t'), ReqArg, Opt::Tcp),
    od("udp-service", Some('u'), ReqArg, Opt::Udp),
    od("sctp-service", None, ReqArg, Opt::Sctp),
    od("fwmark-service", Some('f'), ReqArg, Opt::Fwmark),
    od("scheduler", Some('s'), ReqArg, Opt::Scheduler),
    od("persistent", Some('p'), OptArg, Opt::Persistent),
    od("netmask", Some('M'), ReqArg, Opt::Netmask),
    od("real-server", Some('r'), ReqArg, Opt::RealServer),
    od("masquerading", Some('m'), NoArg, Opt::Masq),
    od("ipip", Some('i'), NoArg, Opt::Ipip),
    od("gatewaying", Some('g'), NoArg, Opt::Gatewaying),
    od("weight", Some('w'), ReqArg, Opt::Weight),
    od("u-threshold", Some('x'), ReqArg, Opt::UThreshold),
    od("l-threshold", Some('y'), ReqArg, Opt::LThreshold),
    od("numeric", Some('n'), NoArg, Opt::Numeric),
    od("connection", Some('c'), NoArg, Opt::Connection),
    od("mcast-interface", None, ReqArg, Opt::McastInterface),
    od("syncid", None, ReqArg, Opt::SyncId),
    od("timeout", None, NoArg, Opt::Timeout),
    od("daemon", None, NoArg, Opt::Daemon),
    od("stats", None, NoArg, Opt::Stats),
    od("rate", None, NoArg, Opt::Rate),
    od("thresholds", None, NoArg, Opt::Thresholds),
    od("persistent-conn", None, NoArg, Opt::PersistentConn),
    od("nosort", None, NoArg, Opt::NoSort),
    od("sort", None, NoArg, Opt::Sort),
    od("exact", Some('X'), NoArg, Opt::Exact),
    od("ipv6", Some('6'), NoArg, Opt::Ipv6),
    od("ops", Some('o'), NoArg, Opt::Ops),
    od("pe", None, ReqArg, Opt::Pe),
    od("sched-flags", Some('b'), ReqArg, Opt::SchedFlags),
    od("mcast-group", None, ReqArg, Opt::McastGroup),
    od("mcast-port", None, ReqArg, Opt::McastPort),
    od("mcast-ttl", None, ReqArg, Opt::McastTtl),
    od("sync-maxlen", None, ReqArg, Opt::SyncMaxlen),
    od("tun-info", None, NoArg, Opt::TunInfo),
    od("tun-type", None, ReqArg, Opt::TunType),
    od("tun-port", None, ReqArg, Opt::TunPort),
    od("tun-nocsum", None, NoArg, Opt::TunNocsum),
    od("tun-csum", None, NoArg, Opt::TunCsum),
    od("tun-remcsum", None, NoArg, Opt::TunRemcsum),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PoptError {
    BadOpt,
    NoArg,
    UnwantedArg,
}

impl PoptError {
    fn text(self) -> &'static str {
        match self {
            PoptError::BadOpt => "unknown option",
            PoptError::NoArg => "missing argument",
            PoptError::UnwantedArg => "option does not take an argument",
        }
    }
}

struct Popt<'a> {
    args: &'a [String],
    next: usize,
    /// (argument index, byte offset) of the rest of a short-option cluster.
    cluster: Option<(usize, usize)>,
    ended: bool,
    leftovers: Vec<String>,
    /// Index of the argument the last option came from (popt's "bad option" text).
    current: usize,
}

impl<'a> Popt<'a> {
    fn new(args: &'a [String]) -> Popt<'a> {
        Popt {
            args,
            next: 0,
            cluster: None,
            ended: false,
            leftovers: Vec::new(),
            current: 0,
        }
    }

    /// The whole argument the last option came from, as popt's `poptBadOption` reports it.
    fn current_arg(&self) -> &str {
        self.args
            .get(self.current)
            .map(String::as_str)
            .unwrap_or("")
    }

    fn take_next_required(&mut self) -> Result<String, PoptError> {
        match self.args.get(self.next) {
            Some(v) => {
                self.next += 1;
                Ok(v.clone())
            }
            None => Err(PoptError::NoArg),
        }
    }

    fn take_next_optional(&mut self) -> Option<String> {
        match self.args.get(self.next) {
            Some(v) if !v.starts_with('-') => {
                self.next += 1;
                Some(v.clone())
            }
            _ => None,
        }
    }

    fn next_opt(&mut self) -> Result<Option<(Opt, Option<String>)>, PoptError> {
        loop {
            if let Some((ai, pos)) = self.cluster {
                let s = self.args.get(ai).map(String::as_str).unwrap_or("");
                let rest = s.get(pos..).unwrap_or("");
                let Some(c) = rest.chars().next() else {
                    self.cluster = None;
                    continue;
                };
                self.current = ai;
                let after = pos + c.len_utf8();
                let tail = s.get(after..).unwrap_or("");
                let def = OPTIONS
                    .iter()
                    .find(|d| d.short == Some(c))
                    .ok_or(PoptError::BadOpt)?;
                if def.arg == ArgKind::None {
                    if tail.starts_with('=') {
                        return Err(PoptError::UnwantedArg);
                    }
                    self.cluster = Some((ai, after));
                    return Ok(Some((def.opt, None)));
                }
                self.cluster = None;
                if !tail.is_empty() {
                    let v = tail.strip_prefix('=').unwrap_or(tail);
                    return Ok(Some((def.opt, Some(v.to_string()))));
                }
                let v = if def.arg == ArgKind::Required {
                    Some(self.take_next_required()?)
                } else {
                    self.take_next_optional()
                };
                return Ok(Some((def.opt, v)));
            }

            let Some(s) = self.args.get(self.next) else {
                return Ok(None);
            };
            let ai = self.next;
            self.next += 1;
            if self.ended {
                self.leftovers.push(s.clone());
                continue;
            }
            if s == "--" {
                self.ended = true;
                continue;
            }
            if let Some(long) = s.strip_prefix("--") {
                self.current = ai;
                let (name, inline) = match long.split_once('=') {
                    Some((n, v)) => (n, Some(v)),
                    None => (long, None),
                };
                let def = OPTIONS
                    .iter()
                    .find(|d| d.long == name)
                    .ok_or(PoptError::BadOpt)?;
                return match (def.arg, inline) {
                    (ArgKind::None, Some(_)) => Err(PoptError::UnwantedArg),
                    (ArgKind::None, None) => Ok(Some((def.opt, None))),
                    (_, Some(v)) => Ok(Some((def.opt, Some(v.to_string())))),
                    (ArgKind::Required, None) => {
                        Ok(Some((def.opt, Some(self.take_next_required()?))))
                    }
                    (ArgKind::Optional, None) => Ok(Some((def.opt, self.take_next_optional()))),
                };
            }
            if s.len() > 1 && s.starts_with('-') {
                self.cluster = Some((ai, 1));
                continue;
            }
            self.leftovers.push(s.clone());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ipvsadm's option bits and legality table

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Add,
    Edit,
    Del,
    Flush,
    List,
    AddDest,
    DelDest,
    EditDest,
    Timeout,
    StartDaemon,
    StopDaemon,
    Restore,
    Save,
    Zero,
}

impl Cmd {
    fn index(self) -> usize {
        self as usize
    }
    fn name(self) -> &'static str {
        CMD_NAMES.get(self.index()).copied().unwrap_or("")
    }
}

const CMD_NAMES: [&str; 14] = [
    "add-service",
    "edit-service",
    "delete-service",
    "flush",
    "list",
    "add-server",
    "delete-server",
    "edit-server",
    "set",
    "start-daemon",
    "stop-daemon",
    "restore",
    "save",
    "zero",
];

// Option indices (ipvsadm's OPTC_*), the columns of the table below.
const OPTC_NUMERIC: usize = 0;
const OPTC_CONNECTION: usize = 1;
const OPTC_SERVICE: usize = 2;
const OPTC_SCHEDULER: usize = 3;
const OPTC_PERSISTENT: usize = 4;
const OPTC_NETMASK: usize = 5;
const OPTC_SERVER: usize = 6;
const OPTC_FORWARD: usize = 7;
const OPTC_WEIGHT: usize = 8;
const OPTC_UTHRESHOLD: usize = 9;
const OPTC_LTHRESHOLD: usize = 10;
const OPTC_MCAST: usize = 11;
const OPTC_TIMEOUT: usize = 12;
const OPTC_DAEMON: usize = 13;
const OPTC_STATS: usize = 14;
const OPTC_RATE: usize = 15;
const OPTC_THRESHOLDS: usize = 16;
const OPTC_PERSISTENTCONN: usize = 17;
const OPTC_NOSORT: usize = 18;
const OPTC_SYNCID: usize = 19;
const OPTC_EXACT: usize = 20;
const OPTC_ONEPACKET: usize = 21;
const OPTC_PE: usize = 22;
const OPTC_SCHED_FLAGS: usize = 23;
const OPTC_MCAST_GROUP: usize = 24;
const OPTC_MCAST_PORT: usize = 25;
const OPTC_MCAST_TTL: usize = 26;
const OPTC_SYNC_MAXLEN: usize = 27;
const OPTC_TUN_INFO: usize = 28;
const OPTC_TUN_TYPE: usize = 29;
const OPTC_TUN_PORT: usize = 30;
const OPTC_TUN_NOCSUM: usize = 31;
const OPTC_TUN_CSUM: usize = 32;
const OPTC_TUN_REMCSUM: usize = 33;
const NUMBER_OF_OPT: usize = 34;

const OPT_NAMES: [&str; NUMBER_OF_OPT] = [
    "numeric",
    "connection",
    "service-address",
    "scheduler",
    "persistent",
    "netmask",
    "real-server",
    "forwarding-method",
    "weight",
    "u-threshold",
    "l-threshold",
    "mcast-interface",
    "timeout",
    "daemon",
    "stats",
    "rate",
    "thresholds",
    "persistent-conn",
    "nosort",
    "syncid",
    "exact",
    "ops",
    "pe",
    "sched-flags",
    "mcast-group",
    "mcast-port",
    "mcast-ttl",
    "sync-maxlen",
    "tun-info",
    "tun-type",
    "tun-port",
    "tun-nocsum",
    "tun-csum",
    "tun-remcsum",
];

/// Legal option use per command, one character per option column above:
/// '+' required, 'x' illegal, '1' at most one of the '1' options, ' ' optional.
const COMMANDS_V_OPTIONS: [&[u8; NUMBER_OF_OPT]; 14] = [
    // n  c  svc s  p  M  r  fwd w x y mc tot dmn st rt thr pc srt sid ex ops pe b grp prt ttl len tinf type tprt nocs csum remc
    b"xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx", // add-service
    b"xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx", // edit-service
    b"xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // delete-service
    b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // flush
    b" 11xxxxxxxxx11       xxxxxxx xxxxx", // list
    b"xx+xxx+    xxxxxxxxxxxxxxxxxx     ", // add-server
    b"xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxx", // delete-server
    b"xx+xxx+    xxxxxxxxxxxxxxxxxx     ", // edit-server
    b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // set
    b"xxxxxxxxxxx xxxxxxx xxxx    xxxxxx", // start-daemon
    b"xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxx", // stop-daemon
    b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // restore
    b" xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // save
    b"xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // zero
];

const TUN_NAMES: [&str; 3] = ["ipip", "gue", "gre"];
/// Tunnel option columns: tun-port, tun-nocsum, tun-csum, tun-remcsum.
const TUN_OPTS: [usize; 4] = [
    OPTC_TUN_PORT,
    OPTC_TUN_NOCSUM,
    OPTC_TUN_CSUM,
    OPTC_TUN_REMCSUM,
];
const TUNNEL_TYPES_V_OPTIONS: [&[u8; 4]; 3] = [
    b"xxxx", // ipip
    b"+111", // gue
    b"x11x", // gre
];

// ---------------------------------------------------------------------------------------------
// the parser proper

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Af {
    V4,
    V6,
}

/// Result of ipvsadm's `parse_service`.
struct Endpoint {
    af: Af,
    addr: Ipv4Addr,
    port: Option<u16>,
}

struct Parser<'a> {
    program: &'a str,
    popt: Popt<'a>,
    names: &'a dyn Names,
    cmd: Option<Cmd>,
    options: u64,
    format: ListFormat,
    // service
    proto: Option<ServiceProto>,
    svc_af: Af,
    svc_addr: Ipv4Addr,
    svc_port: u16,
    fwmark: u32,
    sched: String,
    sched_flags: u32,
    sched_flags_arg: Option<String>,
    persistent: Option<u32>,
    netmask: Ipv4Addr,
    pe: Option<String>,
    ops: bool,
    // real server
    dest_af: Af,
    dest_addr: Ipv4Addr,
    dest_port: u16,
    fwd: Fwd,
    weight: i32,
    u_threshold: u32,
    l_threshold: u32,
    tun_type: TunType,
    tun_port: u16,
    tun_flags: u8,
    // daemon
    daemon_state: DaemonState,
    mcast_ifn: Option<String>,
    syncid: Option<u32>,
    sync_maxlen: Option<u32>,
    mcast_group: Option<String>,
    mcast_port: Option<u16>,
    mcast_ttl: Option<u8>,
    timeouts: TimeoutTriple,
}

impl<'a> Parser<'a> {
    fn new(program: &'a str, args: &'a [String], names: &'a dyn Names) -> Parser<'a> {
        Parser {
            program,
            popt: Popt::new(args),
            names,
            cmd: None,
            options: 0,
            format: ListFormat::default(),
            proto: None,
            svc_af: Af::V4,
            svc_addr: Ipv4Addr::UNSPECIFIED,
            svc_port: 0,
            fwmark: 0,
            sched: String::new(),
            sched_flags: 0,
            sched_flags_arg: None,
            persistent: None,
            netmask: Ipv4Addr::BROADCAST,
            pe: None,
            ops: false,
            dest_af: Af::V4,
            dest_addr: Ipv4Addr::UNSPECIFIED,
            dest_port: 0,
            fwd: Fwd::Route,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            tun_type: TunType::Ipip,
            tun_port: 0,
            tun_flags: 0,
            daemon_state: DaemonState::Master,
            mcast_ifn: None,
            syncid: None,
            sync_maxlen: None,
            mcast_group: None,
            mcast_port: None,
            mcast_ttl: None,
            timeouts: TimeoutTriple {
                tcp: 0,
                tcpfin: 0,
                udp: 0,
            },
        }
    }

    fn tryhelp(&self) -> ParseError {
        ParseError::popt(format!(
            "Try `{p} -h' or '{p} --help' for more information.",
            p = self.program
        ))
    }

    fn set_option(&mut self, optc: usize) -> Result<(), ParseError> {
        let bit = 1u64 << optc;
        if self.options & bit != 0 {
            let name = OPT_NAMES.get(optc).copied().unwrap_or("");
            return Err(ParseError::fail(format!(
                "multiple '{}' options specified",
                name
            )));
        }
        self.options |= bit;
        Ok(())
    }

    fn has(&self, optc: usize) -> bool {
        self.options & (1u64 << optc) != 0
    }

    fn run(mut self) -> Result<Command, ParseError> {
        // The first option must be the command.
        let first = match self.popt.next_opt() {
            Ok(Some(o)) => o,
            Ok(None) | Err(_) => return Err(self.tryhelp()),
        };
        let (opt, arg) = first;
        let cmd = match opt {
            Opt::AddService => Cmd::Add,
            Opt::EditService => Cmd::Edit,
            Opt::DeleteService => Cmd::Del,
            Opt::AddServer => Cmd::AddDest,
            Opt::EditServer => Cmd::EditDest,
            Opt::DeleteServer => Cmd::DelDest,
            Opt::Clear => Cmd::Flush,
            Opt::List => Cmd::List,
            Opt::Zero => Cmd::Zero,
            Opt::Set => Cmd::Timeout,
            Opt::Restore => Cmd::Restore,
            Opt::Save => Cmd::Save,
            Opt::StartDaemon | Opt::StopDaemon => {
                let start = opt == Opt::StartDaemon;
                self.daemon_state = match arg.as_deref() {
                    Some("master") => DaemonState::Master,
                    Some("backup") => DaemonState::Backup,
                    _ if start => {
                        return Err(ParseError::fail("illegal start-daemon parameter specified"))
                    }
                    // sic: ipvsadm's message for --stop-daemon.
                    _ => return Err(ParseError::fail("illegal start_daemon specified")),
                };
                if start {
                    Cmd::StartDaemon
                } else {
                    Cmd::StopDaemon
                }
            }
            Opt::Help => {
                return Ok(Command::Help {
                    program: self.program.to_string(),
                })
            }
            Opt::Version => return Ok(Command::Version),
            _ => return Err(self.tryhelp()),
        };
        self.cmd = Some(cmd);

        loop {
            match self.popt.next_opt() {
                Ok(Some((opt, arg))) => self.option(opt, arg)?,
                Ok(None) => break,
                Err(e) => {
                    return Err(ParseError::popt(format!(
                        "{}: {}",
                        self.popt.current_arg(),
                        e.text()
                    )))
                }
            }
        }

        let mut leftovers = std::mem::take(&mut self.popt.leftovers).into_iter();
        if cmd == Cmd::Timeout {
            let (Some(a), Some(b), Some(c)) =
                (leftovers.next(), leftovers.next(), leftovers.next())
            else {
                return Err(ParseError::fail("--set option requires 3 timeout values"));
            };
            self.timeouts = TimeoutTriple {
                tcp: parse_timeout(&a, 0, MAX_TIMEOUT)?,
                tcpfin: parse_timeout(&b, 0, MAX_TIMEOUT)?,
                udp: parse_timeout(&c, 0, MAX_TIMEOUT)?,
            };
        }
        if let Some(extra) = leftovers.next() {
            return Err(ParseError::fail(format!("unexpected argument {}", extra)));
        }

        if let Some(arg) = self.sched_flags_arg.take() {
            if !arg.is_empty() {
                let sched = if self.sched.is_empty() {
                    rvs_lb::sched::DEFAULT_SCHEDULER
                } else {
                    self.sched.as_str()
                };
                self.sched_flags = parse_sched_flags(sched, &arg)?;
            }
        }

        self.process(cmd)
    }

    fn option(&mut self, opt: Opt, arg: Option<String>) -> Result<(), ParseError> {
        let a = arg.clone().unwrap_or_default();
        match opt {
            Opt::Tcp | Opt::Udp | Opt::Sctp => {
                self.set_option(OPTC_SERVICE)?;
                let proto = match opt {
                    Opt::Tcp => ServiceProto::Tcp,
                    Opt::Udp => ServiceProto::Udp,
                    _ => ServiceProto::Sctp,
                };
                self.proto = Some(proto);
                let Some(ep) = parse_service(&a, Some(proto), self.names) else {
                    return Err(ParseError::fail(
                        "illegal virtual server address[:port] specified",
                    ));
                };
                self.svc_af = ep.af;
                self.svc_addr = ep.addr;
                if let Some(p) = ep.port {
                    self.svc_port = p;
                }
            }
            Opt::Fwmark => {
                self.set_option(OPTC_SERVICE)?;
                // ipvsadm stores TCP/IPv4 for fwmark services.
                self.svc_af = Af::V4;
                self.proto = Some(ServiceProto::Tcp);
                self.fwmark = parse_fwmark(&a)?;
            }
            Opt::Scheduler => {
                self.set_option(OPTC_SCHEDULER)?;
                self.sched = truncate_bytes(&a, 15).to_string();
            }
            Opt::Persistent => {
                self.set_option(OPTC_PERSISTENT)?;
                self.persistent = Some(match &arg {
                    None => DEFAULT_PERSISTENT_TIMEOUT,
                    Some(v) => parse_timeout(v, 1, MAX_TIMEOUT)?,
                });
            }
            Opt::Netmask => {
                self.set_option(OPTC_NETMASK)?;
                if self.svc_af != Af::V6 {
                    let m = inet_aton(&a).or_else(|| {
                        if a.is_empty() {
                            None
                        } else {
                            self.names.host_to_addr(&a)
                        }
                    });
                    match m {
                        Some(m) => self.netmask = m,
                        None => {
                            return Err(ParseError::fail(
                                "illegal virtual server persistent mask specified",
                            ))
                        }
                    }
                } else if !(1..=128).contains(&c_atoi(&a)) {
                    return Err(ParseError::fail("illegal ipv6 netmask specified"));
                }
            }
            Opt::RealServer => {
                self.set_option(OPTC_SERVER)?;
                // ipvsadm parses into a copy of the service: the service's protocol picks the
                // services table, and a missing port copies the vport known at this moment.
                let Some(ep) = parse_service(&a, self.proto, self.names) else {
                    return Err(ParseError::fail(
                        "illegal real server address[:port] specified",
                    ));
                };
                self.dest_af = ep.af;
                self.dest_addr = ep.addr;
                self.dest_port = ep.port.unwrap_or(self.svc_port);
            }
            Opt::Ipip | Opt::Gatewaying | Opt::Masq => {
                self.set_option(OPTC_FORWARD)?;
                self.fwd = match opt {
                    Opt::Ipip => Fwd::Tunnel,
                    Opt::Gatewaying => Fwd::Route,
                    _ => Fwd::Masq,
                };
            }
            Opt::Weight => {
                self.set_option(OPTC_WEIGHT)?;
                self.weight = string_to_number(&a, 0, i64::from(i32::MAX))
                    .and_then(|v| i32::try_from(v).ok())
                    .ok_or_else(|| ParseError::fail("illegal weight specified"))?;
            }
            Opt::UThreshold => {
                self.set_option(OPTC_UTHRESHOLD)?;
                self.u_threshold = to_u32(string_to_number(&a, 0, i64::from(i32::MAX)))
                    .ok_or_else(|| ParseError::fail("illegal u_threshold specified"))?;
            }
            Opt::LThreshold => {
                self.set_option(OPTC_LTHRESHOLD)?;
                self.l_threshold = to_u32(string_to_number(&a, 0, i64::from(i32::MAX)))
                    .ok_or_else(|| ParseError::fail("illegal l_threshold specified"))?;
            }
            Opt::Connection => self.set_option(OPTC_CONNECTION)?,
            Opt::Numeric => {
                self.set_option(OPTC_NUMERIC)?;
                self.format.numeric = true;
            }
            Opt::McastInterface => {
                self.set_option(OPTC_MCAST)?;
                self.mcast_ifn = Some(truncate_bytes(&a, 15).to_string());
            }
            Opt::SyncId => {
                self.set_option(OPTC_SYNCID)?;
                self.syncid = Some(
                    to_u32(string_to_number(&a, 0, 255))
                        .ok_or_else(|| ParseError::fail("illegal syncid specified"))?,
                );
            }
            Opt::Timeout => self.set_option(OPTC_TIMEOUT)?,
            Opt::Daemon => self.set_option(OPTC_DAEMON)?,
            Opt::Stats => {
                self.set_option(OPTC_STATS)?;
                self.format.stats = true;
            }
            Opt::Rate => {
                self.set_option(OPTC_RATE)?;
                self.format.rate = true;
            }
            Opt::Thresholds => {
                self.set_option(OPTC_THRESHOLDS)?;
                self.format.thresholds = true;
            }
            Opt::PersistentConn => {
                self.set_option(OPTC_PERSISTENTCONN)?;
                self.format.persistent_conn = true;
            }
            Opt::NoSort => {
                self.set_option(OPTC_NOSORT)?;
                self.format.nosort = true;
            }
            // Sorting is the default; --sort is accepted for compatibility and may repeat.
            Opt::Sort => {}
            Opt::Exact => {
                self.set_option(OPTC_EXACT)?;
                self.format.exact = true;
            }
            Opt::Ipv6 => {
                if self.fwmark != 0 {
                    self.svc_af = Af::V6;
                } else {
                    // sic: ipvsadm's message ends with its own newline.
                    return Err(ParseError::fail("-6 used before -f\n"));
                }
            }
            Opt::Ops => {
                self.set_option(OPTC_ONEPACKET)?;
                self.ops = true;
            }
            Opt::Pe => {
                self.set_option(OPTC_PE)?;
                self.pe = Some(truncate_bytes(&a, 15).to_string());
            }
            Opt::SchedFlags => {
                self.set_option(OPTC_SCHED_FLAGS)?;
                self.sched_flags_arg = Some(truncate_bytes(&a, 127).to_string());
            }
            Opt::McastGroup => {
                self.set_option(OPTC_MCAST_GROUP)?;
                if a.contains(':') {
                    match a.parse::<Ipv6Addr>() {
                        Ok(g) if g.is_multicast() => {}
                        _ => {
                            return Err(ParseError::fail(format!(
                                "invalid IPv6 mcast-group `{}'",
                                a
                            )))
                        }
                    }
                } else {
                    match a.parse::<Ipv4Addr>() {
                        Ok(g) if g.is_multicast() => {}
                        _ => {
                            return Err(ParseError::fail(format!(
                                "invalid IPv4 mcast-group `{}'",
                                a
                            )))
                        }
                    }
                }
                self.mcast_group = Some(a);
            }
            Opt::McastPort => {
                self.set_option(OPTC_MCAST_PORT)?;
                self.mcast_port = Some(
                    string_to_number(&a, 1, 65535)
                        .and_then(|v| u16::try_from(v).ok())
                        .ok_or_else(|| ParseError::fail("illegal mcast-port specified"))?,
                );
            }
            Opt::McastTtl => {
                self.set_option(OPTC_MCAST_TTL)?;
                self.mcast_ttl = Some(
                    string_to_number(&a, 1, 255)
                        .and_then(|v| u8::try_from(v).ok())
                        .ok_or_else(|| ParseError::fail("illegal mcast-ttl specified"))?,
                );
            }
            Opt::SyncMaxlen => {
                self.set_option(OPTC_SYNC_MAXLEN)?;
                // 65535 minus the IPv4 and UDP headers.
                self.sync_maxlen = Some(
                    to_u32(string_to_number(&a, 1, 65535 - 20 - 8))
                        .ok_or_else(|| ParseError::fail("illegal sync-maxlen specified"))?,
                );
            }
            Opt::TunInfo => {
                self.set_option(OPTC_TUN_INFO)?;
                self.format.tun_info = true;
            }
            Opt::TunType => {
                self.set_option(OPTC_TUN_TYPE)?;
                self.tun_type = match a.as_str() {
                    "ipip" => TunType::Ipip,
                    "gue" => TunType::Gue,
                    "gre" => TunType::Gre,
                    _ => return Err(ParseError::fail("illegal tunnel type specified")),
                };
            }
            Opt::TunPort => {
                self.set_option(OPTC_TUN_PORT)?;
                self.tun_port = string_to_number(&a, 1, 65535)
                    .and_then(|v| u16::try_from(v).ok())
                    .ok_or_else(|| ParseError::fail("illegal tunnel port specified"))?;
            }
            Opt::TunNocsum => self.set_option(OPTC_TUN_NOCSUM)?,
            Opt::TunCsum => {
                self.set_option(OPTC_TUN_CSUM)?;
                self.tun_flags |= 1;
            }
            Opt::TunRemcsum => {
                self.set_option(OPTC_TUN_REMCSUM)?;
                self.tun_flags |= 2;
            }
            // Commands, -h and -v after the first option.
            Opt::AddService
            | Opt::EditService
            | Opt::DeleteService
            | Opt::Clear
            | Opt::List
            | Opt::Zero
            | Opt::AddServer
            | Opt::EditServer
            | Opt::DeleteServer
            | Opt::Set
            | Opt::Help
            | Opt::Version
            | Opt::Restore
            | Opt::Save
            | Opt::StartDaemon
            | Opt::StopDaemon => {
                return Err(ParseError::fail(format!(
                    "invalid option `{}'",
                    self.popt.current_arg()
                )))
            }
        }
        Ok(())
    }

    /// ipvsadm's `generic_opt_check`: columns in order, the first violation reports.
    fn generic_opt_check(&self, cmd: Cmd) -> Result<(), ParseError> {
        let Some(row) = COMMANDS_V_OPTIONS.get(cmd.index()) else {
            return Ok(());
        };
        let mut last: Option<usize> = None;
        for (j, &rule) in row.iter().enumerate() {
            let name = OPT_NAMES.get(j).copied().unwrap_or("");
            if !self.has(j) {
                if rule == b'+' {
                    return Err(ParseError::fail(format!(
                        "You need to supply the '{}' option for the '{}' command",
                        name,
                        cmd.name()
                    )));
                }
            } else if rule == b'x' {
                return Err(ParseError::fail(format!(
                    "Illegal '{}' option with the '{}' command",
                    name,
                    cmd.name()
                )));
            } else if rule == b'1' {
                match last {
                    None => last = Some(j),
                    Some(l) => {
                        return Err(ParseError::fail(format!(
                            "The option '{}' conflicts with the '{}' option in the '{}' command",
                            name,
                            OPT_NAMES.get(l).copied().unwrap_or(""),
                            cmd.name()
                        )))
                    }
                }
            }
        }
        Ok(())
    }

    /// ipvsadm's `tunnel_opt_check` for the chosen tunnel type.
    fn tunnel_opt_check(&self) -> Result<(), ParseError> {
        let t = match self.tun_type {
            TunType::Ipip => 0,
            TunType::Gue => 1,
            TunType::Gre => 2,
        };
        let (Some(row), Some(tname)) = (TUNNEL_TYPES_V_OPTIONS.get(t), TUN_NAMES.get(t)) else {
            return Ok(());
        };
        let mut last: Option<usize> = None;
        for (&k, &rule) in TUN_OPTS.iter().zip(row.iter()) {
            let name = OPT_NAMES.get(k).copied().unwrap_or("");
            if !self.has(k) {
                if rule == b'+' {
                    return Err(ParseError::fail(format!(
                        "You need to supply the '{}' option for the '{}' tunnel type",
                        name, tname
                    )));
                }
            } else if rule == b'x' {
                return Err(ParseError::fail(format!(
                    "Illegal '{}' option with the '{}' tunnel type",
                    name, tname
                )));
            } else if rule == b'1' {
                match last {
                    None => last = Some(k),
                    Some(l) => {
                        return Err(ParseError::fail(format!(
                        "The option '{}' conflicts with the '{}' option in the '{}' tunnel type",
                        name,
                        OPT_NAMES.get(l).copied().unwrap_or(""),
                        tname
                    )))
                    }
                }
            }
        }
        Ok(())
    }

    fn service_key(&self) -> ServiceKey {
        if self.fwmark != 0 {
            return ServiceKey {
                proto: ServiceProto::Fwmark,
                addr: Ipv4Addr::UNSPECIFIED,
                port: 0,
                fwmark: self.fwmark,
            };
        }
        ServiceKey {
            proto: self.proto.unwrap_or(ServiceProto::Tcp),
            addr: self.svc_addr,
            port: self.svc_port,
            fwmark: 0,
        }
    }

    /// ipvsadm's `process_options` after parsing: legality, then per-command rules.
    fn process(mut self, cmd: Cmd) -> Result<Command, ParseError> {
        self.generic_opt_check(cmd)?;

        if matches!(cmd, Cmd::Add | Cmd::Edit) {
            if self.fwmark == 0 && self.svc_port == 0 && self.persistent.is_none() {
                return Err(ParseError::fail(
                    "Zero port specified for non-persistent service",
                ));
            }
            if self.ops && self.fwmark == 0 && self.proto != Some(ServiceProto::Udp) {
                return Err(ParseError::fail(
                    "One-Packet Scheduling is only for UDP virtual services",
                ));
            }
            if self.sched.is_empty() {
                self.sched = rvs_lb::sched::DEFAULT_SCHEDULER.to_string();
            }
        }

        if matches!(cmd, Cmd::AddDest | Cmd::EditDest) {
            // Direct routing and tunnelling cannot change the port.
            if self.fwmark == 0 && matches!(self.fwd, Fwd::Tunnel | Fwd::Route) {
                self.dest_port = self.svc_port;
            }
            if self.dest_af != self.svc_af && self.fwd != Fwd::Tunnel {
                return Err(ParseError::fail(
                    "Different address family is allowed only for tunneling servers",
                ));
            }
            let tun_opts = [
                OPTC_TUN_TYPE,
                OPTC_TUN_PORT,
                OPTC_TUN_NOCSUM,
                OPTC_TUN_CSUM,
                OPTC_TUN_REMCSUM,
            ];
            if tun_opts.iter().any(|&o| self.has(o)) && self.fwd != Fwd::Tunnel {
                return Err(ParseError::fail(
                    "Tunnel options conflict with forward method",
                ));
            }
            self.tunnel_opt_check()?;
        }

        if cmd == Cmd::List {
            let one_of = |p: &Parser, opts: &[usize]| opts.iter().any(|&o| p.has(o));
            if (one_of(&self, &[OPTC_CONNECTION, OPTC_TIMEOUT, OPTC_DAEMON])
                && one_of(&self, &[OPTC_STATS, OPTC_RATE, OPTC_THRESHOLDS]))
                || (one_of(&self, &[OPTC_TIMEOUT, OPTC_DAEMON]) && self.has(OPTC_PERSISTENTCONN))
            {
                return Err(ParseError::fail("options conflicts in the list command"));
            }
        }

        // rvs has no IPv6: refuse as ipvsadm does over a kernel interface without it.
        let uses_v6 = (self.has(OPTC_SERVICE) && self.svc_af == Af::V6)
            || (self.has(OPTC_SERVER) && self.dest_af == Af::V6);
        if uses_v6 {
            // Listing failures exit 1 in ipvsadm; everything else that reaches the kernel 255.
            return Err(ParseError {
                message: "Operation not supported with specified address family".to_string(),
                exit_code: if cmd == Cmd::List { 1 } else { EXIT_POPT },
            });
        }

        let key = self.service_key();
        let svc_given = self.has(OPTC_SERVICE);
        Ok(match cmd {
            Cmd::Add | Cmd::Edit => {
                let spec = ServiceSpec {
                    key,
                    sched: self.sched.clone(),
                    flags: self.sched_flags,
                    persistent: self.persistent,
                    netmask: self.netmask,
                    pe: self.pe.clone(),
                    ops: self.ops,
                };
                if cmd == Cmd::Add {
                    Command::AddService(spec)
                } else {
                    Command::EditService(spec)
                }
            }
            Cmd::Del => Command::DeleteService(key),
            Cmd::Flush => Command::Flush,
            Cmd::AddDest | Cmd::EditDest | Cmd::DelDest => {
                let tunnel = (self.fwd == Fwd::Tunnel).then_some(TunnelInfo {
                    tun_type: self.tun_type,
                    port: self.tun_port,
                    csum: match self.tun_flags {
                        0 => TunCsum::NoCsum,
                        1 => TunCsum::Csum,
                        _ => TunCsum::RemCsum,
                    },
                });
                let dest = DestSpec {
                    addr: self.dest_addr,
                    port: self.dest_port,
                    fwd: self.fwd,
                    weight: self.weight,
                    u_threshold: self.u_threshold,
                    l_threshold: self.l_threshold,
                    tunnel,
                };
                match cmd {
                    Cmd::AddDest => Command::AddDest(key, dest),
                    Cmd::EditDest => Command::EditDest(key, dest),
                    _ => Command::DeleteDest(key, dest),
                }
            }
            Cmd::List => {
                let target = if self.has(OPTC_CONNECTION) {
                    ListTarget::Connections
                } else if svc_given {
                    ListTarget::Service(key)
                } else if self.has(OPTC_TIMEOUT) {
                    ListTarget::Timeout
                } else if self.has(OPTC_DAEMON) {
                    ListTarget::Daemon
                } else {
                    ListTarget::All
                };
                Command::List(ListOpts {
                    target,
                    format: self.format,
                })
            }
            Cmd::Save => Command::Save {
                numeric: self.format.numeric,
            },
            Cmd::Zero => Command::Zero(svc_given.then_some(key)),
            Cmd::Timeout => Command::SetTimeouts(self.timeouts),
            Cmd::Restore => Command::Restore,
            Cmd::StartDaemon | Cmd::StopDaemon => {
                let spec = DaemonSpec {
                    state: self.daemon_state,
                    mcast_ifn: self.mcast_ifn.clone().unwrap_or_else(|| {
                        if cmd == Cmd::StartDaemon {
                            "eth0".to_string()
                        } else {
                            String::new()
                        }
                    }),
                    syncid: self.syncid,
                    sync_maxlen: self.sync_maxlen,
                    mcast_group: self.mcast_group.clone(),
                    mcast_port: self.mcast_port,
                    mcast_ttl: self.mcast_ttl,
                };
                if cmd == Cmd::StartDaemon {
                    Command::StartDaemon(spec)
                } else {
                    Command::StopDaemon(spec)
                }
            }
        })
    }
}

fn to_u32(v: Option<i64>) -> Option<u32> {
    v.and_then(|v| u32::try_from(v).ok())
}

/// `parse_timeout`: a whole decimal in `min..=max`.
fn parse_timeout(s: &str, min: u32, max: u32) -> Result<u32, ParseError> {
    to_u32(string_to_number(s, i64::from(min), i64::from(max)))
        .ok_or_else(|| ParseError::fail(format!("invalid timeout value `{}' specified", s)))
}

/// `parse_fwmark`: 1..=u32::MAX, whole string.
fn parse_fwmark(s: &str) -> Result<u32, ParseError> {
    super::names::c_strtol(s)
        .filter(|&v| v > 0)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| ParseError::fail(format!("invalid fwmark value `{}' specified", s)))
}

/// `parse_sched_flags`: comma list (empty items skipped); sh-* and mh-* need that scheduler.
fn parse_sched_flags(sched: &str, arg: &str) -> Result<u32, ParseError> {
    let mut flags = 0u32;
    let mut any = false;
    for flag in arg.split(',').filter(|f| !f.is_empty()) {
        any = true;
        let (bit, needs) = match flag {
            "flag-1" => (SVC_F_SCHED1, None),
            "flag-2" => (SVC_F_SCHED2, None),
            "flag-3" => (SVC_F_SCHED3, None),
            "sh-fallback" => (SVC_F_SCHED1, Some("sh")),
            "sh-port" => (SVC_F_SCHED2, Some("sh")),
            "mh-fallback" => (SVC_F_SCHED1, Some("mh")),
            "mh-port" => (SVC_F_SCHED2, Some("mh")),
            _ => {
                return Err(ParseError::fail(format!(
                    "invalid scheduler flag `{}'",
                    flag
                )))
            }
        };
        if needs.is_some_and(|n| n != sched) {
            return Err(ParseError::fail(format!(
                "incompatible scheduler flag `{}'",
                flag
            )));
        }
        flags |= bit;
    }
    if !any {
        // ipvsadm crashes on a list of only commas; rvsadm refuses it.
        return Err(ParseError::fail(format!(
            "invalid scheduler flag `{}'",
            arg
        )));
    }
    Ok(flags & SVC_F_SCHED_MASK)
}

/// ipvsadm's `parse_service`: `host[:port]` or `[v6addr]:port`. Numbers come first (whole-string
/// decimal port, `inet_aton` address), then names through `names`. A digits-only string is
/// refused (it is a port, not a host).
fn parse_service(buf: &str, proto: Option<ServiceProto>, names: &dyn Names) -> Option<Endpoint> {
    if buf.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut host = buf;
    let mut port_str: Option<&str> = None;
    if let Some(inner) = buf.strip_prefix('[') {
        let (h, rest) = inner.split_once(']')?;
        let p = rest.strip_prefix(':')?;
        host = h;
        port_str = Some(p);
    }
    let (af, addr) = if host.parse::<Ipv6Addr>().is_ok() {
        (Af::V6, Ipv4Addr::UNSPECIFIED)
    } else {
        // ipvsadm searches the last ':' again here, so "[1.2.3.4]:80" loses its port.
        match host.rfind(':') {
            Some(i) => {
                port_str = host.get(i + 1..);
                host = host.get(..i).unwrap_or("");
            }
            None => port_str = None,
        }
        let a = inet_aton(host).or_else(|| {
            if host.is_empty() {
                None
            } else {
                names.host_to_addr(host)
            }
        })?;
        (Af::V4, a)
    };
    let port = match port_str {
        None => None,
        Some(p) => Some(
            string_to_number(p, 0, 65535)
                .and_then(|v| u16::try_from(v).ok())
                .or_else(|| proto.and_then(|pr| names.service_to_port(p, pr)))?,
        ),
    };
    Some(Endpoint { af, addr, port })
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
