//! GC requests: mutators ask, the control thread serves, waiters learn when it is done.
//!
//! Collections are numbered. A request asks for collection `completed + 1` (any collection
//! not yet completed stops the world after the request, so it covers it). The control thread
//! bumps `completed` while the world is still stopped, so a request made after resume always
//! asks for a fresh collection.

use crate::stats::GcCause;
use crate::sync::{AtomicBool, Condvar, Mutex, MutexGuard, Ordering};

#[derive(Debug)]
struct State {
    requested: u64,
    started: u64,
    completed: u64,
    cause: GcCause,
    shutdown: bool,
}

/// The request channel between mutators and the control thread.
#[derive(Debug)]
pub struct GcRequests {
    state: Mutex<State>,
    wake: Condvar,
    done: Condvar,
    urgent: AtomicBool,
    /// Mirrors `requested > completed`, so the allocation path can see a pending request
    /// without taking the lock.
    pending: AtomicBool,
    /// Cleared by `tandem_gc_disable`: no cycle starts unless asked for explicitly.
    auto: AtomicBool,
}

impl Default for GcRequests {
    fn default() -> Self {
        GcRequests {
            state: Mutex::new(State {
                requested: 0,
                started: 0,
                completed: 0,
                cause: GcCause::Explicit,
                shutdown: false,
            }),
            wake: Condvar::new(),
            done: Condvar::new(),
            urgent: AtomicBool::new(false),
            pending: AtomicBool::new(false),
            auto: AtomicBool::new(true),
        }
    }
}

/// The request lock, held by a forking thread from before `fork` to after it
/// ([`GcRequests::hold_for_fork`]).
pub struct ForkHold<'a>(#[allow(dead_code)] MutexGuard<'a, State>);

impl GcRequests {
    /// Takes the request lock for a fork: a thread in a native region (a step, a wait for a
    /// cycle) may hold it for a moment, and a child forked meanwhile inherited it locked by
    /// a thread that does not exist there (its first `tandem_collect` waited for ever).
    pub fn hold_for_fork(&self) -> ForkHold<'_> {
        ForkHold(self.state.lock())
    }
}

/// How much a cause asks of the cycle that serves it: a failed allocation needs a full
/// cycle's live figure, the VM's full and young collections their own kinds, the trigger
/// whatever the pacer chooses.
fn weight(c: GcCause) -> u8 {
    match c {
        GcCause::Trigger => 0,
        GcCause::Young => 1,
        GcCause::Explicit => 2,
        GcCause::AllocationFailure => 3,
    }
}

impl GcRequests {
    /// Asks for a collection; returns its number, for [`GcRequests::wait`]. A VM's request
    /// (explicit, or a young collection) asks for a cycle that starts after it (a cycle
    /// already running may have started marking before the objects the caller just
    /// dropped became garbage); other causes are served by the cycle in progress.
    pub fn request(&self, cause: GcCause) -> u64 {
        let fresh = matches!(cause, GcCause::Explicit | GcCause::Young);
        self.request_with(cause, fresh)
    }

    /// Asks for a collection that the cycle in progress, if any, serves; its number.
    pub fn request_current(&self, cause: GcCause) -> u64 {
        self.request_with(cause, false)
    }

    fn request_with(&self, cause: GcCause, fresh: bool) -> u64 {
        let mut g = self.state.lock();
        let running = g.started > g.completed;
        let target = if fresh && running {
            g.completed + 2
        } else {
            g.completed + 1
        };
        if cause == GcCause::AllocationFailure {
            // Relaxed: a hint polled by concurrent markers; the lock orders the rest.
            self.urgent.store(true, Ordering::Relaxed);
        }
        if g.requested < target {
            g.requested = target;
            self.pending.store(true, Ordering::Relaxed);
            g.cause = cause;
            self.wake.notify_all();
        } else if g.started < g.requested && weight(cause) > weight(g.cause) {
            // The requested cycle has not started and serves this request too: as the
            // kind this one asks for (a VM's young or full collection is not the
            // trigger's, whose kind the pacer chooses).
            g.cause = cause;
        }
        target
    }

