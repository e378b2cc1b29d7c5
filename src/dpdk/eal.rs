//! EAL initialisation and cleanup.

use super::{ffi, Error, Result};
use std::ffi::CString;
use std::os::raw::c_char;
use std::sync::atomic::{AtomicBool, Ordering};

static INITIALISED: AtomicBool = AtomicBool::new(false);

/// The initialised Environment Abstraction Layer. Exactly one may exist per process; dropping it
/// runs `rte_eal_cleanup` (stop and close ports first: [`crate::dpdk::Port`] values hold no
/// borrow of it, so the caller orders the drops).
#[derive(Debug)]
pub struct Eal {
    _private: (),
}

impl Eal {
    /// Runs `rte_eal_init` with `args` (the first one is the program name, as argv[0]).
    pub fn init<S: AsRef<str>>(args: &[S]) -> Result<Eal> {
        if INITIALISED.swap(true, Ordering::SeqCst) {
            return Err(Error::msg(
                "rte_eal_init",
                "EAL already initialised in this process",
            ));
        }
        let owned: Vec<CString> = args
            .iter()
            .map(|a| CString::new(a.as_ref()))
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| Error::msg("rte_eal_init", "argument contains a NUL byte"))?;
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
        Ok(Eal { _private: () })
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: EAL was initialised by `init`; all lcores have been waited for by the owner
        // (launch handles join in their Drop) before the Eal is dropped.
        unsafe {
            ffi::rte_eal_cleanup();
        }
    }
}
