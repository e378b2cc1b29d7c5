//! The kernel exception path, management side: each port's kernel twin (a kernel interface
//! with the port's MAC, MTU and addresses, made with DPDK's virtio-user over vhost-net, or
//! net_tap where vhost-net is missing), the management core's polling of it, and following
//! the addresses the host puts on it (netlink) so that rvs owns them too.
//!
//! Workers send up what is the host's (docs/architecture.md, "The exception path") on a ring
//! per worker and port; the management core moves it into the twin, and what the kernel
//! transmits on the twin out of the port, through worker 0's management ring. Both ways are
//! bounded: a full ring or twin queue drops, counted.

use super::mgmt::{Mgmt, MgmtTx};
use super::netlink::{HostEvent, HostWatch, NetlinkError, Rtnl};
use crate::config::{IfAddr, Interface, KernelBackend, KernelTwin};
use crate::dataplane::counters::bump;
use crate::dataplane::shared::{KernelCounters, Shared};
use crate::dpdk::{self, Burst, Mempool, Port, PortConf, RingRx, RxQueue, TxQueue};
use crate::lb::PortRole;
use crate::net::MacAddr;
use std::path::Path;

const VHOST_NET: &str = "/dev/vhost-net";
const TUN: &str = "/dev/net/tun";

/// Bursts moved per direction and ring per management-loop iteration: bounds the management
/// core's work, while the rate limit in the workers bounds what arrives.
const BURSTS_PER_POLL: usize = 8;

/// The backend a twin is made with, as chosen at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    VirtioUser,
    Tap,
}

impl Backend {
    /// As the configuration spells it.
    pub fn name(self) -> &'static str {
        match self {
            Backend::VirtioUser => KernelBackend::VirtioUser,
            Backend::Tap => KernelBackend::Tap,
        }
        .name()
    }
}

/// Picks the backend for `k` from what exists on this host (`vhost_net`, `tun`: whether
/// /dev/vhost-net and /dev/net/tun exist), with the reason for the log. An explicit choice
/// that cannot work is an error.
pub fn choose_backend(
    k: &KernelTwin,
    vhost_net: bool,
    tun: bool,
) -> Result<(Backend, &'static str), String> {
    match k.backend {
        KernelBackend::Auto if vhost_net => Ok((Backend::VirtioUser, "vhost-net present")),
        KernelBackend::Auto if tun => Ok((
            Backend::Tap,
            "vhost-net missing (no /dev/vhost-net: modprobe vhost_net), falling back to net_tap",
        )),
        KernelBackend::VirtioUser if vhost_net => Ok((Backend::VirtioUser, "configured")),
        KernelBackend::Tap if tun => Ok((Backend::Tap, "configured")),
        KernelBackend::VirtioUser => Err(format!(
            "kernel_interface {:?}: kernel_backend \"virtio-user\" needs {VHOST_NET} (modprobe \
             vhost_net), which this host does not have",
            k.name
        )),
        KernelBackend::Tap | KernelBackend::Auto => Err(format!(
            "kernel_interface {:?}: neither {VHOST_NET} nor {TUN} exists: no kernel twin can be \
             made",
            k.name
        )),
    }
}

/// The DPDK device name and arguments of a twin.
pub fn vdev_args(
    role: PortRole,
    backend: Backend,
    k: &KernelTwin,
    mac: MacAddr,
) -> (String, String) {
    let i = role.index();
    match backend {
        Backend::VirtioUser => (
            format!("net_virtio_user_rvs{i}"),
            format!(
                "path={VHOST_NET},iface={},mac={mac},queues=1,queue_size=1024",
                k.name
            ),
        ),
        Backend::Tap => (
            format!("net_tap_rvs{i}"),
            format!("iface={},mac={mac}", k.name),
        ),
    }
}

/// Checks before EAL: the name is free, and a backend exists.
pub fn precheck(role: &str, i: &Interface) -> Result<(), String> {
    let Some(k) = &i.kernel else {
        return Ok(());
    };
    if Path::new("/sys/class/net").join(&k.name).exists() {
        return Err(format!(
            "{role}.kernel_interface {:?} is taken: an interface of that name exists (delete it or \
             choose another name)",
            k.name
        ));
    }
    choose_backend(k, Path::new(VHOST_NET).exists(), Path::new(TUN).exists()).map(|_| ())
}

