//! End-to-end checks of the collector through the Rust API, each run in both modes and
//! under a watchdog.

#[macro_use]
mod common;

use common::{config, heap, node_type, NEXT, VALUE};
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tandem::{Config, Error, Heap, Mode, Mutator, ObjRef, TypeId, TypeInfo};

/// Builds a list of `n` nodes with values 0..n, rooted at the top of the shadow stack.
fn build_list(m: &mut Mutator, ty: TypeId, n: u64) {
    m.push_root(None).unwrap();
    for i in 0..n {
        let node = m.alloc(ty, 0).unwrap();
        let head = m.peek_root(0).unwrap();
        // SAFETY: node is a fresh node; NEXT is its ref field and VALUE its payload.
        unsafe {
            node.store_ref(NEXT, head);
            *node.field::<u64>(VALUE) = i;
        }
        m.set_root(0, Some(node));
    }
}

fn check_list(m: &mut Mutator, n: u64) {
    let mut cur = m.peek_root(0).unwrap();
    let mut expect = n;
    while let Some(node) = cur {
        expect -= 1;
        // SAFETY: list nodes are live (rooted).
        unsafe {
            assert_eq!(*node.field::<u64>(VALUE), expect);
            cur = node.load_ref(NEXT);
        }
    }
    assert_eq!(expect, 0);
}

fn churn(m: &mut Mutator, ty: TypeId, bytes: usize) {
    for _ in 0..bytes / 24 {
        m.alloc(ty, 0).unwrap();
    }
}

fn rooted_objects_survive_many_collections_intact(mode: Mode) {
    let h = heap(mode, 32, true);
    let ty = node_type(&h);
    let mut m = h.attach().unwrap();
    build_list(&mut m, ty, 10_000);
    for _ in 0..3 {
        churn(&mut m, ty, 16 << 20);
        m.collect().unwrap();
        check_list(&mut m, 10_000);
    }
    let s = h.stats();
    assert!(s.gcs >= 3);
    assert_eq!(s.verify_errors, 0, "{:?}", s.verify_messages);
    #[cfg(target_os = "linux")]
    assert!(
        s.collector_cpu_ns > 0,
        "the collector's threads' CPU time is counted"
    );
    assert!(s.heap_live >= 10_000 * 24);
    // Every cycle's last pause carries the live figure (a concurrent cycle learns it after
    // its final pause, from the sweep).
    assert!(s
        .pauses
        .iter()
        .any(|p| p.kind != tandem::PauseKind::InitMark && p.heap_after >= 10_000 * 24));
}

fn garbage_is_reclaimed_so_a_small_heap_serves_large_allocation_volumes(mode: Mode) {
    let h = heap(mode, 16, false);
    let ty = node_type(&h);
    let mut m = h.attach().unwrap();
    churn(&mut m, ty, 200 << 20);
    let s = h.stats();
    assert!(s.gcs >= 5, "gcs = {}", s.gcs);
    assert!(s.heap_peak <= 16 << 20);
    // The bytes of the TLAB still in use are counted when it is retired.
    assert!(s.bytes_allocated >= 190 << 20, "{}", s.bytes_allocated);
}

fn out_of_memory_returns_an_error_calls_the_handler_and_recovers(mode: Mode) {
    let h = heap(mode, 8, false);
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    h.set_oom_handler(Some(Box::new(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
    })));
    let ty = node_type(&h);
    let mut m = h.attach().unwrap();
    m.push_root(None).unwrap();
    let err = loop {
        match m.alloc(ty, 0) {
            Ok(node) => {
                // SAFETY: fresh node.
                unsafe { node.store_ref(NEXT, m.peek_root(0).unwrap()) };
                m.set_root(0, Some(node));
            }
            Err(e) => break e,
        }
    };
    assert!(matches!(err, Error::OutOfMemory(24)), "{err}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(h.stats().out_of_memory, 1);
    // Dropping the list makes room again.
    m.set_root(0, None);
    m.alloc(ty, 0).unwrap();
    // A request larger than the heap is a size error, not a crash.
    let arr = common::array_type(&h);
    assert!(matches!(m.alloc(arr, 1 << 40), Err(Error::SizeOverflow(_))));
    assert!(matches!(
        m.alloc(arr, usize::MAX),
        Err(Error::SizeOverflow(_))
    ));
}

