//! A worker's side of the exception path: what goes up to a port's kernel twin leaves the
//! worker through a bounded SPSC ring that the management core drains into the twin. The
//! worker never waits for the kernel: a rate limit (a token bucket per port, its share of the
//! port's `kernel_rate`) and a full ring both drop, counted as `kernel_drops`, so a flood at
//! the appliance's addresses costs the workers a ring enqueue per packet at most and the
//! management core no more than the limit.

use super::counters::{bump, PortCounters};
use crate::dpdk::{Burst, Mbuf, RingTx};
use crate::lb::{PortRole, Time, NANOS_PER_SEC};

/// A token bucket in integer arithmetic: credit is kept in token-nanoseconds, so no fraction
/// of a token is lost between refills and nothing divides per packet.
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    /// Tokens per second.
    rate: u64,
    /// Credit cap, in token-nanoseconds.
    cap: u64,
    credit: u64,
    last: Time,
}

impl TokenBucket {
    /// `rate` tokens per second, up to `burst` at once; starts full at `start`.
    pub fn new(rate: u64, burst: u64, start: Time) -> Self {
        let rate = rate.max(1);
        let cap = burst.max(1).saturating_mul(NANOS_PER_SEC);
        TokenBucket {
            rate,
            cap,
            credit: cap,
            last: start,
        }
    }

    /// Takes one token if there is one at `now` (monotonic nanoseconds).
    #[inline]
    pub fn take(&mut self, now: Time) -> bool {
        if self.credit < NANOS_PER_SEC {
            // At most a second of refill: enough to fill any sane bucket, and no overflow
            // (rate <= u32::MAX tokens/s).
            let elapsed = now.saturating_sub(self.last).min(NANOS_PER_SEC);
            self.credit = self
                .credit
                .saturating_add(elapsed.saturating_mul(self.rate))
                .min(self.cap);
            self.last = self.last.max(now);
            if self.credit < NANOS_PER_SEC {
                return false;
            }
        }
        self.credit -= NANOS_PER_SEC;
        true
    }
}

/// One worker's share of a port's limit: `rate / workers` per second, and a burst of 50 ms of
/// that (at least 64 packets, so a few ARP copies and a TCP window always get through).
pub fn worker_bucket(rate: u32, workers: usize, start: Time) -> TokenBucket {
    let share = (u64::from(rate) / workers.max(1) as u64).max(1);
    TokenBucket::new(share, (share / 20).max(64), start)
}

/// What one worker sends up, per port.
pub struct KernelUp {
    /// To the management core, which writes into the twin; `None`: the port has no twin.
    rings: [Option<RingTx>; 2],
    buckets: [TokenBucket; 2],
    out: [Burst; 2],
}

impl KernelUp {
    pub fn new(rings: [Option<RingTx>; 2], buckets: [TokenBucket; 2]) -> Self {
        KernelUp {
            rings,
            buckets,
            out: [Burst::new(), Burst::new()],
        }
    }

    /// Whether `role` has a twin and a token for one more packet now. For copies, so that no
    /// mbuf is allocated for a packet the limit would drop.
    #[inline]
    pub fn admit(&mut self, role: PortRole, now: Time, c: &PortCounters) -> bool {
        let i = role.index();
        if self.rings[i].is_none() {
            return false;
        }
        if !self.buckets[i].take(now) {
            bump(&c.kernel_drops, 1);
            return false;
        }
        true
    }

    /// Queues an admitted packet (see [`KernelUp::admit`]) for the twin of `role`.
    #[inline]
    pub fn push_admitted(&mut self, role: PortRole, m: Mbuf, c: &PortCounters) {
        let i = role.index();
        if let Err(m) = self.out[i].push(m) {
            self.flush_port(i, c);
            if self.out[i].push(m).is_err() {
                bump(&c.kernel_drops, 1);
            }
        }
    }

    /// Rate-limits and queues a packet for the twin of `role`.
    #[inline]
    pub fn push(&mut self, role: PortRole, m: Mbuf, now: Time, c: &PortCounters) {
        if self.admit(role, now, c) {
            self.push_admitted(role, m, c);
        }
    }

    /// Hands what was queued to the management core; what its ring has no room for is dropped
    /// and counted.
    pub fn flush(&mut self, counters: [&PortCounters; 2]) {
        for (i, c) in counters.into_iter().enumerate() {
            if !self.out[i].is_empty() {
                self.flush_port(i, c);
            }
        }
    }

    fn flush_port(&mut self, i: usize, c: &PortCounters) {
        let queued = self.out[i].len();
        let sent = match self.rings[i].as_mut() {
            Some(r) => r.enqueue(&mut self.out[i]),
            None => 0,
        };
        bump(&c.to_kernel, sent as u64);
        let left = queued - sent;
        if left > 0 {
            bump(&c.kernel_drops, left as u64);
            // Freed here.
            self.out[i] = Burst::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Time = 1_000_000;

    #[test]
    fn bucket_allows_its_burst_then_its_rate() {
        let t0 = 5 * NANOS_PER_SEC;
        let mut b = TokenBucket::new(1000, 10, t0);
        let first = (0..100).filter(|_| b.take(t0)).count();
        assert_eq!(
            first, 10,
            "the burst, then nothing more at the same instant"
        );
        // 1000/s: one token per millisecond.
        let mut got = 0;
        for k in 1..=1000 {
            got += (0..5).filter(|_| b.take(t0 + k * MS)).count();
        }
        assert!((999..=1001).contains(&got), "{got} in one second at 1000/s");
    }

    #[test]
    fn bucket_keeps_fractions_and_caps_idle_credit() {
        let mut b = TokenBucket::new(3, 1, 0);
        assert!(b.take(0));
        // 3/s: a token every 333.3 ms; three takes a third of a second apart all succeed.
        let third = NANOS_PER_SEC / 3 + 1;
        assert!(!b.take(third - 2));
        assert!(b.take(third));
        assert!(b.take(2 * third));
        assert!(b.take(3 * third));
        // An hour idle still gives one burst only.
        let later = 3600 * NANOS_PER_SEC;
        assert!(b.take(later));
        assert!(!b.take(later));
    }

    #[test]
    fn time_going_backwards_takes_nothing_extra() {
        let s = 10 * NANOS_PER_SEC;
        let mut b = TokenBucket::new(10, 1, s);
        assert!(b.take(s));
        assert!(!b.take(s));
        assert!(!b.take(s - NANOS_PER_SEC), "earlier than the last refill");
        assert!(!b.take(s + 99 * 1_000_000), "99 ms at 10/s is not a token");
        assert!(b.take(s + 100 * 1_000_000));
    }

    #[test]
    fn worker_share_splits_the_port_rate() {
        let mut b = worker_bucket(20_000, 4, 0);
        // 5000/s each, burst 250.
        assert_eq!((0..1000).filter(|_| b.take(0)).count(), 250);
        let mut tiny = worker_bucket(1, 8, 0);
        assert_eq!((0..1000).filter(|_| tiny.take(0)).count(), 64);
    }
}
