//! IPv4 header checksum offload end to end, on a port that really performs it: DPDK's `net_tap`
//! advertises TX_OFFLOAD_IPV4_CKSUM and, when the port is configured with it, computes the
//! header checksum of every mbuf that requests it as it writes the frame to the tap device
//! (drivers/net/tap `tap_write_mbufs`). The frames are read back from the kernel side of the
//! tap interface with an AF_PACKET socket, so what is checked is the bytes on the wire.
//!
//! EAL without hugepages or PCI (`--no-huge --no-pci --no-shconf`), two `net_tap` vdevs on
//! interfaces named after the test's pid. Runs as root (CI runs the suite as root); needs
//! /dev/net/tun.

mod common;

use nix::sys::socket::{
    recvfrom, setsockopt, socket, sockopt, AddressFamily, LinkAddr, SockFlag, SockProtocol,
    SockType,
};
use nix::sys::time::TimeVal;
use rvs::control::ports::{bring_up_port, tx_offload_names, PortUp};
use rvs::dataplane::l3;
use rvs::dpdk::{port, Burst, Eal, Mempool};
use rvs::lb::PortRole;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// Destination MAC of the test frames: not the tap interface's, so the kernel ignores them
/// after the packet socket has seen them.
const PEER: [u8; 6] = [0x02, 0, 0, 0, 0, 0x99];

