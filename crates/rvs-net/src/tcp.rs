//! TCP segments (RFC 793). NAT rewrites: [`TcpSegment::rewrite_src`] /
//! [`TcpSegment::rewrite_dst`], or [`crate::l4`] for header-only buffers.

use std::net::Ipv4Addr;

use super::checksum;
use super::ipv4::Protocol;
use super::l4::{self, Side};
use super::{rd16, rd32, wr16, wr32, Error, Result};

pub const HEADER_LEN: usize = 20;

/// Flag bits of byte 13.
pub struct Flags;

impl Flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const SEQ: usize = 4;
    pub const ACK: usize = 8;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: usize = 14;
    pub const CHECKSUM: usize = 16;
    pub const URGENT: usize = 18;
}

/// A view of a TCP segment. For checksum work the buffer must be exactly the segment (the IPv4
/// payload), since the checksum and pseudo-header length cover all of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSegment<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpSegment<T> {
    /// Wraps without checking; getters panic if the buffer is shorter than 20.
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpSegment { buffer }
    }

    /// Wraps after checking: >= 20 bytes (`Truncated`), data offset >= 5 (`BadHeaderLen`),
    /// header (with options) fits (`Truncated`).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hl = usize::from(b[field::DATA_OFF] >> 4) * 4;
        if hl < HEADER_LEN {
            return Err(Error::BadHeaderLen);
        }
        if hl > b.len() {
            return Err(Error::Truncated);
        }
        Ok(TcpSegment { buffer })
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn src_port(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::SRC_PORT)
    }

    pub fn dst_port(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::DST_PORT)
    }

    pub fn seq(&self) -> u32 {
        rd32(self.buffer.as_ref(), field::SEQ)
    }

    pub fn ack_no(&self) -> u32 {
        rd32(self.buffer.as_ref(), field::ACK)
    }

    /// Header length in bytes (data offset * 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFF] >> 4) * 4
    }

    /// All eight flag bits (see [`Flags`]).
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    pub fn fin(&self) -> bool {
        self.flags() & Flags::FIN != 0
    }

    pub fn syn(&self) -> bool {
        self.flags() & Flags::SYN != 0
    }

    pub fn rst(&self) -> bool {
        self.flags() & Flags::RST != 0
    }

    pub fn psh(&self) -> bool {
        self.flags() & Flags::PSH != 0
    }

    pub fn ack(&self) -> bool {
        self.flags() & Flags::ACK != 0
    }

    pub fn urg(&self) -> bool {
        self.flags() & Flags::URG != 0
    }

    pub fn window(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::WINDOW)
    }

    pub fn checksum(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::CHECKSUM)
    }

    pub fn urgent(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::URGENT)
    }

    /// Option bytes (clamped to the buffer).
    pub fn options(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        b.get(HEADER_LEN..self.header_len().min(b.len()))
            .unwrap_or(&[])
    }

    /// Data after the header (clamped to the buffer).
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        b.get(self.header_len().min(b.len())..).unwrap_or(&[])
    }

    /// True if the checksum over the pseudo header and the whole buffer verifies.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let b = self.buffer.as_ref();
        let Ok(len) = u16::try_from(b.len()) else {
            return false;
        };
        let ph = checksum::pseudo_header_v4(src, dst, Protocol::TCP, len);
        checksum::finish(checksum::sum(b, ph)) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpSegment<T> {
    pub fn set_src_port(&mut self, p: u16) {
        wr16(self.buffer.as_mut(), field::SRC_PORT, p)
    }

    pub fn set_dst_port(&mut self, p: u16) {
        wr16(self.buffer.as_mut(), field::DST_PORT, p)
    }

    pub fn set_seq(&mut self, v: u32) {
        wr32(self.buffer.as_mut(), field::SEQ, v)
    }

    pub fn set_ack_no(&mut self, v: u32) {
        wr32(self.buffer.as_mut(), field::ACK, v)
    }

    /// Sets the header length in bytes (multiple of 4 in 20..=60); keeps the reserved bits.
    pub fn set_header_len(&mut self, len: usize) {
        let b = self.buffer.as_mut();
        let off = (len / 4).min(15) as u8;
        b[field::DATA_OFF] = (off << 4) | (b[field::DATA_OFF] & 0x0f);
    }

    pub fn set_flags(&mut self, f: u8) {
        self.buffer.as_mut()[field::FLAGS] = f;
    }

    pub fn set_window(&mut self, w: u16) {
        wr16(self.buffer.as_mut(), field::WINDOW, w)
    }

    pub fn set_checksum(&mut self, c: u16) {
        wr16(self.buffer.as_mut(), field::CHECKSUM, c)
    }

    pub fn set_urgent(&mut self, v: u16) {
        wr16(self.buffer.as_mut(), field::URGENT, v)
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        let b = self.buffer.as_mut();
        let hl = hl.min(b.len());
        b.get_mut(hl..).unwrap_or(&mut [])
    }

    /// Computes the checksum from scratch (segment at most 65535 bytes).
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let len = u16::try_from(b.len()).unwrap_or(u16::MAX);
        let ph = checksum::pseudo_header_v4(src, dst, Protocol::TCP, len);
        let c = checksum::finish(checksum::sum(b, ph));
        self.set_checksum(c);
    }

    /// SNAT: source port := `new_port`, checksum updated incrementally for that and for the IP
    /// source changing `old_addr -> new_addr`. Returns the old port.
    pub fn rewrite_src(&mut self, old_addr: Ipv4Addr, new_addr: Ipv4Addr, new_port: u16) -> u16 {
        self.rewrite(Side::Src, old_addr, new_addr, new_port)
    }

    /// DNAT: destination port := `new_port`, checksum updated incrementally for that and for
    /// the IP destination changing `old_addr -> new_addr`. Returns the old port.
    pub fn rewrite_dst(&mut self, old_addr: Ipv4Addr, new_addr: Ipv4Addr, new_port: u16) -> u16 {
        self.rewrite(Side::Dst, old_addr, new_addr, new_port)
    }

    fn rewrite(&mut self, side: Side, old_addr: Ipv4Addr, new_addr: Ipv4Addr, port: u16) -> u16 {
        let b = self.buffer.as_mut();
        let at = match side {
            Side::Src => field::SRC_PORT,
            Side::Dst => field::DST_PORT,
        };
        let old_port = rd16(b, at);
        wr16(b, at, port);
        let c =
            l4::tcp_checksum_rewrite(rd16(b, field::CHECKSUM), old_addr, new_addr, old_port, port);
        wr16(b, field::CHECKSUM, c);
        old_port
    }
}

