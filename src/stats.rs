//! Pause and phase timings and heap figures, recorded once per GC and read as a snapshot.

use crate::sync::unmodelled::AtomicU64;
use crate::sync::{Mutex, Ordering};
use std::collections::VecDeque;
use std::time::Instant;

/// How many recent pauses a snapshot keeps, in order.
pub const PAUSE_LOG_CAPACITY: usize = 1 << 16;
/// Buckets of the pause histogram: bucket `i` counts pauses in `[2^i, 2^(i+1))` microseconds
/// (bucket 0 also holds pauses under 1 µs).
pub const HISTOGRAM_BUCKETS: usize = 32;

/// What a pause was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseKind {
    /// A whole stop-the-world collection.
    StwCollection,
    /// Start of a concurrent cycle: roots scanned, barriers turned on.
    InitMark,
    /// End of concurrent marking: SATB buffers drained, roots rescanned, closure finished.
    FinalMark,
    /// A final mark that had to finish the whole remaining trace in the pause, because an
    /// allocation kept waiting even after concurrent marking moved to every worker.
    Degenerate,
}

impl PauseKind {
    /// Every kind, for reports.
    pub const ALL: [PauseKind; 4] = [
        PauseKind::StwCollection,
        PauseKind::InitMark,
        PauseKind::FinalMark,
        PauseKind::Degenerate,
    ];

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            PauseKind::StwCollection => "stw",
            PauseKind::InitMark => "init_mark",
            PauseKind::FinalMark => "final_mark",
            PauseKind::Degenerate => "degenerate",
        }
    }
}

/// Why a GC ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GcCause {
    /// The heap-growth trigger fired.
    Trigger,
    /// An allocation found no memory.
    AllocationFailure,
    /// The VM asked for it.
    #[default]
    Explicit,
    /// The VM asked for a young (nursery) collection (`CollectLevel::Young`).
    Young,
}

/// One pause.
#[derive(Debug, Clone, Copy)]
pub struct PauseRecord {
    /// What the pause was for.
    pub kind: PauseKind,
    /// Why the GC ran.
    pub cause: GcCause,
    /// Nanoseconds from heap creation to the stop request.
    pub start_ns: u64,
    /// Nanoseconds from the stop request to resume (time-to-safepoint included).
    pub duration_ns: u64,
    /// Nanoseconds from the stop request until every mutator had stopped.
    pub ttsp_ns: u64,
    /// Nanoseconds of parallel marking.
    pub mark_ns: u64,
    /// Nanoseconds of parallel sweeping.
    pub sweep_ns: u64,
    /// Heap bytes in use before the GC.
    pub heap_before: usize,
    /// Heap bytes live after the GC: set for a stop-the-world collection; for a
    /// concurrent cycle, on its final-mark (or degenerate) record once its sweep ends; 0 on
    /// init-mark records and while not yet known.
    pub heap_after: usize,
    /// Bytes committed after the GC.
    pub committed_after: usize,
    /// Objects marked.
    pub marked_objects: u64,
}

