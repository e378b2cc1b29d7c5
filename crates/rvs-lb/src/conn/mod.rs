//! The per-core connection table.
//!
//! Layout (measured by the tests in `tests.rs`):
//! - entries: one preallocated `Vec<Conn>`; `Conn` is exactly one 64-byte cache line. Free entries
//!   form a singly linked free list, so creating or freeing a connection allocates nothing.
//! - index: a power-of-two array of `u32` bucket heads (>= capacity) with chains threaded through
//!   the entries. Both directions use ONE index keyed on the client endpoint
//!   `(proto, caddr, cport)` (as the kernel does): a client packet's source and a real server's
//!   reply's destination are that endpoint; the full keys are then compared in the entry
//!   (inbound: vaddr, vport; outbound: daddr, dport). So a connection costs 64 bytes plus 4..8
//!   bytes of bucket array: 68 bytes at a power-of-two capacity, at most 72.
//! - expiry: a timer wheel of [`WHEEL_SLOTS`] slots of [`TICK_NANOS`] each (~1100 s span) with
//!   doubly linked slot lists. Refreshing a connection only rewrites `expires` (lazy): when its
//!   slot comes round and it is not due, it is moved to the right slot. An entry whose new expiry
//!   is earlier than its slot (e.g. ESTABLISHED -> CLOSE) is moved at once so counts drop on time.
//!   [`ConnTable::tick`] does bounded work per call. Lookups also free entries found past their
//!   expiry, so behaviour does not depend on how often `tick` runs.
//!
//! Accounting follows ip_vs_conn.c: a new connection is bound inactive (`inactconns`), TCP state
//! changes move it between active and inactive, templates count only in `persistconns`;
//! OVERLOAD is set at bind when `active + inactive >= u_threshold` and cleared at unbind with the
//! kernel's hysteresis. Thresholds here are this core's share (see the engine).
//!
//! The module is split along its seams: [`Conn`] and the other entry types (`entry.rs`), the
//! table itself with its index and lookups (`table.rs`), the timer wheel and expiry (`wheel.rs`),
//! and per-destination accounting (`accounting.rs`).

mod accounting;
mod entry;
mod table;
mod wheel;

#[cfg(test)]
mod tests;

pub use accounting::DestAcct;
pub use entry::{secs_to_ticks, tick_of, Conn, ConnInfo, NewConn, NIL, TICK_NANOS, TICK_SHIFT};
pub use table::{ConnTable, MemAdvice, MAX_CAPACITY};
pub use wheel::{TEMPLATE_LINGER_SECS, WHEEL_SLOTS};
