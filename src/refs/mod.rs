//! What the collector owes some objects beyond tracing them: weak references, destructors,
//! finalizer queues and memory pressure. The collector settles these at the end of
//! marking, in the pause that ends it ("reference processing").
//!
//! # Protocol
//! Mutators register objects in a buffer of their own (no lock: destructor objects are
//! registered on the allocation path). The pause that ends marking adopts every buffer
//! (the world is stopped, and a detaching thread hands its buffer over first) and, with
//! the marking closure complete, runs step 1 (unless there are more than
//! [`WEAK_SLOTS_IN_PAUSE`] weakrefs: then step 1 runs after the pause, behind the weak
//! window, [`weak::Window`]). Steps 2-5 follow: in stop-the-world mode in the same pause;
//! in concurrent mode after it, on the control thread, while the mutators run (after the
//! pause no mutator can reach a dead object), and before the sweep:
//! 1. **Weak slots.** Every registered weakref, live or not (step 2 may resurrect one), has
//!    its slot cleared when the target is unmarked, or repaired when the target moved.
//!    So no weakref hands out an object a finalizer or destructor is about to see.
//! 2. **Finalizers.** The unmarked objects registered with a finalizer queue are ordered
//!    ([`order`]); all of them and everything they reach are marked (resurrected, so they
//!    stay intact until the VM takes them), and those delivered now go to their queue's
//!    ready list, which is a root from then on. The rest stay registered. A nursery cycle
//!    (generational mode) delivers none: old objects count as live in it, so weakrefs to
//!    dead old objects a finalizer would reach still stand; the next full cycle delivers.
//! 3. **Survivors.** Registrations whose object is still unmarked are dropped; the others
//!    follow their object if it moved (an evacuated object's old header forwards), and so
//!    do the finalizer queues' ready lists (not roots of a concurrent cycle's pauses).
//! 4. **Destructors.** Unmarked objects of types with a destructor are handed back to the
//!    collector, which calls the destructors after the pause and before the sweep frees
//!    their memory (they are unreachable: no mutator can see them meanwhile).
//! 5. **Memory pressure** of owners that died stops counting.
//!
//! Everything a step reads of a dead object is intact: memory is freed only by the sweep,
//! which comes after, and a dead object refers only to objects that were live when the
//! previous cycle ended or were allocated since, so none was freed before this cycle.

pub mod finalize;
pub mod hooks;
pub mod order;
pub mod weak;

use crate::collector::evacuate::moved_to;
use crate::mutator::MutatorCore;
use crate::object::{ObjRef, FLAG_NO_DESTRUCTOR};
use crate::runtime::Runtime;
use crate::sync::unmodelled::Arc;
use crate::sync::{AtomicBool, AtomicU64, AtomicUsize, Mutex, Ordering};
use finalize::FinalizerQueues;

/// Objects registered by one mutator since the last pause that ended marking (or all of
/// them, in the runtime's list).
#[derive(Debug, Default)]
pub struct Registrations {
    /// Weakref objects.
    pub weak: Vec<usize>,
    /// Objects whose type has a destructor.
    pub destructible: Vec<usize>,
    /// Objects registered with finalizer queues.
    pub finalizable: Vec<finalize::Registration>,
    /// (owner, bytes of raw memory it owns).
    pub pressure: Vec<(usize, usize)>,
}

impl Registrations {
    /// Moves every entry of `other` here (the lists are swapped first when this one is
    /// shorter: the pause that adopts them must not copy millions of entries).
    pub fn append(&mut self, other: &mut Registrations) {
        // The shorter list goes to the end of the longer (their order does not matter): a
        // million registrations appended to a few grew a copy of them by doubling, 33 MB.
        fn absorb<T>(to: &mut Vec<T>, from: &mut Vec<T>) {
            if to.len() < from.len() {
                std::mem::swap(to, from);
            }
            to.append(from);
        }
        absorb(&mut self.weak, &mut other.weak);
        absorb(&mut self.destructible, &mut other.destructible);
        absorb(&mut self.finalizable, &mut other.finalizable);
        absorb(&mut self.pressure, &mut other.pressure);
    }
}

