//! Safepoints: the mutator registry, polls, native regions and stop-the-world.
//!
//! # Protocol
//!
//! Each registered mutator has one 32-bit *state word*: its state in the low bits (RUNNING,
//! IN_NATIVE, STOPPED), a STOP_REQUESTED bit and an AWAITED bit. Only the mutator changes
//! its state bits; only the collector sets STOP_REQUESTED and AWAITED, and the mutator
//! clears AWAITED as it leaves RUNNING. Every change is a read-modify-write on that one
//! word, so all changes to it are totally ordered (its modification order) and no step
//! relies on two threads each storing one location and loading another.
//!
//! 1. **Stop.** The collector takes the registry lock, records that a stop is in force,
//!    and sets STOP_REQUESTED in every mutator's word (CAS), with AWAITED too in each word
//!    whose state is RUNNING; it counts those *awaited* mutators. It then waits (condition
//!    variable, lock released while waiting) until the count is 0.
//! 2. **Poll.** A mutator's fast path loads its own word (relaxed) and tests
//!    STOP_REQUESTED. On the slow path it takes the lock, changes RUNNING to STOPPED (CAS,
//!    keeping the stop bit, clearing AWAITED), counts itself down if AWAITED was set, reads
//!    the *resume epoch* (a [`Broadcast`]), releases the lock, wakes the collector if it was
//!    the last one awaited, and sleeps while the epoch is unchanged, until a CAS from
//!    STOPPED (bit clear) to RUNNING succeeds.
//! 3. **Enter native.** CAS RUNNING to IN_NATIVE while the bit is clear. If the bit is set,
//!    take the lock, make the same CAS there (keeping the bit, clearing AWAITED) and count
//!    down as in 2.
//! 4. **Leave native.** CAS IN_NATIVE (bit clear) to RUNNING. If the CAS fails the bit is
//!    set: read the resume epoch under the lock and sleep as in 2.
//! 5. **Resume.** The collector takes the lock, ends the stop, `fetch_and`s both bits away
//!    from every word, and after releasing the lock advances the resume epoch, which wakes
//!    every sleeper with one system call (none needs the lock to resume, so a preempted
//!    mutator holding a lock hand-off cannot delay the others or the next stop, and the
//!    collector, preempted by the first mutator it wakes, holds up no other's wake-up).
//! 6. **Attach/detach.** Attach waits under the lock while a stop is in force, then
//!    registers a RUNNING mutator. Detach (by a RUNNING mutator) unregisters under the lock
//!    and counts down if its word has AWAITED, so the collector no longer waits for it.
//!
//! The collector is woken once per stop, by the last mutator it waits for, and never while
//! that mutator still holds the lock: with many mutators each one's stop used to wake it to
//! re-scan every word (and, woken under the lock, to block on it at once).
//!
//! # Why it is correct
//!
//! * No mutator runs while the world is stopped. A mutator RUNNING when the collector set
//!   its bit carries AWAITED from that CAS on; it clears AWAITED only by leaving RUNNING
//!   (stopping or entering native) and counts down in the same critical section, or by
//!   detaching, which counts down too. So the count reaches 0 only when every mutator found
//!   RUNNING has stopped, entered native or left, and every other one was IN_NATIVE or
//!   STOPPED with the bit set. Neither can become RUNNING while the bit is set: leaving
//!   native needs the bit clear (step 4) and a STOPPED mutator waits for it to clear (step
//!   2). A mutator whose CAS out of RUNNING came before the collector's CAS on its word was
//!   not counted and does not count down (it never saw AWAITED).
//! * The count is exact. Every count-down and every set or clear of AWAITED happens under
//!   the lock (the collector's CASes and resume hold it; a mutator leaves RUNNING with the
//!   bit set only under it, steps 2, 3, 6), so a mutator that sees AWAITED belongs to the
//!   stop in force and counts down exactly once.
//! * No wake-up is lost. The collector checks the count and starts waiting while holding
//!   the lock. The mutator that brings it to 0 does so under the lock and notifies after
//!   releasing it: the collector is then either waiting (it cannot be between its check
//!   and its wait while the mutator held the lock) or checks later and sees 0. A sleeping
//!   mutator read the resume epoch under the lock while the bit was set, so the resume
//!   that clears the bit (under the lock, later) advances the epoch after that read: the
//!   sleeper's wait returns at once if the advance came first, or is woken by it. A mutator
//!   that wakes with the bit set again (a spurious wake-up, or a new stop that began before
//!   it ran) reads the epoch again under the lock and sleeps until the next resume (the
//!   loom model `back_to_back_stops_wake_every_sleeper` checks this).
//! * Visibility. A mutator's writes before it enters native or stops happen-before the
//!   collector's proceeding (its release CAS read by the collector's AcqRel CAS on the
//!   same word, or the lock). The collector's writes
//!   during the stop happen-before a mutator's resumption (release `fetch_and` or lock,
//!   acquire CAS or lock).
//!
//! The loom model `loom-tests/tests/safepoint.rs` checks these claims over this code.

