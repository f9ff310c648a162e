//! `tandem-stress`: multithreaded workloads that stress the Tandem collector and check the
//! heap as they go, and `tandem-stress bench`, which runs benchmark workloads on Tandem and
//! on the Boehm collector side by side. Exit status: 0 when every check passed, 1 when a
//! workload check or the collector's verification failed (or a benchmark run failed), 2
//! for a bad option or environment variable. A closed stdout or stderr (`| head -1`) is
//! not an error: the output is dropped ([`stdio`]) and the status is the run's.
#![warn(missing_docs, unsafe_op_in_unsafe_fn)]

// First, so that its `outln!` and `errln!` are in scope in the modules below.
#[macro_use]
mod stdio;

mod bench;
mod checksum;
mod cli;
mod collector;
mod failure;
mod heap_summary;
mod report;
mod rng;
mod runner;
mod workloads;

use clap::Parser;
use cli::{Cli, Command, Workload};
use collector::tandem::TandemCollector;
use failure::Fallible;
use report::Report;
use runner::Run;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Instant;
use tandem::{ByteSize, Config, Heap};
use workloads::objects::{self, Checks};
use workloads::{binary_trees, graph, large, Outcome};

/// Exit status for a failed check or verification.
pub(crate) const EXIT_FAILED: u8 = 1;
/// Exit status for a bad option or environment variable.
pub(crate) const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = init_tracing() {
        errln!("tandem-stress: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    match &cli.command {
        Command::Workload(w) => stress(w),
        Command::Bench(args) => bench::main(args),
        Command::BenchOne(args) => bench::one(args),
        Command::HeapSummary { dump } => heap_summary::main(dump),
    }
}

/// Runs one stress workload on Tandem, with checked objects and the verify hook, and
/// reports.
fn stress(workload: &Workload) -> ExitCode {
    let heap = match make_heap(workload.run_args().heap_max) {
        Ok(h) => h,
        Err(e) => {
            errln!("tandem-stress: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let c = match TandemCollector::new(heap) {
        Ok(c) => c,
        Err(e) => {
            errln!("tandem-stress: cannot register the object types: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    c.set_verify_hook(objects::verify);

    let run = Run::new(workload.run_args().budget());
    let start = Instant::now();
    let result = run_workload(&c, &run, workload);
    let wall_s = start.elapsed().as_secs_f64();
    let failures = match result {
        Ok(outcome) => {
            tracing::info!(checked = outcome.checked, "workload done");
            Vec::new()
        }
        Err(f) => f.messages(),
    };

    let report = build_report(c.heap(), workload, run.work(), failures, wall_s);
    outln!("{}", report.summary());
    for f in &report.failures {
        errln!("tandem-stress: {f}");
    }
    for m in &report.verify_messages {
        errln!("tandem-stress: verify: {m}");
    }
    if workload.run_args().json {
        outln!("{}", report.json());
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    }
}

/// Logs to stderr with the filter in `TANDEM_LOG` (default `warn`); a closed stderr drops
/// the log lines (they are written from GC threads, which must not fail on them).
fn init_tracing() -> Result<(), String> {
    let spec = std::env::var("TANDEM_LOG")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "warn".into());
    let filter = tracing_subscriber::EnvFilter::try_new(&spec)
        .map_err(|e| format!("TANDEM_LOG={spec:?} is not a valid filter: {e}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(stdio::QuietStderr)
        .log_internal_errors(false)
        .init();
    Ok(())
}

/// The heap: defaults, `--heap-max`, then the `TANDEM_*` environment over both.
fn make_heap(heap_max: Option<usize>) -> tandem::Result<Heap> {
    let mut config = Config::default();
    if let Some(max) = heap_max {
        config.heap_max = ByteSize(max);
        config.heap_min = config.heap_min.min(ByteSize(max));
    }
    Heap::new(config)
}

/// The stress runs' objects are all checked (the verify hook checks every one).
fn run_workload(c: &TandemCollector, run: &Run, w: &Workload) -> Fallible<Outcome> {
    let args = w.run_args();
    let threads = args.threads as usize;
    match *w {
        Workload::BinaryTrees { depth, .. } => {
            let p = binary_trees::Params { depth, threads };
            binary_trees::run(c, &p, run, Checks::On)
        }
        Workload::Graph {
            slots,
            corrupt_shared_array,
            ..
        } => {
            let p = graph::Params {
                slots: slots as usize,
                threads,
                seed: args.seed,
                corrupt_shared_array,
            };
            graph::run(c, &p, run)
        }
        Workload::Large { max_size, keep, .. } => {
            let p = large::Params {
                max_bytes: max_size,
                keep: keep as usize,
                threads,
                seed: args.seed,
            };
            large::run(c, &p, run, Checks::On)
        }
    }
}

fn build_report(
    heap: &Heap,
    w: &Workload,
    work: u64,
    failures: Vec<String>,
    wall_s: f64,
) -> Report {
    let stats = heap.stats();
    Report {
        workload: w.name(),
        threads: w.run_args().threads,
        gc_threads: heap.config().threads,
        mode: match heap.config().mode {
            tandem::Mode::Stw => "stw",
            tandem::Mode::Concurrent => "concurrent",
        },
        gcs: stats.gcs,
        cycles: stats.cycles,
        nursery_cycles: stats.nursery_cycles,
        pause_us: report::pause_percentiles(&stats),
        pause_us_by_kind: report::pause_percentiles_by_kind(&stats),
        stall_us_total: (stats.stall_ns as f64 / 100.0).round() / 10.0,
        longest_wait_us: (stats.longest_wait_ns() as f64 / 100.0).round() / 10.0,
        concurrent_mark_s: stats.concurrent_mark_ns as f64 / 1e9,
        concurrent_sweep_s: stats.concurrent_sweep_ns as f64 / 1e9,
        ttsp_us_max: (stats.ttsp_max_ns as f64 / 100.0).round() / 10.0,
        gc_cpu_s: stats.gc_cpu_ns() as f64 / 1e9,
        mutator_stop_us: report::mutator_stops(&stats),
        allocated_bytes: stats.bytes_allocated,
        wall_s: (wall_s * 1000.0).round() / 1000.0,
        peak_heap_bytes: stats.heap_peak,
        process: report::ProcessUsage::of_self(),
        verify_errors: stats.verify_errors,
        verify: heap.config().verify,
        heap_max_bytes: heap.config().heap_max.0,
        work,
        out_of_memory: stats.out_of_memory,
        failures,
        verify_messages: stats.verify_messages,
    }
}
