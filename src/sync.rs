//! The one switch between the real synchronisation primitives and loom's model-checked ones.
//!
//! Every atomic, lock, condition variable, thread spawn, cell and work-stealing deque that a
//! collector protocol uses (safepoints, worker parking and termination, GC requests) comes
//! from here, so `loom-tests/` (built with `RUSTFLAGS="--cfg loom"`) explores the very code we
//! ship. No other file in `src/` imports `std::sync` or `parking_lot` (unit tests aside, and
//! `src/heap/` until it is moved over): what must stay std's in model builds too comes from
//! the two sub-modules below, [`raw`] and [`unmodelled`], which say once why.
//!
//! The lock API has parking_lot's shape (`lock()` returns the guard, no poisoning) with a
//! by-value `Condvar::wait`, which both backends can provide.

#[cfg(not(loom))]
mod imp {
    pub use std::sync::atomic::{
        fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
    };
    pub use std::sync::Arc;
    pub use std::thread;

    /// Spin-loop hint.
    pub use std::hint::spin_loop;

    /// A mutual-exclusion lock without poisoning.
    ///
    /// std's futex lock, not parking_lot's: parking_lot spins with `sched_yield` before it
    /// sleeps, and on a machine with more runnable threads than cores a yielding collector
    /// thread can lose its core until the next scheduler tick (milliseconds, measured as
    /// time-to-safepoint outliers); std's lock spins briefly and then sleeps on a futex.
    #[derive(Debug, Default)]
    pub struct Mutex<T>(std::sync::Mutex<T>);
    /// The guard of a held [`Mutex`].
    pub type MutexGuard<'a, T> = std::sync::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        /// A new unlocked mutex.
        pub const fn new(v: T) -> Self {
            Mutex(std::sync::Mutex::new(v))
        }
        /// Blocks until the lock is held (a panic while it was held does not poison it:
        /// protocol state stays consistent under each critical section's own invariants).
        #[inline]
        pub fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(|e| e.into_inner())
        }
    }

    /// A condition variable used with [`Mutex`].
    #[derive(Debug, Default)]
    pub struct Condvar(std::sync::Condvar);

    impl Condvar {
        /// A new condition variable.
        pub const fn new() -> Self {
            Condvar(std::sync::Condvar::new())
        }
        /// Atomically releases the guard's lock and sleeps until notified, then relocks.
        pub fn wait<'a, T>(&self, g: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
            self.0.wait(g).unwrap_or_else(|e| e.into_inner())
        }
        /// [`Condvar::wait`], also returning once `dur` has passed.
        pub fn wait_timeout<'a, T>(
            &self,
            g: MutexGuard<'a, T>,
            dur: std::time::Duration,
        ) -> MutexGuard<'a, T> {
            match self.0.wait_timeout(g, dur) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            }
        }
        /// Wakes one waiter.
        pub fn notify_one(&self) {
            self.0.notify_one();
        }
        /// Wakes every waiter.
        pub fn notify_all(&self) {
            self.0.notify_all();
        }
    }

    /// A cell whose accesses are checked by loom in model runs.
    #[derive(Debug, Default)]
    pub struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        /// A new cell.
        pub const fn new(v: T) -> Self {
            UnsafeCell(std::cell::UnsafeCell::new(v))
        }
        /// Calls `f` with a shared raw pointer to the contents.
        #[inline(always)]
        pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }
        /// Calls `f` with a mutable raw pointer to the contents.
        #[inline(always)]
        pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }

    /// Work-stealing deques: crossbeam-deque in real builds.
    pub mod deque {
        pub use crossbeam_deque::{Injector, Steal, Stealer, Worker};
    }
}

#[cfg(loom)]
mod imp {
    pub use loom::hint::spin_loop;
    pub use loom::sync::atomic::{
        fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
    };
    pub use loom::sync::Arc;
    pub use loom::thread;

