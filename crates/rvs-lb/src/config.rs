//! The configuration the control plane edits and publishes to workers.
//!
//! [`Config`] is plain data edited by value: every edit method checks its arguments first and
//! only then mutates, so a failed edit leaves the configuration unchanged (the control plane can
//! apply a whole `-R` restore to a scratch copy and publish only if every line succeeded).
//! [`Snapshot`] is an immutable, validated `Config` plus the lookup index the fast path uses;
//! workers receive it as `Arc<Snapshot>` and pick it up between bursts.
//!
//! Identity and lifetime of real servers: every service and destination gets a small numeric id
//! ([`ServiceId`] < [`MAX_SERVICES`], [`DestId`] < [`MAX_DESTS`]) that indexes the per-core
//! preallocated statistics arrays. Deleting a destination (or its service) moves it to the
//! *trash* with its id, like the kernel's `dest_trash`: connections already bound to it keep
//! working and keep being counted under that id, and re-adding the same server to the same
//! service restores it (and its counters). An id is reused only after the control plane purges
//! the trash entry ([`Config::purge_trash`]), which it must do only once every worker has
//! acknowledged a snapshot without the destination and reports no connection referencing it.
//! Each allocation also gets a fresh `incarnation` number so workers notice a reused id and zero
//! its counters.
//!
//! Errors display the exact text `ipvsadm` prints for the kernel's errno (libipvs
//! `ipvs_strerror`), or ipvsadm's own message where ipvsadm rejects the input itself.

use crate::sched::{self, SchedFlags};
use crate::tcp_state::{TcpState, DEFAULT_TCP_TIMEOUTS, DEFAULT_UDP_TIMEOUT, N_TCP_STATES};
use std::net::Ipv4Addr;

/// Number of service ids (size of the per-core per-service counter arrays).
pub const MAX_SERVICES: usize = 4096;
/// Number of destination ids, live plus trashed (size of the per-core per-dest arrays).
pub const MAX_DESTS: usize = 16384;
/// Largest timeout ipvsadm accepts (`MAX_TIMEOUT`, 31 days), in seconds.
pub const MAX_TIMEOUT: u32 = 86400 * 31;
/// `IPVS_SVC_PERSISTENT_TIMEOUT` (the man page's 300 is wrong).
pub const DEFAULT_PERSISTENT_TIMEOUT: u32 = 6 * 60;
/// Largest weight ipvsadm accepts.
pub const MAX_WEIGHT: u32 = 65535;
/// Largest connection threshold (`INT_MAX`).
pub const MAX_THRESHOLD: u32 = i32::MAX as u32;
/// Most firewall-mark rules (the stand-in for iptables mangle rules).
pub const MAX_MARK_RULES: usize = 4096;

/// Transport protocols rvs balances.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    /// IP protocol number.
    pub const fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
        }
    }

    pub const fn from_number(n: u8) -> Option<Proto> {
        match n {
            6 => Some(Proto::Tcp),
            17 => Some(Proto::Udp),
            _ => None,
        }
    }

    /// As ipvsadm prints it ("TCP", "UDP").
    pub const fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
        }
    }

    pub(crate) const fn slot(self) -> usize {
        match self {
            Proto::Tcp => 0,
            Proto::Udp => 1,
        }
    }
}

/// Index of a service in the per-core per-service counter arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceId(pub u16);

impl ServiceId {
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// Index of a destination in the per-core per-dest counter and state arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DestId(pub u16);

impl DestId {
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// How a service is addressed (the kernel's service lookup keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceKey {
    /// `-t|-u VIP:port`. Port 0 means "every port of the VIP" and needs persistence.
    Addr {
        proto: Proto,
        vaddr: Ipv4Addr,
        vport: u16,
    },
    /// `-f MARK`: matches packets that a [`MarkRule`] marked with this value, TCP or UDP.
    Fwmark(u32),
}

impl ServiceKey {
    pub fn tcp(vaddr: Ipv4Addr, vport: u16) -> ServiceKey {
        ServiceKey::Addr {
            proto: Proto::Tcp,
            vaddr,
            vport,
        }
    }

    pub fn udp(vaddr: Ipv4Addr, vport: u16) -> ServiceKey {
        ServiceKey::Addr {
            proto: Proto::Udp,
            vaddr,
            vport,
        }
    }

    /// The virtual port, 0 for port-zero and fwmark services.
    pub fn vport(&self) -> u16 {
        match self {
            ServiceKey::Addr { vport, .. } => *vport,
            ServiceKey::Fwmark(_) => 0,
        }
    }
}

/// The firewall-mark equivalent: rvs has no iptables, so a mark is given to packets by rules of
/// the form "protocol, VIP, destination port range". The first matching rule (in insertion
/// order) marks the packet; a fwmark service with that mark then takes it, exactly as the kernel
/// consults fwmark services before address services. A mark with no service leaves the packet
/// to the address services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MarkRule {
    pub mark: u32,
    pub proto: Proto,
    pub vaddr: Ipv4Addr,
    /// Inclusive destination port range.
    pub port_lo: u16,
    pub port_hi: u16,
}

