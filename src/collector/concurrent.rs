//! The concurrent cycle (`TANDEM_MODE=concurrent`):
//!
//! 1. **Init-mark pause**: retire TLABs, start a new epoch, turn on MARKING in every
//!    mutator's `barriers` (SATB barriers, black allocation), mark the roots into packets.
//! 2. **Concurrent marking** on `TANDEM_CONC_THREADS` workers, which also drain full SATB
//!    buffers; extra rounds drain what arrived meanwhile, then a handshake asks each running
//!    mutator to flush its partial buffer at its next poll, and the collector waits a little
//!    for the answers and marks them (a few rounds while much arrives).
//! 3. **Final-mark pause**: flush every buffer, rescan the roots, finish the closure with all
//!    workers, turn barriers off, empty the block pools. What it traces is bounded by the
//!    SATB entries left after step 2 and what they reach (not by the heap size). When an
//!    allocation waits for the cycle, step 2 goes on with every worker (the waiting threads
//!    are stalled, the others run); only if that keeps it waiting past a patience does
//!    marking give way and this pause finish the whole trace: a *degenerate* pause.
//! 4. **Concurrent sweep** on all workers; allocation continues from swept blocks.
//!
//! # Why the cycle frees no live object
//!
//! * **The snapshot.** At init mark every root is marked and every mutator's `barriers`
//!   turns MARKING in the same pause (a thread attaching later copies `barrier_state` under
//!   the registry lock; loom model `a_thread_attaching_during_init_mark_starts_with_the_
//!   barriers_on`). From then on every reference overwritten in the heap is logged first
//!   (the SATB deletion barrier, field or object granularity), so every object reachable at
//!   init mark is either reached by the markers or logged and marked from the buffers.
//! * **New objects.** Objects allocated while MARKING is on are black (their lines are
//!   stamped with this cycle's epoch; large objects are marked at allocation), so the sweep
//!   keeps them without tracing; they need no snapshot entry.
//! * **The handshake is only a head start.** It asks running threads to hand over partial
//!   SATB buffers early, to shrink the final pause, and the wait for the answers is bounded
//!   (a thread that does not poll in time is not waited for). Correctness does not depend on
//!   it: the final-mark pause stops every thread, flushes every buffer and rescans the roots
//!   before it finishes the closure. (Loom model `loom-tests/tests/handshake.rs`: every
//!   logged entry reaches the markers once, a drain after the answers were seen has what
//!   they handed over, and a mutator stopped at a poll has answered.)
//! * **Barriers off before anything is freed.** The final-mark pause turns `barriers` off
//!   while every thread is stopped, with marking complete. Only then are the LOGGED flags
//!   cleared and the sweep offered to allocators (lazy sweeping): the object barrier's fast
//!   path reads LOGGED only while MARKING, so clearing the flags races with no barrier, and
//!   the next cycle's init mark comes after this cycle completes, when all flags are clear.
//! * **Lazy sweep keeps the snapshot.** A chunk is swept (by a worker or an allocator, each
//!   chunk claimed once) only after marking is complete; it frees only lines not stamped
//!   with this cycle's epoch, and every reachable object's lines were stamped by marking or
//!   by black allocation. Allocation from freed lines happens with barriers off, as after
//!   any cycle.
//! * **A failed allocation waits for a fresh cycle.** The live figure of a cycle counts
//!   black allocation; an allocation reports out of memory only after a cycle that started
//!   after it failed (see `Mutator::alloc_attempts`).

use super::mark::{mark_all, mark_remembered, MarkJob, MarkPacket};
use super::pacer::{Ended, Pacer, Survivors};
use super::step::Phase;
use super::sweep::SweepJob;
use super::verify::{self, Check, Findings};
use super::{report_problems, Pause, PauseFigures};
use crate::barriers::log;
use crate::barriers::satb::SATB_BUFFER_CAPACITY;
use crate::barriers::EVACUATION;
use crate::config::EvacuationMode;
use crate::object::ObjRef;
use crate::refs::weak_slots_in_pause;
use crate::runtime::Runtime;
use crate::safepoint::HANDSHAKE_POLL;
use crate::stats::{GcCause, PauseKind};
use crate::sync::unmodelled::Arc;
use crate::sync::Ordering;
use crate::workers::WorkerPool;
use std::time::Instant;