    /// A mutual-exclusion lock without poisoning (loom model).
    #[derive(Debug)]
    pub struct Mutex<T>(loom::sync::Mutex<T>);
    /// The guard of a held [`Mutex`].
    pub type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        /// A new unlocked mutex.
        pub fn new(v: T) -> Self {
            Mutex(loom::sync::Mutex::new(v))
        }
        /// Blocks until the lock is held.
        pub fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(|e| e.into_inner())
        }
    }

    impl<T: Default> Default for Mutex<T> {
        fn default() -> Self {
            Mutex::new(T::default())
        }
    }

    /// A condition variable used with [`Mutex`] (loom model).
    #[derive(Debug, Default)]
    pub struct Condvar(loom::sync::Condvar);

    impl Condvar {
        /// A new condition variable.
        pub fn new() -> Self {
            Condvar(loom::sync::Condvar::new())
        }
        /// Atomically releases the guard's lock and sleeps until notified, then relocks.
        pub fn wait<'a, T>(&self, g: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
            self.0.wait(g).unwrap_or_else(|e| e.into_inner())
        }
        /// [`Condvar::wait`]: loom models no time, so a timed wait is a plain one.
        pub fn wait_timeout<'a, T>(
            &self,
            g: MutexGuard<'a, T>,
            _dur: std::time::Duration,
        ) -> MutexGuard<'a, T> {
            self.wait(g)
        }
        /// Wakes one waiter.
        pub fn notify_one(&self) {
            self.0.notify_one();
        }
        /// Wakes every waiter.
        pub fn notify_all(&self) {
            self.0.notify_all();
        }
    }

    pub use loom::cell::UnsafeCell;

    /// Work-stealing deques: loom-visible stand-ins with crossbeam-deque's API, because
    /// crossbeam-deque's own atomics are invisible to loom (and its waits would hang a model).
    pub mod deque {
        pub use crossbeam_deque::Steal;
        use loom::sync::atomic::{AtomicUsize, Ordering};
        use loom::sync::{Arc, Mutex};
        use std::collections::VecDeque;

        /// A queue and a count of the operations in progress on it. A steal that finds
        /// one in progress answers `Retry`, as crossbeam's steal may when it races with a
        /// push, a pop or another steal; loom can preempt between the count and the lock,
        /// so the models explore every caller's retry path.
        #[derive(Debug)]
        pub struct Queue<T> {
            q: Mutex<VecDeque<T>>,
            busy: AtomicUsize,
        }

        impl<T> Queue<T> {
            fn new() -> Self {
                Queue {
                    q: Mutex::new(VecDeque::new()),
                    busy: AtomicUsize::new(0),
                }
            }
            fn with<R>(&self, f: impl FnOnce(&mut VecDeque<T>) -> R) -> R {
                self.busy.fetch_add(1, Ordering::SeqCst);
                let r = f(&mut self.q.lock().unwrap());
                self.busy.fetch_sub(1, Ordering::SeqCst);
                r
            }
            fn steal(&self) -> Steal<T> {
                if self.busy.load(Ordering::SeqCst) > 0 {
                    return Steal::Retry;
                }
                self.with(|q| q.pop_front())
                    .map_or(Steal::Empty, Steal::Success)
            }
        }

        /// The owner's end of a deque (LIFO pop).
        #[derive(Debug)]
        pub struct Worker<T>(Arc<Queue<T>>);
        /// The thieves' end of a deque.
        #[derive(Debug)]
        pub struct Stealer<T>(Arc<Queue<T>>);
        /// A shared FIFO queue every worker may take from.
        #[derive(Debug)]
        pub struct Injector<T>(Queue<T>);

        impl<T> Clone for Stealer<T> {
            fn clone(&self) -> Self {
                Stealer(self.0.clone())
            }
        }

        impl<T> Worker<T> {
            /// A new LIFO deque.
            pub fn new_lifo() -> Self {
                Worker(Arc::new(Queue::new()))
            }
            /// A stealer for this deque.
            pub fn stealer(&self) -> Stealer<T> {
                Stealer(self.0.clone())
            }
            /// Pushes onto the owner's end.
            pub fn push(&self, t: T) {
                self.0.with(|q| q.push_back(t));
            }
            /// Pops from the owner's end.
            pub fn pop(&self) -> Option<T> {
                self.0.with(|q| q.pop_back())
            }
            /// Whether the deque is empty.
            pub fn is_empty(&self) -> bool {
                self.0.with(|q| q.is_empty())
            }
        }

        impl<T> Stealer<T> {
            /// Steals from the thieves' end (or `Retry`, see [`Queue`]).
            pub fn steal(&self) -> Steal<T> {
                self.0.steal()
            }
            /// Whether the deque is empty.
            pub fn is_empty(&self) -> bool {
                self.0.with(|q| q.is_empty())
            }
        }

        impl<T> Default for Injector<T> {
            fn default() -> Self {
                Self::new()
            }
        }

        impl<T> Injector<T> {
            /// A new empty injector.
            pub fn new() -> Self {
                Injector(Queue::new())
            }
            /// Pushes a task.
            pub fn push(&self, t: T) {
                self.0.with(|q| q.push_back(t));
            }
            /// Steals one task (or `Retry`, see [`Queue`]).
            pub fn steal(&self) -> Steal<T> {
                self.0.steal()
            }
            /// Whether the injector is empty.
            pub fn is_empty(&self) -> bool {
                self.0.with(|q| q.is_empty())
            }
        }
    }
}

