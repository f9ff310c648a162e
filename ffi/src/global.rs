//! The process-wide runtime of the C ABI and each thread's mutator.
//!
//! The C API has one heap per process (`tandem_init` … `tandem_shutdown`). Each attached
//! thread keeps its `Mutator` in thread-local storage; the `tandem_mutator *` handed to C
//! is the address of its core, whose first fields the inline fast paths use. A pointer is
//! validated by comparing it with the calling thread's own mutator, so the check takes no
//! lock; the global set of live mutators is consulted only to explain an error.

use crate::error::{fail, Code, FfiResult};
use parking_lot::{Mutex, RwLock};
use std::cell::RefCell;
use std::collections::HashSet;
use tandem_core::mutator::MutatorCore;
use tandem_core::{Heap, Mutator};

static HEAP: RwLock<Option<Heap>> = RwLock::new(None);
static LIVE_MUTATORS: Mutex<Option<HashSet<usize>>> = Mutex::new(None);

thread_local! {
    static CURRENT: RefCell<Option<Mutator>> = const { RefCell::new(None) };
}

/// Installs the process heap; an error if one is installed.
pub fn install(heap: Heap) -> FfiResult<()> {
    let mut g = HEAP.write();
    if g.is_some() {
        return fail(
            Code::AlreadyInitialized,
            "tandem_init called twice: call tandem_shutdown first",
        );
    }
    *g = Some(heap);
    Ok(())
}

/// Removes the process heap (its collector stops once no mutator holds it).
pub fn uninstall() -> FfiResult<Heap> {
    HEAP.write().take().map_or_else(
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
    match &*HEAP.read() {
        Some(h) => f(h),
        None => fail(
            Code::NotInitialized,
            "Tandem is not initialised: call tandem_init first (or it was shut down)",
        ),
    }
}

/// Attaches the calling thread and returns its core's address.
pub fn attach() -> FfiResult<*mut MutatorCore> {
    let m = with_heap(|h| Ok(h.attach()?))?;
    let p = m.core() as *const MutatorCore as *mut MutatorCore;
    CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_some() {
            return fail(
                Code::State,
                "this thread is already attached: one mutator per thread",
            );
        }
        *c = Some(m);
        Ok(())
    })?;
    LIVE_MUTATORS
        .lock()
        .get_or_insert_with(HashSet::new)
        .insert(p as usize);
    Ok(p)
}

/// Detaches the calling thread's mutator `p`.
pub fn detach(p: *mut MutatorCore) -> FfiResult<()> {
    with_mutator(p, |_| Ok(()))?;
    let m = CURRENT.with(|c| c.borrow_mut().take());
    if let Some(set) = LIVE_MUTATORS.lock().as_mut() {
        set.remove(&(p as usize));
    }
    drop(m);
    Ok(())
}

/// Runs `f` with the calling thread's mutator after checking that `p` is it.
#[inline]
pub fn with_mutator<R>(
    p: *mut MutatorCore,
    f: impl FnOnce(&mut Mutator) -> FfiResult<R>,
) -> FfiResult<R> {
    let r = CURRENT.with(|c| match c.borrow_mut().as_mut() {
        Some(m) if std::ptr::eq(m.core(), p) => Some(f(m)),
        _ => None,
    });
    match r {
        Some(r) => r,
        None => Err(explain_bad_mutator(p)),
    }
}

#[cold]
fn explain_bad_mutator(p: *mut MutatorCore) -> crate::error::FfiError {
    let known = LIVE_MUTATORS
        .lock()
        .as_ref()
        .is_some_and(|s| s.contains(&(p as usize)));
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
