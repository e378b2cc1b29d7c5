//! Helpers shared by the probe tests: specs aimed at 127.0.0.1 and small loopback servers.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{Failure, ProbeSpec, Verdict};
use crate::model::CheckKind;

pub fn spec(kind: CheckKind, port: u16, timeout: Duration) -> ProbeSpec {
    ProbeSpec {
        kind,
        connect_ip: Ipv4Addr::LOCALHOST,
        connect_port: port,
        bindto: None,
        bind_port: None,
        bind_if: None,
        fwmark: None,
        timeout,
        virtualhost: None,
    }
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The failure of a verdict that must be Down.
pub fn failure(v: Verdict) -> Failure {
    match v {
        Verdict::Down(f) => f,
        other => panic!("expected Down, got {other:?}"),
    }
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
pub fn closed_tcp_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

pub fn closed_udp_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}

/// Reads an HTTP request up to its blank line (or EOF).
pub async fn read_request<S: AsyncRead + Unpin>(s: &mut S) -> Vec<u8> {
    let mut req = Vec::new();
    let mut b = [0u8; 512];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut b).await.unwrap();
        if n == 0 {
            break;
        }
        req.extend_from_slice(&b[..n]);
    }
    req
}

/// Serves one canned reply per connection, in order, closing each after its reply; returns
/// the port and a handle giving back the requests received.
pub async fn http_server(replies: Vec<Vec<u8>>) -> (u16, tokio::task::JoinHandle<Vec<Vec<u8>>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let h = tokio::spawn(async move {
        let mut reqs = Vec::new();
        for reply in replies {
            let (mut s, _) = l.accept().await.unwrap();
            reqs.push(read_request(&mut s).await);
            write_and_close(&mut s, &reply).await;
        }
        reqs
    });
    (port, h)
}

pub async fn write_and_close<S: AsyncWrite + Unpin>(s: &mut S, reply: &[u8]) {
    // The client may have gone (a failed url): errors are the test's outcome, not a panic.
    let _ = s.write_all(reply).await;
    let _ = s.shutdown().await;
}

/// The request keepalived sends for `path` with no virtualhost, HTTP/1.0.
pub fn plain_get(path: &str, port: u16) -> Vec<u8> {
    format!("GET {path} HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 127.0.0.1:{port}\r\n\r\n")
        .into_bytes()
}

/// A fresh directory for one test's files.
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rvs-probe-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A listener whose accept queue is full drops new SYNs: a blackhole on loopback.
pub async fn blackhole() -> (tokio::net::TcpListener, Vec<tokio::net::TcpStream>, u16) {
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let l = s.listen(0).unwrap();
    let addr = l.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..16 {
        match tokio::time::timeout(ms(200), tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(c)) => fillers.push(c),
            _ => return (l, fillers, addr.port()),
        }
    }
    panic!("accept queue never filled");
}
