//! Loom model of a finalizer queue's ready list in a concurrent cycle (`tandem::refs::
//! finalize::FinalizerQueues::{next_dead, ready_snapshot}` over the real safepoint and SATB
//! code): the ready lists are not roots of the cycle's pauses; the cycle marks a copy of
//! them after its init-mark pause, and `Mutator::next_dead` shades what it takes while
//! marking runs. A mutator takes the queued object and stores it into an object the cycle
//! does not trace (one allocated black), at any point of the cycle: if the object ends up
//! held there, the cycle marked it.
#![cfg(loom)]

use loom::sync::atomic::AtomicU64;
use loom::sync::{Arc, Mutex};
use tandem::barriers::satb::{SatbBuffer, SatbQueue};
use tandem::barriers::WRITE;
use tandem::refs::finalize::FinalizerQueues;
use tandem::safepoint::{Safepoint, ThreadState};
use tandem::sync::{AtomicU8, Ordering, UnsafeCell};

/// The queued (dead, delivered) object.
const QUEUED: usize = 0x1000;

/// A mutator as the queue protocol sees it.
struct M {
    ts: ThreadState,
    barriers: AtomicU8,
    satb: UnsafeCell<SatbBuffer>,
}

// SAFETY: `satb` is used by the mutator while it runs and by the collector only while the
// world is stopped; loom checks that the safepoint protocol orders the two.
unsafe impl Sync for M {}

loom_tests::participant!(M);

struct World {
    sp: Safepoint<M>,
    satb: SatbQueue,
    queues: FinalizerQueues,
    /// A field of an object allocated black: the cycle never traces it.
    black_field: AtomicU64,
    /// A field of a live object the snapshot covers (traced from the roots).
    traced_field: AtomicU64,
    marked: Mutex<Vec<usize>>,
}

impl World {
    fn mark(&self, entries: impl IntoIterator<Item = usize>) {
        self.marked.lock().unwrap().extend(entries);
    }
}

/// The mutator: poll, take the queued object (shading it while marking, as
/// `Mutator::next_dead` does) and keep it where the cycle looks (before the cycle) or
/// where it does not (during it), poll again.
fn mutator(w: &World, m: &M, q: u32) {
    w.sp.poll(m);
    if let Some(o) = w.queues.next_dead(q, |a| a).unwrap() {
        let barriers = m.barriers.load(Ordering::Relaxed);
        if barriers & WRITE != 0 {
            // SAFETY: running: the buffer is this thread's.
            if let Some(full) = m.satb.with_mut(|b| unsafe { (*b).push(o.addr()) }) {
                w.satb.publish(full);
            }
            w.black_field.store(o.addr() as u64, Ordering::Relaxed);
        } else {
            w.traced_field.store(o.addr() as u64, Ordering::Relaxed);
        }
    }
    w.sp.poll(m);
    // SAFETY: still running: the buffer is ours.
    let rest = m.satb.with_mut(|b| unsafe { (*b).take() });
    w.satb.publish(rest);
    w.sp.detach(m);
}

/// One cycle: init mark (the traced field, not the ready list), the ready list's copy and
/// the SATB entries marked concurrently, final mark (flush every buffer, drain).
fn collector(w: &World) {
    let stopped = w.sp.stop_the_world();
    w.mark(Some(w.traced_field.load(Ordering::Relaxed) as usize).filter(|&t| t != 0));
    for m in &stopped {
        m.barriers.store(WRITE, Ordering::Relaxed);
    }
    drop(stopped);
    w.sp.resume();
    w.mark(w.queues.ready_snapshot());
    while let Some(buf) = w.satb.take() {
        w.mark(buf);
    }
    let stopped = w.sp.stop_the_world();
    for m in &stopped {
        // SAFETY: the world is stopped: the collector owns every mutator's buffer.
        let rest = m.satb.with_mut(|b| unsafe { (*b).take() });
        w.mark(rest);
        m.barriers.store(0, Ordering::Relaxed);
    }
    for buf in w.satb.take_all() {
        w.mark(buf);
    }
    drop(stopped);
    w.sp.resume();
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
            marked: Mutex::new(Vec::new()),
        });
        let q = w.queues.create(None).unwrap();
        w.queues.deliver(q, QUEUED);
        let m = Arc::new(M {
            ts: ThreadState::default(),
            barriers: AtomicU8::new(0),
            satb: UnsafeCell::new(SatbBuffer::default()),
        });
        w.sp.attach(m.clone());
        let (w1, m1) = (w.clone(), m.clone());
        let t = loom::thread::spawn(move || mutator(&w1, &m1, q));
        collector(&w);
        t.join().unwrap();
        let marked = w.marked.lock().unwrap().contains(&QUEUED);
        let held = w.black_field.load(Ordering::Relaxed) as usize == QUEUED
            || w.traced_field.load(Ordering::Relaxed) as usize == QUEUED;
        assert!(held, "the mutator took the object");
        assert!(marked, "the object taken was not marked by the cycle");
    });
}
