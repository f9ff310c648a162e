//! The runtime shared by the VM's handles, the mutators and the collector threads.

use crate::barriers::satb::SatbQueue;
use crate::collector::assist::Assists;
use crate::collector::request::GcRequests;
use crate::config::Config;
use crate::error::Result;
use crate::fault::Failure;
use crate::heap::uncommit::Uncommitter;
use crate::heap::Space;
use crate::mutator::MutatorCore;
use crate::object::{ObjRef, TypeRegistry};
use crate::roots::GlobalRoots;
use crate::safepoint::Safepoint;
use crate::stats::{Stats, StatsRecorder};
use crate::sync::unmodelled::Arc;
use crate::sync::{AtomicU8, AtomicUsize, Mutex, Ordering};

/// Called with the size of an allocation that failed after a full GC.
pub type OomHandler = Arc<dyn Fn(usize) + Send + Sync>;
/// Checks one reachable object during verification; an error message names what is wrong.
pub type VerifyHook = Arc<dyn Fn(ObjRef) -> std::result::Result<(), String> + Send + Sync>;

/// Everything one heap is made of.
pub struct Runtime {
    /// The options it runs with.
    pub config: Config,
    /// The managed memory.
    pub space: Space,
    /// Registered types.
    pub types: TypeRegistry,
    /// Registered mutators and the stop-the-world protocol.
    pub safepoint: Safepoint<MutatorCore>,
    /// Global roots and the VM's root callback.
    pub roots: GlobalRoots,
    /// The GC request channel.
    pub requests: GcRequests,
    /// Statistics.
    pub stats: StatsRecorder,
    /// Full SATB buffers waiting for the markers.
    pub satb: SatbQueue,
    /// Mutators' share of concurrent marking.
    pub assists: Assists,
    /// The collection set of the running cycle (objects that move) and its copy buffers.
    pub evac: crate::collector::evacuate::Evacuation,
    /// Objects logged by the object barrier this cycle, whose flags are cleared after
    /// marking (handed over by mutators at the final-mark pause or on detach).
    pub logged: Mutex<Vec<usize>>,
    /// Old objects recorded by the REMEMBER barrier (generational mode), handed over by
    /// mutators at init mark or on detach; see `barriers::remember`.
    pub remembered: Mutex<Vec<Vec<usize>>>,
    /// Generational mode: the next cycle must be a full one (set by the pacer, by a fork,
    /// and when a remembered set was lost); see [`Runtime::take_full_request`].
    full_requested: std::sync::atomic::AtomicBool,
    /// Generational mode: whether the cycle started last is a full one (only a full
    /// cycle's live figure may decide that an allocation is out of memory).
    last_cycle_full: std::sync::atomic::AtomicBool,
    /// The `barriers` every mutator has now (set in pauses; copied by threads that attach).
    pub barrier_state: AtomicU8,
    /// Set once a collector thread failed; every later blocking operation reports it.
    pub failure: Failure,
    /// The background thread that returns long-idle memory to the OS.
    pub uncommitter: Uncommitter,
    /// Weak references, finalizers, destructors and memory pressure.
    pub refs: crate::refs::References,
    /// Holds cycles and chunk releases off while a fork is prepared.
    pub fork_gate: crate::fork::ForkGate,
    /// Cycles driven one phase at a time.
    pub stepper: crate::collector::step::Stepper,
    trigger: AtomicUsize,
    /// Heap in use past which an allocation waits briefly for the cycle running or
    /// requested (see [`Runtime::limit`]).
    limit: AtomicUsize,
    live_after_gc: AtomicUsize,
    oom_handler: Mutex<Option<OomHandler>>,
    verify_hook: Mutex<Option<VerifyHook>>,
}

/// See [`Runtime::resting_barriers`].
fn resting_barriers(config: &Config) -> u8 {
    let audit = if config.verify {
        crate::barriers::STORE
    } else {
        0
    };
    let remember = if config.generational {
        crate::barriers::REMEMBER
    } else {
        0
    };
    audit | remember
}

impl Runtime {
    /// A runtime for `config` (already validated), with no threads started.
    pub fn new(config: Config) -> Result<Runtime> {
        let space = Space::new(&config)?;
        let resting = resting_barriers(&config);
        Ok(Runtime {
            trigger: AtomicUsize::new(config.heap_min.0.max(crate::heap::CHUNK_SIZE)),
            limit: AtomicUsize::new(usize::MAX),
            config,
            space,
            types: TypeRegistry::default(),
            safepoint: Safepoint::default(),
            roots: GlobalRoots::default(),
            requests: GcRequests::default(),
            stats: StatsRecorder::default(),
            satb: SatbQueue::default(),
            assists: Assists::default(),
            evac: Default::default(),
            logged: Mutex::new(Vec::new()),
            remembered: Mutex::new(Vec::new()),
            full_requested: std::sync::atomic::AtomicBool::new(false),
            last_cycle_full: std::sync::atomic::AtomicBool::new(true),
            barrier_state: AtomicU8::new(resting),
            failure: Failure::default(),
            uncommitter: Uncommitter::default(),
            refs: Default::default(),
            fork_gate: Default::default(),
            stepper: Default::default(),
            live_after_gc: AtomicUsize::new(0),
            oom_handler: Mutex::new(None),
            verify_hook: Mutex::new(None),
        })
    }

    /// The `barriers` every mutator has between concurrent phases: STORE with
    /// `TANDEM_VERIFY` (every reference store is audited), REMEMBER in generational mode.
    pub fn resting_barriers(&self) -> u8 {
        resting_barriers(&self.config)
    }

