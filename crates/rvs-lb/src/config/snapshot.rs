//! [`Snapshot`], the immutable validated configuration workers run, and the lookup index its
//! fast-path service lookup uses.

use super::{
    Config, ConfigError, DestSpec, MarkRule, Proto, Service, ServiceKey, ServiceSpec, Timeouts,
};
use std::net::Ipv4Addr;

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
