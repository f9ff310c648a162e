//! Side metadata for the whole reservation: mark bits, line marks and block tables.
//!
//! It lives in its own lazily-backed mapping, so an untouched region costs no memory, and
//! addressing it is arithmetic on the heap offset.

use super::vm::{Reservation, PAGE_SIZE};
use super::{BLOCK_SIZE, LINE_SIZE};
use crate::error::Result;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

/// Bytes of heap covered by one mark bit.
pub const MARK_GRANULE: usize = 8;
const BITS_PER_WORD: usize = 64;

/// Line-mark value of a free line (after a sweep, or fresh memory).
pub const LINE_FREE: u8 = 0;
/// Line-mark value of a line handed to a TLAB since the last sweep.
pub const LINE_FRESH: u8 = u8::MAX;
/// Largest marking epoch; epochs run `1..=MAX_EPOCH`, so that each has a distinct
/// black-allocation stamp below [`LINE_FRESH`].
pub const MAX_EPOCH: u8 = 127;

/// Line-mark value of a line a TLAB allocated black into during marking in `epoch`: live
/// for this cycle, and its objects are not traced (allocate-black at line granularity).
#[inline(always)]
pub const fn black_stamp(epoch: u8) -> u8 {
    epoch + MAX_EPOCH
}

/// Whether a line with mark `v` is live in the cycle of `epoch`.
#[inline(always)]
pub const fn line_live(v: u8, epoch: u8) -> bool {
    v == epoch || v == black_stamp(epoch)
}

/// Which lines a sweep keeps, and whether mark bits outlive it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineRule {
    /// The marking epoch the sweep follows.
    pub epoch: u8,
    /// A nursery cycle (generational mode): lines stamped by any earlier marking hold old
    /// objects, which this cycle did not trace, and stay live.
    pub nursery: bool,
    /// Generational mode: mark bits are sticky (an old object stays marked), so the sweep
    /// clears only the bits of the lines it frees.
    pub sticky: bool,
}

impl LineRule {
    /// The rule of a whole-heap cycle that clears every mark bit.
    pub const fn full(epoch: u8) -> LineRule {
        LineRule {
            epoch,
            nursery: false,
            sticky: false,
        }
    }

    /// Whether a line with mark `v` is live after this rule's marking.
    #[inline(always)]
    pub const fn live(&self, v: u8) -> bool {
        line_live(v, self.epoch) || (self.nursery && v >= 1 && v <= MAX_EPOCH)
    }
}

/// The state of a block of the Immix space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum BlockState {
    /// Its chunk is not committed.
    Uncommitted = 0,
    /// Empty, in the free pool.
    Free = 1,
    /// Partly live, with holes, in the recyclable pool.
    Recyclable = 2,
    /// Owned by a TLAB that bumps into it.
    Allocating = 3,
    /// Live lines leave no hole; not in any pool until the next sweep.
    Full = 4,
    /// Empty, taken by a thread that zeroes it outside any TLAB (see
    /// `alloc::Slow::Clear`), possibly while a collection runs: sweeps and the verifier
    /// leave it alone.
    Clearing = 5,
}

impl BlockState {
    fn from_u8(v: u8) -> BlockState {
        match v {
            1 => BlockState::Free,
            2 => BlockState::Recyclable,
            3 => BlockState::Allocating,
            4 => BlockState::Full,
            5 => BlockState::Clearing,
            _ => BlockState::Uncommitted,
        }
    }
}

/// Mark bits, line marks, block states, live-line counts and decommitted-page masks,
/// indexed from the heap base.
#[derive(Debug)]
pub struct SideMetadata {
    map: Reservation,
    heap_base: usize,
    marks: usize,
    lines: usize,
    states: usize,
    live: usize,
    decommitted: usize,
    cset: usize,
    marked_bytes: usize,
    live_bytes: usize,
    taken: usize,
    n_mark_words: usize,
    n_lines: usize,
    n_blocks: usize,
}

fn page_round(n: usize) -> usize {
    n.div_ceil(PAGE_SIZE) * PAGE_SIZE
}

