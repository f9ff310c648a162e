//! Driving a cycle one phase at a time (`Mutator::collect_step`, `tandem_collect_step`),
//! for tests and VMs that run the collector by hand: each step lets the control thread go
//! on to the next phase boundary and reports the phase it reached.
//!
//! The control thread reports each boundary ([`Stepper::boundary`]); while stepping is
//! on, it waits there for the next step. Stepping ends with the cycle it drives: later
//! cycles run on their own unless the VM steps again. Anything else that waits for the
//! collector (an explicit collection, an allocation that needs memory or is past the
//! heap's limit, a fork, a world stop) turns stepping off and holds it off while it waits
//! ([`Stepper::hold_off`]: a step another thread takes meanwhile cannot hold the cycle
//! again), and shutdown and a failure turn it off ([`Stepper::release`]), so a VM that
//! stops stepping never leaves a cycle, or a thread waiting for one, stuck, and a cycle it
//! abandoned goes on once the heap reaches its limit.

use crate::sync::{Condvar, Mutex, MutexGuard};

/// Where a cycle stands between steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No cycle runs.
    Idle,
    /// Concurrent marking runs (after the init-mark pause).
    Marking,
    /// Marking ended (after the final-mark pause); the sweep is next.
    Sweeping,
}

#[derive(Debug)]
struct State {
    stepping: bool,
    /// Steps granted and not yet taken by the control thread.
    tokens: u64,
    phase: Phase,
    /// Boundaries reached so far.
    reached: u64,
    /// Threads waiting for the collector ([`Stepper::hold_off`]): no boundary holds the
    /// control thread while there are any.
    held_off: usize,
}

/// The step protocol's state.
#[derive(Debug)]
pub struct Stepper {
    state: Mutex<State>,
    cv: Condvar,
}

impl Default for Stepper {
    fn default() -> Self {
        Stepper {
            state: Mutex::new(State {
                stepping: false,
                tokens: 0,
                phase: Phase::Idle,
                reached: 0,
                held_off: 0,
            }),
            cv: Condvar::new(),
        }
    }
}

impl Stepper {
    /// The control thread reached `phase`: records it and, while stepping, waits for a
    /// step before going on (never at `Idle`: the cycle is over, and so is stepping, which
    /// drives the cycle it started; left on, it held every later cycle at its first
    /// boundary, with the barriers on, until something waited for the collector).
    pub fn boundary(&self, phase: Phase) {
        let mut g = self.state.lock();
        g.phase = phase;
        g.reached += 1;
        self.cv.notify_all();
        if phase == Phase::Idle {
            g.stepping = false;
            g.tokens = 0;
            return;
        }
        while g.stepping && g.tokens == 0 && g.held_off == 0 {
            g = self.cv.wait(g);
        }
        g.tokens = g.tokens.saturating_sub(1);
    }

    /// Turns stepping off and keeps boundaries from holding the control thread until the
    /// returned guard drops: for a thread about to wait for the collector. (Turning it off
    /// alone was not enough: another thread's step re-armed it, and the cycle waited for a
    /// step that never came while this thread waited for the cycle.)
    pub fn hold_off(&self) -> HeldOff<'_> {
        self.release();
        let mut g = self.state.lock();
        g.held_off += 1;
        self.cv.notify_all();
        HeldOff(self)
    }

    /// Turns stepping off: the cycle runs on to its end.
    pub fn release(&self) {
        let mut g = self.state.lock();
        if g.stepping {
            g.stepping = false;
            g.tokens = 0;
            self.cv.notify_all();
        }
    }

    /// One step: from `Idle`, calls `start` (which requests a cycle); otherwise lets the
    /// control thread go on. Waits for the next boundary (or for stepping to be turned
    /// off) and returns the phase then.
    pub fn step(&self, start: impl FnOnce()) -> Phase {
        let mut g = self.state.lock();
        g.stepping = true;
        let seen = g.reached;
        if g.phase == Phase::Idle {
            drop(g);
            start();
            g = self.state.lock();
        } else {
            g.tokens += 1;
            self.cv.notify_all();
        }
        while g.reached == seen && g.stepping {
            g = self.cv.wait(g);
        }
        g.phase
    }
}

/// A thread waiting for the collector ([`Stepper::hold_off`]).
#[must_use = "stepping is held off only while this lives"]
pub struct HeldOff<'a>(&'a Stepper);

impl Drop for HeldOff<'_> {
    fn drop(&mut self) {
        self.0.state.lock().held_off -= 1;
    }
}

/// The step lock, held by a forking thread from before `fork` to after it: a thread in a
/// native region (a step) may hold it for a moment, and a child must not inherit it locked.
pub struct ForkHold<'a>(#[allow(dead_code)] MutexGuard<'a, State>);

impl Stepper {
    /// Takes the step lock for a fork.
    pub fn hold_for_fork(&self) -> ForkHold<'_> {
        ForkHold(self.state.lock())
    }
}
