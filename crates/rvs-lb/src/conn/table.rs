//! The [`ConnTable`] itself: construction, the index (hashing, bucket chains), lookups, and
//! creating connections and templates.

use super::entry::{secs_to_ticks, tick_of, Conn, NewConn, F_INVALID, F_TEMPLATE, F_USED, NIL};
use super::wheel::{TEMPLATE_LINGER_SECS, WHEEL_SLOTS};
use super::DestAcct;
use crate::config::{Timeouts, MAX_DESTS};
use crate::stats::CoreStats;
use crate::tcp_state::{TcpState, N_TCP_STATES};
use crate::Time;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// Largest supported capacity (indexes are u32 with `NIL` reserved).
pub const MAX_CAPACITY: usize = 1 << 30;

/// A hint applied to the memory of a large preallocated table before it is first touched:
/// `(start, bytes)`. The dataplane passes one asking the kernel for transparent huge pages, so
/// that lookups in a table of millions of entries do not also miss the TLB on 4 KiB pages.
/// `lb` itself never calls the OS.
#[derive(Clone, Copy)]
pub struct MemAdvice(pub fn(*mut u8, usize));

impl std::fmt::Debug for MemAdvice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemAdvice")
    }
}

impl PartialEq for MemAdvice {
    fn eq(&self, o: &Self) -> bool {
        // Same function, same advice.
        self.0 as usize == o.0 as usize
    }
}

impl Eq for MemAdvice {}

/// A vector of `n` copies of `fill` whose memory got `advice` before being written.
fn prealloc<T: Copy>(n: usize, fill: T, advice: Option<MemAdvice>) -> Vec<T> {
    let mut v = Vec::with_capacity(n);
    if let Some(a) = advice {
        (a.0)(v.as_mut_ptr() as *mut u8, n * std::mem::size_of::<T>());
    }
    v.resize(n, fill);
    v
}

/// The connection table of one worker core.
pub struct ConnTable {
    pub(super) entries: Vec<Conn>,
    pub(super) buckets: Vec<u32>,
    pub(super) bucket_mask: u32,
    pub(super) seed: u64,
    pub(super) free_head: u32,
    pub(super) len: usize,
    pub(super) wheel: Vec<u32>,
    /// Next tick to process.
    pub(super) wheel_pos: u32,
    pub(super) started: bool,
    pub(super) dests: Vec<DestAcct>,
    pub(super) tcp_ticks: [u32; N_TCP_STATES],
    pub(super) udp_ticks: u32,
    pub(super) linger_ticks: u32,
    pub(super) stats: Arc<CoreStats>,
}

impl ConnTable {
    /// Preallocates everything for `capacity` entries (connections plus templates), clamped to
    /// 1..=[`MAX_CAPACITY`]. `seed` keys the index hash.
    pub fn new(capacity: usize, seed: u64, stats: Arc<CoreStats>) -> ConnTable {
        Self::with_advice(capacity, seed, stats, None)
    }

    /// As [`ConnTable::new`], applying `advice` to the entry and bucket arrays first.
    pub fn with_advice(
        capacity: usize,
        seed: u64,
        stats: Arc<CoreStats>,
        advice: Option<MemAdvice>,
    ) -> ConnTable {
        let cap = capacity.clamp(1, MAX_CAPACITY);
        let nb = cap.next_power_of_two();
        let mut entries = prealloc(cap, Conn::EMPTY, advice);
        for (i, e) in entries.iter_mut().enumerate() {
            e.hash_next = if i + 1 < cap { (i + 1) as u32 } else { NIL };
        }
        let mut t = ConnTable {
            entries,
            buckets: prealloc(nb, NIL, advice),
            bucket_mask: (nb - 1) as u32,
            seed: seed ^ 0x5851_F42D_4C95_7F2D,
            free_head: 0,
            len: 0,
            wheel: vec![NIL; WHEEL_SLOTS],
            wheel_pos: 0,
            started: false,
            dests: vec![DestAcct::default(); MAX_DESTS],
            tcp_ticks: [0; N_TCP_STATES],
            udp_ticks: 0,
            linger_ticks: secs_to_ticks(TEMPLATE_LINGER_SECS),
            stats,
        };
        t.set_timeouts(&Timeouts::default());
        t
    }

    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn free_entries(&self) -> usize {
        self.entries.len() - self.len
    }

