//! How a mutator reads and writes the heap: the barriered reference store and load (SATB
//! field and object barriers, the array-copy barrier, the load-reference barrier that
//! resolves and heals references into the collection set), identity hashes and pins.

use super::{satb_log, Mutator};
use crate::barriers::log::log_once;
use crate::barriers::remember;
use crate::barriers::{ARRAY_COPY, LOAD, OBJECT, REMEMBER, STORE, WRITE};
use crate::error::{Error, Result};
use crate::object::ObjRef;
use crate::sync::raw::AtomicPtr;
use crate::sync::Ordering;

impl Mutator {
    /// Stores `value` into the reference field at `offset` of `obj`, with the SATB write
    /// barrier: while marking, the overwritten reference is logged first (and with
    /// `TANDEM_VERIFY`, the store is audited).
    ///
    /// # Safety
    /// `offset` must be a reference field of the live object `obj`.
    #[inline(always)]
    pub unsafe fn write_ref(&mut self, obj: ObjRef, offset: usize, value: Option<ObjRef>) {
        // Relaxed, read once: the byte changes only while this mutator is stopped.
        let barriers = self.core.barriers.load(Ordering::Relaxed);
        if barriers & (WRITE | STORE | REMEMBER) != 0 {
            if barriers & REMEMBER != 0 {
                self.remember_store(barriers, obj, value);
            }
            if barriers & STORE != 0 && self.rt.config.verify {
                self.audit_store(obj, offset, value);
            }
            if barriers & WRITE != 0 {
                // SAFETY: caller's contract.
                self.log_slot(unsafe { obj.field(offset) });
            }
        }
        // SAFETY: caller's contract.
        unsafe { obj.store_ref(offset, value) }
    }

    /// The generational barrier of a store of `value` into `obj` (see
    /// `barriers::remember`): an armed (old, unrecorded) holder is recorded; while marking,
    /// so is any holder not allocated black that receives a black object.
    #[inline(always)]
    fn remember_store(&mut self, barriers: u8, obj: ObjRef, value: Option<ObjRef>) {
        // SAFETY: a live object (callers' contracts).
        let h = unsafe { obj.header() }.load(Ordering::Relaxed);
        if remember::armed(h) || barriers & WRITE != 0 {
            self.remember_slow(obj, value.map_or(Holder::Skip, Holder::Receives));
        }
    }

    /// Records `obj` in this thread's remembered set when [`Holder`] says it must be.
    #[cold]
    #[inline(never)]
    fn remember_slow(&mut self, obj: ObjRef, why: Holder) {
        // SAFETY: a live object (callers' contracts).
        let header = unsafe { obj.header() };
        // SAFETY: RUNNING on the owning thread.
        let b = unsafe { self.core.barrier() };
        if remember::disarm(header) {
            b.remembered.push(obj.addr());
            return;
        }
        if !self.core.marking() || b.remembered.last() == Some(&obj.addr()) {
            return;
        }
        let space = &self.rt.space;
        let record = match why {
            Holder::Skip => false,
            Holder::Receives(v) => space.allocated_black(v.addr()),
            Holder::Any => true,
        };
        if record && !space.allocated_black(obj.addr()) {
            b.remembered.push(obj.addr());
        }
    }

    /// The STORE barrier's audit (`TANDEM_VERIFY`): `obj` is an object in the heap with a
    /// reference slot at `offset`, and `value` is null or an object in the heap. A store
    /// that breaks this is a VM bug, counted as a verification error with a message that
    /// names it; the store itself goes ahead (the heap verifier will see its effects).
    #[cold]
    #[inline(never)]
    fn audit_store(&self, obj: ObjRef, offset: usize, value: Option<ObjRef>) {
        use crate::collector::validate;
        let rt = &*self.rt;
        let check = |o: ObjRef| validate::checked(&rt.space, &rt.types, o);
        let problem = match check(obj) {
            Err(why) => Some(format!("the object {:#x}: {why}", obj.addr())),
            // SAFETY: `check` found a live object of type `info`, `size` bytes long.
            Ok((info, size)) => match unsafe { info.ref_slot_at(obj, offset) } {
                _ if offset >= size || !offset.is_multiple_of(8) => Some(format!(
                    "offset {offset} is not a field of the {size}-byte object {:#x}",
                    obj.addr()
                )),
                Some(false) => Some(format!(
                    "offset {offset} of object {:#x} is not one of its type's reference slots",
                    obj.addr()
                )),
                _ => value.and_then(|v| {
                    check(v)
                        .err()
                        .map(|why| format!("the value {:#x}: {why}", v.addr()))
                }),
            },
        };
        if let Some(p) = problem {
            let msg = format!(
                "store audit (TANDEM_VERIFY): a reference store into +{offset} of {:#x}: {p}",
                obj.addr()
            );
            tracing::error!("{msg}");
            rt.stats.record_verify_errors(vec![msg], 1);
        }
    }

