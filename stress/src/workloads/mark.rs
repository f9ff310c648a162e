//! Marking throughput: one thread builds a fixed live graph of `live_mb` MiB (nodes with
//! four references to random nodes and two data words, held in chunk arrays of 1024 under
//! one root array), then asks for `collections` full collections. The collections after
//! the build are the measured ones: throughput is live bytes over mark time.

use super::Outcome;
use crate::collector::{layout, Collector, Mutator};
use crate::failure::Fallible;
use crate::rng::Rng;

const REFS: usize = 4;
const WORDS: usize = 2;
const CHUNK: usize = 1024;

/// The size of a run.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Params {
    /// MiB of live graph.
    pub live_mb: usize,
    /// Measured collections.
    pub collections: usize,
}

/// Builds the graph and runs the measured collections.
pub fn run<C: Collector>(c: &C, p: &Params) -> Fallible<Outcome> {
    let per_node = layout::node_size(REFS, WORDS) + 8;
    let nodes = ((p.live_mb << 20) / per_node).max(CHUNK);
    let chunks = nodes.div_ceil(CHUNK);
    let mut m = c.attach()?;
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
    let measured_from_pause = c.stats().pauses.len();
    for _ in 0..p.collections.max(1) {
        m.collect()?;
    }
    m.pop_root();
    Ok(Outcome {
        live_set_bytes: live,
        checked: format!("{} nodes in {chunks} chunks", chunks * CHUNK),
        measured_from_pause,
    })
}
