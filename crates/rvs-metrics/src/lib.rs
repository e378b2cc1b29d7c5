//! The Prometheus endpoint of the appliance (issue 14): `GET /metrics` on `[metrics] listen`.
//!
//! Values are not kept here: each scrape asks a [`Source`] for the same reports the control
//! socket answers (`-L -n` with its statistics, `--stats-ports`, `--list-checks`), which the
//! appliance builds by summing the workers' counters where they are: the workers do nothing
//! for a scrape.
//! [`encode`] turns one [`Scrape`] into the Prometheus text format or OpenMetrics with
//! `prometheus-client`: the IPVS part under node_exporter's IPVS collector's names and labels
//! (`node_ipvs_*`), everything else under `rvs_`. [`http`] serves it on its own thread, with
//! limits on request size, time and concurrent clients.
// Input paths never panic: no unwrap, expect or panic outside tests (tests may).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod appliance;
pub mod http;
mod ipvs;
#[cfg(test)]
mod tests;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Registry;
use rvs_ctl::checks::ChecksReport;
use rvs_ctl::model::ListSnapshot;
use rvs_ctl::proto::PortStatsReply;
use std::sync::Arc;

/// Everything one scrape reports, read from the appliance at one moment.
#[derive(Debug, Clone)]
pub struct Scrape {
    /// `-L -n` with statistics: services, real servers, totals.
    pub list: ListSnapshot,
    /// `--stats-ports`: ports, NIC counters, per-worker counters, latency, engines.
    pub ports: PortStatsReply,
    /// `--list-checks`, when the appliance runs health checks and the checker thread answered.
    pub checks: Option<ChecksReport>,
    /// The checker thread's heartbeat age, when the appliance runs health checks (also when
    /// it did not answer: that is when it matters).
    pub checks_heartbeat_secs: Option<f64>,
    /// The version in `rvs_build_info`.
    pub version: String,
    /// How long reading the reports took (`rvs_metrics_gather_seconds`).
    pub gather_secs: f64,
}

/// Where scrapes come from. Called on a blocking thread of the endpoint, never on a worker;
/// one call at a time however many scrapers there are.
pub trait Source: Send + Sync + 'static {
    fn scrape(&self) -> Result<Scrape, String>;
}

/// The exposition format of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`: what `promtool check metrics` reads and every scraper takes.
    PrometheusText,
    /// `application/openmetrics-text; version=1.0.0`, for a scraper that asks for it.
    OpenMetrics,
}

impl Format {
    /// The format a request's `Accept` header asks for (Prometheus text unless OpenMetrics is
    /// named).
    pub fn from_accept(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::PrometheusText,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::PrometheusText => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// One scrape's metrics in `format` (shared, not copied: a scrape of 10,000 real servers is
/// megabytes).
pub fn encode(scrape: &Arc<Scrape>, format: Format) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(ScrapeCollector(scrape.clone())));
    let mut out = String::new();
    match format {
        Format::PrometheusText => {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)?
        }
        Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, &registry)?,
    }
    Ok(out)
}

#[derive(Debug)]
struct ScrapeCollector(Arc<Scrape>);

impl Collector for ScrapeCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        ipvs::encode(&self.0.list, &mut enc)?;
        appliance::encode(&self.0, &mut enc)
    }
}

/// A metric read from a report: name (or name suffix), help text, how to read it.
pub(crate) type Field<T, V> = (&'static str, &'static str, fn(&T) -> V);

/// Labels of one sample.
pub(crate) type Labels = Vec<(&'static str, String)>;

/// Writes one metric family: its descriptor, then one sample per label set (none is fine).
pub(crate) fn family(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: Kind,
    rows: impl IntoIterator<Item = (Labels, Value)>,
) -> Result<(), std::fmt::Error> {
    use prometheus_client::encoding::EncodeMetric;
    use prometheus_client::metrics::counter::ConstCounter;
    use prometheus_client::metrics::gauge::ConstGauge;
    use prometheus_client::metrics::MetricType;
    let ty = match kind {
        Kind::Counter => MetricType::Counter,
        Kind::Gauge => MetricType::Gauge,
    };
    let mut m = enc.encode_descriptor(name, help, None, ty)?;
    for (labels, v) in rows {
        let sample = m.encode_family(&labels)?;
        match (kind, v) {
            (Kind::Counter, Value::Int(v)) => ConstCounter::new(v).encode(sample)?,
            (Kind::Counter, Value::Real(v)) => ConstCounter::new(v).encode(sample)?,
            (Kind::Gauge, Value::Int(v)) => ConstGauge::new(v).encode(sample)?,
            (Kind::Gauge, Value::Real(v)) => ConstGauge::new(v).encode(sample)?,
        }
    }
    Ok(())
}

/// Counter (monotonic; `_total` is appended to the name) or gauge.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Counter,
    Gauge,
}

/// A sample's value: counts are written as integers (exact, as node_exporter's parse back),
/// times and ratios as floats.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value {
    Int(u64),
    Real(f64),
}

/// A count.
pub(crate) fn n(v: impl Into<u64>) -> Value {
    Value::Int(v.into())
}

/// A time or other real number.
pub(crate) fn real(v: f64) -> Value {
    Value::Real(v)
}
