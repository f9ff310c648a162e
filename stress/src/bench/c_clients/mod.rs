//! C clients: binary-trees, GCBench and a weak-value cache (Python's weakref and `__del__`,
//! see `stress/c/weak_cache.h`) written in C against `tandem.h` alone and against `gc.h`
//! alone (`stress/c/`), as a VM author and a libgc user would write them, so that the
//! bench measures Tandem's inline C fast paths and VM services, and libgc in its own
//! idiom (disappearing links, ordered finalizers run on demand), with no harness between. Each run is its own process: Tandem in concurrent and in stw mode
//! (with `TANDEM_HEAP_MAX` where the case gives one, nothing else set), libgc with its
//! defaults; wall time from the program, peak RSS and page faults from `wait4`.
//!
//! The plain-C libgc binary-trees also checks the harness: its wall time beside the
//! bench's own libgc run of the same case (`fidelity`) shows whether the Rust harness
//! slows libgc down.

mod build;
pub mod load_barrier;

use super::process;
use super::spec::Suite;
use super::summary::median;
use serde::Serialize;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Which program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Program {
    /// binary-trees: `depth threads`.
    BinaryTrees,
    /// GCBench: `stretch-depth`.
    Gcbench,
    /// The weak-value cache: `ops-per-thread threads`.
    WeakCache,
}

/// One C case.
#[derive(Debug, Clone, Serialize)]
pub struct CCase {
    /// Name in tables, e.g. `c/binary-trees/d18/t1`.
    pub name: String,
    /// The program.
    pub program: Program,
    /// Its arguments.
    pub args: Vec<String>,
    /// Mutator threads.
    pub threads: usize,
    /// `TANDEM_HEAP_MAX` for the Tandem runs (libgc runs with its defaults).
    pub tandem_heap_max: Option<&'static str>,
    /// The Rust-harness case whose libgc runs this one's libgc runs are compared with.
    pub harness_case: Option<String>,
}

/// The C cases of a suite: the sizes and heap limits of issue 9's table.
pub fn cases(suite: Suite) -> Vec<CCase> {
    let bt = |depth: u32, threads: usize, max: &'static str| CCase {
        name: format!("c/binary-trees/d{depth}/t{threads}"),
        program: Program::BinaryTrees,
        args: vec![depth.to_string(), threads.to_string()],
        threads,
        tandem_heap_max: Some(max),
        harness_case: Some(format!("binary-trees/d{depth}/t{threads}")),
    };
    let gcbench = |stretch: u32, max: &'static str| CCase {
        name: format!("c/gcbench/s{stretch}"),
        program: Program::Gcbench,
        args: vec![stretch.to_string()],
        threads: 1,
        tandem_heap_max: Some(max),
        harness_case: None,
    };
    // Default settings, no heap limit: what a Python VM's small process gets.
    let weak_cache = |ops: u32, threads: usize| CCase {
        name: format!("c/weak-cache/{}k/t{threads}", ops / 1000),
        program: Program::WeakCache,
        args: vec![ops.to_string(), threads.to_string()],
        threads,
        tandem_heap_max: None,
        harness_case: None,
    };
    match suite {
        Suite::Smoke => vec![bt(10, 2, "16M"), gcbench(12, "16M"), weak_cache(100_000, 2)],
        Suite::Quick => vec![
            bt(16, 1, "80M"),
            bt(16, 2, "120M"),
            gcbench(18, "64M"),
            weak_cache(1_000_000, 2),
        ],
        Suite::Full => vec![
            bt(18, 1, "80M"),
            bt(18, 2, "120M"),
            gcbench(18, "64M"),
            bt(21, 1, "600M"),
            weak_cache(2_000_000, 2),
        ],
    }
}

/// The three ways each case runs, in the order of even-numbered runs.
pub const COLUMNS: [&str; 3] = ["tandem-concurrent", "tandem-stw", "libgc"];

/// What a C client prints.
#[derive(Debug, Default, Clone, serde::Deserialize)]
struct Printed {
    wall_s: f64,
    check: u64,
    gcs: u64,
    #[serde(default)]
    pause_max_ns: u64,
    #[serde(default)]
    ttsp_max_ns: u64,
    #[serde(default)]
    longest_wait_ns: u64,
    #[serde(default)]
    gc_cpu_ns: u64,
}

