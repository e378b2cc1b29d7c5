//! Packet buffer pools, owned packet buffers and fixed-size bursts.

use super::{ffi, Error, ErrorKind, Result};
use std::ffi::CString;
use std::ptr::NonNull;

/// Packets per RX/TX burst.
pub const BURST_SIZE: usize = 32;

/// A pktmbuf pool. Pools live until the process exits (EAL cleanup releases their memory): an
/// mbuf may outlive every Rust handle to its pool, so freeing the pool on drop would be unsound.
#[derive(Debug, Clone, Copy)]
pub struct Mempool {
    raw: NonNull<ffi::rte_mempool>,
}

// SAFETY: rte_mempool is designed for concurrent use from all lcores (per-lcore caches and an
// atomic ring behind them); the handle is a plain pointer to it.
unsafe impl Send for Mempool {}
// SAFETY: as above; every operation through a shared handle is thread-safe in DPDK.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// `rte_pktmbuf_pool_create`: `n` mbufs with `data_room` bytes each (headroom included).
    pub fn new(name: &str, n: u32, cache: u32, data_room: u16, socket: i32) -> Result<Mempool> {
        let cname = CString::new(name).map_err(|_| {
            Error::new(
                "rte_pktmbuf_pool_create",
                ErrorKind::InvalidArgument,
                "bad name",
            )
        })?;
        // SAFETY: cname is a valid C string for the duration of the call; EAL is initialised
        // (a pool can only be created after Eal::init, which the caller holds).
        let raw =
            unsafe { ffi::rte_pktmbuf_pool_create(cname.as_ptr(), n, cache, 0, data_room, socket) };
        NonNull::new(raw)
            .map(|raw| Mempool { raw })
            .ok_or_else(|| Error::last(format!("rte_pktmbuf_pool_create({name}, n={n})")))
    }

    pub(crate) fn as_ptr(&self) -> *mut ffi::rte_mempool {
        self.raw.as_ptr()
    }

    /// Takes one mbuf from the pool, reset and empty; `None` when the pool is exhausted.
    #[inline]
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool pointer is valid for the process lifetime; the returned mbuf (if any)
        // is exclusively ours.
        let m = unsafe { ffi::rte_pktmbuf_alloc(self.raw.as_ptr()) };
        NonNull::new(m).map(|raw| Mbuf { raw })
    }

    /// Mbufs currently available in the pool (including per-lcore caches).
    pub fn available(&self) -> u32 {
        // SAFETY: read-only query on a valid pool.
        unsafe { ffi::rte_mempool_avail_count(self.raw.as_ptr()) }
    }

    /// Mbufs currently handed out.
    pub fn in_use(&self) -> u32 {
        // SAFETY: read-only query on a valid pool.
        unsafe { ffi::rte_mempool_in_use_count(self.raw.as_ptr()) }
    }
}

/// An owned packet buffer (one segment is all rvs creates; chained mbufs received from a PMD are
/// handled by their first segment only and freed whole). Dropping it returns it to its pool.
///
/// Ownership is linear: the safe API never hands out two `Mbuf`s for one buffer, so a double free
/// or a use after free cannot be written without `unsafe`.
#[derive(Debug)]
pub struct Mbuf {
    raw: NonNull<ffi::rte_mbuf>,
}

