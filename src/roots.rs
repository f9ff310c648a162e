//! Precise roots: per-mutator shadow stacks, registered global slots, and the VM's own
//! root-scanning callback.

use crate::error::{Error, Result};
use crate::heap::vm::{Reservation, PAGE_SIZE};
use crate::object::types::with_visitor;
use crate::object::VisitFn;
use crate::sync::Mutex;
use std::collections::HashMap;
use std::ffi::c_void;

/// The shadow-stack pointers the inline push/pop in `tandem.h` work on.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ShadowStackPtrs {
    /// One past the top root slot.
    pub top: *mut *mut u8,
    /// One past the last usable slot.
    pub limit: *mut *mut u8,
    /// The first slot.
    pub base: *mut *mut u8,
}

/// A mutator's shadow stack: a contiguous array of root slots in a lazily-backed mapping
/// of fixed capacity. It never moves, so the VM may keep pointers to its slots; a push past
/// the capacity is reported as an overflow.
#[derive(Debug)]
pub struct ShadowStack {
    map: Reservation,
    slots: usize,
}

impl ShadowStack {
    /// A stack of `slots` root slots.
    pub fn new(slots: usize) -> Result<ShadowStack> {
        let bytes = (slots * 8).div_ceil(PAGE_SIZE) * PAGE_SIZE;
        Ok(ShadowStack {
            map: Reservation::new(bytes, PAGE_SIZE, true)?,
            slots,
        })
    }

    /// Empty stack pointers for this mapping.
    pub fn ptrs(&self) -> ShadowStackPtrs {
        let base = self.map.base() as *mut *mut u8;
        ShadowStackPtrs {
            top: base,
            // SAFETY: `slots` slots fit in the mapping.
            limit: unsafe { base.add(self.slots) },
            base,
        }
    }
}

impl ShadowStackPtrs {
    /// Number of slots in use.
    #[inline]
    pub fn depth(&self) -> usize {
        (self.top as usize - self.base as usize) / 8
    }

    /// Pushes `v`; an error when the stack is full.
    // `v` is stored, never dereferenced.
    #[allow(clippy::not_unsafe_ptr_arg_deref)]
    #[inline]
    pub fn push(&mut self, v: *mut u8) -> Result<()> {
        if self.top == self.limit {
            return Err(Error::ShadowStack(format!(
                "overflow: all {} slots are in use (raise TANDEM_SHADOW_STACK)",
                self.depth()
            )));
        }
        // SAFETY: top < limit, inside the mapping.
        unsafe {
            self.top.write(v);
            self.top = self.top.add(1);
        }
        Ok(())
    }

    /// Pops the top slot; an error when the stack is empty.
    #[inline]
    pub fn pop(&mut self) -> Result<*mut u8> {
        if self.top == self.base {
            return Err(Error::ShadowStack("pop from an empty shadow stack".into()));
        }
        // SAFETY: base < top, so top-1 is a slot in use.
        unsafe {
            self.top = self.top.sub(1);
            Ok(self.top.read())
        }
    }

    /// Drops the slots above `depth`; an error, the stack left as it is, when `depth` is
    /// above the current depth.
    pub fn truncate(&mut self, depth: usize) -> Result<()> {
        if depth > self.depth() {
            return Err(Error::ShadowStack(format!(
                "cannot pop to depth {depth}: the shadow stack holds {}",
                self.depth()
            )));
        }
        // SAFETY: depth <= depth(), so base + depth lies within the slots in use.
        self.top = unsafe { self.base.add(depth) };
        Ok(())
    }

    /// The slot `depth` below the top (0 is the top); None past the bottom.
    #[inline]
    pub fn slot(&self, depth: usize) -> Option<*mut *mut u8> {
        (depth < self.depth()).then(|| {
            // SAFETY: depth < depth(), so the slot is in use.
            unsafe { self.top.sub(depth + 1) }
        })
    }

    /// Calls `f` on every slot in use.
    pub fn for_each_slot(&self, mut f: impl FnMut(*mut *mut u8)) {
        let mut p = self.base;
        while p < self.top {
            f(p);
            // SAFETY: p < top, inside the mapping.
            p = unsafe { p.add(1) };
        }
    }
}

/// A VM callback that reports extra roots: it must call `visit(slot, ctx)` for each.
pub type RootCallback = unsafe extern "C" fn(visit: VisitFn, ctx: *mut c_void, data: *mut c_void);

/// Global root slots and the VM's root callback.
#[derive(Debug, Default)]
pub struct GlobalRoots {
    slots: Mutex<SlotSet>,
    callback: Mutex<Option<(RootCallback, usize)>>,
}

