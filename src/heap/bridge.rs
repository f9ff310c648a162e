//! The bridge: the free blocks the pause that begins a sweep takes out of the free pool,
//! lent to allocators until the sweep is offered.
//!
//! The sweep re-finds every empty block of the chunks it sweeps, so the pause that begins
//! it empties the pools; until the sweep is offered (a concurrent cycle first ends its
//! evacuation and settles finalizers, 1-12 ms) an allocator whose pool ran dry found
//! nothing and committed a fresh chunk, and the collector's own copies always went to one.
//! Each cycle grew the heap by a chunk it kept (a weak-value cache with 5 MB live held
//! 30 MB committed for a 13 MB peak in use). The free blocks go onto the bridge instead,
//! and an allocator takes one from there before it commits a chunk.
//!
//! A block taken from the bridge holds objects the sweep must not see (allocated after
//! marking, unmarked): whoever takes it stamps it with the sweep's number inside the take,
//! and the sweep passes stamped blocks over. [`Bridge::close`] (before anything is swept)
//! ends the lending: no take succeeds after it begins, it waits for the takes in progress,
//! so every block taken is stamped before the first is swept; the blocks nobody took are
//! free and in no pool, and the sweep finds them as before. The list is written once per
//! sweep, in its pause, and a take claims an index of it with one atomic add: no lock,
//! and the pause costs what emptying the pool cost before.
//! Loom model: `loom-tests/tests/bridge.rs`.

use super::blocks::BlockIndex;
use crate::sync::{fence, spin_loop, AtomicBool, AtomicUsize, Ordering, UnsafeCell};

/// Free blocks lent between the pause that begins a sweep and the sweep's offer.
#[derive(Debug)]
pub struct Bridge {
    /// The blocks lent, written by [`Bridge::open`] only (closed, no take in progress),
    /// read by takes while open.
    blocks: UnsafeCell<Vec<BlockIndex>>,
    /// Index of the next block to lend.
    next: AtomicUsize,
    open: AtomicBool,
    /// Takes in progress (see [`Bridge::take`]).
    takers: AtomicUsize,
}

// SAFETY: `blocks` is written only by `open`, which runs closed with no take in progress
// (`close` waited for them) and publishes it with the release store of `open`; takes read it
// only after loading `open` true (acquire), and `close` waits for them before the next `open`.
unsafe impl Sync for Bridge {}

impl Default for Bridge {
    fn default() -> Self {
        Bridge {
            blocks: UnsafeCell::new(Vec::new()),
            next: AtomicUsize::new(0),
            open: AtomicBool::new(false),
            takers: AtomicUsize::new(0),
        }
    }
}

impl Bridge {
    /// Lends `blocks` until [`Bridge::close`]. Call it after `close`, when no take can
    /// succeed (in a pause).
    pub fn open(&self, blocks: impl IntoIterator<Item = BlockIndex>) {
        debug_assert!(!self.is_open());
        // SAFETY: closed, and `close` waited for every take: nobody reads the list.
        self.blocks.with_mut(|v| {
            let v = unsafe { &mut *v };
            v.clear();
            v.extend(blocks);
        });
        self.next.store(0, Ordering::Relaxed);
        // Release: a take that finds it open reads the list written above.
        self.open.store(true, Ordering::Release);
    }

    /// Whether blocks are lent now.
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// Takes a block while the bridge is open, calling `stamp` with it before the take
    /// counts as done; None when closed or empty.
    pub fn take(&self, stamp: impl FnOnce(BlockIndex)) -> Option<BlockIndex> {
        if !self.open.load(Ordering::Relaxed) {
            // Closed (or just opened, as if this take came first): every dry-pool refill
            // after the offer passes here, so it touches no shared counter.
            return None;
        }
        // The fences with `close`'s: either `close` sees this take in progress and waits for
        // it, or this take sees the bridge closed (Dekker: the store and the load on each
        // side cannot both miss each other; fences, not SeqCst accesses, which loom models
        // only as AcqRel and which then fails the model).
        self.takers.fetch_add(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        let got = if self.open.load(Ordering::Acquire) {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            // SAFETY: open, and this take is counted: `open` cannot rewrite the list.
            self.blocks.with(|v| unsafe { &*v }.get(i).copied())
        } else {
            None
        };
        if let Some(b) = got {
            stamp(b);
        }
        // Release: `close` returns after the stamp.
        self.takers.fetch_sub(1, Ordering::Release);
        got
    }

    /// Ends the lending: from now on no take succeeds; waits for the takes in progress
    /// (each a few instructions). Every block taken was stamped before this returns; the
    /// others are in no pool (the sweep finds them free).
    pub fn close(&self) {
        self.open.store(false, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        // Acquire, with each take's release: its stamp happens before the return.
        let mut spins = 0u32;
        while self.takers.load(Ordering::Acquire) != 0 {
            // A take is a few instructions, unless its thread lost its core: then give ours.
            spins += 1;
            if spins < 64 {
                spin_loop();
            } else {
                crate::sync::thread::yield_now();
            }
        }
    }
}
