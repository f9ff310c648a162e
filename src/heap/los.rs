//! The large-object space: objects over [`super::LARGE_OBJECT_THRESHOLD`] get whole pages of
//! their own half of the reservation, never move, and are freed by returning the pages.
//!
//! Allocation takes a lock: large objects are rare next to TLAB bumps. Freed runs are kept
//! committed in a warm cache and reused after a memset (done outside the lock, by a thread
//! that the collector need not wait for: see [`LargeRun`]), since returning pages to the OS
//! and faulting fresh zeroed ones back in costs far more than clearing them for churning
//! workloads. Like the block space's idle chunks, a warm run goes back to the OS once it has
//! stayed unused for one to two `TANDEM_UNCOMMIT_DELAY`s (the uncommit thread ages the
//! cache: [`LargeObjectSpace::release_aged`]); with no delay, the cache is capped at
//! `warm_cap` bytes instead (it was capped at 64 MB always: churning arrays of up to 4 MB,
//! 35 MB live, faulted 2 GB back in over 10 GB allocated). Warm runs are committed memory,
//! so they stay charged to the heap's [`Budget`]; when a charge would pass the maximum, the
//! warm cache is given back first.
//!
//! With verification on there is no warm cache: instead every freed run stays committed,
//! filled with the poison pattern, and is reused only when no uncommitted run fits; a write
//! through a dangling pointer then breaks the poison (reported by the verifier, or when the
//! run is reused) instead of faulting, and a read finds poison rather than a plausible
//! object. Those runs are not charged to the heap budget: verification trades memory for
//! diagnosis, within a bound ([`QUARANTINE_SHARE`]).

use super::blocks::{find_unpoisoned, poison_range};
use super::budget::Budget;
use super::metadata::SideMetadata;
use super::vm::{Reservation, PAGE_SIZE};
use crate::error::Result;
use crate::sync::Ordering;
use parking_lot::Mutex;
use std::collections::BTreeMap;

/// Under verification, the most bytes of freed runs kept poisoned: this share of the heap's
/// maximum, at least [`QUARANTINE_MIN`]. Past it the whole quarantine is checked (broken
/// poison is reported as at reuse) and returned to the OS. Unbounded, freed runs stayed
/// until no uncommitted run fitted: the large workload held the whole large-object half of
/// the reservation resident (1 GiB of RSS for 33 MB of heap).
const QUARANTINE_SHARE: usize = 8;
/// See [`QUARANTINE_SHARE`].
const QUARANTINE_MIN: usize = 16 << 20;

#[derive(Debug, Default)]
struct LosInner {
    /// Free page runs, not committed: start address -> length in bytes, coalesced.
    free: BTreeMap<usize, usize>,
    /// Free page runs still committed (dirty): start -> length, coalesced among themselves.
    warm: BTreeMap<usize, usize>,
    /// Warm runs of the previous aging period ([`LargeObjectSpace::release_aged`]), given
    /// back to the OS at the end of this one unless reused first.
    warm_old: BTreeMap<usize, usize>,
    /// Bytes in `warm` and `warm_old`.
    warm_bytes: usize,
    /// When `warm` began to collect runs (the current aging period).
    aged_at: Option<std::time::Instant>,
    /// Live objects: start address -> committed length in bytes.
    objects: BTreeMap<usize, usize>,
    /// Mark new objects (from the start of marking until this space is swept).
    alloc_black: bool,
    /// Sticky marks (generational mode): objects allocated black are listed here instead
    /// of marked, so that the sweep keeps them and they stay young.
    black: Vec<usize>,
    /// Bytes of the objects the last sweep kept because they were allocated during marking.
    swept_black: usize,
    /// Without sticky marks: bytes of the objects allocated (marked) since marking began.
    black_bytes: usize,
    /// Under verification: freed runs kept committed and poisoned, start -> length.
    poisoned: BTreeMap<usize, usize>,
    /// Their total length.
    poisoned_bytes: usize,
    /// Poison found broken when a poisoned run was reused, kept for the next verification.
    broken: Vec<BrokenPoison>,
}

