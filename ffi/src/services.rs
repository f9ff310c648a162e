//! The Python VM services of the C ABI: weak references, finalizer queues, destructors'
//! opt-out, identity, memory pressure, shrinking, sizes and collection control.
//!
//! Finalizer triggers are VM code that calls back into Tandem with its mutator, so they
//! never run while this layer holds the mutator: the slow paths take the due calls and run
//! them outside it (see [`run_due_calls`]), the allocation calls before they allocate.

use crate::error::{fail, guard, status, Code, FfiResult};
use crate::{check_obj, global, CMutator};
use std::ffi::c_void;
use tandem_core::{CollectLevel, ObjRef};

fn ptr(o: Option<ObjRef>) -> *mut c_void {
    o.map_or(std::ptr::null_mut(), |o| o.as_ptr() as *mut c_void)
}

/// Runs the finalizer triggers due on this thread; none when `m` is not a running mutator
/// (inside a native region the VM code they run must not touch the heap).
pub fn run_due_calls(m: *mut CMutator) {
    if let Ok(calls) =
        global::with_running_mutator(m, "finalizer triggers", |mm| Ok(mm.due_calls()))
    {
        calls.run();
    }
}

/// A new weakref to `target` (NULL: an empty one); NULL on error.
#[no_mangle]
pub extern "C" fn tandem_weakref_new(m: *mut CMutator, target: *mut c_void) -> *mut c_void {
    guard(std::ptr::null_mut(), || {
        let t = if target.is_null() {
            None
        } else {
            Some(check_obj(target, "tandem_weakref_new")?)
        };
        global::with_running_mutator(m, "tandem_weakref_new", |mm| {
            Ok(mm.weakref_new(t)?.as_ptr() as *mut c_void)
        })
    })
    .0
}

/// The target of weakref `wr`; NULL once it died (or on error: see tandem_last_error_code).
#[no_mangle]
pub extern "C" fn tandem_weakref_get(m: *mut CMutator, wr: *mut c_void) -> *mut c_void {
    guard(std::ptr::null_mut(), || {
        let w = check_obj(wr, "tandem_weakref_get")?;
        global::with_running_mutator(m, "tandem_weakref_get", |mm| Ok(ptr(mm.weakref_get(w)?)))
    })
    .0
}

/// A finalizer queue's trigger (C).
pub type TriggerFn = unsafe extern "C" fn(data: *mut c_void);

/// Creates a finalizer queue whose `trigger` (may be NULL) runs on a mutator thread after
/// each cycle that queued objects; its id goes to `*out`.
#[no_mangle]
pub unsafe extern "C" fn tandem_finalizer_queue_new(
    trigger: Option<TriggerFn>,
    data: *mut c_void,
    out: *mut u32,
) -> i32 {
    let data = data as usize;
    status(|| {
        if out.is_null() {
            return fail(Code::InvalidArgument, "the output queue id pointer is NULL");
        }
        let id = global::with_heap(|h| {
            Ok(h.finalizer_queue(trigger.map(|f| {
                Box::new(move || {
                    // SAFETY: the VM's trigger contract (documented in tandem.h).
                    unsafe { f(data as *mut c_void) }
                }) as Box<dyn Fn() + Send + Sync>
            }))?)
        })?;
        // SAFETY: non-null, writable by the caller's contract.
        unsafe { out.write(id) };
        Ok(())
    })
}

/// Registers `obj` with finalizer queue `queue`.
#[no_mangle]
pub extern "C" fn tandem_register_finalizer(m: *mut CMutator, queue: u32, obj: *mut c_void) -> i32 {
    status(|| {
        let o = check_obj(obj, "tandem_register_finalizer")?;
        global::with_mutator(m, |mm| Ok(mm.register_finalizer(queue, o)?))
    })
}

/// The next dead object of `queue`, or NULL when it has none (or on error).
#[no_mangle]
pub extern "C" fn tandem_next_dead(m: *mut CMutator, queue: u32) -> *mut c_void {
    guard(std::ptr::null_mut(), || {
        global::with_mutator(m, |mm| Ok(ptr(mm.next_dead(queue)?)))
    })
    .0
}

/// Neither the destructor nor a finalizer queue will see `obj` die.
#[no_mangle]
pub extern "C" fn tandem_ignore_finalizer(m: *mut CMutator, obj: *mut c_void) -> i32 {
    status(|| {
        let o = check_obj(obj, "tandem_ignore_finalizer")?;
        global::with_mutator(m, |mm| {
            mm.ignore_finalizer(o);
            Ok(())
        })
    })
}

