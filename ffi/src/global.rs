//! The process-wide runtime of the C ABI and each thread's mutator.
//!
//! The C API has one heap per process (`tandem_init` … `tandem_shutdown`). Each attached
//! thread keeps its `Mutator` in thread-local storage; the `tandem_mutator *` handed to C
//! is the address of its core, whose first fields the inline fast paths use. A pointer is
//! validated by comparing it with the calling thread's own mutator, so the check takes no
//! lock; the global set of live mutators is consulted only to explain an error.
//!
//! A thread that exits while attached is detached at its exit by the `thread` module's key
//! destructor ([`forget_thread`]); `CURRENT` has no destructor of its own, so it is usable
//! in the thread's exit code too (a VM's key destructor that attaches, see `thread`).
//! A call that holds the mutator (an allocation whose out-of-memory handler runs) marks it
//! busy: a nested call with the same mutator from that callback fails with
//! `TANDEM_ERR_STATE` instead of aliasing it.

use crate::error::{fail, Code, FfiResult};
use std::cell::{Cell, UnsafeCell};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tandem_core::mutator::MutatorCore;
use tandem_core::{Heap, Mutator};

/// A value behind a spin flag, held only for a few instructions (never across a call into
/// the heap), and by the fork handlers across a fork ([`lock_for_fork`]), so that a forked
/// child finds it free. A blocking lock does not survive a fork: a read lock held across
/// calls, as `HEAP` was, stayed held for ever in a child forked while another thread was
/// inside one (`tandem_shutdown` there hung), and a parking lock's waiters, threads of the
/// parent, can be handed the lock in the child.
struct ForkSafe<T> {
    busy: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only with `busy` held, by one thread at a time.
unsafe impl<T: Send> Sync for ForkSafe<T> {}

impl<T> ForkSafe<T> {
    const fn new(value: T) -> Self {
        ForkSafe {
            busy: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    fn acquire(&self) {
        // Acquire: pairs with `release`, so the value's last writes are seen.
        while self
            .busy
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::thread::yield_now();
        }
    }

    fn release(&self) {
        self.busy.store(false, Ordering::Release);
    }

    /// Runs `f` on the value (`f` must be short and must not call back into this module).
    fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        self.acquire();
        // SAFETY: `busy` is held, so no other thread reaches the value.
        let r = f(unsafe { &mut *self.value.get() });
        self.release();
        r
    }
}

/// The installed heap's address range (both 0 when none is installed), for a check of object
/// arguments that takes no lock.
static RANGE: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];

/// Whether `addr` may be an object of the installed heap: inside its reserved range, or any
/// address while no heap is installed (the call then reports that instead).
pub fn maybe_object(addr: usize) -> bool {
    // Relaxed: set before the heap is published to any mutator, cleared after it is gone.
    let (start, end) = (
        RANGE[0].load(Ordering::Relaxed),
        RANGE[1].load(Ordering::Relaxed),
    );
    start == end || (start..end).contains(&addr)
}

fn set_range(r: std::ops::Range<usize>) {
    RANGE[0].store(r.start, Ordering::Relaxed);
    RANGE[1].store(r.end, Ordering::Relaxed);
}

/// The process heap (a handle: calls clone it and run without holding the slot).
static HEAP: ForkSafe<Option<Heap>> = ForkSafe::new(None);
static LIVE_MUTATORS: ForkSafe<Option<HashSet<usize>>> = ForkSafe::new(None);

/// A thread's attached mutator. Dropping it (detach, or thread exit) forgets its address.
struct Attached {
    mutator: Mutator,
    /// A call up this thread's stack holds `mutator`.
    busy: Cell<bool>,
}

impl Drop for Attached {
    fn drop(&mut self) {
        let p = self.mutator.core() as *const MutatorCore;
        // No destructor, so this thread-local is usable even during thread exit.
        let _ = CURRENT_CORE.try_with(|c| c.set(std::ptr::null()));
        LIVE_MUTATORS.with(|set| {
            if let Some(set) = set.as_mut() {
                set.remove(&(p as usize));
            }
        });
    }
}

thread_local! {
    /// The calling thread's mutator: a `Box` owned here, null when the thread is not
    /// attached. No destructor (see the module docs).
    static CURRENT: Cell<*mut Attached> = const { Cell::new(std::ptr::null_mut()) };
    /// The address of `CURRENT`'s core, or null when the thread is not attached.
    static CURRENT_CORE: Cell<*const MutatorCore> = const { Cell::new(std::ptr::null()) };
}

