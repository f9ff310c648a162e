//! Giving the budget of free pages inside pooled blocks back to the large-object space.
//!
//! The block space commits and releases memory by 4 MiB chunk, so a few survivors spread
//! over many blocks keep whole chunks charged: with 0.6% of the heap live, a large object
//! could find no budget left. When a large allocation meets the maximum and no idle chunk is
//! left to release, the allocator walks the free and recyclable pools and returns every page
//! of a pooled block whose lines are all free to the OS (`MADV_DONTNEED`; the page stays
//! mapped and reads as zero), uncharging it. The block remembers those pages in a bit mask
//! (side metadata); whoever takes the block from a pool to allocate into it charges them
//! again first, and a released chunk uncharges only what is still charged.
//!
//! Why no lock is needed: a block popped from a pool belongs to its popper alone until it is
//! pushed back (the allocators' ownership rule), so the reclaimer decommits pages nobody can
//! be allocating into, and a page whose lines are all free holds no object that marking or
//! the mutators could reach. A sweep never runs beside it on the same block: sweeps start
//! with the pools emptied in a pause, which waits for the reclaiming mutator's next poll.
//! It runs only on the way to an out-of-memory answer, so its page faults on reuse are paid
//! only when the alternative was failing.

use super::blocks::BlockIndex;
use super::metadata::LINE_FREE;
use super::vm::PAGE_SIZE;
use super::{Space, BLOCK_SIZE, LINES_PER_BLOCK, LINE_SIZE};
use crossbeam::queue::SegQueue;
use std::sync::atomic::Ordering;

/// Pages per block: one bit each in a block's decommitted mask.
pub const PAGES_PER_BLOCK: usize = BLOCK_SIZE / PAGE_SIZE;
/// Lines per page.
const LINES_PER_PAGE: usize = PAGE_SIZE / LINE_SIZE;

const _: () = assert!(PAGES_PER_BLOCK <= u8::BITS as usize && LINES_PER_PAGE >= 1);

/// Whether line `line` of a block lies in a page of `mask`.
#[inline]
pub fn line_decommitted(mask: u8, line: usize) -> bool {
    mask & (1 << (line / LINES_PER_PAGE)) != 0
}

impl Space {
    /// Decommits free pages of pooled blocks until `want` bytes are uncharged or none is
    /// left; returns the bytes uncharged. Whole free blocks go first, then recyclable ones.
    pub(super) fn reclaim_pooled_pages(&self, want: usize) -> usize {
        let mut got = 0;
        for pool in [&self.pools.free, &self.pools.recyclable] {
            got += self.reclaim_from(pool, want.saturating_sub(got));
        }
        got
    }

    /// One pass over `pool`, each block popped, trimmed and pushed back, so that the pool is
    /// never short of more than the one block in hand.
    fn reclaim_from(&self, pool: &SegQueue<BlockIndex>, want: usize) -> usize {
        let mut got = 0;
        for _ in 0..pool.len() {
            if got >= want {
                break;
            }
            let Some(b) = pool.pop() else { break };
            got += self.decommit_free_pages(b as usize);
            pool.push(b);
        }
        got
    }

    /// Returns the wholly free pages of block `b` (held by the caller alone) to the OS and
    /// uncharges them; the bytes uncharged.
    fn decommit_free_pages(&self, b: usize) -> usize {
        let lines = self.meta.block_lines(b);
        let old = self.meta.decommitted(b);
        let mut new = 0u8;
        for (p, page) in lines.chunks_exact(LINES_PER_PAGE).enumerate() {
            let bit = 1u8 << p;
            if old & bit == 0 && page.iter().all(|l| l.load(Ordering::Relaxed) == LINE_FREE) {
                new |= bit;
            }
        }
        if new == 0 {
            return 0;
        }
        let base = self.block_addr(b);
        let mut p = 0;
        while p < PAGES_PER_BLOCK {
            if new & (1 << p) == 0 {
                p += 1;
                continue;
            }
            // One madvise per run of adjacent pages.
            let run = (p..PAGES_PER_BLOCK)
                .take_while(|&q| new & (1 << q) != 0)
                .count();
            self.res.discard(base + p * PAGE_SIZE, run * PAGE_SIZE);
            p += run;
        }
        self.meta.set_decommitted(b, old | new);
        let bytes = new.count_ones() as usize * PAGE_SIZE;
        self.budget.uncharge(bytes);
        bytes
    }

