//! EAL's files on the host for one `--file-prefix`: the runtime directory
//! (`/var/run/dpdk/<prefix>`: the shared config, the memseg arrays, the multi-process and
//! telemetry sockets) and the hugepage files (`<hugetlbfs mount>/<prefix>map_<n>`).
//!
//! A primary that secondaries can join (dpdk-dumpcap, dpdk-proc-info) keeps its memory in those
//! files. DPDK 22.11 leaves them all behind at exit, and a killed process leaves them too; a
//! hugepage file keeps its pages reserved until it is unlinked, so each stale run would take
//! `eal.memory_mb` of hugepages away from the next. [`reclaim`] clears what a dead process of
//! the prefix left before EAL starts; [`remove`] clears what this one made after it stopped.

use nix::fcntl::{fcntl, FcntlArg, Flock, FlockArg};
use std::path::{Path, PathBuf};

/// What [`reclaim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reclaim {
    /// Nothing of the prefix was on the host.
    Clean,
    /// A dead process's files were removed: whether there was a runtime directory, and how
    /// many hugepage files (each holds its pages until unlinked).
    Removed {
        runtime_dir: bool,
        hugepage_files: usize,
    },
}

/// Why [`reclaim`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReclaimError {
    #[error("EAL file prefix {0:?} is not a plain name (letters, digits, '.', '_', '-')")]
    BadPrefix(String),
    #[error(
        "EAL file prefix {prefix:?} is in use by a running DPDK primary process{}; stop it or \
         set another eal.file_prefix",
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    InUse { prefix: String, pid: Option<i32> },
    #[error("cannot clear the stale EAL files of prefix {prefix:?}: {path}: {err}")]
    Io {
        prefix: String,
        path: String,
        err: String,
    },
}

/// EAL's base runtime directory, as 22.11 picks it (`eal_create_runtime_dir`): /var/run for
/// root, else $XDG_RUNTIME_DIR, else /tmp.
fn base_dir() -> PathBuf {
    let base = if nix::unistd::geteuid().is_root() {
        PathBuf::from("/var/run")
    } else {
        std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp"))
    };
    base.join("dpdk")
}

/// The runtime directory of `prefix`.
fn runtime_dir(prefix: &str) -> PathBuf {
    base_dir().join(prefix)
}

fn plain(prefix: &str) -> bool {
    !prefix.is_empty()
        && prefix != "."
        && prefix != ".."
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// The pid of a process holding the shared-config lock a live primary takes (`config` in the
/// runtime directory, an fcntl write lock), or `Some(None)` when it is held by an unknown
/// process; `None` when no one holds it.
fn config_holder(dir: &Path) -> Option<Option<i32>> {
    let f = std::fs::File::open(dir.join("config")).ok()?;
    let mut lk = nix::libc::flock {
        l_type: nix::libc::F_WRLCK as i16,
        l_whence: nix::libc::SEEK_SET as i16,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    fcntl(
        std::os::fd::AsRawFd::as_raw_fd(&f),
        FcntlArg::F_GETLK(&mut lk),
    )
    .ok()?;
    (lk.l_type != nix::libc::F_UNLCK as i16).then_some((lk.l_pid > 0).then_some(lk.l_pid))
}

fn io_error(prefix: &str, path: &Path, err: std::io::Error) -> ReclaimError {
    ReclaimError::Io {
        prefix: prefix.to_string(),
        path: path.display().to_string(),
        err: err.to_string(),
    }
}

/// Mount points of hugetlbfs, from /proc/mounts.
fn hugetlbfs_mounts() -> Vec<PathBuf> {
    let Ok(m) = std::fs::read_to_string("/proc/mounts") else {
        return Vec::new();
    };
    m.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_dev, dir, fs) = (f.next()?, f.next()?, f.next()?);
            // /proc/mounts escapes spaces as \040; DPDK's own mounts have none.
            (fs == "hugetlbfs").then(|| PathBuf::from(dir.replace("\\040", " ")))
        })
        .collect()
}

