//! The heap: one reserved virtual range split into an Immix block space (chunks of 32 KiB
//! blocks of 256 B lines) and a large-object space, plus side metadata for both.
//!
//! ```text
//! base                      base+immix_size                 base+2*immix_size
//! | chunk | chunk | ...     | large objects (page runs) ... |
//! ```
//! An address is in the heap when `base <= a < end`: two compares. Chunks are committed on
//! demand; a chunk a sweep finds empty idles, and goes back to the OS only after it stayed
//! idle for the uncommit delay with the heap above its minimum (see [`uncommit`]).
//! Committed bytes of both spaces together, the large-object warm cache included, never
//! exceed the configured maximum (see [`budget`]).

pub mod blocks;
pub mod bridge;
pub mod budget;
pub mod los;
pub mod metadata;
pub mod reclaim;
pub mod sweep;
pub mod uncommit;
pub mod vm;

use crate::config::Config;
use crate::error::Result;
use blocks::BlockPools;
use budget::Budget;
use los::{LargeObjectSpace, LargeRun};
use metadata::{BlockState, SideMetadata};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;
use uncommit::ChunkState;
use vm::Reservation;

/// Bytes per chunk, the unit of commit and release.
pub const CHUNK_SIZE: usize = 4 << 20;
/// Bytes per Immix block.
pub const BLOCK_SIZE: usize = 32 << 10;
/// Bytes per line.
pub const LINE_SIZE: usize = 256;
/// Lines per block.
pub const LINES_PER_BLOCK: usize = BLOCK_SIZE / LINE_SIZE;
/// Blocks per chunk.
pub const BLOCKS_PER_CHUNK: usize = CHUNK_SIZE / BLOCK_SIZE;
/// Every heap address is below `1 << ADDRESS_BITS` (checked when the heap is reserved), so
/// that a word can hold one with 16 bits to spare (`refs::finalize::Registration`).
pub const ADDRESS_BITS: u32 = 48;
/// Objects larger than this go to the large-object space.
pub const LARGE_OBJECT_THRESHOLD: usize = 8 << 10;
/// How long an allocator whose pools are dry waits for a begun sweep to be offered before
/// it commits a fresh chunk (see `Space::await_sweep_offer`).
const SWEEP_OFFER_PATIENCE: Duration = Duration::from_millis(1);

