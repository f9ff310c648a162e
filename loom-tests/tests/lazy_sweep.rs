//! Loom model of lazy sweeping racing the workers' sweep, over the real code: the
//! concurrent cycle's step 4 (`SweepJob` on the worker pool, `Space::offer_sweep`,
//! `SweepJob::finish`) while a mutator allocates through `TlabState::alloc_slow`, whose
//! dry pools make it sweep a chunk itself (`Space::acquire_free` -> `assist_sweep`).
//!
//! Two chunks after marking: every block holds lines live in the last cycle and dead now
//! (stamped with the old epoch) and free lines, and all but one block per chunk an object
//! marked in this cycle (mark bit, line stamp) in its first line. So each chunk yields
//! recyclable blocks and exactly one free block, and a mutator that finds the pools dry
//! sweeps one chunk per free block it needs. The mutator allocates a small object
//! (recyclable blocks first) and then a medium one (a free block), so it may sweep chunk 0,
//! both chunks or neither, while the worker sweeps the rest. Whatever the order: every
//! chunk is swept exactly once (the live lines the sweep counts match what was marked),
//! every block is swept, no block is handed to the allocator before it is swept or swept
//! again after, and no block is handed out twice.
//!
//! Granularity: `src/heap/` still uses std atomics, parking_lot and crossbeam's SegQueue,
//! which loom cannot see. Loom would take the heap steps of different threads for
//! independent and never reorder them, so each one (a worker's `SweepJob::sweep_one`, a
//! mutator's `alloc_slow`, `SweepJob::finish`) runs under one model lock, `Steps::step`:
//! loom then runs them in every order, each as one atomic step. The claim counter and the
//! pools inside a step are not interleaved until `src/heap/` takes its primitives from
//! `tandem::sync`; then the step lock can go and this model explores them too.
#![cfg(loom)]

use std::sync::Arc;
use tandem::alloc::{BumpWindow, TlabState};
use tandem::collector::sweep::SweepJob;
use tandem::config::{ByteSize, Config};
use tandem::heap::blocks::chunk_first_block;
use tandem::heap::metadata::{BlockState, LINE_FRESH};
use tandem::heap::{Space, BLOCKS_PER_CHUNK, CHUNK_SIZE, LINE_SIZE};
use tandem::runtime::Runtime;
use tandem::sync::Mutex;
use tandem::workers::{Job, WorkerContext, WorkerPool};

const CHUNKS: usize = 2;
/// The one block of each chunk that holds no live line.
const DEAD_BLOCK: usize = 1;
/// A medium object: over one line, so it takes a whole free block (the overflow window).
const MEDIUM: usize = 2 * LINE_SIZE;

/// Lines of every block that were live in the last cycle and are dead in this one.
const DEAD_LINES: std::ops::Range<usize> = 1..3;

/// The heap as marking left it. In every block: line 0 holds an object marked in this
/// cycle (mark bit and line stamp), except in each chunk's `DEAD_BLOCK`, where it is dead;
/// `DEAD_LINES` are stamped with the old epoch; the rest are free lines (holes). So an
/// unswept block has a hole an allocator could use, and the old stamps and mark bits show
/// whether the sweep has been over it. Returns the old epoch and the number of live lines.
fn heap_after_marking(space: &Space) -> (u8, usize) {
    use tandem::sync::Ordering::Relaxed;
    for _ in 0..CHUNKS * BLOCKS_PER_CHUNK {
        space
            .acquire_free()
            .unwrap()
            .expect("the heap holds two chunks");
    }
    let old = space.epoch();
    let epoch = space.advance_epoch();
    let mut live = 0;
    for c in 0..CHUNKS {
        for b in chunk_first_block(c)..chunk_first_block(c + 1) {
            let lines = space.meta.block_lines(b);
            for l in &lines[DEAD_LINES] {
                l.store(old, Relaxed);
            }
            if b == chunk_first_block(c) + DEAD_BLOCK {
                lines[0].store(old, Relaxed);
            } else {
                lines[0].store(epoch, Relaxed);
                space.meta.mark(space.block_addr(b));
                live += 1;
            }
            // Retired at the pause, as TLABs are.
            space.meta.set_block_state(b, BlockState::Full);
        }
    }
    (old, live)
}

