//! The daemon side of the ipvsadm-compatible control: the IPVS configuration the management
//! core owns, request handling, `-Z` baselines, the rate estimators and trash purging.
//!
//! Structure: [`Core`] is plain data (an lb [`Config`] plus statistics bookkeeping) and does all
//! the work given the workers' [`CoreStats`]; it never publishes anything itself but returns the
//! [`Snapshot`] to publish. [`Ipvs`] is the thin, thread-safe wrapper the control socket calls:
//! it holds the `Core` behind a mutex and talks to the workers through the [`Dataplane`] trait
//! (implemented for the dataplane's `Shared` in `control::app`, the composition root).
//!
//! Every change is applied to a copy of the configuration, validated completely and then
//! published whole (one `Snapshot`), or not at all: a failed request, or a `restore` with one
//! bad operation, leaves the running configuration untouched.
//!
//! Exit codes in error replies are the ones ipvsadm uses: 255 for an operation the kernel (here:
//! the daemon) rejects, 1 for a failed listing, 2 for ipvsadm's own checks (usage errors).
//!
//! [`Config`]: rvs_lb::config::Config

mod listings;
mod ops;
mod state;

pub use listings::conn_entries;
pub use ops::{rules_to_ops, service_key};
pub use state::Core;

use super::ipvsadm::args::{EXIT_FAIL, EXIT_POPT};
use super::ipvsadm::names::{Names, SystemNames};
use super::proto::{Request, Response};
use rvs_lb::config::{ConfigError, DestId, Snapshot};
use rvs_lb::stats::CoreStats;
use rvs_lb::{ConnInfo, Time};
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Exit code of a rejected operation (ipvsadm after a kernel error).
pub const EXIT_REJECTED: i32 = EXIT_POPT;
/// Exit code of a failed listing.
pub const EXIT_LIST: i32 = 1;
/// Exit code of a usage error (ipvsadm's `fail()`).
pub const EXIT_USAGE: i32 = EXIT_FAIL;

/// rvs forwards by NAT only.
pub const FWD_UNSUPPORTED: &str =
    "forwarding method not supported: rvs only does masquerading (-m)";
/// rvs balances TCP and UDP only.
pub const SCTP_UNSUPPORTED: &str = "SCTP services are not supported: rvs balances TCP and UDP only";
/// The rvs engine has no one-packet scheduling.
pub const OPS_UNSUPPORTED: &str = "One-Packet Scheduling (-o) is not supported by rvs";

/// A refused request: the message ipvsadm would print and its exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpError {
    pub message: String,
    pub exit_code: i32,
}

impl OpError {
    pub fn new(message: impl Into<String>, exit_code: i32) -> OpError {
        OpError {
            message: message.into(),
            exit_code,
        }
    }

    fn rejected(message: impl Into<String>) -> OpError {
        OpError::new(message, EXIT_REJECTED)
    }

    fn at_line(self, line: usize) -> OpError {
        OpError {
            message: format!("line {}: {}", line, self.message),
            exit_code: self.exit_code,
        }
    }

    /// As listings report it (exit 1).
    fn for_listing(self) -> OpError {
        OpError {
            exit_code: EXIT_LIST,
            ..self
        }
    }

    pub fn response(&self) -> Response {
        Response::err(self.message.clone(), self.exit_code)
    }
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for OpError {}

impl From<ConfigError> for OpError {
    fn from(e: ConfigError) -> OpError {
        // ipvsadm checks the zero port itself (fail, exit 2); everything else is the kernel's.
        let code = match e {
            ConfigError::ZeroPortNonPersistent => EXIT_USAGE,
            _ => EXIT_REJECTED,
        };
        OpError::new(e.to_string(), code)
    }
}

/// What the control plane needs from the workers.
pub trait Dataplane: Send + Sync {
    /// The configuration the workers run.
    fn current(&self) -> Arc<Snapshot>;
    /// Hands a new configuration to the workers.
    fn publish(&self, snapshot: Snapshot);
    /// Every worker's counters.
    fn core_stats(&self) -> &[Arc<CoreStats>];
    /// Total connection-table capacity (the `size=` of listings).
    fn conn_tab_size(&self) -> u32;
    /// Every connection of every worker (blocks the caller, never a worker).
    fn list_conns(&self) -> Result<Vec<ConnInfo>, String>;
    /// Asks the workers to end the connections bound to a real server.
    fn expire_dest_conns(&self, dest: DestId);
}

/// The IPVS control state of a running appliance: answers the ipvsadm requests of the control
/// socket, publishes configurations to the workers.
pub struct Ipvs {
    dp: Arc<dyn Dataplane>,
    core: Mutex<Core>,
}

fn json<T: serde::Serialize>(v: &T) -> Response {
    match serde_json::to_value(v) {
        Ok(v) => Response::ok(v),
        Err(e) => Response::err(format!("internal error: {e}"), EXIT_REJECTED),
    }
}

impl Ipvs {
    /// Starts from the configuration the workers currently run.
    pub fn new(dp: Arc<dyn Dataplane>) -> Ipvs {
        let config = dp.current().config().clone();
        Ipvs {
            dp,
            core: Mutex::new(Core::new(config)),
        }
    }

