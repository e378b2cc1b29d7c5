//! One attempt of one checker against one real server (TCP_CHECK, HTTP_GET, SSL_GET,
//! MISC_CHECK, UDP_CHECK, DNS_CHECK), as async functions run on the checker thread's tokio
//! runtime. Retries, delay_loop, delay_before_retry and state belong to the engine, not here:
//! a probe is one attempt with one total deadline, and returns a [`Verdict`].
//!
//! keepalived 2.x (acassen/keepalived, keepalived/check/check_*.c) is the reference for what
//! goes on the wire and for the log lines; each module names the functions it follows.

mod dns;
mod http;
mod misc;
pub mod plane;
mod sock;
pub mod syn;
mod tcp;
mod tls;
mod udp;

#[cfg(test)]
mod test_util;
#[cfg(test)]
mod tests_misc;
#[cfg(test)]
mod tests_tcp_http;
#[cfg(test)]
mod tests_tls;
#[cfg(test)]
mod tests_udp_dns;

use std::fmt;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use crate::model::CheckKind;

pub use misc::split_args;
pub use tls::tls_config;

/// What one attempt needs, with keepalived's inheritance resolved. Probes that compare equal
/// are the same probe: the engine runs one per distinct spec however many virtual servers
/// share the real server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProbeSpec {
    pub kind: CheckKind,
    pub connect_ip: Ipv4Addr,
    pub connect_port: u16,
    pub bindto: Option<Ipv4Addr>,
    pub bind_port: Option<u16>,
    pub bind_if: Option<String>,
    pub fwmark: Option<u32>,
    /// The total deadline of the attempt: connect, request and the whole reply (a server that
    /// trickles its answer does not stretch it). connect_timeout; for MISC_CHECK misc_timeout
    /// (else the delay_loop).
    pub timeout: Duration,
    /// HTTP Host: header when a url has no virtualhost of its own (checker's, else real
    /// server's, else virtual server's).
    pub virtualhost: Option<String>,
}

/// The result of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Up,
    /// MISC_CHECK with misc_dynamic: exit code 2..=255, weight = code - 2.
    UpWeight(u32),
    Down(Failure),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Short, for `rvsadm --list-checks`: "connection refused", "HTTP status 503",
    /// "digest mismatch", "timeout after 3.0 s", "exit status 1", ...
    pub reason: String,
    /// The line keepalived would log for it, e.g.
    /// "TCP connection to [192.168.8.14]:tcp:80 failed."
    pub log: String,
}

impl Failure {
    fn new(reason: impl Into<String>, log: String) -> Self {
        Failure {
            reason: reason.into(),
            log,
        }
    }
}

fn down(reason: impl Into<String>, log: String) -> Verdict {
    Verdict::Down(Failure::new(reason, log))
}

/// Shared by every probe: the TLS client configuration built once from the `SSL { }` block.
/// With `tls: None`, SSL_GET uses keepalived's context for a missing `SSL` block (no client
/// certificate, no verification), built once per process.
#[derive(Clone, Default)]
pub struct ProbeCx {
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// TCP_CHECK half-open (`[checks] tcp_check = "half-open"`); None: connect(), as keepalived.
    pub syn: Option<std::rc::Rc<syn::SynProber>>,
}

/// Runs one attempt.
pub async fn probe(spec: &ProbeSpec, cx: &ProbeCx) -> Verdict {
    // The probe's future is as large as its largest kind's; HTTP (TLS), DNS and MISC ones
    // are boxed so that the TCP probe, the one run thousands of times a second, stays small
    // to move (536 bytes, from 2.8 KB).
    if let CheckKind::Misc(m) = &spec.kind {
        // The child process needs killing and reaping on expiry: misc handles its deadline.
        return Box::pin(misc::probe(spec, m)).await;
    }
    let mut phase = Phase::Connect;
    let attempt = async {
        match &spec.kind {
            CheckKind::Tcp => match &cx.syn {
                // The shared raw socket cannot take a probe's own bind or mark.
                Some(p)
                    if spec.bindto.is_none()
                        && spec.bind_port.is_none()
                        && spec.bind_if.is_none()
                        && spec.fwmark.is_none() =>
                {
                    syn::probe(spec, p).await
                }
                _ => tcp::probe(spec).await,
            },
            CheckKind::Http(h) => Box::pin(http::probe(spec, h, cx, &mut phase)).await,
            CheckKind::Udp(u) => udp::probe(spec, u).await,
            CheckKind::Dns(d) => Box::pin(dns::probe(spec, d)).await,
            CheckKind::Misc(_) => Verdict::Up, // handled above
        }
    };
    let result = tokio::time::timeout(spec.timeout, attempt).await;
    match result {
        Ok(v) => v,
        Err(_) => on_timeout(spec, phase),
    }
}

