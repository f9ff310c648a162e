//! binary-trees from the Computer Language Benchmarks Game: a stretch tree of depth D+1, a
//! long-lived tree of depth D, then for each depth d = 4, 6, .., D, 2^(D-d+4) trees built
//! bottom-up and walked (item check). The trees of one depth are shared out among the
//! threads, so the total work is the same at every thread count. Every node count is
//! checked.

use super::trees::{build_tree, expect_tree, tree_nodes as nodes};
use super::Outcome;
use crate::bench::api::{self, run_threads, BResult, Collector, Mutator};
use std::sync::atomic::{AtomicU64, Ordering};
use tandem::ObjRef;

/// The smallest depth of the short-lived trees.
pub const MIN_DEPTH: u32 = 4;
const NODE_BYTES: u64 = api::node_size(2, 0) as u64;

/// The size of a run.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Params {
    /// Depth of the long-lived tree (D).
    pub depth: u32,
    /// Threads sharing the short-lived trees.
    pub threads: usize,
}

/// Runs the program; fails on a wrong node count.
pub fn run<C: Collector>(c: &C, p: &Params) -> BResult<Outcome> {
    let depth = p.depth.max(MIN_DEPTH);
    let threads = p.threads.max(1);
    let mut m = c.attach()?;
    let stretch = build(&mut m, depth + 1)?;
    expect_nodes(&mut m, stretch, depth + 1)?;
    let long_lived = build(&mut m, depth)?;
    m.push_root(Some(long_lived))?;
    let trees = AtomicU64::new(0);
    m.blocking(|| {
        run_threads(c, threads, |index, m| {
            let mut d = MIN_DEPTH;
            while d <= depth {
                let iterations = 1u64 << (depth - d + MIN_DEPTH);
                let mut i = index as u64;
                while i < iterations {
                    m.safepoint();
                    let t = build(m, d)?;
                    expect_nodes(m, t, d)?;
                    i += threads as u64;
                    // Relaxed: a count read after the threads are joined.
                    trees.fetch_add(1, Ordering::Relaxed);
                }
                d += 2;
            }
            Ok(())
        })
    })?;
    let long_lived = m.pop_root().expect("the long-lived tree is rooted");
    expect_nodes(&mut m, long_lived, depth)?;
    Ok(Outcome {
        live_set_bytes: (1 + threads as u64) * nodes(depth) * NODE_BYTES,
        checked: format!(
            "{} short-lived trees and the stretch and long-lived trees had the right node counts",
            trees.into_inner()
        ),
        measured_from_pause: 0,
    })
}

/// A complete tree of `depth` of payload-free nodes, built bottom-up.
pub fn build<M: Mutator>(m: &mut M, depth: u32) -> BResult<ObjRef> {
    build_tree(m, depth, 0)
}

/// Fails unless the tree at `n` is a complete tree of `depth` (polls while it walks).
pub fn expect_nodes<M: Mutator>(m: &mut M, n: ObjRef, depth: u32) -> BResult<()> {
    expect_tree(m, n, depth, "binary-trees")
}
