//! The C ABI of Tandem (`include/tandem.h`): a thin, checked layer over the Rust API.
//!
//! Every entry point validates its arguments, reports failures as a `tandem_result` code
//! (or NULL) with a thread-local message for `tandem_last_error()`, and catches panics so
//! that no unwind crosses into C. The inline fast paths live in the header; the functions
//! here are their slow paths and everything else.
#![warn(missing_docs, unsafe_op_in_unsafe_fn)]
#![allow(clippy::missing_safety_doc)]

pub mod error;
pub mod global;
pub mod options;
pub mod pauses;
pub mod services;
pub mod thread;
pub mod types;

use error::{fail, guard, status, Code, FfiResult};
use std::ffi::{c_char, c_void, CStr};
use std::sync::atomic::Ordering;
use tandem_core::barriers;
use tandem_core::mutator::MutatorCore;
use tandem_core::{Heap, ObjRef, RootCallback, TypeId};

/// `tandem_mutator` as C sees it.
pub type CMutator = MutatorCore;

/// Statistics (`tandem_stats`).
#[repr(C)]
pub struct CStats {
    /// sizeof(tandem_stats), set by the caller.
    pub size: u32,
    /// Padding.
    pub reserved: u32,
    /// Pauses so far, every kind (not cycles).
    pub gcs: u64,
    /// Sum of pauses, ns.
    pub pause_total_ns: u64,
    /// Longest pause, ns.
    pub pause_max_ns: u64,
    /// Most recent pause, ns.
    pub pause_last_ns: u64,
    /// Longest time-to-safepoint, ns.
    pub ttsp_max_ns: u64,
    /// Bytes allocated.
    pub bytes_allocated: u64,
    /// Bytes live after the last GC.
    pub heap_live: u64,
    /// Bytes in use now.
    pub heap_in_use: u64,
    /// Bytes committed now.
    pub heap_committed: u64,
    /// Most bytes committed.
    pub heap_peak: u64,
    /// Allocations failed after a full GC.
    pub out_of_memory: u64,
    /// Verification problems found.
    pub verify_errors: u64,
    /// Pauses per power-of-two microsecond bucket.
    pub pause_histogram: [u64; tandem_core::stats::HISTOGRAM_BUCKETS],
    /// Completed collection cycles.
    pub cycles: u64,
    /// Total time mutators stalled in allocation waiting for a collection.
    pub stall_ns: u64,
    /// Longest time one mutator stood still at a safepoint, as it saw it.
    pub mutator_stop_max_ns: u64,
    /// Mutator safepoint stops per power-of-two microsecond bucket.
    pub mutator_stop_histogram: [u64; tandem_core::stats::HISTOGRAM_BUCKETS],
    /// Longest single allocation stall, ns.
    pub stall_max_ns: u64,
    /// Longest any mutator waited on the collector (pause, observed stop or stall), ns.
    pub longest_wait_ns: u64,
    /// Time mutators spent marking in assists, ns (absent from the first layout).
    pub assist_ns: u64,
    /// Objects mutators scanned in assists.
    pub assist_objects: u64,
    /// Bytes copied by evacuation (absent from the first two layouts).
    pub evacuated_bytes: u64,
    /// Objects copied by evacuation.
    pub evacuated_objects: u64,
    /// Weak references cleared (absent from the first three layouts).
    pub weakrefs_cleared: u64,
    /// Objects delivered to finalizer queues.
    pub finalized: u64,
    /// Destructors called.
    pub destructed: u64,
    /// Raw memory owned by live objects.
    pub memory_pressure: u64,
    /// Longest a mutator took to run again after a resume, ns (absent from the first four
    /// layouts).
    pub mutator_resume_max_ns: u64,
    /// The part of each mutator stop after the resume, per power-of-two microsecond bucket.
    pub mutator_resume_histogram: [u64; tandem_core::stats::HISTOGRAM_BUCKETS],
    /// CPU time of the collector's own threads, ns (absent from the first five layouts).
    pub collector_cpu_ns: u64,
    /// Nursery cycles among `cycles` (absent from the first six layouts).
    pub nursery_cycles: u64,
}

