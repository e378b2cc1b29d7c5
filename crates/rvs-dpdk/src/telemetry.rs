//! Commands of rvs's own on DPDK's telemetry socket (`/var/run/dpdk/<prefix>/dpdk_telemetry.v2`,
//! read by `dpdk-telemetry.py`), beside the standard `/ethdev/...` ones.
//!
//! DPDK calls a command's callback on its telemetry thread with no user data, so the handlers
//! live in a process-wide table that one C trampoline looks up by command name. A handler
//! returns a [`Reply`] in safe Rust; the trampoline writes it into DPDK's `rte_tel_data` within
//! DPDK's limits: at most [`MAX_ENTRIES`] entries per dict (a list too), strings of at most [`MAX_STRING`] bytes, one level of nesting. DPDK also refuses keys with
//! characters other than letters, digits, `_` and `/` (so an address is a value, never a
//! key). What does not fit is left out and counted in a `"truncated"` entry, never an error.

use crate::{check, ffi, Result};
use std::ffi::{c_char, c_int, CStr, CString};
use std::sync::{Arc, Mutex};

/// Entries of one telemetry dict (RTE_TEL_MAX_DICT_ENTRIES), one kept for `truncated`.
pub const MAX_ENTRIES: usize = ffi::RTE_TEL_MAX_DICT_ENTRIES as usize - 1;
/// Bytes of a key or a string value, without the NUL (RTE_TEL_MAX_STRING_LEN - 1).
pub const MAX_STRING: usize = ffi::RTE_TEL_MAX_STRING_LEN as usize - 1;

/// A value in a reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U64(u64),
    Str(String),
    /// A nested dict (its own nested dicts are left out: DPDK nests one level).
    Dict(Dict),
}

/// (key, value) pairs in order.
pub type Dict = Vec<(String, Value)>;

/// What a command answers: one dict, or a list of dicts (one per service, say), written as a
/// dict keyed "0", "1", ... (DPDK 22.11 takes no dicts in arrays), so at most [`MAX_ENTRIES`].
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Dict(Dict),
    List(Vec<Dict>),
}

/// A command's handler: its parameters (the text after the comma, maybe empty) to a reply, or
/// an error text (answered as `{"error": TEXT}`).
pub type Handler = Arc<dyn Fn(&str) -> std::result::Result<Reply, String> + Send + Sync>;

const EINVAL: c_int = nix::errno::Errno::EINVAL as c_int;
const ENOMEM: c_int = nix::errno::Errno::ENOMEM as c_int;

static HANDLERS: Mutex<Vec<(String, Handler)>> = Mutex::new(Vec::new());

/// Registers `cmd` (e.g. "/rvs/stats"; DPDK wants it to start with '/') with its help text.
/// Call after EAL is up; a command registered twice keeps its first handler in DPDK and gets
/// the new one here.
pub fn register(cmd: &str, help: &str, handler: Handler) -> Result<()> {
    let c_cmd = CString::new(cmd).map_err(|_| bad("command with a NUL"))?;
    let c_help = CString::new(help).map_err(|_| bad("help with a NUL"))?;
    {
        let mut h = HANDLERS.lock().unwrap_or_else(|e| e.into_inner());
        h.retain(|(c, _)| c != cmd);
        h.push((cmd.to_string(), handler));
    }
    // SAFETY: both strings are NUL-terminated and DPDK copies them (it keeps its own table of
    // names and help texts); `trampoline` has the `telemetry_cb` signature and never unwinds.
    let ret = unsafe {
        ffi::rte_telemetry_register_cmd(c_cmd.as_ptr(), Some(trampoline), c_help.as_ptr())
    };
    check("rte_telemetry_register_cmd", ret).map(|_| ())
}

fn bad(what: &str) -> crate::Error {
    crate::Error::new("telemetry", crate::ErrorKind::InvalidArgument, what)
}

fn lookup(cmd: &str) -> Option<Handler> {
    let h = HANDLERS.lock().unwrap_or_else(|e| e.into_inner());
    h.iter().find(|(c, _)| c == cmd).map(|(_, f)| f.clone())
}