/// `<prefix>map_<n>`: EAL's name for a hugepage file (HUGEFILE_FMT). Exact, so prefix "rvs"
/// never matches "rvs-lab"'s files.
fn is_hugefile(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .and_then(|r| r.strip_prefix("map_"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Unlinks the hugepage files of `prefix` that no process holds: EAL keeps a shared flock on
/// each segment it maps (as its own `clear_hugedir` tests), so a file we can lock exclusively
/// belongs to nobody. Returns how many were removed.
fn remove_hugefiles(prefix: &str) -> Result<usize, ReclaimError> {
    let mut n = 0;
    for mount in hugetlbfs_mounts() {
        let Ok(rd) = std::fs::read_dir(&mount) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name();
            if !is_hugefile(&name.to_string_lossy(), prefix) {
                continue;
            }
            let path = e.path();
            let Ok(file) = std::fs::File::open(&path) else {
                continue;
            };
            let Ok(_lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) else {
                continue; // held: a live process maps it
            };
            std::fs::remove_file(&path).map_err(|e| io_error(prefix, &path, e))?;
            n += 1;
        }
    }
    Ok(n)
}

/// Before EAL starts a primary of `prefix`: refuses if a live primary holds the prefix, else
/// removes what a dead one left (its runtime directory and unheld hugepage files).
pub fn reclaim(prefix: &str) -> Result<Reclaim, ReclaimError> {
    if !plain(prefix) {
        return Err(ReclaimError::BadPrefix(prefix.to_string()));
    }
    let dir = runtime_dir(prefix);
    if let Some(pid) = config_holder(&dir) {
        return Err(ReclaimError::InUse {
            prefix: prefix.to_string(),
            pid,
        });
    }
    let had_dir = dir.exists();
    if had_dir {
        std::fs::remove_dir_all(&dir).map_err(|e| io_error(prefix, &dir, e))?;
    }
    let files = remove_hugefiles(prefix)?;
    Ok(if had_dir || files > 0 {
        Reclaim::Removed {
            runtime_dir: had_dir,
            hugepage_files: files,
        }
    } else {
        Reclaim::Clean
    })
}

/// After `rte_eal_cleanup` of this process's primary: removes the runtime directory EAL
/// reported and the hugepage files of its prefix (those a secondary still maps stay until it
/// exits; the next [`reclaim`] takes them). Best effort: a failure here must not turn a clean
/// stop into an error.
pub fn remove(runtime_dir: &Path) {
    let _ = std::fs::remove_dir_all(runtime_dir);
    if let Some(prefix) = runtime_dir.file_name().map(|p| p.to_string_lossy()) {
        if plain(&prefix) {
            let _ = remove_hugefiles(&prefix);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hugefile_names_match_exactly() {
        assert!(is_hugefile("rvsmap_0", "rvs"));
        assert!(is_hugefile("rvsmap_1023", "rvs"));
        assert!(!is_hugefile("rvs-labmap_0", "rvs"));
        assert!(is_hugefile("rvs-labmap_0", "rvs-lab"));
        assert!(!is_hugefile("rvsmap_", "rvs"));
        assert!(!is_hugefile("rvsmap_1x", "rvs"));
        assert!(!is_hugefile("rvsmap_0", "rvs-lab"));
    }

    #[test]
    fn prefixes_must_be_plain_names() {
        for bad in ["", ".", "..", "a/b", "../x", "a b"] {
            assert_eq!(
                reclaim(bad),
                Err(ReclaimError::BadPrefix(bad.to_string())),
                "{bad:?}"
            );
        }
        assert!(plain("rvs-lab.1_x"));
    }

    #[test]
    fn an_unlocked_runtime_dir_is_stale_and_a_locked_one_is_refused() {
        let prefix = format!("rvs-unit-reclaim-{}", std::process::id());
        let dir = runtime_dir(&prefix);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config"), [0u8; 64]).unwrap();
        assert_eq!(
            reclaim(&prefix),
            Ok(Reclaim::Removed {
                runtime_dir: true,
                hugepage_files: 0
            })
        );
        assert!(!dir.exists());
        assert_eq!(reclaim(&prefix), Ok(Reclaim::Clean));

        // A live primary: a write lock on `config` held by another process (fcntl locks do
        // not conflict within one process, so a child holds it).
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config"), [0u8; 64]).unwrap();
        let mut child = std::process::Command::new("/usr/bin/python3")
            .args([
                "-c",
                "import fcntl,sys,time; f=open(sys.argv[1],'r+'); \
                 fcntl.lockf(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(30)",
            ])
            .arg(dir.join("config"))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 to hold a lock");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "locked");
        let r = reclaim(&prefix);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(
            r,
            Err(ReclaimError::InUse {
                prefix: prefix.clone(),
                pid: Some(child.id() as i32)
            })
        );
        assert!(dir.join("config").exists(), "a live prefix is left alone");
        assert!(r
            .unwrap_err()
            .to_string()
            .contains("in use by a running DPDK primary"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
