//! How a mutator allocates: the TLAB bump and its slow paths, large objects, mark assists
//! paid for by allocation, and what happens when memory runs short (waiting for a cycle at
//! the heap's limit, the OOM handler).

use super::Mutator;
use crate::alloc::{clear_block, Slow};
use crate::collector::assist::{MAX_ASSIST, MIN_ASSIST};
use crate::error::{Error, Result};
use crate::heap::LARGE_OBJECT_THRESHOLD;
use crate::object::{make_header, ObjRef, TypeId};
use crate::stats::GcCause;
use crate::sync::Ordering;

/// Collections an allocation waits for before it reports out of memory.
const MAX_ALLOCATION_GCS: usize = 16;
/// Longest an allocation waits for a cycle at the heap's limit before it goes
/// ahead (the limit slows the allocating threads down to the collector's pace; it never
/// holds one for a whole cycle).
const LIMIT_PATIENCE: std::time::Duration = std::time::Duration::from_millis(1);

impl Mutator {
    /// Allocates a zeroed object of type `ty` with `length` items (0 for fixed-size types).
    /// The header and length field are initialised. Fails with `OutOfMemory` (after calling
    /// the OOM handler) when a full GC does not free enough memory.
    #[inline]
    pub fn alloc(&mut self, ty: TypeId, length: usize) -> Result<ObjRef> {
        self.alloc_cleared(ty, length, true)
    }

    /// [`Mutator::alloc`] for a type without references (strings, byte and number
    /// arrays) whose bytes the caller writes itself: past the header and the length field,
    /// a large object's bytes are not cleared when its pages are reused (they hold an old
    /// object's bytes); a small one is zeroed all the same. Fails with `InvalidArgument`
    /// for a type that has reference slots or a trace function.
    pub fn alloc_uninit(&mut self, ty: TypeId, length: usize) -> Result<ObjRef> {
        let info = self.rt.types.lookup(ty)?;
        if info.trace.is_some() || !info.ref_offsets.is_empty() || !info.item_ref_offsets.is_empty()
        {
            return Err(Error::InvalidArgument(format!(
                "type {} has references: only pointer-free types may be allocated \
                 uninitialised",
                ty.0
            )));
        }
        self.alloc_cleared(ty, length, false)
    }

    /// [`Mutator::alloc`], clearing a large object's reused pages only with `zero`.
    #[inline]
    fn alloc_cleared(&mut self, ty: TypeId, length: usize, zero: bool) -> Result<ObjRef> {
        let info = self.rt.types.lookup(ty)?;
        let (varsize, len_off) = (info.is_varsize(), info.length_offset);
        let destructible = info.destructor.is_some();
        let size = info
            .size_for(length)
            .filter(|&s| s <= self.rt.space.heap_max())
            .ok_or_else(|| {
                Error::SizeOverflow(format!(
                    "type {} with {length} items does not fit in the heap",
                    ty.0
                ))
            })?;
        let large = size > LARGE_OBJECT_THRESHOLD;
        let addr = if large {
            // The header is written before the object is registered (see `alloc_large`).
            self.alloc_large(size, make_header(ty, 0), zero)?
        } else if let Some(a) = self.fast().window.bump(size) {
            a
        } else {
            self.alloc_small_slow(size)?
        };
        let obj = ObjRef::from_addr(addr).expect("allocator returned null");
        // SAFETY: fresh, zeroed memory of `size` bytes owned by this thread.
        unsafe {
            if !large {
                obj.field::<u64>(0).write(make_header(ty, 0));
            }
            if varsize {
                obj.field::<usize>(len_off).write(length);
            }
        }
        if destructible {
            // SAFETY: RUNNING on the owning thread.
            unsafe { self.core.registered() }.destructible.push(addr);
        }
        Ok(obj)
    }

    /// Allocates an object that will never move: pinned from its allocation, so no
    /// collection set takes it (large objects never move anyway).
    pub fn alloc_nonmoving(&mut self, ty: TypeId, length: usize) -> Result<ObjRef> {
        let obj = self.alloc(ty, length)?;
        // SAFETY: a live object we just allocated.
        unsafe { obj.header() }.fetch_or(crate::object::FLAG_PINNED, Ordering::Relaxed);
        Ok(obj)
    }