    /// Bytes of the preallocated structures (entries, index, wheel).
    pub fn memory_bytes(&self) -> usize {
        self.entries.len() * std::mem::size_of::<Conn>()
            + self.buckets.len() * std::mem::size_of::<u32>()
            + self.wheel.len() * std::mem::size_of::<u32>()
    }

    /// Timeouts for state changes from now on (existing timers are not shortened, as in the
    /// kernel where `--set` only affects later transitions).
    pub fn set_timeouts(&mut self, t: &Timeouts) {
        for (tk, s) in self.tcp_ticks.iter_mut().zip(t.tcp.iter()) {
            *tk = secs_to_ticks(*s);
        }
        self.udp_ticks = secs_to_ticks(t.udp);
    }

    #[inline]
    pub fn get(&self, i: u32) -> Option<&Conn> {
        self.entries
            .get(i as usize)
            .filter(|e| e.flags & F_USED != 0)
    }

    #[inline]
    fn hash(&self, proto: u8, caddr: u32, cport: u16) -> u32 {
        let x = ((caddr as u64) << 32) | ((cport as u64) << 16) | proto as u64;
        let mut h = (x ^ self.seed).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        h ^= h >> 29;
        h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        ((h >> 32) as u32) & self.bucket_mask
    }

    /// The index bucket a lookup of this client endpoint starts from. With
    /// [`ConnTable::bucket_ref`] and [`ConnTable::chain_head`] it lets the dataplane prefetch the
    /// two dependent loads of a lookup for a whole burst before processing any packet of it.
    #[inline]
    pub fn bucket_of(&self, proto: u8, caddr: u32, cport: u16) -> u32 {
        self.hash(proto, caddr, cport)
    }

    /// The bucket word itself (its address is what to prefetch first).
    #[inline]
    pub fn bucket_ref(&self, b: u32) -> Option<&u32> {
        self.buckets.get(b as usize)
    }

    /// The first entry of a bucket's chain (read the bucket, so prefetch that first).
    #[inline]
    pub fn chain_head(&self, b: u32) -> Option<&Conn> {
        self.entries.get(self.bucket_head(b) as usize)
    }

    /// The entry the next `create` will use.
    #[inline]
    pub fn next_free(&self) -> Option<&Conn> {
        self.entries.get(self.free_head as usize)
    }

    #[inline]
    fn bucket_head(&self, b: u32) -> u32 {
        self.buckets.get(b as usize).copied().unwrap_or(NIL)
    }

    /// Walks the chain for the client endpoint and returns the first live entry satisfying
    /// `want`, freeing entries found past their expiry on the way.
    #[inline]
    fn find(
        &mut self,
        proto: u8,
        caddr: u32,
        cport: u16,
        now: Time,
        want: impl Fn(&Conn) -> bool,
    ) -> Option<u32> {
        let now_t = tick_of(now);
        let b = self.hash(proto, caddr, cport);
        let mut i = self.bucket_head(b);
        while i != NIL {
            let e = self.entries.get(i as usize)?;
            let next = e.hash_next;
            if e.caddr == caddr && e.cport == cport && e.proto == proto && want(e) {
                if self.expire_if_due(i, now_t) {
                    // Freeing may also have freed a template in this chain: walk again from
                    // the head (each restart frees an entry, so this ends).
                    i = self.bucket_head(b);
                    continue;
                }
                return Some(i);
            }
            i = next;
        }
        None
    }

    /// Client -> server lookup: `<proto, caddr, cport, vaddr, vport>`.
    pub fn lookup_in(
        &mut self,
        proto: u8,
        caddr: Ipv4Addr,
        cport: u16,
        vaddr: Ipv4Addr,
        vport: u16,
        now: Time,
    ) -> Option<u32> {
        let va = u32::from(vaddr);
        self.find(proto, u32::from(caddr), cport, now, |e| {
            e.vaddr == va && e.vport == vport && e.flags & F_TEMPLATE == 0
        })
    }