/// The registered global slots: a list in registration order with each slot's position,
/// so that a VM registering many slots (a handle per native call) pays no scan of the
/// others on each add or remove, and both pauses of a cycle read the slots in the order
/// the VM laid them out. A hash set's order made each slot read a cache miss (1 M global
/// roots: 24-45 ms of each pause), and a B-tree's walk from leaf to leaf half of that.
#[derive(Debug, Default)]
struct SlotSet {
    list: Vec<usize>,
    position: HashMap<usize, usize>,
}

impl SlotSet {
    /// Adds `slot`; false when it is already in.
    fn insert(&mut self, slot: usize) -> bool {
        match self.position.entry(slot) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(self.list.len());
                self.list.push(slot);
                true
            }
        }
    }

    /// Removes `slot`; false when it was not in. The last slot takes its place.
    fn remove(&mut self, slot: usize) -> bool {
        let Some(i) = self.position.remove(&slot) else {
            return false;
        };
        self.list.swap_remove(i);
        if let Some(&moved) = self.list.get(i) {
            self.position.insert(moved, i);
        }
        true
    }
}

impl GlobalRoots {
    /// Registers `slot`, which the VM keeps valid until removed.
    pub fn add(&self, slot: *mut *mut u8) -> Result<()> {
        if slot.is_null() || !(slot as usize).is_multiple_of(8) {
            return Err(Error::InvalidArgument(format!(
                "root slot {slot:p} is null or not 8-aligned"
            )));
        }
        if !self.slots.lock().insert(slot as usize) {
            return Err(Error::Root(format!("slot {slot:p} is already registered")));
        }
        Ok(())
    }

    /// Unregisters `slot`.
    pub fn remove(&self, slot: *mut *mut u8) -> Result<()> {
        if !self.slots.lock().remove(slot as usize) {
            return Err(Error::Root(format!("slot {slot:p} was never registered")));
        }
        Ok(())
    }

    /// Sets (or clears) the VM's root callback and its data pointer.
    pub fn set_callback(&self, cb: Option<RootCallback>, data: *mut c_void) {
        *self.callback.lock() = cb.map(|f| (f, data as usize));
    }

    /// Calls `f` with the registered global slots' addresses (registering or removing one
    /// waits meanwhile).
    pub fn with_slots<R>(&self, f: impl FnOnce(&[usize]) -> R) -> R {
        f(&self.slots.lock().list)
    }

    /// Calls `f` on every slot the VM's root callback reports.
    pub fn for_each_callback_slot(&self, mut f: impl FnMut(*mut *mut u8)) {
        let cb = *self.callback.lock();
        if let Some((cb, data)) = cb {
            crate::callback::within("the root callback", || {
                // SAFETY: the VM's callback contract: it reports valid slots.
                with_visitor(&mut f, |visit, ctx| unsafe {
                    cb(visit, ctx, data as *mut c_void)
                })
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shadow_stack_pushes_pops_and_reports_overflow() {
        let s = ShadowStack::new(3).unwrap();
        let mut p = s.ptrs();
        // Capacity rounds up to a page of slots.
        let cap = (p.limit as usize - p.base as usize) / 8;
        assert_eq!(cap, 3);
        for i in 1..=3 {
            p.push(i as *mut u8).unwrap();
        }
        assert!(matches!(p.push(9 as *mut u8), Err(Error::ShadowStack(_))));
        // SAFETY: slot(0) is in use.
        assert_eq!(unsafe { *p.slot(0).unwrap() }, 3 as *mut u8);
        assert_eq!(p.pop().unwrap(), 3 as *mut u8);
        assert_eq!(p.depth(), 2);
        p.pop().unwrap();
        p.pop().unwrap();
        assert!(p.pop().is_err());
    }

    #[test]
    fn the_slot_set_keeps_positions_through_removals() {
        let mut s = SlotSet::default();
        for a in [8, 16, 24, 32] {
            assert!(s.insert(a));
        }
        assert!(!s.insert(16), "already in");
        assert!(s.remove(16));
        assert!(!s.remove(16), "gone");
        assert_eq!(s.list, [8, 32, 24], "the last took its place");
        assert!(s.remove(32), "found at its new position");
        assert!(s.remove(24) && s.remove(8));
        assert!(s.list.is_empty() && s.position.is_empty());
    }

    #[test]
    fn global_roots_reject_duplicates_and_unknown_slots() {
        let g = GlobalRoots::default();
        let mut a: *mut u8 = std::ptr::null_mut();
        g.add(&mut a).unwrap();
        assert!(g.add(&mut a).is_err());
        assert_eq!(g.with_slots(|s| s.len()), 1);
        g.remove(&mut a).unwrap();
        assert!(g.remove(&mut a).is_err());
    }
}
