//! Why a workload stopped early: a collector error, a failed workload check, or failures on
//! some of its threads. Stress runs print each message; the bench records the text.

use std::fmt;

/// A workload's failure.
#[derive(Debug, Clone)]
pub enum Failure {
    /// The collector returned an error (out of memory, shadow-stack overflow, shutdown...).
    Runtime(String),
    /// A workload check found a wrong value (a bad checksum, a wrong node count...).
    Check(String),
    /// Threads failed: one message per failed thread, naming it.
    Threads(Vec<String>),
}

impl Failure {
    /// The failure as one message per failed thread (one message if no thread is named).
    pub fn messages(&self) -> Vec<String> {
        match self {
            Failure::Threads(m) => m.clone(),
            other => vec![other.to_string()],
        }
    }

    /// The same failure, its message prefixed with what the workload was doing.
    pub fn context(self, what: &str) -> Failure {
        match self {
            Failure::Runtime(m) => Failure::Runtime(format!("{what}: {m}")),
            Failure::Check(m) => Failure::Check(format!("{what}: {m}")),
            Failure::Threads(m) => {
                Failure::Threads(m.into_iter().map(|m| format!("{what}: {m}")).collect())
            }
        }
    }
}

impl From<tandem::Error> for Failure {
    fn from(e: tandem::Error) -> Failure {
        Failure::Runtime(e.to_string())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Runtime(e) => write!(f, "runtime error: {e}"),
            Failure::Check(m) => write!(f, "check failed: {m}"),
            Failure::Threads(m) => write!(f, "{}", m.join("; ")),
        }
    }
}

/// A workload's result.
pub type Fallible<T> = Result<T, Failure>;
