//! Related ICMP errors (`ip_vs_in_icmp` / `ip_vs_out_icmp`): an error about a connection's
//! packet is translated like the connection, quoted header included.

use super::{other, State, Verdict};
use crate::stats::DropReason;
use crate::{PortRole, Time};
use rvs_net::checksum;
use rvs_net::icmp;
use rvs_net::ipv4::{Ipv4Packet, Ipv4Repr, Protocol};
use std::net::Ipv4Addr;

impl State {
    /// Related ICMP errors (ip_vs_in_icmp / ip_vs_out_icmp). Anything else is not ours.
    pub(super) fn icmp(
        &mut self,
        ip: &mut [u8],
        h: &Ipv4Repr,
        role: PortRole,
        now: Time,
    ) -> Verdict {
        if h.frag_offset != 0 {
            return Verdict::NotService;
        }
        let Some(msg) = ip.get(h.hl()..h.tl()) else {
            return Verdict::Drop(DropReason::Malformed);
        };
        let Some(&t) = msg.first() else {
            return Verdict::Drop(DropReason::Malformed);
        };
        if !matches!(
            t,
            icmp::DEST_UNREACH | icmp::SOURCE_QUENCH | icmp::TIME_EXCEEDED
        ) {
            return Verdict::NotService;
        }
        if h.more_frags {
            return Verdict::Drop(DropReason::IcmpFragmented);
        }
        let Some(quoted) = msg.get(icmp::HEADER_LEN..) else {
            return Verdict::Drop(DropReason::Malformed);
        };
        let Ok(q) = Ipv4Packet::new_checked_quoted(quoted) else {
            return Verdict::NotService;
        };
        let qproto = q.protocol();
        if q.frag_offset() != 0 || !matches!(qproto, Protocol::TCP | Protocol::UDP) {
            return Verdict::NotService;
        }
        let qhl = q.header_len();
        let Some(ql4) = quoted.get(qhl..qhl + 8) else {
            return Verdict::NotService;
        };
        let qsport = u16::from_be_bytes([ql4[0], ql4[1]]);
        let qdport = u16::from_be_bytes([ql4[2], ql4[3]]);
        let (qsrc, qdst) = (q.src(), q.dst());
        // The quoted packet is one we sent: public side VIP -> client, private side client ->
        // RIP. Look it up as the kernel does (inbound with addresses reversed / outbound).
        let found = match role {
            PortRole::Public => self
                .conns
                .lookup_in(qproto, qdst, qdport, qsrc, qsport, now),
            PortRole::Private => self
                .conns
                .lookup_out(qproto, qdst, qdport, qsrc, qsport, now),
        };
        let Some(c) = found.and_then(|i| self.conns.get(i).copied()) else {
            // About one of the host's own connections, when it shares the port.
            if self.params.host_stack && role == PortRole::Public {
                return Verdict::NotService;
            }
            return Verdict::Drop(DropReason::IcmpNoConnection);
        };
        let outer_ok = match role {
            PortRole::Public => u32::from(h.dst) == c.vaddr,
            PortRole::Private => u32::from(h.dst) == c.caddr,
        };
        if !outer_ok {
            return Verdict::NotService;
        }
        if checksum::internet(msg) != 0 {
            return Verdict::Drop(DropReason::IcmpBadChecksum);
        }
        let egress = other(role);
        let mtu = self.params.mtu(egress);
        if h.ttl <= 1 || h.tl() > mtu as usize {
            return Verdict::Drop(DropReason::IcmpUndeliverable);
        }
        let inbound = role == PortRole::Public;
        self.count(c.svc_id(), c.dest_id(), h.tl(), inbound);
        let e = &self.stats.engine;
        if inbound {
            e.icmp_in.inc();
        } else {
            e.icmp_out.inc();
        }
        let (new_addr, new_port) = if inbound {
            (Ipv4Addr::from(c.daddr), c.dport)
        } else {
            (Ipv4Addr::from(c.vaddr), c.vport)
        };
        let (hl, tl) = (h.hl(), h.tl());
        let mut p = Ipv4Packet::new_unchecked(&mut *ip);
        if inbound {
            p.set_dst_incremental(new_addr);
        } else {
            p.set_src_incremental(new_addr);
        }
        p.decrement_ttl_incremental();
        let Some(msg) = ip.get_mut(hl..tl) else {
            return Verdict::Drop(DropReason::Malformed);
        };
        if let Some(qb) = msg.get_mut(icmp::HEADER_LEN..) {
            let mut q = Ipv4Packet::new_unchecked(&mut *qb);
            if inbound {
                q.set_src(new_addr);
            } else {
                q.set_dst(new_addr);
            }
            q.fill_checksum();
            if let Some(ports) = qb.get_mut(qhl..qhl + 4) {
                let at = if inbound { 0 } else { 2 };
                ports[at..at + 2].copy_from_slice(&new_port.to_be_bytes());
            }
        }
        msg[2] = 0;
        msg[3] = 0;
        let c = checksum::internet(msg);
        msg[2..4].copy_from_slice(&c.to_be_bytes());
        let dst = if inbound { new_addr } else { h.dst };
        Verdict::Forward { port: egress, dst }
    }
}