/// Pages taken for a large object and not yet registered: in no map of the space, so no
/// other thread, allocation or sweep can reach them, and clearing them needs no lock and
/// may run while the collector runs. The mutator clears in a native region, so a stop never
/// waits for it: a reused warm run needs a memset, and a fresh run's pages, zero but not yet
/// faulted in, are touched there too, which keeps their page faults (thousands for a
/// multi-megabyte array) out of the VM's code between two polls (large/t2 with arrays up to
/// 16 MiB: pause p50 7-8 ms -> 25 us). The price: a large object is resident from its
/// allocation on, as after a memset by the VM. A fork in the middle leaves the run to
/// nobody in the child (its pages stay charged there).
#[derive(Debug)]
#[must_use = "a taken run is lost unless registered"]
pub struct LargeRun {
    start: usize,
    len: usize,
    bytes: usize,
    clear: bool,
    /// A reused warm run: its pages are resident and hold an old object's bytes.
    warm: bool,
}

impl LargeRun {
    /// The run's first byte (the object's address once registered).
    pub fn start(&self) -> usize {
        self.start
    }

    /// Whether the run is still to be cleared (a reused warm run, or fresh pages not yet
    /// touched); false when the space cleared it already.
    pub fn needs_clearing(&self) -> bool {
        self.clear
    }

    /// Zeroes the object's bytes (faulting fresh pages in) if it needs clearing.
    pub fn clear(&self) {
        if self.clear {
            // SAFETY: committed pages that this run alone holds (they are in no map).
            unsafe { std::ptr::write_bytes(self.start as *mut u8, 0, self.bytes) };
        }
    }

    /// Readies the run for an object whose bytes the VM writes itself: a warm run is left
    /// as it is (resident, holding an old object's bytes), a fresh one is cleared, which
    /// faults its pages in here rather than in the VM's code (see the type's doc).
    pub fn prepare_uninit(&self) {
        if !self.warm {
            self.clear();
        }
    }
}

/// Freed large-object memory that was written after it was freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokenPoison {
    /// Start of the poisoned run.
    pub run: usize,
    /// Its length in bytes.
    pub len: usize,
    /// Index of the first word that is not poison.
    pub word: usize,
    /// That word's value.
    pub value: u64,
    /// Whether it was found outside a verification: when the run was reused for a new
    /// object, or returned to the OS as the quarantine filled.
    pub on_reuse: bool,
}

impl std::fmt::Display for BrokenPoison {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "freed large object memory {:#x} (+{:#x}) was written after it was freed: word {} \
             ({:#x}) is {:#x}{}",
            self.run,
            self.len,
            self.word,
            self.run + 8 * self.word,
            self.value,
            if self.on_reuse {
                " (found when the run was reused or returned to the OS)"
            } else {
                ""
            }
        )
    }
}

/// What an address of the large-object space holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LargeSlot {
    /// The start of a live object whose run is `len` bytes.
    Object {
        /// Committed length of the object's run.
        len: usize,
    },
    /// Inside the live object that starts at `start`, but not at its start.
    Inside {
        /// Start of that object.
        start: usize,
    },
    /// Memory of an object that was freed (poisoned or cached), not yet reused.
    Freed,
    /// Memory that holds no object.
    Unused,
}

/// The large-object space over `[base, base+size)`.
#[derive(Debug)]
pub struct LargeObjectSpace {
    base: usize,
    size: usize,
    warm_cap: usize,
    poison: Option<u64>,
    sticky: bool,
    inner: Mutex<LosInner>,
}

