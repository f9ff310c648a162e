//! The pool of GC worker threads: one work-stealing deque per worker plus one injector,
//! packets of work, termination detection and parking between phases.
//!
//! # Worker states
//!
//! * **Parked**: waiting on `job_cv` for the next phase (between GCs). Costs nothing.
//! * **Running**: inside `Job::run`; when the job uses the queues, taking packets from its
//!   own deque (LIFO), then the injector, then stealing from the others.
//! * **Idle/sleeping**: in [`terminate::Terminator::idle`], until work appears or the
//!   phase terminates.
//!
//! The control thread starts a phase with [`WorkerPool::run`], which bumps an epoch under
//! the lock and wakes the parked workers, then sleeps until each has finished the job.
//!
//! # Failures
//!
//! A job that panics on a worker is caught there: the worker records the message, aborts
//! the phase's termination (so its peers stop waiting for packets it will never publish)
//! and counts itself finished like the others. The phase then ends on every worker, and
//! [`WorkerPool::run_on`] re-raises the failure on the control thread (without calling the
//! panic hook again), where the collector turns it into the runtime's failed state. The
//! loom model `loom-tests/tests/worker_panic.rs` checks that no interleaving hangs and that
//! the next phase takes the packets the failed one left queued.

pub mod terminate;

use crate::sync::deque::{Injector, Steal, Stealer, Worker};
use crate::sync::{spin_loop, thread, unmodelled, Arc, Condvar, Mutex};
use terminate::{Idle, Terminator};

/// One parallel phase, run once by every worker.
pub trait Job<P>: Send + Sync {
    /// The phase's work on one worker. A job either takes packets with
    /// [`WorkerContext::next_packet`] until it returns None on every worker, or never calls it.
    fn run(&self, ctx: &mut WorkerContext<'_, P>);
}

struct Control<P> {
    // std's Arc: a job is handed over under the lock, so loom need not see its count.
    job: Option<unmodelled::Arc<dyn Job<P>>>,
    /// Workers `0..active` run the job; the others skip it.
    active: usize,
    epoch: u64,
    finished: usize,
    shutdown: bool,
    /// The first panic of this phase, as `GC worker N panicked: message`.
    failure: Option<String>,
}

struct Shared<P> {
    n: usize,
    injector: Injector<P>,
    stealers: Vec<Stealer<P>>,
    term: Terminator,
    control: Mutex<Control<P>>,
    job_cv: Condvar,
    done_cv: Condvar,
}

/// The view of the pool one worker has while running a job.
pub struct WorkerContext<'a, P> {
    /// This worker's index, `0..active`.
    pub id: usize,
    active: usize,
    local: &'a Worker<P>,
    shared: &'a Shared<P>,
}

impl<P> WorkerContext<'_, P> {
    /// Number of workers running this job.
    pub fn workers(&self) -> usize {
        self.active
    }

    /// Ends this phase early for every worker (see [`WorkerPool::run_on`]); a job that sees
    /// it must publish its unfinished work with [`WorkerContext::push`] and return.
    pub fn abort(&self) {
        self.shared.term.abort();
    }

    /// Whether this worker's deque and the shared queue are empty (idle workers and outside
    /// helpers may be starved).
    pub fn queues_empty(&self) -> bool {
        self.local.is_empty() && self.shared.injector.is_empty()
    }

    /// Makes `p` available to this worker and to thieves.
    pub fn push(&mut self, p: P) {
        self.shared.term.before_publish();
        self.local.push(p);
        self.shared.term.after_publish();
    }

    fn try_take(&mut self) -> Option<P> {
        if let Some(p) = self.local.pop() {
            return Some(p);
        }
        self.shared.steal(self.id + 1)
    }

    /// The next packet of this phase, or None once every worker has run dry.
    pub fn next_packet(&mut self) -> Option<P> {
        loop {
            if let Some(p) = self.try_take() {
                self.shared.term.taken();
                return Some(p);
            }
            match self.shared.term.idle(self.active) {
                Idle::Done => return None,
                // A packet is published but may not be visible yet: let its producer finish.
                Idle::Retry => thread::yield_now(),
            }
        }
    }
}