/// One run of one case in one column.
#[derive(Debug, Default, Clone, Serialize)]
pub struct CRun {
    /// Wall seconds, as the program measured them (start-up included).
    pub wall_s: f64,
    /// Peak RSS.
    pub max_rss_bytes: u64,
    /// Minor page faults.
    pub minor_faults: u64,
    /// Collections (Tandem: pauses; libgc: GC_get_gc_no).
    pub gcs: u64,
    /// Longest pause (Tandem only).
    pub pause_max_ns: u64,
    /// Longest time to safepoint, the part of a pause spent waiting for the mutators to
    /// stop (Tandem only).
    pub ttsp_max_ns: u64,
    /// Longest wait on the collector (Tandem only).
    pub longest_wait_ns: u64,
    /// CPU time of the collector's threads and the assists (Tandem only).
    pub gc_cpu_ns: u64,
    /// Why the run failed.
    pub error: Option<String>,
}

/// Medians over one column's runs.
#[derive(Debug, Default, Clone, Serialize)]
pub struct CSummary {
    /// Successful runs.
    pub ok_runs: usize,
    /// Median wall seconds.
    pub wall_s: f64,
    /// Median peak RSS.
    pub max_rss_bytes: u64,
    /// Median minor faults.
    pub minor_faults: u64,
    /// Median collections.
    pub gcs: u64,
    /// Longest pause of any run, microseconds.
    pub pause_max_us: f64,
    /// Longest time to safepoint of any run, microseconds.
    pub ttsp_max_us: f64,
    /// Longest wait of any run, microseconds.
    pub longest_wait_us: f64,
    /// Median CPU time of the collector's threads and the assists, seconds (Tandem only).
    pub gc_cpu_s: f64,
    /// The failures' messages.
    pub errors: Vec<String>,
}

impl CSummary {
    fn of(runs: &[CRun]) -> CSummary {
        let ok: Vec<&CRun> = runs.iter().filter(|r| r.error.is_none()).collect();
        let med = |g: &dyn Fn(&CRun) -> f64| median(&ok.iter().map(|r| g(r)).collect::<Vec<_>>());
        CSummary {
            ok_runs: ok.len(),
            wall_s: med(&|r| r.wall_s),
            max_rss_bytes: med(&|r| r.max_rss_bytes as f64) as u64,
            minor_faults: med(&|r| r.minor_faults as f64) as u64,
            gcs: med(&|r| r.gcs as f64) as u64,
            pause_max_us: ok.iter().map(|r| r.pause_max_ns).max().unwrap_or(0) as f64 / 1e3,
            ttsp_max_us: ok.iter().map(|r| r.ttsp_max_ns).max().unwrap_or(0) as f64 / 1e3,
            longest_wait_us: ok.iter().map(|r| r.longest_wait_ns).max().unwrap_or(0) as f64 / 1e3,
            gc_cpu_s: med(&|r| r.gc_cpu_ns as f64 / 1e9),
            errors: runs.iter().filter_map(|r| r.error.clone()).collect(),
        }
    }
}

/// One case's results.
#[derive(Debug, Clone, Serialize)]
pub struct CReport {
    /// The case.
    pub case: CCase,
    /// Per column of [`COLUMNS`]; None where that column could not run.
    pub columns: Vec<Option<CSummary>>,
    /// The bench's own libgc median wall time for `case.harness_case`, over this case's
    /// plain-C libgc median (1.0: the harness costs libgc nothing).
    pub harness_over_plain_c: Option<f64>,
}

/// Whether the C clients could be built, per side.
#[derive(Debug, Clone, Serialize)]
pub struct CStatus {
    /// Why the Tandem clients did not build, if they did not.
    pub tandem_error: Option<String>,
    /// Why the libgc clients did not build (no `gc.h`, for instance), if they did not.
    pub libgc_error: Option<String>,
}

/// The C clients' part of the report.
#[derive(Debug, Clone, Serialize)]
pub struct CClients {
    /// Whether each side built.
    pub status: CStatus,
    /// One entry per case.
    pub cases: Vec<CReport>,
    /// The space-time curves: each case in each Tandem mode at each growth factor.
    pub space_time: Vec<SpaceTimePoint>,
    /// Each case in concurrent mode at each `TANDEM_EVACUATION` setting.
    pub evacuation: Vec<EvacuationPoint>,
    /// The load-barrier probe, when it ran.
    pub load_barrier: Option<load_barrier::LoadBarrier>,
}