/// An id unique among live objects and stable for `obj`'s life; 0 on error.
#[no_mangle]
pub extern "C" fn tandem_id(m: *mut CMutator, obj: *mut c_void) -> u64 {
    guard(0, || {
        let o = check_obj(obj, "tandem_id")?;
        global::with_mutator(m, |mm| Ok(mm.id(o)?))
    })
    .0
}

/// Counts `bytes` of raw memory owned by `obj` toward collection triggers while it lives.
#[no_mangle]
pub extern "C" fn tandem_add_memory_pressure(
    m: *mut CMutator,
    obj: *mut c_void,
    bytes: usize,
) -> i32 {
    status(|| {
        let o = check_obj(obj, "tandem_add_memory_pressure")?;
        global::with_mutator(m, |mm| {
            mm.add_memory_pressure(o, bytes);
            Ok(())
        })
    })
}

/// Shrinks var-size `obj` to `length` items in place: 1 when done, 0 when it cannot (or on
/// error, with tandem_last_error_code set).
#[no_mangle]
pub extern "C" fn tandem_shrink(m: *mut CMutator, obj: *mut c_void, length: usize) -> i32 {
    guard(0, || {
        let o = check_obj(obj, "tandem_shrink")?;
        global::with_mutator(m, |mm| Ok(i32::from(mm.shrink(o, length)?)))
    })
    .0
}

/// The size of `obj` in bytes (header included); 0 on error.
#[no_mangle]
pub extern "C" fn tandem_sizeof(obj: *mut c_void) -> usize {
    guard(0, || {
        let o = check_obj(obj, "tandem_sizeof")?;
        // SAFETY: the VM passes a live object (API contract).
        global::with_heap(|h| Ok(unsafe { h.size_of(o) }?))
    })
    .0
}

/// Stores the type of `obj` in `*out`.
#[no_mangle]
pub unsafe extern "C" fn tandem_type_of(obj: *mut c_void, out: *mut u32) -> i32 {
    status(|| {
        if out.is_null() {
            return fail(Code::InvalidArgument, "tandem_type_of: out is NULL");
        }
        let o = check_obj(obj, "tandem_type_of")?;
        // SAFETY: the VM passes a live object (API contract).
        let ty = global::with_heap(|h| Ok(unsafe { h.type_of(o) }?))?;
        // SAFETY: non-null, writable by the caller's contract.
        unsafe { out.write(ty.0) };
        Ok(())
    })
}

/// 1 when the collector may move `obj`, 0 when it never will (or on error).
#[no_mangle]
pub extern "C" fn tandem_can_move(obj: *mut c_void) -> i32 {
    guard(0, || {
        let o = check_obj(obj, "tandem_can_move")?;
        // SAFETY: the VM passes a live object (API contract).
        global::with_heap(|h| Ok(i32::from(unsafe { h.can_move(o) })))
    })
    .0
}

/// Changes the heap maximum at run time (at most the `heap_max` given at init).
#[no_mangle]
pub extern "C" fn tandem_set_heap_max(bytes: usize) -> i32 {
    status(|| global::with_heap(|h| Ok(h.set_heap_max(bytes)?)))
}

/// Runs a collection to `level` (TANDEM_COLLECT_START, _FINISH, _FULL or _YOUNG).
#[no_mangle]
pub extern "C" fn tandem_collect_ex(m: *mut CMutator, level: i32) -> i32 {
    status(|| {
        let level = match level {
            0 => CollectLevel::Start,
            1 => CollectLevel::Finish,
            2 => CollectLevel::Full,
            3 => CollectLevel::Young,
            _ => {
                return fail(
                    Code::InvalidArgument,
                    format!("tandem_collect_ex: unknown level {level}"),
                )
            }
        };
        global::with_running_mutator(m, "tandem_collect_ex", |mm| Ok(mm.collect_ex(level)?))?;
        if matches!(level, CollectLevel::Full | CollectLevel::Young) {
            run_due_calls(m);
        }
        Ok(())
    })
}

/// Called with each referent (C).
pub type ReferentFn = unsafe extern "C" fn(referent: *mut c_void, data: *mut c_void);

/// Calls `f(referent, data)` for each non-null reference of `obj`, in slot order.
#[no_mangle]
pub extern "C" fn tandem_referents(
    m: *mut CMutator,
    obj: *mut c_void,
    f: Option<ReferentFn>,
    data: *mut c_void,
) -> i32 {
    status(|| {
        let o = check_obj(obj, "tandem_referents")?;
        let Some(f) = f else {
            return fail(Code::InvalidArgument, "tandem_referents: NULL callback");
        };
        // The callback may call Tandem with this mutator, collections included, which may
        // move `obj` and its referents (or shrink `obj`): `obj` stays on the shadow stack
        // meanwhile, and each referent is read when its turn comes, if still there.
        let (offsets, base) = global::with_mutator(m, |mm| {
            let offsets = mm.reference_offsets(o)?;
            mm.push_root(Some(o))?;
            Ok((offsets, mm.root_depth()))
        })?;
        let data = data as usize;
        for off in offsets {
            let r = global::with_mutator(m, |mm| {
                let o = own_root(mm, base)?;
                Ok(mm.referent_at(o, off)?)
            })?;
            if let Some(r) = r {
                // SAFETY: the VM's callback contract (documented in tandem.h).
                unsafe { f(r.as_ptr() as *mut c_void, data as *mut c_void) };
            }
        }
        global::with_mutator(m, |mm| {
            own_root(mm, base)?;
            mm.pop_root()?;
            Ok(())
        })
    })
}