impl<P> Shared<P> {
    /// A packet from the injector or another worker's deque (trying worker `first` first),
    /// or None when every queue is empty.
    fn steal(&self, first: usize) -> Option<P> {
        loop {
            let mut retry = false;
            match self.injector.steal() {
                Steal::Success(p) => return Some(p),
                Steal::Retry => retry = true,
                Steal::Empty => {}
            }
            let n = self.stealers.len();
            for k in 0..n {
                match self.stealers[(first + k) % n].steal() {
                    Steal::Success(p) => return Some(p),
                    Steal::Retry => retry = true,
                    Steal::Empty => {}
                }
            }
            if !retry {
                return None;
            }
            // A steal raced with another operation: look again (under loom, let the other
            // thread run first).
            spin_loop();
        }
    }
}

/// The pool's queues as seen from outside it: a thread that is not a worker (a mutator
/// assisting the markers) holds the phase open, takes packets, gives back what it did not
/// finish, and lets go.
///
/// While a [`Hold`] lives it counts as one pending packet for the terminator, so the
/// workers cannot end their phase while the outsider may still give work back; they look
/// for work meanwhile (an outsider shares when the queues run dry, as workers do).
/// Outside a phase, what is given stays queued for the next one, so an owner that lets
/// outsiders work between phases must run a phase while [`PacketQueues::pending`] is not
/// 0 (marking's final pause does).
pub struct PacketQueues<P>(Arc<Shared<P>>);

impl<P> Clone for PacketQueues<P> {
    fn clone(&self) -> Self {
        PacketQueues(self.0.clone())
    }
}

impl<P> std::fmt::Debug for PacketQueues<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketQueues")
            .field("pending", &self.pending())
            .finish()
    }
}

impl<P> PacketQueues<P> {
    /// Holds the current phase open until the returned guard is dropped.
    pub fn hold(&self) -> Hold<'_, P> {
        self.0.term.before_publish();
        Hold(&self.0)
    }

    /// Packets queued and not yet taken, plus one per live [`Hold`].
    pub fn pending(&self) -> usize {
        self.0.term.pending()
    }
}

/// An outsider's claim on the pool's phase (see [`PacketQueues`]).
pub struct Hold<'a, P>(&'a Shared<P>);

impl<P> Hold<'_, P> {
    /// A queued packet, or None when every queue is empty.
    pub fn take(&self) -> Option<P> {
        let p = self.0.steal(0)?;
        // The hold keeps `pending` above 0 until it is dropped.
        self.0.term.taken();
        Some(p)
    }

    /// Queues `p` for the workers (waking a sleeping one).
    pub fn give(&self, p: P) {
        self.0.term.before_publish();
        self.0.injector.push(p);
        self.0.term.after_publish();
    }

    /// Whether the shared queue is empty (the workers may be starved).
    pub fn starved(&self) -> bool {
        self.0.injector.is_empty()
    }
}

impl<P> Drop for Hold<'_, P> {
    fn drop(&mut self) {
        self.0.term.taken();
    }
}

/// The worker threads.
pub struct WorkerPool<P: Send + 'static> {
    shared: Arc<Shared<P>>,
    handles: Vec<thread::JoinHandle<()>>,
}

