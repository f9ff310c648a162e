//! `tandem-stress bench`: Tandem beside the Boehm collector (libgc) on the same workloads.
//!
//! How it runs:
//! 1. Every workload is written once over [`crate::collector`] ([`crate::workloads`], shared
//!    with the stress runs) and runs on both collectors: Tandem through its Rust API
//!    ([`tandem`](crate::collector::tandem)), libgc through its C API
//!    ([`boehm`](crate::collector::boehm)), loaded at run time
//!    ([`libgc`](crate::collector::libgc)). Where libgc is not installed only Tandem runs,
//!    and the tables and `report.json` (`"libgc": {"available": false, "reason": ...}`) say
//!    so.
//! 2. Each (case, collector, run) is a child process (`bench-one`, [`child`]) started from
//!    this binary, so runs share no heap and the child's peak RSS and CPU time come from
//!    `wait4` ([`process`]). Runs alternate between the collectors, swapping which goes
//!    first on every run, so drift on the machine hits both alike.
//! 3. The driver takes medians over runs and pools pauses for percentiles ([`summary`]),
//!    prints tables ([`table`]), writes `report.json` and one SVG plot per workload
//!    ([`plot`]).

pub mod c_clients;
pub mod child;
pub mod plot;
pub mod process;
pub mod spec;
pub mod summary;
pub mod table;

use crate::collector::libgc;
use child::RunRecord;
use spec::{Case, Suite};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use summary::{
    CollectorSummary, EvacuationPoint, LibgcStatus, Machine, Ratios, Report, Settings,
    WorkloadReport,
};

/// Options of `tandem-stress bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Small sizes: a few minutes on two cores.
    #[arg(long, conflicts_with = "smoke")]
    pub quick: bool,
    /// Tiny sizes and one run, for the smoke test (seconds).
    #[arg(long)]
    pub smoke: bool,
    /// Folder for report.json and the plots.
    #[arg(long, default_value = "bench-out")]
    pub out: PathBuf,
    /// Runs per collector and workload (scaling points use at most 3); default 5, 1 with
    /// --smoke.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub runs: Option<u64>,
    /// GC threads for both collectors (TANDEM_THREADS and GC_MARKERS; default: all cores).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub gc_threads: Option<u64>,
    /// Run only the cases whose name contains this text.
    #[arg(long)]
    pub only: Option<String>,
    /// Skip the marking-throughput and time-to-safepoint scaling points.
    #[arg(long)]
    pub no_scaling: bool,
    /// Skip the C clients' space-time curves (every growth factor, both modes).
    #[arg(long)]
    pub no_space_time: bool,
    /// Skip the evacuation sweep (the scattered workloads and the C clients at each
    /// `TANDEM_EVACUATION` setting, Tandem only).
    #[arg(long)]
    pub no_evacuation: bool,
}

/// Options of the hidden `tandem-stress bench-one` (the child process).
#[derive(Debug, clap::Args)]
pub struct BenchOneArgs {
    /// `tandem` or `boehm`.
    #[arg(long)]
    pub collector: String,
    /// The case, as JSON.
    #[arg(long)]
    pub spec: String,
}

/// The collectors, in the order of even-numbered runs.
const COLLECTORS: [&str; 2] = ["tandem", "boehm"];

