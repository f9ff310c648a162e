//! Loom model of the fork gate (`fork::ForkGate`), which a forking thread closes so that no
//! collector activity (a cycle on the control thread, a chunk release on the uncommit
//! thread) is half-done when the process forks.
//!
//! Two activity threads each run one activity between `enter` and `exit`; the forking
//! thread closes the gate, checks that no activity is inside, and opens it again. Proves:
//! while the gate is closed no activity runs (not one that started before `close`, which
//! `close` waits out, nor one that starts after, which `enter` holds off), and every
//! activity still runs once the gate opens (no lost wake-up: the model ends); and two
//! threads that close it (a fork and a heap dump) hold it one at a time.
#![cfg(loom)]

use loom::sync::Arc;
use tandem::fork::ForkGate;
use tandem::sync::{AtomicUsize, Ordering};

#[test]
fn no_activity_runs_while_the_gate_is_closed_and_every_one_runs_after() {
    loom::model(|| {
        let gate = Arc::new(ForkGate::default());
        let inside = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let activities: Vec<_> = (0..2)
            .map(|_| {
                let (gate, inside, done) = (gate.clone(), inside.clone(), done.clone());
                loom::thread::spawn(move || {
                    gate.enter();
                    inside.fetch_add(1, Ordering::SeqCst);
                    inside.fetch_sub(1, Ordering::SeqCst);
                    gate.exit();
                    done.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        gate.close();
        assert_eq!(
            inside.load(Ordering::SeqCst),
            0,
            "an activity runs past close"
        );
        gate.open();
        for a in activities {
            a.join().unwrap();
        }
        assert_eq!(done.load(Ordering::SeqCst), 2);
    });
}

/// Two threads that each need the world (a fork and a heap dump, say) close the gate one
/// after the other, never both at once: each then stops the world, and two stops at once
/// are not allowed.
#[test]
fn two_closers_hold_the_gate_one_at_a_time() {
    loom::model(|| {
        let gate = Arc::new(ForkGate::default());
        let holders = Arc::new(AtomicUsize::new(0));
        let closers: Vec<_> = (0..2)
            .map(|_| {
                let (gate, holders) = (gate.clone(), holders.clone());
                loom::thread::spawn(move || {
                    gate.close();
                    assert_eq!(holders.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                    holders.fetch_sub(1, Ordering::SeqCst);
                    gate.open();
                })
            })
            .collect();
        gate.enter();
        gate.exit();
        for c in closers {
            c.join().unwrap();
        }
    });
}
