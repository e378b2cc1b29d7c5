//! The host side of the kernel twins: the tap interfaces that DPDK's net_tap / virtio-user
//! create for the host's kernel stack. [`Rtnl`] sets them up and manages their IPv4
//! addresses; [`HostWatch`] follows what the host (an operator with `ip`, a DHCP client)
//! changes on them.
//!
//! Both are synchronous and run on the management thread. Their sockets are non-blocking:
//! the kernel queues the answer to a route request before `send` returns (it runs in the
//! sender's context), so [`Rtnl`]'s bounded wait for it is only a guard, and
//! [`HostWatch::poll`] never waits.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NlasIterator, Parseable,
    NLMSG_DONE, NLMSG_ERROR, NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CREATE, NLM_F_DUMP, NLM_F_DUMP_INTR,
    NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkHeader, LinkMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::config::IfAddr;

/// Larger than any datagram the kernel sends: it caps dump chunks at 32 KiB.
const RECV_BUF: usize = 64 * 1024;
/// How long [`Rtnl`] waits for an answer that should already be queued.
const ANSWER_WAIT: Duration = Duration::from_secs(1);
/// Notification buffer: room for a burst (a twin with many addresses going away) between
/// two polls. The kernel caps it at net.core.rmem_max; best effort.
const WATCH_RCVBUF: libc::c_int = 1 << 20;
/// Datagrams read by one [`HostWatch::poll`], so that a flood of host changes cannot hold
/// the management thread; the rest wait for the next poll.
const POLL_MAX_DATAGRAMS: usize = 256;
/// An address dump that the kernel marks inconsistent (NLM_F_DUMP_INTR) is retried.
const DUMP_TRIES: usize = 3;
/// Extended-ack attribute carrying the kernel's text ("Invalid prefix length").
const NLMSGERR_ATTR_MSG: u16 = 1;
/// The request header that a capped NLMSG_ERROR echoes before its TLVs.
const NLMSG_HDRLEN: usize = 16;
/// Names are at most 15 bytes (IFNAMSIZ with its NUL).
const IFNAMSIZ: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The socket itself failed (open, bind, send, receive).
    #[error("netlink: {op}: {source}")]
    Socket {
        op: String,
        #[source]
        source: io::Error,
    },
    /// The kernel refused the request; `message` is its errno's text and, when it gave
    /// one, its own explanation.
    #[error("netlink: {op}: {message}")]
    Kernel {
        op: String,
        errno: i32,
        message: String,
    },
    #[error("netlink: {op}: the kernel did not answer within {ANSWER_WAIT:?}")]
    Timeout { op: String },
    #[error("netlink: {op}: malformed answer from the kernel: {detail}")]
    Malformed { op: String, detail: String },
    /// Host notifications were lost: the caller must re-read the addresses
    /// ([`Rtnl::addrs`]) of the interfaces it follows. The watch goes on working.
    #[error("netlink: host notifications were lost (socket buffer overrun); the addresses must be re-read")]
    Overrun,
}

/// A failure before it is given the operation it belongs to.
enum Fail {
    Socket(io::Error),
    Kernel { errno: i32, detail: Option<String> },
    Timeout,
    Malformed(String),
}

impl Fail {
    fn with(self, op: String) -> NetlinkError {
        match self {
            Fail::Socket(source) => NetlinkError::Socket { op, source },
            Fail::Kernel { errno, detail } => {
                let mut message = strerror(errno);
                if let Some(d) = detail {
                    message = format!("{message} ({d})");
                }
                NetlinkError::Kernel { op, errno, message }
            }
            Fail::Timeout => NetlinkError::Timeout { op },
            Fail::Malformed(detail) => NetlinkError::Malformed { op, detail },
        }
    }
}

/// "File exists", without std's " (os error 17)".
fn strerror(errno: i32) -> String {
    let mut s = io::Error::from_raw_os_error(errno).to_string();
    if let Some(i) = s.rfind(" (os error ") {
        s.truncate(i);
    }
    s
}

fn socket_error(op: &str) -> impl FnOnce(io::Error) -> NetlinkError + '_ {
    move |source| NetlinkError::Socket {
        op: op.to_string(),
        source,
    }
}

/// Request/ack socket (NETLINK_ROUTE).
pub struct Rtnl {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
    /// Names learned by [`Rtnl::ifindex`], for error messages an operator can read.
    names: HashMap<u32, String>,
}

