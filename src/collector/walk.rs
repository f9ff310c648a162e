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
    let mut seen = Visited::new(rt.space.range());
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

/// The addresses a walk has reached: a bit per 8-byte word of the heap, in a bitmap per
/// 4 MiB chunk made when the walk first reaches it (the walk runs while the mark bits are
/// in use), and a set for the invalid addresses outside the heap or not 8-byte aligned
/// (each reported once). A hash set of every address took about 20 bytes an object (a
/// heap dump of 10 M objects: 200 MB).
struct Visited {
    heap: std::ops::Range<usize>,
    chunks: Vec<Option<Box<[u64]>>>,
    outside: HashSet<usize>,
}

/// Heap bytes one bitmap of [`Visited`] covers.
const VISITED_CHUNK: usize = crate::heap::CHUNK_SIZE;

impl Visited {
    fn new(heap: std::ops::Range<usize>) -> Visited {
        let n = heap.len().div_ceil(VISITED_CHUNK);
        Visited {
            heap,
            chunks: (0..n).map(|_| None).collect(),
            outside: HashSet::new(),
        }
    }

    /// Records `addr`; true when it was not recorded before.
    fn insert(&mut self, addr: usize) -> bool {
        if !self.heap.contains(&addr) || !addr.is_multiple_of(8) {
            return self.outside.insert(addr);
        }
        let off = addr - self.heap.start;
        let words = VISITED_CHUNK / 8 / 64;
        let map = self.chunks[off / VISITED_CHUNK]
            .get_or_insert_with(|| vec![0u64; words].into_boxed_slice());
        let word = off % VISITED_CHUNK / 8;
        let (w, bit) = (word / 64, 1u64 << (word % 64));
        let fresh = map[w] & bit == 0;
        map[w] |= bit;
        fresh
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_is_new_once_misaligned_and_outside_ones_apart() {
        let base = 64 * VISITED_CHUNK;
        let mut v = Visited::new(base..base + 3 * VISITED_CHUNK);
        for a in [base, base + 8, base + 2 * VISITED_CHUNK + 4088, 8, base + 3] {
            assert!(v.insert(a), "{a:#x} is new");
            assert!(!v.insert(a), "{a:#x} was seen");
        }
        assert!(
            v.insert(base + 16),
            "a neighbour in the same word of the map"
        );
        assert!(v.insert(base + 3 * VISITED_CHUNK), "past the end: outside");
        assert_eq!(v.chunks.iter().filter(|c| c.is_some()).count(), 2);
    }
}
