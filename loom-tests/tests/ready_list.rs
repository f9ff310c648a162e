//! Loom model of a finalizer queue's ready list in a concurrent cycle (`tandem::refs::
//! finalize::FinalizerQueues::{next_dead, ready_snapshot}` over the real safepoint and SATB
//! code): the ready lists are not roots of the cycle's pauses; the cycle marks a copy of
//! them after its init-mark pause, and `Mutator::next_dead` shades what it takes while
//! marking runs. A mutator takes the queued object and stores it into an object the cycle
//! does not trace (one allocated black), at any point of the cycle: if the object ends up
//! held there, the cycle marked it.
#![cfg(loom)]

use loom::sync::atomic::AtomicU64;
use loom::sync::Arc;
use loom_tests::satb::{cycle, Marked, SatbMutator};
use tandem::barriers::satb::SatbQueue;
use tandem::refs::finalize::{FinalizerQueues, Registration};
use tandem::safepoint::Safepoint;
use tandem::sync::Ordering;

/// The queued (dead, delivered) object.
const QUEUED: usize = 0x1000;

struct World {
    sp: Safepoint<SatbMutator>,
    satb: SatbQueue,
    queues: FinalizerQueues,
    /// A field of an object allocated black: the cycle never traces it.
    black_field: AtomicU64,
    /// A field of a live object the snapshot covers (traced from the roots).
    traced_field: AtomicU64,
    marked: Marked,
}

/// The mutator: poll, take the queued object (shading it while marking, as
/// `Mutator::next_dead` does) and keep it where the cycle looks (before the cycle) or
/// where it does not (during it), poll again.
fn mutator(w: &World, m: &SatbMutator, q: u32) {
    w.sp.poll(m);
    if let Some(o) = w.queues.next_dead(q, |a| a).unwrap() {
        if m.marking() {
            m.shade(&w.satb, o.addr());
            w.black_field.store(o.addr() as u64, Ordering::Relaxed);
        } else {
            w.traced_field.store(o.addr() as u64, Ordering::Relaxed);
        }
    }
    w.sp.poll(m);
    m.detach(&w.sp, &w.satb);
}

/// One cycle: init mark (the traced field, not the ready list), the ready list's copy and
/// the SATB entries marked concurrently, final mark (flush every buffer, drain).
fn collector(w: &World) {
    cycle(
        &w.sp,
        &w.satb,
        &w.marked,
        || w.traced_field.load(Ordering::Relaxed) as usize,
        || w.marked.mark(w.queues.ready_snapshot()),
        || {},
    );
}

#[test]
fn an_object_taken_from_a_ready_list_while_marking_runs_is_kept() {
    loom_tests::model(|| {
        let w = Arc::new(World {
            sp: Safepoint::default(),
            satb: SatbQueue::default(),
            queues: FinalizerQueues::default(),
            black_field: AtomicU64::new(0),
            traced_field: AtomicU64::new(0),
            marked: Marked::default(),
        });
        let q = w.queues.create(None).unwrap();
        w.queues.deliver_all(&mut [Registration::new(QUEUED, q)]);
        let m = Arc::new(SatbMutator::new(0));
        w.sp.attach(m.clone());
        let (w1, m1) = (w.clone(), m.clone());
        let t = loom::thread::spawn(move || mutator(&w1, &m1, q));
        collector(&w);
        t.join().unwrap();
        let held = w.black_field.load(Ordering::Relaxed) as usize == QUEUED
            || w.traced_field.load(Ordering::Relaxed) as usize == QUEUED;
        assert!(held, "the mutator took the object");
        assert!(
            w.marked.contains(QUEUED),
            "the object taken was not marked by the cycle"
        );
    });
}
