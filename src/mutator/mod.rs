//! A mutator: one per OS thread that touches the heap. It owns a TLAB and a shadow stack
//! and takes part in the safepoint protocol.
//!
//! The first fields of [`MutatorCore`] are read and written by the inline fast paths of
//! `ffi/include/tandem.h`; their offsets are part of the C ABI and checked below.

use crate::alloc::{BumpWindow, TlabState};
use crate::barriers::satb::{SatbBuffer, SatbQueue};
use crate::barriers::WRITE;
use crate::collector::evacuate::CopyLab;
use crate::error::{Error, Result};
use crate::object::ObjRef;
use crate::refs::Registrations;
use crate::roots::{ShadowStack, ShadowStackPtrs};
use crate::runtime::Runtime;
use crate::safepoint::{Participant, ThreadState};
use crate::stats::GcCause;
use crate::sync::unmodelled::Arc;
use crate::sync::{AtomicU8, Mutex, Ordering};
use std::cell::UnsafeCell;
use std::marker::PhantomData;

pub mod access;
mod alloc;
pub mod services;
pub use services::CollectLevel;

/// The fields the inline fast paths use (TLAB window and shadow stack).
#[repr(C)]
#[derive(Debug)]
pub struct FastFields {
    /// The TLAB bump window.
    pub window: BumpWindow,
    /// The shadow stack.
    pub ss: ShadowStackPtrs,
}

/// A mutator's barrier buffers: overwritten references, and objects whose LOGGED flag it
/// set this cycle (cleared after marking).
#[derive(Debug, Default)]
pub struct BarrierState {
    /// Overwritten references logged while marking.
    pub satb: SatbBuffer,
    /// Objects this mutator logged with the object barrier.
    pub logged: Vec<usize>,
    /// Old objects this mutator recorded with the REMEMBER barrier (generational mode),
    /// for the next cycle's init mark.
    pub remembered: Vec<usize>,
}

impl BarrierState {
    /// Hands the SATB entries to the markers' queue and the logged objects to the
    /// collector's list (`Runtime::satb` and `Runtime::logged`), leaving both buffers empty.
    pub fn flush(&mut self, satb: &SatbQueue, logged: &Mutex<Vec<usize>>) {
        satb.publish(self.satb.take());
        if !self.logged.is_empty() {
            logged.lock().append(&mut self.logged);
        }
    }
}

/// The per-thread state shared between a mutator and the collector.
///
/// Ownership rule: `fast` and `slow` belong to the mutator's thread while it is RUNNING, and
/// to the collector while the world is stopped (the safepoint protocol orders the two).
#[repr(C)]
#[derive(Debug)]
pub struct MutatorCore {
    fast: UnsafeCell<FastFields>,
    /// Safepoint state and poll word.
    pub ts: ThreadState,
    /// The barriers on for this thread (`barriers::WRITE`, ...): 0 while no concurrent
    /// phase runs.
    pub barriers: AtomicU8,
    slow: UnsafeCell<TlabState>,
    barrier: UnsafeCell<BarrierState>,
    copies: UnsafeCell<CopyLab>,
    registered: UnsafeCell<Registrations>,
    stack: ShadowStack,
    /// The attaching thread (`pthread_self`, which works in a thread's exit code too, where
    /// `std::thread::current` panics once the thread's Rust thread-locals are gone).
    owner: libc::pthread_t,
    /// The attaching thread as a debugger names it, for warnings.
    label: String,
    /// The OS thread id of the owning thread (0 where unknown).
    tid: i32,
}

/// The C ABI version (`TANDEM_ABI_VERSION` in `tandem.h`): it changes whenever the offsets
/// below, the barrier bits or the inline fast paths' shapes change.
pub const ABI_VERSION: u32 = 4;
/// Byte offset of the TLAB cursor in a mutator (C ABI).
pub const OFFSET_CURSOR: usize = 0;
/// Byte offset of the TLAB limit (C ABI).
pub const OFFSET_LIMIT: usize = 8;
/// Byte offset of the shadow-stack top (C ABI).
pub const OFFSET_SS_TOP: usize = 16;
/// Byte offset of the shadow-stack limit (C ABI).
pub const OFFSET_SS_LIMIT: usize = 24;
/// Byte offset of the shadow-stack base (C ABI).
pub const OFFSET_SS_BASE: usize = 32;
/// Byte offset of the safepoint state word (C ABI); the poll tests its STOP_REQUESTED bit.
pub const OFFSET_STATE: usize = 40;
/// Byte offset of the barrier byte (C ABI).
pub const OFFSET_BARRIERS: usize = 44;

