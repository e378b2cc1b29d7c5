//! Ethernet ports: configuration, queues, bursts, statistics.

use super::flow::{self, Flow, L4};
use super::mbuf::{Burst, Mempool};
use super::{check, ffi, Error, ErrorKind, Result};
use std::ffi::{CStr, CString};

/// A DPDK port id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortId(pub u16);

/// A queue index on a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QueueId(pub u16);

// RSS hash-function bits of rte_ethdev.h (macros built with RTE_BIT64, which bindgen cannot
// evaluate), for the values rvs programs.
pub const RSS_IPV4: u64 = 1 << 2;
pub const RSS_FRAG_IPV4: u64 = 1 << 3;
pub const RSS_NONFRAG_IPV4_TCP: u64 = 1 << 4;
pub const RSS_NONFRAG_IPV4_UDP: u64 = 1 << 5;
pub const RSS_NONFRAG_IPV4_OTHER: u64 = 1 << 7;
pub const RSS_L3_SRC_ONLY: u64 = 1 << 63;
pub const RSS_L3_DST_ONLY: u64 = 1 << 62;
pub const RSS_L4_SRC_ONLY: u64 = 1 << 61;
pub const RSS_L4_DST_ONLY: u64 = 1 << 60;
// Offload bits (rte_ethdev.h).
pub const RX_OFFLOAD_RSS_HASH: u64 = 1 << 19;
pub const TX_OFFLOAD_IPV4_CKSUM: u64 = 1 << 1;
pub const TX_OFFLOAD_UDP_CKSUM: u64 = 1 << 2;
pub const TX_OFFLOAD_TCP_CKSUM: u64 = 1 << 3;
pub const TX_OFFLOAD_MBUF_FAST_FREE: u64 = 1 << 16;

/// What a port can do, from `rte_eth_dev_info_get`.
#[derive(Debug, Clone)]
pub struct DevInfo {
    pub driver: String,
    pub max_rx_queues: u16,
    pub max_tx_queues: u16,
    pub min_mtu: u16,
    pub max_mtu: u16,
    pub rx_offload_capa: u64,
    pub tx_offload_capa: u64,
    pub flow_type_rss_offloads: u64,
    pub reta_size: u16,
    pub hash_key_size: u8,
}

/// Link state from `rte_eth_link_get_nowait`.
#[derive(Debug, Clone, Copy)]
pub struct LinkStatus {
    pub up: bool,
    pub speed_mbps: u32,
    pub full_duplex: bool,
}

/// The port's basic hardware counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    pub ipackets: u64,
    pub opackets: u64,
    pub ibytes: u64,
    pub obytes: u64,
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    pub rx_nombuf: u64,
}

/// How to configure a port.
#[derive(Debug, Clone, Default)]
pub struct PortConf {
    pub rx_queues: u16,
    pub tx_queues: u16,
    /// RSS hash functions; 0 disables RSS (single queue or driver default spreading).
    pub rss_hf: u64,
    /// RSS key; `None` keeps the driver's.
    pub rss_key: Option<Vec<u8>>,
    pub mtu: u32,
    pub rx_offloads: u64,
    pub tx_offloads: u64,
    pub rx_desc: u16,
    pub tx_desc: u16,
}

/// A port's RSS hash configuration as its driver reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RssConf {
    /// Hash functions (`RSS_*` bits).
    pub hf: u64,
    /// The hash key.
    pub key: Vec<u8>,
}

/// Entries per `rte_eth_rss_reta_entry64` group.
const RETA_GROUP: usize = ffi::RTE_ETH_RETA_GROUP_SIZE as usize;

/// A probed Ethernet port. At most one `Port` exists per device in the process (the one that
/// closes it), and its queues are handed out once: every [`RxQueue`] and [`TxQueue`] has one
/// owner, so no two lcores can ever poll the same queue.
#[derive(Debug)]
pub struct Port {
    id: PortId,
    started: bool,
    /// `configure` succeeded once: the queue handles exist and must not be made again.
    queues_out: bool,
    /// rte_flow rules installed on the port; destroyed before it is closed.
    flows: Vec<Flow>,
}

/// Port ids that have a live [`Port`] handle.
static CLAIMED: std::sync::Mutex<std::collections::BTreeSet<u16>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

fn claimed() -> std::sync::MutexGuard<'static, std::collections::BTreeSet<u16>> {
    CLAIMED.lock().unwrap_or_else(|e| e.into_inner())
}