impl MarkRule {
    fn matches(&self, proto: Proto, port: u16) -> bool {
        self.proto == proto && self.port_lo <= port && port <= self.port_hi
    }
}

/// `-p [timeout] [-M netmask]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Persistence {
    /// Template timeout in seconds, 1..=MAX_TIMEOUT.
    pub timeout: u32,
    /// Client address mask of the template key (`-M`), default /32.
    pub netmask: Ipv4Addr,
}

impl Default for Persistence {
    fn default() -> Self {
        Persistence {
            timeout: DEFAULT_PERSISTENT_TIMEOUT,
            netmask: Ipv4Addr::BROADCAST,
        }
    }
}

/// Forwarding method. rvs is LVS-NAT only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Forward {
    #[default]
    Masq,
}

impl Forward {
    /// As ipvsadm prints it in listings.
    pub fn name(self) -> &'static str {
        match self {
            Forward::Masq => "Masq",
        }
    }
}

/// What `-A`/`-E` carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    pub key: ServiceKey,
    pub scheduler: String,
    pub sched_flags: SchedFlags,
    pub persistence: Option<Persistence>,
}

impl ServiceSpec {
    /// A service with ipvsadm's defaults: wlc, no flags, not persistent.
    pub fn new(key: ServiceKey) -> ServiceSpec {
        ServiceSpec {
            key,
            scheduler: crate::sched::DEFAULT_SCHEDULER.to_string(),
            sched_flags: SchedFlags::default(),
            persistence: None,
        }
    }

    pub fn scheduler(mut self, name: &str) -> ServiceSpec {
        self.scheduler = name.to_string();
        self
    }

    pub fn persistent(mut self, p: Persistence) -> ServiceSpec {
        self.persistence = Some(p);
        self
    }

    pub fn flags(mut self, f: SchedFlags) -> ServiceSpec {
        self.sched_flags = f;
        self
    }
}

/// What `-a`/`-e` carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DestSpec {
    pub addr: Ipv4Addr,
    /// 0 = the service's virtual port (ipvsadm copies it); on port-zero and fwmark services, 0
    /// means "the packet's destination port".
    pub port: u16,
    pub weight: u32,
    pub u_threshold: u32,
    pub l_threshold: u32,
    pub forward: Forward,
}

impl DestSpec {
    /// ipvsadm's defaults: weight 1, no thresholds.
    pub fn new(addr: Ipv4Addr, port: u16) -> DestSpec {
        DestSpec {
            addr,
            port,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            forward: Forward::Masq,
        }
    }

    pub fn weight(mut self, w: u32) -> DestSpec {
        self.weight = w;
        self
    }

    pub fn thresholds(mut self, upper: u32, lower: u32) -> DestSpec {
        self.u_threshold = upper;
        self.l_threshold = lower;
        self
    }
}

/// A real server as published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dest {
    pub id: DestId,
    pub addr: Ipv4Addr,
    pub port: u16,
    pub weight: u32,
    /// Last non-zero weight (`last_weight`, used by mh).
    pub last_weight: u32,
    pub u_threshold: u32,
    pub l_threshold: u32,
    pub forward: Forward,
    /// Changes whenever `id` is (re)allocated; workers zero the id's counters when it changes.
    pub incarnation: u64,
}

/// The weights of a service's real servers after one change of its list (an add, edit or
/// delete): what the kernel's wrr recomputes at each such event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeightSummary {
    /// Gcd of the positive weights (1 when there is none).
    pub gcd: u32,
    /// The largest weight (0 when there is no real server).
    pub max: u32,
}

impl WeightSummary {
    /// Of a list's weights, as `ip_vs_wrr_gcd_weight` and `ip_vs_wrr_max_weight` compute them.
    pub fn of_weights(weights: impl Iterator<Item = u32> + Clone) -> WeightSummary {
        let g = weights
            .clone()
            .filter(|&w| w > 0)
            .fold(0u64, |g, w| crate::sched::common::gcd(u64::from(w), g));
        WeightSummary {
            // A gcd of u32 weights is at most the largest of them.
            gcd: g.max(1) as u32,
            max: weights.max().unwrap_or(0),
        }
    }

    pub fn of(dests: &[Dest]) -> WeightSummary {
        Self::of_weights(dests.iter().map(|d| d.weight))
    }
}