/// See [`l4::tcp_checksum_rewrite`].
pub use super::l4::tcp_checksum_rewrite as update_checksum_for_rewrite;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::reference;
    use proptest::prelude::*;

    const SRC: [u8; 4] = [192, 0, 2, 1];
    const DST: [u8; 4] = [198, 51, 100, 7];

    /// A SYN 192.0.2.1:40000 -> 198.51.100.7:80 with an MSS option, checksum by the reference.
    fn syn() -> Vec<u8> {
        let mut s = vec![
            0x9c, 0x40, 0x00, 0x50, // ports
            0x01, 0x02, 0x03, 0x04, // seq
            0x00, 0x00, 0x00, 0x00, // ack
            0x60, 0x02, 0xfa, 0xf0, // off=6, SYN, window 64240
            0x00, 0x00, 0x00, 0x00, // csum, urg
            0x02, 0x04, 0x05, 0xb4, // MSS 1460
            b'h', b'i',
        ];
        let c = reference::checksum(&[&reference::pseudo(SRC, DST, 6, s.len() as u16), &s]);
        s[16..18].copy_from_slice(&c.to_be_bytes());
        s
    }

    #[test]
    fn parse_known() {
        let s = syn();
        let t = TcpSegment::new_checked(&s[..]).unwrap();
        assert_eq!((t.src_port(), t.dst_port()), (40000, 80));
        assert_eq!(t.seq(), 0x01020304);
        assert_eq!(t.ack_no(), 0);
        assert_eq!(t.header_len(), 24);
        assert_eq!(t.flags(), Flags::SYN);
        assert!(t.syn() && !t.ack() && !t.fin() && !t.rst() && !t.psh() && !t.urg());
        assert_eq!(t.window(), 64240);
        assert_eq!(t.urgent(), 0);
        assert_eq!(t.options(), &[2, 4, 5, 0xb4]);
        assert_eq!(t.payload(), b"hi");
        assert!(t.verify_checksum(SRC.into(), DST.into()));
        assert!(!t.verify_checksum(DST.into(), [198, 51, 100, 8].into()));
    }

    #[test]
    fn flags_each() {
        let mut s = syn();
        let mut t = TcpSegment::new_checked(&mut s[..]).unwrap();
        t.set_flags(Flags::FIN | Flags::RST | Flags::PSH | Flags::ACK | Flags::URG);
        assert!(t.fin() && t.rst() && t.psh() && t.ack() && t.urg() && !t.syn());
        assert_eq!(t.flags(), 0x3d);
    }

    #[test]
    fn rejects() {
        let s = syn();
        assert_eq!(
            TcpSegment::new_checked(&s[..19]).err(),
            Some(Error::Truncated)
        );
        assert_eq!(
            TcpSegment::new_checked(&s[..23]).err(),
            Some(Error::Truncated)
        );
        assert!(TcpSegment::new_checked(&s[..24]).is_ok());
        let mut b = s.clone();
        b[12] = 0x40;
        assert_eq!(
            TcpSegment::new_checked(&b[..]).err(),
            Some(Error::BadHeaderLen)
        );
        let mut b = s.clone();
        b[25] ^= 1;
        assert!(!TcpSegment::new_checked(&b[..])
            .unwrap()
            .verify_checksum(SRC.into(), DST.into()));
    }

    #[test]
    fn setters_and_fill() {
        let mut s = syn();
        let mut t = TcpSegment::new_checked(&mut s[..]).unwrap();
        t.set_src_port(1);
        t.set_dst_port(2);
        t.set_seq(3);
        t.set_ack_no(4);
        t.set_window(5);
        t.set_urgent(6);
        t.set_header_len(20);
        t.fill_checksum(SRC.into(), DST.into());
        assert!(t.verify_checksum(SRC.into(), DST.into()));
        assert_eq!(t.payload(), &[2, 4, 5, 0xb4, b'h', b'i']);
        let c = t.checksum();
        let mut e = vec![
            0, 1, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0x50, 0x02, 0, 5, 0, 0, 0, 6, 2, 4, 5, 0xb4, b'h',
            b'i',
        ];
        assert_eq!(
            c,
            reference::checksum(&[&reference::pseudo(SRC, DST, 6, 26), &e])
        );
        e[16..18].copy_from_slice(&c.to_be_bytes());
        assert_eq!(s, e);
    }

    #[test]
    fn rewrite_exact() {
        let mut s = syn();
        let vip = Ipv4Addr::from(DST);
        let rip = Ipv4Addr::new(10, 1, 1, 5);
        let mut t = TcpSegment::new_checked(&mut s[..]).unwrap();
        assert_eq!(t.rewrite_dst(vip, rip, 8080), 80);
        assert_eq!(t.dst_port(), 8080);
        assert!(t.verify_checksum(SRC.into(), rip));
        assert_eq!(
            t.rewrite_src(SRC.into(), Ipv4Addr::new(10, 0, 0, 1), 1234),
            40000
        );
        assert!(t.verify_checksum(Ipv4Addr::new(10, 0, 0, 1), rip));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(t) = TcpSegment::new_checked(&data[..]) {
                let _ = (t.src_port(), t.dst_port(), t.seq(), t.ack_no(), t.flags(), t.fin(),
                         t.syn(), t.rst(), t.psh(), t.ack(), t.urg(), t.window(), t.checksum(),
                         t.urgent(), t.verify_checksum(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST));
                prop_assert_eq!(20 + t.options().len() + t.payload().len(), data.len());
            }
            if data.len() >= 20 {
                let mut d = data.clone();
                let mut t = TcpSegment::new_unchecked(&mut d[..]);
                t.set_header_len(60);
                let _ = (t.options().len(), t.payload().len(), t.payload_mut().len());
            }
        }

        #[test]
        fn rewrite_equals_full(mut seg in proptest::collection::vec(any::<u8>(), 20..100),
                               src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(),
                               na in any::<[u8; 4]>(), np in any::<u16>(), side in any::<bool>()) {
            seg[12] = 0x50;
            let mut t = TcpSegment::new_checked(&mut seg[..]).unwrap();
            t.fill_checksum(src.into(), dst.into());
            let (s2, d2) = if side {
                t.rewrite_dst(dst.into(), na.into(), np);
                (src, na)
            } else {
                t.rewrite_src(src.into(), na.into(), np);
                (na, dst)
            };
            let inc = t.checksum();
            prop_assert!(t.verify_checksum(s2.into(), d2.into()));
            t.fill_checksum(s2.into(), d2.into());
            prop_assert_eq!(inc, t.checksum());
        }
    }
}
