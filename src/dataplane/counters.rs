//! Per-worker counters. Each worker writes only its own block (a relaxed load and store, no
//! atomic read-modify-write: there is a single writer), the management core reads them all.

use crate::control::report::PortCountersSnapshot;
use crate::lb::PortRole;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Why the dataplane dropped a packet. The names are what operators see in `rvsadm --stats-ports`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum PortDropReason {
    /// Frame shorter than an Ethernet header.
    Runt,
    /// Destination MAC neither ours nor broadcast.
    NotOurMac,
    /// EtherType other than IPv4 and ARP (IPv6, VLAN-tagged ...).
    UnsupportedEthertype,
    /// ARP that is malformed or not Ethernet/IPv4.
    ArpMalformed,
    /// ARP request for an address that is not ours, or ARP we have no use for.
    ArpNotForUs,
    /// IPv4 header invalid: version, header length, total length, truncated.
    Ipv4Malformed,
    /// IPv4 header checksum wrong.
    Ipv4BadChecksum,
    /// IPv4 with a source that is not a unicast host (martian).
    Ipv4BadSource,
    /// Addressed to the appliance but not something it answers (no service, not an echo).
    NotLocal,
    /// ICMP addressed to the appliance that is malformed or unsupported.
    IcmpUnsupported,
    /// Multi-segment mbuf (jumbo frames across segments are not processed).
    Chained,
    /// No route out of the egress port (destination off-link, no gateway).
    NoRoute,
    /// Next hop unresolved and the hold queue is full.
    ArpHoldFull,
    /// Next hop did not answer ARP in time.
    ArpTimeout,
    /// TX queue full.
    TxFull,
    /// No mbuf available to build a reply.
    NoMbuf,
    /// Dropped by the load-balancing core (its own counters give the detail).
    Lb,
    /// Could not hand a packet to its owner core (ring full).
    HandoverFull,
}

impl PortDropReason {
    pub const COUNT: usize = 18;
    pub const ALL: [PortDropReason; Self::COUNT] = [
        PortDropReason::Runt,
        PortDropReason::NotOurMac,
        PortDropReason::UnsupportedEthertype,
        PortDropReason::ArpMalformed,
        PortDropReason::ArpNotForUs,
        PortDropReason::Ipv4Malformed,
        PortDropReason::Ipv4BadChecksum,
        PortDropReason::Ipv4BadSource,
        PortDropReason::NotLocal,
        PortDropReason::IcmpUnsupported,
        PortDropReason::Chained,
        PortDropReason::NoRoute,
        PortDropReason::ArpHoldFull,
        PortDropReason::ArpTimeout,
        PortDropReason::TxFull,
        PortDropReason::NoMbuf,
        PortDropReason::Lb,
        PortDropReason::HandoverFull,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PortDropReason::Runt => "runt",
            PortDropReason::NotOurMac => "not_our_mac",
            PortDropReason::UnsupportedEthertype => "unsupported_ethertype",
            PortDropReason::ArpMalformed => "arp_malformed",
            PortDropReason::ArpNotForUs => "arp_not_for_us",
            PortDropReason::Ipv4Malformed => "ipv4_malformed",
            PortDropReason::Ipv4BadChecksum => "ipv4_bad_checksum",
            PortDropReason::Ipv4BadSource => "ipv4_bad_source",
            PortDropReason::NotLocal => "not_local",
            PortDropReason::IcmpUnsupported => "icmp_unsupported",
            PortDropReason::Chained => "chained_mbuf",
            PortDropReason::NoRoute => "no_route",
            PortDropReason::ArpHoldFull => "arp_hold_full",
            PortDropReason::ArpTimeout => "arp_timeout",
            PortDropReason::TxFull => "tx_full",
            PortDropReason::NoMbuf => "no_mbuf",
            PortDropReason::Lb => "lb",
            PortDropReason::HandoverFull => "handover_full",
        }
    }
}

/// Single-writer counter increment: the owner core is the only writer, so a plain load and
/// store (no lock prefix) is exact; readers on other cores see a recent value.
#[inline(always)]
pub fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
}

/// One worker's counters for one port.
#[derive(Debug, Default)]
pub struct PortCounters {
    pub rx_packets: AtomicU64,
    pub rx_bytes: AtomicU64,
    pub tx_packets: AtomicU64,
    pub tx_bytes: AtomicU64,
    /// ARP requests answered, ICMP echo requests answered.
    pub arp_replies: AtomicU64,
    pub echo_replies: AtomicU64,
    /// Packets this worker received on this port and handed to another core (the owner).
    pub handed_over: AtomicU64,
    /// Fragments this worker built to fit a packet into this port's MTU.
    pub fragments_out: AtomicU64,
    /// Packets (and ARP copies) handed to the management core for the port's kernel twin.
    pub to_kernel: AtomicU64,
    /// Packets for the kernel twin dropped here: over the rate limit, or the ring full.
    pub kernel_drops: AtomicU64,
    pub drops: [AtomicU64; PortDropReason::COUNT],
}

impl PortCounters {
    #[inline(always)]
    pub fn drop(&self, r: PortDropReason) {
        bump(&self.drops[r as usize], 1);
    }
}

/// All counters of one worker, cache-line aligned so workers never share a line.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct WorkerCounters {
    pub ports: [PortCounters; 2],
    /// Packets received from other cores over handover rings (processed here as their owner).
    pub handed_in: AtomicU64,
    /// Poll-loop iterations (shows the worker is alive).
    pub loops: AtomicU64,
    /// Sampled RX-to-TX residence times of this worker's bursts.
    pub latency: super::latency::LatencyHist,
}

impl WorkerCounters {
    #[inline(always)]
    pub fn port(&self, role: PortRole) -> &PortCounters {
        &self.ports[role.index()]
    }
}

/// A plain copy of a port's counters, for the control protocol's report.
pub fn snapshot(c: &PortCounters) -> PortCountersSnapshot {
    PortCountersSnapshot {
        rx_packets: c.rx_packets.load(Relaxed),
        rx_bytes: c.rx_bytes.load(Relaxed),
        tx_packets: c.tx_packets.load(Relaxed),
        tx_bytes: c.tx_bytes.load(Relaxed),
        arp_replies: c.arp_replies.load(Relaxed),
        echo_replies: c.echo_replies.load(Relaxed),
        handed_over: c.handed_over.load(Relaxed),
        fragments_out: c.fragments_out.load(Relaxed),
        to_kernel: c.to_kernel.load(Relaxed),
        from_kernel: 0,
        kernel_drops: c.kernel_drops.load(Relaxed),
        drops: PortDropReason::ALL
            .iter()
            .map(|r| (r.name().to_string(), c.drops[*r as usize].load(Relaxed)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_complete_and_named_uniquely() {
        for (i, r) in PortDropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        let mut names: Vec<_> = PortDropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), PortDropReason::COUNT);
    }

    #[test]
    fn snapshot_sums_workers() {
        let a = WorkerCounters::default();
        let b = WorkerCounters::default();
        bump(&a.ports[0].rx_packets, 3);
        bump(&b.ports[0].rx_packets, 4);
        a.ports[0].drop(PortDropReason::Ipv4BadChecksum);
        b.ports[0].drop(PortDropReason::Ipv4BadChecksum);
        let mut t = snapshot(&a.ports[0]);
        t.add(&snapshot(&b.ports[0]));
        assert_eq!(t.rx_packets, 7);
        assert_eq!(t.total_drops(), 2);
        let bad = t.drops.iter().find(|d| d.0 == "ipv4_bad_checksum").unwrap();
        assert_eq!(bad.1, 2);
    }
}
