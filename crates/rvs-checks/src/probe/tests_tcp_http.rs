//! TCP_CHECK and HTTP_GET against listeners on 127.0.0.1.

use std::time::Instant;

use md5::{Digest, Md5};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use super::test_util::*;
use super::{http, probe, success_log, ProbeCx, Verdict};
use crate::model::{CheckKind, HttpCheck, HttpProtocol, Url};

fn url(path: &str) -> Url {
    Url {
        path: path.into(),
        digest: None,
        status_codes: vec![(200, 299)],
        virtualhost: None,
    }
}

fn http_kind(urls: Vec<Url>, proto: Option<HttpProtocol>) -> CheckKind {
    CheckKind::Http(HttpCheck {
        tls: false,
        urls,
        virtualhost: None,
        http_protocol: proto,
    })
}

#[tokio::test]
async fn tcp_up_connects_and_closes() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let s = spec(CheckKind::Tcp, port, ms(1000));
    assert_eq!(probe(&s, &ProbeCx::default()).await, Verdict::Up);
    // The server saw the connection, and the checker closed it at once (EOF).
    let (mut c, _) = l.accept().await.unwrap();
    let mut b = [0u8; 1];
    assert_eq!(
        tokio::io::AsyncReadExt::read(&mut c, &mut b).await.unwrap(),
        0
    );
    assert_eq!(
        success_log(&s),
        format!("TCP connection to [127.0.0.1]:tcp:{port} success.")
    );
}

#[tokio::test]
async fn tcp_refused() {
    let port = closed_tcp_port();
    let f = failure(probe(&spec(CheckKind::Tcp, port, ms(1000)), &ProbeCx::default()).await);
    assert_eq!(f.reason, "connection refused");
    assert_eq!(
        f.log,
        format!("TCP connection to [127.0.0.1]:tcp:{port} failed.")
    );
}

#[tokio::test]
async fn tcp_timeout_is_the_total_deadline() {
    let (_l, _fillers, port) = blackhole().await;
    let t = Instant::now();
    let f = failure(probe(&spec(CheckKind::Tcp, port, ms(300)), &ProbeCx::default()).await);
    let took = t.elapsed();
    assert_eq!(f.reason, "timeout after 0.3 s");
    assert_eq!(
        f.log,
        format!("TCP connection to [127.0.0.1]:tcp:{port} timeout.")
    );
    assert!(took >= ms(290) && took < ms(1000), "{took:?}");
}

#[tokio::test]
async fn tcp_binds_source_address_and_port() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let src = closed_tcp_port();
    let mut s = spec(CheckKind::Tcp, port, ms(1000));
    s.bindto = Some("127.0.0.1".parse().unwrap());
    s.bind_port = Some(src);
    assert_eq!(probe(&s, &ProbeCx::default()).await, Verdict::Up);
    let (_c, peer) = l.accept().await.unwrap();
    assert_eq!(peer.port(), src);
}

#[tokio::test]
async fn tcp_bind_if_unknown_device_is_a_failure() {
    let mut s = spec(CheckKind::Tcp, 80, ms(1000));
    s.bind_if = Some("rvsnodev0".into());
    let f = failure(probe(&s, &ProbeCx::default()).await);
    // ENODEV as root; EPERM without CAP_NET_RAW.
    assert!(f.reason.starts_with("bind_if: "), "{}", f.reason);
    assert!(
        f.log
            .starts_with("Checker can't bind to device rvsnodev0: "),
        "{}",
        f.log
    );
}

#[tokio::test]
async fn tcp_fwmark_is_set_or_refused() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let mut s = spec(CheckKind::Tcp, port, ms(1000));
    s.fwmark = Some(7);
    // SO_MARK needs CAP_NET_ADMIN: as root the probe runs, else it fails with a reason.
    match probe(&s, &ProbeCx::default()).await {
        Verdict::Up => assert!(nix::unistd::Uid::effective().is_root()),
        v => {
            let f = failure(v);
            assert!(f.reason.starts_with("fwmark: "), "{}", f.reason);
            assert!(
                f.log.starts_with("Error setting fwmark 7 to socket: "),
                "{}",
                f.log
            );
        }
    }
}

#[tokio::test]
async fn http_up_sends_keepalived_request() {
    let (port, srv) = http_server(vec![
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()
    ])
    .await;
    let s = spec(http_kind(vec![url("/health")], None), port, ms(2000));
    assert_eq!(probe(&s, &ProbeCx::default()).await, Verdict::Up);
    assert_eq!(srv.await.unwrap(), vec![plain_get("/health", port)]);
    assert_eq!(
        success_log(&s),
        format!("Remote Web server [127.0.0.1]:tcp:{port} succeed on service.")
    );
}

