//! A registered global root slot that unregisters itself when dropped.

use std::sync::atomic::{AtomicPtr, Ordering};
use tandem::{Heap, ObjRef};

/// One global root slot holding an object, registered with the heap for its lifetime.
#[derive(Debug)]
pub struct GlobalRoot {
    heap: Heap,
    slot: Box<AtomicPtr<u8>>,
}

impl GlobalRoot {
    /// Registers a new slot holding `obj`.
    pub fn new(heap: &Heap, obj: ObjRef) -> tandem::Result<GlobalRoot> {
        let slot = Box::new(AtomicPtr::new(obj.as_ptr()));
        // SAFETY: the box stays at one address until `drop`, which unregisters the slot
        // before the box is freed; it always holds null or a live object.
        unsafe { heap.add_root(slot.as_ptr())? };
        Ok(GlobalRoot {
            heap: heap.clone(),
            slot,
        })
    }

    /// The object the slot holds now.
    #[inline]
    pub fn get(&self) -> Option<ObjRef> {
        // Relaxed: the slot is written before the worker threads start (ordered by spawn)
        // and otherwise only by the collector while the world is stopped (ordered by the
        // safepoint protocol).
        ObjRef::from_ptr(self.slot.load(Ordering::Relaxed))
    }
}

impl Drop for GlobalRoot {
    fn drop(&mut self) {
        if let Err(e) = self.heap.remove_root(self.slot.as_ptr()) {
            tracing::error!("cannot unregister a global root: {e}");
        }
    }
}
