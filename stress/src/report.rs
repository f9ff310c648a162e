//! The end-of-run report: a human summary, and with `--json` one JSON object as the last
//! line of stdout. Pause percentiles come from an HDR histogram of the recorded pauses.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use tandem::{PauseKind, Stats};

/// Pause percentiles, in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct PausePercentiles {
    /// The median pause.
    pub p50: f64,
    /// The 99th-percentile pause.
    pub p99: f64,
    /// The longest pause.
    pub max: f64,
}

/// How long mutators stood still at safepoints, each as it saw it (from noticing the stop
/// until it ran again: the pause plus waiting for a core after the resume). From the
/// runtime's power-of-two histogram, so the percentiles are bucket upper bounds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct MutatorStops {
    /// Stops recorded (one per mutator per pause it was parked in).
    pub count: u64,
    /// The median stop is at most this many microseconds.
    pub p50_le: f64,
    /// The 99th-percentile stop is at most this many microseconds.
    pub p99_le: f64,
    /// The longest stop, microseconds (exact).
    pub max: f64,
    /// Stops of 1024 µs or more.
    pub over_1ms: u64,
    /// The 99th percentile of the part of each stop after the resume (the wake-up and the
    /// wait for a core) is at most this many microseconds.
    pub after_resume_p99_le: f64,
    /// The longest time a mutator took to run again after a resume, microseconds (exact).
    pub after_resume_max: f64,
}

/// What the kernel counted for this process (`getrusage(RUSAGE_SELF)`, set-up included).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ProcessUsage {
    /// Peak resident set, bytes.
    pub max_rss_bytes: u64,
    /// Page faults served without I/O: mostly first touches of fresh or released memory.
    pub minor_faults: u64,
    /// Page faults that needed I/O.
    pub major_faults: u64,
    /// CPU time of every thread, user and system, seconds.
    pub cpu_s: f64,
}

impl ProcessUsage {
    /// The figures for this process so far.
    pub fn of_self() -> ProcessUsage {
        // SAFETY: an all-zero rusage is a valid value for getrusage to overwrite.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: RUSAGE_SELF with a valid out-pointer to a local.
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
            return ProcessUsage::default();
        }
        ProcessUsage {
            max_rss_bytes: u.ru_maxrss as u64 * 1024,
            minor_faults: u.ru_minflt as u64,
            major_faults: u.ru_majflt as u64,
            cpu_s: cpu_seconds(&u),
        }
    }
}

/// The user and system CPU time `u` counts, seconds.
pub fn cpu_seconds(u: &libc::rusage) -> f64 {
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(u.ru_utime) + secs(u.ru_stime)
}

/// Everything a run reports; the JSON line is this object.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The workload's name.
    pub workload: &'static str,
    /// Mutator threads.
    pub threads: u64,
    /// Parallel GC worker threads.
    pub gc_threads: usize,
    /// The collector mode (`concurrent` or `stw`).
    pub mode: &'static str,
    /// Pauses (a concurrent cycle has two).
    pub gcs: u64,
    /// Completed collection cycles.
    pub cycles: u64,
    /// Of those, nursery cycles (`TANDEM_GENERATIONAL`).
    #[serde(default)]
    pub nursery_cycles: u64,
    /// Pause percentiles over all pauses.
    pub pause_us: PausePercentiles,
    /// Pause percentiles per kind of pause (`stw`, `init_mark`, `final_mark`,
    /// `degenerate`), for the kinds that occurred.
    pub pause_us_by_kind: BTreeMap<&'static str, PausePercentiles>,
    /// Total time mutators stalled in allocation waiting for a collection, microseconds.
    pub stall_us_total: f64,
    /// The longest any mutator waited on the collector (pause, mutator-observed stop or
    /// allocation stall), microseconds.
    pub longest_wait_us: f64,
    /// Total time of concurrent marking, seconds.
    pub concurrent_mark_s: f64,
    /// Total time of concurrent sweeping, seconds.
    pub concurrent_sweep_s: f64,
    /// Longest time-to-safepoint, microseconds.
    pub ttsp_us_max: f64,
    /// CPU time collecting cost: the collector's threads and the mutators' assists, seconds.
    pub gc_cpu_s: f64,
    /// Safepoint stops as the mutators saw them.
    pub mutator_stop_us: MutatorStops,
    /// Bytes allocated by all mutators.
    pub allocated_bytes: u64,
    /// Wall time of the workload, seconds.
    pub wall_s: f64,
    /// Most heap bytes committed at once.
    pub peak_heap_bytes: usize,
    /// Peak RSS and page faults of the process.
    pub process: ProcessUsage,
    /// Problems the collector's verification found.
    pub verify_errors: u64,
    /// Whether verification ran (`TANDEM_VERIFY`).
    pub verify: bool,
    /// The heap limit the run had.
    pub heap_max_bytes: usize,
    /// Units of checked work (trees, operations or allocations).
    pub work: u64,
    /// Allocations that failed after a full GC.
    pub out_of_memory: u64,
    /// Failed workload checks and runtime errors.
    pub failures: Vec<String>,
    /// The collector's verification messages (they name the objects).
    pub verify_messages: Vec<String>,
}

