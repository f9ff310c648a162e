//! The peer: the Boehm-Demers-Weiser collector (libgc 8.x, Debian's `libgc-dev`), called
//! through its C API, loaded at run time by [`libgc`](super::libgc) (absent: no peer).
//!
//! Set-up follows libgc's rules for threads that libgc did not create: `GC_init`, then
//! `GC_allow_register_threads` (which starts the parallel markers; `GC_MARKERS=N` sets how
//! many) on the main thread; every benchmark thread registers with
//! `GC_register_my_thread(GC_get_stack_base())` and unregisters when it detaches.
//!
//! Roots are found conservatively in registered thread stacks, registers, static data and
//! the GC heap, never in memory from the system allocator: the shadow stack and the global
//! slots live in `GC_malloc_uncollectable` memory, which libgc scans. Reference fields are
//! atomic words, as in Tandem (on x86-64 an acquire load and a release store are plain
//! moves), so threads racing on a shared field are no data race; there is no barrier.
//!
//! Pauses come from `GC_set_on_collection_event`: a pause lasts from
//! `GC_EVENT_PRE_STOP_WORLD` to `GC_EVENT_POST_START_WORLD` (all mutators stopped); its
//! time-to-safepoint is `PRE_STOP_WORLD` to `POST_STOP_WORLD` (the suspend signals
//! delivered and acknowledged); its marking is `GC_EVENT_MARK_START` to `GC_EVENT_MARK_END`.
//! libgc calls the hook with its lock held, sometimes with the world stopped, so the hook
//! only reads the clock and stores into static atomics: no allocation, no lock.

use super::layout::{self, Items, Shape};
use super::libgc::{self, GcStackBase, Libgc};
use super::{Collector, GcStats, Global, Mutator, Pause};
use crate::failure::{Failure, Fallible};
use std::ffi::{c_int, c_void};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use tandem::ObjRef;

const GC_SUCCESS: c_int = 0;

// `GC_EventType` from gc.h (libgc 8.2).
const GC_EVENT_START: c_int = 0;
const GC_EVENT_MARK_START: c_int = 1;
const GC_EVENT_MARK_END: c_int = 2;
const GC_EVENT_END: c_int = 5;
const GC_EVENT_PRE_STOP_WORLD: c_int = 6;
const GC_EVENT_POST_STOP_WORLD: c_int = 7;
const GC_EVENT_POST_START_WORLD: c_int = 9;

/// Pauses the event log keeps (later ones are counted, not logged).
const LOG_CAPACITY: usize = 1 << 16;
/// Fields of a logged pause: stop request, world stopped, mark start, mark end, resumed.
const FIELDS: usize = 5;

static LOG: [[AtomicU64; FIELDS]; LOG_CAPACITY] =
    [const { [const { AtomicU64::new(0) }; FIELDS] }; LOG_CAPACITY];
/// The pause in progress (same fields).
static CURRENT: [AtomicU64; FIELDS] = [const { AtomicU64::new(0) }; FIELDS];
static PAUSES: AtomicUsize = AtomicUsize::new(0);
static COLLECTIONS: AtomicU64 = AtomicU64::new(0);
static COLLECTION_START: AtomicU64 = AtomicU64::new(0);
static COLLECTION_NS: AtomicU64 = AtomicU64::new(0);
static EPOCH_NS: AtomicU64 = AtomicU64::new(0);
static INIT: std::sync::Once = std::sync::Once::new();

fn now_ns() -> u64 {
    // Relaxed (here and in the hook): libgc calls the hook under its lock, which orders one
    // collection's events; the log is read after the workload's threads are joined.
    tandem::cpu::monotonic_ns().saturating_sub(EPOCH_NS.load(Ordering::Relaxed))
}

extern "C" fn on_collection_event(event: c_int) {
    let t = now_ns();
    let field = match event {
        GC_EVENT_START => {
            COLLECTIONS.fetch_add(1, Ordering::Relaxed);
            COLLECTION_START.store(t, Ordering::Relaxed);
            return;
        }
        GC_EVENT_END => {
            let start = COLLECTION_START.load(Ordering::Relaxed);
            COLLECTION_NS.fetch_add(t.saturating_sub(start), Ordering::Relaxed);
            return;
        }
        GC_EVENT_PRE_STOP_WORLD => {
            for f in &CURRENT {
                f.store(0, Ordering::Relaxed);
            }
            0
        }
        GC_EVENT_POST_STOP_WORLD => 1,
        GC_EVENT_MARK_START => 2,
        GC_EVENT_MARK_END => 3,
        GC_EVENT_POST_START_WORLD => 4,
        _ => return,
    };
    CURRENT[field].store(t, Ordering::Relaxed);
    if field == 4 {
        let i = PAUSES.fetch_add(1, Ordering::Relaxed);
        if i < LOG_CAPACITY {
            for (dst, src) in LOG[i].iter().zip(&CURRENT) {
                dst.store(src.load(Ordering::Relaxed), Ordering::Relaxed);
            }
        }
    }
}

