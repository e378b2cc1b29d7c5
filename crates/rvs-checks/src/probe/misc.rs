//! MISC_CHECK (keepalived/check/check_misc.c, keepalived/core/notify.c).
//!
//! misc_path is split into words as keepalived's alloc_strvec_quoted_escaped() does and
//! exec'd directly (no shell), with stdin/stdout/stderr on /dev/null, in a process group of
//! its own so that the whole group can be killed. Exit 0 is up; 2..=255 with misc_dynamic is
//! up with weight code - 2; anything else is down.
//!
//! On expiry keepalived sends SIGTERM to the group and SIGKILL 2 s later; rvs's attempt has
//! one deadline, so the group gets SIGKILL at once and the child is reaped before the probe
//! returns. The group is also killed when the script exits (keepalived leaves stragglers
//! running) and when the probe is dropped mid-way, so no child of a check outlives it.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::Command;

use super::{down, io_reason, strerror, ProbeSpec, Trio, Verdict};
use crate::model::MiscCheck;

/// How long a killed group's leader is waited for before tokio's orphan reaping takes over.
const REAP_WAIT: Duration = Duration::from_secs(1);

pub(crate) async fn probe(spec: &ProbeSpec, m: &MiscCheck) -> Verdict {
    let at = Trio::of(spec);
    let argv = match split_args(&m.misc_path) {
        Ok(a) if !a.is_empty() => a,
        Ok(_) => {
            return down(
                "empty misc_path",
                "No script path has been specified for MISC_CHECKER".into(),
            )
        }
        Err(e) => {
            return down(
                format!("misc_path: {e}"),
                format!("Unable to parse script '{}'", m.misc_path),
            )
        }
    };
    let name = String::from_utf8_lossy(&argv[0]).into_owned();
    let mut cmd = Command::new(OsString::from_vec(argv[0].clone()));
    cmd.args(argv[1..].iter().map(|a| OsString::from_vec(a.clone())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        // system_call_script(): "drop loader and field-splitting overrides before exec".
        .env_remove("IFS")
        .env_remove("LD_PRELOAD")
        .env_remove("LD_LIBRARY_PATH")
        .kill_on_drop(true);
    if let Some(user) = &m.user {
        match lookup_user(user).await {
            Ok((uid, gid)) => {
                cmd.uid(uid).gid(gid);
            }
            Err(e) => {
                let log = format!("Failed to set uid/gid for misc checker script {name}");
                return down(format!("user {user}: {e}"), log);
            }
        }
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let log = format!(
                "Error exec-ing command '{name}', error {}: {}",
                e.raw_os_error().unwrap_or(0),
                strerror(&e)
            );
            return down(format!("cannot run {name}: {}", io_reason(&e)), log);
        }
    };
    let mut group = Group(
        child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .map(Pid::from_raw),
    );
    let result = tokio::time::timeout(spec.timeout, child.wait()).await;
    // Whatever happened, nothing of the group outlives the attempt.
    group.kill();
    match result {
        Ok(Ok(status)) => judge(status, m.misc_dynamic, &at, &name),
        Ok(Err(e)) => down(
            format!("wait: {}", io_reason(&e)),
            format!(
                "Misc check for [{at}] by [{name}] failed ({})",
                strerror(&e)
            ),
        ),
        Err(_) => {
            let _ = tokio::time::timeout(REAP_WAIT, child.wait()).await;
            down(
                format!(
                    "timed out after {:.1} s, killed",
                    spec.timeout.as_secs_f64()
                ),
                format!("Misc check for [{at}] by [{name}] timed out."),
            )
        }
    }
}

/// misc_check_child_thread(), without the " VS ..." part and the retry words, which the
/// engine knows and a probe does not.
fn judge(status: ExitStatus, dynamic: bool, at: &Trio, name: &str) -> Verdict {
    if let Some(code) = status.code() {
        return match code {
            0 => Verdict::Up,
            2..=255 if dynamic => Verdict::UpWeight(code as u32 - 2),
            _ => down(
                format!("exit status {code}"),
                format!("Misc check for [{at}] by [{name}] failed (exited with status {code})."),
            ),
        };
    }
    let sig = status.signal().unwrap_or(0);
    down(
        format!("killed by signal {sig}"),
        format!("Misc check for [{at}] by [{name}] failed (due to signal {sig})."),
    )
}

/// The script's process group; killed (SIGKILL) on kill() and on drop, errors ignored: a
/// group that is gone is what is wanted.
struct Group(Option<Pid>);

impl Group {
    /// Once only: after the leader is reaped its pid could in time be reused.
    fn kill(&mut self) {
        if let Some(pid) = self.0.take() {
            let _ = killpg(pid, Signal::SIGKILL);
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `user USER [GROUP]`: USER's uid and primary gid, or GROUP's gid (set_uid_gid() in
/// notify.c). The passwd/group lookup may block (NSS), so it runs on tokio's blocking pool.
async fn lookup_user(spec: &str) -> Result<(u32, u32), String> {
    let spec = spec.to_string();
    let lookup = move || -> Result<(u32, u32), String> {
        let mut words = spec.split_whitespace();
        let name = words.next().ok_or("no user given")?;
        let user = nix::unistd::User::from_name(name)
            .map_err(|e| e.desc().to_lowercase())?
            .ok_or_else(|| format!("no such user {name}"))?;
        let gid = match words.next() {
            None => user.gid,
            Some(g) => {
                nix::unistd::Group::from_name(g)
                    .map_err(|e| e.desc().to_lowercase())?
                    .ok_or_else(|| format!("no such group {g}"))?
                    .gid
            }
        };
        Ok((user.uid.as_raw(), gid.as_raw()))
    };
    tokio::task::spawn_blocking(lookup)
        .await
        .map_err(|e| format!("lookup failed: {e}"))?
}

/// args[0] of misc_path, for the log lines' "by [NAME]".
pub(crate) fn script_name(misc_path: &str) -> String {
    match split_args(misc_path) {
        Ok(a) if !a.is_empty() => String::from_utf8_lossy(&a[0]).into_owned(),
        _ => misc_path.to_string(),
    }
}

/// Splits a command line into words as keepalived's alloc_strvec_quoted_escaped()
/// (lib/parser.c): white space separates words; '…' and "…" quote (and may join a word's
/// parts); a backslash escapes, inside quotes too: \a \b \E \f \n \r \t \v, \xHH (one or two
/// hex digits), \cX (control character), \NNN (one to three octal digits), else the character
/// itself. Words are bytes: escapes can make any byte.
pub fn split_args(src: &str) -> Result<Vec<Vec<u8>>, String> {
    const WS: &[u8] = b" \t\x0c\n\r\x0b";
    let s = src.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    loop {
        while i < s.len() && WS.contains(&s[i]) {
            i += 1;
        }
        if i == s.len() {
            return Ok(words);
        }
        let mut word = Vec::new();
        let mut quote: Option<u8> = None;
        while i < s.len() {
            let c = s[i];
            i += 1;
            if c == b'\\' {
                let (b, used) = escape(&s[i..])
                    .ok_or_else(|| format!("missing escape char at end: '{src}'"))?;
                word.push(b);
                i += used;
            } else if quote == Some(c) {
                quote = None;
            } else if quote.is_some() {
                word.push(c);
            } else if c == b'"' || c == b'\'' {
                quote = Some(c);
            } else if WS.contains(&c) {
                break;
            } else {
                word.push(c);
            }
        }
        if let Some(q) = quote {
            return Err(format!("String '{src}': missing terminating {}", q as char));
        }
        words.push(word);
    }
}

/// One escape after a backslash: the byte and how many input bytes it took.
fn escape(s: &[u8]) -> Option<(u8, usize)> {
    let c = *s.first()?;
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    Some(match c {
        b'x' if s.get(1).copied().and_then(hex).is_some() => {
            let mut v = 0u8;
            let mut n = 1;
            while n <= 2 {
                match s.get(n).copied().and_then(hex) {
                    Some(d) => v = (v << 4) | d,
                    None => break,
                }
                n += 1;
            }
            (v, n)
        }
        b'c' if s.len() > 1 => (s[1] & 0x1f, 2),
        b'0'..=b'7' => {
            let mut v = 0u8;
            let mut n = 0;
            while n < 3 && matches!(s.get(n), Some(b'0'..=b'7')) {
                v = v.wrapping_shl(3).wrapping_add(s[n] - b'0');
                n += 1;
            }
            (v, n)
        }
        b'a' => (0x07, 1),
        b'b' => (0x08, 1),
        b'E' => (0x1b, 1),
        b'f' => (0x0c, 1),
        b'n' => (b'\n', 1),
        b'r' => (b'\r', 1),
        b't' => (b'\t', 1),
        b'v' => (0x0b, 1),
        other => (other, 1),
    })
}