/// Whether the sweep has been over block `b`: no line keeps the old epoch's stamp and the
/// mark bits are cleared.
fn swept(space: &Space, b: usize, old: u8) -> bool {
    !space.meta.is_marked(space.block_addr(b))
        && space
            .meta
            .block_lines(b)
            .iter()
            .all(|l| l.load(tandem::sync::Ordering::Relaxed) != old)
}

/// The sweep, and the lock that makes each heap step one step for loom.
struct Steps {
    sweep: Arc<SweepJob>,
    step: Mutex<()>,
}

/// The workers' share, one chunk per step: `SweepJob::run`'s loop, `while sweep_one() {}`.
impl Job<()> for Steps {
    fn run(&self, _ctx: &mut WorkerContext<'_, ()>) {
        while {
            let _step = self.step.lock();
            self.sweep.sweep_one()
        } {}
    }
}

#[test]
fn lazy_and_worker_sweeps_sweep_every_chunk_once_and_hand_out_only_swept_blocks() {
    loom_tests::model(|| {
        let config = Config {
            heap_min: ByteSize(CHUNKS * CHUNK_SIZE),
            heap_max: ByteSize(CHUNKS * CHUNK_SIZE),
            ..Config::default()
        };
        let rt = Arc::new(Runtime::new(config).unwrap());
        let (old, live_lines) = heap_after_marking(&rt.space);
        let pool = WorkerPool::<()>::new(1, false).unwrap();

        // Step 4 of the concurrent cycle: the pools are emptied, allocators may help.
        let steps = Arc::new(Steps {
            sweep: Arc::new(SweepJob::new(rt.clone())),
            step: Mutex::new(()),
        });
        rt.space.offer_sweep(&steps.sweep.sweep);

        let (rt1, steps1) = (rt.clone(), steps.clone());
        let mutator = loom::thread::spawn(move || {
            let (mut w, mut tlab) = (BumpWindow::default(), TlabState::default());
            let mut allocated = Vec::new();
            for size in [8, MEDIUM] {
                let a = {
                    let _step = steps1.step.lock();
                    tlab.alloc_slow(&mut w, &rt1.space, size, false)
                }
                .unwrap()
                .expect("the sweep frees blocks");
                let b = rt1.space.block_of(a);
                assert!(swept(&rt1.space, b, old), "block {b} handed out unswept");
                assert_eq!(rt1.space.meta.block_state(b), BlockState::Allocating);
                allocated.push(a);
            }
            allocated
        });

        pool.run_on(1, steps.clone(), std::iter::empty());
        let live = {
            let _step = steps.step.lock();
            steps.sweep.finish()
        };
        let allocated = mutator.join().unwrap();

        assert_eq!(
            live,
            live_lines * LINE_SIZE,
            "every chunk swept exactly once"
        );
        for b in 0..CHUNKS * BLOCKS_PER_CHUNK {
            assert!(swept(&rt.space, b, old), "block {b} never swept");
        }
        let blocks: Vec<usize> = allocated.iter().map(|&a| rt.space.block_of(a)).collect();
        assert_ne!(blocks[0], blocks[1], "a block handed out twice");
        for (&a, &b) in allocated.iter().zip(&blocks) {
            let line = rt.space.meta.line(rt.space.line_of(a));
            assert_eq!(
                line.load(tandem::sync::Ordering::Relaxed),
                LINE_FRESH,
                "block {b} swept again after it was handed out"
            );
            assert_eq!(rt.space.meta.block_state(b), BlockState::Allocating);
        }
        drop(pool);
    });
}
