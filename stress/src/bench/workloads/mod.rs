//! The benchmark workloads, each written once over [`crate::bench::api`] so that Tandem and
//! libgc run the same algorithm. Each returns an [`Outcome`]: what it checked and the size
//! of its live set.

use crate::bench::api::{self, BResult, Mutator};
use tandem::ObjRef;

pub mod binary_trees;
pub mod gcbench;
pub mod graph;
pub mod large;
pub mod mark;
pub mod pypy;
pub mod ttsp;

/// What a workload reports besides the collector's figures.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Outcome {
    /// Bytes the workload keeps live at its peak, from its object sizes (the same for both
    /// collectors; header words included, allocator rounding not).
    pub live_set_bytes: u64,
    /// A summary of what was checked (node counts, values).
    pub checked: String,
    /// Pauses before this index belong to set-up, not to the measured part (mark scaling).
    pub measured_from_pause: usize,
}

/// Nodes in a complete binary tree of `depth` (a single node has depth 0).
pub fn tree_nodes(depth: u32) -> u64 {
    (1u64 << (depth + 1)) - 1
}

/// Fails unless the binary tree at `n` (children in reference fields 0 and 1, both or
/// neither) is complete with `depth`. The walk polls the safepoint every 1024 nodes, as
/// compiled code polls at loop back-edges, so a deep walk does not hold up a collection;
/// the tree is on the shadow stack meanwhile (objects do not move, so `n` stays valid).
pub fn expect_tree<M: Mutator>(m: &mut M, n: ObjRef, depth: u32, what: &str) -> BResult<()> {
    m.push_root(Some(n))?;
    let mut seen = 0;
    let found = count_tree(m, n, &mut seen);
    m.pop_root();
    match found {
        Some(f) if f == tree_nodes(depth) => Ok(()),
        _ => Err(format!(
            "{what}: a tree of depth {depth} has {} nodes, expected {}",
            found.map_or("malformed".to_string(), |f| f.to_string()),
            tree_nodes(depth)
        )),
    }
}

fn count_tree<M: Mutator>(m: &mut M, n: ObjRef, seen: &mut u64) -> Option<u64> {
    *seen += 1;
    if seen.is_multiple_of(1024) {
        m.safepoint();
    }
    // SAFETY: `n` is a node of a tree reachable from a root, which nothing mutates.
    match unsafe {
        (
            m.read_ref(n, api::node_ref(0)),
            m.read_ref(n, api::node_ref(1)),
        )
    } {
        (Some(l), Some(r)) => Some(1 + count_tree(m, l, seen)? + count_tree(m, r, seen)?),
        (None, None) => Some(1),
        _ => None,
    }
}

/// splitmix64's finaliser: a well-spread, cheap check value for an id.
#[inline]
pub fn mix(x: u64) -> u64 {
    crate::checksum::mix(x)
}
