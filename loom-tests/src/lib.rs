//! Loom models live in `tests/`; run them with `RUSTFLAGS="--cfg loom" cargo test -p loom-tests --release`.

/// Runs `f` under `loom::model` and prints how many interleavings were explored and how
/// long that took (shown with `--nocapture`), so each model's cost is measurable.
#[cfg(loom)]
pub fn model<F: Fn() + Sync + Send + 'static>(name: &str, f: F) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let t0 = std::time::Instant::now();
    loom::model(move || {
        counted.fetch_add(1, Ordering::Relaxed);
        f();
    });
    eprintln!(
        "{name}: {} interleavings in {:.2?}",
        runs.load(Ordering::Relaxed),
        t0.elapsed()
    );
}
