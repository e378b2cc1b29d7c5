//! What the Prometheus endpoint (`[metrics] listen`, crate `rvs-metrics`) reads: the same
//! reports the control socket answers, asked of the control handler directly. The endpoint's
//! own thread calls this, one scrape at a time; the workers are not involved (their counters
//! are read where they are).

use super::mgmt::Mgmt;
use super::model::ListSnapshot;
use super::proto::{PortStatsReply, Request, Response};
use super::server::Handler;
use rvs_ctl::checks::STALLED_SECS;
use rvs_metrics::{Scrape, Source};
use std::sync::Weak;
use std::time::Instant;

/// Weak, so that the endpoint (stopped before `Mgmt` goes) does not keep `Mgmt` alive.
pub(super) struct MetricsSource(pub(super) Weak<Mgmt>);

/// A control reply's data as `T`, or its error.
pub(super) fn data<T: serde::de::DeserializeOwned>(what: &str, r: Response) -> Result<T, String> {
    if !r.ok {
        return Err(format!("{what}: {}", r.error.unwrap_or_default()));
    }
    serde_json::from_value(r.data).map_err(|e| format!("{what}: {e}"))
}

/// The `-L -n --stats` and `--stats-ports` reports (also what telemetry shows).
pub(super) fn reports(mgmt: &Mgmt) -> Result<(ListSnapshot, PortStatsReply), String> {
    let list = data("list", mgmt.handle(Request::List { service: None }))?;
    let ports = data("port_stats", mgmt.handle(Request::PortStats))?;
    Ok((list, ports))
}

impl Source for MetricsSource {
    fn scrape(&self) -> Result<Scrape, String> {
        let t0 = Instant::now();
        let mgmt = self.0.upgrade().ok_or("the appliance is stopping")?;
        let (list, ports) = reports(&mgmt)?;
        // Without a [checks] file there is nothing to report. A stalled checker thread is not
        // asked (it would hold the scrape for its reply timeout): its heartbeat says enough; a
        // report that fails leaves the checker metrics out rather than failing the scrape.
        let heartbeat = mgmt.checks_heartbeat();
        let checks = match heartbeat {
            Some(h) if h < STALLED_SECS => {
                data("list_checks", mgmt.handle(Request::ListChecks)).ok()
            }
            _ => None,
        };
        Ok(Scrape {
            list,
            ports,
            checks,
            checks_heartbeat_secs: heartbeat,
            version: env!("CARGO_PKG_VERSION").to_string(),
            gather_secs: t0.elapsed().as_secs_f64(),
        })
    }
}
