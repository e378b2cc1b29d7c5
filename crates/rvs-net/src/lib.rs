//! Zero-copy header views over `&[u8]` / `&mut [u8]` and checksum helpers.
//!
//! Modelled on smoltcp's `wire` module: each protocol has a view `Foo<T: AsRef<[u8]>>` with
//! getters, plus setters when `T: AsMut<[u8]>`. `new_checked` validates every length a getter
//! relies on, so after it succeeds no getter can panic; variable-length parts (options, payload)
//! are additionally clamped to the buffer so that even setters cannot make a later getter panic.
//! `new_unchecked` is for buffers the caller has already sized (e.g. building a packet); its
//! getters panic on a short buffer, so never use it on received bytes.
//!
//! Multi-byte fields are network byte order on the wire; accessors take and return host values.
//! No DPDK types, no allocation, no panics on untrusted input.
// Input paths never panic: no unwrap, expect or panic outside tests (tests may).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod l4;
pub mod tcp;
pub mod udp;

use core::fmt;
use core::str::FromStr;

/// Errors from parsing or building packets. Each variant is a distinct drop reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Error {
    /// The buffer is shorter than the header, or than a length field says.
    #[error("packet truncated")]
    Truncated,
    /// IPv4 version field is not 4.
    #[error("bad IP version")]
    BadVersion,
    /// A header length field is below its protocol minimum (IPv4 IHL < 5, TCP data offset < 5).
    #[error("bad header length")]
    BadHeaderLen,
    /// IPv4 total length is smaller than the header length.
    #[error("bad IPv4 total length")]
    BadTotalLen,
    /// An IPv4 fragment whose offset plus payload runs past 65535 bytes: its datagram could
    /// not exist ("ping of death"), and splitting it again would overflow the 13-bit offset.
    #[error("IPv4 fragment extends past 65535 bytes")]
    FragmentTooLong,
    /// UDP length field is below 8.
    #[error("bad UDP length")]
    BadLength,
    /// A checksum does not verify.
    #[error("bad checksum")]
    BadChecksum,
    /// Well-formed but not something we handle (e.g. ARP for non-Ethernet/IPv4).
    #[error("unsupported format")]
    Unsupported,
    /// The packet is not of the protocol the operation needs (e.g. not ARP, not ICMP).
    #[error("unexpected protocol")]
    UnexpectedProtocol,
    /// The message is not of the type the operation needs (e.g. not an ARP or echo request).
    #[error("unexpected message type")]
    UnexpectedType,
    /// The packet is an IPv4 fragment and the operation needs a whole (or first) datagram.
    #[error("IP fragment")]
    Fragment,
    /// RFC 1122 3.2.2: never send an ICMP error about an ICMP error.
    #[error("refusing ICMP error about an ICMP error")]
    IcmpErrorAboutError,
    /// The source address does not denote a single host (zero, broadcast, multicast, ...).
    #[error("bad source address")]
    BadSourceAddr,
    /// The destination address is broadcast or multicast.
    #[error("bad destination address")]
    BadDestAddr,
    /// The output buffer cannot hold the packet being built.
    #[error("output buffer too small")]
    BufferTooSmall,
    /// Text is not a MAC address of the form `aa:bb:cc:dd:ee:ff`.
    #[error("invalid MAC address")]
    BadMacAddr,
}

pub type Result<T> = core::result::Result<T, Error>;

/// An Ethernet (EUI-48) hardware address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// Reads the first 6 bytes of `b`; `None` if `b` is shorter.
    pub fn from_bytes(b: &[u8]) -> Option<MacAddr> {
        let a: [u8; 6] = b.get(..6)?.try_into().ok()?;
        Some(MacAddr(a))
    }

    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    pub fn is_broadcast(&self) -> bool {
        self.0 == [0xff; 6]
    }

    /// Group bit set (includes broadcast).
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    pub fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }

    /// Locally administered bit set.
    pub fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl FromStr for MacAddr {
    type Err = Error;

    /// Parses six colon-separated groups of one or two hex digits (case-insensitive).
    fn from_str(s: &str) -> Result<MacAddr> {
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in out.iter_mut() {
            let part = parts.next().ok_or(Error::BadMacAddr)?;
            if part.is_empty() || part.len() > 2 || !part.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(Error::BadMacAddr);
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| Error::BadMacAddr)?;
        }
        if parts.next().is_some() {
            return Err(Error::BadMacAddr);
        }
        Ok(MacAddr(out))
    }
}