impl Port {
    /// Finds a port by its device name (e.g. `net_af_packet0` or a PCI address `0000:03:00.0`)
    /// and takes ownership of it; a second handle for a device that has one is an error.
    pub fn by_name(name: &str) -> Result<Port> {
        let c = CString::new(name)
            .map_err(|_| Error::new("port", ErrorKind::InvalidArgument, "bad device name"))?;
        let mut id = 0u16;
        // SAFETY: c is a valid C string; id is a valid out pointer.
        let ret = unsafe { ffi::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) };
        if ret < 0 {
            return Err(Error::new(
                format!("device {name}"),
                ErrorKind::NotFound,
                "not found (not probed: check the EAL device options and that the driver/NIC exists)",
            ));
        }
        if !claimed().insert(id) {
            return Err(Error::new(
                format!("device {name}"),
                ErrorKind::InUse,
                "already in use (another handle of this process owns the port)",
            ));
        }
        Ok(Port {
            id: PortId(id),
            started: false,
            queues_out: false,
            flows: Vec::new(),
        })
    }

    pub fn id(&self) -> PortId {
        self.id
    }

    /// The name the port was probed under.
    pub fn name(&self) -> String {
        let mut buf = [0 as std::os::raw::c_char; 64];
        // SAFETY: buf is RTE_ETH_NAME_MAX_LEN (64) bytes as the API requires.
        let ret = unsafe { ffi::rte_eth_dev_get_name_by_port(self.id.0, buf.as_mut_ptr()) };
        if ret < 0 {
            return format!("port{}", self.id.0);
        }
        // SAFETY: DPDK NUL-terminated the name inside buf.
        unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    pub fn info(&self) -> Result<DevInfo> {
        let mut raw: ffi::rte_eth_dev_info = Default::default();
        // SAFETY: raw is a valid out struct for this port id.
        check("rte_eth_dev_info_get", unsafe {
            ffi::rte_eth_dev_info_get(self.id.0, &mut raw)
        })?;
        let driver = if raw.driver_name.is_null() {
            String::new()
        } else {
            // SAFETY: driver_name points at the driver's static name string.
            unsafe { CStr::from_ptr(raw.driver_name) }
                .to_string_lossy()
                .into_owned()
        };
        Ok(DevInfo {
            driver,
            max_rx_queues: raw.max_rx_queues,
            max_tx_queues: raw.max_tx_queues,
            min_mtu: raw.min_mtu,
            max_mtu: raw.max_mtu,
            rx_offload_capa: raw.rx_offload_capa,
            tx_offload_capa: raw.tx_offload_capa,
            flow_type_rss_offloads: raw.flow_type_rss_offloads,
            reta_size: raw.reta_size,
            hash_key_size: raw.hash_key_size,
        })
    }

    pub fn socket_id(&self) -> i32 {
        // SAFETY: plain query on a valid port id.
        let s = unsafe { ffi::rte_eth_dev_socket_id(self.id.0) };
        s.max(0)
    }

    /// Configures the device and sets up its queues (`rx_queues` RX queues fed from `pool`).
    /// Returns the queue handles, once: after a successful call the queues have owners and a
    /// second call is an error (a failed call hands out nothing and may be retried, e.g.
    /// without RSS).
    pub fn configure(
        &mut self,
        conf: &PortConf,
        pool: &Mempool,
    ) -> Result<(Vec<RxQueue>, Vec<TxQueue>)> {
        if self.queues_out {
            return Err(Error::new(
                "configure",
                ErrorKind::AlreadyConfigured,
                "port already configured: its queues were handed out",
            ));
        }
        let mut c: ffi::rte_eth_conf = Default::default();
        let mut key = conf.rss_key.clone();
        if conf.rss_hf != 0 {
            c.rxmode.mq_mode = ffi::RTE_ETH_MQ_RX_RSS;
            c.rx_adv_conf.rss_conf.rss_hf = conf.rss_hf;
            if let Some(k) = key.as_mut() {
                c.rx_adv_conf.rss_conf.rss_key = k.as_mut_ptr();
                c.rx_adv_conf.rss_conf.rss_key_len = k.len() as u8;
            }
        }
        if conf.mtu != 0 {
            c.rxmode.mtu = conf.mtu;
        }
        c.rxmode.offloads = conf.rx_offloads;
        c.txmode.offloads = conf.tx_offloads;
        // SAFETY: c (and the key buffer it may point into) lives across the call; DPDK copies it.
        check("rte_eth_dev_configure", unsafe {
            ffi::rte_eth_dev_configure(self.id.0, conf.rx_queues, conf.tx_queues, &c)
        })?;
        let mut nrx = if conf.rx_desc == 0 {
            1024
        } else {
            conf.rx_desc
        };
        let mut ntx = if conf.tx_desc == 0 {
            1024
        } else {
            conf.tx_desc
        };
        // SAFETY: valid out pointers.
        check("rte_eth_dev_adjust_nb_rx_tx_desc", unsafe {
            ffi::rte_eth_dev_adjust_nb_rx_tx_desc(self.id.0, &mut nrx, &mut ntx)
        })?;
        let socket = self.socket_id() as u32;
        let mut rxq = Vec::new();
        for q in 0..conf.rx_queues {
            // SAFETY: the pool outlives the port (pools are never freed); NULL rxconf = defaults.
            check("rte_eth_rx_queue_setup", unsafe {
                ffi::rte_eth_rx_queue_setup(
                    self.id.0,
                    q,
                    nrx,
                    socket,
                    std::ptr::null(),
                    pool.as_ptr(),
                )
            })?;
            rxq.push(RxQueue {
                port: self.id.0,
                queue: q,
            });
        }
        let mut txq = Vec::new();
        for q in 0..conf.tx_queues {
            // SAFETY: NULL txconf = driver defaults.
            check("rte_eth_tx_queue_setup", unsafe {
                ffi::rte_eth_tx_queue_setup(self.id.0, q, ntx, socket, std::ptr::null())
            })?;
            txq.push(TxQueue {
                port: self.id.0,
                queue: q,
            });
        }
        self.queues_out = true;
        Ok((rxq, txq))
    }

    pub fn start(&mut self) -> Result<()> {
        // SAFETY: port configured with queues set up.
        check("rte_eth_dev_start", unsafe {
            ffi::rte_eth_dev_start(self.id.0)
        })?;
        self.started = true;
        Ok(())
    }

    /// Stops the port. After this, bursts on its queues return 0 (DPDK swaps in dummy burst
    /// functions), so a late worker cannot touch freed driver state.
    pub fn stop(&mut self) -> Result<()> {
        if self.started {
            // SAFETY: plain call on a started port.
            check("rte_eth_dev_stop", unsafe {
                ffi::rte_eth_dev_stop(self.id.0)
            })?;
            self.started = false;
        }
        Ok(())
    }

    pub fn set_promiscuous(&mut self, on: bool) -> Result<()> {
        // SAFETY: plain calls on a valid port id.
        let ret = unsafe {
            if on {
                ffi::rte_eth_promiscuous_enable(self.id.0)
            } else {
                ffi::rte_eth_promiscuous_disable(self.id.0)
            }
        };
        check("rte_eth_promiscuous", ret).map(|_| ())
    }

    pub fn mac(&self) -> Result<[u8; 6]> {
        let mut a = ffi::rte_ether_addr::default();
        // SAFETY: valid out pointer.
        check("rte_eth_macaddr_get", unsafe {
            ffi::rte_eth_macaddr_get(self.id.0, &mut a)
        })?;
        Ok(a.addr_bytes)
    }

    pub fn link(&self) -> LinkStatus {
        link_of(self.id)
    }

    pub fn stats(&self) -> Result<PortStats> {
        stats_of(self.id)
    }

    pub fn xstats(&self) -> Result<Vec<(String, u64)>> {
        xstats_of(self.id)
    }

    /// The RSS hash functions and key the port uses (`rte_eth_dev_rss_hash_conf_get`).
    pub fn rss_conf(&self) -> Result<RssConf> {
        let size = match self.info()?.hash_key_size {
            0 => 40,
            n => n,
        };
        let mut key = vec![0u8; size as usize];
        let mut c = ffi::rte_eth_rss_conf {
            rss_key: key.as_mut_ptr(),
            rss_key_len: size,
            rss_hf: 0,
        };
        // SAFETY: c.rss_key points at `size` writable bytes, the length DPDK is told and the
        // most a driver copies (it copies at most its hash_key_size); key outlives the call.
        check("rte_eth_dev_rss_hash_conf_get", unsafe {
            ffi::rte_eth_dev_rss_hash_conf_get(self.id.0, &mut c)
        })?;
        let len = match c.rss_key_len {
            0 => size,
            n => n.min(size),
        };
        key.truncate(len as usize);
        Ok(RssConf { hf: c.rss_hf, key })
    }

    /// Programs the whole redirection table: hash bucket `i` goes to RX queue `reta[i]`.
    /// `reta.len()` must be the port's RETA size (`DevInfo::reta_size` after configure).
    pub fn set_reta(&mut self, reta: &[u16]) -> Result<()> {
        let size = u16::try_from(reta.len()).map_err(|_| {
            Error::new(
                "rte_eth_dev_rss_reta_update",
                ErrorKind::OutOfRange,
                "RETA too large",
            )
        })?;
        let mut groups =
            vec![ffi::rte_eth_rss_reta_entry64::default(); reta.len().div_ceil(RETA_GROUP)];
        for (i, q) in reta.iter().enumerate() {
            let g = &mut groups[i / RETA_GROUP];
            g.mask |= 1u64 << (i % RETA_GROUP);
            g.reta[i % RETA_GROUP] = *q;
        }
        // SAFETY: groups holds ceil(size / 64) entries, as DPDK reads for `size`; it lives
        // across the call.
        check("rte_eth_dev_rss_reta_update", unsafe {
            ffi::rte_eth_dev_rss_reta_update(self.id.0, groups.as_mut_ptr(), size)
        })
        .map(|_| ())
    }

    /// Reads the redirection table back (`size` entries: the port's RETA size).
    pub fn reta(&self, size: u16) -> Result<Vec<u16>> {
        let n = size as usize;
        let mut groups = vec![ffi::rte_eth_rss_reta_entry64::default(); n.div_ceil(RETA_GROUP)];
        for (gi, g) in groups.iter_mut().enumerate() {
            let in_group = (n - gi * RETA_GROUP).min(RETA_GROUP);
            g.mask = if in_group == RETA_GROUP {
                u64::MAX
            } else {
                (1u64 << in_group) - 1
            };
        }
        // SAFETY: groups holds ceil(size / 64) writable entries, as DPDK writes for `size`.
        check("rte_eth_dev_rss_reta_query", unsafe {
            ffi::rte_eth_dev_rss_reta_query(self.id.0, groups.as_mut_ptr(), size)
        })?;
        Ok((0..n)
            .map(|i| groups[i / RETA_GROUP].reta[i % RETA_GROUP])
            .collect())
    }

    /// Validates, then installs, a rule sending every IPv4 `l4` packet through RSS with hash
    /// input `types` (`RSS_*` bits); the port's key and RETA apply. The rule lives until the
    /// port is dropped.
    pub fn add_rss_flow(&mut self, l4: L4, types: u64) -> Result<()> {
        flow::validate_rss(self.id.0, l4, types)?;
        let f = flow::create_rss(self.id.0, l4, types)?;
        self.flows.push(f);
        Ok(())
    }

    /// rte_flow rules installed with [`Port::add_rss_flow`].
    pub fn flow_count(&self) -> usize {
        self.flows.len()
    }
}

