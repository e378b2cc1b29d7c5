//! UDP_CHECK and DNS_CHECK against responders on 127.0.0.1.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use tokio::net::UdpSocket;

use super::test_util::*;
use super::udp::DEFAULT_PAYLOAD;
use super::{probe, success_log, ProbeCx, ProbeSpec, Verdict};
use crate::model::{CheckKind, DnsCheck, UdpCheck};

type Seen = Arc<Mutex<Vec<Vec<u8>>>>;

/// Answers every datagram with `reply(datagram)` (None: stays silent); records what came.
async fn responder<F>(reply: F) -> (u16, Seen)
where
    F: Fn(&[u8]) -> Vec<Vec<u8>> + Send + 'static,
{
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = s.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let rec = seen.clone();
    tokio::spawn(async move {
        let mut b = [0u8; 2048];
        loop {
            let (n, from) = s.recv_from(&mut b).await.unwrap();
            rec.lock().unwrap().push(b[..n].to_vec());
            for r in reply(&b[..n]) {
                s.send_to(&r, from).await.unwrap();
            }
        }
    });
    (port, seen)
}

fn udp(u: UdpCheck, port: u16, timeout_ms: u64) -> ProbeSpec {
    spec(CheckKind::Udp(u), port, ms(timeout_ms))
}

fn udp_check() -> UdpCheck {
    UdpCheck {
        max_reply_length: 255,
        ..UdpCheck::default()
    }
}

async fn run(s: &ProbeSpec) -> Verdict {
    probe(s, &ProbeCx::default()).await
}

#[tokio::test]
async fn udp_echo_is_up_with_keepalived_filler_payload() {
    let (port, seen) = responder(|d| vec![d.to_vec()]).await;
    let s = udp(udp_check(), port, 1000);
    assert_eq!(run(&s).await, Verdict::Up);
    assert_eq!(seen.lock().unwrap().as_slice(), [DEFAULT_PAYLOAD.to_vec()]);
    assert_eq!(
        success_log(&s),
        format!("UDP connection to [127.0.0.1]:udp:{port} success.")
    );
}

#[tokio::test]
async fn udp_required_reply_matches_or_not() {
    let (port, seen) = responder(|d| vec![d.to_vec()]).await;
    let mut u = udp_check();
    u.payload = Some(vec![1, 2, 3]);
    u.require_reply = Some(vec![1, 2, 3]);
    assert_eq!(run(&udp(u.clone(), port, 1000)).await, Verdict::Up);
    assert_eq!(seen.lock().unwrap().as_slice(), [vec![1, 2, 3]]);

    u.require_reply = Some(vec![1, 2, 4]);
    let f = failure(run(&udp(u, port, 1000)).await);
    assert_eq!(f.reason, "reply data mismatch");
    assert_eq!(
        f.log,
        format!("UDP check to [127.0.0.1]:udp:{port} reply data mismatch.")
    );
}

#[tokio::test]
async fn udp_reply_lengths() {
    let (port, _) = responder(|_| vec![b"ab".to_vec()]).await;
    let mut u = udp_check();
    // check_udp_reply() compares only the shorter of reply and data: a prefix passes.
    u.require_reply = Some(b"abcd".to_vec());
    assert_eq!(run(&udp(u.clone(), port, 1000)).await, Verdict::Up);
    u.min_reply_length = 4;
    assert_eq!(
        failure(run(&udp(u.clone(), port, 1000)).await).reason,
        "reply data mismatch"
    );
    u.min_reply_length = 0;
    u.max_reply_length = 1;
    assert_eq!(
        failure(run(&udp(u.clone(), port, 1000)).await).reason,
        "reply data mismatch"
    );
    // require_reply without data: any reply, lengths unchecked.
    u.require_reply = Some(Vec::new());
    assert_eq!(run(&udp(u, port, 1000)).await, Verdict::Up);
}

#[tokio::test]
async fn udp_port_unreachable_is_down() {
    let port = closed_udp_port();
    let f = failure(run(&udp(udp_check(), port, 1000)).await);
    assert_eq!(f.reason, "connection refused");
    assert_eq!(
        f.log,
        format!("UDP connection to [127.0.0.1]:udp:{port} failed.")
    );
}

