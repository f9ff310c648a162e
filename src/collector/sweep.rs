//! Parallel sweeping: workers claim chunks, sweep their blocks' line marks and hand free
//! and recyclable blocks to the allocators' pools as they go (so allocation can continue
//! during a concurrent sweep); wholly empty chunks wait for `finish`, which returns those
//! above the minimum heap to the OS.
//!
//! The pools were emptied before the sweep started, so no allocator touches a block until
//! it has been swept and pushed (the queue push/pop orders the sweep's writes before the
//! allocator's).

use crate::heap::blocks::{chunk_first_block, sweep_block, BlockIndex};
use crate::heap::metadata::BlockState;
use crate::heap::{BLOCKS_PER_CHUNK, CHUNK_SIZE, LINE_SIZE};
use crate::runtime::Runtime;
use crate::workers::{Job, WorkerContext};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The parallel sweep phase over the chunks committed when it was created.
pub struct SweepJob {
    rt: Arc<Runtime>,
    chunks: Vec<usize>,
    next: AtomicUsize,
    epoch: u8,
    empty_chunks: Mutex<Vec<usize>>,
    live_lines: AtomicUsize,
    black_lines: AtomicUsize,
}

impl SweepJob {
    /// A sweep of every committed chunk after marking with `epoch`. Empties the block
    /// pools: call it while the world is stopped.
    pub fn new(rt: Arc<Runtime>, epoch: u8) -> SweepJob {
        rt.space.pools.clear();
        let chunks = rt.space.committed_chunks();
        SweepJob {
            rt,
            chunks,
            next: AtomicUsize::new(0),
            epoch,
            empty_chunks: Mutex::new(Vec::new()),
            live_lines: AtomicUsize::new(0),
            black_lines: AtomicUsize::new(0),
        }
    }

    /// Bytes in lines that were live only because they were allocated during marking.
    pub fn black_bytes(&self) -> usize {
        self.black_lines.load(Ordering::Relaxed) * LINE_SIZE
    }

    /// Releases empty chunks above the minimum heap, pools the rest, and returns the bytes
    /// live in blocks.
    pub fn finish(&self) -> usize {
        let space = &self.rt.space;
        let mut empty = std::mem::take(&mut *self.empty_chunks.lock());
        empty.sort_unstable();
        // Keep the lowest empty chunks (better locality), release from the top.
        while let Some(&c) = empty.last() {
            if space.committed() < space.heap_min() + CHUNK_SIZE {
                break;
            }
            space.release_chunk(c);
            empty.pop();
        }
        for c in empty {
            let first = chunk_first_block(c);
            for b in first..first + BLOCKS_PER_CHUNK {
                space.pools.free.push(b as BlockIndex);
            }
        }
        self.live_lines.load(Ordering::Relaxed) * LINE_SIZE
    }
}

impl<P> Job<P> for SweepJob {
    fn run(&self, _ctx: &mut WorkerContext<'_, P>) {
        let space = &self.rt.space;
        let poison = space.poison();
        let mut live_lines = 0;
        let mut black_lines = 0;
        let mut free = Vec::with_capacity(BLOCKS_PER_CHUNK);
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(&c) = self.chunks.get(i) else { break };
            let first = chunk_first_block(c);
            free.clear();
            for b in first..first + BLOCKS_PER_CHUNK {
                let r = sweep_block(&space.meta, space.immix_base(), b, self.epoch, poison);
                live_lines += r.live_lines;
                black_lines += r.black_lines;
                match r.state {
                    BlockState::Free => free.push(b as BlockIndex),
                    BlockState::Recyclable => space.pools.recyclable.push(b as BlockIndex),
                    _ => {}
                }
            }
            if free.len() == BLOCKS_PER_CHUNK {
                self.empty_chunks.lock().push(c);
            } else {
                for &b in &free {
                    space.pools.free.push(b);
                }
            }
        }
        self.live_lines.fetch_add(live_lines, Ordering::Relaxed);
        self.black_lines.fetch_add(black_lines, Ordering::Relaxed);
    }
}