/// RFC 1071 checksum, written here independently of the code under test.
fn naive_csum(b: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in b.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// An IPv4/UDP packet of `payload` bytes, identification `ident`, valid header checksum.
fn udp_packet(ident: u16, payload: usize) -> Vec<u8> {
    let tl = 20 + 8 + payload;
    let mut ip = vec![0x45, 0, (tl >> 8) as u8, tl as u8];
    ip.extend_from_slice(&ident.to_be_bytes());
    ip.extend_from_slice(&[0, 0, 64, 17, 0, 0, 10, 0, 0, 12, 192, 168, 8, 14]);
    let c = naive_csum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let ul = 8 + payload;
    ip.extend_from_slice(&[0x30, 0x39, 0, 53, (ul >> 8) as u8, ul as u8, 0, 0]);
    ip.extend((0..payload).map(|i| (i * 7) as u8));
    ip
}

/// A raw packet socket receiving every frame of every interface (the frames are filtered by
/// interface index on receipt: binding needs a sockaddr_ll nix builds only unsafely).
fn packet_socket() -> OwnedFd {
    let s = socket(
        AddressFamily::Packet,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::EthAll,
    )
    .expect("AF_PACKET socket (needs root)");
    setsockopt(&s, sockopt::ReceiveTimeout, &TimeVal::new(0, 100_000)).unwrap();
    s
}

/// Reads frames from `ifindex` until one carries an IPv4 packet with identification `ident`
/// and fragment offset `offset` (bytes), or 3 s pass.
fn read_fragment(s: &OwnedFd, ifindex: usize, ident: u16, offset: usize) -> Option<Vec<u8>> {
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut buf = vec![0u8; 65536];
    while Instant::now() < deadline {
        let Ok((n, Some(from))) = recvfrom::<LinkAddr>(s.as_raw_fd(), &mut buf) else {
            continue;
        };
        let f = &buf[..n];
        if from.ifindex() != ifindex || n < 34 || f[12..14] != [0x08, 0x00] {
            continue;
        }
        let ip = &f[14..];
        let off = usize::from(u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff) * 8;
        if ip[4..6] == ident.to_be_bytes() && off == offset {
            return Some(f.to_vec());
        }
    }
    None
}

/// Sends fragment `index` of `ip` (MTU 1500) out of `p`. The header is written for offload
/// (checksum 0) or in software; with `request`, the mbuf asks the port for the checksum.
/// Returns the frame as handed to the port.
fn send_fragment(
    p: &mut PortUp,
    pool: &Mempool,
    ip: &[u8],
    index: usize,
    offload_header: bool,
    request: bool,
) -> Vec<u8> {
    let mac = p.port.mac().unwrap();
    let mut m = pool.alloc().expect("mbuf");
    m.set_len(1514).unwrap();
    let buf = m.data_mut();
    buf[0..6].copy_from_slice(&PEER);
    buf[6..12].copy_from_slice(&mac);
    buf[12..14].copy_from_slice(&[0x08, 0x00]);
    let len = l3::write_fragment(ip, 1500, index, &mut buf[14..], offload_header).unwrap();
    m.set_len(14 + len).unwrap();
    if request {
        assert!(m.request_ipv4_cksum(14, 20));
        assert_eq!(m.ipv4_cksum_requested(), Some((14, 20)));
    } else {
        assert_eq!(m.ipv4_cksum_requested(), None);
    }
    let sent = m.data().to_vec();
    let mut b = Burst::new();
    b.push(m).unwrap();
    assert_eq!(p.txq[0].tx_burst(&mut b), 1, "net_tap took the frame");
    sent
}

#[test]
fn net_tap_computes_the_ipv4_header_checksum_when_asked() {
    let pid = std::process::id();
    let (if_on, if_off) = (format!("rvsck{pid}"), format!("rvsck{pid}n"));
    let prefix = format!("rvs-offload-{pid}");
    let args = common::test_eal_args(
        &prefix,
        [
            format!("net_tap0,iface={if_on}"),
            format!("net_tap1,iface={if_off}"),
        ],
    );
    let eal = Eal::init(&args).expect("EAL init (--no-huge, net_tap) failed: run as root");
    let pool = Mempool::new("offload_test", 4095, 0, 2176, 0).unwrap();

    // Bring-up: the offload is enabled where the port has it and the configuration allows it.
    let mut on = bring_up_port(PortRole::Public, "net_tap0", 1500, true, 1, &pool, None).unwrap();
    let mut off =
        bring_up_port(PortRole::Private, "net_tap1", 1500, false, 1, &pool, None).unwrap();
    assert_eq!(on.info.driver, "net_tap");
    assert_ne!(on.info.tx_offload_capa & port::TX_OFFLOAD_IPV4_CKSUM, 0);
    assert_eq!(on.tx_offloads, port::TX_OFFLOAD_IPV4_CKSUM);
    assert_eq!(tx_offload_names(on.tx_offloads), "ipv4_cksum");
    assert_eq!(off.tx_offloads, 0, "tx_checksum_offload = false");
    assert_eq!(tx_offload_names(off.tx_offloads), "none");

    let idx = |name: &str| nix::net::if_::if_nametoindex(name).unwrap() as usize;
    let (idx_on, idx_off) = (idx(if_on.as_str()), idx(if_off.as_str()));
    let sock = packet_socket();
    let ident = pid as u16;
    let ip = udp_packet(ident, 3000);

    // 1. Offload requested on the port that has it: the header leaves with checksum 0 and
    //    arrives with the right one; every other byte as sent.
    let sent = send_fragment(&mut on, &pool, &ip, 0, true, true);
    assert_eq!(&sent[24..26], &[0, 0], "checksum left to the port");
    let got = read_fragment(&sock, idx_on, ident, 0).expect("fragment 0 on the tap interface");
    assert_eq!(got.len(), sent.len());
    assert_ne!(&got[24..26], &[0, 0]);
    assert_eq!(
        naive_csum(&got[14..34]),
        0,
        "received header checksum verifies"
    );
    assert_eq!(&got[..24], &sent[..24]);
    assert_eq!(&got[26..], &sent[26..]);
    // The port's checksum is what software writes.
    let mut sw = [0u8; 1500];
    let n = l3::write_fragment(&ip, 1500, 0, &mut sw, false).unwrap();
    assert_eq!(&got[14..], &sw[..n]);

    // 2. Offload not requested: the port leaves the header as given, both a software
    //    checksum and a (wrong) 0.
    let sent = send_fragment(&mut on, &pool, &ip, 1, false, false);
    let got = read_fragment(&sock, idx_on, ident, 1480).expect("fragment 1");
    assert_eq!(got, sent);
    assert_eq!(naive_csum(&got[14..34]), 0);
    let sent = send_fragment(&mut on, &pool, &ip, 2, true, false);
    let got = read_fragment(&sock, idx_on, ident, 2960).expect("fragment 2");
    assert_eq!(got, sent);
    assert_eq!(
        &got[24..26],
        &[0, 0],
        "no offload requested: checksum untouched"
    );

    // 3. Requested on a port brought up without the offload: nothing computes it (which is
    //    why the worker requests it only on ports whose bring-up enabled it).
    let sent = send_fragment(&mut off, &pool, &ip, 0, true, true);
    let got = read_fragment(&sock, idx_off, ident, 0).expect("fragment 0 on the second tap");
    assert_eq!(got, sent);
    assert_eq!(&got[24..26], &[0, 0]);

    drop(sock);
    drop((on, off));
    drop(eal);
}
