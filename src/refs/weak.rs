//! Weak references: a weakref is a small GC object of a built-in type whose one slot (at
//! [`WEAK_SLOT`]) is not traced. The collector clears the slot once its target dies and
//! repairs it when the target moves; a mutator reads it with the weak load barrier
//! (`Mutator::weakref_get`), which, while marking runs, shades what it returns: a weak
//! load hands out an object the snapshot may not reach, and the cycle must not free it.

use super::dead;
use crate::object::{forward, ObjRef, TypeId, TypeInfo};
use crate::runtime::Runtime;
use crate::sync::raw::AtomicU64;
use crate::sync::Ordering;

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
        let t = slot.load(Ordering::Relaxed) as usize;
        if t == 0 {
            continue;
        }
        if rt.space.in_cset(t) {
            // SAFETY: the target, not yet swept: its header is readable.
            let h = unsafe { ObjRef::from_addr(t).expect("non-zero").header() };
            if let Some(to) = forward::forwardee(h.load(Ordering::Acquire)) {
                slot.store(to as u64, Ordering::Relaxed);
                continue;
            }
        }
        if dead(rt, t) {
            slot.store(0, Ordering::Relaxed);
            cleared += 1;
        }
    }
    cleared
}
