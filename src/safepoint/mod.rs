//! Safepoints: the mutator registry, polls, native regions and stop-the-world.
//!
//! # Protocol
//!
//! Each registered mutator has a [`ThreadState`]: a `state` word (RUNNING, IN_NATIVE,
//! STOPPED) and a `poll` word. There is one registry lock, one `stopping` flag and two
//! condition variables (mutators wait on one for resume, the collector on the other for
//! mutators to park).
//!
//! 1. **Stop.** The collector takes the lock, sets `stopping`, sets every mutator's `poll`,
//!    then waits on its condition variable until no registered mutator is RUNNING.
//! 2. **Poll.** A mutator's fast path is one relaxed load of its own `poll`. When set, it
//!    takes the lock, stores STOPPED, notifies the collector and waits while `stopping`;
//!    then stores RUNNING.
//! 3. **Native.** `enter_native` stores IN_NATIVE and, if `stopping`, notifies the collector
//!    under the lock. `leave_native` stores RUNNING and then, if `stopping`, parks as in 2.
//! 4. **Resume.** The collector takes the lock, clears `stopping` and every `poll`, and wakes
//!    the parked mutators.
//! 5. **Attach/detach.** Attach waits under the lock while `stopping`, then registers the
//!    mutator as RUNNING. Detach (called by a RUNNING mutator) unregisters under the lock and
//!    notifies the collector, which then no longer waits for it.
//!
//! # Why it is correct
//!
//! * No mutator runs while the world is stopped: the collector proceeds only after seeing
//!   every registered mutator not RUNNING. A STOPPED mutator leaves only after `stopping` is
//!   cleared (it re-checks under the lock). An IN_NATIVE one that leaves stores RUNNING and
//!   then loads `stopping` (both SeqCst); the collector stored `stopping` before loading the
//!   state. In the single SeqCst order, if the mutator's load missed `stopping`, its RUNNING
//!   store precedes the collector's state load, which then sees RUNNING and waits. So either
//!   the mutator parks or the collector waits for it. A thread attaching during a stop waits.
//! * No wake-up is lost: every transition the collector waits for (STOPPED, IN_NATIVE,
//!   detach) is followed by a notify made while holding the lock, and the collector checks
//!   the states and starts waiting without releasing the lock in between. Parked mutators
//!   check `stopping` under the lock before waiting, and resume clears it under the lock
//!   before notifying.
//! * What a mutator wrote before it stopped or entered native happens-before the collector's
//!   reads: its SeqCst state store pairs with the collector's SeqCst load of the state.
//!
//! The loom model `loom-tests/tests/safepoint.rs` checks these claims over this code.

use crate::sync::{Arc, AtomicBool, AtomicU32, Condvar, Mutex, MutexGuard, Ordering};

/// The mutator runs managed code and may touch the heap.
pub const RUNNING: u32 = 0;
/// The mutator is in native code (a syscall, a lock wait) and must not touch the heap.
pub const IN_NATIVE: u32 = 1;
/// The mutator is parked at a safepoint.
pub const STOPPED: u32 = 2;

/// The part of a mutator the safepoint protocol reads and writes.
#[derive(Debug)]
#[repr(C)]
pub struct ThreadState {
    /// RUNNING, IN_NATIVE or STOPPED.
    pub state: AtomicU32,
    /// Non-zero when the collector asks this mutator to come to a safepoint.
    pub poll: AtomicU32,
}

impl Default for ThreadState {
    fn default() -> Self {
        ThreadState {
            state: AtomicU32::new(RUNNING),
            poll: AtomicU32::new(0),
        }
    }
}

impl ThreadState {
    /// Current state (for assertions and diagnostics).
    pub fn load(&self) -> u32 {
        self.state.load(Ordering::SeqCst)
    }
}

/// Anything registered with a [`Safepoint`] exposes its [`ThreadState`].
pub trait Participant: Send + Sync {
    /// This mutator's protocol state.
    fn thread_state(&self) -> &ThreadState;
}

impl Participant for ThreadState {
    fn thread_state(&self) -> &ThreadState {
        self
    }
}

#[derive(Debug)]
struct Registry<T> {
    mutators: Vec<Arc<T>>,
}

/// The safepoint coordinator for mutators of type `T`.
#[derive(Debug)]
pub struct Safepoint<T> {
    registry: Mutex<Registry<T>>,
    /// Written only under the lock; read without it on the native-transition paths.
    stopping: AtomicBool,
    resume_cv: Condvar,
    parked_cv: Condvar,
}