/// Size of `tandem_stats` before the assist fields: clients built against that header
/// still get every field they know.
const STATS_V1_SIZE: usize = std::mem::offset_of!(CStats, assist_ns);
/// Size of `tandem_stats` before the evacuation fields.
const STATS_V2_SIZE: usize = std::mem::offset_of!(CStats, evacuated_bytes);
/// Size of `tandem_stats` before the VM services' fields.
const STATS_V3_SIZE: usize = std::mem::offset_of!(CStats, weakrefs_cleared);
/// Size of `tandem_stats` before the resume statistics.
const STATS_V4_SIZE: usize = std::mem::offset_of!(CStats, mutator_resume_max_ns);
/// Size of `tandem_stats` before the collector's CPU time.
const STATS_V5_SIZE: usize = std::mem::offset_of!(CStats, collector_cpu_ns);
/// Size of `tandem_stats` before the nursery cycles.
const STATS_V6_SIZE: usize = std::mem::offset_of!(CStats, nursery_cycles);

/// The library version, e.g. "0.1.0".
#[no_mangle]
pub extern "C" fn tandem_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr() as *const c_char
}

/// The calling thread's last error message ("" if none).
#[no_mangle]
pub extern "C" fn tandem_last_error() -> *const c_char {
    error::last_error_ptr()
}

/// The code of the calling thread's last error (TANDEM_OK if none), e.g. after NULL.
#[no_mangle]
pub extern "C" fn tandem_last_error_code() -> i32 {
    error::last_error_code() as i32
}

/// Starts the runtime with `opts` (NULL: defaults), overridden by `TANDEM_*` variables.
#[no_mangle]
pub unsafe extern "C" fn tandem_init(opts: *const options::CTandemOptions) -> i32 {
    status(|| {
        // SAFETY: the caller passes NULL or a readable tandem_options (API contract).
        let config = unsafe { options::config_from(opts) }?.apply_env()?;
        // After the environment: `TANDEM_LOG` is usually given there.
        options::install_log_subscriber(&config.log)?;
        types::reset_layouts();
        let heap = Heap::with_config(config)?;
        options::remember_effective(heap.config());
        global::install(heap)?;
        services::handle_forks();
        Ok(())
    })
}

use tandem_core::mutator::ABI_VERSION;

/// The `TANDEM_ABI_VERSION` this library implements.
#[no_mangle]
pub extern "C" fn tandem_abi_version() -> u32 {
    ABI_VERSION
}

/// `tandem_init` after checking that the caller was compiled against this library's ABI
/// (the header's `tandem_init` macro passes its `TANDEM_ABI_VERSION`).
#[no_mangle]
pub unsafe extern "C" fn tandem_init_abi(
    abi_version: u32,
    opts: *const options::CTandemOptions,
) -> i32 {
    if abi_version != ABI_VERSION {
        return status(|| {
            Err(tandem_core::Error::State(format!(
                "this program was compiled against tandem.h with TANDEM_ABI_VERSION \
                 {abi_version}, but the library implements {ABI_VERSION}: recompile it \
                 against the library's header"
            ))
            .into())
        });
    }
    // SAFETY: forwarded to the caller's contract.
    unsafe { tandem_init(opts) }
}

/// Stops the runtime. Threads still attached get errors from their next slow-path call.
#[no_mangle]
pub extern "C" fn tandem_shutdown() -> i32 {
    status(|| {
        tandem_core::callback::check("tandem_shutdown")?;
        let heap = global::uninstall()?;
        // Dropping the heap waits for a collection in progress, which may be waiting for
        // this very thread to stop: let it run meanwhile.
        global::in_native_region(|| drop(heap));
        Ok(())
    })
}

