//! Sweeping the block space chunk by chunk: whoever needs the work done claims the next
//! chunk, sweeps its blocks' line marks and hands free and recyclable blocks to the
//! allocators' pools. GC workers sweep in parallel; a mutator whose pools ran dry during
//! a concurrent sweep sweeps a chunk itself instead of committing fresh memory (lazy
//! sweeping as in Immix), so allocation never outruns the sweep into new chunks and the
//! sweep finishes even when its workers get little CPU.
//!
//! The pools were emptied when the sweep began, so no allocator touches a block until it
//! has been swept and pushed (the queue push/pop orders the sweep's writes before the
//! allocator's), except the free blocks lent on the bridge until the sweep is offered
//! (see `heap::bridge`): those taken are stamped with the sweep's number, and it passes
//! them over. Wholly empty chunks swept by workers are parked as idle at once (see
//! `heap::uncommit`): allocators take them back when the pools run dry, and the uncommit
//! thread returns those that stay idle to the OS.

use super::blocks::{chunk_first_block, sweep_block, BlockIndex};
use super::metadata::{BlockState, LineRule};
use super::{Space, BLOCKS_PER_CHUNK, LINE_SIZE};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// One sweep over the chunks committed when it began.
#[derive(Debug)]
pub struct ChunkSweep {
    /// Its number (`Space::sweeps_begun` once it began): blocks stamped with it were taken
    /// from the bridge and are not swept.
    number: u64,
    chunks: Vec<usize>,
    next: AtomicUsize,
    done: AtomicUsize,
    rule: LineRule,
    live_lines: AtomicUsize,
    black_lines: AtomicUsize,
    marked_bytes: AtomicUsize,
    young_lines: AtomicUsize,
    young_bytes: AtomicUsize,
    young_live: AtomicUsize,
}

/// What a sweep found in the blocks of young objects (see [`super::blocks::SweptBlock`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct YoungBlocks {
    /// Of the bytes of lines allocated there, the share holding objects marked live: what
    /// evacuating such a block copies.
    pub survival: f64,
    /// Of the bytes of the lines kept live there, the share the live objects fill: how
    /// scattered young survivors are.
    pub density: f64,
}

impl YoungBlocks {
    /// Of the bytes of lines allocated in young blocks, the share that survivors' lines
    /// hold empty: what compacting young blocks gives back per byte allocated.
    pub fn waste(&self) -> f64 {
        self.survival * (1.0 / self.density - 1.0)
    }
}

impl ChunkSweep {
    /// Claims and sweeps the next unswept chunk; false when none is left. `hold_empty`:
    /// park a wholly empty chunk as idle (to be returned to the OS if it stays unused)
    /// instead of pooling its blocks.
    pub fn sweep_next(&self, space: &Space, hold_empty: bool) -> bool {
        if space.pools.bridge.is_open() {
            // A stop-the-world sweep, never offered: nothing is lent from here on.
            space.pools.bridge.close();
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        let Some(&c) = self.chunks.get(i) else {
            return false;
        };
        let poison = space.poison();
        let first = chunk_first_block(c);
        let mut free: [BlockIndex; BLOCKS_PER_CHUNK] = [0; BLOCKS_PER_CHUNK];
        let mut nfree = 0;
        let (mut live, mut black, mut marked) = (0, 0, 0);
        let (mut young_lines, mut young_bytes, mut young_live) = (0, 0, 0);
        for b in first..first + BLOCKS_PER_CHUNK {
            if space.meta.taken_in(b) == self.number {
                // Taken from the bridge since the sweep began: its objects are newer than
                // the marks. Like a chunk committed since, it keeps no marks but sticky
                // ones (copies made there were marked).
                if !self.rule.sticky {
                    space
                        .meta
                        .clear_marks(space.block_addr(b), super::BLOCK_SIZE);
                }
                continue;
            }
            let r = sweep_block(&space.meta, space.immix_base(), b, self.rule, poison);
            live += r.live_lines;
            black += r.black_lines;
            marked += r.marked_bytes;
            if r.young.0 != 0 {
                young_lines += r.young.0;
                young_live += r.young.1;
                young_bytes += r.marked_bytes;
            }
            match r.state {
                BlockState::Free => {
                    free[nfree] = b as BlockIndex;
                    nfree += 1;
                }
                BlockState::Recyclable => space.pools.recyclable.push(b as BlockIndex),
                _ => {}
            }
        }
        if hold_empty && nfree == BLOCKS_PER_CHUNK {
            // Idle at once, not at the end of the sweep: an allocator whose pools run dry
            // takes an idle chunk back before it commits a new one, and until the sweep
            // ended these blocks were in no pool and no idle chunk (graph/t2 committed
            // fresh chunks while hundreds of swept empty blocks waited for the end).
            space.park_chunks(&[c]);
        } else {
            for &b in &free[..nfree] {
                space.pools.free.push(b);
            }
        }
        self.live_lines.fetch_add(live, Ordering::Relaxed);
        self.black_lines.fetch_add(black, Ordering::Relaxed);
        self.marked_bytes.fetch_add(marked, Ordering::Relaxed);
        self.young_lines.fetch_add(young_lines, Ordering::Relaxed);
        self.young_bytes.fetch_add(young_bytes, Ordering::Relaxed);
        self.young_live.fetch_add(young_live, Ordering::Relaxed);
        // Release: the totals above are complete when `finish_sweep` sees the count.
        self.done.fetch_add(1, Ordering::Release);
        true
    }

    /// Bytes in lines that were live only because they were allocated during marking.
    pub fn black_bytes(&self) -> usize {
        self.black_lines.load(Ordering::Relaxed) * LINE_SIZE
    }

    /// Bytes of the objects marked in the swept blocks: the live data itself, without the
    /// free space of the lines that hold it.
    pub fn marked_bytes(&self) -> usize {
        self.marked_bytes.load(Ordering::Relaxed)
    }

    /// What marking found in the blocks of young objects; None when there were none, or
    /// none of their objects survived.
    pub fn young(&self) -> Option<YoungBlocks> {
        let lines = self.young_lines.load(Ordering::Relaxed);
        let live = self.young_live.load(Ordering::Relaxed);
        let bytes = self.young_bytes.load(Ordering::Relaxed) as f64;
        (lines != 0 && live != 0 && bytes > 0.0).then(|| YoungBlocks {
            survival: bytes / (lines * LINE_SIZE) as f64,
            density: bytes / (live * LINE_SIZE) as f64,
        })
    }
}

impl Space {
    /// Clears the mark bits in every chunk committed since `sweep` began (which it does not
    /// visit), without sticky marks; call it when no tracer runs any more, before the sweep
    /// is offered. Marking that ran after the sweep's snapshot (a concurrent cycle's
    /// resurrection of finalizable objects: the pools are empty then, so its copies go to
    /// blocks taken from the bridge, whose marks the sweep clears as it passes them over,
    /// or to fresh chunks) left marked objects there, and the next cycle, finding them marked,
    /// neither traced nor kept them: a finalizer queue's dead objects were freed while the
    /// queue still held them (`tandem_next_dead` returned freed memory).
    pub fn forget_marks_outside(&self, sweep: &ChunkSweep) {
        if self.generational {
            // Sticky marks are meant to last: a marked object is old.
            return;
        }
        // Both lists are in chunk order (`committed_chunks` builds them).
        for c in self.committed_chunks() {
            if sweep.chunks.binary_search(&c).is_err() {
                let start = self.block_addr(super::blocks::chunk_first_block(c));
                self.meta.clear_marks(start, super::CHUNK_SIZE);
            }
        }
    }