/// A virtual service as published. `dests` is in the kernel's list order, newest first (which
/// rr, wrr, sh and friends depend on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub id: ServiceId,
    pub key: ServiceKey,
    pub scheduler: String,
    pub sched_flags: SchedFlags,
    pub persistence: Option<Persistence>,
    pub dests: Vec<Dest>,
    /// One entry per change of `dests` since the previous snapshot, oldest first. The kernel
    /// sees every ipvsadm command (a restore too) as its own event, and wrr's position depends
    /// on each; a snapshot can carry many (an atomic restore), so workers replay them.
    pub list_changes: Vec<WeightSummary>,
    pub incarnation: u64,
}

impl Service {
    pub fn dest(&self, addr: Ipv4Addr, port: u16) -> Option<&Dest> {
        self.dests.iter().find(|d| d.addr == addr && d.port == port)
    }
}

/// A deleted destination kept for its connections and counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrashedDest {
    pub dest: Dest,
    /// The service it belonged to (re-adding to a service with this key restores it).
    pub service: ServiceKey,
    /// Generation of the first configuration without it. Workers that acknowledged this
    /// generation or later create no new connection to it.
    pub removed_in: u64,
}

/// Connection timeouts in seconds (`--set` edits tcp = ESTABLISHED, tcpfin = FIN_WAIT,
/// udp = UDP_NORMAL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timeouts {
    pub tcp: [u32; N_TCP_STATES],
    pub udp: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp: DEFAULT_TCP_TIMEOUTS,
            udp: DEFAULT_UDP_TIMEOUT,
        }
    }
}

impl Timeouts {
    /// `(tcp, tcpfin, udp)` as `ipvsadm -L --timeout` shows them.
    pub fn triple(&self) -> (u32, u32, u32) {
        (
            self.tcp[TcpState::Established.index()],
            self.tcp[TcpState::FinWait.index()],
            self.udp,
        )
    }

    pub fn tcp_state(&self, s: TcpState) -> u32 {
        self.tcp[s.index()]
    }
}

/// A failed configuration operation. `Display` is the message ipvsadm prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// add service, EEXIST.
    #[error("Service already exists")]
    ServiceExists,
    /// edit/delete/zero service, ESRCH.
    #[error("No such service")]
    NoSuchService,
    /// add/edit/delete dest on a missing service, ESRCH.
    #[error("Service not defined")]
    ServiceNotDefined,
    /// add dest, EEXIST.
    #[error("Destination already exists")]
    DestExists,
    /// edit/delete dest, ENOENT.
    #[error("No such destination")]
    NoSuchDest,
    /// add/edit service with an unknown scheduler, ENOENT.
    #[error("Scheduler or persistence engine not found")]
    SchedulerNotFound,
    /// ERANGE (strerror): l_threshold > u_threshold, weight or timeout out of range.
    #[error("Numerical result out of range")]
    OutOfRange,
    /// EINVAL: e.g. a real server address that is not unicast, fwmark 0.
    #[error("Invalid operation.  Possibly wrong module version, address not unicast, ...")]
    Invalid,
    /// ENOMEM: out of service or destination ids.
    #[error("Memory allocation problem")]
    NoMemory,
    /// ipvsadm's own check (exit 2) for `-t VIP:0` without `-p`.
    #[error("Zero port specified for non-persistent service")]
    ZeroPortNonPersistent,
    /// rvs mark rules (no ipvsadm equivalent).
    #[error("Mark rule already exists")]
    MarkRuleExists,
    #[error("No such mark rule")]
    NoSuchMarkRule,
}

/// The editable configuration. Build with [`Config::default`] and the edit methods.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    generation: u64,
    next_incarnation: u64,
    /// Bitmap of dest ids in use (live or trashed).
    dest_ids: Vec<u64>,
    services: Vec<Service>,
    mark_rules: Vec<MarkRule>,
    timeouts: Timeouts,
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

/// Result of the fast-path service lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SvcLookup {
    /// The destination address is not a virtual address.
    NotVip,
    /// A virtual address, but no service takes this protocol/port.
    NoService,
    /// Index into [`Snapshot::services`].
    Found(usize),
}

/// A small open-addressing map from u64 keys to u32 values, built once per snapshot. The fast
/// path does one multiply and (usually) one probe; there is no allocation after construction.
#[derive(Debug, Clone, Default)]
struct FlatMap {
    slots: Vec<(u64, u32)>,
    mask: usize,
}

const EMPTY: u32 = u32::MAX;

impl FlatMap {
    fn with_len(n: usize) -> FlatMap {
        let cap = (n * 2).next_power_of_two().max(8);
        FlatMap {
            slots: vec![(0, EMPTY); cap],
            mask: cap - 1,
        }
    }

    fn home(&self, key: u64) -> usize {
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & self.mask
    }

