//! ICMP for IPv4 (RFC 792): message view, echo replies in place, and error generation
//! following RFC 1122 3.2.2 / RFC 1812 4.3.2.

use std::net::Ipv4Addr;

use super::checksum;
use super::ipv4::{self, Ipv4Packet, Protocol};
use super::{is_unicast_host, rd16, rd32, wr16, wr32, Error, Result};

pub const HEADER_LEN: usize = 8;

// Message types.
pub const ECHO_REPLY: u8 = 0;
pub const DEST_UNREACH: u8 = 3;
pub const SOURCE_QUENCH: u8 = 4;
pub const REDIRECT: u8 = 5;
pub const ECHO_REQUEST: u8 = 8;
pub const TIME_EXCEEDED: u8 = 11;
pub const PARAM_PROBLEM: u8 = 12;

// Codes for DEST_UNREACH.
pub const NET_UNREACH: u8 = 0;
pub const HOST_UNREACH: u8 = 1;
pub const PROTO_UNREACH: u8 = 2;
pub const PORT_UNREACH: u8 = 3;
/// Fragmentation needed and DF set; the next-hop MTU goes in the low 16 bits of
/// `rest_of_header` (RFC 1191).
pub const FRAG_NEEDED: u8 = 4;
// Code for TIME_EXCEEDED.
pub const TTL_EXCEEDED: u8 = 0;

/// Maximum length of a generated ICMP error datagram (RFC 1812 4.3.2.3).
pub const MAX_ERROR_LEN: usize = 576;
/// TOS of generated errors: precedence "internetwork control" (RFC 1812 4.3.2.5, as Linux).
pub const ERROR_TOS: u8 = 0xc0;
/// TTL of generated packets.
pub const DEFAULT_TTL: u8 = 64;

/// True for ICMP error messages (which carry a quoted datagram and must never trigger another
/// error): destination unreachable, source quench, redirect, time exceeded, parameter problem.
pub fn is_error_type(t: u8) -> bool {
    matches!(
        t,
        DEST_UNREACH | SOURCE_QUENCH | REDIRECT | TIME_EXCEEDED | PARAM_PROBLEM
    )
}

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const REST: usize = 4;
    pub const IDENT: usize = 4;
    pub const SEQ: usize = 6;
    pub const PAYLOAD: usize = 8;
}

/// A view of an ICMP message. The buffer must be exactly the message (the IPv4 payload), since
/// the checksum covers all of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> IcmpPacket<T> {
    /// Wraps without checking; getters panic if the buffer is shorter than 8.
    pub const fn new_unchecked(buffer: T) -> Self {
        IcmpPacket { buffer }
    }

    /// Wraps after checking the 8-byte header is present.
    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(IcmpPacket { buffer })
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    pub fn checksum(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Echo identifier (meaningful for echo request/reply).
    pub fn ident(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::IDENT)
    }

    /// Echo sequence number (meaningful for echo request/reply).
    pub fn seq_no(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::SEQ)
    }

    /// Bytes 4..8 as one word (e.g. next-hop MTU in the low 16 bits for FRAG_NEEDED).
    pub fn rest_of_header(&self) -> u32 {
        rd32(self.buffer.as_ref(), field::REST)
    }

    /// Everything after the 8-byte header: echo data, or the quoted datagram of an error (parse
    /// that with [`Ipv4Packet::new_checked_quoted`]).
    pub fn payload(&self) -> &[u8] {
        self.buffer.as_ref().get(field::PAYLOAD..).unwrap_or(&[])
    }

    /// True if the checksum over the whole message verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::internet(self.buffer.as_ref()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IcmpPacket<T> {
    pub fn set_msg_type(&mut self, t: u8) {
        self.buffer.as_mut()[field::TYPE] = t;
    }

    pub fn set_code(&mut self, c: u8) {
        self.buffer.as_mut()[field::CODE] = c;
    }

    pub fn set_checksum(&mut self, c: u16) {
        wr16(self.buffer.as_mut(), field::CHECKSUM, c)
    }

    pub fn set_ident(&mut self, v: u16) {
        wr16(self.buffer.as_mut(), field::IDENT, v)
    }

    pub fn set_seq_no(&mut self, v: u16) {
        wr16(self.buffer.as_mut(), field::SEQ, v)
    }

    pub fn set_rest_of_header(&mut self, v: u32) {
        wr32(self.buffer.as_mut(), field::REST, v)
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        self.buffer
            .as_mut()
            .get_mut(field::PAYLOAD..)
            .unwrap_or(&mut [])
    }

    /// Recomputes the checksum over the whole message (needed after rewriting a quoted datagram).
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::internet(self.buffer.as_ref());
        self.set_checksum(c);
    }
}