fn large_and_var_size_objects_are_traced_and_freed(mode: Mode) {
    let h = heap(mode, 64, true);
    let (node, arr) = (node_type(&h), common::array_type(&h));
    let mut m = h.attach().unwrap();
    // A large pointer array (in the large-object space) holding nodes.
    let big = m.alloc(arr, 4096).unwrap();
    m.push_root(Some(big)).unwrap();
    for i in 0..4096 {
        let n = m.alloc(node, 0).unwrap();
        let big = m.peek_root(0).unwrap().unwrap();
        // SAFETY: item i of a 4096-item array; n is fresh.
        unsafe {
            *n.field::<u64>(VALUE) = i as u64;
            big.store_ref(16 + 8 * i, Some(n));
        }
    }
    for _ in 0..20 {
        m.alloc(arr, 50_000).unwrap(); // large garbage
    }
    m.collect().unwrap();
    let big = m.peek_root(0).unwrap().unwrap();
    for i in 0..4096 {
        // SAFETY: the array and its items are rooted.
        unsafe {
            let n = big.load_ref(16 + 8 * i).unwrap();
            assert_eq!(*n.field::<u64>(VALUE), i as u64);
        }
    }
    let s = h.stats();
    assert_eq!(s.verify_errors, 0, "{:?}", s.verify_messages);
    assert!(
        s.heap_live < 1 << 20,
        "large garbage was freed: live {}",
        s.heap_live
    );
}

/// `alloc_uninit` hands a pointer-free large object reused pages as they are (the VM
/// writes its bytes itself), and refuses types with references; `alloc` clears them.
fn uninitialised_allocation_skips_clearing_reused_pages_only(mode: Mode) {
    let h = heap(mode, 64, false);
    let blob = h
        .register_type(TypeInfo {
            fixed_size: 16,
            item_size: 1,
            length_offset: 8,
            ..Default::default()
        })
        .unwrap();
    let mut m = h.attach().unwrap();
    assert!(matches!(
        m.alloc_uninit(node_type(&h), 0),
        Err(Error::InvalidArgument(_))
    ));
    let len = 100_000;
    let fill = |o: ObjRef, v: u8| {
        // SAFETY: the payload of a live blob of `len` bytes, from offset 16.
        unsafe { std::ptr::write_bytes(o.field::<u8>(16), v, len) }
    };
    // SAFETY: the payload's last byte, as above.
    let last = |o: ObjRef| unsafe { *o.field::<u8>(16 + len - 1) };
    let a = m.alloc_uninit(blob, len).unwrap();
    // SAFETY: its length field.
    assert_eq!(unsafe { *a.field::<usize>(8) }, len);
    fill(a, 0xAB);
    m.collect().unwrap(); // a is garbage: its run goes to the warm cache
    let b = m.alloc_uninit(blob, len).unwrap();
    assert_eq!(b, a, "the freed run is reused");
    assert_eq!(last(b), 0xAB, "and not cleared");
    // SAFETY: as above.
    assert_eq!(unsafe { *b.field::<usize>(8) }, len, "the length is set");
    m.collect().unwrap();
    let c = m.alloc(blob, len).unwrap();
    assert_eq!(c, a);
    assert_eq!(last(c), 0, "a plain allocation is zeroed");
}