    #[cold]
    fn alloc_small_slow(&mut self, size: usize) -> Result<usize> {
        self.alloc_retrying(size, |m| {
            // Empty blocks are zeroed in a native region: a stop never waits for their page
            // faults (fresh memory, up to milliseconds per block on a busy virtual machine).
            let (r, black) = loop {
                let black = m.core.marking();
                // SAFETY: we are RUNNING on the owning thread; the borrows end before the
                // native region below, where the collector may retire the TLAB.
                let (fast, slow) = unsafe { (m.core.fast(), m.core.slow()) };
                match slow.alloc_slow_or_clear(&mut fast.window, &m.rt.space, size, black)? {
                    Slow::Done(r) => break (r, black),
                    Slow::Clear(c) => {
                        let rt = m.rt.clone();
                        m.native(|| clear_block(&rt.space, c.block));
                        // SAFETY: RUNNING again on the owning thread.
                        unsafe { m.core.slow() }.adopt_cleared(&m.rt.space, c);
                    }
                }
            };
            // SAFETY: we are RUNNING on the owning thread.
            let slow = unsafe { m.core.slow() };
            let bytes = slow.take_allocated();
            m.rt.stats.add_allocated(bytes);
            if black {
                m.assist(bytes);
            }
            Ok(r)
        })
    }

    /// A large object with header word `header`, written before the object is registered:
    /// from then on a sweep may see it, and in generational mode the registration flags
    /// the header of an object allocated during marking (`FLAG_NEW_LARGE`).
    #[cold]
    fn alloc_large(&mut self, size: usize, header: u64, zero: bool) -> Result<usize> {
        self.alloc_retrying(size, |m| {
            // The run is cleared (its pages touched) in a native region: a stop does not
            // wait for it. Unless `zero`, a reused run is not cleared at all.
            let rt = m.rt.clone();
            let r = rt.space.alloc_large_with(size, header, |run| {
                m.native(|| {
                    if zero {
                        run.clear()
                    } else {
                        run.prepare_uninit()
                    }
                })
            })?;
            if r.is_some() {
                m.rt.stats.add_allocated(size);
                if m.core.marking() {
                    m.assist(size);
                }
            }
            Ok(r)
        })
    }

    /// Pays for `bytes` allocated while marking runs with marking work, once the debt is
    /// worth an assist (see [`crate::collector::assist`]).
    fn assist(&mut self, bytes: usize) {
        let rt = &*self.rt;
        self.assist_debt += rt.assists.debt(rt.space.in_use(), bytes);
        if self.assist_debt < MIN_ASSIST as f64 {
            return;
        }
        // The workers' progress ahead of the debts pays first.
        self.assist_debt -= rt.assists.claim_credit(self.assist_debt as u64) as f64;
        if self.assist_debt < MIN_ASSIST as f64 {
            return;
        }
        let work = (self.assist_debt as usize).min(MAX_ASSIST);
        let t0 = std::time::Instant::now();
        let done = rt
            .assists
            .assist(rt, work, || self.core.ts.poll_requested());
        rt.stats.add_assist(done as u64, t0.elapsed());
        // Less work than asked for: none is left to find now, so the rest is forgiven.
        self.assist_debt = if done < work {
            if rt.assists.past_goal(rt.space.in_use()) {
                // The markers hold the rest and are late: on a machine with more runnable
                // threads than cores, let them run (free when a core is idle).
                crate::sync::thread::yield_now();
            }
            0.0
        } else {
            self.assist_debt - done as f64
        };
    }

    /// The slow path: [`Mutator::alloc_attempts`]; an allocation the failed collector
    /// cannot serve fails as one that is out of memory does, through the VM's handler.
    fn alloc_retrying(
        &mut self,
        size: usize,
        attempt: impl FnMut(&mut Self) -> Result<Option<usize>>,
    ) -> Result<usize> {
        let r = self.alloc_attempts(size, attempt);
        if matches!(r, Err(Error::Internal(_))) {
            self.rt.call_oom_handler(size);
        }
        r
    }