use crate::sync::{Arc, AtomicU32, Broadcast, Condvar, Mutex, MutexGuard, Ordering};
use std::time::{Duration, Instant};

/// The mutator runs managed code and may touch the heap.
pub const RUNNING: u32 = 0;
/// The mutator is in native code (a syscall, a lock wait) and must not touch the heap.
pub const IN_NATIVE: u32 = 1;
/// The mutator is parked at a safepoint.
pub const STOPPED: u32 = 2;
/// Mask of the state bits of a state word.
pub const STATE_MASK: u32 = 3;
/// Set in a state word while the collector needs the mutator stopped.
pub const STOP_REQUESTED: u32 = 4;
/// Set in a state word when the collector asks the mutator to run a handshake (flush its
/// SATB buffer) at its next poll; the mutator clears it. Independent of the stop protocol.
pub const HANDSHAKE_REQUESTED: u32 = 8;
/// The bits the safepoint poll tests.
pub const POLL_MASK: u32 = STOP_REQUESTED | HANDSHAKE_REQUESTED;
/// Set by the collector, with STOP_REQUESTED, in the word of a mutator that was RUNNING when
/// the stop began: the stop waits for it. The mutator clears it as it leaves RUNNING.
pub const AWAITED: u32 = 16;

/// The part of a mutator the safepoint protocol reads and writes: its state word.
#[derive(Debug)]
#[repr(C)]
pub struct ThreadState {
    word: AtomicU32,
}

impl Default for ThreadState {
    fn default() -> Self {
        ThreadState {
            word: AtomicU32::new(RUNNING),
        }
    }
}

impl ThreadState {
    /// Current state (RUNNING, IN_NATIVE or STOPPED), for assertions and diagnostics.
    pub fn load(&self) -> u32 {
        self.word.load(Ordering::SeqCst) & STATE_MASK
    }

    /// Whether the collector asks this mutator to stop or to run a handshake (the poll's
    /// fast-path test).
    #[inline(always)]
    pub fn poll_requested(&self) -> bool {
        // Relaxed: only a hint to take the slow path, which synchronises properly.
        self.word.load(Ordering::Relaxed) & POLL_MASK != 0
    }

    /// Takes a pending handshake request: true if there was one (the mutator then runs it).
    pub fn take_handshake(&self) -> bool {
        // Acquire pairs with the collector's release in `request_handshake`; release makes
        // what the mutator did before the answer (a weak load's reads of the marks, see
        // `refs::weak::Window`) happen before what the collector does once it sees it.
        self.word.fetch_and(!HANDSHAKE_REQUESTED, Ordering::AcqRel) & HANDSHAKE_REQUESTED != 0
    }

    /// Asks the mutator to run a handshake at its next poll.
    pub fn request_handshake(&self) {
        self.word.fetch_or(HANDSHAKE_REQUESTED, Ordering::Release);
    }

    /// Changes the state bits from `from` to `to`, keeping the request bits (but AWAITED,
    /// which leaving RUNNING clears); with `require_clear`, only while STOP_REQUESTED is
    /// clear. Returns the STOP_REQUESTED and AWAITED bits as seen.
    fn transition(&self, from: u32, to: u32, require_clear: bool) -> Result<u32, u32> {
        let requests = |w: u32| w & (STOP_REQUESTED | AWAITED);
        // AcqRel: releases the mutator's heap writes to the collector and acquires the
        // collector's writes made before it cleared the bit.
        self.word
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |cur| {
                debug_assert_eq!(cur & STATE_MASK, from, "unexpected mutator state");
                if require_clear && cur & STOP_REQUESTED != 0 {
                    return None;
                }
                Some(to | (cur & !STATE_MASK & !AWAITED))
            })
            .map(requests)
            .map_err(requests)
    }

    /// Sets STOP_REQUESTED, and AWAITED if the state is RUNNING; returns whether it was.
    fn request_stop(&self) -> bool {
        // AcqRel: a mutator that sees the bit sees what the collector did before, and the
        // collector sees the heap writes of a mutator that already left RUNNING.
        let prev = self
            .word
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |cur| {
                let running = cur & STATE_MASK == RUNNING;
                Some(cur | STOP_REQUESTED | if running { AWAITED } else { 0 })
            })
            .unwrap_or_else(|cur| cur);
        prev & STATE_MASK == RUNNING
    }
}

