//! Loom model of the real stop-the-world protocol (`tandem::safepoint`).
//!
//! One mutator works and polls, one enters and leaves a native region, and the collector
//! stops and resumes the world. The "heap" is a loom `UnsafeCell` written by mutators only
//! while RUNNING and by the collector only while the world is stopped: loom reports any
//! interleaving in which the two overlap as a data race. Loom also reports a deadlock if a
//! wake-up is lost or a mutator is left stopped.
#![cfg(loom)]

use loom::sync::Arc;
use tandem::safepoint::{Safepoint, ThreadState, RUNNING};
use tandem::sync::UnsafeCell;

struct World {
    sp: Safepoint<ThreadState>,
    /// One cell per mutator (mutators may run at the same time), all touched by the GC.
    heap: [UnsafeCell<u64>; 2],
}

fn touch(w: &World, i: usize) {
    w.heap[i].with_mut(|p| {
        // SAFETY: loom checks that no other thread accesses the cell concurrently.
        unsafe { *p += 1 }
    });
}

#[test]
fn stop_the_world_excludes_mutators_and_loses_no_wakeup() {
    loom_tests::model(|| {
        let w = Arc::new(World {
            sp: Safepoint::default(),
            heap: [UnsafeCell::new(0), UnsafeCell::new(0)],
        });
        let m1 = Arc::new(ThreadState::default());
        let m2 = Arc::new(ThreadState::default());
        w.sp.attach(m1.clone());
        w.sp.attach(m2.clone());

        let (w1, mm1) = (w.clone(), m1.clone());
        let polling = loom::thread::spawn(move || {
            touch(&w1, 0);
            w1.sp.poll(&mm1);
            touch(&w1, 0);
            assert_eq!(mm1.load(), RUNNING);
            w1.sp.detach(&mm1);
        });
        let (w2, mm2) = (w.clone(), m2.clone());
        let native = loom::thread::spawn(move || {
            w2.sp.enter_native(&mm2);
            w2.sp.leave_native(&mm2);
            touch(&w2, 1);
            assert_eq!(mm2.load(), RUNNING);
            w2.sp.detach(&mm2);
        });

        let stopped = w.sp.stop_the_world();
        assert!(stopped.iter().all(|m| m.load() != RUNNING));
        touch(&w, 0);
        touch(&w, 1);
        w.sp.resume();

        polling.join().unwrap();
        native.join().unwrap();
        assert!(w.sp.is_empty());
        // SAFETY: every other thread has been joined.
        assert_eq!(w.heap[0].with(|p| unsafe { *p }), 3);
    });
}

#[test]
fn a_thread_attaching_during_a_stop_waits_for_resume() {
    loom_tests::model(|| {
        let w = Arc::new(World {
            sp: Safepoint::default(),
            heap: [UnsafeCell::new(0), UnsafeCell::new(0)],
        });
        let w1 = w.clone();
        let late = loom::thread::spawn(move || {
            let m = Arc::new(ThreadState::default());
            w1.sp.attach(m.clone());
            touch(&w1, 0);
            w1.sp.detach(&m);
        });
        let _ = w.sp.stop_the_world();
        touch(&w, 0);
        w.sp.resume();
        late.join().unwrap();
    });
}

#[test]
fn back_to_back_stops_wake_every_sleeper() {
    // A mutator woken by one resume may find the next stop already in force: it must stay
    // stopped and be woken again by the second resume (loom reports a deadlock otherwise).
    loom_tests::model(|| {
        let w = Arc::new(World {
            sp: Safepoint::default(),
            heap: [UnsafeCell::new(0), UnsafeCell::new(0)],
        });
        let m = Arc::new(ThreadState::default());
        w.sp.attach(m.clone());
        let (w1, m1) = (w.clone(), m.clone());
        let mutator = loom::thread::spawn(move || {
            w1.sp.poll(&m1);
            touch(&w1, 0);
            w1.sp.poll(&m1);
            touch(&w1, 0);
            w1.sp.detach(&m1);
        });
        for _ in 0..2 {
            let _ = w.sp.stop_the_world();
            touch(&w, 0);
            w.sp.resume();
        }
        mutator.join().unwrap();
    });
}
