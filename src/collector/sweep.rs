//! The parallel sweep phase: workers sweep chunks of a [`ChunkSweep`] (see
//! `heap::sweep`) until none is left; allocators may sweep chunks of it too. The loom model
//! `loom-tests/tests/lazy_sweep.rs` races the two: each chunk is swept once, and no block
//! reaches an allocator unswept.

use crate::heap::sweep::ChunkSweep;
use crate::runtime::Runtime;
use crate::sync::unmodelled::Arc;
use crate::workers::{Job, WorkerContext};

/// Workers' share of one sweep.
pub struct SweepJob {
    rt: Arc<Runtime>,
    /// The sweep.
    pub sweep: Arc<ChunkSweep>,
}

impl SweepJob {
    /// A sweep of every committed chunk after marking with the current epoch. Empties the
    /// block pools: call it while the world is stopped.
    pub fn new(rt: Arc<Runtime>) -> SweepJob {
        let sweep = rt.space.begin_sweep();
        SweepJob { rt, sweep }
    }

    /// Waits for chunks allocators are still sweeping, releases empty chunks above the
    /// minimum heap, pools the rest, and returns the bytes live in blocks.
    pub fn finish(&self) -> usize {
        let live = self.rt.space.finish_sweep(&self.sweep);
        self.rt.evac.young_blocks(self.sweep.young());
        live
    }
}

impl SweepJob {
    /// A worker's step: claims and sweeps the next chunk, keeping a wholly empty one for
    /// [`SweepJob::finish`]; false when none is left.
    pub fn sweep_one(&self) -> bool {
        self.sweep.sweep_next(&self.rt.space, true)
    }
}

impl<P> Job<P> for SweepJob {
    fn run(&self, _ctx: &mut WorkerContext<'_, P>) {
        while self.sweep_one() {}
    }
}
