//! Helpers shared by TCP and UDP that need only the first bytes of the header: ports (bytes
//! 0..4 in both) and NAT rewrites of one endpoint with an RFC 1624 checksum update.
//!
//! These work on headers quoted inside ICMP errors too, which carry only 8 bytes of the
//! transport header: [`ports`] / [`set_ports`] need 4 bytes. The TCP checksum (bytes 16..18) is
//! not present in such a quote; the quoted UDP checksum is, but IPVS (and we) leave quoted
//! transport checksums alone and recompute the outer ICMP checksum instead.
//!
//! Rewrite model (LVS-NAT): inbound DNAT changes (daddr, dport), outbound SNAT changes
//! (saddr, sport). The IP header is updated with `Ipv4Packet::set_{src,dst}_incremental`, which
//! returns the old address; pass old and new address here so the transport checksum, whose
//! pseudo header covers the addresses, is updated for both changes in one step.

use std::net::Ipv4Addr;

use super::checksum;
use super::ipv4::{Ipv4Packet, Protocol};
use super::{rd16, wr16, Error, Result};

/// Which endpoint of a flow a rewrite touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Src,
    Dst,
}

/// (source port, destination port) from the first 4 bytes; `None` if fewer.
#[inline]
pub fn ports(buf: &[u8]) -> Option<(u16, u16)> {
    match *buf {
        [a, b, c, d, ..] => Some((u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]))),
        _ => None,
    }
}

/// Writes both ports (no checksum update); `Truncated` if `buf` is shorter than 4.
#[inline]
pub fn set_ports(buf: &mut [u8], src: u16, dst: u16) -> Result<()> {
    let h = buf.get_mut(..4).ok_or(Error::Truncated)?;
    wr16(h, 0, src);
    wr16(h, 2, dst);
    Ok(())
}

/// Offset of the checksum field for TCP/UDP; `None` for other protocols.
#[inline]
pub fn checksum_offset(proto: u8) -> Option<usize> {
    match proto {
        Protocol::TCP => Some(16),
        Protocol::UDP => Some(6),
        _ => None,
    }
}

/// New TCP checksum after one endpoint's address and port changed (RFC 1624 eqn 3).
#[inline]
pub fn tcp_checksum_rewrite(
    csum: u16,
    old_addr: Ipv4Addr,
    new_addr: Ipv4Addr,
    old_port: u16,
    new_port: u16,
) -> u16 {
    checksum::update_addr_port(csum, old_addr.into(), new_addr.into(), old_port, new_port)
}

/// New UDP checksum after one endpoint's address and port changed: 0 ("no checksum") stays 0,
/// and a result of 0 is sent as 0xFFFF (RFC 768).
#[inline]
pub fn udp_checksum_rewrite(
    csum: u16,
    old_addr: Ipv4Addr,
    new_addr: Ipv4Addr,
    old_port: u16,
    new_port: u16,
) -> u16 {
    if csum == 0 {
        return 0;
    }
    match tcp_checksum_rewrite(csum, old_addr, new_addr, old_port, new_port) {
        0 => 0xffff,
        c => c,
    }
}

/// Rewrites one endpoint of a TCP or UDP header in place: sets the `side` port to `new_port`
/// and updates the checksum for that and for the pseudo-header address change
/// `old_addr -> new_addr` (pass equal addresses for a port-only rewrite). Returns the old port.
///
/// `seg` starts at the transport header; it needs only the bytes up to and including the
/// checksum (TCP 18, UDP 8), else `Truncated`. `UnexpectedProtocol` for other protocols.
pub fn rewrite_endpoint(
    proto: u8,
    seg: &mut [u8],
    side: Side,
    old_addr: Ipv4Addr,
    new_addr: Ipv4Addr,
    new_port: u16,
) -> Result<u16> {
    let at = checksum_offset(proto).ok_or(Error::UnexpectedProtocol)?;
    let h = seg.get_mut(..at + 2).ok_or(Error::Truncated)?;
    let port_at = match side {
        Side::Src => 0,
        Side::Dst => 2,
    };
    let old_port = rd16(h, port_at);
    wr16(h, port_at, new_port);
    let csum = rd16(h, at);
    let c = if proto == Protocol::UDP {
        udp_checksum_rewrite(csum, old_addr, new_addr, old_port, new_port)
    } else {
        tcp_checksum_rewrite(csum, old_addr, new_addr, old_port, new_port)
    };
    wr16(h, at, c);
    Ok(old_port)
}