/// Registers a type; its id goes to `*out`.
#[no_mangle]
pub unsafe extern "C" fn tandem_register_type(info: *const types::CTypeInfo, out: *mut u32) -> i32 {
    status(|| {
        if out.is_null() {
            return fail(Code::InvalidArgument, "the output type id pointer is NULL");
        }
        // SAFETY: the caller's contract for `info`.
        let ti = unsafe { types::convert(info) }?;
        let (id, verify) = global::with_heap(|h| {
            let verify = h.config().verify;
            h.register_type(ti.clone())
                .map(|id| (id, verify))
                .map_err(|e| {
                    // SAFETY: non-null (converted above); `name` is NULL or NUL-terminated.
                    let name = unsafe { (*info).name };
                    let mut fe = error::FfiError::from(e);
                    if !name.is_null() {
                        // SAFETY: as above.
                        let n = unsafe { CStr::from_ptr(name) }.to_string_lossy();
                        fe.1 = format!("type \"{n}\": {}", fe.1);
                    }
                    fe
                })
        })?;
        types::publish_layout(id.0, &ti, verify);
        // SAFETY: non-null, writable by the caller's contract.
        unsafe { out.write(id.0) };
        Ok(())
    })
}

/// Attaches the calling thread; NULL on error.
#[no_mangle]
pub extern "C" fn tandem_attach_thread() -> *mut CMutator {
    guard(std::ptr::null_mut(), || {
        tandem_core::callback::check("tandem_attach_thread")?;
        global::attach()
    })
    .0
}

/// Detaches the calling thread's mutator `m`.
#[no_mangle]
pub extern "C" fn tandem_detach_thread(m: *mut CMutator) -> i32 {
    status(|| global::detach(m))
}

/// The slow paths of the allocation calls. The finalizer triggers due run first, while the
/// thread holds no new object (those that a collection inside this allocation makes due run
/// at the thread's next slow path or poll): run after it, with the new object kept in a
/// root slot, they let a collection hand the object to the VM's verify hook, and to heap
/// walks, before the VM had initialised it (an outside VM's checksum hook failed on such
/// objects under `TANDEM_VERIFY`).
fn alloc_with(
    m: *mut CMutator,
    alloc: impl FnOnce(&mut tandem_core::Mutator) -> tandem_core::Result<ObjRef>,
) -> *mut c_void {
    guard(std::ptr::null_mut(), || {
        services::run_due_calls(m);
        global::with_running_mutator(m, "an allocation", |mm| {
            Ok(alloc(mm)?.as_ptr() as *mut c_void)
        })
    })
    .0
}

/// The slow path of `tandem_alloc`: allocates a zeroed object; NULL on error.
#[no_mangle]
pub extern "C" fn tandem_alloc_slow(m: *mut CMutator, ty: u32, length: usize) -> *mut c_void {
    alloc_with(m, |mm| mm.alloc(TypeId(ty), length))
}

/// Allocates an object that never moves; NULL on error.
#[no_mangle]
pub extern "C" fn tandem_alloc_nonmoving(m: *mut CMutator, ty: u32, length: usize) -> *mut c_void {
    alloc_with(m, |mm| mm.alloc_nonmoving(TypeId(ty), length))
}

/// Allocates an object of a pointer-free type whose bytes the VM writes itself (a large
/// one's reused pages are not cleared); NULL on error.
#[no_mangle]
pub extern "C" fn tandem_alloc_uninit(m: *mut CMutator, ty: u32, length: usize) -> *mut c_void {
    alloc_with(m, |mm| mm.alloc_uninit(TypeId(ty), length))
}

/// The slow path of `tandem_push_root`: reports overflow (or a bad mutator).
#[no_mangle]
pub extern "C" fn tandem_push_root_slow(m: *mut CMutator, v: *mut c_void) -> i32 {
    status(|| global::with_mutator(m, |mm| Ok(mm.push_root(ObjRef::from_ptr(v as *mut u8))?)))
}

/// The slow path of `tandem_pop_root`: reports underflow (or a bad mutator); returns NULL.
#[no_mangle]
pub extern "C" fn tandem_pop_root_slow(m: *mut CMutator) -> *mut c_void {
    guard(std::ptr::null_mut(), || {
        global::with_mutator(m, |mm| {
            Ok(mm
                .pop_root()?
                .map_or(std::ptr::null_mut(), |o| o.as_ptr() as *mut c_void))
        })
    })
    .0
}

