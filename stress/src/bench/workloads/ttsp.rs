//! Time-to-safepoint against the number of mutator threads: `mutators` threads (more than
//! the cores, to oversubscribe them) share out `trees` binary trees of depth `depth`, each
//! built bottom-up, checked and dropped, with a safepoint poll between trees; each thread
//! also keeps a tree of depth 10. The collections this allocation triggers are the
//! measured pauses.

use super::binary_trees::{build, expect_nodes};
use super::Outcome;
use crate::bench::api::{self, run_threads, BResult, Collector, Mutator};

const KEPT_DEPTH: u32 = 10;

/// The size of a run.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Params {
    /// Mutator threads.
    pub mutators: usize,
    /// Trees in all.
    pub trees: u64,
    /// Depth of each tree.
    pub depth: u32,
}

/// Runs the workload; fails on a wrong node count.
pub fn run<C: Collector>(c: &C, p: &Params) -> BResult<Outcome> {
    let threads = p.mutators.max(1);
    run_threads(c, threads, |index, m| {
        let kept = build(m, KEPT_DEPTH)?;
        m.push_root(Some(kept))?;
        let mut i = index as u64;
        while i < p.trees {
            m.safepoint();
            let t = build(m, p.depth)?;
            expect_nodes(m, t, p.depth)?;
            i += threads as u64;
        }
        let kept = m.pop_root().expect("the kept tree is rooted");
        expect_nodes(m, kept, KEPT_DEPTH)
    })?;
    let node = api::node_size(2, 0) as u64;
    Ok(Outcome {
        live_set_bytes: threads as u64 * ((1 << (KEPT_DEPTH + 1)) + (1 << (p.depth + 1))) * node,
        checked: format!(
            "{} trees of depth {} on {threads} threads",
            p.trees, p.depth
        ),
        measured_from_pause: 0,
    })
}