#[tokio::test]
async fn http_wrong_status() {
    let (port, _srv) =
        http_server(vec![b"HTTP/1.1 503 Service Unavailable\r\n\r\n".to_vec()]).await;
    let s = spec(http_kind(vec![url("/")], None), port, ms(2000));
    let f = failure(probe(&s, &ProbeCx::default()).await);
    assert_eq!(f.reason, "HTTP status 503");
    assert_eq!(
        f.log,
        format!("HTTP status code error to server [127.0.0.1]:tcp:{port}.")
    );
}

#[tokio::test]
async fn http_status_ranges() {
    let (port, _srv) = http_server(vec![b"HTTP/1.0 404 Not Found\r\n\r\n".to_vec()]).await;
    let mut u = url("/");
    u.status_codes = vec![(200, 200), (400, 404)];
    let s = spec(http_kind(vec![u], None), port, ms(2000));
    assert_eq!(probe(&s, &ProbeCx::default()).await, Verdict::Up);
}

fn digest_of(body: &[u8]) -> [u8; 16] {
    Md5::digest(body).into()
}

#[tokio::test]
async fn http_digest_ok_and_mismatch() {
    let body = b"<html>fine</html>\n";
    let reply = [b"HTTP/1.0 200 OK\r\nServer: t\r\n\r\n".as_slice(), body].concat();
    let (port, _srv) = http_server(vec![reply.clone(), reply]).await;
    let mut u = url("/");
    u.digest = Some(digest_of(body));
    let s = spec(http_kind(vec![u.clone()], None), port, ms(2000));
    assert_eq!(probe(&s, &ProbeCx::default()).await, Verdict::Up);

    u.digest = Some(digest_of(b"something else"));
    let s = spec(http_kind(vec![u], None), port, ms(2000));
    let f = failure(probe(&s, &ProbeCx::default()).await);
    assert_eq!(f.reason, "digest mismatch");
    assert_eq!(
        f.log,
        format!("MD5 digest error to server [127.0.0.1]:tcp:{port}.")
    );
}

#[tokio::test]
async fn http_digest_stops_at_content_length() {
    // http_process_response() hashes at most Content-Length bytes of body.
    let reply = b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabcdef".to_vec();
    let (port, _srv) = http_server(vec![reply]).await;
    let mut u = url("/");
    u.digest = Some(digest_of(b"abc"));
    let s = spec(http_kind(vec![u], None), port, ms(2000));
    assert_eq!(probe(&s, &ProbeCx::default()).await, Verdict::Up);
}

#[tokio::test]
async fn http_large_body_digest() {
    // A body far larger than the 4 KiB read buffer, hashed as it streams.
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let reply = [b"HTTP/1.0 200 OK\r\n\r\n".as_slice(), &body].concat();
    let (port, _srv) = http_server(vec![reply]).await;
    let mut u = url("/big");
    u.digest = Some(digest_of(&body));
    let s = spec(http_kind(vec![u], None), port, ms(5000));
    assert_eq!(probe(&s, &ProbeCx::default()).await, Verdict::Up);
}

#[tokio::test]
async fn http_garbage_and_truncated_replies() {
    let (port, _srv) = http_server(vec![
        b"garbage\r\n\r\n".to_vec(),
        b"HTTP/1.0 200 OK\r\nno blank line".to_vec(),
        b"HTTP/1.1 200\r\n\r\n".to_vec(),
    ])
    .await;
    let s = spec(http_kind(vec![url("/")], None), port, ms(2000));
    let f = failure(probe(&s, &ProbeCx::default()).await);
    assert_eq!(f.reason, "bad HTTP response");
    assert_eq!(
        f.log,
        format!("HTTP status code error to server [127.0.0.1]:tcp:{port}.")
    );
    let f = failure(probe(&s, &ProbeCx::default()).await);
    assert_eq!(f.reason, "bad HTTP response");
    assert_eq!(
        f.log,
        format!("Read, no data received from  server [127.0.0.1]:tcp:{port}.")
    );
    // extract_status_code() wants a space after the code: no reason phrase, no status.
    let f = failure(probe(&s, &ProbeCx::default()).await);
    assert_eq!(f.reason, "bad HTTP response");
}

#[tokio::test]
async fn http_trickling_server_hits_the_total_deadline() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut c, _) = l.accept().await.unwrap();
        read_request(&mut c).await;
        for b in b"HTTP/1.0 200 OK\r\n\r\nslow body".iter() {
            if c.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(ms(100)).await;
        }
    });
    let s = spec(http_kind(vec![url("/")], None), port, ms(500));
    let t = Instant::now();
    let f = failure(probe(&s, &ProbeCx::default()).await);
    let took = t.elapsed();
    assert_eq!(f.reason, "timeout after 0.5 s");
    assert_eq!(
        f.log,
        format!("Timeout HTTP read server [127.0.0.1]:tcp:{port}.")
    );
    assert!(took >= ms(490) && took < ms(900), "{took:?}");
}

