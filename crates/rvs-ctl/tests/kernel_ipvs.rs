//! rvs's schedulers against the kernel's: the fixtures in tests/fixtures/kernel_ipvs/ were
//! recorded from a real IPVS (Linux 6.1 under user-mode-linux, Debian's ipvsadm 1.31; see the
//! README there and scripts/kernel-ipvs-ref.sh). Each one is a list of ipvsadm commands and the
//! real server the kernel chose for each of a sequence of SYNs from many client endpoints.
//! Here the same commands configure rvs's sans-IO core (the rules parser, the control state,
//! the engine of one worker) and the same SYNs, in the same order and at the same times, must
//! go to the same real servers, and `-L -n` and `-S -n` must print what ipvsadm printed. No
//! DPDK, no root.

use rvs_ctl::ipvs::{rules_to_ops, Core};
use rvs_ctl::ipvsadm::format::{self, ListFormat};
use rvs_ctl::ipvsadm::names::NumericNames;
use rvs_lb::config::Config;
use rvs_lb::{Lb, LbParams, PortRole, Verdict};
use rvs_net::checksum;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;

fn fixtures() -> Vec<(String, serde_json::Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kernel_ipvs");
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/kernel_ipvs")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter(|p| p.file_name().is_some_and(|n| n != "index.json"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            let j = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            (name, j)
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// A TCP SYN from `src:sport` to `dst:dport`, checksums computed here.
fn syn(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&1u32.to_be_bytes());
    t.extend_from_slice(&0u32.to_be_bytes());
    t.extend_from_slice(&[0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
    let ph = checksum::pseudo_header_v4(src, dst, 6, t.len() as u16);
    let c = checksum::finish(checksum::sum(&t, ph));
    t[16..18].copy_from_slice(&c.to_be_bytes());
    let tl = (20 + t.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&tl.to_be_bytes());
    ip.extend_from_slice(&[0, 1, 0x40, 0, 64, 6, 0, 0]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let c = checksum::internet(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(&t);
    ip
}

fn endpoint(s: &str) -> (Ipv4Addr, u16) {
    let (a, p) = s.rsplit_once(':').unwrap();
    (a.parse().unwrap(), p.parse().unwrap())
}

/// The rules a scenario's successful commands make, in `ipvsadm -S` syntax.
fn rules(fx: &serde_json::Value) -> String {
    fx["commands"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["rc"] == 0)
        .map(|c| {
            let cmd = c["cmd"].as_str().unwrap();
            cmd.strip_prefix("ipvsadm ").unwrap_or(cmd).to_string() + "\n"
        })
        .collect()
}

/// How the scenario's commands reach rvs.
#[derive(Clone, Copy, Debug)]
enum Apply {
    /// One command at a time, each published before the next (rvsadm, as the kernel got them).
    OneByOne,
    /// All of them in one atomic restore (`rvsadm -R`, a rules file at start).
    Restore,
}

/// Replays one scenario; returns its mismatches as text (empty when rvs agrees throughout).
fn replay(name: &str, fx: &serde_json::Value, how: Apply) -> Vec<String> {
    let (ops, lines) = rules_to_ops(&rules(fx), &NumericNames).unwrap_or_else(|e| {
        panic!("{name}: rules: {e:?}");
    });
    let mut core = Core::new(Config::default());
    let mut lb = Lb::new(
        LbParams {
            conn_capacity: 4096,
            ..LbParams::default()
        },
        Arc::new(rvs_lb::config::Snapshot::empty()),
    );
    let batches: Vec<std::ops::Range<usize>> = match how {
        Apply::OneByOne => (0..ops.len()).map(|i| i..i + 1).collect(),
        Apply::Restore => std::iter::once(0..ops.len()).collect(),
    };
    let mut snap = None;
    for b in batches {
        let s = core
            .restore(&ops[b.clone()], Some(&lines[b]), &[])
            .unwrap_or_else(|e| panic!("{name}: restore: {e:?}"))
            .expect("a configuration");
        let s = Arc::new(s);
        lb.apply_snapshot(s.clone());
        snap = Some(s);
    }
    let snap = snap.expect("commands");
    let mut bad = Vec::new();
    // Before any traffic, rvsadm's listings are the kernel's byte for byte (the kernel's hash
    // table size in the header, which rvs prints as its table capacity, aside).
    let list = core.list(None, &[], 4096).expect("list");
    let numeric = ListFormat {
        numeric: true,
        ..ListFormat::default()
    };
    for (what, ours, theirs) in [
        (
            "-L -n",
            format::list_all(&list, &numeric, &NumericNames),
            "list_n_before",
        ),
        (
            "-S -n",
            format::save(&list.services, true, &NumericNames),
            "save_n",
        ),
    ] {
        if let Some(k) = fx[theirs].as_str() {
            if ours != k {
                bad.push(format!("{what}: kernel\n{k}rvs\n{ours}"));
            }
        }
    }
    // The order the kernel lists (and its schedulers walk) the real servers in.
    let kernel_order: Vec<String> = fx["list_n_nosort"]
        .as_str()
        .unwrap_or("")
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("-> "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|a| *a != "RemoteAddress:Port")
        .map(str::to_string)
        .collect();
    let ours: Vec<String> = snap
        .services()
        .iter()
        .flat_map(|s| s.dests.iter().map(|d| format!("{}:{}", d.addr, d.port)))
        .collect();
    if !kernel_order.is_empty() && kernel_order != ours {
        bad.push(format!("list order: kernel {kernel_order:?}, rvs {ours:?}"));
    }
    let (vip, vport) = endpoint(fx["vip"].as_str().unwrap());
    let t0 = fx["syns"][0]["t_ms"].as_u64().unwrap_or(0);
    for (i, s) in fx["syns"].as_array().unwrap().iter().enumerate() {
        let src: Ipv4Addr = s["ip"].as_str().unwrap().parse().unwrap();
        let sport = s["port"].as_u64().unwrap() as u16;
        let now = (1 + s["t_ms"].as_u64().unwrap_or(t0) - t0) * 1_000_000;
        let mut p = syn(src, sport, vip, vport);
        // No server (null): the kernel answered ICMP port unreachable.
        let want = s["rs"].as_str().unwrap_or("port unreachable");
        let got = match lb.process(&mut p, PortRole::Public, now) {
            Verdict::Forward { .. } => {
                let a = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
                format!("{a}:{}", u16::from_be_bytes([p[22], p[23]]))
            }
            Verdict::IcmpError {
                icmp_type: 3,
                code: 3,
                ..
            } => "port unreachable".to_string(),
            other => format!("{other:?}"),
        };
        if got != want {
            bad.push(format!(
                "SYN {i} from {src}:{sport}: kernel {want}, rvs {got}"
            ));
        }
    }
    bad
}

#[test]
fn every_scheduler_picks_what_the_kernel_picked() {
    let fx = fixtures();
    assert!(fx.len() >= 15, "fixtures missing: {}", fx.len());
    let mut report = Vec::new();
    for ((name, f), how) in fx
        .iter()
        .flat_map(|x| [(x, Apply::OneByOne), (x, Apply::Restore)])
    {
        let bad = replay(name, f, how);
        if !bad.is_empty() {
            report.push(format!(
                "{name} ({how:?}): {} mismatches, first: {}",
                bad.len(),
                bad[..bad.len().min(3)].join("; ")
            ));
        }
    }
    assert!(report.is_empty(), "\n{}", report.join("\n"));
}
