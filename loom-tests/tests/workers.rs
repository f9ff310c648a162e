//! Loom model of the real worker pool and its termination protocol (`tandem::workers`).
//!
//! Every packet must be processed exactly once, the phase must end (no worker left asleep,
//! no early exit while work remains), and the pool must shut down; a thread outside the
//! pool that takes work (a mark assist) must keep the phase open until it gives back.
#![cfg(loom)]

use tandem::sync::{AtomicUsize, Ordering};
use tandem::workers::{Job, WorkerContext, WorkerPool};

/// A packet n > 0 spawns two packets n-1; every packet processed is counted.
struct Split(AtomicUsize);

impl Job<u32> for Split {
    fn run(&self, ctx: &mut WorkerContext<'_, u32>) {
        while let Some(n) = ctx.next_packet() {
            self.0.fetch_add(1, Ordering::SeqCst);
            if n > 0 {
                ctx.push(n - 1);
                ctx.push(n - 1);
            }
        }
    }
}

#[test]
fn every_packet_is_processed_once_and_the_pool_terminates() {
    loom_tests::model(|| {
        let pool = WorkerPool::new(2, false).unwrap();
        let job = std::sync::Arc::new(Split(AtomicUsize::new(0)));
        pool.run(job.clone(), [1u32]);
        assert_eq!(job.0.load(Ordering::SeqCst), 3);
        drop(pool);
    });
}

#[test]
fn a_second_phase_reuses_the_parked_workers() {
    loom_tests::model(|| {
        let pool = WorkerPool::new(2, false).unwrap();
        for _ in 0..2 {
            let job = std::sync::Arc::new(Split(AtomicUsize::new(0)));
            pool.run(job.clone(), [0u32, 0]);
            assert_eq!(job.0.load(Ordering::SeqCst), 2);
        }
    });
}

/// The loom stand-in for crossbeam's deque answers `Retry` when a steal races with the
/// owner, so the pool models above also cover the workers' retry path; and a racing steal
/// loses or duplicates nothing.
#[test]
fn a_steal_racing_with_the_owner_may_retry_and_loses_nothing() {
    use tandem::sync::deque::{Steal, Worker};
    static SAW_RETRY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    loom_tests::model(|| {
        let w = Worker::new_lifo();
        w.push(1u32);
        w.push(2u32);
        let s = w.stealer();
        let thief = loom::thread::spawn(move || loop {
            match s.steal() {
                Steal::Success(v) => return Some(v),
                Steal::Empty => return None,
                Steal::Retry => {
                    SAW_RETRY.store(true, std::sync::atomic::Ordering::Relaxed);
                    loom::hint::spin_loop();
                }
            }
        });
        let mut got: Vec<u32> = w.pop().into_iter().collect();
        got.extend(thief.join().unwrap());
        got.extend(w.pop());
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
    });
    assert!(SAW_RETRY.load(std::sync::atomic::Ordering::Relaxed));
}

/// A thread outside the pool (a mutator's mark assist) holds the phase, takes a packet,
/// processes it like the job and gives the children back. The phase cannot end while it
/// holds: when `run` returns, a packet the outsider took was processed and its children
/// too, exactly once, wherever the outsider's steps fall; nothing is left queued.
#[test]
fn an_outsider_holding_a_packet_keeps_the_phase_open() {
    loom_tests::model(|| {
        let pool = WorkerPool::new(1, false).unwrap();
        let job = std::sync::Arc::new(Split(AtomicUsize::new(0)));
        let queues = pool.queues();
        let counted = job.clone();
        let outsider = loom::thread::spawn(move || {
            let hold = queues.hold();
            if let Some(n) = hold.take() {
                counted.0.fetch_add(1, Ordering::SeqCst);
                if n > 0 {
                    hold.give(n - 1);
                    hold.give(n - 1);
                }
            }
        });
        pool.run(job.clone(), [1u32]);
        assert_eq!(job.0.load(Ordering::SeqCst), 3, "the phase ended early");
        outsider.join().unwrap();
        assert_eq!(job.0.load(Ordering::SeqCst), 3);
        assert_eq!(pool.pending(), 0, "a hold or a packet was left behind");
    });
}
