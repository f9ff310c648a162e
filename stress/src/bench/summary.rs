//! From runs to figures: medians over runs, pooled pause percentiles, Tandem/libgc ratios,
//! and the structure of `report.json`.

use super::child::RunRecord;
use serde::Serialize;
use std::collections::BTreeMap;

/// The value at quantile `q` of `sorted` (nearest rank); 0 when empty.
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of `v` (mean of the middle two for an even count); 0 when empty.
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// Percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    /// Percentiles of `ns` values, in microseconds.
    pub fn of_ns(mut ns: Vec<u64>) -> Percentiles {
        ns.sort_unstable();
        let us = |v: u64| (v as f64 / 100.0).round() / 10.0;
        Percentiles {
            p50: us(quantile(&ns, 0.50)),
            p99: us(quantile(&ns, 0.99)),
            max: us(ns.last().copied().unwrap_or(0)),
        }
    }
}

/// One run, in the report.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// Workload wall time, seconds.
    pub wall_s: f64,
    /// Process CPU time (user + system), seconds.
    pub cpu_s: f64,
    /// Sum of pauses, seconds.
    pub gc_s: f64,
    /// Peak RSS, bytes.
    pub max_rss_bytes: u64,
    /// Minor page faults.
    pub minor_faults: u64,
    /// Major page faults.
    pub major_faults: u64,
    /// Pauses.
    pub pauses: usize,
    /// Longest pause, microseconds.
    pub pause_max_us: f64,
    /// The error, if the run failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One collector on one case: medians over its successful runs.
#[derive(Debug, Clone, Serialize)]
pub struct CollectorSummary {
    /// `tandem` or `boehm`.
    pub collector: String,
    /// Tandem's mode (`concurrent`, `stw`) or `boehm`.
    pub mode: String,
    /// GC threads (Tandem workers, libgc markers).
    pub gc_threads: usize,
    /// Successful runs.
    pub runs_ok: usize,
    /// Failed runs (their errors are in `runs`).
    pub runs_failed: usize,
    /// Median workload wall time, seconds.
    pub wall_s: f64,
    /// Median process CPU time, seconds (includes concurrent GC threads).
    pub cpu_s: f64,
    /// Median GC time: the sum of a run's stop-the-world pauses, seconds.
    pub gc_s: f64,
    /// Median CPU time collecting cost (Tandem: its threads and the mutators' assists),
    /// seconds; libgc does not report it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gc_cpu_s: Option<f64>,
    /// Median time libgc held its lock for collections (world stopped or not), seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collection_s: Option<f64>,
    /// Median peak RSS, bytes.
    pub max_rss_bytes: u64,
    /// Median minor page faults of the process.
    pub minor_faults: u64,
    /// Median major page faults of the process.
    pub major_faults: u64,
    /// The workload's live set from its object sizes, bytes.
    pub live_set_bytes: u64,
    /// Median peak RSS over the live set.
    pub rss_over_live: f64,
    /// Median of the most heap bytes live after a collection (Tandem's measure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heap_live_max_bytes: Option<u64>,
    /// Median peak heap (Tandem: committed; libgc: heap size).
    pub heap_peak_bytes: u64,
    /// Median bytes allocated.
    pub allocated_bytes: u64,
    /// Median collection cycles.
    pub gcs: f64,
    /// Median pauses per run.
    pub pauses_per_run: f64,
    /// Pause percentiles over the pauses of all runs pooled (max: the longest of any run).
    pub pause_us: Percentiles,
    /// The longest any mutator waited on the collector in any run, microseconds (Tandem:
    /// pause, mutator-observed stop or allocation stall; libgc: pause).
    pub longest_wait_us: f64,
    /// Time-to-safepoint percentiles, pooled likewise.
    pub ttsp_us: Percentiles,
    /// Median marking time per pause that marked, microseconds.
    pub mark_us_median: f64,
    /// Pauses by kind, over all runs (Tandem's `PauseKind::name`; `stw` for libgc).
    pub pause_kinds: BTreeMap<String, u64>,
    /// Pause percentiles per kind, pooled over all runs like `pause_us`.
    pub pause_us_by_kind: BTreeMap<String, Percentiles>,
    /// What the workload checked (from the first successful run).
    pub checked: String,
    /// Every run.
    pub runs: Vec<RunSummary>,
}

/// Sums a run's pauses, in seconds.
pub fn gc_seconds(r: &RunRecord) -> f64 {
    r.stats.pauses.iter().map(|p| p.dur_ns).sum::<u64>() as f64 / 1e9
}