/// How long a mutator stood still at a stop, as that thread saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stood {
    /// From noticing the stop (or finding it in force) until running again.
    pub total: Duration,
    /// The part after the resume: waiting for its wake-up and for a core. On a machine
    /// with more runnable threads than cores this, not the pause, is what a long stop is.
    pub after_resume: Duration,
}

/// Anything registered with a [`Safepoint`] exposes its [`ThreadState`].
pub trait Participant: Send + Sync {
    /// This mutator's protocol state.
    fn thread_state(&self) -> &ThreadState;

    /// Names the mutator's thread in a warning about a stop it holds up.
    fn describe(&self) -> String {
        "a mutator".into()
    }

    /// What the OS says the mutator's thread is doing (running, waiting for a CPU, in the
    /// kernel), for the log of a stop it holds up; None when unknown.
    fn os_state(&self) -> Option<String> {
        None
    }
}

/// Warns that `what` (a stop, a handshake) has waited `waited` for the `late` threads.
fn warn_late(what: &str, waited: Duration, late: &[String]) {
    tracing::warn!(
        waited_ms = waited.as_millis() as u64,
        late = late.join(", "),
        "{what} is still waiting for threads that have not reached a safepoint: a thread \
         must poll (tandem_safepoint) or be in a native region (tandem_enter_native) while \
         it blocks or runs long without polling"
    );
}

/// How often the collector looks for handshakes' answers (sleeping, not spinning: on a busy
/// machine the mutators need the core to reach their polls).
pub const HANDSHAKE_POLL: Duration = Duration::from_micros(20);

/// How long a stop waits before it names, in a warning, the threads that have not reached
/// a safepoint yet (then again each time the wait doubles). One thread that blocks on a
/// lock or a system call without entering a native region, or loops without polling, holds
/// every other thread stopped until it returns: the warning says which one.
pub const SLOW_STOP_WARNING: Duration = Duration::from_secs(1);

/// How long a stop looks for its mutators to stop before it sleeps until they have.
const STOP_WATCH: Duration = Duration::from_micros(50);

/// How long a stop waits before it logs (at debug level) what the OS says each late
/// thread is doing: whether time to safepoint went to a thread that ran without polling,
/// waited for a CPU, or sat in the kernel.
const LATE_LOOK: Duration = Duration::from_millis(1);

impl Participant for ThreadState {
    fn thread_state(&self) -> &ThreadState {
        self
    }
}

#[derive(Debug)]
struct Registry<T> {
    mutators: Vec<Arc<T>>,
    stopping: bool,
    /// Mutators the stop in force still waits for (those with AWAITED set).
    awaited: usize,
}

impl<T> Registry<T> {
    /// Counts down one awaited mutator whose word showed `bits`; true when it was the last
    /// (the caller then wakes the collector, after releasing the lock).
    fn count_down(&mut self, bits: u32) -> bool {
        if bits & AWAITED == 0 {
            return false;
        }
        debug_assert!(self.stopping && self.awaited > 0, "AWAITED outside a stop");
        self.awaited = self.awaited.saturating_sub(1);
        self.awaited == 0
    }
}

/// The safepoint coordinator for mutators of type `T`.
#[derive(Debug)]
pub struct Safepoint<T> {
    registry: Mutex<Registry<T>>,
    /// Attaching threads wait here while a stop is in force.
    resume_cv: Condvar,
    /// The collector waits here for the last awaited mutator.
    parked_cv: Condvar,
    /// Stopped mutators sleep on it; each resume advances it.
    resumed: Broadcast,
    /// When the last resume happened, nanoseconds after `base` (a statistic only).
    resumed_ns: crate::sync::unmodelled::AtomicU64,
    base: Instant,
}

impl<T: Participant> Default for Safepoint<T> {
    fn default() -> Self {
        Safepoint {
            registry: Mutex::new(Registry {
                mutators: Vec::new(),
                stopping: false,
                awaited: 0,
            }),
            resume_cv: Condvar::new(),
            parked_cv: Condvar::new(),
            resumed: Broadcast::default(),
            resumed_ns: Default::default(),
            base: Instant::now(),
        }
    }
}

