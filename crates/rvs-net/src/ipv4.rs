//! IPv4 headers (RFC 791).

use std::net::Ipv4Addr;

use super::checksum;
use super::{rd16, rd32, rd_ip, wr16, wr32, Error, Result};

pub const MIN_HEADER_LEN: usize = 20;
pub const MAX_HEADER_LEN: usize = 60;

/// IP protocol numbers we recognise.
pub struct Protocol;

impl Protocol {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
}

/// Flag bits in the flags/fragment-offset word.
pub const FLAG_DF: u16 = 0x4000;
pub const FLAG_MF: u16 = 0x2000;
/// The fragment offset field (13 bits, in 8-byte units) of the flags/offset word.
pub const FRAG_OFFSET_MASK: u16 = 0x1fff;

mod field {
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLG_OFF: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
}

/// A view of an IPv4 packet. The buffer may extend beyond `total_len` (Ethernet padding);
/// [`Ipv4Packet::payload`] stops at `total_len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps without checking; fixed-header getters panic if the buffer is shorter than 20.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps after validating: buffer >= 20 (`Truncated`), version 4 (`BadVersion`), IHL >= 5
    /// (`BadHeaderLen`), header fits (`Truncated`), total_len >= header_len (`BadTotalLen`),
    /// fragment offset + payload <= 65535 (`FragmentTooLong`), total_len <= buffer length
    /// (`Truncated`). The checksum is not checked: see
    /// [`Ipv4Packet::verify_checksum`].
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_checked_quoted(buffer)?;
        if usize::from(p.total_len()) > p.buffer.as_ref().len() {
            return Err(Error::Truncated);
        }
        Ok(p)
    }

    /// Like [`Ipv4Packet::new_checked`] but accepts a datagram cut short after its header, as
    /// quoted inside an ICMP error: `total_len` may exceed the buffer. Payload getters return
    /// what is present.
    pub fn new_checked_quoted(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        if b[field::VER_IHL] >> 4 != 4 {
            return Err(Error::BadVersion);
        }
        let hl = usize::from(b[field::VER_IHL] & 0x0f) * 4;
        if hl < MIN_HEADER_LEN {
            return Err(Error::BadHeaderLen);
        }
        if hl > b.len() {
            return Err(Error::Truncated);
        }
        let tl = usize::from(rd16(b, field::LENGTH));
        if tl < hl {
            return Err(Error::BadTotalLen);
        }
        let offset = usize::from(rd16(b, field::FLG_OFF) & FRAG_OFFSET_MASK) << 3;
        if offset + (tl - hl) > usize::from(u16::MAX) {
            return Err(Error::FragmentTooLong);
        }
        Ok(Ipv4Packet { buffer })
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole underlying buffer (including any bytes after `total_len`).
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL * 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    pub fn total_len(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::LENGTH)
    }

    pub fn ident(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::IDENT)
    }

    /// The raw flags + fragment offset word.
    pub fn flags_frag(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::FLG_OFF)
    }

    pub fn dont_frag(&self) -> bool {
        self.flags_frag() & FLAG_DF != 0
    }

    pub fn more_frags(&self) -> bool {
        self.flags_frag() & FLAG_MF != 0
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (self.flags_frag() & FRAG_OFFSET_MASK) << 3
    }

    /// True for any fragment (first, middle or last) of a fragmented datagram.
    pub fn is_fragment(&self) -> bool {
        self.flags_frag() & (FLAG_MF | FRAG_OFFSET_MASK) != 0
    }

    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    pub fn checksum(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::CHECKSUM)
    }

    pub fn src(&self) -> Ipv4Addr {
        rd_ip(self.buffer.as_ref(), field::SRC)
    }

    pub fn dst(&self) -> Ipv4Addr {
        rd_ip(self.buffer.as_ref(), field::DST)
    }

    /// The header (clamped to the buffer).
    pub fn header(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[..self.header_len().min(b.len())]
    }

    /// Options bytes (empty when IHL is 5).
    pub fn options(&self) -> &[u8] {
        self.header().get(MIN_HEADER_LEN..).unwrap_or(&[])
    }

    /// Bytes `header_len..total_len` (clamped to the buffer): never includes Ethernet padding.
    pub fn payload(&self) -> &[u8] {
        let (s, e) = self.payload_range();
        self.buffer.as_ref().get(s..e).unwrap_or(&[])
    }

    /// The packet proper, `..total_len` (clamped to the buffer).
    pub fn packet(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[..usize::from(self.total_len()).min(b.len())]
    }

    fn payload_range(&self) -> (usize, usize) {
        let len = self.buffer.as_ref().len();
        let end = usize::from(self.total_len()).min(len);
        (self.header_len().min(end), end)
    }

    /// True if the header checksum verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::internet(self.header()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets version 4 and the header length in bytes (must be a multiple of 4 in 20..=60).
    pub fn set_version_and_header_len(&mut self, header_len: usize) {
        let ihl = (header_len / 4).min(15) as u8;
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ihl;
    }

    pub fn set_dscp_ecn(&mut self, v: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = v;
    }

    pub fn set_total_len(&mut self, len: u16) {
        wr16(self.buffer.as_mut(), field::LENGTH, len)
    }

    pub fn set_ident(&mut self, id: u16) {
        wr16(self.buffer.as_mut(), field::IDENT, id)
    }

    /// Sets the raw flags + fragment offset word.
    pub fn set_flags_frag(&mut self, v: u16) {
        wr16(self.buffer.as_mut(), field::FLG_OFF, v)
    }

    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    pub fn set_protocol(&mut self, p: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = p;
    }

    pub fn set_checksum(&mut self, c: u16) {
        wr16(self.buffer.as_mut(), field::CHECKSUM, c)
    }

    pub fn set_src(&mut self, a: Ipv4Addr) {
        wr32(self.buffer.as_mut(), field::SRC, a.into())
    }

    pub fn set_dst(&mut self, a: Ipv4Addr) {
        wr32(self.buffer.as_mut(), field::DST, a.into())
    }

    /// Recomputes the header checksum from scratch.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::internet(self.header());
        self.set_checksum(c);
    }

    /// Sets the source address and fixes the header checksum incrementally (RFC 1624). Returns
    /// the old address (the caller typically needs it for the L4 pseudo-header update).
    #[inline]
    pub fn set_src_incremental(&mut self, a: Ipv4Addr) -> Ipv4Addr {
        self.set_addr_incremental(field::SRC, a)
    }

    /// Sets the destination address and fixes the header checksum incrementally. Returns the
    /// old address.
    #[inline]
    pub fn set_dst_incremental(&mut self, a: Ipv4Addr) -> Ipv4Addr {
        self.set_addr_incremental(field::DST, a)
    }

    #[inline(always)]
    fn set_addr_incremental(&mut self, at: usize, a: Ipv4Addr) -> Ipv4Addr {
        let b = self.buffer.as_mut();
        let old = rd32(b, at);
        let new = u32::from(a);
        wr32(b, at, new);
        let c = checksum::update_u32(rd16(b, field::CHECKSUM), old, new);
        wr16(b, field::CHECKSUM, c);
        Ipv4Addr::from(old)
    }

    /// Decrements the TTL by one and fixes the checksum incrementally; returns the new TTL. A TTL
    /// of 0 is left unchanged (the caller should have sent Time Exceeded for TTL <= 1).
    #[inline]
    pub fn decrement_ttl_incremental(&mut self) -> u8 {
        let b = self.buffer.as_mut();
        let ttl = b[field::TTL];
        if ttl == 0 {
            return 0;
        }
        // TTL is the high byte of the TTL/protocol word, so the word drops by 0x0100.
        let old = rd16(b, field::TTL);
        let new = old - 0x0100;
        b[field::TTL] = ttl - 1;
        let c = checksum::update_u16(rd16(b, field::CHECKSUM), old, new);
        wr16(b, field::CHECKSUM, c);
        ttl - 1
    }

    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        let b = self.buffer.as_mut();
        let hl = hl.min(b.len());
        b.get_mut(MIN_HEADER_LEN..hl).unwrap_or(&mut [])
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (s, e) = self.payload_range();
        self.buffer.as_mut().get_mut(s..e).unwrap_or(&mut [])
    }

    /// Header and payload as separate mutable slices (e.g. rewrite both in one pass).
    pub fn split_header_payload_mut(&mut self) -> (&mut [u8], &mut [u8]) {
        let (s, e) = self.payload_range();
        let b = self.buffer.as_mut();
        let (h, rest) = b.split_at_mut(s);
        let rest_len = rest.len();
        (h, &mut rest[..(e - s).min(rest_len)])
    }

    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }
}

