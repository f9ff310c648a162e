//! What a language VM asks of its collector beyond allocation and barriers (the Python
//! services): weak references, finalizer queues and destructors, identity, memory
//! pressure, shrinking, collection control, and the VM calls that run at safepoints.
//! The collector's side of each lives in [`crate::refs`].

use super::{satb_log, Mutator};
use crate::barriers::{LOAD, WRITE};
use crate::collector::evacuate::moved_to;
use crate::error::{Error, Result};
use crate::object::{forward, pin, ObjRef, FLAG_HASHED_MOVED, FLAG_NO_DESTRUCTOR};
use crate::refs::weak::{self, WEAK_SLOT};
use crate::refs::{self, DueCalls};
use crate::stats::GcCause;
use crate::sync::raw::{AtomicPtr, AtomicU64};
use crate::sync::Ordering;

/// How far [`Mutator::collect_ex`] goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectLevel {
    /// Start a cycle (unless one is running) and return at once.
    Start,
    /// Wait for the cycle in progress to finish, or run one if none is.
    Finish,
    /// Run a whole cycle that starts after this call, then run the finalizer triggers it
    /// made due on this thread (Python's `gc.collect()`).
    Full,
    /// Run a nursery cycle that starts after this call (generational mode; a whole cycle
    /// otherwise), then run the finalizer triggers it made due on this thread (Python's
    /// `gc.collect(0)`, PyPy's minor collection).
    Young,
}

impl Mutator {
    /// A weak reference to `target` (None: an empty one): a GC object whose one slot the
    /// collector clears once `target` dies. `target` need not be rooted across this call.
    pub fn weakref_new(&mut self, target: Option<ObjRef>) -> Result<ObjRef> {
        let ty = weak::weakref_type(&self.rt)
            .ok_or_else(|| Error::State("the type table is full: no weakref type".into()))?;
        self.push_root(target)?;
        let w = self.alloc(ty, 0);
        let target = self.pop_root()?;
        let w = w?;
        // SAFETY: a fresh object of the weakref type; the slot needs no barrier (an
        // initialising store, see tandem.h).
        unsafe { w.store_ref(WEAK_SLOT, target) };
        // SAFETY: RUNNING on the owning thread.
        unsafe { self.core.registered() }.weak.push(w.addr());
        Ok(w)
    }

    /// The target of weakref `wr`, or None once it died. While marking runs the result is
    /// shaded (kept alive by this cycle): the caller may store it anywhere.
    pub fn weakref_get(&mut self, wr: ObjRef) -> Result<Option<ObjRef>> {
        // SAFETY: the VM passes a live object it holds.
        if !unsafe { weak::is_weakref(&self.rt, wr) } {
            return Err(Error::InvalidArgument(format!("{wr:?} is not a weakref")));
        }
        // SAFETY: the slot of a live weakref: an aligned pointer word.
        let slot = unsafe { &*wr.field::<AtomicPtr<u8>>(WEAK_SLOT) };
        // SAFETY: the same word, as the barrier protocol's word type.
        let word = unsafe { &*(slot as *const AtomicPtr<u8>).cast::<AtomicU64>() };
        // A weakref made since the pause that opened the window (neither marked nor black)
        // is not being settled, and its target is live: the program held it after marking
        // ended. (Judged, that target, allocated after the pause too, read as dead.)
        if self.rt.refs.weak_window.is_open() && self.rt.space.marked_or_black(wr.addr()) {
            let rt = &*self.rt;
            let t = weak::load_settling(
                word,
                // SAFETY: a target not swept yet (nothing is before the window's handshake).
                |t| unsafe { moved_to(&rt.space, t) },
                |t| refs::dead(rt, t),
            );
            return Ok(t.and_then(ObjRef::from_addr));
        }
        let t = weak::load(
            word,
            self.core.barriers.load(Ordering::Relaxed),
            |t| {
                self.resolve_loaded(slot, ObjRef::from_addr(t).expect("non-zero"))
                    .addr()
            },
            // SAFETY: RUNNING on the owning thread: its SATB buffer is ours.
            |t| satb_log(&self.rt, &mut unsafe { self.core.barrier() }.satb, t),
        );
        Ok(t.and_then(ObjRef::from_addr))
    }

    /// Registers `obj` with finalizer queue `queue`: once it dies, it (and what it
    /// reaches) stays alive in the queue until [`Mutator::next_dead`] takes it.
    pub fn register_finalizer(&mut self, queue: u32, obj: ObjRef) -> Result<()> {
        self.rt.refs.queues.get(queue)?;
        // SAFETY: RUNNING on the owning thread.
        unsafe { self.core.registered() }
            .finalizable
            .push(crate::refs::finalize::Registration::new(obj.addr(), queue));
        Ok(())
    }

