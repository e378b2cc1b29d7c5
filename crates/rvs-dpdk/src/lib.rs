//! Safe wrappers over DPDK 22.11. This is the only module allowed to contain `unsafe`; every
//! unsafe block states why it is sound in a `// SAFETY:` comment.
//!
//! Shape (after githedgehog/dataplane's `dpdk` crate and capsule): newtype port and queue ids,
//! negative errno values mapped to a typed [`Error`] carrying DPDK's text, an owned [`Mbuf`] whose
//! `Drop` frees it, fixed-capacity [`Burst`] arrays for RX/TX so the fast path never allocates.
#![allow(unsafe_code)]

pub mod eal;
pub mod ffi;
pub mod flow;
pub mod lcore;
pub mod mbuf;
pub mod port;
pub mod ring;

pub use eal::Eal;
pub use flow::L4;
pub use lcore::{launch, main_lcore, wait_all, worker_lcores, LaunchHandle, LcoreGroup};
pub use mbuf::{Burst, Mbuf, Mempool, BURST_SIZE};
pub use port::{
    DevInfo, LinkStatus, Port, PortConf, PortId, PortStats, QueueId, RssConf, RxQueue, TxQueue,
};
pub use ring::{mbuf_ring, RingRx, RingTx};

use std::ffi::CStr;

/// A DPDK call that failed, with the errno it reported and DPDK's text for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{op}: {text} (errno {errno})")]
pub struct Error {
    pub op: String,
    pub errno: i32,
    pub text: String,
}

impl Error {
    /// Builds an error from an errno value (positive or negative, as DPDK functions return them).
    pub fn from_errno(op: impl Into<String>, errno: i32) -> Self {
        let errno = errno.abs();
        Error {
            op: op.into(),
            errno,
            text: strerror(errno),
        }
    }

    /// Builds an error from the thread's current `rte_errno` (for calls that return NULL).
    pub fn last(op: impl Into<String>) -> Self {
        Self::from_errno(op, rte_errno())
    }

    /// An error that did not come from DPDK's errno (a precondition rvs checks itself).
    pub fn msg(op: impl Into<String>, text: impl Into<String>) -> Self {
        Error {
            op: op.into(),
            errno: 0,
            text: text.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Turns a DPDK `int` return (negative errno on failure) into a `Result`.
pub(crate) fn check(op: &str, ret: i32) -> Result<i32> {
    if ret < 0 {
        Err(Error::from_errno(op, ret))
    } else {
        Ok(ret)
    }
}

/// The calling thread's `rte_errno`.
pub fn rte_errno() -> i32 {
    // SAFETY: reads a thread-local int through a C accessor; no preconditions.
    unsafe { ffi::rvs_rte_errno() }
}

/// DPDK's text for an errno value (covers DPDK-specific codes as well as libc ones).
pub fn strerror(errno: i32) -> String {
    // SAFETY: rte_strerror returns a pointer to a static or thread-local NUL-terminated string,
    // valid until the next call on this thread; it is copied out at once.
    unsafe {
        let p = ffi::rte_strerror(errno);
        if p.is_null() {
            format!("errno {errno}")
        } else {
            CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}

/// The TSC, the cheapest clock on the fast path.
#[inline(always)]
pub fn tsc() -> u64 {
    // SAFETY: reads the time-stamp counter; no memory is touched.
    unsafe { ffi::rte_rdtsc() }
}

/// TSC ticks per second as measured by EAL at init (0 before init).
pub fn tsc_hz() -> u64 {
    // SAFETY: reads a value EAL computed at init; callable from any thread.
    unsafe { ffi::rte_get_tsc_hz() }
}

/// Hints the CPU to pull the cache line at `p` into all cache levels. Any address is allowed: a
/// prefetch never faults.
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetch is a hint and never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Asks the kernel for transparent huge pages on `[ptr, ptr + len)` (the page-aligned part of
/// it). For large preallocated tables, before they are first written: with 2 MiB pages a lookup
/// in a table of millions of entries stops missing the TLB too. Best effort: if THP is off
/// (`/sys/kernel/mm/transparent_hugepage/enabled` = never) nothing changes. Not DPDK, but a
/// system call on raw memory, so it lives with the other `unsafe` code.
pub fn advise_hugepages(ptr: *mut u8, len: usize) {
    const PAGE: usize = 4096;
    let start = (ptr as usize).div_ceil(PAGE) * PAGE;
    let end = (ptr as usize).saturating_add(len) / PAGE * PAGE;
    if end <= start {
        return;
    }
    let Some(p) = std::ptr::NonNull::new(start as *mut std::ffi::c_void) else {
        return;
    };
    // SAFETY: MADV_HUGEPAGE is advice on how to back the range: it changes neither the contents
    // nor the validity of any mapping. The range is the page-aligned interior of an allocation
    // the caller owns; an error (THP disabled, not a private anonymous mapping) is harmless.
    let _ = unsafe {
        nix::sys::mman::madvise(p, end - start, nix::sys::mman::MmapAdvise::MADV_HUGEPAGE)
    };
}