impl<P: Send + 'static> WorkerPool<P> {
    /// Starts `n` parked workers; with `affinity`, worker `i` is pinned to core `i mod cores`.
    /// Fails when a thread cannot be spawned (the ones already started are stopped).
    pub fn new(n: usize, affinity: bool) -> std::io::Result<WorkerPool<P>> {
        assert!(n > 0);
        let locals: Vec<Worker<P>> = (0..n).map(|_| Worker::new_lifo()).collect();
        let shared = Arc::new(Shared {
            n,
            injector: Injector::new(),
            stealers: locals.iter().map(Worker::stealer).collect(),
            term: Terminator::default(),
            control: Mutex::new(Control {
                job: None,
                active: n,
                epoch: 0,
                finished: 0,
                shutdown: false,
                failure: None,
            }),
            job_cv: Condvar::new(),
            done_cv: Condvar::new(),
        });
        let cores = if affinity { core_ids() } else { Vec::new() };
        let mut pool = WorkerPool {
            shared,
            handles: Vec::with_capacity(n),
        };
        for (id, local) in locals.into_iter().enumerate() {
            let shared = pool.shared.clone();
            let core = (!cores.is_empty()).then(|| cores[id % cores.len()]);
            // On error, dropping `pool` stops the workers started so far.
            pool.handles.push(spawn_worker(id, move || {
                pin(core);
                worker_loop(id, local, &shared)
            })?);
        }
        Ok(pool)
    }

    /// Stops the parked workers without waiting for them (a failed collector's exit: a
    /// worker stuck in a VM callback must not hang the thread that drops the pool).
    pub fn abandon(mut self) {
        self.handles.clear();
    }

    /// A handle on the queues for threads outside the pool.
    pub fn queues(&self) -> PacketQueues<P> {
        PacketQueues(self.shared.clone())
    }

    /// Packets queued and not yet taken (left by an aborted phase or given back by a thread
    /// outside the pool).
    pub fn pending(&self) -> usize {
        self.shared.term.pending()
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.shared.n
    }

    /// CPU time the workers have used so far, nanoseconds (0 in loom models, whose threads
    /// have no clocks).
    pub fn cpu_ns(&self) -> u64 {
        #[cfg(not(loom))]
        return self.handles.iter().map(crate::cpu::thread_ns).sum();
        #[cfg(loom)]
        0
    }

    /// Runs `job` on every worker with `seed` packets in the injector, and returns when all
    /// workers have finished it.
    pub fn run(&self, job: unmodelled::Arc<dyn Job<P>>, seed: impl IntoIterator<Item = P>) {
        self.run_on(self.shared.n, job, seed)
    }

    /// Runs `job` on workers `0..active` only (the others stay parked), with `seed` packets
    /// added to whatever an aborted earlier phase left queued.
    pub fn run_on(
        &self,
        active: usize,
        job: unmodelled::Arc<dyn Job<P>>,
        seed: impl IntoIterator<Item = P>,
    ) {
        let s = &*self.shared;
        let active = active.clamp(1, s.n);
        s.term.reset();
        for p in seed {
            s.term.before_publish();
            s.injector.push(p);
        }
        let mut g = s.control.lock();
        g.job = Some(job);
        g.active = active;
        g.epoch += 1;
        g.finished = 0;
        s.job_cv.notify_all();
        while g.finished < s.n {
            g = s.done_cv.wait(g);
        }
        g.job = None;
        if let Some(msg) = g.failure.take() {
            drop(g);
            std::panic::resume_unwind(Box::new(msg));
        }
    }
}

fn worker_loop<P>(id: usize, local: Worker<P>, shared: &Shared<P>) {
    let mut seen = 0;
    loop {
        let job = {
            let mut g = shared.control.lock();
            while g.epoch == seen && !g.shutdown {
                g = shared.job_cv.wait(g);
            }
            if g.shutdown {
                return;
            }
            seen = g.epoch;
            (
                g.job.clone().expect("a new epoch always carries a job"),
                g.active,
            )
        };
        let (job, active) = job;
        if id < active {
            let mut ctx = WorkerContext {
                id,
                active,
                local: &local,
                shared,
            };
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run(&mut ctx)));
            if let Err(p) = ran {
                let msg = crate::fault::panic_message(&*p);
                shared.term.abort();
                shared
                    .control
                    .lock()
                    .failure
                    .get_or_insert_with(|| format!("GC worker {id} panicked: {msg}"));
            }
        }
        drop(job);
        let mut g = shared.control.lock();
        g.finished += 1;
        if g.finished == shared.n {
            shared.done_cv.notify_all();
        }
    }
}