impl CollectorSummary {
    /// Summarises `runs` (all of one collector on one case).
    pub fn of(collector: &str, runs: &[RunRecord]) -> CollectorSummary {
        let ok: Vec<&RunRecord> = runs.iter().filter(|r| r.error.is_none()).collect();
        let med =
            |f: &dyn Fn(&RunRecord) -> f64| median(&ok.iter().map(|r| f(r)).collect::<Vec<_>>());
        let pooled = |f: &dyn Fn(&crate::collector::Pause) -> u64| {
            Percentiles::of_ns(
                ok.iter()
                    .flat_map(|r| r.stats.pauses.iter().map(f))
                    .collect(),
            )
        };
        let mut by_kind: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for r in &ok {
            for p in &r.stats.pauses {
                by_kind.entry(p.kind.clone()).or_default().push(p.dur_ns);
            }
        }
        let kinds = by_kind
            .iter()
            .map(|(k, v)| (k.clone(), v.len() as u64))
            .collect();
        let marks: Vec<f64> = ok
            .iter()
            .flat_map(|r| r.stats.pauses.iter())
            .filter(|p| p.mark_ns > 0)
            .map(|p| p.mark_ns as f64 / 1e3)
            .collect();
        let live = ok.first().map_or(0, |r| r.outcome.live_set_bytes);
        let rss = med(&|r| r.max_rss_bytes as f64) as u64;
        let live_max: Vec<f64> = ok
            .iter()
            .filter_map(|r| r.stats.heap_live_max.map(|v| v as f64))
            .collect();
        let collection: Vec<f64> = ok
            .iter()
            .filter_map(|r| r.stats.collection_ns.map(|v| v as f64 / 1e9))
            .collect();
        CollectorSummary {
            collector: collector.into(),
            mode: ok
                .first()
                .map_or_else(String::new, |r| r.stats.mode.clone()),
            gc_threads: ok.first().map_or(0, |r| r.stats.gc_threads),
            runs_ok: ok.len(),
            runs_failed: runs.len() - ok.len(),
            wall_s: med(&|r| r.wall_s),
            cpu_s: med(&|r| r.cpu_s),
            gc_s: med(&gc_seconds),
            gc_cpu_s: (!ok.is_empty() && ok.iter().all(|r| r.stats.gc_cpu_ns.is_some()))
                .then(|| med(&|r| r.stats.gc_cpu_ns.unwrap_or(0) as f64 / 1e9)),
            collection_s: (!collection.is_empty()).then(|| median(&collection)),
            max_rss_bytes: rss,
            minor_faults: med(&|r| r.minor_faults as f64) as u64,
            major_faults: med(&|r| r.major_faults as f64) as u64,
            live_set_bytes: live,
            rss_over_live: if live > 0 {
                rss as f64 / live as f64
            } else {
                0.0
            },
            heap_live_max_bytes: (!live_max.is_empty()).then(|| median(&live_max) as u64),
            heap_peak_bytes: med(&|r| r.stats.heap_peak as f64) as u64,
            allocated_bytes: med(&|r| r.stats.allocated_bytes as f64) as u64,
            gcs: med(&|r| r.stats.gcs as f64),
            pauses_per_run: med(&|r| r.stats.pauses.len() as f64),
            pause_us: pooled(&|p| p.dur_ns),
            longest_wait_us: ok
                .iter()
                .map(|r| r.stats.longest_wait_ns)
                .max()
                .unwrap_or(0) as f64
                / 1e3,
            ttsp_us: pooled(&|p| p.ttsp_ns),
            mark_us_median: median(&marks),
            pause_kinds: kinds,
            pause_us_by_kind: by_kind
                .into_iter()
                .map(|(k, v)| (k, Percentiles::of_ns(v)))
                .collect(),
            checked: ok
                .first()
                .map_or_else(String::new, |r| r.outcome.checked.clone()),
            runs: runs
                .iter()
                .map(|r| RunSummary {
                    wall_s: r.wall_s,
                    cpu_s: r.cpu_s,
                    gc_s: gc_seconds(r),
                    max_rss_bytes: r.max_rss_bytes,
                    minor_faults: r.minor_faults,
                    major_faults: r.major_faults,
                    pauses: r.stats.pauses.len(),
                    pause_max_us: r.stats.pauses.iter().map(|p| p.dur_ns).max().unwrap_or(0) as f64
                        / 1e3,
                    error: r.error.clone(),
                })
                .collect(),
        }
    }
}

