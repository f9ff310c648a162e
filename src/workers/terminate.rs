//! Termination detection for a parallel phase, without busy spinning.
//!
//! # States
//!
//! A worker is *active* while it has or may find work, *idle* once it found every queue
//! empty. Idle workers sleep on a condition variable. `pending` counts packets pushed and
//! not yet taken; it is raised *before* a packet becomes visible and lowered after it is
//! taken, so it is never below the number of visible packets.
//!
//! # Protocol
//!
//! 1. A worker that finds no work takes the lock, counts itself idle, and announces itself
//!    as a sleeper (`sleepers += 1`, SeqCst) before it loads `pending` (SeqCst).
//! 2. If `pending > 0` it leaves the idle set and looks again.
//! 3. Else, if every worker is idle, the phase is over: it sets `done` and wakes everyone.
//! 4. Else it waits; a wake-up sends it back to step 2.
//! 5. A producer raises `pending`, publishes the packet, then loads `sleepers` (SeqCst); if
//!    any, it notifies one under the lock.
//!
//! # Why it is correct
//!
//! * No early exit: only active workers push, and an idle worker has nothing private. When
//!   all `n` are idle and `pending == 0`, no packet exists and none can appear.
//! * No lost wake-up (step 5 against steps 1-4): in the SeqCst order either the producer's
//!   load sees the sleeper's increment, and its notify under the lock reaches the sleeper
//!   (which holds the lock from the increment until it waits), or the sleeper's load of
//!   `pending` comes after the producer's raise and sees the work.
//! * Progress: a sleeper is woken by new work or by the final `done`.
//!
//! The loom model `loom-tests/tests/workers.rs` checks this over the real code.

use crate::sync::{AtomicUsize, Condvar, Mutex, Ordering};

#[derive(Debug, Default)]
struct TermState {
    idle: usize,
    done: bool,
}

/// Shared termination state of one pool.
#[derive(Debug, Default)]
pub struct Terminator {
    state: Mutex<TermState>,
    cv: Condvar,
    pending: AtomicUsize,
    sleepers: AtomicUsize,
}

/// What an idle worker should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Idle {
    /// Work may be available again: look for it.
    Retry,
    /// The phase is over.
    Done,
}

impl Terminator {
    /// Resets for a new phase (no worker may be inside the protocol). Packets left by an
    /// aborted phase stay pending for the next one.
    pub fn reset(&self) {
        let mut g = self.state.lock();
        g.idle = 0;
        g.done = false;
    }

    /// Ends the phase early: sleepers wake and every `idle` call returns Done. Workers keep
    /// their unfinished work as published packets for the next phase.
    pub fn abort(&self) {
        let mut g = self.state.lock();
        g.done = true;
        self.cv.notify_all();
    }

    /// Called before a packet becomes visible to other workers.
    #[inline]
    pub fn before_publish(&self) {
        self.pending.fetch_add(1, Ordering::SeqCst);
    }

    /// Called after a packet was made visible: wakes a sleeper if there is one.
    #[inline]
    pub fn after_publish(&self) {
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            let _g = self.state.lock();
            self.cv.notify_one();
        }
    }

    /// Called after a packet was taken from a queue.
    #[inline]
    pub fn taken(&self) {
        self.pending.fetch_sub(1, Ordering::SeqCst);
    }

    /// Number of packets published and not yet taken.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }

    /// Called by a worker of a pool of `n` that found every queue empty.
    pub fn idle(&self, n: usize) -> Idle {
        let mut g = self.state.lock();
        if g.done {
            return Idle::Done;
        }
        g.idle += 1;
        loop {
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            if self.pending.load(Ordering::SeqCst) > 0 {
                self.sleepers.fetch_sub(1, Ordering::SeqCst);
                g.idle -= 1;
                return Idle::Retry;
            }
            if g.idle == n {
                self.sleepers.fetch_sub(1, Ordering::SeqCst);
                g.done = true;
                self.cv.notify_all();
                return Idle::Done;
            }
            g = self.cv.wait(g);
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
            if g.done {
                return Idle::Done;
            }
        }
    }
}
