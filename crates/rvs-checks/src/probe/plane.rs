//! The half-open TCP check's path through the data plane (`[checks] tcp_check = "half-open"`
//! in the appliance): the checker thread queues SYN requests, a worker builds each SYN and sends
//! it out of the private port from the DIP, and the workers hand back the SYN-ACKs and RSTs
//! addressed to the checker's ports (answering a SYN-ACK with the RST themselves) before the
//! exception path sees them. No kernel, no syscall, no socket on either side; the queues are
//! lock-free and bounded, so a full one costs a resend (a lost SYN) or a timeout (a lost
//! answer), counted, never a stalled worker.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_queue::ArrayQueue;

/// The checker's source ports: the top of the ephemeral range. Segments to the DIP with a
/// destination port here are the checker's, whatever the data plane would do with them.
pub const PORTS: (u16, u16) = (40000, 60999);

/// Whether a local port is one the half-open checker sends from.
#[inline]
pub fn is_probe_port(p: u16) -> bool {
    (PORTS.0..=PORTS.1).contains(&p)
}

/// A SYN to send: the data plane picks the source address (the private port's, on the
/// server's subnet) and computes the checksums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynRequest {
    pub dst: Ipv4Addr,
    pub dport: u16,
    pub sport: u16,
    pub seq: u32,
}

/// An answer to one of the checker's SYNs, as a worker saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynAnswer {
    /// The server and its port.
    pub src: Ipv4Addr,
    pub sport: u16,
    /// The checker's port.
    pub dport: u16,
    pub ack: u32,
    /// RST (refused); otherwise SYN-ACK (up).
    pub rst: bool,
}

/// The two queues between the checker thread and the workers.
#[derive(Debug)]
pub struct SynPlane {
    requests: ArrayQueue<SynRequest>,
    answers: ArrayQueue<SynAnswer>,
    /// SYNs the checker could not queue (sent again at the next resend).
    pub requests_lost: AtomicU64,
    /// Answers the workers could not queue (the probe times out or is answered by a resend).
    pub answers_lost: AtomicU64,
    /// SYNs the data plane sent, and answers it handed back.
    pub sent: AtomicU64,
    pub answered: AtomicU64,
}

impl SynPlane {
    /// Queues of `capacity` entries each: at least one delay_loop's worth of probes, so that
    /// a pool whose checks all fall due at once (start, reload) is not resent a second later.
    pub fn new(capacity: usize) -> SynPlane {
        SynPlane {
            requests: ArrayQueue::new(capacity.max(1)),
            answers: ArrayQueue::new(capacity.max(1)),
            requests_lost: AtomicU64::new(0),
            answers_lost: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            answered: AtomicU64::new(0),
        }
    }

    /// The checker's side: false when the queue is full (counted).
    pub fn request(&self, r: SynRequest) -> bool {
        let ok = self.requests.push(r).is_ok();
        if !ok {
            self.requests_lost.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// The data plane's side: the next SYN to send.
    #[inline]
    pub fn next_request(&self) -> Option<SynRequest> {
        self.requests.pop()
    }

    /// The data plane's side: hands an answer back (counted when the queue is full).
    #[inline]
    pub fn answer(&self, a: SynAnswer) {
        if self.answers.push(a).is_ok() {
            self.answered.fetch_add(1, Ordering::Relaxed);
        } else {
            self.answers_lost.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// SYNs waiting to be sent.
    #[inline]
    pub fn queued(&self) -> usize {
        self.requests.len()
    }

    /// The checker's side: the next answer.
    pub fn next_answer(&self) -> Option<SynAnswer> {
        self.answers.pop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_queues_lose_and_count_instead_of_blocking() {
        let p = SynPlane::new(2);
        let r = SynRequest {
            dst: Ipv4Addr::new(192, 168, 8, 14),
            dport: 80,
            sport: 40000,
            seq: 7,
        };
        assert!(p.request(r) && p.request(r));
        assert!(!p.request(r));
        assert_eq!(p.requests_lost.load(Ordering::Relaxed), 1);
        assert_eq!(p.next_request(), Some(r));
        let a = SynAnswer {
            src: r.dst,
            sport: 80,
            dport: 40000,
            ack: 8,
            rst: false,
        };
        for _ in 0..3 {
            p.answer(a);
        }
        assert_eq!(p.answered.load(Ordering::Relaxed), 2);
        assert_eq!(p.answers_lost.load(Ordering::Relaxed), 1);
        assert_eq!(p.next_answer(), Some(a));
        assert!(is_probe_port(40000) && is_probe_port(60999) && !is_probe_port(39999));
    }
}