/// An IPv4 packet's header, validated and read once (smoltcp's `Repr` idea): the dataplane
/// parses a packet into this on arrival, and steering, the connection-table prefetch and the
/// load balancer read it instead of re-reading and re-validating the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    /// IHL * 4: 20..=60, at most `total_len`.
    pub header_len: u8,
    /// At most the length of the buffer it was parsed from.
    pub total_len: u16,
    pub protocol: u8,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub dont_frag: bool,
    pub more_frags: bool,
    /// Fragment offset in bytes.
    pub frag_offset: u16,
    pub ident: u16,
    /// `(source port, destination port)`: the first four payload bytes of a TCP or UDP packet
    /// that is not a later fragment, when present.
    pub ports: Option<(u16, u16)>,
}

impl Ipv4Repr {
    /// Parses and validates as [`Ipv4Packet::new_checked`] does (the checksum is not checked).
    /// Inlined: returned through memory from another crate, the representation would be copied
    /// right after it was written, which stalls on store forwarding (measured: +30 ns/packet).
    #[inline(always)]
    pub fn parse(buf: &[u8]) -> Result<Ipv4Repr> {
        Ipv4Packet::new_checked(buf).map(|p| Ipv4Repr::of(&p))
    }

    /// The fields of a packet already validated by [`Ipv4Packet::new_checked`].
    #[inline(always)]
    pub fn of<T: AsRef<[u8]>>(p: &Ipv4Packet<T>) -> Ipv4Repr {
        let protocol = p.protocol();
        let frag_offset = p.frag_offset();
        let ports = match (protocol, frag_offset, p.payload()) {
            (Protocol::TCP | Protocol::UDP, 0, [a, b, c, d, ..]) => {
                Some((u16::from_be_bytes([*a, *b]), u16::from_be_bytes([*c, *d])))
            }
            _ => None,
        };
        Ipv4Repr {
            // new_checked bounds it by 60.
            header_len: p.header_len() as u8,
            total_len: p.total_len(),
            protocol,
            src: p.src(),
            dst: p.dst(),
            ttl: p.ttl(),
            dont_frag: p.dont_frag(),
            more_frags: p.more_frags(),
            frag_offset,
            ident: p.ident(),
            ports,
        }
    }

