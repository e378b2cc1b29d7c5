//! Acceptance tests of the kernel exception path against the running lab (issue 11): the
//! host's stack on the appliance's ports through the kernel twins rvs-pub-k / rvs-priv-k,
//! which scripts/lab.sh configures. Ignored by a plain `cargo test`; scripts/test.sh runs them.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const VIP: &str = "10.0.0.13";
const DIP: &str = "192.168.8.13";
const PY: &str = "/usr/bin/python3";

/// A kernel listener on `addr` (root namespace, so on a twin's address) that answers each
/// connection's first line with "host got: <line>" and then echoes what follows.
fn host_listener(addr: &str) -> std::thread::JoinHandle<Vec<String>> {
    let l = TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    std::thread::spawn(move || {
        let mut got = Vec::new();
        l.set_nonblocking(false).unwrap();
        if let Ok((mut s, _)) = l.accept() {
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut buf = [0u8; 256];
            let n = s.read(&mut buf).unwrap_or(0);
            let line = String::from_utf8_lossy(&buf[..n]).trim().to_string();
            s.write_all(format!("host got: {line}\n").as_bytes())
                .unwrap();
            got.push(line);
        }
        got
    })
}

/// From namespace `ns`: connect to `addr:port`, send `msg`, return what comes back.
fn tcp_exchange(ns: &str, addr: &str, port: u16, msg: &str) -> String {
    let script = format!(
        "import socket\ns=socket.create_connection(('{addr}',{port}),timeout=5)\n\
         s.sendall(b'{msg}\\n')\nprint(s.recv(256).decode().strip())"
    );
    let o = netns(ns, &[PY, "-c", &script]);
    assert!(o.status.success(), "tcp exchange from {ns}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn curl(ns: &str, url: &str) -> Result<String, i32> {
    let o = netns(ns, &["curl", "-s", "-m", "5", url]);
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
    } else {
        Err(o.status.code().unwrap_or(-1))
    }
}

fn web_service(vip: &str) {
    let svc = format!("{vip}:80");
    adm(&["-A", "-t", &svc, "-s", "rr"]);
    adm(&["-a", "-t", &svc, "-r", "192.168.8.14:80", "-m"]);
}

fn log() -> String {
    std::fs::read_to_string("/run/rvs/rvs.log").unwrap_or_default()
}