impl SideMetadata {
    /// Metadata for a heap at `heap_base` of `total` bytes whose first `immix` bytes hold
    /// blocks.
    pub fn new(heap_base: usize, total: usize, immix: usize) -> Result<SideMetadata> {
        let n_mark_words = total / (MARK_GRANULE * BITS_PER_WORD);
        let n_lines = immix / LINE_SIZE;
        let n_blocks = immix / BLOCK_SIZE;
        let marks_len = page_round(n_mark_words * 8);
        let lines_len = page_round(n_lines);
        let states_len = page_round(n_blocks);
        let bytes_len = page_round(n_blocks * 4);
        let taken_len = page_round(n_blocks * 8);
        let map = Reservation::new(
            marks_len + lines_len + 4 * states_len + 2 * bytes_len + taken_len,
            PAGE_SIZE,
            true,
        )?;
        let marks = map.base();
        let lines = marks + marks_len;
        let states = lines + lines_len;
        let live = states + states_len;
        let decommitted = live + states_len;
        let cset = decommitted + states_len;
        let marked_bytes = cset + states_len;
        let live_bytes = marked_bytes + bytes_len;
        let taken = live_bytes + bytes_len;
        Ok(SideMetadata {
            map,
            heap_base,
            marks,
            lines,
            states,
            live,
            decommitted,
            cset,
            marked_bytes,
            live_bytes,
            taken,
            n_mark_words,
            n_lines,
            n_blocks,
        })
    }

    #[inline(always)]
    fn mark_word(&self, i: usize) -> &AtomicU64 {
        debug_assert!(i < self.n_mark_words);
        // SAFETY: `i` is in bounds of the read-write mark table, 8-aligned, living as long as self.
        unsafe { &*(self.marks as *const AtomicU64).add(i) }
    }

    /// Starts loading the mark word and the line mark of the object at `addr` into the
    /// cache: marking reads both for every reference it follows, and on a large heap each
    /// is a cache miss of its own (three quarters of single-threaded marking time on a
    /// 64 MiB random graph was the mark-word load). Any address is harmless.
    #[inline(always)]
    pub fn prefetch_marks(&self, addr: usize) {
        let off = addr.wrapping_sub(self.heap_base);
        prefetch(
            self.marks
                .wrapping_add(off / (MARK_GRANULE * BITS_PER_WORD) * 8),
        );
        prefetch(self.lines.wrapping_add(off / LINE_SIZE));
    }

    /// Sets the mark bit of the object at `addr`; true when this call set it.
    #[inline]
    pub fn mark(&self, addr: usize) -> bool {
        let g = (addr - self.heap_base) / MARK_GRANULE;
        let bit = 1u64 << (g % BITS_PER_WORD);
        let w = self.mark_word(g / BITS_PER_WORD);
        // Relaxed is enough: the bit only arbitrates which marker scans the object; the
        // object's contents were published by the pause (mutators stopped) before marking.
        if w.load(Ordering::Relaxed) & bit != 0 {
            return false;
        }
        w.fetch_or(bit, Ordering::Relaxed) & bit == 0
    }

    /// Whether the object at `addr` is marked.
    #[inline]
    pub fn is_marked(&self, addr: usize) -> bool {
        let g = (addr - self.heap_base) / MARK_GRANULE;
        self.mark_word(g / BITS_PER_WORD).load(Ordering::Relaxed) & (1u64 << (g % BITS_PER_WORD))
            != 0
    }

    /// Clears the mark bit of the object at `addr`.
    pub fn unmark(&self, addr: usize) {
        let g = (addr - self.heap_base) / MARK_GRANULE;
        self.mark_word(g / BITS_PER_WORD)
            .fetch_and(!(1u64 << (g % BITS_PER_WORD)), Ordering::Relaxed);
    }

    /// Clears the mark bits of the line at `line_addr` (line-aligned).
    pub fn clear_line_marks(&self, line_addr: usize) {
        let g = (line_addr - self.heap_base) / MARK_GRANULE;
        let per_line = LINE_SIZE / MARK_GRANULE;
        let mask = ((1u64 << per_line) - 1) << (g % BITS_PER_WORD);
        self.mark_word(g / BITS_PER_WORD)
            .fetch_and(!mask, Ordering::Relaxed);
    }

    /// Clears every mark bit of `[start, start+len)`; both must be 512-byte aligned.
    pub fn clear_marks(&self, start: usize, len: usize) {
        let span = MARK_GRANULE * BITS_PER_WORD;
        debug_assert!((start - self.heap_base).is_multiple_of(span) && len.is_multiple_of(span));
        let first = (start - self.heap_base) / span;
        for i in first..first + len / span {
            self.mark_word(i).store(0, Ordering::Relaxed);
        }
    }

