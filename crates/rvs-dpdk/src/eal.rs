//! EAL initialisation and cleanup.

use super::{ffi, Error, ErrorKind, Result};
use std::ffi::CString;
use std::os::raw::c_char;
use std::sync::atomic::{AtomicBool, Ordering};

static INITIALISED: AtomicBool = AtomicBool::new(false);

/// The initialised Environment Abstraction Layer. Exactly one may exist per process; dropping it
/// runs `rte_eal_cleanup` (stop and close ports first: [`crate::Port`] values hold no
/// borrow of it, so the caller orders the drops).
#[derive(Debug)]
pub struct Eal {
    /// EAL's runtime directory (`/var/run/dpdk/<file-prefix>`), removed after cleanup: DPDK
    /// 22.11 leaves it behind, and one per run piles up under /var/run/dpdk.
    runtime_dir: Option<std::path::PathBuf>,
}

impl Eal {
    /// Runs `rte_eal_init` with `args` (the first one is the program name, as argv[0]).
    pub fn init<S: AsRef<str>>(args: &[S]) -> Result<Eal> {
        if INITIALISED.swap(true, Ordering::SeqCst) {
            return Err(Error::new(
                "rte_eal_init",
                ErrorKind::AlreadyInitialised,
                "EAL already initialised in this process",
            ));
        }
        let owned: Vec<CString> = args
            .iter()
            .map(|a| CString::new(a.as_ref()))
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| {
                Error::new(
                    "rte_eal_init",
                    ErrorKind::InvalidArgument,
                    "argument contains a NUL byte",
                )
            })?;
        // EAL may permute argv; give it a private array of pointers into `owned`, which outlives
        // the call (EAL copies what it keeps).
        let mut argv: Vec<*mut c_char> = owned.iter().map(|c| c.as_ptr() as *mut c_char).collect();
        argv.push(std::ptr::null_mut());
        let argc = (argv.len() - 1) as i32;
        // SAFETY: argv is a NULL-terminated array of valid NUL-terminated strings that live for
        // the whole call; EAL is initialised once (guarded by INITIALISED).
        let ret = unsafe { ffi::rte_eal_init(argc, argv.as_mut_ptr()) };
        if ret < 0 {
            INITIALISED.store(false, Ordering::SeqCst);
            return Err(Error::last("rte_eal_init"));
        }
        // SAFETY: EAL is initialised; the returned pointer is a NUL-terminated string owned by
        // EAL, copied out at once.
        let dir = unsafe {
            let p = ffi::rte_eal_get_runtime_dir();
            (!p.is_null()).then(|| std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned())
        };
        Ok(Eal {
            runtime_dir: dir.filter(|d| !d.is_empty()).map(std::path::PathBuf::from),
        })
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: EAL was initialised by `init`; all lcores have been waited for by the owner
        // (launch handles join in their Drop) before the Eal is dropped.
        unsafe {
            ffi::rte_eal_cleanup();
        }
        // Only a directory of this process's own prefix; nothing else runs from it once the
        // primary process has cleaned up.
        if let Some(d) = &self.runtime_dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
