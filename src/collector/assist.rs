//! Mark assists: while concurrent marking runs, a mutator that allocates also traces, in
//! proportion to what it allocates (Go's GC assists).
//!
//! Without them the heap grows during marking by whatever the mutators allocate before the
//! markers finish, and with more runnable threads than cores the markers get a small share
//! of the CPU while the allocators get the rest: the heap runs up to its maximum and
//! allocations stall. With assists the allocators pay for their allocation in marking
//! work, so marking finishes near a goal the pacer sets at init mark.
//!
//! # Pacing
//!
//! At init mark the pacer gives the cycle an estimate of its work (the objects the last
//! cycle marked) and a heap goal. Each allocation slow path while marking adds to its
//! thread's debt `bytes × remaining work / remaining distance to the goal`; once the debt
//! reaches [`MIN_ASSIST`] objects the thread pays it first from the workers' credit (objects
//! the background markers marked, which no thread has claimed yet: Go's background scan
//! credit), and what the credit does not cover by scanning objects taken from the
//! markers' queues and the full SATB buffers. Without the credit, a thread paid its debt in
//! full even while the workers alone were ahead of the goal: binary-trees depth 18 with one
//! mutator on 2 cores had it do 40% of every cycle's marking on its own time. Past the goal
//! the distance is clamped small, so assists take all the work they can find. A thread that
//! finds no work is forgiven its debt (the markers hold the rest or marking is done).
//!
//! # Why nothing is lost
//!
//! An assist marks and scans exactly as a worker does (the same [`Tracer`]). It holds the
//! workers' phase open while it runs ([`PacketQueues::hold`]), so they cannot end it while
//! the assist may still give work back; what it did not finish it gives back before it
//! lets go. A trace callback that panics during an assist (a VM bug, on the mutator's own
//! thread) loses what the assist held: the panic is caught, kept, and raised by the
//! final-mark pause on the control thread, which fails the collector as a worker's panic
//! does (every thread then gets the error; the cycle never sweeps with objects unscanned).
//! Before, the panic unwound through the allocation that assisted, and the cycle went on
//! to sweep. Between the workers' phases
//! (while the control thread drains SATB buffers or asks for the handshake) an assist may
//! take and give back too, and the next phase finds it. Assists run only while the
//! mutator's `barriers` byte says MARKING, which the final-mark pause turns off with every
//! mutator stopped (so with no assist running); that pause then runs the pool while any
//! packet is pending, so nothing an assist gave back is left when the sweep starts, nor
//! carried into the next cycle.
//! The loom model `loom-tests/tests/workers.rs` checks the hand-off over the real pool.

use super::mark::{BadRefs, MarkPacket, Tracer, PACKET_SIZE};
use crate::object::ObjRef;
use crate::runtime::Runtime;
use crate::sync::{AtomicU64, AtomicUsize, Mutex, Ordering};
use crate::workers::PacketQueues;

/// Smallest debt (objects) worth an assist: smaller debts wait for the next slow path.
pub const MIN_ASSIST: usize = 128;
/// Most objects one assist scans, so a thread reaches its next poll soon.
pub const MAX_ASSIST: usize = 16 * 1024;
/// Objects scanned between checks for a stop request.
const ASSIST_BATCH: usize = 256;
/// Least distance to the goal the debt is computed with (past the goal: every byte costs
/// the remaining work divided by this).
const MIN_DISTANCE: usize = 256 << 10;

/// The assist state of one heap.
#[derive(Debug, Default)]
pub struct Assists {
    /// The markers' queues: null until the collector starts, then a box owned here
    /// (replaced in a forked child, whose old pool's threads are gone).
    queues: crate::sync::raw::AtomicPtr<PacketQueues<MarkPacket>>,
    /// Invalid references assists met (reported with the cycle's).
    pub bad: BadRefs,
    /// Objects this cycle is expected to mark; 0 while no marking runs (no assists).
    expected: AtomicU64,
    /// Objects marked so far this cycle, by workers and assists.
    progress: AtomicU64,
    /// Heap in use by which marking should be done.
    goal: AtomicUsize,
    /// Objects marked by assists this cycle.
    marked: AtomicU64,
    /// Objects the workers marked that no assist debt has claimed yet.
    credit: AtomicU64,
    /// Why an assist failed this cycle (a trace callback panicked on the mutator's
    /// thread): the final-mark pause fails the collector with it.
    failure: Mutex<Option<String>>,
}

impl Drop for Assists {
    fn drop(&mut self) {
        let p = *self.queues.get_mut();
        if !p.is_null() {
            // SAFETY: the box `connect` stored; nothing else can use it any more.
            drop(unsafe { Box::from_raw(p) });
        }
    }
}

impl Assists {
    /// Connects assists to the markers' queues: when the collector starts (before any
    /// mutator exists) and in a forked child (where the only mutator, the forking thread,
    /// is in a native region), so no assist is using the old queues.
    pub fn connect(&self, queues: PacketQueues<MarkPacket>) {
        // Release: an assist that loads the pointer sees the queues it points to.
        let old = self
            .queues
            .swap(Box::into_raw(Box::new(queues)), Ordering::AcqRel);
        if !old.is_null() {
            // SAFETY: a box from an earlier `connect`, which no assist uses (see above).
            drop(unsafe { Box::from_raw(old) });
        }
    }

