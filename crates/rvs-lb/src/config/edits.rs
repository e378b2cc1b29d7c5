//! [`Config`], the editable configuration: its edit methods (`-A`, `-E`, `-D`, `-C`, `-a`,
//! `-e`, `-d`, `--set`, mark rules, trash purging), their argument checks and `validate`.

use super::{
    ConfigError, Dest, DestId, DestSpec, MarkRule, Service, ServiceId, ServiceKey, ServiceSpec,
    Timeouts, TrashedDest, WeightSummary, MAX_DESTS, MAX_MARK_RULES, MAX_SERVICES, MAX_THRESHOLD,
    MAX_TIMEOUT, MAX_WEIGHT,
};
use crate::sched;
use crate::tcp_state::TcpState;
use std::net::Ipv4Addr;

/// The editable configuration. Build with [`Config::default`] and the edit methods.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub(super) generation: u64,
    next_incarnation: u64,
    /// Bitmap of dest ids in use (live or trashed).
    dest_ids: Vec<u64>,
    pub(super) services: Vec<Service>,
    pub(super) mark_rules: Vec<MarkRule>,
    pub(super) timeouts: Timeouts,
    trash: Vec<TrashedDest>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            generation: 0,
            next_incarnation: 1,
            dest_ids: vec![0; MAX_DESTS.div_ceil(64)],
            services: Vec::new(),
            mark_rules: Vec::new(),
            timeouts: Timeouts::default(),
            trash: Vec::new(),
        }
    }
}

fn unicast(a: Ipv4Addr) -> bool {
    !(a.is_unspecified() || a.is_broadcast() || a.is_multicast())
}

fn check_spec(spec: &ServiceSpec) -> Result<(), ConfigError> {
    match spec.key {
        ServiceKey::Addr { vaddr, vport, .. } => {
            if !unicast(vaddr) {
                return Err(ConfigError::Invalid);
            }
            if vport == 0 && spec.persistence.is_none() {
                return Err(ConfigError::ZeroPortNonPersistent);
            }
        }
        ServiceKey::Fwmark(0) => return Err(ConfigError::Invalid),
        ServiceKey::Fwmark(_) => {}
    }
    if let Some(p) = spec.persistence {
        if p.timeout == 0 || p.timeout > MAX_TIMEOUT {
            return Err(ConfigError::OutOfRange);
        }
    }
    // The kernel keeps names shorter than IP_VS_SCHEDNAME_MAXLEN (16).
    if spec.scheduler.len() > 15 || !sched::NAMES.contains(&spec.scheduler.as_str()) {
        return Err(ConfigError::SchedulerNotFound);
    }
    Ok(())
}

fn check_dest(d: &DestSpec) -> Result<(), ConfigError> {
    if !unicast(d.addr) {
        return Err(ConfigError::Invalid);
    }
    if d.weight > MAX_WEIGHT || d.u_threshold > MAX_THRESHOLD || d.l_threshold > MAX_THRESHOLD {
        return Err(ConfigError::OutOfRange);
    }
    // ip_vs_add_dest/ip_vs_edit_dest: unconditional, so l=5,u=0 is rejected too.
    if d.l_threshold > d.u_threshold {
        return Err(ConfigError::OutOfRange);
    }
    Ok(())
}

/// ipvsadm copies the virtual port when `-r` has none.
impl Service {
    fn note_list_change(&mut self) {
        self.list_changes.push(WeightSummary::of(&self.dests));
    }
}

