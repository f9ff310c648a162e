//! The child process: `tandem-stress bench-one --collector C --spec JSON` runs one case on
//! one collector and prints one JSON line, a [`RunRecord`]. The driver adds what only the
//! parent can see (peak RSS, CPU time and page faults from `wait4`).

use super::spec::Spec;
use crate::collector::boehm::BoehmCollector;
use crate::collector::tandem::TandemCollector;
use crate::collector::{Collector, GcStats};
use crate::runner::{Budget, Run};
use crate::workloads::objects::Checks;
use crate::workloads::{self, Outcome};
use serde::{Deserialize, Serialize};
use std::process::ExitCode;
use std::time::Instant;
use tandem::{ByteSize, Config, Heap};

/// One run of one case on one collector.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunRecord {
    /// `tandem` or `boehm`.
    pub collector: String,
    /// The error that ended the run, if any.
    pub error: Option<String>,
    /// Wall time of the workload (collector set-up excluded), seconds.
    pub wall_s: f64,
    /// What the workload checked and its live set.
    pub outcome: Outcome,
    /// What the collector measured.
    pub stats: GcStats,
    /// Peak resident set of the whole process, bytes (from the parent's `wait4`).
    #[serde(default)]
    pub max_rss_bytes: u64,
    /// User plus system CPU time of the whole process, seconds (from `wait4`).
    #[serde(default)]
    pub cpu_s: f64,
    /// Minor page faults of the whole process (from `wait4`): mostly first touches of fresh
    /// or returned memory.
    #[serde(default)]
    pub minor_faults: u64,
    /// Major page faults (needing I/O) of the whole process (from `wait4`).
    #[serde(default)]
    pub major_faults: u64,
}

/// Runs `spec` on `collector` and prints the record; exit 1 if the run failed.
pub fn main(collector: &str, spec: &str) -> ExitCode {
    let spec: Spec = match serde_json::from_str(spec) {
        Ok(s) => s,
        Err(e) => {
            errln!("tandem-stress bench-one: bad --spec: {e}");
            return ExitCode::from(2);
        }
    };
    let record = match collector {
        "tandem" => {
            let mut config = Config::default();
            if let Spec::Mark(p) = &spec {
                config.heap_max = ByteSize(config.heap_max.0.max((p.live_mb << 20) * 4));
            }
            match Heap::new(config).and_then(TandemCollector::new) {
                Ok(c) => run(&c, &spec, collector),
                Err(e) => failed(collector, format!("cannot create the Tandem heap: {e}")),
            }
        }
        "boehm" => match BoehmCollector::new() {
            Ok(c) => run(&c, &spec, collector),
            Err(e) => failed(collector, format!("libgc is not available: {e}")),
        },
        other => {
            errln!("tandem-stress bench-one: unknown collector {other:?}");
            return ExitCode::from(2);
        }
    };
    outln!(
        "{}",
        serde_json::to_string(&record).expect("a record serialises")
    );
    if record.error.is_some() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn failed(collector: &str, error: String) -> RunRecord {
    RunRecord {
        collector: collector.into(),
        error: Some(error),
        ..Default::default()
    }
}

fn run<C: Collector>(c: &C, spec: &Spec, collector: &str) -> RunRecord {
    let start = Instant::now();
    // The bench's runs are fixed in size, and its objects plain where a workload lets
    // them be (the published programs' objects carry no checksums).
    let result = match spec {
        Spec::BinaryTrees(p) => workloads::binary_trees::run(c, p, &Run::once(), Checks::Off),
        Spec::Gcbench(p) => workloads::gcbench::run(c, p),
        Spec::Graph(g) => workloads::graph::run(c, &g.params, &count(g.ops)),
        Spec::Pypy(p) => workloads::pypy::run(c, p),
        Spec::Large(l) => workloads::large::run(c, &l.params, &count(l.allocs), Checks::Off),
        Spec::Mark(p) => workloads::mark::run(c, p),
        Spec::Ttsp(p) => workloads::ttsp::run(c, p),
    };
    let wall_s = start.elapsed().as_secs_f64();
    let stats = c.stats();
    let (outcome, error) = match result {
        Ok(o) => (o, None),
        Err(e) => (Outcome::default(), Some(e.to_string())),
    };
    RunRecord {
        collector: collector.into(),
        error,
        wall_s,
        outcome,
        stats,
        ..Default::default()
    }
}

/// A run of `n` iterations per thread.
fn count(n: u64) -> Run {
    Run::new(Budget::Iterations(n))
}