impl<T: Participant> Safepoint<T> {
    /// Registers `m` as RUNNING, first waiting out a stop in progress.
    pub fn attach(&self, m: Arc<T>) {
        self.attach_with(m, |_| {});
    }

    /// Registers `m` as RUNNING, first waiting out a stop in progress; `init` runs under the
    /// registry lock, so it sees the state the last stop left (e.g. the barrier state) and
    /// no stop can begin before `m` is registered.
    pub fn attach_with(&self, m: Arc<T>, init: impl FnOnce(&T)) {
        let mut g = self.registry.lock();
        while g.stopping {
            g = self.resume_cv.wait(g);
        }
        init(&m);
        m.thread_state().word.store(RUNNING, Ordering::SeqCst);
        g.mutators.push(m);
    }

    /// Unregisters `m`; false when it was not registered. The caller must be RUNNING (so no
    /// stop has completed) and must have released its thread-local heap state.
    pub fn detach(&self, m: &T) -> bool {
        let mut g = self.registry.lock();
        let before = g.mutators.len();
        g.mutators.retain(|x| !std::ptr::eq(&**x, m));
        let found = g.mutators.len() != before;
        // Relaxed: only AWAITED is read, and under the lock nobody changes it.
        let bits = m.thread_state().word.load(Ordering::Relaxed);
        if found && g.count_down(bits) {
            drop(g);
            self.parked_cv.notify_one();
        }
        found
    }

    /// Keeps only the mutators `keep` accepts (after a fork, the forking thread's).
    pub fn retain(&self, mut keep: impl FnMut(&T) -> bool) {
        self.registry.lock().mutators.retain(|m| keep(m));
    }

    /// Calls `f` on every registered mutator (under the registry lock: `f` must not block
    /// on the safepoint).
    pub fn for_each(&self, mut f: impl FnMut(&T)) {
        for m in &self.registry.lock().mutators {
            f(m);
        }
    }

    /// Number of registered mutators.
    pub fn len(&self) -> usize {
        self.registry.lock().mutators.len()
    }

    /// Whether no mutator is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Asks every registered mutator to run a handshake at its next poll (the collector does
    /// not wait for the answers: see [`Safepoint::poll_slow`]).
    pub fn request_handshakes(&self) {
        self.for_each(|m| m.thread_state().request_handshake());
    }

    /// Asks every mutator for a handshake and returns once each that runs managed code has
    /// answered (polled since); calls `pause` between looks. A thread that does not poll is
    /// waited for, as a stop would wait for it.
    pub fn await_handshakes(&self, mut pause: impl FnMut()) {
        self.request_handshakes();
        let asked = Instant::now();
        let mut warn_after = SLOW_STOP_WARNING;
        while !self.handshakes_answered() {
            let waited = asked.elapsed();
            if waited >= warn_after {
                let mut late = Vec::new();
                self.for_each(|m| {
                    let w = m.thread_state().word.load(Ordering::Relaxed);
                    if w & STATE_MASK == RUNNING && w & HANDSHAKE_REQUESTED != 0 {
                        late.push(m.describe());
                    }
                });
                warn_late("a handshake", waited, &late);
                warn_after = waited * 2;
            }
            pause();
        }
    }

    /// Whether every mutator that runs managed code has answered the handshakes requested so
    /// far (a mutator in a native region or stopped answers at its next poll, later).
    pub fn handshakes_answered(&self) -> bool {
        let mut all = true;
        self.for_each(|m| {
            let w = m.thread_state().word.load(Ordering::Acquire);
            all &= w & STATE_MASK != RUNNING || w & HANDSHAKE_REQUESTED == 0;
        });
        all
    }

    /// The poll's slow path, for a mutator whose [`ThreadState::poll_requested`] said yes:
    /// takes a pending handshake request and answers it by calling `handshake` (which
    /// flushes the mutator's SATB buffer), then parks while a stop is requested. Returns
    /// how long it stood still, if it parked.
    ///
    /// A stop requested after a handshake is seen together with it: both bits live in one
    /// word, the collector sets the handshake bit first, and a poll that sees the later
    /// value of the word sees both. So a mutator stopped at a poll has answered every
    /// handshake requested before that stop, and everything it logged before answering is
    /// in the collector's queue by the time the stop completes (loom model
    /// `loom-tests/tests/handshake.rs`).
    #[cold]
    pub fn poll_slow(&self, m: &T, handshake: impl FnOnce()) -> Option<Stood> {
        if m.thread_state().take_handshake() {
            handshake();
        }
        self.poll(m)
    }

