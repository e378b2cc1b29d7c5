//! rvsadm: the ipvsadm-compatible client of the rvs control socket.
//!
//! ipvsadm's commands, options, output and exit codes (see `rvsadm -h`), plus rvs extras:
//! `--stats-ports` (per-port and per-worker counters), `--neigh` (neighbour tables),
//! `--list-checks` / `--reload-checks` (the health checks), `--json`
//! (machine-readable listings), `--expire-conns` (with `-d`), the firewall-mark rule commands
//! (`--add-mark`, `--del-mark`, `--list-marks`) and `--socket PATH` (default
//! /run/rvs/rvs.sock, or $RVS_SOCKET). The protocol is docs/control-api.md.
// Input paths never panic: no unwrap, expect or panic outside tests (tests may).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use rvs_ctl::proto::{NeighReply, PortStatsReply, Request, Response};
use rvs_ctl::server::call;
use std::path::PathBuf;
use std::process::exit;

const DEFAULT_SOCKET: &str = "/run/rvs/rvs.sock";

struct Extras {
    socket: PathBuf,
    json: bool,
    expire_conns: bool,
    stats_ports: bool,
    neigh: bool,
    list_checks: bool,
    reload_checks: bool,
}

/// Takes rvs's own options out of argv, leaving ipvsadm's.
fn split_extras(argv: Vec<String>) -> Result<(Extras, Vec<String>), String> {
    let mut ex = Extras {
        socket: std::env::var_os("RVS_SOCKET")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET)),
        json: false,
        expire_conns: false,
        stats_ports: false,
        neigh: false,
        list_checks: false,
        reload_checks: false,
    };
    let mut rest = Vec::new();
    let mut it = argv.into_iter();
    if let Some(p) = it.next() {
        rest.push(p);
    }
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => ex.json = true,
            "--expire-conns" => ex.expire_conns = true,
            "--stats-ports" => ex.stats_ports = true,
            "--neigh" | "--neighbours" => ex.neigh = true,
            "--list-checks" => ex.list_checks = true,
            "--reload-checks" => ex.reload_checks = true,
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

/// How a failed connection is reported: the message and the exit status (255 for EACCES, as
/// ipvsadm when not root; 1 otherwise).
fn connect_error(ex: &Extras, e: &std::io::Error) -> (String, i32) {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => {
            ("Permission denied (you must be root)".to_string(), 255)
        }
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => (
            format!(
                "Can't connect to rvs at {}: is the appliance running? ({e})",
                ex.socket.display()
            ),
            1,
        ),
        _ => (format!("control socket {}: {e}", ex.socket.display()), 1),
    }
}

fn request(ex: &Extras, req: Request) -> Response {
    match call(&ex.socket, &req) {
        Ok(r) => r,
        Err(e) => {
            let (msg, code) = connect_error(ex, &e);
            eprintln!("{msg}");
            exit(code);
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
        println!(
            "  steering {}  tx_offloads {}  fragments_out {}",
            p.steering,
            if p.tx_offloads.is_empty() {
                "?"
            } else {
                p.tx_offloads.as_str()
            },
            p.sw.fragments_out
        );
        println!(
            "  kernel {}  to_kernel {}  from_kernel {}  kernel_drops {}",
            if p.kernel.is_empty() {
                "none"
            } else {
                p.kernel.as_str()
            },
            p.sw.to_kernel,
            p.sw.from_kernel,
            p.sw.kernel_drops
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
    println!();
    println!(
        "{:<6} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "Worker", "Samples", "p50(ns)", "p99(ns)", "p99.9(ns)", "max(ns)"
    );
    for w in &s.workers {
        let l = &w.latency;
        println!(
            "{:<6} {:>10} {:>10.0} {:>10.0} {:>10.0} {:>10.0}",
            w.worker, l.samples, l.p50_ns, l.p99_ns, l.p999_ns, l.max_ns
        );
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

fn list_checks(ex: &Extras) {
    let r = request(ex, Request::ListChecks);
    if ex.json && r.ok {
        print_json(&r.data);
        return;
    }
    let c: rvs_ctl::checks::ChecksReport = data_or_exit(r);
    print!("{}", rvs_ctl::checks::format_text(&c));
}

fn reload_checks(ex: &Extras) {
    #[derive(serde::Deserialize)]
    struct Reloaded {
        summary: String,
    }
    let r: Reloaded = data_or_exit(request(ex, Request::ReloadChecks));
    println!("{}", r.summary);
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
    if ex.stats_ports || ex.neigh || ex.list_checks || ex.reload_checks {
        if rest.len() > 1 {
            eprintln!(
                "--stats-ports, --neigh, --list-checks and --reload-checks take no ipvsadm options"
            );
            exit(2);
        }
        if ex.reload_checks {
            reload_checks(&ex);
        }
        if ex.list_checks {
            list_checks(&ex);
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
    use rvs_ctl::ipvsadm::args::parse_with;
    use rvs_ctl::ipvsadm::client::{execute, ClientOpts, Outcome};
    use rvs_ctl::ipvsadm::names::SystemNames;
    use std::io::{Read, Write};
    let names = SystemNames::load();
    let cmd = match parse_with(&argv, &names) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}", e.message);
            exit(e.exit_code);
        }
    };
    let opts = ClientOpts {
        json: ex.json,
        expire_conns: ex.expire_conns,
    };
    let mut call = |req: &Request| -> Result<Response, Outcome> {
        call(&ex.socket, req).map_err(|e| {
            let (msg, code) = connect_error(ex, &e);
            Outcome::fail(&msg, code)
        })
    };
    let mut stdin = || {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map(|_| s)
            .map_err(|e| format!("cannot read the rules from stdin: {e}"))
    };
    let out = execute(cmd, opts, &mut call, &names, &mut stdin);
    let _ = std::io::stdout().write_all(out.stdout.as_bytes());
    let _ = std::io::stderr().write_all(out.stderr.as_bytes());
    exit(out.code);
}
