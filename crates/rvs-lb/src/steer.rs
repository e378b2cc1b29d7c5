//! Which worker core owns a packet.
//!
//! A connection is owned by the core that [`Steer::endpoint_core`] gives for its client endpoint
//! `(CIP, cport)`. Every packet of the connection names that endpoint somewhere:
//! - client -> VIP on the public port: source address and port;
//! - real server -> client on the private port: destination address and port;
//! - a related ICMP error: the quoted header inside it (public port: the quoted packet went
//!   VIP -> client, so its destination; private port: it went client -> RIP, so its source).
//!
//! Two ways of mapping the endpoint to a core, chosen once at start ([`Steer`]):
//! - [`Steer::Software`]: a splitmix hash of the endpoint. The NIC's RSS placement (if any) is
//!   unrelated, so the receiving core hands a packet it does not own to its owner over an SPSC
//!   ring.
//! - [`Steer::Toeplitz`]: exactly what a NIC programmed for *client-endpoint-only* RSS computes
//!   (source-only L3+L4 hashing on the public port, destination-only on the private port, one
//!   key and one redirection table on both): the Toeplitz hash of the 6 bytes
//!   `client address || client port` (network byte order) under the port's key, then
//!   `RETA[hash mod RETA size]`, where RETA entry values are queue = worker indices. Built from
//!   what the ports report back after programming, so a TCP/UDP packet already sits on its
//!   owner's queue and nothing is handed over.
//!
//! Fragments: only the first fragment carries ports, so every fragment of a datagram (first or
//! not) is steered by [`Steer::fragment_core`], a hash of `(src, dst, ident, proto)` that all
//! fragments share (in both modes). That core tracks the datagram; when the first fragment
//! shows the owner is another core it answers `Verdict::Handover { core: owner }` for the first
//! and for every later fragment of the datagram, in arrival order, and the owner rewrites them.
//! A NIC cannot do better here (it hashes fragments by addresses only, or not at all), so
//! fragments may be handed over in either mode; the dataplane steers with these functions and
//! nothing is lost when the NIC's placement disagrees.
//!
//! Anything else (ICMP echo, other protocols) is steered by an address so that it is
//! deterministic; a packet that does not parse as IPv4 goes to core 0 (the dataplane drops
//! those before steering).
//!
//! Everything here is pure, preallocated at construction and allocation-free per packet.

use crate::PortRole;
use rvs_net::icmp;
use rvs_net::ipv4::{Ipv4Packet, Ipv4Repr, Protocol};
use std::fmt;
use std::net::Ipv4Addr;

/// The RSS key rvs programs on both ports when it can: the 40-byte key of Microsoft's RSS
/// verification suite (not the 0x6d5a-repeated symmetric key: with source-only or
/// destination-only hashing symmetry is irrelevant, and that key's 16-bit period would fold
/// the client address and port together).
pub const RSS_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// Bytes of the hashed input: client IPv4 address (4) and port (2).
const INPUT_LEN: usize = 6;
/// Key bytes the hash of a 6-byte input depends on (48 input bits + 32).
pub const KEY_BYTES_USED: usize = INPUT_LEN + 4;
/// Largest redirection table accepted (ice PFs have 2048 entries; leave headroom).
pub const MAX_RETA: usize = 8192;

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

/// Owner core of the client endpoint `(caddr, cport)` under software steering
/// ([`Steer::Software`]).
#[inline]
pub fn endpoint_core(caddr: Ipv4Addr, cport: u16, n_cores: usize) -> usize {
    reduce(
        mix(((u32::from(caddr) as u64) << 16) | cport as u64),
        n_cores,
    )
}

/// Tracking core of a fragmented datagram (both steering modes).
#[inline]
pub fn fragment_core(src: Ipv4Addr, dst: Ipv4Addr, ident: u16, proto: u8, n_cores: usize) -> usize {
    let a = ((u32::from(src) as u64) << 32) | u32::from(dst) as u64;
    let b = ((ident as u64) << 8) | proto as u64 | (1 << 40);
    reduce(mix(mix(a) ^ b), n_cores)
}

fn addr_core(a: Ipv4Addr, n_cores: usize) -> usize {
    reduce(mix(u32::from(a) as u64 | (1 << 48)), n_cores)
}