/// Counters of reference processing, summed over cycles.
#[derive(Debug, Default, Clone, Copy)]
pub struct RefCounts {
    /// Weak slots cleared because their target died.
    pub weak_cleared: u64,
    /// Objects delivered to finalizer queues.
    pub finalized: u64,
    /// Destructors called.
    pub destructed: u64,
}

/// The runtime's side of reference processing.
#[derive(Default)]
pub struct References {
    adopted: Mutex<Registrations>,
    /// Finalizer queues.
    pub queues: FinalizerQueues,
    /// The VM's GC hook and its pending events.
    pub hooks: hooks::Hooks,
    /// The weakref type, registered on first use.
    pub weak_type: crate::sync::unmodelled::OnceLock<Option<crate::object::TypeId>>,
    /// Raw memory owned by objects found live at the last cycle's end.
    pressure_live: AtomicUsize,
    /// Raw memory registered since, which counts toward the next trigger.
    pressure_new: AtomicUsize,
    /// Set when a cycle queued something: mutators run the triggers at their next poll.
    calls_pending: AtomicBool,
    /// Open while weak slots are settled with the mutators running.
    pub weak_window: weak::Window,
    weak_cleared: AtomicU64,
    finalized: AtomicU64,
    destructed: AtomicU64,
}

impl std::fmt::Debug for References {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("References").finish_non_exhaustive()
    }
}

/// The registrations a pause adopted, for [`References::settle`].
#[derive(Debug)]
#[must_use = "settle them before the sweep"]
pub struct Adopted {
    /// The runtime's list and each mutator's, merged only after the pause.
    parts: Vec<Registrations>,
    pressure_new: usize,
    /// Step 1 is left to [`References::settle`] (the weak window is open).
    weak_unsettled: bool,
}

/// Most weakrefs whose slots the final-mark pause settles itself (about 7 ns each: 0.1 ms);
/// with more, concurrent mode settles them after the pause, with the mutators running.
const WEAK_SLOTS_IN_PAUSE: usize = 16 * 1024;

/// [`WEAK_SLOTS_IN_PAUSE`], or none under the torture settings for VM ports, so that their
/// runs settle weak slots concurrently (the rarer protocol) at every cycle.
pub fn weak_slots_in_pause(config: &crate::config::Config) -> usize {
    if config.torture > 0 || config.evacuate_all {
        0
    } else {
        WEAK_SLOTS_IN_PAUSE
    }
}

/// What the pause leaves for after it: objects whose destructors are due.
#[derive(Debug, Default)]
#[must_use = "the destructors must be called before the sweep"]
pub struct Dying(Vec<usize>);

impl References {
    /// Hands over a detaching mutator's registrations.
    pub fn adopt(&self, r: &mut Registrations) {
        self.adopted.lock().append(r);
    }