    /// Begins a sweep after marking with the current epoch: empties the block pools, the
    /// free blocks onto the bridge (call it while the world is stopped). Allocators help
    /// only once it is offered.
    pub fn begin_sweep(&self) -> Arc<ChunkSweep> {
        // A sweep begun and never swept (a cycle abandoned) lends nothing any more.
        self.pools.bridge.close();
        while self.pools.recyclable.pop().is_some() {}
        self.sweep_pending.store(true, Ordering::Release);
        let number = self.sweeps.fetch_add(1, Ordering::AcqRel) + 1;
        self.pools
            .bridge
            .open(std::iter::from_fn(|| self.pools.free.pop()));
        Arc::new(ChunkSweep {
            number,
            chunks: self.committed_chunks(),
            next: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            rule: self.line_rule(),
            live_lines: AtomicUsize::new(0),
            black_lines: AtomicUsize::new(0),
            marked_bytes: AtomicUsize::new(0),
            young_lines: AtomicUsize::new(0),
            young_bytes: AtomicUsize::new(0),
            young_live: AtomicUsize::new(0),
        })
    }

    /// Lets allocators whose pools run dry sweep chunks of `s` (once nothing but the sweep
    /// may still write to dead objects' memory).
    pub fn offer_sweep(&self, s: &Arc<ChunkSweep>) {
        self.pools.bridge.close();
        *self.sweep.lock() = Some(s.clone());
        self.sweep_pending.store(false, Ordering::Release);
    }

    /// Sweeps one chunk of the sweep in progress for an allocator whose pools ran dry;
    /// false when there is no sweep or nothing left to claim.
    pub fn assist_sweep(&self) -> bool {
        let Some(s) = self.sweep.lock().clone() else {
            return false;
        };
        s.sweep_next(self, false)
    }

    /// Ends the sweep once every claimed chunk is swept (allocators may still be finishing
    /// one), releases idle chunks above the minimum heap at once when the uncommit delay is
    /// zero, and returns the bytes live in blocks.
    pub fn finish_sweep(&self, s: &ChunkSweep) -> usize {
        // The first `sweep_next` closes the bridge if the sweep was never offered.
        while s.sweep_next(self, true) {}
        // A sweep run inside a pause (stop-the-world) is never offered.
        self.sweep_pending.store(false, Ordering::Release);
        *self.sweep.lock() = None;
        let mut spins = 0u32;
        while s.done.load(Ordering::Acquire) < s.chunks.len() {
            spins += 1;
            if spins < 64 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(std::time::Duration::from_micros(50));
            }
        }
        if self.uncommit_delay.is_zero() {
            self.release_idle(None, self.heap_min(), usize::MAX);
        }
        s.live_lines.load(Ordering::Relaxed) * LINE_SIZE
    }
}