/// Creates a virtual device after EAL start (hotplug), e.g. `("net_tap_rvs0",
/// "iface=rvs-pub,mac=02:..")`: a port rvs makes itself, such as a kernel twin, whose
/// arguments are known only once the physical ports are up. Then [`Port::by_name`] takes it.
pub fn probe_vdev(name: &str, args: &str) -> Result<()> {
    let bad = |_| {
        Error::new(
            "vdev",
            ErrorKind::InvalidArgument,
            "NUL in device arguments",
        )
    };
    // rte_dev_probe (EAL) rather than rte_vdev_init: the vdev bus library is a plugin that
    // is not linked in. The vdev bus claims the name by its driver prefix.
    let d = CString::new(format!("{name},{args}")).map_err(bad)?;
    // SAFETY: a valid C string for the duration of the call; DPDK copies it.
    let ret = unsafe { ffi::rte_dev_probe(d.as_ptr()) };
    let op = format!("creating device {name},{args}");
    match ret {
        0.. => Ok(()),
        // Drivers' probe functions mostly return -1 with the reason in the EAL log.
        -1 => Err(Error::new(
            op,
            ErrorKind::Other,
            "the driver refused it (the EAL log above says why)",
        )),
        e => Err(Error::from_errno(op, -e)),
    }
}

