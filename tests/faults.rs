//! Fault containment: a collector thread that fails must end as an error every mutator
//! sees (waiting at a safepoint, allocating, collecting, attaching), never as a hang. Each
//! check runs in both modes under a watchdog.

#[macro_use]
mod common;

use common::{heap, node_type};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use tandem::{Error, Mode, Mutator, TypeId, VisitFn};

/// Allocates (and polls) until the runtime reports an error; returns it. Panics if none
/// comes within a budget far beyond what one failed collection needs.
fn allocate_until_error(m: &mut Mutator, ty: TypeId) -> Error {
    for i in 0..50_000_000u64 {
        if i % 64 == 0 {
            if let Err(e) = m.safepoint() {
                return e;
            }
        }
        if let Err(e) = m.alloc(ty, 0) {
            return e;
        }
    }
    panic!("no error after 50M allocations");
}

fn internal_message(e: &Error) -> &str {
    match e {
        Error::Internal(m) => m,
        other => panic!("expected Error::Internal, got {other:?}"),
    }
}

/// A verify hook that panics on a GC thread: the collect that ran it, a second mutator
/// parked or allocating meanwhile, later calls and new threads all get `Error::Internal`
/// with the panic's message; the OOM handler hears of failed allocations; dropping the
/// heap does not hang.
fn a_panicking_verify_hook_fails_the_runtime_for_every_thread(mode: Mode) {
    let h = heap(mode, 32, true);
    let ty = node_type(&h);
    h.set_verify_hook(Some(Box::new(|_| panic!("verify hook exploded"))));
    let oom_calls = Arc::new(AtomicUsize::new(0));
    let oc = oom_calls.clone();
    h.set_oom_handler(Some(Box::new(move |_| {
        oc.fetch_add(1, Ordering::SeqCst);
    })));
    let other_started = Arc::new(AtomicBool::new(false));
    let main_ready = Arc::new(AtomicBool::new(false));
    std::thread::scope(|s| {
        let (h2, started, ready) = (h.clone(), other_started.clone(), main_ready.clone());
        let other = s.spawn(move || {
            let mut m = h2.attach().unwrap();
            let root = m.alloc(ty, 0).unwrap();
            m.push_root(Some(root)).unwrap();
            started.store(true, Ordering::SeqCst);
            // No cycle (which would run the hook) before the main thread has its root;
            // polling meanwhile, so that a stop does not wait for this thread.
            while !ready.load(Ordering::SeqCst) {
                if let Err(e) = m.safepoint() {
                    return e;
                }
            }
            allocate_until_error(&mut m, ty)
        });
        while !other_started.load(Ordering::SeqCst) {
            std::hint::spin_loop();
        }
        let mut m = h.attach().unwrap();
        let root = m.alloc(ty, 0).unwrap();
        m.push_root(Some(root)).unwrap();
        main_ready.store(true, Ordering::SeqCst);
        let e = m.collect().unwrap_err();
        assert!(internal_message(&e).contains("verify hook exploded"), "{e}");
        let e2 = other.join().unwrap();
        assert!(
            internal_message(&e2).contains("verify hook exploded"),
            "{e2}"
        );
        // Later calls fail fast with the same message.
        assert_eq!(m.collect().unwrap_err(), e);
        // A running thread hears of it at its next poll (once), and an allocation slow
        // path fails as out of memory does, through the handler.
        assert_eq!(m.safepoint(), Err(e.clone()));
        let e3 = (0..1_000_000).find_map(|_| m.alloc(ty, 0).err()).unwrap();
        assert_eq!(e3, e);
        assert!(oom_calls.load(Ordering::SeqCst) >= 1);
        let h3 = h.clone();
        let e4 = std::thread::spawn(move || h3.attach().map(|_| ()).unwrap_err())
            .join()
            .unwrap();
        assert_eq!(e4, e);
    });
    drop(h);
}

