//! What a worker does with a received frame before load balancing: Ethernet and ARP handling,
//! IPv4 header validation, ICMP echo for the appliance's own addresses. Pure functions over
//! bytes (no DPDK types), so they are unit-tested without hugepages.

use super::counters::PortDropReason;
use crate::config::Interface;
use crate::lb::PortRole;
use crate::net::arp::{self, ArpPacket, Operation};
use crate::net::ethernet::{self, EtherType, EthernetFrame};
use crate::net::icmp;
use crate::net::ipv4::{Ipv4Packet, Ipv4Repr, Protocol};
use crate::net::{is_unicast_host, MacAddr};
use std::net::Ipv4Addr;

/// What the worker knows about one of its ports.
#[derive(Debug, Clone)]
pub struct PortInfo {
    pub role: PortRole,
    pub mac: MacAddr,
    pub iface: Interface,
    /// The port computes IPv4 header checksums on transmit (TX_OFFLOAD_IPV4_CKSUM enabled at
    /// bring-up): headers rvs writes whole are sent with checksum 0 and the offload requested.
    pub tx_ip_csum: bool,
}

/// The outcome of receiving one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rx {
    /// The frame was rewritten in place into a reply of `len` bytes; send it back out of the
    /// port it came in on (Ethernet addresses already swapped).
    Reply {
        len: usize,
        kind: ReplyKind,
    },
    /// ARP that only teaches us a neighbour (a reply, or a request for someone else).
    Consumed,
    /// A valid IPv4 packet for the load balancer; its header starts at `l3` and is parsed into
    /// `h`, which is all steering, prefetch and the load balancer read of it.
    Ipv4 {
        l3: usize,
        h: Ipv4Repr,
    },
    /// For the host's own stack: send it up to the port's kernel twin, unmodified. Only
    /// returned when the port has one.
    ToKernel,
    Drop(PortDropReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    Arp,
    Echo,
}

/// A neighbour learned from ARP: (address, MAC, solicited-or-for-us).
pub type Learned = Option<(Ipv4Addr, MacAddr, bool)>;

/// Handles one received frame. `learned` is set when ARP taught us a neighbour, whatever the
/// outcome (the management core maintains the table).
pub fn receive(frame: &mut [u8], port: &PortInfo, learned: &mut Learned) -> Rx {
    *learned = None;
    let (dst, ethertype) = match EthernetFrame::new_checked(&*frame) {
        Ok(eth) => (eth.dst(), eth.ethertype()),
        Err(_) => return Rx::Drop(PortDropReason::Runt),
    };
    let kernel = port.iface.kernel.is_some();
    let ours = dst == port.mac;
    // Multicast (VRRP, OSPF, IPv6 neighbour discovery ...) is the host's, when it has a twin.
    if !(ours || dst.is_broadcast() || kernel && dst.is_multicast()) {
        return Rx::Drop(PortDropReason::NotOurMac);
    }
    match ethertype {
        EtherType::IPV4 if ours || kernel => ipv4(frame, port, ours),
        EtherType::IPV4 => Rx::Drop(PortDropReason::NotOurMac),
        EtherType::ARP => arp_in(frame, port, learned),
        _ if kernel => Rx::ToKernel,
        _ => Rx::Drop(PortDropReason::UnsupportedEthertype),
    }
}

/// Whether a frame is ARP (its copy goes up to the kernel twin before rvs answers it).
#[inline]
pub fn is_arp(frame: &[u8]) -> bool {
    frame.get(12..14) == Some(&[0x08, 0x06])
}

/// Whether an IPv4 destination is the host's when the port has a kernel twin and rvs has no
/// use for the packet: one of the port's addresses, multicast, or a broadcast.
pub fn for_host(port: &PortInfo, dst: Ipv4Addr) -> bool {
    if dst.is_multicast() || dst.is_broadcast() {
        return true;
    }
    let (own, subnet_broadcast) = port.iface.own_or_broadcast(dst);
    own || subnet_broadcast
}