/// The line keepalived logs when this checker kind succeeds (the checker going up).
pub fn success_log(spec: &ProbeSpec) -> String {
    let at = Trio::of(spec);
    match &spec.kind {
        CheckKind::Tcp => format!("TCP connection to {at} success."),
        // epilog() in check_http.c, once every url passed; the per-url line
        // "HTTP status code success to X url(PATH)" comes before it.
        CheckKind::Http(_) => format!("Remote Web server {at} succeed on service."),
        CheckKind::Misc(m) => format!(
            "Misc check for [{at}] by [{}] succeeded.",
            misc::script_name(&m.misc_path)
        ),
        CheckKind::Udp(_) => format!("UDP connection to {at} success."),
        // dns_final() logs nothing on success; this line is rvs's, in DNS_CHECK's style.
        CheckKind::Dns(_) => format!("DNS_CHECK ({at}) success."),
    }
}

/// What an attempt was doing when its deadline expired: keepalived words its timeout line by
/// the step that timed out (check_http.c: "Timeout connecting", "Timeout WEB read", ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Connect,
    /// Request sent (or being sent), nothing read yet.
    Wait,
    /// Part of the reply read.
    Read,
}

fn on_timeout(spec: &ProbeSpec, phase: Phase) -> Verdict {
    let reason = timeout_reason(spec.timeout);
    let at = Trio::of(spec);
    let log = match &spec.kind {
        CheckKind::Tcp => format!("TCP connection to {at} timeout."),
        CheckKind::Http(h) => http::timeout_log(h, phase, &at),
        // udp_socket_state(): a read timeout is a success unless a reply is required.
        CheckKind::Udp(u) if u.require_reply.is_none() => return Verdict::Up,
        CheckKind::Udp(_) => format!("UDP connection to {at} failed."),
        CheckKind::Dns(_) => format!("DNS_CHECK ({at}) read timeout from socket"),
        CheckKind::Misc(_) => format!("Misc check for [{at}] timed out."),
    };
    down(reason, log)
}

/// "timeout after 3.0 s".
fn timeout_reason(t: Duration) -> String {
    format!("timeout after {:.1} s", t.as_secs_f64())
}

/// keepalived's FMT_CHK: `[IP]:tcp:PORT` (inet_sockaddrtotrio_r() in lib/utils.c).
pub(crate) struct Trio {
    ip: Ipv4Addr,
    proto: &'static str,
    port: u16,
}

impl Trio {
    fn of(spec: &ProbeSpec) -> Self {
        // keepalived prints the virtual server's protocol; a spec knows only its checker's
        // transport, which is the same for every sane configuration.
        let proto = match spec.kind {
            CheckKind::Udp(_) | CheckKind::Dns(_) => "udp",
            _ => "tcp",
        };
        Trio {
            ip: spec.connect_ip,
            proto,
            port: spec.connect_port,
        }
    }
}

impl fmt::Display for Trio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]:{}:{}", self.ip, self.proto, self.port)
    }
}

/// An I/O error as a short lower-case reason: "connection refused", "no route to host",
/// "network unreachable", else the OS message in lower case.
pub(crate) fn io_reason(e: &std::io::Error) -> String {
    match e.raw_os_error().map(nix::errno::Errno::from_raw) {
        Some(nix::errno::Errno::ENETUNREACH) => "network unreachable".into(),
        Some(errno) => errno.desc().to_lowercase(),
        None => e.to_string().to_lowercase(),
    }
}

/// strerror(3) of an I/O error, for keepalived's "%m" / strerror(errno) in log lines.
pub(crate) fn strerror(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => e.to_string(),
    }
}
