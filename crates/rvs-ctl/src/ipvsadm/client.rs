//! What `rvsadm` does with a parsed command: the requests it sends over the control socket and
//! what it prints. Pure apart from the `call` and `read_stdin` callbacks, so tests run the exact
//! client logic against an in-memory handler.

use super::args::{Command, ListTarget};
use super::format;
use super::names::{Names, NumericNames};
use super::restore::parse_restore_with;
use crate::model::{ConnEntry, ListSnapshot, MarkRuleEntry, TimeoutTriple};
use crate::proto::{request_of, DestRef, Request, Response, ServiceRef};
use serde::de::DeserializeOwned;

/// rvs options `rvsadm` accepts besides ipvsadm's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientOpts {
    /// `--json`: listings print the reply's JSON instead of ipvsadm's text.
    pub json: bool,
    /// `--expire-conns` (with `-d`): also end the real server's connections.
    pub expire_conns: bool,
}

/// What rvsadm prints and the status it exits with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

impl Outcome {
    fn out(stdout: String) -> Outcome {
        Outcome {
            stdout,
            ..Outcome::default()
        }
    }

    pub fn fail(message: &str, code: i32) -> Outcome {
        Outcome {
            stdout: String::new(),
            stderr: format!("{message}\n"),
            code,
        }
    }
}

/// Sends one request; `Err` is a transport failure, already as rvsadm reports it.
pub type Call<'a> = &'a mut dyn FnMut(&Request) -> Result<Response, Outcome>;

/// rvs additions to `-h`.
pub const EXTRAS_USAGE: &str = "
rvs extras:
  {P} --add-mark -f fwmark -t|-u address[:port[-port]]
                                      add a firewall-mark rule: matching packets go to
                                      the -f fwmark service
  {P} --del-mark -f fwmark -t|-u address[:port[-port]]
                                      delete a firewall-mark rule
  {P} --list-marks                    list the rules (as --add-mark lines, for -R)
  {P} -d virtual-service -r server-address --expire-conns
                                      delete a real server (if still there) and end its
                                      connections
  {P} --stats-ports                   per-port and per-worker counters
  {P} --neigh                         neighbour (ARP) tables
  {P} --list-checks                   health checkers: state, last result, last change
  {P} --reload-checks                 re-read the checks file, apply the difference (SIGHUP)
  --json                              listings as JSON
  --socket path                       control socket (default /run/rvs/rvs.sock, $RVS_SOCKET)
rvs forwards by masquerading only: give -m with -a/-e (ipvsadm's default is -g).
";

fn ok_data<T: DeserializeOwned>(r: Response) -> Result<(T, serde_json::Value), Outcome> {
    if !r.ok {
        return Err(Outcome::fail(
            r.error.as_deref().unwrap_or("request failed"),
            r.exit_code.unwrap_or(255),
        ));
    }
    match serde_json::from_value(r.data.clone()) {
        Ok(v) => Ok((v, r.data)),
        Err(e) => Err(Outcome::fail(&format!("unexpected reply from rvs: {e}"), 1)),
    }
}

fn ok_unit(r: Response) -> Outcome {
    if r.ok {
        Outcome::default()
    } else {
        Outcome::fail(
            r.error.as_deref().unwrap_or("request failed"),
            r.exit_code.unwrap_or(255),
        )
    }
}

fn pretty(v: &serde_json::Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| "null".into());
    s.push('\n');
    s
}

/// Sends `req` and decodes the reply's data.
fn fetch<T: DeserializeOwned>(
    call: Call<'_>,
    req: &Request,
) -> Result<(T, serde_json::Value), Outcome> {
    ok_data(call(req)?)
}

/// Carries out `cmd`. `names` resolves names in listings without `-n` and in `-R` input;
/// `read_stdin` supplies `-R` input.
pub fn execute(
    cmd: Command,
    opts: ClientOpts,
    call: Call<'_>,
    names: &dyn Names,
    read_stdin: &mut dyn FnMut() -> Result<String, String>,
) -> Outcome {
    match run(cmd, opts, call, names, read_stdin) {
        Ok(o) | Err(o) => o,
    }
}

