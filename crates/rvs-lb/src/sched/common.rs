//! Helpers shared by several schedulers: the kernel's `hash_32`, the weighted-least-connection
//! comparison, the lblc/lblcr "is overloaded" test and destination identity tracking across
//! configuration updates (schedulers store indices; an update may reorder or remove entries).

use super::DestView;
use std::collections::HashMap;
use std::net::Ipv4Addr;

/// `GOLDEN_RATIO_32` from include/linux/hash.h.
pub(crate) const GOLDEN_RATIO_32: u32 = 0x61C8_8647;

/// Sentinel stored in index tables for "no destination".
pub(crate) const NO_DEST: u32 = u32::MAX;

/// The kernel's `hash_32(val, bits)`: multiply by the golden ratio and keep the top `bits` bits.
#[inline]
pub(crate) fn hash_32(val: u32, bits: u32) -> u32 {
    // `bits` is a compile-time constant in 1..=32 at every call site; checked_shr keeps a bad value
    // from panicking anyway.
    val.wrapping_mul(GOLDEN_RATIO_32)
        .checked_shr(32u32.wrapping_sub(bits))
        .unwrap_or(0)
}

/// Protocols whose first 4 L4 bytes are the ports (`ip_vs_sh_get_port` / `ip_vs_mh_get_port`).
#[inline]
pub(crate) fn has_ports(proto: u8) -> bool {
    matches!(proto, 6 | 17 | 132)
}

/// The identity of a destination within a service: the kernel's (addr, port) lookup key.
pub(crate) type DestKey = (Ipv4Addr, u16);

#[inline]
pub(crate) fn key_of(d: &DestView) -> DestKey {
    (d.addr, d.port)
}

pub(crate) fn keys_of(dests: &[DestView]) -> Vec<DestKey> {
    dests.iter().map(key_of).collect()
}

/// Maps old destination indices to new ones after a configuration change.
pub(crate) struct Remap {
    /// `new_index[old]` is the destination's index in the new list, if it is still there.
    new_index: Vec<Option<u32>>,
}

impl Remap {
    /// Builds the mapping from the keys seen at the previous update to the new list.
    pub(crate) fn new(old: &[DestKey], new: &[DestView]) -> Remap {
        let mut pos: HashMap<DestKey, u32> = HashMap::with_capacity(new.len());
        for (i, d) in new.iter().enumerate() {
            if let Ok(i) = u32::try_from(i) {
                // First occurrence wins should the list ever hold a duplicate key.
                pos.entry(key_of(d)).or_insert(i);
            }
        }
        Remap {
            new_index: old.iter().map(|k| pos.get(k).copied()).collect(),
        }
    }

    /// True when every old index maps to itself and nothing was removed.
    pub(crate) fn is_identity(&self, new_len: usize) -> bool {
        self.new_index.len() == new_len
            && self
                .new_index
                .iter()
                .enumerate()
                .all(|(i, n)| n.map(|n| n as usize) == Some(i))
    }

    /// The new index of old index `old`, or `None` if it was removed (or was never known).
    pub(crate) fn get(&self, old: u32) -> Option<u32> {
        self.new_index.get(old as usize).copied().flatten()
    }
}

/// `a_oh / a_w > b_oh / b_w`, compared like the kernel as `a_oh * b_w > b_oh * a_w` (a weight of
/// 0 on the right-hand side makes it false); u128 so no input can overflow.
#[inline]
pub(crate) fn ratio_gt(a_oh: u64, a_w: u32, b_oh: u64, b_w: u32) -> bool {
    (a_oh as u128) * (b_w as u128) > (b_oh as u128) * (a_w as u128)
}