thread_local! {
    /// Whether this thread is one of the collector's own (see [`enter_collector_thread`]).
    static COLLECTOR_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks the calling thread as one of the collector's own (its control thread and
/// workers), which allocate only to copy objects and never wait for a sweep offer.
pub fn enter_collector_thread() {
    COLLECTOR_THREAD.with(|c| c.set(true));
}

/// The pattern written over free memory when verification is on.
pub const POISON: u64 = 0xBADD_F00D_DEAD_BEEF;

/// The whole managed address range and its accounting.
#[derive(Debug)]
pub struct Space {
    res: Reservation,
    /// Mark bits, line marks and block tables.
    pub meta: SideMetadata,
    immix_base: usize,
    immix_size: usize,
    end: usize,
    /// The large-object space.
    pub los: LargeObjectSpace,
    /// Free and recyclable blocks.
    pub pools: BlockPools,
    /// What each chunk is; taken only to commit, park, unpark or release a chunk.
    chunks: Mutex<Vec<ChunkState>>,
    /// Held while a chunk is released, and by readers of idle chunks (taken before `chunks`).
    release_gate: Mutex<()>,
    /// The sweep allocators may help with, while one runs.
    sweep: Mutex<Option<std::sync::Arc<sweep::ChunkSweep>>>,
    budget: Budget,
    in_use: AtomicUsize,
    heap_min: usize,
    uncommit_delay: Duration,
    epoch: AtomicU8,
    /// Generational mode: mark bits are sticky.
    generational: bool,
    /// Generational mode: the cycle of the current epoch is a nursery cycle.
    nursery: std::sync::atomic::AtomicBool,
    /// Sweeps begun so far (each in a pause): a block held across a native region may be
    /// used only if no sweep began meanwhile (see `alloc::Slow::Clear`).
    sweeps: AtomicU64,
    /// A sweep has begun (its pause emptied the pools) and is not offered to allocators
    /// yet; see [`Space::await_sweep_offer`].
    sweep_pending: std::sync::atomic::AtomicBool,
    poison: bool,
}

impl Space {
    /// Reserves address space for a heap of `config.heap_max` bytes.
    pub fn new(config: &Config) -> Result<Space> {
        let immix_size = config.heap_max.0.div_ceil(CHUNK_SIZE) * CHUNK_SIZE;
        let total = 2 * immix_size;
        let res = Reservation::new(total, CHUNK_SIZE, false)?;
        if config.huge_pages {
            res.advise_huge_pages();
        }
        let base = res.base();
        if base + total > 1 << ADDRESS_BITS {
            return Err(crate::Error::Os(format!(
                "the heap was reserved at {base:#x}, above the {ADDRESS_BITS}-bit addresses \
                 Tandem packs into words"
            )));
        }
        let meta = SideMetadata::new(base, total, immix_size)?;
        Ok(Space {
            // Under verification freed large objects are poisoned, not cached (see `los`).
            los: LargeObjectSpace::new(
                base + immix_size,
                immix_size,
                if config.uncommit_delay.is_zero() {
                    // Nothing ages the cache: bound it.
                    (config.heap_max.0 / 16).min(64 << 20)
                } else {
                    // The uncommit thread returns what stays unused (`release_aged`).
                    usize::MAX
                },
                config.verify.then_some(POISON),
            )
            .with_sticky_marks(config.generational),
            res,
            meta,
            immix_base: base,
            immix_size,
            end: base + total,
            pools: BlockPools::default(),
            chunks: Mutex::new(vec![ChunkState::Uncommitted; immix_size / CHUNK_SIZE]),
            release_gate: Mutex::new(()),
            sweep: Mutex::new(None),
            budget: Budget::new(config.heap_max.0),
            in_use: AtomicUsize::new(0),
            heap_min: config.heap_min.0,
            uncommit_delay: config.uncommit_delay,
            epoch: AtomicU8::new(1),
            generational: config.generational,
            nursery: std::sync::atomic::AtomicBool::new(false),
            sweeps: AtomicU64::new(0),
            sweep_pending: std::sync::atomic::AtomicBool::new(false),
            poison: config.verify,
        })
    }

    /// Whether `a` lies in the managed range (either space).
    #[inline(always)]
    pub fn in_heap(&self, a: usize) -> bool {
        a >= self.immix_base && a < self.end
    }

    /// Whether `a` lies in the Immix block space.
    #[inline(always)]
    pub fn in_immix(&self, a: usize) -> bool {
        a.wrapping_sub(self.immix_base) < self.immix_size
    }

    /// Whether `a` lies in a block of the collection set (an object there moves this cycle).
    #[inline(always)]
    pub fn in_cset(&self, a: usize) -> bool {
        self.in_immix(a) && self.meta.in_cset(self.block_of(a))
    }

    /// The line mark of the line holding Immix address `a`.
    #[inline(always)]
    pub fn line_mark(&self, a: usize) -> u8 {
        // Relaxed: line marks are stamped by markers and read by the sweep after the phase
        // barrier; a marker's own test only needs some value the line had this cycle.
        self.meta.line(self.line_of(a)).load(Ordering::Relaxed)
    }

    /// Block index of an Immix address.
    #[inline(always)]
    pub fn block_of(&self, a: usize) -> usize {
        (a - self.immix_base) / BLOCK_SIZE
    }

    /// Line index (from the Immix base) of an Immix address.
    #[inline(always)]
    pub fn line_of(&self, a: usize) -> usize {
        (a - self.immix_base) / LINE_SIZE
    }

    /// Start address of block `b`.
    #[inline(always)]
    pub fn block_addr(&self, b: usize) -> usize {
        self.immix_base + b * BLOCK_SIZE
    }

    /// The address range the heap reserved (both spaces): every object lies inside.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.immix_base..self.end
    }

    /// Start of the Immix space.
    pub fn immix_base(&self) -> usize {
        self.immix_base
    }

    /// The current line-mark epoch: lines stamped with it are live in this cycle.
    #[inline(always)]
    pub fn epoch(&self) -> u8 {
        self.epoch.load(Ordering::Relaxed)
    }

    /// Starts a new marking epoch (in a pause); skips the reserved line values.
    pub fn advance_epoch(&self) -> u8 {
        let e = self.epoch();
        let next = if e >= metadata::MAX_EPOCH { 1 } else { e + 1 };
        self.epoch.store(next, Ordering::Relaxed);
        next
    }

    /// Sets the kind of the cycle whose epoch starts next (in its first pause, before
    /// [`Space::advance_epoch`]): a nursery cycle keeps the lines of old objects.
    pub fn set_nursery(&self, nursery: bool) {
        self.nursery
            .store(nursery && self.generational, Ordering::Relaxed);
    }

    /// Whether the current epoch's cycle is a nursery cycle.
    pub fn nursery(&self) -> bool {
        self.nursery.load(Ordering::Relaxed)
    }

    /// The lines the current epoch's sweep keeps, and whether mark bits outlive it.
    pub fn line_rule(&self) -> metadata::LineRule {
        metadata::LineRule {
            epoch: self.epoch(),
            nursery: self.nursery(),
            sticky: self.generational,
        }
    }

    /// Whether the object at `addr` was allocated black in this cycle's marking: its line
    /// carries the epoch's black stamp, or (a large object, generational mode) its header
    /// `FLAG_NEW_LARGE`.
    #[inline]
    pub fn allocated_black(&self, addr: usize) -> bool {
        if self.in_immix(addr) {
            self.line_mark(addr) == metadata::black_stamp(self.epoch())
        } else {
            self.in_heap(addr) && new_large(addr)
        }
    }

    /// Clears every mark bit (generational mode, before a full cycle): old objects are
    /// traced again. Between cycles, when nothing sets marks.
    pub fn clear_all_marks(&self) {
        for c in self.committed_chunks() {
            self.meta
                .clear_marks(self.immix_base + c * CHUNK_SIZE, CHUNK_SIZE);
        }
        self.los.unmark_all(&self.meta);
    }

    /// Whether the object at `addr` needs no more marking this cycle: it is marked, or it
    /// was allocated black. False for addresses outside the heap (marking reports those).
    #[inline]
    pub fn marked_or_black(&self, addr: usize) -> bool {
        if self.in_immix(addr) {
            let line = self.meta.line(self.line_of(addr)).load(Ordering::Relaxed);
            line == metadata::black_stamp(self.epoch()) || self.meta.is_marked(addr)
        } else {
            self.in_heap(addr) && (self.meta.is_marked(addr) || new_large(addr))
        }
    }

    /// The poison pattern for freed memory, when verification is on.
    pub fn poison(&self) -> Option<u64> {
        self.poison.then_some(POISON)
    }

    /// Bytes committed by both spaces (idle chunks and the large-object warm cache too).
    pub fn committed(&self) -> usize {
        self.budget.committed()
    }

    /// The most bytes ever committed at once.
    pub fn peak(&self) -> usize {
        self.budget.peak()
    }

    /// Bytes live after the last GC plus bytes handed out since.
    pub fn in_use(&self) -> usize {
        self.in_use.load(Ordering::Relaxed)
    }

    /// Records `n` more bytes handed to allocators.
    pub fn add_in_use(&self, n: usize) {
        self.in_use.fetch_add(n, Ordering::Relaxed);
    }

    /// Resets the in-use figure after a sweep.
    pub fn set_in_use(&self, n: usize) {
        self.in_use.store(n, Ordering::Relaxed);
    }

    /// The maximum heap size now.
    pub fn heap_max(&self) -> usize {
        self.budget.max()
    }

    /// Changes the maximum heap size at run time, between one chunk and the address space
    /// reserved at start (`TANDEM_HEAP_MAX`).
    pub fn set_heap_max(&self, bytes: usize) -> crate::Result<()> {
        if !(CHUNK_SIZE..=self.immix_size).contains(&bytes) {
            return Err(crate::Error::Config(format!(
                "a heap maximum of {bytes} bytes is outside [{CHUNK_SIZE}, {}] (the address \
                 space reserved at start by TANDEM_HEAP_MAX)",
                self.immix_size
            )));
        }
        self.budget.set_max(bytes);
        // Idle chunks are committed memory reused without a charge: above a lowered
        // maximum they go back now, or the heap would grow into them past it.
        self.release_idle_for(0);
        Ok(())
    }

    /// Configured minimum heap size.
    pub fn heap_min(&self) -> usize {
        self.heap_min
    }

    /// Takes a block with holes, if any.
    pub fn acquire_recyclable(&self) -> Option<usize> {
        let b = self.pools.recyclable.pop()? as usize;
        if !self.recommit_block(b) {
            self.pools.recyclable.push(b as u32);
            return None;
        }
        self.meta.set_block_state(b, BlockState::Allocating);
        self.add_in_use((LINES_PER_BLOCK - self.meta.live_lines(b)) * LINE_SIZE);
        Some(b)
    }

    /// Waits a little, when the pools are dry because a sweep has begun and is not offered
    /// yet, for the sweep to be offered; true when it was. Between the pause that ends
    /// marking (which empties the pools) and the offer, the collector settles finalizers
    /// and ends the evacuation, usually in 10-20 us but sometimes milliseconds: an
    /// allocator that committed a fresh chunk meanwhile kept it for good (graph/t2).
    ///
    /// The collector's own threads never wait: the offer comes only after their work (a
    /// finalizer's resurrection copies objects out of the collection set with the pools
    /// dry; at the heap's maximum each copy waited the whole patience, 0.25-1 s a cycle).
    fn await_sweep_offer(&self) -> bool {
        if !self.sweep_pending.load(Ordering::Acquire) || COLLECTOR_THREAD.with(|c| c.get()) {
            return false;
        }
        let deadline = std::time::Instant::now() + SWEEP_OFFER_PATIENCE;
        while self.sweep_pending.load(Ordering::Acquire) {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::yield_now();
        }
        true
    }

    /// Takes an empty block; when the pool is dry, first sweeps chunks of a sweep in
    /// progress, then commits a new chunk if the budget allows; None when the heap is at
    /// its maximum.
    pub fn acquire_free(&self) -> Result<Option<usize>> {
        let b = loop {
            if let Some(b) = self.pools.free.pop() {
                break b as usize;
            }
            if let Some(b) = self.take_bridged() {
                break b;
            }
            if self.assist_sweep() || self.await_sweep_offer() {
                continue;
            }
            match self.commit_chunk()? {
                Some(b) => break b,
                None => return Ok(None),
            }
        };
        if !self.recommit_block(b) {
            self.pools.free.push(b as u32);
            return Ok(None);
        }
        self.meta.set_block_state(b, BlockState::Allocating);
        self.add_in_use(BLOCK_SIZE);
        Ok(Some(b))
    }

    /// Takes a free block from the bridge (see [`bridge`]), stamped with the sweep that
    /// lends it, so that the sweep passes it over.
    fn take_bridged(&self) -> Option<usize> {
        let b = self.pools.bridge.take(|b| {
            // The sweep that lends it began and is not offered: its number stands.
            let sweep = self.sweeps.load(Ordering::Acquire);
            self.meta.set_taken_in(b as usize, sweep);
        })?;
        Some(b as usize)
    }

    /// Takes back an idle chunk or commits one more, pushes all but its first block to the
    /// free pool and returns the first.
    fn commit_chunk(&self) -> Result<Option<usize>> {
        if self.committed() > self.heap_max() {
            // Over a lowered maximum: chunks that idled since go back rather than return to
            // use (the charge below then fails while the live data alone is over it).
            self.release_idle_for(0);
        }
        let mut chunks = self.chunks.lock();
        // Another thread may have refilled the pool while we waited for the lock.
        if let Some(b) = self.pools.free.pop() {
            return Ok(Some(b as usize));
        }
        // Idle memory is committed already: reusing it costs no page faults.
        if self.committed() <= self.heap_max() {
            if let Some(b) = self.unpark_locked(&mut chunks) {
                return Ok(Some(b));
            }
        }
        let Some(c) = chunks.iter().position(|&c| c == ChunkState::Uncommitted) else {
            return Ok(None);
        };
        if !self.budget.try_charge(CHUNK_SIZE) {
            // At the maximum the large-object warm cache gives way to live allocation.
            self.los.drop_warm(&self.res, &self.budget);
            if !self.budget.try_charge(CHUNK_SIZE) {
                return Ok(None);
            }
        }
        tracing::debug!(
            in_use = self.in_use(),
            committed = self.committed(),
            recyclable = self.pools.recyclable.len(),
            sweeping = self.sweep.lock().is_some(),
            "committing a chunk"
        );
        let start = self.immix_base + c * CHUNK_SIZE;
        if let Err(e) = self.res.commit(start, CHUNK_SIZE) {
            self.budget.uncharge(CHUNK_SIZE);
            return Err(e);
        }
        if let Some(p) = self.poison() {
            blocks::poison_range(start, CHUNK_SIZE, p);
        }
        chunks[c] = ChunkState::Active;
        let first = blocks::chunk_first_block(c);
        for b in first..first + BLOCKS_PER_CHUNK {
            self.meta.set_block_state(b, BlockState::Free);
            self.meta.set_live_lines(b, 0);
            self.meta.settle_live_bytes(b);
        }
        for b in first + 1..first + BLOCKS_PER_CHUNK {
            self.pools.free.push(b as u32);
        }
        tracing::trace!(chunk = c, "committed chunk");
        Ok(Some(first))
    }

    /// Indices of the active chunks: committed and not idle. Only these may hold objects or
    /// pooled blocks; an idle chunk may be released at any moment, so nobody else reads it.
    pub fn committed_chunks(&self) -> Vec<usize> {
        let chunks = self.chunks.lock();
        (0..chunks.len())
            .filter(|&c| chunks[c] == ChunkState::Active)
            .collect()
    }

    /// Commits zeroed memory for a large object of `bytes`; None when over budget.
    pub fn alloc_large(&self, bytes: usize) -> Result<Option<usize>> {
        self.alloc_large_with(bytes, 0, LargeRun::clear)
    }

    /// [`Space::alloc_large`] of an object with header word `header`, written before the
    /// object is registered (a sweep may see it from then on), with `clear` running the
    /// clearing of the run (the mutator runs it in a native region: see [`LargeRun`]).
    pub fn alloc_large_with(
        &self,
        bytes: usize,
        header: u64,
        clear: impl FnOnce(&LargeRun),
    ) -> Result<Option<usize>> {
        let len = LargeObjectSpace::footprint(bytes);
        let run = loop {
            match self.los.take(&self.res, &self.budget, bytes)? {
                Some(run) => break run,
                // At the maximum, idle chunks give way to live allocation, then the free
                // pages of pooled blocks.
                None if self.release_idle_for(len) => continue,
                None if self.reclaim_pooled_pages(self.shortfall(len)) > 0 => continue,
                None => return Ok(None),
            }
        };
        if run.needs_clearing() {
            clear(&run);
        }
        // SAFETY: the run's first word, committed and zeroed, which this thread alone holds
        // until the run is registered.
        unsafe { (run.start() as *mut u64).write(header) };
        let a = self.los.register(&self.meta, run);
        self.add_in_use(len);
        Ok(Some(a))
    }

    /// How many sweeps have begun (see [`Space::begin_sweep`]).
    pub fn sweeps_begun(&self) -> u64 {
        // Acquire: a thread back from a native region sees the count of every pause that
        // ran meanwhile (the resume orders it anyway).
        self.sweeps.load(Ordering::Acquire)
    }

    /// Bytes that must be uncharged before `len` more fit in the budget.
    fn shortfall(&self, len: usize) -> usize {
        (self.committed() + len).saturating_sub(self.heap_max())
    }

    /// Frees unmarked large objects; returns bytes still live.
    pub fn sweep_large(&self) -> usize {
        self.los.sweep(&self.res, &self.meta, &self.budget).1
    }

    /// Lowers the in-use figure by `n` (what a sweep found dead).
    pub fn sub_in_use(&self, n: usize) {
        let _ = self
            .in_use
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(n))
            });
    }
}

