//! The large-object space: objects over [`super::LARGE_OBJECT_THRESHOLD`] get whole pages of
//! their own half of the reservation, never move, and are freed by returning the pages.
//!
//! Allocation takes a lock: large objects are rare next to TLAB bumps. Freed runs are kept
//! committed in a small warm cache (up to `warm_cap` bytes) and reused after a memset, since
//! returning pages to the OS and faulting fresh zeroed ones back in costs far more than
//! clearing them for churning workloads. With verification on there is no warm cache: every
//! freed run is made inaccessible, so a use after free faults at once.
//!
//! Warm runs are committed memory, so they stay charged to the heap's [`Budget`]; when a
//! charge would pass the maximum, the warm cache is given back first.

use super::budget::Budget;
use super::metadata::SideMetadata;
use super::vm::{Reservation, PAGE_SIZE};
use crate::error::Result;
use parking_lot::Mutex;
use std::collections::BTreeMap;

#[derive(Debug, Default)]
struct LosInner {
    /// Free page runs, not committed: start address -> length in bytes, coalesced.
    free: BTreeMap<usize, usize>,
    /// Free page runs still committed (dirty): start -> length, coalesced among themselves.
    warm: BTreeMap<usize, usize>,
    warm_bytes: usize,
    /// Live objects: start address -> committed length in bytes.
    objects: BTreeMap<usize, usize>,
    /// Mark new objects (from the start of marking until this space is swept).
    alloc_black: bool,
}

/// The large-object space over `[base, base+size)`.
#[derive(Debug)]
pub struct LargeObjectSpace {
    base: usize,
    size: usize,
    warm_cap: usize,
    inner: Mutex<LosInner>,
}

impl LargeObjectSpace {
    /// An empty space over `[base, base+size)` keeping up to `warm_cap` freed bytes
    /// committed for reuse.
    pub fn new(base: usize, size: usize, warm_cap: usize) -> LargeObjectSpace {
        let mut inner = LosInner::default();
        inner.free.insert(base, size);
        LargeObjectSpace {
            base,
            size,
            warm_cap,
            inner: Mutex::new(inner),
        }
    }

    /// Bytes a request of `bytes` occupies (whole pages).
    pub fn footprint(bytes: usize) -> usize {
        bytes.div_ceil(PAGE_SIZE) * PAGE_SIZE
    }

    /// Commits zeroed pages for an object of `bytes`, charging fresh pages to `budget`; None
    /// when no run of address space is large enough or the budget is spent even without
    /// the warm cache.
    pub fn alloc(
        &self,
        res: &Reservation,
        meta: &SideMetadata,
        budget: &Budget,
        bytes: usize,
    ) -> Result<Option<usize>> {
        let len = Self::footprint(bytes);
        let mut g = self.inner.lock();
        let start = match Self::take_run(&mut g.warm, len) {
            Some(start) => {
                // Already charged: warm runs count as committed.
                g.warm_bytes -= len;
                // SAFETY: a committed free run of at least `len` bytes owned by this lock.
                unsafe { std::ptr::write_bytes(start as *mut u8, 0, bytes) };
                start
            }
            None => {
                if !g.free.values().any(|&l| l >= len) {
                    // The warm runs may be what fragments the space: give them back.
                    Self::drop_warm_locked(&mut g, res, budget);
                }
                if !budget.try_charge(len) {
                    Self::drop_warm_locked(&mut g, res, budget);
                    if !budget.try_charge(len) {
                        return Ok(None);
                    }
                }
                let Some(start) = Self::take_run(&mut g.free, len) else {
                    budget.uncharge(len);
                    return Ok(None);
                };
                if let Err(e) = res.commit(start, len) {
                    Self::insert_run(&mut g.free, start, len);
                    budget.uncharge(len);
                    return Err(e);
                }
                start
            }
        };
        g.objects.insert(start, len);
        if g.alloc_black {
            meta.mark(start);
        }
        Ok(Some(start))
    }

