//! Sockets set up as keepalived's socket_bind_connect() / udp_bind_connect() do
//! (keepalived/core/layer4.c): SO_MARK, then SO_BINDTODEVICE, then bind, then connect.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};

use socket2::{Domain, Protocol, Socket, Type};

use super::{strerror, Failure, ProbeSpec};

/// Why a socket could not be made ready to connect: keepalived logs these and reschedules
/// without a verdict; rvs reports them as failures so that a broken bind is visible.
fn setup_failure(what: &str, e: &io::Error, log: String) -> Failure {
    Failure::new(format!("{what}: {}", super::io_reason(e)), log)
}

/// A non-blocking socket with the spec's fwmark, bind_if and bindto/bind_port applied.
/// `udp_words`: udp_bind_connect()'s wording of a bind failure instead of socket_bind_connect()'s.
pub(crate) fn prepared(spec: &ProbeSpec, ty: Type, udp_words: bool) -> Result<Socket, Failure> {
    let proto = if ty == Type::DGRAM {
        Protocol::UDP
    } else {
        Protocol::TCP
    };
    let sock = Socket::new(Domain::IPV4, ty.nonblocking().cloexec(), Some(proto)).map_err(|e| {
        setup_failure(
            "socket",
            &e,
            format!("Cannot create socket: {}", strerror(&e)),
        )
    })?;
    if let Some(mark) = spec.fwmark {
        sock.set_mark(mark).map_err(|e| {
            let log = format!("Error setting fwmark {mark} to socket: {}", strerror(&e));
            setup_failure("fwmark", &e, log)
        })?;
    }
    if let Some(dev) = &spec.bind_if {
        sock.bind_device(Some(dev.as_bytes())).map_err(|e| {
            let log = format!("Checker can't bind to device {dev}: {}", strerror(&e));
            setup_failure("bind_if", &e, log)
        })?;
    }
    if spec.bindto.is_some() || spec.bind_port.is_some() {
        let local = SocketAddrV4::new(
            spec.bindto.unwrap_or(Ipv4Addr::UNSPECIFIED),
            spec.bind_port.unwrap_or(0),
        );
        sock.bind(&local.into()).map_err(|e| {
            let log = if udp_words {
                format!(
                    "bind failed. errno: {}, error: {}",
                    e.raw_os_error().unwrap_or(0),
                    strerror(&e)
                )
            } else {
                format!("Checker bind failed: {}", strerror(&e))
            };
            setup_failure("bind", &e, log)
        })?;
    }
    Ok(sock)
}

pub(crate) fn remote(spec: &ProbeSpec) -> SocketAddrV4 {
    SocketAddrV4::new(spec.connect_ip, spec.connect_port)
}

/// A connected UDP socket registered with tokio. `recv_err`: IP_RECVERR, as
/// udp_bind_connect() sets so that ICMP host/net unreachable are reported too (without it
/// Linux reports only port and protocol unreachable on a connected socket).
pub(crate) fn udp(spec: &ProbeSpec, recv_err: bool) -> Result<tokio::net::UdpSocket, Failure> {
    let sock = prepared(spec, Type::DGRAM, recv_err)?;
    if recv_err {
        // Failure to set it is only logged by keepalived.
        let _ = nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::Ipv4RecvErr, &true);
    }
    sock.connect(&remote(spec).into()).map_err(|e| {
        Failure::new(
            super::io_reason(&e),
            format!(
                "UDP connect error {} - {}",
                e.raw_os_error().unwrap_or(0),
                strerror(&e)
            ),
        )
    })?;
    tokio::net::UdpSocket::from_std(sock.into()).map_err(|e| {
        Failure::new(
            super::io_reason(&e),
            format!("Cannot register socket: {}", strerror(&e)),
        )
    })
}
