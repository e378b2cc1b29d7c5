//! MISC_CHECK: exit codes, signals, the deadline (the group killed and reaped), arguments.

use std::time::Instant;

use super::test_util::*;
use super::{probe, split_args, success_log, ProbeCx, ProbeSpec, Verdict};
use crate::model::{CheckKind, MiscCheck};

fn misc(path: &str, dynamic: bool, timeout_ms: u64) -> ProbeSpec {
    let kind = CheckKind::Misc(MiscCheck {
        misc_path: path.into(),
        misc_timeout: None,
        misc_dynamic: dynamic,
        user: None,
    });
    spec(kind, 80, ms(timeout_ms))
}

async fn run(s: &ProbeSpec) -> Verdict {
    probe(s, &ProbeCx::default()).await
}

/// Running or stopped, not gone and not a zombie.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "PID (comm) S ...": the state follows the last ')'.
        Ok(stat) => {
            !matches!(stat.rsplit(')').next().map(str::trim_start), Some(s) if s.starts_with('Z') || s.starts_with('X'))
        }
        Err(_) => false,
    }
}

/// Waits (up to 2 s) for `pid` to stop running: SIGKILL is delivered when the process is
/// next scheduled, which on a loaded machine is not at once.
async fn gone(pid: u32) -> bool {
    let t = Instant::now();
    while alive(pid) && t.elapsed() < ms(2000) {
        tokio::time::sleep(ms(10)).await;
    }
    !alive(pid)
}

fn read_pid(p: &std::path::Path) -> u32 {
    std::fs::read_to_string(p).unwrap().trim().parse().unwrap()
}

#[tokio::test]
async fn exit_0_is_up_and_1_is_down() {
    assert_eq!(run(&misc("/bin/true", false, 5000)).await, Verdict::Up);
    let f = failure(run(&misc("/bin/false", false, 5000)).await);
    assert_eq!(f.reason, "exit status 1");
    assert_eq!(
        f.log,
        "Misc check for [[127.0.0.1]:tcp:80] by [/bin/false] failed (exited with status 1)."
    );
    assert_eq!(
        success_log(&misc("/bin/true", false, 5000)),
        "Misc check for [[127.0.0.1]:tcp:80] by [/bin/true] succeeded."
    );
}

#[tokio::test]
async fn dynamic_exit_codes_are_weights() {
    assert_eq!(
        run(&misc("/bin/sh -c 'exit 5'", true, 5000)).await,
        Verdict::UpWeight(3)
    );
    assert_eq!(
        run(&misc("/bin/sh -c 'exit 2'", true, 5000)).await,
        Verdict::UpWeight(0)
    );
    assert_eq!(
        run(&misc("/bin/sh -c 'exit 255'", true, 5000)).await,
        Verdict::UpWeight(253)
    );
    assert_eq!(
        failure(run(&misc("/bin/sh -c 'exit 1'", true, 5000)).await).reason,
        "exit status 1"
    );
    assert_eq!(
        failure(run(&misc("/bin/sh -c 'exit 5'", false, 5000)).await).reason,
        "exit status 5"
    );
}

#[tokio::test]
async fn killed_by_a_signal() {
    let f = failure(run(&misc("/bin/sh -c 'kill -9 $$'", false, 5000)).await);
    assert_eq!(f.reason, "killed by signal 9");
    assert_eq!(
        f.log,
        "Misc check for [[127.0.0.1]:tcp:80] by [/bin/sh] failed (due to signal 9)."
    );
}