// Serialized as the text form, so configs read `"02:00:00:00:00:01"`.
impl serde::Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for MacAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl From<[u8; 6]> for MacAddr {
    fn from(b: [u8; 6]) -> Self {
        MacAddr(b)
    }
}

/// True if `ip` can be the source of a packet we answer: RFC 1122 3.2.1.3 / 3.2.2 exclude
/// 0.0.0.0/8, 127.0.0.0/8, multicast (224/4) and reserved/broadcast (240/4).
pub fn is_unicast_host(ip: std::net::Ipv4Addr) -> bool {
    let o = ip.octets()[0];
    o != 0 && o != 127 && o < 224
}

// Fixed-offset readers/writers. Callers index only within lengths `new_checked` validated.
#[inline]
pub(crate) fn rd16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
pub(crate) fn rd32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
pub(crate) fn wr16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline]
pub(crate) fn wr32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

#[inline]
pub(crate) fn rd_ip(b: &[u8], at: usize) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::from(rd32(b, at))
}

#[inline]
pub(crate) fn rd_mac(b: &[u8], at: usize) -> MacAddr {
    MacAddr([b[at], b[at + 1], b[at + 2], b[at + 3], b[at + 4], b[at + 5]])
}

#[inline]
pub(crate) fn wr_mac(b: &mut [u8], at: usize, m: MacAddr) {
    b[at..at + 6].copy_from_slice(&m.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_display_and_parse() {
        let m = MacAddr([0x00, 0x1b, 0x2c, 0xaa, 0xbb, 0xff]);
        assert_eq!(m.to_string(), "00:1b:2c:aa:bb:ff");
        assert_eq!("00:1B:2c:aa:bb:ff".parse::<MacAddr>(), Ok(m));
        assert_eq!("0:1b:2c:aa:bb:ff".parse::<MacAddr>().map(|m| m.0[0]), Ok(0));
        for bad in [
            "",
            "00:1b:2c:aa:bb",
            "00:1b:2c:aa:bb:ff:00",
            "00:1b:2c:aa:bb:",
            "001:1b:2c:aa:bb:ff",
            "0g:1b:2c:aa:bb:ff",
            "00-1b-2c-aa-bb-ff",
            "+0:1b:2c:aa:bb:ff",
        ] {
            assert_eq!(bad.parse::<MacAddr>(), Err(Error::BadMacAddr), "{bad:?}");
        }
    }

    #[test]
    fn mac_serde() {
        let m = MacAddr([2, 0, 0, 0xab, 0, 1]);
        assert_eq!(serde_json::to_string(&m).unwrap(), "\"02:00:00:ab:00:01\"");
        assert_eq!(
            serde_json::from_str::<MacAddr>("\"02:00:00:AB:00:01\"").unwrap(),
            m
        );
        let e = serde_json::from_str::<MacAddr>("\"02:00\"").unwrap_err();
        assert!(e.to_string().contains("invalid MAC address"), "{e}");
    }

    #[test]
    fn mac_classes() {
        assert!(MacAddr::BROADCAST.is_broadcast());
        assert!(MacAddr::BROADCAST.is_multicast());
        assert!(!MacAddr::BROADCAST.is_unicast());
        let mc = MacAddr([0x01, 0x00, 0x5e, 0, 0, 1]);
        assert!(mc.is_multicast() && !mc.is_broadcast() && !mc.is_unicast());
        let uc = MacAddr([0x02, 0, 0, 0, 0, 1]);
        assert!(uc.is_unicast() && uc.is_local() && !uc.is_multicast());
        assert!(MacAddr::ZERO.is_zero() && MacAddr::ZERO.is_unicast());
        assert_eq!(MacAddr::from_bytes(&[1, 2, 3, 4, 5]), None);
        assert_eq!(
            MacAddr::from_bytes(&[1, 2, 3, 4, 5, 6, 7]),
            Some(MacAddr([1, 2, 3, 4, 5, 6]))
        );
    }

    #[test]
    fn unicast_host() {
        use std::net::Ipv4Addr;
        assert!(is_unicast_host(Ipv4Addr::new(10, 0, 0, 1)));
        assert!(is_unicast_host(Ipv4Addr::new(223, 255, 255, 254)));
        assert!(!is_unicast_host(Ipv4Addr::new(0, 0, 0, 0)));
        assert!(!is_unicast_host(Ipv4Addr::new(127, 0, 0, 1)));
        assert!(!is_unicast_host(Ipv4Addr::new(224, 0, 0, 1)));
        assert!(!is_unicast_host(Ipv4Addr::new(240, 0, 0, 1)));
        assert!(!is_unicast_host(Ipv4Addr::BROADCAST));
    }
}
