//! TCP/UDP forwarding: the egress checks made before any rewrite, inbound (DNAT) and outbound
//! (SNAT) translation of connections, and later fragments following their first.

use super::{other, SchedFail, State, Verdict};
use crate::config::{Proto, Snapshot, SvcLookup};
use crate::frag::{FragAction, FragKey};
use crate::stats::DropReason;
use crate::tcp_state::{is_syn_without_rst, TcpDir, TcpState};
use crate::{PortRole, Time};
use rvs_net::icmp;
use rvs_net::ipv4::{Ipv4Packet, Ipv4Repr, Protocol};
use rvs_net::is_unicast_host;
use rvs_net::l4::{rewrite_endpoint, Side};
use std::net::Ipv4Addr;

impl State {
    /// The forwarding checks, before any rewrite.
    pub(super) fn egress_check(
        &self,
        ip: &[u8],
        h: &Ipv4Repr,
        egress: PortRole,
    ) -> Option<Verdict> {
        if h.ttl <= 1 {
            return Some(self.icmp_error(ip, h, icmp::TIME_EXCEEDED, icmp::TTL_EXCEEDED, 0, None));
        }
        let mtu = self.params.mtu(egress);
        // Without DF an oversized packet goes on: the dataplane fragments it for the egress MTU,
        // as the kernel's IP output does for IPVS (which sets ignore_df).
        if h.tl() > mtu as usize && h.dont_frag {
            return Some(self.icmp_error(
                ip,
                h,
                icmp::DEST_UNREACH,
                icmp::FRAG_NEEDED,
                mtu as u32,
                None,
            ));
        }
        None
    }

    /// An ICMP error about `ip`, unless RFC 1122 3.2.2 forbids one.
    pub(super) fn icmp_error(
        &self,
        ip: &[u8],
        h: &Ipv4Repr,
        icmp_type: u8,
        code: u8,
        rest: u32,
        src: Option<Ipv4Addr>,
    ) -> Verdict {
        let about_error =
            h.protocol == Protocol::ICMP && ip.get(h.hl()).is_some_and(|t| icmp::is_error_type(*t));
        if h.frag_offset != 0 || !is_unicast_host(h.src) || h.dst.octets()[0] >= 224 || about_error
        {
            return Verdict::Drop(DropReason::IcmpSuppressed);
        }
        let e = &self.stats.engine;
        match (icmp_type, code) {
            (icmp::TIME_EXCEEDED, _) => e.ttl_exceeded.inc(),
            (icmp::DEST_UNREACH, icmp::FRAG_NEEDED) => e.frag_needed.inc(),
            _ => {}
        }
        Verdict::IcmpError {
            icmp_type,
            code,
            rest,
            src,
        }
    }

