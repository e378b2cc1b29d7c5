//! rvs-pcapgen: writes classic libpcap files of benchmark traffic for rvs, replayed by DPDK's
//! `net_pcap` PMD with `infinite_rx=1` (see docs/benchmarks.md and scripts/bench.sh).
//!
//! Topology the traffic assumes (the bench config, dpdk-config/bench.toml, matches it):
//! - public port (MAC `--public-mac`): VIP `--vip`; clients are off-link in 172.16.0.0/12
//!   behind the gateway 10.0.0.1 (MAC `--gateway-mac`, a permanent neighbour in the config);
//! - private port (MAC `--private-mac`): real server k is `--rip` + k with MAC
//!   `--real-mac` + k (permanent neighbours too); real server k serves VIP port `--vport` + k,
//!   so every flow's replies come from a known real server whatever the scheduler or core.
//!
//! Scenarios:
//! - `established-udp`: one UDP datagram per flow (per `--rounds`) CIP:cport -> VIP:vport, and
//!   the matching replies RIP:rport -> CIP:cport;
//! - `established-tcp`: per flow one SYN, then `--acks` rounds of ACK+PSH data segments; the
//!   replies are ACK+PSH data segments from the real server;
//! - `syn`: per flow a SYN then a FIN+ACK, so that every replayed SYN opens a new connection:
//!   the FIN moves the connection to TIME_WAIT, and a SYN on a TIME_WAIT connection reschedules
//!   it (conn_reuse_mode 1). A RST would not do: IPVS keeps SYN_RECV on a client RST. No replies.
//!
//! `--kernel-flood-every N` mixes host-bound packets into the private side: after every N
//! replies, one UDP datagram from a real server (port 5000) to the appliance's own private
//! address (`--dip`, port 9: no service), which rvs sends up to the private port's kernel twin,
//! rate-limited (scripts/bench.sh `--kernel-flood`). Without it the output is what it always was.
//!
//! Later rounds and the replies visit the flows in a seeded random order (not in creation order)
//! so that connection-table accesses are not a sequential walk the CPU's prefetchers would hide.
//!
//! Files: `DIR/public-qI.pcap` and (except `syn`) `DIR/private-qI.pcap` for I in 0..`--queues`,
//! plus `DIR/manifest.json` (packet counts, services, neighbours) and `DIR/rules` (those services
//! in `rvsadm -R` syntax) for scripts/bench.sh and scripts/bench-latency.sh.