pub use imp::*;

/// How long a [`Broadcast`] sleeper watches the epoch before it sleeps.
#[cfg(all(not(loom), target_os = "linux"))]
const SPIN_WAIT: std::time::Duration = std::time::Duration::from_micros(50);
/// Looks at the epoch between yields while watching it.
#[cfg(all(not(loom), target_os = "linux"))]
const SPIN_LOOKS: usize = 64;
/// Threads watching a [`Broadcast`] epoch now, in the whole process.
#[cfg(all(not(loom), target_os = "linux"))]
static WATCHING: AtomicU32 = AtomicU32::new(0);
/// The cores this process may run on (0: not read yet). Not a `OnceLock`: a fork while
/// another thread initialised one left the child's lock initialising for ever, and the
/// child's first stopped thread hung on it.
#[cfg(all(not(loom), target_os = "linux"))]
static CORES: AtomicU32 = AtomicU32::new(0);

/// In a forked child: forgets the parent's threads that were watching an epoch when it
/// forked (they do not exist here, and would hold their places among the watchers).
pub fn after_fork_in_child() {
    #[cfg(all(not(loom), target_os = "linux"))]
    WATCHING.store(0, Ordering::Relaxed);
}

/// An epoch that threads sleep on until it advances; advancing wakes every sleeper with one
/// system call.
///
/// On Linux (outside models) the epoch is a futex word: a sleeper waits only while the word
/// still holds the epoch it read (the kernel compares and sleeps atomically), and `advance`
/// increments it, then wakes all sleepers in one `FUTEX_WAKE`. Waking them one by one
/// instead (an unpark each) lets the first thread woken preempt the waker on its core before
/// the others are woken: measured on 2 cores, a resumed mutator waited a whole 3.6 ms
/// scheduler slice for its wake-up while the other core was idle. A sleeper first watches
/// the word for a few tens of microseconds (`spin_while`). Elsewhere, and in loom models,
/// a lock and a condition variable give the same contract.
#[derive(Debug, Default)]
pub struct Broadcast {
    epoch: AtomicU32,
    #[cfg(any(loom, not(target_os = "linux")))]
    lock: Mutex<()>,
    #[cfg(any(loom, not(target_os = "linux")))]
    cv: Condvar,
}

impl Broadcast {
    /// The current epoch, to pass to [`Broadcast::wait`].
    pub fn epoch(&self) -> u32 {
        // Acquire: pairs with `advance`'s release (a woken thread sees what the waker did).
        self.epoch.load(Ordering::Acquire)
    }