    /// Charges again the decommitted pages of block `b`, which the caller took from a pool
    /// to allocate into (poisoning them again under verification); false when the budget
    /// has no room even after the large-object warm cache and idle chunks gave way.
    pub(super) fn recommit_block(&self, b: usize) -> bool {
        let mask = self.meta.decommitted(b);
        if mask == 0 {
            return true;
        }
        let bytes = mask.count_ones() as usize * PAGE_SIZE;
        if !self.budget.try_charge(bytes) {
            self.los.drop_warm(&self.res, &self.budget);
            self.release_idle_for(bytes);
            if !self.budget.try_charge(bytes) {
                return false;
            }
        }
        if let Some(poison) = self.poison() {
            let base = self.block_addr(b);
            for p in (0..PAGES_PER_BLOCK).filter(|p| mask & (1 << p) != 0) {
                super::blocks::poison_range(base + p * PAGE_SIZE, PAGE_SIZE, poison);
            }
        }
        self.meta.set_decommitted(b, 0);
        true
    }

    /// Bytes the chunk `chunk` has charged: all of it but its blocks' decommitted pages.
    pub(super) fn chunk_charge(&self, chunk: usize) -> usize {
        let first = super::blocks::chunk_first_block(chunk);
        let decommitted: usize = (first..first + super::BLOCKS_PER_CHUNK)
            .map(|b| self.meta.decommitted(b).count_ones() as usize)
            .sum();
        super::CHUNK_SIZE - decommitted * PAGE_SIZE
    }
}

const _: () = assert!(LINES_PER_BLOCK == PAGES_PER_BLOCK * LINES_PER_PAGE);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heap::metadata::BlockState;
    use crate::heap::{BLOCKS_PER_CHUNK, CHUNK_SIZE};

    use crate::heap::test_space as space;

    /// Fills the whole budget, keeps one live line in the first page of every block, sweeps.
    fn sparse(s: &Space) {
        while s.acquire_free().unwrap().is_some() {}
        let e = s.advance_epoch();
        for c in s.committed_chunks() {
            for b in c * BLOCKS_PER_CHUNK..(c + 1) * BLOCKS_PER_CHUNK {
                s.meta.block_lines(b)[3].store(e, Ordering::Relaxed);
            }
        }
        let sweep = s.begin_sweep();
        s.finish_sweep(&sweep);
    }

    #[test]
    fn free_pages_of_pooled_blocks_are_uncharged_and_charged_again_on_reuse() {
        let s = space(2);
        sparse(&s);
        assert_eq!(s.committed(), s.heap_max());
        let blocks = 2 * BLOCKS_PER_CHUNK;
        assert_eq!(s.pools.recyclable.len(), blocks);
        // All pages but the first of each block hold only free lines.
        let freeable = blocks * (PAGES_PER_BLOCK - 1) * PAGE_SIZE;
        assert_eq!(s.reclaim_pooled_pages(usize::MAX), freeable);
        assert_eq!(s.committed(), s.heap_max() - freeable);
        assert_eq!(
            s.reclaim_pooled_pages(usize::MAX),
            0,
            "nothing left to give"
        );
        assert_eq!(s.pools.recyclable.len(), blocks, "every block went back");
        // Taking a block to allocate into charges its pages again.
        let b = s.acquire_recyclable().unwrap();
        assert_eq!(s.meta.decommitted(b), 0);
        assert_eq!(s.meta.block_state(b), BlockState::Allocating);
        let per_block = (PAGES_PER_BLOCK - 1) * PAGE_SIZE;
        assert_eq!(s.committed(), s.heap_max() - freeable + per_block);
    }

    #[test]
    fn a_large_object_takes_the_budget_of_sparse_blocks_and_the_chunk_release_balances() {
        let s = space(4);
        sparse(&s);
        assert!(s.alloc_large(CHUNK_SIZE).unwrap().is_some(), "room made");
        assert!(s.committed() <= s.heap_max());
        // Free the large object and every small one: the chunks idle, then all go back.
        s.sweep_large();
        s.advance_epoch();
        let sweep = s.begin_sweep();
        s.finish_sweep(&sweep);
        s.los.drop_warm(&s.res, &s.budget);
        s.release_idle(None, 0, usize::MAX);
        assert_eq!(s.committed(), 0, "every charged byte was uncharged once");
    }

    #[test]
    fn a_block_whose_pages_the_budget_cannot_take_back_stays_pooled() {
        let s = space(1);
        sparse(&s);
        assert!(s.reclaim_pooled_pages(usize::MAX) > 0);
        // Something else takes the freed budget.
        assert!(s.budget.try_charge(s.heap_max() - s.committed()));
        assert_eq!(s.acquire_recyclable(), None);
        assert_eq!(s.pools.recyclable.len(), BLOCKS_PER_CHUNK);
    }
}