    /// Server -> client lookup: `<proto, daddr, dport, caddr, cport>`.
    pub fn lookup_out(
        &mut self,
        proto: u8,
        daddr: Ipv4Addr,
        dport: u16,
        caddr: Ipv4Addr,
        cport: u16,
        now: Time,
    ) -> Option<u32> {
        let da = u32::from(daddr);
        self.find(proto, u32::from(caddr), cport, now, |e| {
            e.daddr == da && e.dport == dport && e.flags & F_TEMPLATE == 0
        })
    }

    /// Valid persistence template `<proto, caddr&mask, 0, vaddr, vport>`.
    pub fn lookup_template(
        &mut self,
        proto: u8,
        cnet: Ipv4Addr,
        vaddr: Ipv4Addr,
        vport: u16,
        now: Time,
    ) -> Option<u32> {
        let va = u32::from(vaddr);
        self.find(proto, u32::from(cnet), 0, now, |e| {
            e.vaddr == va && e.vport == vport && e.flags & (F_TEMPLATE | F_INVALID) == F_TEMPLATE
        })
    }

    /// Creates a connection (bound inactive; the caller then applies the first state
    /// transition) or, with `template_timeout = Some(secs)`, a persistence template.
    /// `None` when the table is full: nothing else is touched.
    pub fn create(&mut self, n: &NewConn, template_timeout: Option<u32>, now: Time) -> Option<u32> {
        let i = self.free_head;
        let now_t = tick_of(now);
        self.start(now_t);
        let template = template_timeout.is_some();
        let timeout = match (template_timeout, n.proto) {
            (Some(secs), _) => secs_to_ticks(secs),
            (None, 6) => self.tcp_ticks[TcpState::None.index()],
            (None, _) => self.udp_ticks,
        };
        let b = self.hash(n.proto, u32::from(n.caddr), n.cport);
        let head = self.bucket_head(b);
        let e = self.entries.get_mut(i as usize)?;
        self.free_head = e.hash_next;
        *e = Conn {
            caddr: u32::from(n.caddr),
            vaddr: u32::from(n.vaddr),
            daddr: u32::from(n.daddr),
            cport: n.cport,
            vport: n.vport,
            dport: n.dport,
            dest: n.dest.0,
            svc: n.svc.0,
            proto: n.proto,
            state: TcpState::None as u8,
            flags: F_USED | if template { F_TEMPLATE } else { 0 },
            _pad: 0,
            slot: 0,
            hash_next: head,
            timer_prev: NIL,
            timer_next: NIL,
            expires: now_t.wrapping_add(timeout),
            timeout,
            link: if template { 0 } else { NIL },
        };
        if let Some(h) = self.buckets.get_mut(b as usize) {
            *h = i;
        }
        self.len += 1;
        self.bind(i);
        self.wheel_insert(i);
        self.stats.engine.table_entries.set(self.len as u64);
        if template {
            self.stats.engine.templates_created.inc();
        } else {
            self.stats.engine.conns_created.inc();
        }
        Some(i)
    }

    /// `ip_vs_control_add`: `conn` is controlled by `template`.
    pub fn control_add(&mut self, conn: u32, template: u32) {
        let ok = matches!((self.get(conn), self.get(template)),
            (Some(c), Some(t)) if !c.is_template() && c.link == NIL && t.is_template());
        if ok {
            self.entries[conn as usize].link = template;
            self.entries[template as usize].link += 1;
        }
    }

    /// Invalidates a template (`ip_vs_check_template` failure): lookups no longer find it; it
    /// stays until it controls nothing and its timer runs out.
    pub fn invalidate_template(&mut self, i: u32) {
        if let Some(e) = self.entries.get_mut(i as usize) {
            if e.flags & (F_USED | F_TEMPLATE) == F_USED | F_TEMPLATE {
                e.flags |= F_INVALID;
            }
        }
    }

    pub(super) fn hash_unlink(&mut self, i: u32) {
        let Some(e) = self.entries.get(i as usize) else {
            return;
        };
        let b = self.hash(e.proto, e.caddr, e.cport);
        let next = e.hash_next;
        let mut cur = self.bucket_head(b);
        if cur == i {
            if let Some(h) = self.buckets.get_mut(b as usize) {
                *h = next;
            }
            return;
        }
        while cur != NIL {
            let n = self.entries[cur as usize].hash_next;
            if n == i {
                self.entries[cur as usize].hash_next = next;
                return;
            }
            cur = n;
        }
    }
}