/// Runs `f` on the calling thread's attached mutator, marked busy meanwhile; None when the
/// thread has none, Some(Err) when a call up the stack holds it.
fn with_attached<R>(f: impl FnOnce(&mut Mutator) -> R) -> Option<Result<R, ()>> {
    let a = CURRENT.get();
    // SAFETY: null, or this thread's live `Attached`, freed only by this thread and only
    // when not busy (`detach`, `forget_thread`).
    let a = unsafe { a.as_mut() }?;
    if a.busy.replace(true) {
        return Some(Err(()));
    }
    /// Clears `busy` however `f` ends.
    struct Release<'a>(&'a Cell<bool>);
    impl Drop for Release<'_> {
        fn drop(&mut self) {
            self.0.set(false);
        }
    }
    let _release = Release(&a.busy);
    Some(Ok(f(&mut a.mutator)))
}

/// The error of a call whose mutator a call up the stack holds.
fn busy_error() -> crate::error::FfiError {
    crate::error::FfiError(
        Code::State,
        "a Tandem call with this thread's mutator from a callback of a call that holds it \
         (the out-of-memory handler): such a callback must not use the mutator"
            .into(),
    )
}

/// Detaches the calling thread's mutator, if any and not busy (its thread-exit step).
pub(crate) fn forget_thread() {
    let a = CURRENT.get();
    // SAFETY: as in `with_attached`.
    if unsafe { a.as_ref() }.is_some_and(|a| !a.busy.get()) {
        CURRENT.set(std::ptr::null_mut());
        // SAFETY: the `Box` attach made; `CURRENT` no longer holds it and nothing borrows it.
        drop(unsafe { Box::from_raw(a) });
    }
}

/// Installs the process heap; an error if one is installed.
pub fn install(heap: Heap) -> FfiResult<()> {
    // The heap is dropped outside the slot when it was not installed.
    let range = heap.address_range();
    let refused = HEAP.with(|g| match g {
        Some(_) => Some(heap),
        None => {
            *g = Some(heap);
            set_range(range);
            None
        }
    });
    match refused {
        None => Ok(()),
        Some(_) => fail(
            Code::AlreadyInitialized,
            "tandem_init called twice: call tandem_shutdown first",
        ),
    }
}

/// Removes the process heap (its collector stops once no mutator holds it).
pub fn uninstall() -> FfiResult<Heap> {
    HEAP.with(|g| {
        set_range(0..0);
        g.take()
    })
    .map_or_else(
        || {
            fail(
                Code::NotInitialized,
                "tandem_shutdown called before tandem_init",
            )
        },
        Ok,
    )
}

/// Runs `f` with the process heap.
pub fn with_heap<R>(f: impl FnOnce(&Heap) -> FfiResult<R>) -> FfiResult<R> {
    let heap = heap();
    match &heap {
        Some(h) => f(h),
        None => fail(
            Code::NotInitialized,
            "Tandem is not initialised: call tandem_init first (or it was shut down)",
        ),
    }
}

/// The process heap, if installed (a handle: the heap lives while any handle does).
pub fn heap() -> Option<Heap> {
    HEAP.with(|h| h.clone())
}

/// Takes this module's locks before a fork, so that the child finds them in a known
/// state; [`unlock_after_fork`] releases them in the parent and in the child.
pub fn lock_for_fork() {
    HEAP.acquire();
    LIVE_MUTATORS.acquire();
}

/// Releases what [`lock_for_fork`] took (in the parent, and in the child, where the
/// forking thread is the only one and holds them).
pub fn unlock_after_fork() {
    LIVE_MUTATORS.release();
    HEAP.release();
}

/// Attaches the calling thread and returns its core's address.
pub fn attach() -> FfiResult<*mut MutatorCore> {
    if !CURRENT_CORE.get().is_null() {
        return fail(
            Code::State,
            "this thread is already attached: one mutator per thread",
        );
    }
    // Attaching touches the core's thread-locals before `CURRENT` is touched below.
    let mut m = with_heap(|h| Ok(h.attach()?))?;
    // Finalizer triggers call back with this mutator: the slow paths run them after.
    m.defer_calls(true);
    let p = m.core() as *const MutatorCore as *mut MutatorCore;
    CURRENT.set(Box::into_raw(Box::new(Attached {
        mutator: m,
        busy: Cell::new(false),
    })));
    CURRENT_CORE.set(p);
    crate::thread::watch();
    LIVE_MUTATORS.with(|set| set.get_or_insert_with(HashSet::new).insert(p as usize));
    Ok(p)
}