    /// Takes `len` bytes from the first run of `runs` that holds them.
    fn take_run(runs: &mut BTreeMap<usize, usize>, len: usize) -> Option<usize> {
        let (&start, &run) = runs.iter().find(|(_, &l)| l >= len)?;
        runs.remove(&start);
        if run > len {
            runs.insert(start + len, run - len);
        }
        Some(start)
    }

    /// Inserts a run, coalescing it with its neighbours.
    fn insert_run(runs: &mut BTreeMap<usize, usize>, addr: usize, len: usize) {
        let (mut start, mut len) = (addr, len);
        if let Some((&p, &pl)) = runs.range(..start).next_back() {
            if p + pl == start {
                runs.remove(&p);
                start = p;
                len += pl;
            }
        }
        if let Some(&nl) = runs.get(&(start + len)) {
            runs.remove(&(start + len));
            len += nl;
        }
        runs.insert(start, len);
    }

    fn release_locked(
        g: &mut LosInner,
        res: &Reservation,
        budget: &Budget,
        addr: usize,
        len: usize,
    ) {
        res.release(addr, len);
        budget.uncharge(len);
        Self::insert_run(&mut g.free, addr, len);
    }

    /// Returns every warm run to the OS; the bytes given back.
    fn drop_warm_locked(g: &mut LosInner, res: &Reservation, budget: &Budget) -> usize {
        let warm = std::mem::take(&mut g.warm);
        g.warm_bytes = 0;
        warm.into_iter()
            .map(|(a, l)| {
                Self::release_locked(g, res, budget, a, l);
                l
            })
            .sum()
    }

    /// Returns the warm cache to the OS (to make room in the budget); the bytes given back.
    pub fn drop_warm(&self, res: &Reservation, budget: &Budget) -> usize {
        Self::drop_warm_locked(&mut self.inner.lock(), res, budget)
    }

    fn free_locked(
        &self,
        g: &mut LosInner,
        res: &Reservation,
        budget: &Budget,
        addr: usize,
        len: usize,
    ) {
        if g.warm_bytes + len <= self.warm_cap {
            g.warm_bytes += len;
            Self::insert_run(&mut g.warm, addr, len);
        } else {
            Self::release_locked(g, res, budget, addr, len);
        }
    }

    /// Starts marking new objects (at the start of a concurrent cycle).
    pub fn set_alloc_black(&self) {
        self.inner.lock().alloc_black = true;
    }

    /// Frees every unmarked object and clears the marks of the rest, uncharging what goes
    /// back to the OS; returns (bytes freed, bytes still live). Objects allocated from here
    /// on are unmarked again. Runs after marking is complete; allocation waits on the lock
    /// meanwhile.
    pub fn sweep(&self, res: &Reservation, meta: &SideMetadata, budget: &Budget) -> (usize, usize) {
        let mut g = self.inner.lock();
        g.alloc_black = false;
        let dead: Vec<(usize, usize)> = g
            .objects
            .iter()
            .filter(|(&a, _)| !meta.is_marked(a))
            .map(|(&a, &l)| (a, l))
            .collect();
        let mut freed = 0;
        for (a, l) in dead {
            g.objects.remove(&a);
            self.free_locked(&mut g, res, budget, a, l);
            freed += l;
        }
        let mut live = 0;
        for (&a, &l) in g.objects.iter() {
            meta.unmark(a);
            live += l;
        }
        (freed, live)
    }

    /// Whether `addr` is the start of a live large object.
    pub fn contains(&self, addr: usize) -> bool {
        self.inner.lock().objects.contains_key(&addr)
    }

    /// Whether `addr` falls in this space's address range.
    #[inline]
    pub fn in_range(&self, addr: usize) -> bool {
        addr.wrapping_sub(self.base) < self.size
    }

    /// Number of live large objects.
    pub fn len(&self) -> usize {
        self.inner.lock().objects.len()
    }

    /// Whether the space holds no object.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