/// A snapshot of the runtime's statistics.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Pauses so far (of every kind).
    pub gcs: u64,
    /// Completed collection cycles (a concurrent cycle has two pauses).
    pub cycles: u64,
    /// Of those, nursery cycles (generational mode).
    pub nursery_cycles: u64,
    /// Total time of concurrent marking phases, nanoseconds.
    pub concurrent_mark_ns: u64,
    /// Total time of concurrent sweeping phases, nanoseconds.
    pub concurrent_sweep_ns: u64,
    /// Total time mutators stalled in allocation waiting for a collection, nanoseconds.
    pub stall_ns: u64,
    /// Longest single allocation stall, nanoseconds.
    pub stall_max_ns: u64,
    /// Time mutators spent marking in assists (paying for allocation while marking runs),
    /// nanoseconds.
    pub assist_ns: u64,
    /// Objects mutators scanned in assists.
    pub assist_objects: u64,
    /// CPU time the collector's own threads (the workers and the control thread) have
    /// used, nanoseconds, as of the end of the last cycle (a stop-the-world collection's:
    /// just after its pause; 0 where thread clocks cannot be read). With `assist_ns` it is
    /// what collecting cost the process in CPU time.
    pub collector_cpu_ns: u64,
    /// Blocks chosen for evacuation, over all cycles.
    pub evacuated_blocks: u64,
    /// Bytes copied by evacuation (GC threads and load barriers together).
    pub evacuated_bytes: u64,
    /// Objects copied by evacuation.
    pub evacuated_objects: u64,
    /// Objects of collection sets that stayed in place (pinned, or no memory to copy).
    pub evacuation_stayed: u64,
    /// Weak slots cleared because their target died.
    pub weakrefs_cleared: u64,
    /// Objects delivered to finalizer queues.
    pub finalized: u64,
    /// Destructors called.
    pub destructed: u64,
    /// Raw memory owned by live objects (`Mutator::add_memory_pressure`), bytes.
    pub memory_pressure: usize,
    /// How long mutators stood still at safepoints, as each saw it (from noticing the stop
    /// until running again, so it includes waiting for a core after the resume), counted
    /// by power-of-two microsecond bucket like [`Stats::pause_histogram`].
    pub mutator_stop_histogram: [u64; HISTOGRAM_BUCKETS],
    /// Longest time one mutator stood still at a safepoint, nanoseconds.
    pub mutator_stop_max_ns: u64,
    /// The part of each mutator stop after the resume (waiting for the wake-up and for a
    /// core), by power-of-two microsecond bucket: where the stops that outlast their pause
    /// spend the difference.
    pub mutator_resume_histogram: [u64; HISTOGRAM_BUCKETS],
    /// Longest time one mutator took to run again after a resume, nanoseconds.
    pub mutator_resume_max_ns: u64,
    /// The most recent pauses (up to [`PAUSE_LOG_CAPACITY`]), oldest first.
    pub pauses: Vec<PauseRecord>,
    /// Pause counts by power-of-two microsecond bucket.
    pub pause_histogram: [u64; HISTOGRAM_BUCKETS],
    /// Sum of all pauses, nanoseconds.
    pub pause_total_ns: u64,
    /// Longest pause, nanoseconds.
    pub pause_max_ns: u64,
    /// Longest time-to-safepoint, nanoseconds.
    pub ttsp_max_ns: u64,
    /// Bytes handed out to objects by all mutators (retired TLAB space and large objects).
    pub bytes_allocated: u64,
    /// Heap bytes live after the last completed cycle (kept, never 0, while the next one
    /// runs).
    pub heap_live: usize,
    /// Heap bytes in use now (live after the last GC plus allocated since).
    pub heap_in_use: usize,
    /// Bytes committed now.
    pub heap_committed: usize,
    /// Most bytes committed at once.
    pub heap_peak: usize,
    /// Allocations that failed after a full GC.
    pub out_of_memory: u64,
    /// Problems found by heap verification (and invalid references met while marking).
    pub verify_errors: u64,
    /// The first verification messages, naming the objects.
    pub verify_messages: Vec<String>,
}

#[derive(Debug, Default)]
struct Recorded {
    /// Everything but the pause log.
    totals: Stats,
    log: VecDeque<PauseRecord>,
}

impl std::ops::Deref for Recorded {
    type Target = Stats;
    fn deref(&self) -> &Stats {
        &self.totals
    }
}

impl std::ops::DerefMut for Recorded {
    fn deref_mut(&mut self) -> &mut Stats {
        &mut self.totals
    }
}

/// Where the runtime records statistics.
#[derive(Debug)]
pub struct StatsRecorder {
    epoch: Instant,
    inner: Mutex<Recorded>,
    bytes_allocated: AtomicU64,
    out_of_memory: AtomicU64,
    stall_ns: AtomicU64,
    stall_max_ns: AtomicU64,
    assist_ns: AtomicU64,
    assist_objects: AtomicU64,
    collector_cpu_ns: AtomicU64,
    /// What the collector's threads before the running ones used (a forked child's start
    /// anew, their clocks at 0).
    collector_cpu_base: AtomicU64,
    mutator_stops: Durations,
    mutator_resumes: Durations,
}

/// Durations counted lock-free by power-of-two microsecond bucket, with their maximum.
#[derive(Debug)]
struct Durations {
    buckets: [AtomicU64; HISTOGRAM_BUCKETS],
    max_ns: AtomicU64,
}

impl Default for Durations {
    fn default() -> Self {
        Durations {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            max_ns: AtomicU64::new(0),
        }
    }
}

impl Durations {
    fn record(&self, d: std::time::Duration) {
        let ns = d.as_nanos() as u64;
        self.buckets[bucket(ns)].fetch_add(1, Ordering::Relaxed);
        self.max_ns.fetch_max(ns, Ordering::Relaxed);
    }

    /// The bucket counts and the maximum.
    fn load(&self) -> ([u64; HISTOGRAM_BUCKETS], u64) {
        (
            self.buckets.each_ref().map(|a| a.load(Ordering::Relaxed)),
            self.max_ns.load(Ordering::Relaxed),
        )
    }
}

