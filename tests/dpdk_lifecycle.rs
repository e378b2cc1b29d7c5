//! Ownership and teardown in the DPDK layer, on virtual devices (`net_null`, no hugepages, no
//! PCI, no lab). Runs as root (CI runs the suite as root).
//!
//! - A port has one owner and its queues are handed out once.
//! - Workers launched by a start that then fails are stopped and joined: the start returns
//!   instead of hanging in a join of a worker that is still polling.
//! - The appliance itself, started on `net_null` ports with a rules file that fails after the
//!   workers were launched, exits 1 with a one-line error instead of hanging.

mod common;

use rvs::dpdk::{self, Eal, ErrorKind, LcoreGroup, Mempool, Port, PortConf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// How long a start or a join may take before the test calls it a hang: a liveness bound, far
/// above anything a loaded machine needs, not a speed assertion.
const HANG: Duration = Duration::from_secs(120);

/// Launches a polling job on `lcore`, then fails, the way a start fails after `launch`.
fn start_then_fail(
    lcore: u32,
    running: Arc<AtomicBool>,
    polls: Arc<AtomicUsize>,
) -> Result<(), String> {
    let mut group = LcoreGroup::new({
        let running = running.clone();
        move || running.store(false, Ordering::SeqCst)
    });
    group
        .launch(lcore, move || {
            while running.load(Ordering::Relaxed) {
                polls.fetch_add(1, Ordering::Relaxed);
                std::hint::spin_loop();
            }
            0
        })
        .map_err(|e| e.to_string())?;
    Err("a later step of the start failed".into())
}

#[test]
fn ports_have_one_owner_and_failed_starts_join_their_workers() {
    let prefix = format!("rvs-life-{}", std::process::id());
    let mut args = common::test_eal_args(&prefix, (0..2).map(|i| format!("net_null{i}")));
    // A worker lcore besides the main one, for the launch below.
    let l = args.iter().position(|a| a == "-l").unwrap();
    args[l + 1] = "0,1".into();
    let _eal = Eal::init(&args).expect("EAL init (--no-huge) failed: run as root");
    let pool = Mempool::new("life_test", 1023, 0, 2176, 0).unwrap();

    // One owner per device.
    let mut p = Port::by_name("net_null0").unwrap();
    let e = Port::by_name("net_null0").unwrap_err();
    assert_eq!(e.kind, ErrorKind::InUse, "{e}");
    let other = Port::by_name("net_null1").expect("another device is free");

    // Queues are handed out once.
    let conf = PortConf {
        rx_queues: 1,
        tx_queues: 1,
        ..Default::default()
    };
    let (rxq, txq) = p.configure(&conf, &pool).unwrap();
    assert_eq!((rxq.len(), txq.len()), (1, 1));
    let e = p.configure(&conf, &pool).unwrap_err();
    assert_eq!(e.kind, ErrorKind::AlreadyConfigured, "{e}");
    assert_eq!(
        Port::by_name("net_null9").unwrap_err().kind,
        ErrorKind::NotFound
    );
    drop((rxq, txq, other));

    // A start that fails after launching a worker returns, with the worker stopped.
    let lcore = *dpdk::worker_lcores()
        .first()
        .expect("a worker lcore (-l 0,1)");
    let running = Arc::new(AtomicBool::new(true));
    let polls = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = mpsc::channel();
    {
        let (running, polls) = (running.clone(), polls.clone());
        std::thread::spawn(move || {
            let r = start_then_fail(lcore, running, polls);
            let _ = done_tx.send(r);
        });
    }
    let r = done_rx
        .recv_timeout(HANG)
        .expect("the failed start hung joining a worker that was never told to stop");
    assert_eq!(r, Err("a later step of the start failed".to_string()));
    assert!(!running.load(Ordering::SeqCst));
    let after = polls.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        polls.load(Ordering::SeqCst),
        after,
        "the worker stopped polling"
    );
    // The lcore is free again for a new job.
    let mut group = LcoreGroup::new(|| {});
    group.launch(lcore, || 7).unwrap();
    assert_eq!(group.stop(), vec![7]);
}

#[test]
fn rvs_exits_1_when_its_start_fails_after_the_workers_were_launched() {
    let dir = std::env::temp_dir().join(format!("rvs-life-app-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("rules");
    // Line 2 names a service that does not exist: the rules file is applied after the workers
    // were launched, so this is an error on the far side of `launch`.
    std::fs::write(
        &rules,
        "-A -t 10.0.0.13:80 -s rr\n-a -t 10.0.0.13:81 -r 192.168.8.14:80 -m\n",
    )
    .unwrap();
    let cfg = dir.join("rvs.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[eal]
memory_mb = 256
no_huge = true
file_prefix = "rvs-life-app-{pid}"
[public]
device = "net_null0"
addresses = ["10.0.0.13/24"]
[private]
device = "net_null1"
addresses = ["192.168.8.13/24"]
[control]
socket = "{dir}/rvs.sock"
[rules]
file = "{rules}"
"#,
            pid = std::process::id(),
            dir = dir.display(),
            rules = rules.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(common::bin("rvs"))
        .arg("--config")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rvs");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut { stderr }, &mut s);
        let _ = tx.send(s);
    });
    let err = match rx.recv_timeout(HANG) {
        Ok(s) => s,
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("rvs hung after a failed start (killed)");
        }
    };
    let status = child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(status.code(), Some(1), "stderr:\n{err}");
    let last = err.lines().last().unwrap_or("");
    assert!(
        last.starts_with("rvs: error:") && last.contains("line 2"),
        "last line is the one-line error: {err}"
    );
    assert!(!err.contains("rvs: ready"), "{err}");
}