/// Whether the large object at `addr` was allocated during this cycle's marking in
/// generational mode (its header's `FLAG_NEW_LARGE`).
#[inline]
pub fn new_large(addr: usize) -> bool {
    // SAFETY: callers pass a registered large object, whose header word was written before
    // it was registered.
    let h = unsafe { &*(addr as *const crate::sync::raw::AtomicU64) };
    h.load(Ordering::Relaxed) & crate::object::FLAG_NEW_LARGE != 0
}

/// A space of `chunks` chunks at most, one chunk minimum, for the heap's unit tests.
#[cfg(test)]
pub(crate) fn test_space(chunks: usize) -> Space {
    Space::new(&Config {
        heap_max: crate::config::ByteSize(chunks * CHUNK_SIZE),
        heap_min: crate::config::ByteSize(CHUNK_SIZE),
        ..Config::default()
    })
    .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(max: usize) -> Space {
        test_space(max / CHUNK_SIZE)
    }

    #[test]
    fn blocks_come_from_committed_chunks_within_budget() {
        let s = space(2 * CHUNK_SIZE);
        let mut seen = std::collections::HashSet::new();
        while let Some(b) = s.acquire_free().unwrap() {
            assert!(seen.insert(b));
            let a = s.block_addr(b);
            assert!(s.in_immix(a) && s.in_heap(a));
            // Fresh memory is committed and zero.
            // SAFETY: `a` is the start of a committed block.
            assert_eq!(unsafe { *(a as *const u64) }, 0);
        }
        assert_eq!(seen.len(), 2 * BLOCKS_PER_CHUNK);
        assert_eq!(s.committed(), 2 * CHUNK_SIZE);
    }

    #[test]
    fn large_objects_share_the_budget_and_are_freed_by_sweep() {
        let s = space(2 * CHUNK_SIZE);
        let a = s.alloc_large(CHUNK_SIZE).unwrap().unwrap();
        assert!(s.in_heap(a) && !s.in_immix(a) && s.los.contains(a));
        assert!(s.alloc_large(CHUNK_SIZE + 1).unwrap().is_none());
        let b = s.alloc_large(100_000).unwrap().unwrap();
        s.meta.mark(b);
        assert_eq!(s.sweep_large(), LargeObjectSpace::footprint(100_000));
        assert!(!s.los.contains(a) && s.los.contains(b));
        assert!(s.alloc_large(CHUNK_SIZE).unwrap().is_some());
    }

    #[test]
    fn a_reused_large_run_is_out_of_reach_while_it_is_cleared() {
        let s = space(16 * CHUNK_SIZE);
        let a = s.alloc_large(100_000).unwrap().unwrap();
        // SAFETY: the object's own committed memory.
        unsafe { std::ptr::write_bytes(a as *mut u8, 0xab, 100_000) };
        assert_eq!(
            s.sweep_large(),
            0,
            "nothing marked: the run goes to the warm cache"
        );
        let b = s
            .alloc_large_with(100_000, 0, |run| {
                assert!(run.needs_clearing(), "the warm run is reused");
                // What may happen while the owner clears in a native region: a sweep and
                // other threads' allocations.
                assert!(!s.los.contains(a));
                assert_eq!(s.sweep_large(), 0, "the run is no object yet");
                let other = s.alloc_large(100_000).unwrap().unwrap();
                assert_ne!(other, a, "nobody else takes the run");
                run.clear();
            })
            .unwrap()
            .unwrap();
        assert_eq!(b, a);
        assert!(s.los.contains(b));
        // SAFETY: the new object's committed memory.
        let bytes = unsafe { std::slice::from_raw_parts(b as *const u8, 100_000) };
        assert!(bytes.iter().all(|&x| x == 0), "cleared");
    }

    #[test]
    fn the_large_object_warm_cache_is_committed_and_gives_way_at_the_maximum() {
        // A warm cache of max/16 = 4 MiB.
        let s = space(16 * CHUNK_SIZE);
        let a = s.alloc_large(CHUNK_SIZE).unwrap().unwrap();
        assert_eq!(s.committed(), CHUNK_SIZE);
        assert_eq!(s.sweep_large(), 0);
        assert!(!s.los.contains(a));
        assert_eq!(
            s.committed(),
            CHUNK_SIZE,
            "the freed run is still committed"
        );
        // The block space takes the whole budget: the warm run goes back to make room.
        let mut blocks = 0;
        while s.acquire_free().unwrap().is_some() {
            blocks += 1;
            assert!(s.committed() <= s.heap_max());
        }
        assert_eq!(blocks, 16 * BLOCKS_PER_CHUNK);
        assert_eq!(s.committed(), s.heap_max());
        assert_eq!(s.peak(), s.heap_max());
    }

    #[test]
    fn mark_bits_are_set_once() {
        let s = space(CHUNK_SIZE);
        let b = s.acquire_free().unwrap().unwrap();
        let a = s.block_addr(b) + 64;
        assert!(s.meta.mark(a));
        assert!(!s.meta.mark(a));
        assert!(s.meta.is_marked(a) && !s.meta.is_marked(a + 8));
    }

    #[test]
    fn sweep_frees_unstamped_lines_and_finds_holes() {
        let s = space(CHUNK_SIZE);
        let b = s.acquire_free().unwrap().unwrap();
        let e = s.advance_epoch();
        let lines = s.meta.block_lines(b);
        lines[3].store(e, Ordering::Relaxed);
        lines[4].store(e, Ordering::Relaxed);
        lines[9].store(metadata::LINE_FRESH, Ordering::Relaxed);
        let r = blocks::sweep_block(
            &s.meta,
            s.immix_base(),
            b,
            metadata::LineRule::full(e),
            Some(POISON),
        );
        assert_eq!(r.state, BlockState::Recyclable);
        assert_eq!(r.live_lines, 2);
        let h = blocks::find_hole(&s.meta, b, 0).unwrap();
        assert_eq!((h.start, h.end), (0, 3));
        let h = blocks::find_hole(&s.meta, b, 3).unwrap();
        assert_eq!((h.start, h.end), (5, LINES_PER_BLOCK));
        // SAFETY: line 9 of a committed block.
        assert_eq!(
            unsafe { *((s.block_addr(b) + 9 * LINE_SIZE) as *const u64) },
            POISON
        );
    }

    #[test]
    fn the_sweep_measures_young_survivors_in_blocks_without_copies() {
        let s = space(CHUNK_SIZE);
        let young = s.acquire_free().unwrap().unwrap();
        let copies = s.acquire_free().unwrap().unwrap();
        let e = s.advance_epoch();
        for b in [young, copies] {
            // Eight lines allocated since the sweep; marking kept two, holding 256 bytes.
            let lines = s.meta.block_lines(b);
            for l in &lines[..8] {
                l.store(metadata::LINE_FRESH, Ordering::Relaxed);
            }
            lines[0].store(e, Ordering::Relaxed);
            lines[1].store(e, Ordering::Relaxed);
            s.meta.add_marked_bytes(b, 256);
        }
        s.meta.not_young(copies);
        let sweep = s.begin_sweep();
        assert_eq!(s.finish_sweep(&sweep), 4 * LINE_SIZE);
        let y = sweep.young().expect("one block of young objects");
        assert_eq!(y.survival, 256.0 / (8 * LINE_SIZE) as f64);
        assert_eq!(y.density, 0.5);
        // Of eight lines allocated, two kept, half empty.
        assert_eq!(y.waste(), 1.0 / 8.0);
        // Settled: the next sweep sees neither block as young.
        assert!(s.meta.live_bytes(young) == 256 && s.meta.live_bytes(copies) == 256);
    }

    #[test]
    fn allocators_sweep_an_offered_sweep_before_committing_memory() {
        let s = space(4 * CHUNK_SIZE);
        // Fill two chunks' worth of blocks, then "mark" one line of the first block only.
        let blocks: Vec<usize> = (0..2 * BLOCKS_PER_CHUNK)
            .map(|_| s.acquire_free().unwrap().unwrap())
            .collect();
        assert_eq!(s.committed(), 2 * CHUNK_SIZE);
        let e = s.advance_epoch();
        s.meta.block_lines(blocks[0])[0].store(e, Ordering::Relaxed);
        let sweep = s.begin_sweep();
        // Not offered yet: a dry pool commits a new chunk.
        let fresh = s.acquire_free().unwrap().unwrap();
        assert_eq!(s.committed(), 3 * CHUNK_SIZE);
        s.pools.clear();
        s.offer_sweep(&sweep);
        // Offered: the allocator sweeps a chunk instead of committing another.
        let b = s.acquire_free().unwrap().unwrap();
        assert_ne!(b, fresh);
        assert_eq!(s.committed(), 3 * CHUNK_SIZE);
        assert_eq!(s.finish_sweep(&sweep), LINE_SIZE);
    }
}
