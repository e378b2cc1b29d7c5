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
    /// EAL's runtime directory (`/var/run/dpdk/<file-prefix>`): with the hugepage files of the
    /// prefix, removed after cleanup (see [`crate::runtime`]).
    runtime_dir: Option<std::path::PathBuf>,
    /// `rte_pdump_init` ran: uninitialised before cleanup.
    capture: bool,
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
            capture: false,
        })
    }

    /// Lets `dpdk-dumpcap` and `dpdk-pdump` capture this primary's ports (`rte_pdump_init`):
    /// it only registers a multi-process handler; the per-queue copy callbacks exist only
    /// while a capture runs, so an idle capture costs the fast path nothing. Needs the shared
    /// config a secondary joins: fails (Unsupported) under `--no-shconf`/`--in-memory`.
    pub fn enable_capture(&mut self) -> Result<()> {
        if self.capture {
            return Ok(());
        }
        // SAFETY: EAL is initialised (an Eal exists) and this runs on the main thread before
        // any secondary can ask for a capture.
        let ret = unsafe { ffi::rte_pdump_init() };
        if ret < 0 {
            return Err(Error::last("rte_pdump_init"));
        }
        self.capture = true;
        Ok(())
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: EAL was initialised by `init`; all lcores have been waited for by the owner
        // (launch handles join in their Drop) before the Eal is dropped.
        unsafe {
            if self.capture {
                ffi::rte_pdump_uninit();
            }
            ffi::rte_eal_cleanup();
        }
        // Only the files of this process's own prefix; nothing else runs from them once the
        // primary process has cleaned up.
        if let Some(d) = &self.runtime_dir {
            crate::runtime::remove(d);
        }
    }
}
