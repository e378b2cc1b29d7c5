use super::*;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};

/// The tests that change interfaces run one at a time, so that one's notifications do
/// not land in another's "nothing pending" check.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn root(test: &str) -> bool {
    let is_root = nix::unistd::geteuid().is_root();
    if !is_root {
        eprintln!("{test}: skipped, it creates interfaces and needs root");
    }
    is_root
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ip {}: {err}", args.join(" "));
}

/// A software interface of this test's own, deleted when dropped (even on failure).
struct TestLink {
    name: String,
    ifindex: u32,
}

impl TestLink {
    /// An always-up link: `dummy`, or `ifb` where the kernel has no dummy driver.
    fn new() -> TestLink {
        TestLink::of(&["dummy", "ifb"])
    }

    fn of(kinds: &[&str]) -> TestLink {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let name = format!("rvsnl{}x{n}", std::process::id());
        assert!(name.len() < IFNAMSIZ, "{name} is too long");
        let made = kinds.iter().any(|kind| {
            Command::new("ip")
                .args(["link", "add", &name, "type", kind])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        assert!(made, "ip link add {name} type {kinds:?} failed");
        let ifindex = std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex"))
            .expect("read ifindex")
            .trim()
            .parse()
            .expect("parse ifindex");
        TestLink { name, ifindex }
    }

    fn sys(&self, file: &str) -> String {
        std::fs::read_to_string(format!("/sys/class/net/{}/{file}", self.name))
            .expect("read sysfs")
            .trim()
            .to_string()
    }

    /// `ip -4 -o addr show dev NAME`, one line per address.
    fn ip_show(&self) -> String {
        let out = Command::new("ip")
            .args(["-4", "-o", "addr", "show", "dev", &self.name])
            .output()
            .expect("run ip");
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The addresses as `ip` lists them.
    fn ip_addrs(&self) -> Vec<IfAddr> {
        self.ip_show()
            .lines()
            .filter_map(|l| l.split_whitespace().skip_while(|w| *w != "inet").nth(1))
            .map(ifa)
            .collect()
    }
}

impl Drop for TestLink {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

fn ifa(s: &str) -> IfAddr {
    let (a, p) = s.split_once('/').expect("a/p");
    IfAddr {
        addr: a.parse().expect("address"),
        prefix: p.parse().expect("prefix"),
    }
}

/// Polls until an event satisfies `want`, for up to two seconds; returns all seen.
fn wait_for(watch: &mut HostWatch, want: impl Fn(&HostEvent) -> bool) -> Vec<HostEvent> {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        watch.poll(&mut seen).expect("poll");
        if seen.iter().any(&want) {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("no such event within 2 s; saw {seen:?}");
}

#[test]
fn ifindex_finds_the_interface_and_none_for_a_missing_one() {
    if !root("ifindex") {
        return;
    }
    let _s = serial();
    let link = TestLink::new();
    let mut rtnl = Rtnl::open().expect("open");
    assert_eq!(
        rtnl.ifindex(&link.name).expect("ifindex"),
        Some(link.ifindex)
    );
    assert_eq!(rtnl.ifindex("rvsnl-absent").expect("ifindex"), None);
    assert_eq!(
        rtnl.ifindex("rvsnl-far-too-long-a-name").expect("ifindex"),
        None
    );
    assert_eq!(rtnl.ifindex("").expect("ifindex"), None);
}

#[test]
fn set_up_sets_iff_up_and_the_mtu() {
    if !root("set_up") {
        return;
    }
    let _s = serial();
    let link = TestLink::new();
    let mut rtnl = Rtnl::open().expect("open");
    assert_eq!(link.sys("operstate"), "down");
    rtnl.set_up(link.ifindex, Some(1400)).expect("set_up");
    assert_ne!(link.sys("operstate"), "down");
    let flags = u32::from_str_radix(link.sys("flags").trim_start_matches("0x"), 16);
    assert_eq!(flags.expect("flags") & 1, 1, "IFF_UP");
    assert_eq!(link.sys("mtu"), "1400");
    rtnl.set_up(link.ifindex, None).expect("set_up again");
    assert_eq!(link.sys("mtu"), "1400");
}

#[test]
fn set_mac_sets_the_link_address() {
    if !root("set_mac") {
        return;
    }
    let _s = serial();
    // ifb refuses a new MAC (EOPNOTSUPP); a bridge takes one, as a tap does.
    let link = TestLink::of(&["bridge"]);
    let mut rtnl = Rtnl::open().expect("open");
    let mac = [0x02, 0x52, 0x56, 0x53, 0x00, 0x13];
    rtnl.set_mac(link.ifindex, mac).expect("set_mac");
    assert_eq!(link.sys("address"), "02:52:56:53:00:13");
}

#[test]
fn add_addr_adds_the_address_its_broadcast_and_route_and_twice_is_ok() {
    if !root("add_addr") {
        return;
    }
    let _s = serial();
    let link = TestLink::new();
    let mut rtnl = Rtnl::open().expect("open");
    rtnl.set_up(link.ifindex, None).expect("set_up");
    let a = ifa("198.18.1.1/24");
    rtnl.add_addr(link.ifindex, a).expect("add");
    let shown = link.ip_show();
    assert!(
        shown.contains("inet 198.18.1.1/24 brd 198.18.1.255 "),
        "{shown}"
    );
    rtnl.add_addr(link.ifindex, a).expect("add again");
    assert_eq!(link.ip_addrs(), vec![a]);
    // /31 and /32 have no broadcast address, as with `brd +`.
    rtnl.add_addr(link.ifindex, ifa("198.18.2.1/32"))
        .expect("add /32");
    let shown = link.ip_show();
    assert!(shown.contains("inet 198.18.2.1/32 scope"), "{shown}");
    let routes = Command::new("ip")
        .args(["-4", "route", "show", "dev", &link.name])
        .output()
        .expect("ip route");
    let routes = String::from_utf8_lossy(&routes.stdout);
    assert!(routes.contains("198.18.1.0/24 proto kernel"), "{routes}");
}

#[test]
fn addrs_returns_what_ip_shows_secondaries_and_labels_included() {
    if !root("addrs") {
        return;
    }
    let _s = serial();
    let link = TestLink::new();
    let mut rtnl = Rtnl::open().expect("open");
    assert_eq!(rtnl.addrs(link.ifindex).expect("addrs"), vec![]);
    rtnl.add_addr(link.ifindex, ifa("198.18.3.1/24"))
        .expect("add");
    rtnl.add_addr(link.ifindex, ifa("198.18.3.2/24"))
        .expect("add secondary");
    let label = format!("{}:1", link.name);
    let label = label.get(label.len().saturating_sub(15)..).expect("label");
    ip(&[
        "addr",
        "add",
        "198.18.3.3/24",
        "dev",
        &link.name,
        "label",
        label,
    ]);
    ip(&["addr", "add", "198.18.4.1/28", "dev", &link.name]);
    let got = rtnl.addrs(link.ifindex).expect("addrs");
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(got, link.ip_addrs());
    assert!(link.ip_show().contains("secondary"));
}

#[test]
fn del_addr_removes_it_and_removing_an_absent_one_is_ok() {
    if !root("del_addr") {
        return;
    }
    let _s = serial();
    let link = TestLink::new();
    let mut rtnl = Rtnl::open().expect("open");
    let (a, b) = (ifa("198.18.5.1/24"), ifa("198.18.5.2/24"));
    rtnl.add_addr(link.ifindex, a).expect("add");
    rtnl.add_addr(link.ifindex, b).expect("add");
    rtnl.del_addr(link.ifindex, b).expect("del");
    assert_eq!(link.ip_addrs(), vec![a]);
    rtnl.del_addr(link.ifindex, b).expect("del absent");
    // The prefix is part of the address: a/16 is not a/24.
    rtnl.del_addr(link.ifindex, ifa("198.18.5.1/16"))
        .expect("del other prefix");
    assert_eq!(link.ip_addrs(), vec![a]);
    rtnl.del_addr(link.ifindex, a).expect("del");
    assert_eq!(link.ip_addrs(), vec![]);
    assert_eq!(rtnl.addrs(link.ifindex).expect("addrs"), vec![]);
}

#[test]
fn kernel_errors_are_one_line_an_operator_reads() {
    if !root("errors") {
        return;
    }
    let _s = serial();
    let link = TestLink::new();
    let mut rtnl = Rtnl::open().expect("open");
    let gone = 0x7fff_fff0;
    let e = rtnl
        .add_addr(gone, ifa("198.18.6.1/24"))
        .expect_err("no such link");
    assert!(
        matches!(
            e,
            NetlinkError::Kernel {
                errno: libc::ENODEV,
                ..
            }
        ),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text.starts_with(&format!(
            "netlink: add 198.18.6.1/24 on ifindex {gone}: No such device"
        )),
        "{text}"
    );
    assert!(rtnl.del_addr(gone, ifa("198.18.6.1/24")).is_err());
    assert!(rtnl.set_up(gone, None).is_err());
    // Named once looked up; the kernel's own explanation follows its errno.
    rtnl.ifindex(&link.name).expect("ifindex");
    let e = rtnl
        .add_addr(link.ifindex, ifa("198.18.6.1/33"))
        .expect_err("bad prefix");
    let text = e.to_string();
    let head = format!(
        "netlink: add 198.18.6.1/33 on {}: Invalid argument",
        link.name
    );
    assert!(text.starts_with(&head), "{text}");
    assert!(!text.contains('\n'), "{text}");
    eprintln!("{text}");
    // A bridge has a maximum MTU (ifb has none).
    let bridge = TestLink::of(&["bridge"]);
    let e = rtnl
        .set_up(bridge.ifindex, Some(70_000))
        .expect_err("MTU too large");
    eprintln!("{e}");
    assert!(
        matches!(
            e,
            NetlinkError::Kernel {
                errno: libc::EINVAL,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(bridge.sys("operstate"), "down", "refused as a whole");
}

#[test]
fn host_watch_follows_the_ip_tool() {
    if !root("host_watch") {
        return;
    }
    let _s = serial();
    let mut watch = HostWatch::open().expect("watch");
    let link = TestLink::new();
    let i = link.ifindex;
    ip(&["link", "set", &link.name, "up"]);
    wait_for(&mut watch, |e| {
        *e == HostEvent::LinkState {
            ifindex: i,
            up: true,
        }
    });

    ip(&["addr", "add", "198.18.7.1/24", "dev", &link.name]);
    let a = ifa("198.18.7.1/24");
    wait_for(&mut watch, |e| {
        *e == HostEvent::AddrAdded {
            ifindex: i,
            addr: a,
        }
    });
    // A secondary with a label.
    let label = format!("{}:9", link.name);
    let label = label.get(label.len().saturating_sub(15)..).expect("label");
    ip(&[
        "addr",
        "add",
        "198.18.7.2/24",
        "dev",
        &link.name,
        "label",
        label,
    ]);
    let b = ifa("198.18.7.2/24");
    wait_for(&mut watch, |e| {
        *e == HostEvent::AddrAdded {
            ifindex: i,
            addr: b,
        }
    });

    ip(&["addr", "del", "198.18.7.2/24", "dev", &link.name]);
    wait_for(&mut watch, |e| {
        *e == HostEvent::AddrRemoved {
            ifindex: i,
            addr: b,
        }
    });
    ip(&["link", "set", &link.name, "down"]);
    wait_for(&mut watch, |e| {
        *e == HostEvent::LinkState {
            ifindex: i,
            up: false,
        }
    });

    ip(&["link", "del", &link.name]);
    let seen = wait_for(&mut watch, |e| *e == HostEvent::LinkRemoved { ifindex: i });
    // Its addresses went with it, and were reported.
    assert!(
        seen.contains(&HostEvent::AddrRemoved {
            ifindex: i,
            addr: a
        }),
        "{seen:?}"
    );
}

#[test]
fn a_port_leaving_a_bridge_is_not_a_link_removed() {
    if !root("bridge") {
        return;
    }
    let _s = serial();
    let bridge = TestLink::of(&["bridge"]);
    let link = TestLink::new();
    let mut watch = HostWatch::open().expect("watch");
    ip(&["link", "set", &link.name, "master", &bridge.name]);
    ip(&["link", "set", &link.name, "nomaster"]);
    ip(&["link", "del", &bridge.name]);
    let b = bridge.ifindex;
    let seen = wait_for(&mut watch, |e| *e == HostEvent::LinkRemoved { ifindex: b });
    let port_gone = HostEvent::LinkRemoved {
        ifindex: link.ifindex,
    };
    assert!(!seen.contains(&port_gone), "{seen:?}");
}

#[test]
fn an_overflowing_watch_reports_overrun_then_goes_on() {
    if !root("overrun") {
        return;
    }
    let _s = serial();
    let link = TestLink::new();
    let mut watch = HostWatch::open().expect("watch");
    // The smallest buffer the kernel allows: a few notifications fill it.
    let smallest: libc::c_int = 1;
    watch.sock.set_rx_buf_sz(smallest).expect("rcvbuf");
    let mut rtnl = Rtnl::open().expect("open");
    let addrs: Vec<IfAddr> = (1..=40).map(|n| ifa(&format!("198.18.9.{n}/24"))).collect();
    for a in &addrs {
        rtnl.add_addr(link.ifindex, *a).expect("add");
    }
    let mut out = Vec::new();
    let overrun = (0..10).any(|_| matches!(watch.poll(&mut out), Err(NetlinkError::Overrun)));
    assert!(overrun, "no overrun; saw {} events", out.len());
    // The caller resynchronises from a dump, and later changes still arrive.
    assert_eq!(rtnl.addrs(link.ifindex).expect("addrs"), addrs);
    let drained = (0..10).any(|_| watch.poll(&mut out).is_ok());
    assert!(drained);
    let last = addrs[39];
    rtnl.del_addr(link.ifindex, last).expect("del");
    let i = link.ifindex;
    wait_for(&mut watch, |e| {
        *e == HostEvent::AddrRemoved {
            ifindex: i,
            addr: last,
        }
    });
}

#[test]
fn poll_on_an_idle_socket_returns_at_once_with_nothing() {
    let _s = serial();
    let mut watch = HostWatch::open().expect("watch");
    let mut out = Vec::new();
    let t = Instant::now();
    watch.poll(&mut out).expect("poll");
    watch.poll(&mut out).expect("poll again");
    assert!(t.elapsed() < Duration::from_millis(50), "{:?}", t.elapsed());
    assert_eq!(out, vec![]);
}

/// A notification as the kernel frames it, built with the crate.
fn frame(msg: RouteNetlinkMessage) -> Vec<u8> {
    let mut packet = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(msg));
    packet.finalize();
    let mut buf = vec![0; packet.buffer_len()];
    packet.serialize(&mut buf);
    buf
}

#[test]
fn events_decodes_ipv4_and_skips_ipv6_bridge_and_garbage() {
    let a = ifa("198.18.8.1/24");
    let mut v6 = AddressMessage::default();
    v6.header.family = AddressFamily::Inet6;
    v6.header.index = 3;
    v6.attributes.push(AddressAttribute::Address(
        "2001:db8::1".parse().expect("v6"),
    ));
    let mut bridge_port = LinkMessage::default();
    bridge_port.header.interface_family = AddressFamily::Bridge;
    bridge_port.header.index = 4;
    let mut gone = LinkMessage::default();
    gone.header.index = 5;

    // Several messages in one datagram, as the kernel may send.
    let mut datagram = frame(RouteNetlinkMessage::NewAddress(address_message(3, a, true)));
    datagram.extend(frame(RouteNetlinkMessage::NewAddress(v6)));
    datagram.extend(frame(RouteNetlinkMessage::DelLink(bridge_port)));
    datagram.extend(frame(RouteNetlinkMessage::DelLink(gone)));
    let mut out = Vec::new();
    events(&datagram, &mut out);
    assert_eq!(
        out,
        vec![
            HostEvent::AddrAdded {
                ifindex: 3,
                addr: a
            },
            HostEvent::LinkRemoved { ifindex: 5 }
        ]
    );

    // Truncated anywhere, or garbage: no panic, and only whole messages decode.
    for cut in 0..datagram.len() {
        let mut out = Vec::new();
        events(&datagram[..cut], &mut out);
        assert!(out.len() <= 2);
    }
    // Every byte of it changed to a few values: never a panic.
    for at in 0..datagram.len() {
        for v in [0x00, 0x01, 0x04, 0x7f, 0x80, 0xff] {
            let mut bad = datagram.clone();
            bad[at] = v;
            events(&bad, &mut Vec::new());
        }
    }
    let mut out = Vec::new();
    events(&[0xff; 64], &mut out);
    events(
        &[20, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4],
        &mut out,
    );
    assert_eq!(out, vec![]);
}

#[test]
fn strerror_drops_the_os_error_suffix() {
    assert_eq!(strerror(libc::EEXIST), "File exists");
}
