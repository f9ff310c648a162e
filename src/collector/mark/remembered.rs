//! A nursery cycle's second set of roots: the fields of the objects the remembered set
//! holds, read a piece at a time.

use super::{mark_found, BadRefs, MarkPacket, SLICE_ITEMS};
use crate::barriers::remember;
use crate::collector::validate;
use crate::collector::validate::Found;
use crate::object::{ObjRef, TypeInfo};
use crate::runtime::Runtime;
use crate::sync::raw::AtomicPtr;
use crate::sync::Ordering;

/// Marks what the fields of the remembered objects `objs` refer to, a nursery cycle's
/// second set of roots (see `barriers::remember`), arming each object again; returns
/// packets of the newly marked objects and how many there were. Runs while the mutators
/// run: a field overwritten before it is read was logged by the SATB barrier, and a field
/// that refers into the collection set is repaired like any the markers meet.
pub fn mark_remembered(
    rt: &Runtime,
    buffers: Vec<Vec<usize>>,
    bad: &BadRefs,
) -> (Vec<MarkPacket>, u64) {
    let mut objs: Vec<usize> = buffers.into_iter().flatten().collect();
    objs.sort_unstable();
    objs.dedup();
    let edges = RememberedEdges {
        rt,
        bad,
        objs: objs.into_iter(),
        rest: None,
        fields: Vec::new(),
        next: 0,
    };
    mark_found(rt, edges, bad)
}

/// The fields of remembered objects, read one object (or [`SLICE_ITEMS`] items of an
/// array) at a time as the marker asks for them: gathered whole first, graph/t2's nursery
/// cycles held 3-4 MB of edges at once, and the allocator kept that much in each thread's
/// arena after.
struct RememberedEdges<'a> {
    rt: &'a Runtime,
    bad: &'a BadRefs,
    objs: std::vec::IntoIter<usize>,
    /// The array being read and its first item not yet read.
    rest: Option<(ObjRef, &'a TypeInfo, usize)>,
    fields: Vec<(usize, Found)>,
    next: usize,
}

impl<'a> RememberedEdges<'a> {
    /// The next remembered object that is valid, armed again, its type and first item (0).
    fn next_object(&mut self) -> Option<(ObjRef, &'a TypeInfo, usize)> {
        loop {
            let a = self.objs.next()?;
            let Some(obj) = ObjRef::from_addr(a) else {
                continue;
            };
            match validate::checked(&self.rt.space, &self.rt.types, obj) {
                Ok((info, _)) => {
                    // SAFETY: a checked, live object.
                    remember::arm(unsafe { obj.header() });
                    return Some((obj, info, 0));
                }
                Err(why) => self.bad.report(format!("remembered object {a:#x}: {why}")),
            }
        }
    }
}

impl Iterator for RememberedEdges<'_> {
    type Item = (usize, Found);

    fn next(&mut self) -> Option<(usize, Found)> {
        while self.next == self.fields.len() {
            let (obj, info, first) = match self.rest.take() {
                Some(r) => r,
                None => self.next_object()?,
            };
            self.fields.clear();
            self.next = 0;
            let end = first + SLICE_ITEMS;
            // SAFETY: a checked, live object of type `info`.
            if unsafe { info.sliceable_items(obj) } > end {
                self.rest = Some((obj, info, end));
            }
            let (a, fields) = (obj.addr(), &mut self.fields);
            // SAFETY: a live, initialised object of type `info`; reference slots are atomic
            // words, loaded with acquire (see `ObjRef::store_ref`).
            unsafe {
                info.for_each_slot_in(obj, first..end, |slot| {
                    let child = (*(slot as *const AtomicPtr<u8>)).load(Ordering::Acquire) as usize;
                    if child != 0 {
                        fields.push((child, Found::field(a, slot as usize)));
                    }
                })
            };
        }
        self.next += 1;
        Some(self.fields[self.next - 1])
    }
}