    /// First value wins on duplicate keys.
    fn insert(&mut self, key: u64, val: u32) {
        let mut i = self.home(key);
        // Capacity is at least twice the entry count, so a free slot exists.
        for _ in 0..self.slots.len() {
            match self.slots.get_mut(i) {
                Some(slot) if slot.1 == EMPTY => {
                    *slot = (key, val);
                    return;
                }
                Some(slot) if slot.0 == key => return,
                _ => i = (i + 1) & self.mask,
            }
        }
    }

    fn get(&self, key: u64) -> Option<u32> {
        let mut i = self.home(key);
        for _ in 0..self.slots.len() {
            match self.slots.get(i) {
                Some(&(k, v)) if v != EMPTY && k == key => return Some(v),
                Some(&(_, v)) if v == EMPTY => return None,
                None => return None,
                _ => i = (i + 1) & self.mask,
            }
        }
        None
    }
}

fn addr_key(proto: u8, addr: Ipv4Addr, port: u16) -> u64 {
    ((proto as u64) << 48) | ((u32::from(addr) as u64) << 16) | port as u64
}

/// Per-VIP lookup data.
#[derive(Debug, Clone, Default)]
struct VipInfo {
    /// Port-zero service per protocol (TCP, UDP).
    port0: [Option<u32>; 2],
    /// Range in `Index::vip_rules` of the mark rules for this VIP whose mark has a service.
    rules: (u32, u32),
}

#[derive(Debug, Clone, Default)]
struct Index {
    /// (proto, vaddr, vport) -> service index.
    exact: FlatMap,
    /// vaddr -> index into `vips`.
    vip_of: FlatMap,
    vips: Vec<VipInfo>,
    /// (rule, service index) grouped by VIP, in rule order.
    vip_rules: Vec<(MarkRule, u32)>,
    /// (proto, addr, port) of every live destination; port 0 for "any port" destinations.
    dest_endpoints: FlatMap,
}

/// An immutable, validated configuration plus its lookup index.
#[derive(Debug, Clone)]
pub struct Snapshot {
    config: Config,
    index: Index,
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot::empty()
    }
}

impl Snapshot {
    pub fn empty() -> Snapshot {
        Snapshot {
            config: Config::default(),
            index: Index::build(&Config::default()),
        }
    }

