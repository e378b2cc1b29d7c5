//! The per-core connection table.
//!
//! Layout (measured by the tests below):
//! - entries: one preallocated `Vec<Conn>`; `Conn` is exactly one 64-byte cache line. Free entries
//!   form a singly linked free list, so creating or freeing a connection allocates nothing.
//! - index: a power-of-two array of `u32` bucket heads (>= capacity) with chains threaded through
//!   the entries. Both directions use ONE index keyed on the client endpoint
//!   `(proto, caddr, cport)` (as the kernel does): a client packet's source and a real server's
//!   reply's destination are that endpoint; the full keys are then compared in the entry
//!   (inbound: vaddr, vport; outbound: daddr, dport). So a connection costs 64 bytes plus 4..8
//!   bytes of bucket array: 68 bytes at a power-of-two capacity, at most 72.
//! - expiry: a timer wheel of [`WHEEL_SLOTS`] slots of [`TICK_NANOS`] each (~1100 s span) with
//!   doubly linked slot lists. Refreshing a connection only rewrites `expires` (lazy): when its
//!   slot comes round and it is not due, it is moved to the right slot. An entry whose new expiry
//!   is earlier than its slot (e.g. ESTABLISHED -> CLOSE) is moved at once so counts drop on time.
//!   [`ConnTable::tick`] does bounded work per call. Lookups also free entries found past their
//!   expiry, so behaviour does not depend on how often `tick` runs.
//!
//! Accounting follows ip_vs_conn.c: a new connection is bound inactive (`inactconns`), TCP state
//! changes move it between active and inactive, templates count only in `persistconns`;
//! OVERLOAD is set at bind when `active + inactive >= u_threshold` and cleared at unbind with the
//! kernel's hysteresis. Thresholds here are this core's share (see the engine).

use crate::config::{DestId, ServiceId, Timeouts, MAX_DESTS};
use crate::stats::CoreStats;
use crate::tcp_state::{next_state, TcpDir, TcpState, N_TCP_STATES, UDP_STATE_NAME};
use crate::{Time, NANOS_PER_SEC};
use std::net::Ipv4Addr;
use std::sync::Arc;

/// "No entry".
pub const NIL: u32 = u32::MAX;
/// log2 of the timer tick in nanoseconds (~134 ms).
pub const TICK_SHIFT: u32 = 27;
pub const TICK_NANOS: u64 = 1 << TICK_SHIFT;
/// Timer wheel slots (power of two).
pub const WHEEL_SLOTS: usize = 8192;
/// Largest supported capacity (indexes are u32 with `NIL` reserved).
pub const MAX_CAPACITY: usize = 1 << 30;
/// A template whose timer fires while it still controls connections is re-armed with this
/// (`ip_vs_conn_expire`: `cp->timeout = 60*HZ`).
pub const TEMPLATE_LINGER_SECS: u32 = 60;

const SLOT_MASK: u32 = WHEEL_SLOTS as u32 - 1;

/// Entry flags.
const F_USED: u8 = 0x01;
const F_TEMPLATE: u8 = 0x02;
const F_INACTIVE: u8 = 0x04;
/// An invalidated template: kept for the connections it controls, never found by lookups.
const F_INVALID: u8 = 0x08;

/// Timer tick of a time.
#[inline]
pub fn tick_of(now: Time) -> u32 {
    (now >> TICK_SHIFT) as u32
}

/// Seconds to ticks, rounded up (a timeout never fires early).
pub fn secs_to_ticks(secs: u32) -> u32 {
    let t = (secs as u64 * NANOS_PER_SEC).div_ceil(TICK_NANOS);
    t.min(i32::MAX as u64) as u32
}