// Loom's atomics are larger, so the C layout holds in real builds only.
#[cfg(not(loom))]
const _: () = {
    assert!(std::mem::offset_of!(MutatorCore, fast) == OFFSET_CURSOR);
    assert!(std::mem::offset_of!(FastFields, window) == 0);
    assert!(std::mem::offset_of!(FastFields, ss) == OFFSET_SS_TOP);
    assert!(std::mem::offset_of!(MutatorCore, ts) == OFFSET_STATE);
    assert!(std::mem::offset_of!(MutatorCore, barriers) == OFFSET_BARRIERS);
};

// SAFETY: the cells are accessed by one thread at a time per the ownership rule above; the
// handover is ordered by the SeqCst state transitions of the safepoint protocol.
unsafe impl Send for MutatorCore {}
// SAFETY: as above.
unsafe impl Sync for MutatorCore {}

impl Participant for MutatorCore {
    fn thread_state(&self) -> &ThreadState {
        &self.ts
    }

    fn describe(&self) -> String {
        self.label.clone()
    }

    fn os_state(&self) -> Option<String> {
        os_thread_state(self.tid)
    }
}

/// The state letter (R running or runnable, S sleeping, D in the kernel uninterruptibly,
/// ...), kernel wait channel and `/proc/.../syscall` line of thread `tid` of this process:
/// `running` when it is on a CPU right now, a system call's number when it is in one, and
/// `-1 SP PC` when it is off the CPU in its own code (preempted: PC is where).
fn os_thread_state(tid: i32) -> Option<String> {
    #[cfg(target_os = "linux")]
    {
        let task = format!("/proc/self/task/{tid}");
        let stat = std::fs::read_to_string(format!("{task}/stat")).ok()?;
        // The name, in parentheses, may hold spaces: the state follows its closing one.
        let state = stat
            .rsplit_once(')')?
            .1
            .split_whitespace()
            .next()?
            .to_string();
        let wchan = std::fs::read_to_string(format!("{task}/wchan")).unwrap_or_default();
        let syscall = std::fs::read_to_string(format!("{task}/syscall")).unwrap_or_default();
        let wchan = if wchan.is_empty() || wchan == "0" {
            String::new()
        } else {
            format!(" in {wchan}")
        };
        Some(format!("{state}{wchan}, syscall: {}", syscall.trim()))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = tid;
        None
    }
}

/// The calling thread's OS id and name (`thread 4711 "worker-3"`): what `gdb`, `top -H`
/// and `/proc/PID/task` show, also for threads the VM created and named itself.
fn thread_label() -> String {
    #[cfg(target_os = "linux")]
    {
        let mut name = [0u8; 17];
        // SAFETY: PR_GET_NAME writes at most 16 bytes and a NUL into the 17-byte buffer;
        // gettid has no preconditions.
        let (tid, named) = unsafe {
            (
                libc::gettid(),
                libc::prctl(
                    libc::PR_GET_NAME,
                    name.as_mut_ptr() as libc::c_ulong,
                    0,
                    0,
                    0,
                ) == 0,
            )
        };
        let len = name.iter().position(|&b| b == 0).unwrap_or(16);
        if named && len > 0 {
            return format!("thread {tid} \"{}\"", String::from_utf8_lossy(&name[..len]));
        }
        format!("thread {tid}")
    }
    #[cfg(not(target_os = "linux"))]
    {
        let t = std::thread::current();
        format!("{:?} {:?}", t.id(), t.name().unwrap_or(""))
    }
}