/// How each figure is obtained (also written to report.json).
const METHOD: &[&str] = &[
    "Each (case, collector, run) is a separate child process of this binary; runs alternate Tandem and libgc and swap which goes first on every run.",
    "wall: the workload's own wall time in the child (collector start-up excluded); CPU: user+system time of the whole child process from wait4, GC threads included.",
    "GC time: the sum of a run's stop-the-world pauses. Tandem: Stats.pauses (PauseRecord.duration_ns, from the stop request to resume). libgc: GC_set_on_collection_event, from GC_EVENT_PRE_STOP_WORLD to GC_EVENT_POST_START_WORLD; collection_s adds the rest of the time libgc held its lock for a collection (GC_EVENT_START to GC_EVENT_END).",
    "Time-to-safepoint: Tandem PauseRecord.ttsp_ns (stop request until every mutator stopped) and Stats.ttsp_max_ns; libgc GC_EVENT_PRE_STOP_WORLD to GC_EVENT_POST_STOP_WORLD (suspend signals sent until every thread acknowledged).",
    "Max RSS: ru_maxrss of the child from wait4; page faults: its ru_minflt (minor: first touches of fresh or returned memory) and ru_majflt (major: needing I/O), also from wait4. Live set: computed by the workload from its object sizes (header words included, allocator rounding not), the same for both collectors; Tandem's heap_live_max_bytes is the most it found live after a collection.",
    "Medians are over the successful runs; pause percentiles pool the pauses of all runs (max is the longest of any run). Ratios are Tandem over libgc: below 1, Tandem is better.",
    "Marking throughput: a fixed live heap (a random graph; a binary tree), three explicit collections after the build; MiB/s = live bytes / mark time (Tandem PauseRecord.mark_ns in TANDEM_MODE=stw; libgc GC_EVENT_MARK_START to GC_EVENT_MARK_END), with TANDEM_THREADS = GC_MARKERS = the GC thread count.",
    "C clients (stress/c/): binary-trees and GCBench in C against tandem.h alone and against gc.h alone, each run its own process; Tandem in concurrent and stw mode with TANDEM_HEAP_MAX where the case gives one, libgc with its defaults (GC_THREADS, thread-local allocation, GC_MALLOC_ATOMIC for the array); wall time as the program measured it (start-up included), RSS and faults from wait4. harness/C: the bench's own libgc median for the same binary-trees case over the plain-C libgc median.",
    "libgc runs with parallel markers (GC_allow_register_threads starts them; GC_MARKERS sets the count) and its default heap growth; Tandem with its defaults and the TANDEM_* environment.",
];

