//! The reports of the control protocol (`port_stats`, `neighbours`) as wire types of their own:
//! plain data that serialises the same whatever the dataplane and the DPDK layer look like
//! inside. The appliance fills them in (`control::app`, `dataplane::{counters, latency,
//! neigh}`); `rvsadm` reads them.

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// A NIC's own counters (`rte_eth_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HwPortCounters {
    pub ipackets: u64,
    pub opackets: u64,
    pub ibytes: u64,
    pub obytes: u64,
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    pub rx_nombuf: u64,
}

/// rvs's software counters of a port (one worker's, or summed over workers).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortCountersSnapshot {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub arp_replies: u64,
    pub echo_replies: u64,
    pub handed_over: u64,
    #[serde(default)]
    pub fragments_out: u64,
    /// The exception path: packets sent up to the port's kernel twin, frames it transmitted
    /// out of the port, and packets lost on the way either way (rate limit, full rings).
    #[serde(default)]
    pub to_kernel: u64,
    #[serde(default)]
    pub from_kernel: u64,
    #[serde(default)]
    pub kernel_drops: u64,
    /// (reason, count) for every reason, zeros included, in a fixed order.
    pub drops: Vec<(String, u64)>,
}

impl PortCountersSnapshot {
    /// Adds another snapshot (to total over workers).
    pub fn add(&mut self, o: &PortCountersSnapshot) {
        self.rx_packets += o.rx_packets;
        self.rx_bytes += o.rx_bytes;
        self.tx_packets += o.tx_packets;
        self.tx_bytes += o.tx_bytes;
        self.arp_replies += o.arp_replies;
        self.echo_replies += o.echo_replies;
        self.handed_over += o.handed_over;
        self.fragments_out += o.fragments_out;
        self.to_kernel += o.to_kernel;
        self.from_kernel += o.from_kernel;
        self.kernel_drops += o.kernel_drops;
        if self.drops.is_empty() {
            self.drops = o.drops.clone();
        } else {
            for (a, b) in self.drops.iter_mut().zip(&o.drops) {
                a.1 += b.1;
            }
        }
    }

    pub fn total_drops(&self) -> u64 {
        self.drops.iter().map(|d| d.1).sum()
    }
}

/// One worker's load-balancing engine: its connection table and what it dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineReport {
    /// Entries in use (connections and persistence templates).
    pub table_entries: u64,
    /// Entries the table was allocated with.
    pub table_capacity: u64,
    /// Connections created (templates excluded).
    pub conns_created: u64,
    pub templates_created: u64,
    /// Entries freed by timeout, flush or reuse.
    pub conns_expired: u64,
    /// (reason, count) for every engine drop reason, zeros included, in a fixed order.
    pub drops: Vec<(String, u64)>,
}

/// A reading of one or more latency histograms, in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyReport {
    pub samples: u64,
    pub p50_ns: f64,
    pub p99_ns: f64,
    pub p999_ns: f64,
    pub max_ns: f64,
    /// Sum of all samples (exact, not from the buckets).
    #[serde(default)]
    pub sum_ns: f64,
    /// `(upper bound in ns, count)` of every non-empty bucket, ascending: two readings can be
    /// subtracted bucket by bucket to get a time window's distribution.
    pub buckets: Vec<(f64, u64)>,
}

/// The state of a neighbour (ARP) entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NeighState {
    /// Requested, no answer yet.
    Incomplete,
    /// Confirmed within the reachable time.
    Reachable,
    /// Older than the reachable time: still used, being re-probed.
    Stale,
    /// Did not answer; not probed again until the hold expires.
    Failed,
    /// Configured; never probed, never expires, never overridden by ARP.
    Permanent,
}

/// A row of `rvsadm --neigh`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighRow {
    pub ip: Ipv4Addr,
    pub mac: Option<String>,
    pub state: NeighState,
    pub age_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_and_wire_shape() {
        let mut t = PortCountersSnapshot {
            rx_packets: 3,
            drops: vec![("runt".into(), 1), ("lb".into(), 0)],
            ..Default::default()
        };
        t.add(&PortCountersSnapshot {
            rx_packets: 4,
            drops: vec![("runt".into(), 1), ("lb".into(), 2)],
            ..Default::default()
        });
        assert_eq!((t.rx_packets, t.total_drops()), (7, 4));
        let row = NeighRow {
            ip: Ipv4Addr::new(192, 168, 8, 14),
            mac: None,
            state: NeighState::Incomplete,
            age_ms: 0,
        };
        assert_eq!(
            serde_json::to_string(&row).unwrap(),
            r#"{"ip":"192.168.8.14","mac":null,"state":"incomplete","age_ms":0}"#
        );
    }
}