impl LargeObjectSpace {
    /// An empty space over `[base, base+size)` keeping up to `warm_cap` freed bytes
    /// committed for reuse; with `poison`, freed runs are instead kept committed and filled
    /// with that pattern until reused (verification).
    pub fn new(base: usize, size: usize, warm_cap: usize, poison: Option<u64>) -> LargeObjectSpace {
        let mut inner = LosInner::default();
        inner.free.insert(base, size);
        LargeObjectSpace {
            base,
            size,
            warm_cap: if poison.is_some() { 0 } else { warm_cap },
            poison,
            sticky: false,
            inner: Mutex::new(inner),
        }
    }

    /// Generational mode: marks are sticky (an object a marking reached stays marked, old),
    /// so an object allocated during marking is kept by the sweep without a mark, young.
    pub fn with_sticky_marks(mut self, sticky: bool) -> LargeObjectSpace {
        self.sticky = sticky;
        self
    }

    /// Bytes a request of `bytes` occupies (whole pages).
    pub fn footprint(bytes: usize) -> usize {
        bytes.div_ceil(PAGE_SIZE) * PAGE_SIZE
    }

    /// Takes pages for an object of `bytes` (see [`LargeRun`]), charging fresh pages to
    /// `budget`; None when no run of address space is large enough or the budget is spent
    /// even without the warm cache.
    pub fn take(
        &self,
        res: &Reservation,
        budget: &Budget,
        bytes: usize,
    ) -> Result<Option<LargeRun>> {
        let taken = self.take_pages(&mut self.inner.lock(), res, budget, bytes)?;
        Ok(taken.map(|(start, clear, warm)| LargeRun {
            start,
            len: Self::footprint(bytes),
            bytes,
            clear,
            warm,
        }))
    }

    /// Makes a cleared run whose header word is written an object and returns its address.
    /// During marking it is allocated black: marked, or with sticky marks listed for the
    /// sweep to keep and flagged `FLAG_NEW_LARGE` (young, and not to be marked this cycle)
    /// until that sweep.
    pub fn register(&self, meta: &SideMetadata, run: LargeRun) -> usize {
        let mut g = self.inner.lock();
        g.objects.insert(run.start, run.len);
        if g.alloc_black && self.sticky {
            g.black.push(run.start);
            // SAFETY: the object's header word, written by its allocator; the sweep clears
            // the flag under this lock.
            let h = unsafe { &*(run.start as *const crate::sync::raw::AtomicU64) };
            h.fetch_or(crate::object::FLAG_NEW_LARGE, Ordering::Relaxed);
        } else if g.alloc_black {
            meta.mark(run.start);
            g.black_bytes += run.len;
        }
        run.start
    }

    /// Takes, clears and registers an object of `bytes` in one go.
    #[cfg(test)]
    fn alloc(
        &self,
        res: &Reservation,
        meta: &SideMetadata,
        budget: &Budget,
        bytes: usize,
    ) -> Result<Option<usize>> {
        Ok(self.take(res, budget, bytes)?.map(|run| {
            run.clear();
            self.register(meta, run)
        }))
    }