    /// Validates `config` and builds the lookup index.
    pub fn new(config: Config) -> Result<Snapshot, ConfigError> {
        config.validate()?;
        let index = Index::build(&config);
        Ok(Snapshot { config, index })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn generation(&self) -> u64 {
        self.config.generation
    }

    pub fn services(&self) -> &[Service] {
        &self.config.services
    }

    pub fn service(&self, key: &ServiceKey) -> Option<&Service> {
        self.config.service(key)
    }

    pub fn timeouts(&self) -> &Timeouts {
        &self.config.timeouts
    }

    /// Applies `f` to a copy of the configuration and publishes the result.
    pub fn edit<T>(
        &self,
        f: impl FnOnce(&mut Config) -> Result<T, ConfigError>,
    ) -> Result<Snapshot, ConfigError> {
        let mut c = self.config.clone();
        c.begin_batch();
        f(&mut c)?;
        // The edit methods keep every invariant `validate` checks: only index.
        let index = Index::build(&c);
        Ok(Snapshot { config: c, index })
    }

    pub fn add_service(&self, spec: ServiceSpec) -> Result<Snapshot, ConfigError> {
        self.edit(|c| c.add_service(spec))
    }

    pub fn edit_service(&self, spec: ServiceSpec) -> Result<Snapshot, ConfigError> {
        self.edit(|c| c.edit_service(spec))
    }

    pub fn delete_service(&self, key: &ServiceKey) -> Result<Snapshot, ConfigError> {
        self.edit(|c| c.delete_service(key))
    }

    pub fn add_dest(&self, key: &ServiceKey, spec: DestSpec) -> Result<Snapshot, ConfigError> {
        self.edit(|c| c.add_dest(key, spec))
    }

    pub fn edit_dest(&self, key: &ServiceKey, spec: DestSpec) -> Result<Snapshot, ConfigError> {
        self.edit(|c| c.edit_dest(key, spec))
    }

    pub fn delete_dest(
        &self,
        key: &ServiceKey,
        addr: Ipv4Addr,
        port: u16,
    ) -> Result<Snapshot, ConfigError> {
        self.edit(|c| c.delete_dest(key, addr, port))
    }

    pub fn set_timeouts(&self, tcp: u32, tcpfin: u32, udp: u32) -> Result<Snapshot, ConfigError> {
        self.edit(|c| c.set_timeouts(tcp, tcpfin, udp))
    }

    /// Fast path: the service for a packet to `daddr:dport`, in the kernel's order (fwmark,
    /// exact address, port zero). No allocation.
    pub fn lookup(&self, proto: Proto, daddr: Ipv4Addr, dport: u16) -> SvcLookup {
        let ix = &self.index;
        let Some(vi) = ix.vip_of.get(u32::from(daddr) as u64) else {
            return SvcLookup::NotVip;
        };
        let Some(vip) = ix.vips.get(vi as usize) else {
            return SvcLookup::NotVip;
        };
        let (lo, hi) = vip.rules;
        if let Some(rules) = ix.vip_rules.get(lo as usize..hi as usize) {
            if let Some((_, s)) = rules.iter().find(|(r, _)| r.matches(proto, dport)) {
                return SvcLookup::Found(*s as usize);
            }
        }
        if let Some(s) = ix.exact.get(addr_key(proto.number(), daddr, dport)) {
            return SvcLookup::Found(s as usize);
        }
        match vip.port0[proto.slot()] {
            Some(s) => SvcLookup::Found(s as usize),
            None => SvcLookup::NoService,
        }
    }

    pub fn is_vip(&self, addr: Ipv4Addr) -> bool {
        self.index.vip_of.get(u32::from(addr) as u64).is_some()
    }

    /// Whether `addr:port` is a live real server of some service (of any protocol family
    /// member `proto`): the private-port test for "reply without a connection".
    pub fn is_dest_endpoint(&self, proto: Proto, addr: Ipv4Addr, port: u16) -> bool {
        let e = &self.index.dest_endpoints;
        e.get(addr_key(proto.number(), addr, port)).is_some()
            || e.get(addr_key(proto.number(), addr, 0)).is_some()
    }
}

impl Index {
    fn build(c: &Config) -> Index {
        let n = c.services.len();
        let mut ix = Index {
            exact: FlatMap::with_len(n),
            vip_of: FlatMap::with_len(n + c.mark_rules.len()),
            vips: Vec::new(),
            vip_rules: Vec::new(),
            dest_endpoints: FlatMap::with_len(
                2 * c.services.iter().map(|s| s.dests.len()).sum::<usize>(),
            ),
        };
        let mut vip_list: Vec<Ipv4Addr> = Vec::new();
        let mut vip_pos: std::collections::HashMap<Ipv4Addr, usize> = Default::default();
        let mut vip_idx = |ix: &mut Index, a: Ipv4Addr| -> usize {
            *vip_pos.entry(a).or_insert_with(|| {
                vip_list.push(a);
                ix.vips.push(VipInfo::default());
                ix.vip_of
                    .insert(u32::from(a) as u64, (vip_list.len() - 1) as u32);
                vip_list.len() - 1
            })
        };
        for (i, s) in c.services.iter().enumerate() {
            match s.key {
                ServiceKey::Addr {
                    proto,
                    vaddr,
                    vport,
                } => {
                    let v = vip_idx(&mut ix, vaddr);
                    if vport == 0 {
                        if let Some(vi) = ix.vips.get_mut(v) {
                            vi.port0[proto.slot()] = Some(i as u32);
                        }
                    } else {
                        ix.exact
                            .insert(addr_key(proto.number(), vaddr, vport), i as u32);
                    }
                }
                ServiceKey::Fwmark(_) => {}
            }
            for d in &s.dests {
                let protos: &[Proto] = match s.key {
                    ServiceKey::Addr { proto, .. } => match proto {
                        Proto::Tcp => &[Proto::Tcp],
                        Proto::Udp => &[Proto::Udp],
                    },
                    ServiceKey::Fwmark(_) => &[Proto::Tcp, Proto::Udp],
                };
                for p in protos {
                    ix.dest_endpoints
                        .insert(addr_key(p.number(), d.addr, d.port), 0);
                }
            }
        }
        // Mark rules whose mark has a service, grouped per VIP, keeping rule order.
        let marked: Vec<(MarkRule, u32)> = c
            .mark_rules
            .iter()
            .filter_map(|r| {
                c.services
                    .iter()
                    .position(|s| s.key == ServiceKey::Fwmark(r.mark))
                    .map(|s| (*r, s as u32))
            })
            .collect();
        for (r, _) in &marked {
            vip_idx(&mut ix, r.vaddr);
        }
        for (v, addr) in vip_list.iter().enumerate().filter(|_| !marked.is_empty()) {
            let lo = ix.vip_rules.len() as u32;
            ix.vip_rules
                .extend(marked.iter().filter(|(r, _)| r.vaddr == *addr).copied());
            let hi = ix.vip_rules.len() as u32;
            if let Some(vi) = ix.vips.get_mut(v) {
                vi.rules = (lo, hi);
            }
        }
        ix
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vip() -> Ipv4Addr {
        Ipv4Addr::new(192, 0, 2, 10)
    }
    fn rip(n: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, n)
    }

