//! RSS through rte_flow, and DPDK's software Toeplitz hash.
//!
//! ice, i40e and iavf accept source-only / destination-only hash fields only in an rte_flow RSS
//! action, not in the port's `rss_hf` (dpdk-notes). With a pattern, those drivers reject an
//! action that carries a key or a queue list ("a nonzero RSS key_len is not supported", "RSS
//! Queues not supported when pattern specified"): the rule only changes which fields are
//! hashed, and the port's key and redirection table still place the packet. So rvs programs key
//! and RETA on the port and installs rules whose action carries the hash types alone.

use super::{ffi, Error, ErrorKind, Result};
use std::ffi::CStr;
use std::ptr::{self, NonNull};

/// The transport a rule matches (over Ethernet and IPv4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    Tcp,
    Udp,
}

impl L4 {
    fn item(self) -> ffi::rte_flow_item_type {
        match self {
            L4::Tcp => ffi::RTE_FLOW_ITEM_TYPE_TCP,
            L4::Udp => ffi::RTE_FLOW_ITEM_TYPE_UDP,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            L4::Tcp => "tcp",
            L4::Udp => "udp",
        }
    }
}

/// An installed rte_flow rule; destroyed on drop (the owning [`super::Port`] drops its rules
/// before closing).
#[derive(Debug)]
pub struct Flow {
    port: u16,
    raw: NonNull<ffi::rte_flow>,
}

// SAFETY: the handle is an opaque token that is only passed back to rte_flow_destroy for the
// same port; ethdev serialises flow operations for drivers that are not thread-safe, so the
// thread that destroys it does not matter.
unsafe impl Send for Flow {}

impl Drop for Flow {
    fn drop(&mut self) {
        let mut err = ffi::rte_flow_error::default();
        // SAFETY: raw came from rte_flow_create on this port and is destroyed exactly once
        // (Flow is not Clone); err is a valid out struct.
        unsafe {
            ffi::rte_flow_destroy(self.port, self.raw.as_ptr(), &mut err);
        }
    }
}

/// The rule's parts, kept alive together while DPDK reads them.
struct RssRule {
    attr: ffi::rte_flow_attr,
    pattern: [ffi::rte_flow_item; 4],
    rss: ffi::rte_flow_action_rss,
}

impl RssRule {
    fn new(l4: L4, types: u64) -> RssRule {
        let mut attr = ffi::rte_flow_attr::default();
        attr.set_ingress(1);
        let item = |t| ffi::rte_flow_item {
            type_: t,
            // NULL spec and mask: any packet with this header.
            spec: ptr::null(),
            last: ptr::null(),
            mask: ptr::null(),
        };
        RssRule {
            attr,
            pattern: [
                item(ffi::RTE_FLOW_ITEM_TYPE_ETH),
                item(ffi::RTE_FLOW_ITEM_TYPE_IPV4),
                item(l4.item()),
                item(ffi::RTE_FLOW_ITEM_TYPE_END),
            ],
            rss: ffi::rte_flow_action_rss {
                func: ffi::RTE_ETH_HASH_FUNCTION_DEFAULT,
                level: 0,
                types,
                key_len: 0,
                queue_num: 0,
                key: ptr::null(),
                queue: ptr::null(),
            },
        }
    }

    /// The action list; borrows `self.rss`, so it must not outlive `self`.
    fn actions(&self) -> [ffi::rte_flow_action; 2] {
        [
            ffi::rte_flow_action {
                type_: ffi::RTE_FLOW_ACTION_TYPE_RSS,
                conf: &self.rss as *const ffi::rte_flow_action_rss as *const std::ffi::c_void,
            },
            ffi::rte_flow_action {
                type_: ffi::RTE_FLOW_ACTION_TYPE_END,
                conf: ptr::null(),
            },
        ]
    }
}

fn flow_error(op: &str, ret: i32, err: &ffi::rte_flow_error) -> Error {
    let why = if err.message.is_null() {
        super::strerror(ret.abs())
    } else {
        // SAFETY: a non-NULL message is a NUL-terminated string owned by the driver (static or
        // per-port storage), valid at least until the next flow call on this port.
        unsafe { CStr::from_ptr(err.message) }
            .to_string_lossy()
            .into_owned()
    };
    Error {
        op: op.to_string(),
        kind: ErrorKind::of_errno(ret),
        errno: ret.abs(),
        text: why,
    }
}

/// `rte_flow_validate` of the rule ETH / IPV4 / `l4` -> RSS(`types`) on `port`.
pub(crate) fn validate_rss(port: u16, l4: L4, types: u64) -> Result<()> {
    let rule = RssRule::new(l4, types);
    let actions = rule.actions();
    let mut err = ffi::rte_flow_error::default();
    // SAFETY: attr, the END-terminated pattern and the END-terminated actions (whose RSS conf
    // points into `rule`) all live across the call; err is a valid out struct. DPDK copies
    // what it keeps.
    let ret = unsafe {
        ffi::rte_flow_validate(
            port,
            &rule.attr,
            rule.pattern.as_ptr(),
            actions.as_ptr(),
            &mut err,
        )
    };
    if ret < 0 {
        return Err(flow_error("rte_flow_validate", ret, &err));
    }
    Ok(())
}

