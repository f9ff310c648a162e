//! The collector: a daemon control thread that serves GC requests with the configured
//! collector, running the parallel work on the worker pool.
//!
//! * `TANDEM_MODE=stw` ([`stw`]): one pause: stop the world (measuring time-to-safepoint),
//!   retire every TLAB, mark from the roots in parallel, sweep in parallel, resume.
//! * `TANDEM_MODE=concurrent` ([`concurrent`]): init-mark pause (roots, barriers on),
//!   concurrent parallel marking with SATB, final-mark pause (drain SATB, rescan roots,
//!   finish the closure), concurrent sweep.
//!
//! Both share the pieces below: stopping the world, gathering roots, verification, and the
//! sweep.

pub mod assist;
pub mod concurrent;
pub mod evacuate;
pub mod mark;
pub mod pacer;
pub mod request;
pub mod step;
pub mod stw;
pub mod sweep;
pub mod validate;
pub mod verify;
pub mod walk;

use crate::config::Mode;
use crate::mutator::MutatorCore;
use crate::runtime::Runtime;
use crate::safepoint::Participant;
use crate::stats::{GcCause, PauseKind, PauseRecord};
use crate::sync::unmodelled::Arc;
use crate::workers::WorkerPool;
use mark::{BadRefs, MarkPacket};
use std::time::{Duration, Instant};

/// Starts the worker pool and the control thread, which owns it. Fails when a thread
/// cannot be spawned.
pub fn start(rt: Arc<Runtime>) -> std::io::Result<std::thread::JoinHandle<()>> {
    let pool = WorkerPool::<MarkPacket>::new(rt.config.threads, rt.config.affinity)?;
    rt.stats.restart_collector_cpu();
    // The first trigger, before any mutator can allocate: set only by the control thread,
    // it left the minimum heap as the trigger until that thread ran, and a mutator that
    // allocated past it first started a cycle the configuration did not ask for (a
    // `TANDEM_GC_TRIGGER` of 200 MB collected at 4 MB on a busy machine).
    let first = pacer::Pacer::default().trigger(&rt, pacer::Survivors::default());
    pacer::install(&rt, first, 0);
    rt.assists.connect(pool.queues());
    std::thread::Builder::new()
        .name("tandem-control".into())
        .spawn(move || control_loop(rt, pool))
}

/// The control thread's body. A panic here, or one a worker raised in a phase, ends the
/// loop and fails the runtime (see [`crate::fault`]): mutators get errors, never a hang.
fn control_loop(rt: Arc<Runtime>, pool: WorkerPool<MarkPacket>) {
    crate::heap::enter_collector_thread();
    let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| serve(&rt, &pool)));
    match served {
        Ok(()) => tracing::debug!("collector stopped"),
        Err(p) => {
            let msg = crate::fault::panic_message(&*p);
            let msg = if msg.starts_with("GC worker ") || msg.starts_with("a mark assist ") {
                msg
            } else {
                format!("the GC control thread panicked: {msg}")
            };
            rt.fail(msg);
            pool.abandon();
        }
    }
}

/// Serves GC requests until shutdown.
fn serve(rt: &Arc<Runtime>, pool: &WorkerPool<MarkPacket>) {
    // The first trigger and limit were installed by `start`, before this thread ran.
    let mut pacer = pacer::Pacer::default();
    tracing::debug!(workers = pool.workers(), mode = ?rt.config.mode, "collector started");
    while let Some(cause) = rt.requests.next() {
        let n = rt.requests.completed() + 1;
        let span = tracing::info_span!("gc", n, cause = ?cause);
        let _e = span.enter();
        let _activity = rt.fork_gate.activity();
        let nursery = nursery_cycle(rt, &pacer, cause);
        if rt.config.generational && !nursery {
            // Old objects are traced again: every mark bit goes (before the pause, which
            // need not wait for it; nothing sets marks between cycles).
            rt.space.clear_all_marks();
        }
        match rt.config.mode {
            Mode::Stw => stw::collect(rt, pool, &mut pacer, cause, nursery),
            Mode::Concurrent if compacts_in_a_pause(rt, &pacer, cause) => {
                stw::collect(rt, pool, &mut pacer, cause, nursery)
            }
            Mode::Concurrent => concurrent::cycle(rt, pool, &mut pacer, cause, nursery),
        }
    }
}

