//! What a reference must be before the collector reads through it. Marking and verification
//! both ask here, so a corrupt heap (a VM bug) is reported and the reference is not
//! followed, instead of reading unmapped memory.
//!
//! 1. [`locate`]: the address is in the heap and 8-aligned, and lies in allocated memory: in
//!    the block space, on a line that is not free (a free line, a free block and an
//!    uncommitted chunk all read as free lines); in the large-object space, at the start of
//!    a live object. It returns how far the object may extend: to the end of its block
//!    (small objects never cross blocks) or of its large-object run.
//! 2. [`object`]: the header names a registered type, and the size computed from the
//!    length field neither overflows nor runs past that limit.

use crate::heap::los::LargeSlot;
use crate::heap::metadata::{BlockState, LINE_FREE};
use crate::heap::{Space, BLOCK_SIZE};
use crate::object::{ObjRef, TypeInfo, TypeRegistry};
use crate::sync::Ordering;
use std::fmt;

/// Where a reference was found: a root slot, a SATB entry (no slot), or a field of an
/// object; for messages, and for repairing the slot when its target moved. Two words: it
/// travels with every edge through the marker's queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Found {
    /// The object holding the field; 0 for a root or a SATB entry.
    obj: usize,
    /// The slot's address; 0 for a SATB entry.
    slot: usize,
}

impl Found {
    /// A root slot (shadow stack, global, callback) at this address, or a SATB entry for
    /// slot 0 (how `mark_all` callers pass them).
    pub fn root(slot: usize) -> Found {
        Found { obj: 0, slot }
    }

    /// The field of `obj` at address `slot`.
    #[inline(always)]
    pub fn field(obj: usize, slot: usize) -> Found {
        Found { obj, slot }
    }

    /// The slot the reference was read from, to repair; None for a SATB entry.
    #[inline(always)]
    pub fn slot(self) -> Option<usize> {
        (self.slot != 0).then_some(self.slot)
    }
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.obj, self.slot) {
            (_, 0) => write!(f, "a SATB buffer"),
            (0, slot) => write!(f, "root slot {slot:#x}"),
            (obj, slot) => write!(f, "field +{} of object {obj:#x}", slot.wrapping_sub(obj)),
        }
    }
}

/// Where a valid reference points and how far its object may extend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Place {
    /// One past the last byte the object may occupy: the end of its block or of its run.
    pub limit: usize,
    /// Whether it is a large object.
    pub large: bool,
}

/// Checks that `addr` (not null) points at allocated heap memory; the error says why not.
/// Takes the large-object space's lock for a large-object address.
#[inline(always)]
pub fn locate(space: &Space, addr: usize) -> Result<Place, String> {
    if space.in_immix(addr) {
        return locate_small(space, addr, space.line_mark(addr));
    }
    locate_elsewhere(space, addr)
}

/// Whether a block-space address whose line mark is `line` can be an object: aligned, on
/// a line in use (the common case, inline in the marker).
#[inline(always)]
pub fn small_ref_ok(addr: usize, line: u8) -> bool {
    addr.is_multiple_of(8) && line != LINE_FREE
}

/// [`locate`] for an address in the block space whose line mark the caller read as `line`
/// (the marker reads it once for this and its black-allocation test).
#[inline(always)]
pub fn locate_small(space: &Space, addr: usize, line: u8) -> Result<Place, String> {
    if small_ref_ok(addr, line) {
        return Ok(small_place(space, addr));
    }
    locate_elsewhere(space, addr)
}

/// Where the block-space object at `addr` lies: up to the end of its block.
#[inline(always)]
pub fn small_place(space: &Space, addr: usize) -> Place {
    Place {
        limit: space.block_addr(space.block_of(addr)) + BLOCK_SIZE,
        large: false,
    }
}

/// [`locate`] then [`object`]: the type and size of the object at `obj`, or why it is not
/// one.
pub fn checked<'a>(
    space: &Space,
    types: &'a TypeRegistry,
    obj: ObjRef,
) -> Result<(&'a TypeInfo, usize), String> {
    locate(space, obj.addr()).and_then(|place| object(types, obj, place))
}

/// [`locate`] for large objects and for every address it rejects.
#[inline(never)]
fn locate_elsewhere(space: &Space, addr: usize) -> Result<Place, String> {
    if !space.in_heap(addr) {
        return Err("points outside the heap".into());
    }
    if !addr.is_multiple_of(8) {
        return Err("is not 8-byte aligned".into());
    }
    if space.in_immix(addr) {
        let line = space.line_of(addr);
        let block = space.block_of(addr);
        return Err(match space.meta.block_state(block) {
            BlockState::Uncommitted => format!("points into uncommitted memory (block {block})"),
            BlockState::Free => format!("points into free block {block}"),
            _ => format!("points into free line {line} (block {block})"),
        });
    }
    match space.los.slot_at(addr) {
        LargeSlot::Object { len } => Ok(Place {
            limit: addr + len,
            large: true,
        }),
        LargeSlot::Inside { start } => Err(format!("points inside large object {start:#x}")),
        LargeSlot::Freed => Err("points into a freed large object".into()),
        LargeSlot::Unused => Err("points into unallocated large-object space".into()),
    }
}

/// The type and size of the object at a reference [`locate`] accepted as `place`; the
/// error says what is wrong with its header or length.
#[inline(always)]
pub fn object(
    types: &TypeRegistry,
    obj: ObjRef,
    place: Place,
) -> Result<(&TypeInfo, usize), String> {
    // SAFETY: `locate` found the header word in allocated, committed memory.
    let h = unsafe { obj.header() }.load(Ordering::Relaxed);
    if let Some(info) = types.get(crate::object::TypeId::of_header(h)) {
        let room = place.limit - obj.addr();
        if info.fixed_size <= room {
            // SAFETY: the length field lies in the fixed part, which is inside the limit.
            let len = unsafe { info.length_of(obj) };
            if let Some(size) = info.size_for(len).filter(|&size| size <= room) {
                return Ok((info, size + crate::object::forward::hash_word_bytes(h)));
            }
        }
    }
    Err(object_fault(types, obj, place))
}

/// What is wrong with the object [`object`] rejected.
#[cold]
#[inline(never)]
fn object_fault(types: &TypeRegistry, obj: ObjRef, place: Place) -> String {
    let addr = obj.addr();
    // SAFETY: `locate` found the header word in allocated, committed memory.
    let ty = unsafe { obj.type_id() };
    let Some(info) = types.get(ty) else {
        return format!("has unknown type id {:#x}: corrupt header", ty.0);
    };
    let room = place.limit - addr;
    let what = if place.large {
        "its large-object run"
    } else {
        "its block"
    };
    if info.fixed_size > room {
        return format!(
            "(type {}) has a {}-byte fixed part that runs past {what}",
            ty.0, info.fixed_size
        );
    }
    // SAFETY: the length field lies in the fixed part, which is inside the limit (above).
    let len = unsafe { info.length_of(obj) };
    match info.size_for(len) {
        None => format!(
            "(type {}) has length {len} whose size overflows: corrupt length",
            ty.0
        ),
        Some(size) => format!(
            "(type {}) has length {len}: its {size} bytes run past {what} ({room} bytes): \
             corrupt length",
            ty.0
        ),
    }
}