// SAFETY: an Mbuf is exclusively owned; moving it to another thread moves that ownership (this is
// exactly what handing a packet to another lcore over a ring does).
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    /// `raw` must be a valid mbuf that nothing else owns or will free.
    #[inline(always)]
    pub(crate) unsafe fn from_raw(raw: *mut ffi::rte_mbuf) -> Option<Mbuf> {
        NonNull::new(raw).map(|raw| Mbuf { raw })
    }

    /// Gives up ownership without freeing.
    #[inline(always)]
    pub(crate) fn into_raw(self) -> *mut ffi::rte_mbuf {
        let p = self.raw.as_ptr();
        std::mem::forget(self);
        p
    }

    #[inline(always)]
    fn m(&self) -> &ffi::rte_mbuf {
        // SAFETY: we own a valid mbuf; the header is plain data.
        unsafe { self.raw.as_ref() }
    }

    #[inline(always)]
    fn m_mut(&mut self) -> &mut ffi::rte_mbuf {
        // SAFETY: we own the mbuf exclusively (&mut self).
        unsafe { self.raw.as_mut() }
    }

    /// Bytes of packet data in the first segment.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.m().data_len as usize
    }

    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the packet spans several segments (rvs only processes single-segment packets).
    #[inline(always)]
    pub fn is_chained(&self) -> bool {
        self.m().nb_segs != 1
    }

    /// The data of the first segment.
    #[inline(always)]
    pub fn data(&self) -> &[u8] {
        let m = self.m();
        // SAFETY: buf_addr + data_off .. + data_len lies inside the mbuf's buffer, which we own.
        unsafe {
            std::slice::from_raw_parts(
                (m.buf_addr as *const u8).add(m.data_off as usize),
                m.data_len as usize,
            )
        }
    }

    /// The data of the first segment, writable.
    #[inline(always)]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let m = self.m_mut();
        // SAFETY: as in `data`, and &mut self guarantees exclusive access.
        unsafe {
            std::slice::from_raw_parts_mut(
                (m.buf_addr as *mut u8).add(m.data_off as usize),
                m.data_len as usize,
            )
        }
    }

    /// Address of the packet data, for prefetching.
    #[inline(always)]
    pub fn data_ptr(&self) -> *const u8 {
        let m = self.m();
        (m.buf_addr as *const u8).wrapping_add(m.data_off as usize)
    }

    /// Sets the packet length (one segment). Fails if `len` exceeds the room after data_off.
    pub fn set_len(&mut self, len: usize) -> Result<()> {
        let m = self.m_mut();
        let room = m.buf_len as usize - m.data_off as usize;
        if len > room || m.nb_segs != 1 {
            return Err(Error::new(
                "mbuf set_len",
                ErrorKind::OutOfRange,
                "length exceeds buffer",
            ));
        }
        m.data_len = len as u16;
        m.pkt_len = len as u32;
        Ok(())
    }

    /// Bytes free after the data, in the first segment.
    pub fn tailroom(&self) -> usize {
        let m = self.m();
        m.buf_len as usize - m.data_off as usize - m.data_len as usize
    }

    /// Bytes free before the data.
    pub fn headroom(&self) -> usize {
        self.m().data_off as usize
    }

    /// Grows the packet at the front by `n` bytes (e.g. to add a header); `None` if no headroom.
    pub fn prepend(&mut self, n: usize) -> Option<()> {
        let m = self.m_mut();
        if n > m.data_off as usize || m.nb_segs != 1 {
            return None;
        }
        m.data_off -= n as u16;
        m.data_len += n as u16;
        m.pkt_len += n as u32;
        Some(())
    }

    /// Removes `n` bytes from the front.
    pub fn adj(&mut self, n: usize) -> Option<()> {
        let m = self.m_mut();
        if n > m.data_len as usize || m.nb_segs != 1 {
            return None;
        }
        m.data_off += n as u16;
        m.data_len -= n as u16;
        m.pkt_len -= n as u32;
        Some(())
    }

    /// The port id the PMD received the packet on.
    #[inline(always)]
    pub fn port(&self) -> u16 {
        self.m().port
    }

    /// The NIC's RSS hash, valid when the port delivers it (RTE_ETH_RX_OFFLOAD_RSS_HASH).
    #[inline(always)]
    pub fn rss_hash(&self) -> u32 {
        // SAFETY: reading a u32 from a union of plain integers is always defined.
        unsafe { self.m().__bindgen_anon_2.hash.rss }
    }

    /// Offload flags.
    #[inline(always)]
    pub fn ol_flags(&self) -> u64 {
        self.m().ol_flags
    }

    /// Asks the port to compute the IPv4 header checksum of this packet on transmit
    /// (`RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM`, with `l2_len` and `l3_len`; the other
    /// `tx_offload` lengths are cleared). The header's checksum field must be 0, and the port
    /// must have been configured with `TX_OFFLOAD_IPV4_CKSUM`: a port without it sends the
    /// field as it is. Returns false, changing nothing, when the lengths do not fit the
    /// mbuf's fields (`l2_len` < 128, `l3_len` < 512) or the header is not in the first segment.
    #[inline(always)]
    pub fn request_ipv4_cksum(&mut self, l2_len: usize, l3_len: usize) -> bool {
        let Some(tx) = tx_offload_lengths(l2_len, l3_len) else {
            return false;
        };
        if l2_len + l3_len > self.len() {
            return false;
        }
        let m = self.m_mut();
        m.ol_flags |= TX_IPV4_CKSUM_FLAGS;
        // Writing a plain integer into the union is safe; it overwrites every bitfield.
        m.__bindgen_anon_3.tx_offload = tx;
        true
    }

    /// Whether [`Mbuf::request_ipv4_cksum`] was called, and with which (l2_len, l3_len).
    pub fn ipv4_cksum_requested(&self) -> Option<(usize, usize)> {
        let m = self.m();
        if m.ol_flags & TX_IPV4_CKSUM_FLAGS != TX_IPV4_CKSUM_FLAGS {
            return None;
        }
        // SAFETY: the union holds a plain u64 (bitfields over it); any bit pattern is valid.
        let tx = unsafe { m.__bindgen_anon_3.tx_offload };
        Some(((tx & 0x7f) as usize, ((tx >> 7) & 0x1ff) as usize))
    }
}

