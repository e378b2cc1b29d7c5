//! Single-producer/single-consumer rings of mbufs, for handing packets to their owner core.

use super::mbuf::Burst;
use super::{ffi, Error, ErrorKind, Result};
use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::Arc;

const RING_F_SP_ENQ: u32 = 0x0001;
const RING_F_SC_DEQ: u32 = 0x0002;

struct RingInner {
    raw: NonNull<ffi::rte_ring>,
}

// SAFETY: rte_ring is a lock-free structure meant to be shared between lcores; the SP/SC
// discipline is enforced by RingTx/RingRx being unique (not Clone).
unsafe impl Send for RingInner {}
// SAFETY: as above.
unsafe impl Sync for RingInner {}

impl Drop for RingInner {
    fn drop(&mut self) {
        // Free any mbufs still queued, then the ring. Both halves are gone (Arc), so no one else
        // touches it.
        let mut b = Burst::new();
        loop {
            let (ptr, room) = b.spare_raw();
            // SAFETY: ptr has room for `room` pointers; dequeued mbufs become owned by b.
            let n = unsafe {
                ffi::rte_ring_sc_dequeue_burst(
                    self.raw.as_ptr(),
                    ptr as *mut *mut std::os::raw::c_void,
                    room as u32,
                    std::ptr::null_mut(),
                )
            } as usize;
            if n == 0 {
                break;
            }
            // SAFETY: n slots were filled with owned mbufs.
            unsafe { b.commit(n) };
            drop(std::mem::take(&mut b));
        }
        // SAFETY: no handle to the ring remains.
        unsafe { ffi::rte_ring_free(self.raw.as_ptr()) }
    }
}

/// Producer half of an mbuf ring.
pub struct RingTx {
    inner: Arc<RingInner>,
}

/// Consumer half of an mbuf ring.
pub struct RingRx {
    inner: Arc<RingInner>,
}

/// Creates an SPSC ring of `size` mbufs (a power of two; usable size - 1).
pub fn mbuf_ring(name: &str, size: u32, socket: i32) -> Result<(RingTx, RingRx)> {
    let c = CString::new(name)
        .map_err(|_| Error::new("rte_ring_create", ErrorKind::InvalidArgument, "bad name"))?;
    // SAFETY: valid C string; EAL initialised (rings need its memory).
    let raw =
        unsafe { ffi::rte_ring_create(c.as_ptr(), size, socket, RING_F_SP_ENQ | RING_F_SC_DEQ) };
    let raw = NonNull::new(raw).ok_or_else(|| Error::last(format!("rte_ring_create({name})")))?;
    let inner = Arc::new(RingInner { raw });
    Ok((
        RingTx {
            inner: inner.clone(),
        },
        RingRx { inner },
    ))
}

impl RingTx {
    /// Moves as many mbufs of `burst` as fit into the ring; the rest stay in `burst`.
    #[inline(always)]
    pub fn enqueue(&mut self, burst: &mut Burst) -> usize {
        let (ptr, len) = burst.filled_raw();
        if len == 0 {
            return 0;
        }
        // SAFETY: single producer (RingTx is unique and &mut); the ring takes ownership of the
        // first n mbufs, which are then removed from the burst.
        unsafe {
            let n = ffi::rte_ring_sp_enqueue_burst(
                self.inner.raw.as_ptr(),
                ptr as *const *mut std::os::raw::c_void,
                len as u32,
                std::ptr::null_mut(),
            ) as usize;
            burst.consumed_front(n);
            n
        }
    }
}

impl RingRx {
    /// Dequeues into the free room of `burst`; returns how many arrived.
    #[inline(always)]
    pub fn dequeue(&mut self, burst: &mut Burst) -> usize {
        let (ptr, room) = burst.spare_raw();
        if room == 0 {
            return 0;
        }
        // SAFETY: single consumer; ptr has room for `room` pointers; the mbufs become owned by
        // the burst.
        unsafe {
            let n = ffi::rte_ring_sc_dequeue_burst(
                self.inner.raw.as_ptr(),
                ptr as *mut *mut std::os::raw::c_void,
                room as u32,
                std::ptr::null_mut(),
            ) as usize;
            burst.commit(n);
            n
        }
    }
}