    fn base() -> (Config, ServiceKey) {
        let mut c = Config::default();
        let k = ServiceKey::tcp(vip(), 80);
        c.add_service(ServiceSpec::new(k).scheduler("rr")).unwrap();
        (c, k)
    }

    #[test]
    fn error_messages_are_ipvsadm_text() {
        let cases = [
            (ConfigError::ServiceExists, "Service already exists"),
            (ConfigError::NoSuchService, "No such service"),
            (ConfigError::ServiceNotDefined, "Service not defined"),
            (ConfigError::DestExists, "Destination already exists"),
            (ConfigError::NoSuchDest, "No such destination"),
            (
                ConfigError::SchedulerNotFound,
                "Scheduler or persistence engine not found",
            ),
            (ConfigError::OutOfRange, "Numerical result out of range"),
            (
                ConfigError::Invalid,
                "Invalid operation.  Possibly wrong module version, address not unicast, ...",
            ),
            (ConfigError::NoMemory, "Memory allocation problem"),
            (
                ConfigError::ZeroPortNonPersistent,
                "Zero port specified for non-persistent service",
            ),
        ];
        for (e, s) in cases {
            assert_eq!(e.to_string(), s);
        }
    }

    #[test]
    fn service_add_edit_delete() {
        let (mut c, k) = base();
        assert_eq!(c.generation(), 1);
        assert_eq!(
            c.add_service(ServiceSpec::new(k)),
            Err(ConfigError::ServiceExists)
        );
        let k2 = ServiceKey::udp(vip(), 53);
        assert_eq!(
            c.edit_service(ServiceSpec::new(k2)),
            Err(ConfigError::NoSuchService)
        );
        assert_eq!(c.delete_service(&k2), Err(ConfigError::NoSuchService));
        assert_eq!(
            c.add_service(ServiceSpec::new(k2).scheduler("nosuch")),
            Err(ConfigError::SchedulerNotFound)
        );
        assert_eq!(
            c.add_service(ServiceSpec::new(ServiceKey::tcp(vip(), 0))),
            Err(ConfigError::ZeroPortNonPersistent)
        );
        let id2 = c.add_service(ServiceSpec::new(k2)).unwrap();
        assert_eq!(id2, ServiceId(1));
        c.edit_service(
            ServiceSpec::new(k)
                .scheduler("wrr")
                .persistent(Persistence::default()),
        )
        .unwrap();
        let s = c.service(&k).unwrap();
        assert_eq!(s.scheduler, "wrr");
        assert_eq!(s.persistence.map(|p| p.timeout), Some(360));
        c.delete_service(&k).unwrap();
        assert!(c.service(&k).is_none());
        // The freed id is reused.
        assert_eq!(c.add_service(ServiceSpec::new(k)).unwrap(), ServiceId(0));
        assert_eq!(c.generation(), 5);
        c.validate().unwrap();
    }

    #[test]
    fn failed_edit_changes_nothing() {
        let (mut c, k) = base();
        c.add_dest(&k, DestSpec::new(rip(1), 80)).unwrap();
        let before = c.clone();
        assert_eq!(
            c.edit_dest(&k, DestSpec::new(rip(1), 80).thresholds(10, 20)),
            Err(ConfigError::OutOfRange)
        );
        assert_eq!(
            c.add_dest(&k, DestSpec::new(rip(2), 80).thresholds(0, 5)),
            Err(ConfigError::OutOfRange)
        );
        assert_eq!(
            c.add_dest(&k, DestSpec::new(rip(2), 80).weight(65536)),
            Err(ConfigError::OutOfRange)
        );
        assert_eq!(
            c.add_dest(&k, DestSpec::new(Ipv4Addr::new(224, 0, 0, 1), 80)),
            Err(ConfigError::Invalid)
        );
        assert_eq!(
            c.set_timeouts(MAX_TIMEOUT + 1, 0, 0),
            Err(ConfigError::OutOfRange)
        );
        assert_eq!(c, before);
    }

