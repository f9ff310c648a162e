//! The type table, shaped like RPython's type info: fixed size, var-size item size and the
//! offset of the length field, offsets of references in the fixed part and in each item,
//! flags, and an optional trace callback for irregular layouts.
//!
//! Registration takes a lock (it happens once per type); lookups are one acquire load, so
//! markers consult the table per object without contention.

use super::{align_up, ObjRef, HEADER_SIZE};
use crate::error::{Error, Result};
use crate::sync::{AtomicPtr, AtomicU32, Mutex, Ordering};
use std::ffi::c_void;

/// Called by a trace callback for each reference slot of an object.
pub type VisitFn = unsafe extern "C" fn(slot: *mut *mut u8, ctx: *mut c_void);
/// A type's own tracer: must call `visit(slot, ctx)` for every reference slot of `obj`.
pub type TraceFn = unsafe extern "C" fn(obj: *mut u8, visit: VisitFn, ctx: *mut c_void);
/// Called once for each dead object of a type, on a GC thread, before its memory is
/// freed; it must not allocate or touch other GC objects.
pub type DestructorFn = unsafe extern "C" fn(obj: *mut u8);

/// Calls `call` with a C visitor function and context that forward each slot to `f`.
///
/// A panic in `f` (or a slot the VM's callback made up: null or misaligned) must not
/// unwind through the VM's C frames, which would abort the process: the visitor catches
/// it, ignores the remaining slots, and re-raises it once `call` has returned, so the
/// collector fails with the message instead.
pub fn with_visitor<F: FnMut(*mut *mut u8), R>(
    f: &mut F,
    call: impl FnOnce(VisitFn, *mut c_void) -> R,
) -> R {
    struct Visitor<'a, F> {
        f: &'a mut F,
        panic: Option<Box<dyn std::any::Any + Send>>,
    }
    unsafe extern "C" fn tramp<F: FnMut(*mut *mut u8)>(slot: *mut *mut u8, ctx: *mut c_void) {
        // SAFETY: ctx is the `Visitor` passed below, alive for the duration of `call`.
        let v = unsafe { &mut *(ctx as *mut Visitor<'_, F>) };
        if v.panic.is_some() {
            return;
        }
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            assert!(
                !slot.is_null() && (slot as usize).is_multiple_of(std::mem::align_of::<usize>()),
                "a trace callback visited an invalid slot address {slot:p}"
            );
            (v.f)(slot)
        }));
        if let Err(p) = r {
            v.panic = Some(p);
        }
    }
    let mut v = Visitor { f, panic: None };
    let r = call(tramp::<F>, &mut v as *mut Visitor<'_, F> as *mut c_void);
    if let Some(p) = v.panic {
        std::panic::resume_unwind(p);
    }
    r
}

/// A registered type's id. Id 0 is never valid, so zeroed memory is never a typed object.
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TypeId(pub u32);

impl TypeId {
    /// The type id an object's header word `h` holds (its high half).
    #[inline(always)]
    pub fn of_header(h: u64) -> TypeId {
        TypeId((h >> 32) as u32)
    }
}

/// Most types a heap can register.
pub const MAX_TYPES: usize = 1 << 16;

/// Slots of the table: [`MAX_TYPES`], except in loom models, where every slot is a modelled
/// atomic and a full table would cost each runtime a model builds ~0.1 s and 65,536 loom
/// objects (as tokio shrinks its queues under loom). The protocol is the same at any size.
#[cfg(not(loom))]
const TABLE_SLOTS: usize = MAX_TYPES;
#[cfg(loom)]
const TABLE_SLOTS: usize = 16;