/// One port's twin, running.
pub struct Twin {
    pub role: PortRole,
    pub name: String,
    pub backend: Backend,
    pub ifindex: u32,
    /// Deleted from outside: what comes up for it is dropped (counted) until a restart.
    pub gone: bool,
    /// Administratively up, as last seen (the kernel repeats link notifications: log changes).
    up: bool,
    rxq: RxQueue,
    txq: TxQueue,
    /// From each worker.
    from_workers: Vec<RingRx>,
}

impl Twin {
    /// "NAME (backend)", as `rvsadm --stats-ports` shows it.
    pub fn describe(&self) -> String {
        if self.gone {
            format!("{} ({}, gone)", self.name, self.backend.name())
        } else {
            format!("{} ({})", self.name, self.backend.name())
        }
    }

    /// Moves frames both ways with bounded work; returns how many moved.
    pub fn poll(&mut self, tx: &mut MgmtTx, c: &KernelCounters) -> usize {
        let mut moved = 0;
        let mut b = Burst::new();
        for ring in &mut self.from_workers {
            for _ in 0..BURSTS_PER_POLL {
                let n = ring.dequeue(&mut b);
                if n == 0 {
                    break;
                }
                moved += n;
                if !self.gone {
                    self.txq.tx_burst(&mut b);
                }
                // Whatever the twin did not take is freed with the burst.
                if !b.is_empty() {
                    bump(&c.drops, b.len() as u64);
                    b = Burst::new();
                }
            }
        }
        for _ in 0..BURSTS_PER_POLL {
            let n = self.rxq.rx_burst(&mut b);
            if n == 0 {
                break;
            }
            moved += n;
            let queued = tx.enqueue(self.role, &mut b);
            bump(&c.from_kernel, queued as u64);
            if !b.is_empty() {
                bump(&c.drops, b.len() as u64);
                b = Burst::new();
            }
        }
        moved
    }
}

/// Makes the twin of a started port: the DPDK device (its `Port` goes to `owned`, torn down
/// with the others), then, over netlink, the kernel side: up, the port's MTU (and MAC, which
/// virtio-user does not set itself) and its addresses.
pub fn create(
    role: PortRole,
    iface: &Interface,
    mac: MacAddr,
    pool: &Mempool,
    from_workers: Vec<RingRx>,
    rtnl: &mut Rtnl,
    owned: &mut Vec<Port>,
) -> Result<Twin, String> {
    let Some(k) = &iface.kernel else {
        return Err(format!("{} port has no kernel_interface", role.name()));
    };
    let (backend, why) = choose_backend(k, Path::new(VHOST_NET).exists(), Path::new(TUN).exists())?;
    let (dev, args) = vdev_args(role, backend, k, mac);
    let fail = |e: dpdk::Error| format!("{} kernel twin {:?}: {e}", role.name(), k.name);
    dpdk::probe_vdev(&dev, &args).map_err(fail)?;
    let mut port = Port::by_name(&dev).map_err(fail)?;
    let conf = PortConf {
        rx_queues: 1,
        tx_queues: 1,
        // Plenty for the rate the workers let through; the default 1024 would tie up mbufs.
        rx_desc: 256,
        tx_desc: 256,
        ..PortConf::default()
    };
    let (mut rx, mut tx) = port.configure(&conf, pool).map_err(fail)?;
    port.start().map_err(fail)?;
    owned.push(port);
    let (Some(rxq), Some(txq)) = (rx.pop(), tx.pop()) else {
        return Err(format!(
            "{} kernel twin {:?}: no queues",
            role.name(),
            k.name
        ));
    };
    let nl = |e: NetlinkError| format!("{} kernel twin {:?}: {e}", role.name(), k.name);
    let ifindex = rtnl.ifindex(&k.name).map_err(nl)?.ok_or_else(|| {
        format!(
            "{} kernel twin {:?}: the driver made no such interface",
            role.name(),
            k.name
        )
    })?;
    if backend == Backend::VirtioUser {
        rtnl.set_mac(ifindex, mac.0).map_err(nl)?;
    }
    rtnl.set_up(ifindex, Some(u32::from(iface.mtu)))
        .map_err(nl)?;
    for a in &iface.addresses {
        rtnl.add_addr(ifindex, *a).map_err(nl)?;
    }
    tracing::info!(
        port = role.name(),
        twin = %k.name,
        backend = backend.name(),
        reason = why,
        ifindex,
        rate = k.rate,
        "kernel twin up"
    );
    Ok(Twin {
        role,
        name: k.name.clone(),
        backend,
        ifindex,
        gone: false,
        up: true,
        rxq,
        txq,
        from_workers,
    })
}