fn global_roots_and_the_root_callback_keep_objects_alive(mode: Mode) {
    let h = heap(mode, 32, true);
    let ty = node_type(&h);
    let mut m = h.attach().unwrap();
    let mut global: *mut u8 = std::ptr::null_mut();
    static mut CB_SLOT: *mut u8 = std::ptr::null_mut();
    unsafe extern "C" fn cb(
        visit: tandem::VisitFn,
        ctx: *mut std::ffi::c_void,
        _d: *mut std::ffi::c_void,
    ) {
        // SAFETY: CB_SLOT is only touched by this test's thread and, while it is stopped,
        // by the collector.
        unsafe { visit(std::ptr::addr_of_mut!(CB_SLOT), ctx) };
    }
    // SAFETY: `global` outlives the heap's use of it (removed below).
    unsafe {
        h.add_root(&mut global).unwrap();
        h.set_root_callback(Some(cb), std::ptr::null_mut());
    }
    let a = m.alloc(ty, 0).unwrap();
    let b = m.alloc(ty, 0).unwrap();
    // SAFETY: fresh nodes; the slots are read by the collector only while we are stopped.
    unsafe {
        *a.field::<u64>(VALUE) = 11;
        *b.field::<u64>(VALUE) = 22;
        std::ptr::write_volatile(&mut global, a.as_ptr());
        CB_SLOT = b.as_ptr();
    }
    churn(&mut m, ty, 40 << 20);
    m.collect().unwrap();
    // SAFETY: both objects are rooted.
    unsafe {
        assert_eq!(*ObjRef::from_ptr(global).unwrap().field::<u64>(VALUE), 11);
        assert_eq!(*ObjRef::from_ptr(CB_SLOT).unwrap().field::<u64>(VALUE), 22);
    }
    h.remove_root(&mut global).unwrap();
    assert!(h.remove_root(&mut global).is_err());
    assert_eq!(h.stats().verify_errors, 0);
}

fn a_trace_callback_type_is_traced_through_the_callback(mode: Mode) {
    let h = heap(mode, 32, true);
    let node = node_type(&h);
    // Irregular type: header | tagged word | ref at 16 only when the tag is 1.
    unsafe extern "C" fn trace(obj: *mut u8, visit: tandem::VisitFn, ctx: *mut std::ffi::c_void) {
        // SAFETY: obj is a live object of the irregular type (24 bytes).
        unsafe {
            if *(obj.add(8) as *const u64) == 1 {
                visit(obj.add(16) as *mut *mut u8, ctx);
            }
        }
    }
    let odd = common::traced_type(&h, 24, trace);
    let mut m = h.attach().unwrap();
    let o = m.alloc(odd, 0).unwrap();
    m.push_root(Some(o)).unwrap();
    let n = m.alloc(node, 0).unwrap();
    let o = m.peek_root(0).unwrap().unwrap();
    // SAFETY: fresh objects of the right types.
    unsafe {
        *n.field::<u64>(VALUE) = 77;
        *o.field::<u64>(8) = 1;
        o.store_ref(16, Some(n));
    }
    churn(&mut m, node, 40 << 20);
    m.collect().unwrap();
    let o = m.peek_root(0).unwrap().unwrap();
    // SAFETY: rooted through the callback-traced field.
    unsafe { assert_eq!(*o.load_ref(16).unwrap().field::<u64>(VALUE), 77) };
    assert_eq!(h.stats().verify_errors, 0);
}

fn threads_allocate_and_collect_concurrently(mode: Mode) {
    let h = heap(mode, 64, true);
    let ty = node_type(&h);
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let h = h.clone();
            s.spawn(move || {
                let mut m = h.attach().unwrap();
                build_list(&mut m, ty, 2000 + t);
                for _ in 0..5 {
                    churn(&mut m, ty, 8 << 20);
                    check_list(&mut m, 2000 + t);
                }
                if t == 0 {
                    m.collect().unwrap();
                }
            });
        }
    });
    let s = h.stats();
    assert!(s.gcs >= 2);
    assert_eq!(s.verify_errors, 0, "{:?}", s.verify_messages);
    assert_eq!(h.mutators(), 0);
}

