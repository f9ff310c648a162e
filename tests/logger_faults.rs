//! A log subscriber that panics on GC threads (as one writing to a closed stderr does)
//! must fail the runtime with an error, not kill the control thread and leave mutators
//! parked forever. Its own test binary: the subscriber is process-wide.

#[macro_use]
mod common;

use common::{heap, node_type};
use tandem::{Error, Mode};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Panics on every event logged by a collector thread, like a writer on a closed pipe.
struct BrokenSink;

impl Subscriber for BrokenSink {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {
        let t = std::thread::current();
        if t.name().is_some_and(|n| n.starts_with("tandem-")) {
            panic!("log sink closed");
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

fn a_logger_panicking_on_a_gc_thread_is_an_error_not_a_hang(mode: Mode) {
    // Ignore the error: the other mode's test may have installed it first.
    let _ = tracing::subscriber::set_global_default(BrokenSink);
    let h = heap(mode, 32, false);
    let ty = node_type(&h);
    let mut m = h.attach().unwrap();
    m.alloc(ty, 0).unwrap();
    let e = m.collect().unwrap_err();
    match &e {
        Error::Internal(msg) => assert!(msg.contains("log sink closed"), "{msg}"),
        other => panic!("expected Error::Internal, got {other:?}"),
    }
    assert_eq!(m.collect().unwrap_err(), e);
}

in_both_modes!(a_logger_panicking_on_a_gc_thread_is_an_error_not_a_hang);