/// The core that must process `ip` under software steering over `n_cores` cores; the same as
/// `Steer::software(n_cores).core(ip, role)`.
pub fn steer(ip: &[u8], role: PortRole, n_cores: usize) -> usize {
    Steer::software(n_cores).core(ip, role)
}

/// The common packet walk over a parsed header `h` (`ip`: the packet's bytes, read only for the
/// header quoted in an ICMP error): `endpoint` maps a client endpoint to its owner.
#[inline(always)]
fn core_with(
    h: &Ipv4Repr,
    ip: &[u8],
    role: PortRole,
    n_cores: usize,
    endpoint: impl Fn(Ipv4Addr, u16) -> usize,
) -> usize {
    let client_addr = match role {
        PortRole::Public => h.src,
        PortRole::Private => h.dst,
    };
    if h.is_fragment() {
        return fragment_core(h.src, h.dst, h.ident, h.protocol, n_cores);
    }
    match (h.protocol, h.ports) {
        (Protocol::TCP | Protocol::UDP, Some((sport, dport))) => match role {
            PortRole::Public => endpoint(h.src, sport),
            PortRole::Private => endpoint(h.dst, dport),
        },
        (Protocol::ICMP, _) => {
            let msg = ip.get(h.hl()..h.tl()).unwrap_or(&[]);
            match quoted_client(msg, role) {
                Some((a, port)) => endpoint(a, port),
                None => addr_core(client_addr, n_cores),
            }
        }
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

/// The Toeplitz hash of `input` under `key`, bit by bit, as specified by Microsoft's RSS
/// (and computed by NICs and DPDK's `rte_softrss`). Key bits past the end of `key` count as
/// zero. The reference implementation; [`Toeplitz`] uses precomputed tables.
pub fn toeplitz_hash(key: &[u8], input: &[u8]) -> u32 {
    let key_bit = |i: usize| -> u32 {
        key.get(i / 8)
            .map(|b| u32::from(b >> (7 - i % 8)) & 1)
            .unwrap_or(0)
    };
    // The 32-bit window of the key that lines up with the current input bit.
    let mut window = (0..32).fold(0u32, |w, i| (w << 1) | key_bit(i));
    let mut next = 32;
    let mut hash = 0u32;
    for byte in input {
        for bit in (0..8).rev() {
            if byte >> bit & 1 == 1 {
                hash ^= window;
            }
            window = (window << 1) | key_bit(next);
            next += 1;
        }
    }
    hash
}

/// The RETA rvs programs for `cores` workers: entry `i` is queue (worker) `i mod cores`.
pub fn default_reta(size: usize, cores: usize) -> Vec<u16> {
    (0..size).map(|i| (i % cores.max(1)) as u16).collect()
}

/// Why a Toeplitz mirror cannot be built from what a port reported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SteerError {
    #[error("RSS key of {0} bytes is too short (need {KEY_BYTES_USED})")]
    KeyTooShort(usize),
    #[error("RETA of {0} entries is not a power of two between 1 and {MAX_RETA}")]
    RetaSize(usize),
    #[error("RETA entry {index} names queue {queue}, but there are {cores} workers")]
    RetaQueue {
        index: usize,
        queue: u16,
        cores: usize,
    },
    #[error("no workers")]
    NoCores,
}

/// The mirror of a NIC's client-endpoint-only RSS: key tables and redirection table.
#[derive(Clone)]
pub struct Toeplitz {
    /// The key as the port reported it (first 40 bytes; only the first
    /// [`KEY_BYTES_USED`] matter for a 6-byte input).
    key: [u8; 40],
    /// `table[i][b]`: the hash contribution of byte value `b` at input byte `i`.
    table: Box<[[u32; 256]; INPUT_LEN]>,
    reta: Box<[u16]>,
    /// `reta.len() - 1` (the size is a power of two).
    mask: u32,
    cores: usize,
}

impl Toeplitz {
    /// Builds the mirror of a port using `key` and `reta` (entries are worker indices below
    /// `cores`).
    pub fn new(key: &[u8], reta: &[u16], cores: usize) -> Result<Toeplitz, SteerError> {
        if cores == 0 {
            return Err(SteerError::NoCores);
        }
        if key.len() < KEY_BYTES_USED {
            return Err(SteerError::KeyTooShort(key.len()));
        }
        if reta.is_empty() || reta.len() > MAX_RETA || !reta.len().is_power_of_two() {
            return Err(SteerError::RetaSize(reta.len()));
        }
        if let Some((index, &queue)) = reta.iter().enumerate().find(|(_, &q)| q as usize >= cores) {
            return Err(SteerError::RetaQueue {
                index,
                queue,
                cores,
            });
        }
        let mut k = [0u8; 40];
        let n = key.len().min(40);
        k[..n].copy_from_slice(&key[..n]);
        let mut table = Box::new([[0u32; 256]; INPUT_LEN]);
        for (i, row) in table.iter_mut().enumerate() {
            // Key bits 8i .. 8i+39 as a 40-bit number; bit j of the byte (MSB first) uses the
            // 32-bit window starting at key bit 8i+j.
            let w = k[i..i + 5]
                .iter()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
            for (b, slot) in row.iter_mut().enumerate() {
                let mut h = 0u32;
                for j in 0..8 {
                    if b >> (7 - j) & 1 == 1 {
                        h ^= (w >> (8 - j)) as u32;
                    }
                }
                *slot = h;
            }
        }
        Ok(Toeplitz {
            key: k,
            table,
            reta: reta.into(),
            mask: (reta.len() - 1) as u32,
            cores,
        })
    }

    /// The NIC's hash of the client endpoint.
    #[inline]
    pub fn hash(&self, caddr: Ipv4Addr, cport: u16) -> u32 {
        let a = caddr.octets();
        let p = cport.to_be_bytes();
        let t = &self.table;
        t[0][a[0] as usize]
            ^ t[1][a[1] as usize]
            ^ t[2][a[2] as usize]
            ^ t[3][a[3] as usize]
            ^ t[4][p[0] as usize]
            ^ t[5][p[1] as usize]
    }

    /// The queue (= worker) the NIC delivers the endpoint's packets to.
    #[inline]
    pub fn endpoint_core(&self, caddr: Ipv4Addr, cport: u16) -> usize {
        // mask < reta.len(): the index is always in bounds.
        let i = (self.hash(caddr, cport) & self.mask) as usize;
        self.reta.get(i).copied().unwrap_or(0) as usize
    }

    pub fn key(&self) -> &[u8; 40] {
        &self.key
    }

    pub fn reta(&self) -> &[u16] {
        &self.reta
    }
}

impl PartialEq for Toeplitz {
    fn eq(&self, o: &Self) -> bool {
        // The tables are a function of the key.
        self.key == o.key && self.reta == o.reta && self.cores == o.cores
    }
}

impl Eq for Toeplitz {}

impl fmt::Debug for Toeplitz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Toeplitz")
            .field("key", &self.key)
            .field("reta_size", &self.reta.len())
            .field("cores", &self.cores)
            .finish()
    }
}