impl MutatorCore {
    fn new(shadow_slots: usize) -> Result<MutatorCore> {
        let stack = ShadowStack::new(shadow_slots)?;
        Ok(MutatorCore {
            fast: UnsafeCell::new(FastFields {
                window: BumpWindow::default(),
                ss: stack.ptrs(),
            }),
            ts: ThreadState::default(),
            barriers: AtomicU8::new(0),
            slow: UnsafeCell::new(TlabState::default()),
            barrier: UnsafeCell::new(BarrierState::default()),
            copies: UnsafeCell::new(CopyLab::default()),
            registered: UnsafeCell::new(Registrations::default()),
            stack,
            // SAFETY: pthread_self has no preconditions.
            owner: unsafe { libc::pthread_self() },
            label: thread_label(),
            // SAFETY: gettid has no preconditions.
            #[cfg(target_os = "linux")]
            tid: unsafe { libc::gettid() },
            #[cfg(not(target_os = "linux"))]
            tid: 0,
        })
    }

    /// The fast-path fields.
    ///
    /// # Safety
    /// The caller owns the mutator's state now (its own thread while RUNNING, or the
    /// collector while the world is stopped) and holds no other reference to it.
    #[allow(clippy::mut_from_ref)]
    #[inline(always)]
    pub unsafe fn fast(&self) -> &mut FastFields {
        // SAFETY: exclusive by the caller's contract.
        unsafe { &mut *self.fast.get() }
    }

    /// The slow-path TLAB state.
    ///
    /// # Safety
    /// As for [`MutatorCore::fast`].
    #[allow(clippy::mut_from_ref)]
    #[inline(always)]
    pub unsafe fn slow(&self) -> &mut TlabState {
        // SAFETY: exclusive by the caller's contract.
        unsafe { &mut *self.slow.get() }
    }

    /// The barrier buffers.
    ///
    /// # Safety
    /// As for [`MutatorCore::fast`].
    #[allow(clippy::mut_from_ref)]
    #[inline(always)]
    pub unsafe fn barrier(&self) -> &mut BarrierState {
        // SAFETY: exclusive by the caller's contract.
        unsafe { &mut *self.barrier.get() }
    }

    /// Objects this mutator registered for reference processing since the last pause
    /// that ended marking.
    ///
    /// # Safety
    /// As for [`MutatorCore::fast`].
    #[allow(clippy::mut_from_ref)]
    #[inline(always)]
    pub unsafe fn registered(&self) -> &mut Registrations {
        // SAFETY: exclusive by the caller's contract.
        unsafe { &mut *self.registered.get() }
    }

    /// Whether barrier `bit` (`barriers::WRITE`, ...) is on for this thread.
    #[inline(always)]
    pub fn barrier_on(&self, bit: u8) -> bool {
        // Relaxed: the byte changes only while this mutator is stopped (or before it runs).
        self.barriers.load(Ordering::Relaxed) & bit != 0
    }

    /// Whether concurrent marking runs: allocation is black and pays assists.
    #[inline(always)]
    pub fn marking(&self) -> bool {
        self.barrier_on(WRITE)
    }

    /// Hands this mutator's SATB entries and logged and remembered objects to the collector.
    ///
    /// # Safety
    /// As for [`MutatorCore::fast`].
    pub unsafe fn flush_barriers(&self, rt: &Runtime) {
        // SAFETY: forwarded.
        let b = unsafe { self.barrier() };
        b.flush(&rt.satb, &rt.logged);
        if !b.remembered.is_empty() {
            rt.remembered.lock().push(std::mem::take(&mut b.remembered));
        }
    }

    /// The thread that attached this mutator.
    pub fn owner(&self) -> libc::pthread_t {
        self.owner
    }

    /// Retires the TLAB and reports the bytes it handed out.
    ///
    /// # Safety
    /// As for [`MutatorCore::fast`].
    pub unsafe fn retire_tlab(&self, rt: &Runtime) {
        // SAFETY: forwarded.
        let (fast, slow) = unsafe { (self.fast(), self.slow()) };
        slow.retire(&mut fast.window, &rt.space);
        rt.stats.add_allocated(slow.take_allocated());
    }

    /// Retires the buffer the load barrier copies objects into; returns the bytes copied.
    ///
    /// # Safety
    /// As for [`MutatorCore::fast`].
    pub unsafe fn retire_copies(&self, rt: &Runtime) -> usize {
        // SAFETY: forwarded.
        unsafe { &mut *self.copies.get() }.retire(&rt.space)
    }