/// Link state of a port by id, from any thread.
pub fn link_of(id: PortId) -> LinkStatus {
    let mut l = ffi::rte_eth_link::default();
    // SAFETY: valid out pointer; nowait never blocks.
    let ret = unsafe { ffi::rte_eth_link_get_nowait(id.0, &mut l) };
    if ret < 0 {
        return LinkStatus {
            up: false,
            speed_mbps: 0,
            full_duplex: false,
        };
    }
    LinkStatus {
        up: l.link_status() != 0,
        speed_mbps: l.link_speed,
        full_duplex: l.link_duplex() != 0,
    }
}

/// Hardware counters of a port, readable from any thread (the management core polls them while
/// workers run).
pub fn stats_of(id: PortId) -> Result<PortStats> {
    let mut s = ffi::rte_eth_stats::default();
    // SAFETY: valid out pointer.
    check("rte_eth_stats_get", unsafe {
        ffi::rte_eth_stats_get(id.0, &mut s)
    })?;
    Ok(PortStats {
        ipackets: s.ipackets,
        opackets: s.opackets,
        ibytes: s.ibytes,
        obytes: s.obytes,
        imissed: s.imissed,
        ierrors: s.ierrors,
        oerrors: s.oerrors,
        rx_nombuf: s.rx_nombuf,
    })
}

