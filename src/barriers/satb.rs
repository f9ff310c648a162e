//! SATB buffers: each mutator logs overwritten references into a private buffer; full
//! buffers are handed to a shared queue that the markers drain.
//!
//! # Hand-off protocol
//!
//! 1. A mutator appends to its private [`SatbBuffer`] (no synchronisation).
//! 2. When it holds [`SATB_BUFFER_CAPACITY`] entries, the mutator moves the whole buffer
//!    into the [`SatbQueue`] under the queue's lock and starts a new one. It also flushes a
//!    partial buffer when the collector asks (handshake) or when the world stops.
//! 3. Markers take whole buffers from the queue under the same lock.
//!
//! Why nothing is lost: an entry is either in the mutator's private buffer (flushed at the
//! latest in the final-mark pause, while the mutator is stopped) or in the queue, from
//! which it is removed by exactly one `take` (the lock). The lock orders the mutator's
//! writes of the entries before the marker's reads. The loom model
//! `loom-tests/tests/satb.rs` checks this with markers draining while buffers arrive, and
//! `loom-tests/tests/handshake.rs` the flush a handshake asks for.

use crate::sync::{AtomicUsize, Mutex, Ordering};

/// Entries per buffer before it is handed to the markers.
pub const SATB_BUFFER_CAPACITY: usize = 256;

/// A mutator's private log of overwritten references (object addresses).
#[derive(Debug, Default)]
pub struct SatbBuffer {
    entries: Vec<usize>,
}

impl SatbBuffer {
    /// Logs `addr`; returns the full buffer when it reached capacity.
    #[inline]
    pub fn push(&mut self, addr: usize) -> Option<Vec<usize>> {
        if self.entries.capacity() == 0 {
            self.entries.reserve_exact(SATB_BUFFER_CAPACITY);
        }
        self.entries.push(addr);
        (self.entries.len() >= SATB_BUFFER_CAPACITY).then(|| self.take())
    }

    /// Takes whatever is logged.
    pub fn take(&mut self) -> Vec<usize> {
        std::mem::take(&mut self.entries)
    }

    /// Number of entries logged.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is logged.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Full buffers waiting for the markers.
#[derive(Debug, Default)]
pub struct SatbQueue {
    buffers: Mutex<Vec<Vec<usize>>>,
    entries: AtomicUsize,
}

impl SatbQueue {
    /// Hands a buffer to the markers (empty buffers are dropped).
    pub fn publish(&self, buf: Vec<usize>) {
        if buf.is_empty() {
            return;
        }
        let n = buf.len();
        self.buffers.lock().push(buf);
        // Relaxed: a size hint for pacing; the lock orders the entries themselves.
        self.entries.fetch_add(n, Ordering::Relaxed);
    }

    /// Takes one buffer, if any.
    pub fn take(&self) -> Option<Vec<usize>> {
        let b = self.buffers.lock().pop()?;
        self.entries.fetch_sub(b.len(), Ordering::Relaxed);
        Some(b)
    }

    /// Takes every buffer.
    pub fn take_all(&self) -> Vec<Vec<usize>> {
        let all = std::mem::take(&mut *self.buffers.lock());
        let n: usize = all.iter().map(Vec::len).sum();
        self.entries.fetch_sub(n, Ordering::Relaxed);
        all
    }

    /// Entries waiting (approximate while mutators run).
    pub fn pending_entries(&self) -> usize {
        self.entries.load(Ordering::Relaxed)
    }
}