/// SATB entries left for the final-mark pause before concurrent draining stops.
const FINAL_MARK_SATB_BUDGET: usize = 4 * 1024;
/// Objects the final mark traces on the control thread before it wakes the workers.
const FINAL_MARK_INLINE_BUDGET: usize = 20_000;
/// How long marking on every worker may keep an allocation waiting before the cycle
/// degenerates (finishes the trace in a pause).
const ESCALATED_PATIENCE: std::time::Duration = std::time::Duration::from_millis(50);
/// How long the collector waits for running mutators to hand over their partial SATB
/// buffers before the final-mark pause (a thread that does not poll in time is flushed by
/// the pause).
const HANDSHAKE_PATIENCE: std::time::Duration = std::time::Duration::from_millis(2);
/// Most handshake rounds before the final-mark pause.
const HANDSHAKE_ROUNDS: usize = 3;
/// Most extra concurrent rounds spent draining SATB buffers.
const MAX_DRAIN_ROUNDS: usize = 8;

/// One concurrent collection cycle.
pub fn cycle(
    rt: &Arc<Runtime>,
    pool: &WorkerPool<MarkPacket>,
    pacer: &mut Pacer,
    cause: GcCause,
    nursery: bool,
) {
    let t_cycle = Instant::now();
    let verify = rt.config.verify;
    let conc = rt.config.concurrent_workers();

    // 1. Init mark. The collection set's candidates are surveyed before the pause.
    let candidates = if rt.config.evacuation == EvacuationMode::Concurrent {
        rt.evac.survey(&rt.space, rt.config.evacuate_all, nursery)
    } else {
        Vec::new()
    };
    let pause = Pause::stop(rt);
    pause.retire_tlabs(rt);
    let heap_before = rt.space.in_use();
    let mut findings = Findings::default();
    if verify {
        // The last cycle's sweep ran alongside the mutators: check its result here, before
        // this cycle's epoch makes its line marks stale.
        verify::freed_memory_poisoned(rt, &mut findings);
        verify::reachable(rt, &pause.roots(rt), Check::Swept, &mut findings);
    }
    let tm = Instant::now();
    let remembered = super::begin_generation(rt, &pause, nursery, &mut findings);
    rt.space.advance_epoch();
    rt.space.los.set_alloc_black();
    let barriers = rt.marking_barriers()
        | if rt.evac.choose(&rt.space, &candidates, usize::MAX) > 0 {
            EVACUATION
        } else {
            0
        };
    rt.barrier_state.store(barriers, Ordering::Relaxed);
    for m in &pause.world {
        m.barriers.store(barriers, Ordering::Relaxed);
    }
    let job = Arc::new(MarkJob::new(rt.clone(), true));
    let (seeds, roots_marked) = pause.mark_roots(rt, [], false, &job.bad);
    rt.assists.begin(
        pacer.expected_marks(nursery, heap_before),
        pacer.assist_goal(rt),
    );
    rt.assists.progress(roots_marked);
    let init_mark_ns = tm.elapsed().as_nanos() as u64;
    let resumed = pause.end(
        rt,
        PauseKind::InitMark,
        PauseFigures {
            cause,
            mark_ns: init_mark_ns,
            heap_before,
            marked: roots_marked,
            ..Default::default()
        },
    );

    rt.stepper.boundary(Phase::Marking);

    // 2. Concurrent marking.
    let tc = Instant::now();
    let span = tracing::debug_span!("concurrent_mark").entered();
    resumed.let_mutators_run_first();
    let mut seeds = seeds;
    // The ready lists' objects, roots left out of the pause: one taken meanwhile was
    // shaded by `Mutator::next_dead`, and none is added before marking ends.
    seeds.extend(satb_seeds_from(rt, &job, rt.refs.queues.ready_snapshot()));
    if nursery {
        let (more, n) = mark_remembered(rt, remembered, &job.bad);
        job.marked.fetch_add(n, Ordering::Relaxed);
        seeds.extend(more);
    }
    pool.run_on(conc, job.clone(), seeds);
    let mut markers = conc;
    if job.aborted.load(Ordering::Relaxed) && markers < pool.workers() {
        // An allocation is waiting: the threads that wait are stalled, the others run on.
        // Mark with every worker, degenerating only if even that keeps them waiting long.
        tracing::debug!("allocation waiting: concurrent marking on every worker");
        job.resume_after_giving_way(ESCALATED_PATIENCE);
        markers = pool.workers();
        pool.run_on(markers, job.clone(), std::iter::empty());
    }
    for _ in 0..MAX_DRAIN_ROUNDS {
        if job.aborted.load(Ordering::Relaxed)
            || (rt.satb.pending_entries() <= FINAL_MARK_SATB_BUDGET && pool.pending() == 0)
        {
            break;
        }
        let seeds = satb_seeds(rt, &job);
        pool.run_on(markers, job.clone(), seeds);
    }
    if !job.aborted.load(Ordering::Relaxed) {
        drain_partial_buffers(rt, pool, &job, markers);
    }
    let conc_mark_ns = tc.elapsed().as_nanos() as u64;
    drop(span);
    tracing::debug!(
        conc_mark_us = conc_mark_ns / 1000,
        aborted = job.aborted.load(Ordering::Relaxed),
        "concurrent marking done"
    );

    // 3. Final mark.
    let pause = Pause::stop(rt);
    let assisted = rt
        .assists
        .end()
        .unwrap_or_else(|why| std::panic::resume_unwind(Box::new(why)));
    let degenerate = job.aborted.load(Ordering::Relaxed);
    let tf = Instant::now();
    let resting = rt.resting_barriers();
    rt.barrier_state.store(resting, Ordering::Relaxed);
    let mut copied_by_mutators = 0;
    for m in &pause.world {
        // SAFETY: the world is stopped: the collector owns every mutator's state.
        unsafe {
            m.flush_barriers(rt);
            m.retire_tlab(rt);
            copied_by_mutators += m.retire_copies(rt);
        }
        m.barriers.store(resting, Ordering::Relaxed);
    }
    let satb: Vec<(usize, usize)> = rt
        .satb
        .take_all()
        .into_iter()
        .flatten()
        .map(|a| (a, 0))
        .collect();
    let final_job = Arc::new(MarkJob::new(rt.clone(), false));
    let satb_entries = satb.len();
    let (seeds, n) = pause.mark_roots(rt, satb, false, &final_job.bad);
    let tr = Instant::now();
    let rest = final_job.drain_here(seeds, FINAL_MARK_INLINE_BUDGET);
    if !rest.is_empty() || pool.pending() > 0 {
        // Packets left by a concurrent phase that gave way, or given back by an assist, are
        // in the pool's queues.
        pool.run(final_job.clone(), rest);
    }
    let adopted = rt
        .refs
        .take_in_pause(rt, &pause.world, weak_slots_in_pause(&rt.config));
    tracing::debug!(
        satb_entries,
        newly_marked = n,
        closure_us = tr.elapsed().as_micros() as u64,
        traced = final_job.marked.load(Ordering::Relaxed),
        "final mark"
    );
    let marked = n + final_job.marked.load(Ordering::Relaxed);
    let cycle_marked = roots_marked + job.marked.load(Ordering::Relaxed) + assisted + marked;
    let final_mark_ns = tf.elapsed().as_nanos() as u64;
    if verify {
        // The ready lists are left out: they may still name the originals of moved objects
        // until `References::settle` repairs them (the next init mark verifies them).
        let roots = pause.scanned_roots(rt);
        verify::reachable(rt, &roots, Check::Marks { black_ok: true }, &mut findings);
        verify::reachable(rt, &roots, Check::Hook, &mut findings);
    }
    let in_use_at_pause = rt.space.in_use();
    let sweep = Arc::new(SweepJob::new(rt.clone()));
    let logged = std::mem::take(&mut *rt.logged.lock());
    report_problems(rt, &job.bad, Findings::default());
    report_problems(rt, &rt.assists.bad, Findings::default());
    report_problems(rt, &final_job.bad, findings);
    let resumed = pause.end(
        rt,
        if degenerate {
            PauseKind::Degenerate
        } else {
            PauseKind::FinalMark
        },
        PauseFigures {
            cause,
            mark_ns: final_mark_ns,
            heap_before,
            marked,
            ..Default::default()
        },
    );

    let t_resumed = Instant::now();
    rt.stepper.boundary(Phase::Sweeping);

    // Finalizers, destructors, memory pressure (and weak slots, when the pause left them),
    // while the mutators run: the dead objects are out of their reach since the pause.
    // Resurrection marks (and evacuates) with every worker, so the collection set
    // dissolves only after it.
    let mut resurrected = 0;
    let dying = rt.refs.settle(rt, adopted, &mut |addrs| {
        resurrected += super::resurrect(pool, &final_job, addrs);
    });
    if rt.evac.active() {
        // Every live object was scanned and every root repaired: nothing refers to the
        // collection set any more.
        let report = rt.evac.finish(&rt.space, copied_by_mutators);
        rt.stats.add_evacuation(&report);
        tracing::debug!(?report, "evacuation done");
    }
    rt.space.forget_marks_outside(&sweep.sweep);

    // 4. Concurrent sweep. Clear the object barrier's flags first: dead objects' memory is
    // not reused before the sweep frees it, and allocators may help sweep only after.
    let ts = Instant::now();
    let span = tracing::debug_span!("concurrent_sweep").entered();
    for a in logged {
        if let Some(o) = ObjRef::from_addr(a) {
            // SAFETY: the object was live when logged and its memory is not freed until the
            // sweep below; only the flag bits are touched.
            log::clear(unsafe { o.header() });
        }
    }
    rt.refs.destruct(rt, dying);
    rt.space.offer_sweep(&sweep.sweep);
    tracing::debug!(
        after_resume_us = t_resumed.elapsed().as_micros() as u64,
        "sweep offered"
    );
    resumed.let_mutators_run_first();
    pool.run_on(conc, sweep.clone(), std::iter::empty());
    let blocks = sweep.finish();
    let large = rt.space.sweep_large();
    let live = blocks + large;
    rt.space.sub_in_use(in_use_at_pause.saturating_sub(live));
    rt.set_live_after_gc(live);
    let sweep_ns = ts.elapsed().as_nanos() as u64;
    drop(span);
    if nursery {
        rt.stats.add_nursery_cycle();
    }
    rt.stats.add_concurrent(conc_mark_ns, sweep_ns);
    rt.stats.set_last_live(live);
    // The pacer sizes the next trigger from what tracing found live: lines and large
    // objects kept only because they were allocated during marking are floating garbage
    // next cycle, and counting them would ratchet the heap up cycle after cycle (the large
    // workload's arrays, generational: a trigger of 177 MB for 5-25 MB live; default mode,
    // where they were counted until now: triggers of 53-58 MB for at most 8 MB of arrays
    // held).
    let black_large = rt.space.los.swept_black_bytes();
    let survivors = Survivors {
        held: live.saturating_sub(sweep.sweep.black_bytes() + black_large),
        traced: sweep.sweep.marked_bytes() + large.saturating_sub(black_large),
        resurrected,
    };
    super::record_collector_cpu(rt, pool);
    pacer.cycle_finished(
        Instant::now(),
        rt,
        survivors,
        cycle_marked,
        in_use_at_pause,
        t_cycle.elapsed().as_secs_f64(),
        Ended {
            late: degenerate || cause == GcCause::AllocationFailure,
            nursery,
        },
    );
    tracing::info!(
        live,
        nursery,
        conc_mark_us = conc_mark_ns / 1000,
        conc_sweep_us = sweep_ns / 1000,
        degenerate,
        assisted,
        marked = cycle_marked,
        young = ?sweep.sweep.young(),
        "cycle done"
    );
    super::end_cycle(rt, cause, t_cycle, heap_before, live);
}

