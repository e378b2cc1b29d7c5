//! The appliance configuration file (TOML), documented in docs/config.md.
//!
//! Everything here is validated before EAL starts, so a bad file fails fast with one clear line
//! and touches nothing.

use serde::Deserialize;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ApplianceConfigError {
    #[error("cannot read {path}: {err}")]
    Read { path: String, err: std::io::Error },
    #[error("{path}: {msg}")]
    Parse { path: String, msg: String },
    #[error("{path}: {msg}")]
    Invalid { path: String, msg: String },
}

/// EAL settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EalConfig {
    /// CPUs the appliance may use; the management core takes the first, workers the others
    /// (wrapping around when there are more workers than CPUs). Default: all online CPUs.
    #[serde(default)]
    pub cpus: Vec<u32>,
    /// Memory in MiB for EAL (-m).
    #[serde(default = "default_memory")]
    pub memory_mb: u32,
    /// Run without hugepages (--no-huge). Slower page handling, no setup needed.
    #[serde(default)]
    pub no_huge: bool,
    /// EAL --file-prefix, so several instances can run side by side.
    #[serde(default = "default_prefix")]
    pub file_prefix: String,
    /// EAL --log-level (e.g. "error", "notice", "lib.eal:debug").
    #[serde(default = "default_log_level")]
    pub log_level: String,
    /// Extra EAL arguments, appended verbatim.
    #[serde(default)]
    pub extra_args: Vec<String>,
}

fn default_memory() -> u32 {
    1024
}
fn default_prefix() -> String {
    "rvs".into()
}
fn default_log_level() -> String {
    "error".into()
}

impl Default for EalConfig {
    fn default() -> Self {
        EalConfig {
            cpus: Vec::new(),
            memory_mb: default_memory(),
            no_huge: false,
            file_prefix: default_prefix(),
            log_level: default_log_level(),
            extra_args: Vec::new(),
        }
    }
}

/// One of the two interfaces, as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInterface {
    device: String,
    #[serde(default)]
    devargs: String,
    addresses: Vec<String>,
    #[serde(default)]
    gateway: Option<Ipv4Addr>,
    #[serde(default = "default_mtu")]
    mtu: u16,
    #[serde(default)]
    neighbours: std::collections::BTreeMap<String, String>,
    #[serde(default = "yes")]
    tx_checksum_offload: bool,
    /// The kernel twin's interface name; none: no exception path on this port.
    #[serde(default)]
    kernel_interface: Option<String>,
    #[serde(default)]
    kernel_backend: KernelBackend,
    #[serde(default = "default_kernel_rate")]
    kernel_rate: u32,
}

fn default_kernel_rate() -> u32 {
    DEFAULT_KERNEL_RATE
}

/// Packets per second a port sends up to its kernel twin by default: plenty for SSH, BGP,
/// VRRP and health checks, little enough that a flood at the DIP costs the management core a
/// few percent.
pub const DEFAULT_KERNEL_RATE: u32 = 20_000;

/// How a port's kernel twin is made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KernelBackend {
    /// virtio-user over /dev/vhost-net where that exists, else net_tap.
    #[default]
    Auto,
    /// DPDK's virtio-user with the vhost-net kernel backend (fails at start without it).
    VirtioUser,
    /// DPDK's net_tap (a TUN/TAP interface; needs /dev/net/tun).
    Tap,
}

impl KernelBackend {
    pub fn name(self) -> &'static str {
        match self {
            KernelBackend::Auto => "auto",
            KernelBackend::VirtioUser => "virtio-user",
            KernelBackend::Tap => "tap",
        }
    }
}

/// A port's kernel twin: a kernel interface with the port's MAC, MTU and addresses, which the
/// traffic rvs does not handle itself goes up to, and whose transmissions go out of the port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelTwin {
    pub name: String,
    pub backend: KernelBackend,
    /// Packets per second sent up, over all workers; the excess is dropped and counted.
    pub rate: u32,
}

/// Linux's IFNAMSIZ less the terminating NUL.
pub const MAX_IFNAME: usize = 15;