/// libgc, initialised once per process with the pause hook and parallel markers.
#[derive(Debug)]
pub struct BoehmCollector {
    gc: &'static Libgc,
}

impl BoehmCollector {
    /// Loads and initialises libgc (markers from `GC_MARKERS`); call on the main thread.
    /// `Err` says why libgc is not available.
    pub fn new() -> Result<BoehmCollector, String> {
        let gc = libgc::load()?;
        INIT.call_once(|| {
            EPOCH_NS.store(tandem::cpu::monotonic_ns(), Ordering::Relaxed);
            // SAFETY: the documented start-up sequence for a client whose threads libgc did
            // not create, run once on the main thread before any other libgc call; the hook
            // is a plain function that only touches static atomics.
            unsafe {
                (gc.set_on_collection_event)(Some(on_collection_event));
                (gc.init)();
                (gc.allow_register_threads)();
                (gc.start_mark_threads)();
            }
        });
        Ok(BoehmCollector { gc })
    }
}

impl Collector for BoehmCollector {
    type Mutator = BoehmMutator;
    type Global = BoehmGlobal;

    fn attach(&self) -> Fallible<BoehmMutator> {
        BoehmMutator::attach(self.gc)
    }

    fn global(&self, obj: ObjRef) -> Fallible<BoehmGlobal> {
        // SAFETY: libgc is initialised; uncollectable memory is scanned for roots.
        let slot = unsafe { (self.gc.malloc_uncollectable)(8) } as *mut AtomicPtr<u8>;
        if slot.is_null() {
            return Err(runtime("cannot allocate a global root slot"));
        }
        // SAFETY: a fresh, 8-aligned allocation of 8 bytes.
        unsafe { slot.write(AtomicPtr::new(obj.as_ptr())) };
        Ok(BoehmGlobal { gc: self.gc, slot })
    }

    fn stats(&self) -> GcStats {
        let n = PAUSES.load(Ordering::Relaxed).min(LOG_CAPACITY);
        let pauses = LOG[..n]
            .iter()
            .map(|rec| {
                let f = |k: usize| rec[k].load(Ordering::Relaxed);
                let (stop, stopped, mark0, mark1, end) = (f(0), f(1), f(2), f(3), f(4));
                Pause {
                    start_ns: stop,
                    dur_ns: end.saturating_sub(stop),
                    ttsp_ns: stopped.saturating_sub(stop),
                    mark_ns: if mark0 > 0 {
                        mark1.saturating_sub(mark0)
                    } else {
                        0
                    },
                    kind: "stw".into(),
                }
            })
            .collect::<Vec<_>>();
        let ttsp_max_ns = pauses.iter().map(|p| p.ttsp_ns).max().unwrap_or(0);
        // libgc's threads wait exactly as long as its collections stop them.
        let longest_wait_ns = pauses.iter().map(|p| p.dur_ns).max().unwrap_or(0);
        // SAFETY: libgc is initialised; these take libgc's lock and read counters.
        let (heap, total, parallel) = unsafe {
            (
                (self.gc.get_heap_size)(),
                (self.gc.get_total_bytes)(),
                (self.gc.get_parallel)(),
            )
        };
        GcStats {
            pauses,
            gcs: COLLECTIONS.load(Ordering::Relaxed),
            gc_threads: parallel.max(0) as usize + 1,
            mode: "boehm".into(),
            allocated_bytes: total as u64,
            heap_live_max: None,
            heap_peak: heap as u64,
            collection_ns: Some(COLLECTION_NS.load(Ordering::Relaxed)),
            ttsp_max_ns,
            longest_wait_ns,
            gc_cpu_ns: None,
        }
    }
}

/// A global root: one word of uncollectable (scanned) libgc memory.
#[derive(Debug)]
pub struct BoehmGlobal {
    gc: &'static Libgc,
    slot: *mut AtomicPtr<u8>,
}

// SAFETY: the slot is an atomic word that lives until drop; sharing it is sharing an atomic.
unsafe impl Sync for BoehmGlobal {}
// SAFETY: as above; libgc memory may be freed from any registered thread.
unsafe impl Send for BoehmGlobal {}

impl Global for BoehmGlobal {
    fn get(&self) -> ObjRef {
        // SAFETY: the slot lives until drop. Relaxed: written before the threads that read
        // it are spawned (spawn orders it).
        let p = unsafe { &*self.slot }.load(Ordering::Relaxed);
        ObjRef::from_ptr(p).expect("a benchmark global holds an object")
    }
}

