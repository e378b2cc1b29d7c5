//! TCP_CHECK half-open (`[checks] tcp_check = "half-open"`): a SYN from a raw socket, and the
//! answer decides: SYN-ACK is up (the kernel, which has no socket for it, resets the
//! half-open connection), RST is refused, nothing is a timeout. It tells what keepalived's
//! connect() tells (a listener in the server's kernel, with room in its backlog) for a fifth of
//! the CPU: no socket, no epoll registration, no FIN exchange and no TIME_WAIT on either side
//! (docs/benchmarks.md, "Health checks at scale"). The server's application never sees it.
//!
//! Two wires, one matching: in the appliance the data plane sends the SYNs and hands back the
//! answers (`probe::plane`, no kernel at all); standalone (tests, the benchmark harness) one
//! raw socket sends every SYN and a BPF filter gives it the answers. A receive task matches
//! SYN-ACKs and RSTs to the probes waiting for them by (server, port, our port) and sequence
//! number. Probes with bindto, bind_port, bind_if or fwmark use connect() instead.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rvs_net::checksum::{finish, pseudo_header_v4, sum};
use rvs_net::ipv4::Ipv4Packet;
use rvs_net::tcp::TcpSegment;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket as Datagrams;
use tokio::sync::oneshot;

use super::plane::{SynPlane, SynRequest, PORTS};
use super::{down, io_reason, ProbeSpec, Trio, Verdict};

/// A SYN is sent again after this, as the kernel's connect() would (its initial RTO).
const RESEND: Duration = Duration::from_secs(1);
/// How long a route's source address is trusted before it is looked up again.
const SOURCE_TTL: Duration = Duration::from_secs(30);
/// How often the receive task collects the data plane's answers: well under a check's
/// resolution, and 200 wake-ups a second cost nothing measurable.
const COLLECT_EVERY: Duration = Duration::from_millis(5);

type Key = (Ipv4Addr, u16, u16);

/// What answered a SYN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    SynAck,
    Rst,
}

enum Wire {
    /// The raw socket, driven by tokio as the datagram socket it is to the kernel (recv and
    /// sendto, one segment each): tokio has no raw-socket type, and registering a bare fd
    /// would need `unsafe`.
    Raw(Datagrams),
    /// The appliance's data plane.
    Plane(Arc<SynPlane>),
}

pub struct SynProber {
    wire: Wire,
    waiting: RefCell<HashMap<Key, (u32, oneshot::Sender<Answer>)>>,
    sources: RefCell<HashMap<Ipv4Addr, (Ipv4Addr, Instant)>>,
    next_port: Cell<u16>,
    /// The raw socket's SYNs sent and answers received (the data plane counts its own).
    sent: Cell<u64>,
    answers: Cell<u64>,
}

impl SynProber {
    /// Opens the raw socket (needs CAP_NET_RAW): at start, so a missing capability is an error
    /// then, not a failed check later.
    pub fn open() -> io::Result<Socket> {
        let s = Socket::new(
            Domain::IPV4,
            Type::RAW.nonblocking().cloexec(),
            Some(Protocol::TCP),
        )?;
        // The kernel filters, so the socket sees only what can answer a probe, not every TCP
        // segment the host receives; and has room for a second's answers of a large pool.
        s.attach_filter(&answers_filter())?;
        s.set_recv_buffer_size(4 << 20)?;
        Ok(s)
    }

    /// The prober on a socket from [`SynProber::open`]; inside the engine's runtime.
    pub fn new(raw: Socket) -> io::Result<Rc<SynProber>> {
        Ok(Self::on(Wire::Raw(Datagrams::from_std(raw.into())?)))
    }

    /// The prober on the appliance's data plane.
    pub fn on_plane(plane: Arc<SynPlane>) -> Rc<SynProber> {
        Self::on(Wire::Plane(plane))
    }

