//! The VM's GC hook (Python's `gc.callbacks`, PyPy's `gc.hooks`): called on a mutator
//! thread after each pause and each cycle, with what it did. The collector only queues the
//! events; mutators run the hook at their next poll, like the finalizer triggers (see
//! [`super::DueCalls`]), so the hook may run VM code and call the heap.

use crate::runtime::Runtime;
use crate::stats::{GcCause, PauseKind, PauseRecord};
use crate::sync::unmodelled::Arc;
use crate::sync::{AtomicBool, Condvar, Mutex, Ordering};
use std::cell::Cell;

/// What an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcEventKind {
    /// A pause ended.
    Pause(PauseKind),
    /// A cycle ended (its sweep included).
    Cycle,
}

/// One event for the GC hook.
#[derive(Debug, Clone, Copy)]
pub struct GcEvent {
    /// Pause or cycle.
    pub kind: GcEventKind,
    /// Why the cycle ran.
    pub cause: GcCause,
    /// The pause's duration, or the whole cycle's, nanoseconds.
    pub duration_ns: u64,
    /// Heap bytes in use when the cycle started.
    pub heap_before: usize,
    /// Heap bytes live after the cycle (0 for pauses before the cycle's end).
    pub heap_after: usize,
    /// The cycle's number (1 for the first).
    pub cycle: u64,
    /// Bytes allocated since the previous cycle ended (cycle events only).
    pub allocated: u64,
    /// Weak references this cycle cleared (cycle events only).
    pub weakrefs_cleared: u64,
    /// Objects this cycle delivered to finalizer queues (cycle events only).
    pub finalized: u64,
    /// Destructors this cycle called (cycle events only).
    pub destructed: u64,
}

/// The hook: called with each event on a mutator thread.
pub type GcHook = Arc<dyn Fn(&GcEvent) + Send + Sync>;

/// The installed hook and how many of its calls are in progress, less those of threads
/// waiting in [`Hooks::set`] (so that two hooks that each replace the hook do not wait for
/// each other).
#[derive(Default)]
struct Installed {
    hook: Option<GcHook>,
    running: usize,
}

thread_local! {
    /// Hook calls in progress on this thread (a hook may poll, and so call hooks again).
    static CALLING: Cell<usize> = const { Cell::new(0) };
}

/// Ends a hook call, if it unwinds too.
struct CallEnds<'a>(&'a (Mutex<Installed>, Condvar));

impl Drop for CallEnds<'_> {
    fn drop(&mut self) {
        CALLING.with(|c| c.set(c.get() - 1));
        let mut g = self.0 .0.lock();
        g.running -= 1;
        if g.running == 0 {
            self.0 .1.notify_all();
        }
    }
}

/// The installed hook and the events it has not seen yet.
#[derive(Default)]
pub struct Hooks {
    installed: Arc<(Mutex<Installed>, Condvar)>,
    hooked: AtomicBool,
    events: Mutex<Vec<GcEvent>>,
    /// Totals when the last cycle ended: (cycles, allocated, cleared, finalized, destructed).
    last: Mutex<(u64, u64, super::RefCounts)>,
}

/// Events kept at most while no mutator polls (the oldest are dropped beyond).
const MAX_EVENTS: usize = 1024;

impl Hooks {
    /// Installs (None: removes) the hook. Calls of the old hook that other threads began
    /// end before this returns, so that the VM may free what it used; those due and not
    /// begun are made with the new hook, or not at all. The wait is in a native region: a
    /// hook may collect.
    pub fn set(&self, rt: &Runtime, hook: Option<GcHook>) {
        self.hooked.store(hook.is_some(), Ordering::Relaxed);
        if hook.is_none() {
            self.events.lock().clear();
        }
        let (lock, ended) = &*self.installed;
        let mut g = lock.lock();
        let old = std::mem::replace(&mut g.hook, hook);
        if old.is_none() {
            return;
        }
        // A call of the old hook on this thread (the hook replacing itself) goes on.
        let own = CALLING.with(|c| c.get());
        g.running -= own;
        drop(g);
        crate::mutator::while_native(rt, || {
            let mut g = lock.lock();
            while g.running > 0 {
                g = ended.wait(g);
            }
            g.running += own;
        });
    }

    fn post(&self, rt: &Runtime, ev: GcEvent) {
        let mut events = self.events.lock();
        if events.len() >= MAX_EVENTS {
            events.remove(0);
        }
        events.push(ev);
        drop(events);
        rt.refs.call_soon(rt);
    }

    /// Queues the event of a pause that just ended.
    pub fn pause_ended(&self, rt: &Runtime, p: &PauseRecord) {
        if !self.hooked.load(Ordering::Relaxed) {
            return;
        }
        let cycle = self.last.lock().0 + 1;
        self.post(
            rt,
            GcEvent {
                kind: GcEventKind::Pause(p.kind),
                cause: p.cause,
                duration_ns: p.duration_ns,
                heap_before: p.heap_before,
                heap_after: p.heap_after,
                cycle,
                allocated: 0,
                weakrefs_cleared: 0,
                finalized: 0,
                destructed: 0,
            },
        );
    }

    /// Queues the event of a cycle that just ended.
    pub fn cycle_ended(
        &self,
        rt: &Runtime,
        cause: GcCause,
        duration_ns: u64,
        heap_before: usize,
        heap_after: usize,
    ) {
        let counts = rt.refs.counts();
        let allocated = rt.stats.snapshot_allocated();
        let (cycle, before, old) = {
            let mut last = self.last.lock();
            let prev = *last;
            *last = (prev.0 + 1, allocated, counts);
            prev
        };
        if !self.hooked.load(Ordering::Relaxed) {
            return;
        }
        self.post(
            rt,
            GcEvent {
                kind: GcEventKind::Cycle,
                cause,
                duration_ns,
                heap_before,
                heap_after,
                cycle: cycle + 1,
                allocated: allocated.saturating_sub(before),
                weakrefs_cleared: counts.weak_cleared - old.weak_cleared,
                finalized: counts.finalized - old.finalized,
                destructed: counts.destructed - old.destructed,
            },
        );
    }

    /// The hook's calls for the queued events. Each finds the hook installed when it
    /// begins: a hook removed or replaced since is not called.
    pub fn take_calls(&self) -> Vec<super::finalize::Trigger> {
        if !self.hooked.load(Ordering::Relaxed) {
            return Vec::new();
        }
        std::mem::take(&mut *self.events.lock())
            .into_iter()
            .map(|ev| {
                let installed = self.installed.clone();
                Arc::new(move || {
                    let hook = {
                        let mut g = installed.0.lock();
                        let Some(h) = g.hook.clone() else { return };
                        g.running += 1;
                        h
                    };
                    CALLING.with(|c| c.set(c.get() + 1));
                    let _ends = CallEnds(&installed);
                    hook(&ev);
                }) as super::finalize::Trigger
            })
            .collect()
    }
}
