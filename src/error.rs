//! The one error type of the Rust API; the C ABI maps each kind to an error code.

use std::fmt;

/// What went wrong, with a message a VM author can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// An option (environment variable or API field) has a bad value.
    Config(String),
    /// A NULL or malformed argument: a null slot, an unknown finalizer queue, a weakref
    /// call on an object that is not one.
    InvalidArgument(String),
    /// A type description is malformed or the type table is full.
    BadType(String),
    /// A type id that was never registered.
    UnknownType(u32),
    /// An object size that overflows or exceeds what the heap can hold.
    SizeOverflow(String),
    /// The heap could not satisfy an allocation even after a full collection.
    OutOfMemory(usize),
    /// The shadow stack is full (push) or empty (pop).
    ShadowStack(String),
    /// A root slot was not registered, or registered twice.
    Root(String),
    /// The runtime was shut down.
    Shutdown,
    /// Reserving or committing virtual memory failed.
    Os(String),
    /// An operation was called in a state where it is not allowed.
    State(String),
    /// A collector thread failed (a panic or an unrecoverable error); the runtime is in the
    /// failed state and every later heap operation reports the same message.
    Internal(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(m) => write!(f, "configuration error: {m}"),
            Error::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Error::BadType(m) => write!(f, "bad type description: {m}"),
            Error::UnknownType(id) => write!(f, "unknown type id {id}: it was never registered"),
            Error::SizeOverflow(m) => write!(f, "size overflow: {m}"),
            Error::OutOfMemory(n) => {
                write!(
                    f,
                    "out of memory: {n} bytes could not be allocated within the heap's \
                     maximum, after a full GC (or with automatic collection disabled)"
                )
            }
            Error::ShadowStack(m) => write!(f, "shadow stack: {m}"),
            Error::Root(m) => write!(f, "root: {m}"),
            Error::Shutdown => write!(f, "the Tandem runtime has been shut down"),
            Error::Os(m) => write!(f, "operating system: {m}"),
            Error::State(m) => write!(f, "invalid state: {m}"),
            Error::Internal(m) => write!(f, "internal error: the collector failed: {m}"),
        }
    }
}

impl std::error::Error for Error {}

/// Result with Tandem's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
