//! Loom models of how the barrier state (`gc_state`) reaches mutators, over the real
//! safepoint code (`tandem::safepoint`): the collector flips it only while the world is
//! stopped (init mark), and a thread that attaches copies the current state under the
//! registry lock (`Safepoint::attach_with`), so no mutator ever runs with barriers off
//! while marking is on, and none sees the state change between two polls.
#![cfg(loom)]

use loom::sync::Arc;
use tandem::safepoint::{Participant, Safepoint, ThreadState};
use tandem::sync::{AtomicU8, Ordering};

const MARKING: u8 = 1;

/// A mutator as the barrier sees it: its safepoint word and its barrier state byte.
#[derive(Default)]
struct M {
    ts: ThreadState,
    gc_state: AtomicU8,
}

impl Participant for M {
    fn thread_state(&self) -> &ThreadState {
        &self.ts
    }
}

struct World {
    sp: Safepoint<M>,
    /// The state every mutator has now (the runtime's `barrier_state`).
    barrier_state: AtomicU8,
}

/// The init-mark pause: stop, turn marking on everywhere, resume.
fn init_mark(w: &World) {
    let stopped = w.sp.stop_the_world();
    w.barrier_state.store(MARKING, Ordering::Relaxed);
    for m in &stopped {
        m.gc_state.store(MARKING, Ordering::Relaxed);
    }
    w.sp.resume();
}

#[test]
fn a_thread_attaching_during_init_mark_starts_with_the_barriers_on() {
    loom_tests::model(|| {
        let w = Arc::new(World {
            sp: Safepoint::default(),
            barrier_state: AtomicU8::new(0),
        });
        let w1 = w.clone();
        let attacher = loom::thread::spawn(move || {
            let m = Arc::new(M::default());
            w1.sp.attach_with(m.clone(), |c| {
                c.gc_state
                    .store(w1.barrier_state.load(Ordering::Relaxed), Ordering::Relaxed)
            });
            // Blocks in native code from here on, so the stop need not wait for it.
            w1.sp.enter_native(&m);
            m
        });
        init_mark(&w);
        let m = attacher.join().unwrap();
        // Marking is on and never ends in this model: a mutator registered either before
        // the stop (which set its state) or after (it copied the state).
        assert_eq!(m.gc_state.load(Ordering::Relaxed), MARKING);
        w.sp.leave_native(&m);
        w.sp.detach(&m);
    });
}

#[test]
fn a_running_mutator_sees_the_barrier_state_change_only_at_a_poll() {
    loom_tests::model(|| {
        let w = Arc::new(World {
            sp: Safepoint::default(),
            barrier_state: AtomicU8::new(0),
        });
        let m = Arc::new(M::default());
        w.sp.attach(m.clone());
        let (w1, m1) = (w.clone(), m.clone());
        let mutator = loom::thread::spawn(move || {
            // Two barrier fast paths with no poll between them read the same state.
            let a = m1.gc_state.load(Ordering::Relaxed);
            let b = m1.gc_state.load(Ordering::Relaxed);
            assert_eq!(a, b);
            w1.sp.poll(&m1);
            let c = m1.gc_state.load(Ordering::Relaxed);
            let d = m1.gc_state.load(Ordering::Relaxed);
            assert_eq!(c, d);
            w1.sp.detach(&m1);
        });
        init_mark(&w);
        mutator.join().unwrap();
    });
}
