//! Driving a cycle one phase at a time (`Mutator::collect_step`, `tandem_collect_step`),
//! for tests and VMs that run the collector by hand: each step lets the control thread go
//! on to the next phase boundary and reports the phase it reached.
//!
//! The control thread reports each boundary ([`Stepper::boundary`]); while stepping is
//! on, it waits there for the next step. Stepping ends with the cycle it drives: later
//! cycles run on their own unless the VM steps again. Anything else that waits for the collector (an
//! explicit collection, an allocation that needs memory, a fork, a world stop, shutdown,
//! a failure) first turns stepping off ([`Stepper::release`]), so a VM that stops stepping
//! never leaves a cycle, or a thread waiting for one, stuck. An allocation past the heap's
//! limit, which would wait briefly for the cycle, does not wait while stepping is on.

use crate::sync::{Condvar, Mutex};

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
        while g.stepping && g.tokens == 0 {
            g = self.cv.wait(g);
        }
        g.tokens = g.tokens.saturating_sub(1);
    }

    /// Whether a VM drives the cycle step by step now (an allocation at the heap's limit
    /// then goes ahead without waiting: the cycle moves only when the VM steps it).
    pub fn stepping(&self) -> bool {
        self.state.lock().stepping
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
