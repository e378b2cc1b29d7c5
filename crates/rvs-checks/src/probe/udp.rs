//! UDP_CHECK (keepalived/check/check_udp.c, udp_bind_connect() and udp_socket_state() in
//! keepalived/core/layer4.c).
//!
//! Send the payload (keepalived's 32 filler bytes if none) on a connected socket, then wait:
//! - no reply before the deadline: up, unless require_reply is set (udp_socket_state(): "we
//!   consider it success unless require_reply is set") — see `on_timeout` in mod.rs;
//! - an ICMP error (port, host or net unreachable, reported through IP_RECVERR): down;
//! - a reply: up; with require_reply data, the reply must have min..=max_reply_length bytes
//!   and match the data on the first min(reply, data) bytes (check_udp_reply()); with
//!   require_reply but no data, any reply will do, whatever its length.

use super::{down, io_reason, sock, ProbeSpec, Trio, Verdict};
use crate::model::UdpCheck;

/// set_buf() with UDP_BUFSIZE 32: "keepalived check - " repeated, cut at 32 bytes.
pub(crate) const DEFAULT_PAYLOAD: &[u8; 32] = b"keepalived check - keepalived ch";

pub(crate) async fn probe(spec: &ProbeSpec, u: &UdpCheck) -> Verdict {
    let at = Trio::of(spec);
    let failed = || format!("UDP connection to {at} failed.");
    let sock = match sock::udp(spec, true) {
        Ok(s) => s,
        Err(f) => return Verdict::Down(f),
    };
    let payload: &[u8] = u.payload.as_deref().unwrap_or(DEFAULT_PAYLOAD);
    match sock.send(payload).await {
        Ok(n) if n == payload.len() => {}
        Ok(n) => return down(format!("sent {n} of {} bytes", payload.len()), failed()),
        Err(e) => return down(io_reason(&e), failed()),
    }
    let Some(want) = &u.require_reply else {
        // One byte is enough to know a datagram came back.
        let mut one = [0u8; 1];
        return match sock.recv(&mut one).await {
            Ok(_) => Verdict::Up,
            Err(e) => down(io_reason(&e), failed()),
        };
    };
    // max_reply_len + 1, so that a longer reply is seen to be too long.
    let mut buf = vec![0u8; usize::from(u.max_reply_length) + 1];
    let n = match sock.recv(&mut buf).await {
        Ok(n) => n,
        Err(e) => return down(io_reason(&e), failed()),
    };
    if !want.is_empty() && !reply_ok(&buf[..n], want, u) {
        return down(
            "reply data mismatch",
            format!("UDP check to {at} reply data mismatch."),
        );
    }
    Verdict::Up
}

/// check_udp_reply(), inverted: true when the reply passes.
fn reply_ok(got: &[u8], want: &[u8], u: &UdpCheck) -> bool {
    let len = got.len();
    if len < usize::from(u.min_reply_length) || len > usize::from(u.max_reply_length) {
        return false;
    }
    got.iter().zip(want).all(|(g, w)| g == w)
}