/// The slow path of `tandem_pop_roots_to`: reports a depth above the current one (or a bad
/// mutator).
#[no_mangle]
pub extern "C" fn tandem_pop_roots_to_slow(m: *mut CMutator, depth: usize) -> i32 {
    status(|| global::with_mutator(m, |mm| Ok(mm.pop_roots_to(depth)?)))
}

/// Registers a global root slot.
#[no_mangle]
pub unsafe extern "C" fn tandem_add_root(slot: *mut *mut c_void) -> i32 {
    // SAFETY: the caller keeps the slot valid until removed (API contract).
    status(|| global::with_heap(|h| Ok(unsafe { h.add_root(slot as *mut *mut u8) }?)))
}

/// Unregisters a global root slot.
#[no_mangle]
pub extern "C" fn tandem_remove_root(slot: *mut *mut c_void) -> i32 {
    status(|| global::with_heap(|h| Ok(h.remove_root(slot as *mut *mut u8)?)))
}

/// Sets (NULL: clears) the VM's root callback.
#[no_mangle]
pub unsafe extern "C" fn tandem_set_root_callback(
    cb: Option<RootCallback>,
    data: *mut c_void,
) -> i32 {
    status(|| {
        global::with_heap(|h| {
            // SAFETY: the VM's callback contract (documented in tandem.h).
            unsafe { h.set_root_callback(cb, data) };
            Ok(())
        })
    })
}

/// C out-of-memory handler.
pub type OomFn = unsafe extern "C" fn(size: usize, data: *mut c_void);

/// Sets (NULL: clears) the out-of-memory handler.
#[no_mangle]
pub extern "C" fn tandem_set_oom_handler(f: Option<OomFn>, data: *mut c_void) -> i32 {
    let data = data as usize;
    status(|| {
        global::with_heap(|h| {
            h.set_oom_handler(f.map(|f| {
                Box::new(move |n: usize| {
                    // SAFETY: the VM's handler contract (documented in tandem.h).
                    unsafe { f(n, data as *mut c_void) }
                }) as Box<dyn Fn(usize) + Send + Sync>
            }));
            Ok(())
        })
    })
}

pub(crate) fn check_obj(obj: *mut c_void, what: &str) -> FfiResult<ObjRef> {
    let Some(o) = ObjRef::from_ptr(obj as *mut u8).filter(|o| o.addr() % 8 == 0) else {
        return fail(
            Code::InvalidArgument,
            format!("{what}: {obj:p} is NULL or misaligned"),
        );
    };
    if !global::maybe_object(o.addr()) {
        return fail(
            Code::InvalidArgument,
            format!(
                "{what}: {obj:p} is not an object of the Tandem heap (malloc'd or stack memory?)"
            ),
        );
    }
    Ok(o)
}

fn check_slot(slot: *mut *mut c_void, what: &str) -> FfiResult<()> {
    if slot.is_null() || !(slot as usize).is_multiple_of(8) {
        return fail(
            Code::InvalidArgument,
            format!("{what}: slot {slot:p} is NULL or misaligned"),
        );
    }
    Ok(())
}