/// The exception path as the management loop drives it.
pub(super) struct Twins {
    pub(super) twins: Vec<Twin>,
    /// Netlink, when there is any twin.
    pub(super) host: Option<Host>,
}

impl Twins {
    /// Moves traffic both ways and follows the host's changes; returns frames moved.
    pub(super) fn service(&mut self, mgmt: &Mgmt, tx: &mut MgmtTx) -> usize {
        let shared = &*mgmt.shared;
        let mut moved = 0;
        for t in &mut self.twins {
            moved += t.poll(tx, &shared.kernel[t.role.index()]);
        }
        if let Some(h) = self.host.as_mut() {
            if h.follow(&mut self.twins, shared, tx) {
                let mut k = mgmt.kernel.lock().unwrap_or_else(|e| e.into_inner());
                for t in &self.twins {
                    k[t.role.index()] = t.describe();
                }
            }
        }
        moved
    }
}

/// The host's side of the twins: netlink for requests and notifications.
pub struct Host {
    pub rtnl: Rtnl,
    watch: Option<HostWatch>,
    events: Vec<HostEvent>,
}

impl Host {
    pub fn open() -> Result<Host, String> {
        let rtnl = Rtnl::open().map_err(|e| e.to_string())?;
        let watch = HostWatch::open().map_err(|e| e.to_string())?;
        Ok(Host {
            rtnl,
            watch: Some(watch),
            events: Vec::new(),
        })
    }

    /// Drops the notifications of the twins' own setup (links coming up, the configured
    /// addresses): they describe what rvs just did, and would log a spurious "set down".
    pub fn settle(&mut self) {
        if let Some(w) = self.watch.as_mut() {
            self.events.clear();
            while w.poll(&mut self.events).is_ok() && !self.events.is_empty() {
                self.events.clear();
            }
            self.events.clear();
        }
    }

    /// Applies what changed on the twins since the last call (never blocks): an address the
    /// host added becomes rvs's (ARP, ping, services; announced with gratuitous ARP), one it
    /// removed stops being rvs's; a twin deleted from outside is marked gone (then this
    /// returns true). Every change is logged.
    pub fn follow(&mut self, twins: &mut [Twin], shared: &Shared, tx: &mut MgmtTx) -> bool {
        let Some(watch) = self.watch.as_mut() else {
            return false;
        };
        self.events.clear();
        match watch.poll(&mut self.events) {
            Ok(()) => {}
            Err(NetlinkError::Overrun) => {
                tracing::warn!("netlink notifications overran: re-reading the twins' addresses");
                self.resync(twins, shared, tx);
            }
            Err(e) => {
                tracing::error!(error = %e, "netlink watch failed: twins' addresses are no longer followed");
                self.watch = None;
                return false;
            }
        }
        let mut gone = false;
        for ev in std::mem::take(&mut self.events) {
            gone |= apply_event(ev, &mut self.rtnl, twins, shared, tx);
        }
        gone
    }

    fn resync(&mut self, twins: &mut [Twin], shared: &Shared, tx: &mut MgmtTx) {
        for t in twins.iter().filter(|t| !t.gone) {
            match self.rtnl.addrs(t.ifindex) {
                Ok(now) => {
                    let cur = shared.port(t.role).iface.addresses.clone();
                    for a in cur.iter().filter(|a| !now.contains(a)) {
                        set_owned(t, *a, false, shared, tx);
                    }
                    for a in now.iter().filter(|a| !cur.contains(a)) {
                        set_owned(t, *a, true, shared, tx);
                    }
                }
                Err(e) => {
                    tracing::error!(twin = %t.name, error = %e, "cannot read the twin's addresses")
                }
            }
        }
    }
}

fn apply_event(
    ev: HostEvent,
    rtnl: &mut Rtnl,
    twins: &mut [Twin],
    shared: &Shared,
    tx: &mut MgmtTx,
) -> bool {
    let ifindex = match ev {
        HostEvent::AddrAdded { ifindex, .. }
        | HostEvent::AddrRemoved { ifindex, .. }
        | HostEvent::LinkRemoved { ifindex }
        | HostEvent::LinkState { ifindex, .. } => ifindex,
    };
    let Some(t) = twins.iter_mut().find(|t| t.ifindex == ifindex && !t.gone) else {
        return false;
    };
    match ev {
        HostEvent::AddrAdded { addr, .. } => set_owned(t, addr, true, shared, tx),
        // A twin being deleted loses its addresses first (and is unlisted by then): that is
        // not the host giving them up, and the ports keep them.
        HostEvent::AddrRemoved { addr, .. }
            if rtnl.ifindex(&t.name).ok().flatten() == Some(t.ifindex) =>
        {
            set_owned(t, addr, false, shared, tx)
        }
        HostEvent::AddrRemoved { .. } | HostEvent::LinkRemoved { .. } => {
            twin_gone(t);
            return true;
        }
        HostEvent::LinkState { up, .. } if up != t.up => {
            t.up = up;
            if up {
                tracing::info!(port = t.role.name(), twin = %t.name, "kernel twin is up");
            } else {
                tracing::warn!(
                    port = t.role.name(),
                    twin = %t.name,
                    "kernel twin set down: the host's stack does not use this port until it is up"
                );
            }
        }
        HostEvent::LinkState { .. } => {}
    }
    false
}

