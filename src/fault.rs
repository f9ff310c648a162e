//! Fault containment: a collector thread that fails turns the runtime into the *failed*
//! state instead of leaving mutators asleep forever.
//!
//! A panic on the control thread or on a GC worker is caught at the thread's top (workers
//! hand theirs to the control thread, which fails the runtime once the phase has ended).
//! [`Runtime::fail`](crate::runtime::Runtime::fail) then records the first message here and
//! wakes every waiter: mutators parked at a safepoint or in a native region (the stop ends),
//! threads waiting for a collection or to attach. From then on every heap operation that
//! can block or collect (allocation slow paths, polls that park, `collect`, attach) returns
//! [`Error::Internal`] with that message; nothing waits for the collector again.
//!
//! The heap's contents after a failure are whatever the failed phase left: the VM should
//! report the error and exit, not carry on allocating.

use crate::error::Error;
use crate::sync::unmodelled::OnceLock;
use crate::sync::{AtomicBool, Ordering};
use std::any::Any;

/// The failed state of one runtime: unset until the first failure, then fixed.
#[derive(Debug, Default)]
pub struct Failure {
    failed: AtomicBool,
    message: OnceLock<String>,
}

impl Failure {
    /// Records `message` as the runtime's failure; false when one was already recorded (the
    /// first message stands).
    pub fn set(&self, message: String) -> bool {
        let first = self.message.set(message).is_ok();
        // Release: pairs with the Acquire in `is_failed`, so a thread that sees the flag
        // also sees the message.
        self.failed.store(true, Ordering::Release);
        first
    }

    /// Whether the runtime has failed (one load: cheap enough for slow paths).
    #[inline]
    pub fn is_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// The failure's message, once failed.
    pub fn message(&self) -> Option<&str> {
        if self.is_failed() {
            self.message.get().map(String::as_str)
        } else {
            None
        }
    }

    /// `Err(Error::Internal)` with the message once failed, else `Ok`.
    #[inline]
    pub fn check(&self) -> crate::Result<()> {
        match self.is_failed() {
            false => Ok(()),
            true => Err(self.error()),
        }
    }

    /// The error every operation reports after the failure.
    #[cold]
    pub fn error(&self) -> Error {
        Error::Internal(
            self.message
                .get()
                .cloned()
                .unwrap_or_else(|| "the collector failed".into()),
        )
    }
}

/// The text of a caught panic's payload.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-string payload".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_message_stands_and_errors_carry_it() {
        let f = Failure::default();
        assert!(f.check().is_ok());
        assert!(f.set("worker 1 panicked: boom".into()));
        assert!(!f.set("later".into()));
        assert_eq!(f.message(), Some("worker 1 panicked: boom"));
        assert_eq!(
            f.check(),
            Err(Error::Internal("worker 1 panicked: boom".into()))
        );
    }

    #[test]
    fn panic_payloads_of_both_string_kinds_are_read() {
        let p = std::panic::catch_unwind(|| panic!("static")).unwrap_err();
        assert_eq!(panic_message(&*p), "static");
        let n = 3;
        let p = std::panic::catch_unwind(|| panic!("formatted {n}")).unwrap_err();
        assert_eq!(panic_message(&*p), "formatted 3");
    }
}