/// Runs the benchmark; exit 1 if a run failed. Without libgc only Tandem runs (exit 0).
pub fn main(args: &BenchArgs) -> ExitCode {
    if let Err(e) = libgc::pretend_absent() {
        errln!("tandem-stress bench: {e}");
        return ExitCode::from(2);
    }
    let libgc = LibgcStatus::probe();
    // Without libgc, only Tandem: `run_case` leaves libgc's runs empty.
    let collectors = if libgc.available {
        &COLLECTORS[..]
    } else {
        &COLLECTORS[..1]
    };
    let suite = if args.smoke {
        Suite::Smoke
    } else if args.quick {
        Suite::Quick
    } else {
        Suite::Full
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let gc_threads = args.gc_threads.map_or(cores, |n| n as usize);
    let runs = args
        .runs
        .map_or(if suite == Suite::Smoke { 1 } else { 5 }, |n| n as usize);
    let scaling_runs = runs.min(3);
    let keep = |c: &Case| {
        args.only
            .as_ref()
            .is_none_or(|o| c.name.contains(o.as_str()))
    };
    let cases: Vec<Case> = spec::workloads(suite, cores)
        .into_iter()
        .filter(keep)
        .collect();
    let (mark_cases, ttsp_cases) = if args.no_scaling {
        (Vec::new(), Vec::new())
    } else {
        (
            spec::mark_cases(suite).into_iter().filter(keep).collect(),
            spec::ttsp_cases(suite)
                .into_iter()
                .filter(keep)
                .collect::<Vec<_>>(),
        )
    };
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        errln!(
            "tandem-stress bench: cannot create {}: {e}",
            args.out.display()
        );
        return ExitCode::from(2);
    }
    let machine = machine();
    let settings = Settings {
        suite,
        runs,
        scaling_runs,
        gc_threads,
        tandem_mode_env: std::env::var("TANDEM_MODE").ok(),
    };
    print_plan(
        &machine,
        &settings,
        &libgc,
        &cases,
        &mark_cases,
        &ttsp_cases,
    );

    let c_cases: Vec<c_clients::CCase> = c_clients::cases(suite)
        .into_iter()
        .filter(|c| {
            args.only
                .as_ref()
                .is_none_or(|o| c.name.contains(o.as_str()))
        })
        .collect();
    let evac_cases: Vec<(Case, &'static str)> = if args.no_evacuation {
        Vec::new()
    } else {
        spec::evacuation_cases(suite, cores)
            .into_iter()
            .filter(|(c, _)| keep(c))
            .collect()
    };
    let evac_modes: &[&str] = if args.no_evacuation {
        &[]
    } else {
        &spec::EVACUATION_MODES
    };
    let timeout = Duration::from_secs(if suite == Suite::Full { 1800 } else { 300 });
    let growths = if args.no_space_time {
        &[][..]
    } else {
        c_clients::growths(suite)
    };
    let total = collectors.len()
        * (cases.len() * runs + (mark_cases.len() + ttsp_cases.len()) * scaling_runs)
        + evac_cases.len() * scaling_runs
        + c_cases.len()
            * (runs * c_clients::COLUMNS.len()
                + (2 * growths.len() + evac_modes.len()) * scaling_runs)
        + if c_cases.is_empty() || evac_modes.is_empty() {
            0
        } else {
            scaling_runs
        };
    let mut progress = Progress {
        done: 0,
        total,
        start: Instant::now(),
        failures: 0,
    };
    let mut workloads = Vec::new();
    for case in &cases {
        let [t, b] = run_case(case, collectors, runs, gc_threads, timeout, &mut progress);
        let plot = plot_case(&args.out, case, &t, &b);
        let ts = CollectorSummary::of("tandem", &t);
        let bs = libgc.available.then(|| CollectorSummary::of("boehm", &b));
        workloads.push(WorkloadReport {
            name: case.name.clone(),
            description: spec::description(&case.spec).into(),
            sizes: case.spec.sizes(),
            params: serde_json::to_value(&case.spec).expect("a spec serialises"),
            threads: case.spec.threads(),
            ratios: bs
                .as_ref()
                .map_or_else(Ratios::default, |bs| Ratios::of(&ts, bs)),
            tandem: ts,
            boehm: bs,
            plot,
        });
    }
    let c_clients = (!c_cases.is_empty()).then(|| {
        let built = c_clients::Built::new(&args.out.join("c"));
        let (status, mut results) =
            c_clients::run_all(&built, &c_cases, runs, gc_threads, timeout, |line, ok| {
                progress.hear(&line, ok)
            });
        let c_sweep = c_clients::Sweep {
            built: &built,
            cases: &c_cases,
            runs: scaling_runs,
            gc_threads,
            timeout,
        };
        let space_time = c_sweep.space_time(growths, |line, ok| progress.hear(&line, ok));
        let evacuation = c_sweep.evacuation(evac_modes, |line, ok| progress.hear(&line, ok));
        let load_barrier = (!evac_modes.is_empty())
            .then(|| {
                c_clients::load_barrier::run(
                    &built,
                    suite,
                    scaling_runs,
                    gc_threads,
                    timeout,
                    |line, ok| progress.hear(&line, ok),
                )
            })
            .flatten();
        if !space_time.is_empty() {
            if let Err(e) =
                plot::space_time(&args.out.join("space_time.svg"), &results, &space_time)
            {
                errln!("tandem-stress bench: {e}");
            }
        }
        for r in &mut results {
            let harness = r.case.harness_case.as_ref().and_then(|h| {
                workloads
                    .iter()
                    .find(|w| &w.name == h)
                    .and_then(|w| w.boehm.as_ref())
            });
            let plain = r.columns.get(2).and_then(Option::as_ref);
            r.harness_over_plain_c = match (harness, plain) {
                (Some(h), Some(p)) if p.wall_s > 0.0 && h.wall_s > 0.0 => Some(h.wall_s / p.wall_s),
                _ => None,
            };
        }
        c_clients::CClients {
            status,
            cases: results,
            space_time,
            evacuation,
            load_barrier,
        }
    });
    let mut sweep = Sweep {
        collectors,
        runs: scaling_runs,
        gc_threads,
        timeout,
        progress: &mut progress,
    };
    let mark_scaling = sweep.points(&mark_cases, |name, case, r| {
        let shape = match &case.spec {
            spec::Spec::Mark(p) => p.shape,
            _ => Default::default(),
        };
        let threads = case.gc_threads.unwrap_or(gc_threads);
        summary::mark_point(name, shape.label(), threads, r)
    });
    let ttsp_scaling = sweep.points(&ttsp_cases, |name, case, r| {
        summary::ttsp_point(name, case.spec.threads(), r)
    });
    sweep.collectors = &COLLECTORS[..1];
    let evacuation = evac_cases
        .iter()
        .flat_map(|(case, mode)| {
            sweep.points(std::slice::from_ref(case), |name, case, r| {
                EvacuationPoint {
                    workload: case.name.split(' ').next().unwrap_or_default().into(),
                    mode: mode.to_string(),
                    tandem: CollectorSummary::of(name, r),
                }
            })
        })
        .collect();
    if !mark_scaling.is_empty() || !ttsp_scaling.is_empty() {
        if let Err(e) = plot::scaling(&args.out.join("scaling.svg"), &mark_scaling, &ttsp_scaling) {
            errln!("tandem-stress bench: {e}");
        }
    }
    let report = Report {
        machine,
        settings,
        libgc,
        workloads,
        mark_scaling,
        ttsp_scaling,
        evacuation,
        c_clients,
        method: METHOD.to_vec(),
    };
    let path = args.out.join("report.json");
    let json = serde_json::to_string_pretty(&report).expect("a report serialises");
    if let Err(e) = std::fs::write(&path, json) {
        errln!("tandem-stress bench: cannot write {}: {e}", path.display());
        return ExitCode::from(2);
    }
    crate::stdio::out(format_args!("{}", table::tables(&report)));
    outln!(
        "\nreport: {}; plots: {}/*.svg; {} child runs in {:.0} s, {} failed",
        path.display(),
        args.out.display(),
        progress.done,
        progress.start.elapsed().as_secs_f64(),
        progress.failures
    );
    if progress.failures > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The hidden child entry point.
pub fn one(args: &BenchOneArgs) -> ExitCode {
    child::main(&args.collector, &args.spec)
}

struct Progress {
    done: usize,
    total: usize,
    start: Instant,
    failures: usize,
}

impl Progress {
    /// Counts one finished run and prints its line.
    fn hear(&mut self, line: &str, ok: bool) {
        self.done += 1;
        self.failures += usize::from(!ok);
        errln!(
            "[{}/{} {:.0}s] {line}",
            self.done,
            self.total,
            self.start.elapsed().as_secs_f64()
        );
    }
}

/// A scaling sweep: each case run on every collector, one point per (case, collector).
struct Sweep<'a> {
    collectors: &'a [&'a str],
    runs: usize,
    gc_threads: usize,
    timeout: Duration,
    progress: &'a mut Progress,
}

