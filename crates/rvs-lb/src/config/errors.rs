//! [`ConfigError`]: why a configuration operation failed, in ipvsadm's words.

/// A failed configuration operation. `Display` is the message ipvsadm prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// add service, EEXIST.
    #[error("Service already exists")]
    ServiceExists,
    /// edit/delete/zero service, ESRCH.
    #[error("No such service")]
    NoSuchService,
    /// add/edit/delete dest on a missing service, ESRCH.
    #[error("Service not defined")]
    ServiceNotDefined,
    /// add dest, EEXIST.
    #[error("Destination already exists")]
    DestExists,
    /// edit/delete dest, ENOENT.
    #[error("No such destination")]
    NoSuchDest,
    /// add/edit service with an unknown scheduler, ENOENT.
    #[error("Scheduler or persistence engine not found")]
    SchedulerNotFound,
    /// ERANGE (strerror): l_threshold > u_threshold, weight or timeout out of range.
    #[error("Numerical result out of range")]
    OutOfRange,
    /// EINVAL: e.g. a real server address that is not unicast, fwmark 0.
    #[error("Invalid operation.  Possibly wrong module version, address not unicast, ...")]
    Invalid,
    /// ENOMEM: out of service or destination ids.
    #[error("Memory allocation problem")]
    NoMemory,
    /// ipvsadm's own check (exit 2) for `-t VIP:0` without `-p`.
    #[error("Zero port specified for non-persistent service")]
    ZeroPortNonPersistent,
    /// rvs mark rules (no ipvsadm equivalent).
    #[error("Mark rule already exists")]
    MarkRuleExists,
    #[error("No such mark rule")]
    NoSuchMarkRule,
}
