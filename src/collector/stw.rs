//! The parallel stop-the-world collection (`TANDEM_MODE=stw`), the reference mode.

use super::mark::{mark_remembered, MarkJob, MarkPacket};
use super::pacer::{Ended, Pacer, Survivors};
use super::sweep::SweepJob;
use super::verify::{self, Check, Findings};
use super::{report_problems, Pause, PauseFigures};
use crate::config::EvacuationMode;
use crate::runtime::Runtime;
use crate::stats::{GcCause, PauseKind};
use crate::sync::unmodelled::Arc;
use crate::sync::Ordering;
use crate::workers::WorkerPool;
use std::time::Instant;

/// One whole collection inside one pause.
pub fn collect(
    rt: &Arc<Runtime>,
    pool: &WorkerPool<MarkPacket>,
    pacer: &mut Pacer,
    cause: GcCause,
    nursery: bool,
) {
    let t_cycle = Instant::now();
    // Surveyed before the pause: reading the line table of a large heap takes a while.
    let candidates = if rt.config.evacuation == EvacuationMode::Off {
        Vec::new()
    } else {
        rt.evac.survey(&rt.space, rt.config.evacuate_all, nursery)
    };
    let pause = Pause::stop(rt);
    pause.retire_tlabs(rt);
    let heap_before = rt.space.in_use();
    let verify = rt.config.verify;
    let mut findings = Findings::default();
    if verify {
        verify::freed_memory_poisoned(rt, &mut findings);
    }

    let mark_span = tracing::debug_span!("mark").entered();
    let tm = Instant::now();
    let remembered = super::begin_generation(rt, &pause, nursery, &mut findings);
    rt.space.advance_epoch();
    let cset = rt.evac.choose(&rt.space, &candidates, usize::MAX);
    let job = Arc::new(MarkJob::new(rt.clone(), false));
    let (mut seeds, mut roots_marked) = pause.mark_roots(rt, [], true, &job.bad);
    if nursery {
        let (more, n) = mark_remembered(rt, remembered, &job.bad);
        seeds.extend(more);
        roots_marked += n;
    }
    pool.run(job.clone(), seeds);
    let mut resurrected = 0;
    let dying = rt.refs.process(rt, &pause.world, &mut |addrs| {
        resurrected += super::resurrect(pool, &job, addrs);
    });
    let marked = roots_marked + job.marked.load(Ordering::Relaxed);
    let mark_ns = tm.elapsed().as_nanos() as u64;
    // Marking moved objects: read the roots again (the verifier reads them).
    let roots = if verify { pause.roots(rt) } else { Vec::new() };
    if verify {
        // Before the set dissolves: a reference left pointing at an old copy is reported.
        verify::reachable(rt, &roots, Check::Marks { black_ok: false }, &mut findings);
    }
    if cset > 0 {
        let report = rt.evac.finish(&rt.space, 0);
        rt.stats.add_evacuation(&report);
    }
    drop(mark_span);

    let sweep_span = tracing::debug_span!("sweep").entered();
    let ts = Instant::now();
    // Inside the pause: the sweep below frees the dead objects' memory.
    rt.refs.destruct(rt, dying);
    let sweep = Arc::new(SweepJob::new(rt.clone()));
    pool.run(sweep.clone(), std::iter::empty());
    let blocks = sweep.finish();
    let large = rt.space.sweep_large();
    let live = blocks + large;
    rt.space.set_in_use(live);
    rt.set_live_after_gc(live);
    let sweep_ns = ts.elapsed().as_nanos() as u64;
    drop(sweep_span);
    if verify {
        verify::reachable(rt, &roots, Check::Swept, &mut findings);
    }
    report_problems(rt, &job.bad, findings);
    let survivors = Survivors {
        held: live,
        traced: sweep.sweep.marked_bytes() + large,
        resurrected,
    };
    pacer.cycle_finished(
        Instant::now(),
        rt,
        survivors,
        marked,
        heap_before,
        0.0,
        Ended {
            late: false,
            nursery,
        },
    );
    pause.end_then(
        rt,
        PauseKind::StwCollection,
        PauseFigures {
            cause,
            mark_ns,
            sweep_ns,
            heap_before,
            heap_after: live,
            marked,
        },
        // Ends while still stopped: a request made after resume asks for a new collection.
        // Counted after the pause is recorded: statistics read meanwhile never show more
        // cycles than pauses.
        || {
            if nursery {
                rt.stats.add_nursery_cycle();
            }
            rt.stats.add_cycle();
            super::end_cycle(rt, cause, t_cycle, heap_before, live)
        },
    );
    // After the resume: reading every worker's clock is a system call each, which the
    // pause need not wait for.
    super::record_collector_cpu(rt, pool);
}
