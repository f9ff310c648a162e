//! Barriers: the SATB write barriers (field, object, array copy), the load barrier, and
//! their buffers.
//!
//! Each mutator has a `barriers` byte, changed only while it is stopped. Each inline fast
//! path tests its own bit, so the collector can turn any barrier on for any reason
//! (marking, evacuation, a later remembered set) without the VM being recompiled; the C
//! header mirrors these shapes bit for bit (`TANDEM_BARRIER_*`):
//!
//! ```text
//! field:   if barriers & (WRITE|STORE) && (barriers & STORE || *slot != 0) {
//!              slow: audit the store if STORE, log(*slot) if WRITE }
//!          *slot = value                                               (release)
//!          (and with REMEMBER: header & REMEMBER_FLAG also takes the slow path, which
//!          records the holder in the remembered set)
//! object:  if barriers & OBJECT && !(header & LOGGED)
//!             || barriers & REMEMBER && header & REMEMBER_FLAG { slow }
//! copy:    if barriers & ARRAY_COPY || barriers & REMEMBER && dst header & REMEMBER_FLAG
//!              { slow }  else copy slot by slot
//! load:    v = *slot (acquire); if barriers & LOAD { slow: resolve v, heal *slot }
//! ```
//!
//! Snapshot-at-the-beginning (Yuasa): every reference overwritten while marking is logged,
//! so every object reachable when marking started gets marked; objects allocated during
//! marking are black (their lines survive the cycle).

pub mod log;
pub mod remember;
pub mod satb;

/// `barriers` bit: a reference store takes the field barrier's slow path.
pub const WRITE: u8 = 1;
/// `barriers` bit: the object barrier logs objects whose LOGGED flag is clear.
pub const OBJECT: u8 = 2;
/// `barriers` bit: a reference array copy takes its slow path.
pub const ARRAY_COPY: u8 = 4;
/// `barriers` bit: a reference loaded from the heap takes the load barrier's slow path.
pub const LOAD: u8 = 8;
/// `barriers` bit: every reference store takes the field barrier's slow path, whatever the
/// field held (WRITE alone skips stores into null fields, which have nothing to log).
/// `TANDEM_VERIFY` keeps it on to audit every store; a remembered set, which must see
/// stores into null fields too, would use it.
pub const STORE: u8 = 16;
/// `barriers` bit: a reference store into (or object barrier on, or array copy into) an
/// object whose header has [`crate::object::FLAG_REMEMBER`] takes its slow path, which
/// clears the flag and records the object in the remembered set (generational mode: old
/// objects carry the flag, so the first store into one after a cycle records it).
pub const REMEMBER: u8 = 32;
/// The barriers concurrent marking needs (SATB): every store logs what it overwrites.
pub const MARKING: u8 = WRITE | OBJECT | ARRAY_COPY;
/// The barriers moving objects needs: loads (and the loads inside an array copy) resolve
/// references to objects that moved.
pub const EVACUATION: u8 = LOAD | ARRAY_COPY;