    fn on(wire: Wire) -> Rc<SynProber> {
        Rc::new(SynProber {
            wire,
            waiting: RefCell::new(HashMap::new()),
            sources: RefCell::new(HashMap::new()),
            next_port: Cell::new(fastrand::u16(PORTS.0..=PORTS.1)),
            sent: Cell::new(0),
            answers: Cell::new(0),
        })
    }

    /// Its wire and counts, for `--list-checks`.
    pub fn report(&self) -> rvs_ctl::checks::HalfOpenReport {
        use std::sync::atomic::Ordering::Relaxed;
        match &self.wire {
            Wire::Raw(_) => rvs_ctl::checks::HalfOpenReport {
                via: "raw socket".into(),
                sent: self.sent.get(),
                answers: self.answers.get(),
                lost: 0,
            },
            Wire::Plane(p) => rvs_ctl::checks::HalfOpenReport {
                via: "data plane".into(),
                sent: p.sent.load(Relaxed),
                answers: p.answered.load(Relaxed),
                lost: p.requests_lost.load(Relaxed) + p.answers_lost.load(Relaxed),
            },
        }
    }

    /// Delivers answers to the waiting probes; runs for as long as the engine does.
    pub async fn receive(self: Rc<Self>) {
        let raw = match &self.wire {
            Wire::Raw(raw) => raw,
            Wire::Plane(plane) => {
                let mut tick = tokio::time::interval(COLLECT_EVERY);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    while let Some(a) = plane.next_answer() {
                        let answer = if a.rst { Answer::Rst } else { Answer::SynAck };
                        self.settle((a.src, a.sport, a.dport), a.ack, answer);
                    }
                }
            }
        };
        // Raw sockets deliver the IP header; 256 bytes cover it and the TCP header (the rest
        // of a longer segment is cut off, which is all right: only the headers matter).
        let mut buf = [0u8; 256];
        loop {
            match raw.recv(&mut buf).await {
                Ok(n) => self.dispatch(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::error!(target: "rvs::checks", "half-open TCP checks: receive: {e}");
                    return;
                }
            }
        }
    }

    fn dispatch(&self, pkt: &[u8]) {
        let Ok(ip) = Ipv4Packet::new_checked(pkt) else {
            return;
        };
        let Ok(tcp) = TcpSegment::new_checked(ip.payload()) else {
            return;
        };
        let key = (ip.src(), tcp.src_port(), tcp.dst_port());
        let answer = if tcp.rst() {
            Answer::Rst
        } else if tcp.syn() && tcp.ack() {
            Answer::SynAck
        } else {
            return;
        };
        self.answers.set(self.answers.get() + 1);
        self.settle(key, tcp.ack_no(), answer);
    }

    fn settle(&self, key: Key, ack: u32, answer: Answer) {
        let mut w = self.waiting.borrow_mut();
        // Only the answer to our SYN (ack = our seq + 1) settles a probe: a stray segment
        // with the same ports does not.
        if w.get(&key)
            .is_some_and(|(seq, _)| ack == seq.wrapping_add(1))
        {
            if let Some((_, tx)) = w.remove(&key) {
                let _ = tx.send(answer);
            }
        }
    }

    /// The source address the kernel routes `dst` from (what the SYN's checksum covers).
    fn source(&self, dst: Ipv4Addr) -> io::Result<Ipv4Addr> {
        let now = Instant::now();
        if let Some((src, at)) = self.sources.borrow().get(&dst) {
            if now.duration_since(*at) < SOURCE_TTL {
                return Ok(*src);
            }
        }
        // A connected UDP socket is the kernel's route lookup; nothing is sent.
        let u = UdpSocket::bind("0.0.0.0:0")?;
        u.connect((dst, 9))?;
        let src = match u.local_addr()? {
            std::net::SocketAddr::V4(a) => *a.ip(),
            std::net::SocketAddr::V6(_) => return Err(io::ErrorKind::Unsupported.into()),
        };
        self.sources.borrow_mut().insert(dst, (src, now));
        Ok(src)
    }

    fn port(&self, dst: Ipv4Addr, dport: u16) -> u16 {
        let w = self.waiting.borrow();
        loop {
            let p = self.next_port.get();
            self.next_port
                .set(if p >= PORTS.1 { PORTS.0 } else { p + 1 });
            if !w.contains_key(&(dst, dport, p)) {
                return p;
            }
        }
    }
}