/// The mbuf flags requesting IPv4 header checksum offload (rte_mbuf_core.h).
pub const TX_IPV4_CKSUM_FLAGS: u64 = ffi::RTE_MBUF_F_TX_IPV4 | ffi::RTE_MBUF_F_TX_IP_CKSUM;

/// The mbuf's `tx_offload` word for these header lengths, as `rte_mbuf_tx_offload` packs it
/// (l2_len: bits 0-6, l3_len: bits 7-15, every other length 0); `None` when they do not fit.
pub fn tx_offload_lengths(l2_len: usize, l3_len: usize) -> Option<u64> {
    if l2_len >= 1 << 7 || l3_len >= 1 << 9 {
        return None;
    }
    Some(l2_len as u64 | (l3_len as u64) << 7)
}

impl Drop for Mbuf {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: we own the mbuf (linear ownership), so this is its only free.
        unsafe { ffi::rte_pktmbuf_free(self.raw.as_ptr()) }
    }
}

/// A fixed-capacity array of owned mbufs, the unit of RX, TX and ring transfer. Lives on the
/// stack or in per-core state; never allocates. Dropping it frees the mbufs it still holds.
pub struct Burst {
    ptrs: [*mut ffi::rte_mbuf; BURST_SIZE],
    len: usize,
}

// SAFETY: the burst exclusively owns its mbufs (see Mbuf's Send).
unsafe impl Send for Burst {}

impl Default for Burst {
    fn default() -> Self {
        Self::new()
    }
}

