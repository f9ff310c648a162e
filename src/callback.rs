//! The VM's code that runs inside the collector's own work: type tracers, the root
//! callback, destructors, the verify hook and `tandem_walk_roots`' callback. A call from
//! there that waits for the collector, stops the world, or attaches or detaches a thread
//! would wait on the very work that is calling it (a walk of the roots from the root
//! callback waited for ever for the stop it was part of; an attach from one made a
//! collector thread a mutator), so such a call fails with a state error that names the
//! callback instead. Calls that only read (`tandem_sizeof`, statistics) stay allowed: a
//! tracer may size its object. A destructor may call nothing at all (it runs on a GC thread
//! with the object's memory about to be reused).

use std::cell::Cell;

/// A VM callback running inside the collector's work.
#[derive(Clone, Copy)]
struct Running {
    what: &'static str,
    /// Every call from it is refused, not only those that wait.
    strict: bool,
}

thread_local! {
    /// The VM callback running on this thread inside the collector's work, if any.
    static RUNNING: Cell<Option<Running>> = const { Cell::new(None) };
}

/// Restores the callback that was running when it was entered.
struct Scope(Option<Running>);

impl Drop for Scope {
    fn drop(&mut self) {
        RUNNING.with(|r| r.set(self.0));
    }
}

fn run<R>(what: &'static str, strict: bool, f: impl FnOnce() -> R) -> R {
    let _scope = Scope(RUNNING.with(|r| r.replace(Some(Running { what, strict }))));
    f()
}

/// Runs `f`, which calls the VM's callback `what` ("a type's trace function"...): calls it
/// makes on this thread that wait or change threads fail (see [`check`]).
#[inline]
pub fn within<R>(what: &'static str, f: impl FnOnce() -> R) -> R {
    run(what, false, f)
}

/// [`within`] for a callback from which every call fails ([`check_any`]): destructors.
pub fn within_strict<R>(what: &'static str, f: impl FnOnce() -> R) -> R {
    run(what, true, f)
}

fn refuse(call: &str, r: Running) -> crate::Error {
    crate::Error::State(format!(
        "{call} called from {}: it runs inside the collector's work (on a GC thread or in \
         a stop) and must not call Tandem to wait, collect, allocate, walk the heap or \
         attach or detach a thread",
        r.what
    ))
}

/// Fails when called from a VM callback that runs inside the collector's work: for calls
/// that wait for the collector, stop the world, take a mutator, or attach or detach.
/// `call` names what was called.
pub fn check(call: &str) -> crate::Result<()> {
    match RUNNING.with(|r| r.get()) {
        None => Ok(()),
        Some(r) => Err(refuse(call, r)),
    }
}

/// Fails when called from a callback that may call nothing at all (a destructor): every C
/// entry point checks it.
pub fn check_any(call: &str) -> crate::Result<()> {
    match RUNNING.with(|r| r.get()) {
        Some(r) if r.strict => Err(refuse(call, r)),
        _ => Ok(()),
    }
}
