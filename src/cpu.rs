//! CPU clocks of threads: the time the collector's own threads have spent on a CPU, which
//! the statistics report (`Stats::collector_cpu_ns`). Where a clock cannot be read the
//! figure is 0.

/// CLOCK_MONOTONIC now, nanoseconds: what `perf record -k mono` stamps samples with.
/// Async-signal-safe (one `clock_gettime`).
pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// CPU time the calling thread has used, nanoseconds.
pub fn this_thread_ns() -> u64 {
    clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU time the thread of `handle` has used, nanoseconds (0 once it has exited).
#[cfg(all(not(loom), target_os = "linux"))]
pub fn thread_ns<T>(handle: &std::thread::JoinHandle<T>) -> u64 {
    use std::os::unix::thread::JoinHandleExt;
    let mut id: libc::clockid_t = 0;
    // SAFETY: the handle has not been joined, so its pthread_t is valid (a thread that
    // exited but is not yet joined still has its id); `id` is a valid out pointer.
    if unsafe { libc::pthread_getcpuclockid(handle.as_pthread_t(), &mut id) } != 0 {
        return 0;
    }
    clock_ns(id)
}

/// CPU time the thread of `handle` has used: 0 where another thread's clock cannot be
/// read (`pthread_getcpuclockid` is Linux's).
#[cfg(all(not(loom), not(target_os = "linux")))]
pub fn thread_ns<T>(_handle: &std::thread::JoinHandle<T>) -> u64 {
    0
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out pointer; an invalid clock only makes the call fail.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    /// Spins until the calling thread has used `ns` more CPU time.
    fn burn(ns: u64) {
        let t0 = this_thread_ns();
        while this_thread_ns() - t0 < ns {
            std::hint::black_box(0);
        }
    }

    #[test]
    fn a_threads_clock_counts_its_own_cpu_time_read_from_itself_or_another_thread() {
        const MS: u64 = 1_000_000;
        let (burned, burned_rx) = channel();
        let (release, release_rx) = channel::<()>();
        let worker = std::thread::spawn(move || {
            burn(20 * MS);
            burned.send(()).unwrap();
            release_rx.recv().unwrap();
        });
        let t0 = this_thread_ns();
        burn(10 * MS);
        burned_rx.recv().unwrap();
        // The worker is still alive (it waits for `release`), so its clock can be read.
        let w = thread_ns(&worker);
        let t = this_thread_ns() - t0;
        release.send(()).unwrap();
        worker.join().unwrap();
        assert!(w >= 20 * MS, "the worker burned 20 ms: {w}");
        assert!(t >= 10 * MS, "this thread burned 10 ms: {t}");
        // A process-wide clock would read at least 30 ms here (both threads' burns).
        assert!(
            t < 25 * MS,
            "this thread's clock counts only its own time: {t}"
        );
    }
}
