//! rvsadm: the ipvsadm-compatible client of the rvs control socket.
//!
//! ipvsadm's commands, options, output and exit codes (see `rvsadm -h`), plus rvs extras:
//! `--stats-ports` (per-port and per-worker counters), `--neigh` (neighbour tables), `--json`
//! (machine-readable listings) and `--socket PATH` (default /run/rvs/rvs.sock, or $RVS_SOCKET).

use rvs::control::proto::{NeighReply, PortStatsReply, Request, Response};
use rvs::control::server::call;
use std::path::PathBuf;
use std::process::exit;

const DEFAULT_SOCKET: &str = "/run/rvs/rvs.sock";

struct Extras {
    socket: PathBuf,
    json: bool,
    stats_ports: bool,
    neigh: bool,
}

/// Takes rvs's own options out of argv, leaving ipvsadm's.
fn split_extras(argv: Vec<String>) -> Result<(Extras, Vec<String>), String> {
    let mut ex = Extras {
        socket: std::env::var_os("RVS_SOCKET")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET)),
        json: false,
        stats_ports: false,
        neigh: false,
    };
    let mut rest = Vec::new();
    let mut it = argv.into_iter();
    if let Some(p) = it.next() {
        rest.push(p);
    }
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => ex.json = true,
            "--stats-ports" => ex.stats_ports = true,
            "--neigh" | "--neighbours" => ex.neigh = true,
            "--socket" => {
                ex.socket = it
                    .next()
                    .map(PathBuf::from)
                    .ok_or("option --socket needs a path")?
            }
            s if s.starts_with("--socket=") => ex.socket = PathBuf::from(&s[9..]),
            _ => rest.push(a),
        }
    }
    Ok((ex, rest))
}

fn request(ex: &Extras, req: Request) -> Response {
    match call(&ex.socket, &req) {
        Ok(r) => r,
        Err(e) => {
            let msg = match e.kind() {
                std::io::ErrorKind::PermissionDenied => {
                    "Permission denied (you must be root)".to_string()
                }
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => format!(
                    "Can't connect to rvs at {}: is the appliance running? ({e})",
                    ex.socket.display()
                ),
                _ => format!("control socket {}: {e}", ex.socket.display()),
            };
            eprintln!("{msg}");
            exit(if e.kind() == std::io::ErrorKind::PermissionDenied {
                255
            } else {
                1
            });
        }
    }
}

fn data_or_exit<T: serde::de::DeserializeOwned>(r: Response) -> T {
    if !r.ok {
        eprintln!("{}", r.error.unwrap_or_else(|| "request failed".into()));
        exit(r.exit_code.unwrap_or(255));
    }
    match serde_json::from_value(r.data) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("unexpected reply from rvs: {e}");
            exit(1);
        }
    }
}

fn print_json(v: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| "null".into())
    );
}

fn stats_ports(ex: &Extras) {
    let r = request(ex, Request::PortStats);
    if ex.json && r.ok {
        print_json(&r.data);
        return;
    }
    let s: PortStatsReply = data_or_exit(r);
    println!(
        "{:<8} {:<16} {:<14} {:<17} {:<4} {:>12} {:>12} {:>12} {:>12} {:>10}",
        "Port",
        "Device",
        "Driver",
        "MAC",
        "Link",
        "RxPkts",
        "TxPkts",
        "HwRxPkts",
        "HwTxPkts",
        "Drops"
    );
    for p in &s.ports {
        println!(
            "{:<8} {:<16} {:<14} {:<17} {:<4} {:>12} {:>12} {:>12} {:>12} {:>10}",
            p.role,
            p.device,
            p.driver,
            p.mac,
            if p.link_up { "up" } else { "down" },
            p.sw.rx_packets,
            p.sw.tx_packets,
            p.hw.ipackets,
            p.hw.opackets,
            p.sw.total_drops()
        );
        println!(
            "  addresses {}  arp_replies {}  echo_replies {}  rx_bytes {}  tx_bytes {}  handed_over {}  hw_missed {}  hw_errors {}",
            p.addresses.join(","),
            p.sw.arp_replies,
            p.sw.echo_replies,
            p.sw.rx_bytes,
            p.sw.tx_bytes,
            p.sw.handed_over,
            p.hw.imissed,
            p.hw.ierrors + p.hw.oerrors
        );
        for (reason, n) in p.sw.drops.iter().filter(|d| d.1 > 0) {
            println!("  drop {reason:<22} {n}");
        }
    }
    println!();
    println!(
        "{:<6} {:<6} {:<8} {:>12} {:>12} {:>12} {:>12} {:>10}",
        "Worker", "Lcore", "Port", "RxPkts", "TxPkts", "HandedOver", "HandedIn", "Drops"
    );
    for w in &s.workers {
        for (i, p) in w.ports.iter().enumerate() {
            println!(
                "{:<6} {:<6} {:<8} {:>12} {:>12} {:>12} {:>12} {:>10}",
                w.worker,
                w.lcore,
                if i == 0 { "public" } else { "private" },
                p.rx_packets,
                p.tx_packets,
                p.handed_over,
                if i == 0 {
                    w.handed_in.to_string()
                } else {
                    String::new()
                },
                p.total_drops()
            );
        }
    }
}

fn neigh(ex: &Extras) {
    let r = request(ex, Request::Neighbours);
    if ex.json && r.ok {
        print_json(&r.data);
        return;
    }
    let n: NeighReply = data_or_exit(r);
    println!(
        "{:<8} {:<16} {:<18} {:<11} {:>8}",
        "Port", "Address", "MAC", "State", "Age(ms)"
    );
    for (port, rows) in &n.ports {
        for r in rows {
            println!(
                "{:<8} {:<16} {:<18} {:<11} {:>8}",
                port,
                r.ip.to_string(),
                r.mac.clone().unwrap_or_else(|| "(incomplete)".into()),
                format!("{:?}", r.state).to_lowercase(),
                r.age_ms
            );
        }
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let (ex, rest) = match split_extras(argv) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{e}");
            exit(2);
        }
    };
    if ex.stats_ports || ex.neigh {
        if rest.len() > 1 {
            eprintln!("--stats-ports and --neigh take no ipvsadm options");
            exit(2);
        }
        if ex.stats_ports {
            stats_ports(&ex);
        }
        if ex.neigh {
            neigh(&ex);
        }
        return;
    }
    rvsadm_ipvs(&ex, rest);
}

fn rvsadm_ipvs(ex: &Extras, argv: Vec<String>) {
    use rvs::control::ipvsadm::args::{parse, Command};
    use rvs::control::ipvsadm::format;
    let cmd = match parse(&argv) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}", e.message);
            exit(e.exit_code);
        }
    };
    match cmd {
        Command::Help { program } => {
            print!("{}", format::usage(&program));
        }
        Command::Version => println!("{}", format::version_line()),
        _ => {
            let _ = ex;
            eprintln!("this rvs build does not manage virtual services yet");
            exit(255);
        }
    }
}
