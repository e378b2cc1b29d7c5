//! Ethernet II frames (no FCS; the NIC strips it).

use super::{rd16, rd_mac, wr16, wr_mac, Error, MacAddr, Result};

pub const HEADER_LEN: usize = 14;
/// Minimum frame length without FCS; shorter frames are zero-padded on transmit.
pub const MIN_FRAME_LEN: usize = 60;

/// EtherType values we recognise.
pub struct EtherType;

impl EtherType {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    pub const VLAN: u16 = 0x8100;
    pub const IPV6: u16 = 0x86DD;
    /// 802.1ad service tag (QinQ); not parsed here.
    pub const QINQ: u16 = 0x88A8;
}

mod field {
    pub const DST: usize = 0;
    pub const SRC: usize = 6;
    pub const ETHERTYPE: usize = 12;
    pub const PAYLOAD: usize = 14;
}

/// A view of an Ethernet II frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps without checking; getters panic if the buffer is shorter than [`HEADER_LEN`].
    pub const fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Wraps after checking the buffer holds the 14-byte header.
    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(EthernetFrame { buffer })
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn dst(&self) -> MacAddr {
        rd_mac(self.buffer.as_ref(), field::DST)
    }

    pub fn src(&self) -> MacAddr {
        rd_mac(self.buffer.as_ref(), field::SRC)
    }

    pub fn ethertype(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::ETHERTYPE)
    }

    pub fn payload(&self) -> &[u8] {
        self.buffer.as_ref().get(field::PAYLOAD..).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    pub fn set_dst(&mut self, m: MacAddr) {
        wr_mac(self.buffer.as_mut(), field::DST, m)
    }

    pub fn set_src(&mut self, m: MacAddr) {
        wr_mac(self.buffer.as_mut(), field::SRC, m)
    }

    pub fn set_ethertype(&mut self, t: u16) {
        wr16(self.buffer.as_mut(), field::ETHERTYPE, t)
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        self.buffer
            .as_mut()
            .get_mut(field::PAYLOAD..)
            .unwrap_or(&mut [])
    }

    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }
}

/// Length of an 802.1Q tag (TPID + TCI).
pub const VLAN_TAG_LEN: usize = 4;

/// The L2 header of a frame with at most one 802.1Q tag resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L2Header {
    pub dst: MacAddr,
    pub src: MacAddr,
    /// The tag control information (PCP, DEI, VID) if the frame carried an 802.1Q tag.
    pub vlan_tci: Option<u16>,
    /// The EtherType of the payload (after the tag, if any).
    pub ethertype: u16,
    /// Offset of the L3 header: 14, or 18 when tagged.
    pub header_len: usize,
}

impl L2Header {
    /// VLAN id (low 12 bits of the TCI).
    pub fn vlan_id(&self) -> Option<u16> {
        self.vlan_tci.map(|t| t & 0x0fff)
    }
}

/// Parses the Ethernet header, stepping over one 802.1Q tag (`Truncated` if the tag is cut).
pub fn parse_l2(frame: &[u8]) -> Result<L2Header> {
    let eth = EthernetFrame::new_checked(frame)?;
    let mut h = L2Header {
        dst: eth.dst(),
        src: eth.src(),
        vlan_tci: None,
        ethertype: eth.ethertype(),
        header_len: HEADER_LEN,
    };
    if h.ethertype == EtherType::VLAN {
        let tag = frame
            .get(HEADER_LEN..HEADER_LEN + VLAN_TAG_LEN)
            .ok_or(Error::Truncated)?;
        h.vlan_tci = Some(rd16(tag, 0));
        h.ethertype = rd16(tag, 2);
        h.header_len = HEADER_LEN + VLAN_TAG_LEN;
    }
    Ok(h)
}

