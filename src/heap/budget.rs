//! The committed-memory budget: every byte either space holds committed (live blocks, free
//! and idle chunks, large objects and the large-object space's warm cache) is charged here
//! before it is committed and uncharged after it is returned, so the total never exceeds
//! the heap maximum and the peak is the true high-water mark.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes committed now and at most, against a fixed maximum.
#[derive(Debug)]
pub struct Budget {
    committed: AtomicUsize,
    peak: AtomicUsize,
    max: AtomicUsize,
}

impl Budget {
    /// An empty budget of `max` bytes.
    pub fn new(max: usize) -> Budget {
        Budget {
            committed: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            max: AtomicUsize::new(max),
        }
    }

    /// Bytes charged now.
    pub fn committed(&self) -> usize {
        self.committed.load(Ordering::Relaxed)
    }

    /// The most bytes ever charged at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// The maximum.
    pub fn max(&self) -> usize {
        self.max.load(Ordering::Relaxed)
    }

    /// Changes the maximum (memory charged above a lowered one stays until returned).
    pub fn set_max(&self, max: usize) {
        self.max.store(max, Ordering::Relaxed);
    }

    /// Charges `n` bytes unless that would pass the maximum; false then, and nothing changes.
    pub fn try_charge(&self, n: usize) -> bool {
        let mut cur = self.committed.load(Ordering::Relaxed);
        loop {
            if cur + n > self.max() {
                return false;
            }
            // Relaxed: this counter is a budget, not a publication point.
            match self.committed.compare_exchange_weak(
                cur,
                cur + n,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    self.peak.fetch_max(cur + n, Ordering::Relaxed);
                    return true;
                }
                Err(c) => cur = c,
            }
        }
    }

    /// Returns `n` charged bytes (after the memory went back to the OS).
    pub fn uncharge(&self, n: usize) {
        let old = self.committed.fetch_sub(n, Ordering::Relaxed);
        debug_assert!(old >= n, "uncharging {n} bytes of {old}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_stop_at_the_maximum_and_peak_remembers() {
        let b = Budget::new(100);
        assert!(b.try_charge(60));
        assert!(!b.try_charge(41));
        assert!(b.try_charge(40));
        b.uncharge(70);
        assert_eq!((b.committed(), b.peak()), (30, 100));
    }
}