/// The weighted least-connection pick shared by wlc, sed (through `oh`), lblc and lblcr:
/// the first dest that is not OVERLOAD and has weight > 0 seeds the search; later non-OVERLOAD
/// dests replace it only when strictly less loaded (`loh * w_d > doh * w_least`), so the first in
/// list order wins ties and a weight-0 dest can never win.
#[inline]
pub(crate) fn least_weighted(dests: &[DestView], oh: impl Fn(&DestView) -> u64) -> Option<usize> {
    let mut least: Option<(usize, u64, u32)> = None;
    for (i, d) in dests.iter().enumerate() {
        if d.overloaded {
            continue;
        }
        match least {
            None => {
                if d.weight > 0 {
                    least = Some((i, oh(d), d.weight));
                }
            }
            Some((_, loh, lw)) => {
                let doh = oh(d);
                if ratio_gt(loh, lw, doh, d.weight) {
                    least = Some((i, doh, d.weight));
                }
            }
        }
    }
    least.map(|(i, _, _)| i)
}

/// lblc/lblcr `is_overloaded()`: the dest has more active connections than its weight and some
/// dest of the service has fewer than half its weight in active connections.
#[inline]
pub(crate) fn locality_overloaded(dest: &DestView, dests: &[DestView]) -> bool {
    dest.activeconns > dest.weight
        && dests
            .iter()
            .any(|d| (d.activeconns as u64) * 2 < d.weight as u64)
}

/// Greatest common divisor (Euclid), for wrr and mh.
pub(crate) fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::super::{DestView, Flow};
    use std::net::Ipv4Addr;

    /// A dest at 10.0.0.(i+1):80 with the given weight and no connections.
    pub(crate) fn dest(i: u8, weight: u32) -> DestView {
        DestView {
            addr: Ipv4Addr::new(10, 0, 0, i.wrapping_add(1)),
            port: 80,
            weight,
            last_weight: weight,
            activeconns: 0,
            inactconns: 0,
            overloaded: false,
        }
    }

    pub(crate) fn dests(weights: &[u32]) -> Vec<DestView> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| dest(i as u8, w))
            .collect()
    }

    pub(crate) fn flow(caddr: Ipv4Addr, cport: u16) -> Flow {
        Flow {
            proto: 6,
            caddr,
            cport,
            vaddr: Ipv4Addr::new(192, 0, 2, 1),
            vport: 80,
        }
    }

    pub(crate) fn any_flow() -> Flow {
        flow(Ipv4Addr::new(198, 51, 100, 7), 40000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_32_matches_kernel_definition() {
        // (0x0A000001 * 0x61C88647) mod 2^32 = 0x61C88647 + (0x0A * 0x47 mod 256) << 24
        // = 0x61C88647 + 0xC6000000 = 0x27C88647 (mod 2^32); top 8 bits 0x27, top 10 bits 0x9F.
        assert_eq!(0x0A00_0001u32.wrapping_mul(GOLDEN_RATIO_32), 0x27C8_8647);
        assert_eq!(hash_32(0x0A00_0001, 8), 0x27);
        assert_eq!(hash_32(0x0A00_0001, 10), 0x9F);
        assert_eq!(hash_32(0, 8), 0);
        assert_eq!(hash_32(1, 32), GOLDEN_RATIO_32);
    }

    #[test]
    fn ratio_and_gcd() {
        assert!(ratio_gt(256, 1, 512, 3)); // 256*3 = 768 > 512*1
        assert!(!ratio_gt(256, 1, 512, 2)); // 512 > 512 is false: ties keep the first
        assert!(!ratio_gt(u64::MAX, 5, 0, 0)); // a weight-0 candidate never looks lighter
        assert_eq!(gcd(12, 18), 6);
        assert_eq!(gcd(7, 0), 7);
    }

    #[test]
    fn remap_tracks_moves_and_removals() {
        let old = keys_of(&test_util::dests(&[1, 1, 1]));
        let mut new = test_util::dests(&[1, 1, 1]);
        new.remove(1);
        let r = Remap::new(&old, &new);
        assert_eq!(r.get(0), Some(0));
        assert_eq!(r.get(1), None);
        assert_eq!(r.get(2), Some(1));
        assert_eq!(r.get(7), None);
        assert!(!r.is_identity(new.len()));
        let same = test_util::dests(&[1, 1, 1]);
        assert!(Remap::new(&old, &same).is_identity(3));
    }
}
