//! Striped spin locks for the benchmark's graph workload, which runs on libgc as well as
//! Tandem: libgc's fields are plain words, so racing accesses to a shared field must be
//! ordered by a lock, and both collectors pay for the same locking. (The stress `graph`
//! workload needs none: Tandem's reference fields are atomic words.)
//!
//! A lock is held only across one or two field accesses, never across an allocation or a
//! safepoint poll, so a thread waiting for the world to stop never waits on a lock holder
//! that is itself stopped.

use std::sync::atomic::{AtomicBool, Ordering};
use tandem::ObjRef;

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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripes_round_up_to_a_power_of_two() {
        assert_eq!(FieldLocks::new(1000).stripes.len(), 1024);
    }
}
