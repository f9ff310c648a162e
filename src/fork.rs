//! `fork()`, and other operations that need every thread stopped on behalf of a mutator
//! ([`with_world_stopped`]: root walks, heap dumps).
//!
//! `fork()`: a child process has only the thread that forked, so the collector's threads
//! must be started anew there, and nothing the vanished threads held may be left
//! half-done. The C ABI runs these steps from `pthread_atfork` handlers; a Rust host calls
//! [`crate::Heap::prepare_fork`] and the two `after_fork_*` methods around its `fork`.
//!
//! # Protocol
//! *Prepare* (the forking thread, before `fork`):
//! 1. It enters a native region if it is attached (a cycle in progress may need it
//!    stopped).
//! 2. It closes the [`ForkGate`]: waits until no cycle and no chunk release runs, and holds
//!    new ones off. The control thread then waits at the gate, between cycles, holding
//!    nothing; the workers are parked; the uncommit thread is between releases.
//! 3. It stops the world (nobody else can: the control thread is held at the gate), so no
//!    running mutator is inside the runtime holding one of its locks, and retires every
//!    mutator's TLAB and copy buffer and takes its registrations, so no memory stays with a
//!    thread that will not exist in the child. Then it takes the locks that threads in
//!    native regions use (a step, a wait for a cycle: the request and step locks) and
//!    holds them until the parent's or the child's step, so the child does not inherit one
//!    locked by a thread that is not there.
//!
//! *Parent* (after `fork`): resume the world, open the gate, leave the native region.
//!
//! *Child*: every mutator but the forking thread's leaves the registry (its thread does
//! not exist here); the stop ends; the control thread, its worker pool and the uncommit
//! thread start anew (the old threads' handles are forgotten: joining a thread that does
//! not exist is undefined); the gate opens; the forking thread leaves its native region.
//!
//! Threads that call the runtime without a mutator (statistics, type registration) while
//! another thread forks may hold a lock the child then never sees released: as with any
//! library, fork from a quiet moment when such calls run.

use crate::mutator::MutatorCore;
use crate::runtime::Runtime;
use crate::sync::{Condvar, Mutex};

#[derive(Debug, Default)]
struct GateState {
    active: usize,
    closed: bool,
}

/// Holds collector activity (cycles, chunk releases) off while a fork is prepared.
#[derive(Debug, Default)]
pub struct ForkGate {
    state: Mutex<GateState>,
    cv: Condvar,
}

impl ForkGate {
    /// Starts an activity that ends when the guard drops (also on a panic, so a failed
    /// collector never holds a fork off).
    pub fn activity(&self) -> Activity<'_> {
        self.enter();
        Activity(self)
    }

    /// Starts an activity, first waiting while the gate is closed.
    pub fn enter(&self) {
        let mut g = self.state.lock();
        while g.closed {
            g = self.cv.wait(g);
        }
        g.active += 1;
    }

    /// Ends an activity.
    pub fn exit(&self) {
        let mut g = self.state.lock();
        g.active -= 1;
        if g.active == 0 {
            self.cv.notify_all();
        }
    }

    /// Closes the gate (after whoever closed it last opened it again) and waits until no
    /// activity runs.
    pub fn close(&self) {
        let mut g = self.state.lock();
        while g.closed {
            g = self.cv.wait(g);
        }
        g.closed = true;
        while g.active > 0 {
            g = self.cv.wait(g);
        }
    }

    /// Opens the gate.
    pub fn open(&self) {
        self.state.lock().closed = false;
        self.cv.notify_all();
    }
}

thread_local! {
    /// The mutator this thread put in a native region for a fork (the same thread runs the
    /// parent's or the child's step afterwards).
    static ENTERED: std::cell::Cell<*const MutatorCore> =
        const { std::cell::Cell::new(std::ptr::null()) };
    /// The locks this thread holds across its fork (a raw box: destructor-free, like
    /// `ENTERED`, so a fork from a thread's exit code can use it).
    static HELD: std::cell::Cell<*mut Held> = const { std::cell::Cell::new(std::ptr::null_mut()) };
}

