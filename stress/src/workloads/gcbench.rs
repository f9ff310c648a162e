//! GCBench, after the benchmark by John Ellis and Pete Kovac, modified by Hans Boehm: a
//! stretch tree, a long-lived tree of depth 16 and an array of 500,000 doubles that stay
//! live, then for each depth d = 4, 6, .., 16 as many trees as make up twice the stretch
//! tree's nodes, built top-down (`Populate`: a parent first, its children stored into it)
//! and then as many built bottom-up (`MakeTree`). Nodes have two references and two ints.
//! With several threads each runs its own copy (the multithreaded variant).

use super::trees::{build_tree, expect_tree, tree_nodes, LEFT, RIGHT};
use super::Outcome;
use crate::collector::{layout, Collector, Mutator};
use crate::failure::{Failure, Fallible};
use crate::runner::{run_threads, Run};
use tandem::ObjRef;

/// Payload words per node (GCBench's two ints).
const WORDS: usize = 2;
const NODE_BYTES: u64 = layout::node_size(2, WORDS) as u64;

/// The size of a run.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Params {
    /// Depth of the stretch tree (18 in GCBench).
    pub stretch_depth: u32,
    /// Depth of the long-lived tree (16).
    pub long_lived_depth: u32,
    /// Doubles in the long-lived array (500,000).
    pub array_size: usize,
    /// Depth of the largest short-lived trees (16).
    pub max_depth: u32,
    /// Independent copies, one per thread.
    pub threads: usize,
}

/// The smallest short-lived trees.
const MIN_DEPTH: u32 = 4;

impl Params {
    /// GCBench's own sizes.
    pub fn classic(threads: usize) -> Params {
        Params {
            stretch_depth: 18,
            long_lived_depth: 16,
            array_size: 500_000,
            max_depth: 16,
            threads,
        }
    }
}

/// Runs the benchmark; fails if the long-lived tree or array lost data.
pub fn run<C: Collector>(c: &C, p: &Params) -> Fallible<Outcome> {
    let threads = p.threads.max(1);
    run_threads(c, threads, &Run::once(), |_, m| one_copy(m, p))?;
    let per_thread = 2 * tree_nodes(p.long_lived_depth.max(p.max_depth)) * NODE_BYTES
        + layout::array_size(p.array_size, 8) as u64;
    Ok(Outcome {
        live_set_bytes: threads as u64 * per_thread,
        checked: format!(
            "{threads} copies: long-lived trees of depth {} complete, array values intact",
            p.long_lived_depth
        ),
        measured_from_pause: 0,
    })
}

fn one_copy<M: Mutator>(m: &mut M, p: &Params) -> Fallible<()> {
    let stretch = make_tree(m, p.stretch_depth)?;
    expect_nodes(m, stretch, p.stretch_depth)?;

    let long_lived = new_node(m)?;
    m.push_root(Some(long_lived))?;
    populate(m, p.long_lived_depth)?;

    let array = m.word_array(p.array_size)?;
    // Rooted before the fill, which polls (as compiled code does at a loop back-edge).
    m.push_root(Some(array))?;
    let mut array = array;
    for i in 0..p.array_size {
        if i % 4096 == 4095 {
            m.safepoint();
            // A small array may have moved in a cycle the poll started.
            array = m.root(0).expect("the array is rooted");
        }
        let v = if i < p.array_size / 2 {
            1.0 / i as f64
        } else {
            0.0
        };
        // SAFETY: item i of the fresh word array of `array_size` items.
        unsafe { layout::set_word(array, layout::item(i), v.to_bits()) };
    }

    let mut d = MIN_DEPTH;
    while d <= p.max_depth {
        let iterations = 2 * tree_nodes(p.stretch_depth) / tree_nodes(d);
        for _ in 0..iterations {
            m.safepoint();
            let t = new_node(m)?;
            m.push_root(Some(t))?;
            populate(m, d)?;
            m.pop_root();
        }
        for _ in 0..iterations {
            m.safepoint();
            make_tree(m, d)?;
        }
        d += 2;
    }

    let array = m.pop_root().expect("the array is rooted");
    let long_lived = m.pop_root().expect("the long-lived tree is rooted");
    expect_nodes(m, long_lived, p.long_lived_depth)?;
    let probe = 1000.min(p.array_size / 2 - 1);
    // SAFETY: item `probe` of the live word array.
    let v = f64::from_bits(unsafe { layout::word(array, layout::item(probe)) });
    if v != 1.0 / probe as f64 {
        return Err(Failure::Check(format!(
            "gcbench: array[{probe}] is {v}, expected 1/{probe}"
        )));
    }
    Ok(())
}

fn new_node<M: Mutator>(m: &mut M) -> Fallible<ObjRef> {
    m.node(2, WORDS)
}

/// GCBench's `Populate`: gives the node on top of the shadow stack two fresh children, then
/// populates each of them (top-down: stores into an older object).
fn populate<M: Mutator>(m: &mut M, depth: u32) -> Fallible<()> {
    if depth == 0 {
        return Ok(());
    }
    for field in [LEFT, RIGHT] {
        let child = new_node(m)?;
        let parent = m.root(0).expect("the parent is rooted");
        // SAFETY: a reference field of the rooted node `parent`; `child` is fresh.
        unsafe { m.write_ref(parent, field, Some(child)) };
    }
    for field in [LEFT, RIGHT] {
        let parent = m.root(0).expect("the parent is rooted");
        // SAFETY: a reference field of the rooted node `parent`.
        let child = unsafe { m.read_ref(parent, field) };
        m.push_root(child)?;
        populate(m, depth - 1)?;
        m.pop_root();
    }
    Ok(())
}

/// GCBench's `MakeTree`: a tree built bottom-up.
fn make_tree<M: Mutator>(m: &mut M, depth: u32) -> Fallible<ObjRef> {
    build_tree(m, depth, &mut |m: &mut M, _| new_node(m))
}

/// Fails unless the tree at `n` is complete with `depth` (GCBench's nodes carry no check).
fn expect_nodes<M: Mutator>(m: &mut M, n: ObjRef, depth: u32) -> Fallible<()> {
    expect_tree(m, n, depth, "gcbench", &mut |_: &M, _, _| Ok(()))
}