fn run(
    cmd: Command,
    opts: ClientOpts,
    call: Call<'_>,
    names: &dyn Names,
    read_stdin: &mut dyn FnMut() -> Result<String, String>,
) -> Result<Outcome, Outcome> {
    if opts.expire_conns && !matches!(cmd, Command::DeleteDest(..)) {
        return Err(Outcome::fail(
            "--expire-conns goes with -d (delete-server) only",
            2,
        ));
    }
    match cmd {
        Command::Help { program } => {
            let mut s = format::usage(&program);
            s.push_str(&EXTRAS_USAGE.replace("{P}", &program));
            Ok(Outcome::out(s))
        }
        Command::Version => Ok(Outcome::out(format::version_line())),
        Command::List(o) => {
            let out_names: &dyn Names = if o.format.numeric {
                &NumericNames
            } else {
                names
            };
            match o.target {
                ListTarget::All => {
                    let (snap, raw): (ListSnapshot, _) =
                        fetch(call, &Request::List { service: None })?;
                    Ok(Outcome::out(if opts.json {
                        pretty(&raw)
                    } else {
                        format::list_all(&snap, &o.format, out_names)
                    }))
                }
                ListTarget::Service(k) => {
                    let req = Request::List {
                        service: Some(ServiceRef::from(&k)),
                    };
                    let (snap, raw): (ListSnapshot, _) = fetch(call, &req)?;
                    if opts.json {
                        return Ok(Outcome::out(pretty(&raw)));
                    }
                    let svc = snap
                        .services
                        .first()
                        .ok_or_else(|| Outcome::fail("No such service", 1))?;
                    Ok(Outcome::out(format::list_service(
                        svc, &o.format, out_names,
                    )))
                }
                ListTarget::Connections => {
                    let (conns, raw): (Vec<ConnEntry>, _) = fetch(call, &Request::ListConns)?;
                    Ok(Outcome::out(if opts.json {
                        pretty(&raw)
                    } else {
                        format::list_conns(&conns, &o.format, out_names)
                    }))
                }
                ListTarget::Timeout => {
                    let (t, raw): (TimeoutTriple, _) = fetch(call, &Request::GetTimeouts)?;
                    Ok(Outcome::out(if opts.json {
                        pretty(&raw)
                    } else {
                        format::timeouts(&t)
                    }))
                }
                ListTarget::Daemon => {
                    // rvs runs no sync daemon: nothing to list, but the daemon must answer.
                    ok_data::<serde_json::Value>(call(&Request::Ping)?)?;
                    Ok(Outcome::out(if opts.json {
                        "[]\n".to_string()
                    } else {
                        format::daemons(&[])
                    }))
                }
            }
        }
        Command::Save { numeric } => {
            let (snap, _): (ListSnapshot, _) = fetch(call, &Request::List { service: None })?;
            let out_names: &dyn Names = if numeric { &NumericNames } else { names };
            Ok(Outcome::out(format::save(
                &snap.services,
                numeric,
                out_names,
            )))
        }
        Command::ListMarkRules => {
            let (rules, raw): (Vec<MarkRuleEntry>, _) = fetch(call, &Request::ListMarkRules)?;
            Ok(Outcome::out(if opts.json {
                pretty(&raw)
            } else {
                format::mark_rules(&rules)
            }))
        }
        Command::Restore => {
            let input = read_stdin().map_err(|e| Outcome::fail(&e, 1))?;
            let cmds = parse_restore_with(&input, "rvsadm", names)
                .map_err(|e| Outcome::fail(&e.to_string(), e.error.exit_code))?;
            let mut ops = Vec::with_capacity(cmds.len());
            let mut lines = Vec::with_capacity(cmds.len());
            for (line, c) in &cmds {
                let req = request_of(c).map_err(|e| {
                    Outcome::fail(&format!("line {}: {}", line, e.message), e.exit_code)
                })?;
                ops.push(req);
                lines.push(*line);
            }
            Ok(ok_unit(call(&Request::Restore {
                ops,
                lines: Some(lines),
            })?))
        }
        Command::DeleteDest(k, d) if opts.expire_conns => {
            let service = ServiceRef::from(&k);
            let dest = DestRef {
                addr: d.addr,
                port: d.port,
            };
            let del = call(&Request::DeleteDest { service, dest })?;
            // Already removed (alone or with its service): its connections may still be there.
            let gone = matches!(
                del.error.as_deref(),
                Some("No such destination" | "Service not defined")
            );
            if !del.ok && !gone {
                return Ok(ok_unit(del));
            }
            Ok(ok_unit(call(&Request::ExpireDest { service, dest })?))
        }
        other => {
            let req = request_of(&other).map_err(|e| Outcome::fail(&e.message, e.exit_code))?;
            Ok(ok_unit(call(&req)?))
        }
    }
}
