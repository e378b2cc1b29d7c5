//! The data plane's half of the half-open TCP check (`rvs_checks::probe::plane`): the SYN a
//! worker builds for a request, and the answers it takes off the private port before the
//! exception path. Pure functions over bytes, unit-tested without hugepages.

use super::l3::{PortInfo, Rx};
use crate::net::checksum::{finish, pseudo_header_v4, sum};
use crate::net::ethernet;
use crate::net::ipv4::{Ipv4Packet, Protocol, FLAG_DF};
use crate::net::tcp::TcpSegment;
use rvs_checks::probe::plane::{is_probe_port, SynAnswer, SynPlane, SynRequest};
use rvs_checks::probe::syn::syn_segment;
use std::net::Ipv4Addr;

const IP_LEN: usize = 20;
/// A SYN carries the MSS option, as the kernel's connect() would.
const SYN_TCP_LEN: usize = 24;
const RST_TCP_LEN: usize = 20;
/// Ethernet + IPv4 + TCP with MSS: the frame length of a SYN.
pub const SYN_FRAME_LEN: usize = ethernet::HEADER_LEN + IP_LEN + SYN_TCP_LEN;

const RST: u8 = 0x04;

/// The port's address a SYN to `dst` leaves from: its address on the server's subnet (the
/// server's gateway), else the primary one (a server behind the port's gateway).
pub fn source_for(port: &PortInfo, dst: Ipv4Addr) -> Ipv4Addr {
    port.iface
        .addresses
        .iter()
        .find(|a| a.contains(dst))
        .map_or_else(|| port.iface.primary(), |a| a.addr)
}

/// Writes the SYN for `r` from `src` into `frame` (its first [`SYN_FRAME_LEN`] bytes; the
/// Ethernet addresses are the next hop's, written when it is resolved). Checksums are
/// computed here, not offloaded: this is not the fast path.
pub fn write_syn(frame: &mut [u8], src: Ipv4Addr, r: &SynRequest) -> Option<usize> {
    let f = frame.get_mut(..SYN_FRAME_LEN)?;
    f[..12].fill(0);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let (ip, tcp) = f[ethernet::HEADER_LEN..].split_at_mut(IP_LEN);
    write_ip_header(ip, src, r.dst, SYN_TCP_LEN);
    tcp.copy_from_slice(&syn_segment(src, r.dst, r.sport, r.dport, r.seq));
    Some(SYN_FRAME_LEN)
}

/// A 20-byte IPv4 header of a DF TCP datagram, its checksum computed.
fn write_ip_header(ip: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr, tcp_len: usize) {
    ip.fill(0);
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((IP_LEN + tcp_len) as u16).to_be_bytes());
    ip[6..8].copy_from_slice(&FLAG_DF.to_be_bytes());
    ip[8] = 64;
    ip[9] = Protocol::TCP;
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let c = finish(sum(ip, 0));
    ip[10..12].copy_from_slice(&c.to_be_bytes());
}

/// The answer to one of the checker's SYNs this frame is, if it is one: a TCP SYN-ACK or RST
/// to one of the port's own addresses and one of the checker's ports, with a correct checksum.
/// The frame's IPv4 header has been validated (`l3::receive`).
pub fn answer_of(frame: &[u8], port: &PortInfo) -> Option<SynAnswer> {
    let ip = Ipv4Packet::new_checked(frame.get(ethernet::HEADER_LEN..)?).ok()?;
    if ip.protocol() != Protocol::TCP || ip.is_fragment() || !port.iface.owns(ip.dst()) {
        return None;
    }
    let tcp = TcpSegment::new_checked(ip.payload()).ok()?;
    if !is_probe_port(tcp.dst_port()) || !tcp.verify_checksum(ip.src(), ip.dst()) {
        return None;
    }
    let rst = tcp.rst();
    if !(rst || tcp.syn() && tcp.ack()) {
        return None;
    }
    Some(SynAnswer {
        src: ip.src(),
        sport: tcp.src_port(),
        dport: tcp.dst_port(),
        ack: tcp.ack_no(),
        rst,
    })
}

/// Takes a frame received on the private port if it answers one of the checker's SYNs:
/// hands the answer to the checker and, for a SYN-ACK, rewrites the frame into the RST,
/// whose length it returns (send it back). None: not an answer, the frame goes its way. Only
/// frames for the host or to a probe port of ours are parsed, so NAT traffic pays one test.
pub fn take(frame: &mut [u8], port: &PortInfo, rx: &Rx, plane: &SynPlane) -> Option<Option<usize>> {
    let candidate = match rx {
        Rx::ToKernel => true,
        Rx::Ipv4 { h, .. } => h
            .ports
            .is_some_and(|(_, d)| is_probe_port(d) && port.iface.owns(h.dst)),
        _ => false,
    };
    if !candidate {
        return None;
    }
    let a = answer_of(frame, port)?;
    plane.answer(a);
    Some(if a.rst { None } else { reset_in_place(frame) })
}

