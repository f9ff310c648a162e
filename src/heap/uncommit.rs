//! Returning memory to the OS without churn: a sweep parks wholly empty chunks as idle
//! instead of releasing them, allocators take idle chunks back before committing new ones,
//! and a background thread (the [`Uncommitter`]) releases a chunk only once it has stayed
//! idle for `TANDEM_UNCOMMIT_DELAY` and the heap is above `TANDEM_HEAP_MIN`, one chunk at a
//! time (ZGC's uncommit delay, Go's background scavenger).
//!
//! The protocol, all under the chunk table's lock:
//! 1. A chunk is parked (`Active` -> `Idle`) only by [`Space::finish_sweep`], when every
//!    block is free and none is in a pool; its blocks stay out of the pools while it idles,
//!    so no allocator can hold one.
//! 2. An allocator whose pool ran dry unparks the lowest idle chunk (`Idle` -> `Active`)
//!    and only then pushes its blocks: a chunk whose blocks are reachable from the pools is
//!    never idle.
//! 3. A releaser claims the highest old-enough idle chunk (`Idle` -> `Releasing`), drops
//!    the lock for the slow madvise, then marks it `Uncommitted` and uncharges it. Nobody
//!    unparks, sweeps or verifies a `Releasing` chunk, and nobody commits over it.
//! 4. Sweeps visit only `Active` chunks: idle ones hold nothing to sweep, and a releaser
//!    may unmap them at any moment. A reader of idle chunks (the verifier, checking their
//!    poison) pins them with [`Space::pin_chunks`], which holds the release gate that
//!    every release holds from claim to finish.

use super::blocks::{chunk_first_block, BlockIndex};
use super::metadata::BlockState;
use super::{Space, BLOCKS_PER_CHUNK, CHUNK_SIZE};
use parking_lot::{Condvar, Mutex};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Where a chunk of the block space stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkState {
    /// Address space only.
    Uncommitted,
    /// Committed; its blocks are allocated, pooled or being swept.
    Active,
    /// Committed and wholly free since the instant, none of its blocks in a pool.
    Idle(Instant),
    /// Being returned to the OS by a thread that does not hold the table's lock.
    Releasing,
}

/// The pause between two chunk releases while more are due: releasing is spread out so
/// that it never takes a core for long.
const RELEASE_PAUSE: Duration = Duration::from_millis(5);

impl Space {
    /// Parks `chunks`, whose blocks are all free and in no pool, as idle from now.
    pub(super) fn park_chunks(&self, chunks: &[usize]) {
        let now = Instant::now();
        let mut table = self.chunks.lock();
        for &c in chunks {
            debug_assert_eq!(table[c], ChunkState::Active);
            table[c] = ChunkState::Idle(now);
        }
    }

    /// Returns the large-object runs that stayed free and unused for one to two `delay`s
    /// to the OS ([`super::los::LargeObjectSpace::release_aged`]); the bytes given back.
    pub fn release_aged_large(&self, now: Instant, delay: Duration) -> usize {
        self.los.release_aged(&self.res, &self.budget, now, delay)
    }

    /// Takes the lowest idle chunk back into use (its lowest addresses are the likeliest to
    /// be warm in the caches): pushes all but its first block to the free pool and returns
    /// the first.
    pub(super) fn unpark_locked(&self, table: &mut [ChunkState]) -> Option<usize> {
        let c = table
            .iter()
            .position(|s| matches!(s, ChunkState::Idle(_)))?;
        table[c] = ChunkState::Active;
        let first = chunk_first_block(c);
        for b in first + 1..first + BLOCKS_PER_CHUNK {
            self.pools.free.push(b as BlockIndex);
        }
        Some(first)
    }

    /// Bytes held by idle chunks.
    pub fn idle_bytes(&self) -> usize {
        let table = self.chunks.lock();
        (0..table.len())
            .filter(|&c| matches!(table[c], ChunkState::Idle(_)))
            .map(|c| self.chunk_charge(c))
            .sum()
    }