/// Turns an IPv4 + ICMP echo request (`ip_packet` starts at the IP header; trailing Ethernet
/// padding is allowed) into the echo reply in place and returns the reply's IP total length
/// (the caller trims the frame to it).
///
/// Validates: protocol ICMP (`UnexpectedProtocol`), not a fragment (`Fragment`), source a
/// unicast host (`BadSourceAddr`), type echo request (`UnexpectedType`), ICMP checksum
/// (`BadChecksum`). The IP header checksum is the caller's to verify beforehand (it is
/// recomputed here). Reply: addresses swapped, TTL 64, IP options removed (so a source route is
/// never echoed), type 0 / code 0 with the ICMP checksum updated incrementally (RFC 1624).
pub fn echo_reply_in_place(ip_packet: &mut [u8]) -> Result<usize> {
    let mut ip = Ipv4Packet::new_checked(&mut *ip_packet)?;
    if ip.protocol() != Protocol::ICMP {
        return Err(Error::UnexpectedProtocol);
    }
    if ip.is_fragment() {
        return Err(Error::Fragment);
    }
    let (src, dst) = (ip.src(), ip.dst());
    if !is_unicast_host(src) {
        return Err(Error::BadSourceAddr);
    }
    let mut icmp = IcmpPacket::new_checked(ip.payload_mut())?;
    if icmp.msg_type() != ECHO_REQUEST {
        return Err(Error::UnexpectedType);
    }
    if !icmp.verify_checksum() {
        return Err(Error::BadChecksum);
    }
    let old_word = u16::from_be_bytes([icmp.msg_type(), icmp.code()]);
    icmp.set_msg_type(ECHO_REPLY);
    icmp.set_code(0);
    let c = checksum::update_u16(icmp.checksum(), old_word, 0);
    icmp.set_checksum(c);

    let hl = ip.header_len();
    let tl = usize::from(ip.total_len());
    ip.set_src(dst);
    ip.set_dst(src);
    ip.set_ttl(DEFAULT_TTL);
    let new_tl = tl - (hl - ipv4::MIN_HEADER_LEN);
    if hl > ipv4::MIN_HEADER_LEN {
        ip.set_version_and_header_len(ipv4::MIN_HEADER_LEN);
        // new_tl <= tl <= buffer length (checked by new_checked).
        ip.set_total_len(new_tl as u16);
        ip.as_bytes_mut().copy_within(hl..tl, ipv4::MIN_HEADER_LEN);
    }
    ip.fill_checksum();
    Ok(new_tl)
}