/// DPDK's callback for every rvs command. Returns 0 with the reply written, or a negative
/// errno (the client then gets `{"<cmd>": null}`).
extern "C" fn trampoline(
    cmd: *const c_char,
    params: *const c_char,
    d: *mut ffi::rte_tel_data,
) -> c_int {
    if cmd.is_null() || d.is_null() {
        return -EINVAL;
    }
    // SAFETY: DPDK passes NUL-terminated strings that live for the call (params may be NULL).
    let cmd = unsafe { CStr::from_ptr(cmd) }.to_string_lossy();
    let params = if params.is_null() {
        String::new()
    } else {
        // SAFETY: as above.
        unsafe { CStr::from_ptr(params) }
            .to_string_lossy()
            .into_owned()
    };
    let Some(handler) = lookup(&cmd) else {
        return -EINVAL;
    };
    // A panicking handler must not unwind into C (the release profile aborts on panic anyway).
    let reply = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(&params)));
    match reply {
        Ok(Ok(Reply::Dict(dict))) => {
            // SAFETY: `d` is the reply DPDK handed to this callback, valid for its duration.
            unsafe { write_dict(d, &dict, true) };
            0
        }
        Ok(Ok(Reply::List(items))) => {
            // DPDK 22.11 refuses dicts in an array: the items are keyed by their index.
            let dict: Dict = items
                .into_iter()
                .enumerate()
                .map(|(i, item)| (i.to_string(), Value::Dict(item)))
                .collect();
            // SAFETY: as above.
            unsafe { write_dict(d, &dict, true) };
            0
        }
        Ok(Err(e)) => {
            let one = vec![("error".to_string(), Value::Str(e))];
            // SAFETY: as above.
            unsafe { write_dict(d, &one, false) };
            0
        }
        Err(_) => -EINVAL,
    }
}

/// A key or string value cut to DPDK's limit (at a char boundary) without NULs.
fn c_text(s: &str) -> CString {
    let mut end = s.len().min(MAX_STRING);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let clean: String = s[..end].chars().filter(|c| *c != '\0').collect();
    CString::new(clean).unwrap_or_default()
}

/// Writes `dict` into `d` (started as a dict here); nested dicts only when `nest`.
///
/// # Safety
/// `d` must be a valid `rte_tel_data` that DPDK handed to a callback, or one from
/// `rte_tel_data_alloc`.
unsafe fn write_dict(d: *mut ffi::rte_tel_data, dict: &Dict, nest: bool) {
    // SAFETY: the caller guarantees `d`.
    unsafe { ffi::rte_tel_data_start_dict(d) };
    let mut left_out = 0u64;
    for (i, (k, v)) in dict.iter().enumerate() {
        if i >= MAX_ENTRIES {
            left_out = (dict.len() - i) as u64;
            break;
        }
        let key = c_text(k);
        let ret = match v {
            // SAFETY: `d` is valid (above) and `key` is NUL-terminated; DPDK copies it.
            Value::U64(x) => unsafe { ffi::rte_tel_data_add_dict_u64(d, key.as_ptr(), *x) },
            Value::Str(s) => {
                let val = c_text(s);
                // SAFETY: as above; DPDK copies both strings.
                unsafe { ffi::rte_tel_data_add_dict_string(d, key.as_ptr(), val.as_ptr()) }
            }
            Value::Dict(inner) if nest => {
                // SAFETY: a fresh container; ownership passes to `d` with keep = 0 (DPDK frees
                // it after the reply is sent), or it is freed here if adding fails.
                unsafe {
                    let c = ffi::rte_tel_data_alloc();
                    if c.is_null() {
                        -ENOMEM
                    } else {
                        write_dict(c, inner, false);
                        let r = ffi::rte_tel_data_add_dict_container(d, key.as_ptr(), c, 0);
                        if r < 0 {
                            ffi::rte_tel_data_free(c);
                        }
                        r
                    }
                }
            }
            Value::Dict(_) => -EINVAL,
        };
        if ret < 0 {
            left_out += 1;
        }
    }
    if left_out > 0 {
        let key = c_text("truncated");
        // SAFETY: as above; the last slot was kept for this entry.
        unsafe { ffi::rte_tel_data_add_dict_u64(d, key.as_ptr(), left_out) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cut_at_a_char_boundary_without_nuls() {
        let long = "é".repeat(100);
        let c = c_text(&long);
        assert!(c.as_bytes().len() <= MAX_STRING);
        assert!(std::str::from_utf8(c.as_bytes()).is_ok());
        assert_eq!(c_text("a\0b").as_bytes(), b"ab");
    }

    #[test]
    fn handlers_are_found_by_name_and_replaced() {
        let mut h = HANDLERS.lock().unwrap();
        h.push(("/t/a".into(), Arc::new(|_: &str| Ok(Reply::Dict(vec![])))));
        drop(h);
        assert!(lookup("/t/a").is_some());
        assert!(lookup("/t/b").is_none());
    }
}
