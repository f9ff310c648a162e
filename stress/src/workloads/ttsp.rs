//! Time-to-safepoint against the number of mutator threads: `mutators` threads (more than
//! the cores, to oversubscribe them) share out `trees` binary trees of depth `depth`, each
//! built bottom-up, checked and dropped, with a safepoint poll between trees; each thread
//! also keeps a tree of depth 10. The collections this allocation triggers are the
//! measured pauses.

use super::trees::{build_tree, expect_tree, tree_nodes};
use super::Outcome;
use crate::collector::{layout, Collector, Mutator};
use crate::failure::Fallible;
use crate::runner::{run_threads, Run};
use tandem::ObjRef;

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
pub fn run<C: Collector>(c: &C, p: &Params) -> Fallible<Outcome> {
    let threads = p.mutators.max(1);
    run_threads(c, threads, &Run::once(), |ctx, m| {
        let kept = build(m, KEPT_DEPTH)?;
        m.push_root(Some(kept))?;
        let mut i = ctx.index as u64;
        while i < p.trees {
            m.safepoint();
            let t = build(m, p.depth)?;
            expect_nodes(m, t, p.depth)?;
            i += threads as u64;
        }
        let kept = m.pop_root().expect("the kept tree is rooted");
        expect_nodes(m, kept, KEPT_DEPTH)
    })?;
    let node = layout::node_size(2, 0) as u64;
    Ok(Outcome {
        live_set_bytes: threads as u64 * (tree_nodes(KEPT_DEPTH) + tree_nodes(p.depth)) * node,
        checked: format!(
            "{} trees of depth {} on {threads} threads",
            p.trees, p.depth
        ),
        measured_from_pause: 0,
    })
}

/// A tree of plain nodes (two references, no data), built bottom-up.
fn build<M: Mutator>(m: &mut M, depth: u32) -> Fallible<ObjRef> {
    build_tree(m, depth, &mut |m: &mut M, _| m.node(2, 0))
}

/// Fails unless the tree at `n` is complete with `depth`.
fn expect_nodes<M: Mutator>(m: &mut M, n: ObjRef, depth: u32) -> Fallible<()> {
    expect_tree(m, n, depth, "ttsp", &mut |_: &M, _, _| Ok(()))
}