    /// Returns up to `limit` idle chunks to the OS, highest first: only chunks idle since
    /// `idle_since` or earlier (any, when None), and only while at least `floor` bytes stay
    /// committed. Returns how many it released.
    pub fn release_idle(&self, idle_since: Option<Instant>, floor: usize, limit: usize) -> usize {
        let mut released = 0;
        while released < limit {
            let _gate = self.release_gate.lock();
            let (c, charge) = {
                let mut table = self.chunks.lock();
                let old_enough = |s: &ChunkState| match s {
                    ChunkState::Idle(at) => idle_since.is_none_or(|cut| *at <= cut),
                    _ => false,
                };
                let Some(c) = table.iter().rposition(old_enough) else {
                    break;
                };
                // The gate makes this the only chunk in release: the budget is exact.
                let charge = self.chunk_charge(c);
                if self.committed() < floor + charge {
                    break;
                }
                table[c] = ChunkState::Releasing;
                (c, charge)
            };
            let start = self.immix_base + c * CHUNK_SIZE;
            self.res.release(start, CHUNK_SIZE);
            self.meta.discard(start, CHUNK_SIZE);
            let first = chunk_first_block(c);
            for b in first..first + BLOCKS_PER_CHUNK {
                self.meta.set_block_state(b, BlockState::Uncommitted);
                self.meta.set_decommitted(b, 0);
            }
            // The pages are gone: uncharge before anyone may commit the chunk again (pages
            // of its blocks decommitted earlier were uncharged then).
            self.budget.uncharge(charge);
            self.chunks.lock()[c] = ChunkState::Uncommitted;
            tracing::trace!(chunk = c, "released chunk");
            released += 1;
        }
        released
    }

    /// Releases idle chunks of any age until `len` more bytes fit in the budget (for an
    /// allocation at the maximum); whether it released any.
    pub(super) fn release_idle_for(&self, len: usize) -> bool {
        let mut any = false;
        while self.committed() + len > self.heap_max() && self.release_idle(None, 0, 1) == 1 {
            any = true;
        }
        any
    }
}

/// Committed chunks, idle ones included, kept from release while this lives.
#[derive(Debug)]
pub struct PinnedChunks<'a> {
    /// The active and idle chunks.
    pub chunks: Vec<usize>,
    _gate: parking_lot::MutexGuard<'a, ()>,
}

impl Space {
    /// Pins the committed chunks, idle ones included, so that none is released while the
    /// caller reads them.
    pub fn pin_chunks(&self) -> PinnedChunks<'_> {
        let gate = self.release_gate.lock();
        let table = self.chunks.lock();
        let chunks = (0..table.len())
            .filter(|&c| matches!(table[c], ChunkState::Active | ChunkState::Idle(_)))
            .collect();
        PinnedChunks {
            chunks,
            _gate: gate,
        }
    }
}

/// The background thread that returns long-idle chunks to the OS.
#[derive(Debug, Default)]
pub struct Uncommitter {
    signal: Arc<StopSignal>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug, Default)]
struct StopSignal {
    stop: Mutex<bool>,
    wake: Condvar,
}

impl StopSignal {
    /// Waits up to `d` or until stopped; whether stopped.
    fn wait(&self, d: Duration) -> bool {
        let mut stop = self.stop.lock();
        if !*stop {
            self.wake.wait_for(&mut stop, d);
        }
        *stop
    }
}

/// Bounds on how often the thread looks for chunks that became due: a quarter of the delay,
/// so a chunk goes back at most a quarter of the delay late.
const MIN_TICK: Duration = Duration::from_millis(10);
const MAX_TICK: Duration = Duration::from_secs(1);

