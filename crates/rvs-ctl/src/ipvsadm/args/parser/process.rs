//! ipvsadm's `process_options` after parsing: the legality tables, the per-command rules, the
//! IPv6 refusal and building the [`Command`]. Apart from the option loop because it runs once,
//! on what the loop collected.

use super::Parser;
use crate::ipvsadm::args::legality::{
    Cmd, COMMANDS_V_OPTIONS, OPTC_CONNECTION, OPTC_DAEMON, OPTC_PERSISTENTCONN, OPTC_RATE,
    OPTC_SERVER, OPTC_SERVICE, OPTC_STATS, OPTC_THRESHOLDS, OPTC_TIMEOUT, OPTC_TUN_CSUM,
    OPTC_TUN_NOCSUM, OPTC_TUN_PORT, OPTC_TUN_REMCSUM, OPTC_TUN_TYPE, OPT_NAMES,
    TUNNEL_TYPES_V_OPTIONS, TUN_NAMES, TUN_OPTS,
};
use crate::ipvsadm::args::values::Af;
use crate::ipvsadm::args::{
    Command, DaemonSpec, DestSpec, ListOpts, ListTarget, ParseError, ServiceKey, ServiceSpec,
    EXIT_POPT,
};
use crate::model::{Fwd, ServiceProto, TunCsum, TunType, TunnelInfo};
use std::net::Ipv4Addr;

impl Parser<'_> {
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
    pub(super) fn process(mut self, cmd: Cmd) -> Result<Command, ParseError> {
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