    /// The `barriers` while concurrent marking runs: the SATB barriers, and in
    /// generational mode STORE too, so that a store of a black object into an object not
    /// yet scanned (which may end the cycle old) is recorded (see `barriers::remember`).
    pub fn marking_barriers(&self) -> u8 {
        let gen = if self.config.generational {
            crate::barriers::STORE
        } else {
            0
        };
        self.resting_barriers() | crate::barriers::MARKING | gen
    }

    /// Asks that the next cycle be a full one (generational mode).
    pub fn request_full(&self) {
        self.full_requested.store(true, Ordering::Relaxed);
    }

    /// Whether the next cycle must be full, clearing the request.
    pub fn take_full_request(&self) -> bool {
        self.full_requested.swap(false, Ordering::Relaxed)
    }

    /// Records the kind of the cycle starting now (in its first pause).
    pub fn set_last_cycle_full(&self, full: bool) {
        self.last_cycle_full.store(full, Ordering::Relaxed);
    }

    /// Whether the cycle started last is full (always, outside generational mode).
    pub fn last_cycle_full(&self) -> bool {
        self.last_cycle_full.load(Ordering::Relaxed)
    }

    /// Takes every remembered object: the buffers handed over and each stopped mutator's
    /// own (call in a pause; buffers move whole, so the pause copies no entries).
    pub fn take_remembered(&self, world: &[crate::sync::Arc<MutatorCore>]) -> Vec<Vec<usize>> {
        let mut all = std::mem::take(&mut *self.remembered.lock());
        for m in world {
            // SAFETY: the world is stopped: the collector owns every mutator's state.
            let b = unsafe { m.barrier() };
            if !b.remembered.is_empty() {
                all.push(std::mem::take(&mut b.remembered));
            }
        }
        all
    }

    /// Bytes in use at which the next collection is requested.
    #[inline]
    pub fn trigger(&self) -> usize {
        self.trigger.load(Ordering::Relaxed)
    }

    /// Bytes live after the last completed collection.
    pub fn live_after_gc(&self) -> usize {
        self.live_after_gc.load(Ordering::Relaxed)
    }

    /// Records the bytes live after a collection.
    pub fn set_live_after_gc(&self, live: usize) {
        self.live_after_gc.store(live, Ordering::Relaxed);
    }

    /// Sets the bytes in use at which the next collection is requested.
    pub fn set_trigger(&self, t: usize) {
        self.trigger.store(t, Ordering::Relaxed);
    }

    /// The heap in use past which an allocation waits for the collector (usize::MAX: none).
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// Sets [`Runtime::limit`].
    pub fn set_limit(&self, l: usize) {
        self.limit.store(l, Ordering::Relaxed);
    }

    /// Installs the out-of-memory handler.
    pub fn set_oom_handler(&self, h: Option<OomHandler>) {
        *self.oom_handler.lock() = h;
    }

    /// Calls the out-of-memory handler, if any.
    pub fn call_oom_handler(&self, size: usize) {
        let h = self.oom_handler.lock().clone();
        if let Some(h) = h {
            h(size);
        }
    }

    /// Installs the verification hook.
    pub fn set_verify_hook(&self, h: Option<VerifyHook>) {
        *self.verify_hook.lock() = h;
    }

    /// The verification hook, if any.
    pub fn verify_hook(&self) -> Option<VerifyHook> {
        self.verify_hook.lock().clone()
    }

    /// Turns the runtime into the failed state (see [`crate::fault`]): records `message`
    /// (the first one stands), turns the barriers off (no cycle will consume what they
    /// log), ends a stop in force and releases every thread waiting for the collector.
    /// Running mutators learn of it at their next poll.
    ///
    /// The log line comes last and under `catch_unwind`: the failure may be a logger that
    /// panics (a subscriber writing to a closed stderr), and nothing may stop the wake-ups.
    pub fn fail(&self, message: String) {
        let first = self.failure.set(message.clone());
        self.barrier_state.store(0, Ordering::Relaxed);
        self.safepoint.for_each(|m| {
            // Relaxed: no collector reads these again; the barriers only stop logging.
            m.barriers.store(0, Ordering::Relaxed);
            m.ts.request_handshake();
        });
        self.safepoint.end_stop();
        self.stepper.release();
        self.requests.shutdown();
        if first {
            let _ = std::panic::catch_unwind(
                || tracing::error!(%message, "the collector failed; heap operations now return errors"),
            );
        }
    }

    /// Starts the uncommit thread (none when the delay is zero).
    pub fn start_uncommitter(self: &Arc<Self>) -> Result<()> {
        let (delay, floor) = (self.config.uncommit_delay, self.config.heap_min.0);
        self.uncommitter
            .start(self.clone(), |rt| (&rt.space, &rt.fork_gate), delay, floor)
            .map_err(|e| crate::Error::Os(format!("cannot start the uncommit thread: {e}")))
    }

    /// A statistics snapshot with current heap figures.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats.snapshot();
        s.heap_in_use = self.space.in_use();
        s.heap_committed = self.space.committed();
        // The peak follows a commit a moment after it: a snapshot taken in between would
        // show less than is committed now (seen once in 50,000 reads under churn).
        s.heap_peak = self.space.peak().max(s.heap_committed);
        let c = self.refs.counts();
        (s.weakrefs_cleared, s.finalized, s.destructed) =
            (c.weak_cleared, c.finalized, c.destructed);
        s.memory_pressure = self.refs.pressure();
        s
    }
}