/// Writes a 14-byte Ethernet header at the start of `buf`.
pub fn write_header(buf: &mut [u8], dst: MacAddr, src: MacAddr, ethertype: u16) -> Result<()> {
    let h = buf.get_mut(..HEADER_LEN).ok_or(Error::BufferTooSmall)?;
    wr_mac(h, field::DST, dst);
    wr_mac(h, field::SRC, src);
    wr16(h, field::ETHERTYPE, ethertype);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FRAME: [u8; 18] = [
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, // dst
        0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, // src
        0x08, 0x00, // IPv4
        0xde, 0xad, 0xbe, 0xef,
    ];

    #[test]
    fn parse_known() {
        let f = EthernetFrame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(f.dst(), MacAddr([1, 2, 3, 4, 5, 6]));
        assert_eq!(f.src(), MacAddr([0xa, 0xb, 0xc, 0xd, 0xe, 0xf]));
        assert_eq!(f.ethertype(), EtherType::IPV4);
        assert_eq!(f.payload(), &[0xde, 0xad, 0xbe, 0xef]);
    }

    #[test]
    fn set_round_trip() {
        let mut buf = FRAME;
        let mut f = EthernetFrame::new_checked(&mut buf[..]).unwrap();
        f.set_dst(MacAddr::BROADCAST);
        f.set_src(MacAddr([2, 0, 0, 0, 0, 9]));
        f.set_ethertype(EtherType::ARP);
        f.payload_mut()[0] = 0x11;
        assert_eq!(
            buf,
            [
                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 9, 0x08, 0x06, 0x11, 0xad, 0xbe,
                0xef
            ]
        );
        let mut h = [0u8; 14];
        write_header(&mut h, MacAddr([1; 6]), MacAddr([2; 6]), EtherType::VLAN).unwrap();
        assert_eq!(h, [1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 0x81, 0x00]);
        assert_eq!(
            write_header(&mut h[..13], MacAddr([1; 6]), MacAddr([2; 6]), 0),
            Err(Error::BufferTooSmall)
        );
    }

    #[test]
    fn l2_untagged_and_tagged() {
        let h = parse_l2(&FRAME).unwrap();
        assert_eq!(h.dst, MacAddr([1, 2, 3, 4, 5, 6]));
        assert_eq!(h.src, MacAddr([0xa, 0xb, 0xc, 0xd, 0xe, 0xf]));
        assert_eq!(
            (h.vlan_tci, h.ethertype, h.header_len),
            (None, EtherType::IPV4, 14)
        );
        assert_eq!(h.vlan_id(), None);
        let mut tagged = FRAME[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0xa0, 0x64, 0x08, 0x06, 0x00, 0x01]);
        let h = parse_l2(&tagged).unwrap();
        assert_eq!(h.vlan_tci, Some(0xa064));
        assert_eq!(h.vlan_id(), Some(100));
        assert_eq!((h.ethertype, h.header_len), (EtherType::ARP, 18));
        assert_eq!(parse_l2(&tagged[..17]), Err(Error::Truncated));
        assert!(parse_l2(&tagged[..18]).is_ok());
        assert_eq!(parse_l2(&tagged[..13]), Err(Error::Truncated));
    }

    #[test]
    fn header_only_and_truncated() {
        let f = EthernetFrame::new_checked(&FRAME[..14]).unwrap();
        assert!(f.payload().is_empty());
        assert_eq!(
            EthernetFrame::new_checked(&FRAME[..13]).err(),
            Some(Error::Truncated)
        );
        assert_eq!(
            EthernetFrame::new_checked(&[][..]).err(),
            Some(Error::Truncated)
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(f) = EthernetFrame::new_checked(&data[..]) {
                let _ = (f.dst(), f.src(), f.ethertype());
                prop_assert_eq!(f.payload().len(), data.len() - 14);
            } else {
                prop_assert!(data.len() < 14);
            }
            if let Ok(h) = parse_l2(&data) {
                prop_assert!(h.header_len <= data.len());
            }
        }
    }
}
