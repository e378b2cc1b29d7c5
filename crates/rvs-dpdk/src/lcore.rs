//! Launching Rust closures on EAL worker lcores.

use super::{check, ffi, Result};
use std::os::raw::{c_int, c_void};

const RTE_MAX_LCORE: u32 = 128;

/// The main lcore's id (the thread that called `Eal::init`).
pub fn main_lcore() -> u32 {
    // SAFETY: plain query after EAL init.
    unsafe { ffi::rte_get_main_lcore() }
}

/// Ids of the enabled worker lcores (all but the main one), in order.
pub fn worker_lcores() -> Vec<u32> {
    let mut v = Vec::new();
    // SAFETY: iterating lcore ids is a read-only query after EAL init.
    let mut i = unsafe { ffi::rte_get_next_lcore(u32::MAX, 1, 0) };
    while i < RTE_MAX_LCORE {
        v.push(i);
        // SAFETY: as above.
        i = unsafe { ffi::rte_get_next_lcore(i, 1, 0) };
    }
    v
}

/// The calling thread's lcore id (u32::MAX on a non-EAL thread).
pub fn current_lcore() -> u32 {
    // SAFETY: reads a thread-local.
    unsafe { ffi::rte_lcore_id() }
}

type Job = Box<dyn FnOnce() -> i32 + Send + 'static>;

unsafe extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: arg is the Box<Job> leaked by `launch` for exactly this call; reclaimed once.
    let job: Box<Job> = unsafe { Box::from_raw(arg as *mut Job) };
    // A panic must not unwind into C; turn it into a failure code.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).unwrap_or(-1)
}

/// A launched job; `wait` (or drop) joins it.
#[derive(Debug)]
pub struct LaunchHandle {
    lcore: u32,
    joined: bool,
}

impl LaunchHandle {
    pub fn lcore(&self) -> u32 {
        self.lcore
    }

    /// Waits for the job to return and gives its return code.
    pub fn wait(mut self) -> i32 {
        self.joined = true;
        // SAFETY: waits for a job launched on this worker lcore.
        unsafe { ffi::rte_eal_wait_lcore(self.lcore) }
    }
}

impl Drop for LaunchHandle {
    fn drop(&mut self) {
        if !self.joined {
            // SAFETY: as in wait.
            unsafe { ffi::rte_eal_wait_lcore(self.lcore) };
        }
    }
}

/// Runs `f` on worker lcore `lcore` (EAL pins it to its CPU).
pub fn launch<F>(lcore: u32, f: F) -> Result<LaunchHandle>
where
    F: FnOnce() -> i32 + Send + 'static,
{
    let job: Box<Job> = Box::new(Box::new(f));
    let arg = Box::into_raw(job) as *mut c_void;
    // SAFETY: trampoline reclaims arg exactly once on the target lcore; on failure the job
    // never ran, so it is reclaimed here.
    let ret = unsafe { ffi::rte_eal_remote_launch(Some(trampoline), arg, lcore) };
    if ret < 0 {
        // SAFETY: the launch failed, so trampoline will not run; reclaim the box once.
        drop(unsafe { Box::from_raw(arg as *mut Job) });
        return check(&format!("rte_eal_remote_launch(lcore {lcore})"), ret)
            .map(|_| unreachable!());
    }
    Ok(LaunchHandle {
        lcore,
        joined: false,
    })
}

/// Jobs on worker lcores that run until told to stop. Dropping the group (on any return path,
/// an error after the first launch included) calls `stop` and then joins every job, so a failed
/// start can never leave a worker polling and the process hanging in a join.
pub struct LcoreGroup {
    stop: Box<dyn Fn() + Send>,
    handles: Vec<LaunchHandle>,
}

impl LcoreGroup {
    /// A group whose jobs end when `stop` has been called (e.g. it clears their `running` flag).
    pub fn new(stop: impl Fn() + Send + 'static) -> Self {
        LcoreGroup {
            stop: Box::new(stop),
            handles: Vec::new(),
        }
    }

    /// Launches `f` on `lcore` as a member of the group.
    pub fn launch<F>(&mut self, lcore: u32, f: F) -> Result<()>
    where
        F: FnOnce() -> i32 + Send + 'static,
    {
        self.handles.push(launch(lcore, f)?);
        Ok(())
    }

    /// Stops and joins every job; their return codes in launch order.
    pub fn stop(mut self) -> Vec<i32> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> Vec<i32> {
        (self.stop)();
        self.handles.drain(..).map(LaunchHandle::wait).collect()
    }
}

impl Drop for LcoreGroup {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

impl std::fmt::Debug for LcoreGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LcoreGroup")
            .field("handles", &self.handles)
            .finish()
    }
}

/// Waits for every worker lcore to finish its job.
pub fn wait_all() {
    // SAFETY: joins all launched workers; safe to call with none running.
    unsafe { ffi::rte_eal_mp_wait_lcore() }
}
