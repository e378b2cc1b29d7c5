//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! A "sum" is an unfolded ones-complement accumulator (`u32`) that can be chained: pass the result
//! of one `sum` as `initial` of the next. Only the last chunk of a chained sum may have odd length
//! (an odd chunk in the middle would misalign the following 16-bit words).

use std::net::Ipv4Addr;

/// Adds `data` (big-endian 16-bit words, an odd last byte padded with zero) to `initial`.
///
/// Big-endian 32-bit words are summed into a 64-bit accumulator: since 2^16 = 1 (mod 0xFFFF), a
/// 32-bit word is congruent to the sum of its two 16-bit halves, so the folded result equals the
/// 16-bit ones-complement sum. No carry handling is needed before 2^32 words (16 GiB).
#[inline]
pub fn sum(data: &[u8], initial: u32) -> u32 {
    let mut acc = u64::from(initial);
    let mut chunks = data.chunks_exact(16);
    for c in &mut chunks {
        acc += u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            + u64::from(u32::from_be_bytes([c[4], c[5], c[6], c[7]]))
            + u64::from(u32::from_be_bytes([c[8], c[9], c[10], c[11]]))
            + u64::from(u32::from_be_bytes([c[12], c[13], c[14], c[15]]));
    }
    let mut words = chunks.remainder().chunks_exact(4);
    for c in &mut words {
        acc += u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
    }
    let rest = words.remainder();
    match *rest {
        [a, b, c] => acc += u64::from(u16::from_be_bytes([a, b])) + (u64::from(c) << 8),
        [a, b] => acc += u64::from(u16::from_be_bytes([a, b])),
        [a] => acc += u64::from(a) << 8,
        _ => {}
    }
    // Fold 64 -> 32 bits twice (the first fold can carry into bit 32).
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc as u32
}

/// Folds an accumulator to 16 bits with end-around carry (not complemented).
#[inline]
pub fn fold(mut s: u32) -> u16 {
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// The Internet checksum of `data`: the complement of its folded ones-complement sum. A buffer
/// that contains its own correct checksum yields 0.
#[inline]
pub fn internet(data: &[u8]) -> u16 {
    !fold(sum(data, 0))
}

/// Complemented folded checksum of an accumulator, for chained sums.
#[inline]
pub fn finish(s: u32) -> u16 {
    !fold(s)
}

/// Unfolded sum of the IPv4 pseudo header used by TCP and UDP (RFC 793, RFC 768): source,
/// destination, zero, protocol, transport length.
#[inline]
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: u16) -> u32 {
    let s = u32::from(src);
    let d = u32::from(dst);
    (s >> 16) + (s & 0xffff) + (d >> 16) + (d & 0xffff) + u32::from(proto) + u32::from(len)
}

/// RFC 1624 eqn 3: the checksum after a 16-bit field changed from `old` to `new`:
/// HC' = ~(~HC + ~m + m').
#[inline]
pub fn update_u16(csum: u16, old: u16, new: u16) -> u16 {
    let s = u32::from(!csum) + u32::from(!old) + u32::from(new);
    !fold(s)
}

/// RFC 1624 eqn 3 for a 32-bit field (e.g. an IPv4 address), as two 16-bit updates at once.
#[inline]
pub fn update_u32(csum: u16, old: u32, new: u32) -> u16 {
    let s = u32::from(!csum)
        + u32::from(!(old >> 16) as u16)
        + u32::from(!(old as u16))
        + (new >> 16)
        + (new & 0xffff);
    !fold(s)
}

/// RFC 1624 update for a NAT rewrite of one address (32 bits) and one port (16 bits), as needed
/// for a TCP/UDP checksum whose pseudo header contains the address. One fold for both changes.
#[inline]
pub fn update_addr_port(
    csum: u16,
    old_addr: u32,
    new_addr: u32,
    old_port: u16,
    new_port: u16,
) -> u16 {
    let s = u32::from(!csum)
        + u32::from(!(old_addr >> 16) as u16)
        + u32::from(!(old_addr as u16))
        + (new_addr >> 16)
        + (new_addr & 0xffff)
        + u32::from(!old_port)
        + u32::from(new_port);
    !fold(s)
}

#[cfg(test)]
pub(crate) mod reference {
    //! Naive byte-at-a-time reference implementation used by every test module.

