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

#[test]
fn a_thread_waiting_for_a_cycle_is_not_held_by_another_threads_later_step() {
    use tandem::sync::AtomicUsize;
    // A VM thread steps twice and then stops stepping, while another thread waits for a
    // cycle it requested (as `tandem_collect` does). Turning stepping off when the wait
    // began was not enough: the second step re-armed it, the cycle parked at a boundary,
    // and the waiter waited for ever. The wait holds stepping off for as long as it lasts.
    loom::model(|| {
        let s = Arc::new(Stepper::default());
        let requests = Arc::new(AtomicUsize::new(0));
        let ended = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let control = {
            let (s, requests, ended, stop) =
                (s.clone(), requests.clone(), ended.clone(), stop.clone());
            loom::thread::spawn(move || {
                let mut done = 0;
                loop {
                    while requests.load(Ordering::SeqCst) <= done {
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        loom::thread::yield_now();
                    }
                    s.boundary(Phase::Marking);
                    s.boundary(Phase::Sweeping);
                    s.boundary(Phase::Idle);
                    done += 1;
                    ended.store(done, Ordering::SeqCst);
                }
            })
        };
        let waiter = {
            let (s, requests, ended) = (s.clone(), requests.clone(), ended.clone());
            loom::thread::spawn(move || {
                let target = requests.fetch_add(1, Ordering::SeqCst) + 1;
                let _held = s.hold_off();
                while ended.load(Ordering::SeqCst) < target {
                    loom::thread::yield_now();
                }
            })
        };
        let start = || {
            requests.fetch_add(1, Ordering::SeqCst);
        };
        s.step(start);
        s.step(start);
        waiter.join().unwrap();
        // The VM stopped stepping mid-cycle: shutdown turns stepping off.
        s.release();
        stop.store(true, Ordering::SeqCst);
        control.join().unwrap();
    });
}