    /// Calls `f` on each shadow-stack slot in use.
    ///
    /// # Safety
    /// As for [`MutatorCore::fast`].
    pub unsafe fn for_each_root(&self, f: impl FnMut(*mut *mut u8)) {
        // SAFETY: forwarded.
        unsafe { self.fast() }.ss.for_each_slot(f);
    }
}

/// Logs the overwritten reference `old` unless marking needs nothing from it: null, already
/// marked, or allocated during this cycle (SATB filtering: it keeps the buffers, and so the
/// final-mark pause, small when the same objects are overwritten again and again).
#[inline]
pub(crate) fn satb_log(rt: &Runtime, buf: &mut SatbBuffer, old: usize) {
    if old == 0 || rt.space.marked_or_black(old) {
        return;
    }
    if let Some(full) = buf.push(old) {
        rt.satb.publish(full);
    }
}

thread_local! {
    /// Runtimes this thread is attached to, as (runtime, core) addresses (a thread has at
    /// most one mutator per heap): a `Vec` owned here while non-empty, else null. No
    /// destructor, so that a mutator dropped in the thread's exit code (after the
    /// thread-local destructors ran, as the C ABI detaches) still finds it.
    static ATTACHED: std::cell::Cell<*mut Vec<(usize, usize)>> =
        const { std::cell::Cell::new(std::ptr::null_mut()) };
}

/// Runs `f` on this thread's [`ATTACHED`] list (created when missing, freed when `f` leaves
/// it empty). `f` must not call back into this function.
fn with_attached_list<R>(f: impl FnOnce(&mut Vec<(usize, usize)>) -> R) -> R {
    let mut p = ATTACHED.get();
    if p.is_null() {
        // Empty: `f` runs on a list of its own, kept only if it leaves something in it.
        p = Box::into_raw(Box::default());
        ATTACHED.set(p);
    }
    // SAFETY: this thread's own list, reached only here and never re-entrantly.
    let list = unsafe { &mut *p };
    let r = f(list);
    if list.is_empty() {
        ATTACHED.set(std::ptr::null_mut());
        // SAFETY: the `Box` made above; `ATTACHED` no longer holds it.
        drop(unsafe { Box::from_raw(p) });
    }
    r
}

/// A thread's handle on the heap: allocation, roots, safepoints. Not `Send`: it belongs to
/// the thread that attached it, and detaches when dropped.
pub struct Mutator {
    core: crate::sync::Arc<MutatorCore>,
    rt: Arc<Runtime>,
    /// Marking work (objects) this thread owes for what it allocated while marking runs.
    assist_debt: f64,
    /// Whether due VM calls are left to the caller of `safepoint` (the C ABI runs them
    /// outside its borrow of the mutator).
    defer_calls: bool,
    /// Allocation slow paths and polls since the last torture collection.
    torture_ticks: u64,
    _not_send: PhantomData<*mut ()>,
}

impl std::fmt::Debug for Mutator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mutator")
            .field("core", &(&*self.core as *const MutatorCore))
            .finish()
    }
}

/// The calling thread's mutator of `rt`, if it has one and it is RUNNING.
///
/// The reference is valid until the thread detaches, which the caller must not do while it
/// holds it.
pub(crate) fn calling_thread_core(rt: &Runtime) -> Option<&MutatorCore> {
    let key = rt as *const Runtime as usize;
    with_attached_list(|a| a.iter().find(|&&(k, _)| k == key).map(|&(_, c)| c))
        // SAFETY: the thread's own attached mutator: alive until it detaches (see above).
        .map(|c| unsafe { &*(c as *const MutatorCore) })
        .filter(|c| c.ts.load() == crate::safepoint::RUNNING)
}

/// Runs `f` with the calling thread's mutator of `rt` (if any) in a native region, so a
/// collection waiting for this thread can proceed while `f` blocks on the collector.
pub(crate) fn while_native<R>(rt: &Runtime, f: impl FnOnce() -> R) -> R {
    match calling_thread_core(rt) {
        Some(c) => {
            rt.safepoint.enter_native(c);
            let r = f();
            rt.safepoint.leave_native(c);
            r
        }
        None => f(),
    }
}