    /// Starts assisting a cycle expected to mark `expected` objects by the time the heap
    /// holds `goal` bytes (in the init-mark pause; 0 expected: no assists this cycle).
    pub fn begin(&self, expected: u64, goal: usize) {
        // Relaxed: pacing figures, read by mutators after the pause's resume orders them.
        self.progress.store(0, Ordering::Relaxed);
        self.marked.store(0, Ordering::Relaxed);
        self.credit.store(0, Ordering::Relaxed);
        self.goal.store(goal, Ordering::Relaxed);
        self.expected.store(expected, Ordering::Relaxed);
    }

    /// Stops assisting (in the final-mark pause, so with no assist running); returns the
    /// objects assists marked, or the failure of one, which the caller raises: what that
    /// assist had taken from the markers is lost, so the cycle must not finish.
    pub fn end(&self) -> Result<u64, String> {
        self.expected.store(0, Ordering::Relaxed);
        match self.failure.lock().take() {
            Some(why) => Err(why),
            None => Ok(self.marked.load(Ordering::Relaxed)),
        }
    }

    /// Counts `n` objects marked by a worker (or the init-mark pause), as progress and as
    /// credit that assist debts may claim.
    #[inline]
    pub fn progress(&self, n: u64) {
        self.progress.fetch_add(n, Ordering::Relaxed);
        self.credit.fetch_add(n, Ordering::Relaxed);
    }

    fn assisted(&self, n: u64) {
        self.progress.fetch_add(n, Ordering::Relaxed);
        self.marked.fetch_add(n, Ordering::Relaxed);
    }

    /// Takes up to `want` objects of the workers' credit for a thread's debt; returns how
    /// many it took.
    pub fn claim_credit(&self, want: u64) -> u64 {
        // Relaxed: a pacing figure; a stale value only makes one assist more or less.
        let mut have = self.credit.load(Ordering::Relaxed);
        loop {
            let take = have.min(want);
            if take == 0 {
                return 0;
            }
            match self.credit.compare_exchange_weak(
                have,
                have - take,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return take,
                Err(now) => have = now,
            }
        }
    }

    /// Whether the heap has passed this cycle's goal (marking is late).
    pub fn past_goal(&self, in_use: usize) -> bool {
        self.expected.load(Ordering::Relaxed) != 0 && in_use >= self.goal.load(Ordering::Relaxed)
    }

    /// The marking work (objects) a thread owes for allocating `bytes` with `in_use`
    /// bytes of heap in use.
    pub fn debt(&self, in_use: usize, bytes: usize) -> f64 {
        let expected = self.expected.load(Ordering::Relaxed);
        if expected == 0 {
            return 0.0;
        }
        // An estimate from the last cycle: never let it say the work is all done.
        let remaining = expected
            .saturating_sub(self.progress.load(Ordering::Relaxed))
            .max(expected / 16);
        let distance = self
            .goal
            .load(Ordering::Relaxed)
            .saturating_sub(in_use)
            .max(MIN_DISTANCE);
        bytes as f64 * remaining as f64 / distance as f64
    }

    /// Scans up to `work` objects from the markers' queues and SATB buffers on the calling
    /// thread, giving back what it did not finish; stops early once `stop()` says so (checked
    /// between batches). Returns the objects scanned.
    pub fn assist(&self, rt: &Runtime, work: usize, stop: impl Fn() -> bool) -> usize {
        // SAFETY: null, or the box `connect` stored, freed only when replaced while no
        // assist runs, or when the runtime is dropped.
        let Some(queues) = (unsafe { self.queues.load(Ordering::Acquire).as_ref() }) else {
            return 0;
        };
        let hold = queues.hold();
        let traced = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.trace(rt, &hold, work, stop)
        }));
        traced.unwrap_or_else(|p| {
            let why = crate::fault::panic_message(&*p);
            self.failure
                .lock()
                .get_or_insert_with(|| format!("a mark assist panicked: {why}"));
            0
        })
    }

    /// The body of [`Assists::assist`], under its `hold`.
    fn trace(
        &self,
        rt: &Runtime,
        hold: &crate::workers::Hold<'_, MarkPacket>,
        work: usize,
        stop: impl Fn() -> bool,
    ) -> usize {
        let tracer = Tracer { rt, bad: &self.bad };
        let mut stack: Vec<ObjRef> = Vec::new();
        let mut carry = crate::collector::mark::Carry::default();
        let mut done = 0;
        while done < work && !stop() {
            if stack.is_empty() {
                if let Some(n) = tracer.take_satb(&mut stack) {
                    self.assisted(n);
                } else if let Some(p) = hold.take() {
                    stack = p;
                } else {
                    break;
                }
            }
            let (marked, scanned) =
                tracer.drain_carrying(&mut stack, ASSIST_BATCH.min(work - done), &mut carry);
            self.assisted(marked);
            done += scanned;
            if stack.len() >= 2 && hold.starved() {
                // The workers may wait for what this thread holds: share, as they do.
                hold.give(Tracer::bottom_half(&mut stack));
            }
        }
        tracer.finish(carry);
        for chunk in stack.chunks(PACKET_SIZE) {
            hold.give(chunk.to_vec());
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debts_claim_only_the_credit_the_workers_earned_this_cycle() {
        let a = Assists::default();
        a.begin(1000, 1 << 20);
        a.progress(300);
        a.assisted(500);
        assert_eq!(a.claim_credit(200), 200, "workers' progress is credit");
        assert_eq!(a.claim_credit(200), 100, "assists' own work is not");
        assert_eq!(a.claim_credit(200), 0, "claimed credit is gone");
        a.progress(50);
        a.begin(1000, 1 << 20);
        assert_eq!(a.claim_credit(50), 0, "a new cycle starts with none");
    }
}