/// Extended counters of a port: (name, value) pairs.
pub fn xstats_of(id: PortId) -> Result<Vec<(String, u64)>> {
    // SAFETY: NULL with n=0 asks for the count.
    let n = check("rte_eth_xstats_get_names", unsafe {
        ffi::rte_eth_xstats_get_names(id.0, std::ptr::null_mut(), 0)
    })? as usize;
    let mut names = vec![ffi::rte_eth_xstat_name::default(); n];
    let mut vals = vec![ffi::rte_eth_xstat::default(); n];
    // SAFETY: both arrays hold n elements.
    let got_n = check("rte_eth_xstats_get_names", unsafe {
        ffi::rte_eth_xstats_get_names(id.0, names.as_mut_ptr(), n as u32)
    })? as usize;
    // SAFETY: as above.
    let got_v = check("rte_eth_xstats_get", unsafe {
        ffi::rte_eth_xstats_get(id.0, vals.as_mut_ptr(), n as u32)
    })? as usize;
    let mut out = Vec::with_capacity(n);
    for v in vals.iter().take(got_v.min(n)) {
        let idx = v.id as usize;
        if idx < got_n.min(n) {
            // SAFETY: DPDK NUL-terminates every name within its 64-byte array.
            let name = unsafe { CStr::from_ptr(names[idx].name.as_ptr()) }
                .to_string_lossy()
                .into_owned();
            out.push((name, v.value));
        }
    }
    Ok(out)
}

impl Drop for Port {
    fn drop(&mut self) {
        // Rules first: they reference the port's queues.
        self.flows.clear();
        let _ = self.stop();
        // SAFETY: the port is stopped; closing releases its driver resources. Queue handles that
        // may still exist only reach DPDK's dummy burst functions afterwards.
        unsafe {
            ffi::rte_eth_dev_close(self.id.0);
        }
        claimed().remove(&self.id.0);
    }
}

/// An RX queue, owned by one lcore (not Clone, so two lcores cannot poll it).
#[derive(Debug)]
pub struct RxQueue {
    port: u16,
    queue: u16,
}

/// A TX queue, owned by one lcore.
#[derive(Debug)]
pub struct TxQueue {
    port: u16,
    queue: u16,
}

impl RxQueue {
    pub fn port(&self) -> PortId {
        PortId(self.port)
    }
    pub fn queue(&self) -> QueueId {
        QueueId(self.queue)
    }

    /// Receives up to the free room of `burst`; returns how many arrived.
    #[inline(always)]
    pub fn rx_burst(&mut self, burst: &mut Burst) -> usize {
        let (ptr, room) = burst.spare_raw();
        if room == 0 {
            return 0;
        }
        // SAFETY: ptr has room for `room` mbuf pointers; this queue is polled by one lcore
        // only (RxQueue is not Clone/Sync); received mbufs become owned by the burst.
        unsafe {
            let n = ffi::rte_eth_rx_burst(self.port, self.queue, ptr, room as u16) as usize;
            burst.commit(n);
            n
        }
    }
}

impl TxQueue {
    pub fn port(&self) -> PortId {
        PortId(self.port)
    }
    pub fn queue(&self) -> QueueId {
        QueueId(self.queue)
    }

    /// Transmits the burst; mbufs the driver did not take stay in `burst` (front-compacted).
    /// Returns how many were sent.
    #[inline(always)]
    pub fn tx_burst(&mut self, burst: &mut Burst) -> usize {
        let (ptr, len) = burst.filled_raw();
        if len == 0 {
            return 0;
        }
        // SAFETY: ptr holds len owned mbufs; the driver takes ownership of the first n it
        // returns, which are then removed from the burst. One lcore per TX queue.
        unsafe {
            let n = ffi::rte_eth_tx_burst(self.port, self.queue, ptr, len as u16) as usize;
            burst.consumed_front(n);
            n
        }
    }
}