/// `a` is strictly later than `b` on the wrapping tick clock.
#[inline]
fn later(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// One connection or persistence template: one cache line.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
pub struct Conn {
    pub caddr: u32,
    pub vaddr: u32,
    pub daddr: u32,
    pub cport: u16,
    pub vport: u16,
    pub dport: u16,
    pub dest: u16,
    pub svc: u16,
    /// IP protocol; 0 (IPPROTO_IP) for fwmark templates.
    pub proto: u8,
    /// `TcpState as u8` for TCP, 0 otherwise.
    pub state: u8,
    flags: u8,
    _pad: u8,
    /// Wheel slot the entry is linked in.
    slot: u16,
    hash_next: u32,
    timer_prev: u32,
    timer_next: u32,
    /// Tick at which the entry expires.
    expires: u32,
    /// Current timeout in ticks (from the state, or the template's timeout).
    timeout: u32,
    /// Connection: index of its controlling template (NIL if none). Template: `n_control`.
    link: u32,
}

impl Conn {
    const EMPTY: Conn = Conn {
        caddr: 0,
        vaddr: 0,
        daddr: 0,
        cport: 0,
        vport: 0,
        dport: 0,
        dest: 0,
        svc: 0,
        proto: 0,
        state: 0,
        flags: 0,
        _pad: 0,
        slot: 0,
        hash_next: NIL,
        timer_prev: NIL,
        timer_next: NIL,
        expires: 0,
        timeout: 0,
        link: NIL,
    };

    pub fn is_template(&self) -> bool {
        self.flags & F_TEMPLATE != 0
    }

    pub fn is_active(&self) -> bool {
        self.flags & (F_INACTIVE | F_TEMPLATE) == 0
    }

    pub fn tcp_state(&self) -> TcpState {
        TcpState::from_u8(self.state)
    }

    pub fn dest_id(&self) -> DestId {
        DestId(self.dest)
    }

    pub fn svc_id(&self) -> ServiceId {
        ServiceId(self.svc)
    }

    /// Index of the controlling template, if any.
    pub fn control(&self) -> Option<u32> {
        if self.is_template() || self.link == NIL {
            None
        } else {
            Some(self.link)
        }
    }

    /// Connections a template controls.
    pub fn n_control(&self) -> u32 {
        if self.is_template() {
            self.link
        } else {
            0
        }
    }

    /// The name ipvsadm shows in the state column.
    pub fn state_name(&self) -> &'static str {
        match self.proto {
            6 if self.is_template() => TcpState::None.name(),
            6 => self.tcp_state().name(),
            17 => UDP_STATE_NAME,
            _ => "NONE",
        }
    }
}

/// What a new entry is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewConn {
    pub proto: u8,
    pub caddr: Ipv4Addr,
    pub cport: u16,
    pub vaddr: Ipv4Addr,
    pub vport: u16,
    pub daddr: Ipv4Addr,
    pub dport: u16,
    pub dest: DestId,
    pub svc: ServiceId,
}

/// One line of a connection listing (`ipvsadm -L -c`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInfo {
    /// 6, 17, or 0 for a fwmark template (listed as "IP").
    pub proto: u8,
    pub caddr: Ipv4Addr,
    pub cport: u16,
    /// For a fwmark template: the mark, as the kernel shows it (`htonl(fwmark)`).
    pub vaddr: Ipv4Addr,
    pub vport: u16,
    pub daddr: Ipv4Addr,
    pub dport: u16,
    pub state: &'static str,
    pub expires_secs: u32,
    pub is_template: bool,
    pub n_control: u32,
    pub dest: DestId,
    pub svc: ServiceId,
}

/// This core's connection accounting for one destination.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DestAcct {
    pub active: u32,
    pub inact: u32,
    pub persist: u32,
    /// Entries bound (connections + templates).
    pub refs: u32,
    pub overloaded: bool,
    /// This core's share of the thresholds.
    pub u_threshold: u32,
    pub l_threshold: u32,
}

