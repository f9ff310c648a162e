//! Loom model of a worker's panic handed to the caller (`tandem::workers`: the worker
//! catches the panic, aborts the phase's termination and counts itself finished;
//! `WorkerPool::run_on` re-raises the message on the calling thread).
//!
//! One worker panics on a packet while the other works and publishes more: under every
//! interleaving `run` must return the panic (never hang: loom reports a deadlock if a
//! worker is left waiting for packets the failed one will never publish), the packets the
//! aborted phase left queued must be processed exactly once by the next phase, and the
//! pool must still shut down.
#![cfg(loom)]

use std::sync::Once;
use tandem::sync::Mutex;
use tandem::workers::{Job, WorkerContext, WorkerPool};

/// The packet whose worker panics.
const BOOM: u32 = 0;
const MESSAGE: &str = "boom";

/// Packet n > 1 publishes n - 1; every packet taken is recorded.
struct Record {
    taken: Mutex<Vec<u32>>,
}

impl Job<u32> for Record {
    fn run(&self, ctx: &mut WorkerContext<'_, u32>) {
        while let Some(n) = ctx.next_packet() {
            self.taken.lock().push(n);
            if n == BOOM {
                panic!("{MESSAGE}");
            }
            if n > 1 {
                ctx.push(n - 1);
            }
        }
    }
}

fn record() -> std::sync::Arc<Record> {
    std::sync::Arc::new(Record {
        taken: Mutex::new(Vec::new()),
    })
}

/// Keeps the model's expected panics off stderr; any other panic is reported as usual.
fn quiet_expected_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<String>().map(String::as_str) != Some(MESSAGE) {
                default(info);
            }
        }));
    });
}

#[test]
fn a_worker_panic_reaches_the_caller_and_the_next_phase_finishes_the_work() {
    quiet_expected_panics();
    loom_tests::model(|| {
        let pool = WorkerPool::new(2, false).unwrap();
        let failed = record();
        let job = failed.clone();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.run(job, [BOOM, 2]);
        }));
        let msg = tandem::fault::panic_message(&*r.expect_err("run returns the panic"));
        assert!(
            msg == format!("GC worker 0 panicked: {MESSAGE}")
                || msg == format!("GC worker 1 panicked: {MESSAGE}"),
            "{msg}"
        );
        let mut taken = failed.taken.lock().clone();
        assert_eq!(
            taken.iter().filter(|&&n| n == BOOM).count(),
            1,
            "the failing packet was taken once"
        );
        // The next phase takes what the aborted one left queued.
        let next = record();
        pool.run(next.clone(), []);
        taken.extend(next.taken.lock().iter());
        taken.sort_unstable();
        assert_eq!(taken, [BOOM, 1, 2], "every packet taken exactly once");
        drop(pool);
    });
}