/// `rte_flow_create` of the rule [`validate_rss`] checks.
pub(crate) fn create_rss(port: u16, l4: L4, types: u64) -> Result<Flow> {
    let rule = RssRule::new(l4, types);
    let actions = rule.actions();
    let mut err = ffi::rte_flow_error::default();
    // SAFETY: as in validate_rss; the returned handle is owned by the Flow.
    let raw = unsafe {
        ffi::rte_flow_create(
            port,
            &rule.attr,
            rule.pattern.as_ptr(),
            actions.as_ptr(),
            &mut err,
        )
    };
    match NonNull::new(raw) {
        Some(raw) => Ok(Flow { port, raw }),
        None => Err(flow_error("rte_flow_create", super::rte_errno(), &err)),
    }
}

/// DPDK's `rte_softrss`: the Toeplitz hash of `words` (32-bit words in host order, the layout
/// of `rte_thash_tuple`) under `key`, which must hold at least `words.len() + 1` words.
pub fn softrss(words: &[u32], key: &[u8]) -> Result<u32> {
    const MAX_WORDS: usize = 16;
    if words.len() >= MAX_WORDS || key.len() < (words.len() + 1) * 4 {
        return Err(Error::new(
            "rte_softrss",
            ErrorKind::OutOfRange,
            "input too long for the key",
        ));
    }
    // rte_softrss reads the key as 32-bit words: give it an aligned copy.
    let mut k = [0u32; MAX_WORDS];
    for (i, w) in k.iter_mut().enumerate() {
        let b = |j: usize| key.get(4 * i + j).copied().unwrap_or(0);
        *w = u32::from_ne_bytes([b(0), b(1), b(2), b(3)]);
    }
    let mut input = [0u32; MAX_WORDS];
    input[..words.len()].copy_from_slice(words);
    // SAFETY: input holds words.len() words, the length passed; k holds 16 aligned words and
    // rte_softrss reads words.len() + 1 <= 16 of them. Pure computation, no EAL state.
    Ok(unsafe {
        ffi::rte_softrss(
            input.as_mut_ptr(),
            words.len() as u32,
            k.as_ptr() as *const u8,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rvs_lb::steer::{toeplitz_hash, Toeplitz, RSS_KEY};
    use std::net::Ipv4Addr;

    #[test]
    fn softrss_matches_microsoft_vector() {
        // 66.9.149.187:2794 -> 161.142.100.80:1766, hash with TCP ports 0x51ccc178.
        let src = u32::from(Ipv4Addr::new(66, 9, 149, 187));
        let dst = u32::from(Ipv4Addr::new(161, 142, 100, 80));
        let ports = (2794u32 << 16) | 1766;
        assert_eq!(softrss(&[src, dst, ports], &RSS_KEY).unwrap(), 0x51cc_c178);
        assert_eq!(softrss(&[src, dst], &RSS_KEY).unwrap(), 0x323e_8fc2);
        assert!(softrss(&[0; 10], &RSS_KEY).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// rvs's Toeplitz mirror of client-endpoint-only hashing (address, then port) is
        /// DPDK's own implementation over the tuple {address, port << 16}, for any key.
        #[test]
        fn mirror_is_dpdk_softrss(k1 in any::<[u8; 32]>(), k2 in any::<[u8; 8]>(), a in any::<u32>(), port in any::<u16>(), standard_key in any::<bool>()) {
            let mut key = [0u8; 40];
            key[..32].copy_from_slice(&k1);
            key[32..].copy_from_slice(&k2);
            if standard_key {
                key = RSS_KEY;
            }
            let t = Toeplitz::new(&key, &[0], 1).unwrap();
            let dpdk = softrss(&[a, u32::from(port) << 16], &key).unwrap();
            prop_assert_eq!(t.hash(Ipv4Addr::from(a), port), dpdk);
            // And the reference implementation agrees on the full 4-tuple too.
            let (b, p2) = (a.rotate_left(7) ^ 0x5a5a_5a5a, port.rotate_left(3));
            let mut input = a.to_be_bytes().to_vec();
            input.extend_from_slice(&b.to_be_bytes());
            input.extend_from_slice(&port.to_be_bytes());
            input.extend_from_slice(&p2.to_be_bytes());
            let dpdk4 = softrss(&[a, b, (u32::from(port) << 16) | u32::from(p2)], &key).unwrap();
            prop_assert_eq!(toeplitz_hash(&key, &input), dpdk4);
        }
    }
}
