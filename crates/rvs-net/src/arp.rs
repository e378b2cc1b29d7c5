//! ARP for Ethernet / IPv4 (RFC 826), plus frame builders for requests, gratuitous ARP and
//! in-place replies.

use std::net::Ipv4Addr;

use super::ethernet::{self, EtherType, EthernetFrame};
use super::{rd16, rd_ip, rd_mac, wr16, wr32, wr_mac, Error, MacAddr, Result};

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;
/// Length of a complete ARP frame as built here (Ethernet header + ARP, zero-padded to 60).
pub const FRAME_LEN: usize = ethernet::MIN_FRAME_LEN;

pub const HTYPE_ETHERNET: u16 = 1;

/// ARP operation codes.
pub struct Operation;

impl Operation {
    pub const REQUEST: u16 = 1;
    pub const REPLY: u16 = 2;
}

mod field {
    pub const HTYPE: usize = 0;
    pub const PTYPE: usize = 2;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: usize = 6;
    pub const SHA: usize = 8;
    pub const SPA: usize = 14;
    pub const THA: usize = 18;
    pub const TPA: usize = 24;
}

/// A view of an Ethernet/IPv4 ARP packet (the Ethernet payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wraps without checking; getters panic if the buffer is shorter than [`PACKET_LEN`].
    pub const fn new_unchecked(buffer: T) -> Self {
        ArpPacket { buffer }
    }

    /// Wraps after checking length (>= 28; trailing Ethernet padding is fine) and that the
    /// packet is Ethernet/IPv4 (htype 1, ptype 0x0800, hlen 6, plen 4).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < PACKET_LEN {
            return Err(Error::Truncated);
        }
        if rd16(b, field::HTYPE) != HTYPE_ETHERNET
            || rd16(b, field::PTYPE) != EtherType::IPV4
            || b[field::HLEN] != 6
            || b[field::PLEN] != 4
        {
            return Err(Error::Unsupported);
        }
        Ok(ArpPacket { buffer })
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn operation(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::OPER)
    }

    pub fn sender_hw(&self) -> MacAddr {
        rd_mac(self.buffer.as_ref(), field::SHA)
    }

    pub fn sender_ip(&self) -> Ipv4Addr {
        rd_ip(self.buffer.as_ref(), field::SPA)
    }

    pub fn target_hw(&self) -> MacAddr {
        rd_mac(self.buffer.as_ref(), field::THA)
    }

    pub fn target_ip(&self) -> Ipv4Addr {
        rd_ip(self.buffer.as_ref(), field::TPA)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Writes the fixed Ethernet/IPv4 fields (htype, ptype, hlen, plen).
    pub fn set_ethernet_ipv4(&mut self) {
        let b = self.buffer.as_mut();
        wr16(b, field::HTYPE, HTYPE_ETHERNET);
        wr16(b, field::PTYPE, EtherType::IPV4);
        b[field::HLEN] = 6;
        b[field::PLEN] = 4;
    }

    pub fn set_operation(&mut self, op: u16) {
        wr16(self.buffer.as_mut(), field::OPER, op)
    }

    pub fn set_sender_hw(&mut self, m: MacAddr) {
        wr_mac(self.buffer.as_mut(), field::SHA, m)
    }

    pub fn set_sender_ip(&mut self, ip: Ipv4Addr) {
        wr32(self.buffer.as_mut(), field::SPA, ip.into())
    }

    pub fn set_target_hw(&mut self, m: MacAddr) {
        wr_mac(self.buffer.as_mut(), field::THA, m)
    }

    pub fn set_target_ip(&mut self, ip: Ipv4Addr) {
        wr32(self.buffer.as_mut(), field::TPA, ip.into())
    }
}

