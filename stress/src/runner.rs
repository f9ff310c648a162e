//! Runs a workload's body on N attached mutator threads until its budget (a deadline or a
//! count of iterations per thread) is spent, and gathers what the threads counted and why
//! any of them failed. The first failure stops every thread.

use crate::failure::Outcome;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tandem::{Heap, Mutator};

/// How long each thread runs.
#[derive(Debug, Clone, Copy)]
pub enum Budget {
    /// Until this much wall time has passed since the start.
    Time(Duration),
    /// This many iterations per thread.
    Iterations(u64),
}

/// What one thread sees of the run: its index, its budget and the shared stop flag.
#[derive(Debug)]
pub struct ThreadCtx<'a> {
    /// The thread's index, 0-based.
    pub index: usize,
    budget: Budget,
    deadline: Instant,
    stop: &'a AtomicBool,
    work: &'a AtomicU64,
}

impl ThreadCtx<'_> {
    /// Whether the thread should stop after `done` iterations (budget spent, or another
    /// thread failed).
    #[inline]
    pub fn should_stop(&self, done: u64) -> bool {
        // Relaxed: the flag only asks threads to finish early; nothing is published with it.
        if self.stop.load(Ordering::Relaxed) {
            return true;
        }
        match self.budget {
            Budget::Time(_) => Instant::now() >= self.deadline,
            Budget::Iterations(n) => done >= n,
        }
    }

    /// Counts `n` units of checked work (trees, operations, allocations).
    #[inline]
    pub fn count(&self, n: u64) {
        // Relaxed: a statistic, read after the threads are joined.
        self.work.fetch_add(n, Ordering::Relaxed);
    }
}

/// What a run produced.
#[derive(Debug, Default)]
pub struct RunResult {
    /// Units of checked work, summed over the threads.
    pub work: u64,
    /// Failure messages, one per failed thread.
    pub failures: Vec<String>,
}

/// Runs `body` on `threads` threads, each with its own mutator attached inside the thread.
pub fn run_threads<F>(heap: &Heap, threads: usize, budget: Budget, body: F) -> RunResult
where
    F: Fn(&ThreadCtx<'_>, &mut Mutator) -> Outcome<()> + Sync,
{
    let stop = AtomicBool::new(false);
    let work = AtomicU64::new(0);
    let failures = Mutex::new(Vec::new());
    let deadline = match budget {
        Budget::Time(d) => Instant::now() + d,
        Budget::Iterations(_) => Instant::now(),
    };
    std::thread::scope(|s| {
        for index in 0..threads {
            let (stop, work, failures, body) = (&stop, &work, &failures, &body);
            std::thread::Builder::new()
                .name(format!("mutator-{index}"))
                .spawn_scoped(s, move || {
                    let ctx = ThreadCtx {
                        index,
                        budget,
                        deadline,
                        stop,
                        work,
                    };
                    let r = heap.attach().map_err(Into::into).and_then(|mut m| {
                        let r = body(&ctx, &mut m);
                        drop(m);
                        r
                    });
                    if let Err(e) = r {
                        tracing::error!(thread = index, "{e}");
                        stop.store(true, Ordering::Relaxed);
                        failures
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(format!("thread {index}: {e}"));
                    }
                })
                .expect("cannot spawn a mutator thread");
        }
    });
    RunResult {
        work: work.into_inner(),
        failures: failures.into_inner().unwrap_or_else(|p| p.into_inner()),
    }
}