impl DestAcct {
    fn total(&self) -> u32 {
        self.active + self.inact
    }
}

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
    entries: Vec<Conn>,
    buckets: Vec<u32>,
    bucket_mask: u32,
    seed: u64,
    free_head: u32,
    len: usize,
    wheel: Vec<u32>,
    /// Next tick to process.
    wheel_pos: u32,
    started: bool,
    dests: Vec<DestAcct>,
    tcp_ticks: [u32; N_TCP_STATES],
    udp_ticks: u32,
    linger_ticks: u32,
    stats: Arc<CoreStats>,
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

    pub fn dest_acct(&self, id: DestId) -> DestAcct {
        self.dests.get(id.index()).copied().unwrap_or_default()
    }

    /// Sets this core's thresholds for a destination. As `__ip_vs_update_dest`, OVERLOAD is
    /// cleared when the new upper threshold is 0 or above the old one.
    pub fn configure_dest(&mut self, id: DestId, u_threshold: u32, l_threshold: u32) {
        if let Some(a) = self.dests.get_mut(id.index()) {
            if u_threshold == 0 || u_threshold > a.u_threshold {
                a.overloaded = false;
            }
            a.u_threshold = u_threshold;
            a.l_threshold = l_threshold;
        }
    }

    /// A reallocated dest id starts afresh (no entry can reference it: see config.rs).
    pub fn reset_dest(&mut self, id: DestId) {
        if let Some(a) = self.dests.get_mut(id.index()) {
            *a = DestAcct::default();
        }
        self.stats.reset_dest(id);
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

    fn start(&mut self, now_t: u32) {
        if !self.started {
            self.started = true;
            self.wheel_pos = now_t;
        }
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

    /// Restarts the entry's timer with its current timeout (`ip_vs_conn_put`).
    pub fn touch(&mut self, i: u32, now: Time) {
        let now_t = tick_of(now);
        let Some(e) = self
            .entries
            .get_mut(i as usize)
            .filter(|e| e.flags & F_USED != 0)
        else {
            return;
        };
        e.expires = now_t.wrapping_add(e.timeout);
        // The slot fires at the first tick >= wheel_pos with its residue.
        let fire = self
            .wheel_pos
            .wrapping_add((e.slot as u32).wrapping_sub(self.wheel_pos) & SLOT_MASK);
        if later(fire, e.expires) {
            self.wheel_unlink(i);
            self.wheel_insert(i);
        }
    }

    /// TCP state transition with ActiveConn/InActConn accounting (`set_tcp_state`), then the
    /// timeout of the new state. Returns the new state.
    pub fn tcp_transition(&mut self, i: u32, dir: TcpDir, tcp_flags: u8) -> TcpState {
        let Some(e) = self
            .entries
            .get_mut(i as usize)
            .filter(|e| e.flags & F_USED != 0)
        else {
            return TcpState::None;
        };
        let old = TcpState::from_u8(e.state);
        let new = next_state(old, dir, tcp_flags);
        let mut moved: Option<bool> = None;
        if new != old && e.flags & F_TEMPLATE == 0 {
            if e.flags & F_INACTIVE == 0 && !new.is_active() {
                e.flags |= F_INACTIVE;
                moved = Some(false);
            } else if e.flags & F_INACTIVE != 0 && new.is_active() {
                e.flags &= !F_INACTIVE;
                moved = Some(true);
            }
        }
        e.state = new as u8;
        e.timeout = self.tcp_ticks[new.index()];
        let dest = e.dest;
        if let (Some(to_active), Some(a)) = (moved, self.dests.get_mut(dest as usize)) {
            if to_active {
                a.active += 1;
                a.inact = a.inact.saturating_sub(1);
            } else {
                a.active = a.active.saturating_sub(1);
                a.inact += 1;
            }
            self.publish(dest);
        }
        new
    }

    fn bind(&mut self, i: u32) {
        let Some(e) = self.entries.get_mut(i as usize) else {
            return;
        };
        let template = e.flags & F_TEMPLATE != 0;
        if !template {
            // New connections inherit IP_VS_CONN_F_INACTIVE from the dest's conn_flags.
            e.flags |= F_INACTIVE;
        }
        let dest = e.dest;
        if let Some(a) = self.dests.get_mut(dest as usize) {
            a.refs += 1;
            if template {
                a.persist += 1;
            } else {
                a.inact += 1;
            }
            if a.u_threshold != 0 && a.total() >= a.u_threshold {
                a.overloaded = true;
            }
        }
        self.publish(dest);
    }

    fn unbind(&mut self, dest: u16, flags: u8) {
        if let Some(a) = self.dests.get_mut(dest as usize) {
            a.refs = a.refs.saturating_sub(1);
            if flags & F_TEMPLATE != 0 {
                a.persist = a.persist.saturating_sub(1);
            } else if flags & F_INACTIVE != 0 {
                a.inact = a.inact.saturating_sub(1);
            } else {
                a.active = a.active.saturating_sub(1);
            }
            if a.l_threshold != 0 {
                if a.total() < a.l_threshold {
                    a.overloaded = false;
                }
            } else if a.u_threshold != 0 {
                if (a.total() as u64) * 4 < (a.u_threshold as u64) * 3 {
                    a.overloaded = false;
                }
            } else {
                a.overloaded = false;
            }
        }
        self.publish(dest);
    }

    fn publish(&self, dest: u16) {
        if let (Some(a), Some(c)) = (self.dests.get(dest as usize), self.stats.dest(DestId(dest))) {
            c.activeconns.set(a.active as u64);
            c.inactconns.set(a.inact as u64);
            c.persistconns.set(a.persist as u64);
            c.refcnt.set(a.refs as u64);
        }
    }

    fn wheel_insert(&mut self, i: u32) {
        let base = self.wheel_pos;
        let Some(e) = self.entries.get_mut(i as usize) else {
            return;
        };
        let d = e.expires.wrapping_sub(base);
        let d = if (d as i32) < 0 { 0 } else { d.min(SLOT_MASK) };
        let slot = base.wrapping_add(d) & SLOT_MASK;
        let head = self.wheel[slot as usize];
        e.slot = slot as u16;
        e.timer_prev = NIL;
        e.timer_next = head;
        if head != NIL {
            self.entries[head as usize].timer_prev = i;
        }
        self.wheel[slot as usize] = i;
    }

    fn wheel_unlink(&mut self, i: u32) {
        let Some(e) = self.entries.get(i as usize) else {
            return;
        };
        let (prev, next, slot) = (e.timer_prev, e.timer_next, e.slot as usize);
        if prev == NIL {
            if let Some(h) = self.wheel.get_mut(slot) {
                if *h == i {
                    *h = next;
                }
            }
        } else {
            self.entries[prev as usize].timer_next = next;
        }
        if next != NIL {
            self.entries[next as usize].timer_prev = prev;
        }
        let e = &mut self.entries[i as usize];
        e.timer_prev = NIL;
        e.timer_next = NIL;
    }

    fn hash_unlink(&mut self, i: u32) {
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

    /// Frees an entry now. A template that still controls connections is not freed: it is
    /// invalidated and left to its timer.
    pub fn expire_now(&mut self, i: u32) -> bool {
        match self.get(i) {
            Some(e) if e.n_control() > 0 => {
                self.invalidate_template(i);
                false
            }
            Some(_) => {
                self.free(i);
                true
            }
            None => false,
        }
    }

    fn free(&mut self, i: u32) {
        self.hash_unlink(i);
        self.wheel_unlink(i);
        let e = self.entries[i as usize];
        let mut orphan = None;
        if let Some(t) = e.control() {
            if let Some(te) = self.entries.get_mut(t as usize) {
                te.link = te.link.saturating_sub(1);
                // An invalidated template is never found again: once it controls nothing it
                // has no purpose, so it goes now rather than at its timer (this lets a removed
                // server's references drop to zero promptly).
                if te.link == 0 && te.flags & F_INVALID != 0 {
                    orphan = Some(t);
                }
            }
        }
        self.unbind(e.dest, e.flags);
        let free_head = self.free_head;
        let slot = &mut self.entries[i as usize];
        *slot = Conn::EMPTY;
        slot.hash_next = free_head;
        self.free_head = i;
        self.len = self.len.saturating_sub(1);
        self.stats.engine.conns_expired.inc();
        self.stats.engine.table_entries.set(self.len as u64);
        if let Some(t) = orphan {
            // A template has no control of its own, so this recursion is one level deep.
            self.free(t);
        }
    }

    /// `ip_vs_conn_expire` when due: frees the entry, or re-arms a template that still controls
    /// connections. Returns whether it was freed.
    fn expire_if_due(&mut self, i: u32, now_t: u32) -> bool {
        let Some(e) = self.entries.get(i as usize) else {
            return false;
        };
        if later(e.expires, now_t) {
            return false;
        }
        if e.n_control() > 0 {
            let linger = self.linger_ticks;
            let e = &mut self.entries[i as usize];
            e.timeout = linger;
            e.expires = now_t.wrapping_add(linger);
            return false;
        }
        self.free(i);
        true
    }

    /// Runs the timer wheel up to `now`, doing at most `budget` units of work (one per slot
    /// visited and one per entry examined). Returns the number of entries freed.
    pub fn tick(&mut self, now: Time, budget: usize) -> usize {
        let now_t = tick_of(now);
        self.start(now_t);
        // After a long pause every slot is visited once, not once per missed rotation.
        if now_t.wrapping_sub(self.wheel_pos) as i32 >= WHEEL_SLOTS as i32 {
            self.wheel_pos = now_t.wrapping_sub(SLOT_MASK);
        }
        let mut budget = budget;
        let mut freed = 0;
        while budget > 0 && !later(self.wheel_pos, now_t) {
            budget -= 1;
            let slot = (self.wheel_pos & SLOT_MASK) as usize;
            let head = self.wheel[slot];
            if head == NIL {
                self.wheel_pos = self.wheel_pos.wrapping_add(1);
                continue;
            }
            self.wheel_unlink(head);
            if self.expire_if_due(head, now_t) {
                freed += 1;
            } else {
                // Not due (or a re-armed template): file it under its expiry.
                self.wheel_insert(head);
            }
        }
        freed
    }

    /// Expires, in bounded chunks, the entries for which `pred` holds (connections first freed,
    /// templates still controlling connections invalidated). Scans entries from `cursor`;
    /// returns the cursor to continue from, or `None` when the scan is complete.
    pub fn expire_matching(
        &mut self,
        cursor: usize,
        budget: usize,
        pred: impl Fn(&Conn) -> bool,
    ) -> Option<usize> {
        let end = cursor.saturating_add(budget.max(1)).min(self.entries.len());
        for i in cursor..end {
            if let Some(e) = self.get(i as u32) {
                if pred(e) {
                    self.expire_now(i as u32);
                }
            }
        }
        if end >= self.entries.len() {
            None
        } else {
            Some(end)
        }
    }

    /// Appends up to `max` entries starting at slot `cursor` to `out`; returns the cursor to
    /// continue from, or `None` when the table has been walked.
    pub fn list(
        &self,
        cursor: usize,
        max: usize,
        now: Time,
        out: &mut Vec<ConnInfo>,
    ) -> Option<usize> {
        let now_t = tick_of(now);
        let mut taken = 0;
        let mut i = cursor;
        while i < self.entries.len() {
            if taken >= max {
                return Some(i);
            }
            if let Some(e) = self.get(i as u32) {
                let left = e.expires.wrapping_sub(now_t) as i32;
                let secs = (left.max(0) as u64 * TICK_NANOS / NANOS_PER_SEC) as u32;
                out.push(ConnInfo {
                    proto: e.proto,
                    caddr: Ipv4Addr::from(e.caddr),
                    cport: e.cport,
                    vaddr: Ipv4Addr::from(e.vaddr),
                    vport: e.vport,
                    daddr: Ipv4Addr::from(e.daddr),
                    dport: e.dport,
                    state: e.state_name(),
                    expires_secs: secs,
                    is_template: e.is_template(),
                    n_control: e.n_control(),
                    dest: e.dest_id(),
                    svc: e.svc_id(),
                });
                taken += 1;
            }
            i += 1;
        }
        None
    }

    /// Seconds until entry `i` expires (0 if due).
    pub fn expires_in_secs(&self, i: u32, now: Time) -> Option<u32> {
        let e = self.get(i)?;
        let left = e.expires.wrapping_sub(tick_of(now)) as i32;
        Some((left.max(0) as u64 * TICK_NANOS / NANOS_PER_SEC) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp_state::flags::*;

    const S: Time = NANOS_PER_SEC;

    fn table(cap: usize) -> ConnTable {
        ConnTable::new(cap, 42, Arc::new(CoreStats::new(0)))
    }

    fn nc(cport: u16, dest: u16) -> NewConn {
        NewConn {
            proto: 6,
            caddr: Ipv4Addr::new(198, 51, 100, 7),
            cport,
            vaddr: Ipv4Addr::new(192, 0, 2, 1),
            vport: 80,
            daddr: Ipv4Addr::new(10, 0, 0, dest as u8 + 1),
            dport: 8080,
            dest: DestId(dest),
            svc: ServiceId(0),
        }
    }

    fn udp(cport: u16) -> NewConn {
        NewConn {
            proto: 17,
            vport: 53,
            dport: 53,
            ..nc(cport, 0)
        }
    }

    #[test]
    fn size_and_bytes_per_connection() {
        assert_eq!(std::mem::size_of::<Conn>(), 64);
        assert_eq!(std::mem::align_of::<Conn>(), 64);
        let cap = 1 << 16;
        let t = table(cap);
        let wheel = WHEEL_SLOTS * 4;
        assert_eq!(t.memory_bytes() - wheel, cap * 68);
        // Worst case (capacity just above a power of two): < 72 bytes per connection.
        let t = table((1 << 16) + 1);
        let per = (t.memory_bytes() - wheel) as f64 / t.capacity() as f64;
        assert!(per < 72.0, "{per}");
    }

    #[test]
    fn both_directions_find_one_entry() {
        let mut t = table(16);
        let n = nc(40000, 0);
        let i = t.create(&n, None, 0).unwrap();
        assert_eq!(
            t.lookup_in(6, n.caddr, n.cport, n.vaddr, n.vport, 0),
            Some(i)
        );
        assert_eq!(
            t.lookup_out(6, n.daddr, n.dport, n.caddr, n.cport, 0),
            Some(i)
        );
        // Wrong field anywhere: no match.
        assert_eq!(t.lookup_in(17, n.caddr, n.cport, n.vaddr, n.vport, 0), None);
        assert_eq!(
            t.lookup_in(6, n.caddr, n.cport + 1, n.vaddr, n.vport, 0),
            None
        );
        assert_eq!(t.lookup_in(6, n.caddr, n.cport, n.daddr, n.vport, 0), None);
        assert_eq!(t.lookup_out(6, n.daddr, 80, n.caddr, n.cport, 0), None);
        assert_eq!(t.lookup_out(6, n.vaddr, n.dport, n.caddr, n.cport, 0), None);
        // Templates are not connections.
        assert_eq!(t.lookup_template(6, n.caddr, n.vaddr, n.vport, 0), None);
    }

    #[test]
    fn full_table_refuses_new_keeps_old() {
        let mut t = table(4);
        let ids: Vec<u32> = (0..4)
            .map(|p| t.create(&nc(p, 0), None, 0).unwrap())
            .collect();
        assert_eq!(t.create(&nc(99, 0), None, 0), None);
        assert_eq!(t.len(), 4);
        for (p, i) in ids.iter().enumerate() {
            let n = nc(p as u16, 0);
            assert_eq!(
                t.lookup_in(6, n.caddr, n.cport, n.vaddr, n.vport, 0),
                Some(*i)
            );
        }
        assert_eq!(t.dest_acct(DestId(0)).inact, 4);
    }

    #[test]
    fn active_inactive_accounting_follows_tcp_state() {
        let mut t = table(8);
        let i = t.create(&nc(1, 3), None, 0).unwrap();
        let a = t.dest_acct(DestId(3));
        assert_eq!((a.active, a.inact, a.refs), (0, 1, 1));
        assert_eq!(t.tcp_transition(i, TcpDir::Input, SYN), TcpState::SynRecv);
        assert_eq!(
            (t.dest_acct(DestId(3)).active, t.dest_acct(DestId(3)).inact),
            (1, 0)
        );
        t.tcp_transition(i, TcpDir::Output, SYN | ACK);
        t.tcp_transition(i, TcpDir::Input, ACK);
        assert_eq!(t.get(i).unwrap().state_name(), "ESTABLISHED");
        assert_eq!(
            t.tcp_transition(i, TcpDir::Input, FIN | ACK),
            TcpState::CloseWait
        );
        assert_eq!(
            (t.dest_acct(DestId(3)).active, t.dest_acct(DestId(3)).inact),
            (0, 1)
        );
        // Gauges are published to the stats.
        let g = t.stats.dest(DestId(3)).unwrap().gauges();
        assert_eq!((g.activeconns, g.inactconns, g.refcnt), (0, 1, 1));
        t.expire_now(i);
        let a = t.dest_acct(DestId(3));
        assert_eq!((a.active, a.inact, a.refs), (0, 0, 0));
        assert_eq!(t.stats.dest(DestId(3)).unwrap().gauges().refcnt, 0);
    }

    #[test]
    fn udp_expires_after_300s_refreshed_per_packet() {
        let mut t = table(8);
        let n = udp(5000);
        let i = t.create(&n, None, 0).unwrap();
        t.touch(i, 0);
        assert_eq!(t.get(i).unwrap().state_name(), "UDP");
        assert_eq!(t.expires_in_secs(i, 0), Some(300));
        // A packet at 200 s pushes expiry to 500 s.
        t.touch(i, 200 * S);
        t.tick(299 * S, usize::MAX);
        t.tick(499 * S, usize::MAX);
        assert_eq!(t.len(), 1);
        assert_eq!(t.tick(501 * S, usize::MAX), 1);
        assert_eq!(t.len(), 0);
        assert_eq!(
            t.lookup_in(17, n.caddr, n.cport, n.vaddr, n.vport, 501 * S),
            None
        );
        assert_eq!(t.dest_acct(DestId(0)).inact, 0);
    }

    #[test]
    fn shorter_timeout_moves_the_timer() {
        let mut t = table(8);
        let i = t.create(&nc(1, 0), None, 0).unwrap();
        t.tcp_transition(i, TcpDir::Input, SYN);
        t.tcp_transition(i, TcpDir::Input, ACK);
        t.touch(i, 0); // ESTABLISHED: 900 s
        t.tcp_transition(i, TcpDir::Input, RST); // CLOSE: 10 s
        t.touch(i, S);
        assert_eq!(t.tick(10 * S, usize::MAX), 0);
        assert_eq!(t.tick(12 * S, usize::MAX), 1);
        assert!(t.is_empty());
    }

    #[test]
    fn lookup_frees_overdue_entries_without_tick() {
        let mut t = table(8);
        let n = udp(7);
        let i = t.create(&n, None, 0).unwrap();
        t.touch(i, 0);
        assert_eq!(
            t.lookup_in(17, n.caddr, n.cport, n.vaddr, n.vport, 299 * S),
            Some(i)
        );
        assert_eq!(
            t.lookup_in(17, n.caddr, n.cport, n.vaddr, n.vport, 600 * S),
            None
        );
        assert!(t.is_empty());
    }

    #[test]
    fn tick_work_is_bounded() {
        let mut t = table(1000);
        for p in 0..1000 {
            let i = t.create(&udp(p), None, 0).unwrap();
            t.touch(i, 0);
        }
        let mut total = 0;
        let mut calls = 0;
        while total < 1000 {
            let f = t.tick(400 * S, 16);
            assert!(f <= 16);
            total += f;
            calls += 1;
            assert!(calls < 1000, "no progress");
        }
        assert!(t.is_empty());
        assert_eq!(t.free_entries(), 1000);
        // Every entry is reusable afterwards.
        for p in 0..1000 {
            assert!(t.create(&udp(p), None, 400 * S).is_some());
        }
    }

    #[test]
    fn long_pause_and_long_timeouts() {
        let mut t = table(8);
        // A template with a 31-day timeout spans many wheel rotations.
        let tpl = t.create(&nc(0, 1), Some(86400 * 31), 0).unwrap();
        let c = t.create(&udp(9), None, 0).unwrap();
        t.touch(c, 0);
        // Nothing for 10 days, then one tick: the UDP entry goes, the template stays.
        let now = 10 * 86400 * S;
        let mut freed = 0;
        for _ in 0..10 {
            freed += t.tick(now, 4096);
        }
        assert_eq!(freed, 1);
        assert!(t.get(tpl).is_some());
        assert_eq!(t.expires_in_secs(tpl, now), Some(21 * 86400));
        let end = 31 * 86400 * S + 2 * S;
        for d in 11..=31u64 {
            for _ in 0..4 {
                t.tick(d * 86400 * S, 4096);
            }
        }
        for _ in 0..4 {
            t.tick(end, 4096);
        }
        assert!(t.is_empty());
    }

    #[test]
    fn template_lives_while_it_controls() {
        let mut t = table(8);
        let mut tn = nc(0, 2);
        tn.caddr = Ipv4Addr::new(198, 51, 100, 0);
        let tpl = t.create(&tn, Some(60), 0).unwrap();
        let a = t.dest_acct(DestId(2));
        assert_eq!((a.persist, a.inact, a.refs), (1, 0, 1));
        assert_eq!(t.lookup_template(6, tn.caddr, tn.vaddr, 80, 0), Some(tpl));
        let c = t.create(&nc(1234, 2), None, 0).unwrap();
        t.control_add(c, tpl);
        t.tcp_transition(c, TcpDir::Input, SYN);
        t.tcp_transition(c, TcpDir::Input, ACK);
        t.touch(c, 0);
        assert_eq!(t.get(tpl).unwrap().n_control(), 1);
        assert_eq!(t.get(c).unwrap().control(), Some(tpl));
        // The template's 60 s pass; it is kept (re-armed for 60 s) while the connection lives.
        t.tick(100 * S, usize::MAX);
        assert!(t.get(tpl).is_some());
        assert_eq!(
            t.lookup_template(6, tn.caddr, tn.vaddr, 80, 100 * S),
            Some(tpl)
        );
        // expire_now on a controlling template only invalidates it.
        assert!(!t.expire_now(tpl));
        assert_eq!(t.lookup_template(6, tn.caddr, tn.vaddr, 80, 100 * S), None);
        // The connection closes: the invalidated template, now useless, goes with it.
        assert!(t.expire_now(c));
        assert!(t.get(tpl).is_none());
        assert!(t.is_empty());
        assert_eq!(t.tick(200 * S, usize::MAX), 0);
        let a = t.dest_acct(DestId(2));
        assert_eq!((a.persist, a.inact, a.active, a.refs), (0, 0, 0, 0));
    }

    #[test]
    fn valid_template_expires_at_its_timer_after_last_connection() {
        let mut t = table(8);
        let mut tn = nc(0, 2);
        tn.caddr = Ipv4Addr::new(198, 51, 100, 0);
        let tpl = t.create(&tn, Some(60), 0).unwrap();
        let c = t.create(&nc(1, 2), None, 0).unwrap();
        t.control_add(c, tpl);
        t.tcp_transition(c, TcpDir::Input, RST);
        t.touch(c, 0); // CLOSE: 10 s
        assert_eq!(t.tick(20 * S, usize::MAX), 1);
        assert_eq!(t.get(tpl).unwrap().n_control(), 0);
        // Still reusable until its own 60 s run out.
        assert_eq!(
            t.lookup_template(6, tn.caddr, tn.vaddr, 80, 30 * S),
            Some(tpl)
        );
        assert_eq!(t.tick(59 * S, usize::MAX), 0);
        assert_eq!(t.tick(61 * S, usize::MAX), 1);
        assert!(t.is_empty());
    }

    #[test]
    fn lookup_never_returns_a_freed_entry() {
        // A connection and its invalidated template in one chain; the lookup that expires the
        // connection frees both and must not wander into the free list.
        // Same (proto, caddr, cport 0): same bucket.
        let mut t = table(2);
        let n = udp(0);
        let tpl = t.create(&n, Some(600), 0).unwrap();
        let c = t.create(&n, None, 0).unwrap();
        t.touch(c, 0);
        t.control_add(c, tpl);
        t.invalidate_template(tpl);
        assert_eq!(t.lookup_in(17, n.caddr, 0, n.vaddr, n.vport, 400 * S), None);
        assert!(t.is_empty());
        assert_eq!(t.free_entries(), 2);
        assert!(t.create(&n, None, 400 * S).is_some());
        assert!(t.create(&n, Some(60), 400 * S).is_some());
        assert!(t.create(&n, None, 400 * S).is_none());
    }

    #[test]
    fn stale_indexes_are_harmless() {
        let mut t = table(4);
        let i = t.create(&udp(1), None, 0).unwrap();
        assert!(t.expire_now(i));
        t.touch(i, S);
        assert_eq!(t.tcp_transition(i, TcpDir::Input, SYN), TcpState::None);
        assert!(!t.expire_now(i));
        t.control_add(i, i);
        t.invalidate_template(i);
        t.touch(NIL, S);
        assert_eq!(t.tick(1000 * S, usize::MAX), 0);
        assert!(t.is_empty());
        assert_eq!(t.free_entries(), 4);
        for p in 0..4 {
            assert!(t.create(&udp(p), None, 0).is_some());
        }
    }

    #[test]
    fn overload_hysteresis() {
        let mut t = table(64);
        // u=4, l=0: set at total >= 4, cleared at unbind when total*4 < 12, i.e. total <= 2.
        t.configure_dest(DestId(0), 4, 0);
        let ids: Vec<u32> = (0..4)
            .map(|p| t.create(&nc(p, 0), None, 0).unwrap())
            .collect();
        assert!(t.dest_acct(DestId(0)).overloaded);
        t.expire_now(ids[0]);
        assert!(t.dest_acct(DestId(0)).overloaded, "3*4 = 12 is not < 12");
        t.expire_now(ids[1]);
        assert!(!t.dest_acct(DestId(0)).overloaded);
        // With l=2: cleared only when total < 2.
        t.configure_dest(DestId(1), 3, 2);
        let ids: Vec<u32> = (10..13)
            .map(|p| t.create(&nc(p, 1), None, 0).unwrap())
            .collect();
        assert!(t.dest_acct(DestId(1)).overloaded);
        t.expire_now(ids[0]);
        assert!(t.dest_acct(DestId(1)).overloaded);
        t.expire_now(ids[1]);
        assert!(!t.dest_acct(DestId(1)).overloaded);
        // Raising u clears OVERLOAD; lowering does not.
        t.configure_dest(DestId(2), 1, 0);
        t.create(&nc(20, 2), None, 0).unwrap();
        assert!(t.dest_acct(DestId(2)).overloaded);
        t.configure_dest(DestId(2), 1, 0);
        assert!(t.dest_acct(DestId(2)).overloaded);
        t.configure_dest(DestId(2), 5, 0);
        assert!(!t.dest_acct(DestId(2)).overloaded);
        // Templates do not count towards the threshold.
        t.configure_dest(DestId(3), 1, 0);
        t.create(&nc(30, 3), Some(60), 0).unwrap();
        assert!(!t.dest_acct(DestId(3)).overloaded);
    }

    #[test]
    fn listing_in_chunks() {
        let mut t = table(10);
        for p in 0..7 {
            let i = t.create(&nc(p, 0), None, 0).unwrap();
            t.tcp_transition(i, TcpDir::Input, SYN);
            t.touch(i, 0);
        }
        let tpl = t.create(&udp(0), Some(360), 0).unwrap();
        let _ = tpl;
        t.expire_now(3);
        let mut out = Vec::new();
        let mut cur = Some(0);
        let mut chunks = 0;
        while let Some(c) = cur {
            cur = t.list(c, 3, 5 * S, &mut out);
            chunks += 1;
        }
        assert_eq!(chunks, 3);
        assert_eq!(out.len(), 7);
        let syn = out.iter().filter(|c| c.state == "SYN_RECV").count();
        assert_eq!(syn, 6);
        assert!(out
            .iter()
            .all(|c| c.state != "SYN_RECV" || c.expires_secs == 55));
        let tp: Vec<&ConnInfo> = out.iter().filter(|c| c.is_template).collect();
        assert_eq!(tp.len(), 1);
        assert_eq!(
            (tp[0].state, tp[0].proto, tp[0].expires_secs),
            ("UDP", 17, 355)
        );
    }

    #[test]
    fn expire_matching_by_dest() {
        let mut t = table(32);
        for p in 0..10 {
            t.create(&nc(p, p % 2), None, 0).unwrap();
        }
        let mut cur = Some(0);
        while let Some(c) = cur {
            cur = t.expire_matching(c, 4, |e| e.dest_id() == DestId(1));
        }
        assert_eq!(t.len(), 5);
        assert_eq!(t.dest_acct(DestId(1)).refs, 0);
        assert_eq!(t.dest_acct(DestId(0)).refs, 5);
    }

    #[test]
    fn many_entries_same_bucket_chain_integrity() {
        // Random create/expire churn keeps the index and the free list consistent.
        let mut t = table(64);
        let mut live: Vec<(u16, u32)> = Vec::new();
        let mut x: u32 = 12345;
        for step in 0..5000u32 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let port = (x >> 16) as u16 % 200;
            let n = nc(port, port % 4);
            let found = t.lookup_in(6, n.caddr, n.cport, n.vaddr, n.vport, 0);
            let known = live.iter().find(|(p, _)| *p == port).map(|(_, i)| *i);
            assert_eq!(found, known, "step {step}");
            match found {
                Some(i) => {
                    assert!(t.expire_now(i));
                    live.retain(|(p, _)| *p != port);
                }
                None => match t.create(&n, None, 0) {
                    Some(i) => live.push((port, i)),
                    None => assert_eq!(live.len(), 64),
                },
            }
            assert_eq!(t.len(), live.len());
        }
        let total: u32 = (0..4).map(|d| t.dest_acct(DestId(d)).refs).sum();
        assert_eq!(total as usize, live.len());
    }
}