/// The slow path of `tandem_write_ref` (taken while a concurrent phase runs).
#[no_mangle]
pub unsafe extern "C" fn tandem_write_ref_slow(
    m: *mut CMutator,
    obj: *mut c_void,
    slot: *mut *mut c_void,
    value: *mut c_void,
) -> i32 {
    // The common case: this thread's own mutator storing into an object of the heap (in
    // generational mode every store while a cycle marks comes here). Made without the
    // error guard, which cost more than the barrier (binary-trees 18/t2, generational:
    // 18% of all samples in this path); the store reports no error, and checked arguments
    // leave nothing for the guard to explain. The checks are `check_obj`'s and
    // `check_slot`'s without their messages: calling those took 13 ns a store instead of 7.
    if !slot.is_null() && (slot as usize).is_multiple_of(8) {
        if let Some(o) = ObjRef::from_ptr(obj as *mut u8)
            .filter(|o| o.addr().is_multiple_of(8) && global::maybe_object(o.addr()))
        {
            let off = (slot as usize).wrapping_sub(o.addr());
            let v = ObjRef::from_ptr(value as *mut u8);
            // SAFETY: the caller passes a reference slot of live object `obj`.
            let stored = global::with_own_mutator_mut(m, |mm| unsafe { mm.write_ref(o, off, v) });
            if stored.is_some() {
                return 0;
            }
        }
    }
    let r = status(|| {
        let o = check_obj(obj, "tandem_write_ref")?;
        check_slot(slot, "tandem_write_ref")?;
        let off = (slot as usize).wrapping_sub(o.addr());
        global::with_mutator(m, |mm| {
            // SAFETY: the caller passes a reference slot of live object `obj`.
            unsafe { mm.write_ref(o, off, ObjRef::from_ptr(value as *mut u8)) };
            Ok(())
        })
    });
    if r != 0 {
        // SAFETY: forwarded from the caller.
        unsafe { store_despite_rejection(m, slot, value) };
    }
    r
}

/// A store the slow path rejected (a bad holder, another thread's mutator) although only
/// `TANDEM_VERIFY`'s STORE audit sent it there: made as the inline path would have made it
/// without verification, so that verifying never changes what the program does, and
/// counted as a verification error. While WRITE is on (marking) the store is not made, as
/// before: it cannot go around the SATB log.
///
/// # Safety
/// `m` is the mutator the inline path read its barrier byte from.
unsafe fn store_despite_rejection(m: *mut CMutator, slot: *mut *mut c_void, value: *mut c_void) {
    if m.is_null() || slot.is_null() || !(slot as usize).is_multiple_of(8) {
        return;
    }
    // SAFETY: the caller's contract: the inline fast path read this byte just now.
    let barriers = unsafe { &*m }.barriers.load(Ordering::Relaxed);
    if barriers & barriers::STORE == 0 || barriers & barriers::WRITE != 0 {
        return;
    }
    // SAFETY: a non-null, aligned reference slot the VM passed (as the inline path uses it).
    unsafe { &*(slot as *const std::sync::atomic::AtomicPtr<c_void>) }
        .store(value, Ordering::Release);
    let why = error::last_error_text();
    let _ = global::with_heap(|h| {
        h.record_verify_error(format!("store audit (TANDEM_VERIFY): {why}"));
        Ok(())
    });
}

/// The slow path of `tandem_object_barrier` (taken while marking runs): logs the
/// object's reference fields once per cycle.
#[no_mangle]
pub unsafe extern "C" fn tandem_object_barrier_slow(m: *mut CMutator, obj: *mut c_void) -> i32 {
    status(|| {
        let o = check_obj(obj, "tandem_object_barrier")?;
        global::with_mutator(m, |mm| {
            // SAFETY: the caller passes a live, initialised object.
            unsafe { mm.object_barrier(o) };
            Ok(())
        })
    })
}

/// The slow path of `tandem_array_copy_refs`: copies `n` reference slots (overlap allowed).
#[no_mangle]
pub unsafe extern "C" fn tandem_array_copy_refs_slow(
    m: *mut CMutator,
    dst_obj: *mut c_void,
    dst: *mut *mut c_void,
    src_obj: *mut c_void,
    src: *const *mut c_void,
    n: usize,
) -> i32 {
    status(|| {
        let d = check_obj(dst_obj, "tandem_array_copy_refs (dst_obj)")?;
        let s = check_obj(src_obj, "tandem_array_copy_refs (src_obj)")?;
        if n == 0 {
            return global::with_mutator(m, |_| Ok(()));
        }
        check_slot(dst, "tandem_array_copy_refs (dst)")?;
        check_slot(src as *mut *mut c_void, "tandem_array_copy_refs (src)")?;
        let dst_off = (dst as usize).wrapping_sub(d.addr());
        let src_off = (src as usize).wrapping_sub(s.addr());
        global::with_mutator(m, |mm| {
            // SAFETY: the caller passes n reference slots of each live object; the core
            // logs the overwritten range while marking, then copies (overlap allowed).
            unsafe { mm.array_copy_refs(d, dst_off, s, src_off, n) };
            Ok(())
        })
    })
}