/// Generational mode: whether the cycle about to start is a nursery cycle (it traces only
/// from the roots and the remembered set through the objects allocated since the last
/// cycle; see `barriers::remember`). A cycle is full when the pacer asks (the old objects
/// have filled most of the growth headroom), when the VM asks (an explicit collection)
/// and when an allocation waits for memory: only a full cycle's live figure may declare
/// it out of memory.
fn nursery_cycle(rt: &Runtime, pacer: &pacer::Pacer, cause: GcCause) -> bool {
    if !rt.config.generational {
        return false;
    }
    let forced = rt.take_full_request();
    let asked = cause == GcCause::Young;
    !forced
        && (asked || cause == GcCause::Trigger && !pacer.wants_full())
        && !rt.requests.is_urgent()
}

/// The first pause of a cycle, generational mode: takes the remembered set (a full cycle
/// drops it: it arms every object it scans), checks the generational invariant under
/// `TANDEM_VERIFY`, and sets the kind of the epoch that starts next. Returns the
/// remembered objects a nursery cycle marks from.
fn begin_generation(
    rt: &Runtime,
    pause: &Pause,
    nursery: bool,
    findings: &mut verify::Findings,
) -> Vec<Vec<usize>> {
    if !rt.config.generational {
        return Vec::new();
    }
    rt.set_last_cycle_full(!nursery);
    let remembered = rt.take_remembered(&pause.world);
    if rt.config.verify && nursery {
        verify::generations(rt, &pause.roots(rt), &remembered, findings);
    }
    rt.space.set_nursery(nursery);
    if nursery {
        remembered
    } else {
        Vec::new()
    }
}

/// Marks from the dead finalizable objects at `addrs` (resurrection: they and what they
/// reach stay until the VM has finalized them) with `job` on every worker; returns the
/// bytes of small objects that marked, which the pacer leaves out of the growth target.
fn resurrect(pool: &WorkerPool<MarkPacket>, job: &Arc<mark::MarkJob>, addrs: Vec<usize>) -> usize {
    use crate::sync::Ordering;
    let before = job.marked_bytes.load(Ordering::Relaxed);
    let seeds = concurrent::satb_seeds_from(&job.rt, job, addrs);
    pool.run(job.clone(), seeds);
    (job.marked_bytes.load(Ordering::Relaxed) - before) as usize
}

/// Records the CPU time the collector's threads have used so far (called by the control
/// thread, whose own clock is read).
fn record_collector_cpu(rt: &Runtime, pool: &WorkerPool<MarkPacket>) {
    rt.stats
        .set_collector_cpu(pool.cpu_ns() + crate::cpu::this_thread_ns());
}

/// Whether this concurrent-mode collection runs as one stop-the-world collection that
/// compacts: with `TANDEM_EVACUATION=pause` (a VM without a load barrier, so objects may
/// move only inside a pause) when the last cycle left the heap fragmented, as CMS falls
/// back to a compacting collection. The price is that collection's pause: the whole
/// trace and the copying (tens to hundreds of milliseconds on the bench's workloads). Only for the collections the heap itself starts (the
/// trigger, a failed allocation): an explicit collection or a step stays concurrent, as
/// the VM asked.
fn compacts_in_a_pause(rt: &Runtime, pacer: &pacer::Pacer, cause: GcCause) -> bool {
    rt.config.evacuation == crate::config::EvacuationMode::Pause
        && cause != GcCause::Explicit
        && pacer.fragmented(rt)
}

/// A stopped world: the mutators, when the stop was requested, and how long it took.
pub struct Pause {
    /// The stopped mutators.
    pub world: Vec<crate::sync::Arc<MutatorCore>>,
    t0: Instant,
    start_ns: u64,
    ttsp: Duration,
}

impl Pause {
    /// Stops every mutator.
    pub fn stop(rt: &Runtime) -> Pause {
        let (world, t0) = rt.safepoint.stop_the_world_timed();
        let ttsp = t0.elapsed();
        let start_ns = rt.stats.now_ns().saturating_sub(ttsp.as_nanos() as u64);
        tracing::debug!(
            mutators = world.len(),
            ttsp_us = ttsp.as_micros() as u64,
            "world stopped"
        );
        Pause {
            world,
            t0,
            start_ns,
            ttsp,
        }
    }

