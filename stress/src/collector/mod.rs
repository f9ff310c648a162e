//! The interface every workload is written against, once, so that the stress runs (on
//! Tandem, with its verifier) and the bench (Tandem beside the Boehm collector) run the same
//! algorithm: a [`Collector`] hands out one [`Mutator`] per thread, and the workload
//! allocates, roots and links objects through it, in the layout of [`layout`].
//!
//! Rooting rule, as for a precise collector: a reference held across an allocation, a
//! [`Mutator::safepoint`] or a [`Mutator::blocking`] call must be on the shadow stack (or
//! reachable from it, or from a [`Global`]). The Boehm backend finds roots conservatively
//! but keeps the same shadow stack, in memory it scans, so both run the same code.
//!
//! Reference fields are atomic words in both backends (acquire loads, release stores), so
//! threads may race on a shared field, as a VM's threads do, without a data race.

pub mod boehm;
mod global_root;
pub mod layout;
pub mod libgc;
pub mod tandem;

pub use layout::{Items, Shape};

use crate::failure::Fallible;
// `::tandem`: the crate, not the backend module of that name.
use ::tandem::ObjRef;

/// One stop-the-world pause as a backend recorded it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Pause {
    /// Nanoseconds from the collector's start to the stop request.
    pub start_ns: u64,
    /// Nanoseconds from the stop request until the mutators resumed.
    pub dur_ns: u64,
    /// Nanoseconds from the stop request until every mutator had stopped.
    pub ttsp_ns: u64,
    /// Nanoseconds of marking inside the pause.
    pub mark_ns: u64,
    /// What the pause was for (Tandem's `PauseKind::name`, `stw` for libgc).
    pub kind: String,
}

/// What a backend measured over a run.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct GcStats {
    /// The pauses, oldest first.
    pub pauses: Vec<Pause>,
    /// Collection cycles.
    pub gcs: u64,
    /// Parallel GC threads (Tandem workers, libgc markers).
    pub gc_threads: usize,
    /// The collector's mode (`concurrent`, `stw`, or `boehm` for libgc).
    pub mode: String,
    /// Bytes the mutators allocated.
    pub allocated_bytes: u64,
    /// Most heap bytes found live after a collection (Tandem only; in concurrent mode only
    /// the last cycle's figure is known).
    pub heap_live_max: Option<u64>,
    /// Most heap bytes committed (Tandem) or the heap size at the end (libgc, whose heap
    /// never shrinks here).
    pub heap_peak: u64,
    /// Nanoseconds the collector held its lock for collections, world stopped or not
    /// (libgc only: the whole collection, including the start of the sweep).
    pub collection_ns: Option<u64>,
    /// Longest time-to-safepoint the collector recorded, nanoseconds.
    pub ttsp_max_ns: u64,
    /// Longest any mutator waited on the collector, nanoseconds (Tandem: the longest of
    /// pause, mutator-observed stop and allocation stall; libgc: its longest pause).
    #[serde(default)]
    pub longest_wait_ns: u64,
    /// CPU time collecting cost, nanoseconds (Tandem: its threads and the assists; libgc:
    /// not measured).
    #[serde(default)]
    pub gc_cpu_ns: Option<u64>,
}

/// A collector as the workloads see it: attach threads, hold global roots, report.
pub trait Collector: Sync {
    /// One thread's handle.
    type Mutator: Mutator;
    /// A global root slot.
    type Global: Global;
    /// Attaches the calling thread.
    fn attach(&self) -> Fallible<Self::Mutator>;
    /// A global root that keeps `obj` alive until dropped.
    fn global(&self, obj: ObjRef) -> Fallible<Self::Global>;
    /// What the collector measured so far.
    fn stats(&self) -> GcStats;
}

/// A global root slot.
pub trait Global: Sync {
    /// The object it holds.
    fn get(&self) -> ObjRef;
}

/// One thread's access to the heap.
pub trait Mutator {
    /// An object of `shape` with `len` items (0 for a node). References are null and a
    /// node's data words zero; an array's data words and its word or byte items are
    /// unspecified until written.
    fn alloc(&mut self, shape: Shape, len: usize) -> Fallible<ObjRef>;
    /// The shape `obj` was allocated with (from its header).
    ///
    /// # Safety
    /// `obj` must be a live object of this collector.
    unsafe fn shape(&self, obj: ObjRef) -> Shape;
    /// A node with `refs` null references and `words` zeroed data words.
    #[inline(always)]
    fn node(&mut self, refs: usize, words: usize) -> Fallible<ObjRef> {
        self.alloc(Shape::Node { refs, words }, 0)
    }
    /// An array of `len` null references.
    #[inline(always)]
    fn ref_array(&mut self, len: usize) -> Fallible<ObjRef> {
        self.alloc(
            Shape::Array {
                items: Items::Refs,
                words: 0,
            },
            len,
        )
    }
    /// An array of `len` data words that the collector never scans; their contents are
    /// unspecified until written.
    #[inline(always)]
    fn word_array(&mut self, len: usize) -> Fallible<ObjRef> {
        self.alloc(
            Shape::Array {
                items: Items::Words,
                words: 0,
            },
            len,
        )
    }
    /// An array of `len` bytes that the collector never scans; contents unspecified.
    #[inline(always)]
    fn byte_array(&mut self, len: usize) -> Fallible<ObjRef> {
        self.alloc(
            Shape::Array {
                items: Items::Bytes,
                words: 0,
            },
            len,
        )
    }
    /// Pushes a root (null allowed) on the shadow stack.
    fn push_root(&mut self, obj: Option<ObjRef>) -> Fallible<()>;
    /// Pops the top root (panics on an empty stack: a workload bug).
    fn pop_root(&mut self) -> Option<ObjRef>;
    /// The root `depth` slots below the top.
    fn root(&mut self, depth: usize) -> Option<ObjRef>;
    /// Overwrites the root `depth` slots below the top.
    fn set_root(&mut self, depth: usize, obj: Option<ObjRef>);
    /// Loads a reference field.
    ///
    /// # Safety
    /// `off` must be a reference field of the live object `obj`.
    unsafe fn read_ref(&mut self, obj: ObjRef, off: usize) -> Option<ObjRef>;
    /// Stores a reference field (with the collector's write barrier). Racing stores and
    /// loads of one field are allowed: fields are atomic words.
    ///
    /// # Safety
    /// `off` must be a reference field of the live object `obj`, and `v` live.
    unsafe fn write_ref(&mut self, obj: ObjRef, off: usize, v: Option<ObjRef>);
    /// Copies `n` reference items from `src` (from item `from`) to `dst` (from item `to`):
    /// the array copy of a list that grows or is sliced.
    ///
    /// # Safety
    /// Both ranges must lie inside the live reference arrays `src` and `dst` (arrays with
    /// no data words), which no other thread writes meanwhile.
    unsafe fn copy_refs(&mut self, dst: ObjRef, to: usize, src: ObjRef, from: usize, n: usize);
    /// The safepoint poll.
    fn safepoint(&mut self);
    /// Runs `f`, which blocks (a lock, a join), letting the collector run meanwhile; `f`
    /// must not touch the heap.
    fn blocking<R>(&mut self, f: impl FnOnce() -> R) -> R;
    /// A full collection, now.
    fn collect(&mut self) -> Fallible<()>;
}
