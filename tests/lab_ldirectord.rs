//! Acceptance test: Debian's own ldirectord (the `ldirectord` package, unmodified) drives rvs
//! through rvsadm answering as its ipvsadm. It adds the lab's HTTP service, checks the real
//! servers from the host (through the private kernel twin rvs-priv-k), quiesces RS1 (weight 0)
//! when its HTTP server stops and restores it when it comes back, and removes the service when
//! it stops. Ignored by a plain `cargo test`; scripts/test.sh runs it.
//!
//! ldirectord runs `/sbin/ipvsadm` (hard-coded; docs/operations.md, "ldirectord"). So as not
//! to change the machine, the test does not use `scripts/install.sh --as-ipvsadm`: it runs
//! ldirectord in a private mount namespace (`unshare --mount`) in which rvsadm is bind-mounted
//! over /usr/sbin/ipvsadm (/sbin is /usr/sbin on Debian bookworm). The network namespace is
//! the host's.

mod common;
use common::*;
use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LDIRECTORD: &str = "/usr/sbin/ldirectord";
const VIP: &str = "10.0.0.13:80";
const RS1: &str = "192.168.8.14:80";
const RS2: &str = "192.168.8.15:80";
/// ldirectord's checkinterval and checktimeout (= negotiatetimeout) in the test's config.
const CHECK_INTERVAL: u64 = 2;
const CHECK_TIMEOUT: u64 = 3;
/// Slack for a loaded 2-core machine on top of interval + timeout: perl start-up, rvsadm runs.
const SLACK: Duration = Duration::from_secs(30);

/// The ldirectord.cf of docs/operations.md ("ldirectord"), with the test's timers and the log
/// on standard output (supervised: foreground, no pid file).
fn config() -> String {
    format!(
        "# rvs lab: HTTP on the VIP, health-checked by a GET of index.html expecting \"hello\"\n\
         checkinterval={CHECK_INTERVAL}\n\
         checktimeout={CHECK_TIMEOUT}\n\
         negotiatetimeout={CHECK_TIMEOUT}\n\
         autoreload=no\n\
         quiescent=yes\n\
         supervised=yes\n\
         virtual={VIP}\n\
         \treal={RS1} masq 1\n\
         \treal={RS2} masq 1\n\
         \tservice=http\n\
         \tscheduler=rr\n\
         \tprotocol=tcp\n\
         \tchecktype=negotiate\n\
         \trequest=\"index.html\"\n\
         \treceive=\"hello\"\n"
    )
}

/// A real server's line in `rvsadm -L -n`: (forward, weight), or None if it is not listed.
fn real(listing: &str, rs: &str) -> Option<(String, u32)> {
    let l = listing
        .lines()
        .find(|l| l.starts_with(&format!("  -> {rs} ")))?;
    let f: Vec<&str> = l.split_whitespace().collect();
    Some((f[2].to_string(), f[3].parse().ok()?))
}

fn listing() -> String {
    adm(&["-L", "-n"])
}

fn weights(l: &str) -> (Option<u32>, Option<u32>) {
    (real(l, RS1).map(|r| r.1), real(l, RS2).map(|r| r.1))
}

fn lab(args: &[&str]) {
    let sh = root().join("scripts/lab.sh");
    let mut a = vec![sh.to_str().unwrap()];
    a.extend_from_slice(args);
    let o = run("bash", &a);
    assert!(o.status.success(), "lab.sh {args:?}: {}", text(&o));
}

/// ldirectord running against rvs; stopped (SIGTERM, then SIGKILL) on drop, and RS1's server
/// restarted if the test stopped it, so a failing test leaves the lab as it found it.
struct Ldirectord {
    child: Option<Child>,
    dir: PathBuf,
    rs1_stopped: bool,
}