    /// The slow path's loop: poll, try `attempt`, and on failure collect and retry until
    /// [`Mutator::give_up`] says the heap is really full.
    fn alloc_attempts(
        &mut self,
        size: usize,
        mut attempt: impl FnMut(&mut Self) -> Result<Option<usize>>,
    ) -> Result<usize> {
        self.rt.failure.check()?;
        self.safepoint()?;
        self.torture_tick()?;
        // Cycles numbered above this one started after the first failed attempt. Only they
        // count toward giving up: a concurrent cycle already running when the attempt failed
        // may have started before the memory the caller needs became garbage, and its live
        // figure counts everything allocated black meanwhile (up to the whole heap).
        let mut before: Option<u64> = None;
        self.wait_at_limit();
        loop {
            if let Some(a) = attempt(self)? {
                self.check_trigger();
                return Ok(a);
            }
            let started = *before.get_or_insert_with(|| self.rt.requests.started());
            let gcs = self.rt.requests.completed().saturating_sub(started) as usize;
            if self.give_up(size, gcs) || !self.rt.requests.auto_enabled() {
                // With automatic collection disabled, a full heap is out of memory.
                return Err(self.out_of_memory(size));
            }
            self.collect_for(GcCause::AllocationFailure)?;
        }
    }

    /// Past the heap's limit (`Runtime::limit`) with a cycle requested and not complete
    /// (running or not yet started, or held by a VM's stepping, which this wait turns off):
    /// waits up to [`LIMIT_PATIENCE`] for it before allocating, in a native region (no new
    /// object is held yet, so the collector may stop the world meanwhile, and the core this
    /// thread leaves lets the collector's thread run to do so). Counted as a stall.
    fn wait_at_limit(&mut self) {
        let rt = &*self.rt;
        if rt.space.in_use() < rt.limit() || !rt.requests.is_pending() {
            return;
        }
        let t0 = std::time::Instant::now();
        let target = rt.requests.request_current(GcCause::Trigger);
        // A cycle a VM steps (or stepped, and left) goes on meanwhile.
        let held = rt.stepper.hold_off();
        rt.safepoint.enter_native(&self.core);
        rt.requests.wait_at_most(target, LIMIT_PATIENCE);
        rt.safepoint.leave_native(&self.core);
        drop(held);
        rt.stats.add_stall(t0.elapsed());
    }

    /// Out of memory: after a collection that started after the failure, when what is live
    /// leaves no room for `size`, or after many collections that other threads' allocations
    /// keep consuming (a thread that merely lost the race for freed memory retries).
    fn give_up(&self, size: usize, gcs: usize) -> bool {
        let max = self.rt.space.heap_max();
        let live = self.rt.live_after_gc();
        // Only a full cycle's live figure counts: a nursery cycle keeps every old object.
        gcs >= MAX_ALLOCATION_GCS
            || (gcs >= 1 && self.rt.last_cycle_full() && live + size > max - max / 16)
    }

    fn out_of_memory(&self, size: usize) -> Error {
        self.rt.stats.add_oom();
        tracing::warn!(
            bytes = size,
            auto_collection = self.rt.requests.auto_enabled(),
            "allocation failed within the heap's maximum"
        );
        self.rt.call_oom_handler(size);
        Error::OutOfMemory(size)
    }

    pub(super) fn check_trigger(&self) {
        // The pending check keeps threads off the request lock while a cycle runs.
        let used = self.rt.space.in_use() + self.rt.refs.new_pressure();
        if used >= self.rt.trigger()
            && !self.rt.requests.is_pending()
            && self.rt.requests.auto_enabled()
        {
            self.rt.requests.request(GcCause::Trigger);
            // Give the core to the control thread just woken: on a machine whose cores all
            // run mutators, it otherwise waits for this thread's time slice to end before it
            // can start the cycle (graph/t2 on 2 cores: request to pick-up p90 2.0-2.2 ms,
            // 36-42 us with the yield; the heap grew by 1.6-1.8 MB meanwhile).
            crate::sync::thread::yield_now();
        }
    }
}
