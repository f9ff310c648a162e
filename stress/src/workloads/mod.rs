//! The workloads, each written once over [`crate::collector`], so that the stress runs
//! (Tandem with its verifier, a time or iteration budget, checked objects) and the bench
//! (Tandem beside libgc, fixed sizes) run the same algorithm. binary-trees, graph and large
//! serve both; GCBench, pypy, mark and ttsp only the bench. Each returns an [`Outcome`]:
//! what it checked and the size of its live set.

pub mod binary_trees;
pub mod gcbench;
pub mod graph;
pub mod large;
pub mod mark;
pub mod objects;
pub mod pypy;
pub mod trees;
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
