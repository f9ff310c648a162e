//! Tandem: a parallel, low-pause garbage collector runtime for language VMs.
//!
//! The Rust API is three types: [`Heap`] (the runtime: types, roots, statistics),
//! [`Mutator`] (one per thread: allocation, shadow stack, safepoints) and [`Config`]
//! (options, overridable from `TANDEM_*` environment variables). The C ABI in `tandem-ffi`
//! is a thin layer over this API.
//!
//! ```
//! use tandem::{Config, Heap, TypeInfo};
//! let heap = Heap::new(Config { threads: 2, ..Config::default() }).unwrap();
//! // A cons cell: header, car, cdr.
//! let cons = heap
//!     .register_type(TypeInfo { fixed_size: 24, ref_offsets: vec![8, 16], ..Default::default() })
//!     .unwrap();
//! let mut m = heap.attach().unwrap();
//! let a = m.alloc(cons, 0).unwrap();
//! m.push_root(Some(a)).unwrap();
//! m.collect().unwrap();
//! assert_eq!(m.pop_root().unwrap(), Some(a));
//! ```
#![warn(missing_docs, unsafe_op_in_unsafe_fn)]

pub mod alloc;
pub mod barriers;
pub mod callback;
pub mod collector;
pub mod config;
pub mod cpu;
pub mod error;
pub mod fault;
pub mod fork;
pub mod heap;
pub mod mutator;
pub mod object;
pub mod refs;
pub mod roots;
pub mod runtime;
pub mod safepoint;
pub mod stats;
pub mod sync;
pub mod workers;

pub use config::{ByteSize, Config, EvacuationMode, Mode, Trigger};
pub use error::{Error, Result};
pub use mutator::{CollectLevel, Mutator};
pub use object::{DestructorFn, ObjRef, TraceFn, TypeId, TypeInfo, VisitFn};
pub use roots::RootCallback;
pub use stats::{GcCause, PauseKind, PauseRecord, Stats};

use crate::sync::unmodelled::Arc;
use runtime::Runtime;
use std::ffi::c_void;

/// The version of this library.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

struct HeapOwner {
    rt: Arc<Runtime>,
    /// The control thread (replaced in a forked child).
    control: crate::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for HeapOwner {
    fn drop(&mut self) {
        self.rt.uncommitter.stop();
        self.rt.stepper.release();
        self.rt.requests.shutdown();
        if let Some(h) = self.control.lock().take() {
            // A collection in progress may be waiting for this very thread to stop.
            mutator::while_native(&self.rt, || {
                let _ = h.join();
            });
        }
    }
}

/// A managed heap and its collector threads. Cloning gives another handle to the same heap;
/// the collector stops when the last handle is dropped (mutators then fail with
/// [`Error::Shutdown`] on their next collection).
#[derive(Clone)]
pub struct Heap {
    owner: Arc<HeapOwner>,
}

impl std::fmt::Debug for Heap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Heap")
            .field("config", &self.owner.rt.config)
            .finish()
    }
}

impl Heap {
    /// Creates a heap with `config` overridden by the `TANDEM_*` environment (the
    /// environment wins), and starts its collector.
    pub fn new(config: Config) -> Result<Heap> {
        Self::with_config(config.apply_env()?)
    }

    /// Creates a heap with exactly `config`, ignoring the environment (a minimum left at its
    /// default follows a smaller maximum down).
    pub fn with_config(config: Config) -> Result<Heap> {
        let config = config.min_follows_max();
        config.validate()?;
        let rt = Arc::new(Runtime::new(config)?);
        let control = collector::start(rt.clone())
            .map_err(|e| Error::Os(format!("cannot start the collector thread: {e}")))?;
        tracing::debug!(config = ?rt.config, "heap created");
        let heap = Heap {
            owner: Arc::new(HeapOwner {
                rt,
                control: crate::sync::Mutex::new(Some(control)),
            }),
        };
        // Once the owner exists, so that a failure stops the collector on the way out.
        heap.rt().start_uncommitter()?;
        Ok(heap)
    }

    /// Creates a heap from the defaults and the environment.
    pub fn from_env() -> Result<Heap> {
        Self::new(Config::default())
    }

    fn rt(&self) -> &Arc<Runtime> {
        &self.owner.rt
    }

    /// The options this heap runs with.
    pub fn config(&self) -> &Config {
        &self.rt().config
    }

    /// Registers a type and returns its id.
    pub fn register_type(&self, info: TypeInfo) -> Result<TypeId> {
        self.rt().types.register(info)
    }