/// The layout of one type, as the VM describes it.
#[derive(Debug, Clone, Default)]
pub struct TypeInfo {
    /// Bytes of the fixed part, header included (at least 8).
    pub fixed_size: usize,
    /// Bytes per item of the variable part; 0 for fixed-size types. Items start at
    /// `fixed_size`.
    pub item_size: usize,
    /// Offset of the `usize` length field in the fixed part (var-size types only); the
    /// allocator writes the length there.
    pub length_offset: usize,
    /// Offsets of reference fields in the fixed part.
    pub ref_offsets: Vec<usize>,
    /// Offsets of reference fields inside each item.
    pub item_ref_offsets: Vec<usize>,
    /// VM-defined flags, kept for the VM (weakref, finalizer, ... in later versions).
    pub flags: u32,
    /// A tracer used instead of the offsets, for irregular layouts.
    pub trace: Option<TraceFn>,
    /// Called once for each dead object of this type (see [`DestructorFn`]).
    pub destructor: Option<DestructorFn>,
}

impl TypeInfo {
    /// Whether objects of this type carry a length and items.
    #[inline(always)]
    pub fn is_varsize(&self) -> bool {
        self.item_size != 0
    }

    /// Object size for `length` items, rounded up to 8; None on overflow.
    #[inline]
    pub fn size_for(&self, length: usize) -> Option<usize> {
        let items = self.item_size.checked_mul(length)?;
        align_up(self.fixed_size.checked_add(items)?)
    }

    /// The length stored in `obj` (0 for fixed-size types).
    ///
    /// # Safety
    /// `obj` must be a live object of this type.
    #[inline]
    pub unsafe fn length_of(&self, obj: ObjRef) -> usize {
        if self.is_varsize() {
            // SAFETY: validated registration puts an aligned usize at length_offset.
            unsafe { obj.field::<usize>(self.length_offset).read() }
        } else {
            0
        }
    }

    /// The size of `obj` from its length field (without a hash word a move added); None
    /// when the length is corrupt (the size overflows).
    ///
    /// # Safety
    /// `obj` must be a live object of this type.
    #[inline]
    pub unsafe fn size_of(&self, obj: ObjRef) -> Option<usize> {
        // SAFETY: forwarded.
        self.size_for(unsafe { self.length_of(obj) })
    }

    /// Calls `f` on every reference slot of `obj`.
    ///
    /// # Safety
    /// `obj` must be a live, initialised object of this type.
    #[inline]
    pub unsafe fn for_each_slot(&self, obj: ObjRef, f: impl FnMut(*mut *mut u8)) {
        // SAFETY: caller's contract.
        unsafe { self.for_each_slot_in(obj, 0..usize::MAX, f) }
    }

    /// How many items of `obj` a tracer may visit in slices ([`TypeInfo::for_each_slot_in`]):
    /// its length when its items hold references and the type has no tracer of its own
    /// (which visits the whole object at once), else 0.
    ///
    /// # Safety
    /// `obj` must be a live object of this type.
    #[inline]
    pub unsafe fn sliceable_items(&self, obj: ObjRef) -> usize {
        if self.trace.is_some() || self.item_ref_offsets.is_empty() {
            0
        } else {
            // SAFETY: caller's contract.
            unsafe { self.length_of(obj) }
        }
    }