    fn core(&self) -> std::sync::MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the core and publishes what it returns, under the lock so that
    /// configurations reach the workers in the order they were made.
    fn change(
        &self,
        f: impl FnOnce(&mut Core, &[Arc<CoreStats>]) -> Result<Option<Snapshot>, OpError>,
    ) -> Result<(), OpError> {
        let mut core = self.core();
        if let Some(snap) = f(&mut core, self.dp.core_stats())? {
            self.dp.publish(snap);
        }
        Ok(())
    }

    /// Answers an ipvsadm request (everything but `ping`, `port_stats` and `neighbours`).
    pub fn handle(&self, req: Request) -> Response {
        match self.answer(req) {
            Ok(r) => r,
            Err(e) => e.response(),
        }
    }

    fn answer(&self, req: Request) -> Result<Response, OpError> {
        let cores = self.dp.core_stats();
        match req {
            Request::List { service } => {
                let snap = self
                    .core()
                    .list(service.as_ref(), cores, self.dp.conn_tab_size())?;
                Ok(json(&snap))
            }
            Request::ListConns => {
                // Not under the lock: gathering may take a while.
                let conns = self
                    .dp
                    .list_conns()
                    .map_err(|e| OpError::new(e, EXIT_LIST))?;
                Ok(json(&conn_entries(&conns)))
            }
            Request::GetTimeouts => Ok(json(&self.core().timeouts())),
            Request::ListMarkRules => Ok(json(&self.core().mark_rules())),
            Request::ExpireDest { service, dest } => {
                let id = self.core().find_dest(&service, &dest)?;
                self.dp.expire_dest_conns(id);
                Ok(Response::ok(serde_json::Value::Null))
            }
            Request::Restore { ops, lines } => {
                self.change(|c, cores| c.restore(&ops, lines.as_deref(), cores))?;
                Ok(Response::ok(serde_json::Value::Null))
            }
            Request::Ping
            | Request::PortStats
            | Request::Neighbours
            | Request::ListChecks
            | Request::ReloadChecks => Err(OpError::rejected(format!(
                "'{}' is not an IPVS request",
                req.name()
            ))),
            op => {
                self.change(|c, cores| c.apply(&op, cores))?;
                Ok(Response::ok(serde_json::Value::Null))
            }
        }
    }

    /// Periodic work: call from the management loop as often as convenient (at least every
    /// 2 s); steps the rate estimators every 2 s and frees removed real servers no worker
    /// uses any more.
    pub fn tick(&self, now: Time) {
        let mut core = self.core();
        if let Some(snap) = core.tick(now, self.dp.core_stats()) {
            self.dp.publish(snap);
        }
    }

    /// Applies a rules file (`ipvsadm -S` syntax, `--add-mark` lines allowed) all or nothing.
    /// Host and service names are resolved with /etc/hosts and /etc/services.
    pub fn load_rules_file(&self, path: &Path) -> Result<(), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("rules file {}: {e}", path.display()))?;
        self.load_rules(&text, &SystemNames::load())
            .map_err(|e| format!("rules file {}: {e}", path.display()))
    }

    /// [`Ipvs::load_rules_file`] on text.
    pub fn load_rules(&self, text: &str, names: &dyn Names) -> Result<(), OpError> {
        let (ops, lines) = rules_to_ops(text, names)?;
        self.change(|c, cores| c.restore(&ops, Some(&lines), cores))
    }
}

#[cfg(test)]
mod tests;