    #[test]
    fn dest_add_edit_delete_and_trash_restore() {
        let (mut c, k) = base();
        let missing = ServiceKey::tcp(vip(), 81);
        assert_eq!(
            c.add_dest(&missing, DestSpec::new(rip(1), 80)),
            Err(ConfigError::ServiceNotDefined)
        );
        assert_eq!(
            c.delete_dest(&missing, rip(1), 80),
            Err(ConfigError::ServiceNotDefined)
        );
        let d1 = c.add_dest(&k, DestSpec::new(rip(1), 0)).unwrap();
        // Port 0 stays 0, as in the kernel (`-> RIP:0`; connections then go to the vport).
        // ipvsadm copies the vport only when -r has no port at all, before the request.
        assert_eq!(c.service(&k).unwrap().dests[0].port, 0);
        assert_eq!(
            c.add_dest(&k, DestSpec::new(rip(1), 0)),
            Err(ConfigError::DestExists)
        );
        let d2 = c
            .add_dest(&k, DestSpec::new(rip(2), 8080).weight(3))
            .unwrap();
        assert_eq!((d1, d2), (DestId(0), DestId(1)));
        assert_eq!(
            c.edit_dest(&k, DestSpec::new(rip(3), 80)),
            Err(ConfigError::NoSuchDest)
        );
        c.edit_dest(&k, DestSpec::new(rip(2), 8080).weight(0))
            .unwrap();
        let d = c.service(&k).unwrap().dest(rip(2), 8080).unwrap().clone();
        assert_eq!((d.weight, d.last_weight), (0, 3));
        let inc = d.incarnation;

        c.delete_dest(&k, rip(2), 8080).unwrap();
        assert_eq!(
            c.delete_dest(&k, rip(2), 8080),
            Err(ConfigError::NoSuchDest)
        );
        assert_eq!(c.trash().len(), 1);
        assert_eq!(c.trash()[0].removed_in, c.generation());
        // A new server cannot take the trashed id.
        let d3 = c.add_dest(&k, DestSpec::new(rip(3), 80)).unwrap();
        assert_eq!(d3, DestId(2));
        // Re-adding restores id and incarnation.
        let again = c
            .add_dest(&k, DestSpec::new(rip(2), 8080).weight(5))
            .unwrap();
        assert_eq!(again, DestId(1));
        let d = c.service(&k).unwrap().dest(rip(2), 8080).unwrap();
        assert_eq!((d.incarnation, d.weight, d.last_weight), (inc, 5, 5));
        assert!(c.trash().is_empty());
        // List order is the kernel's: newest first (the re-added server is the newest).
        let order: Vec<u16> = c
            .service(&k)
            .unwrap()
            .dests
            .iter()
            .map(|d| d.id.0)
            .collect();
        assert_eq!(order, [1, 2, 0]);

        // Deleting the service trashes all of its servers; purge frees the ids.
        c.delete_service(&k).unwrap();
        assert_eq!(c.trash().len(), 3);
        c.purge_trash(|t| t.dest.id == DestId(2));
        assert_eq!(c.trash().len(), 1);
        c.add_service(ServiceSpec::new(k)).unwrap();
        assert_eq!(
            c.add_dest(&k, DestSpec::new(rip(9), 80)).unwrap(),
            DestId(0)
        );
        c.validate().unwrap();
    }

    #[test]
    fn timeouts_set_skips_zero() {
        let mut c = Config::default();
        assert_eq!(c.timeouts().triple(), (900, 120, 300));
        c.set_timeouts(0, 60, 0).unwrap();
        assert_eq!(c.timeouts().triple(), (900, 60, 300));
        c.set_timeouts(100, 0, 20).unwrap();
        assert_eq!(c.timeouts().triple(), (100, 60, 20));
        assert_eq!(c.timeouts().tcp_state(TcpState::SynRecv), 60);
    }

    #[test]
    fn persistence_limits() {
        let mut c = Config::default();
        let k = ServiceKey::tcp(vip(), 0);
        let p = |t| Persistence {
            timeout: t,
            netmask: Ipv4Addr::new(255, 255, 255, 0),
        };
        assert_eq!(
            c.add_service(ServiceSpec::new(k).persistent(p(0))),
            Err(ConfigError::OutOfRange)
        );
        assert_eq!(
            c.add_service(ServiceSpec::new(k).persistent(p(MAX_TIMEOUT + 1))),
            Err(ConfigError::OutOfRange)
        );
        c.add_service(ServiceSpec::new(k).persistent(p(MAX_TIMEOUT)))
            .unwrap();
        assert_eq!(
            c.add_service(ServiceSpec::new(ServiceKey::Fwmark(0))),
            Err(ConfigError::Invalid)
        );
    }

    #[test]
    fn ids_run_out_with_enomem() {
        let mut c = Config::default();
        let k = ServiceKey::udp(vip(), 53);
        for s in 0..64u16 {
            c.add_service(ServiceSpec::new(ServiceKey::udp(vip(), 1000 + s)))
                .unwrap();
        }
        c.add_service(ServiceSpec::new(k)).unwrap();
        for i in 0..MAX_DESTS {
            let a = Ipv4Addr::from(0x0a00_0000u32 + i as u32 + 1);
            let key = ServiceKey::udp(vip(), 1000 + (i % 64) as u16);
            assert_eq!(c.add_dest(&key, DestSpec::new(a, 53)), Ok(DestId(i as u16)));
        }
        assert_eq!(
            c.add_dest(&k, DestSpec::new(Ipv4Addr::new(11, 0, 0, 1), 53)),
            Err(ConfigError::NoMemory)
        );
    }

