//! Weak references: a weakref is a small GC object of a built-in type whose one slot (at
//! [`WEAK_SLOT`]) is not traced. The collector clears the slot once its target dies and
//! repairs it when the target moves; a mutator reads it with the weak load barrier
//! (`Mutator::weakref_get`), which, while marking runs, shades what it returns: a weak
//! load hands out an object the snapshot may not reach, and the cycle must not free it.

use super::dead;
use crate::barriers::log::HeaderWord;
use crate::barriers::{LOAD, WRITE};
use crate::collector::evacuate::moved_to;
use crate::object::{ObjRef, TypeId, TypeInfo};
use crate::runtime::Runtime;
use crate::sync::raw::AtomicU64;
use crate::sync::{AtomicBool, Ordering};

/// Byte offset of the weak slot in a weakref object.
pub const WEAK_SLOT: usize = 8;

/// The weakref type of `rt`, registered on first use; None when the type table is full.
pub fn weakref_type(rt: &Runtime) -> Option<TypeId> {
    *rt.refs.weak_type.get_or_init(|| {
        rt.types
            .register(TypeInfo {
                fixed_size: WEAK_SLOT + 8,
                ..Default::default()
            })
            .ok()
    })
}

/// Whether `obj` is a weakref.
///
/// # Safety
/// `obj` must be a live object.
pub unsafe fn is_weakref(rt: &Runtime, obj: ObjRef) -> bool {
    // SAFETY: caller's contract.
    rt.refs.weak_type.get().copied().flatten() == Some(unsafe { obj.type_id() })
}

/// The weak load barrier: the target in a live weakref's `slot` (None once cleared), for a
/// mutator whose barrier bits are `barriers`. While the load barrier is on, the target is
/// `resolve`d to its copy. While marking runs, it is `shade`d (SATB-logged): an object only
/// weak slots reach is not in the snapshot, yet the caller may now store it anywhere, so
/// this cycle must not free it. The bits cannot change during the call (they flip only
/// while the mutator is stopped), and slots are cleared only from the final-mark pause on,
/// so a target loaded here is either shaded before that pause or was in the snapshot
/// already. (After that pause, while slots are settled, loads use [`load_settling`].)
pub fn load(
    slot: &impl HeaderWord,
    barriers: u8,
    resolve: impl FnOnce(usize) -> usize,
    shade: impl FnOnce(usize),
) -> Option<usize> {
    let mut t = slot.load(Ordering::Acquire) as usize;
    if t == 0 {
        return None;
    }
    if barriers & LOAD != 0 {
        t = resolve(t);
    }
    if barriers & WRITE != 0 {
        shade(t);
    }
    Some(t)
}

/// What a weak slot holding `t` (non-zero) should hold once step 1 has settled it: the
/// copy when its target `moved`, nothing when the target is `dead`, else `t` itself.
#[inline]
pub fn judge(
    t: usize,
    moved: impl FnOnce(usize) -> Option<usize>,
    dead: impl FnOnce(usize) -> bool,
) -> Option<usize> {
    if let Some(to) = moved(t) {
        return Some(to);
    }
    (!dead(t)).then_some(t)
}

/// Settles one weak slot at the end of marking: repairs it when its target `moved` (to
/// the copy it returns), clears it when the target is `dead`. True if cleared.
pub fn settle(
    slot: &impl HeaderWord,
    moved: impl FnOnce(usize) -> Option<usize>,
    dead: impl FnOnce(usize) -> bool,
) -> bool {
    let t = slot.load(Ordering::Relaxed) as usize;
    if t == 0 {
        return false;
    }
    match judge(t, moved, dead) {
        Some(to) if to == t => false,
        Some(to) => {
            slot.store(to as u64, Ordering::Relaxed);
            false
        }
        None => {
            slot.store(0, Ordering::Relaxed);
            true
        }
    }
}

/// The weak load while the collector settles weak slots after the final-mark pause
/// ([`Window`] open): the slot's target as [`judge`] sees it, so a target that died reads
/// as cleared and one that moved as its copy, whether or not the collector has reached
/// this slot yet. The marks it reads stay as the final mark left them until every mutator
/// has polled after the window closed (`Window` explains why).
pub fn load_settling(
    slot: &impl HeaderWord,
    moved: impl FnOnce(usize) -> Option<usize>,
    dead: impl FnOnce(usize) -> bool,
) -> Option<usize> {
    match slot.load(Ordering::Acquire) as usize {
        0 => None,
        t => judge(t, moved, dead),
    }
}

/// Whether weak slots are being settled while the mutators run (concurrent mode, many
/// weakrefs): step 1 of reference processing is then moved out of the final-mark pause,
/// whose length it set (about 7 ns a weakref: 1 M weakrefs made a 7-9 ms pause).
///
/// The protocol: the final-mark pause opens the window (every mutator is stopped); the
/// collector settles every slot, closes the window (release), asks every mutator for a
/// handshake and waits for every answer, and only then marks anything again (finalizers'
/// resurrection) or frees anything (the sweep). A weak load reads the window (acquire)
/// before the slot: closed, it sees the settled slot; open, it applies [`judge`] to what it
/// reads, with the marks of the final mark, which nothing changes before the answers (a
/// load runs between two polls, and a mutator answers at a poll). So a target that died
/// is never handed out, even one a finalizer is about to resurrect. Only the weakrefs the
/// pause adopted are judged (they are marked or black): one made since holds a target the
/// program held after marking ended, live though perhaps allocated since, unmarked. The
/// loom model `loom-tests/tests/weak_load.rs` checks it against the real safepoint code.
#[derive(Debug, Default)]
pub struct Window(AtomicBool);

impl Window {
    /// Opens it (in the final-mark pause, every mutator stopped).
    pub fn open(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Closes it once every slot is settled; the caller then waits for a handshake.
    pub fn close(&self) {
        self.0.store(false, Ordering::Release);
    }

    /// Whether weak loads must judge their targets.
    #[inline]
    pub fn is_open(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Step 1 of reference processing over the weakref objects `weak` (live or not): clears
/// each slot whose target is dead and repairs each whose target moved. Returns how many
/// it cleared.
pub fn clear_dead_targets(rt: &Runtime, weak: &[usize]) -> u64 {
    let mut cleared = 0;
    for &w in weak {
        let mut w = w;
        super::follow(rt, &mut w);
        // SAFETY: a registered weakref, not yet swept: its slot is an aligned word.
        let slot = unsafe { &*((w + WEAK_SLOT) as *const AtomicU64) };
        // SAFETY: the target, not yet swept: its header is readable.
        let moved = |t: usize| unsafe { moved_to(&rt.space, t) };
        cleared += u64::from(settle(slot, moved, |t| dead(rt, t)));
    }
    cleared
}