#[tokio::test]
async fn timeout_kills_and_reaps_the_whole_group() {
    let d = scratch("hang");
    let script = d.join("hang.sh");
    // The script forks a child and waits: both must be gone after the probe.
    let text = format!(
        "echo $$ > {d}/pid\nsleep 30 &\necho $! > {d}/child\nwait\n",
        d = d.display()
    );
    std::fs::write(&script, text).unwrap();
    let s = misc(&format!("/bin/sh {}", script.display()), false, 500);
    let t = Instant::now();
    let f = failure(run(&s).await);
    let took = t.elapsed();
    assert_eq!(f.reason, "timed out after 0.5 s, killed");
    assert_eq!(
        f.log,
        "Misc check for [[127.0.0.1]:tcp:80] by [/bin/sh] timed out."
    );
    assert!(took >= ms(490) && took < ms(1500), "{took:?}");
    let pid = read_pid(&d.join("pid"));
    // The script itself was reaped by the probe: no zombie, no /proc entry.
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "script {pid} left behind"
    );
    // Its child was killed with the group (and is reaped by init, which may lag).
    let child = read_pid(&d.join("child"));
    assert!(gone(child).await, "child {child} still running");
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn stragglers_are_killed_when_the_script_exits() {
    let d = scratch("straggler");
    let cmd = format!(
        "/bin/sh -c 'sleep 30 & echo $! > {}/child; exit 0'",
        d.display()
    );
    assert_eq!(run(&misc(&cmd, false, 5000)).await, Verdict::Up);
    let child = read_pid(&d.join("child"));
    assert!(gone(child).await, "background child {child} still running");
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn dropping_the_probe_kills_the_group() {
    let d = scratch("drop");
    let cmd = format!("/bin/sh -c 'echo $$ > {}/pid; sleep 30'", d.display());
    let s = misc(&cmd, false, 30_000);
    let cx = ProbeCx::default();
    // The engine may drop a probe (shutdown, reload): the child must not outlive it.
    assert!(tokio::time::timeout(ms(300), probe(&s, &cx)).await.is_err());
    let pid = read_pid(&d.join("pid"));
    assert!(gone(pid).await, "script {pid} outlived its probe");
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn arguments_are_split_as_keepalived_does() {
    let d = scratch("args");
    let script = d.join("args.sh");
    let out = d.join("out");
    std::fs::write(
        &script,
        format!(
            "for a in \"$@\"; do printf '%s\\n' \"$a\"; done > {}\n",
            out.display()
        ),
    )
    .unwrap();
    let cmd = format!("/bin/sh {} 'a b' \"c d\" e\\x41 f\\\\g", script.display());
    assert_eq!(run(&misc(&cmd, false, 5000)).await, Verdict::Up);
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "a b\nc d\neA\nf\\g\n"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn missing_program_is_down() {
    let f = failure(run(&misc("/nonexistent/rvs-check --x", false, 5000)).await);
    assert_eq!(
        f.reason,
        "cannot run /nonexistent/rvs-check: no such file or directory"
    );
    assert_eq!(
        f.log,
        "Error exec-ing command '/nonexistent/rvs-check', error 2: No such file or directory"
    );
}

#[tokio::test]
async fn user_is_looked_up() {
    let mut s = misc("/bin/true", false, 5000);
    if let CheckKind::Misc(m) = &mut s.kind {
        m.user = Some("rvs-no-such-user".into());
    }
    assert_eq!(
        failure(run(&s).await).reason,
        "user rvs-no-such-user: no such user rvs-no-such-user"
    );

    // As root, the script really runs as `nobody`.
    if !nix::unistd::Uid::effective().is_root() {
        return;
    }
    let Some(nobody) = nix::unistd::User::from_name("nobody").unwrap() else {
        return;
    };
    let cmd = format!("/bin/sh -c 'test \"$(id -u)\" = {}'", nobody.uid);
    let mut s = misc(&cmd, false, 5000);
    if let CheckKind::Misc(m) = &mut s.kind {
        m.user = Some("nobody".into());
    }
    assert_eq!(run(&s).await, Verdict::Up);
}

fn words(s: &str) -> Vec<String> {
    split_args(s)
        .unwrap()
        .into_iter()
        .map(|w| String::from_utf8(w).unwrap())
        .collect()
}

#[test]
fn split_args_follows_alloc_strvec_quoted_escaped() {
    assert_eq!(words("  /bin/x  a\tb "), ["/bin/x", "a", "b"]);
    assert_eq!(words("a'b c'd \"e f\""), ["ab cd", "e f"]);
    assert_eq!(words(r#"'it\'s' "q\"q""#), ["it's", "q\"q"]);
    assert_eq!(
        words(r"\x41\x4a2 \101\0 \n\t\E \cA \q"),
        ["AJ2", "A\0", "\n\t\x1b", "\x01", "q"]
    );
    assert_eq!(words(r"\xg"), ["xg"]);
    assert_eq!(words(""), Vec::<String>::new());
    assert!(split_args("a 'b").is_err());
    assert!(split_args("a \\").is_err());
    assert_eq!(split_args(r"\xff").unwrap(), vec![vec![0xff]]);
}