impl Burst {
    pub const fn new() -> Burst {
        Burst {
            ptrs: [std::ptr::null_mut(); BURST_SIZE],
            len: 0,
        }
    }

    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline(always)]
    pub fn is_full(&self) -> bool {
        self.len == BURST_SIZE
    }

    /// Appends an mbuf; gives it back if the burst is full.
    #[inline(always)]
    pub fn push(&mut self, m: Mbuf) -> std::result::Result<(), Mbuf> {
        if self.len == BURST_SIZE {
            return Err(m);
        }
        self.ptrs[self.len] = m.into_raw();
        self.len += 1;
        Ok(())
    }

    /// Takes the mbufs out in order, leaving the burst empty.
    #[inline(always)]
    pub fn drain(&mut self) -> Drain<'_> {
        let len = self.len;
        self.len = 0;
        Drain {
            burst: self,
            next: 0,
            end: len,
        }
    }

    /// Data address of packet `i` (for prefetching ahead), or null.
    #[inline(always)]
    pub fn data_ptr(&self, i: usize) -> *const u8 {
        if i >= self.len {
            return std::ptr::null();
        }
        // SAFETY: slots below len hold valid owned mbufs; only header fields are read.
        let m = unsafe { &*self.ptrs[i] };
        (m.buf_addr as *const u8).wrapping_add(m.data_off as usize)
    }

    /// Prefetches every held mbuf's header line, then every packet's first data line: for
    /// mbufs last written by another core (handed over on a ring), whose lines are all cold
    /// here, so that their misses overlap instead of stalling packet by packet.
    #[inline(always)]
    pub fn prefetch_all(&self) {
        for p in &self.ptrs[..self.len] {
            super::prefetch(*p as *const u8);
        }
        for i in 0..self.len {
            super::prefetch(self.data_ptr(i));
        }
    }

    /// Raw slot array for FFI bursts: (pointer to first free slot, free count).
    pub(crate) fn spare_raw(&mut self) -> (*mut *mut ffi::rte_mbuf, usize) {
        // SAFETY (of later use): the caller writes at most the returned count of owned mbufs.
        (self.ptrs[self.len..].as_mut_ptr(), BURST_SIZE - self.len)
    }

    /// Records that `n` slots after len were filled by an FFI call.
    ///
    /// # Safety
    /// The `n` slots following the current length must now hold valid mbufs owned by nobody else.
    pub(crate) unsafe fn commit(&mut self, n: usize) {
        debug_assert!(self.len + n <= BURST_SIZE);
        self.len += n;
    }

    /// Raw pointer array of the held mbufs for FFI bursts.
    pub(crate) fn filled_raw(&mut self) -> (*mut *mut ffi::rte_mbuf, usize) {
        (self.ptrs.as_mut_ptr(), self.len)
    }

    /// Removes the first `n` mbufs after an FFI call took ownership of them; the rest move to
    /// the front, in order.
    ///
    /// # Safety
    /// The first `n` mbufs must have been consumed (freed or owned elsewhere) by the caller.
    pub(crate) unsafe fn consumed_front(&mut self, n: usize) {
        let n = n.min(self.len);
        self.ptrs.copy_within(n..self.len, 0);
        self.len -= n;
    }
}

impl Drop for Burst {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: slots below len hold owned mbufs; free them in one call.
            unsafe { ffi::rte_pktmbuf_free_bulk(self.ptrs.as_mut_ptr(), self.len as u32) };
            self.len = 0;
        }
    }
}

/// Iterator moving the mbufs out of a [`Burst`]; mbufs not taken are freed when it drops.
pub struct Drain<'a> {
    burst: &'a mut Burst,
    next: usize,
    end: usize,
}

impl Iterator for Drain<'_> {
    type Item = Mbuf;

    #[inline(always)]
    fn next(&mut self) -> Option<Mbuf> {
        if self.next >= self.end {
            return None;
        }
        let p = self.burst.ptrs[self.next];
        self.next += 1;
        // SAFETY: the slot held an owned mbuf that the burst no longer counts (len was reset).
        unsafe { Mbuf::from_raw(p) }
    }
}

impl Drain<'_> {
    /// Data address of the packet `ahead` positions after the next one (for prefetching).
    #[inline(always)]
    pub fn peek_data_ptr(&self, ahead: usize) -> *const u8 {
        let i = self.next + ahead;
        if i >= self.end {
            return std::ptr::null();
        }
        // SAFETY: slots in next..end still hold owned mbufs not yet handed out.
        let m = unsafe { &*self.burst.ptrs[i] };
        (m.buf_addr as *const u8).wrapping_add(m.data_off as usize)
    }
}

impl Drop for Drain<'_> {
    fn drop(&mut self) {
        for i in self.next..self.end {
            // SAFETY: slots in next..end were never handed out; free them once.
            unsafe { ffi::rte_pktmbuf_free(self.burst.ptrs[i]) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tx_offload_lengths_pack_as_dpdk() {
        // rte_mbuf_tx_offload(l2, l3, 0, 0, 0, 0, 0) = l2 | l3 << 7.
        assert_eq!(tx_offload_lengths(14, 20), Some(14 | 20 << 7));
        assert_eq!(tx_offload_lengths(127, 511), Some(0xffff));
        assert_eq!(tx_offload_lengths(128, 20), None);
        assert_eq!(tx_offload_lengths(14, 512), None);
        assert_eq!(TX_IPV4_CKSUM_FLAGS, (1 << 54) | (1 << 55));
    }
}
