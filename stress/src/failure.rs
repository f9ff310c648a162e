//! Why a worker thread stopped early: a runtime error or a failed workload check.

use std::fmt;

/// A worker's failure.
#[derive(Debug)]
pub enum Failure {
    /// The runtime returned an error (out of memory, shadow-stack overflow, shutdown...).
    Tandem(tandem::Error),
    /// A workload check found a wrong value (a bad checksum, a wrong item count...).
    Check(String),
}

impl From<tandem::Error> for Failure {
    fn from(e: tandem::Error) -> Failure {
        Failure::Tandem(e)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Tandem(e) => write!(f, "runtime error: {e}"),
            Failure::Check(m) => write!(f, "check failed: {m}"),
        }
    }
}

/// A worker's result.
pub type Outcome<T> = Result<T, Failure>;