/// One point of a space-time curve: a case in one Tandem mode with `TANDEM_GC_GROWTH` at
/// `growth` (nothing else changed from the case's column).
#[derive(Debug, Clone, Serialize)]
pub struct SpaceTimePoint {
    /// The case's name.
    pub case: String,
    /// `tandem-concurrent` or `tandem-stw`.
    pub column: &'static str,
    /// The growth factor.
    pub growth: f64,
    /// Medians over its runs.
    pub summary: CSummary,
}

/// The growth factors the space-time curves sweep.
pub fn growths(suite: Suite) -> &'static [f64] {
    match suite {
        Suite::Smoke => &[2.0, 3.0],
        _ => &[1.5, 2.0, 2.5, 3.0, 4.0, 6.0],
    }
}

/// The clients, built under a folder.
pub struct Built {
    tandem: build::Clients,
    libgc: build::Clients,
}

impl Built {
    /// Builds the clients under `dir`.
    pub fn new(dir: &Path) -> Built {
        let (tandem, libgc) = build::build(dir);
        Built { tandem, libgc }
    }
}

/// A run's outcome as a progress line.
fn describe(case: &CCase, what: &str, run: usize, r: &CRun) -> String {
    match &r.error {
        None => format!(
            "{} {what} run {}: {:.2} s, RSS {} MiB, {} minor faults",
            case.name,
            run + 1,
            r.wall_s,
            r.max_rss_bytes >> 20,
            r.minor_faults
        ),
        Some(e) => format!("{} {what} run {}: FAILED: {e}", case.name, run + 1),
    }
}

/// One case in concurrent mode with `TANDEM_EVACUATION` at one setting (nothing else
/// changed from the case's column): what the load barrier and evacuation cost or save.
#[derive(Debug, Clone, Serialize)]
pub struct EvacuationPoint {
    /// The case's name.
    pub case: String,
    /// The `TANDEM_EVACUATION` setting.
    pub mode: String,
    /// Medians over its runs.
    pub summary: CSummary,
}

/// Runs of the Tandem clients with one `TANDEM_*` variable swept, `runs` times per value.
pub struct Sweep<'a> {
    /// The compiled clients.
    pub built: &'a Built,
    /// The cases to run.
    pub cases: &'a [CCase],
    /// Runs per point.
    pub runs: usize,
    /// GC threads.
    pub gc_threads: usize,
    /// Time limit per run.
    pub timeout: Duration,
}

/// One case in one column with the swept variable at one value.
struct SweepPoint {
    case: String,
    column: &'static str,
    value: String,
    summary: CSummary,
}

impl Sweep<'_> {
    /// Every case in both Tandem modes at every growth factor (the curve of wall time
    /// against peak RSS from which the default growth is chosen).
    pub fn space_time(
        &self,
        growths: &[f64],
        report: impl FnMut(String, bool),
    ) -> Vec<SpaceTimePoint> {
        let values: Vec<String> = growths.iter().map(f64::to_string).collect();
        self.run(&COLUMNS[..2], "TANDEM_GC_GROWTH", &values, report)
            .into_iter()
            .map(|p| SpaceTimePoint {
                case: p.case,
                column: p.column,
                growth: p.value.parse().expect("written from an f64"),
                summary: p.summary,
            })
            .collect()
    }

    /// Every case in concurrent mode at each `TANDEM_EVACUATION` setting of `modes`.
    pub fn evacuation(
        &self,
        modes: &[&str],
        report: impl FnMut(String, bool),
    ) -> Vec<EvacuationPoint> {
        let values: Vec<String> = modes.iter().map(|m| m.to_string()).collect();
        self.run(&COLUMNS[..1], "TANDEM_EVACUATION", &values, report)
            .into_iter()
            .map(|p| EvacuationPoint {
                case: p.case,
                mode: p.value,
                summary: p.summary,
            })
            .collect()
    }

    /// Each case in each of `columns` (a prefix of [`COLUMNS`]) with `var` at each of
    /// `values`; `report(line)` hears
    /// each run's outcome. Nothing when the Tandem clients did not build.
    fn run(
        &self,
        columns: &[&'static str],
        var: &str,
        values: &[String],
        mut report: impl FnMut(String, bool),
    ) -> Vec<SweepPoint> {
        let Ok(paths) = &self.built.tandem else {
            return Vec::new();
        };
        let mut points = Vec::new();
        for case in self.cases {
            for (col, &column) in columns.iter().enumerate() {
                for value in values {
                    let results: Vec<CRun> = (0..self.runs)
                        .map(|run| {
                            let r = run_one(
                                paths.of(case.program),
                                case,
                                col,
                                self.gc_threads,
                                self.timeout,
                                Some((var, value)),
                            );
                            let what = format!("{column} {var}={value}");
                            report(describe(case, &what, run, &r), r.error.is_none());
                            r
                        })
                        .collect();
                    points.push(SweepPoint {
                        case: case.name.clone(),
                        column,
                        value: value.clone(),
                        summary: CSummary::of(&results),
                    });
                }
            }
        }
        points
    }
}