impl Rtnl {
    pub fn open() -> Result<Rtnl, NetlinkError> {
        let op = "open a route socket";
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(socket_error(op))?;
        sock.bind_auto().map_err(socket_error(op))?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(socket_error(op))?;
        sock.set_non_blocking(true).map_err(socket_error(op))?;
        // Capped acks put the kernel's explanation right after the echoed header; without
        // them (kernels before 4.3 / 4.12) errors carry only the errno.
        if sock.set_cap_ack(true).is_ok() {
            let _ = sock.set_ext_ack(true);
        }
        Ok(Rtnl {
            sock,
            seq: 0,
            buf: vec![0; RECV_BUF],
            names: HashMap::new(),
        })
    }

    /// ifindex of an interface by name, None if it does not exist.
    pub fn ifindex(&mut self, name: &str) -> Result<Option<u32>, NetlinkError> {
        if name.is_empty() || name.len() >= IFNAMSIZ || name.contains('\0') {
            return Ok(None); // no interface can have that name
        }
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        let mut found = None;
        let answer = self.transact(
            NLM_F_ACK,
            RouteNetlinkMessage::GetLink(msg),
            |kind, body| {
                // Only the header: the rest (stats, per-family settings) is not needed here.
                if kind == libc::RTM_NEWLINK {
                    let h = LinkHeader::parse(body).map_err(|e| Fail::Malformed(e.to_string()))?;
                    found = Some(h.index);
                }
                Ok(())
            },
        );
        match answer {
            Ok(_) => {}
            Err(Fail::Kernel { errno, .. }) if errno == libc::ENODEV => return Ok(None),
            Err(f) => return Err(f.with(format!("look up interface {name:?}"))),
        }
        if let Some(i) = found {
            self.names.insert(i, name.to_string());
        }
        Ok(found)
    }

    /// Sets the link up (and the MTU when Some). Waits for the kernel's ack and returns its error.
    pub fn set_up(&mut self, ifindex: u32, mtu: Option<u32>) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = ifindex;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up; // leave the other flags alone
        if let Some(mtu) = mtu {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        self.transact(NLM_F_ACK, RouteNetlinkMessage::SetLink(msg), |_, _| Ok(()))
            .map(drop)
            .map_err(|f| {
                let name = self.label(ifindex);
                f.with(match mtu {
                    Some(m) => format!("set {name} up with MTU {m}"),
                    None => format!("set {name} up"),
                })
            })
    }

    /// Sets the link's MAC address (virtio-user's tap does not take the port's itself).
    pub fn set_mac(&mut self, ifindex: u32, mac: [u8; 6]) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = ifindex;
        msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
        self.transact(NLM_F_ACK, RouteNetlinkMessage::SetLink(msg), |_, _| Ok(()))
            .map(drop)
            .map_err(|f| {
                let name = self.label(ifindex);
                f.with(format!("set the MAC address of {name}"))
            })
    }

    /// Adds an IPv4 address with its prefix, so that the kernel adds the subnet route, and
    /// the broadcast address that `ip addr add ... brd +` would set. Adding one that exists
    /// (same address and prefix) is Ok.
    pub fn add_addr(&mut self, ifindex: u32, a: IfAddr) -> Result<(), NetlinkError> {
        let msg = RouteNetlinkMessage::NewAddress(address_message(ifindex, a, true));
        // EXCL so that an existing address is reported (EEXIST) rather than replaced.
        match self.transact(NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, msg, |_, _| Ok(())) {
            Ok(_) => Ok(()),
            Err(Fail::Kernel { errno, .. }) if errno == libc::EEXIST => Ok(()),
            Err(f) => Err(f.with(format!("add {a} on {}", self.label(ifindex)))),
        }
    }

    /// Removes it; removing one that is absent is Ok (a missing interface is not).
    pub fn del_addr(&mut self, ifindex: u32, a: IfAddr) -> Result<(), NetlinkError> {
        let msg = RouteNetlinkMessage::DelAddress(address_message(ifindex, a, false));
        match self.transact(NLM_F_ACK, msg, |_, _| Ok(())) {
            Ok(_) => Ok(()),
            Err(Fail::Kernel { errno, .. }) if errno == libc::EADDRNOTAVAIL => Ok(()),
            Err(f) => Err(f.with(format!("remove {a} from {}", self.label(ifindex)))),
        }
    }

    /// The IPv4 addresses on the interface now (a dump), in the kernel's order: primary
    /// addresses before their secondaries, as `ip addr show` lists them.
    pub fn addrs(&mut self, ifindex: u32) -> Result<Vec<IfAddr>, NetlinkError> {
        let op = |me: &Self| format!("list the addresses of {}", me.label(ifindex));
        for _ in 0..DUMP_TRIES {
            let mut found = Vec::new();
            let mut req = AddressMessage::default();
            req.header.family = AddressFamily::Inet;
            req.header.index = ifindex; // filtered here too: only strict sockets filter
            let interrupted = self
                .transact(
                    NLM_F_DUMP,
                    RouteNetlinkMessage::GetAddress(req),
                    |kind, body| {
                        if kind == libc::RTM_NEWADDR {
                            // A dump that skipped an address would misreport: fail instead.
                            let msg = AddressMessage::parse(body)
                                .map_err(|e| Fail::Malformed(e.to_string()))?;
                            if msg.header.index == ifindex {
                                found.extend(ifaddr(&msg));
                            }
                        }
                        Ok(())
                    },
                )
                .map_err(|f| f.with(op(self)))?;
            if !interrupted {
                return Ok(found);
            }
        }
        let detail = Some(format!(
            "addresses changed during each of {DUMP_TRIES} dumps"
        ));
        Err(Fail::Kernel {
            errno: libc::EINTR,
            detail,
        }
        .with(op(self)))
    }

    fn label(&self, ifindex: u32) -> String {
        match self.names.get(&ifindex) {
            Some(name) => name.clone(),
            None => format!("ifindex {ifindex}"),
        }
    }

    /// Sends one request and reads its answer up to the ack (or, for a dump, NLMSG_DONE),
    /// handing every other message of the answer to `each` as (type, body). Returns whether
    /// the kernel marked a dump inconsistent.
    fn transact(
        &mut self,
        flags: u16,
        msg: RouteNetlinkMessage,
        mut each: impl FnMut(u16, &[u8]) -> Result<(), Fail>,
    ) -> Result<bool, Fail> {
        // A new sequence number per request: answers to an abandoned one are skipped.
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut out = vec![0; packet.buffer_len()];
        packet.serialize(&mut out);
        self.sock.send(&out, 0).map_err(Fail::Socket)?;

        let deadline = Instant::now() + ANSWER_WAIT;
        let mut interrupted = false;
        loop {
            let n = match self.sock.recv(&mut &mut self.buf[..], libc::MSG_TRUNC) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return Err(Fail::Timeout);
                    }
                    std::thread::sleep(Duration::from_micros(50));
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Fail::Socket(e)),
            };
            let truncated = || Fail::Malformed(format!("a {n}-byte datagram was truncated"));
            let datagram = self.buf.get(..n).ok_or_else(truncated)?;
            for m in messages(datagram) {
                let m = m.map_err(Fail::Malformed)?;
                if m.sequence_number() != seq {
                    continue;
                }
                match m.message_type() {
                    NLMSG_ERROR | NLMSG_DONE => return outcome(m).map(|()| interrupted),
                    kind => {
                        interrupted |= m.flags() & NLM_F_DUMP_INTR != 0;
                        each(kind, m.payload())?;
                    }
                }
            }
        }
    }
}

