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
mod tests;
