//! The interface every benchmark workload is written against, once, so that Tandem and the
//! Boehm collector run the same algorithm: a [`Collector`] hands out one [`Mutator`] per
//! thread, and the workload allocates, roots and links objects through it.
//!
//! Both collectors see the same object layout (every object starts with a header word, as a
//! VM's objects do; Tandem owns it, the Boehm backend stores a shape tag there):
//! ```text
//! node:  header | ref 0 .. ref r-1 | word 0 .. word w-1
//! array: header | length | items ...
//!        0        8        16
//! ```
//! Rooting rule, as for a precise collector: a reference held across an allocation, a
//! [`Mutator::safepoint`] or a [`Mutator::blocking`] call must be on the shadow stack (or
//! reachable from it, or from a [`Global`]). The Boehm backend finds roots conservatively
//! but keeps the same shadow stack, in memory it scans, so both run the same code.

use tandem::ObjRef;

/// A backend's error: what failed, in words.
pub type BResult<T> = Result<T, String>;

/// Offset of an array's length word.
pub const LEN: usize = 8;
/// Offset of an array's first item.
pub const ITEMS: usize = 16;
/// Most reference fields a node may have.
pub const MAX_NODE_REFS: usize = 8;
/// Most data words a node may have.
pub const MAX_NODE_WORDS: usize = 4;

/// Offset of reference field `k` of a node.
#[inline(always)]
pub const fn node_ref(k: usize) -> usize {
    8 + 8 * k
}

/// Offset of data word `k` of a node with `refs` reference fields.
#[inline(always)]
pub const fn node_word(refs: usize, k: usize) -> usize {
    8 + 8 * (refs + k)
}

/// Offset of item `i` of a reference or word array.
#[inline(always)]
pub const fn item(i: usize) -> usize {
    ITEMS + 8 * i
}

/// Bytes of a node with `refs` references and `words` data words.
#[inline(always)]
pub const fn node_size(refs: usize, words: usize) -> usize {
    8 * (1 + refs + words)
}

/// Bytes of an array of `len` items of `item_size` bytes, rounded up to 8.
#[inline(always)]
pub const fn array_size(len: usize, item_size: usize) -> usize {
    (ITEMS + len * item_size + 7) & !7
}

/// Reads the data word at `off` of `obj`.
///
/// # Safety
/// `off` must be a data word (not a reference) of the live object `obj`, and nobody may
/// write it meanwhile.
#[inline(always)]
pub unsafe fn word(obj: ObjRef, off: usize) -> u64 {
    // SAFETY: caller's contract; objects are 8-aligned and so are their words.
    unsafe { obj.field::<u64>(off).read() }
}

/// Writes the data word at `off` of `obj`.
///
/// # Safety
/// `off` must be a data word of the live object `obj` that no other thread accesses
/// meanwhile.
#[inline(always)]
pub unsafe fn set_word(obj: ObjRef, off: usize, v: u64) {
    // SAFETY: caller's contract.
    unsafe { obj.field::<u64>(off).write(v) }
}

/// The length of an array.
///
/// # Safety
/// `obj` must be a live array.
#[inline(always)]
pub unsafe fn len(obj: ObjRef) -> usize {
    // SAFETY: caller's contract: arrays hold their length at LEN.
    unsafe { word(obj, LEN) as usize }
}

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
}

/// A collector as the workloads see it: attach threads, hold global roots, report.
pub trait Collector: Sync {
    /// One thread's handle.
    type Mutator: Mutator;
    /// A global root slot.
    type Global: Global;
    /// Attaches the calling thread.
    fn attach(&self) -> BResult<Self::Mutator>;
    /// A global root that keeps `obj` alive until dropped.
    fn global(&self, obj: ObjRef) -> BResult<Self::Global>;
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
    /// A node with `refs` null references and `words` zeroed data words.
    fn node(&mut self, refs: usize, words: usize) -> BResult<ObjRef>;
    /// An array of `len` null references.
    fn ref_array(&mut self, len: usize) -> BResult<ObjRef>;
    /// An array of `len` data words that the collector never scans; their contents are
    /// unspecified until written.
    fn word_array(&mut self, len: usize) -> BResult<ObjRef>;
    /// An array of `len` bytes that the collector never scans; contents unspecified.
    fn byte_array(&mut self, len: usize) -> BResult<ObjRef>;
    /// Pushes a root (null allowed) on the shadow stack.
    fn push_root(&mut self, obj: Option<ObjRef>) -> BResult<()>;
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
    /// Stores a reference field (with the collector's write barrier).
    ///
    /// # Safety
    /// `off` must be a reference field of the live object `obj`, and `v` live.
    unsafe fn write_ref(&mut self, obj: ObjRef, off: usize, v: Option<ObjRef>);
    /// Copies `n` reference items from `src` (from item `from`) to `dst` (from item `to`):
    /// the array copy of a list that grows or is sliced.
    ///
    /// # Safety
    /// Both ranges must lie inside the live reference arrays `src` and `dst`.
    unsafe fn copy_refs(&mut self, dst: ObjRef, to: usize, src: ObjRef, from: usize, n: usize);
    /// The safepoint poll.
    fn safepoint(&mut self);
    /// Runs `f`, which blocks (a lock, a join), letting the collector run meanwhile; `f`
    /// must not touch the heap.
    fn blocking<R>(&mut self, f: impl FnOnce() -> R) -> R;
    /// A full collection, now.
    fn collect(&mut self) -> BResult<()>;
}

/// Runs `body(index, mutator)` on `threads` threads, each attached inside the thread, and
/// returns the first error.
pub fn run_threads<C, F>(c: &C, threads: usize, body: F) -> BResult<()>
where
    C: Collector,
    F: Fn(usize, &mut C::Mutator) -> BResult<()> + Sync,
{
    let errors = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for index in 0..threads {
            let (body, errors) = (&body, &errors);
            std::thread::Builder::new()
                .name(format!("bench-{index}"))
                .stack_size(8 << 20)
                .spawn_scoped(s, move || {
                    let r = c.attach().and_then(|mut m| body(index, &mut m));
                    if let Err(e) = r {
                        errors
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(format!("thread {index}: {e}"));
                    }
                })
                .expect("cannot spawn a benchmark thread");
        }
    });
    let errors = errors.into_inner().unwrap_or_else(|p| p.into_inner());
    match errors.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