/// Locks that threads in native regions take (a step, a wait for a cycle), which the
/// stopped world does not keep them from holding: the forking thread holds them from the
/// end of *prepare* to the start of the parent's or the child's step.
struct Held {
    _requests: crate::collector::request::ForkHold<'static>,
    _stepper: crate::collector::step::ForkHold<'static>,
}

/// Takes [`Held`]'s locks for the fork `rt` prepares.
fn hold_locks(rt: &Runtime) {
    // SAFETY: the guards live in this thread's `HELD` until `release_locks` drops them, in
    // the parent's or the child's step of this fork, while the runtime is alive (a heap is
    // not shut down while it forks).
    let held = unsafe {
        Held {
            _stepper: std::mem::transmute::<
                crate::collector::step::ForkHold<'_>,
                crate::collector::step::ForkHold<'static>,
            >(rt.stepper.hold_for_fork()),
            _requests: std::mem::transmute::<
                crate::collector::request::ForkHold<'_>,
                crate::collector::request::ForkHold<'static>,
            >(rt.requests.hold_for_fork()),
        }
    };
    HELD.with(|h| h.set(Box::into_raw(Box::new(held))));
}

/// Releases what [`hold_locks`] took (in the child, the forking thread holds them too).
fn release_locks() {
    let held = HELD.with(|h| h.replace(std::ptr::null_mut()));
    if !held.is_null() {
        // SAFETY: the box `hold_locks` leaked on this thread, taken out of `HELD` just now.
        drop(unsafe { Box::from_raw(held) });
    }
}

/// Runs `f` with every mutator stopped between cycles, on the calling thread (which waits
/// in a native region): steps 1-3 of *prepare* without retiring anything, then the parent's
/// step. `f` must not use a mutator.
pub fn with_world_stopped<R>(
    rt: &Runtime,
    f: impl FnOnce(&[crate::sync::Arc<MutatorCore>]) -> R,
) -> R {
    let core = crate::mutator::calling_thread_core(rt);
    if let Some(c) = core {
        rt.safepoint.enter_native(c);
    }
    let held = rt.stepper.hold_off();
    rt.fork_gate.close();
    drop(held);
    let world = rt.safepoint.stop_the_world();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&world)));
    rt.safepoint.resume();
    rt.fork_gate.open();
    if let Some(c) = core {
        rt.safepoint.leave_native(c);
    }
    r.unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// An activity in progress ([`ForkGate::activity`]).
pub struct Activity<'a>(&'a ForkGate);

impl Drop for Activity<'_> {
    fn drop(&mut self) {
        self.0.exit();
    }
}

/// Steps 1-3 of *prepare*.
pub fn prepare(rt: &Runtime) {
    if let Some(core) = crate::mutator::calling_thread_core(rt) {
        rt.safepoint.enter_native(core);
        ENTERED.with(|e| e.set(core));
    }
    let held = rt.stepper.hold_off();
    rt.fork_gate.close();
    drop(held);
    let world = rt.safepoint.stop_the_world();
    for m in &world {
        // SAFETY: the world is stopped: this thread owns every mutator's state.
        unsafe {
            m.retire_tlab(rt);
            m.retire_copies(rt);
            m.flush_barriers(rt);
            rt.refs.adopt(m.registered());
        }
    }
    hold_locks(rt);
}

/// *Parent*.
pub fn in_parent(rt: &Runtime) {
    release_locks();
    rt.safepoint.resume();
    rt.fork_gate.open();
    leave_native(rt);
}

/// *Child*, up to restarting the threads, which the heap's owner does.
pub fn in_child(rt: &Runtime) {
    release_locks();
    crate::sync::after_fork_in_child();
    // SAFETY: pthread_self has no preconditions; the forking thread keeps its id in the child.
    let me = unsafe { libc::pthread_self() };
    rt.safepoint.retain(|m: &MutatorCore| m.owner() == me);
    rt.safepoint.resume();
}

/// *Child*, after the threads restarted.
pub fn child_done(rt: &Runtime) {
    rt.fork_gate.open();
    leave_native(rt);
}

fn leave_native(rt: &Runtime) {
    let core = ENTERED.with(|e| e.replace(std::ptr::null()));
    if !core.is_null() {
        // SAFETY: this thread's own mutator, which it could not detach while forking.
        rt.safepoint.leave_native(unsafe { &*core });
    }
}