/// The slow path of `tandem_read_ref` (taken while evacuation runs).
#[no_mangle]
pub unsafe extern "C" fn tandem_read_ref_slow(
    m: *mut CMutator,
    obj: *mut c_void,
    slot: *mut *mut c_void,
) -> *mut c_void {
    // The common case while objects move: this thread's own mutator loads a reference that
    // needs no resolving. Answered without the error guard, which costs more than the load
    // (callgrind: ~135 instructions per call through it).
    if !slot.is_null()
        && (slot as usize).is_multiple_of(8)
        && !obj.is_null()
        && (obj as usize).is_multiple_of(8)
    {
        // SAFETY: the caller passes a reference slot of a live object (the header's
        // contract for tandem_read_ref): an aligned, pointer-sized word.
        let word = unsafe { &*(slot as *const std::sync::atomic::AtomicPtr<u8>) };
        if let Some(v) = global::with_own_mutator(m, |mm| mm.read_ref_unmoved(word)).flatten() {
            return v.cast();
        }
    }
    guard(std::ptr::null_mut(), || {
        let o = check_obj(obj, "tandem_read_ref")?;
        check_slot(slot, "tandem_read_ref")?;
        let off = (slot as usize).wrapping_sub(o.addr());
        global::with_mutator(m, |mm| {
            // SAFETY: the caller passes a reference slot of live object `obj`.
            let v = unsafe { mm.read_ref(o, off) };
            Ok(v.map_or(std::ptr::null_mut(), |v| v.as_ptr() as *mut c_void))
        })
    })
    .0
}

/// The slow path of `tandem_safepoint`: parks while the collector runs; fails with
/// `TANDEM_ERR_INTERNAL` once the collector has failed.
#[no_mangle]
pub extern "C" fn tandem_safepoint_slow(m: *mut CMutator) -> i32 {
    status(|| services::then_due_calls(m, global::with_mutator(m, |mm| Ok(mm.safepoint()?))))
}

/// Enters a native (blocking) region.
#[no_mangle]
pub extern "C" fn tandem_enter_native(m: *mut CMutator) -> i32 {
    status(|| {
        global::with_mutator(m, |mm| {
            if mm.core().ts.load() != tandem_core::safepoint::RUNNING {
                return fail(
                    Code::State,
                    "tandem_enter_native: already in a native region",
                );
            }
            mm.enter_native();
            Ok(())
        })
    })
}

/// Leaves a native region, waiting while a collection runs.
#[no_mangle]
pub extern "C" fn tandem_leave_native(m: *mut CMutator) -> i32 {
    status(|| {
        global::with_mutator(m, |mm| {
            if mm.core().ts.load() != tandem_core::safepoint::IN_NATIVE {
                return fail(Code::State, "tandem_leave_native: not in a native region");
            }
            Ok(mm.leave_native()?)
        })
    })
}

/// Runs a full collection.
#[no_mangle]
pub extern "C" fn tandem_collect(m: *mut CMutator) -> i32 {
    status(|| global::with_running_mutator(m, "tandem_collect", |mm| Ok(mm.collect()?)))
}

/// The identity hash of `obj`, stable for the object's lifetime; 0 on error.
#[no_mangle]
pub extern "C" fn tandem_identity_hash(m: *mut CMutator, obj: *mut c_void) -> u64 {
    guard(0, || {
        let o = check_obj(obj, "tandem_identity_hash")?;
        global::with_mutator(m, |mm| Ok(mm.identity_hash(o)))
    })
    .0
}