impl Drop for BoehmGlobal {
    fn drop(&mut self) {
        // SAFETY: allocated by GC_malloc_uncollectable in `global`, freed once.
        unsafe { (self.gc.free)(self.slot as *mut c_void) };
    }
}

/// Slots of a Boehm mutator's shadow stack at first: libgc scans all of it at every
/// collection, so it starts small and doubles only when a workload holds more (a final
/// check's walk of a whole graph).
const SHADOW_SLOTS: usize = 1 << 14;
/// The most slots it grows to (as many as a Tandem mutator's default shadow stack).
const SHADOW_SLOTS_MAX: usize = 1 << 20;

/// A registered thread with its shadow stack (in scanned, uncollectable memory).
#[derive(Debug)]
pub struct BoehmMutator {
    gc: &'static Libgc,
    stack: *mut *mut u8,
    depth: usize,
    capacity: usize,
    registered: bool,
    _not_send: PhantomData<*mut ()>,
}

impl BoehmMutator {
    fn attach(gc: &'static Libgc) -> Fallible<BoehmMutator> {
        let mut sb = GcStackBase {
            mem_base: std::ptr::null_mut(),
        };
        // SAFETY: `sb` is a valid GC_stack_base to fill; libgc was initialised by
        // `BoehmCollector::new` and allows thread registration.
        let registered = unsafe {
            if (gc.get_stack_base)(&mut sb) != GC_SUCCESS {
                return Err(runtime("GC_get_stack_base failed"));
            }
            // GC_DUPLICATE on the main thread, which libgc registered itself.
            (gc.register_my_thread)(&sb) == GC_SUCCESS
        };
        // SAFETY: the thread is registered; the result is checked below.
        let stack = unsafe { (gc.malloc_uncollectable)(SHADOW_SLOTS * 8) } as *mut *mut u8;
        if stack.is_null() {
            return Err(runtime("cannot allocate a shadow stack"));
        }
        Ok(BoehmMutator {
            gc,
            stack,
            depth: 0,
            capacity: SHADOW_SLOTS,
            registered,
            _not_send: PhantomData,
        })
    }

    /// Doubles the shadow stack. The old one stays allocated (and scanned) until every
    /// slot is copied, so a collection meanwhile still finds each root in one of them.
    #[cold]
    fn grow(&mut self) -> Fallible<()> {
        if self.capacity >= SHADOW_SLOTS_MAX {
            return Err(runtime("shadow stack overflow"));
        }
        let capacity = self.capacity * 2;
        // SAFETY: the thread is registered; the result is checked below.
        let stack = unsafe { (self.gc.malloc_uncollectable)(capacity * 8) } as *mut *mut u8;
        if stack.is_null() {
            return Err(runtime("cannot grow the shadow stack"));
        }
        // SAFETY: both blocks hold at least `depth` slots and do not overlap; the old one
        // came from GC_malloc_uncollectable and is freed once, here.
        unsafe {
            std::ptr::copy_nonoverlapping(self.stack, stack, self.depth);
            (self.gc.free)(self.stack as *mut c_void);
        }
        self.stack = stack;
        self.capacity = capacity;
        Ok(())
    }

    #[inline(always)]
    fn slot(&self, depth: usize) -> *mut *mut u8 {
        assert!(
            depth < self.depth,
            "a benchmark used a root below its stack"
        );
        // SAFETY: depth < self.depth <= capacity: a slot in use.
        unsafe { self.stack.add(self.depth - 1 - depth) }
    }
}

fn runtime(what: &str) -> Failure {
    Failure::Runtime(format!("libgc: {what}"))
}

/// The header word the Boehm backend stores: a node's `refs << 8 | words`, or an array's
/// `kind << 16 | words` with kind 1, 2, 3 for [`Items::ALL`]; [`shape_of_tag`] reads it back.
fn tag(shape: Shape) -> u64 {
    match shape {
        Shape::Node { refs, words } => (refs << 8 | words) as u64,
        Shape::Array { items, words } => ((items as usize + 1) << 16 | words) as u64,
    }
}

fn shape_of_tag(tag: u64) -> Shape {
    let words = (tag & 0xff) as usize;
    match tag >> 16 {
        0 => Shape::Node {
            refs: (tag >> 8 & 0xff) as usize,
            words,
        },
        kind => Shape::Array {
            items: Items::ALL[kind as usize - 1],
            words,
        },
    }
}