fn arp_in(frame: &mut [u8], port: &PortInfo, learned: &mut Learned) -> Rx {
    let (op, sha, spa, tpa) = match ArpPacket::new_checked(&frame[ethernet::HEADER_LEN..]) {
        Ok(a) => (a.operation(), a.sender_hw(), a.sender_ip(), a.target_ip()),
        Err(_) => return Rx::Drop(PortDropReason::ArpMalformed),
    };
    let for_us = port.iface.owns(tpa);
    // Learn only senders on our subnets: anything else could never be a next hop.
    if is_unicast_host(spa)
        && !port.iface.owns(spa)
        && port.iface.addresses.iter().any(|a| a.contains(spa))
    {
        *learned = Some((spa, sha, for_us || op == Operation::REPLY));
    }
    match op {
        Operation::REQUEST if for_us && spa != tpa => match arp::reply_in_place(frame, port.mac) {
            Ok(()) => Rx::Reply {
                len: frame.len(),
                kind: ReplyKind::Arp,
            },
            Err(_) => Rx::Drop(PortDropReason::ArpMalformed),
        },
        Operation::REQUEST | Operation::REPLY if learned.is_some() => Rx::Consumed,
        Operation::REQUEST | Operation::REPLY => Rx::Drop(PortDropReason::ArpNotForUs),
        _ => Rx::Drop(PortDropReason::ArpMalformed),
    }
}

/// `unicast`: the frame was sent to our MAC (otherwise to a group address, which only a port
/// with a kernel twin accepts).
fn ipv4(frame: &mut [u8], port: &PortInfo, unicast: bool) -> Rx {
    let l3 = ethernet::HEADER_LEN;
    let (h, echo) = {
        let ip = match Ipv4Packet::new_checked(&frame[l3..]) {
            Ok(ip) => ip,
            Err(_) => return Rx::Drop(PortDropReason::Ipv4Malformed),
        };
        if !ip.verify_checksum() {
            return Rx::Drop(PortDropReason::Ipv4BadChecksum);
        }
        if !is_unicast_host(ip.src()) {
            return Rx::Drop(PortDropReason::Ipv4BadSource);
        }
        let echo = ip.protocol() == Protocol::ICMP
            && !ip.is_fragment()
            && ip.payload().first() == Some(&icmp::ECHO_REQUEST);
        (Ipv4Repr::of(&ip), echo)
    };
    if echo && port.iface.owns(h.dst) {
        return match icmp::echo_reply_in_place(&mut frame[l3..]) {
            Ok(ip_len) => {
                swap_macs(frame);
                Rx::Reply {
                    len: l3 + ip_len,
                    kind: ReplyKind::Echo,
                }
            }
            Err(_) => Rx::Drop(PortDropReason::IcmpUnsupported),
        };
    }
    if port.iface.kernel.is_some() {
        if !unicast || h.dst.is_multicast() || h.dst.is_broadcast() {
            return Rx::ToKernel;
        }
        // One pass over the port's addresses per packet. Nothing a real server sends to the
        // DIP is load-balancer traffic (replies go to the client): it answers the host's own
        // connections (health checks, BGP, SSH).
        let (own, subnet_broadcast) = port.iface.own_or_broadcast(h.dst);
        if subnet_broadcast || (own && port.role == PortRole::Private) {
            return Rx::ToKernel;
        }
    }
    if !unicast {
        return Rx::Drop(PortDropReason::NotOurMac);
    }
    Rx::Ipv4 { l3, h }
}

fn swap_macs(frame: &mut [u8]) {
    let mut d = [0u8; 6];
    d.copy_from_slice(&frame[0..6]);
    frame.copy_within(6..12, 0);
    frame[6..12].copy_from_slice(&d);
}

/// How many fragments an IPv4 packet (`ip`, header at 0) needs for `mtu`: 1 when it fits or
/// cannot be fragmented here, None when it is malformed or `mtu` is too small to carry data.
pub fn fragments_needed(ip: &[u8], mtu: usize) -> Option<usize> {
    let p = Ipv4Packet::new_checked(ip).ok()?;
    let (hl, tl) = (p.header_len(), usize::from(p.total_len()));
    if tl <= mtu {
        return Some(1);
    }
    let chunk = (mtu.checked_sub(hl)? / 8) * 8;
    if chunk == 0 {
        return None;
    }
    Some((tl - hl).div_ceil(chunk))
}