/// The twins are there, with the ports' MACs and addresses (what sockets bind to).
#[test]
#[ignore = "needs root and the lab (scripts/test.sh)"]
fn twins_carry_the_ports_mac_mtu_and_addresses() {
    fresh(1);
    let s = port_stats();
    for (port, twin, addr) in [
        ("public", "rvs-pub-k", "10.0.0.13/24"),
        ("private", "rvs-priv-k", "192.168.8.13/24"),
    ] {
        let mac = std::fs::read_to_string(format!("/sys/class/net/{twin}/address")).unwrap();
        assert_eq!(
            mac.trim(),
            port_mac(&s, port),
            "{twin} has the {port} port's MAC"
        );
        let mtu = std::fs::read_to_string(format!("/sys/class/net/{twin}/mtu")).unwrap();
        assert_eq!(mtu.trim(), "1500");
        let o = run("ip", &["-4", "-o", "addr", "show", "dev", twin]);
        assert!(text(&o).contains(addr), "{twin}: {}", text(&o));
        let p = s["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["role"] == port)
            .unwrap();
        assert_eq!(
            p["kernel"],
            format!("{twin} (tap)"),
            "net_tap here (no vhost-net)"
        );
    }
}

/// A TCP session from a real server to a kernel listener on the DIP, and from the client to
/// one on the VIP on a port without virtual service, while the VIP's port 80 is balanced.
#[test]
#[ignore = "needs root and the lab (scripts/test.sh)"]
fn host_listeners_on_the_dip_and_the_vip_while_port_80_is_balanced() {
    fresh(1);
    web_service(VIP);
    let before = port_stats();
    let h = host_listener(&format!("{DIP}:2222"));
    assert_eq!(
        tcp_exchange("rvs-rs1", DIP, 2222, "from rs1"),
        "host got: from rs1"
    );
    assert_eq!(h.join().unwrap(), ["from rs1"]);
    let h = host_listener(&format!("{VIP}:2222"));
    assert_eq!(
        tcp_exchange("rvs-client", VIP, 2222, "from the client"),
        "host got: from the client"
    );
    assert_eq!(h.join().unwrap(), ["from the client"]);
    assert_eq!(
        curl("rvs-client", &format!("http://{VIP}/")).as_deref(),
        Ok("hello RS1")
    );
    let after = port_stats();
    for port in ["public", "private"] {
        let up = counter(&after, port, "to_kernel") - counter(&before, port, "to_kernel");
        let down = counter(&after, port, "from_kernel") - counter(&before, port, "from_kernel");
        assert!(
            up >= 3 && down >= 3,
            "{port}: to_kernel +{up}, from_kernel +{down}"
        );
        assert_eq!(
            counter(&after, port, "kernel_drops"),
            counter(&before, port, "kernel_drops")
        );
    }
}

/// What health checks will use: the host pings and connects to a real server through the
/// private twin.
#[test]
#[ignore = "needs root and the lab (scripts/test.sh)"]
fn the_host_reaches_the_real_servers_through_the_private_twin() {
    fresh(1);
    let o = run(
        "ping",
        &["-c", "2", "-W", "2", "-I", "rvs-priv-k", "192.168.8.14"],
    );
    assert!(o.status.success(), "ping through the twin: {}", text(&o));
    let o = run(
        "curl",
        &[
            "-s",
            "-m",
            "5",
            "--interface",
            "rvs-priv-k",
            "http://192.168.8.14/",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "hello RS1",
        "{}",
        text(&o)
    );
    let mut s =
        TcpStream::connect_timeout(&"192.168.8.15:80".parse().unwrap(), Duration::from_secs(5))
            .expect("TCP to RS2 from the host");
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    assert!(body.contains("hello RS2"), "{body}");
}

/// A VIP port without service is refused at once (a RST from the kernel), and so is a stray
/// segment that is not a SYN, on a service port or not.
#[test]
#[ignore = "needs root and the lab (scripts/test.sh)"]
fn closed_vip_ports_and_stray_segments_get_a_rst_from_the_kernel() {
    fresh(1);
    web_service(VIP);
    let t = Instant::now();
    let o = netns(
        "rvs-client",
        &["curl", "-sS", "-m", "5", &format!("http://{VIP}:81/")],
    );
    assert_eq!(
        o.status.code(),
        Some(7),
        "curl: couldn't connect: {}",
        text(&o)
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Couldn't connect")
            || String::from_utf8_lossy(&o.stderr).contains("refused"),
        "{}",
        text(&o)
    );
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "refused, not timed out"
    );
    // Stray ACKs (no connection) to the service port and to a closed one.
    let script = format!(
        "from scapy.all import IP, TCP, sr1, conf\nconf.verb = 0\n\
         for dport in (80, 81):\n\
         \x20   r = sr1(IP(dst='{VIP}')/TCP(sport=40123, dport=dport, flags='A', seq=1000, ack=5555), timeout=3)\n\
         \x20   print(dport, 'none' if r is None else r[TCP].sprintf('%TCP.flags%'), 'none' if r is None else r[TCP].seq)\n"
    );
    let o = netns("rvs-client", &[PY, "-c", &script]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{}", text(&o));
    for port in ["80", "81"] {
        let line = out.lines().find(|l| l.starts_with(port)).unwrap_or("");
        // RFC 793: a RST for a stray ACK takes its sequence number from the ACK field.
        assert_eq!(line, format!("{port} R 5555"), "{out}");
    }
    // The balanced port is unaffected.
    assert_eq!(
        curl("rvs-client", &format!("http://{VIP}/")).as_deref(),
        Ok("hello RS1")
    );
}

/// An address the host adds on the public twin becomes rvs's (ARP, ping, a service on it
/// balances) and stops being rvs's when removed; both logged.
#[test]
#[ignore = "needs root and the lab (scripts/test.sh)"]
fn addresses_added_on_the_twin_are_followed() {
    fresh(1);
    let vip2 = "10.0.0.14";
    let _ = run("ip", &["addr", "del", "10.0.0.14/24", "dev", "rvs-pub-k"]);
    let o = run("ip", &["addr", "add", "10.0.0.14/24", "dev", "rvs-pub-k"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        wait_for(Duration::from_secs(5), || {
            port_stats()["ports"][0]["addresses"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == "10.0.0.14/24"))
        }),
        "rvs owns 10.0.0.14"
    );
    let _ = netns("rvs-client", &["ip", "neigh", "flush", "dev", "eth0"]);
    let o = netns("rvs-client", &["ping", "-c", "1", "-W", "2", vip2]);
    assert!(o.status.success(), "ping the new VIP: {}", text(&o));
    web_service(vip2);
    assert_eq!(
        curl("rvs-client", &format!("http://{vip2}/")).as_deref(),
        Ok("hello RS1")
    );
    assert!(log().contains("address added on the kernel twin"), "logged");

    let o = run("ip", &["addr", "del", "10.0.0.14/24", "dev", "rvs-pub-k"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        wait_for(Duration::from_secs(5), || {
            !port_stats()["ports"][0]["addresses"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == "10.0.0.14/24"))
        }),
        "rvs gave 10.0.0.14 up"
    );
    let _ = netns("rvs-client", &["ip", "neigh", "flush", "dev", "eth0"]);
    let o = netns("rvs-client", &["ping", "-c", "1", "-W", "1", vip2]);
    assert!(
        !o.status.success(),
        "nobody answers for 10.0.0.14 now: {}",
        text(&o)
    );
    assert!(
        log().contains("address removed from the kernel twin"),
        "logged"
    );
    // The configured VIP is untouched.
    let o = netns("rvs-client", &["ping", "-c", "1", "-W", "2", VIP]);
    assert!(o.status.success(), "{}", text(&o));
}

/// A UDP flood at the DIP from a real server while a 200 MB download runs through the VIP:
/// the download completes byte for byte, the excess is counted as kernel_drops, and rvsadm
/// keeps answering.
#[test]
#[ignore = "needs root and the lab (scripts/test.sh)"]
fn a_flood_at_the_dip_does_not_hurt_nat_traffic() {
    fresh(1);
    web_service(VIP);
    let file = "/run/rvs/www-rs1/big.bin";
    let o = run(
        "dd",
        &[
            "if=/dev/urandom",
            &format!("of={file}"),
            "bs=1M",
            "count=200",
            "status=none",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let want = run("sha256sum", &[file]);
    let want = String::from_utf8_lossy(&want.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let before = port_stats();
    let mut flood = Command::new("ip")
        .args([
            "netns", "exec", "rvs-rs2", "hping3", "--flood", "--udp", "-p", "9", "-d", "64", DIP,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("hping3");
    std::thread::sleep(Duration::from_secs(1));
    let o = netns(
        "rvs-client",
        &[
            "sh",
            "-c",
            &format!("curl -s -m 300 http://{VIP}/big.bin | sha256sum"),
        ],
    );
    // Responsive under the flood.
    let l = rvsadm(&["-L", "-n"]);
    let during = port_stats();
    let _ = flood.kill();
    let _ = flood.wait();
    let _ = std::fs::remove_file(file);
    assert!(l.status.success(), "rvsadm during the flood: {}", text(&l));
    let got = String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string();
    assert_eq!(got, want, "the download is byte-identical: {}", text(&o));
    let drops =
        counter(&during, "private", "kernel_drops") - counter(&before, "private", "kernel_drops");
    let up = counter(&during, "private", "to_kernel") - counter(&before, "private", "to_kernel");
    eprintln!("flood: to_kernel +{up}, kernel_drops +{drops} during a 200 MB download");
    assert!(
        drops > 0,
        "the excess over kernel_rate is dropped and counted (to_kernel +{up})"
    );
    assert!(up > 0, "the flood's share within the limit went up");
}

/// A twin deleted from outside: logged, shown as gone, and NAT traffic and the port's
/// addresses unaffected. rvs is restarted afterwards, which makes the twin again.
#[test]
#[ignore = "needs root and the lab (scripts/test.sh)"]
fn a_twin_deleted_from_outside_degrades_without_losing_nat() {
    fresh(1);
    web_service(VIP);
    let o = run("ip", &["link", "del", "rvs-priv-k"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        wait_for(Duration::from_secs(5), || {
            port_stats()["ports"][1]["kernel"] == "rvs-priv-k (tap, gone)"
        }),
        "shown as gone"
    );
    assert!(log().contains("kernel twin deleted from outside"), "logged");
    let s = port_stats();
    assert_eq!(
        s["ports"][1]["addresses"][0], "192.168.8.13/24",
        "the DIP stays"
    );
    for _ in 0..3 {
        assert_eq!(
            curl("rvs-client", &format!("http://{VIP}/")).as_deref(),
            Ok("hello RS1")
        );
    }
    let o = netns("rvs-rs1", &["ping", "-c", "1", "-W", "2", DIP]);
    assert!(
        o.status.success(),
        "rvs still answers for the DIP: {}",
        text(&o)
    );
    // Back to a lab with both twins for whatever runs next.
    let lab = root().join("scripts/lab.sh");
    let o = run("bash", &[lab.to_str().unwrap(), "stop-rvs"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run("bash", &[lab.to_str().unwrap(), "start-rvs"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(std::path::Path::new("/sys/class/net/rvs-priv-k").exists());
}

/// VRRP (IP protocol 112 to 224.0.0.18, a multicast MAC) from the public side reaches the
/// host's stack on the public twin, where keepalived would read it.
#[test]
#[ignore = "needs root and the lab (scripts/test.sh)"]
fn vrrp_multicast_goes_up_to_the_twin() {
    fresh(1);
    // A packet socket on the twin, in the root namespace, waiting for protocol 112.
    let listen = "import socket, sys\n\
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))\n\
        s.bind(('rvs-pub-k', 0))\n\
        s.settimeout(10)\n\
        print('ready', flush=True)\n\
        while True:\n\
        \x20   f = s.recv(2048)\n\
        \x20   if f[14 + 9] == 112 and f[30:34] == bytes([224, 0, 0, 18]):\n\
        \x20       print('vrrp', f[0:6].hex(), f[34:].hex()[:16], flush=True)\n\
        \x20       break\n";
    let mut l = Command::new(PY)
        .args(["-c", listen])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("listener");
    let mut out = l.stdout.take().unwrap();
    let mut ready = [0u8; 6];
    out.read_exact(&mut ready).expect("listener ready");
    let before = port_stats();
    let send = "from scapy.all import Ether, IP, Raw, sendp, conf\nconf.verb = 0\n\
        p = Ether(dst='01:00:5e:00:00:12')/IP(src='10.0.0.12', dst='224.0.0.18', proto=112, ttl=255)\
        /Raw(bytes([0x21, 51, 150, 1, 0, 1, 0, 0, 10, 0, 0, 100]))\n\
        sendp(p, iface='eth0', count=3, inter=0.2)\n";
    let o = netns("rvs-client", &[PY, "-c", send]);
    assert!(o.status.success(), "{}", text(&o));
    let status = l.wait().unwrap();
    let mut got = String::new();
    out.read_to_string(&mut got).unwrap();
    assert!(
        status.success(),
        "the twin saw no VRRP advertisement: {got}"
    );
    assert!(got.contains("vrrp 01005e000012 2133960100010000"), "{got}");
    let after = port_stats();
    assert!(counter(&after, "public", "to_kernel") > counter(&before, "public", "to_kernel"));
}