/// Tandem over libgc for the headline figures (below 1: Tandem is better); None where
/// libgc's figure is 0 or a side has no successful run.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Ratios {
    /// Wall time.
    pub wall: Option<f64>,
    /// Process CPU time.
    pub cpu: Option<f64>,
    /// GC time (sum of pauses).
    pub gc_time: Option<f64>,
    /// Peak RSS.
    pub max_rss: Option<f64>,
    /// 99th-percentile pause.
    pub pause_p99: Option<f64>,
    /// Longest pause.
    pub pause_max: Option<f64>,
}

fn ratio(t: f64, b: f64) -> Option<f64> {
    (b > 0.0 && t.is_finite()).then(|| (t / b * 1000.0).round() / 1000.0)
}

impl Ratios {
    /// Tandem's figures over libgc's.
    pub fn of(t: &CollectorSummary, b: &CollectorSummary) -> Ratios {
        if t.runs_ok == 0 || b.runs_ok == 0 {
            return Ratios::default();
        }
        Ratios {
            wall: ratio(t.wall_s, b.wall_s),
            cpu: ratio(t.cpu_s, b.cpu_s),
            gc_time: ratio(t.gc_s, b.gc_s),
            max_rss: ratio(t.max_rss_bytes as f64, b.max_rss_bytes as f64),
            pause_p99: ratio(t.pause_us.p99, b.pause_us.p99),
            pause_max: ratio(t.pause_us.max, b.pause_us.max),
        }
    }
}

/// One workload case in `report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct WorkloadReport {
    /// The case's name.
    pub name: String,
    /// What the workload does.
    pub description: String,
    /// Its sizes, in words.
    pub sizes: String,
    /// Its parameters, as run.
    pub params: serde_json::Value,
    /// Mutator threads.
    pub threads: usize,
    /// Tandem's figures.
    pub tandem: CollectorSummary,
    /// libgc's figures; None when libgc is not available (see [`Report::libgc`]).
    pub boehm: Option<CollectorSummary>,
    /// Tandem over libgc.
    pub ratios: Ratios,
    /// The plot file, relative to the report.
    pub plot: Option<String>,
}

/// Marking throughput at one GC thread count, for one collector.
#[derive(Debug, Clone, Serialize)]
pub struct MarkPoint {
    /// `tandem` or `boehm`.
    pub collector: String,
    /// The live heap's shape (`mark::Shape::label`).
    pub shape: String,
    /// GC threads asked for (TANDEM_THREADS, GC_MARKERS).
    pub gc_threads: usize,
    /// GC threads the collector reported.
    pub gc_threads_reported: usize,
    /// Live bytes marked (the graph's size).
    pub live_bytes: u64,
    /// Median mark time of the measured collections, milliseconds.
    pub mark_ms: f64,
    /// Median pause of the measured collections, milliseconds.
    pub pause_ms: f64,
    /// Live MiB per second of mark time.
    pub mb_per_s: f64,
    /// Failed runs.
    pub runs_failed: usize,
}

/// Time-to-safepoint at one mutator count, for one collector.
#[derive(Debug, Clone, Serialize)]
pub struct TtspPoint {
    /// `tandem` or `boehm`.
    pub collector: String,
    /// Mutator threads.
    pub mutators: usize,
    /// Time-to-safepoint percentiles over all pauses of all runs.
    pub ttsp_us: Percentiles,
    /// The collector's own longest time-to-safepoint (Tandem's `Stats.ttsp_max_ns`),
    /// over all runs, microseconds.
    pub ttsp_max_us: f64,
    /// Pause percentiles, likewise.
    pub pause_us: Percentiles,
    /// Median wall time, seconds.
    pub wall_s: f64,
    /// Median pauses per run.
    pub pauses_per_run: f64,
    /// Failed runs.
    pub runs_failed: usize,
}

/// One workload with `TANDEM_EVACUATION` at one setting: Tandem's figures (RSS over the
/// live set, the most it held after a cycle, pauses by kind) for that setting.
#[derive(Debug, Clone, Serialize)]
pub struct EvacuationPoint {
    /// The workload's name (without the setting).
    pub workload: String,
    /// The `TANDEM_EVACUATION` setting.
    pub mode: String,
    /// Tandem's summary over the runs.
    pub tandem: CollectorSummary,
}