/// Writes fragment `index` of the IPv4 packet `ip` for `mtu` into `out` (as an IPv4 packet)
/// and returns its length. Fragments carry the original header (options included) with their
/// offset and MF set; an already fragmented packet is split further correctly. The header
/// checksum is computed here, or, with `csum_offload` (the port computes it on transmit), left
/// 0 as the offload requires.
pub fn write_fragment(
    ip: &[u8],
    mtu: usize,
    index: usize,
    out: &mut [u8],
    csum_offload: bool,
) -> Option<usize> {
    let p = Ipv4Packet::new_checked(ip).ok()?;
    let (hl, tl) = (p.header_len(), usize::from(p.total_len()));
    let chunk = (mtu.checked_sub(hl)? / 8) * 8;
    let payload = ip.get(hl..tl)?;
    let start = index.checked_mul(chunk)?;
    if chunk == 0 || start >= payload.len() {
        return None;
    }
    let len = chunk.min(payload.len() - start);
    let last = start + len == payload.len();
    let o = out.get_mut(..hl + len)?;
    o[..hl].copy_from_slice(&ip[..hl]);
    o[hl..].copy_from_slice(&payload[start..start + len]);
    // The copied header still carries the whole packet's length: fix it before re-parsing.
    o[2..4].copy_from_slice(&((hl + len) as u16).to_be_bytes());
    let mut f = Ipv4Packet::new_checked(&mut *o).ok()?;
    let units = (p.frag_offset() as usize + start) / 8;
    // 13 bits of offset. `new_checked` already refuses a fragment running past 65535 bytes,
    // the only way to get here; never let a larger value spill into the flag bits.
    if units > usize::from(crate::net::ipv4::FRAG_OFFSET_MASK) {
        return None;
    }
    let mf = !last || p.more_frags();
    f.set_flags_frag(
        (units as u16) | if mf { 0x2000 } else { 0 } | if p.dont_frag() { 0x4000 } else { 0 },
    );
    if csum_offload {
        f.set_checksum(0);
    } else {
        f.fill_checksum();
    }
    Some(hl + len)
}

