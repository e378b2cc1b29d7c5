//! One attempt of one checker against one real server (TCP_CHECK, HTTP_GET, SSL_GET,
//! MISC_CHECK, UDP_CHECK, DNS_CHECK), as async functions run on the checker thread's tokio
//! runtime. Retries, delay_loop, delay_before_retry and state belong to the engine, not here:
//! a probe is one attempt with one total deadline, and returns a [`Verdict`].

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use crate::model::CheckKind;

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

/// Shared by every probe: the TLS client configuration built once from the `SSL { }` block.
#[derive(Clone, Default)]
pub struct ProbeCx {
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// Runs one attempt.
pub async fn probe(spec: &ProbeSpec, _cx: &ProbeCx) -> Verdict {
    Verdict::Down(Failure {
        reason: "not implemented".into(),
        log: format!("{spec:?}"),
    })
}

/// keepalived's line when a checker succeeds after failing.
pub fn success_log(spec: &ProbeSpec) -> String {
    format!("{:?} success.", spec.connect_ip)
}

/// The TLS client configuration of SSL_GET from the `SSL { }` block.
pub fn tls_config(_ssl: Option<&crate::SslContext>) -> Result<Arc<rustls::ClientConfig>, String> {
    Err("SSL_GET not implemented yet".into())
}
