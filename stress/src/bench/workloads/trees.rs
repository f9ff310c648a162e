//! Complete binary trees, shared by binary-trees, GCBench and the TTSP workload: nodes with
//! two reference fields (children, both or neither) and some payload words, built bottom-up
//! and checked by counting.

use crate::bench::api::{self, BResult, Mutator};
use tandem::ObjRef;

/// The left child's field.
pub const LEFT: usize = api::node_ref(0);
/// The right child's field.
pub const RIGHT: usize = api::node_ref(1);

/// Nodes in a complete binary tree of `depth` (a single node has depth 0).
pub fn tree_nodes(depth: u32) -> u64 {
    (1u64 << (depth + 1)) - 1
}

/// A complete tree of `depth` whose nodes carry `words` payload words, built bottom-up
/// (children before their parent).
pub fn build_tree<M: Mutator>(m: &mut M, depth: u32, words: usize) -> BResult<ObjRef> {
    if depth == 0 {
        return m.node(2, words);
    }
    let l = build_tree(m, depth - 1, words)?;
    m.push_root(Some(l))?;
    let r = build_tree(m, depth - 1, words)?;
    m.push_root(Some(r))?;
    let n = m.node(2, words)?;
    let r = m.pop_root();
    let l = m.pop_root();
    // SAFETY: LEFT and RIGHT are the reference fields of the fresh node `n`; `l` and `r`
    // were rooted across its allocation.
    unsafe {
        m.write_ref(n, LEFT, l);
        m.write_ref(n, RIGHT, r);
    }
    Ok(n)
}

/// Fails unless the tree at `n` is complete with `depth`. The walk polls the safepoint
/// every 1024 nodes, as compiled code polls at loop back-edges, so a deep walk does not
/// hold up a collection; the tree is on the shadow stack meanwhile (objects do not move,
/// so `n` stays valid).
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
    match unsafe { (m.read_ref(n, LEFT), m.read_ref(n, RIGHT)) } {
        (Some(l), Some(r)) => Some(1 + count_tree(m, l, seen)? + count_tree(m, r, seen)?),
        (None, None) => Some(1),
        _ => None,
    }
}
