//! The remembered set of the young generation (`TANDEM_GENERATIONAL`): which old objects
//! may refer to young ones.
//!
//! Sticky mark bits: an object a cycle marked stays marked, and is *old*; an unmarked
//! object is *young*. A nursery cycle marks from the roots and from the fields of the
//! remembered objects, and stops at old objects, so it traces only what was allocated since
//! the last cycle and survives. It is sound when, at its init-mark pause, every old object
//! that refers to a young one is remembered (in some mutator's buffer or the runtime's
//! list). Young objects are those allocated since the last cycle's init mark: every object
//! that existed then and was still reachable was marked by that cycle (snapshot at the
//! beginning), so it is old. An edge from an old object to a young one was therefore
//! stored after that init mark, into
//!
//! * an object a marker had already scanned, or an old one: every object a marker scans
//!   gets [`FLAG_REMEMBER`] ([`arm`]), so the REMEMBER barrier sees the store, clears the
//!   flag and records the object ([`disarm`]); a flag cleared earlier means the object is
//!   recorded already;
//! * or, while marking ran, an object not scanned yet. Then the stored object, young at
//!   the end, was allocated during marking (black: any older object the thread could hold
//!   was reachable at the snapshot and is marked by this cycle; a large object allocated
//!   during marking is flagged `FLAG_NEW_LARGE` instead of marked, and markers leave it
//!   unmarked, young, like an object on a black line). So while marking, the
//!   generational barrier (STORE, every store) records the holder of any store of a black
//!   object, and the object barrier records every object it logs.
//!
//! A nursery cycle scans each remembered object's fields as roots (arming it again), and a
//! full cycle, which clears every mark bit first and traces everything, drops the list: it
//! arms every object it scans. The verifier (`TANDEM_VERIFY`) checks the invariant at each
//! nursery cycle's init mark. The loom model `loom-tests/tests/remember.rs` checks that a
//! store racing with the marker's arming is never lost.

use super::log::HeaderWord;
use crate::object::FLAG_REMEMBER;
use crate::sync::Ordering;

/// Marks an object old and not remembered (a marker scanned it): a later store into it
/// must record it. A plain test first: most objects scanned by a full cycle have the flag.
#[inline]
pub fn arm(header: &impl HeaderWord) {
    if header.load(Ordering::Relaxed) & FLAG_REMEMBER == 0 {
        header.fetch_or(FLAG_REMEMBER, Ordering::Relaxed);
    }
}

/// Clears the flag of an object about to be stored into; true when this call cleared it,
/// so the caller must record the object in the remembered set (exactly one thread does).
#[inline]
pub fn disarm(header: &impl HeaderWord) -> bool {
    header.load(Ordering::Relaxed) & FLAG_REMEMBER != 0
        && header.fetch_and(!FLAG_REMEMBER, Ordering::Relaxed) & FLAG_REMEMBER != 0
}

/// Whether the object with header word `h` is armed (old and not remembered).
#[inline(always)]
pub fn armed(h: u64) -> bool {
    h & FLAG_REMEMBER != 0
}