/// Writes a complete broadcast ARP request frame (60 bytes, zero-padded) into `buf` and returns
/// its length. The target hardware address is zero.
pub fn build_request(
    buf: &mut [u8],
    src_mac: MacAddr,
    src_ip: Ipv4Addr,
    target_ip: Ipv4Addr,
) -> Result<usize> {
    let frame = buf.get_mut(..FRAME_LEN).ok_or(Error::BufferTooSmall)?;
    frame.fill(0);
    ethernet::write_header(frame, MacAddr::BROADCAST, src_mac, EtherType::ARP)?;
    let mut arp = ArpPacket::new_unchecked(&mut frame[ethernet::HEADER_LEN..]);
    arp.set_ethernet_ipv4();
    arp.set_operation(Operation::REQUEST);
    arp.set_sender_hw(src_mac);
    arp.set_sender_ip(src_ip);
    arp.set_target_hw(MacAddr::ZERO);
    arp.set_target_ip(target_ip);
    Ok(FRAME_LEN)
}

/// Writes a gratuitous ARP (a broadcast request whose sender and target IP are both `ip`), used
/// to announce a VIP or refresh neighbours' caches. Returns the frame length (60).
pub fn build_gratuitous(buf: &mut [u8], mac: MacAddr, ip: Ipv4Addr) -> Result<usize> {
    build_request(buf, mac, ip, ip)
}

