//! The object barrier's "log once per cycle" race.
//!
//! RPython's barrier granularity is the object: before the first store into an object
//! after marking starts, all its reference fields are logged, and later stores need no
//! barrier. Two threads may store into distinct fields of one object at once, so "logged"
//! must mean "every old value is already in a buffer", not "someone started logging":
//!
//! 1. A thread that finds neither LOGGING nor LOGGED tries to set LOGGING by CAS.
//! 2. The winner logs every reference field, then sets LOGGED (release).
//! 3. Everyone else (CAS losers, or threads that find LOGGING) waits until LOGGED is set
//!    (acquire) before storing. The fast path (`LOGGED` set) is one bit test.
//!
//! So no store into the object happens before all the pre-cycle values are logged. The
//! loom model `loom-tests/tests/object_barrier.rs` checks it.

use crate::sync::{spin_loop, thread, Ordering};

/// An atomic 64-bit header word: the real one in object memory (std) or, in loom models,
/// loom's (which then explores every interleaving of this protocol).
pub trait HeaderWord {
    /// Atomic load.
    fn load(&self, o: Ordering) -> u64;
    /// Atomic compare-and-exchange.
    fn compare_exchange(&self, cur: u64, new: u64, s: Ordering, f: Ordering) -> Result<u64, u64>;
    /// Atomic or.
    fn fetch_or(&self, v: u64, o: Ordering) -> u64;
    /// Atomic and.
    fn fetch_and(&self, v: u64, o: Ordering) -> u64;
    /// Atomic store.
    fn store(&self, v: u64, o: Ordering);
}

macro_rules! header_word {
    ($t:ty) => {
        impl HeaderWord for $t {
            fn load(&self, o: Ordering) -> u64 {
                <$t>::load(self, o)
            }
            fn compare_exchange(
                &self,
                c: u64,
                n: u64,
                s: Ordering,
                f: Ordering,
            ) -> Result<u64, u64> {
                <$t>::compare_exchange(self, c, n, s, f)
            }
            fn fetch_or(&self, v: u64, o: Ordering) -> u64 {
                <$t>::fetch_or(self, v, o)
            }
            fn fetch_and(&self, v: u64, o: Ordering) -> u64 {
                <$t>::fetch_and(self, v, o)
            }
            fn store(&self, v: u64, o: Ordering) {
                <$t>::store(self, v, o)
            }
        }
    };
}

header_word!(crate::sync::raw::AtomicU64);
#[cfg(loom)]
header_word!(crate::sync::AtomicU64);

/// Header flag: a thread is logging this object's fields.
pub const FLAG_LOGGING: u64 = 1 << 6;
/// Header flag: the object's fields were logged this cycle (same bit as
/// [`crate::object::FLAG_LOGGED`]).
pub const FLAG_LOGGED: u64 = crate::object::FLAG_LOGGED;

/// Ensures the object whose header is `header` was logged this cycle, calling `log` if this
/// thread must do it. Returns true if this call logged it.
#[inline]
pub fn log_once(header: &impl HeaderWord, log: impl FnOnce()) -> bool {
    let mut log = Some(log);
    loop {
        let h = header.load(Ordering::Acquire);
        if h & FLAG_LOGGED != 0 {
            return false;
        }
        if h & FLAG_LOGGING == 0 {
            if header
                .compare_exchange(h, h | FLAG_LOGGING, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                if let Some(log) = log.take() {
                    log();
                }
                // Release: the logged entries happen-before any store another thread
                // makes after it sees LOGGED.
                header.fetch_or(FLAG_LOGGED, Ordering::Release);
                return true;
            }
            continue;
        }
        // Another thread is logging: wait until it is done.
        spin_loop();
        thread::yield_now();
    }
}

/// Clears the logging flags of an object (after marking).
pub fn clear(header: &impl HeaderWord) {
    header.fetch_and(!(FLAG_LOGGED | FLAG_LOGGING), Ordering::Relaxed);
}