/// Marking throughput of one collector from its runs of one mark case.
pub fn mark_point(
    collector: &str,
    shape: String,
    gc_threads: usize,
    runs: &[RunRecord],
) -> MarkPoint {
    let ok: Vec<&RunRecord> = runs.iter().filter(|r| r.error.is_none()).collect();
    // The collections after the build.
    let measured = || {
        ok.iter()
            .flat_map(|r| r.stats.pauses.iter().skip(r.outcome.measured_from_pause))
    };
    let marks: Vec<f64> = measured().map(|p| p.mark_ns as f64 / 1e6).collect();
    let pauses: Vec<f64> = measured().map(|p| p.dur_ns as f64 / 1e6).collect();
    let live = ok.first().map_or(0, |r| r.outcome.live_set_bytes);
    let mark_ms = median(&marks);
    MarkPoint {
        collector: collector.into(),
        shape,
        gc_threads,
        gc_threads_reported: ok.first().map_or(0, |r| r.stats.gc_threads),
        live_bytes: live,
        mark_ms,
        pause_ms: median(&pauses),
        mb_per_s: if mark_ms > 0.0 {
            (live as f64 / (1 << 20) as f64) / (mark_ms / 1e3)
        } else {
            0.0
        },
        runs_failed: runs.len() - ok.len(),
    }
}

/// Time-to-safepoint of one collector from its runs of one TTSP case.
pub fn ttsp_point(collector: &str, mutators: usize, runs: &[RunRecord]) -> TtspPoint {
    let s = CollectorSummary::of(collector, runs);
    TtspPoint {
        collector: collector.into(),
        mutators,
        ttsp_us: s.ttsp_us,
        ttsp_max_us: runs
            .iter()
            .filter(|r| r.error.is_none())
            .map(|r| r.stats.ttsp_max_ns)
            .max()
            .unwrap_or(0) as f64
            / 1e3,
        pause_us: s.pause_us,
        wall_s: s.wall_s,
        pauses_per_run: s.pauses_per_run,
        runs_failed: s.runs_failed,
    }
}

/// The whole `report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The machine.
    pub machine: Machine,
    /// How the benchmark ran.
    pub settings: Settings,
    /// Whether libgc was there to compare against.
    pub libgc: LibgcStatus,
    /// One entry per workload case.
    pub workloads: Vec<WorkloadReport>,
    /// Marking throughput against GC threads.
    pub mark_scaling: Vec<MarkPoint>,
    /// Time-to-safepoint against mutator threads.
    pub ttsp_scaling: Vec<TtspPoint>,
    /// The scattered workloads at each `TANDEM_EVACUATION` setting (Tandem only).
    pub evacuation: Vec<EvacuationPoint>,
    /// The C clients, when any ran.
    pub c_clients: Option<super::c_clients::CClients>,
    /// How each figure was obtained.
    pub method: Vec<&'static str>,
}

/// Whether the comparison with libgc ran.
#[derive(Debug, Clone, Serialize)]
pub struct LibgcStatus {
    /// libgc was loaded: every case ran on both collectors.
    pub available: bool,
    /// The library that was loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub library: Option<String>,
    /// Why libgc is not available, and how to install it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl LibgcStatus {
    /// Loads libgc (once per process) and says how that went.
    pub fn probe() -> LibgcStatus {
        match crate::collector::libgc::load() {
            Ok(gc) => LibgcStatus {
                available: true,
                library: Some(gc.path.clone()),
                reason: None,
            },
            Err(e) => LibgcStatus {
                available: false,
                library: None,
                reason: Some(e.into()),
            },
        }
    }
}

/// The machine the benchmark ran on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Available parallelism (`nproc`).
    pub cores: usize,
    /// CPU model from /proc/cpuinfo.
    pub cpu: String,
    /// Kernel release.
    pub kernel: String,
}

/// How the benchmark ran.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// `smoke`, `quick` or `full`.
    pub suite: super::spec::Suite,
    /// Runs per collector and case.
    pub runs: usize,
    /// Runs per collector and scaling point.
    pub scaling_runs: usize,
    /// GC threads for the workloads (TANDEM_THREADS and GC_MARKERS).
    pub gc_threads: usize,
    /// TANDEM_MODE as set for the run (unset: the default).
    pub tandem_mode_env: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.5), 50);
        assert_eq!(quantile(&v, 0.99), 99);
        assert_eq!(quantile(&v, 1.0), 100);
        assert_eq!(quantile(&[], 0.5), 0);
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn ratios_are_tandem_over_libgc_and_skip_zero_denominators() {
        assert_eq!(ratio(1.0, 2.0), Some(0.5));
        assert_eq!(ratio(1.0, 0.0), None);
    }
}