/// Classic BPF over the IP packet: TCP to one of our ports, with RST, or SYN and ACK.
fn answers_filter() -> [socket2::SockFilter; 10] {
    use socket2::SockFilter as F;
    const LDX_B_MSH: u16 = 0xb1; // X = 4 * (pkt[k] & 0xf): the IP header length
    const LD_H_IND: u16 = 0x48; // A = u16 at X + k
    const LD_B_IND: u16 = 0x50; // A = u8 at X + k
    const JGE: u16 = 0x35;
    const JGT: u16 = 0x25;
    const JSET: u16 = 0x45;
    const JEQ: u16 = 0x15;
    const AND: u16 = 0x54;
    const RET: u16 = 0x06;
    [
        F::new(LDX_B_MSH, 0, 0, 0),
        F::new(LD_H_IND, 0, 0, 2), // destination port
        F::new(JGE, 0, 5, PORTS.0 as u32),
        F::new(JGT, 4, 0, PORTS.1 as u32),
        F::new(LD_B_IND, 0, 0, 13), // flags
        F::new(JSET, 3, 0, 0x04),   // RST
        F::new(AND, 0, 0, 0x12),
        F::new(JEQ, 1, 0, 0x12), // SYN + ACK
        F::new(RET, 0, 0, 0),
        F::new(RET, 0, 0, 256),
    ]
}

/// A SYN with an MSS option, its checksum over the pseudo header (the data plane's SYNs are
/// this segment too, `src/dataplane/synprobe.rs`).
pub fn syn_segment(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, seq: u32) -> [u8; 24] {
    let mut h = [0u8; 24];
    h[0..2].copy_from_slice(&sport.to_be_bytes());
    h[2..4].copy_from_slice(&dport.to_be_bytes());
    h[4..8].copy_from_slice(&seq.to_be_bytes());
    h[12] = 6 << 4; // 24-byte header
    h[13] = 0x02; // SYN
    h[14..16].copy_from_slice(&64240u16.to_be_bytes());
    h[20..24].copy_from_slice(&[2, 4, 0x05, 0xb4]); // MSS 1460
    let c = finish(sum(&h, pseudo_header_v4(src, dst, 6, h.len() as u16)));
    h[16..18].copy_from_slice(&c.to_be_bytes());
    h
}

/// Removes a probe's entry however it ends (answer, timeout, or the probe being dropped).
struct Waiting<'a> {
    p: &'a SynProber,
    key: Key,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.p.waiting.borrow_mut().remove(&self.key);
    }
}