    /// Parks if a stop was requested (the handshake bit is the caller's to handle, see
    /// [`Safepoint::poll_slow`]); returns how long it stood still, if it parked.
    #[inline(always)]
    pub fn poll(&self, m: &T) -> Option<Stood> {
        if m.thread_state().word.load(Ordering::Relaxed) & STOP_REQUESTED != 0 {
            return self.park(m);
        }
        None
    }

    /// Parks the RUNNING mutator `m` while a stop is requested; returns how long it stood
    /// still (None when the stop had already ended).
    #[cold]
    pub fn park(&self, m: &T) -> Option<Stood> {
        let t0 = Instant::now();
        let ts = m.thread_state();
        let mut g = self.registry.lock();
        let bits = ts.transition(RUNNING, STOPPED, false).unwrap_or(0);
        if bits & STOP_REQUESTED == 0 {
            // The stop already ended (and none can begin while we hold the lock): undo.
            let _ = ts.transition(STOPPED, RUNNING, false);
            return None;
        }
        let last = g.count_down(bits);
        self.sleep_until_resumed(ts, STOPPED, g, last);
        Some(self.stood_since(t0))
    }

    /// Enters a native region: the collector may proceed without this mutator, which must
    /// not touch the heap until [`Safepoint::leave_native`].
    #[inline]
    pub fn enter_native(&self, m: &T) {
        let ts = m.thread_state();
        if ts.transition(RUNNING, IN_NATIVE, true).is_ok() {
            return;
        }
        // A stop is requested: leave RUNNING under the lock, where its count is kept.
        let mut g = self.registry.lock();
        let bits = ts.transition(RUNNING, IN_NATIVE, false).unwrap_or(0);
        if g.count_down(bits) {
            drop(g);
            self.parked_cv.notify_one();
        }
    }

    /// Leaves a native region, waiting first while the world is stopped; returns how long
    /// it waited, if it did.
    #[inline]
    pub fn leave_native(&self, m: &T) -> Option<Stood> {
        let ts = m.thread_state();
        if ts.transition(IN_NATIVE, RUNNING, true).is_ok() {
            return None;
        }
        let t0 = Instant::now();
        self.sleep_until_resumed(ts, IN_NATIVE, self.registry.lock(), false);
        Some(self.stood_since(t0))
    }

    /// How long a mutator that began waiting at `t0` and runs again now stood still.
    fn stood_since(&self, t0: Instant) -> Stood {
        let total = t0.elapsed();
        let now = self.base.elapsed().as_nanos() as u64;
        // Relaxed: a statistic; a stale value only misattributes one stop's time.
        let resumed = self.resumed_ns.load(Ordering::Relaxed);
        Stood {
            total,
            after_resume: Duration::from_nanos(now.saturating_sub(resumed)).min(total),
        }
    }

