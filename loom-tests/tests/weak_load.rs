//! Loom model of the weak load rule (`tandem::refs::weak::{load, settle}`) over the real
//! safepoint and SATB code: a mutator reads a weak slot whose target only the slot
//! reaches and stores what it gets into a live object, while the collector runs a cycle
//! (init-mark pause, concurrent draining, final-mark pause that clears dead targets). The
//! object must never be both handed out and treated as dead: whatever the interleaving,
//! if the live object ends up holding the target, the cycle marked it and the weak slot
//! still holds it. The mutator's SATB buffer is a loom cell owned by the mutator while it
//! runs and by the collector while it is stopped, so a hand-over the safepoint protocol
//! failed to order would be reported.
//!
//! A second model covers the weak window (`weak::{Window, load_settling}` with the real
//! handshake, `Safepoint::await_handshakes`): slots settled after the final-mark pause
//! while a mutator loads them, then a finalizer's resurrection of the dead target.
#![cfg(loom)]

use loom::sync::atomic::AtomicU64;
use loom::sync::Arc;
use loom_tests::satb::{cycle, Marked, SatbMutator};
use tandem::barriers::satb::SatbQueue;
use tandem::refs::weak;
use tandem::safepoint::Safepoint;
use tandem::sync::{AtomicBool, Ordering};

/// The weakly held object's address.
const TARGET: usize = 0x1000;

struct World {
    sp: Safepoint<SatbMutator>,
    queue: SatbQueue,
    /// The weakref's slot.
    weak_slot: AtomicU64,
    /// A reference field of a live object (in the snapshot), 0 at first.
    field: AtomicU64,
    /// What the cycle marked.
    marked: Marked,
}

/// The mutator: poll, then a weak load stored into the live object; twice.
fn mutator(w: &World, m: &SatbMutator) {
    for _ in 0..2 {
        w.sp.poll(m);
        if let Some(t) = weak::load(
            &w.weak_slot,
            m.barriers.load(Ordering::Relaxed),
            |t| t,
            |t| m.shade(&w.queue, t),
        ) {
            // The old value is 0 and the holder is in the snapshot: no SATB entry is due.
            w.field.store(t as u64, Ordering::Relaxed);
        }
    }
    m.detach(&w.sp, &w.queue);
}

/// One cycle: init mark (snapshot of the live object's field), concurrent draining, final
/// mark (flush every buffer, drain, settle the weak slot).
fn collector(w: &World) {
    cycle(
        &w.sp,
        &w.queue,
        &w.marked,
        || w.field.load(Ordering::Relaxed) as usize,
        || {},
        || {
            weak::settle(&w.weak_slot, |_| None, |t| !w.marked.contains(t));
        },
    );
}

#[test]
fn a_weak_load_during_marking_keeps_its_target_alive() {
    loom_tests::model(|| {
        let w = Arc::new(World {
            sp: Safepoint::default(),
            queue: SatbQueue::default(),
            weak_slot: AtomicU64::new(TARGET as u64),
            field: AtomicU64::new(0),
            marked: Marked::default(),
        });
        let m = Arc::new(SatbMutator::new(0));
        w.sp.attach(m.clone());
        let (w1, m1) = (w.clone(), m.clone());
        let t = loom::thread::spawn(move || mutator(&w1, &m1));
        collector(&w);
        t.join().unwrap();
        let held = w.field.load(Ordering::Relaxed) as usize;
        let live = w.marked.contains(TARGET);
        let slot = w.weak_slot.load(Ordering::Relaxed) as usize;
        if held == TARGET {
            assert!(
                live,
                "the live object holds the target, which the cycle left unmarked"
            );
        }
        assert_eq!(
            slot == TARGET,
            live,
            "the weak slot is cleared exactly when the target died"
        );
    });
}

/// One weakly held object of the settling model: its weak slot and its mark bit.
struct Weak {
    slot: AtomicU64,
    marked: AtomicBool,
}

impl Weak {
    fn new(target: usize, marked: bool) -> Weak {
        Weak {
            slot: AtomicU64::new(target as u64),
            marked: AtomicBool::new(marked),
        }
    }

    fn dead(&self, _t: usize) -> bool {
        // Relaxed, as the collector's mark bits are read.
        !self.marked.load(Ordering::Relaxed)
    }
}

/// The mutator's weak load (`Mutator::weakref_get`): through the window while it is open.
fn weak_get(window: &weak::Window, w: &Weak, barriers: u8) -> Option<usize> {
    if window.is_open() {
        weak::load_settling(&w.slot, |_| None, |t| w.dead(t))
    } else {
        weak::load(
            &w.slot,
            barriers,
            |t| t,
            |_| unreachable!("marking is over"),
        )
    }
}

#[test]
fn a_weak_load_while_slots_are_settled_never_hands_out_a_dead_target() {
    // After the final-mark pause opened the window, the collector settles the slots with the
    // mutator running, closes the window, waits for every handshake answer and then
    // resurrects the dead target for its finalizer (marks it). The mutator loads both weak
    // slots between two polls, wherever that falls.
    const DEAD: usize = 0x1000;
    const LIVE: usize = 0x2000;
    loom_tests::model(|| {
        let sp = Arc::new(Safepoint::<SatbMutator>::default());
        let window = Arc::new(weak::Window::default());
        let dead = Arc::new(Weak::new(DEAD, false));
        let live = Arc::new(Weak::new(LIVE, true));
        let m = Arc::new(SatbMutator::new(0));
        sp.attach(m.clone());
        // The mutator thread is blocked in native code through the final-mark pause, which
        // opens the window.
        sp.enter_native(&m);
        drop(sp.stop_the_world());
        window.open();
        sp.resume();

        let (sp1, window1, dead1, live1, m1) = (
            sp.clone(),
            window.clone(),
            dead.clone(),
            live.clone(),
            m.clone(),
        );
        let mutator = loom::thread::spawn(move || {
            let poll = || {
                if m1.ts.poll_requested() {
                    sp1.poll_slow(&*m1, || {});
                }
            };
            sp1.leave_native(&m1);
            poll();
            let barriers = m1.barriers.load(Ordering::Relaxed);
            let got = (
                weak_get(&window1, &dead1, barriers),
                weak_get(&window1, &live1, barriers),
            );
            poll();
            sp1.detach(&m1);
            got
        });

        // The collector, after the pause.
        for w in [&*dead, &*live] {
            weak::settle(&w.slot, |_| None, |t| w.dead(t));
        }
        window.close();
        sp.await_handshakes(loom::thread::yield_now);
        // Finalization resurrects the dead target.
        dead.marked.store(true, Ordering::Relaxed);

        let (got_dead, got_live) = mutator.join().unwrap();
        assert_eq!(got_dead, None, "a dead target was handed out");
        assert_eq!(got_live, Some(LIVE), "a live target was not");
        assert_eq!(dead.slot.load(Ordering::Relaxed), 0);
        assert_eq!(live.slot.load(Ordering::Relaxed), LIVE as u64);
    });
}