impl Uncommitter {
    /// Starts the thread for the space `space(&owner)`: it releases chunks idle for `delay`
    /// while at least `floor` bytes stay committed. Starts nothing when `delay` is zero (the
    /// sweep then releases at once).
    pub fn start<O: Send + Sync + 'static>(
        &self,
        owner: Arc<O>,
        space: fn(&O) -> (&Space, &crate::fork::ForkGate),
        delay: Duration,
        floor: usize,
    ) -> std::io::Result<()> {
        if delay.is_zero() {
            return Ok(());
        }
        let signal = Arc::clone(&self.signal);
        let handle = std::thread::Builder::new()
            .name("tandem-uncommit".into())
            .spawn(move || {
                let (space, gate) = space(&owner);
                let tick = (delay / 4).clamp(MIN_TICK, MAX_TICK);
                let mut wait = tick;
                while !signal.wait(wait) {
                    let release = || {
                        let _activity = gate.activity();
                        let now = Instant::now();
                        let large = space.release_aged_large(now, delay);
                        large
                            + now
                                .checked_sub(delay)
                                .map_or(0, |due| space.release_idle(Some(due), floor, 1))
                    };
                    // A panic here must not take the process down: memory then merely stays
                    // committed.
                    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(release)) {
                        Ok(0) => wait = tick,
                        Ok(_) => wait = RELEASE_PAUSE,
                        Err(_) => {
                            tracing::error!(
                                "the uncommit thread failed; idle memory stays committed"
                            );
                            return;
                        }
                    }
                }
            })?;
        *self.thread.lock() = Some(handle);
        Ok(())
    }

    /// Forgets the thread (after a fork, in the child, where it does not exist), so that
    /// [`Uncommitter::start`] may start another.
    pub fn forget_thread(&self) {
        std::mem::forget(self.thread.lock().take());
    }

    /// Stops the thread and waits for it (at most one chunk release long).
    pub fn stop(&self) {
        *self.signal.stop.lock() = true;
        self.signal.wake.notify_all();
        if let Some(h) = self.thread.lock().take() {
            if h.thread().id() != std::thread::current().id() {
                let _ = h.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::heap::test_space as space;

    /// Fills `chunks` chunks, then sweeps with nothing marked: every chunk comes out empty.
    fn fill_and_empty(s: &Space, chunks: usize) {
        for _ in 0..chunks * BLOCKS_PER_CHUNK {
            s.acquire_free().unwrap().unwrap();
        }
        s.advance_epoch();
        let sweep = s.begin_sweep();
        s.finish_sweep(&sweep);
    }

    #[test]
    fn empty_chunks_idle_committed_and_are_reused_lowest_first() {
        let s = space(4);
        fill_and_empty(&s, 3);
        assert_eq!(s.committed(), 3 * CHUNK_SIZE);
        assert_eq!(s.idle_bytes(), 3 * CHUNK_SIZE);
        assert!(
            s.committed_chunks().is_empty(),
            "idle chunks are not active"
        );
        let b = s.acquire_free().unwrap().unwrap();
        assert_eq!(crate::heap::blocks::chunk_of_block(b), 0);
        assert_eq!(s.committed_chunks(), vec![0]);
        assert_eq!(s.idle_bytes(), 2 * CHUNK_SIZE);
        assert_eq!(s.committed(), 3 * CHUNK_SIZE, "reuse commits nothing");
    }

    #[test]
    fn release_takes_only_old_idle_chunks_highest_first_and_keeps_the_floor() {
        let s = space(4);
        let before = Instant::now();
        fill_and_empty(&s, 3);
        assert_eq!(s.release_idle(Some(before), 0, usize::MAX), 0, "too young");
        assert_eq!(s.release_idle(None, 0, 1), 1);
        assert_eq!(s.chunks.lock()[2], ChunkState::Uncommitted);
        assert_eq!(s.committed(), 2 * CHUNK_SIZE);
        // The floor keeps one chunk committed.
        assert_eq!(s.release_idle(None, CHUNK_SIZE, usize::MAX), 1);
        assert_eq!(s.committed(), CHUNK_SIZE);
        assert!(matches!(s.chunks.lock()[0], ChunkState::Idle(_)));
        // A released chunk is committed afresh when needed again.
        for _ in 0..2 * BLOCKS_PER_CHUNK {
            s.acquire_free().unwrap().unwrap();
        }
        assert_eq!(s.committed(), 2 * CHUNK_SIZE);
    }

    #[test]
    fn a_large_object_at_the_maximum_takes_the_budget_of_idle_chunks() {
        let s = space(4);
        fill_and_empty(&s, 4);
        assert_eq!(s.committed(), 4 * CHUNK_SIZE);
        assert!(s.alloc_large(CHUNK_SIZE + 1).unwrap().is_some());
        assert_eq!(s.idle_bytes(), 2 * CHUNK_SIZE);
        assert!(s.committed() <= s.heap_max());
    }

    #[test]
    fn the_thread_releases_idle_chunks_after_the_delay_and_stops() {
        let s = Arc::new((space(4), crate::fork::ForkGate::default()));
        fill_and_empty(&s.0, 3);
        let u = Uncommitter::default();
        u.start(
            s.clone(),
            |s| (&s.0, &s.1),
            Duration::from_millis(20),
            CHUNK_SIZE,
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while s.0.committed() > CHUNK_SIZE && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(s.0.committed(), CHUNK_SIZE);
        u.stop();
        assert_eq!(Arc::strong_count(&s), 1, "the thread let go of the space");
    }
}
