//! Which worker core owns a packet.
//!
//! A connection is owned by the core that [`endpoint_core`] gives for its client endpoint
//! `(CIP, cport)`. Every packet of the connection names that endpoint somewhere:
//! - client -> VIP on the public port: source address and port;
//! - real server -> client on the private port: destination address and port;
//! - a related ICMP error: the quoted header inside it (public port: the quoted packet went
//!   VIP -> client, so its destination; private port: it went client -> RIP, so its source).
//!
//! Fragments: only the first fragment carries ports, so every fragment of a datagram (first or
//! not) is steered by [`fragment_core`], a hash of `(src, dst, ident, proto)` that all fragments
//! share. That core tracks the datagram; when the first fragment shows the owner is another core
//! it answers `Verdict::Handover { core: owner }` for the first and for every later fragment of
//! the datagram, in arrival order, and the owner rewrites them. Nothing is lost if the NIC's RSS
//! disagrees: the dataplane steers with these functions.
//!
//! Anything else (ICMP echo, other protocols, unparseable packets) is steered by an address so
//! that it is deterministic.

use crate::lb::PortRole;
use crate::net::icmp;
use crate::net::ipv4::{Ipv4Packet, Protocol};
use std::net::Ipv4Addr;

#[inline]
fn mix(x: u64) -> u64 {
    // splitmix64 finaliser: cheap, and every input bit affects every output bit.
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[inline]
fn reduce(h: u64, n_cores: usize) -> usize {
    if n_cores <= 1 {
        return 0;
    }
    // Multiply-shift range reduction: uniform without a division.
    (((h >> 32) * n_cores as u64) >> 32) as usize
}

/// Owner core of the client endpoint `(caddr, cport)`.
#[inline]
pub fn endpoint_core(caddr: Ipv4Addr, cport: u16, n_cores: usize) -> usize {
    reduce(
        mix(((u32::from(caddr) as u64) << 16) | cport as u64),
        n_cores,
    )
}

/// Tracking core of a fragmented datagram.
#[inline]
pub fn fragment_core(src: Ipv4Addr, dst: Ipv4Addr, ident: u16, proto: u8, n_cores: usize) -> usize {
    let a = ((u32::from(src) as u64) << 32) | u32::from(dst) as u64;
    let b = ((ident as u64) << 8) | proto as u64 | (1 << 40);
    reduce(mix(mix(a) ^ b), n_cores)
}

fn addr_core(a: Ipv4Addr, n_cores: usize) -> usize {
    reduce(mix(u32::from(a) as u64 | (1 << 48)), n_cores)
}

/// The core that must process `ip` (an IPv4 packet from its header on) arriving on `role`.
/// Pure and cheap; never panics.
pub fn steer(ip: &[u8], role: PortRole, n_cores: usize) -> usize {
    if n_cores <= 1 {
        return 0;
    }
    let Ok(p) = Ipv4Packet::new_checked_quoted(ip) else {
        return 0;
    };
    let client_addr = match role {
        PortRole::Public => p.src(),
        PortRole::Private => p.dst(),
    };
    if p.is_fragment() {
        return fragment_core(p.src(), p.dst(), p.ident(), p.protocol(), n_cores);
    }
    let l4 = p.payload();
    match p.protocol() {
        Protocol::TCP | Protocol::UDP => match l4 {
            [a, b, c, d, ..] => {
                let (sport, dport) = (u16::from_be_bytes([*a, *b]), u16::from_be_bytes([*c, *d]));
                match role {
                    PortRole::Public => endpoint_core(p.src(), sport, n_cores),
                    PortRole::Private => endpoint_core(p.dst(), dport, n_cores),
                }
            }
            _ => addr_core(client_addr, n_cores),
        },
        Protocol::ICMP => match quoted_client(l4, role) {
            Some((a, port)) => endpoint_core(a, port, n_cores),
            None => addr_core(client_addr, n_cores),
        },
        _ => addr_core(client_addr, n_cores),
    }
}

/// The client endpoint named by the packet quoted in an ICMP error, if it is a related error
/// about an unfragmented-or-first TCP/UDP fragment.
pub(crate) fn quoted_client(icmp_msg: &[u8], role: PortRole) -> Option<(Ipv4Addr, u16)> {
    let t = *icmp_msg.first()?;
    if !matches!(
        t,
        icmp::DEST_UNREACH | icmp::SOURCE_QUENCH | icmp::TIME_EXCEEDED
    ) {
        return None;
    }
    let q = Ipv4Packet::new_checked_quoted(icmp_msg.get(icmp::HEADER_LEN..)?).ok()?;
    if q.frag_offset() != 0 || !matches!(q.protocol(), Protocol::TCP | Protocol::UDP) {
        return None;
    }
    let l4 = q.as_bytes().get(q.header_len()..q.header_len() + 4)?;
    let sport = u16::from_be_bytes([l4[0], l4[1]]);
    let dport = u16::from_be_bytes([l4[2], l4[3]]);
    match role {
        // Quoted packet went VIP -> client.
        PortRole::Public => Some((q.dst(), dport)),
        // Quoted packet went client -> RIP.
        PortRole::Private => Some((q.src(), sport)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_core_and_garbage() {
        assert_eq!(steer(&[1, 2, 3], PortRole::Public, 1), 0);
        assert_eq!(steer(&[1, 2, 3], PortRole::Public, 8), 0);
        assert_eq!(steer(&[], PortRole::Private, 8), 0);
    }

    #[test]
    fn spreads_over_cores() {
        let mut hits = [0u32; 4];
        for i in 0..4000u32 {
            let a = Ipv4Addr::from(0xC633_6400 + (i % 200));
            hits[endpoint_core(a, 1024 + (i / 200) as u16 * 7, 4)] += 1;
        }
        for h in hits {
            assert!((800..1200).contains(&h), "{hits:?}");
        }
    }
}
