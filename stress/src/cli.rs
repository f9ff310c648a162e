//! The command line: `tandem-stress <workload> [options]`, or `tandem-stress bench`.

use crate::bench::{BenchArgs, BenchOneArgs};
use crate::runner::Budget;
use clap::{Args, Parser, Subcommand};
use std::time::Duration;

/// Multithreaded stress workloads for the Tandem garbage collector.
///
/// Runtime options come from TANDEM_* environment variables (they override --heap-max);
/// TANDEM_VERIFY=1 checks every reachable object's checksum after each GC, and TANDEM_LOG
/// sets the log filter (default `warn`).
#[derive(Debug, Parser)]
#[command(name = "tandem-stress", version)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// A stress workload, or the benchmark.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// A stress workload.
    #[command(flatten)]
    Workload(Workload),
    /// Benchmarks: every workload on Tandem and on the Boehm collector (libgc, when
    /// installed; TANDEM_STRESS_LIBGC=off skips it), with medians, ratios, pause percentiles,
    /// scaling, a table, report.json and SVG plots.
    Bench(BenchArgs),
    /// Sums a heap dump (written by `Heap::dump_heap` or `tandem_dump_heap`) by type.
    HeapSummary {
        /// The dump file.
        dump: std::path::PathBuf,
    },
    /// One benchmark run in a child process (used by `bench`).
    #[command(hide = true)]
    BenchOne(BenchOneArgs),
}

/// A workload and its options.
#[derive(Debug, Subcommand)]
pub enum Workload {
    /// binary-trees (Benchmarks Game), its short-lived trees shared out among the threads,
    /// with item checks.
    BinaryTrees {
        /// Common options.
        #[command(flatten)]
        run: RunArgs,
        /// Depth of the long-lived tree; short-lived trees have depths 4, 6, .., DEPTH.
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(4..=28))]
        depth: u32,
    },
    /// Threads allocating, linking and overwriting pointers in one shared graph.
    Graph {
        /// Common options.
        #[command(flatten)]
        run: RunArgs,
        /// Number of shared nodes (slots of the global array).
        #[arg(long, default_value_t = 65536, value_parser = clap::value_parser!(u64).range(1..=1 << 24))]
        slots: u64,
        /// Test hook: corrupt the shared array's id, which only the verifier and the final
        /// check read, to prove that they catch it.
        #[arg(long, hide = true)]
        corrupt_shared_array: bool,
    },
    /// Large byte, word and reference arrays (large-object space), most dropped at once.
    Large {
        /// Common options.
        #[command(flatten)]
        run: RunArgs,
        /// Largest array payload in bytes (K, M suffixes allowed).
        #[arg(long, default_value = "256K", value_parser = parse_size_arg)]
        max_size: usize,
        /// Objects each thread keeps live (up to roughly KEEP * MAX_SIZE bytes per thread).
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
        keep: u64,
    },
}

impl Workload {
    /// The workload's name as typed on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Workload::BinaryTrees { .. } => "binary-trees",
            Workload::Graph { .. } => "graph",
            Workload::Large { .. } => "large",
        }
    }

    /// The options every workload shares.
    pub fn run_args(&self) -> &RunArgs {
        match self {
            Workload::BinaryTrees { run, .. }
            | Workload::Graph { run, .. }
            | Workload::Large { run, .. } => run,
        }
    }
}

/// Options every workload shares.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Mutator threads.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub threads: u64,
    /// Run for this many seconds (default 3).
    #[arg(long, conflicts_with = "iterations", value_parser = parse_seconds)]
    pub seconds: Option<f64>,
    /// Run this many iterations per thread instead (an operation for graph, an allocation
    /// for large; for binary-trees, a whole program, which the threads share).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub iterations: Option<u64>,
    /// Maximum heap size, e.g. 64M (TANDEM_HEAP_MAX overrides it).
    #[arg(long, value_parser = parse_size_arg)]
    pub heap_max: Option<usize>,
    /// Seed for the workloads' random choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// End the output with one line of JSON.
    #[arg(long)]
    pub json: bool,
}

/// The default run time.
pub const DEFAULT_SECONDS: f64 = 3.0;

impl RunArgs {
    /// How long each thread runs.
    pub fn budget(&self) -> Budget {
        match self.iterations {
            Some(n) => Budget::Iterations(n),
            None => Budget::Time(Duration::from_secs_f64(
                self.seconds.unwrap_or(DEFAULT_SECONDS),
            )),
        }
    }
}

fn parse_size_arg(s: &str) -> Result<usize, String> {
    tandem::config::parse_size(s)
        .ok_or_else(|| format!("{s:?} is not a size: expected digits with K, M or G, e.g. 64M"))
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() && v < 1e9 => Ok(v),
        _ => Err(format!("{s:?} is not a positive number of seconds")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn seconds_and_iterations_conflict() {
        let r = Cli::try_parse_from(["t", "graph", "--seconds", "1", "--iterations", "5"]);
        assert!(r.is_err());
    }

    #[test]
    fn heap_max_takes_suffixes() {
        let c = Cli::try_parse_from(["t", "large", "--heap-max", "64M", "--json"]).unwrap();
        let Command::Workload(w) = c.command else {
            panic!("`large` is a workload")
        };
        assert_eq!(w.run_args().heap_max, Some(64 << 20));
        assert!(w.run_args().json);
    }

    #[test]
    fn bench_takes_quick_out_and_runs() {
        let c =
            Cli::try_parse_from(["t", "bench", "--quick", "--out", "d", "--runs", "3"]).unwrap();
        let Command::Bench(b) = c.command else {
            panic!("`bench` is the benchmark")
        };
        assert!(b.quick && !b.smoke);
        assert_eq!(b.out, std::path::PathBuf::from("d"));
        assert_eq!(b.runs, Some(3));
    }
}
