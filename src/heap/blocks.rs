//! The Immix block space: chunks committed on demand, pools of free and recyclable blocks,
//! hole search and the per-block sweep.

use super::metadata::{BlockState, LineRule, SideMetadata, LINE_FREE};
use super::reclaim::line_decommitted;
use super::{BLOCKS_PER_CHUNK, BLOCK_SIZE, CHUNK_SIZE, LINES_PER_BLOCK, LINE_SIZE};
use crossbeam::queue::SegQueue;

/// Index of a block from the start of the Immix space.
pub type BlockIndex = u32;

/// The pools the allocators draw blocks from. Lock-free: a TLAB refill touches no lock.
#[derive(Debug, Default)]
pub struct BlockPools {
    /// Empty blocks of committed chunks.
    pub free: SegQueue<BlockIndex>,
    /// Blocks with at least one free line.
    pub recyclable: SegQueue<BlockIndex>,
    /// The free blocks lent while a sweep has begun and is not offered yet.
    pub bridge: super::bridge::Bridge,
}

impl BlockPools {
    /// Empties both pools (the sweep rebuilds them).
    pub fn clear(&self) {
        while self.free.pop().is_some() {}
        while self.recyclable.pop().is_some() {}
    }

    /// The blocks of `pool`, taken out and put back in order: for tests and checks, with
    /// no allocator running (an allocator meanwhile would find the pool short).
    pub fn peek(pool: &SegQueue<BlockIndex>) -> Vec<BlockIndex> {
        let blocks: Vec<BlockIndex> = std::iter::from_fn(|| pool.pop()).collect();
        for &b in &blocks {
            pool.push(b);
        }
        blocks
    }
}

/// A run of free lines `[start, end)` inside one block, as line indices within the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hole {
    /// First free line.
    pub start: usize,
    /// One past the last free line.
    pub end: usize,
}

/// Finds the first hole of block `block` at or after line `from`.
pub fn find_hole(meta: &SideMetadata, block: usize, from: usize) -> Option<Hole> {
    use std::sync::atomic::Ordering::Relaxed;
    let lines = meta.block_lines(block);
    let start = (from..LINES_PER_BLOCK).find(|&i| lines[i].load(Relaxed) == LINE_FREE)?;
    let end = (start..LINES_PER_BLOCK)
        .find(|&i| lines[i].load(Relaxed) != LINE_FREE)
        .unwrap_or(LINES_PER_BLOCK);
    Some(Hole { start, end })
}

/// What the sweep found in one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweptBlock {
    /// The block's new state.
    pub state: BlockState,
    /// Lines marked live in this cycle.
    pub live_lines: usize,
    /// Of those, lines allocated black during this cycle's marking (live by allocation,
    /// not by tracing).
    pub black_lines: usize,
    /// Bytes of the objects marked there.
    pub marked_bytes: usize,
    /// For a block of young objects (the last sweep left nothing marked there, and no
    /// copy was made into it since): the lines allocated into it, black ones excepted,
    /// that this marking found (`young.0`) and that it kept live (`young.1`); (0, 0) for
    /// other blocks.
    pub young: (usize, usize),
}

/// Sweeps one committed block after the marking `rule` describes: lines it does not keep
/// live become free (poisoned with `poison` when set), mark bits are cleared (only the
/// freed lines' when they are sticky), and the block's state and live-line count are
/// recorded.
pub fn sweep_block(
    meta: &SideMetadata,
    immix_base: usize,
    block: usize,
    rule: LineRule,
    poison: Option<u64>,
) -> SweptBlock {
    let epoch = rule.epoch;
    use std::sync::atomic::Ordering::Relaxed;
    if meta.block_state(block) == BlockState::Clearing {
        // Empty and held by the thread zeroing it: nothing to free, and not the pools'.
        return SweptBlock {
            state: BlockState::Clearing,
            live_lines: 0,
            black_lines: 0,
            marked_bytes: 0,
            young: (0, 0),
        };
    }
    let lines = meta.block_lines(block);
    let block_addr = immix_base + block * BLOCK_SIZE;
    let mut live = 0;
    let mut black = 0;
    let mut filled = 0;
    // Decommitted pages hold only free lines, read as zero and are not charged: poisoning
    // them would commit them behind the budget's back.
    let decommitted = meta.decommitted(block);
    for (i, l) in lines.iter().enumerate() {
        let v = l.load(Relaxed);
        filled += usize::from(v != LINE_FREE && v != super::metadata::black_stamp(epoch));
        if rule.live(v) {
            live += 1;
            black += usize::from(v == super::metadata::black_stamp(epoch));
        } else {
            if v != LINE_FREE {
                l.store(LINE_FREE, Relaxed);
            }
            if rule.sticky {
                meta.clear_line_marks(block_addr + i * LINE_SIZE);
            }
            match poison {
                Some(p) if !line_decommitted(decommitted, i) => {
                    poison_range(block_addr + i * LINE_SIZE, LINE_SIZE, p);
                }
                _ => {}
            }
        }
    }
    if !rule.sticky {
        meta.clear_marks(block_addr, BLOCK_SIZE);
    }
    let young = meta.live_bytes(block) == 0;
    let marked_bytes = meta.settle_live_bytes_adding(block, rule.nursery);
    let state = match live {
        0 => BlockState::Free,
        LINES_PER_BLOCK => BlockState::Full,
        _ => BlockState::Recyclable,
    };
    meta.set_block_state(block, state);
    meta.set_live_lines(block, live);
    SweptBlock {
        state,
        live_lines: live,
        black_lines: black,
        marked_bytes,
        young: if young {
            (filled, live - black)
        } else {
            (0, 0)
        },
    }
}

/// Fills `[addr, addr+len)` with the 8-byte pattern `p`.
pub fn poison_range(addr: usize, len: usize, p: u64) {
    debug_assert!(addr.is_multiple_of(8) && len.is_multiple_of(8));
    // SAFETY: callers pass committed heap memory that holds no live object.
    unsafe { std::slice::from_raw_parts_mut(addr as *mut u64, len / 8) }.fill(p);
}

/// The first word of `[addr, addr+len)` that no longer holds the pattern `p`, as (word
/// index, value): memory written after it was freed and poisoned.
pub fn find_unpoisoned(addr: usize, len: usize, p: u64) -> Option<(usize, u64)> {
    debug_assert!(addr.is_multiple_of(8) && len.is_multiple_of(8));
    // SAFETY: callers pass committed heap memory that holds no live object and that nobody
    // writes meanwhile (the world is stopped, or the space's lock is held).
    let words = unsafe { std::slice::from_raw_parts(addr as *const u64, len / 8) };
    let i = words.iter().position(|&w| w != p)?;
    Some((i, words[i]))
}

/// First block index of chunk `chunk`.
pub fn chunk_first_block(chunk: usize) -> usize {
    chunk * BLOCKS_PER_CHUNK
}

/// Chunk that holds block `block`.
pub fn chunk_of_block(block: usize) -> usize {
    block / BLOCKS_PER_CHUNK
}

const _: () = assert!(BLOCKS_PER_CHUNK * BLOCK_SIZE == CHUNK_SIZE);