fn a_thread_in_native_code_does_not_hold_up_collections(mode: Mode) {
    let h = heap(mode, 32, false);
    let ty = node_type(&h);
    let go = Arc::new(AtomicBool::new(false));
    std::thread::scope(|s| {
        let (h2, go2) = (h.clone(), go.clone());
        s.spawn(move || {
            let mut m = h2.attach().unwrap();
            m.native(|| {
                while !go2.load(Ordering::SeqCst) {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            });
            m.alloc(ty, 0).unwrap();
        });
        let mut m = h.attach().unwrap();
        for _ in 0..3 {
            m.collect().unwrap();
        }
        go.store(true, Ordering::SeqCst);
    });
    assert!(h.stats().gcs >= 3);
}

fn a_mutator_may_detach_while_a_collection_waits_for_it(mode: Mode) {
    let h = heap(mode, 32, false);
    let requested = Arc::new(AtomicBool::new(false));
    let detaching = Arc::new(AtomicBool::new(false));
    std::thread::scope(|s| {
        let (h2, r2, d2) = (h.clone(), requested.clone(), detaching.clone());
        let attached = Arc::new(AtomicBool::new(false));
        let a2 = attached.clone();
        s.spawn(move || {
            let m = h2.attach().unwrap();
            a2.store(true, Ordering::SeqCst);
            // Never polls: the collection can only proceed once we detach.
            while !r2.load(Ordering::SeqCst) {
                std::hint::spin_loop();
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            d2.store(true, Ordering::SeqCst);
            drop(m);
        });
        while !attached.load(Ordering::SeqCst) {
            std::hint::spin_loop();
        }
        let mut m = h.attach().unwrap();
        requested.store(true, Ordering::SeqCst);
        m.collect().unwrap();
        // Causal, not timed: the stop could not complete while the other thread was
        // attached and running, so it must have started detaching first.
        assert!(detaching.load(Ordering::SeqCst));
    });
    assert_eq!(h.stats().cycles, 1);
    assert_eq!(h.mutators(), 0);
}

fn writes_to_freed_memory_are_caught_by_verification(mode: Mode) {
    let h = heap(mode, 32, true);
    let ty = node_type(&h);
    let mut m = h.attach().unwrap();
    let dangling = m.alloc(ty, 0).unwrap();
    m.collect().unwrap();
    assert_eq!(h.stats().verify_errors, 0);
    // SAFETY (deliberately wrong use): the node was freed and its line poisoned; the write
    // stays inside committed heap memory, so it corrupts nothing but the poison.
    unsafe { *dangling.field::<u64>(VALUE) = 1234 };
    m.collect().unwrap();
    let s = h.stats();
    assert!(s.verify_errors > 0);
    assert!(
        s.verify_messages[0].contains("written after it was freed"),
        "{:?}",
        s.verify_messages
    );
}

/// A heap of 128 MiB with a 4 MiB minimum and the given uncommit delay, grown to ~36 MB
/// live and then emptied by a collection; returns the committed bytes before the collection.
fn grow_then_empty(mode: Mode, delay: Duration) -> (Heap, Mutator, usize) {
    let h = Heap::with_config(Config {
        uncommit_delay: delay,
        ..config(mode, 128, false)
    })
    .unwrap();
    let ty = node_type(&h);
    let mut m = h.attach().unwrap();
    build_list(&mut m, ty, 1_500_000); // ~36 MB live
    let grown = h.stats().heap_committed;
    assert!(grown >= 32 << 20);
    m.set_root(0, None);
    m.collect().unwrap();
    (h, m, grown)
}

fn memory_above_the_minimum_heap_is_returned_at_once_with_no_delay(mode: Mode) {
    let (h, _m, grown) = grow_then_empty(mode, Duration::ZERO);
    let after = h.stats().heap_committed;
    assert!(after <= 8 << 20, "committed {grown} -> {after}");
}

/// A slow tracer (about 1 µs per object, like a VM callback that does real work) and one
/// thread allocating garbage much faster than marking: allocations that wait on a running
/// cycle must not report out of memory because that cycle counted everything allocated
/// during it as live; only a cycle that started after the failure may say the heap is full.
fn allocation_outpacing_marking_waits_for_a_fresh_cycle_instead_of_failing(mode: Mode) {
    unsafe extern "C" fn slow_trace(obj: *mut u8, visit: tandem::VisitFn, ctx: *mut c_void) {
        let t0 = std::time::Instant::now();
        while t0.elapsed() < std::time::Duration::from_micros(1) {
            std::hint::spin_loop();
        }
        // SAFETY: offset NEXT is the node's one reference slot.
        unsafe { visit(obj.add(NEXT) as *mut *mut u8, ctx) }
    }
    let h = heap(mode, 24, false);
    let slow = common::traced_type(&h, 24, slow_trace);
    let plain = node_type(&h);
    let mut m = h.attach().unwrap();
    build_list(&mut m, slow, 200_000); // about 5 MiB live
    for _ in 0..(120 << 20) / 24 {
        // Five heaps' worth of garbage.
        if let Err(e) = m.alloc(plain, 0) {
            panic!("{e} with about 5 MiB live: {:?}", h.stats());
        }
    }
    check_list(&mut m, 200_000);
}

fn memory_above_the_minimum_heap_is_returned_after_the_delay(mode: Mode) {
    let (h, _m, grown) = grow_then_empty(mode, Duration::from_millis(100));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut after = h.stats().heap_committed;
    while after > 8 << 20 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        after = h.stats().heap_committed;
    }
    assert!(after <= 8 << 20, "committed {grown} -> {after}");
    assert!(
        after >= h.config().heap_min.0,
        "released below the minimum: {after}"
    );
}

fn memory_stays_committed_for_reuse_within_the_delay(mode: Mode) {
    let (h, mut m, grown) = grow_then_empty(mode, Duration::from_secs(3600));
    let after = h.stats().heap_committed;
    assert_eq!(after, grown, "released before the delay");
    // The idle memory serves the next allocations: nothing more is committed.
    let ty = node_type(&h);
    build_list(&mut m, ty, 1_000_000);
    m.collect().unwrap();
    assert_eq!(h.stats().heap_committed, grown);
}

fn misuse_is_reported_not_fatal(mode: Mode) {
    let h = heap(mode, 16, false);
    let mut m = h.attach().unwrap();
    assert!(matches!(
        m.alloc(TypeId(999), 0),
        Err(Error::UnknownType(999))
    ));
    assert!(matches!(h.attach(), Err(Error::State(_))));
    assert!(m.pop_root().is_err());
    assert!(h
        .register_type(TypeInfo {
            fixed_size: 2,
            ..Default::default()
        })
        .is_err());
    let ty = node_type(&h);
    drop(h);
    // The collector is gone: allocation still works from the TLAB and free blocks, but a
    // collection reports the shutdown.
    m.alloc(ty, 0).unwrap();
    assert!(matches!(m.collect(), Err(Error::Shutdown)));
}

/// Sparse survivors in every block: 80% of a 32 MiB heap filled with small live objects,
/// then all but every 1000th dropped (well under 1% live, yet a survivor in nearly every
/// block). A 4 MiB large object must still fit: the free pages of pooled blocks give their
/// budget back to the large-object space instead of a few survivors pinning whole chunks.
fn a_large_object_fits_beside_sparse_survivors_in_every_block(mode: Mode) {
    let h = heap(mode, 32, true);
    let (node, arr) = (node_type(&h), common::array_type(&h));
    let mut m = h.attach().unwrap();
    let total = (32u64 << 20) * 8 / 10 / 24;
    build_list(&mut m, node, total);
    let grown = h.stats().heap_committed;
    // Keep every 1000th node: each kept node links to the one 1000 further down.
    let mut cur = m.peek_root(0).unwrap();
    let mut kept = 0;
    while let Some(k) = cur {
        let mut next = Some(k);
        for _ in 0..1000 {
            // SAFETY: list nodes are live (rooted through the list).
            next = next.and_then(|n| unsafe { n.load_ref(NEXT) });
        }
        // SAFETY: k is a live node; the barrier logs the overwritten reference.
        unsafe { k.store_ref(NEXT, next) };
        kept += 1;
        cur = next;
    }
    m.collect().unwrap();
    let before = h.stats();
    assert!(
        before.heap_live < 1 << 20 && grown > 24 << 20,
        "grown to {grown}, live after collecting {}",
        before.heap_live
    );
    // 4 MiB of references: a large object the size of a chunk.
    let big = m.alloc(arr, (4 << 20) / 8);
    assert!(
        big.is_ok(),
        "{:?} with {} bytes live, {} committed of {}",
        big.err(),
        before.heap_live,
        before.heap_committed,
        32 << 20
    );
    assert!(h.stats().heap_committed <= 32 << 20);
    // The survivors are intact, and small allocation goes on beside the live large object.
    let check = |m: &mut Mutator| {
        let mut cur = m.peek_root(0).unwrap();
        let mut seen = 0;
        while let Some(n) = cur {
            // SAFETY: list nodes are live (rooted).
            unsafe {
                assert_eq!(*n.field::<u64>(VALUE), total - 1 - 1000 * seen);
                cur = n.load_ref(NEXT);
            }
            seen += 1;
        }
        assert_eq!(seen, kept);
    };
    check(&mut m);
    m.push_root(big.ok()).unwrap();
    churn(&mut m, node, 64 << 20);
    m.pop_root().unwrap();
    check(&mut m);
    let s = h.stats();
    assert_eq!(s.verify_errors, 0, "{:?}", s.verify_messages);
}

/// A heap on transparent huge pages collects like any other (verification on): list
/// intact, garbage reclaimed, empty chunks returned. Where THP is off the advice is a no-op.
fn a_heap_on_huge_pages_collects_and_returns_memory(mode: Mode) {
    let h = Heap::with_config(Config {
        huge_pages: true,
        uncommit_delay: Duration::ZERO,
        ..config(mode, 64, true)
    })
    .unwrap();
    let ty = node_type(&h);
    let mut m = h.attach().unwrap();
    build_list(&mut m, ty, 20_000);
    churn(&mut m, ty, 48 << 20);
    m.collect().unwrap();
    check_list(&mut m, 20_000);
    m.set_root(0, None);
    m.collect().unwrap();
    m.collect().unwrap();
    let s = h.stats();
    assert_eq!(s.verify_errors, 0, "{:?}", s.verify_messages);
    assert!(s.gcs >= 3);
    assert!(
        s.heap_committed <= 8 << 20,
        "committed {} after the list died",
        s.heap_committed
    );
}

in_both_modes!(
    a_heap_on_huge_pages_collects_and_returns_memory,
    rooted_objects_survive_many_collections_intact,
    garbage_is_reclaimed_so_a_small_heap_serves_large_allocation_volumes,
    out_of_memory_returns_an_error_calls_the_handler_and_recovers,
    large_and_var_size_objects_are_traced_and_freed,
    uninitialised_allocation_skips_clearing_reused_pages_only,
    global_roots_and_the_root_callback_keep_objects_alive,
    a_trace_callback_type_is_traced_through_the_callback,
    threads_allocate_and_collect_concurrently,
    a_thread_in_native_code_does_not_hold_up_collections,
    a_mutator_may_detach_while_a_collection_waits_for_it,
    writes_to_freed_memory_are_caught_by_verification,
    memory_above_the_minimum_heap_is_returned_at_once_with_no_delay,
    memory_above_the_minimum_heap_is_returned_after_the_delay,
    memory_stays_committed_for_reuse_within_the_delay,
    misuse_is_reported_not_fatal,
    allocation_outpacing_marking_waits_for_a_fresh_cycle_instead_of_failing,
    a_large_object_fits_beside_sparse_survivors_in_every_block,
);

/// The classic SATB hazard: while marking runs, a thread keeps moving references between
/// two arrays (swapping an entry of one with an entry of the other), so an object can
/// disappear from the array the marker has yet to scan into the one it already scanned.
/// The write barrier logs every overwritten reference, so no object may be lost:
/// verification checks every reachable object is marked at every cycle, and every node
/// must still be found at the end.
#[test]
fn references_moved_between_arrays_during_marking_survive() {
    let _w = common::Watchdog::new("references_moved", common::TEST_LIMIT);
    const N: usize = 4096;
    let h = heap(Mode::Concurrent, 128, true);
    let (arr, node) = (common::array_type(&h), node_type(&h));
    let stop = Arc::new(AtomicBool::new(false));
    std::thread::scope(|s| {
        let (h2, stop2) = (h.clone(), stop.clone());
        s.spawn(move || {
            let mut m = h2.attach().unwrap();
            while !stop2.load(Ordering::Relaxed) {
                m.collect().unwrap();
            }
        });
        let mut m = h.attach().unwrap();
        // Roots, bottom to top: array A, a long list, array B. The marker takes B first and
        // A last, so the list keeps the window between them open for a while.
        for a in 0..2 {
            let array = m.alloc(arr, N).unwrap();
            m.push_root(Some(array)).unwrap();
            for i in 0..N {
                let n = m.alloc(node, 0).unwrap();
                let array = m.peek_root(0).unwrap().unwrap();
                // SAFETY: fresh node; item i of a rooted N-item array.
                unsafe {
                    *n.field::<u64>(VALUE) = (a * N + i) as u64;
                    m.write_ref(array, 16 + 8 * i, Some(n));
                }
            }
            if a == 0 {
                build_list(&mut m, node, 300_000);
            }
        }
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut step = 0u64;
        while !step.is_multiple_of(4096) || h.stats().cycles < 12 {
            step += 1;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let (i, j) = ((x % N as u64) as usize, ((x >> 32) % N as u64) as usize);
            let (a, b) = (
                m.peek_root(2).unwrap().unwrap(),
                m.peek_root(0).unwrap().unwrap(),
            );
            // SAFETY: items i and j of the two rooted arrays.
            unsafe {
                let (oa, ob) = (m.read_ref(a, 16 + 8 * i), m.read_ref(b, 16 + 8 * j));
                m.write_ref(a, 16 + 8 * i, ob);
                m.write_ref(b, 16 + 8 * j, oa);
            }
            if step.is_multiple_of(256) {
                m.safepoint().unwrap();
            }
        }
        stop.store(true, Ordering::Relaxed);
        let mut seen = vec![false; 2 * N];
        for d in [0, 2] {
            let a = m.peek_root(d).unwrap().unwrap();
            for i in 0..N {
                // SAFETY: rooted arrays of live nodes.
                let v = unsafe { *m.read_ref(a, 16 + 8 * i).unwrap().field::<u64>(VALUE) };
                assert!(
                    !std::mem::replace(&mut seen[v as usize], true),
                    "node {v} twice"
                );
            }
        }
        assert!(seen.iter().all(|&s| s));
    });
    let s = h.stats();
    assert!(s.cycles >= 2, "cycles {}", s.cycles);
    assert_eq!(s.verify_errors, 0, "{:?}", s.verify_messages);
}

/// Dropping the last heap handle on an attached thread while another thread's collection
/// waits for that thread to stop must not deadlock.
#[test]
fn the_last_heap_handle_may_be_dropped_by_an_attached_thread() {
    let _w = common::Watchdog::new("last_heap_handle", common::TEST_LIMIT);
    let h = heap(Mode::Stw, 16, false);
    let _m = h.attach().unwrap();
    let h2 = h.clone();
    let t = std::thread::spawn(move || {
        let mut mb = h2.attach().unwrap();
        drop(h2);
        while mb.collect().is_ok() {}
    });
    std::thread::sleep(std::time::Duration::from_millis(30));
    drop(h);
    t.join().unwrap();
}
