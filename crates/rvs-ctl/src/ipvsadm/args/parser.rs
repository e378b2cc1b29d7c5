//! The parser proper: ipvsadm's command-then-options loop and what each option sets, driving
//! `popt` for the scanning and leaving the after-parse checks to its child `process`:
//! - the first option must be a command (`-A -E -D -C -R -S -a -e -d -L -l -Z --set
//!   --start-daemon --stop-daemon`) or `-h`/`-v`; anything else prints the "Try ..." hint (255);
//! - a later command letter is "invalid option `-X'" (exit 2): ipvsadm never reaches its
//!   "multiple commands specified" message, so neither does rvsadm;
//! - options are processed in order, so the first failing one reports.

mod process;

use super::legality::{
    Cmd, OPTC_CONNECTION, OPTC_DAEMON, OPTC_EXACT, OPTC_FORWARD, OPTC_LTHRESHOLD, OPTC_MCAST,
    OPTC_MCAST_GROUP, OPTC_MCAST_PORT, OPTC_MCAST_TTL, OPTC_NETMASK, OPTC_NOSORT, OPTC_NUMERIC,
    OPTC_ONEPACKET, OPTC_PE, OPTC_PERSISTENT, OPTC_PERSISTENTCONN, OPTC_RATE, OPTC_SCHEDULER,
    OPTC_SCHED_FLAGS, OPTC_SERVER, OPTC_SERVICE, OPTC_STATS, OPTC_SYNCID, OPTC_SYNC_MAXLEN,
    OPTC_THRESHOLDS, OPTC_TIMEOUT, OPTC_TUN_CSUM, OPTC_TUN_INFO, OPTC_TUN_NOCSUM, OPTC_TUN_PORT,
    OPTC_TUN_REMCSUM, OPTC_TUN_TYPE, OPTC_UTHRESHOLD, OPTC_WEIGHT, OPT_NAMES,
};
use super::popt::{Opt, Popt};
use super::values::{parse_fwmark, parse_sched_flags, parse_service, parse_timeout, to_u32, Af};
use super::{Command, ParseError, DEFAULT_PERSISTENT_TIMEOUT, MAX_TIMEOUT};
use crate::ipvsadm::format::ListFormat;
use crate::ipvsadm::names::{c_atoi, inet_aton, string_to_number, truncate_bytes, Names};
use crate::model::{DaemonState, Fwd, ServiceProto, TimeoutTriple, TunType};
use std::net::{Ipv4Addr, Ipv6Addr};

pub(super) struct Parser<'a> {
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
    pub(super) fn new(program: &'a str, args: &'a [String], names: &'a dyn Names) -> Parser<'a> {
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

    pub(super) fn run(mut self) -> Result<Command, ParseError> {
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
}