impl<T: Participant> Default for Safepoint<T> {
    fn default() -> Self {
        Safepoint {
            registry: Mutex::new(Registry {
                mutators: Vec::new(),
            }),
            stopping: AtomicBool::new(false),
            resume_cv: Condvar::new(),
            parked_cv: Condvar::new(),
        }
    }
}

impl<T: Participant> Safepoint<T> {
    /// Registers `m` as RUNNING, first waiting out a stop in progress.
    pub fn attach(&self, m: Arc<T>) {
        let mut g = self.registry.lock();
        while self.stopping.load(Ordering::SeqCst) {
            g = self.resume_cv.wait(g);
        }
        m.thread_state().state.store(RUNNING, Ordering::SeqCst);
        g.mutators.push(m);
    }

    /// Unregisters `m`; false when it was not registered. The caller must be RUNNING (so no
    /// stop has completed) and must have released its thread-local heap state.
    pub fn detach(&self, m: &T) -> bool {
        let mut g = self.registry.lock();
        let before = g.mutators.len();
        g.mutators.retain(|x| !std::ptr::eq(&**x, m));
        let found = g.mutators.len() != before;
        if found && self.stopping.load(Ordering::SeqCst) {
            self.parked_cv.notify_all();
        }
        found
    }

    /// Number of registered mutators.
    pub fn len(&self) -> usize {
        self.registry.lock().mutators.len()
    }

    /// Whether no mutator is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The safepoint poll: parks if a stop was requested. Inline fast path.
    #[inline(always)]
    pub fn poll(&self, m: &T) {
        // Relaxed: only a hint to take the slow path, which synchronises under the lock.
        if m.thread_state().poll.load(Ordering::Relaxed) != 0 {
            self.park(m);
        }
    }

    /// Parks `m` until no stop is in progress.
    #[cold]
    pub fn park(&self, m: &T) {
        let ts = m.thread_state();
        let mut g = self.registry.lock();
        if !self.stopping.load(Ordering::SeqCst) {
            return;
        }
        ts.state.store(STOPPED, Ordering::SeqCst);
        self.parked_cv.notify_all();
        while self.stopping.load(Ordering::SeqCst) {
            g = self.resume_cv.wait(g);
        }
        ts.state.store(RUNNING, Ordering::SeqCst);
        drop(g);
    }

    /// Enters a native region: the collector may proceed without this mutator, which must
    /// not touch the heap until [`Safepoint::leave_native`].
    #[inline]
    pub fn enter_native(&self, m: &T) {
        m.thread_state().state.store(IN_NATIVE, Ordering::SeqCst);
        if self.stopping.load(Ordering::SeqCst) {
            let _g = self.registry.lock();
            self.parked_cv.notify_all();
        }
    }

    /// Leaves a native region, parking first if the world is stopped.
    #[inline]
    pub fn leave_native(&self, m: &T) {
        let ts = m.thread_state();
        ts.state.store(RUNNING, Ordering::SeqCst);
        if self.stopping.load(Ordering::SeqCst) {
            self.park(m);
        }
    }

    /// Whether a stop is requested or in force.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Stops every registered mutator and returns them; the world stays stopped until
    /// [`Safepoint::resume`]. Blocks until each mutator polls, parks, enters native or
    /// detaches.
    pub fn stop_the_world(&self) -> Vec<Arc<T>> {
        let mut g: MutexGuard<'_, Registry<T>> = self.registry.lock();
        assert!(
            !self.stopping.load(Ordering::SeqCst),
            "stop_the_world called while stopped"
        );
        self.stopping.store(true, Ordering::SeqCst);
        for m in &g.mutators {
            m.thread_state().poll.store(1, Ordering::SeqCst);
        }
        while g
            .mutators
            .iter()
            .any(|m| m.thread_state().state.load(Ordering::SeqCst) == RUNNING)
        {
            g = self.parked_cv.wait(g);
        }
        g.mutators.clone()
    }

    /// Ends a stop: clears every poll and wakes the parked mutators.
    pub fn resume(&self) {
        let g = self.registry.lock();
        self.stopping.store(false, Ordering::SeqCst);
        for m in &g.mutators {
            m.thread_state().poll.store(0, Ordering::SeqCst);
        }
        self.resume_cv.notify_all();
    }
}