    /// Takes a run of pages for an object of `bytes` out of every map, with whether it is
    /// still to be cleared and whether it is warm: a warm one (already charged), a fresh
    /// one (zero, not yet touched) or, under verification, a poisoned one (checked and
    /// zeroed here).
    fn take_pages(
        &self,
        g: &mut LosInner,
        res: &Reservation,
        budget: &Budget,
        bytes: usize,
    ) -> Result<Option<(usize, bool, bool)>> {
        let len = Self::footprint(bytes);
        let warm =
            Self::take_run(&mut g.warm, len).or_else(|| Self::take_run(&mut g.warm_old, len));
        if let Some(start) = warm {
            // Already charged: warm runs count as committed.
            g.warm_bytes -= len;
            return Ok(Some((start, true, true)));
        }
        if !g.free.values().any(|&l| l >= len) {
            // The warm runs may be what fragments the space: give them back.
            Self::drop_warm_locked(g, res, budget);
        }
        if !budget.try_charge(len) {
            Self::drop_warm_locked(g, res, budget);
            if !budget.try_charge(len) {
                return Ok(None);
            }
        }
        // Under verification freed runs wait poisoned: reuse one when no uncommitted run
        // fits.
        if !g.free.values().any(|&l| l >= len) {
            if let Some(start) = self.reuse_poisoned(g, res, bytes) {
                return Ok(Some((start, false, false)));
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
        Ok(Some((start, true, false)))
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
        budget.uncharge(len);
        Self::unmap_locked(g, res, addr, len);
    }

    /// Returns a run that is not charged to the budget (a poisoned one) to the OS.
    fn unmap_locked(g: &mut LosInner, res: &Reservation, addr: usize, len: usize) {
        res.release(addr, len);
        Self::insert_run(&mut g.free, addr, len);
    }

    /// Returns every warm run to the OS; the bytes given back.
    fn drop_warm_locked(g: &mut LosInner, res: &Reservation, budget: &Budget) -> usize {
        let mut warm = std::mem::take(&mut g.warm);
        warm.append(&mut g.warm_old);
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

    /// Ends an aging period of the warm cache once `delay` has passed since the last one
    /// ended: returns to the OS the runs that were warm already when it began and have not
    /// been reused since (idle for one to two periods), and starts the next with the runs
    /// freed during it. Called by the uncommit thread; the bytes given back. The madvise
    /// runs outside the lock: the runs are in no map meanwhile, so nobody takes them.
    pub fn release_aged(
        &self,
        res: &Reservation,
        budget: &Budget,
        now: std::time::Instant,
        delay: std::time::Duration,
    ) -> usize {
        let old = {
            let mut g = self.inner.lock();
            let since = *g.aged_at.get_or_insert(now);
            if now.saturating_duration_since(since) < delay {
                return 0;
            }
            g.aged_at = Some(now);
            let warm = std::mem::take(&mut g.warm);
            let old = std::mem::replace(&mut g.warm_old, warm);
            g.warm_bytes -= old.values().sum::<usize>();
            old
        };
        for (&a, &l) in &old {
            res.release(a, l);
        }
        let mut g = self.inner.lock();
        old.into_iter()
            .map(|(a, l)| {
                budget.uncharge(l);
                Self::insert_run(&mut g.free, a, l);
                l
            })
            .sum()
    }

    fn free_locked(
        &self,
        g: &mut LosInner,
        res: &Reservation,
        budget: &Budget,
        addr: usize,
        len: usize,
    ) {
        if let Some(p) = self.poison {
            poison_range(addr, len, p);
            // Not charged while poisoned: verification trades memory for diagnosis.
            budget.uncharge(len);
            Self::insert_run(&mut g.poisoned, addr, len);
            g.poisoned_bytes += len;
            if g.poisoned_bytes > (budget.max() / QUARANTINE_SHARE).max(QUARANTINE_MIN) {
                Self::flush_poisoned(g, res, p);
            }
        } else if g.warm_bytes + len <= self.warm_cap {
            g.warm_bytes += len;
            Self::insert_run(&mut g.warm, addr, len);
        } else {
            Self::release_locked(g, res, budget, addr, len);
        }
    }

    /// Starts marking new objects (at the start of a concurrent cycle).
    pub fn set_alloc_black(&self) {
        let mut g = self.inner.lock();
        g.alloc_black = true;
        g.black_bytes = 0;
    }

    /// Frees every unmarked object (with sticky marks, but for those allocated during this
    /// marking) and clears the marks of the rest (not with sticky marks: they stay old),
    /// uncharging what goes back to the OS; returns (bytes freed, bytes still live).
    /// Objects allocated from here on are unmarked again. Runs after marking is complete;
    /// allocation waits on the lock meanwhile.
    pub fn sweep(&self, res: &Reservation, meta: &SideMetadata, budget: &Budget) -> (usize, usize) {
        let mut g = self.inner.lock();
        g.alloc_black = false;
        let black: std::collections::HashSet<usize> =
            std::mem::take(&mut g.black).into_iter().collect();
        for &a in &black {
            // SAFETY: a registered object, live (allocated during this cycle); its header
            // word is written by its allocator before anyone else can reach it.
            let h = unsafe { &*(a as *const crate::sync::raw::AtomicU64) };
            h.fetch_and(!crate::object::FLAG_NEW_LARGE, Ordering::Relaxed);
        }
        // Without sticky marks the objects allocated during marking are marked and kept like
        // the ones tracing reached; their bytes were counted as they came.
        let marked_black = std::mem::take(&mut g.black_bytes);
        g.swept_black = marked_black + black.iter().filter_map(|a| g.objects.get(a)).sum::<usize>();
        let dead: Vec<(usize, usize)> = g
            .objects
            .iter()
            .filter(|(&a, _)| !meta.is_marked(a) && !black.contains(&a))
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
            if !self.sticky {
                meta.unmark(a);
            }
            live += l;
        }
        (freed, live)
    }

    /// Bytes the last sweep kept only because they were allocated during marking: floating
    /// garbage for the pacer, not survivors (those among them still reachable are traced
    /// by the next cycle).
    pub fn swept_black_bytes(&self) -> usize {
        self.inner.lock().swept_black
    }

    /// Clears the mark of every large object (generational mode, before a full cycle).
    pub fn unmark_all(&self, meta: &SideMetadata) {
        let g = self.inner.lock();
        for &a in g.objects.keys() {
            meta.unmark(a);
        }
    }

    /// Under verification, when no uncommitted run fits `bytes`: reuses a poisoned run that
    /// does (checking its poison, then zeroing it), or, when none does, checks and releases
    /// every poisoned run so that they coalesce with the uncommitted ones. The run of the
    /// reused object is `footprint(bytes)` long.
    fn reuse_poisoned(&self, g: &mut LosInner, res: &Reservation, bytes: usize) -> Option<usize> {
        let p = self.poison?;
        let len = Self::footprint(bytes);
        let Some(start) = Self::take_run(&mut g.poisoned, len) else {
            Self::flush_poisoned(g, res, p);
            return None;
        };
        g.poisoned_bytes -= len;
        Self::check_run(g, start, len, p, true);
        // SAFETY: a committed free run of `len >= bytes` bytes owned by this lock.
        unsafe { std::ptr::write_bytes(start as *mut u8, 0, bytes) };
        Some(start)
    }

    /// Checks every poisoned run (broken poison is recorded as found at reuse) and returns
    /// them to the OS, where they coalesce with the uncommitted runs.
    fn flush_poisoned(g: &mut LosInner, res: &Reservation, p: u64) {
        for (a, l) in std::mem::take(&mut g.poisoned) {
            Self::check_run(g, a, l, p, true);
            Self::unmap_locked(g, res, a, l);
        }
        g.poisoned_bytes = 0;
    }

    /// Records broken poison in `[run, run+len)`.
    fn check_run(g: &mut LosInner, run: usize, len: usize, p: u64, on_reuse: bool) {
        if let Some((word, value)) = find_unpoisoned(run, len, p) {
            g.broken.push(BrokenPoison {
                run,
                len,
                word,
                value,
                on_reuse,
            });
        }
    }

    /// Freed memory written after it was freed: what reuse found since the last call, then
    /// every poisoned run whose poison is broken now. Empty unless verification is on.
    pub fn broken_poison(&self) -> Vec<BrokenPoison> {
        let Some(p) = self.poison else {
            return Vec::new();
        };
        let mut g = self.inner.lock();
        let runs: Vec<(usize, usize)> = g.poisoned.iter().map(|(&a, &l)| (a, l)).collect();
        for (a, l) in runs {
            Self::check_run(&mut g, a, l, p, false);
        }
        std::mem::take(&mut g.broken)
    }

    /// What `addr`, an address of this space, holds.
    pub fn slot_at(&self, addr: usize) -> LargeSlot {
        let g = self.inner.lock();
        let inside = |runs: &BTreeMap<usize, usize>| {
            runs.range(..=addr)
                .next_back()
                .filter(|(&s, &l)| addr < s + l)
                .map(|(&s, &l)| (s, l))
        };
        match inside(&g.objects) {
            Some((s, len)) if s == addr => LargeSlot::Object { len },
            Some((start, _)) => LargeSlot::Inside { start },
            None if inside(&g.poisoned).is_some()
                || inside(&g.warm).is_some()
                || inside(&g.warm_old).is_some() =>
            {
                LargeSlot::Freed
            }
            None => LargeSlot::Unused,
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heap::POISON;

    const SPACE: usize = 16 * PAGE_SIZE;

    fn space() -> (Reservation, SideMetadata, LargeObjectSpace, Budget) {
        let res = Reservation::new(SPACE, PAGE_SIZE, false).unwrap();
        let meta = SideMetadata::new(res.base(), SPACE, 0).unwrap();
        let los = LargeObjectSpace::new(res.base(), SPACE, 0, Some(POISON));
        (res, meta, los, Budget::new(SPACE))
    }

    #[test]
    fn warm_runs_go_back_after_one_to_two_periods_unless_reused() {
        let res = Reservation::new(SPACE, PAGE_SIZE, false).unwrap();
        let meta = SideMetadata::new(res.base(), SPACE, 0).unwrap();
        let los = LargeObjectSpace::new(res.base(), SPACE, usize::MAX, None);
        let budget = Budget::new(SPACE);
        let (t0, period) = (std::time::Instant::now(), std::time::Duration::from_secs(5));
        let at = |periods: u32| t0 + period * periods;
        let a = los
            .alloc(&res, &meta, &budget, 2 * PAGE_SIZE)
            .unwrap()
            .unwrap();
        let b = los
            .alloc(&res, &meta, &budget, 3 * PAGE_SIZE)
            .unwrap()
            .unwrap();
        assert_eq!(
            los.release_aged(&res, &budget, at(0), period),
            0,
            "first period"
        );
        los.sweep(&res, &meta, &budget);
        assert_eq!(
            budget.committed(),
            5 * PAGE_SIZE,
            "freed runs stay committed"
        );
        assert_eq!(los.release_aged(&res, &budget, at(1), period), 0, "now old");
        // One of the old runs is reused before its period ends.
        let c = los
            .alloc(&res, &meta, &budget, 2 * PAGE_SIZE)
            .unwrap()
            .unwrap();
        assert_eq!(c, a, "the warm run first");
        assert_eq!(
            los.release_aged(&res, &budget, at(1) + period / 2, period),
            0,
            "not yet due"
        );
        assert_eq!(
            los.release_aged(&res, &budget, at(2), period),
            3 * PAGE_SIZE,
            "the unused one goes back"
        );
        assert_eq!(budget.committed(), 2 * PAGE_SIZE);
        assert_eq!(los.slot_at(b), LargeSlot::Unused);
        los.sweep(&res, &meta, &budget);
        assert_eq!(los.release_aged(&res, &budget, at(3), period), 0);
        assert_eq!(
            los.release_aged(&res, &budget, at(4), period),
            2 * PAGE_SIZE
        );
        assert_eq!(budget.committed(), 0);
    }

    #[test]
    fn freed_runs_stay_poisoned_and_a_write_into_one_is_found() {
        let (res, meta, los, budget) = space();
        let a = los
            .alloc(&res, &meta, &budget, 3 * PAGE_SIZE)
            .unwrap()
            .unwrap();
        los.sweep(&res, &meta, &budget);
        assert_eq!(los.slot_at(a + 8), LargeSlot::Freed);
        assert!(los.broken_poison().is_empty());
        // SAFETY: the freed run stays committed under poisoning.
        unsafe { *((a + 16) as *mut u64) = 7 };
        let b = los.broken_poison();
        assert_eq!(b.len(), 1);
        assert_eq!(
            (b[0].run, b[0].word, b[0].value, b[0].on_reuse),
            (a, 2, 7, false)
        );
    }

    #[test]
    fn a_poisoned_run_is_checked_and_zeroed_when_reused() {
        let (res, meta, los, budget) = space();
        let a = los.alloc(&res, &meta, &budget, SPACE).unwrap().unwrap();
        los.sweep(&res, &meta, &budget);
        // SAFETY: the freed run stays committed under poisoning.
        unsafe { *((a + PAGE_SIZE) as *mut u64) = 9 };
        // No uncommitted run is left, so the poisoned one is reused.
        let b = los
            .alloc(&res, &meta, &budget, 2 * PAGE_SIZE)
            .unwrap()
            .unwrap();
        assert_eq!(b, a);
        assert_eq!(los.slot_at(b), LargeSlot::Object { len: 2 * PAGE_SIZE });
        // SAFETY: the new object's zeroed memory.
        assert_eq!(unsafe { *((b + 8) as *const u64) }, 0);
        let broken = los.broken_poison();
        assert_eq!(broken.len(), 1);
        assert!(broken[0].on_reuse, "{}", broken[0]);
        assert!(broken[0]
            .to_string()
            .contains("found when the run was reused"));
    }

    #[test]
    fn the_quarantine_of_freed_runs_is_bounded_and_checked_when_returned() {
        const BIG: usize = 64 << 20;
        let res = Reservation::new(BIG, PAGE_SIZE, false).unwrap();
        let meta = SideMetadata::new(res.base(), BIG, 0).unwrap();
        let los = LargeObjectSpace::new(res.base(), BIG, 0, Some(POISON));
        let budget = Budget::new(BIG);
        let cap = (BIG / QUARANTINE_SHARE).max(QUARANTINE_MIN);
        let mut first = 0;
        for i in 0..24 {
            let a = los.alloc(&res, &meta, &budget, 1 << 20).unwrap().unwrap();
            if i == 0 {
                first = a;
            }
            los.sweep(&res, &meta, &budget);
            if i == 0 {
                // SAFETY: the freed run stays committed while it is in the quarantine.
                unsafe { *((a + 8) as *mut u64) = 5 };
            }
            assert!(los.inner.lock().poisoned_bytes <= cap, "round {i}");
        }
        let broken = los.broken_poison();
        assert_eq!(
            broken.len(),
            1,
            "the write was found when its run was returned"
        );
        assert_eq!((broken[0].run, broken[0].word), (first, 1));
    }

    #[test]
    fn objects_allocated_during_marking_are_kept_and_counted_as_floating_garbage() {
        let (res, meta, los, budget) = space();
        let old = los.alloc(&res, &meta, &budget, PAGE_SIZE).unwrap().unwrap();
        meta.mark(old);
        los.set_alloc_black();
        let new = los
            .alloc(&res, &meta, &budget, 2 * PAGE_SIZE)
            .unwrap()
            .unwrap();
        let (freed, live) = los.sweep(&res, &meta, &budget);
        assert_eq!((freed, live), (0, 3 * PAGE_SIZE), "both kept");
        assert_eq!(
            los.swept_black_bytes(),
            2 * PAGE_SIZE,
            "the object allocated black is not counted as a survivor"
        );
        assert_eq!(los.slot_at(new), LargeSlot::Object { len: 2 * PAGE_SIZE });
        // Nothing marked and nothing allocated black: both die, none is floating garbage.
        let (freed, live) = los.sweep(&res, &meta, &budget);
        assert_eq!(
            (freed, live, los.swept_black_bytes()),
            (3 * PAGE_SIZE, 0, 0)
        );
    }
}
