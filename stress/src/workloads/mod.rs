//! The workloads. Each module has a `run_thread` that one attached mutator thread runs
//! until its budget is spent, checking what it reads as it goes.

pub mod binary_trees;
pub mod graph;
pub mod large;