/// A trace callback that hands the collector a bad slot: the visitor's panic may not
/// unwind through the callback's C frames (that aborts); it fails the runtime instead.
fn a_trace_callback_visiting_a_bad_slot_fails_the_runtime(mode: Mode) {
    unsafe extern "C" fn bad_trace(_obj: *mut u8, visit: VisitFn, ctx: *mut std::ffi::c_void) {
        // SAFETY: deliberately wrong: a null slot, which the visitor must refuse.
        unsafe { visit(std::ptr::null_mut(), ctx) }
    }
    let h = heap(mode, 32, false);
    let ty = common::traced_type(&h, 16, bad_trace);
    let holder = node_type(&h);
    let mut m = h.attach().unwrap();
    // Reached through a node, so a GC worker (not only the root scan) traces it.
    let bad = m.alloc(ty, 0).unwrap();
    m.push_root(Some(bad)).unwrap();
    let n = m.alloc(holder, 0).unwrap();
    // SAFETY: offset 8 is n's reference field; both objects are live.
    unsafe { m.write_ref(n, 8, Some(bad)) };
    m.set_root(0, Some(n));
    let e = m.collect().unwrap_err();
    assert!(internal_message(&e).contains("invalid slot"), "{e}");
    assert_eq!(m.collect().unwrap_err(), e);
    drop(m);
    drop(h);
}

in_both_modes!(
    a_panicking_verify_hook_fails_the_runtime_for_every_thread,
    a_trace_callback_visiting_a_bad_slot_fails_the_runtime,
);

thread_local! {
    /// Set on the test's mutator thread: the trace callback below fails only there.
    static ON_MUTATOR: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A trace callback that fails while a mark assist runs it (on the allocating mutator's
/// own thread) fails the runtime like a GC thread's failure: the error reaches the
/// mutator with the callback's message, and no cycle sweeps with what that assist held
/// unscanned. Concurrent mode only (assists pace concurrent marking); one GC thread, whose
/// tracing is slow, so the allocating mutator outruns the marker and assists.
#[test]
fn a_trace_callback_failing_in_a_mark_assist_fails_the_runtime() {
    let _w = common::Watchdog::new(
        "a_trace_callback_failing_in_a_mark_assist_fails_the_runtime",
        common::TEST_LIMIT,
    );
    /// Traces the node's `NEXT` field on GC threads, slowly (so the marker falls behind
    /// and the allocating mutator must assist, in debug builds too), and a null slot on
    /// the mutator's.
    unsafe extern "C" fn trace(obj: *mut u8, visit: VisitFn, ctx: *mut std::ffi::c_void) {
        let slot = if ON_MUTATOR.with(|f| f.get()) {
            std::ptr::null_mut()
        } else {
            let t0 = std::time::Instant::now();
            while t0.elapsed() < std::time::Duration::from_micros(5) {
                std::hint::spin_loop();
            }
            // SAFETY: `obj` is a live node; NEXT is its reference field.
            unsafe { obj.add(common::NEXT) }
        };
        // SAFETY: a reference slot of `obj`, or (deliberately) null, which the visitor
        // must refuse.
        unsafe { visit(slot as *mut *mut u8, ctx) }
    }
    let h = tandem::Heap::with_config(tandem::Config {
        threads: 1,
        ..common::config(Mode::Concurrent, 256, false)
    })
    .unwrap();
    let ty = common::traced_type(&h, 24, trace);
    let mut m = h.attach().unwrap();
    ON_MUTATOR.with(|f| f.set(true));
    // Many nodes held by one array: the marker shares them out (a list would stay on its
    // own stack, one node at a time), and slowly, so the allocating mutator takes some.
    // The failure may come while they are built.
    const NODES: usize = 50_000;
    let arr = m.alloc(common::array_type(&h), NODES).unwrap();
    m.push_root(Some(arr)).unwrap();
    let mut build = || {
        for i in 0..NODES {
            let n = m.alloc(ty, 0)?;
            let arr = m.peek_root(0).unwrap().unwrap();
            // SAFETY: item i of the live array (items from offset 16); n is fresh.
            unsafe { m.write_ref(arr, 16 + 8 * i, Some(n)) };
        }
        Ok(())
    };
    let e = match build() {
        Err(e) => e,
        Ok(()) => allocate_until_error(&mut m, ty),
    };
    let msg = internal_message(&e);
    assert!(
        msg.contains("mark assist") && msg.contains("invalid slot"),
        "{e}"
    );
    assert_eq!(m.collect().unwrap_err(), e);
    drop(m);
    drop(h);
}
