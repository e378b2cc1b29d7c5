//! Added-latency histogram: how long packets stay in the appliance, from the return of the RX
//! burst that brought them to the return of the TX burst that sent them, in TSC cycles.
//!
//! HDR-style log-linear buckets: exact below 16 cycles, then 16 sub-buckets per power of two
//! (at most 1/16 = 6.25% relative error), covering every `u64`. Preallocated and written only by
//! its worker (relaxed load and store, as the other per-worker counters); the management core
//! reads the buckets and computes percentiles, or hands them out so that a benchmark can
//! subtract two readings and get the percentiles of a time window.

use crate::control::report::LatencyReport;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

const SUB_BITS: u32 = 4;
const SUB: usize = 1 << SUB_BITS;
/// Buckets: 16 exact values, then 16 per exponent 4..=63.
pub const BUCKETS: usize = SUB + (64 - SUB_BITS as usize) * SUB;

/// Bucket of a value.
#[inline(always)]
pub fn bucket_of(v: u64) -> usize {
    if v < SUB as u64 {
        return v as usize;
    }
    let e = 63 - v.leading_zeros();
    let sub = ((v >> (e - SUB_BITS)) as usize) & (SUB - 1);
    SUB + (e - SUB_BITS) as usize * SUB + sub
}

/// Largest value that falls in bucket `i`.
pub fn bucket_max(i: usize) -> u64 {
    if i < SUB {
        return i as u64;
    }
    let e = ((i - SUB) / SUB) as u32 + SUB_BITS;
    let sub = ((i - SUB) % SUB) as u64;
    let lo = (1u64 << e) | (sub << (e - SUB_BITS));
    lo + ((1u64 << (e - SUB_BITS)) - 1)
}

/// One worker's histogram.
pub struct LatencyHist {
    counts: Box<[AtomicU64]>,
    /// Sum of the samples in cycles (a Prometheus histogram's `_sum`).
    sum: AtomicU64,
}

impl Default for LatencyHist {
    fn default() -> Self {
        LatencyHist {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }
    }
}

impl std::fmt::Debug for LatencyHist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyHist")
            .field("samples", &self.nonzero().iter().map(|b| b.1).sum::<u64>())
            .finish()
    }
}

impl LatencyHist {
    /// Records one sample (single writer: its worker).
    #[inline(always)]
    pub fn record(&self, cycles: u64) {
        let c = &self.counts[bucket_of(cycles)];
        c.store(c.load(Relaxed).wrapping_add(1), Relaxed);
        self.sum
            .store(self.sum.load(Relaxed).wrapping_add(cycles), Relaxed);
    }

    /// `(bucket, count)` of every non-empty bucket, in order.
    pub fn nonzero(&self) -> Vec<(usize, u64)> {
        self.counts
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let n = c.load(Relaxed);
                (n > 0).then_some((i, n))
            })
            .collect()
    }
}

/// Sums the histograms and converts with the TSC frequency, for the control protocol.
pub fn report(hists: &[&LatencyHist], tsc_hz: u64) -> LatencyReport {
    let mut sum = vec![0u64; BUCKETS];
    let mut total_cycles = 0u64;
    for h in hists {
        total_cycles = total_cycles.wrapping_add(h.sum.load(Relaxed));
        for (i, n) in h.nonzero() {
            sum[i] += n;
        }
    }
    let ns = |cycles: u64| cycles as f64 * 1e9 / tsc_hz.max(1) as f64;
    let buckets: Vec<(f64, u64)> = sum
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(i, n)| (ns(bucket_max(i)), *n))
        .collect();
    let mut r = LatencyReport {
        samples: buckets.iter().map(|b| b.1).sum(),
        max_ns: buckets.last().map_or(0.0, |b| b.0),
        sum_ns: ns(total_cycles),
        ..Default::default()
    };
    r.p50_ns = quantile(&buckets, 0.50);
    r.p99_ns = quantile(&buckets, 0.99);
    r.p999_ns = quantile(&buckets, 0.999);
    r.buckets = buckets;
    r
}

/// The bucket bound at or below which a fraction `q` of the samples lie (0 when empty).
pub fn quantile(buckets: &[(f64, u64)], q: f64) -> f64 {
    let total: u64 = buckets.iter().map(|b| b.1).sum();
    if total == 0 {
        return 0.0;
    }
    let want = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (v, n) in buckets {
        seen += n;
        if seen >= want {
            return *v;
        }
    }
    buckets.last().map_or(0.0, |b| b.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn buckets_are_exact_then_log_linear() {
        for v in 0..16 {
            assert_eq!(bucket_of(v), v as usize);
            assert_eq!(bucket_max(v as usize), v);
        }
        assert_eq!(bucket_of(16), 16);
        assert_eq!(bucket_of(31), 31);
        assert_eq!(bucket_of(32), 32);
        assert_eq!(bucket_of(33), 32); // 32..=33 share a bucket (step 2)
        assert_eq!(bucket_max(32), 33);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        assert_eq!(bucket_max(BUCKETS - 1), u64::MAX);
    }

    proptest! {
        #[test]
        fn a_value_lies_in_its_bucket_within_one_sixteenth(v in any::<u64>()) {
            let i = bucket_of(v);
            prop_assert!(i < BUCKETS);
            prop_assert!(v <= bucket_max(i));
            if i > 0 {
                prop_assert!(v > bucket_max(i - 1));
            }
            // Relative width of the bucket.
            let lo = if i == 0 { 0 } else { bucket_max(i - 1) + 1 };
            prop_assert!((bucket_max(i) - lo) as f64 <= (lo as f64) / 16.0 + 1.0);
        }
    }

    #[test]
    fn percentiles_of_two_workers() {
        let a = LatencyHist::default();
        let b = LatencyHist::default();
        // 1 GHz: cycles are nanoseconds. 990 samples at 1000, 9 at 5000, 1 at 100000.
        for _ in 0..990 {
            a.record(1000);
        }
        for _ in 0..9 {
            b.record(5000);
        }
        b.record(100_000);
        let r = report(&[&a, &b], 1_000_000_000);
        assert_eq!(r.samples, 1000);
        assert!((1000.0..1000.0 * 1.07).contains(&r.p50_ns), "{r:?}");
        assert!((1000.0..1000.0 * 1.07).contains(&r.p99_ns), "{r:?}");
        assert!((5000.0..5000.0 * 1.07).contains(&r.p999_ns), "{r:?}");
        assert!((100_000.0..100_000.0 * 1.07).contains(&r.max_ns), "{r:?}");
        assert_eq!(r.buckets.len(), 3);
        assert_eq!(report(&[], 1).samples, 0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }
}