    /// Counts `bytes` of raw memory owned by `owner`, registered by a mutator.
    pub fn add_pressure(&self, bytes: usize) {
        self.pressure_new.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Raw memory registered since the last cycle (it counts toward the trigger).
    pub fn new_pressure(&self) -> usize {
        self.pressure_new.load(Ordering::Relaxed)
    }

    /// Raw memory owned by live objects (as of the last cycle, plus what came since).
    pub fn pressure(&self) -> usize {
        self.pressure_live.load(Ordering::Relaxed) + self.new_pressure()
    }

    /// Totals so far.
    pub fn counts(&self) -> RefCounts {
        RefCounts {
            weak_cleared: self.weak_cleared.load(Ordering::Relaxed),
            finalized: self.finalized.load(Ordering::Relaxed),
            destructed: self.destructed.load(Ordering::Relaxed),
        }
    }

    /// Has mutators take the due calls at their next poll: sets the flag and sends every
    /// mutator's next poll to the slow path (a handshake request).
    pub fn call_soon(&self, rt: &Runtime) {
        self.calls_pending.store(true, Ordering::Release);
        rt.safepoint.request_handshakes();
    }

    /// Whether a cycle queued objects whose triggers have not run; clears the flag.
    pub fn take_calls(&self) -> bool {
        self.calls_pending.load(Ordering::Relaxed)
            && self.calls_pending.swap(false, Ordering::Acquire)
    }

    /// Steps 1-5 of the protocol in one go, in the pause that ends marking (stop-the-world
    /// mode); `mark` marks from the given addresses and completes the closure again.
    pub fn process(
        &self,
        rt: &Runtime,
        world: &[crate::sync::Arc<MutatorCore>],
        mark: &mut dyn FnMut(Vec<usize>),
    ) -> Dying {
        let adopted = self.take_in_pause(rt, world, usize::MAX);
        self.settle(rt, adopted, mark)
    }

    /// The part that needs the world stopped, with the closure complete: adopts every
    /// mutator's registrations and clears the weak slots of dead targets (step 1) when
    /// there are at most `weak_in_pause` weakrefs; with more, it opens the weak window
    /// ([`weak::Window`]) and leaves step 1 to [`References::settle`]. Either way, from
    /// now on no mutator can reach a dead object, so `settle` may run while they run again
    /// (concurrent mode), as long as it comes before the sweep.
    pub fn take_in_pause(
        &self,
        rt: &Runtime,
        world: &[crate::sync::Arc<MutatorCore>],
        weak_in_pause: usize,
    ) -> Adopted {
        let mut parts = vec![std::mem::take(&mut *self.adopted.lock())];
        for m in world {
            // SAFETY: the world is stopped: the collector owns every mutator's buffers.
            parts.push(std::mem::take(unsafe { m.registered() }));
        }
        let weak_unsettled = parts.iter().map(|p| p.weak.len()).sum::<usize>() > weak_in_pause;
        if weak_unsettled {
            self.weak_window.open();
        } else {
            for p in &parts {
                self.settle_weak(rt, &p.weak);
            }
        }
        Adopted {
            parts,
            pressure_new: self.pressure_new.load(Ordering::Relaxed),
            weak_unsettled,
        }
    }

    /// Step 1 over the weakref objects `weak`, counted.
    fn settle_weak(&self, rt: &Runtime, weak: &[usize]) {
        let cleared = weak::clear_dead_targets(rt, weak);
        self.weak_cleared.fetch_add(cleared, Ordering::Relaxed);
    }

    /// Step 1 if the pause left it, then steps 2-5 over what the pause adopted (only that:
    /// objects registered since were allocated after marking and are not marked, yet
    /// live). `mark` marks from the given addresses and completes the closure again.
    pub fn settle(
        &self,
        rt: &Runtime,
        adopted: Adopted,
        mark: &mut dyn FnMut(Vec<usize>),
    ) -> Dying {
        let Adopted {
            parts,
            pressure_new,
            weak_unsettled,
        } = adopted;
        let mut r = Registrations::default();
        for mut p in parts {
            r.append(&mut p);
        }
        if weak_unsettled {
            // 1., with the mutators running: then no mark may change and nothing may be
            // freed before every weak load that began in the window has returned.
            self.settle_weak(rt, &r.weak);
            self.weak_window.close();
            rt.safepoint
                .await_handshakes(|| std::thread::sleep(crate::safepoint::HANDSHAKE_POLL));
        }
        let live = |a: usize| rt.space.marked_or_black(a);
        // 2.
        let delivered = finalize::resurrect(rt, &mut r.finalizable, mark);
        if delivered > 0 {
            self.finalized
                .fetch_add(delivered as u64, Ordering::Relaxed);
            self.call_soon(rt);
        }
        // 3. and 4.
        let survive = |v: &mut Vec<usize>| {
            v.retain_mut(|a| {
                follow(rt, a);
                live(*a)
            })
        };
        survive(&mut r.weak);
        self.queues.follow_moved(rt);
        let mut dying = Vec::new();
        r.destructible.retain_mut(|a| {
            follow(rt, a);
            if live(*a) {
                return true;
            }
            // SAFETY: an object registered live and not yet swept.
            let h = unsafe { ObjRef::from_addr(*a).expect("non-zero").header() };
            if h.load(Ordering::Relaxed) & FLAG_NO_DESTRUCTOR == 0 {
                dying.push(*a);
            }
            false
        });
        // 5.
        r.pressure.retain_mut(|(a, _)| {
            follow(rt, a);
            live(*a)
        });
        let owned = r.pressure.iter().map(|p| p.1).sum();
        self.pressure_live.store(owned, Ordering::Relaxed);
        // What was registered since the pause counts toward the next trigger still.
        self.pressure_new.fetch_sub(pressure_new, Ordering::Relaxed);
        // Back with whatever detaching threads handed over meanwhile.
        self.adopted.lock().append(&mut r);
        Dying(dying)
    }

    /// Calls the destructors of `dying` (after the pause, before the sweep), on the
    /// calling GC thread. A destructor must not allocate or touch other GC objects: the
    /// thread has no mutator, and calls that need one fail while it runs.
    pub fn destruct(&self, rt: &Runtime, dying: Dying) {
        if dying.0.is_empty() {
            return;
        }
        crate::callback::within_strict("a destructor", || {
            for &a in &dying.0 {
                let obj = ObjRef::from_addr(a).expect("non-zero");
                // SAFETY: a dead object not yet swept; its header is intact.
                let ty = unsafe { obj.type_id() };
                if let Some(f) = rt.types.get(ty).and_then(|i| i.destructor) {
                    // SAFETY: the VM's destructor contract: called once with the dead object.
                    unsafe { f(obj.as_ptr()) };
                }
            }
        });
        self.destructed
            .fetch_add(dying.0.len() as u64, Ordering::Relaxed);
    }
}

thread_local! {
    static IN_VM_CALL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// VM calls due on a mutator thread (finalizer triggers), taken at a safepoint poll or an
/// allocation slow path and run there, never re-entrantly.
#[must_use = "due calls are taken from the runtime: run them"]
pub struct DueCalls {
    calls: Vec<finalize::Trigger>,
    /// The runtime, told after the calls when more came due while they ran.
    rt: Option<Arc<Runtime>>,
}

impl DueCalls {
    /// Whether there is nothing to run.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// These calls, reporting to `rt` when more come due while they run.
    pub fn reporting_to(mut self, rt: &Arc<Runtime>) -> DueCalls {
        if !self.calls.is_empty() {
            self.rt = Some(rt.clone());
        }
        self
    }

    /// Runs them on this thread; while they run, the thread takes no others. Calls that
    /// came due meanwhile (a hook that collects) are handed to the next poll of every
    /// thread: the handshake that announced them was answered inside these calls, where
    /// they could not run, and a VM that only polls took them at its next allocation slow
    /// path, or never.
    pub fn run(self) {
        if self.calls.is_empty() {
            return;
        }
        IN_VM_CALL.with(|c| c.set(true));
        for f in self.calls {
            f();
        }
        IN_VM_CALL.with(|c| c.set(false));
        if let Some(rt) = self.rt {
            if rt.refs.calls_pending.load(Ordering::Acquire) {
                rt.safepoint.request_handshakes();
            }
        }
    }
}

impl References {
    /// The calls due, unless this thread is running some already.
    pub fn due_calls(&self) -> DueCalls {
        if IN_VM_CALL.with(|c| c.get()) || !self.take_calls() {
            return DueCalls {
                calls: Vec::new(),
                rt: None,
            };
        }
        let mut calls = self.hooks.take_calls();
        calls.extend(self.queues.fresh_triggers());
        DueCalls { calls, rt: None }
    }
}

/// Follows `*addr` to its copy when its object moved.
fn follow(rt: &Runtime, addr: &mut usize) {
    // SAFETY: a registered object, not yet swept: its header is readable.
    if let Some(to) = unsafe { moved_to(&rt.space, *addr) } {
        *addr = to;
    }
}

/// Whether `addr` is a dead heap object at the end of marking: in the heap, unmarked, not
/// allocated during marking, and not moved (a moved object's copy is live).
pub(crate) fn dead(rt: &Runtime, addr: usize) -> bool {
    if !rt.space.in_heap(addr) || rt.space.marked_or_black(addr) {
        return false;
    }
    // SAFETY: a heap object not yet swept.
    unsafe { moved_to(&rt.space, addr) }.is_none()
}
