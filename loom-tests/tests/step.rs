//! Loom model of cycle stepping (`collector::step::Stepper`): a VM thread steps a cycle the
//! control thread runs phase by phase.
//!
//! Proves: each step returns at the next boundary, in order (Marking, Sweeping, Idle),
//! with the control thread waiting at each boundary for the next step; and when another
//! thread turns stepping off at any moment (as a thread that needs memory does), the step
//! is not left waiting, and the cycle ends once the stepping thread itself waits for it
//! (loom reports a deadlock otherwise). A VM that steps once and then never waits for the
//! collector leaves the cycle parked by design: the program runs on meanwhile.
#![cfg(loom)]

use loom::sync::Arc;
use tandem::collector::step::{Phase, Stepper};
use tandem::sync::{AtomicBool, Ordering};

/// The control thread: runs one cycle once it was requested.
fn control(s: Arc<Stepper>, requested: Arc<AtomicBool>) -> loom::thread::JoinHandle<()> {
    loom::thread::spawn(move || {
        while !requested.load(Ordering::SeqCst) {
            loom::thread::yield_now();
        }
        s.boundary(Phase::Marking);
        s.boundary(Phase::Sweeping);
        s.boundary(Phase::Idle);
    })
}

#[test]
fn each_step_returns_at_the_next_boundary_in_order() {
    loom::model(|| {
        let s = Arc::new(Stepper::default());
        let requested = Arc::new(AtomicBool::new(false));
        let c = control(s.clone(), requested.clone());
        let start = || requested.store(true, Ordering::SeqCst);
        assert_eq!(s.step(start), Phase::Marking);
        assert_eq!(s.step(|| unreachable!("a cycle runs")), Phase::Sweeping);
        assert_eq!(s.step(|| unreachable!("a cycle runs")), Phase::Idle);
        c.join().unwrap();
    });
}

#[test]
fn turning_stepping_off_leaves_nobody_waiting() {
    loom::model(|| {
        let s = Arc::new(Stepper::default());
        let requested = Arc::new(AtomicBool::new(false));
        let c = control(s.clone(), requested.clone());
        let r = {
            let s = s.clone();
            loom::thread::spawn(move || s.release())
        };
        s.step(|| requested.store(true, Ordering::SeqCst));
        // Waiting for the cycle (as `collect` does) turns stepping off first; whatever
        // the step saw and whenever the other thread's release came, the cycle ends.
        s.release();
        r.join().unwrap();
        c.join().unwrap();
    });
}