/// Asks every running mutator to hand over its partial SATB buffer, waits a little for the
/// answers, and marks what they handed over, for a few rounds while they keep handing over
/// much: what is left for the final-mark pause is only what is logged after the last
/// answer. Without the wait, the pause inherited every thread's partial buffer (up to
/// [`SATB_BUFFER_CAPACITY`] entries each), and on pypy/48M/t2 their closures (thousands of
/// objects) made final-mark pauses of 0.6-1.2 ms. Correctness never depends on it: the
/// pause flushes every buffer.
fn drain_partial_buffers(
    rt: &Runtime,
    pool: &WorkerPool<MarkPacket>,
    job: &Arc<MarkJob>,
    markers: usize,
) {
    for _ in 0..HANDSHAKE_ROUNDS {
        rt.safepoint.request_handshakes();
        let asked = Instant::now();
        while !rt.safepoint.handshakes_answered() && asked.elapsed() < HANDSHAKE_PATIENCE {
            std::thread::sleep(HANDSHAKE_POLL);
        }
        let handed_over = rt.satb.pending_entries();
        let seeds = satb_seeds(rt, job);
        pool.run_on(markers, job.clone(), seeds);
        tracing::debug!(
            handed_over,
            round_us = asked.elapsed().as_micros() as u64,
            "handshake round"
        );
        if handed_over < SATB_BUFFER_CAPACITY / 8 || job.aborted.load(Ordering::Relaxed) {
            break;
        }
    }
}

/// Marks every SATB entry queued so far into packets.
fn satb_seeds(rt: &Runtime, job: &MarkJob) -> Vec<MarkPacket> {
    satb_seeds_from(rt, job, rt.satb.take_all().into_iter().flatten())
}

/// Marks `addrs` (references with no slot to repair) into packets, counting them.
pub(super) fn satb_seeds_from(
    rt: &Runtime,
    job: &MarkJob,
    addrs: impl IntoIterator<Item = usize>,
) -> Vec<MarkPacket> {
    let (seeds, n) = mark_all(rt, addrs.into_iter().map(|a| (a, 0)), &job.bad);
    job.marked.fetch_add(n, Ordering::Relaxed);
    seeds
}