impl Mutator {
    pub(crate) fn attach(rt: Arc<Runtime>) -> Result<Mutator> {
        rt.failure.check()?;
        if rt.requests.is_shutdown() {
            return Err(Error::Shutdown);
        }
        let key = Arc::as_ptr(&rt) as usize;
        if with_attached_list(|a| a.iter().any(|&(k, _)| k == key)) {
            return Err(Error::State(
                "this thread is already attached to this heap (one mutator per thread)".into(),
            ));
        }
        let core = crate::sync::Arc::new(MutatorCore::new(rt.config.shadow_stack_slots)?);
        // A thread attaching while concurrent marking runs needs its barriers on (and
        // allocates black) like everyone else.
        rt.safepoint.attach_with(core.clone(), |c| {
            c.barriers
                .store(rt.barrier_state.load(Ordering::Relaxed), Ordering::Relaxed)
        });
        let core_addr = &*core as *const MutatorCore as usize;
        with_attached_list(|a| a.push((key, core_addr)));
        if rt.config.torture > 0 {
            // Every poll takes the slow path, which counts it.
            core.ts.request_handshake();
        }
        Ok(Mutator {
            core,
            rt,
            assist_debt: 0.0,
            defer_calls: false,
            torture_ticks: 0,
            _not_send: PhantomData,
        })
    }

    /// The shared core (for the C ABI, which hands out its address).
    pub fn core(&self) -> &MutatorCore {
        &self.core
    }

    #[inline(always)]
    fn fast(&mut self) -> &mut FastFields {
        // SAFETY: `&mut self` on the owning thread while RUNNING: we own the fields.
        unsafe { self.core.fast() }
    }

    /// Runs a full collection and returns when it is done.
    pub fn collect(&mut self) -> Result<()> {
        self.collect_for(GcCause::Explicit)
    }

    fn collect_for(&mut self, cause: GcCause) -> Result<()> {
        self.wait_for_cycle(cause, true)
    }

    /// Requests a cycle and waits for it: with `fresh`, one that starts after the request
    /// when the cause is explicit; else the one in progress, if any.
    fn wait_for_cycle(&mut self, cause: GcCause, fresh: bool) -> Result<()> {
        self.rt.failure.check()?;
        // A cycle driven step by step runs on to serve this wait.
        let held = self.rt.stepper.hold_off();
        let t0 = std::time::Instant::now();
        let target = if fresh {
            self.rt.requests.request(cause)
        } else {
            self.rt.requests.request_current(cause)
        };
        self.rt.safepoint.enter_native(&self.core);
        let done = self.rt.requests.wait(target);
        self.rt.safepoint.leave_native(&self.core);
        drop(held);
        if cause == GcCause::AllocationFailure {
            self.rt.stats.add_stall(t0.elapsed());
        }
        if done {
            Ok(())
        } else {
            self.rt.failure.check()?;
            Err(Error::Shutdown)
        }
    }

    /// The safepoint poll: runs a requested handshake (flushing the SATB buffer) and parks
    /// here while the collector needs the world stopped. Fails with [`Error::Internal`]
    /// when the collector has failed (the stop that parked this thread then ends).
    #[inline(always)]
    pub fn safepoint(&mut self) -> Result<()> {
        if self.core.ts.poll_requested() {
            return self.safepoint_slow();
        }
        Ok(())
    }

    #[cold]
    fn safepoint_slow(&mut self) -> Result<()> {
        let (core, rt) = (&*self.core, &*self.rt);
        let flush = || {
            // SAFETY: RUNNING on the owning thread.
            unsafe { core.flush_barriers(rt) }
        };
        if let Some(stood) = rt.safepoint.poll_slow(core, flush) {
            rt.stats.add_mutator_stop(stood);
        }
        rt.failure.check()?;
        if rt.config.torture > 0 {
            // The next poll comes back here to be counted.
            core.ts.request_handshake();
            self.torture_tick()?;
        }
        if !self.defer_calls {
            self.due_calls().run();
        }
        Ok(())
    }