/// Writes the Ethernet header for a packet leaving `port` towards `next_hop_mac`.
#[inline]
pub fn set_l2(frame: &mut [u8], port: &PortInfo, next_hop_mac: MacAddr) {
    if frame.len() >= ethernet::HEADER_LEN {
        frame[0..6].copy_from_slice(&next_hop_mac.0);
        frame[6..12].copy_from_slice(&port.mac.0);
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::config::IfAddr;
    use crate::net::checksum;

    const OUR: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x13]);
    const PEER: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x12]);

    /// A public port 10.0.0.13/24 (also for the other dataplane modules' tests).
    pub(in crate::dataplane) fn port() -> PortInfo {
        PortInfo {
            role: PortRole::Public,
            mac: OUR,
            iface: Interface {
                device: "net_null0".into(),
                devargs: String::new(),
                addresses: vec![IfAddr {
                    addr: Ipv4Addr::new(10, 0, 0, 13),
                    prefix: 24,
                }],
                gateway: None,
                mtu: 1500,
                neighbours: Vec::new(),
                tx_checksum_offload: true,
                kernel: None,
            },
            tx_ip_csum: false,
        }
    }

    fn arp_request(sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
        let mut f = vec![0u8; 60];
        arp::build_request(&mut f, PEER, sender, target).unwrap();
        f
    }

    /// Ethernet + IPv4 + ICMP echo request with correct checksums computed here, independently
    /// of the code under test.
    fn echo_request(dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&OUR.0);
        f.extend_from_slice(&PEER.0);
        f.extend_from_slice(&[0x08, 0x00]);
        let total = 20 + 8 + payload.len();
        let mut ip = vec![
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0x12,
            0x34,
            0x40,
            0,
            64,
            1,
            0,
            0,
            10,
            0,
            0,
            12,
        ];
        ip.extend_from_slice(&dst.octets());
        let c = naive_csum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let mut icmp = vec![8, 0, 0, 0, 0xab, 0xcd, 0, 1];
        icmp.extend_from_slice(payload);
        let c = naive_csum(&icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&icmp);
        f
    }

    fn naive_csum(b: &[u8]) -> u16 {
        let mut s: u32 = 0;
        for c in b.chunks(2) {
            let w = if c.len() == 2 {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], 0])
            };
            s += w as u32;
        }
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }

    #[test]
    fn arp_request_for_vip_is_answered_and_sender_learned() {
        let mut f = arp_request(Ipv4Addr::new(10, 0, 0, 12), Ipv4Addr::new(10, 0, 0, 13));
        let mut l = None;
        let rx = receive(&mut f, &port(), &mut l);
        assert_eq!(
            rx,
            Rx::Reply {
                len: 60,
                kind: ReplyKind::Arp
            }
        );
        assert_eq!(l, Some((Ipv4Addr::new(10, 0, 0, 12), PEER, true)));
        assert_eq!(&f[0..6], &PEER.0, "to the requester");
        assert_eq!(&f[6..12], &OUR.0);
        let a = ArpPacket::new_checked(&f[14..]).unwrap();
        assert_eq!(a.operation(), Operation::REPLY);
        assert_eq!(a.sender_hw(), OUR);
        assert_eq!(a.sender_ip(), Ipv4Addr::new(10, 0, 0, 13));
        assert_eq!(a.target_ip(), Ipv4Addr::new(10, 0, 0, 12));
    }

    #[test]
    fn arp_for_someone_else_is_not_answered() {
        let mut f = arp_request(Ipv4Addr::new(10, 0, 0, 12), Ipv4Addr::new(10, 0, 0, 99));
        let mut l = None;
        assert_eq!(receive(&mut f, &port(), &mut l), Rx::Consumed);
        assert_eq!(l, Some((Ipv4Addr::new(10, 0, 0, 12), PEER, false)));
        let mut f = arp_request(Ipv4Addr::new(172, 16, 0, 1), Ipv4Addr::new(10, 0, 0, 99));
        assert_eq!(
            receive(&mut f, &port(), &mut l),
            Rx::Drop(PortDropReason::ArpNotForUs)
        );
        assert_eq!(l, None, "off-subnet senders are not learned");
    }

    #[test]
    fn echo_to_vip_is_answered_with_valid_checksums() {
        let mut f = echo_request(Ipv4Addr::new(10, 0, 0, 13), b"hello, rvs");
        let n = f.len();
        let mut l = None;
        let rx = receive(&mut f, &port(), &mut l);
        assert_eq!(
            rx,
            Rx::Reply {
                len: n,
                kind: ReplyKind::Echo
            }
        );
        assert_eq!(&f[0..6], &PEER.0);
        assert_eq!(&f[6..12], &OUR.0);
        let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.src(), Ipv4Addr::new(10, 0, 0, 13));
        assert_eq!(ip.dst(), Ipv4Addr::new(10, 0, 0, 12));
        let icmp = &f[34..];
        assert_eq!(icmp[0], 0, "echo reply");
        assert_eq!(naive_csum(icmp), 0, "ICMP checksum verifies");
        assert_eq!(&icmp[8..], b"hello, rvs");
        let _ = checksum::internet(icmp);
    }

    fn with_twin(mut p: PortInfo) -> PortInfo {
        p.iface.kernel = Some(crate::config::KernelTwin {
            name: "rvs-k".into(),
            backend: crate::config::KernelBackend::Tap,
            rate: 1000,
        });
        p
    }

    /// An IPv4 frame to `dst_mac`/`dst` with protocol `proto` (checksum computed here).
    fn ip_frame(dst_mac: MacAddr, dst: Ipv4Addr, proto: u8) -> Vec<u8> {
        let mut f = echo_request(dst, b"x");
        f[0..6].copy_from_slice(&dst_mac.0);
        f[14 + 9] = proto;
        f[14 + 10] = 0;
        f[14 + 11] = 0;
        let c = naive_csum(&f[14..34]);
        f[14 + 10..14 + 12].copy_from_slice(&c.to_be_bytes());
        f
    }

    #[test]
    fn with_a_twin_multicast_and_other_ethertypes_go_up() {
        let vrrp_mac = MacAddr([0x01, 0, 0x5e, 0, 0, 0x12]);
        let mut vrrp = ip_frame(vrrp_mac, Ipv4Addr::new(224, 0, 0, 18), 112);
        let mut l = None;
        assert_eq!(
            receive(&mut vrrp.clone(), &port(), &mut l),
            Rx::Drop(PortDropReason::NotOurMac)
        );
        assert_eq!(receive(&mut vrrp, &with_twin(port()), &mut l), Rx::ToKernel);
        // IPv6 (neighbour discovery, link-local): the host's when it has a twin.
        let mut v6 = ip_frame(OUR, Ipv4Addr::new(10, 0, 0, 13), 6);
        v6[12..14].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(
            receive(&mut v6.clone(), &port(), &mut l),
            Rx::Drop(PortDropReason::UnsupportedEthertype)
        );
        assert_eq!(receive(&mut v6, &with_twin(port()), &mut l), Rx::ToKernel);
        // Broadcasts to our MAC or the broadcast MAC.
        for (mac, dst) in [
            (MacAddr::BROADCAST, Ipv4Addr::new(10, 0, 0, 255)),
            (OUR, Ipv4Addr::new(10, 0, 0, 255)),
            (MacAddr::BROADCAST, Ipv4Addr::BROADCAST),
        ] {
            let mut f = ip_frame(mac, dst, 17);
            assert_eq!(
                receive(&mut f, &with_twin(port()), &mut l),
                Rx::ToKernel,
                "{dst}"
            );
        }
        // A foreign unicast MAC is still not ours.
        let mut f = ip_frame(PEER, Ipv4Addr::new(10, 0, 0, 13), 6);
        assert_eq!(
            receive(&mut f, &with_twin(port()), &mut l),
            Rx::Drop(PortDropReason::NotOurMac)
        );
    }

    #[test]
    fn with_a_twin_the_dip_is_the_hosts_but_vips_stay_the_balancers() {
        let mut l = None;
        let public = with_twin(port());
        // On the public port the load balancer decides (a service, or NotService -> up).
        let mut f = ip_frame(OUR, Ipv4Addr::new(10, 0, 0, 13), 6);
        assert!(matches!(receive(&mut f, &public, &mut l), Rx::Ipv4 { .. }));
        let mut private = public.clone();
        private.role = PortRole::Private;
        let mut f = ip_frame(OUR, Ipv4Addr::new(10, 0, 0, 13), 6);
        assert_eq!(receive(&mut f, &private, &mut l), Rx::ToKernel);
        // Through the DIP, not to it: NAT replies to clients.
        let mut f = ip_frame(OUR, Ipv4Addr::new(198, 51, 100, 7), 6);
        assert!(matches!(receive(&mut f, &private, &mut l), Rx::Ipv4 { .. }));
        // rvs still answers ping itself.
        let mut e = echo_request(Ipv4Addr::new(10, 0, 0, 13), b"hi");
        assert!(matches!(
            receive(&mut e, &private, &mut l),
            Rx::Reply {
                kind: ReplyKind::Echo,
                ..
            }
        ));
    }

    #[test]
    fn what_is_for_the_host() {
        let p = port();
        assert!(for_host(&p, Ipv4Addr::new(10, 0, 0, 13)));
        assert!(for_host(&p, Ipv4Addr::new(224, 0, 0, 18)));
        assert!(for_host(&p, Ipv4Addr::new(10, 0, 0, 255)));
        assert!(for_host(&p, Ipv4Addr::BROADCAST));
        assert!(!for_host(&p, Ipv4Addr::new(10, 0, 0, 14)));
        assert!(!for_host(&p, Ipv4Addr::new(10, 0, 1, 255)));
        assert!(is_arp(&arp_request(
            Ipv4Addr::new(10, 0, 0, 12),
            Ipv4Addr::new(10, 0, 0, 13)
        )));
        assert!(!is_arp(&echo_request(Ipv4Addr::new(10, 0, 0, 13), b"")));
    }

    #[test]
    fn echo_to_other_address_goes_to_lb() {
        let mut f = echo_request(Ipv4Addr::new(10, 0, 0, 77), b"x");
        let mut l = None;
        let h = Ipv4Repr::parse(&f[14..]).unwrap();
        assert_eq!(receive(&mut f, &port(), &mut l), Rx::Ipv4 { l3: 14, h });
        assert_eq!((h.protocol, h.dst), (1, Ipv4Addr::new(10, 0, 0, 77)));
    }

    #[test]
    fn malformed_ipv4_is_dropped_by_reason() {
        let good = echo_request(Ipv4Addr::new(10, 0, 0, 13), b"abcd");
        let mut l = None;
        let mut bad_csum = good.clone();
        bad_csum[24] ^= 0xff;
        assert_eq!(
            receive(&mut bad_csum, &port(), &mut l),
            Rx::Drop(PortDropReason::Ipv4BadChecksum)
        );
        let mut truncated = good[..30].to_vec();
        assert_eq!(
            receive(&mut truncated, &port(), &mut l),
            Rx::Drop(PortDropReason::Ipv4Malformed)
        );
        let mut v6 = good.clone();
        v6[14] = 0x65;
        assert_eq!(
            receive(&mut v6, &port(), &mut l),
            Rx::Drop(PortDropReason::Ipv4Malformed)
        );
        let mut runt = good[..10].to_vec();
        assert_eq!(
            receive(&mut runt, &port(), &mut l),
            Rx::Drop(PortDropReason::Runt)
        );
        let mut other_mac = good.clone();
        other_mac[0] = 0x04;
        assert_eq!(
            receive(&mut other_mac, &port(), &mut l),
            Rx::Drop(PortDropReason::NotOurMac)
        );
        let mut ipv6 = good.clone();
        ipv6[12..14].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(
            receive(&mut ipv6, &port(), &mut l),
            Rx::Drop(PortDropReason::UnsupportedEthertype)
        );
    }

    /// An IPv4/UDP packet of `payload` bytes with a valid header checksum.
    fn udp_packet(payload: usize, frag_field: u16) -> Vec<u8> {
        let tl = 20 + 8 + payload;
        let mut ip = vec![0x45, 0, (tl >> 8) as u8, tl as u8, 0xbe, 0xef];
        ip.extend_from_slice(&frag_field.to_be_bytes());
        ip.extend_from_slice(&[64, 17, 0, 0, 10, 0, 0, 12, 192, 168, 8, 14]);
        let c = naive_csum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        ip.extend_from_slice(&[
            0x30,
            0x39,
            0,
            53,
            ((8 + payload) >> 8) as u8,
            (8 + payload) as u8,
            0,
            0,
        ]);
        ip.extend((0..payload).map(|i| (i * 7) as u8));
        ip
    }

    #[test]
    fn fragments_reassemble_to_the_original() {
        let ip = udp_packet(4000, 0);
        assert_eq!(fragments_needed(&ip, 1500), Some(3));
        assert_eq!(fragments_needed(&ip, 5000), Some(1));
        let mut payload = Vec::new();
        let mut out = [0u8; 1600];
        for i in 0..3 {
            let n = write_fragment(&ip, 1500, i, &mut out, false).unwrap();
            assert!(n <= 1500);
            let f = Ipv4Packet::new_checked(&out[..n]).unwrap();
            assert!(f.verify_checksum());
            assert_eq!(f.ident(), 0xbeef);
            assert_eq!(f.frag_offset() as usize, payload.len());
            assert_eq!(f.more_frags(), i < 2);
            payload.extend_from_slice(f.payload());
        }
        assert!(write_fragment(&ip, 1500, 3, &mut out, false).is_none());
        assert_eq!(payload, ip[20..]);
        assert_eq!(fragments_needed(&ip, 20), None, "no room for data");
    }

    #[test]
    fn a_fragment_running_past_64k_is_refused_not_emitted_with_corrupt_flags() {
        // Last fragment at offset 64000 with 3000 bytes of payload: its datagram would be
        // 67000 bytes. Split for MTU 1500, its pieces' offsets would reach 8375 units, more
        // than 13 bits, and the excess would land in the DF/MF bits.
        let ip = udp_packet(3000, 64000 / 8);
        let mut out = [0u8; 1600];
        assert_eq!(
            Ipv4Packet::new_checked(&ip[..]).err(),
            Some(crate::net::Error::FragmentTooLong)
        );
        assert_eq!(fragments_needed(&ip, 1500), None);
        for i in 0..3 {
            assert!(write_fragment(&ip, 1500, i, &mut out, false).is_none());
        }
        // The receive path drops it, counted as malformed.
        let mut frame = [&OUR.0[..], &PEER.0[..], &[0x08, 0x00][..], &ip[..]].concat();
        assert_eq!(
            receive(&mut frame, &port(), &mut None),
            Rx::Drop(PortDropReason::Ipv4Malformed)
        );
        // The largest legal fragment (ending at byte 65535) still splits, offsets in range.
        let ip = udp_packet(65535 - 65000 - 20, 65000 / 8);
        let n = fragments_needed(&ip, 300).unwrap();
        assert!(n > 1);
        let mut last_off = 0;
        for i in 0..n {
            let len = write_fragment(&ip, 300, i, &mut out, false).unwrap();
            let f = Ipv4Packet::new_checked(&out[..len]).unwrap();
            assert!(f.frag_offset() >= 65000 && f.frag_offset() >= last_off);
            assert!(!f.dont_frag());
            assert_eq!(f.more_frags(), i + 1 < n);
            last_off = f.frag_offset();
        }
    }

    #[test]
    fn fragmenting_a_fragment_keeps_offsets_and_mf() {
        // A middle fragment (offset 1480, MF) split again keeps MF on every piece.
        let ip = udp_packet(1992, 0x2000 | (1480 / 8));
        let mut out = [0u8; 1600];
        let n = fragments_needed(&ip, 1000).unwrap();
        let mut off = 1480;
        for i in 0..n {
            let len = write_fragment(&ip, 1000, i, &mut out, false).unwrap();
            let f = Ipv4Packet::new_checked(&out[..len]).unwrap();
            assert_eq!(f.frag_offset() as usize, off);
            assert!(f.more_frags());
            off += len - 20;
        }
    }

    #[test]
    fn fragment_checksum_offload_leaves_zero_and_the_rest_identical() {
        // A header with options (IHL 6) so that the checksum covers more than 20 bytes.
        let mut ip = udp_packet(3000, 0);
        ip.splice(20..20, [0x94, 0x04, 0, 0]); // Router Alert
        ip[0] = 0x46;
        let tl = ip.len() as u16;
        ip[2..4].copy_from_slice(&tl.to_be_bytes());
        ip[10..12].copy_from_slice(&[0, 0]);
        let c = naive_csum(&ip[..24]);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let n = fragments_needed(&ip, 1500).unwrap();
        assert_eq!(n, 3);
        let (mut sw, mut hw) = ([0u8; 1600], [0xaau8; 1600]);
        for i in 0..n {
            let a = write_fragment(&ip, 1500, i, &mut sw, false).unwrap();
            let b = write_fragment(&ip, 1500, i, &mut hw, true).unwrap();
            assert_eq!(a, b);
            // Software: the checksum verifies (independent implementation).
            assert_eq!(naive_csum(&sw[..24]), 0, "fragment {i}: software checksum");
            let f = Ipv4Packet::new_checked(&sw[..a]).unwrap();
            assert!(f.verify_checksum());
            // Offload: field 0, every other byte as in software mode.
            assert_eq!(
                &hw[10..12],
                &[0, 0],
                "fragment {i}: checksum left to the port"
            );
            assert_eq!(&hw[..10], &sw[..10]);
            assert_eq!(&hw[12..b], &sw[12..a]);
            // What the port computes over the header gives the software result back.
            let c = naive_csum(&hw[..24]);
            assert_eq!(c.to_be_bytes(), [sw[10], sw[11]]);
        }
    }

    proptest::proptest! {
        #[test]
        fn receive_never_panics(mut bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200), fix_mac in proptest::prelude::any::<bool>()) {
            if fix_mac && bytes.len() >= 6 {
                bytes[0..6].copy_from_slice(&OUR.0);
            }
            let mut l = None;
            let _ = receive(&mut bytes, &port(), &mut l);
        }

        /// With a twin, on either port, any frame to our MAC or a group address: never a
        /// panic, and what goes up is never rewritten (the kernel gets it as it came).
        #[test]
        fn with_a_twin_receive_never_panics_nor_rewrites_what_goes_up(
            mut bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            group in proptest::prelude::any::<bool>(),
            private in proptest::prelude::any::<bool>(),
        ) {
            if bytes.len() >= 6 {
                let mac = if group { [0x01, 0, 0x5e, 0, 0, 0x12] } else { OUR.0 };
                bytes[0..6].copy_from_slice(&mac);
            }
            let mut p = with_twin(port());
            if private {
                p.role = PortRole::Private;
            }
            let before = bytes.clone();
            let mut l = None;
            if receive(&mut bytes, &p, &mut l) == Rx::ToKernel {
                proptest::prop_assert_eq!(bytes, before);
            }
        }
    }
}
