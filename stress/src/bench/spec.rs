//! What the benchmark runs: each case is a workload with its sizes and thread counts, for
//! three suites (`--smoke` for the test, `--quick`, and the full default).

use crate::workloads::mark::{self, Shape};
use crate::workloads::{binary_trees, gcbench, graph, large, pypy, ttsp};
use serde::{Deserialize, Serialize};

/// The seed of the bench's graph and large runs (the stress runs' default too).
const SEED: u64 = 1;

/// The graph case: the workload's parameters and the operations each thread runs.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct GraphCase {
    /// The workload's parameters.
    #[serde(flatten)]
    pub params: graph::Params,
    /// Operations per thread.
    pub ops: u64,
}

/// The large case: the workload's parameters and the allocations each thread makes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct LargeCase {
    /// The workload's parameters.
    #[serde(flatten)]
    pub params: large::Params,
    /// Allocations per thread.
    pub allocs: u64,
}

/// A workload and its sizes, as passed to the child process (one JSON object).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "workload", rename_all = "kebab-case")]
pub enum Spec {
    /// binary-trees.
    BinaryTrees(binary_trees::Params),
    /// GCBench.
    Gcbench(gcbench::Params),
    /// The mutation-heavy shared graph.
    Graph(GraphCase),
    /// pypy-like churn over a live set of containers.
    Pypy(pypy::Params),
    /// Large-object churn.
    Large(LargeCase),
    /// Marking throughput on a fixed live graph.
    Mark(mark::Params),
    /// Time-to-safepoint with many mutators.
    Ttsp(ttsp::Params),
}

impl Spec {
    /// Mutator threads.
    pub fn threads(&self) -> usize {
        match self {
            Spec::BinaryTrees(p) => p.threads,
            Spec::Gcbench(p) => p.threads,
            Spec::Graph(p) => p.params.threads,
            Spec::Pypy(p) => p.threads,
            Spec::Large(p) => p.params.threads,
            Spec::Mark(_) => 1,
            Spec::Ttsp(p) => p.mutators,
        }
    }

    /// The sizes, in words, for the printed plan.
    pub fn sizes(&self) -> String {
        match self {
            Spec::BinaryTrees(p) => format!("depth {}, short-lived trees shared out", p.depth),
            Spec::Gcbench(p) => format!(
                "stretch depth {}, long-lived depth {}, {} doubles, trees up to depth {}, {} \
                 independent cop{}",
                p.stretch_depth,
                p.long_lived_depth,
                p.array_size,
                p.max_depth,
                p.threads,
                if p.threads == 1 { "y" } else { "ies" }
            ),
            Spec::Graph(p) => format!(
                "{} shared nodes, {} operations per thread",
                p.params.slots, p.ops
            ),
            Spec::Pypy(p) => format!(
                "live set {} MiB of dicts and lists, {} operations per thread",
                p.live_mb, p.ops
            ),
            Spec::Large(p) => format!(
                "arrays 8 KiB..{} KiB, {} kept per thread, {} allocations per thread",
                p.params.max_bytes >> 10,
                p.params.keep,
                p.allocs
            ),
            Spec::Mark(p) => format!(
                "live {} of {} MiB, {} measured collections",
                p.shape.label(),
                p.live_mb,
                p.collections
            ),
            Spec::Ttsp(p) => format!("{} trees of depth {} in all", p.trees, p.depth),
        }
    }
}

/// One benchmark case.
#[derive(Debug, Clone)]
pub struct Case {
    /// Name in tables and file names, e.g. `binary-trees/d16/t2`.
    pub name: String,
    /// What to run.
    pub spec: Spec,
    /// GC threads (Tandem workers and libgc markers) for this case, if not the default.
    pub gc_threads: Option<usize>,
    /// Extra environment for the child process.
    pub env: Vec<(String, String)>,
}

impl Case {
    fn new(name: String, spec: Spec) -> Case {
        Case {
            name,
            spec,
            gc_threads: None,
            env: Vec::new(),
        }
    }
}

/// Which suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Suite {
    /// Tiny sizes for the smoke test (seconds, debug builds included).
    Smoke,
    /// Small sizes: minutes on two cores.
    Quick,
    /// The stated sizes.
    Full,
}

/// Thread counts 1, 2, 4, .. up to and including `n`.
fn up_to(n: usize) -> Vec<usize> {
    let mut v: Vec<usize> = std::iter::successors(Some(1usize), |&t| Some(t * 2))
        .take_while(|&t| t < n)
        .collect();
    v.push(n.max(1));
    v
}

