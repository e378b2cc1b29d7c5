//! DNS_CHECK (keepalived/check/check_dns.c): one query with RD set and a random id over a
//! connected UDP socket; replies shorter than a header, with another id, or without QR are
//! ignored (the wait goes on); the first real reply decides: rcode 0 is up, else down. The
//! answer section is not looked at, as keepalived does not.

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};

use super::{down, io_reason, sock, strerror, ProbeSpec, Trio, Verdict};
use crate::model::DnsCheck;

/// DNS_BUFFER_SIZE (check_dns.h).
const BUF: usize = 768;
const HEADER: usize = 12;

/// DNS_TYPE[] in check_dns.c; compared case-insensitively (dns_type_lookup()).
fn qtype(name: &str) -> Option<RecordType> {
    let code = match name.to_ascii_uppercase().as_str() {
        "A" => 1,
        "NS" => 2,
        "CNAME" => 5,
        "SOA" => 6,
        "MX" => 15,
        "TXT" => 16,
        "AAAA" => 28,
        "RRSIG" => 46,
        "DNSKEY" => 48,
        _ => return None,
    };
    Some(RecordType::from(code))
}

/// dns_make_query(): "" (the default) and "." are the root.
pub(crate) fn query(d: &DnsCheck) -> Result<(u16, Vec<u8>), String> {
    let rtype = qtype(&d.qtype).ok_or_else(|| format!("unknown DNS type {}", d.qtype))?;
    let name = match d.name.as_str() {
        "" | "." => Name::root(),
        n => Name::from_ascii(n).map_err(|e| format!("bad DNS name {n}: {e}"))?,
    };
    let mut msg = Message::query();
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(name, rtype));
    let bytes = msg.to_vec().map_err(|e| format!("DNS query: {e}"))?;
    Ok((msg.metadata.id, bytes))
}

pub(crate) async fn probe(spec: &ProbeSpec, d: &DnsCheck) -> Verdict {
    let at = Trio::of(spec);
    let log = |msg: &str| format!("DNS_CHECK ({at}) {msg}");
    let (id, q) = match query(d) {
        Ok(q) => q,
        Err(e) => return down(e.clone(), log(&e)),
    };
    // socket_bind_connect(): no IP_RECVERR here, unlike UDP_CHECK.
    let sock = match sock::udp(spec, false) {
        Ok(s) => s,
        Err(f) => return Verdict::Down(f),
    };
    match sock.send(&q).await {
        Ok(n) if n == q.len() => {}
        Ok(_) => return down("short write", log("failed to write all of the datagram.")),
        Err(e) => return down(io_reason(&e), log("failed to write socket.")),
    }
    let mut buf = [0u8; BUF];
    loop {
        let n = match sock.recv(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                let errno = e.raw_os_error().unwrap_or(0);
                let msg = format!("failed to read socket; errno {errno} ({})", strerror(&e));
                return down(io_reason(&e), log(&msg));
            }
        };
        if n < HEADER || u16::from_be_bytes([buf[0], buf[1]]) != id {
            continue;
        }
        let flags = u16::from_be_bytes([buf[2], buf[3]]);
        if flags >> 15 == 0 {
            continue; // a query, not a reply
        }
        let rcode = flags & 0x000f;
        if rcode != 0 {
            let msg = format!("read error occurred. (rcode = {rcode})");
            return down(format!("DNS rcode {rcode}"), log(&msg));
        }
        return Verdict::Up;
    }
}
