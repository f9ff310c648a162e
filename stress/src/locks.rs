//! Striped spin locks that order the mutators' racing accesses to shared reference fields.
//!
//! Plain loads and stores of a field that several threads write are data races in the Rust
//! memory model (and ThreadSanitizer reports them), so the graph workload takes the lock of
//! a field's stripe around each access to a shared field. The accesses themselves still go
//! through `Mutator::read_ref`/`write_ref`, so they get the collector's barriers.
//!
//! A lock is held only across one or two field accesses, never across an allocation or a
//! safepoint poll, so a thread waiting for the world to stop never waits on a lock holder
//! that is itself stopped.

use std::sync::atomic::{AtomicBool, Ordering};
use tandem::{Mutator, ObjRef};

/// Locks for shared fields, chosen by the field's address.
#[derive(Debug)]
pub struct FieldLocks {
    stripes: Box<[AtomicBool]>,
}

impl FieldLocks {
    /// `stripes` locks (rounded up to a power of two).
    pub fn new(stripes: usize) -> FieldLocks {
        let n = stripes.next_power_of_two();
        FieldLocks {
            stripes: (0..n).map(|_| AtomicBool::new(false)).collect(),
        }
    }

    /// Runs `f` holding the lock of the field at `off` of `obj`. `f` must not allocate or
    /// poll the safepoint.
    pub fn with<R>(&self, obj: ObjRef, off: usize, f: impl FnOnce() -> R) -> R {
        let addr = obj.addr() + off;
        let i = crate::checksum::mix(addr as u64 >> 3) as usize & (self.stripes.len() - 1);
        let lock = &self.stripes[i];
        let mut spins = 0u32;
        // Acquire pairs with the Release below: the holder's field accesses happen before ours.
        while lock
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            spins += 1;
            if spins.is_multiple_of(64) {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        let r = f();
        lock.store(false, Ordering::Release);
        r
    }

    /// Loads the shared reference field at `off` of `obj`.
    ///
    /// # Safety
    /// `off` must be a reference field of the live object `obj`, and every other access to
    /// that field must go through these locks.
    pub unsafe fn read(&self, m: &mut Mutator, obj: ObjRef, off: usize) -> Option<ObjRef> {
        // SAFETY: caller's contract; the stripe lock orders us against other accesses.
        self.with(obj, off, || unsafe { m.read_ref(obj, off) })
    }

    /// Stores `v` into the shared reference field at `off` of `obj`.
    ///
    /// # Safety
    /// As for [`FieldLocks::read`].
    pub unsafe fn write(&self, m: &mut Mutator, obj: ObjRef, off: usize, v: Option<ObjRef>) {
        // SAFETY: as for `read`.
        self.with(obj, off, || unsafe { m.write_ref(obj, off, v) })
    }

    /// Stores `v` into the shared field at `off` of `obj` and returns what it held.
    ///
    /// # Safety
    /// As for [`FieldLocks::read`].
    pub unsafe fn swap(
        &self,
        m: &mut Mutator,
        obj: ObjRef,
        off: usize,
        v: Option<ObjRef>,
    ) -> Option<ObjRef> {
        // SAFETY: as for `read`.
        self.with(obj, off, || unsafe {
            let old = m.read_ref(obj, off);
            m.write_ref(obj, off, v);
            old
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripes_round_up_to_a_power_of_two() {
        assert_eq!(FieldLocks::new(1000).stripes.len(), 1024);
    }
}
