//! Barriers: the SATB write barriers (field, object, array copy) and their buffers.
//!
//! Each mutator has a `gc_state` byte, changed only while it is stopped, so the fast paths
//! read a thread-local byte and branch (the C header mirrors these shapes):
//!
//! ```text
//! field:   if gc_state & MARKING { log(*slot) }  *slot = value
//! object:  if gc_state & MARKING && !(header & LOGGED) { log every ref field once }
//! copy:    if gc_state & MARKING { log(dst[0..n]) }  memmove(dst, src, n)
//! load:    v = *slot  (a load-reference barrier joins when evacuation does)
//! ```
//!
//! Snapshot-at-the-beginning (Yuasa): every reference overwritten while marking is logged,
//! so every object reachable when marking started gets marked; objects allocated during
//! marking are black (their lines survive the cycle).

pub mod log;
pub mod satb;

/// `gc_state` bit: concurrent marking is running; stores must log the old value.
pub const MARKING: u8 = 1;
/// `gc_state` bit: evacuation is running (reserved for the load barrier).
pub const EVACUATING: u8 = 2;
/// `gc_state` bit: references are being updated (reserved for the load barrier).
pub const UPDATING_REFS: u8 = 4;