/// Turns a received Ethernet + ARP request frame into the reply, in place and without
/// allocating: target := old sender, sender := (`our_mac`, old target IP), op := reply; the
/// Ethernet destination becomes the request's Ethernet source and the source `our_mac`. Bytes
/// after the ARP packet (Ethernet padding) are zeroed so no request bytes are echoed; the frame
/// keeps its length. Whether the target IP is one we own is the caller's decision (check it with
/// [`ArpPacket::target_ip`] first). Untagged frames only.
pub fn reply_in_place(frame: &mut [u8], our_mac: MacAddr) -> Result<()> {
    let mut eth = EthernetFrame::new_checked(&mut *frame)?;
    if eth.ethertype() != EtherType::ARP {
        return Err(Error::UnexpectedProtocol);
    }
    let requester = eth.src();
    let mut arp = ArpPacket::new_checked(eth.payload_mut())?;
    if arp.operation() != Operation::REQUEST {
        return Err(Error::UnexpectedType);
    }
    let (sha, spa, tpa) = (arp.sender_hw(), arp.sender_ip(), arp.target_ip());
    arp.set_operation(Operation::REPLY);
    arp.set_target_hw(sha);
    arp.set_target_ip(spa);
    arp.set_sender_hw(our_mac);
    arp.set_sender_ip(tpa);
    eth.set_dst(requester);
    eth.set_src(our_mac);
    if let Some(pad) = frame.get_mut(ethernet::HEADER_LEN + PACKET_LEN..) {
        pad.fill(0);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // A request from 10.0.0.1 (02:00:00:00:00:01) for 10.0.0.2, as captured on the wire
    // (42 bytes + 18 bytes of junk padding).
    fn request_frame() -> [u8; 60] {
        let mut f = [0xeeu8; 60];
        let head: [u8; 42] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06,
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // htype ptype hlen plen op
            0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 10, 0, 0, 1, // sha spa
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 10, 0, 0, 2, // tha tpa
        ];
        f[..42].copy_from_slice(&head);
        f
    }

    #[test]
    fn parse_known_request() {
        let f = request_frame();
        let arp = ArpPacket::new_checked(&f[14..]).unwrap();
        assert_eq!(arp.operation(), Operation::REQUEST);
        assert_eq!(arp.sender_hw(), MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(arp.sender_ip(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(arp.target_hw(), MacAddr::ZERO);
        assert_eq!(arp.target_ip(), Ipv4Addr::new(10, 0, 0, 2));
    }

    #[test]
    fn rejects_truncated_and_foreign() {
        let f = request_frame();
        assert_eq!(
            ArpPacket::new_checked(&f[14..41]).err(),
            Some(Error::Truncated)
        );
        for (i, v) in [(14, 0x01), (15, 0x06), (16, 0x86), (18, 0x10), (19, 0x10)] {
            let mut g = f;
            g[i] = v;
            assert_eq!(
                ArpPacket::new_checked(&g[14..]).err(),
                Some(Error::Unsupported),
                "byte {i}"
            );
        }
    }

    #[test]
    fn build_request_exact_bytes() {
        let mut buf = [0xaau8; 64];
        let n = build_request(
            &mut buf,
            MacAddr([2, 0, 0, 0, 0, 1]),
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
        )
        .unwrap();
        assert_eq!(n, 60);
        let mut expect = request_frame();
        expect[42..].fill(0);
        assert_eq!(buf[..60], expect[..]);
        assert_eq!(buf[60..], [0xaa; 4]);
        assert_eq!(
            build_request(
                &mut buf[..59],
                MacAddr::ZERO,
                Ipv4Addr::UNSPECIFIED,
                Ipv4Addr::UNSPECIFIED
            ),
            Err(Error::BufferTooSmall)
        );
    }

    #[test]
    fn gratuitous() {
        let mut buf = [0u8; 60];
        let mac = MacAddr([2, 0, 0, 0, 0, 7]);
        let ip = Ipv4Addr::new(192, 0, 2, 10);
        assert_eq!(build_gratuitous(&mut buf, mac, ip), Ok(60));
        let eth = EthernetFrame::new_checked(&buf[..]).unwrap();
        assert_eq!(eth.dst(), MacAddr::BROADCAST);
        assert_eq!(eth.src(), mac);
        assert_eq!(eth.ethertype(), EtherType::ARP);
        let arp = ArpPacket::new_checked(eth.payload()).unwrap();
        assert_eq!(arp.operation(), Operation::REQUEST);
        assert_eq!((arp.sender_hw(), arp.sender_ip()), (mac, ip));
        assert_eq!((arp.target_hw(), arp.target_ip()), (MacAddr::ZERO, ip));
    }

    #[test]
    fn reply_exact_bytes() {
        let mut f = request_frame();
        let ours = MacAddr([0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee]);
        reply_in_place(&mut f, ours).unwrap();
        let mut expect = [0u8; 60];
        expect[..42].copy_from_slice(&[
            0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x08, 0x06,
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, // op reply
            0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 10, 0, 0, 2, // sha spa
            0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 10, 0, 0, 1, // tha tpa
        ]);
        assert_eq!(f, expect);
        // Now a reply: a second call refuses.
        assert_eq!(reply_in_place(&mut f, ours), Err(Error::UnexpectedType));
    }

    #[test]
    fn reply_rejects() {
        let ours = MacAddr([2, 0, 0, 0, 0, 9]);
        let mut f = request_frame();
        f[13] = 0x00; // IPv4 ethertype
        assert_eq!(reply_in_place(&mut f, ours), Err(Error::UnexpectedProtocol));
        let mut f = request_frame();
        assert_eq!(reply_in_place(&mut f[..41], ours), Err(Error::Truncated));
        assert_eq!(reply_in_place(&mut f[..10], ours), Err(Error::Truncated));
        // A 42-byte unpadded request works too.
        let mut f = request_frame();
        assert_eq!(reply_in_place(&mut f[..42], ours), Ok(()));
        assert_eq!(f[42..], [0xee; 18]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]
        #[test]
        fn never_panics(mut data in proptest::collection::vec(any::<u8>(), 0..70), fix in any::<bool>()) {
            if fix && data.len() >= 20 {
                data[..6].copy_from_slice(&[0, 1, 8, 0, 6, 4]);
                data[12..14].copy_from_slice(&[0x08, 0x06]);
                data[14..20].copy_from_slice(&[0, 1, 8, 0, 6, 4]);
            }
            if let Ok(a) = ArpPacket::new_checked(&data[..]) {
                let _ = (a.operation(), a.sender_hw(), a.sender_ip(), a.target_hw(), a.target_ip());
            }
            let mut copy = data.clone();
            if reply_in_place(&mut copy, MacAddr([2, 0, 0, 0, 0, 1])).is_ok() {
                let eth = EthernetFrame::new_checked(&copy[..]).unwrap();
                let arp = ArpPacket::new_checked(eth.payload()).unwrap();
                prop_assert_eq!(arp.operation(), Operation::REPLY);
                prop_assert_eq!(&arp.target_hw().0[..], &data[22..28]);
                prop_assert_eq!(&arp.sender_ip().octets()[..], &data[38..42]);
            }
        }
    }
}