    pub(super) fn frag_record(
        &mut self,
        h: &Ipv4Repr,
        role: PortRole,
        action: FragAction,
        now: Time,
    ) -> bool {
        if !h.more_frags {
            return true;
        }
        let key = FragKey::new(h.src, h.dst, h.ident, h.protocol, role);
        self.frags
            .insert(key, action, (h.tl() - h.hl()) as u32, now)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn in_l4(
        &mut self,
        snap: &Snapshot,
        ip: &mut [u8],
        h: &Ipv4Repr,
        sport: u16,
        dport: u16,
        flags: u8,
        now: Time,
    ) -> Verdict {
        let tcp = h.protocol == Protocol::TCP;
        let syn = tcp && is_syn_without_rst(flags);
        let mut found = self
            .conns
            .lookup_in(h.protocol, h.src, sport, h.dst, dport, now);
        if let (Some(i), true) = (found, syn) {
            // conn_reuse_mode 1: a new SYN on a finished, uncontrolled connection reschedules.
            let reuse = self.conns.get(i).is_some_and(|c| {
                matches!(c.tcp_state(), TcpState::TimeWait | TcpState::Close)
                    && c.control().is_none()
            });
            if reuse && self.egress_check(ip, h, PortRole::Private).is_none() {
                self.conns.expire_now(i);
                self.stats.engine.conns_reused.inc();
                found = None;
            }
        }
        let i = match found {
            Some(i) => {
                if let Some(v) = self.egress_check(ip, h, PortRole::Private) {
                    return v;
                }
                i
            }
            None => {
                let Some(proto) = Proto::from_number(h.protocol) else {
                    return Verdict::NotService;
                };
                let si = match snap.lookup(proto, h.dst, dport) {
                    SvcLookup::NotVip => return Verdict::NotService,
                    SvcLookup::NoService => {
                        if self.params.host_stack {
                            self.stats.engine.no_service.inc();
                            return Verdict::NotService;
                        }
                        if tcp && flags & crate::tcp_state::flags::RST != 0 {
                            return Verdict::Drop(DropReason::NotSyn);
                        }
                        self.stats.engine.no_service.inc();
                        return self.icmp_error(
                            ip,
                            h,
                            icmp::DEST_UNREACH,
                            icmp::PORT_UNREACH,
                            0,
                            Some(h.dst),
                        );
                    }
                    SvcLookup::Found(si) => si,
                };
                if tcp && !syn {
                    if self.params.host_stack {
                        return Verdict::NotService;
                    }
                    return Verdict::Drop(DropReason::NotSyn);
                }
                if let Some(v) = self.egress_check(ip, h, PortRole::Private) {
                    return v;
                }
                match self.schedule(snap, si, h, sport, dport, now) {
                    Ok(i) => i,
                    Err(SchedFail::Full) => return Verdict::Drop(DropReason::ConnTableFull),
                    Err(SchedFail::NoDest) => {
                        self.stats.engine.no_dest.inc();
                        return self.icmp_error(
                            ip,
                            h,
                            icmp::DEST_UNREACH,
                            icmp::PORT_UNREACH,
                            0,
                            Some(h.dst),
                        );
                    }
                }
            }
        };
        let Some(c) = self.conns.get(i).copied() else {
            return Verdict::Drop(DropReason::NoConnection);
        };
        let (daddr, rport) = (Ipv4Addr::from(c.daddr), c.dport);
        let action = FragAction::Rewrite {
            addr: daddr,
            svc: c.svc_id(),
            dest: c.dest_id(),
        };
        if !self.frag_record(h, PortRole::Public, action, now) {
            return Verdict::Drop(DropReason::FragTableFull);
        }
        if tcp {
            self.conns.tcp_transition(i, TcpDir::Input, flags);
        }
        self.conns.touch(i, now);
        self.count(c.svc_id(), c.dest_id(), h.tl(), true);
        nat(ip, h, Side::Dst, daddr, Some(rport));
        Verdict::Forward {
            port: PortRole::Private,
            dst: daddr,
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn out_l4(
        &mut self,
        snap: &Snapshot,
        ip: &mut [u8],
        h: &Ipv4Repr,
        sport: u16,
        dport: u16,
        flags: u8,
        now: Time,
    ) -> Verdict {
        let Some(i) = self
            .conns
            .lookup_out(h.protocol, h.src, sport, h.dst, dport, now)
        else {
            let known = Proto::from_number(h.protocol)
                .is_some_and(|p| snap.is_dest_endpoint(p, h.src, sport));
            return if known {
                Verdict::Drop(DropReason::NoConnection)
            } else {
                Verdict::NotService
            };
        };
        if let Some(v) = self.egress_check(ip, h, PortRole::Public) {
            return v;
        }
        let Some(c) = self.conns.get(i).copied() else {
            return Verdict::Drop(DropReason::NoConnection);
        };
        let vaddr = Ipv4Addr::from(c.vaddr);
        let action = FragAction::Rewrite {
            addr: vaddr,
            svc: c.svc_id(),
            dest: c.dest_id(),
        };
        if !self.frag_record(h, PortRole::Private, action, now) {
            return Verdict::Drop(DropReason::FragTableFull);
        }
        if h.protocol == Protocol::TCP {
            self.conns.tcp_transition(i, TcpDir::Output, flags);
        }
        self.conns.touch(i, now);
        self.count(c.svc_id(), c.dest_id(), h.tl(), false);
        nat(ip, h, Side::Src, vaddr, Some(c.vport));
        Verdict::Forward {
            port: PortRole::Public,
            dst: h.dst,
        }
    }

    /// A non-first fragment: the rewrite its first fragment recorded.
    pub(super) fn later_fragment(
        &mut self,
        ip: &mut [u8],
        h: &Ipv4Repr,
        role: PortRole,
        now: Time,
    ) -> Verdict {
        let key = FragKey::new(h.src, h.dst, h.ident, h.protocol, role);
        match self.frags.account(
            key,
            h.frag_offset,
            (h.tl() - h.hl()) as u32,
            h.more_frags,
            now,
        ) {
            // With the host's stack on the port, a fragment of nothing rvs knows is the host's
            // (its first fragment went up): the kernel reassembles or discards it.
            None if self.params.host_stack && role == PortRole::Public => Verdict::NotService,
            None => Verdict::Drop(DropReason::FragOutOfOrder),
            Some(FragAction::Handover { core }) => {
                self.stats.engine.handovers.inc();
                Verdict::Handover { core }
            }
            Some(FragAction::Rewrite { addr, svc, dest }) => {
                let egress = other(role);
                if let Some(v) = self.egress_check(ip, h, egress) {
                    return v;
                }
                let inbound = role == PortRole::Public;
                self.count(svc, dest, h.tl(), inbound);
                self.stats.engine.frags.inc();
                let side = if inbound { Side::Dst } else { Side::Src };
                nat(ip, h, side, addr, None);
                let dst = if inbound { addr } else { h.dst };
                Verdict::Forward { port: egress, dst }
            }
        }
    }
}

/// In-place NAT of one endpoint plus the TTL decrement of forwarding. Both are forced inline:
/// split into modules, the engine lost inlining it had (measured in `lb_established_*`).
#[inline(always)]
pub(super) fn nat(ip: &mut [u8], h: &Ipv4Repr, side: Side, addr: Ipv4Addr, port: Option<u16>) {
    nat_endpoint(ip, h, side, addr, port);
    Ipv4Packet::new_unchecked(&mut *ip).decrement_ttl_incremental();
}

/// Rewrites one endpoint in place: the address (IP header checksum updated) and, when `port` is
/// given (an unfragmented packet or a first fragment), the port with the TCP/UDP checksum
/// update, which covers the address through the pseudo header. Lengths were checked by the
/// caller.
#[inline(always)]
pub(super) fn nat_endpoint(
    ip: &mut [u8],
    h: &Ipv4Repr,
    side: Side,
    addr: Ipv4Addr,
    port: Option<u16>,
) {
    let mut p = Ipv4Packet::new_unchecked(&mut *ip);
    let old = match side {
        Side::Src => p.set_src_incremental(addr),
        Side::Dst => p.set_dst_incremental(addr),
    };
    if let (Some(port), Some(seg)) = (port, ip.get_mut(h.hl()..h.tl())) {
        // Cannot fail: the caller checked the protocol and the header length.
        let _ = rewrite_endpoint(h.protocol, seg, side, old, addr, port);
    }
}