    /// RFC 1071 straight from the text: 16-bit big-endian words, end-around carry each step.
    pub fn checksum(parts: &[&[u8]]) -> u16 {
        let mut bytes = Vec::new();
        for p in parts {
            bytes.extend_from_slice(p);
        }
        if bytes.len() % 2 == 1 {
            bytes.push(0);
        }
        let mut s: u32 = 0;
        for w in bytes.chunks(2) {
            s += (u32::from(w[0]) << 8) | u32::from(w[1]);
            if s > 0xffff {
                s = (s & 0xffff) + 1;
            }
        }
        !(s as u16)
    }

    /// The 12-byte IPv4 pseudo header as bytes.
    pub fn pseudo(src: [u8; 4], dst: [u8; 4], proto: u8, len: u16) -> Vec<u8> {
        let mut v = Vec::with_capacity(12);
        v.extend_from_slice(&src);
        v.extend_from_slice(&dst);
        v.push(0);
        v.push(proto);
        v.extend_from_slice(&len.to_be_bytes());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::reference;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3 example: the sum of these words is ddf2 (before complement).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data, 0)), 0xddf2);
        assert_eq!(internet(&data), !0xddf2);
    }

    #[test]
    fn known_ipv4_header() {
        // A classic example header (Wikipedia "IPv4 header checksum"): checksum b861.
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(internet(&h), 0xb861);
        h[10] = 0xb8;
        h[11] = 0x61;
        assert_eq!(internet(&h), 0);
    }

    #[test]
    fn odd_lengths_and_empty() {
        assert_eq!(internet(&[]), 0xffff);
        assert_eq!(fold(sum(&[0xab], 0)), 0xab00);
        assert_eq!(fold(sum(&[0x12, 0x34, 0x56], 0)), 0x1234 + 0x5600);
        assert_eq!(fold(sum(&[0xff; 7], 0)), 0xff00);
        assert_eq!(fold(sum(&[0xff; 8], 0)), 0xffff);
    }

    #[test]
    fn update_examples() {
        // RFC 1624 section 4 example: HC=0xDD2F, m=0x5555 -> m'=0x3285 gives HC'=0x0000.
        assert_eq!(update_u16(0xdd2f, 0x5555, 0x3285), 0x0000);
        assert_eq!(update_u16(0x1234, 0xabcd, 0xabcd), 0x1234);
    }

    #[test]
    fn pseudo_matches_bytes() {
        let p = reference::pseudo([10, 1, 2, 3], [192, 168, 200, 77], 6, 1234);
        let a = pseudo_header_v4(
            Ipv4Addr::new(10, 1, 2, 3),
            Ipv4Addr::new(192, 168, 200, 77),
            6,
            1234,
        );
        assert_eq!(fold(a), fold(sum(&p, 0)));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn sum_matches_reference(data in proptest::collection::vec(any::<u8>(), 0..300), init in any::<u32>()) {
            prop_assert_eq!(internet(&data), reference::checksum(&[&data]));
            // Chaining: an even first chunk then the rest equals the whole.
            let cut = (data.len() / 2) & !1;
            let chained = finish(sum(&data[cut..], sum(&data[..cut], 0)));
            prop_assert_eq!(chained, reference::checksum(&[&data]));
            // `initial` is added modulo 0xFFFF.
            let with_init = fold(sum(&data, init)) as u32 % 0xffff;
            let expect = (fold(sum(&data, 0)) as u32 + fold(init) as u32) % 0xffff;
            prop_assert_eq!(with_init, expect);
        }

        #[test]
        fn incremental_matches_full(mut data in proptest::collection::vec(any::<u8>(), 12..200),
                                   w16 in any::<u16>(), w32 in any::<u32>(), at in 0usize..100) {
            let len = data.len() & !1;
            let data = &mut data[..len];
            // The last word is never rewritten; keep it non-zero so the data is never all zero
            // (whose checksum, 0xffff, has no incremental equivalent).
            data[len - 1] |= 1;
            let i = ((at % (len / 2 - 2)) * 2).max(2);
            // Field 0..2 holds the checksum.
            data[0] = 0; data[1] = 0;
            let c = internet(data);
            data[0..2].copy_from_slice(&c.to_be_bytes());
            let old16 = u16::from_be_bytes([data[i], data[i + 1]]);
            data[i..i + 2].copy_from_slice(&w16.to_be_bytes());
            let c2 = update_u16(c, old16, w16);
            data[0] = 0; data[1] = 0;
            prop_assert_eq!(c2, reference::checksum(&[data]));
            data[0..2].copy_from_slice(&c2.to_be_bytes());
            let old32 = u32::from_be_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
            data[i..i + 4].copy_from_slice(&w32.to_be_bytes());
            let c3 = update_u32(c2, old32, w32);
            data[0] = 0; data[1] = 0;
            prop_assert_eq!(c3, reference::checksum(&[data]));
        }
    }
}
