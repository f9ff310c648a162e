//! Writing to stdout and stderr without panicking when the reader has gone
//! (`tandem-stress graph | head -1`, or a closed stderr).
//!
//! Rust ignores SIGPIPE, so a write to a closed pipe fails with EPIPE, and `println!` and
//! `eprintln!` panic on that. A panic in a GC thread's log call (the `tracing` subscriber
//! writes from the collector's own threads) would take the collector down with it, and a
//! panic in `main` would replace the run's exit status with 101. So all output goes through
//! here: a failed write is dropped, the run goes on, and the exit status still says
//! whether the checks passed.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once a write to stdout failed for a reason other than a closed pipe, so that it is
/// reported once.
static STDOUT_ERROR_SHOWN: AtomicBool = AtomicBool::new(false);

/// Writes `args` to stdout (`outln!` calls this); a closed pipe drops the text,
/// any other error is reported once on stderr.
pub fn out(args: fmt::Arguments<'_>) {
    let mut stdout = io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        // Relaxed: a flag that only limits the message to one; it orders nothing.
        if e.kind() != io::ErrorKind::BrokenPipe
            && !STDOUT_ERROR_SHOWN.swap(true, Ordering::Relaxed)
        {
            err(format_args!("tandem-stress: cannot write to stdout: {e}\n"));
        }
    }
}

/// Writes `args` to stderr (`errln!` calls this); an error drops the text, since
/// there is nowhere left to report it.
pub fn err(args: fmt::Arguments<'_>) {
    let _ = io::stderr().lock().write_fmt(args);
}

/// `println!` that drops its text when stdout is closed, instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::stdio::out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprintln!` that drops its text when stderr is closed, instead of panicking.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::stdio::err(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// A writer for which a failed write (a closed pipe) counts as written, so that the
/// caller neither retries nor reports it, nor panics.
#[derive(Debug)]
pub struct Quiet<W>(pub W);

impl<W: Write> Write for Quiet<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // The whole buffer, even when refused: the `tracing` subscriber would otherwise
        // report the error with `eprintln!`, on the same closed stderr, and panic.
        let _ = self.0.write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = self.0.flush();
        Ok(())
    }
}

/// Makes the `tracing` subscriber's writers: stderr, quietly (logging from a GC thread
/// must never fail or panic).
#[derive(Debug, Clone, Copy, Default)]
pub struct QuietStderr;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for QuietStderr {
    type Writer = Quiet<io::Stderr>;

    fn make_writer(&'a self) -> Quiet<io::Stderr> {
        Quiet(io::stderr())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer whose reader has gone.
    struct ClosedPipe;

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
    }

    #[test]
    fn quiet_writer_counts_a_closed_pipe_as_written() {
        assert!(ClosedPipe.write_all(b"log line\n").is_err());
        let mut w = Quiet(ClosedPipe);
        assert_eq!(w.write(b"log line\n").unwrap(), 9);
        assert!(w.write_all(b"log line\n").is_ok());
        assert!(w.flush().is_ok());
    }
}