    /// The object barrier (RPython's granularity): call before the first store into
    /// `obj`'s reference fields after a safepoint; while marking, it logs all of them once
    /// per cycle, and stores into `obj` need no field barrier until the next safepoint.
    ///
    /// # Safety
    /// `obj` must be a live, initialised object.
    #[inline(always)]
    pub unsafe fn object_barrier(&mut self, obj: ObjRef) {
        // SAFETY: caller's contract.
        // Acquire pairs with the Release that sets LOGGED in `log_once`: the caller's stores
        // that follow cannot become visible before this load, so the logging thread read
        // the old values (on weakly ordered CPUs a Relaxed load allows that reordering).
        let barriers = self.core.barriers.load(Ordering::Relaxed);
        if barriers & (OBJECT | REMEMBER) == 0 {
            return;
        }
        // SAFETY: caller's contract.
        let h = unsafe { obj.header() }.load(Ordering::Acquire);
        if barriers & REMEMBER != 0 && remember::armed(h) {
            self.remember_slow(obj, Holder::Skip);
        }
        if barriers & OBJECT != 0 && h & crate::object::FLAG_LOGGED == 0 {
            // SAFETY: caller's contract.
            unsafe { self.log_object(obj) };
        }
    }

    #[cold]
    unsafe fn log_object(&mut self, obj: ObjRef) {
        // SAFETY: a live object (caller's contract) of a registered type.
        let (header, ty) = unsafe { (obj.header(), obj.type_id()) };
        let Some(info) = self.rt.types.get(ty) else {
            return;
        };
        // SAFETY: RUNNING on the owning thread.
        let b = unsafe { self.core.barrier() };
        let rt = &*self.rt;
        let logged = log_once(header, || {
            // SAFETY: obj is live and initialised, of type `info`.
            unsafe {
                info.for_each_slot(obj, |slot| {
                    let old = (*(slot as *const AtomicPtr<u8>)).load(Ordering::Relaxed) as usize;
                    satb_log(rt, &mut b.satb, old);
                })
            }
        });
        if logged {
            b.logged.push(obj.addr());
            if self.core.barrier_on(REMEMBER) {
                // The stores that follow go unseen until the next safepoint: any of them
                // may store a black object (see `barriers::remember`).
                self.remember_slow(obj, Holder::Any);
            }
        }
    }

    /// Copies `n` reference slots from `src_offset` in `src` to `dst_offset` in `dst`
    /// (overlap allowed), logging the overwritten range while marking.
    ///
    /// # Safety
    /// Both ranges must be reference slots of the live objects.
    pub unsafe fn array_copy_refs(
        &mut self,
        dst: ObjRef,
        dst_offset: usize,
        src: ObjRef,
        src_offset: usize,
        n: usize,
    ) {
        // SAFETY: caller's contract: n reference slots at each offset.
        let (d, sp) = unsafe {
            (
                dst.field::<AtomicPtr<u8>>(dst_offset),
                src.field::<AtomicPtr<u8>>(src_offset),
            )
        };
        if self.core.barrier_on(REMEMBER) {
            // SAFETY: caller's contract.
            if remember::armed(unsafe { dst.header() }.load(Ordering::Relaxed))
                || self.core.marking()
            {
                self.remember_slow(dst, Holder::Any);
            }
        }
        if self.core.barrier_on(ARRAY_COPY) {
            for i in 0..n {
                // SAFETY: slot i of the destination range.
                self.log_slot(unsafe { d.add(i) } as *mut *mut u8);
            }
        }
        let resolving = self.core.barrier_on(LOAD);
        // Slot by slot with atomic accesses (markers may read these slots), in the direction
        // that is safe for overlapping ranges; while objects move, each reference copied
        // is resolved as a load would.
        let mut copy = |i: usize| {
            // SAFETY: i < n: slots of both ranges.
            let (from, to) = unsafe { (&*sp.add(i), &*d.add(i)) };
            let mut v = from.load(Ordering::Acquire);
            if resolving {
                if let Some(o) = ObjRef::from_ptr(v) {
                    v = self.resolve_loaded(from, o).as_ptr();
                }
            }
            to.store(v, Ordering::Release)
        };
        if (d as usize) < (sp as usize) {
            (0..n).for_each(&mut copy);
        } else {
            (0..n).rev().for_each(&mut copy);
        }
    }

    #[inline]
    pub(super) fn log_slot(&mut self, slot: *mut *mut u8) {
        // SAFETY: a reference slot of a live object (callers' contracts).
        let old = unsafe { &*(slot as *const AtomicPtr<u8>) }.load(Ordering::Relaxed) as usize;
        // SAFETY: RUNNING on the owning thread.
        satb_log(&self.rt, &mut unsafe { self.core.barrier() }.satb, old);
    }