impl Default for StatsRecorder {
    fn default() -> Self {
        StatsRecorder {
            epoch: Instant::now(),
            inner: Mutex::new(Recorded::default()),
            bytes_allocated: AtomicU64::new(0),
            out_of_memory: AtomicU64::new(0),
            stall_ns: AtomicU64::new(0),
            stall_max_ns: AtomicU64::new(0),
            assist_ns: AtomicU64::new(0),
            assist_objects: AtomicU64::new(0),
            collector_cpu_ns: AtomicU64::new(0),
            collector_cpu_base: AtomicU64::new(0),
            mutator_stops: Durations::default(),
            mutator_resumes: Durations::default(),
        }
    }
}

fn bucket(ns: u64) -> usize {
    let us = ns / 1000;
    if us == 0 {
        0
    } else {
        (63 - us.leading_zeros() as usize).min(HISTOGRAM_BUCKETS - 1)
    }
}

impl Stats {
    /// The longest any mutator waited on the collector, nanoseconds: the longest pause,
    /// the longest stop a mutator saw (which can outlast the pause on a busy machine), or
    /// the longest allocation stall, whichever is longest.
    pub fn longest_wait_ns(&self) -> u64 {
        self.pause_max_ns
            .max(self.mutator_stop_max_ns)
            .max(self.stall_max_ns)
    }

    /// CPU time collecting has cost so far: the collector's threads and the mutators'
    /// assists, nanoseconds.
    pub fn gc_cpu_ns(&self) -> u64 {
        self.collector_cpu_ns + self.assist_ns
    }
}