use clap::{Parser, ValueEnum};
use rvs::lb::steer::endpoint_core;
use rvs::net::ethernet::{self, EtherType};
use rvs::net::ipv4::{self, Ipv4Packet, Protocol};
use rvs::net::tcp::{Flags, TcpSegment};
use rvs::net::udp::UdpDatagram;
use rvs::net::MacAddr;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::exit;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    EstablishedUdp,
    EstablishedTcp,
    Syn,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::EstablishedUdp => "established-udp",
            Scenario::EstablishedTcp => "established-tcp",
            Scenario::Syn => "syn",
        }
    }
    fn proto(self) -> u8 {
        match self {
            Scenario::EstablishedUdp => Protocol::UDP,
            _ => Protocol::TCP,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Steer {
    /// Each flow goes to the queue of the worker that owns it (as a NIC hashing only the
    /// client endpoint would): no handover.
    Owner,
    /// Flows are spread round-robin over the queues: most packets are handed over.
    Spray,
}

/// Writes benchmark traffic for rvs as classic pcap files.
#[derive(Parser, Debug)]
#[command(name = "rvs-pcapgen", version)]
struct Args {
    #[arg(long, value_enum, default_value = "established-udp")]
    scenario: Scenario,
    /// Distinct client endpoints (flows), 1..=16777216.
    #[arg(long, default_value_t = 65536)]
    conns: u32,
    /// Output directory (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// RX queues (= rvs workers) per port: one pcap file per queue.
    #[arg(long, default_value_t = 1)]
    queues: u16,
    /// How flows are placed on queues.
    #[arg(long, value_enum, default_value = "owner")]
    steer: Steer,
    /// Frame size on the wire including the 4-byte FCS (pcap records are 4 bytes shorter),
    /// 64..=1518. Ignored with --imix.
    #[arg(long, default_value_t = 64)]
    size: u16,
    /// Simple IMIX for data packets: 64/594/1518-byte frames in the ratio 7:4:1 (SYN and FIN
    /// stay 64 bytes).
    #[arg(long)]
    imix: bool,
    /// established-tcp: ACK data segments per flow after its SYN.
    #[arg(long, default_value_t = 1)]
    acks: u32,
    /// established-udp: datagrams per flow (round 0 in creation order, others shuffled).
    #[arg(long, default_value_t = 1)]
    rounds: u32,
    /// Real servers (1..=64); flow i goes to VIP port vport + i % reals, served by real k.
    #[arg(long, default_value_t = 1)]
    reals: u16,
    #[arg(long, default_value = "10.0.0.13")]
    vip: Ipv4Addr,
    #[arg(long, default_value_t = 80)]
    vport: u16,
    /// First real server address (real k is this + k).
    #[arg(long, default_value = "192.168.8.14")]
    rip: Ipv4Addr,
    #[arg(long, default_value_t = 80)]
    rport: u16,
    /// The appliance's public port MAC (net_pcap's first device: 02:70:63:61:70:00).
    #[arg(long, default_value = "02:70:63:61:70:00")]
    public_mac: String,
    /// The appliance's private port MAC (net_pcap's second device: 02:70:63:61:70:01).
    #[arg(long, default_value = "02:70:63:61:70:01")]
    private_mac: String,
    /// The public gateway's MAC (source of client packets).
    #[arg(long, default_value = "02:00:00:00:00:01")]
    gateway_mac: String,
    /// Real server 0's MAC (real k: last byte + k).
    #[arg(long, default_value = "02:00:00:00:01:00")]
    real_mac: String,
    /// Seed of the flow orders.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// After every N replies of a private file, one host-bound UDP datagram: real server
    /// (in turn) port 5000 -> `--dip` port 9, valid checksums, the frame size of the others.
    /// 0: none (established scenarios only).
    #[arg(long, default_value_t = 0, value_name = "N")]
    kernel_flood_every: u32,
    /// The appliance's private address (the DIP): where `--kernel-flood-every` sends to.
    #[arg(long, default_value = "192.168.8.13")]
    dip: Ipv4Addr,
}

/// First client address: 172.16.0.1; clients fill 172.16.0.1 .. 172.31.255.254.
const CLIENT_BASE: u32 = 0xac10_0001;
const CLIENT_ADDRS: u32 = (1 << 20) - 2;
const FIRST_CPORT: u32 = 1024;
const CPORTS: u32 = 65536 - FIRST_CPORT;
const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const TTL: u8 = 64;
const IMIX: [u16; 12] = [64, 594, 64, 64, 1518, 64, 594, 64, 64, 594, 64, 594];
const MAX_FLOWS: u32 = 1 << 24;
/// The host-bound datagrams of `--kernel-flood-every`: real server port -> DIP port (discard).
const FLOOD_SPORT: u16 = 5000;
const FLOOD_DPORT: u16 = 9;

/// Client endpoint of flow `i`: addresses first, then ports, so small runs use one port per
/// address and up to 16M flows fit.
fn client(i: u32) -> (Ipv4Addr, u16) {
    let a = CLIENT_BASE + i % CLIENT_ADDRS;
    let p = FIRST_CPORT + (i / CLIENT_ADDRS) % CPORTS;
    (Ipv4Addr::from(a), p as u16)
}

/// A deterministic xorshift64* generator (no dependency needed for a shuffle).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in 0..n (n > 0), by multiply-shift.
    fn below(&mut self, n: usize) -> usize {
        (((self.next() >> 32) * n as u64) >> 32) as usize
    }
}

fn shuffled(v: &[u32], seed: u64) -> Vec<u32> {
    let mut out = v.to_vec();
    let mut r = Rng::new(seed);
    for i in (1..out.len()).rev() {
        let j = r.below(i + 1);
        out.swap(i, j);
    }
    out
}

/// A classic libpcap file (microsecond timestamps, Ethernet link type).
struct PcapWriter {
    w: BufWriter<File>,
    path: PathBuf,
    packets: u64,
    bytes: u64,
}

impl PcapWriter {
    fn create(path: &Path) -> std::io::Result<PcapWriter> {
        let mut w = BufWriter::with_capacity(1 << 20, File::create(path)?);
        // Global header, little endian: magic, version 2.4, thiszone, sigfigs, snaplen, DLT_EN10MB.
        w.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
        w.write_all(&2u16.to_le_bytes())?;
        w.write_all(&4u16.to_le_bytes())?;
        w.write_all(&0i32.to_le_bytes())?;
        w.write_all(&0u32.to_le_bytes())?;
        w.write_all(&65535u32.to_le_bytes())?;
        w.write_all(&1u32.to_le_bytes())?;
        Ok(PcapWriter {
            w,
            path: path.to_path_buf(),
            packets: 0,
            bytes: 0,
        })
    }

    fn write(&mut self, frame: &[u8]) -> std::io::Result<()> {
        // One packet per microsecond; timestamps mean nothing to infinite_rx.
        let ts = self.packets;
        let len = frame.len() as u32;
        self.w.write_all(&((ts / 1_000_000) as u32).to_le_bytes())?;
        self.w.write_all(&((ts % 1_000_000) as u32).to_le_bytes())?;
        self.w.write_all(&len.to_le_bytes())?;
        self.w.write_all(&len.to_le_bytes())?;
        self.w.write_all(frame)?;
        self.packets += 1;
        self.bytes += frame.len() as u64;
        Ok(())
    }

    fn finish(mut self) -> std::io::Result<(PathBuf, u64, u64)> {
        self.w.flush()?;
        Ok((self.path, self.packets, self.bytes))
    }
}

/// What one packet is.
#[derive(Debug, Clone, Copy)]
struct Pkt {
    dst_mac: MacAddr,
    src_mac: MacAddr,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    proto: u8,
    tcp_flags: u8,
    seq: u32,
    ack: u32,
    ident: u16,
    /// Frame length without FCS (>= 60; SYN/FIN are padded to it).
    frame_len: usize,
    /// Whether the segment carries data (fills the frame) or is header-only (padded).
    data: bool,
}

/// Builds `p` into `buf` (zeroed first) and returns the frame length.
fn build(buf: &mut [u8], p: &Pkt) -> Result<usize, rvs::net::Error> {
    let frame = buf
        .get_mut(..p.frame_len)
        .ok_or(rvs::net::Error::BufferTooSmall)?;
    frame.fill(0);
    ethernet::write_header(frame, p.dst_mac, p.src_mac, EtherType::IPV4)?;
    let l4_hdr = if p.proto == Protocol::TCP { 20 } else { 8 };
    let ip_len = if p.data {
        p.frame_len - ethernet::HEADER_LEN
    } else {
        ipv4::MIN_HEADER_LEN + l4_hdr
    };
    let ip_buf = frame
        .get_mut(ethernet::HEADER_LEN..ethernet::HEADER_LEN + ip_len)
        .ok_or(rvs::net::Error::BufferTooSmall)?;
    ipv4::write_header(ip_buf, 0, ip_len as u16, TTL, p.proto, p.src, p.dst)?;
    {
        let mut ip = Ipv4Packet::new_checked(&mut *ip_buf)?;
        ip.set_ident(p.ident);
        ip.set_flags_frag(0x4000); // DF
        ip.fill_checksum();
    }
    let (_, seg) = ip_buf.split_at_mut(ipv4::MIN_HEADER_LEN);
    for (k, b) in seg.iter_mut().enumerate().skip(l4_hdr) {
        *b = b'a' + (k % 26) as u8;
    }
    if p.proto == Protocol::TCP {
        let mut t = TcpSegment::new_unchecked(&mut *seg);
        t.set_src_port(p.sport);
        t.set_dst_port(p.dport);
        t.set_seq(p.seq);
        t.set_ack_no(p.ack);
        t.set_header_len(20);
        t.set_flags(p.tcp_flags);
        t.set_window(65535);
        t.set_urgent(0);
        t.fill_checksum(p.src, p.dst);
    } else {
        let udp_len = seg.len() as u16;
        let mut u = UdpDatagram::new_unchecked(&mut *seg);
        u.set_src_port(p.sport);
        u.set_dst_port(p.dport);
        u.set_len(udp_len);
        u.fill_checksum(p.src, p.dst);
    }
    Ok(p.frame_len)
}

fn mac(s: &str, what: &str) -> MacAddr {
    match MacAddr::from_str(s) {
        Ok(m) if m.is_unicast() => m,
        _ => fail(&format!("--{what}: {s:?} is not a unicast MAC address")),
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("rvs-pcapgen: {msg}");
    exit(2);
}

fn io_fail(path: &Path, e: std::io::Error) -> ! {
    eprintln!("rvs-pcapgen: {}: {e}", path.display());
    exit(1);
}

struct Gen {
    a: Args,
    public_mac: MacAddr,
    private_mac: MacAddr,
    gateway_mac: MacAddr,
    real_mac: MacAddr,
    /// Data frame sizes (without FCS) cycle through this.
    sizes: Vec<usize>,
    next_size: usize,
    buf: Vec<u8>,
}

impl Gen {
    fn new(a: Args) -> Gen {
        let sizes: Vec<usize> = if a.imix {
            IMIX.iter().map(|s| usize::from(*s) - 4).collect()
        } else {
            vec![usize::from(a.size) - 4]
        };
        Gen {
            public_mac: mac(&a.public_mac, "public-mac"),
            private_mac: mac(&a.private_mac, "private-mac"),
            gateway_mac: mac(&a.gateway_mac, "gateway-mac"),
            real_mac: mac(&a.real_mac, "real-mac"),
            sizes,
            next_size: 0,
            buf: vec![0u8; 2048],
            a,
        }
    }

    fn data_len(&mut self) -> usize {
        let n = self.sizes.len().max(1);
        let s = self.sizes.get(self.next_size % n).copied().unwrap_or(60);
        self.next_size = self.next_size.wrapping_add(1);
        s
    }

    fn real(&self, i: u32) -> (Ipv4Addr, u16, MacAddr) {
        let k = i % u32::from(self.a.reals);
        let mut m = self.real_mac.octets();
        m[5] = m[5].wrapping_add(k as u8);
        (
            Ipv4Addr::from(u32::from(self.a.rip) + k),
            self.a.rport,
            MacAddr(m),
        )
    }

    fn vport(&self, i: u32) -> u16 {
        self.a.vport + (i % u32::from(self.a.reals)) as u16
    }

    /// Client -> VIP packet of flow `i`.
    fn request(&mut self, i: u32, flags: u8, data: bool, round: u32) -> Pkt {
        let (cip, cport) = client(i);
        let frame_len = if data { self.data_len() } else { 60 };
        Pkt {
            dst_mac: self.public_mac,
            src_mac: self.gateway_mac,
            src: cip,
            dst: self.a.vip,
            sport: cport,
            dport: self.vport(i),
            proto: self.a.scenario.proto(),
            tcp_flags: flags,
            seq: i
                .wrapping_mul(2654435761)
                .wrapping_add(round.wrapping_mul(1460)),
            ack: if flags & Flags::ACK != 0 {
                i ^ 0x5a5a_5a5a
            } else {
                0
            },
            ident: i as u16,
            frame_len,
            data,
        }
    }

    /// Real server -> client reply of flow `i`.
    fn reply(&mut self, i: u32) -> Pkt {
        let (cip, cport) = client(i);
        let (rip, rport, rmac) = self.real(i);
        let frame_len = self.data_len();
        Pkt {
            dst_mac: self.private_mac,
            src_mac: rmac,
            src: rip,
            dst: cip,
            sport: rport,
            dport: cport,
            proto: self.a.scenario.proto(),
            tcp_flags: Flags::ACK | Flags::PSH,
            seq: i ^ 0x5a5a_5a5a,
            ack: i.wrapping_mul(2654435761).wrapping_add(1),
            ident: (i >> 16) as u16 ^ i as u16,
            frame_len,
            data: true,
        }
    }

    /// The `j`th host-bound datagram of `--kernel-flood-every`: from real server `j % reals`
    /// (its address and MAC, as its replies) to the DIP's port 9, sized like a data packet.
    fn flood(&mut self, j: u32) -> Pkt {
        let (rip, _, rmac) = self.real(j);
        let frame_len = self.data_len();
        Pkt {
            dst_mac: self.private_mac,
            src_mac: rmac,
            src: rip,
            dst: self.a.dip,
            sport: FLOOD_SPORT,
            dport: FLOOD_DPORT,
            proto: Protocol::UDP,
            tcp_flags: 0,
            seq: 0,
            ack: 0,
            ident: j as u16 ^ 0x4b46,
            frame_len,
            data: true,
        }
    }

    /// The packets of one private file, in order, to `sink`: the replies of `flows` in a seeded
    /// random order, with a host-bound datagram after every `--kernel-flood-every` of them.
    /// Returns how many host-bound datagrams there were.
    fn private_file(
        &mut self,
        flows: &[u32],
        seed: u64,
        sink: &mut dyn FnMut(&mut Gen, &Pkt),
    ) -> u64 {
        let every = self.a.kernel_flood_every;
        let (mut since, mut floods) = (0u32, 0u64);
        for &i in &shuffled(flows, seed + 500) {
            let p = self.reply(i);
            sink(self, &p);
            if every > 0 {
                since += 1;
                if since == every {
                    since = 0;
                    let p = self.flood(floods as u32);
                    sink(self, &p);
                    floods += 1;
                }
            }
        }
        floods
    }

    fn emit(&mut self, w: &mut PcapWriter, p: &Pkt) {
        let n = match build(&mut self.buf, p) {
            Ok(n) => n,
            Err(e) => fail(&format!("cannot build a packet: {e}")),
        };
        let frame = self.buf.get(..n).unwrap_or(&[]);
        if let Err(e) = w.write(frame) {
            let path = w.path.clone();
            io_fail(&path, e);
        }
    }
}

fn main() {
    let a = Args::parse();
    if a.conns == 0 || a.conns > MAX_FLOWS {
        fail(&format!("--conns must be 1..={MAX_FLOWS}"));
    }
    if a.queues == 0 || a.queues > 16 {
        fail("--queues must be 1..=16 (net_pcap's queue limit)");
    }
    if !(64..=1518).contains(&a.size) {
        fail("--size must be 64..=1518 (wire frame including FCS)");
    }
    if a.reals == 0 || a.reals > 64 || u32::from(a.vport) + u32::from(a.reals) > 65536 {
        fail("--reals must be 1..=64 and vport + reals must stay below 65536");
    }
    if a.scenario == Scenario::EstablishedTcp && a.acks == 0 {
        fail("--acks must be at least 1");
    }
    if a.scenario == Scenario::EstablishedUdp && a.rounds == 0 {
        fail("--rounds must be at least 1");
    }
    if a.kernel_flood_every > 0 {
        if a.scenario == Scenario::Syn {
            fail("--kernel-flood-every needs replies (an established scenario)");
        }
        let (dip, rip) = (u32::from(a.dip), u32::from(a.rip));
        if (rip..rip + u32::from(a.reals)).contains(&dip) {
            fail("--dip must not be a real server's address");
        }
    }
    if let Err(e) = std::fs::create_dir_all(&a.out) {
        io_fail(&a.out, e);
    }
    let mut g = Gen::new(a);
    let nq = usize::from(g.a.queues);

    // Flows per queue, in creation order.
    let mut per_q: Vec<Vec<u32>> = vec![Vec::new(); nq];
    for i in 0..g.a.conns {
        let q = match g.a.steer {
            Steer::Owner => {
                let (cip, cport) = client(i);
                endpoint_core(cip, cport, nq)
            }
            Steer::Spray => (i as usize) % nq,
        };
        if let Some(v) = per_q.get_mut(q) {
            v.push(i);
        }
    }

    let scenario = g.a.scenario;
    let mut files = serde_json::Map::new();
    let mut public = Vec::new();
    let mut private = Vec::new();
    let mut floods_total = 0u64;
    for (q, flows) in per_q.iter().enumerate() {
        let seed = g.a.seed.wrapping_add(q as u64 * 1000);
        let path = g.a.out.join(format!("public-q{q}.pcap"));
        let mut w = PcapWriter::create(&path).unwrap_or_else(|e| io_fail(&path, e));
        match scenario {
            Scenario::EstablishedUdp => {
                for r in 0..g.a.rounds {
                    let order = if r == 0 {
                        flows.clone()
                    } else {
                        shuffled(flows, seed + u64::from(r))
                    };
                    for &i in &order {
                        let p = g.request(i, 0, true, r);
                        g.emit(&mut w, &p);
                    }
                }
            }
            Scenario::EstablishedTcp => {
                for &i in flows {
                    let p = g.request(i, Flags::SYN, false, 0);
                    g.emit(&mut w, &p);
                }
                for r in 0..g.a.acks {
                    for &i in &shuffled(flows, seed + 1 + u64::from(r)) {
                        let p = g.request(i, Flags::ACK | Flags::PSH, true, r + 1);
                        g.emit(&mut w, &p);
                    }
                }
            }
            Scenario::Syn => {
                for &i in flows {
                    let p = g.request(i, Flags::SYN, false, 0);
                    g.emit(&mut w, &p);
                    let p = g.request(i, Flags::FIN | Flags::ACK, false, 0);
                    g.emit(&mut w, &p);
                }
            }
        }
        public.push(finish_json(w));
        if scenario != Scenario::Syn {
            let path = g.a.out.join(format!("private-q{q}.pcap"));
            let mut w = PcapWriter::create(&path).unwrap_or_else(|e| io_fail(&path, e));
            let floods = g.private_file(flows, seed, &mut |g, p| g.emit(&mut w, p));
            let mut f = finish_json(w);
            if g.a.kernel_flood_every > 0 {
                f["kernel_flood_packets"] = floods.into();
                floods_total += floods;
            }
            private.push(f);
        }
    }
    files.insert("public".into(), serde_json::Value::Array(public));
    files.insert("private".into(), serde_json::Value::Array(private));

    let proto = if scenario.proto() == Protocol::TCP {
        "tcp"
    } else {
        "udp"
    };
    let services: Vec<serde_json::Value> = (0..u32::from(g.a.reals))
        .map(|k| {
            let (rip, rport, rmac) = g.real(k);
            serde_json::json!({
                "proto": proto,
                "vip": g.a.vip.to_string(),
                "vport": g.vport(k),
                "rip": rip.to_string(),
                "rport": rport,
                "real_mac": rmac.to_string(),
            })
        })
        .collect();
    let mut manifest = serde_json::json!({
        "scenario": scenario.name(),
        "conns": g.a.conns,
        "queues": g.a.queues,
        "steer": format!("{:?}", g.a.steer).to_lowercase(),
        "frame": if g.a.imix { "imix".to_string() } else { g.a.size.to_string() },
        "acks": g.a.acks,
        "rounds": g.a.rounds,
        "public_mac": g.public_mac.to_string(),
        "private_mac": g.private_mac.to_string(),
        "gateway": GATEWAY.to_string(),
        "gateway_mac": g.gateway_mac.to_string(),
        "services": services,
        "files": files,
    });
    if g.a.kernel_flood_every > 0 {
        // Only with the option: without it the manifest is what it always was.
        manifest["kernel_flood"] = serde_json::json!({
            "every": g.a.kernel_flood_every,
            "packets": floods_total,
            "src_port": FLOOD_SPORT,
            "dst": format!("{}:{}", g.a.dip, FLOOD_DPORT),
        });
    }
    let path = g.a.out.join("manifest.json");
    let text = serde_json::to_string_pretty(&manifest).unwrap_or_default();
    if let Err(e) = std::fs::write(&path, text + "\n") {
        io_fail(&path, e);
    }
    // The services the traffic expects, in `rvsadm -R` syntax (rr, masquerading, weight 1),
    // so that every script configures rvs the same way.
    let flag = if proto == "tcp" { "-t" } else { "-u" };
    let rules: String = (0..u32::from(g.a.reals))
        .map(|k| {
            let (rip, rport, _) = g.real(k);
            let vip = format!("{}:{}", g.a.vip, g.vport(k));
            format!("-A {flag} {vip} -s rr\n-a {flag} {vip} -r {rip}:{rport} -m -w 1\n")
        })
        .collect();
    let rules_path = g.a.out.join("rules");
    if let Err(e) = std::fs::write(&rules_path, rules) {
        io_fail(&rules_path, e);
    }
    println!("{}", path.display());
}

fn finish_json(w: PcapWriter) -> serde_json::Value {
    let path = w.path.clone();
    match w.finish() {
        Ok((p, packets, bytes)) => serde_json::json!({
            "path": p.display().to_string(),
            "packets": packets,
            "bytes": bytes,
        }),
        Err(e) => io_fail(&path, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs::net::udp::UdpDatagram;

    fn pkt(proto: u8, data: bool, frame_len: usize) -> Pkt {
        Pkt {
            dst_mac: MacAddr([2, 0x70, 0x63, 0x61, 0x70, 0]),
            src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            src: Ipv4Addr::new(172, 16, 0, 1),
            dst: Ipv4Addr::new(10, 0, 0, 13),
            sport: 1024,
            dport: 80,
            proto,
            tcp_flags: if data { 0x18 } else { 0x02 },
            seq: 7,
            ack: 9,
            ident: 3,
            frame_len,
            data,
        }
    }

    #[test]
    fn udp_64_byte_frame_checksums_verify() {
        let mut buf = vec![0u8; 2048];
        let n = build(&mut buf, &pkt(Protocol::UDP, true, 60)).unwrap();
        assert_eq!(n, 60);
        let ip = Ipv4Packet::new_checked(&buf[14..60]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.total_len(), 46);
        assert_eq!(ip.ttl(), 64);
        assert!(ip.dont_frag());
        let u = UdpDatagram::new_checked(ip.payload()).unwrap();
        assert_eq!(u.len(), 26);
        assert_eq!((u.src_port(), u.dst_port()), (1024, 80));
        assert!(u.verify_checksum(ip.src(), ip.dst()));
        assert_eq!(&buf[0..6], &[2, 0x70, 0x63, 0x61, 0x70, 0]);
        assert_eq!(&buf[12..14], &[0x08, 0x00]);
    }

    #[test]
    fn tcp_syn_is_padded_and_data_fills_frame() {
        let mut buf = vec![0u8; 2048];
        let n = build(&mut buf, &pkt(Protocol::TCP, false, 60)).unwrap();
        assert_eq!(n, 60);
        let ip = Ipv4Packet::new_checked(&buf[14..60]).unwrap();
        assert_eq!(ip.total_len(), 40);
        assert!(buf[54..60].iter().all(|b| *b == 0), "Ethernet padding");
        let t = TcpSegment::new_checked(ip.payload()).unwrap();
        assert!(t.syn() && !t.ack());
        assert!(t.verify_checksum(ip.src(), ip.dst()));

        let n = build(&mut buf, &pkt(Protocol::TCP, true, 1514)).unwrap();
        assert_eq!(n, 1514);
        let ip = Ipv4Packet::new_checked(&buf[14..1514]).unwrap();
        assert_eq!(ip.total_len(), 1500);
        let t = TcpSegment::new_checked(ip.payload()).unwrap();
        assert_eq!(t.payload().len(), 1460);
        assert!(t.verify_checksum(ip.src(), ip.dst()));
    }

    #[test]
    fn client_endpoints_are_distinct_and_unicast() {
        let mut seen = std::collections::HashSet::new();
        for i in (0..3_000_000u32).step_by(7) {
            let (a, p) = client(i);
            assert!(seen.insert((a, p)));
            let o = a.octets();
            assert_eq!(o[0], 172);
            assert!((16..=31).contains(&o[1]));
            assert!(u32::from(a) != 0xac1f_ffff && u32::from(a) != 0xac10_0000);
            assert!(p >= 1024);
        }
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let v: Vec<u32> = (0..1000).collect();
        let s = shuffled(&v, 42);
        assert_ne!(s, v);
        let mut t = s.clone();
        t.sort_unstable();
        assert_eq!(t, v);
    }

    fn gen(extra: &[&str]) -> Gen {
        let mut argv = vec!["rvs-pcapgen", "--out", "/nonexistent", "--reals", "2"];
        argv.extend_from_slice(extra);
        Gen::new(Args::try_parse_from(argv).unwrap())
    }

    fn private_packets(g: &mut Gen, flows: &[u32]) -> (Vec<Pkt>, u64) {
        let mut v = Vec::new();
        let n = g.private_file(flows, 7, &mut |_, p| v.push(*p));
        (v, n)
    }

    #[test]
    fn kernel_flood_every_n_replies_one_host_bound_datagram() {
        let flows: Vec<u32> = (0..40).collect();
        let (plain, none) = private_packets(&mut gen(&[]), &flows);
        assert_eq!((plain.len(), none), (40, 0));
        let (mixed, floods) = private_packets(&mut gen(&["--kernel-flood-every", "8"]), &flows);
        assert_eq!((mixed.len(), floods), (45, 5));
        let dip = Ipv4Addr::new(192, 168, 8, 13);
        let mut replies = Vec::new();
        for (k, p) in mixed.iter().enumerate() {
            if k % 9 != 8 {
                replies.push(p);
                continue;
            }
            let j = (k / 9) as u8;
            assert_eq!(
                (p.dst, p.dport, p.sport, p.proto),
                (dip, 9, 5000, Protocol::UDP)
            );
            assert_eq!(
                p.src,
                Ipv4Addr::new(192, 168, 8, 14 + j % 2),
                "real servers in turn"
            );
            assert_eq!(p.src_mac, MacAddr([2, 0, 0, 0, 1, j % 2]));
            assert_eq!(p.dst_mac, MacAddr([2, 0x70, 0x63, 0x61, 0x70, 1]));
            assert_eq!(p.frame_len, 60, "the size of the replies");
            let mut buf = vec![0u8; 2048];
            let n = build(&mut buf, p).unwrap();
            let ip = Ipv4Packet::new_checked(&buf[14..n]).unwrap();
            assert!(ip.verify_checksum());
            let u = UdpDatagram::new_checked(ip.payload()).unwrap();
            assert!(u.verify_checksum(ip.src(), ip.dst()));
        }
        // The replies themselves are those of the plain file, in the same order.
        let same = |a: &Pkt, b: &Pkt| {
            (a.src, a.dst, a.sport, a.dport, a.seq, a.ident, a.frame_len)
                == (b.src, b.dst, b.sport, b.dport, b.seq, b.ident, b.frame_len)
        };
        assert_eq!(replies.len(), plain.len());
        assert!(replies.iter().zip(&plain).all(|(a, b)| same(a, b)));
    }

    #[test]
    fn kernel_flood_keeps_the_imix_sizes_cycling() {
        let flows: Vec<u32> = (0..24).collect();
        let (mixed, _) = private_packets(
            &mut gen(&[
                "--scenario",
                "established-tcp",
                "--imix",
                "--kernel-flood-every",
                "3",
            ]),
            &flows,
        );
        let sizes: Vec<usize> = mixed.iter().map(|p| p.frame_len + 4).collect();
        let want: Vec<usize> = IMIX
            .iter()
            .cycle()
            .take(32)
            .map(|s| usize::from(*s))
            .collect();
        assert_eq!(sizes, want);
        // The host-bound datagrams are UDP whatever the scenario's protocol.
        assert!(mixed
            .iter()
            .skip(3)
            .step_by(4)
            .all(|p| p.proto == Protocol::UDP));
        assert!(mixed.iter().take(3).all(|p| p.proto == Protocol::TCP));
    }

    #[test]
    fn pcap_header_and_record_layout() {
        let dir = std::env::temp_dir().join(format!("rvs-pcapgen-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.pcap");
        let mut w = PcapWriter::create(&path).unwrap();
        w.write(&[1, 2, 3]).unwrap();
        let (_, packets, bytes) = w.finish().unwrap();
        assert_eq!((packets, bytes), (1, 3));
        let b = std::fs::read(&path).unwrap();
        assert_eq!(&b[0..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(&b[20..24], &[1, 0, 0, 0]);
        assert_eq!(b.len(), 24 + 16 + 3);
        assert_eq!(&b[32..36], &[3, 0, 0, 0]);
        assert_eq!(&b[40..43], &[1, 2, 3]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
