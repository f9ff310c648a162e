//! Loom models live in `tests/`; run them with `RUSTFLAGS="--cfg loom" cargo test -p loom-tests --release`.

/// `loom::model(f)`, which also prints where the model is, how many interleavings it
/// explored and how long that took (shown with `--nocapture`), so each model's cost is
/// measured on every run.
#[cfg(loom)]
#[track_caller]
pub fn model<F: Fn() + Sync + Send + 'static>(f: F) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let at = std::panic::Location::caller();
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let t0 = std::time::Instant::now();
    loom::model(move || {
        counted.fetch_add(1, Ordering::Relaxed);
        f();
    });
    eprintln!(
        "{}:{}: {} interleavings in {:.2?}",
        at.file(),
        at.line(),
        runs.load(Ordering::Relaxed),
        t0.elapsed()
    );
}

/// Implements `tandem::safepoint::Participant` for a model's mutator type `$t`, whose
/// poll word is its field `ts`.
#[macro_export]
macro_rules! participant {
    ($t:ty) => {
        impl tandem::safepoint::Participant for $t {
            fn thread_state(&self) -> &tandem::safepoint::ThreadState {
                &self.ts
            }
        }
    };
}

/// What the SATB models share: a mutator with its barrier bits and SATB buffer, the set a
/// cycle marks, and one concurrent cycle over the real safepoint and SATB-queue code.
#[cfg(loom)]
pub mod satb {
    use loom::sync::Mutex;
    use tandem::barriers::satb::{SatbBuffer, SatbQueue};
    use tandem::barriers::WRITE;
    use tandem::safepoint::{Safepoint, ThreadState};
    use tandem::sync::{AtomicU8, Ordering, UnsafeCell};

    /// A mutator as the SATB barrier sees it. Its buffer is a loom cell owned by the
    /// mutator while it runs and by the collector while it is stopped, so a hand-over the
    /// safepoint protocol failed to order would be reported.
    pub struct SatbMutator {
        /// Its poll word.
        pub ts: ThreadState,
        /// `MutatorCore::barriers`.
        pub barriers: AtomicU8,
        satb: UnsafeCell<SatbBuffer>,
    }

    // SAFETY: `satb` is used by the mutator while it runs and by the collector only while
    // the world is stopped; loom checks that the safepoint protocol orders the two.
    unsafe impl Sync for SatbMutator {}

    crate::participant!(SatbMutator);

    impl SatbMutator {
        /// A mutator with `barriers` on and an empty buffer.
        pub fn new(barriers: u8) -> SatbMutator {
            SatbMutator {
                ts: ThreadState::default(),
                barriers: AtomicU8::new(barriers),
                satb: UnsafeCell::new(SatbBuffer::default()),
            }
        }

        /// Whether the SATB barrier is on (Relaxed: it flips only while stopped).
        pub fn marking(&self) -> bool {
            self.barriers.load(Ordering::Relaxed) & WRITE != 0
        }

        /// Logs `addr` (on its own thread, running), publishing a full buffer to `queue`.
        pub fn shade(&self, queue: &SatbQueue, addr: usize) {
            // SAFETY: running on its own thread: the buffer is ours.
            if let Some(full) = self.satb.with_mut(|b| unsafe { (*b).push(addr) }) {
                queue.publish(full);
            }
        }

        /// Hands its partial buffer to `queue` and detaches, as `Mutator::detach` does.
        pub fn detach(&self, sp: &Safepoint<SatbMutator>, queue: &SatbQueue) {
            // SAFETY: still running: the buffer is ours.
            queue.publish(self.satb.with_mut(|b| unsafe { (*b).take() }));
            sp.detach(self);
        }
    }

    /// The objects a cycle marked.
    #[derive(Default)]
    pub struct Marked(Mutex<Vec<usize>>);

    impl Marked {
        /// Marks `entries`.
        pub fn mark(&self, entries: impl IntoIterator<Item = usize>) {
            self.0.lock().unwrap().extend(entries);
        }

        /// Whether `addr` was marked.
        pub fn contains(&self, addr: usize) -> bool {
            self.0.lock().unwrap().contains(&addr)
        }
    }

    /// One concurrent cycle: the init-mark pause marks `root` (a field of a live object
    /// the snapshot covers, when it is non-zero) and turns the SATB barrier on; `during`
    /// runs with the mutators, then the queue is drained; the final-mark pause takes every
    /// stopped mutator's buffer, turns the barriers off, drains the queue and runs `ending`
    /// before the world resumes.
    pub fn cycle(
        sp: &Safepoint<SatbMutator>,
        queue: &SatbQueue,
        marked: &Marked,
        root: impl FnOnce() -> usize,
        during: impl FnOnce(),
        ending: impl FnOnce(),
    ) {
        let stopped = sp.stop_the_world();
        marked.mark(Some(root()).filter(|&t| t != 0));
        for m in &stopped {
            m.barriers.store(WRITE, Ordering::Relaxed);
        }
        drop(stopped);
        sp.resume();
        during();
        while let Some(buf) = queue.take() {
            marked.mark(buf);
        }
        let stopped = sp.stop_the_world();
        for m in &stopped {
            // SAFETY: the world is stopped: the collector owns every mutator's buffer.
            marked.mark(m.satb.with_mut(|b| unsafe { (*b).take() }));
            m.barriers.store(0, Ordering::Relaxed);
        }
        for buf in queue.take_all() {
            marked.mark(buf);
        }
        ending();
        drop(stopped);
        sp.resume();
    }
}
