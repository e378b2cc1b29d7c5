//! UDP datagrams (RFC 768). A checksum of 0 means "none"; a computed 0 is sent as 0xFFFF.

use std::net::Ipv4Addr;

use super::checksum;
use super::ipv4::Protocol;
use super::l4;
use super::{rd16, wr16, Error, Result};

pub const HEADER_LEN: usize = 8;

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 6;
    pub const PAYLOAD: usize = 8;
}

/// A view of a UDP datagram; the buffer may be longer than the length field (which bounds the
/// payload and the checksum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpDatagram<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpDatagram<T> {
    /// Wraps without checking; getters panic if the buffer is shorter than 8.
    pub const fn new_unchecked(buffer: T) -> Self {
        UdpDatagram { buffer }
    }

    /// Wraps after checking: >= 8 bytes (`Truncated`), length field >= 8 (`BadLength`) and
    /// <= buffer (`Truncated`).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let len = usize::from(rd16(b, field::LENGTH));
        if len < HEADER_LEN {
            return Err(Error::BadLength);
        }
        if len > b.len() {
            return Err(Error::Truncated);
        }
        Ok(UdpDatagram { buffer })
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn src_port(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::SRC_PORT)
    }

    pub fn dst_port(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::DST_PORT)
    }

    pub fn len(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Never true for a checked datagram (length >= 8); here for API completeness.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn checksum(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The datagram proper, `..len` (clamped to the buffer).
    pub fn datagram(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[..usize::from(self.len()).min(b.len())]
    }

    /// Bytes `8..len` (clamped to the buffer).
    pub fn payload(&self) -> &[u8] {
        self.datagram().get(field::PAYLOAD..).unwrap_or(&[])
    }

    /// True if the checksum is 0 (none) or verifies over the pseudo header and `..len`.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let d = self.datagram();
        let ph = checksum::pseudo_header_v4(src, dst, Protocol::UDP, self.len());
        checksum::finish(checksum::sum(d, ph)) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpDatagram<T> {
    pub fn set_src_port(&mut self, p: u16) {
        wr16(self.buffer.as_mut(), field::SRC_PORT, p)
    }

    pub fn set_dst_port(&mut self, p: u16) {
        wr16(self.buffer.as_mut(), field::DST_PORT, p)
    }

    pub fn set_len(&mut self, l: u16) {
        wr16(self.buffer.as_mut(), field::LENGTH, l)
    }

    /// Raw write; 0 disables the checksum.
    pub fn set_checksum(&mut self, c: u16) {
        wr16(self.buffer.as_mut(), field::CHECKSUM, c)
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let len = usize::from(self.len());
        let b = self.buffer.as_mut();
        let end = len.min(b.len());
        b.get_mut(field::PAYLOAD..end).unwrap_or(&mut [])
    }

    /// Computes the checksum from scratch over `..len`; a computed 0 is stored as 0xFFFF.
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let ph = checksum::pseudo_header_v4(src, dst, Protocol::UDP, self.len());
        let c = checksum::finish(checksum::sum(self.datagram(), ph));
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }

    /// SNAT: source port := `new_port`, checksum updated incrementally for that and for the IP
    /// source changing `old_addr -> new_addr` (a zero checksum stays zero). Returns the old port.
    pub fn rewrite_src(&mut self, old_addr: Ipv4Addr, new_addr: Ipv4Addr, new_port: u16) -> u16 {
        self.rewrite(field::SRC_PORT, old_addr, new_addr, new_port)
    }

    /// DNAT: destination port := `new_port`, checksum updated as for [`Self::rewrite_src`].
    pub fn rewrite_dst(&mut self, old_addr: Ipv4Addr, new_addr: Ipv4Addr, new_port: u16) -> u16 {
        self.rewrite(field::DST_PORT, old_addr, new_addr, new_port)
    }

    fn rewrite(&mut self, at: usize, old_addr: Ipv4Addr, new_addr: Ipv4Addr, port: u16) -> u16 {
        let b = self.buffer.as_mut();
        let old_port = rd16(b, at);
        wr16(b, at, port);
        let c =
            l4::udp_checksum_rewrite(rd16(b, field::CHECKSUM), old_addr, new_addr, old_port, port);
        wr16(b, field::CHECKSUM, c);
        old_port
    }
}

/// See [`l4::udp_checksum_rewrite`].
pub use super::l4::udp_checksum_rewrite as update_checksum_for_rewrite;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::reference;
    use proptest::prelude::*;

    const SRC: [u8; 4] = [192, 0, 2, 1];
    const DST: [u8; 4] = [198, 51, 100, 7];

    /// A DNS-ish datagram 192.0.2.1:5353 -> 198.51.100.7:53, 5 payload bytes + 3 padding.
    fn dgram() -> Vec<u8> {
        let mut d = vec![
            0x14, 0xe9, 0x00, 0x35, 0x00, 0x0d, 0x00, 0x00, 1, 2, 3, 4, 5,
        ];
        let c = reference::checksum(&[&reference::pseudo(SRC, DST, 17, 13), &d]);
        d[6..8].copy_from_slice(&c.to_be_bytes());
        d.extend_from_slice(&[0xee; 3]);
        d
    }

    #[test]
    fn parse_known() {
        let d = dgram();
        let u = UdpDatagram::new_checked(&d[..]).unwrap();
        assert_eq!((u.src_port(), u.dst_port(), u.len()), (5353, 53, 13));
        assert_eq!(u.payload(), &[1, 2, 3, 4, 5]);
        assert_eq!(u.datagram().len(), 13);
        assert!(u.verify_checksum(SRC.into(), DST.into()));
        assert!(!u.verify_checksum(SRC.into(), SRC.into()));
        assert!(!u.is_empty());
    }

    #[test]
    fn rejects() {
        let d = dgram();
        assert_eq!(
            UdpDatagram::new_checked(&d[..7]).err(),
            Some(Error::Truncated)
        );
        assert_eq!(
            UdpDatagram::new_checked(&d[..12]).err(),
            Some(Error::Truncated)
        );
        let mut b = d.clone();
        b[5] = 7;
        assert_eq!(
            UdpDatagram::new_checked(&b[..]).err(),
            Some(Error::BadLength)
        );
        let mut b = d.clone();
        b[8] ^= 0x10;
        assert!(!UdpDatagram::new_checked(&b[..])
            .unwrap()
            .verify_checksum(SRC.into(), DST.into()));
        // Padding past `len` does not affect the checksum.
        let mut b = d.clone();
        b[14] ^= 0x10;
        assert!(UdpDatagram::new_checked(&b[..])
            .unwrap()
            .verify_checksum(SRC.into(), DST.into()));
    }

    #[test]
    fn zero_checksum() {
        let mut d = dgram();
        let mut u = UdpDatagram::new_checked(&mut d[..]).unwrap();
        u.set_checksum(0);
        assert!(u.verify_checksum(SRC.into(), SRC.into()));
        assert_eq!(
            u.rewrite_dst(DST.into(), Ipv4Addr::new(10, 0, 0, 9), 5353),
            53
        );
        assert_eq!(u.checksum(), 0);
    }

    #[test]
    fn computed_zero_is_sent_as_ffff() {
        // Find a payload word that makes the checksum 0: set the word to the would-be checksum.
        let mut d = vec![0x14, 0xe9, 0x00, 0x35, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00];
        let c = reference::checksum(&[&reference::pseudo(SRC, DST, 17, 10), &d]);
        d[8..10].copy_from_slice(&c.to_be_bytes());
        assert_eq!(
            reference::checksum(&[&reference::pseudo(SRC, DST, 17, 10), &d]),
            0
        );
        let mut u = UdpDatagram::new_checked(&mut d[..]).unwrap();
        u.fill_checksum(SRC.into(), DST.into());
        assert_eq!(u.checksum(), 0xffff);
        assert!(u.verify_checksum(SRC.into(), DST.into()));
    }

    #[test]
    fn setters() {
        let mut d = vec![0u8; 12];
        let mut u = UdpDatagram::new_unchecked(&mut d[..]);
        u.set_src_port(1);
        u.set_dst_port(2);
        u.set_len(12);
        u.payload_mut().copy_from_slice(b"abcd");
        u.fill_checksum(SRC.into(), DST.into());
        let c = u.checksum();
        let mut e = vec![0, 1, 0, 2, 0, 12, 0, 0, b'a', b'b', b'c', b'd'];
        assert_eq!(
            c,
            reference::checksum(&[&reference::pseudo(SRC, DST, 17, 12), &e])
        );
        e[6..8].copy_from_slice(&c.to_be_bytes());
        assert_eq!(d, e);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(u) = UdpDatagram::new_checked(&data[..]) {
                let _ = (u.src_port(), u.dst_port(), u.checksum(), u.is_empty(),
                         u.verify_checksum(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST));
                prop_assert_eq!(8 + u.payload().len(), u.len() as usize);
            }
            if data.len() >= 8 {
                let mut d = data.clone();
                let mut u = UdpDatagram::new_unchecked(&mut d[..]);
                u.set_len(0xffff);
                let _ = (u.payload().len(), u.payload_mut().len(), u.datagram().len());
                u.fill_checksum(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST);
                u.set_len(3);
                let _ = (u.payload().len(), u.payload_mut().len());
            }
        }

        #[test]
        fn rewrite_equals_full(mut d in proptest::collection::vec(any::<u8>(), 8..100),
                               src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(),
                               na in any::<[u8; 4]>(), np in any::<u16>(), side in any::<bool>(),
                               none in any::<bool>()) {
            let l = d.len() as u16;
            d[4..6].copy_from_slice(&l.to_be_bytes());
            let mut u = UdpDatagram::new_checked(&mut d[..]).unwrap();
            u.fill_checksum(src.into(), dst.into());
            if none {
                u.set_checksum(0);
            }
            let (s2, d2) = if side {
                u.rewrite_dst(dst.into(), na.into(), np);
                (src, na)
            } else {
                u.rewrite_src(src.into(), na.into(), np);
                (na, dst)
            };
            let inc = u.checksum();
            prop_assert!(u.verify_checksum(s2.into(), d2.into()));
            if none {
                prop_assert_eq!(inc, 0);
            } else {
                u.fill_checksum(s2.into(), d2.into());
                prop_assert_eq!(inc, u.checksum());
            }
        }
    }
}
