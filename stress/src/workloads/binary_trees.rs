//! binary-trees from the Computer Language Benchmarks Game, one instance per thread: a
//! stretch tree of depth D+1, a long-lived tree of depth D, then for each depth 4, 6, .., D
//! many short-lived trees, each walked to count its nodes. A wrong count, a wrong depth in a
//! node or a bad checksum is a failure.
//!
//! Trees are built top-down: a node is allocated and rooted before its children, which are
//! stored into it as soon as they return (an allocation may collect, so the parent is
//! reloaded from the shadow stack after each child).

use crate::failure::{Failure, Outcome};
use crate::objects::{self, IdSource, Types};
use crate::runner::ThreadCtx;
use tandem::{Mutator, ObjRef};

const LEFT: usize = objects::node_ref(0);
const RIGHT: usize = objects::node_ref(1);
/// The smallest depth of the short-lived trees.
pub const MIN_DEPTH: u32 = 4;

/// Runs the program on this thread until the budget is spent; an iteration is one full
/// program (all depths).
pub fn run_thread(ctx: &ThreadCtx<'_>, m: &mut Mutator, types: &Types, depth: u32) -> Outcome<()> {
    let depth = depth.max(MIN_DEPTH);
    let mut ids = IdSource::new(ctx.index as u64 + 1);
    let mut rounds = 0;
    while !ctx.should_stop(rounds) {
        one_program(ctx, m, types, &mut ids, depth)?;
        rounds += 1;
    }
    Ok(())
}

fn one_program(
    ctx: &ThreadCtx<'_>,
    m: &mut Mutator,
    types: &Types,
    ids: &mut IdSource,
    depth: u32,
) -> Outcome<()> {
    let stretch = build(m, types, ids, depth + 1)?;
    check_tree(m, types, stretch, depth + 1)?;
    ctx.count(1);

    let long_lived = build(m, types, ids, depth)?;
    m.push_root(Some(long_lived))?;
    let mut d = MIN_DEPTH;
    'depths: while d <= depth {
        let iterations = 1u64 << (depth - d + MIN_DEPTH);
        for _ in 0..iterations {
            // Within a program, stop early only on a deadline or another thread's failure.
            if ctx.should_stop(0) {
                break 'depths;
            }
            m.safepoint()?;
            let t = build(m, types, ids, d)?;
            check_tree(m, types, t, d)?;
            ctx.count(1);
        }
        tracing::debug!(thread = ctx.index, depth = d, iterations, "trees checked");
        d += 2;
    }
    let long_lived = m.pop_root()?.expect("the long-lived tree is rooted");
    check_tree(m, types, long_lived, depth)?;
    ctx.count(1);
    Ok(())
}

/// Builds a complete tree of `depth`; each node's payload is its depth.
fn build(m: &mut Mutator, types: &Types, ids: &mut IdSource, depth: u32) -> Outcome<ObjRef> {
    let node = objects::new_node(m, types.tree_node, ids.next_id(), depth as u64)?;
    if depth == 0 {
        return Ok(node);
    }
    m.push_root(Some(node))?;
    for field in [LEFT, RIGHT] {
        let child = build(m, types, ids, depth - 1)?;
        let node = m.peek_root(0).flatten().expect("the parent is rooted");
        // SAFETY: `field` is a reference field of the tree node `node`, which is rooted;
        // `child` was allocated since the last safepoint, so it is live.
        unsafe { m.write_ref(node, field, Some(child)) };
    }
    Ok(m.pop_root()?.expect("the parent is rooted"))
}

/// Nodes walked between safepoint polls: a JIT polls on loop back-edges, and a walk of a
/// deep tree must not hold up a collection for milliseconds.
const POLL_EVERY: u32 = 1024;

/// Counts the nodes of a tree of `depth`, checking each node's checksum and depth. The
/// tree is rooted during the walk, which polls the safepoint: its nodes stay live (and do
/// not move: this collector does not evacuate) while the walk holds them.
fn check_tree(m: &mut Mutator, types: &Types, root: ObjRef, depth: u32) -> Outcome<()> {
    let expected = (1u64 << (depth + 1)) - 1;
    m.push_root(Some(root))?;
    let mut until_poll = POLL_EVERY;
    let found = item_check(m, types, root, depth, &mut until_poll);
    m.pop_root()?;
    let found = found?;
    if found != expected {
        return Err(Failure::Check(format!(
            "tree of depth {depth}: item check found {found} nodes, expected {expected}"
        )));
    }
    Ok(())
}

fn item_check(
    m: &mut Mutator,
    types: &Types,
    node: ObjRef,
    depth: u32,
    until_poll: &mut u32,
) -> Outcome<u64> {
    *until_poll -= 1;
    if *until_poll == 0 {
        *until_poll = POLL_EVERY;
        m.safepoint()?;
    }
    // SAFETY: `node` is reachable from a rooted tree and nothing allocates during the walk.
    unsafe { objects::check_read(types, node, "binary-trees node")? };
    // SAFETY: as above; a tree node has a payload.
    let payload = unsafe { objects::payload_of(node) };
    if payload != depth as u64 {
        // SAFETY: as above.
        let id = unsafe { objects::id_of(types, node) };
        return Err(Failure::Check(format!(
            "tree node id {id:#x} has depth {payload}, expected {depth}"
        )));
    }
    // SAFETY: LEFT and RIGHT are reference fields of the live tree node `node`.
    let (l, r) = unsafe { (m.read_ref(node, LEFT), m.read_ref(node, RIGHT)) };
    match (l, r, depth) {
        (None, None, 0) => Ok(1),
        (Some(l), Some(r), d) if d > 0 => {
            let left = item_check(m, types, l, d - 1, until_poll)?;
            Ok(1 + left + item_check(m, types, r, d - 1, until_poll)?)
        }
        _ => {
            // SAFETY: as above.
            let id = unsafe { objects::id_of(types, node) };
            Err(Failure::Check(format!(
                "tree node id {id:#x} at depth {depth} has children {l:?}, {r:?}"
            )))
        }
    }
}