    /// Calls `f` on the reference slots of the items of `obj` in `items` (past its length:
    /// none), and on the fixed part's slots when `items` starts at 0. A type with its own
    /// tracer has every slot visited when `items` starts at 0 and none otherwise, so slices
    /// `0..n, n..2n, ..` visit each slot once whatever the type.
    ///
    /// # Safety
    /// `obj` must be a live, initialised object of this type.
    #[inline]
    pub unsafe fn for_each_slot_in(
        &self,
        obj: ObjRef,
        items: std::ops::Range<usize>,
        mut f: impl FnMut(*mut *mut u8),
    ) {
        if let Some(trace) = self.trace {
            if items.start == 0 {
                crate::callback::within("a type's trace function", || {
                    // SAFETY: the VM's tracer promises to visit only slots of `obj`.
                    with_visitor(&mut f, |visit, ctx| unsafe {
                        trace(obj.as_ptr(), visit, ctx)
                    })
                });
            }
            return;
        }
        // SAFETY: caller's contract.
        let len = unsafe { self.sliceable_items(obj) };
        let end = items.end.min(len);
        // One loop over groups of slots, the fixed part's and then each item's, so that `f`
        // has one call site here and the tracer's per-slot work inlines into it. `next` is
        // the item after the group in hand.
        let (mut base, mut offsets, mut next) = if items.start == 0 {
            (0, &self.ref_offsets[..], 0)
        } else if items.start < end {
            (
                self.fixed_size + items.start * self.item_size,
                &self.item_ref_offsets[..],
                items.start + 1,
            )
        } else {
            return;
        };
        loop {
            for &off in offsets {
                // SAFETY: offsets were validated against fixed_size and item_size at
                // registration, and item `next - 1` lies inside the object (its size was
                // computed from its length).
                f(unsafe { obj.field(base + off) });
            }
            if next >= end {
                return;
            }
            (base, offsets) = (
                self.fixed_size + next * self.item_size,
                &self.item_ref_offsets[..],
            );
            next += 1;
        }
    }

    /// Whether the word at `offset` of `obj` is one of its reference slots; None for a
    /// type with its own tracer (its slots are known only by visiting them).
    ///
    /// # Safety
    /// `obj` must be a live object of this type.
    pub unsafe fn ref_slot_at(&self, obj: ObjRef, offset: usize) -> Option<bool> {
        if self.trace.is_some() {
            return None;
        }
        if offset < self.fixed_size {
            return Some(self.ref_offsets.contains(&offset));
        }
        if self.item_ref_offsets.is_empty() {
            return Some(false);
        }
        let (item, within) = (
            (offset - self.fixed_size) / self.item_size,
            (offset - self.fixed_size) % self.item_size,
        );
        // SAFETY: caller's contract.
        let items = unsafe { self.length_of(obj) };
        Some(item < items && self.item_ref_offsets.contains(&within))
    }

    /// Checks that the description is self-consistent.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::BadType(m));
        if self.fixed_size < HEADER_SIZE {
            return bad(format!(
                "fixed_size {} is smaller than the 8-byte header",
                self.fixed_size
            ));
        }
        if self.fixed_size > u32::MAX as usize || self.item_size > u32::MAX as usize {
            return bad("fixed_size and item_size must fit in 32 bits".into());
        }
        for &off in &self.ref_offsets {
            if off < HEADER_SIZE || off % 8 != 0 || off + 8 > self.fixed_size {
                return bad(format!(
                    "reference offset {off} must be 8-aligned, past the header and inside \
                     the fixed part of {} bytes",
                    self.fixed_size
                ));
            }
        }
        if self.is_varsize() {
            let lo = self.length_offset;
            if lo < HEADER_SIZE || !lo.is_multiple_of(8) || lo + 8 > self.fixed_size {
                return bad(format!(
                    "length_offset {lo} must be 8-aligned, past the header and inside the \
                     fixed part of {} bytes",
                    self.fixed_size
                ));
            }
            if self.ref_offsets.contains(&lo) {
                return bad(format!("length_offset {lo} is also a reference offset"));
            }
        } else if !self.item_ref_offsets.is_empty() {
            return bad("item_ref_offsets given for a type with item_size 0".into());
        } else if self.length_offset != 0 {
            return bad(format!(
                "length_offset {} given for a type with item_size 0 (fixed-size types have no \
                 length field)",
                self.length_offset
            ));
        }
        for (what, offs) in [
            ("reference offset", &self.ref_offsets),
            ("item reference offset", &self.item_ref_offsets),
        ] {
            if let Some(d) = offs
                .iter()
                .enumerate()
                .find_map(|(i, o)| offs[..i].contains(o).then_some(o))
            {
                return bad(format!("{what} {d} is given twice"));
            }
        }
        if !self.item_ref_offsets.is_empty()
            && (!self.fixed_size.is_multiple_of(8) || !self.item_size.is_multiple_of(8))
        {
            return bad(
                "types with item references need fixed_size and item_size multiples of 8".into(),
            );
        }
        for &off in &self.item_ref_offsets {
            if off % 8 != 0 || off + 8 > self.item_size {
                return bad(format!(
                    "item reference offset {off} must be 8-aligned and inside the {}-byte item",
                    self.item_size
                ));
            }
        }
        Ok(())
    }
}

