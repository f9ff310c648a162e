//! A walk over every object reachable from a set of roots, run while the world is stopped
//! (by the verifier, and by heap dumps). Every reference is checked by [`validate`] before
//! anything is read through it: a corrupt heap is reported, never followed. A reference to
//! a moved object's old copy is reported too (and the walk goes on at the copy): when the
//! walk runs with evacuation over, every reachable reference must have been updated.

use super::evacuate::moved_to;
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
    while let Some((addr, from)) = todo.pop() {
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
        unsafe {
            info.for_each_slot(obj, |slot| {
                todo.push((*slot as usize, Found::field(addr, slot as usize)))
            })
        };
    }
}
