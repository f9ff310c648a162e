//! A stop held up by a thread that neither polls nor is in a native region names that
//! thread in a warning once it has waited `SLOW_STOP_WARNING`, and completes when the
//! thread polls. Its own test binary: the subscriber that captures the warning is
//! process-wide.

#[macro_use]
mod common;

use common::{heap, node_type};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tandem::safepoint::SLOW_STOP_WARNING;
use tandem::Mode;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Keeps every warning as its fields, `name=value` joined by spaces.
#[derive(Clone, Default)]
struct Warnings(Arc<Mutex<Vec<String>>>);

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0 += &format!("{}={:?} ", field.name(), value);
    }
}

impl Subscriber for Warnings {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        *m.level() <= Level::WARN
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, e: &Event<'_>) {
        let mut f = Fields(String::new());
        e.record(&mut f);
        self.0.lock().unwrap().push(f.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

fn a_stop_held_up_names_the_late_thread_and_completes_when_it_polls(mode: Mode) {
    // One subscriber for the process, shared by both modes' tests.
    static WARNINGS: OnceLock<Warnings> = OnceLock::new();
    let warnings = WARNINGS.get_or_init(|| {
        let w = Warnings::default();
        tracing::subscriber::set_global_default(w.clone()).unwrap();
        w
    });
    let h = heap(mode, 32, false);
    let ty = node_type(&h);
    let held = SLOW_STOP_WARNING + Duration::from_millis(300);
    let (h2, started) = (h.clone(), Instant::now());
    // One name per mode: both modes' tests share the process and its subscriber.
    let name = format!("late-{mode:?}").to_lowercase();
    let late = std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            let mut m = h2.attach().unwrap();
            m.alloc(ty, 0).unwrap();
            // Blocks while RUNNING, as a VM thread waiting on its own lock without
            // entering a native region would; then polls.
            std::thread::sleep(held);
            m.safepoint().unwrap();
        })
        .unwrap();
    let mut m = h.attach().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    m.collect().unwrap();
    assert!(
        started.elapsed() >= held,
        "the stop waited for the late thread"
    );
    late.join().unwrap();
    let all = warnings.0.lock().unwrap().clone();
    let named = all
        .iter()
        .find(|w| w.contains(&name) && w.contains("safepoint"))
        .unwrap_or_else(|| panic!("no warning names the late thread: {all:?}"));
    let waited: u64 = named
        .split("waited_ms=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no waited_ms in {named}"));
    assert!(waited >= SLOW_STOP_WARNING.as_millis() as u64, "{named}");
    assert!(
        named.contains("thread "),
        "the OS thread id is named: {named}"
    );
}

in_both_modes!(a_stop_held_up_names_the_late_thread_and_completes_when_it_polls);
