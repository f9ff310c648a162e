//! Parallel sweeping: workers claim chunks, sweep their blocks' line marks, and the results
//! rebuild the block pools; empty chunks above the minimum heap go back to the OS.

use crate::heap::blocks::{chunk_first_block, sweep_block, BlockIndex};
use crate::heap::metadata::BlockState;
use crate::heap::{BLOCKS_PER_CHUNK, CHUNK_SIZE, LINE_SIZE};
use crate::runtime::Runtime;
use crate::workers::{Job, WorkerContext};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[derive(Debug, Default)]
struct Swept {
    free: Vec<BlockIndex>,
    recyclable: Vec<BlockIndex>,
    empty_chunks: Vec<usize>,
    live_lines: usize,
}

/// The parallel sweep phase over the committed chunks.
pub struct SweepJob {
    rt: Arc<Runtime>,
    chunks: Vec<usize>,
    next: AtomicUsize,
    epoch: u8,
    out: Mutex<Swept>,
}

impl SweepJob {
    /// A sweep of every committed chunk after marking with `epoch`.
    pub fn new(rt: Arc<Runtime>, epoch: u8) -> SweepJob {
        let chunks = rt.space.committed_chunks();
        SweepJob {
            rt,
            chunks,
            next: AtomicUsize::new(0),
            epoch,
            out: Mutex::new(Swept::default()),
        }
    }

    /// Rebuilds the block pools from the results, releases empty chunks above the minimum
    /// heap, and returns the bytes live in blocks.
    pub fn finish(&self) -> usize {
        let space = &self.rt.space;
        let mut out = self.out.lock();
        let mut sw = std::mem::take(&mut *out);
        sw.empty_chunks.sort_unstable();
        sw.free.sort_unstable();
        sw.recyclable.sort_unstable();
        // Keep the lowest empty chunks (better locality), release from the top.
        while let Some(&c) = sw.empty_chunks.last() {
            if space.committed() < space.heap_min() + CHUNK_SIZE {
                break;
            }
            space.release_chunk(c);
            sw.empty_chunks.pop();
        }
        for &c in &sw.empty_chunks {
            let first = chunk_first_block(c);
            for b in first..first + BLOCKS_PER_CHUNK {
                space.pools.free.push(b as BlockIndex);
            }
        }
        for b in sw.free {
            space.pools.free.push(b);
        }
        for b in sw.recyclable {
            space.pools.recyclable.push(b);
        }
        sw.live_lines * LINE_SIZE
    }
}

impl<P> Job<P> for SweepJob {
    fn run(&self, _ctx: &mut WorkerContext<'_, P>) {
        let space = &self.rt.space;
        let poison = space.poison();
        let mut local = Swept::default();
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(&c) = self.chunks.get(i) else { break };
            let first = chunk_first_block(c);
            let mut free = Vec::new();
            for b in first..first + BLOCKS_PER_CHUNK {
                let r = sweep_block(&space.meta, space.immix_base(), b, self.epoch, poison);
                local.live_lines += r.live_lines;
                match r.state {
                    BlockState::Free => free.push(b as BlockIndex),
                    BlockState::Recyclable => local.recyclable.push(b as BlockIndex),
                    _ => {}
                }
            }
            if free.len() == BLOCKS_PER_CHUNK {
                local.empty_chunks.push(c);
            } else {
                local.free.extend(free);
            }
        }
        let mut out = self.out.lock();
        out.free.append(&mut local.free);
        out.recyclable.append(&mut local.recyclable);
        out.empty_chunks.append(&mut local.empty_chunks);
        out.live_lines += local.live_lines;
    }
}
