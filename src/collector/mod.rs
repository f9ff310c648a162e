//! The collector: a daemon control thread that serves GC requests by running parallel
//! stop-the-world mark-region collections on the worker pool (`TANDEM_MODE=stw`).
//!
//! A collection: stop the world (measuring time-to-safepoint) → retire every TLAB → mark
//! from the roots in parallel → sweep lines and blocks in parallel, rebuild the pools and
//! release empty chunks above the minimum heap → sweep large objects → set the next trigger
//! → resume.

pub mod mark;
pub mod request;
pub mod sweep;
pub mod verify;

use crate::runtime::Runtime;
use crate::stats::{GcCause, PauseKind, PauseRecord};
use crate::workers::WorkerPool;
use mark::{BadRefs, MarkJob, MarkPacket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use sweep::SweepJob;

/// Starts the control thread, which owns the worker pool.
pub fn start(rt: Arc<Runtime>) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("tandem-control".into())
        .spawn(move || {
            let pool = WorkerPool::<MarkPacket>::new(rt.config.threads, rt.config.affinity);
            tracing::debug!(workers = pool.workers(), "collector started");
            while let Some(cause) = rt.requests.next() {
                collect(&rt, &pool, cause);
            }
            tracing::debug!("collector stopped");
        })
}

fn collect(rt: &Arc<Runtime>, pool: &WorkerPool<MarkPacket>, cause: GcCause) {
    let gc = rt.requests.completed() + 1;
    let span = tracing::info_span!("gc", n = gc, cause = ?cause);
    let _e = span.enter();
    let t0 = Instant::now();
    let start_ns = rt.stats.now_ns();
    let world = rt.safepoint.stop_the_world();
    let ttsp = t0.elapsed();
    tracing::debug!(
        mutators = world.len(),
        ttsp_us = ttsp.as_micros() as u64,
        "world stopped"
    );
    for m in &world {
        // SAFETY: the world is stopped: the collector owns every mutator's state.
        unsafe { m.retire_tlab(rt) };
    }
    let heap_before = rt.space.in_use();
    let verify = rt.config.verify;
    let mut findings = verify::Findings::default();
    if verify {
        verify::free_lines_poisoned(rt, &mut findings);
    }

    // Mark.
    let mark_span = tracing::debug_span!("mark").entered();
    let tm = Instant::now();
    rt.space.advance_epoch();
    let bad = BadRefs::default();
    let mut root_addrs = Vec::new();
    let (seeds, roots_marked) = mark::mark_roots(
        rt,
        |visit| {
            for m in &world {
                // SAFETY: the world is stopped.
                unsafe { m.for_each_root(&mut *visit) };
            }
            rt.roots.for_each_slot(&mut *visit);
        },
        &bad,
    );
    if verify {
        for m in &world {
            // SAFETY: the world is stopped.
            unsafe { m.for_each_root(|s| root_addrs.push(*s as usize)) };
        }
        rt.roots
            .for_each_slot(|s| root_addrs.push(unsafe { *s } as usize));
    }
    let job = Arc::new(MarkJob {
        rt: rt.clone(),
        bad,
        marked: AtomicU64::new(0),
    });
    pool.run(job.clone(), seeds);
    let marked = roots_marked + job.marked.load(Ordering::Relaxed);
    let (nbad, bad_msgs) = job.bad.take();
    let mark_ns = tm.elapsed().as_nanos() as u64;
    tracing::debug!(marked, mark_us = mark_ns / 1000, "marked");
    if verify {
        verify::reachable(rt, &root_addrs, true, &mut findings);
    }
    drop(mark_span);

    // Sweep.
    let sweep_span = tracing::debug_span!("sweep").entered();
    let ts = Instant::now();
    rt.space.pools.clear();
    let sweep = Arc::new(SweepJob::new(rt.clone(), rt.space.epoch()));
    pool.run(sweep.clone(), std::iter::empty());
    let live_blocks = sweep.finish();
    let live_large = rt.space.sweep_large();
    let live = live_blocks + live_large;
    rt.space.set_in_use(live);
    rt.set_trigger_from_live(live);
    let sweep_ns = ts.elapsed().as_nanos() as u64;
    tracing::debug!(sweep_us = sweep_ns / 1000, live, "swept");
    drop(sweep_span);
    if verify {
        verify::reachable(rt, &root_addrs, false, &mut findings);
    }
    if nbad + findings.count > 0 {
        let mut msgs = bad_msgs;
        msgs.extend(findings.messages);
        rt.stats.record_verify_errors(msgs, nbad + findings.count);
    }

    let duration = t0.elapsed();
    rt.stats.record_pause(PauseRecord {
        kind: PauseKind::StwCollection,
        cause,
        start_ns,
        duration_ns: duration.as_nanos() as u64,
        ttsp_ns: ttsp.as_nanos() as u64,
        mark_ns,
        sweep_ns,
        heap_before,
        heap_after: live,
        committed_after: rt.space.committed(),
        marked_objects: marked,
    });
    tracing::info!(
        pause_us = duration.as_micros() as u64,
        ttsp_us = ttsp.as_micros() as u64,
        mark_us = mark_ns / 1000,
        sweep_us = sweep_ns / 1000,
        before = heap_before,
        after = live,
        committed = rt.space.committed(),
        "gc done"
    );
    rt.requests.complete();
    rt.safepoint.resume();
}