    /// Retires every TLAB (the sweep and the heap figures then see all of it).
    pub fn retire_tlabs(&self, rt: &Runtime) {
        for m in &self.world {
            // SAFETY: the world is stopped: the collector owns every mutator's state.
            unsafe { m.retire_tlab(rt) };
        }
    }

    /// Every root as (object address, slot address): shadow stacks, globals, callback,
    /// finalizer queues' ready lists.
    pub fn roots(&self, rt: &Runtime) -> Vec<(usize, usize)> {
        all_roots(rt, &self.world)
    }

    /// The roots a concurrent cycle's pauses mark from: all but the finalizer queues' ready
    /// lists, which the cycle marks after its init-mark pause (`FinalizerQueues::
    /// ready_snapshot`), so that no pause grows with what the VM leaves in its queues (1 M
    /// dead objects waiting there made init-mark pauses of 5.6 ms and final-mark ones of
    /// 8.5 ms).
    pub fn scanned_roots(&self, rt: &Runtime) -> Vec<(usize, usize)> {
        thread_and_global_roots(rt, &self.world)
    }

    /// Marks `first`, then the roots: the [`Pause::scanned_roots`], and the finalizer
    /// queues' ready lists too when `ready`. Root slots whose objects moved are repaired.
    /// Returns packets of the newly marked objects and how many there were. The global
    /// slots are read where the VM registered them rather than gathered first: 1 M of them
    /// made a 16 MB list, grown by doubling, in every pause that marked them (and the
    /// final-mark pause gathered them twice).
    pub fn mark_roots(
        &self,
        rt: &Runtime,
        first: impl IntoIterator<Item = (usize, usize)>,
        ready: bool,
        bad: &BadRefs,
    ) -> (Vec<MarkPacket>, u64) {
        // Only the global slots, which the VM may register by the million, are not listed.
        let listed = listed_roots(rt, &self.world, ready);
        rt.roots.with_slots(|globals| {
            let roots = first.into_iter().chain(listed).chain(global_roots(globals));
            mark::mark_all(rt, roots, bad)
        })
    }

    /// Records the pause and resumes the world.
    pub fn end(self, rt: &Runtime, kind: PauseKind, figures: PauseFigures) -> Resumed {
        self.end_then(rt, kind, figures, || {})
    }

    /// [`Pause::end`], running `before_resume` once the pause is recorded, while the world
    /// is still stopped.
    pub fn end_then(
        self,
        rt: &Runtime,
        kind: PauseKind,
        figures: PauseFigures,
        before_resume: impl FnOnce(),
    ) -> Resumed {
        let duration = self.t0.elapsed();
        let record = PauseRecord {
            kind,
            cause: figures.cause,
            start_ns: self.start_ns,
            duration_ns: duration.as_nanos() as u64,
            ttsp_ns: self.ttsp.as_nanos() as u64,
            mark_ns: figures.mark_ns,
            sweep_ns: figures.sweep_ns,
            heap_before: figures.heap_before,
            heap_after: figures.heap_after,
            committed_after: rt.space.committed(),
            marked_objects: figures.marked,
        };
        rt.stats.record_pause(record);
        rt.refs.hooks.pause_ended(rt, &record);
        tracing::info!(
            kind = kind.name(),
            pause_us = duration.as_micros() as u64,
            ttsp_us = self.ttsp.as_micros() as u64,
            mark_us = figures.mark_ns / 1000,
            before = figures.heap_before,
            after = figures.heap_after,
            committed = rt.space.committed(),
            "pause done"
        );
        before_resume();
        rt.safepoint.resume();
        Resumed { world: self.world }
    }
}

/// The mutators a pause stopped, after it resumed them.
pub struct Resumed {
    world: Vec<crate::sync::Arc<MutatorCore>>,
}

impl Resumed {
    /// Waits, sleeping, until every mutator the pause stopped has run again (at most
    /// [`RESUME_PATIENCE`]): called before the collector hands concurrent work to its
    /// workers, so that they do not take the cores the resumed mutators need.
    ///
    /// Measured on 2 cores with 2 mutators (graph): woken mutators that had to queue behind
    /// a concurrent worker stood still 2-8 ms after 50 us pauses (one mutator stop in six
    /// over 1 ms; one in fifty with this wait). It comes after the sweep is offered, so
    /// that allocation in the meantime reuses swept memory rather than fresh blocks.
    pub fn let_mutators_run_first(&self) {
        let t0 = Instant::now();
        while self
            .world
            .iter()
            .any(|m| m.thread_state().load() == crate::safepoint::STOPPED)
            && t0.elapsed() < RESUME_PATIENCE
        {
            std::thread::sleep(Duration::from_micros(10));
        }
    }
}