/// Full NAT rewrite of one endpoint of an IPv4 TCP/UDP packet (`ip_packet` starts at the IP
/// header; Ethernet padding allowed): the `side` address := `new_addr` with the IP header
/// checksum updated incrementally, the `side` port := `new_port` with the transport checksum
/// updated for both changes. Returns the old (address, port).
///
/// Errors leave the packet untouched: IPv4 parse errors, `Fragment` for a non-first fragment
/// (no transport header; a first fragment is fine since the checksum covers the whole
/// datagram), `UnexpectedProtocol` unless TCP/UDP, `Truncated` if the transport header is cut
/// before its checksum. The IP header checksum is not verified here.
pub fn nat_rewrite(
    ip_packet: &mut [u8],
    side: Side,
    new_addr: Ipv4Addr,
    new_port: u16,
) -> Result<(Ipv4Addr, u16)> {
    let mut ip = Ipv4Packet::new_checked(ip_packet)?;
    if ip.frag_offset() != 0 {
        return Err(Error::Fragment);
    }
    let proto = ip.protocol();
    let at = checksum_offset(proto).ok_or(Error::UnexpectedProtocol)?;
    if ip.payload().len() < at + 2 {
        return Err(Error::Truncated);
    }
    let old_addr = match side {
        Side::Src => ip.set_src_incremental(new_addr),
        Side::Dst => ip.set_dst_incremental(new_addr),
    };
    let old_port = rewrite_endpoint(proto, ip.payload_mut(), side, old_addr, new_addr, new_port)?;
    Ok((old_addr, old_port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::reference;
    use proptest::prelude::*;

    #[test]
    fn ports_short_and_exact() {
        assert_eq!(ports(&[0x00, 0x50, 0x1f]), None);
        assert_eq!(ports(&[0x00, 0x50, 0x1f, 0x90]), Some((80, 8080)));
        let mut b = [0u8; 8];
        set_ports(&mut b, 0x1234, 0xabcd).unwrap();
        assert_eq!(b, [0x12, 0x34, 0xab, 0xcd, 0, 0, 0, 0]);
        assert_eq!(set_ports(&mut b[..3], 1, 2), Err(Error::Truncated));
    }

    #[test]
    fn rewrite_errors() {
        let a = Ipv4Addr::new(1, 2, 3, 4);
        let mut b = [0u8; 18];
        assert_eq!(
            rewrite_endpoint(1, &mut b, Side::Src, a, a, 1),
            Err(Error::UnexpectedProtocol)
        );
        assert_eq!(
            rewrite_endpoint(6, &mut b[..17], Side::Src, a, a, 1),
            Err(Error::Truncated)
        );
        assert_eq!(
            rewrite_endpoint(17, &mut b[..7], Side::Src, a, a, 1),
            Err(Error::Truncated)
        );
        // UDP with only the 8-byte header present (as quoted in ICMP) works; 0 stays 0.
        assert_eq!(
            rewrite_endpoint(17, &mut b[..8], Side::Dst, a, a, 99),
            Ok(0)
        );
        assert_eq!(b[..8], [0, 0, 0, 99, 0, 0, 0, 0]);
    }

    #[test]
    fn udp_zero_result_becomes_ffff() {
        // Choose a checksum whose update lands exactly on 0: ~(~c + ~old + new) = 0 with
        // c = 0x0001, old = 0x0000 port, new = 0xfffe... verify against the formula directly.
        let a = Ipv4Addr::new(0, 0, 0, 0);
        let c = tcp_checksum_rewrite(0x0001, a, a, 0x0000, 0x0001);
        assert_eq!(c, 0x0000);
        assert_eq!(udp_checksum_rewrite(0x0001, a, a, 0x0000, 0x0001), 0xffff);
        assert_eq!(
            udp_checksum_rewrite(0, a, Ipv4Addr::new(9, 9, 9, 9), 1, 2),
            0
        );
    }

    fn full(proto: u8, src: [u8; 4], dst: [u8; 4], seg: &mut [u8]) -> u16 {
        let at = checksum_offset(proto).unwrap();
        seg[at] = 0;
        seg[at + 1] = 0;
        let c = reference::checksum(&[&reference::pseudo(src, dst, proto, seg.len() as u16), seg]);
        let c = if proto == 17 && c == 0 { 0xffff } else { c };
        seg[at..at + 2].copy_from_slice(&c.to_be_bytes());
        c
    }

    /// IPv4 (20-byte header, checksums by the reference) carrying `seg` as `proto`.
    fn ip_packet(proto: u8, src: [u8; 4], dst: [u8; 4], seg: &[u8]) -> Vec<u8> {
        let tl = (20 + seg.len()) as u16;
        let mut v = vec![0x45, 0, 0, 0, 0x12, 0x34, 0, 0, 64, proto, 0, 0];
        v[2..4].copy_from_slice(&tl.to_be_bytes());
        v.extend_from_slice(&src);
        v.extend_from_slice(&dst);
        let c = reference::checksum(&[&v]);
        v[10..12].copy_from_slice(&c.to_be_bytes());
        v.extend_from_slice(seg);
        v
    }

    #[test]
    fn nat_rewrite_exact_and_errors() {
        let cip = [203, 0, 113, 9];
        let vip = [198, 51, 100, 1];
        let rip = [10, 0, 0, 5];
        let mut seg = vec![
            0xc0, 0x01, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff,
        ];
        seg.extend_from_slice(&[0, 0, 0, 0]);
        full(6, cip, vip, &mut seg);
        let mut p = ip_packet(6, cip, vip, &seg);
        p.extend_from_slice(&[0xee; 6]); // padding
        let r = nat_rewrite(&mut p, Side::Dst, rip.into(), 8080);
        assert_eq!(r, Ok((vip.into(), 80)));
        // Expected bytes, built from scratch.
        let mut seg2 = seg.clone();
        seg2[2..4].copy_from_slice(&8080u16.to_be_bytes());
        full(6, cip, rip, &mut seg2);
        let mut expect = ip_packet(6, cip, rip, &seg2);
        expect.extend_from_slice(&[0xee; 6]);
        assert_eq!(p, expect);

        let mut u = vec![0x13, 0x88, 0, 53, 0, 8, 0, 0];
        full(17, cip, vip, &mut u);
        let good = ip_packet(17, cip, vip, &u);
        let mut q = good.clone();
        assert_eq!(
            nat_rewrite(&mut q, Side::Src, rip.into(), 1),
            Ok((cip.into(), 5000))
        );
        let mut q = good.clone();
        q[9] = 1;
        let before = q.clone();
        assert_eq!(
            nat_rewrite(&mut q, Side::Src, rip.into(), 1),
            Err(Error::UnexpectedProtocol)
        );
        assert_eq!(q, before);
        let mut q = good.clone();
        q[7] = 1;
        assert_eq!(
            nat_rewrite(&mut q, Side::Src, rip.into(), 1),
            Err(Error::Fragment)
        );
        let mut q = good[..27].to_vec();
        q[3] = 27;
        let before = q.clone();
        assert_eq!(
            nat_rewrite(&mut q, Side::Src, rip.into(), 1),
            Err(Error::Truncated)
        );
        assert_eq!(q, before);
        let mut q = good.clone();
        assert_eq!(
            nat_rewrite(&mut q[..27], Side::Src, rip.into(), 1),
            Err(Error::Truncated)
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn nat_rewrite_verifies(udp in any::<bool>(), mut seg in proptest::collection::vec(any::<u8>(), 20..120),
                                src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(),
                                na in any::<[u8; 4]>(), np in any::<u16>(), dst_side in any::<bool>()) {
            let proto = if udp { 17 } else { 6 };
            if udp {
                let l = seg.len() as u16;
                seg[4..6].copy_from_slice(&l.to_be_bytes());
            }
            full(proto, src, dst, &mut seg);
            let mut p = ip_packet(proto, src, dst, &seg);
            let side = if dst_side { Side::Dst } else { Side::Src };
            nat_rewrite(&mut p, side, na.into(), np).unwrap();
            let (s2, d2) = if dst_side { (src, na) } else { (na, dst) };
            let mut seg2 = seg.clone();
            let port_at = if dst_side { 2 } else { 0 };
            seg2[port_at..port_at + 2].copy_from_slice(&np.to_be_bytes());
            full(proto, s2, d2, &mut seg2);
            prop_assert_eq!(p, ip_packet(proto, s2, d2, &seg2));
        }

        #[test]
        fn nat_rewrite_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64), np in any::<u16>()) {
            let mut d = data.clone();
            if d.len() >= 20 {
                d[0] = 0x45;
                let l = d.len() as u16;
                d[2..4].copy_from_slice(&l.to_be_bytes());
                d[6] &= 0xe0;
                d[7] = 0;
                d[9] = if np & 1 == 0 { 6 } else { 17 };
            }
            let r = nat_rewrite(&mut d, Side::Dst, Ipv4Addr::LOCALHOST, np);
            if data.len() >= 20 {
                let need = if np & 1 == 0 { 38 } else { 28 };
                prop_assert_eq!(r.is_ok(), data.len() >= need);
            }
            let mut d = data;
            let _ = nat_rewrite(&mut d, Side::Src, Ipv4Addr::LOCALHOST, np);
        }

        #[test]
        fn rewrite_equals_full(udp in any::<bool>(), mut seg in proptest::collection::vec(any::<u8>(), 20..120),
                               src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(),
                               new_addr in any::<[u8; 4]>(), new_port in any::<u16>(),
                               dst_side in any::<bool>(), no_csum in any::<bool>()) {
            let proto = if udp { 17 } else { 6 };
            if udp {
                let l = seg.len() as u16;
                seg[4..6].copy_from_slice(&l.to_be_bytes());
            }
            full(proto, src, dst, &mut seg);
            let zero = udp && no_csum;
            if zero {
                seg[6] = 0;
                seg[7] = 0;
            }
            let side = if dst_side { Side::Dst } else { Side::Src };
            let old_addr = if dst_side { dst } else { src };
            let old_port = ports(&seg).unwrap();
            let old_port = if dst_side { old_port.1 } else { old_port.0 };
            let r = rewrite_endpoint(proto, &mut seg, side, old_addr.into(), new_addr.into(), new_port);
            prop_assert_eq!(r, Ok(old_port));
            let at = checksum_offset(proto).unwrap();
            let inc = u16::from_be_bytes([seg[at], seg[at + 1]]);
            if zero {
                prop_assert_eq!(inc, 0);
            } else {
                let (s2, d2) = if dst_side { (src, new_addr) } else { (new_addr, dst) };
                prop_assert_eq!(inc, full(proto, s2, d2, &mut seg));
            }
        }
    }
}
