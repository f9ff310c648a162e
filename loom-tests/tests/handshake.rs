//! Loom model of the SATB handshake (`Safepoint::request_handshakes`, `Safepoint::poll_slow`,
//! `Safepoint::handshakes_answered`, `BarrierState::flush`) and the final-mark drain that follows it in a concurrent cycle
//! (`collector::concurrent`, steps 2 and 3).
//!
//! A mutator holds a partly filled SATB buffer (far below `SATB_BUFFER_CAPACITY`, so only a
//! flush hands it over) and polls twice, logging between the polls while its barriers are
//! on. The collector requests the handshake, drains the queue concurrently, then stops the
//! world for final mark: it flushes every stopped mutator's buffer, turns the barriers off
//! and drains again. The buffers are loom cells, so loom also reports a flush by the
//! collector that overlaps the mutator's own use.
#![cfg(loom)]

use loom::sync::Arc;
use tandem::barriers::satb::SatbQueue;
use tandem::barriers::MARKING;
use tandem::mutator::BarrierState;
use tandem::safepoint::{Safepoint, ThreadState};
use tandem::sync::{AtomicU8, Mutex, Ordering, UnsafeCell};

/// A mutator as the handshake sees it: its poll word, barrier state and barrier buffers.
struct M {
    ts: ThreadState,
    /// `MutatorCore::gc_state`: MARKING since the init-mark pause (before the model).
    gc_state: AtomicU8,
    barrier: UnsafeCell<BarrierState>,
}

// SAFETY: as for `MutatorCore`: the buffers belong to the mutator's thread while it runs
// and to the collector while the world is stopped (loom checks that the two never overlap).
unsafe impl Sync for M {}

loom_tests::participant!(M);

struct World {
    sp: Safepoint<M>,
    /// `Runtime::satb`.
    satb: SatbQueue,
    /// `Runtime::logged`.
    logged: Mutex<Vec<usize>>,
}

/// An object the mutator logged with the object barrier before its first poll.
const LOGGED_OBJECT: usize = 0x100;

/// What the mutator did and saw.
#[derive(Debug, Default)]
struct Seen {
    /// The entries it logged, in order.
    logged: Vec<usize>,
    /// How many of them it had logged when it answered the handshake, if it did.
    answered_after: Option<usize>,
    /// Whether a poll parked it (the final-mark stop).
    parked: bool,
}

impl World {
    /// A store with the SATB barrier (`Mutator::write_ref`): while marking, the overwritten
    /// `entry` goes to the mutator's private buffer.
    fn store(&self, m: &M, entry: usize, seen: &mut Seen) {
        // Relaxed, as `MutatorCore::marking`: gc_state changes only while m is stopped.
        if m.gc_state.load(Ordering::Relaxed) & MARKING == 0 {
            return;
        }
        // SAFETY: RUNNING on the mutator's own thread (loom checks the exclusion).
        m.barrier.with_mut(|b| {
            let full = unsafe { &mut *b }.satb.push(entry);
            assert!(full.is_none(), "the model's buffer stays partial");
        });
        seen.logged.push(entry);
    }

    /// `Mutator::safepoint`: the fast-path test, then the slow path.
    fn poll(&self, m: &M, seen: &mut Seen) {
        if m.ts.poll_requested() {
            let logged_so_far = seen.logged.len();
            let mut answered = false;
            let parked = self.sp.poll_slow(m, || {
                answered = true;
                // SAFETY: RUNNING on the mutator's own thread.
                m.barrier
                    .with_mut(|b| unsafe { &mut *b }.flush(&self.satb, &self.logged));
            });
            if answered {
                seen.answered_after = Some(logged_so_far);
            }
            seen.parked |= parked.is_some();
        }
    }
}

#[test]
fn the_handshake_hands_over_every_entry_logged_before_it_was_answered_exactly_once() {
    loom_tests::model(|| {
        let w = Arc::new(World {
            sp: Safepoint::default(),
            satb: SatbQueue::default(),
            logged: Mutex::new(Vec::new()),
        });
        let m = Arc::new(M {
            ts: ThreadState::default(),
            gc_state: AtomicU8::new(MARKING),
            barrier: UnsafeCell::new(BarrierState::default()),
        });
        w.sp.attach(m.clone());

        let (w1, m1) = (w.clone(), m.clone());
        let mutator = loom::thread::spawn(move || {
            let mut seen = Seen::default();
            w1.store(&m1, 1, &mut seen);
            w1.store(&m1, 2, &mut seen);
            // SAFETY: RUNNING on the mutator's own thread.
            m1.barrier
                .with_mut(|b| unsafe { &mut *b }.logged.push(LOGGED_OBJECT));
            w1.poll(&m1, &mut seen);
            w1.store(&m1, 3, &mut seen);
            w1.poll(&m1, &mut seen);
            // Blocks in native code from here on: the stop need not wait for it.
            w1.sp.enter_native(&m1);
            seen
        });

        // 2. Concurrent marking's last round: ask for the partial buffers, drain the queue.
        // The collector looks once for the answers (`Safepoint::handshakes_answered`, which
        // it waits on for a while), then drains.
        w.sp.request_handshakes();
        let answered = w.sp.handshakes_answered();
        let mut handed_over: Vec<usize> = w.satb.take_all().into_iter().flatten().collect();
        let first_drain = handed_over.clone();
        // 3. Final mark: stop; what the queue holds now came from handshakes (or full
        // buffers); then flush every stopped mutator's buffer, turn its barriers off and
        // drain the rest.
        let stopped = w.sp.stop_the_world();
        handed_over.extend(w.satb.take_all().into_iter().flatten());
        for s in &stopped {
            // SAFETY: the world is stopped: the collector owns the mutator's buffers.
            s.barrier
                .with_mut(|b| unsafe { &mut *b }.flush(&w.satb, &w.logged));
            s.gc_state.store(0, Ordering::Relaxed);
        }
        let at_final_mark: Vec<usize> = w.satb.take_all().into_iter().flatten().collect();
        w.sp.resume();

        let seen = mutator.join().unwrap();
        let mut all: Vec<usize> = handed_over.iter().chain(&at_final_mark).copied().collect();
        all.sort_unstable();
        let mut logged = seen.logged.clone();
        logged.sort_unstable();
        assert_eq!(
            all, logged,
            "every logged entry reaches the collector exactly once"
        );
        assert_eq!(w.satb.pending_entries(), 0);
        assert_eq!(
            *w.logged.lock(),
            [LOGGED_OBJECT],
            "and every logged object once"
        );
        if let (true, Some(n)) = (answered, seen.answered_after) {
            // Seen answered: the drain right after the look had everything the answer
            // handed over.
            for e in &seen.logged[..n] {
                assert!(
                    first_drain.contains(e),
                    "entry {e} missed the awaited drain"
                );
            }
        }
        match seen.answered_after {
            Some(n) => {
                // These were logged before the answer: the handshake handed them over, so
                // the queue held them before final mark flushed anything.
                for e in &seen.logged[..n] {
                    assert!(handed_over.contains(e), "entry {e} missed the handshake");
                }
                assert!(!m.ts.take_handshake(), "an answered request stays answered");
            }
            None => {
                assert!(
                    !seen.parked,
                    "a mutator stopped at a poll answered the handshake"
                );
                assert!(
                    m.ts.take_handshake(),
                    "an unanswered request is still pending"
                );
            }
        }
        w.sp.leave_native(&m);
        w.sp.detach(&m);
    });
}