impl Ldirectord {
    fn start() -> Ldirectord {
        let dir = std::env::temp_dir().join(format!("rvs-lab-ldirectord.{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        // Its own config name: ldirectord names its (unused here) pid file after it.
        let cf = dir.join("rvs-lab-test.cf");
        fs::write(&cf, config()).unwrap();
        let out = fs::File::create(dir.join("ldirectord.out")).unwrap();
        let rvsadm = bin("rvsadm");
        // mount --bind works on a private copy of the mounts (unshare's default propagation is
        // private): only this ldirectord sees rvsadm as /usr/sbin/ipvsadm.
        let script = "mount --bind \"$1\" /usr/sbin/ipvsadm && exec \"$2\" \"$3\" start";
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
            .arg(script)
            .arg("sh")
            .arg(&rvsadm)
            .arg(LDIRECTORD)
            .arg(&cf)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start ldirectord under unshare");
        Ldirectord {
            child: Some(child),
            dir,
            rs1_stopped: false,
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("ldirectord.out")).unwrap_or_default()
    }

    /// Fails with the log if ldirectord is gone.
    fn alive(&mut self) {
        if let Some(c) = self.child.as_mut() {
            if let Ok(Some(st)) = c.try_wait() {
                panic!("ldirectord exited ({st}); its output:\n{}", self.log());
            }
        }
    }

    /// Polls `-L -n` until `f` holds; fails with the listing and ldirectord's log otherwise.
    fn wait_listing(&mut self, what: &str, timeout: Duration, f: impl Fn(&str) -> bool) {
        let t = Instant::now();
        loop {
            self.alive();
            let l = listing();
            if f(&l) {
                eprintln!("{what}: after {:.1} s", t.elapsed().as_secs_f64());
                return;
            }
            if t.elapsed() > timeout {
                panic!(
                    "{what}: not within {timeout:?}; rvsadm -L -n:\n{l}\nldirectord's output:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn stop_rs1(&mut self) {
        self.rs1_stopped = true;
        lab(&["stop-server", "1"]);
    }

    fn start_rs1(&mut self) {
        lab(&["start-server", "1"]);
        self.rs1_stopped = false;
    }

    /// SIGTERM and wait: ldirectord's clean stop (cleanstop=yes, the default). Returns its
    /// exit status.
    fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        let pid = nix::unistd::Pid::from_raw(c.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(st)) = c.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = c.kill();
        let _ = c.wait();
        None
    }
}

impl Drop for Ldirectord {
    fn drop(&mut self) {
        self.stop();
        if self.rs1_stopped {
            let sh = root().join("scripts/lab.sh");
            let _ = run("bash", &[sh.to_str().unwrap(), "start-server", "1"]);
        }
        let _ = rvsadm(&["-C"]);
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

#[test]
#[ignore = "needs root, the lab and the ldirectord package (scripts/test.sh)"]
fn ldirectord_sets_up_quiesces_and_restores() {
    assert!(
        std::path::Path::new(LDIRECTORD).exists(),
        "{LDIRECTORD} missing: apt-get install ldirectord (scripts/setup-host.sh installs it)"
    );
    fresh(1);
    // ldirectord's checks go from the host to the real servers, through the private twin.
    for (rs, name) in [("192.168.8.14", "RS1"), ("192.168.8.15", "RS2")] {
        let o = run(
            "curl",
            &["-s", "-m", "5", &format!("http://{rs}/index.html")],
        );
        assert!(
            String::from_utf8_lossy(&o.stdout).contains(&format!("hello {name}")),
            "the host cannot reach {rs} through rvs-priv-k: {}",
            text(&o)
        );
    }

    let mut ld = Ldirectord::start();
    let bound = Duration::from_secs(CHECK_INTERVAL + CHECK_TIMEOUT) + SLACK;
    // Start-up: the service added through rvsadm, both real servers checked and weight 1.
    ld.wait_listing(
        "service up with both real servers at weight 1",
        bound * 2,
        |l| l.contains("TCP  10.0.0.13:80 rr\n") && weights(l) == (Some(1), Some(1)),
    );
    let l = listing();
    assert_eq!(real(&l, RS1).unwrap().0, "Masq", "{l}");
    assert_eq!(real(&l, RS2).unwrap().0, "Masq", "{l}");
    let got: Vec<String> = (0..4).map(|_| curl_vip()).collect();
    assert!(
        got.iter().any(|g| g == "hello RS1") && got.iter().any(|g| g == "hello RS2"),
        "rr over both real servers: {got:?}"
    );

    // RS1's HTTP server stops: the next check fails and ldirectord quiesces it (weight 0, kept).
    ld.stop_rs1();
    ld.wait_listing("RS1 quiesced (weight 0)", bound, |l| {
        weights(l) == (Some(0), Some(1))
    });
    let got: Vec<String> = (0..6).map(|_| curl_vip()).collect();
    assert!(
        got.iter().all(|g| g == "hello RS2"),
        "a quiesced RS1 gets no new connections: {got:?}"
    );

    // RS1 back: restored to weight 1, and it gets traffic again.
    ld.start_rs1();
    ld.wait_listing("RS1 restored (weight 1)", bound, |l| {
        weights(l) == (Some(1), Some(1))
    });
    let got: Vec<String> = (0..4).map(|_| curl_vip()).collect();
    assert!(got.iter().any(|g| g == "hello RS1"), "{got:?}");

    // Every ipvsadm command ldirectord ran was accepted (it logs "system(...) failed" otherwise).
    let log = ld.log();
    assert!(!log.contains("failed"), "ldirectord's output:\n{log}");
    assert!(
        log.contains("Quiescent real server: 192.168.8.14:80")
            && log.contains("Restored real server: 192.168.8.14:80"),
        "ldirectord's output:\n{log}"
    );

    // A clean stop (cleanstop=yes, the default) removes what it added.
    let st = ld.stop().expect("ldirectord stops on SIGTERM");
    assert!(st.success(), "ldirectord's exit: {st}\n{}", ld.log());
    let l = listing();
    assert!(!l.contains("10.0.0.13:80"), "service left after stop:\n{l}");
}