impl StatsRecorder {
    /// Nanoseconds since the runtime started.
    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Counts `n` bytes handed out to objects.
    #[inline]
    pub fn add_allocated(&self, n: usize) {
        self.bytes_allocated.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Adds time a mutator spent stalled in allocation, waiting for a collection.
    pub fn add_stall(&self, d: std::time::Duration) {
        let ns = d.as_nanos() as u64;
        self.stall_ns.fetch_add(ns, Ordering::Relaxed);
        self.stall_max_ns.fetch_max(ns, Ordering::Relaxed);
    }

    /// Records one mark assist: `objects` scanned in `d`.
    pub fn add_assist(&self, objects: u64, d: std::time::Duration) {
        self.assist_ns
            .fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
        self.assist_objects.fetch_add(objects, Ordering::Relaxed);
    }

    /// Records the CPU time the running collector's threads have used so far.
    pub fn set_collector_cpu(&self, ns: u64) {
        let base = self.collector_cpu_base.load(Ordering::Relaxed);
        self.collector_cpu_ns.store(base + ns, Ordering::Relaxed);
    }

    /// Starts counting for new collector threads (after a fork, in the child) on top of
    /// what the threads before them used, so the figure never goes back.
    pub fn restart_collector_cpu(&self) {
        let so_far = self.collector_cpu_ns.load(Ordering::Relaxed);
        self.collector_cpu_base.store(so_far, Ordering::Relaxed);
    }

    /// Records how long a mutator stood still at a safepoint, and how much of it came
    /// after the resume (lock-free: every mutator records after every pause).
    pub fn add_mutator_stop(&self, stood: crate::safepoint::Stood) {
        self.mutator_stops.record(stood.total);
        self.mutator_resumes.record(stood.after_resume);
    }

    /// Records what one cycle's evacuation did.
    pub fn add_evacuation(&self, r: &crate::collector::evacuate::EvacuationReport) {
        let mut s = self.inner.lock();
        s.totals.evacuated_blocks += r.blocks as u64;
        s.totals.evacuated_bytes += r.copied_bytes;
        s.totals.evacuated_objects += r.copied_objects;
        s.totals.evacuation_stayed += r.stayed as u64;
    }

    /// Adds the duration of a concurrent phase.
    pub fn add_concurrent(&self, mark_ns: u64, sweep_ns: u64) {
        let mut s = self.inner.lock();
        s.concurrent_mark_ns += mark_ns;
        s.concurrent_sweep_ns += sweep_ns;
        s.cycles += 1;
    }

    /// Counts one nursery cycle (also counted as a cycle).
    pub fn add_nursery_cycle(&self) {
        self.inner.lock().nursery_cycles += 1;
    }

    /// Counts one collection cycle (a stop-the-world collection or a concurrent cycle).
    pub fn add_cycle(&self) {
        self.inner.lock().cycles += 1;
    }

    /// Records the bytes live after a cycle whose last pause came before its sweep.
    /// The figure also goes into the cycle's last pause record, whose `heap_after` was not
    /// known when the pause ended.
    pub fn set_last_live(&self, live: usize) {
        let mut s = self.inner.lock();
        s.heap_live = live;
        if let Some(p) = s.log.back_mut() {
            if p.heap_after == 0 {
                p.heap_after = live;
            }
        }
    }

    /// Bytes allocated so far.
    pub fn snapshot_allocated(&self) -> u64 {
        self.bytes_allocated.load(Ordering::Relaxed)
    }

    /// Counts one allocation that failed after a GC.
    pub fn add_oom(&self) {
        self.out_of_memory.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a finished pause.
    pub fn record_pause(&self, p: PauseRecord) {
        let mut s = self.inner.lock();
        s.gcs += 1;
        if s.log.len() == PAUSE_LOG_CAPACITY {
            s.log.pop_front();
        }
        s.log.push_back(p);
        s.pause_histogram[bucket(p.duration_ns)] += 1;
        s.pause_total_ns += p.duration_ns;
        s.pause_max_ns = s.pause_max_ns.max(p.duration_ns);
        s.ttsp_max_ns = s.ttsp_max_ns.max(p.ttsp_ns);
        // Only a whole collection knows what is live when its pause ends; a concurrent
        // cycle's pauses come before its sweep, which reports through `set_last_live`.
        if p.kind == PauseKind::StwCollection {
            s.heap_live = p.heap_after;
        }
    }

    /// The most recent `n` pauses (or fewer), oldest first.
    pub fn recent_pauses(&self, n: usize) -> Vec<PauseRecord> {
        let g = self.inner.lock();
        g.log
            .iter()
            .skip(g.log.len().saturating_sub(n))
            .copied()
            .collect()
    }

    /// Records verification failures.
    pub fn record_verify_errors(&self, messages: Vec<String>, total: u64) {
        let mut s = self.inner.lock();
        s.verify_errors += total;
        // The same broken object is reported at every GC: keep each message once, so the
        // first 100 distinct problems stay visible.
        for m in messages {
            if s.verify_messages.len() < 100 && !s.verify_messages.contains(&m) {
                s.verify_messages.push(m);
            }
        }
    }

    /// A snapshot; heap figures are filled in by the caller.
    pub fn snapshot(&self) -> Stats {
        let g = self.inner.lock();
        let mut s = g.totals.clone();
        s.pauses = g.log.iter().copied().collect();
        drop(g);
        s.bytes_allocated = self.bytes_allocated.load(Ordering::Relaxed);
        s.out_of_memory = self.out_of_memory.load(Ordering::Relaxed);
        s.stall_ns = self.stall_ns.load(Ordering::Relaxed);
        s.stall_max_ns = self.stall_max_ns.load(Ordering::Relaxed);
        s.assist_ns = self.assist_ns.load(Ordering::Relaxed);
        s.assist_objects = self.assist_objects.load(Ordering::Relaxed);
        s.collector_cpu_ns = self.collector_cpu_ns.load(Ordering::Relaxed);
        (s.mutator_stop_histogram, s.mutator_stop_max_ns) = self.mutator_stops.load();
        (s.mutator_resume_histogram, s.mutator_resume_max_ns) = self.mutator_resumes.load();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_land_in_log2_microsecond_buckets() {
        assert_eq!(bucket(500), 0);
        assert_eq!(bucket(1_000), 0);
        assert_eq!(bucket(2_500), 1);
        assert_eq!(bucket(1_000_000), 9);
        assert_eq!(bucket(u64::MAX), HISTOGRAM_BUCKETS - 1);
    }

    #[test]
    fn a_mutator_stop_records_its_total_and_the_part_after_the_resume() {
        let r = StatsRecorder::default();
        let ms = std::time::Duration::from_millis;
        r.add_mutator_stop(crate::safepoint::Stood {
            total: ms(3),
            after_resume: ms(2),
        });
        r.add_mutator_stop(crate::safepoint::Stood {
            total: ms(1),
            after_resume: std::time::Duration::ZERO,
        });
        let s = r.snapshot();
        assert_eq!(s.mutator_stop_max_ns, 3_000_000);
        assert_eq!(s.mutator_resume_max_ns, 2_000_000);
        assert_eq!(s.mutator_stop_histogram[bucket(3_000_000)], 1);
        assert_eq!(s.mutator_stop_histogram[bucket(1_000_000)], 1);
        assert_eq!(s.mutator_resume_histogram[bucket(2_000_000)], 1);
        assert_eq!(s.mutator_resume_histogram[0], 1);
    }
}