    /// The next dead object of finalizer queue `queue`, if any. Ready lists are not roots
    /// of a concurrent cycle's pauses, so the object taken is resolved like a loaded
    /// reference (its copy, when it moved or, while objects move, lies in the collection
    /// set) and, while marking runs, shaded: the cycle may not have marked it yet.
    pub fn next_dead(&mut self, queue: u32) -> Result<Option<ObjRef>> {
        let rt = self.rt.clone();
        let moving = self.core.barrier_on(LOAD);
        let got = rt.refs.queues.next_dead(queue, |a| {
            let o = ObjRef::from_addr(a).expect("ready lists hold objects");
            if moving {
                self.resolve(o).addr()
            } else {
                // SAFETY: a queued object, live; its original is intact until the ready
                // lists are repaired, which takes the lock this runs under.
                unsafe { moved_to(&rt.space, a) }.unwrap_or(a)
            }
        })?;
        if let Some(o) = got {
            if self.core.barrier_on(WRITE) {
                // SAFETY: RUNNING on the owning thread: its SATB buffer is ours.
                satb_log(&rt, &mut unsafe { self.core.barrier() }.satb, o.addr());
            }
        }
        Ok(got)
    }

    /// Tells the collector not to call `obj`'s destructor nor deliver it to a finalizer
    /// queue (PyPy's `ignore_finalizer`).
    pub fn ignore_finalizer(&mut self, obj: ObjRef) {
        // SAFETY: the VM passes a live object it holds.
        unsafe { obj.header() }.fetch_or(FLAG_NO_DESTRUCTOR, Ordering::Relaxed);
    }

    /// An integer unique among live objects and stable for `obj`'s whole life: its
    /// address, and the object no longer moves (like pinned for life).
    pub fn id(&mut self, obj: ObjRef) -> Result<u64> {
        // SAFETY: the VM passes a live object it holds.
        if pin::fix(unsafe { obj.header() }) {
            Ok(obj.addr() as u64)
        } else {
            Err(Error::State(format!(
                "{obj:?} has moved: a stale reference"
            )))
        }
    }

    /// Counts `bytes` of raw memory owned by `obj` (freed when it dies) toward the next
    /// collection's trigger; the statistics report what live objects own.
    pub fn add_memory_pressure(&mut self, obj: ObjRef, bytes: usize) {
        // SAFETY: RUNNING on the owning thread.
        unsafe { self.core.registered() }
            .pressure
            .push((obj.addr(), bytes));
        self.rt.refs.add_pressure(bytes);
        self.check_trigger();
    }

    /// Shrinks the var-size object `obj` to `length` items in place; false when it cannot
    /// (a fixed-size type, a longer length, or an object that carries a moved hash word).
    pub fn shrink(&mut self, obj: ObjRef, length: usize) -> Result<bool> {
        // SAFETY: the VM passes a live object it holds.
        let (ty, h) = unsafe { (obj.type_id(), obj.header().load(Ordering::Relaxed)) };
        let rt = self.rt.clone();
        let info = rt.types.lookup(ty)?;
        // SAFETY: a live object of type `info`.
        let old = unsafe { info.length_of(obj) };
        if !info.is_varsize() || length > old || h & FLAG_HASHED_MOVED != 0 {
            return Ok(false);
        }
        if self.core.marking() {
            // The dropped items' references leave the object: log them like overwritten
            // ones (every slot, since a tracer may not say which belong to which item).
            // SAFETY: a live, initialised object of type `info`.
            unsafe { info.for_each_slot(obj, |s| self.log_slot(s)) };
        }
        // SAFETY: the length word of a live var-size object; markers read it atomically
        // enough (an old or a new length is safe: the dropped items stay intact until the
        // sweep that follows the next complete marking).
        let len = unsafe { &*obj.field::<crate::sync::raw::AtomicU64>(info.length_offset) };
        len.store(length as u64, Ordering::Release);
        Ok(true)
    }

    /// The objects `obj` refers to, in slot order (null slots skipped), read through the
    /// load barrier (PyPy's `get_rpy_referents`).
    pub fn referents(&mut self, obj: ObjRef) -> Result<Vec<ObjRef>> {
        Ok(self
            .reference_offsets(obj)?
            .into_iter()
            // SAFETY: each offset is a reference slot of `obj`.
            .filter_map(|off| unsafe { self.read_ref(obj, off) })
            .collect())
    }