    /// Moves `ts` from `state` to RUNNING once no stop is requested, sleeping meanwhile.
    /// Called holding the registry lock `g`; with `wake_collector` (the caller was the last
    /// mutator the stop waited for), notifies the collector once the lock is released.
    ///
    /// The resume epoch is read under the lock after a failed CAS (the stop bit set), so the
    /// resume that clears the bit advances it later: the wait cannot miss that wake-up. A
    /// thread that wakes with the bit still or again set reads the epoch anew under the lock.
    fn sleep_until_resumed<'a>(
        &'a self,
        ts: &ThreadState,
        state: u32,
        mut g: MutexGuard<'a, Registry<T>>,
        mut wake_collector: bool,
    ) {
        loop {
            if ts.transition(state, RUNNING, true).is_ok() {
                return;
            }
            let seen = self.resumed.epoch();
            drop(g);
            if std::mem::take(&mut wake_collector) {
                self.parked_cv.notify_one();
            }
            self.resumed.wait(seen);
            if ts.transition(state, RUNNING, true).is_ok() {
                return;
            }
            g = self.registry.lock();
        }
    }

    /// Whether a stop is in force.
    pub fn is_stopping(&self) -> bool {
        self.registry.lock().stopping
    }

    /// Stops every registered mutator and returns them; the world stays stopped until
    /// [`Safepoint::resume`]. Blocks until each mutator polls, parks, enters native or
    /// detaches.
    pub fn stop_the_world(&self) -> Vec<Arc<T>> {
        self.stop_the_world_timed().0
    }

    /// [`Safepoint::stop_the_world`], also returning when the stop was requested (the
    /// moment the first mutator could see it: a pause is timed from there, not from before
    /// the collector got the lock, since until then every mutator runs on).
    pub fn stop_the_world_timed(&self) -> (Vec<Arc<T>>, Instant) {
        let mut g = self.registry.lock();
        assert!(!g.stopping, "stop_the_world called while stopped");
        g.stopping = true;
        let awaited = g
            .mutators
            .iter()
            .filter(|m| m.thread_state().request_stop())
            .count();
        g.awaited = awaited;
        let requested = Instant::now();
        // Most stops complete within tens of microseconds: look again for a moment, giving
        // the core away between looks, before sleeping; the wake-up of a virtual CPU that
        // went idle arrived milliseconds late.
        while g.awaited > 0 && !cfg!(loom) && requested.elapsed() < STOP_WATCH {
            drop(g);
            std::thread::yield_now();
            g = self.registry.lock();
        }
        let mut warn_after = SLOW_STOP_WARNING;
        let mut looked = cfg!(loom) || !tracing::enabled!(tracing::Level::DEBUG);
        while g.awaited > 0 {
            let waited = requested.elapsed();
            if !looked && waited >= LATE_LOOK {
                looked = true;
                let late: Vec<Arc<T>> = g
                    .mutators
                    .iter()
                    .filter(|m| m.thread_state().word.load(Ordering::Relaxed) & AWAITED != 0)
                    .cloned()
                    .collect();
                // Not under the lock: the threads that stop meanwhile take it.
                drop(g);
                let late: Vec<String> = late
                    .iter()
                    .map(|m| format!("{}: {}", m.describe(), m.os_state().unwrap_or_default()))
                    .collect();
                tracing::debug!(
                    waited_us = waited.as_micros() as u64,
                    requested_mono_ns =
                        crate::cpu::monotonic_ns().saturating_sub(waited.as_nanos() as u64),
                    late = late.join(", "),
                    "a stop is waiting for threads"
                );
                g = self.registry.lock();
                continue;
            }
            if waited >= warn_after {
                let late: Vec<String> = g
                    .mutators
                    .iter()
                    .filter(|m| m.thread_state().word.load(Ordering::Relaxed) & AWAITED != 0)
                    .map(|m| m.describe())
                    .collect();
                warn_late("a stop", waited, &late);
                warn_after = waited * 2;
            }
            let until = if looked { warn_after } else { LATE_LOOK };
            g = self.parked_cv.wait_timeout(g, until.saturating_sub(waited));
        }
        (g.mutators.clone(), requested)
    }

    /// Ends a stop: clears every request and wakes the parked mutators.
    pub fn resume(&self) {
        self.resume_locked(self.registry.lock());
    }

    /// Ends the stop in force, if any (a failed collector's last act: whoever stopped the
    /// world will not resume it).
    pub fn end_stop(&self) {
        let g = self.registry.lock();
        if g.stopping {
            self.resume_locked(g);
        }
    }

    fn resume_locked(&self, mut g: MutexGuard<'_, Registry<T>>) {
        let now = self.base.elapsed().as_nanos() as u64;
        self.resumed_ns.store(now, Ordering::Relaxed);
        g.stopping = false;
        g.awaited = 0;
        for m in &g.mutators {
            m.thread_state()
                .word
                .fetch_and(!(STOP_REQUESTED | AWAITED), Ordering::AcqRel);
        }
        self.resume_cv.notify_all();
        drop(g);
        self.resumed.advance();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_parked_mutator_reports_its_stop_and_the_part_after_the_resume() {
        let sp = std::sync::Arc::new(Safepoint::<ThreadState>::default());
        let m = Arc::new(ThreadState::default());
        sp.attach(m.clone());
        let (sp2, m2) = (sp.clone(), m.clone());
        let t = std::thread::spawn(move || loop {
            if let Some(stood) = sp2.poll(&m2) {
                return stood;
            }
            std::thread::yield_now();
        });
        // Returns once the mutator parked.
        let world = sp.stop_the_world();
        assert_eq!(world.len(), 1);
        std::thread::sleep(Duration::from_millis(20));
        sp.resume();
        let stood = t.join().unwrap();
        assert!(stood.total >= Duration::from_millis(20), "{stood:?}");
        assert!(stood.after_resume < stood.total, "{stood:?}");
        assert!(sp.detach(&m));
    }
}
