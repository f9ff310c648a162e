//! The large-object space: objects over [`super::LARGE_OBJECT_THRESHOLD`] get whole pages of
//! their own half of the reservation, never move, and are freed by returning the pages.
//!
//! Allocation takes a lock: large objects are rare next to TLAB bumps, and each one costs a
//! commit system call anyway.

use super::metadata::SideMetadata;
use super::vm::{Reservation, PAGE_SIZE};
use crate::error::Result;
use parking_lot::Mutex;
use std::collections::BTreeMap;

#[derive(Debug, Default)]
struct LosInner {
    /// Free page runs: start address -> length in bytes, coalesced.
    free: BTreeMap<usize, usize>,
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
    inner: Mutex<LosInner>,
}

impl LargeObjectSpace {
    /// An empty space over `[base, base+size)`.
    pub fn new(base: usize, size: usize) -> LargeObjectSpace {
        let mut inner = LosInner::default();
        inner.free.insert(base, size);
        LargeObjectSpace {
            base,
            size,
            inner: Mutex::new(inner),
        }
    }

    /// Bytes a request of `bytes` occupies (whole pages).
    pub fn footprint(bytes: usize) -> usize {
        bytes.div_ceil(PAGE_SIZE) * PAGE_SIZE
    }

    /// Commits zeroed pages for an object of `bytes`; None when no run of address space is
    /// large enough. The caller has already charged `footprint(bytes)` to the heap budget.
    pub fn alloc(
        &self,
        res: &Reservation,
        meta: &SideMetadata,
        bytes: usize,
    ) -> Result<Option<usize>> {
        let len = Self::footprint(bytes);
        let mut g = self.inner.lock();
        let Some((&start, &run)) = g.free.iter().find(|(_, &l)| l >= len) else {
            return Ok(None);
        };
        res.commit(start, len)?;
        g.free.remove(&start);
        if run > len {
            g.free.insert(start + len, run - len);
        }
        g.objects.insert(start, len);
        if g.alloc_black {
            meta.mark(start);
        }
        Ok(Some(start))
    }

    fn free_locked(g: &mut LosInner, res: &Reservation, addr: usize, len: usize) {
        res.release(addr, len);
        let (mut start, mut len) = (addr, len);
        if let Some((&p, &pl)) = g.free.range(..start).next_back() {
            if p + pl == start {
                g.free.remove(&p);
                start = p;
                len += pl;
            }
        }
        if let Some(&nl) = g.free.get(&(start + len)) {
            g.free.remove(&(start + len));
            len += nl;
        }
        g.free.insert(start, len);
    }

    /// Starts marking new objects (at the start of a concurrent cycle).
    pub fn set_alloc_black(&self) {
        self.inner.lock().alloc_black = true;
    }

    /// Frees every unmarked object and clears the marks of the rest; returns (bytes freed,
    /// bytes still live). Objects allocated from here on are unmarked again. Runs after
    /// marking is complete; allocation waits on the lock meanwhile.
    pub fn sweep(&self, res: &Reservation, meta: &SideMetadata) -> (usize, usize) {
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
            Self::free_locked(&mut g, res, a, l);
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