/// How client endpoints map to worker cores; chosen at start, cloned into every worker (one
/// copy per core, never shared), read-only afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Steer {
    /// A hash unrelated to the NIC: packets that land elsewhere are handed over.
    Software { cores: usize },
    /// The NIC's own placement (client-endpoint-only RSS): TCP/UDP packets arrive on their
    /// owner's queue.
    Toeplitz(Toeplitz),
}

impl Steer {
    pub fn software(cores: usize) -> Steer {
        Steer::Software {
            cores: cores.max(1),
        }
    }

    /// The mirror of ports programmed with `key` and `reta`; see [`Toeplitz::new`].
    pub fn toeplitz(key: &[u8], reta: &[u16], cores: usize) -> Result<Steer, SteerError> {
        Toeplitz::new(key, reta, cores).map(Steer::Toeplitz)
    }

    /// Worker cores.
    #[inline]
    pub fn cores(&self) -> usize {
        match self {
            Steer::Software { cores } => *cores,
            Steer::Toeplitz(t) => t.cores,
        }
    }

    /// Whether ownership mirrors the NIC's placement.
    pub fn is_hardware(&self) -> bool {
        matches!(self, Steer::Toeplitz(_))
    }

    /// Owner core of the client endpoint `(caddr, cport)`.
    #[inline]
    pub fn endpoint_core(&self, caddr: Ipv4Addr, cport: u16) -> usize {
        match self {
            Steer::Software { cores } => endpoint_core(caddr, cport, *cores),
            Steer::Toeplitz(t) => t.endpoint_core(caddr, cport),
        }
    }