    /// The reference in slot `offset` of `obj` (one of [`Mutator::reference_offsets`]),
    /// read through the load barrier; None when null or when `obj` no longer reaches that
    /// far (shrunk since the offsets were taken).
    pub fn referent_at(&mut self, obj: ObjRef, offset: usize) -> Result<Option<ObjRef>> {
        // SAFETY: the VM passes a live object it holds.
        let info = self.rt.types.lookup(unsafe { obj.type_id() })?;
        // SAFETY: a live object of type `info`.
        let size = unsafe { info.size_of(obj) }
            .ok_or_else(|| Error::State(format!("{obj:?} has a corrupt length")))?;
        if offset + 8 > size {
            return Ok(None);
        }
        // SAFETY: a reference slot of `obj`, inside it.
        Ok(unsafe { self.read_ref(obj, offset) })
    }

    /// The offsets of `obj`'s reference slots, in slot order.
    pub fn reference_offsets(&self, obj: ObjRef) -> Result<Vec<usize>> {
        // SAFETY: the VM passes a live object it holds.
        let info = self.rt.types.lookup(unsafe { obj.type_id() })?;
        let mut offsets = Vec::new();
        // SAFETY: a live, initialised object of type `info`.
        unsafe { info.for_each_slot(obj, |s| offsets.push(s as usize - obj.addr())) };
        Ok(offsets)
    }

    /// Runs a collection to `level`.
    pub fn collect_ex(&mut self, level: CollectLevel) -> Result<()> {
        crate::callback::check("collect")?;
        match level {
            CollectLevel::Start => {
                self.rt.failure.check()?;
                self.rt.requests.request(GcCause::Explicit);
                Ok(())
            }
            CollectLevel::Finish => self.wait_for_cycle(GcCause::Explicit, false),
            CollectLevel::Full | CollectLevel::Young => {
                let cause = if level == CollectLevel::Young {
                    GcCause::Young
                } else {
                    GcCause::Explicit
                };
                self.wait_for_cycle(cause, true)?;
                if !self.defer_calls {
                    self.due_calls().run();
                }
                Ok(())
            }
        }
    }

    /// Advances the collector by one phase (starting a cycle when none runs) and returns
    /// the phase reached: Marking and Sweeping in concurrent mode, Idle once the cycle
    /// ended (a stop-the-world collection is one step). Any other wait for the collector
    /// turns stepping off.
    pub fn collect_step(&mut self) -> Result<crate::collector::step::Phase> {
        crate::callback::check("collect_step")?;
        self.rt.failure.check()?;
        let rt = self.rt.clone();
        let phase = self.native(|| {
            rt.stepper.step(|| {
                rt.requests.request(GcCause::Explicit);
            })
        });
        self.rt.failure.check()?;
        Ok(phase)
    }

    /// Finalizer triggers (and hooks) due on this thread: none while one runs here already.
    /// The C ABI takes them and runs them outside its borrow of the mutator.
    pub fn due_calls(&mut self) -> DueCalls {
        self.rt.refs.due_calls().reporting_to(&self.rt)
    }

    /// Makes [`Mutator::safepoint`] leave due calls to the caller ([`Mutator::due_calls`]).
    pub fn defer_calls(&mut self, defer: bool) {
        self.defer_calls = defer;
    }
}

/// The size of `obj` in bytes, header and hash word included.
///
/// # Safety
/// `obj` must be a live object (not a stale address of one that moved).
pub unsafe fn size_of(rt: &crate::runtime::Runtime, obj: ObjRef) -> Result<usize> {
    // SAFETY: caller's contract.
    let (ty, h) = unsafe { (obj.type_id(), obj.header().load(Ordering::Relaxed)) };
    let info = rt.types.lookup(ty)?;
    // SAFETY: a live object of type `info`.
    let base = unsafe { info.size_of(obj) }
        .ok_or_else(|| Error::State(format!("{obj:?} has a corrupt length")))?;
    Ok(base + forward::hash_word_bytes(h))
}

/// The type of `obj`, registered or Tandem's own (weakrefs).
///
/// # Safety
/// `obj` must be a live object.
pub unsafe fn type_of(rt: &crate::runtime::Runtime, obj: ObjRef) -> Result<crate::object::TypeId> {
    // SAFETY: caller's contract.
    let ty = unsafe { obj.type_id() };
    rt.types.lookup(ty)?;
    Ok(ty)
}

/// Whether the collector may ever move `obj` (false for pinned objects, objects whose id
/// was taken, large objects, and with `TANDEM_EVACUATION=off`).
///
/// # Safety
/// `obj` must be a live object.
pub unsafe fn can_move(rt: &crate::runtime::Runtime, obj: ObjRef) -> bool {
    // SAFETY: caller's contract.
    let h = unsafe { obj.header() }.load(Ordering::Relaxed);
    rt.config.evacuation != crate::config::EvacuationMode::Off
        && rt.space.in_immix(obj.addr())
        && !pin::pinned(h)
}