/// Microseconds from nanoseconds, to 0.1 µs.
fn us(ns: u64) -> f64 {
    (ns as f64 / 100.0).round() / 10.0
}

/// Pause percentiles of the recorded pauses.
pub fn pause_percentiles(stats: &Stats) -> PausePercentiles {
    let p = percentiles(stats.pauses.iter().map(|p| p.duration_ns));
    PausePercentiles {
        max: p.max.max(us(stats.pause_max_ns)),
        ..p
    }
}

/// Pause percentiles for each kind of pause that occurred.
pub fn pause_percentiles_by_kind(stats: &Stats) -> BTreeMap<&'static str, PausePercentiles> {
    PauseKind::ALL
        .iter()
        .filter(|k| stats.pauses.iter().any(|p| p.kind == **k))
        .map(|&k| {
            let durations = stats.pauses.iter().filter(move |p| p.kind == k);
            (k.name(), percentiles(durations.map(|p| p.duration_ns)))
        })
        .collect()
}

/// Upper bound, in microseconds, of the power-of-two bucket of `h` that holds its
/// q-quantile (0 for an empty histogram).
fn bucket_quantile_le(h: &[u64], q: f64) -> f64 {
    let count: u64 = h.iter().sum();
    if count == 0 {
        return 0.0;
    }
    let rank = (q * count as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, n) in h.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return (2u64 << i) as f64;
        }
    }
    0.0
}

/// The mutators' view of their safepoint stops.
pub fn mutator_stops(stats: &Stats) -> MutatorStops {
    let h = &stats.mutator_stop_histogram;
    MutatorStops {
        count: h.iter().sum(),
        p50_le: bucket_quantile_le(h, 0.50),
        p99_le: bucket_quantile_le(h, 0.99),
        max: us(stats.mutator_stop_max_ns),
        over_1ms: h[10..].iter().sum(),
        after_resume_p99_le: bucket_quantile_le(&stats.mutator_resume_histogram, 0.99),
        after_resume_max: us(stats.mutator_resume_max_ns),
    }
}

fn percentiles(durations_ns: impl Iterator<Item = u64>) -> PausePercentiles {
    let mut h = Histogram::<u64>::new(3).expect("3 significant figures is valid");
    for d in durations_ns {
        h.record(d.max(1))
            .expect("an auto-resizing histogram takes any value");
    }
    if h.is_empty() {
        return PausePercentiles::default();
    }
    PausePercentiles {
        p50: us(h.value_at_quantile(0.50)),
        p99: us(h.value_at_quantile(0.99)),
        max: us(h.max()),
    }
}

impl Report {
    /// Whether the run passed: no failure and no verification error.
    pub fn passed(&self) -> bool {
        self.failures.is_empty() && self.verify_errors == 0
    }

