//! Complete binary trees, shared by binary-trees, GCBench and the TTSP workload: nodes with
//! two reference fields (children, both or neither), built bottom-up as the published
//! programs build them (`bottomUpTree`: both children, then their parent), and checked by
//! counting. Each workload says how to make and check one node.

use crate::collector::layout;
use crate::collector::Mutator;
use crate::failure::{Failure, Fallible};
use tandem::ObjRef;

/// The left child's field.
pub const LEFT: usize = layout::node_ref(0);
/// The right child's field.
pub const RIGHT: usize = layout::node_ref(1);

/// Nodes between safepoint polls in a walk, as compiled code polls at loop back-edges, so
/// that walking a deep tree does not hold up a collection.
const POLL_EVERY: u64 = 1024;

/// Nodes in a complete binary tree of `depth` (a single node has depth 0).
pub fn tree_nodes(depth: u32) -> u64 {
    (1u64 << (depth + 1)) - 1
}

/// A complete tree of `depth`, built bottom-up (children before their parent);
/// `new_node(m, d)` allocates a node at height `d` (0 for a leaf) with null children.
pub fn build_tree<M, F>(m: &mut M, depth: u32, new_node: &mut F) -> Fallible<ObjRef>
where
    M: Mutator,
    F: FnMut(&mut M, u32) -> Fallible<ObjRef>,
{
    if depth == 0 {
        return new_node(m, 0);
    }
    let l = build_tree(m, depth - 1, new_node)?;
    m.push_root(Some(l))?;
    let r = build_tree(m, depth - 1, new_node)?;
    m.push_root(Some(r))?;
    let n = new_node(m, depth)?;
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

/// Fails unless the tree at `n` is complete with `depth`; `check_node(m, node, d)` checks
/// each node at height `d` as well. The walk polls the safepoint every [`POLL_EVERY`]
/// nodes. A poll may start a cycle that moves objects, which updates only the shadow
/// stack: every node the walk still needs after a poll (the tree, and each right child
/// while its left sibling's subtree is walked) is held there, as compiled code's stack maps
/// would hold them.
pub fn expect_tree<M, F>(
    m: &mut M,
    n: ObjRef,
    depth: u32,
    what: &str,
    check_node: &mut F,
) -> Fallible<()>
where
    M: Mutator,
    F: FnMut(&M, ObjRef, u32) -> Fallible<()>,
{
    m.push_root(Some(n))?;
    let mut seen = 0;
    let found = count_tree(m, n, depth, &mut seen, check_node);
    m.pop_root();
    match found? {
        Some(f) if f == tree_nodes(depth) => Ok(()),
        found => Err(Failure::Check(format!(
            "{what}: a tree of depth {depth} has {} nodes, expected {}",
            found.map_or("malformed".to_string(), |f| f.to_string()),
            tree_nodes(depth)
        ))),
    }
}

/// The nodes under `n`, or None if a node has one child only or a leaf is not at height 0.
fn count_tree<M, F>(
    m: &mut M,
    mut n: ObjRef,
    depth: u32,
    seen: &mut u64,
    check_node: &mut F,
) -> Fallible<Option<u64>>
where
    M: Mutator,
    F: FnMut(&M, ObjRef, u32) -> Fallible<()>,
{
    *seen += 1;
    if seen.is_multiple_of(POLL_EVERY) {
        m.push_root(Some(n))?;
        m.safepoint();
        n = m.pop_root().expect("the node was pushed");
    }
    check_node(m, n, depth)?;
    // SAFETY: `n` is a node of a tree reachable from a root, which nothing mutates.
    Ok(
        match unsafe { (m.read_ref(n, LEFT), m.read_ref(n, RIGHT)) } {
            (Some(l), Some(r)) if depth > 0 => {
                // The left walk visits at most a complete subtree's nodes. If it may poll,
                // `r` may move meanwhile (only roots are updated): it waits on the shadow
                // stack. Most subtrees are walked between two polls and need no root.
                let polls = (*seen + tree_nodes(depth - 1)) / POLL_EVERY > *seen / POLL_EVERY;
                let (left, r) = if polls {
                    m.push_root(Some(r))?;
                    let left = count_tree(m, l, depth - 1, seen, check_node);
                    (left, m.pop_root().expect("the right child was pushed"))
                } else {
                    (count_tree(m, l, depth - 1, seen, check_node), r)
                };
                let Some(left) = left? else {
                    return Ok(None);
                };
                count_tree(m, r, depth - 1, seen, check_node)?.map(|right| 1 + left + right)
            }
            (None, None) if depth == 0 => Some(1),
            _ => None,
        },
    )
}