impl Drop for BoehmMutator {
    fn drop(&mut self) {
        // SAFETY: the stack came from GC_malloc_uncollectable; it is freed while the thread
        // is still registered, and only an explicitly registered thread unregisters.
        unsafe {
            (self.gc.free)(self.stack as *mut c_void);
            if self.registered {
                (self.gc.unregister_my_thread)();
            }
        }
    }
}

impl Mutator for BoehmMutator {
    #[inline(always)]
    fn alloc(&mut self, shape: Shape, len: usize) -> Fallible<ObjRef> {
        let bytes = shape.size(len);
        // Memory that holds no references is allocated atomic: libgc never scans it.
        let scanned = match shape {
            Shape::Node { .. } => true,
            Shape::Array { items, .. } => items == Items::Refs,
        };
        // SAFETY: this thread is registered with libgc.
        let p = unsafe {
            if scanned {
                (self.gc.malloc)(bytes)
            } else {
                (self.gc.malloc_atomic)(bytes)
            }
        };
        let obj = ObjRef::from_ptr(p as *mut u8)
            .ok_or_else(|| runtime(&format!("out of memory allocating {bytes} bytes")))?;
        // SAFETY: a fresh allocation of at least the fixed part, 8-aligned (libgc's granule
        // is 16); an array's fixed part holds the length word.
        unsafe {
            layout::set_word(obj, 0, tag(shape));
            if let Shape::Array { .. } = shape {
                layout::set_word(obj, layout::LEN, len as u64);
            }
        }
        Ok(obj)
    }

    unsafe fn shape(&self, obj: ObjRef) -> Shape {
        // SAFETY: the caller passes a live object, whose header `alloc` wrote.
        shape_of_tag(unsafe { layout::word(obj, 0) })
    }

    #[inline]
    fn push_root(&mut self, obj: Option<ObjRef>) -> Fallible<()> {
        if self.depth == self.capacity {
            self.grow()?;
        }
        // SAFETY: depth < capacity: inside the stack allocation.
        unsafe {
            self.stack
                .add(self.depth)
                .write(obj.map_or(std::ptr::null_mut(), ObjRef::as_ptr))
        };
        self.depth += 1;
        Ok(())
    }

    #[inline]
    fn pop_root(&mut self) -> Option<ObjRef> {
        let slot = self.slot(0);
        self.depth -= 1;
        // SAFETY: a slot that was in use; cleared so that it no longer keeps its referent.
        unsafe { ObjRef::from_ptr(slot.replace(std::ptr::null_mut())) }
    }

    #[inline]
    fn root(&mut self, depth: usize) -> Option<ObjRef> {
        // SAFETY: a slot in use.
        ObjRef::from_ptr(unsafe { self.slot(depth).read() })
    }

    #[inline]
    fn set_root(&mut self, depth: usize, obj: Option<ObjRef>) {
        // SAFETY: a slot in use.
        unsafe {
            self.slot(depth)
                .write(obj.map_or(std::ptr::null_mut(), ObjRef::as_ptr))
        };
    }

    #[inline(always)]
    unsafe fn read_ref(&mut self, obj: ObjRef, off: usize) -> Option<ObjRef> {
        // SAFETY: caller's contract: a reference field of a live object.
        unsafe { obj.load_ref(off) }
    }

    #[inline(always)]
    unsafe fn write_ref(&mut self, obj: ObjRef, off: usize, v: Option<ObjRef>) {
        // SAFETY: caller's contract: a reference field of a live object.
        unsafe { obj.store_ref(off, v) }
    }

    #[inline]
    unsafe fn copy_refs(&mut self, dst: ObjRef, to: usize, src: ObjRef, from: usize, n: usize) {
        // SAFETY: caller's contract: both ranges are items of live reference arrays;
        // `copy` is memmove, right for overlapping ranges.
        unsafe {
            std::ptr::copy(
                src.field::<*mut u8>(layout::item(from)),
                dst.field::<*mut u8>(layout::item(to)),
                n,
            )
        }
    }

    #[inline(always)]
    fn safepoint(&mut self) {}

    fn blocking<R>(&mut self, f: impl FnOnce() -> R) -> R {
        f()
    }

    fn collect(&mut self) -> Fallible<()> {
        // SAFETY: a registered thread asks for a full collection.
        unsafe { (self.gc.gcollect)() };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_tags_give_back_every_shape() {
        let nodes = (0..=layout::MAX_NODE_REFS).flat_map(|refs| {
            (0..=layout::MAX_NODE_WORDS).map(move |words| Shape::Node { refs, words })
        });
        let arrays = Items::ALL.into_iter().flat_map(|items| {
            (0..=layout::MAX_ARRAY_WORDS).map(move |words| Shape::Array { items, words })
        });
        for shape in nodes.chain(arrays) {
            assert_eq!(shape_of_tag(tag(shape)), shape);
        }
    }
}