/// The table of registered types.
#[derive(Debug)]
pub struct TypeRegistry {
    slots: Box<[AtomicPtr<TypeInfo>]>,
    count: AtomicU32,
    lock: Mutex<()>,
}

impl Default for TypeRegistry {
    fn default() -> Self {
        TypeRegistry {
            slots: (0..TABLE_SLOTS)
                .map(|_| AtomicPtr::new(std::ptr::null_mut()))
                .collect(),
            count: AtomicU32::new(1),
            lock: Mutex::new(()),
        }
    }
}

impl TypeRegistry {
    /// Registers `info` and returns its id.
    pub fn register(&self, info: TypeInfo) -> Result<TypeId> {
        info.validate()?;
        let _g = self.lock.lock();
        let id = self.count.load(Ordering::Relaxed);
        if id as usize >= TABLE_SLOTS {
            return Err(Error::BadType(format!(
                "the type table is full ({TABLE_SLOTS} types)"
            )));
        }
        let p = Box::into_raw(Box::new(info));
        // Release pairs with the Acquire in `get`: a reader that sees the pointer sees the
        // whole TypeInfo.
        self.slots[id as usize].store(p, Ordering::Release);
        self.count.store(id + 1, Ordering::Release);
        Ok(TypeId(id))
    }

    /// The type registered as `id`.
    #[inline(always)]
    pub fn get(&self, id: TypeId) -> Option<&TypeInfo> {
        let p = self.slots.get(id.0 as usize)?.load(Ordering::Acquire);
        // SAFETY: non-null slots hold leaked boxes freed only when the registry drops.
        unsafe { p.as_ref() }
    }

    /// The type registered as `id`, or an error naming it.
    pub fn lookup(&self, id: TypeId) -> Result<&TypeInfo> {
        self.get(id).ok_or(Error::UnknownType(id.0))
    }