    /// Header length in bytes, as an index.
    #[inline]
    pub fn hl(&self) -> usize {
        usize::from(self.header_len)
    }

    /// Total length in bytes, as an index.
    #[inline]
    pub fn tl(&self) -> usize {
        usize::from(self.total_len)
    }

    /// True for any fragment (first, middle or last) of a fragmented datagram.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.more_frags || self.frag_offset != 0
    }

    /// Whether `buf` is long enough for the lengths this header claims, i.e. whether indexing
    /// `buf` by [`Ipv4Repr::hl`] and [`Ipv4Repr::tl`] is safe. True for the buffer it was
    /// parsed from; a representation paired with other bytes is checked with this.
    #[inline]
    pub fn fits(&self, buf: &[u8]) -> bool {
        self.hl() >= MIN_HEADER_LEN && self.hl() <= self.tl() && self.tl() <= buf.len()
    }
}

/// Writes a 20-byte option-less IPv4 header at the start of `buf` with a correct checksum:
/// DSCP/ECN `tos`, the given total length, ident 0, no flags, `ttl`, `proto`, `src`, `dst`.
/// (Change the ident with `set_ident` + `fill_checksum` if the packet may be fragmented.)
pub fn write_header(
    buf: &mut [u8],
    tos: u8,
    total_len: u16,
    ttl: u8,
    proto: u8,
    src: Ipv4Addr,
    dst: Ipv4Addr,
) -> Result<()> {
    let h = buf.get_mut(..MIN_HEADER_LEN).ok_or(Error::BufferTooSmall)?;
    let mut p = Ipv4Packet::new_unchecked(h);
    p.set_version_and_header_len(MIN_HEADER_LEN);
    p.set_dscp_ecn(tos);
    p.set_total_len(total_len);
    p.set_ident(0);
    p.set_flags_frag(0);
    p.set_ttl(ttl);
    p.set_protocol(proto);
    p.set_src(src);
    p.set_dst(dst);
    p.fill_checksum();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::reference;
    use proptest::prelude::*;

    // Wikipedia's example header: UDP, 192.168.0.1 -> 192.168.0.199, checksum b861, total 0x73.
    fn known() -> Vec<u8> {
        let mut v = vec![
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        v.extend((0..0x73 - 20).map(|i| i as u8));
        v
    }

    #[test]
    fn parse_known() {
        let buf = known();
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.dscp_ecn(), 0);
        assert_eq!(p.total_len(), 0x73);
        assert_eq!(p.ident(), 0);
        assert!(p.dont_frag());
        assert!(!p.more_frags());
        assert_eq!(p.frag_offset(), 0);
        assert!(!p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), Protocol::UDP);
        assert_eq!(p.checksum(), 0xb861);
        assert_eq!(p.src(), Ipv4Addr::new(192, 168, 0, 1));
        assert_eq!(p.dst(), Ipv4Addr::new(192, 168, 0, 199));
        assert!(p.options().is_empty());
        assert_eq!(p.payload().len(), 0x73 - 20);
        assert_eq!(p.payload()[..3], [0, 1, 2]);
        assert!(p.verify_checksum());
    }

    #[test]
    fn padding_is_accepted_and_excluded() {
        let mut buf = known();
        buf.extend_from_slice(&[0xee; 10]);
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.payload().len(), 0x73 - 20);
        assert_eq!(p.packet().len(), 0x73);
        assert_eq!(*p.payload().last().unwrap(), (0x73 - 21) as u8);
    }

    #[test]
    fn fragments_and_options() {
        let mut buf = known();
        buf[6] = 0x20 | 0x01; // MF, offset 0x1__ (8 * 0x100)
        buf[7] = 0x00;
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert!(p.more_frags() && !p.dont_frag() && p.is_fragment());
        assert_eq!(p.frag_offset(), 0x100 * 8);
        buf[6] = 0;
        buf[7] = 1;
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert!(p.is_fragment() && !p.more_frags());
        assert_eq!(p.frag_offset(), 8);
        buf[0] = 0x46; // one word of options
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.options(), &[0, 1, 2, 3]);
        assert_eq!(p.payload()[0], 4);
    }

    #[test]
    fn rejects_bad() {
        let buf = known();
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..19]).err(),
            Some(Error::Truncated)
        );
        let mut b = buf.clone();
        b[0] = 0x65;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).err(),
            Some(Error::BadVersion)
        );
        b[0] = 0x44;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).err(),
            Some(Error::BadHeaderLen)
        );
        b[0] = 0x4f; // 60-byte header
        assert_eq!(
            Ipv4Packet::new_checked(&b[..40]).err(),
            Some(Error::Truncated)
        );
        let mut b = buf.clone();
        b[2] = 0;
        b[3] = 19;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).err(),
            Some(Error::BadTotalLen)
        );
        b[3] = 0x74;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).err(),
            Some(Error::Truncated)
        );
        // ...which a quoted (ICMP-embedded) header may be.
        let q = Ipv4Packet::new_checked_quoted(&b[..28]).unwrap();
        assert_eq!(q.total_len(), 0x74);
        assert_eq!(q.payload(), &[0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(
            Ipv4Packet::new_checked_quoted(&b[..19]).err(),
            Some(Error::Truncated)
        );
        b[3] = 19;
        assert_eq!(
            Ipv4Packet::new_checked_quoted(&b[..]).err(),
            Some(Error::BadTotalLen)
        );
        let mut b = buf.clone();
        b[11] ^= 1;
        assert!(!Ipv4Packet::new_checked(&b[..]).unwrap().verify_checksum());
    }

    #[test]
    fn setters_and_fill() {
        let mut buf = known();
        let mut p = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
        p.set_ttl(1);
        p.set_src(Ipv4Addr::new(10, 0, 0, 1));
        p.set_dst(Ipv4Addr::new(10, 0, 0, 2));
        p.fill_checksum();
        assert!(p.verify_checksum());
        let mut hdr = buf[..20].to_vec();
        assert_eq!(hdr[8], 1);
        assert_eq!(hdr[12..20], [10, 0, 0, 1, 10, 0, 0, 2]);
        let c = u16::from_be_bytes([hdr[10], hdr[11]]);
        hdr[10] = 0;
        hdr[11] = 0;
        assert_eq!(c, reference::checksum(&[&hdr]));
    }

    #[test]
    fn write_header_exact() {
        let mut b = [0u8; 20];
        write_header(
            &mut b,
            0,
            0x73,
            64,
            Protocol::UDP,
            Ipv4Addr::new(192, 168, 0, 1),
            Ipv4Addr::new(192, 168, 0, 199),
        )
        .unwrap();
        // Same as `known()` except DF: 0xb861 + 0x4000 in the sum -> checksum f861.
        let mut expect = known()[..20].to_vec();
        expect[6] = 0;
        expect[10] = 0xf8;
        expect[11] = 0x61;
        assert_eq!(b[..], expect[..]);
        assert_eq!(
            write_header(
                &mut b[..19],
                0,
                0,
                0,
                0,
                Ipv4Addr::UNSPECIFIED,
                Ipv4Addr::UNSPECIFIED
            ),
            Err(Error::BufferTooSmall)
        );
    }

    #[test]
    fn ttl_decrement() {
        let mut buf = known();
        let mut p = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
        assert_eq!(p.decrement_ttl_incremental(), 63);
        assert!(p.verify_checksum());
        p.set_ttl(0);
        p.fill_checksum();
        assert_eq!(p.decrement_ttl_incremental(), 0);
        assert_eq!(p.ttl(), 0);
        assert!(p.verify_checksum());
    }

    fn arb_header() -> impl Strategy<Value = Vec<u8>> {
        (0usize..=10, proptest::collection::vec(any::<u8>(), 60 + 40)).prop_map(|(words, mut v)| {
            let hl = 20 + 4 * words;
            v[0] = 0x40 | (hl / 4) as u8;
            let tl = (hl + 40) as u16;
            v[2..4].copy_from_slice(&tl.to_be_bytes());
            v.truncate(hl + 40);
            // Any flags and a fragment offset whose 40 payload bytes end by 65535.
            let ff = u16::from_be_bytes([v[6], v[7]]);
            let off = (ff & 0x1fff) % ((65535 - 40) / 8 + 1);
            v[6..8].copy_from_slice(&((ff & 0xe000) | off).to_be_bytes());
            v[10] = 0;
            v[11] = 0;
            let c = reference::checksum(&[&v[..hl]]);
            v[10..12].copy_from_slice(&c.to_be_bytes());
            v
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..80), fix in any::<bool>()) {
            let mut data = data;
            if fix && !data.is_empty() {
                data[0] = 0x40 | (data[0] & 0x0f);
            }
            if let Ok(p) = Ipv4Packet::new_checked(&data[..]) {
                let _ = (p.version(), p.dscp_ecn(), p.ident(), p.dont_frag(), p.more_frags(),
                         p.frag_offset(), p.is_fragment(), p.ttl(), p.protocol(), p.checksum(),
                         p.src(), p.dst(), p.options(), p.verify_checksum(), p.packet());
                prop_assert!(p.header_len() >= 20);
                prop_assert_eq!(p.header_len() + p.payload().len(), p.total_len() as usize);
            }
            if let Ok(p) = Ipv4Packet::new_checked_quoted(&data[..]) {
                let _ = (p.src(), p.dst(), p.options(), p.verify_checksum(), p.packet());
                prop_assert!(p.header_len() + p.payload().len() <= data.len());
            }
            // Even after nonsense setters on an unchecked view, payload/options stay in bounds.
            if data.len() >= 20 {
                let mut p = Ipv4Packet::new_unchecked(&mut data[..]);
                p.set_total_len(0xffff);
                p.set_version_and_header_len(60);
                let _ = (p.payload().len(), p.options().len(), p.header().len(), p.verify_checksum());
                let _ = (p.payload_mut().len(), p.options_mut().len(), p.split_header_payload_mut());
                p.fill_checksum();
            }
        }

        #[test]
        fn incremental_equals_full(mut v in arb_header(), src in any::<u32>(), dst in any::<u32>(), ttl in 1u8..) {
            let mut p = Ipv4Packet::new_checked(&mut v[..]).unwrap();
            prop_assert!(p.verify_checksum());
            let old_src = p.src();
            prop_assert_eq!(p.set_src_incremental(Ipv4Addr::from(src)), old_src);
            p.set_dst_incremental(Ipv4Addr::from(dst));
            p.set_ttl(ttl);
            p.fill_checksum();
            let before = p.checksum();
            prop_assert_eq!(p.decrement_ttl_incremental(), ttl - 1);
            let inc = p.checksum();
            p.fill_checksum();
            prop_assert_eq!(inc, p.checksum());
            prop_assert!(before != inc || ttl == 0);
            // And the address updates: compare against a from-scratch computation.
            let mut w = v.clone();
            let mut q = Ipv4Packet::new_checked(&mut w[..]).unwrap();
            q.set_src_incremental(Ipv4Addr::from(dst));
            q.set_dst_incremental(Ipv4Addr::from(src));
            let inc = q.checksum();
            q.fill_checksum();
            prop_assert_eq!(inc, q.checksum());
            prop_assert!(q.verify_checksum());
        }
    }

    #[test]
    fn repr_reads_the_header_once() {
        let b = known();
        let r = Ipv4Repr::parse(&b).unwrap();
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(r.hl(), p.header_len());
        assert_eq!(r.total_len, p.total_len());
        assert_eq!(
            (r.protocol, r.src, r.dst, r.ttl),
            (17, p.src(), p.dst(), p.ttl())
        );
        let l4 = p.payload();
        let sport = u16::from_be_bytes([l4[0], l4[1]]);
        let dport = u16::from_be_bytes([l4[2], l4[3]]);
        assert_eq!(r.ports, Some((sport, dport)));
        assert!(r.fits(&b) && !r.fits(&b[..b.len() - 1]));
        assert!(!r.is_fragment());
    }

    #[test]
    fn repr_has_no_ports_for_later_fragments_or_other_protocols() {
        let mut b = known();
        {
            let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
            p.set_flags_frag(FLAG_MF | 1);
        }
        let r = Ipv4Repr::parse(&b).unwrap();
        assert_eq!((r.frag_offset, r.more_frags, r.ports), (8, true, None));
        assert!(r.is_fragment());
        Ipv4Packet::new_unchecked(&mut b[..]).set_flags_frag(0);
        Ipv4Packet::new_unchecked(&mut b[..]).set_protocol(Protocol::ICMP);
        assert_eq!(Ipv4Repr::parse(&b).unwrap().ports, None);
        assert_eq!(Ipv4Repr::parse(&b[..19]), Err(Error::Truncated));
    }

    proptest! {
        #[test]
        fn repr_agrees_with_the_packet_view(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(r) = Ipv4Repr::parse(&bytes) {
                let p = Ipv4Packet::new_checked(&bytes[..]).unwrap();
                prop_assert!(r.fits(&bytes));
                prop_assert_eq!(r.hl(), p.header_len());
                prop_assert_eq!(r.frag_offset, p.frag_offset());
                prop_assert_eq!(r.is_fragment(), p.is_fragment());
                prop_assert_eq!((r.src, r.dst, r.ident), (p.src(), p.dst(), p.ident()));
            } else {
                prop_assert!(Ipv4Packet::new_checked(&bytes[..]).is_err());
            }
        }
    }
}
