//! Loom model of an empty block zeroed by its thread in a native region (`alloc::Slow::Clear`,
//! `TlabState::adopt_cleared`) racing a stop-the-world collection that retires the thread's
//! TLAB and sweeps (`Space::begin_sweep` / `finish_sweep`), over the real code: the safepoint
//! protocol (`Safepoint::enter_native`, `leave_native`, `stop_the_world`, `resume`), the
//! TLAB and the space.
//!
//! The mutator takes an empty block to clear, clears it in a native region, takes it back
//! and allocates. The collector stops the world once (a final-mark pause: retire the TLAB,
//! begin the sweep and offer it to allocators), resumes, then sweeps what the allocator left,
//! at any point of that. Whatever the order: the block the allocation lands
//! in is neither freed nor pooled by the sweep (nobody else can be handed it), and no block
//! is pooled twice: a block cleared across a sweep's start goes back to the sweeps instead
//! of into the TLAB (that sweep may not have reached its chunk and would free it in use).
//!
//! Granularity, as in `lazy_sweep.rs`: `src/heap/` uses std atomics, parking_lot and
//! crossbeam's SegQueue, which loom cannot see, so each heap step (a TLAB call, a sweep, a
//! clearing) runs under one model lock and loom runs the steps in every order; the
//! safepoint protocol between them is loom's own. The TLAB is a loom cell: loom also
//! reports a collector's retire that overlaps the mutator's own use of it.
#![cfg(loom)]

use loom::sync::Arc;
use tandem::alloc::{clear_block, BumpWindow, Slow, TlabState};
use tandem::config::{ByteSize, Config};
use tandem::heap::blocks::BlockPools;
use tandem::heap::metadata::BlockState;
use tandem::heap::{Space, CHUNK_SIZE};
use tandem::safepoint::{Safepoint, ThreadState};
use tandem::sync::{Mutex, UnsafeCell};

/// A mutator as the model needs it: its poll word and its TLAB.
struct M {
    ts: ThreadState,
    tlab: UnsafeCell<(BumpWindow, TlabState)>,
}

// SAFETY: as for `MutatorCore`: the TLAB belongs to the mutator's thread while it runs and
// to the collector while the thread is stopped or in a native region (loom checks it).
unsafe impl Sync for M {}

loom_tests::participant!(M);

struct World {
    sp: Safepoint<M>,
    space: Space,
    /// Makes each heap step one step for loom (see the module doc).
    step: Mutex<()>,
    /// Set in the step that allocated the object (read in the collector's steps only).
    allocated: std::sync::atomic::AtomicBool,
}

/// The pools' blocks (taken out and put back, in order).
fn pooled(space: &Space) -> Vec<u32> {
    let mut blocks = BlockPools::peek(&space.pools.free);
    blocks.extend(BlockPools::peek(&space.pools.recyclable));
    blocks
}

#[test]
fn a_block_cleared_across_a_sweep_goes_back_and_no_block_is_handed_out_twice() {
    loom_tests::model(|| {
        let w = Arc::new(World {
            sp: Safepoint::default(),
            space: Space::new(&Config {
                heap_min: ByteSize(CHUNK_SIZE),
                heap_max: ByteSize(2 * CHUNK_SIZE),
                ..Config::default()
            })
            .unwrap(),
            step: Mutex::new(()),
            allocated: std::sync::atomic::AtomicBool::new(false),
        });
        let m = Arc::new(M {
            ts: ThreadState::default(),
            tlab: UnsafeCell::new((BumpWindow::default(), TlabState::default())),
        });
        w.sp.attach(m.clone());

        let (w1, m1) = (w.clone(), m.clone());
        let mutator = loom::thread::spawn(move || {
            // `Mutator::alloc_small_slow`'s loop, one heap step per TLAB call.
            let alloc = || {
                let _step = w1.step.lock();
                // SAFETY: RUNNING on the mutator's own thread (loom checks the exclusion).
                m1.tlab.with_mut(|t| {
                    let (win, tlab) = unsafe { &mut *t };
                    let r = tlab.alloc_slow_or_clear(win, &w1.space, 64, false).unwrap();
                    if matches!(r, Slow::Done(Some(_))) {
                        w1.allocated
                            .store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    r
                })
            };
            let mut given = Vec::new();
            let a = loop {
                match alloc() {
                    Slow::Done(a) => break a.expect("a two-chunk heap has blocks"),
                    Slow::Clear(c) => {
                        let b = c.block;
                        w1.sp.enter_native(&m1);
                        {
                            let _step = w1.step.lock();
                            clear_block(&w1.space, b);
                        }
                        w1.sp.leave_native(&m1);
                        let _step = w1.step.lock();
                        // SAFETY: RUNNING again on the mutator's own thread.
                        m1.tlab
                            .with_mut(|t| unsafe { &mut *t }.1.adopt_cleared(&w1.space, c));
                        if w1.space.meta.block_state(b) == BlockState::Full {
                            given.push(b);
                        }
                    }
                }
            };
            {
                // The block the object landed in is the TLAB's alone right now.
                let _step = w1.step.lock();
                let b = w1.space.block_of(a);
                assert!(
                    !pooled(&w1.space).contains(&(b as u32)),
                    "block {b} is in use and in a pool"
                );
            }
            // Blocks in native code from here on: the stop need not wait for it.
            w1.sp.enter_native(&m1);
            (w1.space.block_of(a), given)
        });

        // A final-mark pause: retire every TLAB and begin the sweep (offered to allocators);
        // the sweep runs after the resume, lazily, as in a concurrent cycle.
        let stopped = w.sp.stop_the_world();
        let (sweep, retired_after_alloc) = {
            let _step = w.step.lock();
            for s in &stopped {
                // SAFETY: the world is stopped: the collector owns the stopped TLABs.
                s.tlab.with_mut(|t| {
                    let (win, tlab) = unsafe { &mut *t };
                    tlab.retire(win, &w.space);
                });
            }
            let sweep = w.space.begin_sweep();
            w.space.offer_sweep(&sweep);
            (
                sweep,
                w.allocated.load(std::sync::atomic::Ordering::Relaxed),
            )
        };
        w.sp.resume();
        {
            let _step = w.step.lock();
            w.space.finish_sweep(&sweep);
        }

        let (b, given) = mutator.join().unwrap();
        if !retired_after_alloc {
            // The TLAB still bumps in block b: no sweep may have freed or pooled it (a
            // sweep that found its chunk all free would even have parked the chunk).
            assert_ne!(
                w.space.meta.block_state(b),
                BlockState::Free,
                "block {b} in use was freed"
            );
            assert!(
                !pooled(&w.space).contains(&(b as u32)),
                "block {b} is in use and in a pool"
            );
        }
        assert!(
            given.len() <= 1,
            "at most one clearing overlapped the one sweep"
        );
        let mut all = pooled(&w.space);
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "a block pooled twice");
        w.sp.leave_native(&m);
        w.sp.detach(&m);
    });
}