    /// `TANDEM_TORTURE=N`: every N-th allocation slow path or poll starts a cycle (and, in
    /// stop-the-world mode, waits for it), so a missing root or barrier shows at once.
    fn torture_tick(&mut self) -> Result<()> {
        let n = self.rt.config.torture;
        if n == 0 {
            return Ok(());
        }
        self.torture_ticks += 1;
        if self.torture_ticks < n || !self.rt.requests.auto_enabled() {
            return Ok(());
        }
        self.torture_ticks = 0;
        match self.rt.config.mode {
            crate::config::Mode::Stw => self.wait_for_cycle(GcCause::Trigger, false),
            crate::config::Mode::Concurrent => {
                self.rt.requests.request(GcCause::Trigger);
                Ok(())
            }
        }
    }

    /// Enters a native region (a blocking call): the collector may run meanwhile, so the
    /// thread must not touch the heap until [`Mutator::leave_native`].
    #[inline]
    pub fn enter_native(&mut self) {
        self.rt.safepoint.enter_native(&self.core);
    }

    /// Leaves a native region, waiting first if a collection is in progress. Fails with
    /// [`Error::Internal`] (the thread has left the region all the same) when the
    /// collector failed meanwhile.
    #[inline]
    pub fn leave_native(&mut self) -> Result<()> {
        if let Some(stood) = self.rt.safepoint.leave_native(&self.core) {
            self.rt.stats.add_mutator_stop(stood);
            return self.rt.failure.check();
        }
        Ok(())
    }

    /// Runs `f` inside a native region.
    /// The region is left even when the collector failed meanwhile (the next poll or
    /// allocation reports it).
    pub fn native<R>(&mut self, f: impl FnOnce() -> R) -> R {
        self.enter_native();
        let r = f();
        let _ = self.leave_native();
        r
    }

    /// Pushes a root (null allowed) on the shadow stack.
    #[inline]
    pub fn push_root(&mut self, obj: Option<ObjRef>) -> Result<()> {
        self.fast()
            .ss
            .push(obj.map_or(std::ptr::null_mut(), ObjRef::as_ptr))
    }

    /// Pops the top root.
    #[inline]
    pub fn pop_root(&mut self) -> Result<Option<ObjRef>> {
        self.fast().ss.pop().map(ObjRef::from_ptr)
    }

    /// Drops the roots above `depth` (a non-local exit back to a frame that saved the
    /// depth); an error, nothing dropped, when `depth` is above the current depth.
    pub fn pop_roots_to(&mut self, depth: usize) -> Result<()> {
        self.fast().ss.truncate(depth)
    }

    /// The root `depth` slots below the top (0 is the top).
    #[inline]
    pub fn peek_root(&mut self, depth: usize) -> Option<Option<ObjRef>> {
        let slot = self.fast().ss.slot(depth)?;
        // SAFETY: a slot in use of our own shadow stack.
        Some(ObjRef::from_ptr(unsafe { slot.read() }))
    }

    /// Overwrites the root `depth` slots below the top; false past the bottom.
    #[inline]
    pub fn set_root(&mut self, depth: usize, obj: Option<ObjRef>) -> bool {
        match self.fast().ss.slot(depth) {
            Some(slot) => {
                // SAFETY: a slot in use of our own shadow stack.
                unsafe { slot.write(obj.map_or(std::ptr::null_mut(), ObjRef::as_ptr)) };
                true
            }
            None => false,
        }
    }

    /// Number of roots on the shadow stack.
    pub fn root_depth(&mut self) -> usize {
        self.fast().ss.depth()
    }

    /// Detaches from the heap (the same as dropping).
    pub fn detach(self) {}
}

impl Drop for Mutator {
    fn drop(&mut self) {
        // We are RUNNING (not in a native region): no collection is past its stop, so the
        // TLAB may be retired here. A pending stop stops waiting for us once we detach.
        if self.core.ts.load() == crate::safepoint::IN_NATIVE {
            self.rt.safepoint.leave_native(&self.core);
        }
        // SAFETY: RUNNING on the owning thread.
        unsafe {
            self.core.retire_tlab(&self.rt);
            self.core.retire_copies(&self.rt);
            self.core.flush_barriers(&self.rt);
            self.rt.refs.adopt(self.core.registered());
        }
        self.rt.safepoint.detach(&self.core);
        let key = Arc::as_ptr(&self.rt) as usize;
        with_attached_list(|a| a.retain(|&(k, _)| k != key));
    }
}