/// Longest the collector waits after a pause for the resumed mutators to run.
const RESUME_PATIENCE: Duration = Duration::from_millis(2);

/// Every root of a stopped `world` as (object address, slot address): shadow stacks,
/// global slots, the VM's callback, finalizer queues' ready lists.
pub fn all_roots(rt: &Runtime, world: &[crate::sync::Arc<MutatorCore>]) -> Vec<(usize, usize)> {
    with_globals(rt, listed_roots(rt, world, true))
}

/// [`all_roots`] but the finalizer queues' ready lists.
fn thread_and_global_roots(
    rt: &Runtime,
    world: &[crate::sync::Arc<MutatorCore>],
) -> Vec<(usize, usize)> {
    with_globals(rt, listed_roots(rt, world, false))
}

/// The roots of a stopped `world` but the global slots: shadow stacks, the VM's callback,
/// and the finalizer queues' ready lists when `ready`.
fn listed_roots(
    rt: &Runtime,
    world: &[crate::sync::Arc<MutatorCore>],
    ready: bool,
) -> Vec<(usize, usize)> {
    let mut roots = Vec::new();
    let mut visit = |slot: *mut *mut u8| {
        // SAFETY: root slots are readable while the world is stopped.
        roots.push((unsafe { slot.read() } as usize, slot as usize));
    };
    for m in world {
        // SAFETY: the world is stopped (the caller's contract).
        unsafe { m.for_each_root(&mut visit) };
    }
    rt.roots.for_each_callback_slot(&mut visit);
    if ready {
        rt.refs.queues.for_each_root(&mut visit);
    }
    roots
}

/// `roots` and then the global slots.
fn with_globals(rt: &Runtime, mut roots: Vec<(usize, usize)>) -> Vec<(usize, usize)> {
    rt.roots
        .with_slots(|globals| roots.extend(global_roots(globals)));
    roots
}

/// The registered global slots `globals` as (object address, slot address).
fn global_roots(globals: &[usize]) -> impl Iterator<Item = (usize, usize)> + '_ {
    globals.iter().map(|&slot| {
        // SAFETY: a registered global slot, readable while the world is stopped.
        (unsafe { (slot as *const usize).read() }, slot)
    })
}

/// What a pause reports besides its timing.
#[derive(Debug, Default, Clone, Copy)]
pub struct PauseFigures {
    /// Why the cycle runs.
    pub cause: GcCause,
    /// Marking inside the pause, ns.
    pub mark_ns: u64,
    /// Sweeping inside the pause, ns.
    pub sweep_ns: u64,
    /// Heap in use when the cycle started.
    pub heap_before: usize,
    /// Heap live after the cycle (0 when not yet known).
    pub heap_after: usize,
    /// Objects marked in the pause.
    pub marked: u64,
}

/// Records invalid references and verification findings in the statistics.
pub fn report_problems(rt: &Runtime, bad: &BadRefs, findings: verify::Findings) {
    let (nbad, mut msgs) = bad.take();
    if nbad + findings.count > 0 {
        msgs.extend(findings.messages);
        rt.stats.record_verify_errors(msgs, nbad + findings.count);
    }
}

/// Ends a cycle for everyone who waits on it: the hook's event first (a thread that waited
/// for this cycle sees it), then the stepper's `Idle` (before the waiters wake, so a step
/// taken right after an explicit collection starts a new cycle instead of reporting this
/// one's end), then the waiters.
pub fn end_cycle(rt: &Runtime, cause: GcCause, t_cycle: Instant, heap_before: usize, live: usize) {
    let cycle_ns = t_cycle.elapsed().as_nanos() as u64;
    rt.refs
        .hooks
        .cycle_ended(rt, cause, cycle_ns, heap_before, live);
    rt.stepper.boundary(step::Phase::Idle);
    rt.requests.complete();
}
