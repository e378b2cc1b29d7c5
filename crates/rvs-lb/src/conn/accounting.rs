//! Per-destination accounting ([`DestAcct`]): thresholds, binding entries to destinations,
//! TCP state changes between active and inactive, and publishing the counts.

use super::entry::{F_INACTIVE, F_TEMPLATE, F_USED};
use super::ConnTable;
use crate::config::DestId;
use crate::tcp_state::{next_state, TcpDir, TcpState};

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

impl ConnTable {
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

    pub(super) fn bind(&mut self, i: u32) {
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

    pub(super) fn unbind(&mut self, dest: u16, flags: u8) {
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
}