/// Builds a complete IPv4 + ICMP error message into `out` (starting at the IP header) and
/// returns its length: from `src` to the offending packet's source, TTL 64, TOS 0xc0, DF clear,
/// ident 0, quoting the offending IP header and as much of its payload as fits in 576 bytes
/// (RFC 1812 4.3.2.3) and in `out`. `offending` starts at its IP header; Ethernet padding after
/// its total length is ignored.
///
/// Refuses (RFC 1122 3.2.2) an error about: an ICMP error message (`IcmpErrorAboutError`), a
/// non-first fragment (`Fragment`), a source that is not a unicast host (`BadSourceAddr`), a
/// broadcast/multicast destination (`BadDestAddr`). `BufferTooSmall` if `out` cannot hold the
/// offending header plus 8 bytes of its payload.
pub fn build_error(
    out: &mut [u8],
    src: Ipv4Addr,
    icmp_type: u8,
    code: u8,
    rest_of_header: u32,
    offending_ip_packet: &[u8],
) -> Result<usize> {
    let off = Ipv4Packet::new_checked(offending_ip_packet)?;
    if off.frag_offset() != 0 {
        return Err(Error::Fragment);
    }
    if !is_unicast_host(off.src()) {
        return Err(Error::BadSourceAddr);
    }
    if off.dst().octets()[0] >= 224 {
        return Err(Error::BadDestAddr);
    }
    if off.protocol() == Protocol::ICMP {
        // Without the type byte we cannot tell it is not an error: stay silent.
        let t = *off.payload().first().ok_or(Error::Truncated)?;
        if is_error_type(t) {
            return Err(Error::IcmpErrorAboutError);
        }
    }
    let quoted = off.packet();
    let overhead = ipv4::MIN_HEADER_LEN + HEADER_LEN;
    let min_quote = off.header_len() + off.payload().len().min(8);
    let room = out.len().min(MAX_ERROR_LEN).saturating_sub(overhead);
    if room < min_quote {
        return Err(Error::BufferTooSmall);
    }
    let qlen = quoted.len().min(room);
    let total = overhead + qlen;
    let out = out.get_mut(..total).ok_or(Error::BufferTooSmall)?;
    // total <= 576, so it fits u16.
    ipv4::write_header(
        out,
        ERROR_TOS,
        total as u16,
        DEFAULT_TTL,
        Protocol::ICMP,
        src,
        off.src(),
    )?;
    let mut icmp = IcmpPacket::new_unchecked(&mut out[ipv4::MIN_HEADER_LEN..]);
    icmp.set_msg_type(icmp_type);
    icmp.set_code(code);
    icmp.set_rest_of_header(rest_of_header);
    icmp.payload_mut().copy_from_slice(&quoted[..qlen]);
    icmp.fill_checksum();
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::reference;
    use proptest::prelude::*;

    /// An echo request 10.0.0.1 -> 10.0.0.2, id 0x1234 seq 1, 4 data bytes, checksums computed
    /// by the reference implementation.
    fn echo_request(data: &[u8]) -> Vec<u8> {
        let tl = (28 + data.len()) as u16;
        let mut v = vec![
            0x45, 0, 0, 0, 0xab, 0xcd, 0x40, 0, 63, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        v[2..4].copy_from_slice(&tl.to_be_bytes());
        let c = reference::checksum(&[&v]);
        v[10..12].copy_from_slice(&c.to_be_bytes());
        let mut icmp = vec![8, 0, 0, 0, 0x12, 0x34, 0x00, 0x01];
        icmp.extend_from_slice(data);
        let c = reference::checksum(&[&icmp]);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        v.extend_from_slice(&icmp);
        v
    }

    #[test]
    fn parse_echo() {
        let v = echo_request(b"ping");
        let ip = Ipv4Packet::new_checked(&v[..]).unwrap();
        let icmp = IcmpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!(icmp.msg_type(), ECHO_REQUEST);
        assert_eq!(icmp.code(), 0);
        assert_eq!(icmp.ident(), 0x1234);
        assert_eq!(icmp.seq_no(), 1);
        assert_eq!(icmp.rest_of_header(), 0x1234_0001);
        assert_eq!(icmp.payload(), b"ping");
        assert!(icmp.verify_checksum());
        assert_eq!(
            IcmpPacket::new_checked(&v[20..27]).err(),
            Some(Error::Truncated)
        );
    }

    #[test]
    fn echo_reply_exact() {
        let mut v = echo_request(b"ping");
        v.extend_from_slice(&[0xee; 6]); // Ethernet padding
        assert_eq!(echo_reply_in_place(&mut v), Ok(32));
        // Expected: reference-built reply.
        let mut ip = vec![
            0x45, 0, 0, 32, 0xab, 0xcd, 0x40, 0, 64, 1, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1,
        ];
        let c = reference::checksum(&[&ip]);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let mut icmp = vec![0, 0, 0, 0, 0x12, 0x34, 0x00, 0x01, b'p', b'i', b'n', b'g'];
        let c = reference::checksum(&[&icmp]);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        ip.extend_from_slice(&icmp);
        assert_eq!(v[..32], ip[..]);
        assert_eq!(v[32..], [0xee; 6]);
    }

    #[test]
    fn echo_reply_strips_options() {
        let base = echo_request(b"abcde");
        // Insert a 4-byte option (NOP NOP NOP EOL) and fix lengths/checksum.
        let mut v = base[..20].to_vec();
        v[0] = 0x46;
        v[2..4].copy_from_slice(&((base.len() + 4) as u16).to_be_bytes());
        v.extend_from_slice(&[1, 1, 1, 0]);
        v.extend_from_slice(&base[20..]);
        let mut p = Ipv4Packet::new_checked(&mut v[..]).unwrap();
        p.fill_checksum();
        let n = echo_reply_in_place(&mut v).unwrap();
        assert_eq!(n, base.len());
        let ip = Ipv4Packet::new_checked(&v[..n]).unwrap();
        assert_eq!(ip.header_len(), 20);
        assert!(ip.verify_checksum());
        let icmp = IcmpPacket::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum());
        assert_eq!(icmp.msg_type(), ECHO_REPLY);
        assert_eq!(icmp.payload(), b"abcde");
    }

    #[test]
    fn echo_reply_rejects() {
        let good = echo_request(b"x");
        let mut v = good.clone();
        v[9] = 6;
        assert_eq!(echo_reply_in_place(&mut v), Err(Error::UnexpectedProtocol));
        let mut v = good.clone();
        v[6] = 0x20; // MF
        assert_eq!(echo_reply_in_place(&mut v), Err(Error::Fragment));
        let mut v = good.clone();
        v[12] = 224;
        assert_eq!(echo_reply_in_place(&mut v), Err(Error::BadSourceAddr));
        let mut v = good.clone();
        v[20] = ECHO_REPLY;
        assert_eq!(echo_reply_in_place(&mut v), Err(Error::UnexpectedType));
        let mut v = good.clone();
        v[28] ^= 0xff;
        assert_eq!(echo_reply_in_place(&mut v), Err(Error::BadChecksum));
        let mut v = good.clone();
        assert_eq!(echo_reply_in_place(&mut v[..28]), Err(Error::Truncated));
        let mut v = good[..27].to_vec();
        v[3] = 27;
        assert_eq!(echo_reply_in_place(&mut v), Err(Error::Truncated));
        // Nothing was modified by a refused call.
        let mut v = good.clone();
        v[28] ^= 0xff;
        let before = v.clone();
        let _ = echo_reply_in_place(&mut v);
        assert_eq!(v, before);
    }

    /// A UDP datagram 192.0.2.7:5000 -> 10.0.0.2:53 with `n` payload bytes.
    fn udp_packet(n: usize) -> Vec<u8> {
        let tl = (28 + n) as u16;
        let mut v = vec![
            0x45, 0, 0, 0, 0, 1, 0, 0, 5, 17, 0, 0, 192, 0, 2, 7, 10, 0, 0, 2,
        ];
        v[2..4].copy_from_slice(&tl.to_be_bytes());
        let c = reference::checksum(&[&v]);
        v[10..12].copy_from_slice(&c.to_be_bytes());
        v.extend_from_slice(&[0x13, 0x88, 0, 53]);
        v.extend_from_slice(&((8 + n) as u16).to_be_bytes());
        v.extend_from_slice(&[0, 0]);
        v.extend((0..n).map(|i| i as u8));
        v
    }

    #[test]
    fn build_error_exact_small() {
        let off = udp_packet(4);
        let mut out = [0u8; 600];
        let n = build_error(
            &mut out,
            Ipv4Addr::new(10, 0, 0, 2),
            DEST_UNREACH,
            PORT_UNREACH,
            0,
            &off,
        )
        .unwrap();
        assert_eq!(n, 28 + 32);
        let mut ip = vec![
            0x45, 0xc0, 0, 60, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 2, 192, 0, 2, 7,
        ];
        let c = reference::checksum(&[&ip]);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let mut icmp = vec![3, 3, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&off);
        let c = reference::checksum(&[&icmp]);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        ip.extend_from_slice(&icmp);
        assert_eq!(out[..n], ip[..]);
    }

    #[test]
    fn build_error_truncates_to_576() {
        let off = udp_packet(1400);
        let mut out = [0u8; 1500];
        let n = build_error(
            &mut out,
            Ipv4Addr::new(10, 0, 0, 2),
            DEST_UNREACH,
            FRAG_NEEDED,
            1400,
            &off,
        )
        .unwrap();
        assert_eq!(n, 576);
        let ip = Ipv4Packet::new_checked(&out[..n]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.total_len(), 576);
        let icmp = IcmpPacket::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum());
        assert_eq!(icmp.rest_of_header(), 1400);
        assert_eq!(icmp.payload(), &off[..548]);
        // Limited by the output buffer instead.
        let n = build_error(
            &mut out[..100],
            Ipv4Addr::new(10, 0, 0, 2),
            TIME_EXCEEDED,
            TTL_EXCEEDED,
            0,
            &off,
        )
        .unwrap();
        assert_eq!(n, 100);
        // Too small for header + 8.
        assert_eq!(
            build_error(
                &mut out[..55],
                Ipv4Addr::new(10, 0, 0, 2),
                TIME_EXCEEDED,
                0,
                0,
                &off
            ),
            Err(Error::BufferTooSmall)
        );
        assert_eq!(
            build_error(
                &mut out[..56],
                Ipv4Addr::new(10, 0, 0, 2),
                TIME_EXCEEDED,
                0,
                0,
                &off
            ),
            Ok(56)
        );
    }

    #[test]
    fn build_error_refusals() {
        let me = Ipv4Addr::new(10, 0, 0, 2);
        let mut out = [0u8; 576];
        let mut e = |p: &[u8]| build_error(&mut out, me, DEST_UNREACH, PORT_UNREACH, 0, p);
        let good = udp_packet(8);
        assert!(e(&good).is_ok());
        for (src0, err) in [
            (0u8, Error::BadSourceAddr),
            (127, Error::BadSourceAddr),
            (224, Error::BadSourceAddr),
            (255, Error::BadSourceAddr),
        ] {
            let mut p = good.clone();
            p[12] = src0;
            assert_eq!(e(&p), Err(err));
        }
        let mut p = good.clone();
        p[16] = 239;
        assert_eq!(e(&p), Err(Error::BadDestAddr));
        let mut p = good.clone();
        p[16..20].copy_from_slice(&[255; 4]);
        assert_eq!(e(&p), Err(Error::BadDestAddr));
        let mut p = good.clone();
        p[7] = 1; // offset 8
        assert_eq!(e(&p), Err(Error::Fragment));
        let mut p = good.clone();
        p[6] = 0x20; // first fragment (MF, offset 0): allowed
        assert!(e(&p).is_ok());
        // ICMP errors about ICMP: refused for errors, allowed for queries.
        let mut p = good.clone();
        p[9] = 1;
        for t in [
            DEST_UNREACH,
            SOURCE_QUENCH,
            REDIRECT,
            TIME_EXCEEDED,
            PARAM_PROBLEM,
        ] {
            p[20] = t;
            assert_eq!(e(&p), Err(Error::IcmpErrorAboutError), "type {t}");
        }
        for t in [ECHO_REQUEST, ECHO_REPLY, 13] {
            p[20] = t;
            assert!(e(&p).is_ok(), "type {t}");
        }
        let mut p = good[..20].to_vec();
        p[3] = 20;
        p[9] = 1;
        assert_eq!(e(&p), Err(Error::Truncated));
        assert_eq!(e(&good[..10]), Err(Error::Truncated));
    }

    #[test]
    fn error_types() {
        let errs: Vec<u8> = (0..=255u8).filter(|&t| is_error_type(t)).collect();
        assert_eq!(errs, vec![3, 4, 5, 11, 12]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(p) = IcmpPacket::new_checked(&data[..]) {
                let _ = (p.msg_type(), p.code(), p.checksum(), p.ident(), p.seq_no(),
                         p.rest_of_header(), p.verify_checksum());
                prop_assert_eq!(p.payload().len(), data.len() - 8);
            }
            let mut d = data.clone();
            if !d.is_empty() { d[0] = 0x45; }
            if d.len() > 9 { d[9] = 1; }
            let _ = echo_reply_in_place(&mut d);
            let mut out = [0u8; 100];
            let _ = build_error(&mut out, Ipv4Addr::new(10, 0, 0, 1), 3, 3, 0, &d);
            let _ = build_error(&mut out, Ipv4Addr::new(10, 0, 0, 1), 3, 3, 0, &data);
        }

        #[test]
        fn echo_reply_verifies(data in proptest::collection::vec(any::<u8>(), 0..200),
                               code in any::<u8>(), id in any::<u16>(), opts in 0usize..=10,
                               src in any::<[u8; 4]>(), pad in 0usize..20) {
            let mut v = echo_request(&data);
            v[20 + 1] = code;
            v[24..26].copy_from_slice(&id.to_be_bytes());
            v[12..16].copy_from_slice(&src);
            // Insert `opts` words of options.
            let mut w = v[..20].to_vec();
            w[0] = 0x40 | (5 + opts) as u8;
            w[2..4].copy_from_slice(&((v.len() + 4 * opts) as u16).to_be_bytes());
            w.extend_from_slice(&vec![1u8; 4 * opts]);
            w.extend_from_slice(&v[20..]);
            let icmp_len = v.len() - 20;
            {
                let mut ic = IcmpPacket::new_checked(&mut w[20 + 4 * opts..]).unwrap();
                ic.fill_checksum();
            }
            w.extend_from_slice(&vec![0xeeu8; pad]);
            let r = echo_reply_in_place(&mut w);
            if !crate::is_unicast_host(Ipv4Addr::from(src)) {
                prop_assert_eq!(r, Err(Error::BadSourceAddr));
                return Ok(());
            }
            let n = r.unwrap();
            prop_assert_eq!(n, 20 + icmp_len);
            let ip = Ipv4Packet::new_checked(&w[..n]).unwrap();
            prop_assert!(ip.verify_checksum());
            prop_assert_eq!(ip.dst(), Ipv4Addr::from(src));
            prop_assert_eq!(ip.src(), Ipv4Addr::new(10, 0, 0, 2));
            prop_assert_eq!(ip.ttl(), 64);
            let ic = IcmpPacket::new_checked(ip.payload()).unwrap();
            prop_assert!(ic.verify_checksum());
            prop_assert_eq!((ic.msg_type(), ic.code(), ic.ident()), (0, 0, id));
            prop_assert_eq!(ic.payload(), &data[..]);
        }

        #[test]
        fn build_error_parses(n in 0usize..1500, proto in prop_oneof![Just(1u8), Just(6), Just(17)],
                              t0 in any::<u8>(), outlen in 0usize..700, rest in any::<u32>()) {
            let mut off = udp_packet(n);
            off[9] = proto;
            off[20] = t0;
            let mut out = vec![0u8; outlen];
            match build_error(&mut out, Ipv4Addr::new(10, 0, 0, 2), TIME_EXCEEDED, 0, rest, &off) {
                Ok(len) => {
                    prop_assert!(len <= 576 && len <= outlen);
                    let ip = Ipv4Packet::new_checked(&out[..len]).unwrap();
                    prop_assert!(ip.verify_checksum());
                    prop_assert_eq!(ip.total_len() as usize, len);
                    prop_assert_eq!(ip.dst(), Ipv4Addr::new(192, 0, 2, 7));
                    prop_assert_eq!(ip.protocol(), Protocol::ICMP);
                    prop_assert!(!ip.dont_frag());
                    let ic = IcmpPacket::new_checked(ip.payload()).unwrap();
                    prop_assert!(ic.verify_checksum());
                    prop_assert_eq!(ic.msg_type(), TIME_EXCEEDED);
                    prop_assert_eq!(ic.rest_of_header(), rest);
                    let q = Ipv4Packet::new_checked_quoted(ic.payload()).unwrap();
                    prop_assert_eq!(q.src(), Ipv4Addr::new(192, 0, 2, 7));
                    prop_assert_eq!(ic.payload().len(), off.len().min(548).min(outlen - 28));
                    prop_assert_eq!(ic.payload(), &off[..ic.payload().len()]);
                }
                Err(Error::IcmpErrorAboutError) => prop_assert!(proto == 1 && is_error_type(t0)),
                Err(Error::BufferTooSmall) => prop_assert!(outlen < 28 + 28.min(off.len())),
                Err(e) => prop_assert!(false, "unexpected {:?}", e),
            }
        }
    }
}