/// Runs `cases` `runs` times per column, alternating the column order between runs.
/// `report(line)` hears each run's outcome.
pub fn run_all(
    built: &Built,
    cases: &[CCase],
    runs: usize,
    gc_threads: usize,
    timeout: Duration,
    mut report: impl FnMut(String, bool),
) -> (CStatus, Vec<CReport>) {
    let (tandem, libgc) = (&built.tandem, &built.libgc);
    let status = CStatus {
        tandem_error: tandem.as_ref().err().cloned(),
        libgc_error: libgc.as_ref().err().cloned(),
    };
    let mut out = Vec::new();
    for case in cases {
        let mut results: Vec<Vec<CRun>> = vec![Vec::new(); COLUMNS.len()];
        for run in 0..runs {
            let mut order: Vec<usize> = (0..COLUMNS.len()).collect();
            if run % 2 == 1 {
                order.reverse();
            }
            for col in order {
                let clients = if col == 2 { libgc } else { tandem };
                let Ok(paths) = clients else { continue };
                let r = run_one(paths.of(case.program), case, col, gc_threads, timeout, None);
                report(describe(case, COLUMNS[col], run, &r), r.error.is_none());
                results[col].push(r);
            }
        }
        let columns = results
            .iter()
            .enumerate()
            .map(|(col, runs)| {
                let built = if col == 2 {
                    libgc.is_ok()
                } else {
                    tandem.is_ok()
                };
                built.then(|| CSummary::of(runs))
            })
            .collect();
        out.push(CReport {
            case: case.clone(),
            columns,
            harness_over_plain_c: None,
        });
    }
    (status, out)
}

/// Runs `exe` once for `case` in column `col`, with `setting` (a Tandem variable and its
/// value) if given.
fn run_one(
    exe: &Path,
    case: &CCase,
    col: usize,
    gc_threads: usize,
    timeout: Duration,
    setting: Option<(&str, &str)>,
) -> CRun {
    let mut cmd = Command::new(exe);
    cmd.args(&case.args)
        .env("TANDEM_THREADS", gc_threads.to_string())
        .env("GC_MARKERS", gc_threads.to_string());
    if col < 2 {
        cmd.env("TANDEM_MODE", if col == 0 { "concurrent" } else { "stw" });
        if let Some(max) = case.tandem_heap_max {
            cmd.env("TANDEM_HEAP_MAX", max);
        }
        if let Some((var, value)) = setting {
            cmd.env(var, value);
        }
    }
    let done = match process::run_command(cmd, timeout) {
        Ok(d) => d,
        Err(e) => {
            return CRun {
                error: Some(e),
                ..Default::default()
            }
        }
    };
    let mut r = CRun {
        max_rss_bytes: done.max_rss_bytes,
        minor_faults: done.minor_faults,
        error: done.failure(timeout),
        ..Default::default()
    };
    match done.json_line::<Printed>() {
        Some(Ok(p)) => {
            r.wall_s = p.wall_s;
            r.gcs = p.gcs;
            r.pause_max_ns = p.pause_max_ns;
            r.ttsp_max_ns = p.ttsp_max_ns;
            r.longest_wait_ns = p.longest_wait_ns;
            r.gc_cpu_ns = p.gc_cpu_ns;
            if p.check == 0 && r.error.is_none() {
                r.error = Some("the program checked nothing".into());
            }
        }
        _ if r.error.is_some() => {}
        _ => {
            r.error = Some(format!(
                "no result line in its output: {}",
                done.stdout.trim()
            ))
        }
    }
    r
}
