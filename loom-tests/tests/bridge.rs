//! Loom model of the bridge (`heap::bridge`) over the real code: the free blocks the pause
//! that begins a sweep lends to allocators (`Space::begin_sweep`), taken by a mutator whose
//! pools are dry (`Space::acquire_free`), while the collector offers the sweep
//! (`Space::offer_sweep`, which closes the bridge) and sweeps every chunk
//! (`Space::finish_sweep`); the mutator may also sweep a chunk itself once it is offered.
//!
//! One chunk after marking: every block but the last `LEFT_FREE` holds an object marked in
//! this cycle, the rest are free and go onto the bridge. The mutator takes two blocks,
//! each from the bridge, from the pools the sweep refilled, or by sweeping; or, finding
//! the bridge closed before the sweep is offered, it waits the real-time patience for the
//! offer (a std atomic, which loom does not see) and commits the second chunk. Whatever the
//! order: the sweep passes over the blocks the mutator holds (their state stays
//! `Allocating`, neither freed nor pooled), no block is pooled twice, and every free block
//! nobody holds is back in the free pool.
//!
//! The bridge's flag, count of takes in progress and queue are loom's (`tandem::sync`), so
//! loom interleaves a take with the close at each of them; the rest of `src/heap/` (pools,
//! block metadata) runs between them as single steps (see `lazy_sweep.rs`). Without the
//! close's wait for takes in progress, loom finds the take that has popped a block and not
//! stamped it yet while the sweep frees and pools it.
#![cfg(loom)]

use loom::sync::Arc;
use tandem::config::{ByteSize, Config};
use tandem::heap::blocks::{chunk_first_block, BlockPools};
use tandem::heap::metadata::BlockState;
use tandem::heap::{Space, BLOCKS_PER_CHUNK, CHUNK_SIZE};

/// Blocks of the chunk left free (the last ones the pool hands out).
const LEFT_FREE: usize = 2;

/// Takes every block of chunk 0 but the last `LEFT_FREE` and leaves each with an object
/// marked in this cycle (mark bit, line stamp), retired as TLABs are at a pause. Returns
/// the blocks left free.
fn heap_after_marking(space: &Space) -> Vec<usize> {
    use tandem::sync::Ordering::Relaxed;
    let mut used = Vec::new();
    for _ in 0..BLOCKS_PER_CHUNK - LEFT_FREE {
        used.push(space.acquire_free().unwrap().expect("one chunk fits"));
    }
    let epoch = space.advance_epoch();
    for &b in &used {
        space.meta.block_lines(b)[0].store(epoch, Relaxed);
        space.meta.mark(space.block_addr(b));
        space.meta.set_block_state(b, BlockState::Full);
    }
    let first = chunk_first_block(0);
    (first..first + BLOCKS_PER_CHUNK)
        .filter(|b| !used.contains(b))
        .collect()
}

/// The free pool's blocks (taken out and put back, in order).
fn free_pool(space: &Space) -> Vec<usize> {
    BlockPools::peek(&space.pools.free)
        .into_iter()
        .map(|b| b as usize)
        .collect()
}

#[test]
fn blocks_lent_before_the_sweep_is_offered_are_never_swept_or_handed_out_twice() {
    loom_tests::model(|| {
        let space = Arc::new(
            Space::new(&Config {
                heap_min: ByteSize(2 * CHUNK_SIZE),
                heap_max: ByteSize(2 * CHUNK_SIZE),
                ..Config::default()
            })
            .unwrap(),
        );
        let left_free = heap_after_marking(&space);
        // The pause that ends marking: the free blocks go onto the bridge.
        let sweep = space.begin_sweep();
        assert!(free_pool(&space).is_empty(), "the pause empties the pools");

        let started = Arc::new(tandem::sync::AtomicBool::new(false));
        let (s1, started1) = (space.clone(), started.clone());
        let mutator = loom::thread::spawn(move || {
            started1.store(true, tandem::sync::Ordering::Release);
            let mut held = Vec::new();
            for _ in 0..2 {
                let b = s1
                    .acquire_free()
                    .unwrap()
                    .expect("a two-chunk heap has blocks");
                assert_eq!(s1.meta.block_state(b), BlockState::Allocating);
                held.push(b);
            }
            held
        });

        // After the pause (which the mutator has left: its takes and the close interleave,
        // not just follow each other): the collector offers the sweep, then sweeps.
        while !started.load(tandem::sync::Ordering::Acquire) {
            loom::thread::yield_now();
        }
        space.offer_sweep(&sweep);
        space.finish_sweep(&sweep);

        let held = mutator.join().unwrap();
        assert_ne!(held[0], held[1], "a block handed out twice");
        let pooled = free_pool(&space);
        for &b in &held {
            assert_eq!(
                space.meta.block_state(b),
                BlockState::Allocating,
                "block {b} in use was swept"
            );
            assert!(!pooled.contains(&b), "block {b} is in use and in a pool");
        }
        let mut unique = pooled.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), pooled.len(), "a block pooled twice");
        for b in left_free {
            assert!(
                held.contains(&b) || pooled.contains(&b),
                "free block {b} lost: neither held nor pooled"
            );
        }
    });
}

/// The bridge alone, its stamp a loom atomic: a take races the close, the next sweep's
/// open and its close. Whatever the order, a block taken was stamped before the close of
/// the opening that lent it returned, and the list the take reads is never rewritten under
/// it (loom checks the cell). The model above
/// cannot see the stamp (the block metadata is std's); this one fails without the close's
/// wait for takes in progress.
#[test]
fn a_take_is_stamped_before_close_returns_and_never_reads_a_rewritten_list() {
    use tandem::heap::bridge::Bridge;
    use tandem::sync::{AtomicU32, Ordering};
    loom_tests::model(|| {
        let bridge = Arc::new(Bridge::default());
        let stamp = Arc::new(AtomicU32::new(0));
        bridge.open([1, 2]);
        let (b1, s1) = (bridge.clone(), stamp.clone());
        let taker = loom::thread::spawn(move || b1.take(|b| s1.store(b, Ordering::Relaxed)));
        bridge.close();
        let seen = stamp.load(Ordering::Relaxed);
        // The next sweep's pause lends other blocks.
        bridge.open([3]);
        bridge.close();
        let seen_next = stamp.load(Ordering::Relaxed);
        match taker.join().unwrap() {
            // Lent by the first opening: stamped before its close returned.
            Some(b @ (1 | 2)) => assert_eq!(seen, b, "block {b} not stamped when close returned"),
            // A take that began after the first close lends from the next list only.
            Some(b) => {
                assert_eq!(b, 3);
                assert_eq!(seen_next, 3, "block 3 not stamped when close returned");
            }
            None => {}
        }
    });
}