impl Config {
    /// Starts a batch of edits that will be published as one snapshot: forgets the list
    /// changes the previous snapshot carried.
    pub fn begin_batch(&mut self) {
        for s in &mut self.services {
            s.list_changes.clear();
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn services(&self) -> &[Service] {
        &self.services
    }

    pub fn service(&self, key: &ServiceKey) -> Option<&Service> {
        self.services.iter().find(|s| s.key == *key)
    }

    pub fn mark_rules(&self) -> &[MarkRule] {
        &self.mark_rules
    }

    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    pub fn trash(&self) -> &[TrashedDest] {
        &self.trash
    }

    fn bump(&mut self) {
        self.generation += 1;
    }

    fn incarnation(&mut self) -> u64 {
        let i = self.next_incarnation;
        self.next_incarnation += 1;
        i
    }

    fn svc_pos(&self, key: &ServiceKey) -> Option<usize> {
        self.services.iter().position(|s| s.key == *key)
    }

    fn free_service_id(&self) -> Option<ServiceId> {
        let mut used = vec![false; MAX_SERVICES];
        for s in &self.services {
            if let Some(u) = used.get_mut(s.id.index()) {
                *u = true;
            }
        }
        used.iter().position(|u| !u).map(|i| ServiceId(i as u16))
    }

    /// Lowest dest id neither live nor trashed (a bitmap scan: 256 words).
    fn free_dest_id(&self) -> Option<DestId> {
        let (w, word) = self
            .dest_ids
            .iter()
            .enumerate()
            .find(|(_, w)| **w != u64::MAX)?;
        let i = w * 64 + word.trailing_ones() as usize;
        (i < MAX_DESTS).then_some(DestId(i as u16))
    }

    fn mark_dest_id(&mut self, id: DestId, used: bool) {
        if let Some(w) = self.dest_ids.get_mut(id.index() / 64) {
            let bit = 1u64 << (id.index() % 64);
            if used {
                *w |= bit;
            } else {
                *w &= !bit;
            }
        }
    }

    /// `-A`.
    pub fn add_service(&mut self, spec: ServiceSpec) -> Result<ServiceId, ConfigError> {
        check_spec(&spec)?;
        if self.svc_pos(&spec.key).is_some() {
            return Err(ConfigError::ServiceExists);
        }
        let id = self.free_service_id().ok_or(ConfigError::NoMemory)?;
        let incarnation = self.incarnation();
        self.services.push(Service {
            id,
            key: spec.key,
            scheduler: spec.scheduler,
            sched_flags: spec.sched_flags,
            persistence: spec.persistence,
            dests: Vec::new(),
            list_changes: Vec::new(),
            incarnation,
        });
        self.bump();
        Ok(id)
    }

    /// `-E`: replaces scheduler, flags and persistence; destinations are kept.
    pub fn edit_service(&mut self, spec: ServiceSpec) -> Result<(), ConfigError> {
        let pos = self.svc_pos(&spec.key).ok_or(ConfigError::NoSuchService)?;
        check_spec(&spec)?;
        let svc = &mut self.services[pos];
        svc.scheduler = spec.scheduler;
        svc.sched_flags = spec.sched_flags;
        svc.persistence = spec.persistence;
        self.bump();
        Ok(())
    }

    /// `-D`: the service's destinations go to the trash.
    pub fn delete_service(&mut self, key: &ServiceKey) -> Result<(), ConfigError> {
        let pos = self.svc_pos(key).ok_or(ConfigError::NoSuchService)?;
        let svc = self.services.remove(pos);
        let removed_in = self.generation + 1;
        for dest in svc.dests {
            self.trash.push(TrashedDest {
                dest,
                service: svc.key,
                removed_in,
            });
        }
        self.bump();
        Ok(())
    }

    /// `-C`: deletes every service (mark rules and timeouts stay).
    pub fn clear(&mut self) {
        let keys: Vec<ServiceKey> = self.services.iter().map(|s| s.key).collect();
        for k in keys {
            // Cannot fail: the key was just listed.
            let _ = self.delete_service(&k);
        }
        self.bump();
    }

    /// `-a`. Re-adding a trashed server to the same service restores its id and counters.
    pub fn add_dest(&mut self, key: &ServiceKey, spec: DestSpec) -> Result<DestId, ConfigError> {
        let pos = self.svc_pos(key).ok_or(ConfigError::ServiceNotDefined)?;
        check_dest(&spec)?;
        let port = spec.port;
        if self.services[pos].dest(spec.addr, port).is_some() {
            return Err(ConfigError::DestExists);
        }
        let trashed = self
            .trash
            .iter()
            .position(|t| t.service == *key && t.dest.addr == spec.addr && t.dest.port == port);
        let dest = match trashed {
            Some(t) => {
                let mut d = self.trash.remove(t).dest;
                d.weight = spec.weight;
                if spec.weight > 0 {
                    d.last_weight = spec.weight;
                }
                d.u_threshold = spec.u_threshold;
                d.l_threshold = spec.l_threshold;
                d.forward = spec.forward;
                d
            }
            None => {
                let id = self.free_dest_id().ok_or(ConfigError::NoMemory)?;
                Dest {
                    id,
                    addr: spec.addr,
                    port,
                    weight: spec.weight,
                    last_weight: spec.weight,
                    u_threshold: spec.u_threshold,
                    l_threshold: spec.l_threshold,
                    forward: spec.forward,
                    incarnation: self.incarnation(),
                }
            }
        };
        let id = dest.id;
        self.mark_dest_id(id, true);
        // The kernel adds at the head of the service's list (list_add_rcu in
        // __ip_vs_update_dest): its schedulers walk, and --nosort lists, the newest first.
        self.services[pos].dests.insert(0, dest);
        self.services[pos].note_list_change();
        self.bump();
        Ok(id)
    }

    /// `-e`.
    pub fn edit_dest(&mut self, key: &ServiceKey, spec: DestSpec) -> Result<(), ConfigError> {
        let pos = self.svc_pos(key).ok_or(ConfigError::ServiceNotDefined)?;
        let port = spec.port;
        let svc = &mut self.services[pos];
        let d = svc
            .dests
            .iter_mut()
            .find(|d| d.addr == spec.addr && d.port == port)
            .ok_or(ConfigError::NoSuchDest)?;
        check_dest(&spec)?;
        d.weight = spec.weight;
        if spec.weight > 0 {
            d.last_weight = spec.weight;
        }
        d.u_threshold = spec.u_threshold;
        d.l_threshold = spec.l_threshold;
        d.forward = spec.forward;
        svc.note_list_change();
        self.bump();
        Ok(())
    }

    /// `-d`: the destination goes to the trash; its connections keep working.
    pub fn delete_dest(
        &mut self,
        key: &ServiceKey,
        addr: Ipv4Addr,
        port: u16,
    ) -> Result<(), ConfigError> {
        let pos = self.svc_pos(key).ok_or(ConfigError::ServiceNotDefined)?;

        let svc = &mut self.services[pos];
        let i = svc
            .dests
            .iter()
            .position(|d| d.addr == addr && d.port == port)
            .ok_or(ConfigError::NoSuchDest)?;
        let dest = svc.dests.remove(i);
        svc.note_list_change();
        let service = svc.key;
        self.trash.push(TrashedDest {
            dest,
            service,
            removed_in: self.generation + 1,
        });
        self.bump();
        Ok(())
    }

    /// Drops trash entries for which `still_used` is false, freeing their ids. The control plane
    /// passes "some worker that acknowledged a generation < removed_in exists, or some worker
    /// reports a non-zero reference count for the id".
    pub fn purge_trash(&mut self, mut still_used: impl FnMut(&TrashedDest) -> bool) {
        let before = self.trash.len();
        let mut freed = Vec::new();
        self.trash.retain(|t| {
            let keep = still_used(t);
            if !keep {
                freed.push(t.dest.id);
            }
            keep
        });
        for id in freed {
            self.mark_dest_id(id, false);
        }
        if self.trash.len() != before {
            self.bump();
        }
    }

    /// `--set tcp tcpfin udp`; 0 leaves a value unchanged.
    pub fn set_timeouts(&mut self, tcp: u32, tcpfin: u32, udp: u32) -> Result<(), ConfigError> {
        if tcp > MAX_TIMEOUT || tcpfin > MAX_TIMEOUT || udp > MAX_TIMEOUT {
            return Err(ConfigError::OutOfRange);
        }
        if tcp != 0 {
            self.timeouts.tcp[TcpState::Established.index()] = tcp;
        }
        if tcpfin != 0 {
            self.timeouts.tcp[TcpState::FinWait.index()] = tcpfin;
        }
        if udp != 0 {
            self.timeouts.udp = udp;
        }
        self.bump();
        Ok(())
    }

    pub fn add_mark_rule(&mut self, rule: MarkRule) -> Result<(), ConfigError> {
        if rule.mark == 0 || rule.port_lo > rule.port_hi || !unicast(rule.vaddr) {
            return Err(ConfigError::Invalid);
        }
        if self.mark_rules.contains(&rule) {
            return Err(ConfigError::MarkRuleExists);
        }
        if self.mark_rules.len() >= MAX_MARK_RULES {
            return Err(ConfigError::NoMemory);
        }
        self.mark_rules.push(rule);
        self.bump();
        Ok(())
    }

    pub fn delete_mark_rule(&mut self, rule: &MarkRule) -> Result<(), ConfigError> {
        let i = self
            .mark_rules
            .iter()
            .position(|r| r == rule)
            .ok_or(ConfigError::NoSuchMarkRule)?;
        self.mark_rules.remove(i);
        self.bump();
        Ok(())
    }

    /// Checks every invariant the edit methods maintain (useful for configurations built or
    /// deserialized elsewhere).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut svc_ids = vec![false; MAX_SERVICES];
        let mut dest_ids = vec![false; MAX_DESTS];
        let claim = |used: &mut Vec<bool>, i: usize| -> Result<(), ConfigError> {
            match used.get_mut(i) {
                Some(u) if !*u => {
                    *u = true;
                    Ok(())
                }
                Some(_) => Err(ConfigError::Invalid),
                None => Err(ConfigError::NoMemory),
            }
        };
        for (i, s) in self.services.iter().enumerate() {
            claim(&mut svc_ids, s.id.index())?;
            if self.services[..i].iter().any(|o| o.key == s.key) {
                return Err(ConfigError::ServiceExists);
            }
            check_spec(&ServiceSpec {
                key: s.key,
                scheduler: s.scheduler.clone(),
                sched_flags: s.sched_flags,
                persistence: s.persistence,
            })?;
            for (j, d) in s.dests.iter().enumerate() {
                claim(&mut dest_ids, d.id.index())?;
                if s.dests[..j]
                    .iter()
                    .any(|o| o.addr == d.addr && o.port == d.port)
                {
                    return Err(ConfigError::DestExists);
                }
                check_dest(&DestSpec {
                    addr: d.addr,
                    port: d.port,
                    weight: d.weight,
                    u_threshold: d.u_threshold,
                    l_threshold: d.l_threshold,
                    forward: d.forward,
                })?;
            }
        }
        for t in &self.trash {
            claim(&mut dest_ids, t.dest.id.index())?;
        }
        // The allocation bitmap must agree with the ids actually in use.
        for (i, used) in dest_ids.iter().enumerate() {
            let bit = self
                .dest_ids
                .get(i / 64)
                .is_some_and(|w| w & (1u64 << (i % 64)) != 0);
            if bit != *used {
                return Err(ConfigError::Invalid);
            }
        }
        let t = &self.timeouts;
        if t.udp == 0 || t.udp > MAX_TIMEOUT || t.tcp.iter().any(|&x| x == 0 || x > MAX_TIMEOUT) {
            return Err(ConfigError::OutOfRange);
        }
        for r in &self.mark_rules {
            if r.mark == 0 || r.port_lo > r.port_hi {
                return Err(ConfigError::Invalid);
            }
        }
        Ok(())
    }
}