/// The workload cases of `suite` for a machine with `cores` cores.
pub fn workloads(suite: Suite, cores: usize) -> Vec<Case> {
    let n = cores.max(1);
    let mut cases = Vec::new();
    let bt = |depth: u32, threads: usize| {
        Case::new(
            format!("binary-trees/d{depth}/t{threads}"),
            Spec::BinaryTrees(binary_trees::Params { depth, threads }),
        )
    };
    match suite {
        Suite::Smoke => cases.push(bt(12, n.min(2))),
        Suite::Quick => {
            cases.push(bt(14, 1));
            for depth in [16, 18] {
                for t in up_to(n) {
                    cases.push(bt(depth, t));
                }
            }
        }
        Suite::Full => {
            for t in up_to(n) {
                cases.push(bt(18, t));
            }
            // Depth 18 at N threads is the last of the thread sweep above.
            for depth in (16..=21).filter(|&d| d != 18) {
                cases.push(bt(depth, n));
            }
            cases.sort_by_key(|c| match &c.spec {
                Spec::BinaryTrees(p) => (p.depth, p.threads),
                _ => (0, 0),
            });
        }
    }
    let gc = |threads: usize, p: gcbench::Params| {
        Case::new(format!("gcbench/t{threads}"), Spec::Gcbench(p))
    };
    match suite {
        Suite::Smoke => cases.push(gc(
            1,
            gcbench::Params {
                stretch_depth: 14,
                long_lived_depth: 12,
                array_size: 50_000,
                max_depth: 12,
                threads: 1,
            },
        )),
        Suite::Quick | Suite::Full => {
            cases.push(gc(1, gcbench::Params::classic(1)));
            if n > 1 {
                cases.push(gc(n, gcbench::Params::classic(n)));
            }
        }
    }
    let (slots, ops) = match suite {
        Suite::Smoke => (4096, 50_000),
        Suite::Quick => (65_536, 4_000_000),
        Suite::Full => (262_144, 3_000_000),
    };
    cases.push(Case::new(
        format!("graph/t{n}"),
        Spec::Graph(GraphCase {
            params: graph::Params {
                slots,
                threads: n,
                seed: SEED,
                corrupt_shared_array: false,
            },
            ops,
        }),
    ));
    let (live_mb, ops) = match suite {
        Suite::Smoke => (4, 30_000),
        Suite::Quick => (48, 3_000_000),
        Suite::Full => (100, 3_000_000),
    };
    cases.push(Case::new(
        format!("pypy/{live_mb}M/t{n}"),
        Spec::Pypy(pypy::Params {
            live_mb,
            ops,
            threads: n,
        }),
    ));
    let (max_bytes, allocs) = match suite {
        Suite::Smoke => (64 << 10, 2_000),
        Suite::Quick => (256 << 10, 50_000),
        Suite::Full => (256 << 10, 200_000),
    };
    cases.push(Case::new(
        format!("large/t{n}"),
        Spec::Large(LargeCase {
            params: large::Params {
                max_bytes,
                keep: 16,
                threads: n,
                seed: SEED,
            },
            allocs,
        }),
    ));
    cases
}

/// The settings of `TANDEM_EVACUATION` the evacuation sweep compares, default last.
pub const EVACUATION_MODES: [&str; 3] = ["off", "pause", "concurrent"];

/// Evacuation cases: the workloads whose survivors scatter over the heap (graph, pypy), once
/// per [`EVACUATION_MODES`] setting, named `<workload> evacuation=<mode>`; Tandem only.
pub fn evacuation_cases(suite: Suite, cores: usize) -> Vec<(Case, &'static str)> {
    let scattered = workloads(suite, cores)
        .into_iter()
        .filter(|c| matches!(c.spec, Spec::Graph(_) | Spec::Pypy(_)));
    scattered
        .flat_map(|c| {
            EVACUATION_MODES.iter().map(move |&mode| {
                let mut case = c.clone();
                case.name = format!("{} evacuation={mode}", c.name);
                case.env.push(("TANDEM_EVACUATION".into(), mode.into()));
                (case, mode)
            })
        })
        .collect()
}