impl Sweep<'_> {
    fn points<T>(
        &mut self,
        cases: &[Case],
        point: impl Fn(&str, &Case, &[RunRecord]) -> T,
    ) -> Vec<T> {
        let mut out = Vec::new();
        for case in cases {
            let runs = run_case(
                case,
                self.collectors,
                self.runs,
                self.gc_threads,
                self.timeout,
                self.progress,
            );
            for (name, r) in self.collectors.iter().zip(&runs) {
                out.push(point(name, case, r));
            }
        }
        out
    }
}

/// Runs `case` `runs` times on each of `collectors` (a prefix of [`COLLECTORS`]),
/// alternating; returns [tandem, boehm] runs (empty for a collector not asked for).
fn run_case(
    case: &Case,
    collectors: &[&str],
    runs: usize,
    gc_threads: usize,
    timeout: Duration,
    progress: &mut Progress,
) -> [Vec<RunRecord>; 2] {
    let mut out = [Vec::new(), Vec::new()];
    for run in 0..runs {
        let order = if run % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order.into_iter().filter(|&i| i < collectors.len()) {
            let r = process::run_child(case, COLLECTORS[i], gc_threads, timeout);
            let status = match &r.error {
                None => format!(
                    "{:.2} s, {} pauses, RSS {} MiB, {} minor faults",
                    r.wall_s,
                    r.stats.pauses.len(),
                    r.max_rss_bytes >> 20,
                    r.minor_faults
                ),
                Some(e) => format!("FAILED: {e}"),
            };
            let line = format!("{} {} run {}: {status}", case.name, COLLECTORS[i], run + 1);
            progress.hear(&line, r.error.is_none());
            out[i].push(r);
        }
    }
    out
}

