//! popt emulation: ipvsadm 1.31's option table and popt's scanning of it, apart from the parser
//! because it knows only option names and arguments, not what they mean:
//! - short options cluster (`-Ln`, `-lnc`); an option needing a value takes the rest of the
//!   cluster (`-t10.0.0.1:80`, `-s=rr` strips the `=`) or else the next argument, whatever it
//!   looks like (`-s -p` sets the scheduler to "-p");
//! - `-p` has an optional value: the rest of the cluster (`-p60`, `-p=60`), `--persistent=60`,
//!   or the next argument unless it starts with '-';
//! - long options match exactly (`--sched` is unknown), `--` ends options, non-option words are
//!   collected and only `--set` consumes them.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArgKind {
    None,
    Required,
    Optional,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Opt {
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
pub(super) enum PoptError {
    BadOpt,
    NoArg,
    UnwantedArg,
}

impl PoptError {
    pub(super) fn text(self) -> &'static str {
        match self {
            PoptError::BadOpt => "unknown option",
            PoptError::NoArg => "missing argument",
            PoptError::UnwantedArg => "option does not take an argument",
        }
    }
}

pub(super) struct Popt<'a> {
    args: &'a [String],
    next: usize,
    /// (argument index, byte offset) of the rest of a short-option cluster.
    cluster: Option<(usize, usize)>,
    ended: bool,
    pub(super) leftovers: Vec<String>,
    /// Index of the argument the last option came from (popt's "bad option" text).
    current: usize,
}

impl<'a> Popt<'a> {
    pub(super) fn new(args: &'a [String]) -> Popt<'a> {
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
    pub(super) fn current_arg(&self) -> &str {
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

    pub(super) fn next_opt(&mut self) -> Result<Option<(Opt, Option<String>)>, PoptError> {
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
