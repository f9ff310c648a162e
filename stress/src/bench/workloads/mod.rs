//! The benchmark workloads, each written once over [`crate::bench::api`] so that Tandem and
//! libgc run the same algorithm. Each returns an [`Outcome`]: what it checked and the size
//! of its live set.

pub mod binary_trees;
pub mod gcbench;
pub mod graph;
pub mod large;
pub mod mark;
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

/// splitmix64's finaliser: a well-spread, cheap check value for an id.
#[inline]
pub fn mix(x: u64) -> u64 {
    crate::checksum::mix(x)
}
