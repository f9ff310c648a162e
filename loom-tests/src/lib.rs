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
