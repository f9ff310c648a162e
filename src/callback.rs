//! The VM's code that runs inside the collector's own work: type tracers, the root
//! callback, destructors, the verify hook and `tandem_walk_roots`' callback. Calling
//! Tandem from there would wait on the work that is calling it (a walk of the roots from
//! the root callback waited for ever for the stop it was part of; an attach from one made
//! a collector thread a mutator), so such a call fails with a state error that names the
//! callback instead; the C entry points check it first thing.

use std::cell::Cell;

thread_local! {
    /// The VM callback running on this thread inside the collector's work, if any.
    static RUNNING: Cell<Option<&'static str>> = const { Cell::new(None) };
}

/// Restores the callback that was running when it was entered.
struct Scope(Option<&'static str>);

impl Drop for Scope {
    fn drop(&mut self) {
        RUNNING.with(|r| r.set(self.0));
    }
}

/// Runs `f`, which calls the VM's callback `what` ("a destructor", "a type's trace
/// function"...): Tandem calls it makes on this thread fail (see [`check`]).
#[inline]
pub fn within<R>(what: &'static str, f: impl FnOnce() -> R) -> R {
    let _scope = Scope(RUNNING.with(|r| r.replace(Some(what))));
    f()
}

/// Fails when called from a VM callback that runs inside the collector's work; `call`
/// names what was called.
pub fn check(call: &str) -> crate::Result<()> {
    match RUNNING.with(|r| r.get()) {
        None => Ok(()),
        Some(what) => Err(crate::Error::State(format!(
            "{call} called from {what}: it runs inside the collector's work (on a GC thread \
             or in a stop) and must not call Tandem, nor allocate or touch other GC objects"
        ))),
    }
}
