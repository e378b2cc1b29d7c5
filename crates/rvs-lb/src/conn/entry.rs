//! One table entry ([`Conn`], one cache line), what a new one is made of, a listing line, the
//! entry flag bits and the timer-tick helpers.

use crate::config::{DestId, ServiceId};
use crate::tcp_state::{TcpState, UDP_STATE_NAME};
use crate::{Time, NANOS_PER_SEC};
use std::net::Ipv4Addr;

/// "No entry".
pub const NIL: u32 = u32::MAX;
/// log2 of the timer tick in nanoseconds (~134 ms).
pub const TICK_SHIFT: u32 = 27;
pub const TICK_NANOS: u64 = 1 << TICK_SHIFT;

/// Entry flags.
pub(super) const F_USED: u8 = 0x01;
pub(super) const F_TEMPLATE: u8 = 0x02;
pub(super) const F_INACTIVE: u8 = 0x04;
/// An invalidated template: kept for the connections it controls, never found by lookups.
pub(super) const F_INVALID: u8 = 0x08;

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
pub(super) fn later(a: u32, b: u32) -> bool {
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
    pub(super) flags: u8,
    pub(super) _pad: u8,
    /// Wheel slot the entry is linked in.
    pub(super) slot: u16,
    pub(super) hash_next: u32,
    pub(super) timer_prev: u32,
    pub(super) timer_next: u32,
    /// Tick at which the entry expires.
    pub(super) expires: u32,
    /// Current timeout in ticks (from the state, or the template's timeout).
    pub(super) timeout: u32,
    /// Connection: index of its controlling template (NIL if none). Template: `n_control`.
    pub(super) link: u32,
}

impl Conn {
    pub(super) const EMPTY: Conn = Conn {
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
