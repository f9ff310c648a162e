//! A walk over every object reachable from a set of roots, run while the world is stopped
//! (by the verifier, and by heap dumps). Every reference is checked by [`validate`] before
//! anything is read through it: a corrupt heap is reported, never followed. A reference to
//! a moved object's old copy is reported too (and the walk goes on at the copy): when the
//! walk runs with evacuation over, every reachable reference must have been updated.

use super::evacuate::moved_to;
use super::mark::SLICE_ITEMS;
use super::validate::{self, Found, Place};
use crate::object::{ObjRef, TypeInfo};
use crate::runtime::Runtime;
use std::collections::HashSet;

/// One object the walk reached (each once).
pub struct Reached<'a> {
    /// The object.
    pub obj: ObjRef,
    /// Its type.
    pub info: &'a TypeInfo,
    /// Its size in bytes.
    pub size: usize,
    /// Where it lies.
    pub place: Place,
    /// Where the walk first found it.
    pub from: Found,
}

/// Walks everything reachable from `roots`, given as (object, root slot) pairs: calls
/// `visit` with each object once, and `bad` with a message for each reference that is not
/// a valid object (which is not followed).
pub fn reachable(
    rt: &Runtime,
    roots: &[(usize, usize)],
    mut visit: impl FnMut(&Reached<'_>),
    mut bad: impl FnMut(String),
) {
    let mut seen: HashSet<usize> = HashSet::new();
    let mut todo: Vec<(usize, Found)> = roots
        .iter()
        .map(|&(r, slot)| (r, Found::root(slot)))
        .collect();
    // Arrays whose items are still to be read, a slice at a time as the marker does, so
    // that `todo` holds at most a slice's references per array on the path.
    let mut rest: Vec<(ObjRef, &TypeInfo, usize)> = Vec::new();
    loop {
        let Some((addr, from)) = todo.pop() else {
            let Some((obj, info, first)) = rest.pop() else {
                break;
            };
            // SAFETY: a validated object of type `info` whose first item was read before.
            unsafe { push_slice(&mut todo, &mut rest, obj, info, first) };
            continue;
        };
        if addr == 0 || !seen.insert(addr) {
            continue;
        }
        let place = match validate::locate(&rt.space, addr) {
            Ok(p) => p,
            Err(why) => {
                bad(format!("reference {addr:#x} in {from} {why}"));
                continue;
            }
        };
        let obj = ObjRef::from_addr(addr).expect("non-zero");
        // SAFETY: `locate` found the header word in allocated memory.
        if let Some(to) = unsafe { moved_to(&rt.space, addr) } {
            // Once evacuation is over, every reachable reference was updated: this one
            // would dangle when the collection set's blocks are recycled.
            bad(format!(
                "reference {addr:#x} in {from} is the old copy of an object that moved to \
                 {to:#x}: it was never updated, and its block is about to be recycled"
            ));
            todo.push((to, from));
            continue;
        }
        let (info, size) = match validate::object(&rt.types, obj, place) {
            Ok(v) => v,
            Err(why) => {
                bad(format!(
                    "reachable object {addr:#x} (referenced from {from}) {why}"
                ));
                continue;
            }
        };
        visit(&Reached {
            obj,
            info,
            size,
            place,
            from,
        });
        // SAFETY: `validate::object` checked that the object of type `info` lies inside
        // allocated memory, so its reference slots are readable.
        unsafe { push_slice(&mut todo, &mut rest, obj, info, 0) };
    }
}

/// Pushes the non-null references of `obj`'s items from `first` (and of its fixed part,
/// when `first` is 0) for up to [`SLICE_ITEMS`] items, and the rest of it onto `rest`.
///
/// # Safety
/// `obj` must be a valid object of type `info` (its slots are readable).
unsafe fn push_slice<'a>(
    todo: &mut Vec<(usize, Found)>,
    rest: &mut Vec<(ObjRef, &'a TypeInfo, usize)>,
    obj: ObjRef,
    info: &'a TypeInfo,
    first: usize,
) {
    let end = first.saturating_add(SLICE_ITEMS);
    // SAFETY: caller's contract.
    if unsafe { info.sliceable_items(obj) } > end {
        rest.push((obj, info, end));
    }
    let addr = obj.addr();
    // SAFETY: caller's contract.
    unsafe {
        info.for_each_slot_in(obj, first..end, |slot| {
            let v = *slot as usize;
            if v != 0 {
                todo.push((v, Found::field(addr, slot as usize)));
            }
        })
    };
}