/// Marking-throughput cases: one per shape and GC thread count, stop-the-world (so that
/// Tandem's marking is one timed phase of one pause).
pub fn mark_cases(suite: Suite) -> Vec<Case> {
    let (live_mb, depth, workers): (usize, u32, &[usize]) = match suite {
        Suite::Smoke => (4, 14, &[1, 2]),
        Suite::Quick => (64, 21, &[1, 2, 4, 8]),
        Suite::Full => (256, 21, &[1, 2, 4, 8, 16]),
    };
    // A tree of depth d holds 2^(d+1) - 1 nodes of 24 bytes.
    let tree_mb = ((3usize << (depth + 4)) >> 20).max(1);
    let case = |name: String, live_mb, shape, w| Case {
        name,
        spec: Spec::Mark(mark::Params {
            live_mb,
            collections: 3,
            shape,
        }),
        gc_threads: Some(w),
        env: vec![("TANDEM_MODE".into(), "stw".into())],
    };
    let graphs = workers
        .iter()
        .map(|&w| case(format!("mark/{live_mb}M/w{w}"), live_mb, Shape::Graph, w));
    let trees = workers.iter().map(|&w| {
        let name = format!("mark/tree{depth}/w{w}");
        case(name, tree_mb, Shape::Tree(depth), w)
    });
    graphs.chain(trees).collect()
}

/// Time-to-safepoint cases: one per mutator count, from one to oversubscribed.
pub fn ttsp_cases(suite: Suite) -> Vec<Case> {
    let (trees, mutators): (u64, &[usize]) = match suite {
        Suite::Smoke => (2_000, &[1, 8]),
        Suite::Quick => (100_000, &[1, 4, 16, 64]),
        Suite::Full => (100_000, &[1, 2, 4, 8, 16, 32, 64]),
    };
    mutators
        .iter()
        .map(|&m| {
            Case::new(
                format!("ttsp/m{m}"),
                Spec::Ttsp(ttsp::Params {
                    mutators: m,
                    trees,
                    depth: 8,
                }),
            )
        })
        .collect()
}

/// One line on what a workload is, for the printed plan and the report.
pub fn description(spec: &Spec) -> &'static str {
    match spec {
        Spec::BinaryTrees(_) => "Benchmarks Game binary-trees: many short-lived trees, one long-lived",
        Spec::Gcbench(_) => "Ellis-Kovac-Boehm GCBench: top-down and bottom-up trees, long-lived tree and double array",
        Spec::Graph(_) => "shared graph, mutation-heavy: inserts, pointer overwrites, walks, short chains",
        Spec::Pypy(_) => "interpreter-like churn: small short-lived objects over dicts and lists grown by array copy",
        Spec::Large(_) => "large-object churn: 8 KiB..256 KiB arrays, one in six kept",
        Spec::Mark(_) => "fixed live graph, explicit collections: marking throughput",
        Spec::Ttsp(_) => "many mutators building small trees: time-to-safepoint",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_counts_run_from_one_to_the_cores() {
        assert_eq!(up_to(1), vec![1]);
        assert_eq!(up_to(2), vec![1, 2]);
        assert_eq!(up_to(6), vec![1, 2, 4, 6]);
    }

    #[test]
    fn case_names_are_unique_in_every_suite() {
        for suite in [Suite::Smoke, Suite::Quick, Suite::Full] {
            for cores in [1, 2, 8] {
                let mut names: Vec<String> = workloads(suite, cores)
                    .into_iter()
                    .chain(mark_cases(suite))
                    .chain(ttsp_cases(suite))
                    .map(|c| c.name)
                    .collect();
                let n = names.len();
                names.sort();
                names.dedup();
                assert_eq!(names.len(), n, "{suite:?} on {cores} cores");
            }
        }
    }

    #[test]
    fn full_binary_trees_cover_depths_16_to_21() {
        let depths: Vec<u32> = workloads(Suite::Full, 2)
            .iter()
            .filter_map(|c| match &c.spec {
                Spec::BinaryTrees(p) => Some(p.depth),
                _ => None,
            })
            .collect();
        for d in 16..=21 {
            assert!(depths.contains(&d), "{depths:?}");
        }
    }

    #[test]
    fn specs_round_trip_through_json() {
        for c in workloads(Suite::Quick, 2) {
            let json = serde_json::to_string(&c.spec).unwrap();
            let back: Spec = serde_json::from_str(&json).unwrap();
            assert_eq!(serde_json::to_string(&back).unwrap(), json);
        }
    }
}
