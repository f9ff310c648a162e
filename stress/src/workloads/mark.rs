//! Marking throughput: one thread builds a fixed live heap, then asks for `collections`
//! full collections. The collections after the build are the measured ones: throughput is
//! live bytes over mark time. Two shapes: a random graph of `live_mb` MiB (nodes with four
//! references to random nodes and two data words, held in chunk arrays of 1024 under one
//! root array: most references lead to objects already marked, in no memory order), and a
//! complete binary tree (binary-trees' nodes, built bottom-up: every reference leads to an
//! unmarked object, laid out near its parent).

use super::trees::{build_tree, tree_nodes};
use super::Outcome;
use crate::collector::{layout, Collector, Mutator};
use crate::failure::Fallible;
use crate::rng::Rng;

const REFS: usize = 4;
const WORDS: usize = 2;
const CHUNK: usize = 1024;

/// The live heap's shape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Shape {
    /// The random graph of `live_mb` MiB.
    #[default]
    Graph,
    /// A complete binary tree of this depth (`live_mb` is then only its approximate size).
    Tree(u32),
}

impl Shape {
    /// How the bench names it.
    pub fn label(self) -> String {
        match self {
            Shape::Graph => "random graph".into(),
            Shape::Tree(d) => format!("binary tree, depth {d}"),
        }
    }
}

/// The size of a run.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Params {
    /// MiB of live data.
    pub live_mb: usize,
    /// Measured collections.
    pub collections: usize,
    /// The live heap's shape.
    #[serde(default)]
    pub shape: Shape,
}

/// Builds the live heap and runs the measured collections.
pub fn run<C: Collector>(c: &C, p: &Params) -> Fallible<Outcome> {
    let mut m = c.attach()?;
    let (live, checked) = match p.shape {
        Shape::Graph => build_graph(&mut m, p.live_mb)?,
        Shape::Tree(depth) => {
            let t = build_tree(&mut m, depth, &mut |m: &mut C::Mutator, _| m.node(2, 0))?;
            m.push_root(Some(t))?;
            let n = tree_nodes(depth);
            (
                n * layout::node_size(2, 0) as u64,
                format!("{n} nodes of a tree of depth {depth}"),
            )
        }
    };
    let measured_from_pause = c.stats().pauses.len();
    for _ in 0..p.collections.max(1) {
        m.collect()?;
    }
    m.pop_root();
    Ok(Outcome {
        live_set_bytes: live,
        checked,
        measured_from_pause,
    })
}

/// Builds the random graph, rooted in the top slot; its live bytes and a description.
fn build_graph<M: Mutator>(m: &mut M, live_mb: usize) -> Fallible<(u64, String)> {
    let per_node = layout::node_size(REFS, WORDS) + 8;
    let nodes = ((live_mb << 20) / per_node).max(CHUNK);
    let chunks = nodes.div_ceil(CHUNK);
    let mut rng = Rng::new(7);
    let root = m.ref_array(chunks)?;
    m.push_root(Some(root))?;
    for ci in 0..chunks {
        let chunk = m.ref_array(CHUNK)?;
        m.push_root(Some(chunk))?;
        for i in 0..CHUNK {
            let n = m.node(REFS, WORDS)?;
            let chunk = m.root(0).expect("the chunk is rooted");
            // SAFETY: a data word of the fresh node; item i of the live chunk.
            unsafe {
                layout::set_word(n, layout::node_word(REFS, 0), (ci * CHUNK + i) as u64);
                m.write_ref(chunk, layout::item(i), Some(n));
            }
        }
        let chunk = m.pop_root();
        let root = m.root(0).expect("the root array is rooted");
        // SAFETY: item ci of the live root array.
        unsafe { m.write_ref(root, layout::item(ci), chunk) };
    }
    let root = m.root(0).expect("the root array is rooted");
    // SAFETY: the graph is complete and nothing allocates while linking: every item read
    // is a live chunk or node.
    unsafe {
        for ci in 0..chunks {
            let chunk = m.read_ref(root, layout::item(ci)).expect("filled above");
            for i in 0..CHUNK {
                let n = m.read_ref(chunk, layout::item(i)).expect("filled above");
                for k in 0..REFS {
                    let other = m
                        .read_ref(root, layout::item(rng.below(chunks)))
                        .expect("filled above");
                    let t = m.read_ref(other, layout::item(rng.below(CHUNK)));
                    m.write_ref(n, layout::node_ref(k), t);
                }
            }
        }
    }
    let live = (chunks * CHUNK * layout::node_size(REFS, WORDS)
        + chunks * layout::array_size(CHUNK, 8)
        + layout::array_size(chunks, 8)) as u64;
    Ok((live, format!("{} nodes in {chunks} chunks", chunks * CHUNK)))
}
