//! What the integration tests share: a per-test watchdog (so a hang fails with a message
//! instead of stalling the whole run), the macro that runs a check in both modes under it,
//! and the small heaps and types the checks use.
#![allow(dead_code)] // each test crate uses its own subset

use std::sync::mpsc;
use std::time::Duration;
use tandem::{ByteSize, Config, Heap, Mode, TypeId, TypeInfo};

/// Offset of a node's reference field.
pub const NEXT: usize = 8;
/// Offset of a node's payload word.
pub const VALUE: usize = 16;

/// The test configuration: 2 GC threads, `max_mb` MiB, 4 MiB minimum.
pub fn config(mode: Mode, max_mb: usize, verify: bool) -> Config {
    Config {
        mode,
        threads: 2,
        heap_max: ByteSize(max_mb << 20),
        heap_min: ByteSize(4 << 20),
        verify,
        ..Config::default()
    }
}

/// A heap of [`config`], environment ignored.
pub fn heap(mode: Mode, max_mb: usize, verify: bool) -> Heap {
    Heap::with_config(config(mode, max_mb, verify)).unwrap()
}

/// A verified 256 MiB heap that returns empty chunks at once, so that compaction shows
/// in the committed figures.
pub fn compacting_heap(mode: Mode) -> Heap {
    Heap::with_config(Config {
        uncommit_delay: Duration::ZERO,
        ..config(mode, 256, true)
    })
    .unwrap()
}

/// Node: header | next (ref) | value (u64).
pub fn node_type(h: &Heap) -> TypeId {
    h.register_type(TypeInfo {
        fixed_size: 24,
        ref_offsets: vec![NEXT],
        ..Default::default()
    })
    .unwrap()
}

/// A type of `size` bytes whose references the VM's `trace` callback reports.
pub fn traced_type(h: &Heap, size: usize, trace: tandem::TraceFn) -> TypeId {
    h.register_type(TypeInfo {
        fixed_size: size,
        trace: Some(trace),
        ..Default::default()
    })
    .unwrap()
}

/// The payloads of the list of nodes from root depth 0, head first, read through the
/// load barrier.
pub fn list_values(m: &mut tandem::Mutator) -> Vec<u64> {
    let mut out = Vec::new();
    let mut cur = m.peek_root(0).unwrap();
    while let Some(n) = cur {
        // SAFETY: a live node of the rooted list.
        out.push(unsafe { *n.field::<u64>(VALUE) });
        // SAFETY: as above; NEXT is its reference field.
        cur = unsafe { m.read_ref(n, NEXT) };
    }
    out
}

/// Runs each check in both collector modes, as `stw::name` and `concurrent::name`, each
/// under a [`Watchdog`].
/// Pointer array: header | length (at 8) | items (references, from 16).
pub fn array_type(h: &Heap) -> TypeId {
    h.register_type(TypeInfo {
        fixed_size: 16,
        item_size: 8,
        length_offset: 8,
        item_ref_offsets: vec![0],
        ..Default::default()
    })
    .unwrap()
}

macro_rules! in_both_modes {
    ($($name:ident),* $(,)?) => {
        mod stw {
            $(#[test] fn $name() {
                let _w = super::common::Watchdog::new(
                    concat!("stw::", stringify!($name)),
                    super::common::TEST_LIMIT,
                );
                super::$name(tandem::Mode::Stw)
            })*
        }
        mod concurrent {
            $(#[test] fn $name() {
                let _w = super::common::Watchdog::new(
                    concat!("concurrent::", stringify!($name)),
                    super::common::TEST_LIMIT,
                );
                super::$name(tandem::Mode::Concurrent)
            })*
        }
    };
}

/// Ends the test process with a message if the test holding it runs past its limit.
/// Generous limits: these run as debug builds on a loaded 2-core machine.
pub struct Watchdog {
    done: Option<mpsc::Sender<()>>,
}

impl Watchdog {
    /// Starts watching the test `name` for `limit`.
    pub fn new(name: &'static str, limit: Duration) -> Watchdog {
        let (done, rx) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name(format!("watchdog-{name}"))
            .spawn(move || {
                if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                    eprintln!(
                        "watchdog: test `{name}` still running after {limit:?}: it hangs; \
                         ending the test process"
                    );
                    std::process::exit(101);
                }
            })
            .expect("spawning a watchdog thread");
        Watchdog { done: Some(done) }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        // Dropping the sender wakes the watchdog with `Disconnected`: the test ended.
        self.done.take();
    }
}

/// The limit every collector test runs under.
pub const TEST_LIMIT: Duration = Duration::from_secs(240);