impl<P: Send + 'static> Drop for WorkerPool<P> {
    fn drop(&mut self) {
        {
            let mut g = self.shared.control.lock();
            g.shutdown = true;
            self.shared.job_cv.notify_all();
        }
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

#[cfg(not(loom))]
fn spawn_worker(
    id: usize,
    f: impl FnOnce() + Send + 'static,
) -> std::io::Result<thread::JoinHandle<()>> {
    thread::Builder::new()
        .name(format!("tandem-gc-{id}"))
        .spawn(move || {
            crate::heap::enter_collector_thread();
            f()
        })
}

#[cfg(loom)]
fn spawn_worker(
    _id: usize,
    f: impl FnOnce() + Send + 'static,
) -> std::io::Result<thread::JoinHandle<()>> {
    Ok(thread::spawn(f))
}

#[cfg(not(loom))]
type CoreId = core_affinity::CoreId;
#[cfg(loom)]
type CoreId = ();

#[cfg(not(loom))]
fn core_ids() -> Vec<CoreId> {
    core_affinity::get_core_ids().unwrap_or_default()
}
#[cfg(loom)]
fn core_ids() -> Vec<CoreId> {
    Vec::new()
}

#[cfg(not(loom))]
fn pin(core: Option<CoreId>) {
    if let Some(c) = core {
        if !core_affinity::set_for_current(c) {
            tracing::warn!(core = c.id, "could not pin GC worker to core");
        }
    }
}
#[cfg(loom)]
fn pin(_core: Option<CoreId>) {}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Each packet n > 0 splits into two packets n-1; counts every packet processed.
    struct Split(AtomicUsize);
    impl Job<u32> for Split {
        fn run(&self, ctx: &mut WorkerContext<'_, u32>) {
            while let Some(n) = ctx.next_packet() {
                self.0.fetch_add(1, Ordering::Relaxed);
                if n > 0 {
                    ctx.push(n - 1);
                    ctx.push(n - 1);
                }
            }
        }
    }

    #[test]
    fn every_packet_is_processed_exactly_once_and_the_pool_terminates() {
        let pool = WorkerPool::new(4, false).unwrap();
        for _ in 0..20 {
            let job = std::sync::Arc::new(Split(AtomicUsize::new(0)));
            pool.run(job.clone(), [10u32, 3]);
            assert_eq!(job.0.load(Ordering::Relaxed), (1 << 11) - 1 + (1 << 4) - 1);
        }
    }

    #[test]
    fn a_panicking_job_ends_the_phase_on_every_worker_and_reaches_the_caller() {
        /// The worker that takes packet 3 panics; its peer would wait for that worker to
        /// go idle forever unless the phase is aborted.
        struct Boom;
        impl Job<u32> for Boom {
            fn run(&self, ctx: &mut WorkerContext<'_, u32>) {
                while let Some(n) = ctx.next_packet() {
                    if n == 3 {
                        panic!("boom on packet {n}");
                    }
                }
            }
        }
        let pool = WorkerPool::new(2, false).unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.run(std::sync::Arc::new(Boom), [1u32, 2, 3, 4])
        }));
        let msg = crate::fault::panic_message(&*r.unwrap_err());
        assert!(msg.starts_with("GC worker "), "{msg}");
        assert!(msg.ends_with(" panicked: boom on packet 3"), "{msg}");
        // The pool still serves later phases (packets the aborted phase left are drained).
        let job = std::sync::Arc::new(Split(AtomicUsize::new(0)));
        pool.run(job.clone(), [2u32]);
        assert!(job.0.load(Ordering::Relaxed) >= 7);
    }

    #[test]
    fn a_job_without_packets_runs_once_per_worker() {
        struct Count(AtomicUsize);
        impl Job<()> for Count {
            fn run(&self, _: &mut WorkerContext<'_, ()>) {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        let pool = WorkerPool::new(3, true).unwrap();
        let job = std::sync::Arc::new(Count(AtomicUsize::new(0)));
        pool.run(job.clone(), []);
        assert_eq!(job.0.load(Ordering::Relaxed), 3);
    }
}
