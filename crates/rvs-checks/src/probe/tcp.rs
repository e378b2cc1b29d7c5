//! TCP_CHECK (keepalived/check/check_tcp.c): a connect that succeeds is a success; the
//! connection is closed at once.

use std::io;

use socket2::Type;
use tokio::net::{TcpSocket, TcpStream};

use super::{down, io_reason, sock, Failure, ProbeSpec, Trio, Verdict};

pub(crate) enum ConnectError {
    /// Socket options or bind: the failure is already worded.
    Setup(Failure),
    Io(io::Error),
}

/// Connects as tcp_bind_connect() does; the caller's deadline bounds it.
pub(crate) async fn connect(spec: &ProbeSpec) -> Result<TcpStream, ConnectError> {
    let s = sock::prepared(spec, Type::STREAM, false).map_err(ConnectError::Setup)?;
    let s = TcpSocket::from_std_stream(s.into());
    s.connect(sock::remote(spec).into())
        .await
        .map_err(ConnectError::Io)
}

/// The errors socket_bind_connect() / socket_state() count as a failure to connect
/// (connect_fail) rather than an error running the check (connect_error).
pub(crate) fn is_connect_fail(e: &io::Error) -> bool {
    use nix::errno::Errno::*;
    matches!(
        e.raw_os_error().map(nix::errno::Errno::from_raw),
        Some(
            ENETUNREACH
                | EHOSTUNREACH
                | ECONNREFUSED
                | EHOSTDOWN
                | ENETDOWN
                | ECONNRESET
                | ECONNABORTED
                | ETIMEDOUT
        )
    )
}

pub(crate) async fn probe(spec: &ProbeSpec) -> Verdict {
    match connect(spec).await {
        // Dropping the stream closes it, as tcp_check_thread() does on connect_success.
        Ok(_stream) => Verdict::Up,
        Err(ConnectError::Setup(f)) => Verdict::Down(f),
        Err(ConnectError::Io(e)) => {
            let at = Trio::of(spec);
            // socket_state(): a kernel ETIMEDOUT is a connect_timeout.
            let log = if e.kind() == io::ErrorKind::TimedOut {
                format!("TCP connection to {at} timeout.")
            } else {
                format!("TCP connection to {at} failed.")
            };
            down(io_reason(&e), log)
        }
    }
}