/// Rewrites a SYN-ACK (checked by [`answer_of`]) in place into the RST that ends the half-open
/// connection, as a kernel with no socket for it answers: seq = the SYN-ACK's ack, back to the
/// MAC it came from. The frame's new length.
pub fn reset_in_place(frame: &mut [u8]) -> Option<usize> {
    let l3 = ethernet::HEADER_LEN;
    let hl = usize::from(*frame.get(l3)? & 0x0f) * 4;
    let len = l3 + IP_LEN + RST_TCP_LEN;
    if frame.len() < l3 + hl + RST_TCP_LEN {
        return None;
    }
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&frame[0..6]);
    frame.copy_within(6..12, 0);
    frame[6..12].copy_from_slice(&mac);
    let (src, dst) = {
        let ip = &frame[l3..];
        (
            Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
            Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
        )
    };
    // The TCP header moves up over any IP options; ports swap, the ack becomes our seq.
    let t = l3 + hl;
    let (sport, dport) = ([frame[t + 2], frame[t + 3]], [frame[t], frame[t + 1]]);
    let seq = [frame[t + 8], frame[t + 9], frame[t + 10], frame[t + 11]];
    let (ip, tcp) = frame[l3..len].split_at_mut(IP_LEN);
    write_ip_header(ip, src, dst, RST_TCP_LEN);
    tcp.fill(0);
    tcp[0..2].copy_from_slice(&sport);
    tcp[2..4].copy_from_slice(&dport);
    tcp[4..8].copy_from_slice(&seq);
    tcp[12] = ((RST_TCP_LEN / 4) as u8) << 4;
    tcp[13] = RST;
    let c = finish(sum(
        tcp,
        pseudo_header_v4(src, dst, Protocol::TCP, RST_TCP_LEN as u16),
    ));
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::IfAddr;
    use crate::dataplane::l3::tests::port;
    use crate::lb::PortRole;

    const ACK: u8 = 0x10;
    const SYN: u8 = 0x02;

    fn private() -> PortInfo {
        let mut p = port();
        p.role = PortRole::Private;
        p.iface.addresses = vec![
            IfAddr {
                addr: Ipv4Addr::new(192, 168, 8, 13),
                prefix: 24,
            },
            IfAddr {
                addr: Ipv4Addr::new(172, 16, 0, 1),
                prefix: 16,
            },
        ];
        p
    }

    const DIP: Ipv4Addr = Ipv4Addr::new(192, 168, 8, 13);
    const RIP: Ipv4Addr = Ipv4Addr::new(192, 168, 8, 14);

    fn request() -> SynRequest {
        SynRequest {
            dst: RIP,
            dport: 80,
            sport: 40001,
            seq: 0x0102_0304,
        }
    }

    /// What a server's kernel answers a SYN with: the SYN's addresses and ports swapped,
    /// `flags`, ack = seq + 1, checksums computed here.
    fn answer(syn: &[u8], flags: u8, options: &[u8]) -> Vec<u8> {
        answer_to(syn, 40001, flags, options)
    }

    fn answer_to(syn: &[u8], dport: u16, flags: u8, options: &[u8]) -> Vec<u8> {
        let mut f = syn[..ethernet::HEADER_LEN].to_vec();
        let tl = 20 + options.len();
        let mut ip = vec![0x45, 0, 0, (20 + tl) as u8, 0, 0, 0x40, 0, 64, 6, 0, 0];
        ip.extend_from_slice(&RIP.octets());
        ip.extend_from_slice(&DIP.octets());
        let c = finish(sum(&ip, 0));
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let mut tcp = vec![0u8; 20];
        tcp[0..2].copy_from_slice(&80u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&dport.to_be_bytes());
        tcp[4..8].copy_from_slice(&0xaabb_ccddu32.to_be_bytes());
        tcp[8..12].copy_from_slice(&0x0102_0305u32.to_be_bytes());
        tcp[12] = ((tl / 4) as u8) << 4;
        tcp[13] = flags;
        tcp.extend_from_slice(options);
        let c = finish(sum(&tcp, pseudo_header_v4(RIP, DIP, 6, tl as u16)));
        tcp[16..18].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&tcp);
        f
    }

    #[test]
    fn the_syn_is_valid_tcp_from_the_servers_subnet() {
        let p = private();
        assert_eq!(source_for(&p, RIP), DIP);
        assert_eq!(
            source_for(&p, Ipv4Addr::new(172, 16, 9, 9)),
            p.iface.addresses[1].addr
        );
        assert_eq!(source_for(&p, Ipv4Addr::new(10, 9, 9, 9)), DIP);
        let mut f = [0xffu8; 64];
        assert_eq!(write_syn(&mut f, DIP, &request()), Some(SYN_FRAME_LEN));
        let ip = Ipv4Packet::new_checked(&f[14..SYN_FRAME_LEN]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!((ip.src(), ip.dst(), ip.ttl()), (DIP, RIP, 64));
        let t = TcpSegment::new_checked(ip.payload()).unwrap();
        assert!(t.verify_checksum(DIP, RIP));
        assert!(t.syn() && !t.ack() && !t.rst());
        assert_eq!(
            (t.src_port(), t.dst_port(), t.seq()),
            (40001, 80, 0x0102_0304)
        );
        assert!(write_syn(&mut [0u8; SYN_FRAME_LEN - 1], DIP, &request()).is_none());
    }

    #[test]
    fn answers_are_taken_and_a_syn_ack_becomes_the_rst() {
        let p = private();
        let mut syn = [0u8; SYN_FRAME_LEN];
        write_syn(&mut syn, DIP, &request()).unwrap();
        syn[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 0x13]); // as sent: to us from the server
        syn[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 0x14]);
        let mut sa = answer(&syn, SYN | ACK, &[2, 4, 5, 0xb4]);
        let a = answer_of(&sa, &p).unwrap();
        assert_eq!(
            (a.src, a.sport, a.dport, a.ack, a.rst),
            (RIP, 80, 40001, 0x0102_0305, false)
        );
        let rst = answer(&syn, RST | ACK, &[]);
        assert!(answer_of(&rst, &p).unwrap().rst);

        let n = reset_in_place(&mut sa).unwrap();
        let f = &sa[..n];
        assert_eq!((&f[0..6], &f[6..12]), (&syn[6..12], &syn[0..6]));
        let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!((ip.src(), ip.dst()), (DIP, RIP));
        let t = TcpSegment::new_checked(ip.payload()).unwrap();
        assert!(t.verify_checksum(DIP, RIP));
        assert!(t.rst() && !t.ack() && !t.syn());
        assert_eq!(
            (t.src_port(), t.dst_port(), t.seq()),
            (40001, 80, 0x0102_0305)
        );
    }

    #[test]
    fn take_hands_answers_over_and_leaves_the_rest() {
        let p = private();
        let plane = SynPlane::new(4);
        let mut syn = [0u8; SYN_FRAME_LEN];
        write_syn(&mut syn, DIP, &request()).unwrap();
        let h = |f: &[u8]| crate::net::ipv4::Ipv4Repr::parse(&f[14..]).unwrap();
        // Up the exception path (the port has a twin) or to the load balancer (it has not).
        let mut sa = answer(&syn, SYN | ACK, &[]);
        assert_eq!(take(&mut sa, &p, &Rx::ToKernel, &plane), Some(Some(54)));
        let mut rst = answer(&syn, RST | ACK, &[]);
        let rx = Rx::Ipv4 { l3: 14, h: h(&rst) };
        assert_eq!(take(&mut rst, &p, &rx, &plane), Some(None));
        assert_eq!(plane.next_answer().map(|a| a.rst), Some(false));
        assert_eq!(plane.next_answer().map(|a| a.rst), Some(true));
        // A server's reply to a client (NAT traffic), and a frame that was dropped: not taken,
        // not touched.
        let mut nat = answer_to(&syn, 55555, SYN | ACK, &[]);
        nat[14 + 16..14 + 20].copy_from_slice(&[10, 0, 0, 12]);
        let before = nat.clone();
        let rx = Rx::Ipv4 { l3: 14, h: h(&nat) };
        assert_eq!(take(&mut nat, &p, &rx, &plane), None);
        let drop = Rx::Drop(crate::dataplane::counters::PortDropReason::Runt);
        assert_eq!(take(&mut nat, &p, &drop, &plane), None);
        assert_eq!(nat, before);
        assert!(plane.next_answer().is_none());
    }

    #[test]
    fn other_segments_are_not_answers() {
        let p = private();
        let mut syn = [0u8; SYN_FRAME_LEN];
        write_syn(&mut syn, DIP, &request()).unwrap();
        // A bare ACK, a SYN, a corrupted SYN-ACK, one to a port outside the range, one to an
        // address that is not ours.
        assert!(answer_of(&answer(&syn, ACK, &[]), &p).is_none());
        assert!(answer_of(&answer(&syn, SYN, &[]), &p).is_none());
        let mut bad = answer(&syn, SYN | ACK, &[]);
        bad[14 + 20 + 4] ^= 1;
        assert!(answer_of(&bad, &p).is_none());
        assert!(answer_of(&answer_to(&syn, 22, SYN | ACK, &[]), &p).is_none());
        let mut other = p.clone();
        other.iface.addresses.truncate(0);
        assert!(answer_of(&answer(&syn, SYN | ACK, &[]), &other).is_none());
        assert!(answer_of(&syn[..30], &p).is_none());
        assert!(reset_in_place(&mut [0u8; 20]).is_none());
    }
}