/// The request for an address. `brd`: with the broadcast address, as iproute2 sets it for
/// `brd +` (none on /31 and /32, which have no broadcast).
fn address_message(ifindex: u32, a: IfAddr, brd: bool) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.family = AddressFamily::Inet;
    msg.header.prefix_len = a.prefix;
    msg.header.scope = AddressScope::Universe;
    msg.header.index = ifindex;
    // LOCAL is the interface's address; ADDRESS (the peer on point-to-point links) equal to
    // it means "not point-to-point", and with the prefix selects the address to remove.
    msg.attributes
        .push(AddressAttribute::Local(IpAddr::V4(a.addr)));
    msg.attributes
        .push(AddressAttribute::Address(IpAddr::V4(a.addr)));
    if brd && a.prefix <= 30 {
        let b = Ipv4Addr::from(u32::from(a.addr) | !a.netmask());
        msg.attributes.push(AddressAttribute::Broadcast(b));
    }
    msg
}

/// The IPv4 address of an address message; None for other families.
fn ifaddr(msg: &AddressMessage) -> Option<IfAddr> {
    if msg.header.family != AddressFamily::Inet {
        return None;
    }
    let v4 = |local: bool| {
        msg.attributes.iter().find_map(|a| match a {
            AddressAttribute::Local(IpAddr::V4(v)) if local => Some(*v),
            AddressAttribute::Address(IpAddr::V4(v)) if !local => Some(*v),
            _ => None,
        })
    };
    let addr = v4(true).or_else(|| v4(false))?;
    Some(IfAddr {
        addr,
        prefix: msg.header.prefix_len,
    })
}

/// Ok for an ack or the end of a dump, else the kernel's errno and explanation.
fn outcome(m: NetlinkBuffer<&[u8]>) -> Result<(), Fail> {
    let ack_tlvs = m.flags() & NLM_F_ACK_TLVS != 0;
    let parsed = NetlinkMessage::<RouteNetlinkMessage>::deserialize(m.into_inner())
        .map_err(|e| Fail::Malformed(e.to_string()))?;
    let (code, tlvs) = match &parsed.payload {
        NetlinkPayload::Error(e) => (e.raw_code(), e.header.get(NLMSG_HDRLEN..)),
        NetlinkPayload::Done(d) => (d.code, Some(&d.extended_ack[..])),
        _ => return Ok(()),
    };
    if code == 0 {
        return Ok(());
    }
    let detail = tlvs.filter(|_| ack_tlvs).and_then(ext_ack_message);
    Err(Fail::Kernel {
        errno: code.saturating_abs(),
        detail,
    })
}

