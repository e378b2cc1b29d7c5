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
pub mod runtime;
pub mod telemetry;

pub use eal::Eal;
pub use flow::L4;
pub use lcore::{launch, main_lcore, wait_all, worker_lcores, LaunchHandle, LcoreGroup};
pub use mbuf::{Burst, Mbuf, Mempool, BURST_SIZE};
pub use port::{
    probe_vdev, DevInfo, LinkStatus, Port, PortConf, PortId, PortStats, QueueId, RssConf, RxQueue,
    TxQueue,
};
pub use ring::{mbuf_ring, RingRx, RingTx};

use std::ffi::CStr;

/// What went wrong, as a kind callers can match on (in the manner of `std::io::ErrorKind`):
/// DPDK's negative errno values mapped once, here at the FFI boundary, plus the preconditions
/// the wrappers check themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// No such device, port or object (ENODEV, ENOENT), or a device that was not probed.
    NotFound,
    /// The driver or DPDK refused an argument or a configuration (EINVAL, ERANGE).
    InvalidArgument,
    /// The driver does not support the operation (ENOTSUP, EOPNOTSUPP, ENOSYS).
    Unsupported,
    /// Out of memory, mbufs or descriptors (ENOMEM, ENOBUFS, ENOSPC).
    NoMemory,
    /// The resource is busy, or the operation must wait (EBUSY, EAGAIN).
    Busy,
    /// A name is taken (EEXIST): a ring or pool of that name exists.
    AlreadyExists,
    /// Not allowed (EPERM, EACCES): usually not root, or no access to hugepages or a device.
    PermissionDenied,
    /// An I/O error from the device (EIO).
    Io,
    /// A handle of this process already owns the port.
    InUse,
    /// The port's queues were handed out already.
    AlreadyConfigured,
    /// EAL is initialised already (once per process).
    AlreadyInitialised,
    /// A buffer or table is too small or too large for the request.
    OutOfRange,
    /// Any other errno.
    Other,
}

impl ErrorKind {
    /// The kind of a DPDK errno (positive or negative).
    pub fn of_errno(errno: i32) -> ErrorKind {
        use nix::errno::Errno as E;
        match E::from_raw(errno.abs()) {
            E::ENODEV | E::ENOENT => ErrorKind::NotFound,
            E::EINVAL | E::ERANGE => ErrorKind::InvalidArgument,
            E::ENOTSUP | E::ENOSYS => ErrorKind::Unsupported,
            E::ENOMEM | E::ENOBUFS | E::ENOSPC => ErrorKind::NoMemory,
            E::EBUSY | E::EAGAIN => ErrorKind::Busy,
            E::EEXIST => ErrorKind::AlreadyExists,
            E::EPERM | E::EACCES => ErrorKind::PermissionDenied,
            E::EIO => ErrorKind::Io,
            _ => ErrorKind::Other,
        }
    }
}

#[cfg(test)]
mod error_tests {
    use super::*;

    #[test]
    fn errnos_map_to_kinds_whatever_their_sign() {
        assert_eq!(ErrorKind::of_errno(-19), ErrorKind::NotFound); // -ENODEV
        assert_eq!(ErrorKind::of_errno(22), ErrorKind::InvalidArgument);
        assert_eq!(ErrorKind::of_errno(-95), ErrorKind::Unsupported); // -ENOTSUP
        assert_eq!(ErrorKind::of_errno(-12), ErrorKind::NoMemory);
        assert_eq!(ErrorKind::of_errno(-16), ErrorKind::Busy);
        assert_eq!(ErrorKind::of_errno(17), ErrorKind::AlreadyExists);
        assert_eq!(ErrorKind::of_errno(1), ErrorKind::PermissionDenied);
        assert_eq!(ErrorKind::of_errno(-1001), ErrorKind::Other);
    }
}

/// A DPDK call that failed: the operation, what kind of failure, the errno DPDK reported (0
/// for a precondition the wrapper checked) and DPDK's text for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{op}: {text} (errno {errno})")]
pub struct Error {
    pub op: String,
    pub kind: ErrorKind,
    pub errno: i32,
    pub text: String,
}

impl Error {
    /// Builds an error from an errno value (positive or negative, as DPDK functions return them).
    pub fn from_errno(op: impl Into<String>, errno: i32) -> Self {
        let errno = errno.abs();
        Error {
            op: op.into(),
            kind: ErrorKind::of_errno(errno),
            errno,
            text: strerror(errno),
        }
    }

    /// Builds an error from the thread's current `rte_errno` (for calls that return NULL).
    pub fn last(op: impl Into<String>) -> Self {
        Self::from_errno(op, rte_errno())
    }

    /// An error that did not come from DPDK's errno (a precondition rvs checks itself).
    pub fn new(op: impl Into<String>, kind: ErrorKind, text: impl Into<String>) -> Self {
        Error {
            op: op.into(),
            kind,
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