/// The object tandem_referents pushed as the `base`-th root, while the shadow stack is as
/// deep as it left it; a callback that left it deeper or shallower ends the walk with an
/// error (what it pushed, and tandem_referents' own root, stay for the VM to pop).
fn own_root(mm: &mut tandem_core::Mutator, base: usize) -> FfiResult<ObjRef> {
    match mm.peek_root(0).flatten() {
        Some(o) if mm.root_depth() == base => Ok(o),
        _ => fail(
            Code::State,
            "tandem_referents: the callback left the shadow stack deeper or shallower than \
             it found it",
        ),
    }
}

/// Called with each root slot (C).
pub type RootSlotFn = unsafe extern "C" fn(slot: *mut *mut c_void, data: *mut c_void);

/// Calls `f(slot, data)` for every root slot while every thread is stopped between cycles.
#[no_mangle]
pub extern "C" fn tandem_walk_roots(f: Option<RootSlotFn>, data: *mut c_void) -> i32 {
    let data = data as usize;
    status(|| {
        let Some(f) = f else {
            return fail(Code::InvalidArgument, "tandem_walk_roots: NULL callback");
        };
        tandem_core::callback::check("tandem_walk_roots")?;
        global::with_heap(|h| {
            // SAFETY: the VM's callback contract (documented in tandem.h).
            h.walk_roots(|s| unsafe { f(s as *mut *mut c_void, data as *mut c_void) })?;
            Ok(())
        })
    })
}

/// Writes every reachable object to file descriptor `fd` (see tandem.h for the format).
#[no_mangle]
pub extern "C" fn tandem_dump_heap(fd: i32) -> i32 {
    use std::os::fd::FromRawFd;
    status(|| {
        if fd < 0 {
            return fail(
                Code::InvalidArgument,
                format!("tandem_dump_heap: bad fd {fd}"),
            );
        }
        tandem_core::callback::check("tandem_dump_heap")?;
        // SAFETY: the caller's open descriptor, borrowed (ManuallyDrop: never closed here).
        let mut file = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
        global::with_heap(|h| Ok(h.dump_heap(&mut *file)?))
    })
}

/// The VM's check of one reachable object (C): 0 when it is fine.
pub type VerifyFn = unsafe extern "C" fn(obj: *mut c_void, data: *mut c_void) -> i32;

/// Sets (NULL clears) a check run on every reachable object after each cycle when
/// verification is on; a non-zero result is a verification error naming the object.
#[no_mangle]
pub extern "C" fn tandem_set_verify_hook(f: Option<VerifyFn>, data: *mut c_void) -> i32 {
    let data = data as usize;
    status(|| {
        global::with_heap(|h| {
            h.set_verify_hook(f.map(|f| {
                Box::new(move |o: ObjRef| {
                    // SAFETY: the VM's hook contract (documented in tandem.h).
                    let code = tandem_core::callback::within("the verify hook", || unsafe {
                        f(o.as_ptr() as *mut c_void, data as *mut c_void)
                    });
                    match code {
                        0 => Ok(()),
                        code => Err(format!("the VM's verify hook returned {code}")),
                    }
                })
                    as Box<dyn Fn(ObjRef) -> std::result::Result<(), String> + Send + Sync>
            }));
            Ok(())
        })
    })
}

extern "C" fn fork_prepare() {
    guard((), || {
        if let Some(h) = global::heap() {
            h.prepare_fork();
        }
        global::lock_for_fork();
        Ok(())
    });
}

extern "C" fn fork_parent() {
    guard((), || {
        global::unlock_after_fork();
        if let Some(h) = global::heap() {
            h.after_fork_in_parent();
        }
        Ok(())
    });
}

extern "C" fn fork_child() {
    guard((), || {
        global::unlock_after_fork();
        match global::heap() {
            Some(h) => Ok(h.after_fork_in_child()?),
            None => Ok(()),
        }
    });
}

