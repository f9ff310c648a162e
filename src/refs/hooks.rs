//! The VM's GC hook (Python's `gc.callbacks`, PyPy's `gc.hooks`): called on a mutator
//! thread after each pause and each cycle, with what it did. The collector only queues the
//! events; mutators run the hook at their next poll, like the finalizer triggers (see
//! [`super::DueCalls`]), so the hook may run VM code and call the heap.

use crate::runtime::Runtime;
use crate::stats::{GcCause, PauseKind, PauseRecord};
use crate::sync::unmodelled::Arc;
use crate::sync::{AtomicBool, Mutex, Ordering};

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

/// The installed hook and the events it has not seen yet.
#[derive(Default)]
pub struct Hooks {
    /// Shared with the calls taken: each looks the hook up when it begins.
    hook: Arc<Mutex<Option<GcHook>>>,
    /// Whether a hook is installed (written under `hook`'s lock).
    hooked: AtomicBool,
    events: Mutex<Vec<GcEvent>>,
    /// Totals when the last cycle ended: (cycles, allocated, cleared, finalized, destructed).
    last: Mutex<(u64, u64, super::RefCounts)>,
}

/// Events kept at most while no mutator polls (the oldest are dropped beyond).
const MAX_EVENTS: usize = 1024;

impl Hooks {
    /// Installs (None: removes) the hook. No call of the old hook begins after this
    /// returns (the events queued and not yet handled go to the new hook, or nowhere); a
    /// call that began before may still be running on another thread. It does not wait
    /// for such calls: a VM whose hook takes its own lock (a GIL) would deadlock with a
    /// setter holding that lock.
    pub fn set(&self, hook: Option<GcHook>) {
        let mut g = self.hook.lock();
        self.hooked.store(hook.is_some(), Ordering::Relaxed);
        if hook.is_none() {
            self.events.lock().clear();
        }
        // The old hook is dropped after the lock: dropping the VM's closure runs its code.
        let _old = std::mem::replace(&mut *g, hook);
        drop(g);
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
                let installed = self.hook.clone();
                Arc::new(move || {
                    let hook = installed.lock().clone();
                    if let Some(hook) = hook {
                        hook(&ev);
                    }
                }) as super::finalize::Trigger
            })
            .collect()
    }
}