    /// Tracking core of a fragmented datagram.
    #[inline]
    pub fn fragment_core(&self, src: Ipv4Addr, dst: Ipv4Addr, ident: u16, proto: u8) -> usize {
        fragment_core(src, dst, ident, proto, self.cores())
    }

    /// The core that must process `ip` (an IPv4 packet from its header on) arriving on `role`.
    /// Pure and cheap; never panics; always below [`Steer::cores`]. Unparseable packets go to
    /// core 0. For callers that have not parsed the packet; the dataplane uses
    /// [`Steer::core_of`].
    pub fn core(&self, ip: &[u8], role: PortRole) -> usize {
        match Ipv4Repr::parse(ip) {
            Ok(h) => self.core_of(&h, ip, role),
            Err(_) => 0,
        }
    }

    /// [`Steer::core`] of a packet parsed into `h` (`ip`: its bytes, read only for the header
    /// an ICMP error quotes).
    #[inline]
    pub fn core_of(&self, h: &Ipv4Repr, ip: &[u8], role: PortRole) -> usize {
        let n = self.cores();
        if n <= 1 {
            return 0;
        }
        match self {
            Steer::Software { cores } => {
                core_with(h, ip, role, n, |a, p| endpoint_core(a, p, *cores))
            }
            Steer::Toeplitz(t) => core_with(h, ip, role, n, |a, p| t.endpoint_core(a, p)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rvs_net::checksum;

    const PUB: PortRole = PortRole::Public;
    const PRIV: PortRole = PortRole::Private;

    #[test]
    fn single_core_and_garbage() {
        assert_eq!(steer(&[1, 2, 3], PortRole::Public, 1), 0);
        assert_eq!(steer(&[1, 2, 3], PortRole::Public, 8), 0);
        assert_eq!(steer(&[], PortRole::Private, 8), 0);
        let t = Steer::toeplitz(&RSS_KEY, &default_reta(128, 4), 4).unwrap();
        assert_eq!(t.core(&[1, 2, 3], PUB), 0);
        assert_eq!(t.core(&[], PRIV), 0);
    }

    #[test]
    fn spreads_over_cores() {
        let t = Steer::toeplitz(&RSS_KEY, &default_reta(512, 4), 4).unwrap();
        for s in [Steer::software(4), t] {
            let mut hits = [0u32; 4];
            for i in 0..4000u32 {
                let a = Ipv4Addr::from(0xC633_6400 + (i % 200));
                hits[s.endpoint_core(a, 1024 + (i / 200) as u16 * 7)] += 1;
            }
            for h in hits {
                assert!((800..1200).contains(&h), "{s:?}: {hits:?}");
            }
        }
    }

    /// Microsoft's "Verifying the RSS Hash Calculation" IPv4 vectors: (destination, source,
    /// hash of the IPv4 addresses only, hash with TCP ports). The input is
    /// `src addr || dst addr [|| src port || dst port]`.
    type Endpoint = (Ipv4Addr, u16);
    const MS_VECTORS: [(Endpoint, Endpoint, u32, u32); 5] = [
        (
            (Ipv4Addr::new(161, 142, 100, 80), 1766),
            (Ipv4Addr::new(66, 9, 149, 187), 2794),
            0x323e_8fc2,
            0x51cc_c178,
        ),
        (
            (Ipv4Addr::new(65, 69, 140, 83), 4739),
            (Ipv4Addr::new(199, 92, 111, 2), 14230),
            0xd718_262a,
            0xc626_b0ea,
        ),
        (
            (Ipv4Addr::new(12, 22, 207, 184), 38024),
            (Ipv4Addr::new(24, 19, 198, 95), 12898),
            0xd2d0_a5de,
            0x5c2b_394a,
        ),
        (
            (Ipv4Addr::new(209, 142, 163, 6), 2217),
            (Ipv4Addr::new(38, 27, 205, 30), 48228),
            0x8298_9176,
            0xafc7_327f,
        ),
        (
            (Ipv4Addr::new(202, 188, 127, 2), 1303),
            (Ipv4Addr::new(153, 39, 163, 191), 44251),
            0x5d18_09c5,
            0x10e8_28a2,
        ),
    ];

    #[test]
    fn toeplitz_matches_microsoft_vectors() {
        for ((dst, dport), (src, sport), h_ip, h_tcp) in MS_VECTORS {
            let mut input = Vec::new();
            input.extend_from_slice(&src.octets());
            input.extend_from_slice(&dst.octets());
            assert_eq!(toeplitz_hash(&RSS_KEY, &input), h_ip, "{src} -> {dst}");
            input.extend_from_slice(&sport.to_be_bytes());
            input.extend_from_slice(&dport.to_be_bytes());
            assert_eq!(
                toeplitz_hash(&RSS_KEY, &input),
                h_tcp,
                "{src}:{sport} -> {dst}"
            );
        }
    }

    #[test]
    fn table_hash_is_the_reference_hash_of_address_and_port() {
        // The 6-byte input of client-endpoint-only hashing, with the verification key and
        // with keys whose bits reach every table window.
        let keys = [RSS_KEY, [0xff; 40], [0x01; 40], {
            let mut k = [0u8; 40];
            k[9] = 1;
            k
        }];
        for key in keys {
            let t = Toeplitz::new(&key, &[0], 1).unwrap();
            for ((_, _), (src, sport), _, _) in MS_VECTORS {
                let mut input = src.octets().to_vec();
                input.extend_from_slice(&sport.to_be_bytes());
                assert_eq!(t.hash(src, sport), toeplitz_hash(&key, &input));
            }
        }
    }

    #[test]
    fn toeplitz_uses_the_reta() {
        // A RETA sending everything to core 2, and one alternating by the hash's low bit.
        let s = Steer::toeplitz(&RSS_KEY, &[2; 64], 3).unwrap();
        assert_eq!(s.endpoint_core(Ipv4Addr::new(1, 2, 3, 4), 5), 2);
        let s = Steer::toeplitz(&RSS_KEY, &[0, 1], 2).unwrap();
        let Steer::Toeplitz(t) = &s else {
            unreachable!()
        };
        for port in 0..200u16 {
            let a = Ipv4Addr::new(10, 1, 2, 3);
            assert_eq!(
                s.endpoint_core(a, port),
                (t.hash(a, port) & 1) as usize,
                "port {port}"
            );
        }
    }

    #[test]
    fn toeplitz_rejects_what_it_cannot_mirror() {
        assert_eq!(
            Steer::toeplitz(&RSS_KEY[..9], &[0], 1),
            Err(SteerError::KeyTooShort(9))
        );
        assert_eq!(
            Steer::toeplitz(&RSS_KEY, &[0, 1, 0], 2),
            Err(SteerError::RetaSize(3))
        );
        assert_eq!(
            Steer::toeplitz(&RSS_KEY, &[], 2),
            Err(SteerError::RetaSize(0))
        );
        assert_eq!(
            Steer::toeplitz(&RSS_KEY, &[0, 1, 2, 1], 2),
            Err(SteerError::RetaQueue {
                index: 2,
                queue: 2,
                cores: 2
            })
        );
        assert_eq!(Steer::toeplitz(&RSS_KEY, &[0], 0), Err(SteerError::NoCores));
        // A 52-byte key (i40e/ice) is accepted; only its first bytes matter.
        let mut long = RSS_KEY.to_vec();
        long.extend_from_slice(&[0xaa; 12]);
        let a = Steer::toeplitz(&long, &default_reta(64, 2), 2).unwrap();
        let b = Steer::toeplitz(&RSS_KEY, &default_reta(64, 2), 2).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn software_mode_is_the_free_function() {
        let s = Steer::software(5);
        for i in 0..500u32 {
            let a = Ipv4Addr::from(0x0a00_0000 + i * 7919);
            assert_eq!(s.endpoint_core(a, i as u16), endpoint_core(a, i as u16, 5));
        }
        assert_eq!(Steer::software(0).cores(), 1);
    }

    // ---- packet builders (headers only; checksums do not matter to steering) ----

    fn ip(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, frag: u16, id: u16, l4: &[u8]) -> Vec<u8> {
        let tl = (20 + l4.len()) as u16;
        let mut v = vec![0x45, 0];
        v.extend_from_slice(&tl.to_be_bytes());
        v.extend_from_slice(&id.to_be_bytes());
        v.extend_from_slice(&frag.to_be_bytes());
        v.extend_from_slice(&[64, proto, 0, 0]);
        v.extend_from_slice(&src.octets());
        v.extend_from_slice(&dst.octets());
        let c = checksum::internet(&v);
        v[10..12].copy_from_slice(&c.to_be_bytes());
        v.extend_from_slice(l4);
        v
    }

    fn l4(proto: u8, sport: u16, dport: u16) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&sport.to_be_bytes());
        v.extend_from_slice(&dport.to_be_bytes());
        v.resize(if proto == 6 { 20 } else { 8 }, 0);
        v
    }

    fn seg(proto: u8, src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
        ip(src, dst, proto, 0, 1, &l4(proto, sport, dport))
    }

    /// An ICMP error from `from` to `to` quoting the first 28 bytes of `quoted`.
    fn icmp_error(from: Ipv4Addr, to: Ipv4Addr, t: u8, code: u8, quoted: &[u8]) -> Vec<u8> {
        let mut m = vec![t, code, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&quoted[..28.min(quoted.len())]);
        ip(from, to, 1, 0, 9, &m)
    }

    fn toeplitz_steer(reta: Vec<u16>, key: [u8; 40], cores: usize) -> Steer {
        Steer::toeplitz(&key, &reta, cores).unwrap()
    }

    fn any_steer() -> impl Strategy<Value = Steer> {
        prop_oneof![
            (1usize..9).prop_map(Steer::software),
            (
                1usize..9,
                0u32..10,
                any::<[u8; 32]>(),
                any::<[u8; 8]>(),
                any::<u64>()
            )
                .prop_map(|(cores, log, k1, k2, seed)| {
                    let mut key = [0u8; 40];
                    key[..32].copy_from_slice(&k1);
                    key[32..].copy_from_slice(&k2);
                    // Any RETA: entries spread pseudo-randomly over the cores.
                    let reta = (0..1usize << log)
                        .map(|i| (mix(seed ^ i as u64) % cores as u64) as u16)
                        .collect();
                    toeplitz_steer(reta, key, cores)
                }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Request (client -> VIP, public), reply (RIP -> client, private), an ICMP error
        /// about the reply arriving on the public side and one about the forwarded request
        /// arriving on the private side: one core for all four, in both modes.
        #[test]
        fn request_reply_and_their_icmp_errors_meet_on_one_core(
            s in any_steer(),
            c in any::<u32>(), cport in any::<u16>(),
            vip in any::<u32>(), vport in any::<u16>(),
            rip in any::<u32>(), rport in any::<u16>(),
            router in any::<u32>(),
            tcp in any::<bool>(),
        ) {
            let (c, vip, rip, router) = (Ipv4Addr::from(c), Ipv4Addr::from(vip), Ipv4Addr::from(rip), Ipv4Addr::from(router));
            let proto = if tcp { 6 } else { 17 };
            let owner = s.endpoint_core(c, cport);
            prop_assert!(owner < s.cores());
            let req = seg(proto, c, cport, vip, vport);
            let core = s.core(&req, PUB);
            prop_assert_eq!(core, if s.cores() > 1 { owner } else { 0 });
            // After DNAT the request goes c -> rip; the reply comes back rip -> c.
            let fwd = seg(proto, c, cport, rip, rport);
            let reply = seg(proto, rip, rport, c, cport);
            prop_assert_eq!(s.core(&reply, PRIV), core);
            // After SNAT the reply goes vip -> c; a router on the way to c reports on it.
            let snat = seg(proto, vip, vport, c, cport);
            let e_pub = icmp_error(router, vip, 11, 0, &snat);
            prop_assert_eq!(s.core(&e_pub, PUB), core);
            // The real server reports on the forwarded request.
            let e_priv = icmp_error(rip, c, 3, 3, &fwd);
            prop_assert_eq!(s.core(&e_priv, PRIV), core);
        }

        /// Every fragment of a datagram goes to one tracking core, in both modes, whatever the
        /// port.
        #[test]
        fn fragments_share_a_tracking_core(
            s in any_steer(),
            src in any::<u32>(), dst in any::<u32>(), id in any::<u16>(),
            sport in any::<u16>(), dport in any::<u16>(), public in any::<bool>(),
        ) {
            let (src, dst) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
            let role = if public { PUB } else { PRIV };
            let first = ip(src, dst, 17, 0x2000, id, &l4(17, sport, dport));
            let later = ip(src, dst, 17, 185, id, &[0; 16]);
            let last = ip(src, dst, 17, 370, id, &[0; 8]);
            let t = s.core(&first, role);
            prop_assert_eq!(s.core(&later, role), t);
            prop_assert_eq!(s.core(&last, role), t);
            prop_assert_eq!(t, if s.cores() > 1 { s.fragment_core(src, dst, id, 17) } else { 0 });
        }

        /// Arbitrary bytes never panic and never name a core that does not exist.
        #[test]
        fn core_is_total_and_in_range(s in any_steer(), bytes in proptest::collection::vec(any::<u8>(), 0..80), public in any::<bool>()) {
            let role = if public { PUB } else { PRIV };
            prop_assert!(s.core(&bytes, role) < s.cores());
        }

        /// Software mode steers a TCP/UDP packet by its client endpoint: the source on the
        /// public port, the destination on the private port (the hash, computed apart).
        #[test]
        fn software_core_is_the_client_endpoints(n in 1usize..9, c in any::<u32>(), cport in any::<u16>(), d in any::<u32>(), dport in any::<u16>(), public in any::<bool>(), udp in any::<bool>()) {
            let role = if public { PUB } else { PRIV };
            let (c, d) = (Ipv4Addr::from(c), Ipv4Addr::from(d));
            let p = seg(if udp { 17 } else { 6 }, c, cport, d, dport);
            let want = if public { endpoint_core(c, cport, n) } else { endpoint_core(d, dport, n) };
            prop_assert_eq!(Steer::software(n).core(&p, role), want);
            prop_assert_eq!(steer(&p, role, n), want);
        }

        /// The table-driven hash is the reference Toeplitz hash for any key and endpoint.
        #[test]
        fn table_hash_matches_reference(k1 in any::<[u8; 32]>(), k2 in any::<[u8; 8]>(), a in any::<u32>(), port in any::<u16>()) {
            let mut key = [0u8; 40];
            key[..32].copy_from_slice(&k1);
            key[32..].copy_from_slice(&k2);
            let t = Toeplitz::new(&key, &[0], 1).unwrap();
            let mut input = a.to_be_bytes().to_vec();
            input.extend_from_slice(&port.to_be_bytes());
            prop_assert_eq!(t.hash(Ipv4Addr::from(a), port), toeplitz_hash(&key, &input));
        }
    }

    /// The engine's fragment handover follows the steering object it holds: in Toeplitz mode,
    /// a first fragment on its tracking core is handed to the Toeplitz owner.
    #[test]
    fn engine_hands_fragments_to_the_toeplitz_owner() {
        use crate::{Lb, LbParams, Snapshot, Verdict};
        use std::sync::Arc;
        let n = 4;
        let s = Steer::toeplitz(&RSS_KEY, &default_reta(128, n), n).unwrap();
        let vip = Ipv4Addr::new(192, 0, 2, 10);
        let c = Ipv4Addr::new(198, 51, 100, 7);
        let (port, id) = (1024u16..)
            .map(|p| (p, p ^ 0x3c3c))
            .find(|(p, id)| {
                s.endpoint_core(c, *p) != s.fragment_core(c, vip, *id, 17)
                    && s.endpoint_core(c, *p) != endpoint_core(c, *p, n)
            })
            .unwrap();
        let owner = s.endpoint_core(c, port);
        let first = ip(c, vip, 17, 0x2000, id, &l4(17, port, 53));
        let tracker = s.core(&first, PUB);
        assert_ne!(tracker, owner);
        let mut lb = Lb::with_steer(
            LbParams {
                core_id: tracker,
                n_cores: n,
                conn_capacity: 64,
                frag_capacity: 8,
                ..LbParams::default()
            },
            Arc::new(Snapshot::empty()),
            s.clone(),
        );
        assert_eq!(lb.steer(), &s);
        let mut f = first.clone();
        assert_eq!(
            lb.process(&mut f, PUB, 0),
            Verdict::Handover { core: owner }
        );
        // The next fragment of the datagram follows the first to the same owner.
        let mut later = ip(c, vip, 17, 185, id, &[0; 16]);
        assert_eq!(
            lb.process(&mut later, PUB, 0),
            Verdict::Handover { core: owner }
        );
    }
}