    /// The line-mark byte of line `line` (index from the heap base).
    #[inline(always)]
    pub fn line(&self, line: usize) -> &AtomicU8 {
        assert!(line < self.n_lines);
        // SAFETY: in bounds (asserted) of the read-write line table, living as long as self.
        unsafe { &*(self.lines as *const AtomicU8).add(line) }
    }

    /// The line marks of block `block` as a slice.
    #[inline]
    pub fn block_lines(&self, block: usize) -> &[AtomicU8] {
        let per = BLOCK_SIZE / LINE_SIZE;
        assert!(block < self.n_blocks);
        // SAFETY: the block's lines are a contiguous in-bounds run of the line table.
        unsafe { std::slice::from_raw_parts((self.lines as *const AtomicU8).add(block * per), per) }
    }

    fn state_cell(&self, block: usize) -> &AtomicU8 {
        assert!(block < self.n_blocks);
        // SAFETY: in bounds (asserted) of the read-write state table.
        unsafe { &*(self.states as *const AtomicU8).add(block) }
    }

    /// The state of block `block`.
    #[inline]
    pub fn block_state(&self, block: usize) -> BlockState {
        // Acquire, pairing with the Release in `set_block_state`: a thread that hands a block
        // on by its state (a cleared block given back to a sweep that runs concurrently, see
        // `alloc::Slow::Clear`) orders its writes to the block before the reader's. Other
        // changes happen in pauses or by the block's owning TLAB, ordered by the safepoint
        // protocol anyway. Free on x86-64; blocks change state rarely elsewhere.
        BlockState::from_u8(self.state_cell(block).load(Ordering::Acquire))
    }

    /// Sets the state of block `block`.
    #[inline]
    pub fn set_block_state(&self, block: usize, s: BlockState) {
        self.state_cell(block).store(s as u8, Ordering::Release);
    }

    /// Live lines of block `block` found by the last sweep.
    pub fn live_lines(&self, block: usize) -> usize {
        assert!(block < self.n_blocks);
        // SAFETY: in bounds (asserted) of the read-write live table.
        unsafe { &*(self.live as *const AtomicU8).add(block) }.load(Ordering::Relaxed) as usize
    }

    /// Records the live lines of block `block`.
    pub fn set_live_lines(&self, block: usize, n: usize) {
        assert!(block < self.n_blocks);
        // SAFETY: in bounds (asserted) of the read-write live table.
        unsafe { &*(self.live as *const AtomicU8).add(block) }.store(n as u8, Ordering::Relaxed);
    }

    fn decommitted_cell(&self, block: usize) -> &AtomicU8 {
        assert!(block < self.n_blocks);
        // SAFETY: in bounds (asserted) of the read-write decommitted-page table.
        unsafe { &*(self.decommitted as *const AtomicU8).add(block) }
    }

    /// The pages of block `block` returned to the OS while it holds no object there, one bit
    /// per page (see `heap::reclaim`).
    #[inline]
    pub fn decommitted(&self, block: usize) -> u8 {
        // Relaxed: only the block's exclusive holder (popped from a pool, or its chunk idle
        // or being swept) reads or writes the mask; the pools' push/pop orders hand-overs.
        self.decommitted_cell(block).load(Ordering::Relaxed)
    }

    /// Records the decommitted pages of block `block`.
    #[inline]
    pub fn set_decommitted(&self, block: usize, mask: u8) {
        self.decommitted_cell(block).store(mask, Ordering::Relaxed);
    }

    fn cset_cell(&self, block: usize) -> &AtomicU8 {
        assert!(block < self.n_blocks);
        // SAFETY: in bounds (asserted) of the read-write collection-set table.
        unsafe { &*(self.cset as *const AtomicU8).add(block) }
    }

    /// Whether block `block` is in the collection set (its objects move this cycle).
    #[inline]
    pub fn in_cset(&self, block: usize) -> bool {
        // Relaxed: set and cleared in pauses, which order them before and after every
        // reader (markers and load barriers run between those pauses).
        self.cset_cell(block).load(Ordering::Relaxed) != 0
    }