    /// The registered layout of `ty`.
    pub fn type_info(&self, ty: TypeId) -> Result<&TypeInfo> {
        self.rt().types.lookup(ty)
    }

    /// Attaches the calling thread as a mutator.
    pub fn attach(&self) -> Result<Mutator> {
        Mutator::attach(self.rt().clone())
    }

    /// Registers a global root slot.
    ///
    /// # Safety
    /// `slot` must stay valid (and hold null or an object reference) until removed.
    pub unsafe fn add_root(&self, slot: *mut *mut u8) -> Result<()> {
        self.rt().roots.add(slot)
    }

    /// Unregisters a global root slot.
    pub fn remove_root(&self, slot: *mut *mut u8) -> Result<()> {
        self.rt().roots.remove(slot)
    }

    /// Sets the VM's root-scanning callback, called in every collection with `data`.
    ///
    /// # Safety
    /// The callback must report only valid slots and be callable from the collector thread.
    pub unsafe fn set_root_callback(&self, cb: Option<RootCallback>, data: *mut c_void) {
        self.rt().roots.set_callback(cb, data)
    }

    /// Sets the handler called with the size of an allocation that failed after a full GC.
    pub fn set_oom_handler(&self, h: Option<Box<dyn Fn(usize) + Send + Sync>>) {
        self.rt().set_oom_handler(h.map(Arc::from));
    }

    /// Sets a check run on every reachable object after each GC when verification is on.
    #[allow(clippy::type_complexity)]
    pub fn set_verify_hook(
        &self,
        h: Option<Box<dyn Fn(ObjRef) -> std::result::Result<(), String> + Send + Sync>>,
    ) {
        self.rt().set_verify_hook(h.map(Arc::from));
    }

    /// Creates a finalizer queue; `trigger` runs on a mutator thread (at a poll or an
    /// allocation slow path) after each cycle that delivered objects to it. Returns its id.
    pub fn finalizer_queue(&self, trigger: Option<Box<dyn Fn() + Send + Sync>>) -> Result<u32> {
        self.rt().refs.queues.create(trigger.map(Arc::from))
    }

    /// Installs (None: removes) the GC hook, called on a mutator thread (at its next poll
    /// or allocation slow path) after each pause and each cycle.
    #[allow(clippy::type_complexity)]
    pub fn set_gc_hook(&self, hook: Option<Box<dyn Fn(&refs::hooks::GcEvent) + Send + Sync>>) {
        self.rt().refs.hooks.set(hook.map(Arc::from));
    }

    /// Turns automatic collection on or off (Python's `gc.enable()` / `gc.disable()`).
    /// While off, only explicit collections run, and an allocation the heap cannot hold
    /// fails as out of memory.
    pub fn set_auto_collect(&self, on: bool) {
        self.rt().requests.set_auto(on);
    }

    /// Changes the heap maximum at run time, up to `TANDEM_HEAP_MAX` (the reservation).
    pub fn set_heap_max(&self, bytes: usize) -> Result<()> {
        self.rt().space.set_heap_max(bytes)
    }

    /// The size of `obj` in bytes, header (and hash word, once moved) included.
    ///
    /// # Safety
    /// `obj` must be a live object of this heap.
    pub unsafe fn size_of(&self, obj: ObjRef) -> Result<usize> {
        // SAFETY: forwarded.
        unsafe { mutator::services::size_of(self.rt(), obj) }
    }

    /// The type of `obj` (registered, or Tandem's own for weakrefs).
    ///
    /// # Safety
    /// `obj` must be a live object of this heap.
    pub unsafe fn type_of(&self, obj: ObjRef) -> Result<TypeId> {
        // SAFETY: forwarded.
        unsafe { mutator::services::type_of(self.rt(), obj) }
    }

    /// Whether the collector may ever move `obj`.
    ///
    /// # Safety
    /// `obj` must be a live object of this heap.
    pub unsafe fn can_move(&self, obj: ObjRef) -> bool {
        // SAFETY: forwarded.
        unsafe { mutator::services::can_move(self.rt(), obj) }
    }

    /// Calls `f` with every root slot (shadow stacks, global slots, the VM's callback,
    /// finalizer queues) while every thread is stopped between cycles (PyPy's
    /// `get_rpy_roots`). `f` must only read. Fails when called from a callback inside the
    /// collector's work (see [`callback`]).
    pub fn walk_roots(&self, mut f: impl FnMut(*mut *mut u8)) -> Result<()> {
        callback::check("walk_roots")?;
        fork::with_world_stopped(self.rt(), |world| {
            callback::within("a root walk's callback", || {
                for (_, slot) in collector::all_roots(self.rt(), world) {
                    f(slot as *mut *mut u8);
                }
            })
        });
        Ok(())
    }