/// Checks a kernel interface name as the kernel would (dev_valid_name).
pub fn valid_ifname(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_IFNAME {
        return Err(format!(
            "{name:?} must be 1..{MAX_IFNAME} characters (the kernel's limit)"
        ));
    }
    if name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "{name:?} is not a valid interface name (no '/', ':', spaces; not . or ..)"
        ));
    }
    Ok(())
}

fn default_mtu() -> u16 {
    1500
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    eal: EalConfig,
    public: RawInterface,
    private: RawInterface,
    #[serde(default)]
    workers: WorkersConfig,
    #[serde(default)]
    tables: TablesConfig,
    #[serde(default)]
    control: ControlConfig,
    #[serde(default)]
    rules: RulesConfig,
    #[serde(default)]
    checks: ChecksSection,
    #[serde(default)]
    metrics: MetricsSection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkersConfig {
    /// Number of worker cores (each polls one RX queue on each port).
    #[serde(default = "one")]
    pub count: u16,
}

fn one() -> u16 {
    1
}

impl Default for WorkersConfig {
    fn default() -> Self {
        WorkersConfig { count: 1 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TablesConfig {
    /// Connection-table capacity per worker.
    #[serde(default = "default_conns")]
    pub connections: u32,
    /// Neighbour (ARP) table capacity per port.
    #[serde(default = "default_neigh")]
    pub neighbours: u32,
    /// Mbufs in the packet pool.
    #[serde(default = "default_mbufs")]
    pub mbufs: u32,
    /// Packets held per worker while their next hop is being resolved.
    #[serde(default = "default_hold")]
    pub arp_hold: u32,
    /// Bytes of packet data per mbuf, headroom (128) included: the largest frame a port can
    /// deliver in one buffer. Raise it for jumbo frames or for af_packet, whose kernel side
    /// reassembles IP fragments before handing them over.
    #[serde(default = "default_mbuf_size")]
    pub mbuf_size: u16,
}

fn default_mbuf_size() -> u16 {
    2176
}

fn default_conns() -> u32 {
    1 << 20
}
fn default_neigh() -> u32 {
    4096
}
fn default_mbufs() -> u32 {
    16383
}
fn default_hold() -> u32 {
    256
}

impl Default for TablesConfig {
    fn default() -> Self {
        TablesConfig {
            connections: default_conns(),
            neighbours: default_neigh(),
            mbufs: default_mbufs(),
            arp_hold: default_hold(),
            mbuf_size: default_mbuf_size(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    /// Unix socket of the control API.
    #[serde(default = "default_socket")]
    pub socket: PathBuf,
    /// Group allowed to use the socket (besides root).
    #[serde(default = "default_group")]
    pub group: String,
}

fn default_socket() -> PathBuf {
    PathBuf::from("/run/rvs/rvs.sock")
}
fn default_group() -> String {
    "root".into()
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            socket: default_socket(),
            group: default_group(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    /// An `rvsadm -S` (ipvsadm -S) style rules file applied at start.
    #[serde(default)]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChecksSection {
    /// Health checks in keepalived.conf syntax (its virtual_server blocks); rvs owns the
    /// services it defines. Needs the private port's kernel interface: checks leave from the
    /// DIP through it.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// How TCP_CHECK probes: `connect` (a full connect and close, as keepalived) or
    /// `half-open` (a SYN from a raw socket; a fifth of the CPU for large pools).
    #[serde(default)]
    pub tcp_check: TcpCheckMode,
}

/// The Prometheus endpoint (`GET /metrics`), off unless `listen` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// "ADDR:PORT" to serve on, e.g. "127.0.0.1:9642" (port 0: any free port).
    #[serde(default)]
    pub listen: Option<std::net::SocketAddr>,
    /// Scrapers served at once; more get a 503 and are closed.
    #[serde(default = "metrics_max_clients")]
    pub max_clients: usize,
}

fn metrics_max_clients() -> usize {
    16
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            listen: None,
            max_clients: metrics_max_clients(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TcpCheckMode {
    #[default]
    Connect,
    HalfOpen,
}

/// An IPv4 address with its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfAddr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl IfAddr {
    pub fn netmask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix as u32)
        }
    }

    /// Whether `ip` is on this address's subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (u32::from(ip) ^ u32::from(self.addr)) & self.netmask() == 0
    }
}

impl std::fmt::Display for IfAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn parse_ifaddr(s: &str) -> Result<IfAddr, String> {
    let (a, p) = s
        .split_once('/')
        .ok_or_else(|| format!("address {s:?} needs a prefix length, e.g. 10.0.0.13/24"))?;
    let addr: Ipv4Addr = a
        .parse()
        .map_err(|_| format!("address {s:?}: {a:?} is not an IPv4 address"))?;
    let prefix: u8 = p
        .parse()
        .ok()
        .filter(|p| (1..=32).contains(p))
        .ok_or_else(|| format!("address {s:?}: prefix length must be 1..32"))?;
    if addr.is_unspecified() || addr.is_multicast() || addr.is_broadcast() || addr.is_loopback() {
        return Err(format!("address {s:?} is not a usable unicast address"));
    }
    Ok(IfAddr { addr, prefix })
}

/// A validated interface.
#[derive(Debug, Clone)]
pub struct Interface {
    /// DPDK device name: a vdev name (`net_af_packet0`) or a PCI address.
    pub device: String,
    /// Device arguments (for vdevs: `iface=...`; for PCI devices: driver devargs, may be empty).
    pub devargs: String,
    /// The first address is the primary one (source of ARP requests and ICMP errors).
    pub addresses: Vec<IfAddr>,
    pub gateway: Option<Ipv4Addr>,
    pub mtu: u16,
    /// Permanent neighbour entries (address -> MAC), never probed nor expired: for peers that
    /// do not answer ARP (packet generators, pcap replay) or to pin a router's MAC.
    pub neighbours: Vec<(Ipv4Addr, crate::net::MacAddr)>,
    /// Let the port compute the IPv4 header checksums of the headers rvs writes whole
    /// (fragments) when it advertises TX_OFFLOAD_IPV4_CKSUM; false: always in software.
    pub tx_checksum_offload: bool,
    /// The exception path to the host's kernel, if configured.
    pub kernel: Option<KernelTwin>,
}

impl Interface {
    pub fn is_vdev(&self) -> bool {
        self.device.starts_with("net_")
    }

    /// The kernel interface a vdev attaches to (`iface=` devarg), if any.
    pub fn kernel_iface(&self) -> Option<&str> {
        self.devargs
            .split(',')
            .find_map(|kv| kv.strip_prefix("iface="))
    }

    /// The primary address; 0.0.0.0 when every address was removed at run time (from the
    /// kernel twin), which makes ARP requests probes.
    pub fn primary(&self) -> Ipv4Addr {
        self.addresses
            .first()
            .map(|a| a.addr)
            .unwrap_or(Ipv4Addr::UNSPECIFIED)
    }

    /// Whether `ip` is one of this interface's own addresses.
    pub fn owns(&self, ip: Ipv4Addr) -> bool {
        self.addresses.iter().any(|a| a.addr == ip)
    }

    /// Whether `ip` is the broadcast address of one of this interface's subnets.
    pub fn is_subnet_broadcast(&self, ip: Ipv4Addr) -> bool {
        self.own_or_broadcast(ip).1
    }

    /// In one pass over the addresses: whether `ip` is one of them, and whether it is the
    /// broadcast address of one of their subnets (/31 and /32 have none).
    pub fn own_or_broadcast(&self, ip: Ipv4Addr) -> (bool, bool) {
        let mut own = false;
        let mut broadcast = false;
        for a in &self.addresses {
            own |= a.addr == ip;
            broadcast |= a.prefix < 31 && a.contains(ip) && u32::from(ip) | a.netmask() == u32::MAX;
        }
        (own, broadcast)
    }

    /// The next hop for `dst` out of this interface: `dst` itself when on-link, else the
    /// gateway (None when neither applies).
    pub fn next_hop(&self, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        if self.addresses.iter().any(|a| a.contains(dst)) {
            Some(dst)
        } else {
            self.gateway
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct ApplianceConfig {
    pub path: PathBuf,
    pub eal: EalConfig,
    pub public: Interface,
    pub private: Interface,
    pub workers: WorkersConfig,
    pub tables: TablesConfig,
    pub control: ControlConfig,
    pub rules: RulesConfig,
    pub checks: ChecksSection,
    pub metrics: MetricsSection,
}

impl ApplianceConfig {
    pub fn load(path: &Path) -> Result<ApplianceConfig, ApplianceConfigError> {
        let text = std::fs::read_to_string(path).map_err(|err| ApplianceConfigError::Read {
            path: path.display().to_string(),
            err,
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<ApplianceConfig, ApplianceConfigError> {
        let p = path.display().to_string();
        let raw: RawConfig = toml::from_str(text).map_err(|e| ApplianceConfigError::Parse {
            path: p.clone(),
            msg: one_line(&e.to_string()),
        })?;
        let invalid = |msg: String| ApplianceConfigError::Invalid {
            path: p.clone(),
            msg,
        };
        let public = interface("public", raw.public).map_err(&invalid)?;
        let private = interface("private", raw.private).map_err(&invalid)?;
        if public.device == private.device {
            return Err(invalid(format!(
                "public and private use the same device {:?}",
                public.device
            )));
        }
        if let (Some(a), Some(b)) = (&public.kernel, &private.kernel) {
            if a.name == b.name {
                return Err(invalid(format!(
                    "public and private use the same kernel_interface {:?}",
                    a.name
                )));
            }
        }
        for i in [&public, &private] {
            if let (Some(k), Some(dev)) = (&i.kernel, i.kernel_iface()) {
                if k.name == dev {
                    return Err(invalid(format!(
                        "kernel_interface {:?} is the interface device {} is bound to; the twin \
                         needs a name of its own",
                        k.name, i.device
                    )));
                }
            }
        }
        for a in &public.addresses {
            if private.addresses.iter().any(|b| b.addr == a.addr) {
                return Err(invalid(format!("address {} is on both interfaces", a.addr)));
            }
        }
        if raw.workers.count == 0 || raw.workers.count > 64 {
            return Err(invalid("workers.count must be 1..64".into()));
        }
        if raw.tables.connections < 1024 || raw.tables.connections > (1 << 28) {
            return Err(invalid(
                "tables.connections must be 1024..268435456 per worker".into(),
            ));
        }
        if raw.tables.neighbours < 16 || raw.tables.neighbours > (1 << 20) {
            return Err(invalid("tables.neighbours must be 16..1048576".into()));
        }
        if raw.tables.mbufs < 1023 {
            return Err(invalid("tables.mbufs must be at least 1023".into()));
        }
        if raw.tables.mbuf_size < 1024 + 128 {
            return Err(invalid("tables.mbuf_size must be at least 1152".into()));
        }
        if raw.tables.arp_hold == 0 || raw.tables.arp_hold > 4096 {
            return Err(invalid("tables.arp_hold must be 1..4096".into()));
        }
        if raw.eal.memory_mb < 64 {
            return Err(invalid("eal.memory_mb must be at least 64".into()));
        }
        if raw.checks.file.is_some() && private.kernel.is_none() {
            return Err(invalid(
                "checks.file needs private.kernel_interface: health checks leave from the DIP \
                 through the private port's kernel interface"
                    .into(),
            ));
        }
        if raw.metrics.max_clients == 0 || raw.metrics.max_clients > 1024 {
            return Err(invalid("metrics.max_clients must be 1..1024".into()));
        }
        if raw.control.socket.as_os_str().is_empty() || !raw.control.socket.is_absolute() {
            return Err(invalid("control.socket must be an absolute path".into()));
        }
        Ok(ApplianceConfig {
            path: path.to_path_buf(),
            eal: raw.eal,
            public,
            private,
            workers: raw.workers,
            tables: raw.tables,
            control: raw.control,
            rules: raw.rules,
            checks: raw.checks,
            metrics: raw.metrics,
        })
    }

    /// The CPUs to use: configured, or all online ones.
    pub fn cpus(&self) -> Vec<u32> {
        if !self.eal.cpus.is_empty() {
            return self.eal.cpus.clone();
        }
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        (0..n as u32).collect()
    }

    /// The EAL argument vector (argv[0] included). Lcore 0 is the management core; lcores
    /// 1..=workers are the workers, mapped onto the CPUs round-robin after the first.
    pub fn eal_args(&self) -> Vec<String> {
        let cpus = self.cpus();
        let mut lcores = vec![format!("0@{}", cpus[0])];
        for w in 0..self.workers.count as usize {
            let cpu = if cpus.len() > 1 {
                cpus[1 + w % (cpus.len() - 1)]
            } else {
                cpus[0]
            };
            lcores.push(format!("{}@{}", w + 1, cpu));
        }
        let mut a = vec![
            "rvs".to_string(),
            "--lcores".into(),
            lcores.join(","),
            "--main-lcore".into(),
            "0".into(),
            "--file-prefix".into(),
            self.eal.file_prefix.clone(),
            "--log-level".into(),
            self.eal.log_level.clone(),
            "-m".into(),
            self.eal.memory_mb.to_string(),
        ];
        // With hugepages rvs is a full primary (shared config, hugepage files) that
        // dpdk-dumpcap and dpdk-proc-info can join as secondaries; without them there is no
        // shared memory to join, and --no-shconf keeps EAL from writing a config at all.
        if self.eal.no_huge {
            a.push("--no-huge".into());
            a.push("--no-shconf".into());
        }
        let any_pci = !self.public.is_vdev() || !self.private.is_vdev();
        if !any_pci {
            a.push("--no-pci".into());
        }
        for i in [&self.public, &self.private] {
            if i.is_vdev() {
                a.push("--vdev".into());
                if i.devargs.is_empty() {
                    a.push(i.device.clone());
                } else {
                    a.push(format!("{},{}", i.device, i.devargs));
                }
            } else {
                a.push("-a".into());
                if i.devargs.is_empty() {
                    a.push(i.device.clone());
                } else {
                    a.push(format!("{},{}", i.device, i.devargs));
                }
            }
        }
        a.extend(self.eal.extra_args.iter().cloned());
        a
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn interface(role: &str, r: RawInterface) -> Result<Interface, String> {
    if r.device.trim().is_empty() {
        return Err(format!("{role}.device is empty"));
    }
    if r.device.contains([',', ' ']) {
        return Err(format!(
            "{role}.device {:?} must be a bare device name; put options in {role}.devargs",
            r.device
        ));
    }
    if r.addresses.is_empty() {
        return Err(format!("{role}.addresses needs at least one address"));
    }
    let addresses = r
        .addresses
        .iter()
        .map(|s| parse_ifaddr(s).map_err(|e| format!("{role}.addresses: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, a) in addresses.iter().enumerate() {
        if addresses[..i].iter().any(|b| b.addr == a.addr) {
            return Err(format!("{role}.addresses: {} listed twice", a.addr));
        }
    }
    if let Some(gw) = r.gateway {
        if !addresses.iter().any(|a| a.contains(gw)) {
            return Err(format!(
                "{role}.gateway {gw} is not on any subnet of {role}.addresses"
            ));
        }
    }
    if !(576..=9600).contains(&r.mtu) {
        return Err(format!("{role}.mtu must be 576..9600"));
    }
    let mut neighbours = Vec::new();
    for (ip, mac) in &r.neighbours {
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("{role}.neighbours: {ip:?} is not an IPv4 address"))?;
        let mac: crate::net::MacAddr = mac
            .parse()
            .ok()
            .filter(|m: &crate::net::MacAddr| m.is_unicast() && !m.is_zero())
            .ok_or_else(|| format!("{role}.neighbours: {mac:?} is not a unicast MAC address"))?;
        if !addresses.iter().any(|a| a.contains(ip)) {
            return Err(format!(
                "{role}.neighbours: {ip} is not on any subnet of {role}.addresses"
            ));
        }
        neighbours.push((ip, mac));
    }
    let kernel = match r.kernel_interface {
        Some(name) => {
            valid_ifname(&name).map_err(|e| format!("{role}.kernel_interface: {e}"))?;
            if !(1..=10_000_000).contains(&r.kernel_rate) {
                return Err(format!(
                    "{role}.kernel_rate must be 1..10000000 packets per second"
                ));
            }
            Some(KernelTwin {
                name,
                backend: r.kernel_backend,
                rate: r.kernel_rate,
            })
        }
        None => None,
    };
    Ok(Interface {
        device: r.device,
        devargs: r.devargs,
        addresses,
        gateway: r.gateway,
        mtu: r.mtu,
        neighbours,
        tx_checksum_offload: r.tx_checksum_offload,
        kernel,
    })
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod kernel_twin_tests;