    /// Puts block `block` in the collection set or takes it out.
    pub fn set_cset(&self, block: usize, on: bool) {
        self.cset_cell(block).store(u8::from(on), Ordering::Relaxed);
    }

    fn bytes_cell(&self, table: usize, block: usize) -> &AtomicU32 {
        assert!(block < self.n_blocks);
        // SAFETY: in bounds (asserted) of a read-write table of u32 per block.
        unsafe { &*(table as *const AtomicU32).add(block) }
    }

    /// Counts `n` bytes of objects marked in block `block` this cycle.
    #[inline]
    pub fn add_marked_bytes(&self, block: usize, n: usize) {
        // Relaxed: a statistic, read by the sweep after the marking phase's barrier.
        self.bytes_cell(self.marked_bytes, block)
            .fetch_add(n as u32, Ordering::Relaxed);
    }

    /// At the sweep of block `block`: the bytes marked there become its live bytes (what
    /// the next collection set is chosen from), and the count starts again from zero.
    /// Returns them.
    pub fn settle_live_bytes(&self, block: usize) -> usize {
        self.settle_live_bytes_adding(block, false)
    }

    /// [`SideMetadata::settle_live_bytes`], adding to the live bytes when `keep`: a
    /// nursery cycle did not trace the old objects counted there, which stay.
    pub fn settle_live_bytes_adding(&self, block: usize, keep: bool) -> usize {
        let n = self
            .bytes_cell(self.marked_bytes, block)
            .swap(0, Ordering::Relaxed);
        let cell = self.bytes_cell(self.live_bytes, block);
        let total = if keep {
            cell.load(Ordering::Relaxed).saturating_add(n)
        } else {
            n
        };
        cell.store(total, Ordering::Relaxed);
        total as usize
    }

    /// Records that the next sweep must not measure block `block` as one of young objects
    /// (see `blocks::SweptBlock::young`): copies of survivors are made into it, or its
    /// objects are copied out. The mark stands until that sweep settles the block's live
    /// bytes; only that sweep reads it.
    #[inline]
    pub fn not_young(&self, block: usize) {
        let cell = self.bytes_cell(self.live_bytes, block);
        if cell.load(Ordering::Relaxed) == 0 {
            cell.store(1, Ordering::Relaxed);
        }
    }

    fn taken_cell(&self, block: usize) -> &AtomicU64 {
        assert!(block < self.n_blocks);
        // SAFETY: in bounds (asserted) of the read-write table of u64 per block.
        unsafe { &*(self.taken as *const AtomicU64).add(block) }
    }

    /// Records that block `block` was taken from the bridge while sweep number `sweep` had
    /// begun and was not offered yet (see `heap::bridge`): that sweep passes it over.
    pub fn set_taken_in(&self, block: usize, sweep: u64) {
        // Relaxed: the bridge's close orders it before any sweep of the block.
        self.taken_cell(block).store(sweep, Ordering::Relaxed);
    }

    /// The number of the sweep during which block `block` was last taken from the bridge
    /// (0: never).
    pub fn taken_in(&self, block: usize) -> u64 {
        self.taken_cell(block).load(Ordering::Relaxed)
    }

    /// Bytes of objects marked in block `block` by the last cycle's marking.
    pub fn live_bytes(&self, block: usize) -> usize {
        self.bytes_cell(self.live_bytes, block)
            .load(Ordering::Relaxed) as usize
    }

    /// Returns the mark-bit and line-mark pages of a released heap range to the OS.
    pub fn discard(&self, start: usize, len: usize) {
        let span = MARK_GRANULE * BITS_PER_WORD;
        let words = self.marks + (start - self.heap_base) / span * 8;
        let wlen = len / span * 8;
        let (a, b) = (page_round(words), (words + wlen) / PAGE_SIZE * PAGE_SIZE);
        if b > a {
            self.map.discard(a, b - a);
        }
        let lines = self.lines + (start - self.heap_base) / LINE_SIZE;
        let (a, b) = (
            page_round(lines),
            (lines + len / LINE_SIZE) / PAGE_SIZE * PAGE_SIZE,
        );
        if b > a {
            self.map.discard(a, b - a);
        }
    }
}

/// Asks the CPU to start loading the cache line at `addr` (any address: a prefetch never
/// faults).
#[inline(always)]
pub fn prefetch(addr: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint with no architectural effect, valid for any address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(addr as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}