    /// Writes every object reachable from the roots to `out`, one line each: address,
    /// type id, size in bytes, then the addresses it refers to (hexadecimal addresses,
    /// decimal numbers, spaces between), after a `#` header line; with every thread
    /// stopped between cycles. `tandem-stress heap-summary` sums a dump by type.
    pub fn dump_heap(&self, out: &mut dyn std::io::Write) -> Result<()> {
        use std::io::Write;
        callback::check("dump_heap")?;
        let rt = self.rt();
        fork::with_world_stopped(rt, |world| {
            let mut w = std::io::BufWriter::new(out);
            let mut err = writeln!(w, "# tandem heap dump 1: address type size referents...");
            collector::walk::reachable(
                rt,
                &collector::all_roots(rt, world),
                |r| {
                    if err.is_err() {
                        return;
                    }
                    // SAFETY: the walk validated this object.
                    let ty = unsafe { r.obj.type_id() }.0;
                    err = write!(w, "{:#x} {ty} {}", r.obj.addr(), r.size);
                    // Written as read: a line for an array of 10 M references was built
                    // whole first (150 MB).
                    // SAFETY: as above: its slots are readable.
                    unsafe {
                        r.info.for_each_slot(r.obj, |s| {
                            let v = s.read() as usize;
                            if v != 0 && err.is_ok() {
                                err = write!(w, " {v:#x}");
                            }
                        })
                    };
                    if err.is_ok() {
                        err = writeln!(w);
                    }
                },
                |_| {},
            );
            err.and_then(|()| w.flush())
        })
        .map_err(|e| Error::Os(format!("writing the heap dump: {e}")))
    }

    /// Prepares a `fork()` of the process (see [`fork`]): waits for the cycle in progress,
    /// holds new ones off and stops every mutator. Call it on the forking thread right
    /// before `fork`, then [`Heap::after_fork_in_parent`] or
    /// [`Heap::after_fork_in_child`] right after.
    pub fn prepare_fork(&self) {
        fork::prepare(self.rt());
    }

    /// Resumes the parent after a `fork()`.
    pub fn after_fork_in_parent(&self) {
        fork::in_parent(self.rt());
    }

    /// Makes the heap usable in a forked child: only the forking thread stays attached,
    /// and the collector's threads start anew. Fails when a thread cannot be spawned.
    pub fn after_fork_in_child(&self) -> Result<()> {
        let rt = self.rt();
        fork::in_child(rt);
        let restarted = collector::start(rt.clone())
            .map_err(|e| Error::Os(format!("cannot start the collector thread: {e}")))
            .map(|control| {
                // The old thread does not exist here: joining its handle would be undefined.
                std::mem::forget(self.owner.control.lock().replace(control));
                rt.uncommitter.forget_thread();
            })
            .and_then(|()| rt.start_uncommitter());
        if let Err(e) = &restarted {
            // No collector: every later collection reports this instead of waiting.
            rt.fail(format!("after fork: {e}"));
        }
        fork::child_done(rt);
        restarted
    }

    /// Whether `addr` lies inside the managed heap.
    pub fn contains(&self, addr: usize) -> bool {
        self.rt().space.in_heap(addr)
    }

    /// The address range the heap reserved: every object of this heap lies inside.
    pub fn address_range(&self) -> std::ops::Range<usize> {
        self.rt().space.range()
    }

    /// Counts a VM bug found outside a collection (a call the C ABI had to reject while
    /// `TANDEM_VERIFY` audits stores) as a verification error with `message`.
    pub fn record_verify_error(&self, message: String) {
        self.rt().stats.record_verify_errors(vec![message], 1);
    }

    /// A snapshot of the statistics.
    pub fn stats(&self) -> Stats {
        self.rt().stats()
    }

    /// The most recent `n` pauses (or fewer), oldest first: a cheaper read than
    /// [`Heap::stats`] when only the log is wanted.
    pub fn recent_pauses(&self, n: usize) -> Vec<PauseRecord> {
        self.rt().stats.recent_pauses(n)
    }

    /// Number of attached mutators.
    pub fn mutators(&self) -> usize {
        self.rt().safepoint.len()
    }
}