    /// Loads the reference field at `offset` of `obj`, with the load barrier.
    ///
    /// # Safety
    /// `offset` must be a reference field of the live object `obj`.
    #[inline(always)]
    pub unsafe fn read_ref(&mut self, obj: ObjRef, offset: usize) -> Option<ObjRef> {
        // SAFETY: caller's contract.
        let v = unsafe { obj.load_ref(offset) };
        match v {
            Some(o) if self.core.barrier_on(LOAD) => {
                // SAFETY: caller's contract: a reference field, an aligned pointer word.
                let slot = unsafe { &*obj.field::<AtomicPtr<u8>>(offset) };
                Some(self.resolve_loaded(slot, o))
            }
            _ => v,
        }
    }

    /// The load barrier's common case, for callers that reach it through a call (the C
    /// ABI's slow path): the reference in `slot` when it needs no resolving (null, or
    /// outside the collection set), None when it must go through [`Mutator::read_ref`].
    #[inline]
    pub fn read_ref_unmoved(&self, slot: &AtomicPtr<u8>) -> Option<*mut u8> {
        let v = slot.load(Ordering::Acquire);
        (v.is_null() || !self.rt.space.in_cset(v as usize)).then_some(v)
    }

    /// The load barrier's slow path: the address `v`, just loaded from `slot`, resolves to
    /// (its copy when it lies in the collection set, made now if nobody made it), with the
    /// slot repaired.
    #[cold]
    pub(crate) fn resolve_loaded(&self, slot: &AtomicPtr<u8>, v: ObjRef) -> ObjRef {
        let to = self.resolve(v).addr();
        if to != v.addr() {
            // SAFETY: the same pointer-sized, aligned word as `slot`.
            let word =
                unsafe { &*(slot as *const AtomicPtr<u8>).cast::<crate::sync::raw::AtomicU64>() };
            crate::object::forward::heal(word, v.addr() as u64, to as u64);
        }
        ObjRef::from_addr(to).expect("non-zero")
    }

    /// What the live object (or copy's original) `v` resolves to while objects move: its
    /// copy when it lies in the collection set, made now if nobody made it.
    pub(crate) fn resolve(&self, v: ObjRef) -> ObjRef {
        let rt = &*self.rt;
        if !rt.space.in_cset(v.addr()) {
            return v;
        }
        // SAFETY: RUNNING on the owning thread: the copy buffer is ours.
        let lab = unsafe { &mut *self.core.copies.get() };
        // SAFETY: the caller's contract: v is live or a copy's original.
        let to = unsafe { rt.evac.resolve(&rt.space, &rt.types, v.addr(), lab) };
        ObjRef::from_addr(to).expect("non-zero")
    }

    /// The identity hash of `obj`: stable for the object's whole life, across moves (the
    /// first move after the hash was taken keeps it in an extra word of the copy).
    pub fn identity_hash(&mut self, obj: ObjRef) -> u64 {
        // SAFETY: the VM passes a live object it holds.
        let base = self
            .rt
            .types
            .get(unsafe { obj.type_id() })
            // SAFETY: as above.
            .and_then(|info| unsafe { info.size_of(obj) })
            .unwrap_or(0);
        // SAFETY: a live object of `base` bytes; a moved one has its hash word there.
        unsafe { crate::object::forward::identity_hash(obj, base) }
    }

    /// Pins `obj`: it does not move until as many [`Mutator::unpin`] calls. Counted and
    /// thread-safe; fails when the count (65535) is full.
    pub fn pin(&mut self, obj: ObjRef) -> Result<()> {
        // SAFETY: the VM passes a live object it holds.
        if crate::object::pin::pin(unsafe { obj.header() }) {
            Ok(())
        } else {
            Err(Error::State(format!(
                "{obj:?} is pinned 65535 times already"
            )))
        }
    }

    /// Removes one pin of `obj`; fails when it has none (objects from
    /// [`Mutator::alloc_nonmoving`] are pinned for life and have no count to remove).
    pub fn unpin(&mut self, obj: ObjRef) -> Result<()> {
        // SAFETY: the VM passes a live object it holds.
        if crate::object::pin::unpin(unsafe { obj.header() }) {
            Ok(())
        } else {
            Err(Error::State(format!("{obj:?} is not pinned")))
        }
    }

    /// Whether `obj` is pinned (counted pins, or allocated non-moving).
    pub fn is_pinned(&mut self, obj: ObjRef) -> bool {
        // SAFETY: the VM passes a live object it holds.
        crate::object::pin::pinned(unsafe { obj.header() }.load(Ordering::Relaxed))
    }
}

/// What a holder's generational barrier knows of the stores it guards: while marking, a
/// holder not yet scanned is recorded only if it may receive an object allocated black.
#[derive(Clone, Copy)]
enum Holder {
    /// No store of a black object (a null store, or only the flag matters).
    Skip,
    /// One store of this object.
    Receives(ObjRef),
    /// Stores the barrier does not see (object barrier, array copy).
    Any,
}
