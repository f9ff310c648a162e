//! The object model: one header word per object, references, and the type table.
//!
//! Header word (8 bytes, at offset 0 of every object):
//! ```text
//!  63            32 31        24 23        8 7      2 1 0
//! +----------------+------------+------------+--------+---+
//! |    type id     |  (unused)  | pin count  | flags  |tag|
//! +----------------+------------+------------+--------+---+
//! ```
//! Flags: 2 HASHED, 3 HASHED_MOVED, 4 PINNED (for life: non-moving allocation, or the id
//! was taken), 5 LOGGED, 6 LOGGING (the object barrier, `barriers::log`), 7 STAYS
//! (`forward`), 24 NO_DESTRUCTOR (`refs`).
//! The low two bits are the forwarding tag (see [`forward`]): once an object is copied,
//! its old header holds the new address instead. A reference points at the header.
//! Objects are 8-byte aligned and their sizes rounded up to 8.

pub mod forward;
pub mod pin;
pub mod types;

pub use types::{DestructorFn, TraceFn, TypeId, TypeInfo, TypeRegistry, VisitFn};

use crate::sync::raw::{AtomicPtr, AtomicU64};
use crate::sync::Ordering;
use std::ptr::NonNull;

/// Size of the header word.
pub const HEADER_SIZE: usize = 8;
/// Object alignment.
pub const ALIGN: usize = 8;
/// Header flag: the identity hash was taken.
pub const FLAG_HASHED: u64 = 1 << 2;
/// Header flag: the object was moved after its hash was taken.
pub const FLAG_HASHED_MOVED: u64 = 1 << 3;
/// Header flag: the object must not move.
pub const FLAG_PINNED: u64 = 1 << 4;
/// Header flag: the object's fields were logged by the object barrier this cycle.
pub const FLAG_LOGGED: u64 = 1 << 5;
/// Header flag: neither the destructor nor a finalizer queue sees this object when it
/// dies (`Mutator::ignore_finalizer`).
pub const FLAG_NO_DESTRUCTOR: u64 = 1 << 24;
/// Header flag (generational mode): an old object that is not in the remembered set, so
/// the REMEMBER barrier must record it before a reference is stored into it. Set on every
/// object a marker scans (it is old from then on) and on large objects allocated black;
/// cleared by the barrier that records the object.
pub const FLAG_REMEMBER: u64 = 1 << 25;
/// Header flag (generational mode): a large object allocated during the running cycle's
/// marking, live for this cycle but young, so markers do not mark it (a mark would make it
/// old, though its initialising stores went around the barriers); its cycle's sweep clears
/// the flag.
pub const FLAG_NEW_LARGE: u64 = 1 << 26;
/// Mask of the flag bits.
pub const FLAGS_MASK: u64 = 0xFFFF_FFFF;

/// Builds a header word.
#[inline(always)]
pub const fn make_header(ty: TypeId, flags: u64) -> u64 {
    ((ty.0 as u64) << 32) | (flags & FLAGS_MASK)
}

/// Rounds `n` up to the object alignment; None on overflow.
#[inline(always)]
pub const fn align_up(n: usize) -> Option<usize> {
    match n.checked_add(ALIGN - 1) {
        Some(v) => Some(v & !(ALIGN - 1)),
        None => None,
    }
}

/// A reference to a managed object: the address of its header, never null.
#[repr(transparent)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjRef(NonNull<u8>);

// SAFETY: an ObjRef is an address; sharing it between threads is what a GC'd heap is for.
// Access to the object's memory is governed by the VM and the barriers, not by this type.
unsafe impl Send for ObjRef {}
// SAFETY: as above; the reference itself is immutable.
unsafe impl Sync for ObjRef {}

impl std::fmt::Debug for ObjRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ObjRef({:#x})", self.addr())
    }
}

impl ObjRef {
    /// The reference at `addr`, or None for 0.
    #[inline(always)]
    pub fn from_addr(addr: usize) -> Option<ObjRef> {
        NonNull::new(addr as *mut u8).map(ObjRef)
    }

    /// The reference held in a raw pointer, or None for null.
    #[inline(always)]
    pub fn from_ptr(p: *mut u8) -> Option<ObjRef> {
        NonNull::new(p).map(ObjRef)
    }

    /// The object's address.
    #[inline(always)]
    pub fn addr(self) -> usize {
        self.0.as_ptr() as usize
    }

    /// The object's address as a pointer.
    #[inline(always)]
    pub fn as_ptr(self) -> *mut u8 {
        self.0.as_ptr()
    }

    /// The header word as an atomic.
    ///
    /// # Safety
    /// `self` must refer to a live object.
    #[inline(always)]
    pub unsafe fn header(self) -> &'static AtomicU64 {
        // SAFETY: the caller guarantees a live, 8-aligned object whose first word is the header.
        unsafe { &*(self.addr() as *const AtomicU64) }
    }

    /// The object's type id.
    ///
    /// # Safety
    /// `self` must refer to a live object.
    #[inline(always)]
    pub unsafe fn type_id(self) -> TypeId {
        // SAFETY: forwarded to the caller's contract.
        TypeId::of_header(unsafe { self.header() }.load(Ordering::Relaxed))
    }

    /// A pointer to the field at byte offset `off`.
    ///
    /// # Safety
    /// `off` plus the field's size must lie inside the object.
    #[inline(always)]
    pub unsafe fn field<T>(self, off: usize) -> *mut T {
        // SAFETY: in bounds by the caller's contract.
        unsafe { self.as_ptr().add(off) as *mut T }
    }

    /// Loads the reference field at `off` (no barrier; atomic, acquire).
    ///
    /// # Safety
    /// `off` must be a reference field of a live object.
    #[inline(always)]
    pub unsafe fn load_ref(self, off: usize) -> Option<ObjRef> {
        // SAFETY: caller's contract; reference fields are 8-aligned pointer words.
        let slot = unsafe { &*self.field::<AtomicPtr<u8>>(off) };
        // Acquire pairs with the Release in `store_ref`: whoever loads a reference sees the
        // object as it was when the reference was stored (its header, its fields).
        ObjRef::from_ptr(slot.load(Ordering::Acquire))
    }

    /// Stores into the reference field at `off` (no barrier; atomic, release).
    ///
    /// # Safety
    /// `off` must be a reference field of a live object.
    #[inline(always)]
    pub unsafe fn store_ref(self, off: usize, v: Option<ObjRef>) {
        let p = v.map_or(std::ptr::null_mut(), ObjRef::as_ptr);
        // SAFETY: caller's contract; reference fields are 8-aligned pointer words.
        let slot = unsafe { &*self.field::<AtomicPtr<u8>>(off) };
        // Release: see `load_ref`. Reference fields are atomic words because GC threads
        // read them while mutators write them (concurrent marking), and VMs may race.
        slot.store(p, Ordering::Release)
    }
}