fn ext_ack_message(tlvs: &[u8]) -> Option<String> {
    let nla = NlasIterator::new(tlvs)
        .map_while(Result::ok)
        .find(|nla| nla.kind() == NLMSGERR_ATTR_MSG)?;
    let text = String::from_utf8_lossy(nla.value());
    let text = text.trim_end_matches('\0');
    (!text.is_empty()).then(|| text.to_string())
}

/// The netlink messages of one datagram, each checked to lie within it. A malformed one
/// ends the iteration: the messages after it cannot be framed.
fn messages(data: &[u8]) -> impl Iterator<Item = Result<NetlinkBuffer<&[u8]>, String>> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let len = match NetlinkBuffer::new_checked(rest) {
            Ok(b) => b.length() as usize,
            Err(e) => {
                rest = &[];
                return Some(Err(e.to_string()));
            }
        };
        let this = rest.get(..len).unwrap_or(rest);
        // Messages are 4-byte aligned within a datagram.
        rest = rest.get(len.next_multiple_of(4)..).unwrap_or(&[]);
        Some(Ok(NetlinkBuffer::new(this)))
    })
}

/// What changed on the host, as learned from multicast notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostEvent {
    AddrAdded {
        ifindex: u32,
        addr: IfAddr,
    },
    AddrRemoved {
        ifindex: u32,
        addr: IfAddr,
    },
    /// The interface is gone (RTM_DELLINK), or moved to another network namespace.
    LinkRemoved {
        ifindex: u32,
    },
    /// The link's state now: up = IFF_UP set. Sent for every RTM_NEWLINK, which the kernel
    /// sends on many changes (flags, carrier, MTU, name): the same state may repeat.
    LinkState {
        ifindex: u32,
        up: bool,
    },
}

/// A non-blocking subscription to RTMGRP_IPV4_IFADDR and RTMGRP_LINK.
pub struct HostWatch {
    sock: Socket,
    buf: Vec<u8>,
}

impl HostWatch {
    pub fn open() -> Result<HostWatch, NetlinkError> {
        let op = "subscribe to the host's address and link changes";
        let groups = (libc::RTMGRP_IPV4_IFADDR | libc::RTMGRP_LINK) as u32;
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(socket_error(op))?;
        sock.bind(&SocketAddr::new(0, groups))
            .map_err(socket_error(op))?;
        sock.set_non_blocking(true).map_err(socket_error(op))?;
        let _ = sock.set_rx_buf_sz(WATCH_RCVBUF);
        Ok(HostWatch {
            sock,
            buf: vec![0; RECV_BUF],
        })
    }

    /// Appends the pending events, in the kernel's order, and returns without waiting when
    /// there are none. Reads at most [`POLL_MAX_DATAGRAMS`] notifications a call, the rest
    /// on the next. Malformed and unknown messages, and IPv6 addresses, are skipped.
    ///
    /// [`NetlinkError::Overrun`]: notifications were lost (the events appended before it
    /// are valid); re-read the addresses with [`Rtnl::addrs`] and go on polling.
    pub fn poll(&mut self, out: &mut Vec<HostEvent>) -> Result<(), NetlinkError> {
        for _ in 0..POLL_MAX_DATAGRAMS {
            match self.sock.recv_from(&mut &mut self.buf[..], libc::MSG_TRUNC) {
                // Only the kernel (port 0) speaks for the host.
                Ok((n, from)) => match self.buf.get(..n) {
                    Some(datagram) if from.port_number() == 0 => events(datagram, out),
                    Some(_) => {}
                    None => return Err(NetlinkError::Overrun), // truncated: an event is lost
                },
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    return Err(NetlinkError::Overrun)
                }
                Err(source) => {
                    let op = "read the host's notifications".to_string();
                    return Err(NetlinkError::Socket { op, source });
                }
            }
        }
        Ok(())
    }
}

