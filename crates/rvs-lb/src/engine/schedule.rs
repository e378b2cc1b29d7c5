//! New connections: asking the service's scheduler for a real server, persistence templates
//! (`ip_vs_sched_persist`) and the counters of a new connection.

use super::{SchedFail, State};
use crate::config::{DestId, Service, ServiceId, ServiceKey, Snapshot};
use crate::conn::NewConn;
use crate::sched::{Flow, Scheduler};
use crate::Time;
use rvs_net::ipv4::Ipv4Repr;
use std::net::Ipv4Addr;

impl State {
    /// Refreshes the scheduler's view of this core's counts and asks it for a destination of
    /// service `si`: an index into `svc.dests`.
    pub(super) fn pick(
        &mut self,
        si: usize,
        svc: &Service,
        flow: &Flow,
        now: Time,
    ) -> Option<usize> {
        let rt = self.svcs.get_mut(si)?;
        if rt.views.len() != svc.dests.len() {
            return None;
        }
        for (v, d) in rt.views.iter_mut().zip(&svc.dests) {
            let a = self.conns.dest_acct(d.id);
            v.activeconns = a.active;
            v.inactconns = a.inact;
            v.overloaded = a.overloaded;
        }
        let i = rt.sched.schedule(&rt.views, flow, now)?;
        (i < svc.dests.len()).then_some(i)
    }

    pub(super) fn count_new(&self, svc: ServiceId, dest: DestId) {
        let s = &self.stats;
        if let Some(c) = s.service(svc) {
            c.conns.inc();
        }
        if let Some(c) = s.dest(dest) {
            c.traffic.conns.inc();
        }
        s.total.conns.inc();
    }

    pub(super) fn count(&self, svc: ServiceId, dest: DestId, bytes: usize, inbound: bool) {
        let s = &self.stats;
        let b = bytes as u64;
        let (svc_c, dest_c) = (s.service(svc), s.dest(dest).map(|d| &d.traffic));
        for c in [svc_c, dest_c, Some(&s.total)].into_iter().flatten() {
            if inbound {
                c.count_in(b);
            } else {
                c.count_out(b);
            }
        }
    }

    /// `ip_vs_schedule` / `ip_vs_sched_persist`: a new connection for a client packet to service
    /// `si`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn schedule(
        &mut self,
        snap: &Snapshot,
        si: usize,
        h: &Ipv4Repr,
        sport: u16,
        dport: u16,
        now: Time,
    ) -> Result<u32, SchedFail> {
        let svc = snap.services().get(si).ok_or(SchedFail::NoDest)?;
        let flow = Flow {
            proto: h.protocol,
            caddr: h.src,
            cport: sport,
            vaddr: h.dst,
            vport: dport,
        };
        let mut conn = NewConn {
            proto: h.protocol,
            caddr: h.src,
            cport: sport,
            vaddr: h.dst,
            vport: dport,
            daddr: Ipv4Addr::UNSPECIFIED,
            dport: 0,
            dest: DestId(0),
            svc: svc.id,
        };
        let Some(pers) = svc.persistence else {
            if self.conns.free_entries() < 1 {
                return Err(SchedFail::Full);
            }
            let d = self.pick(si, svc, &flow, now).ok_or(SchedFail::NoDest)?;
            let d = svc.dests.get(d).ok_or(SchedFail::NoDest)?;
            conn.daddr = d.addr;
            conn.dport = if d.port != 0 { d.port } else { dport };
            conn.dest = d.id;
            let i = self.conns.create(&conn, None, now).ok_or(SchedFail::Full)?;
            self.count_new(svc.id, d.id);
            return Ok(i);
        };

        // Persistent: template <proto, caddr & mask, 0, vaddr, vport>; fwmark templates use
        // <IPPROTO_IP, caddr & mask, 0, fwmark, 0>; port-zero services use vport 0.
        let cnet = Ipv4Addr::from(u32::from(h.src) & u32::from(pers.netmask));
        let (tproto, tvaddr, tvport, zero_port) = match svc.key {
            ServiceKey::Fwmark(m) => (0u8, Ipv4Addr::from(m), 0u16, true),
            ServiceKey::Addr { vport: 0, .. } => (h.protocol, h.dst, 0, true),
            ServiceKey::Addr { vport, .. } => (h.protocol, h.dst, vport, false),
        };
        let mut tmpl = self
            .conns
            .lookup_template(tproto, cnet, tvaddr, tvport, now);
        if let Some(t) = tmpl {
            // ip_vs_check_template: the template's server must still be in this service.
            let valid = self.conns.get(t).is_some_and(|c| {
                self.dests
                    .get(c.dest as usize)
                    .is_some_and(|d| d.live && d.svc_idx as usize == si)
            });
            if !valid {
                self.conns.invalidate_template(t);
                tmpl = None;
            }
        }
        let (t, did, daddr, dport_cfg) = match tmpl {
            Some(t) => {
                if self.conns.free_entries() < 1 {
                    return Err(SchedFail::Full);
                }
                let did = self.conns.get(t).map(|c| c.dest).ok_or(SchedFail::NoDest)?;
                let d = self.dests.get(did as usize).ok_or(SchedFail::NoDest)?;
                (t, DestId(did), d.addr, d.port)
            }
            None => {
                if self.conns.free_entries() < 2 {
                    return Err(SchedFail::Full);
                }
                let d = self.pick(si, svc, &flow, now).ok_or(SchedFail::NoDest)?;
                let d = svc.dests.get(d).ok_or(SchedFail::NoDest)?;
                let tc = NewConn {
                    proto: tproto,
                    caddr: cnet,
                    cport: 0,
                    vaddr: tvaddr,
                    vport: tvport,
                    daddr: d.addr,
                    dport: if zero_port { 0 } else { d.port },
                    dest: d.id,
                    svc: svc.id,
                };
                let t = self
                    .conns
                    .create(&tc, Some(pers.timeout), now)
                    .ok_or(SchedFail::Full)?;
                (t, d.id, d.addr, d.port)
            }
        };
        conn.daddr = daddr;
        conn.dport = if zero_port || dport_cfg == 0 {
            dport
        } else {
            dport_cfg
        };
        conn.dest = did;
        let i = self.conns.create(&conn, None, now).ok_or(SchedFail::Full)?;
        self.conns.control_add(i, t);
        self.conns.touch(t, now);
        self.count_new(svc.id, did);
        Ok(i)
    }
}