    /// Number of registered types.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Acquire) as usize - 1
    }

    /// Whether no type is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for TypeRegistry {
    fn drop(&mut self) {
        // Only slots below `count` were ever filled (`register` fills them in order).
        let filled = self.count.load(Ordering::Relaxed) as usize;
        for s in &self.slots[..filled] {
            let p = s.load(Ordering::Relaxed);
            if !p.is_null() {
                // SAFETY: each non-null slot is a Box we leaked in `register`, dropped once.
                drop(unsafe { Box::from_raw(p) });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_up_and_detect_overflow() {
        let t = TypeInfo {
            fixed_size: 20,
            item_size: 3,
            length_offset: 8,
            ..Default::default()
        };
        t.validate().unwrap();
        assert_eq!(t.size_for(0), Some(24));
        assert_eq!(t.size_for(5), Some(40));
        assert_eq!(t.size_for(usize::MAX / 2), None);
    }

    /// header | length | ref | data, then items of ref | data | ref.
    fn items_type() -> TypeInfo {
        TypeInfo {
            fixed_size: 32,
            ref_offsets: vec![16],
            item_size: 24,
            item_ref_offsets: vec![0, 16],
            length_offset: 8,
            ..Default::default()
        }
    }

    #[test]
    fn every_slot_is_visited_once_fixed_part_first_then_item_by_item() {
        let t = items_type();
        t.validate().unwrap();
        let mut words = [0u64; 4 + 3 * 3];
        words[1] = 3;
        let obj = ObjRef::from_ptr(words.as_mut_ptr().cast()).unwrap();
        let mut seen = Vec::new();
        // SAFETY: `words` is laid out as an object of type `t` with 3 items.
        unsafe { t.for_each_slot(obj, |s| seen.push(s as usize - obj.addr())) };
        assert_eq!(seen, [16, 32, 48, 56, 72, 80, 96]);
        // SAFETY: the length word of the object above.
        unsafe { *obj.field::<usize>(8) = 0 };
        seen.clear();
        // SAFETY: as above, with no items.
        unsafe { t.for_each_slot(obj, |s| seen.push(s as usize - obj.addr())) };
        assert_eq!(seen, [16]);
    }

    #[test]
    fn slices_of_items_visit_each_slot_once_the_fixed_part_with_the_first() {
        let t = items_type();
        let mut words = [0u64; 4 + 3 * 5];
        words[1] = 5;
        let obj = ObjRef::from_ptr(words.as_mut_ptr().cast()).unwrap();
        // SAFETY: `words` is laid out as an object of type `t` with 5 items.
        assert_eq!(unsafe { t.sliceable_items(obj) }, 5);
        let slice = |r: std::ops::Range<usize>| {
            let mut seen = Vec::new();
            // SAFETY: as above.
            unsafe { t.for_each_slot_in(obj, r, |s| seen.push(s as usize - obj.addr())) };
            seen
        };
        assert_eq!(slice(0..2), [16, 32, 48, 56, 72]);
        assert_eq!(slice(2..4), [80, 96, 104, 120]);
        assert_eq!(slice(4..6), [128, 144], "clamped to the length");
        assert!(slice(6..8).is_empty(), "past the length");
        let mut whole = Vec::new();
        // SAFETY: as above.
        unsafe { t.for_each_slot(obj, |s| whole.push(s as usize - obj.addr())) };
        assert_eq!(whole, [slice(0..2), slice(2..4), slice(4..6)].concat());
        let plain = TypeInfo {
            fixed_size: 24,
            ref_offsets: vec![8, 16],
            ..Default::default()
        };
        // SAFETY: `words` holds a fixed-size object of 3 words too.
        assert_eq!(unsafe { plain.sliceable_items(obj) }, 0, "no items");
    }

    #[test]
    fn malformed_types_are_rejected_with_reasons() {
        let cases = [
            TypeInfo {
                fixed_size: 4,
                ..Default::default()
            },
            TypeInfo {
                fixed_size: 16,
                ref_offsets: vec![0],
                ..Default::default()
            },
            TypeInfo {
                fixed_size: 16,
                ref_offsets: vec![12],
                ..Default::default()
            },
            TypeInfo {
                fixed_size: 16,
                ref_offsets: vec![16],
                ..Default::default()
            },
            TypeInfo {
                fixed_size: 16,
                item_size: 8,
                length_offset: 16,
                ..Default::default()
            },
            TypeInfo {
                fixed_size: 16,
                item_ref_offsets: vec![0],
                ..Default::default()
            },
            TypeInfo {
                fixed_size: 24,
                item_size: 8,
                length_offset: 8,
                item_ref_offsets: vec![8],
                ..Default::default()
            },
        ];
        for c in cases {
            assert!(matches!(c.validate(), Err(Error::BadType(_))), "{c:?}");
        }
    }

    #[test]
    fn registry_hands_out_distinct_nonzero_ids() {
        let r = TypeRegistry::default();
        let a = r
            .register(TypeInfo {
                fixed_size: 16,
                ..Default::default()
            })
            .unwrap();
        let b = r
            .register(TypeInfo {
                fixed_size: 32,
                ..Default::default()
            })
            .unwrap();
        assert!(a.0 != 0 && a != b);
        assert_eq!(r.get(b).unwrap().fixed_size, 32);
        assert!(r.get(TypeId(0)).is_none());
        assert!(matches!(r.lookup(TypeId(99)), Err(Error::UnknownType(99))));
    }
}