/// The events of one notification datagram.
fn events(datagram: &[u8], out: &mut Vec<HostEvent>) {
    for m in messages(datagram).map_while(Result::ok) {
        let kind = m.message_type();
        let event = match kind {
            libc::RTM_NEWADDR | libc::RTM_DELADDR => {
                AddressMessage::parse(m.payload()).ok().and_then(|msg| {
                    let (ifindex, addr) = (msg.header.index, ifaddr(&msg)?);
                    Some(if kind == libc::RTM_NEWADDR {
                        HostEvent::AddrAdded { ifindex, addr }
                    } else {
                        HostEvent::AddrRemoved { ifindex, addr }
                    })
                })
            }
            // Only the header, which any kernel's link message has. Only AF_UNSPEC: a
            // bridge also sends AF_BRIDGE RTM_DELLINK when a port leaves it, while the
            // port itself stays.
            libc::RTM_NEWLINK | libc::RTM_DELLINK => LinkHeader::parse(m.payload())
                .ok()
                .filter(|h| h.interface_family == AddressFamily::Unspec)
                .map(|h| {
                    if kind == libc::RTM_DELLINK {
                        HostEvent::LinkRemoved { ifindex: h.index }
                    } else {
                        let up = h.flags.contains(LinkFlags::Up);
                        HostEvent::LinkState {
                            ifindex: h.index,
                            up,
                        }
                    }
                }),
            _ => None,
        };
        out.extend(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Mutex, MutexGuard};

    /// The tests that change interfaces run one at a time, so that one's notifications do
    /// not land in another's "nothing pending" check.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn serial() -> MutexGuard<'static, ()> {
        SERIAL.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn root(test: &str) -> bool {
        let is_root = nix::unistd::geteuid().is_root();
        if !is_root {
            eprintln!("{test}: skipped, it creates interfaces and needs root");
        }
        is_root
    }

    fn ip(args: &[&str]) {
        let out = Command::new("ip").args(args).output().expect("run ip");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "ip {}: {err}", args.join(" "));
    }

    /// A software interface of this test's own, deleted when dropped (even on failure).
    struct TestLink {
        name: String,
        ifindex: u32,
    }

    impl TestLink {
        /// An always-up link: `dummy`, or `ifb` where the kernel has no dummy driver.
        fn new() -> TestLink {
            TestLink::of(&["dummy", "ifb"])
        }

        fn of(kinds: &[&str]) -> TestLink {
            static N: AtomicU32 = AtomicU32::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let name = format!("rvsnl{}x{n}", std::process::id());
            assert!(name.len() < IFNAMSIZ, "{name} is too long");
            let made = kinds.iter().any(|kind| {
                Command::new("ip")
                    .args(["link", "add", &name, "type", kind])
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            });
            assert!(made, "ip link add {name} type {kinds:?} failed");
            let ifindex = std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex"))
                .expect("read ifindex")
                .trim()
                .parse()
                .expect("parse ifindex");
            TestLink { name, ifindex }
        }

        fn sys(&self, file: &str) -> String {
            std::fs::read_to_string(format!("/sys/class/net/{}/{file}", self.name))
                .expect("read sysfs")
                .trim()
                .to_string()
        }

        /// `ip -4 -o addr show dev NAME`, one line per address.
        fn ip_show(&self) -> String {
            let out = Command::new("ip")
                .args(["-4", "-o", "addr", "show", "dev", &self.name])
                .output()
                .expect("run ip");
            assert!(out.status.success());
            String::from_utf8_lossy(&out.stdout).into_owned()
        }

        /// The addresses as `ip` lists them.
        fn ip_addrs(&self) -> Vec<IfAddr> {
            self.ip_show()
                .lines()
                .filter_map(|l| l.split_whitespace().skip_while(|w| *w != "inet").nth(1))
                .map(ifa)
                .collect()
        }
    }

    impl Drop for TestLink {
        fn drop(&mut self) {
            let _ = Command::new("ip")
                .args(["link", "del", &self.name])
                .stderr(Stdio::null())
                .status();
        }
    }

    fn ifa(s: &str) -> IfAddr {
        let (a, p) = s.split_once('/').expect("a/p");
        IfAddr {
            addr: a.parse().expect("address"),
            prefix: p.parse().expect("prefix"),
        }
    }

    /// Polls until an event satisfies `want`, for up to two seconds; returns all seen.
    fn wait_for(watch: &mut HostWatch, want: impl Fn(&HostEvent) -> bool) -> Vec<HostEvent> {
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            watch.poll(&mut seen).expect("poll");
            if seen.iter().any(&want) {
                return seen;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("no such event within 2 s; saw {seen:?}");
    }

    #[test]
    fn ifindex_finds_the_interface_and_none_for_a_missing_one() {
        if !root("ifindex") {
            return;
        }
        let _s = serial();
        let link = TestLink::new();
        let mut rtnl = Rtnl::open().expect("open");
        assert_eq!(
            rtnl.ifindex(&link.name).expect("ifindex"),
            Some(link.ifindex)
        );
        assert_eq!(rtnl.ifindex("rvsnl-absent").expect("ifindex"), None);
        assert_eq!(
            rtnl.ifindex("rvsnl-far-too-long-a-name").expect("ifindex"),
            None
        );
        assert_eq!(rtnl.ifindex("").expect("ifindex"), None);
    }

    #[test]
    fn set_up_sets_iff_up_and_the_mtu() {
        if !root("set_up") {
            return;
        }
        let _s = serial();
        let link = TestLink::new();
        let mut rtnl = Rtnl::open().expect("open");
        assert_eq!(link.sys("operstate"), "down");
        rtnl.set_up(link.ifindex, Some(1400)).expect("set_up");
        assert_ne!(link.sys("operstate"), "down");
        let flags = u32::from_str_radix(link.sys("flags").trim_start_matches("0x"), 16);
        assert_eq!(flags.expect("flags") & 1, 1, "IFF_UP");
        assert_eq!(link.sys("mtu"), "1400");
        rtnl.set_up(link.ifindex, None).expect("set_up again");
        assert_eq!(link.sys("mtu"), "1400");
    }

    #[test]
    fn set_mac_sets_the_link_address() {
        if !root("set_mac") {
            return;
        }
        let _s = serial();
        // ifb refuses a new MAC (EOPNOTSUPP); a bridge takes one, as a tap does.
        let link = TestLink::of(&["bridge"]);
        let mut rtnl = Rtnl::open().expect("open");
        let mac = [0x02, 0x52, 0x56, 0x53, 0x00, 0x13];
        rtnl.set_mac(link.ifindex, mac).expect("set_mac");
        assert_eq!(link.sys("address"), "02:52:56:53:00:13");
    }

    #[test]
    fn add_addr_adds_the_address_its_broadcast_and_route_and_twice_is_ok() {
        if !root("add_addr") {
            return;
        }
        let _s = serial();
        let link = TestLink::new();
        let mut rtnl = Rtnl::open().expect("open");
        rtnl.set_up(link.ifindex, None).expect("set_up");
        let a = ifa("198.18.1.1/24");
        rtnl.add_addr(link.ifindex, a).expect("add");
        let shown = link.ip_show();
        assert!(
            shown.contains("inet 198.18.1.1/24 brd 198.18.1.255 "),
            "{shown}"
        );
        rtnl.add_addr(link.ifindex, a).expect("add again");
        assert_eq!(link.ip_addrs(), vec![a]);
        // /31 and /32 have no broadcast address, as with `brd +`.
        rtnl.add_addr(link.ifindex, ifa("198.18.2.1/32"))
            .expect("add /32");
        let shown = link.ip_show();
        assert!(shown.contains("inet 198.18.2.1/32 scope"), "{shown}");
        let routes = Command::new("ip")
            .args(["-4", "route", "show", "dev", &link.name])
            .output()
            .expect("ip route");
        let routes = String::from_utf8_lossy(&routes.stdout);
        assert!(routes.contains("198.18.1.0/24 proto kernel"), "{routes}");
    }

    #[test]
    fn addrs_returns_what_ip_shows_secondaries_and_labels_included() {
        if !root("addrs") {
            return;
        }
        let _s = serial();
        let link = TestLink::new();
        let mut rtnl = Rtnl::open().expect("open");
        assert_eq!(rtnl.addrs(link.ifindex).expect("addrs"), vec![]);
        rtnl.add_addr(link.ifindex, ifa("198.18.3.1/24"))
            .expect("add");
        rtnl.add_addr(link.ifindex, ifa("198.18.3.2/24"))
            .expect("add secondary");
        let label = format!("{}:1", link.name);
        let label = label.get(label.len().saturating_sub(15)..).expect("label");
        ip(&[
            "addr",
            "add",
            "198.18.3.3/24",
            "dev",
            &link.name,
            "label",
            label,
        ]);
        ip(&["addr", "add", "198.18.4.1/28", "dev", &link.name]);
        let got = rtnl.addrs(link.ifindex).expect("addrs");
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got, link.ip_addrs());
        assert!(link.ip_show().contains("secondary"));
    }

    #[test]
    fn del_addr_removes_it_and_removing_an_absent_one_is_ok() {
        if !root("del_addr") {
            return;
        }
        let _s = serial();
        let link = TestLink::new();
        let mut rtnl = Rtnl::open().expect("open");
        let (a, b) = (ifa("198.18.5.1/24"), ifa("198.18.5.2/24"));
        rtnl.add_addr(link.ifindex, a).expect("add");
        rtnl.add_addr(link.ifindex, b).expect("add");
        rtnl.del_addr(link.ifindex, b).expect("del");
        assert_eq!(link.ip_addrs(), vec![a]);
        rtnl.del_addr(link.ifindex, b).expect("del absent");
        // The prefix is part of the address: a/16 is not a/24.
        rtnl.del_addr(link.ifindex, ifa("198.18.5.1/16"))
            .expect("del other prefix");
        assert_eq!(link.ip_addrs(), vec![a]);
        rtnl.del_addr(link.ifindex, a).expect("del");
        assert_eq!(link.ip_addrs(), vec![]);
        assert_eq!(rtnl.addrs(link.ifindex).expect("addrs"), vec![]);
    }

    #[test]
    fn kernel_errors_are_one_line_an_operator_reads() {
        if !root("errors") {
            return;
        }
        let _s = serial();
        let link = TestLink::new();
        let mut rtnl = Rtnl::open().expect("open");
        let gone = 0x7fff_fff0;
        let e = rtnl
            .add_addr(gone, ifa("198.18.6.1/24"))
            .expect_err("no such link");
        assert!(
            matches!(
                e,
                NetlinkError::Kernel {
                    errno: libc::ENODEV,
                    ..
                }
            ),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(
            text.starts_with(&format!(
                "netlink: add 198.18.6.1/24 on ifindex {gone}: No such device"
            )),
            "{text}"
        );
        assert!(rtnl.del_addr(gone, ifa("198.18.6.1/24")).is_err());
        assert!(rtnl.set_up(gone, None).is_err());
        // Named once looked up; the kernel's own explanation follows its errno.
        rtnl.ifindex(&link.name).expect("ifindex");
        let e = rtnl
            .add_addr(link.ifindex, ifa("198.18.6.1/33"))
            .expect_err("bad prefix");
        let text = e.to_string();
        let head = format!(
            "netlink: add 198.18.6.1/33 on {}: Invalid argument",
            link.name
        );
        assert!(text.starts_with(&head), "{text}");
        assert!(!text.contains('\n'), "{text}");
        eprintln!("{text}");
        // A bridge has a maximum MTU (ifb has none).
        let bridge = TestLink::of(&["bridge"]);
        let e = rtnl
            .set_up(bridge.ifindex, Some(70_000))
            .expect_err("MTU too large");
        eprintln!("{e}");
        assert!(
            matches!(
                e,
                NetlinkError::Kernel {
                    errno: libc::EINVAL,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(bridge.sys("operstate"), "down", "refused as a whole");
    }

    #[test]
    fn host_watch_follows_the_ip_tool() {
        if !root("host_watch") {
            return;
        }
        let _s = serial();
        let mut watch = HostWatch::open().expect("watch");
        let link = TestLink::new();
        let i = link.ifindex;
        ip(&["link", "set", &link.name, "up"]);
        wait_for(&mut watch, |e| {
            *e == HostEvent::LinkState {
                ifindex: i,
                up: true,
            }
        });

        ip(&["addr", "add", "198.18.7.1/24", "dev", &link.name]);
        let a = ifa("198.18.7.1/24");
        wait_for(&mut watch, |e| {
            *e == HostEvent::AddrAdded {
                ifindex: i,
                addr: a,
            }
        });
        // A secondary with a label.
        let label = format!("{}:9", link.name);
        let label = label.get(label.len().saturating_sub(15)..).expect("label");
        ip(&[
            "addr",
            "add",
            "198.18.7.2/24",
            "dev",
            &link.name,
            "label",
            label,
        ]);
        let b = ifa("198.18.7.2/24");
        wait_for(&mut watch, |e| {
            *e == HostEvent::AddrAdded {
                ifindex: i,
                addr: b,
            }
        });

        ip(&["addr", "del", "198.18.7.2/24", "dev", &link.name]);
        wait_for(&mut watch, |e| {
            *e == HostEvent::AddrRemoved {
                ifindex: i,
                addr: b,
            }
        });
        ip(&["link", "set", &link.name, "down"]);
        wait_for(&mut watch, |e| {
            *e == HostEvent::LinkState {
                ifindex: i,
                up: false,
            }
        });

        ip(&["link", "del", &link.name]);
        let seen = wait_for(&mut watch, |e| *e == HostEvent::LinkRemoved { ifindex: i });
        // Its addresses went with it, and were reported.
        assert!(
            seen.contains(&HostEvent::AddrRemoved {
                ifindex: i,
                addr: a
            }),
            "{seen:?}"
        );
    }

    #[test]
    fn a_port_leaving_a_bridge_is_not_a_link_removed() {
        if !root("bridge") {
            return;
        }
        let _s = serial();
        let bridge = TestLink::of(&["bridge"]);
        let link = TestLink::new();
        let mut watch = HostWatch::open().expect("watch");
        ip(&["link", "set", &link.name, "master", &bridge.name]);
        ip(&["link", "set", &link.name, "nomaster"]);
        ip(&["link", "del", &bridge.name]);
        let b = bridge.ifindex;
        let seen = wait_for(&mut watch, |e| *e == HostEvent::LinkRemoved { ifindex: b });
        let port_gone = HostEvent::LinkRemoved {
            ifindex: link.ifindex,
        };
        assert!(!seen.contains(&port_gone), "{seen:?}");
    }

    #[test]
    fn an_overflowing_watch_reports_overrun_then_goes_on() {
        if !root("overrun") {
            return;
        }
        let _s = serial();
        let link = TestLink::new();
        let mut watch = HostWatch::open().expect("watch");
        // The smallest buffer the kernel allows: a few notifications fill it.
        let smallest: libc::c_int = 1;
        watch.sock.set_rx_buf_sz(smallest).expect("rcvbuf");
        let mut rtnl = Rtnl::open().expect("open");
        let addrs: Vec<IfAddr> = (1..=40).map(|n| ifa(&format!("198.18.9.{n}/24"))).collect();
        for a in &addrs {
            rtnl.add_addr(link.ifindex, *a).expect("add");
        }
        let mut out = Vec::new();
        let overrun = (0..10).any(|_| matches!(watch.poll(&mut out), Err(NetlinkError::Overrun)));
        assert!(overrun, "no overrun; saw {} events", out.len());
        // The caller resynchronises from a dump, and later changes still arrive.
        assert_eq!(rtnl.addrs(link.ifindex).expect("addrs"), addrs);
        let drained = (0..10).any(|_| watch.poll(&mut out).is_ok());
        assert!(drained);
        let last = addrs[39];
        rtnl.del_addr(link.ifindex, last).expect("del");
        let i = link.ifindex;
        wait_for(&mut watch, |e| {
            *e == HostEvent::AddrRemoved {
                ifindex: i,
                addr: last,
            }
        });
    }

    #[test]
    fn poll_on_an_idle_socket_returns_at_once_with_nothing() {
        let _s = serial();
        let mut watch = HostWatch::open().expect("watch");
        let mut out = Vec::new();
        let t = Instant::now();
        watch.poll(&mut out).expect("poll");
        watch.poll(&mut out).expect("poll again");
        assert!(t.elapsed() < Duration::from_millis(50), "{:?}", t.elapsed());
        assert_eq!(out, vec![]);
    }

    /// A notification as the kernel frames it, built with the crate.
    fn frame(msg: RouteNetlinkMessage) -> Vec<u8> {
        let mut packet = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(msg));
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf);
        buf
    }

    #[test]
    fn events_decodes_ipv4_and_skips_ipv6_bridge_and_garbage() {
        let a = ifa("198.18.8.1/24");
        let mut v6 = AddressMessage::default();
        v6.header.family = AddressFamily::Inet6;
        v6.header.index = 3;
        v6.attributes.push(AddressAttribute::Address(
            "2001:db8::1".parse().expect("v6"),
        ));
        let mut bridge_port = LinkMessage::default();
        bridge_port.header.interface_family = AddressFamily::Bridge;
        bridge_port.header.index = 4;
        let mut gone = LinkMessage::default();
        gone.header.index = 5;

        // Several messages in one datagram, as the kernel may send.
        let mut datagram = frame(RouteNetlinkMessage::NewAddress(address_message(3, a, true)));
        datagram.extend(frame(RouteNetlinkMessage::NewAddress(v6)));
        datagram.extend(frame(RouteNetlinkMessage::DelLink(bridge_port)));
        datagram.extend(frame(RouteNetlinkMessage::DelLink(gone)));
        let mut out = Vec::new();
        events(&datagram, &mut out);
        assert_eq!(
            out,
            vec![
                HostEvent::AddrAdded {
                    ifindex: 3,
                    addr: a
                },
                HostEvent::LinkRemoved { ifindex: 5 }
            ]
        );

        // Truncated anywhere, or garbage: no panic, and only whole messages decode.
        for cut in 0..datagram.len() {
            let mut out = Vec::new();
            events(&datagram[..cut], &mut out);
            assert!(out.len() <= 2);
        }
        // Every byte of it changed to a few values: never a panic.
        for at in 0..datagram.len() {
            for v in [0x00, 0x01, 0x04, 0x7f, 0x80, 0xff] {
                let mut bad = datagram.clone();
                bad[at] = v;
                events(&bad, &mut Vec::new());
            }
        }
        let mut out = Vec::new();
        events(&[0xff; 64], &mut out);
        events(
            &[20, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4],
            &mut out,
        );
        assert_eq!(out, vec![]);
    }

    #[test]
    fn strerror_drops_the_os_error_suffix() {
        assert_eq!(strerror(libc::EEXIST), "File exists");
    }
}