#[tokio::test]
async fn udp_silence_is_up_unless_a_reply_is_required() {
    let (port, seen) = responder(|_| vec![]).await;
    let t = Instant::now();
    assert_eq!(run(&udp(udp_check(), port, 300)).await, Verdict::Up);
    assert!(t.elapsed() >= ms(290));
    assert_eq!(seen.lock().unwrap().len(), 1);
    let mut u = udp_check();
    u.require_reply = Some(Vec::new());
    let f = failure(run(&udp(u, port, 300)).await);
    assert_eq!(f.reason, "timeout after 0.3 s");
    assert_eq!(
        f.log,
        format!("UDP connection to [127.0.0.1]:udp:{port} failed.")
    );
}

fn dns(qtype: &str, name: &str, port: u16, timeout_ms: u64) -> ProbeSpec {
    let d = DnsCheck {
        qtype: qtype.into(),
        name: name.into(),
    };
    spec(CheckKind::Dns(d), port, ms(timeout_ms))
}

/// A reply to `query` with `rcode`, the question echoed.
fn answer(query: &[u8], rcode: ResponseCode) -> Vec<u8> {
    let q = Message::from_vec(query).unwrap();
    let mut r = Message::response(q.metadata.id, OpCode::Query);
    r.metadata.response_code = rcode;
    r.metadata.recursion_desired = q.metadata.recursion_desired;
    r.add_queries(q.queries.clone());
    r.to_vec().unwrap()
}

#[tokio::test]
async fn dns_noerror_is_up_and_the_query_is_keepalived_s() {
    let (port, seen) = responder(|q| vec![answer(q, ResponseCode::NoError)]).await;
    let s = dns("a", "www.example.com", port, 1000);
    assert_eq!(run(&s).await, Verdict::Up);
    let q = Message::from_vec(&seen.lock().unwrap()[0]).unwrap();
    assert_eq!(q.metadata.message_type, MessageType::Query);
    assert!(q.metadata.recursion_desired);
    assert_eq!(q.queries.len(), 1);
    assert_eq!(
        q.queries[0].name(),
        &Name::from_ascii("www.example.com.").unwrap()
    );
    assert_eq!(q.queries[0].query_type(), RecordType::A);
    assert_eq!(
        success_log(&s),
        format!("DNS_CHECK ([127.0.0.1]:udp:{port}) success.")
    );
}

#[tokio::test]
async fn dns_default_query_is_soa_of_the_root() {
    let (port, seen) = responder(|q| vec![answer(q, ResponseCode::NoError)]).await;
    assert_eq!(run(&dns("SOA", "", port, 1000)).await, Verdict::Up);
    let q = Message::from_vec(&seen.lock().unwrap()[0]).unwrap();
    assert_eq!(q.queries[0].name(), &Name::root());
    assert_eq!(q.queries[0].query_type(), RecordType::SOA);
}

#[tokio::test]
async fn dns_error_rcode_is_down() {
    let (port, _) = responder(|q| vec![answer(q, ResponseCode::NXDomain)]).await;
    let f = failure(run(&dns("MX", "example.com", port, 1000)).await);
    assert_eq!(f.reason, "DNS rcode 3");
    assert_eq!(
        f.log,
        format!("DNS_CHECK ([127.0.0.1]:udp:{port}) read error occurred. (rcode = 3)")
    );
}

#[tokio::test]
async fn dns_ignores_short_foreign_and_query_datagrams() {
    let (port, _) = responder(|q| {
        let mut foreign = answer(q, ResponseCode::ServFail);
        foreign[0] ^= 0xff; // another id
        vec![
            vec![0; 5], // shorter than a header
            foreign,    // not ours
            q.to_vec(), // our id, but QR clear
            answer(q, ResponseCode::NoError),
        ]
    })
    .await;
    assert_eq!(
        run(&dns("TXT", "example.com", port, 1000)).await,
        Verdict::Up
    );
}

#[tokio::test]
async fn dns_unreachable_and_silent() {
    let port = closed_udp_port();
    let f = failure(run(&dns("A", "example.com", port, 1000)).await);
    assert_eq!(f.reason, "connection refused");
    assert_eq!(
        f.log,
        format!("DNS_CHECK ([127.0.0.1]:udp:{port}) failed to read socket; errno 111 (Connection refused)")
    );
    let (port, _) = responder(|_| vec![]).await;
    let f = failure(run(&dns("A", "example.com", port, 300)).await);
    assert_eq!(f.reason, "timeout after 0.3 s");
    assert_eq!(
        f.log,
        format!("DNS_CHECK ([127.0.0.1]:udp:{port}) read timeout from socket")
    );
}

#[tokio::test]
async fn dns_unknown_type_is_down_without_sending() {
    let f = failure(run(&dns("SRV", "example.com", closed_udp_port(), 300)).await);
    assert_eq!(f.reason, "unknown DNS type SRV");
}