/// How one attempt's SYN leaves.
enum Send<'a> {
    Raw(&'a Datagrams, [u8; 24], std::net::SocketAddr),
    Plane(&'a SynPlane, SynRequest),
}

/// One half-open attempt; the caller's total deadline bounds it.
pub(crate) async fn probe(spec: &ProbeSpec, p: &SynProber) -> Verdict {
    let at = Trio::of(spec);
    let failed = |e: &io::Error| down(io_reason(e), format!("TCP connection to {at} failed."));
    let dst = spec.connect_ip;
    let sport = p.port(dst, spec.connect_port);
    let seq = fastrand::u32(..);
    let key = (dst, spec.connect_port, sport);
    let (tx, mut rx) = oneshot::channel();
    p.waiting.borrow_mut().insert(key, (seq, tx));
    let _guard = Waiting { p, key };
    let send = match &p.wire {
        Wire::Raw(raw) => {
            let src = match p.source(dst) {
                Ok(s) => s,
                Err(e) => return failed(&e),
            };
            let seg = syn_segment(src, dst, sport, spec.connect_port, seq);
            let to = std::net::SocketAddr::V4(SocketAddrV4::new(dst, 0));
            Send::Raw(raw, seg, to)
        }
        Wire::Plane(plane) => Send::Plane(
            plane,
            SynRequest {
                dst,
                dport: spec.connect_port,
                sport,
                seq,
            },
        ),
    };
    loop {
        match &send {
            Send::Raw(raw, seg, to) => match raw.try_send_to(seg, *to) {
                Ok(_) => p.sent.set(p.sent.get() + 1),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return failed(&e),
            },
            // A full queue is a lost SYN: the resend below is the retry.
            Send::Plane(plane, r) => {
                plane.request(*r);
            }
        }
        // With a deadline no longer than the resend interval there is no resend: the caller's
        // deadline is the only timer (one less per attempt, thousands a second).
        let answer = if spec.timeout <= RESEND {
            Ok((&mut rx).await)
        } else {
            tokio::time::timeout(RESEND, &mut rx).await
        };
        match answer {
            Ok(Ok(Answer::SynAck)) => return Verdict::Up,
            Ok(Ok(Answer::Rst)) => {
                let e = io::Error::from_raw_os_error(nix::errno::Errno::ECONNREFUSED as i32);
                return failed(&e);
            }
            Ok(Err(_)) => return failed(&io::Error::other("checker stopped")),
            Err(_) => continue, // no answer yet: send the SYN again
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CheckKind;
    use crate::probe::test_util::{blackhole, closed_tcp_port, failure, ms, spec};
    use crate::probe::{probe as run, ProbeCx};

    /// Raw sockets need root (CAP_NET_RAW); the test suite runs as root (scripts/test.sh).
    fn prober_or_skip() -> Option<Socket> {
        match SynProber::open() {
            Ok(s) => Some(s),
            Err(e) => {
                assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
                eprintln!("skipped: raw sockets need root");
                None
            }
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn half_open_up_refused_and_silent() {
        let Some(raw) = prober_or_skip() else { return };
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async move {
                let p = SynProber::new(raw).unwrap();
                tokio::task::spawn_local(p.clone().receive());
                let cx = ProbeCx {
                    tls: None,
                    syn: Some(p.clone()),
                };
                // A listener that never accepts: a half-open check needs only its kernel.
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                let port = l.local_addr().unwrap().port();
                assert_eq!(
                    run(&spec(CheckKind::Tcp, port, ms(2000)), &cx).await,
                    Verdict::Up
                );
                // The accept queue stayed empty: the kernel reset the half-open connection.
                l.set_nonblocking(true).unwrap();
                assert!(
                    l.accept().is_err(),
                    "a half-open check completed a connection"
                );
                let closed = closed_tcp_port();
                let f = failure(run(&spec(CheckKind::Tcp, closed, ms(2000)), &cx).await);
                assert_eq!(f.reason, "connection refused");
                assert_eq!(
                    f.log,
                    format!("TCP connection to [127.0.0.1]:tcp:{closed} failed.")
                );
                // A listener that drops SYNs: no answer to the SYN nor to its resend at 1 s,
                // so the total deadline decides.
                let (_l, _fillers, quiet) = blackhole().await;
                let f = failure(run(&spec(CheckKind::Tcp, quiet, ms(1500)), &cx).await);
                assert_eq!(f.reason, "timeout after 1.5 s");
                assert!(p.waiting.borrow().is_empty(), "entries left behind");
            })
            .await;
    }

    #[test]
    fn the_syn_checksums_as_the_kernel_checks_it() {
        let (s, d) = (
            Ipv4Addr::new(192, 168, 8, 13),
            Ipv4Addr::new(192, 168, 8, 14),
        );
        let seg = syn_segment(s, d, 40000, 80, 0x01020304);
        // A segment holding its own correct checksum sums to zero with the pseudo header.
        assert_eq!(finish(sum(&seg, pseudo_header_v4(s, d, 6, 24))), 0);
        let t = TcpSegment::new_checked(&seg[..]).unwrap();
        assert!(t.syn() && !t.ack());
        assert_eq!(
            (t.src_port(), t.dst_port(), t.seq()),
            (40000, 80, 0x01020304)
        );
    }
}