/// Pins `obj` (counted): it does not move until as many `tandem_unpin` calls.
#[no_mangle]
pub extern "C" fn tandem_pin(m: *mut CMutator, obj: *mut c_void) -> i32 {
    status(|| {
        let o = check_obj(obj, "tandem_pin")?;
        global::with_mutator(m, |mm| Ok(mm.pin(o)?))
    })
}

/// Removes one pin of `obj`; `TANDEM_ERR_STATE` when it has none.
#[no_mangle]
pub extern "C" fn tandem_unpin(m: *mut CMutator, obj: *mut c_void) -> i32 {
    status(|| {
        let o = check_obj(obj, "tandem_unpin")?;
        global::with_mutator(m, |mm| Ok(mm.unpin(o)?))
    })
}

/// 1 when `obj` is pinned (counted pins, or allocated non-moving), 0 when not or on error.
#[no_mangle]
pub extern "C" fn tandem_is_pinned(m: *mut CMutator, obj: *mut c_void) -> i32 {
    guard(0, || {
        let o = check_obj(obj, "tandem_is_pinned")?;
        global::with_mutator(m, |mm| Ok(i32::from(mm.is_pinned(o))))
    })
    .0
}

/// Fills `*out` (whose `size` field the caller sets to sizeof(tandem_stats)).
#[no_mangle]
pub unsafe extern "C" fn tandem_get_stats(out: *mut CStats) -> i32 {
    status(|| {
        if out.is_null() {
            return fail(Code::InvalidArgument, "tandem_get_stats: NULL output");
        }
        // SAFETY: non-null; the caller passes a writable tandem_stats whose size it set.
        let size = unsafe { (*out).size } as usize;
        if ![
            std::mem::size_of::<CStats>(),
            STATS_V1_SIZE,
            STATS_V2_SIZE,
            STATS_V3_SIZE,
            STATS_V4_SIZE,
            STATS_V5_SIZE,
            STATS_V6_SIZE,
        ]
        .contains(&size)
        {
            return fail(
                Code::InvalidArgument,
                format!(
                    "tandem_stats.size is {size}, expected {}: set it to sizeof(tandem_stats)",
                    std::mem::size_of::<CStats>()
                ),
            );
        }
        let s = global::with_heap(|h| Ok(h.stats()))?;
        let c = CStats {
            size: size as u32,
            reserved: 0,
            gcs: s.gcs,
            pause_total_ns: s.pause_total_ns,
            pause_max_ns: s.pause_max_ns,
            pause_last_ns: s.pauses.last().map_or(0, |p| p.duration_ns),
            ttsp_max_ns: s.ttsp_max_ns,
            bytes_allocated: s.bytes_allocated,
            heap_live: s.heap_live as u64,
            heap_in_use: s.heap_in_use as u64,
            heap_committed: s.heap_committed as u64,
            heap_peak: s.heap_peak as u64,
            out_of_memory: s.out_of_memory,
            verify_errors: s.verify_errors,
            pause_histogram: s.pause_histogram,
            cycles: s.cycles,
            stall_ns: s.stall_ns,
            mutator_stop_max_ns: s.mutator_stop_max_ns,
            mutator_stop_histogram: s.mutator_stop_histogram,
            stall_max_ns: s.stall_max_ns,
            longest_wait_ns: s.longest_wait_ns(),
            assist_ns: s.assist_ns,
            assist_objects: s.assist_objects,
            evacuated_bytes: s.evacuated_bytes,
            evacuated_objects: s.evacuated_objects,
            weakrefs_cleared: s.weakrefs_cleared,
            finalized: s.finalized,
            destructed: s.destructed,
            memory_pressure: s.memory_pressure as u64,
            mutator_resume_max_ns: s.mutator_resume_max_ns,
            mutator_resume_histogram: s.mutator_resume_histogram,
            collector_cpu_ns: s.collector_cpu_ns,
            nursery_cycles: s.nursery_cycles,
        };
        // SAFETY: as above: the caller's struct has `size` writable bytes, and `size` is
        // at most ours.
        unsafe {
            std::ptr::copy_nonoverlapping(&c as *const CStats as *const u8, out as *mut u8, size)
        };
        Ok(())
    })
}