/// Detaches the calling thread's mutator `p`.
pub fn detach(p: *mut MutatorCore) -> FfiResult<()> {
    with_mutator(p, |_| Ok(()))?;
    forget_thread();
    Ok(())
}

/// Runs `f` (which waits for the collector) with the calling thread's mutator, if it has
/// one, in a native region: a collection that needs this thread stopped can then finish
/// instead of waiting for it forever.
pub fn in_native_region<R>(f: impl FnOnce() -> R) -> R {
    let entered = with_attached(|m| {
        let running = m.core().ts.load() == tandem_core::safepoint::RUNNING;
        if running {
            m.enter_native();
        }
        running
    }) == Some(Ok(true));
    let r = f();
    if entered {
        // A failed collector shows at the thread's next poll or allocation.
        let _ = with_attached(|m| m.leave_native());
    }
    r
}

/// Whether `p` is the mutator attached on this thread.
#[inline]
fn is_current(p: *mut MutatorCore) -> bool {
    !p.is_null() && std::ptr::eq(CURRENT_CORE.get(), p)
}

/// Runs `f` with the calling thread's mutator after checking that `p` is it.
#[inline]
pub fn with_mutator<R>(
    p: *mut MutatorCore,
    f: impl FnOnce(&mut Mutator) -> FfiResult<R>,
) -> FfiResult<R> {
    // From a callback inside the collector's work, a mutator's call may wait on that work.
    tandem_core::callback::check("a Tandem call with a mutator")?;
    if !is_current(p) {
        return Err(explain_bad_mutator(p));
    }
    match with_attached(f) {
        Some(Ok(r)) => r,
        Some(Err(())) => Err(busy_error()),
        None => Err(explain_bad_mutator(p)),
    }
}

/// [`with_mutator`] for a call that touches the heap: refused while the thread is in a
/// native region (its allocation or collection left the region without a word, and the
/// VM's own `tandem_leave_native` then failed).
pub fn with_running_mutator<R>(
    p: *mut MutatorCore,
    what: &str,
    f: impl FnOnce(&mut Mutator) -> FfiResult<R>,
) -> FfiResult<R> {
    with_mutator(p, |mm| {
        if mm.core().ts.load() == tandem_core::safepoint::IN_NATIVE {
            return fail(
                Code::State,
                format!(
                    "{what} inside a native region: the thread must not touch the heap until \
                     tandem_leave_native"
                ),
            );
        }
        f(mm)
    })
}

/// [`with_own_mutator`] for a call that changes the mutator (a barrier's slow path).
#[inline]
pub fn with_own_mutator_mut<R>(
    p: *mut MutatorCore,
    f: impl FnOnce(&mut Mutator) -> R,
) -> Option<R> {
    if !is_current(p) {
        return None;
    }
    with_attached(f)?.ok()
}

/// `f` on the calling thread's own mutator `p`, without the checks' messages: None when
/// `p` is not this thread's attached mutator (or it is busy in a call up the stack), so
/// that the caller takes the checked path, which explains.
#[inline]
pub fn with_own_mutator<R>(p: *mut MutatorCore, f: impl FnOnce(&Mutator) -> R) -> Option<R> {
    with_own_mutator_mut(p, |m| f(m))
}

#[cold]
fn explain_bad_mutator(p: *mut MutatorCore) -> crate::error::FfiError {
    // A callback inside the collector's work must not call Tandem: say so rather than that
    // the mutator is wrong (a destructor's GC thread has none).
    if let Err(e) = tandem_core::callback::check("a Tandem call with a mutator") {
        return e.into();
    }
    let known = LIVE_MUTATORS.with(|set| set.as_ref().is_some_and(|s| s.contains(&(p as usize))));
    let (code, msg) = if p.is_null() {
        (Code::BadMutator, "the mutator is NULL".to_string())
    } else if known {
        (
            Code::WrongThread,
            format!("mutator {p:p} belongs to another thread: each thread must use its own"),
        )
    } else {
        (
            Code::BadMutator,
            format!(
                "{p:p} is not an attached mutator (never attached, already detached, or \
                 foreign)"
            ),
        )
    };
    crate::error::FfiError(code, msg)
}