    #[test]
    fn lookup_order_fwmark_exact_port0() {
        let mut c = Config::default();
        let exact = ServiceKey::tcp(vip(), 80);
        let zero = ServiceKey::tcp(vip(), 0);
        let fw = ServiceKey::Fwmark(7);
        c.add_service(ServiceSpec::new(exact)).unwrap();
        c.add_service(ServiceSpec::new(zero).persistent(Persistence::default()))
            .unwrap();
        c.add_service(ServiceSpec::new(fw)).unwrap();
        let rule = MarkRule {
            mark: 7,
            proto: Proto::Tcp,
            vaddr: vip(),
            port_lo: 8000,
            port_hi: 8010,
        };
        c.add_mark_rule(rule).unwrap();
        assert_eq!(c.add_mark_rule(rule), Err(ConfigError::MarkRuleExists));
        // A rule for a mark nobody serves makes its address no VIP by itself.
        let other = Ipv4Addr::new(192, 0, 2, 99);
        c.add_mark_rule(MarkRule {
            mark: 8,
            vaddr: other,
            ..rule
        })
        .unwrap();
        let s = Snapshot::new(c.clone()).unwrap();
        assert_eq!(s.lookup(Proto::Tcp, vip(), 80), SvcLookup::Found(0));
        assert_eq!(s.lookup(Proto::Tcp, vip(), 443), SvcLookup::Found(1));
        assert_eq!(s.lookup(Proto::Tcp, vip(), 8005), SvcLookup::Found(2));
        assert_eq!(s.lookup(Proto::Udp, vip(), 8005), SvcLookup::NoService);
        assert_eq!(s.lookup(Proto::Udp, vip(), 80), SvcLookup::NoService);
        assert_eq!(s.lookup(Proto::Tcp, rip(1), 80), SvcLookup::NotVip);
        assert_eq!(s.lookup(Proto::Tcp, other, 8005), SvcLookup::NotVip);
        assert!(s.is_vip(vip()) && !s.is_vip(other));
        // Deleting the exact service uncovers the port-zero one.
        let s = s.delete_service(&exact).unwrap();
        assert_eq!(s.lookup(Proto::Tcp, vip(), 80), SvcLookup::Found(0));
        assert_eq!(s.services()[0].key, zero);
        c.delete_mark_rule(&rule).unwrap();
        assert_eq!(c.delete_mark_rule(&rule), Err(ConfigError::NoSuchMarkRule));
    }

    #[test]
    fn dest_endpoints() {
        let (c, k) = base();
        let s = Snapshot::new(c)
            .unwrap()
            .add_dest(&k, DestSpec::new(rip(1), 8080))
            .unwrap();
        assert!(s.is_dest_endpoint(Proto::Tcp, rip(1), 8080));
        assert!(!s.is_dest_endpoint(Proto::Udp, rip(1), 8080));
        assert!(!s.is_dest_endpoint(Proto::Tcp, rip(1), 80));
        let s = s.delete_dest(&k, rip(1), 8080).unwrap();
        assert!(!s.is_dest_endpoint(Proto::Tcp, rip(1), 8080));
    }

    #[test]
    fn snapshot_edit_is_atomic() {
        let (c, k) = base();
        let s = Snapshot::new(c).unwrap();
        let g = s.generation();
        let r = s.edit(|c| {
            c.add_dest(&k, DestSpec::new(rip(1), 80))?;
            c.add_dest(&k, DestSpec::new(rip(1), 80))
        });
        assert_eq!(r.map(|_| ()), Err(ConfigError::DestExists));
        assert_eq!(s.generation(), g);
        assert!(s.service(&k).unwrap().dests.is_empty());
    }

    #[test]
    fn validate_rejects_broken_configs() {
        let (mut c, k) = base();
        c.add_dest(&k, DestSpec::new(rip(1), 80)).unwrap();
        let mut bad = c.clone();
        bad.services[0].dests[0].l_threshold = 9;
        assert_eq!(Snapshot::new(bad).map(|_| ()), Err(ConfigError::OutOfRange));
        let mut bad = c.clone();
        let d = bad.services[0].dests[0].clone();
        bad.services[0].dests.push(Dest { id: DestId(5), ..d });
        assert_eq!(bad.validate(), Err(ConfigError::DestExists));
        let mut bad = c.clone();
        let d = bad.services[0].dests[0].clone();
        bad.services[0].dests.push(Dest { addr: rip(2), ..d });
        assert_eq!(bad.validate(), Err(ConfigError::Invalid));
        let mut bad = c;
        bad.timeouts.udp = 0;
        assert_eq!(bad.validate(), Err(ConfigError::OutOfRange));
    }
}