fn twin_gone(t: &mut Twin) {
    t.gone = true;
    tracing::error!(
        port = t.role.name(),
        twin = %t.name,
        "kernel twin deleted from outside: the exception path of this port is off (what would \
         go up is dropped and counted as kernel_drops; load balancing and the port's addresses \
         are unaffected); restart rvs to recreate it"
    );
}

/// Makes `a` one of the port's addresses (or not) and publishes the port to the workers.
fn set_owned(t: &Twin, a: IfAddr, own: bool, shared: &Shared, tx: &mut MgmtTx) {
    let cur = shared.port(t.role);
    let has = cur.iface.addresses.iter().position(|b| b.addr == a.addr);
    let mut next = (*cur).clone();
    match (own, has) {
        (true, None) => next.iface.addresses.push(a),
        (true, Some(i)) if cur.iface.addresses[i].prefix != a.prefix => {
            next.iface.addresses[i] = a;
        }
        (false, Some(i)) => {
            next.iface.addresses.remove(i);
        }
        _ => return,
    }
    let now: Vec<String> = next.iface.addresses.iter().map(|a| a.to_string()).collect();
    let mac = next.mac;
    shared.ports[t.role.index()].publish(next);
    if own {
        tx.gratuitous(t.role, mac, a.addr);
        tracing::info!(port = t.role.name(), twin = %t.name, address = %a, addresses = %now.join(","), "address added on the kernel twin: rvs owns it now");
    } else {
        tracing::info!(port = t.role.name(), twin = %t.name, address = %a, addresses = %now.join(","), "address removed from the kernel twin: rvs no longer owns it");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn twin(backend: KernelBackend) -> KernelTwin {
        KernelTwin {
            name: "rvs-pub-k".into(),
            backend,
            rate: 1000,
        }
    }

    #[test]
    fn auto_prefers_virtio_user_and_falls_back_to_tap() {
        let k = twin(KernelBackend::Auto);
        assert_eq!(
            choose_backend(&k, true, true).unwrap().0,
            Backend::VirtioUser
        );
        let (b, why) = choose_backend(&k, false, true).unwrap();
        assert_eq!(b, Backend::Tap);
        assert!(why.contains("vhost-net missing"), "{why}");
        let e = choose_backend(&k, false, false).unwrap_err();
        assert!(
            e.contains("/dev/vhost-net") && e.contains("/dev/net/tun"),
            "{e}"
        );
    }

    #[test]
    fn an_explicit_backend_that_cannot_work_is_an_error() {
        let e = choose_backend(&twin(KernelBackend::VirtioUser), false, true).unwrap_err();
        assert!(e.contains("modprobe vhost_net"), "{e}");
        assert_eq!(
            choose_backend(&twin(KernelBackend::Tap), true, true)
                .unwrap()
                .0,
            Backend::Tap
        );
        assert!(choose_backend(&twin(KernelBackend::Tap), true, false).is_err());
    }

    #[test]
    fn device_arguments_carry_name_and_mac() {
        let mac = MacAddr([0x02, 0, 0, 0, 0, 0x13]);
        let k = twin(KernelBackend::Auto);
        let (dev, args) = vdev_args(PortRole::Private, Backend::VirtioUser, &k, mac);
        assert_eq!(dev, "net_virtio_user_rvs1");
        assert_eq!(
            args,
            "path=/dev/vhost-net,iface=rvs-pub-k,mac=02:00:00:00:00:13,queues=1,queue_size=1024"
        );
        let (dev, args) = vdev_args(PortRole::Public, Backend::Tap, &k, mac);
        assert_eq!(dev, "net_tap_rvs0");
        assert_eq!(args, "iface=rvs-pub-k,mac=02:00:00:00:00:13");
    }
}