    /// The human summary, a few lines.
    pub fn summary(&self) -> String {
        let verdict = if self.passed() { "ok" } else { "FAILED" };
        format!(
            "tandem-stress {}: {verdict}\n  \
             {} mutator threads, {} GC threads ({} mode), heap max {}, verify {}\n  \
             {:.2} s, {} units of checked work, {} allocated, peak heap {}\n  \
             peak RSS {}, page faults {} minor / {} major; CPU {:.2} s, of it collecting {:.2} s \
             ({:.0}%)\n  \
             {} pauses in {} cycles ({} nursery), pause p50 {} / p99 {} / max {}, time-to-safepoint max {}, \
             allocation stalls {}\n  \
             mutator stops {}: p99 <= {}, max {}, {} of 1 ms or more; after the resume p99 <= {}, \
             max {}\n  \
             verify errors {}, out-of-memory {}, failures {}",
            self.workload,
            self.threads,
            self.gc_threads,
            self.mode,
            bytes(self.heap_max_bytes as u64),
            if self.verify { "on" } else { "off" },
            self.wall_s,
            self.work,
            bytes(self.allocated_bytes),
            bytes(self.peak_heap_bytes as u64),
            bytes(self.process.max_rss_bytes),
            self.process.minor_faults,
            self.process.major_faults,
            self.process.cpu_s,
            self.gc_cpu_s,
            100.0 * self.gc_cpu_s / self.process.cpu_s.max(1e-9),
            self.gcs,
            self.cycles,
            self.nursery_cycles,
            micros(self.pause_us.p50),
            micros(self.pause_us.p99),
            micros(self.pause_us.max),
            micros(self.ttsp_us_max),
            micros(self.stall_us_total),
            self.mutator_stop_us.count,
            micros(self.mutator_stop_us.p99_le),
            micros(self.mutator_stop_us.max),
            self.mutator_stop_us.over_1ms,
            micros(self.mutator_stop_us.after_resume_p99_le),
            micros(self.mutator_stop_us.after_resume_max),
            self.verify_errors,
            self.out_of_memory,
            self.failures.len(),
        )
    }

    /// The report as one line of JSON.
    pub fn json(&self) -> String {
        serde_json::to_string(self).expect("a report always serialises")
    }
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn micros(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.1} us")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem::{GcCause, PauseRecord};

    fn pause(us: u64) -> PauseRecord {
        PauseRecord {
            kind: PauseKind::StwCollection,
            cause: GcCause::Trigger,
            start_ns: 0,
            duration_ns: us * 1000,
            ttsp_ns: 0,
            mark_ns: 0,
            sweep_ns: 0,
            heap_before: 0,
            heap_after: 0,
            committed_after: 0,
            marked_objects: 0,
        }
    }

    #[test]
    fn percentiles_come_from_the_pause_log() {
        let stats = Stats {
            pauses: (1..=100).map(pause).collect(),
            pause_max_ns: 100_000,
            ..Default::default()
        };
        let p = pause_percentiles(&stats);
        assert!((p.p50 - 50.0).abs() < 0.1, "{p:?}");
        assert!((p.p99 - 99.0).abs() < 0.1, "{p:?}");
        assert_eq!(p.max, 100.0);
    }

    #[test]
    fn pauses_are_split_by_kind() {
        let mut pauses: Vec<PauseRecord> = (1..=10).map(pause).collect();
        pauses[9].kind = PauseKind::FinalMark;
        let stats = Stats {
            pauses,
            ..Default::default()
        };
        let by = pause_percentiles_by_kind(&stats);
        assert_eq!(by.len(), 2);
        assert_eq!(by["final_mark"].max, 10.0);
        assert!(by["stw"].max < 10.0);
    }

    #[test]
    fn mutator_stops_come_from_the_histogram() {
        let mut s = Stats::default();
        s.mutator_stop_histogram[3] = 98; // [8, 16) µs
        s.mutator_stop_histogram[11] = 2; // [2048, 4096) µs
        s.mutator_stop_max_ns = 3_000_000;
        s.mutator_resume_histogram[1] = 99; // [2, 4) µs
        s.mutator_resume_histogram[11] = 1;
        s.mutator_resume_max_ns = 2_500_000;
        let m = mutator_stops(&s);
        assert_eq!(m.count, 100);
        assert_eq!(m.p50_le, 16.0);
        assert_eq!(m.p99_le, 4096.0);
        assert_eq!(m.max, 3000.0);
        assert_eq!(m.over_1ms, 2);
        assert_eq!(m.after_resume_p99_le, 4.0);
        assert_eq!(m.after_resume_max, 2500.0);
        assert_eq!(mutator_stops(&Stats::default()).count, 0);
    }

    #[test]
    fn no_pauses_give_zeros() {
        let p = pause_percentiles(&Stats::default());
        assert_eq!((p.p50, p.p99, p.max), (0.0, 0.0, 0.0));
    }

    #[test]
    fn this_process_has_touched_memory() {
        let u = ProcessUsage::of_self();
        assert!(u.max_rss_bytes > 0 && u.minor_faults > 0, "{u:?}");
    }

    #[test]
    fn sizes_print_in_binary_units() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(64 << 20), "64.0 MiB");
    }
}
