//! How a workload is driven: a [`Run`] holds its budget (a deadline or a count of
//! iterations per thread), the stop flag that the first failure raises, and the count of
//! checked work; [`run_threads`] runs a body on N attached mutator threads and gathers why
//! any of them failed. The stress runs give a time or an iteration budget; the bench a
//! fixed count, so that both collectors do the same work.

use crate::collector::Collector;
use crate::failure::{Failure, Fallible};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long each thread runs.
#[derive(Debug, Clone, Copy)]
pub enum Budget {
    /// Until this much wall time has passed since the start.
    Time(Duration),
    /// This many iterations per thread (what an iteration is, each workload says).
    Iterations(u64),
}

/// One run of a workload: its budget, its stop flag and its count of checked work.
#[derive(Debug)]
pub struct Run {
    deadline: Option<Instant>,
    iterations: u64,
    stop: AtomicBool,
    work: AtomicU64,
}

impl Run {
    /// A run with `budget`, starting now.
    pub fn new(budget: Budget) -> Run {
        let (deadline, iterations) = match budget {
            Budget::Time(d) => (Some(Instant::now() + d), u64::MAX),
            Budget::Iterations(n) => (None, n),
        };
        Run {
            deadline,
            iterations,
            stop: AtomicBool::new(false),
            work: AtomicU64::new(0),
        }
    }

    /// A run of one iteration per thread: for workloads whose size is all in their
    /// parameters.
    pub fn once() -> Run {
        Run::new(Budget::Iterations(1))
    }

    /// Whether a thread should stop after `done` iterations: the budget is spent, or
    /// another thread failed.
    #[inline]
    pub fn should_stop(&self, done: u64) -> bool {
        done >= self.iterations || self.out_of_time()
    }

    /// Whether the deadline has passed or another thread failed: a workload whose
    /// iteration is long checks this inside it.
    #[inline]
    pub fn out_of_time(&self) -> bool {
        // Relaxed: the flag only asks threads to finish early; nothing is published with it.
        self.stop.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Counts `n` units of checked work (trees, operations, allocations).
    #[inline]
    pub fn count(&self, n: u64) {
        // Relaxed: a statistic, read after the threads are joined.
        self.work.fetch_add(n, Ordering::Relaxed);
    }

    /// Units of checked work so far.
    pub fn work(&self) -> u64 {
        self.work.load(Ordering::Relaxed)
    }
}

/// What one thread sees of the run.
#[derive(Debug)]
pub struct ThreadCtx<'a> {
    /// The thread's index, 0-based.
    pub index: usize,
    /// The run.
    pub run: &'a Run,
}

impl ThreadCtx<'_> {
    /// See [`Run::should_stop`].
    #[inline]
    pub fn should_stop(&self, done: u64) -> bool {
        self.run.should_stop(done)
    }

    /// See [`Run::count`].
    #[inline]
    pub fn count(&self, n: u64) {
        self.run.count(n)
    }
}

/// Runs `body` on `threads` threads, each with its own mutator attached inside the thread.
/// The first failure stops the other threads at their next check of the run; the error
/// names every thread that failed.
pub fn run_threads<C, F>(c: &C, threads: usize, run: &Run, body: F) -> Fallible<()>
where
    C: Collector,
    F: Fn(&ThreadCtx<'_>, &mut C::Mutator) -> Fallible<()> + Sync,
{
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for index in 0..threads {
            let (failures, body) = (&failures, &body);
            std::thread::Builder::new()
                .name(format!("mutator-{index}"))
                // Tree workloads recurse as deep as their trees.
                .stack_size(8 << 20)
                .spawn_scoped(s, move || {
                    let ctx = ThreadCtx { index, run };
                    if let Err(e) = c.attach().and_then(|mut m| body(&ctx, &mut m)) {
                        tracing::error!(thread = index, "{e}");
                        run.stop.store(true, Ordering::Relaxed);
                        failures
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(format!("thread {index}: {e}"));
                    }
                })
                .expect("cannot spawn a mutator thread");
        }
    });
    let failures = failures.into_inner().unwrap_or_else(|p| p.into_inner());
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Failure::Threads(failures))
    }
}