/// Registers the fork handlers (once per process): a forked child gets a working
/// collector, with only the forking thread attached (see `tandem_core::fork`).
pub fn handle_forks() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: the handlers are plain functions that live as long as the process.
        let r = unsafe {
            libc::pthread_atfork(Some(fork_prepare), Some(fork_parent), Some(fork_child))
        };
        if r != 0 {
            tracing::warn!(
                errno = r,
                "pthread_atfork failed: a forked child has no collector"
            );
        }
    });
}

/// One event for the GC hook (`tandem_gc_event`).
#[repr(C)]
pub struct CGcEvent {
    /// TANDEM_EVENT_PAUSE or TANDEM_EVENT_CYCLE.
    pub kind: u32,
    /// TANDEM_PAUSE_* of a pause event.
    pub pause_kind: u32,
    /// TANDEM_CAUSE_*.
    pub cause: u32,
    /// Zero.
    pub reserved: u32,
    /// The pause's or the whole cycle's duration, ns.
    pub duration_ns: u64,
    /// Heap bytes in use when the cycle started.
    pub heap_before: u64,
    /// Heap bytes live after the cycle (0 when not known yet).
    pub heap_after: u64,
    /// The cycle's number, from 1.
    pub cycle: u64,
    /// Bytes allocated since the previous cycle (cycle events).
    pub allocated: u64,
    /// Weak references the cycle cleared (cycle events).
    pub weakrefs_cleared: u64,
    /// Objects the cycle delivered to finalizer queues (cycle events).
    pub finalized: u64,
    /// Destructors the cycle called (cycle events).
    pub destructed: u64,
}

/// The C GC hook.
pub type GcHookFn = unsafe extern "C" fn(event: *const CGcEvent, data: *mut c_void);

/// Sets (NULL clears) the GC hook: called on a mutator thread after each pause and each
/// cycle, like a finalizer trigger.
#[no_mangle]
pub extern "C" fn tandem_set_gc_hook(f: Option<GcHookFn>, data: *mut c_void) -> i32 {
    use tandem_core::refs::hooks::{GcEvent, GcEventKind};
    let data = data as usize;
    status(|| {
        global::with_heap(|h| {
            h.set_gc_hook(f.map(|f| {
                Box::new(move |e: &GcEvent| {
                    let (kind, pause_kind) = match e.kind {
                        GcEventKind::Pause(k) => (0, crate::pauses::kind_code(k)),
                        GcEventKind::Cycle => (1, 0),
                    };
                    let c = CGcEvent {
                        kind,
                        pause_kind,
                        cause: crate::pauses::cause_code(e.cause),
                        reserved: 0,
                        duration_ns: e.duration_ns,
                        heap_before: e.heap_before as u64,
                        heap_after: e.heap_after as u64,
                        cycle: e.cycle,
                        allocated: e.allocated,
                        weakrefs_cleared: e.weakrefs_cleared,
                        finalized: e.finalized,
                        destructed: e.destructed,
                    };
                    // SAFETY: the VM's hook contract (documented in tandem.h).
                    unsafe { f(&c, data as *mut c_void) }
                }) as Box<dyn Fn(&GcEvent) + Send + Sync>
            }));
            Ok(())
        })
    })
}

/// Advances the collector by one phase; the phase reached (TANDEM_PHASE_*) goes to
/// `*phase`.
#[no_mangle]
pub unsafe extern "C" fn tandem_collect_step(m: *mut CMutator, phase: *mut i32) -> i32 {
    use tandem_core::collector::step::Phase;
    status(|| {
        if phase.is_null() {
            return fail(Code::InvalidArgument, "tandem_collect_step: NULL phase");
        }
        let p =
            global::with_running_mutator(m, "tandem_collect_step", |mm| Ok(mm.collect_step()?))?;
        let code = match p {
            Phase::Idle => 0,
            Phase::Marking => 1,
            Phase::Sweeping => 2,
        };
        // SAFETY: non-null, writable by the caller's contract.
        unsafe { phase.write(code) };
        Ok(())
    })
}

fn set_auto(on: bool) -> i32 {
    status(|| {
        global::with_heap(|h| {
            h.set_auto_collect(on);
            Ok(())
        })
    })
}

/// Stops automatic collection: only explicit collections run; a full heap fails
/// allocations as out of memory.
#[no_mangle]
pub extern "C" fn tandem_gc_disable() -> i32 {
    set_auto(false)
}

/// Restarts automatic collection.
#[no_mangle]
pub extern "C" fn tandem_gc_enable() -> i32 {
    set_auto(true)
}

/// For the slow paths in `lib.rs`: the due calls after `f`, which runs with the mutator.
pub fn then_due_calls<R>(m: *mut CMutator, r: FfiResult<R>) -> FfiResult<R> {
    if r.is_ok() {
        run_due_calls(m);
    }
    r
}
