//! What the C ABI does about its callers' threads ending: thread exit and cancellation.
//!
//! **Exit.** A thread's state in this layer (its attached mutator, its last error's text)
//! lives in destructor-free thread-locals and is freed by the destructor of one pthread
//! key, not by Rust thread-local destructors. glibc runs thread-local destructors
//! (`__cxa_thread_atexit`) before pthread key destructors, and a thread-local first touched
//! by a key destructor never has its destructor run: a VM whose thread-exit code (a pthread
//! key destructor, a C++ `thread_local`'s destructor) attached a mutator left it attached
//! for ever, and the next collection waited for the dead thread. A key set again by
//! another key's destructor has its own destructor run in a later round (glibc makes up to
//! `PTHREAD_DESTRUCTOR_ITERATIONS`, 4, rounds), so a thread that attaches in its exit code
//! is detached too.
//!
//! **Cancellation.** Each entry point runs with the calling thread's cancellation
//! disabled: glibc cancels a thread by unwinding it from a cancellation point (a `read`, a
//! `nanosleep`, an `open` of a cgroup file), which the collector's own code reaches, and an
//! unwind caught by the entry point's panic guard aborts the process ("FATAL: exception not
//! rethrown"). A cancellation requested meanwhile takes effect at the thread's next
//! cancellation point after the call returns.

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The key whose destructor frees a thread's state, plus one (0: not created yet). Its
/// value is a marker, non-null while the thread has state to free. Created lazily without
/// a lock or a `OnceLock`: a fork while another thread initialised one left the child
/// waiting for ever (see `safepoint`); racing creators keep the first key published.
static EXIT_KEY: AtomicUsize = AtomicUsize::new(0);

fn exit_key() -> Option<libc::pthread_key_t> {
    // Acquire: pairs with the publishing CAS, so the key is created before it is used.
    let k = EXIT_KEY.load(Ordering::Acquire);
    if k != 0 {
        return Some((k - 1) as libc::pthread_key_t);
    }
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: `key` is writable; the destructor is a valid `extern "C"` function.
    if unsafe { libc::pthread_key_create(&mut key, Some(on_thread_exit)) } != 0 {
        return None;
    }
    match EXIT_KEY.compare_exchange(0, key as usize + 1, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => Some(key),
        Err(published) => {
            // SAFETY: the key this call created, which no thread has used.
            unsafe { libc::pthread_key_delete(key) };
            Some((published - 1) as libc::pthread_key_t)
        }
    }
}

/// Makes sure this thread's state is freed when it exits (call whenever state is created;
/// cheap when it already is).
pub fn watch() {
    if let Some(key) = exit_key() {
        // SAFETY: a key this process created and never deletes.
        if unsafe { libc::pthread_getspecific(key) }.is_null() {
            // A marker only: the state itself lives in this thread's thread-locals.
            // SAFETY: as above.
            unsafe {
                libc::pthread_setspecific(
                    key,
                    std::ptr::NonNull::<u8>::dangling().as_ptr() as *const c_void,
                )
            };
        }
    }
}

/// The key's destructor: detaches the thread's mutator and frees its error text.
extern "C" fn on_thread_exit(_marker: *mut c_void) {
    // Nothing may unwind out of a destructor called by C.
    let _ = std::panic::catch_unwind(|| {
        crate::global::forget_thread();
        crate::error::forget_thread();
    });
}

#[cfg(any(target_env = "gnu", target_env = "musl"))]
mod cancel {
    use std::ffi::c_int;

    /// `PTHREAD_CANCEL_DISABLE` in glibc's and musl's `pthread.h`.
    pub const DISABLE: c_int = 1;

    extern "C" {
        pub fn pthread_setcancelstate(state: c_int, old: *mut c_int) -> c_int;
    }
}

/// Runs `f` with the calling thread's cancellation disabled, then restores the state it had.
#[inline]
pub fn without_cancellation<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(any(target_env = "gnu", target_env = "musl"))]
    {
        let mut old: c_int = 0;
        // SAFETY: `old` is writable; changing one's own cancel state is always allowed.
        unsafe { cancel::pthread_setcancelstate(cancel::DISABLE, &mut old) };
        /// Restores the saved state however `f` ends.
        struct Restore(c_int);
        impl Drop for Restore {
            fn drop(&mut self) {
                // SAFETY: as above; `self.0` is the state this thread had.
                unsafe { cancel::pthread_setcancelstate(self.0, std::ptr::null_mut()) };
            }
        }
        let _restore = Restore(old);
        f()
    }
    #[cfg(not(any(target_env = "gnu", target_env = "musl")))]
    {
        f()
    }
}