/// The run with the median wall time among the successful ones.
fn median_run(runs: &[RunRecord]) -> Option<&RunRecord> {
    let mut ok: Vec<&RunRecord> = runs.iter().filter(|r| r.error.is_none()).collect();
    ok.sort_by(|a, b| a.wall_s.total_cmp(&b.wall_s));
    ok.get(ok.len() / 2).copied()
}

/// Draws the case's plot; returns its file name.
fn plot_case(out: &Path, case: &Case, t: &[RunRecord], b: &[RunRecord]) -> Option<String> {
    let file = format!("{}.svg", case.name.replace('/', "-"));
    let all = |runs: &[RunRecord]| -> Vec<u64> {
        runs.iter()
            .filter(|r| r.error.is_none())
            .flat_map(|r| r.stats.pauses.iter().map(|p| p.dur_ns))
            .collect()
    };
    let (ta, ba) = (all(t), all(b));
    fn series<'a>(runs: &'a [RunRecord], all: &'a [u64]) -> plot::Series<'a> {
        plot::Series {
            timeline: median_run(runs).map_or(&[][..], |r| &r.stats.pauses[..]),
            all_ns: all,
            runs: runs.iter().filter(|r| r.error.is_none()).count(),
        }
    }
    let (ts, bs) = (series(t, &ta), series(b, &ba));
    match plot::workload(&out.join(&file), &case.name, ts, bs) {
        Ok(()) => Some(file),
        Err(e) => {
            errln!("tandem-stress bench: {}: {e}", case.name);
            None
        }
    }
}

fn machine() -> Machine {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    Machine {
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu,
        kernel,
    }
}

fn print_plan(
    m: &Machine,
    s: &Settings,
    libgc: &LibgcStatus,
    cases: &[Case],
    mark: &[Case],
    ttsp: &[Case],
) {
    outln!(
        "tandem-stress bench ({:?} suite): {} cores ({}), Linux {}",
        s.suite,
        m.cores,
        m.cpu,
        m.kernel
    );
    outln!(
        "GC threads {} for both collectors (TANDEM_THREADS, GC_MARKERS); Tandem mode: {}; \
         {} runs per collector and case, {} per scaling point, alternating Tandem and libgc",
        s.gc_threads,
        s.tandem_mode_env
            .as_deref()
            .unwrap_or("the default (TANDEM_MODE unset)"),
        s.runs,
        s.scaling_runs
    );
    match (&libgc.library, &libgc.reason) {
        (Some(lib), _) => outln!("libgc: {lib}"),
        (None, reason) => outln!(
            "libgc: NOT AVAILABLE, only Tandem runs and the comparison is skipped: {}",
            reason.as_deref().unwrap_or("unknown reason")
        ),
    }
    outln!("cases:");
    for c in cases {
        outln!(
            "  {:<22} {} mutator thread{}: {}; {}",
            c.name,
            c.spec.threads(),
            if c.spec.threads() == 1 { "" } else { "s" },
            spec::description(&c.spec),
            c.spec.sizes()
        );
    }
    if let Some(c) = mark.first() {
        let threads: Vec<String> = mark
            .iter()
            .map(|c| c.gc_threads.unwrap_or(s.gc_threads).to_string())
            .collect();
        outln!(
            "  marking throughput: {}; GC threads {} (TANDEM_MODE=stw)",
            c.spec.sizes(),
            threads.join(", ")
        );
    }
    if let Some(c) = ttsp.first() {
        let m: Vec<String> = ttsp.iter().map(|c| c.spec.threads().to_string()).collect();
        outln!(
            "  time-to-safepoint: {}; mutator threads {}",
            c.spec.sizes(),
            m.join(", ")
        );
    }
}