    /// Turns automatic cycles (the trigger, allocation failures, torture) on or off.
    pub fn set_auto(&self, on: bool) {
        self.auto.store(on, Ordering::Relaxed);
    }

    /// Whether automatic cycles may start.
    #[inline]
    pub fn auto_enabled(&self) -> bool {
        self.auto.load(Ordering::Relaxed)
    }

    /// Blocks until collection `target` completed or the runtime shut down; true if it
    /// completed.
    pub fn wait(&self, target: u64) -> bool {
        let mut g = self.state.lock();
        while g.completed < target && !g.shutdown {
            g = self.done.wait(g);
        }
        g.completed >= target
    }

    /// [`GcRequests::wait`] for at most `patience`; true if `target` completed.
    pub fn wait_at_most(&self, target: u64, patience: std::time::Duration) -> bool {
        let mut g = self.state.lock();
        if g.completed < target && !g.shutdown {
            g = self.done.wait_timeout(g, patience);
        }
        g.completed >= target
    }

    /// The control thread's wait for work: the cause of the next collection, or None at
    /// shutdown.
    pub fn next(&self) -> Option<GcCause> {
        let mut g = self.state.lock();
        while g.requested <= g.completed && !g.shutdown {
            g = self.wake.wait(g);
        }
        g.started = g.completed + 1;
        (!g.shutdown).then_some(g.cause)
    }

    /// Marks the current collection complete and wakes its waiters.
    pub fn complete(&self) {
        let mut g = self.state.lock();
        g.completed += 1;
        self.urgent.store(false, Ordering::Relaxed);
        self.pending
            .store(g.requested > g.completed, Ordering::Relaxed);
        self.done.notify_all();
    }

    /// Whether a collection is requested and not yet complete (a hint, read without the
    /// lock by the allocation path's trigger check).
    #[inline]
    pub fn is_pending(&self) -> bool {
        self.pending.load(Ordering::Relaxed)
    }

    /// Whether an allocation is waiting for the current cycle (concurrent marking should
    /// give way to a stop-the-world finish).
    #[inline]
    pub fn is_urgent(&self) -> bool {
        self.urgent.load(Ordering::Relaxed)
    }

    /// Number of collections started so far (the one running included).
    pub fn started(&self) -> u64 {
        self.state.lock().started
    }

    /// Number of completed collections.
    pub fn completed(&self) -> u64 {
        self.state.lock().completed
    }

    /// Stops the control thread and releases every waiter.
    pub fn shutdown(&self) {
        let mut g = self.state.lock();
        g.shutdown = true;
        self.wake.notify_all();
        self.done.notify_all();
    }

    /// Whether the runtime shut down.
    pub fn is_shutdown(&self) -> bool {
        self.state.lock().shutdown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_joining_one_not_yet_started_gets_the_kind_it_asks_for() {
        let r = GcRequests::default();
        let t = r.request(GcCause::Trigger);
        assert_eq!(r.request(GcCause::Young), t, "served by the same cycle");
        assert_eq!(r.request(GcCause::Trigger), t);
        assert_eq!(
            r.next(),
            Some(GcCause::Young),
            "as the young collection asked"
        );
        r.complete();
        let t = r.request(GcCause::Explicit);
        r.request(GcCause::Young);
        assert_eq!(
            r.next(),
            Some(GcCause::Explicit),
            "a full one is not downgraded"
        );
        r.complete();
        r.request(GcCause::Young);
        assert_eq!(r.next(), Some(GcCause::Young));
        assert_eq!(
            r.request(GcCause::AllocationFailure),
            t + 1,
            "a failed allocation is served by the cycle that runs"
        );
        r.complete();
        assert!(!r.is_pending(), "and asks for no other");
    }

    #[test]
    fn a_young_collection_asked_during_a_cycle_gets_one_that_starts_after_it() {
        let r = GcRequests::default();
        let running = r.request(GcCause::Trigger);
        assert_eq!(r.next(), Some(GcCause::Trigger), "the cycle starts");
        assert_eq!(
            r.request(GcCause::Young),
            running + 1,
            "not served by the cycle that started before it"
        );
        assert_eq!(r.request(GcCause::Trigger), running, "a trigger is");
    }
}