#[tokio::test]
async fn http_silent_server_times_out_waiting() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let _keep = tokio::spawn(async move {
        let (c, _) = l.accept().await.unwrap();
        tokio::time::sleep(ms(5000)).await;
        drop(c);
    });
    let s = spec(http_kind(vec![url("/")], None), port, ms(300));
    let f = failure(probe(&s, &ProbeCx::default()).await);
    assert_eq!(f.reason, "timeout after 0.3 s");
    assert_eq!(
        f.log,
        format!("Timeout WEB read server [127.0.0.1]:tcp:{port}.")
    );
}

#[tokio::test]
async fn http_refused() {
    let port = closed_tcp_port();
    let s = spec(http_kind(vec![url("/")], None), port, ms(1000));
    let f = failure(probe(&s, &ProbeCx::default()).await);
    assert_eq!(f.reason, "connection refused");
    assert_eq!(
        f.log,
        format!("Connection failed server [127.0.0.1]:tcp:{port}.")
    );
}

#[tokio::test]
async fn http_every_url_on_its_own_connection_with_virtualhosts() {
    let ok = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
    let (port, srv) = http_server(vec![ok.clone(), ok]).await;
    let mut second = url("/b");
    second.virtualhost = Some("url.example".into());
    let mut s = spec(
        http_kind(vec![url("/a"), second], Some(HttpProtocol::V1_1)),
        port,
        ms(2000),
    );
    s.virtualhost = Some("spec.example".into());
    assert_eq!(probe(&s, &ProbeCx::default()).await, Verdict::Up);
    let reqs = srv.await.unwrap();
    // A vhost is sent without a port; HTTP/1.1 adds Connection: close.
    assert_eq!(
        reqs,
        vec![
            b"GET /a HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: spec.example\r\n\r\n".to_vec(),
            b"GET /b HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: url.example\r\n\r\n".to_vec(),
        ]
    );
}

#[tokio::test]
async fn http_one_failing_url_fails_the_check() {
    let (port, srv) = http_server(vec![
        b"HTTP/1.0 200 OK\r\n\r\n".to_vec(),
        b"HTTP/1.0 500 Oops\r\n\r\n".to_vec(),
    ])
    .await;
    let s = spec(http_kind(vec![url("/a"), url("/b")], None), port, ms(2000));
    let f = failure(probe(&s, &ProbeCx::default()).await);
    assert_eq!(f.reason, "HTTP status 500");
    assert_eq!(srv.await.unwrap().len(), 2);
}

#[tokio::test]
async fn http_no_urls_is_up_without_connecting() {
    let s = spec(http_kind(vec![], None), closed_tcp_port(), ms(1000));
    assert_eq!(probe(&s, &ProbeCx::default()).await, Verdict::Up);
}

#[test]
fn request_text_per_protocol() {
    let s = spec(http_kind(vec![], None), 8080, ms(1000));
    let CheckKind::Http(mut h) = s.kind.clone() else {
        unreachable!()
    };
    let u = url("/x?y=1");
    h.http_protocol = Some(HttpProtocol::V1_0C);
    assert_eq!(
        http::request(&s, &h, &u),
        "GET /x?y=1 HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: 127.0.0.1:8080\r\n\r\n"
    );
    h.http_protocol = Some(HttpProtocol::V1_0);
    assert_eq!(
        http::request(&s, &h, &u),
        "GET /x?y=1 HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 127.0.0.1:8080\r\n\r\n"
    );
}

#[test]
fn status_and_content_length_parsing() {
    assert_eq!(http::status_code(b"HTTP/1.0 200 OK\r\n"), 200);
    assert_eq!(http::status_code(b"HTTP/1.0 200\r\n"), 0);
    assert_eq!(http::status_code(b"HTTP/1.0 20x OK\r\n"), 0);
    assert_eq!(http::status_code(b"HTTP/1.0\r\n 200 OK"), 0);
    assert_eq!(http::status_code(b""), 0);
    assert_eq!(
        http::content_length(b"X: y\r\nContent-Length: 42\r\n"),
        Some(42)
    );
    assert_eq!(http::content_length(b"Content-Length:7"), Some(7));
    assert_eq!(http::content_length(b"content-length: 42\r\n"), None);
    assert_eq!(http::content_length(b"Content-Length: 42 \r\n"), None);
    assert_eq!(http::content_length(b"Content-Length: x\r\n"), None);
}