    /// Sleeps while the epoch is still `seen`; may also return spuriously (callers re-check
    /// their own condition and wait again).
    pub fn wait(&self, seen: u32) {
        #[cfg(all(not(loom), target_os = "linux"))]
        if self.epoch() == seen && !self.spin_while(seen) {
            // SAFETY: FUTEX_WAIT on a live, aligned u32 owned by `self`, no timeout; the
            // kernel only reads the word.
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    self.epoch.as_ptr(),
                    libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                    seen,
                    std::ptr::null::<libc::timespec>(),
                );
            }
        }
        #[cfg(any(loom, not(target_os = "linux")))]
        {
            let mut g = self.lock.lock();
            while self.epoch() == seen {
                g = self.cv.wait(g);
            }
        }
    }

    /// Watches the epoch for up to [`SPIN_WAIT`] before a sleeper sleeps, while fewer
    /// threads than cores less one watch (one core stays for the thread that will advance
    /// it); returns whether it moved. Most stops end within tens of microseconds, and a
    /// thread that slept through one woke late: on a virtual machine a futex wake-up to a
    /// virtual CPU that went idle arrived up to 2-5 ms after the resume. binary-trees with
    /// 2 mutators on 2 cores, 5 s runs, 5 interleaved each: mutator-observed stops of 1 ms
    /// or more 21-33 -> 0-6 a run, p99 2 ms -> 128-256 us in four runs of five. With every
    /// stopped thread watching (both cores), 8-15 a run: the collector, woken to end the
    /// pause, waited for a core.
    #[cfg(all(not(loom), target_os = "linux"))]
    fn spin_while(&self, seen: u32) -> bool {
        // Relaxed: a racing first read computes the same figure.
        let cores = match CORES.load(Ordering::Relaxed) {
            0 => {
                let n = std::thread::available_parallelism().map_or(1, |n| n.get().min(1 << 16));
                CORES.store(n as u32, Ordering::Relaxed);
                n as u32
            }
            n => n,
        };
        // Relaxed: a count that only limits how many threads watch at once.
        if WATCHING.fetch_add(1, Ordering::Relaxed) + 1 >= cores {
            WATCHING.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        let start = std::time::Instant::now();
        let moved = loop {
            if (0..SPIN_LOOKS).any(|_| {
                std::hint::spin_loop();
                self.epoch() != seen
            }) {
                break true;
            }
            if start.elapsed() >= SPIN_WAIT {
                break false;
            }
            // The thread that will advance the epoch may be queued on this core.
            std::thread::yield_now();
        };
        WATCHING.fetch_sub(1, Ordering::Relaxed);
        moved
    }

    /// Moves to the next epoch and wakes every sleeper.
    pub fn advance(&self) {
        #[cfg(all(not(loom), target_os = "linux"))]
        {
            self.epoch.fetch_add(1, Ordering::Release);
            // SAFETY: FUTEX_WAKE on a live, aligned u32 owned by `self`.
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    self.epoch.as_ptr(),
                    libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
                    i32::MAX,
                );
            }
        }
        #[cfg(any(loom, not(target_os = "linux")))]
        {
            let g = self.lock.lock();
            self.epoch.fetch_add(1, Ordering::Release);
            drop(g);
            self.cv.notify_all();
        }
    }
}

/// Atomics laid over raw memory: std's in every build.
///
/// Object header words and reference slots live in object memory, and line marks, mark
/// bits and block tables in side metadata mapped with mmap; Tandem reaches them by casting
/// an address to `&AtomicU64`, `&AtomicPtr<u8>` or `&AtomicU8`. Loom's atomics cannot be
/// overlaid on such memory: they are larger than the word they model and keep its state
/// in the model's execution, out of line. A protocol over these words is model-checked by
/// running the same code over loom's atomics instead (the object barrier's `log_once` is
/// generic over [`crate::barriers::log::HeaderWord`] for this), not by these types.
pub mod raw {
    pub use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicU8};
}

/// std's types in every build, where a model would gain nothing from loom's.
///
/// * [`Arc`](unmodelled::Arc) for shared ownership of the runtime, of worker-pool jobs and
///   of the VM's callbacks. Loom's `Arc` cannot become an `Arc<dyn Trait>` by coercion
///   (that needs the unstable `CoerceUnsized`), and these counts order nothing a protocol
///   relies on: each value reaches another thread through a lock, a spawn or a queue that
///   loom does see. Protocol state that is shared by counting (a mutator's core, the
///   worker pool's shared state) uses the loom-aware [`Arc`](crate::sync::Arc).
/// * [`OnceLock`](unmodelled::OnceLock) for the failure message (loom has none): written
///   once, before the release store of the failed flag, which is loom's.
/// * [`AtomicU64`](unmodelled::AtomicU64) for statistics counters (bytes allocated,
///   stalls, stop histograms): relaxed figures for reports, which no thread waits on or
///   branches on. As loom atomics they would add a scheduling point and a store history to
///   every allocation slow path and stop in a model, for no property a model can check.
pub mod unmodelled {
    pub use std::sync::atomic::AtomicU64;
    pub use std::sync::{Arc, OnceLock};
}
