//! The services a Python VM needs from its collector: weak references, destructors,
//! finalizer queues (with PyPy's ordering), identity, shrinking, memory pressure and
//! collection control. Each check runs in both collector modes with heap verification on.

#[macro_use]
mod common;

use common::{array_type, node_type, NEXT, VALUE};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use tandem::{CollectLevel, Heap, Mode, Mutator, ObjRef, TypeId, TypeInfo};

fn node(m: &mut Mutator, ty: TypeId, value: u64, next: Option<ObjRef>) -> ObjRef {
    m.push_root(next).unwrap();
    let n = m.alloc(ty, 0).unwrap();
    let next = m.pop_root().unwrap();
    // SAFETY: a fresh node: NEXT is its reference, VALUE its payload.
    unsafe {
        n.store_ref(NEXT, next);
        *n.field::<u64>(VALUE) = value;
    }
    n
}

fn value(n: ObjRef) -> u64 {
    // SAFETY: a live node.
    unsafe { *n.field::<u64>(VALUE) }
}

fn a_weakref_is_cleared_when_its_target_dies_and_kept_while_it_lives(mode: Mode) {
    let h = common::heap(mode, 64, true);
    let ty = node_type(&h);
    let mut m = h.attach().unwrap();
    let live = node(&mut m, ty, 1, None);
    m.push_root(Some(live)).unwrap();
    let dead = node(&mut m, ty, 2, None);
    let w_dead = m.weakref_new(Some(dead)).unwrap();
    m.push_root(Some(w_dead)).unwrap();
    let live = m.peek_root(1).unwrap().unwrap();
    let w_live = m.weakref_new(Some(live)).unwrap();
    m.push_root(Some(w_live)).unwrap();
    let w_none = m.weakref_new(None).unwrap();
    assert_eq!(m.weakref_get(w_none).unwrap(), None);
    m.collect().unwrap();
    let w_live = m.peek_root(0).unwrap().unwrap();
    let w_dead = m.peek_root(1).unwrap().unwrap();
    let live = m.peek_root(2).unwrap().unwrap();
    assert_eq!(m.weakref_get(w_live).unwrap(), Some(live));
    assert_eq!(m.weakref_get(w_dead).unwrap(), None, "the target died");
    assert!(
        matches!(m.weakref_get(live), Err(tandem::Error::InvalidArgument(_))),
        "not a weakref"
    );
    let s = h.stats();
    assert!(s.weakrefs_cleared >= 1, "{s:?}");
    assert_eq!(s.verify_errors, 0, "{:?}", s.verify_messages);
}

fn weakrefs_follow_their_targets_when_they_move(mode: Mode) {
    let h = common::compacting_heap(mode);
    let (ty, arr) = (node_type(&h), array_type(&h));
    let mut m = h.attach().unwrap();
    const KEPT: usize = 5_000;
    // Two large (unmoving) arrays: the kept nodes, and a weakref to each.
    let a = m.alloc(arr, KEPT).unwrap();
    m.push_root(Some(a)).unwrap();
    let w = m.alloc(arr, KEPT).unwrap();
    m.push_root(Some(w)).unwrap();
    for i in 0..KEPT * 10 {
        let n = node(&mut m, ty, i as u64, None);
        if i % 10 != 0 {
            continue;
        }
        m.push_root(Some(n)).unwrap();
        let wr = m.weakref_new(Some(n)).unwrap();
        let n = m.pop_root().unwrap().unwrap();
        let (w, a) = (
            m.peek_root(0).unwrap().unwrap(),
            m.peek_root(1).unwrap().unwrap(),
        );
        // SAFETY: item i/10 of each live array.
        unsafe {
            m.write_ref(a, 16 + 8 * (i / 10), Some(n));
            m.write_ref(w, 16 + 8 * (i / 10), Some(wr));
        }
    }
    for _ in 0..3 {
        m.collect().unwrap();
    }
    let (w, a) = (
        m.peek_root(0).unwrap().unwrap(),
        m.peek_root(1).unwrap().unwrap(),
    );
    for i in 0..KEPT {
        // SAFETY: items of the live arrays.
        let (n, wr) = unsafe { (m.read_ref(a, 16 + 8 * i), m.read_ref(w, 16 + 8 * i)) };
        let (n, wr) = (n.unwrap(), wr.unwrap());
        assert_eq!(m.weakref_get(wr).unwrap(), Some(n), "weakref {i}");
        assert_eq!(value(n), (i * 10) as u64);
    }
    let s = h.stats();
    assert!(s.evacuated_objects > 0, "nothing moved: {s:?}");
    assert_eq!(s.verify_errors, 0, "{:?}", s.verify_messages);
}

/// A type whose payload word points at a counter its destructor bumps.
fn counted_type(h: &Heap) -> TypeId {
    unsafe extern "C" fn bump(obj: *mut u8) {
        // SAFETY: objects of this type hold a live `&AtomicUsize` at offset 8.
        unsafe { (*(*(obj.add(8) as *const *const AtomicUsize))).fetch_add(1, Ordering::Relaxed) };
    }
    h.register_type(TypeInfo {
        fixed_size: 16,
        destructor: Some(bump),
        ..Default::default()
    })
    .unwrap()
}

fn destructors_run_once_for_each_dead_object_and_never_for_live_ones(mode: Mode) {
    let h = common::heap(mode, 64, true);
    let (ty, arr) = (counted_type(&h), array_type(&h));
    let count: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
    let mut m = h.attach().unwrap();
    let a = m.alloc(arr, 100).unwrap();
    m.push_root(Some(a)).unwrap();
    for i in 0..1000 {
        let o = m.alloc(ty, 0).unwrap();
        // SAFETY: a fresh object of the counted type.
        unsafe { *o.field::<usize>(8) = count as *const AtomicUsize as usize };
        if i % 10 == 0 {
            let a = m.peek_root(0).unwrap().unwrap();
            // SAFETY: item i/10 of the live array.
            unsafe { m.write_ref(a, 16 + 8 * (i / 10), Some(o)) };
        } else if i % 10 == 1 {
            m.ignore_finalizer(o);
        }
    }
    m.collect().unwrap();
    m.collect().unwrap();
    assert_eq!(count.load(Ordering::Relaxed), 800, "dead and not ignored");
    m.pop_root().unwrap();
    m.collect().unwrap();
    m.collect().unwrap();
    assert_eq!(count.load(Ordering::Relaxed), 900);
    let s = h.stats();
    assert_eq!(s.destructed, 900);
    assert_eq!(s.verify_errors, 0, "{:?}", s.verify_messages);
}

fn finalizer_queue_delivers_in_reference_order_and_keeps_what_they_reach(mode: Mode) {
    let h = common::heap(mode, 64, true);
    let ty = node_type(&h);
    let fired = Arc::new(AtomicUsize::new(0));
    let f = fired.clone();
    let q = h
        .finalizer_queue(Some(Box::new(move || {
            f.fetch_add(1, Ordering::Relaxed);
        })))
        .unwrap();
    let mut m = h.attach().unwrap();
    // a -> b -> c: a and c are finalizable; b is plain.
    let c = node(&mut m, ty, 3, None);
    m.register_finalizer(q, c).unwrap();
    let b = node(&mut m, ty, 2, Some(c));
    let a = node(&mut m, ty, 1, Some(b));
    m.register_finalizer(q, a).unwrap();
    // A weakref to a: cleared before a reaches the queue.
    let w = m.weakref_new(Some(a)).unwrap();
    m.push_root(Some(w)).unwrap();
    m.collect().unwrap();
    m.safepoint().unwrap();
    assert_eq!(
        fired.load(Ordering::Relaxed),
        1,
        "the trigger ran at the poll"
    );
    let w = m.peek_root(0).unwrap().unwrap();
    assert_eq!(m.weakref_get(w).unwrap(), None);
    let a = m.next_dead(q).unwrap().expect("a is delivered");
    assert_eq!(value(a), 1);
    assert_eq!(m.next_dead(q).unwrap(), None, "c waits while a reaches it");
    m.push_root(Some(a)).unwrap();
    m.collect().unwrap();
    let a = m.pop_root().unwrap().unwrap();
    // SAFETY: a and b are live: a is rooted and reaches b.
    let b = unsafe { a.load_ref(NEXT) }.unwrap();
    let c = unsafe { b.load_ref(NEXT) }.unwrap();
    assert_eq!((value(b), value(c)), (2, 3), "kept intact");
    assert_eq!(m.next_dead(q).unwrap(), None, "c is still reachable");
    m.collect().unwrap();
    assert_eq!(m.next_dead(q).unwrap().map(value), Some(3));
    m.collect().unwrap();
    assert_eq!(m.next_dead(q).unwrap(), None, "delivered once");
    let s = h.stats();
    assert_eq!(s.finalized, 2);
    assert_eq!(s.verify_errors, 0, "{:?}", s.verify_messages);
}

fn a_cycle_of_finalizable_objects_is_delivered_together(mode: Mode) {
    let h = common::heap(mode, 64, true);
    let ty = node_type(&h);
    let q = h.finalizer_queue(None).unwrap();
    let mut m = h.attach().unwrap();
    let a = node(&mut m, ty, 1, None);
    m.push_root(Some(a)).unwrap();
    let b = node(&mut m, ty, 2, Some(a));
    let a = m.pop_root().unwrap().unwrap();
    // SAFETY: a is live; an initialising store.
    unsafe { a.store_ref(NEXT, Some(b)) };
    m.register_finalizer(q, a).unwrap();
    m.register_finalizer(q, b).unwrap();
    m.collect().unwrap();
    let mut got = vec![
        m.next_dead(q).unwrap().map(value),
        m.next_dead(q).unwrap().map(value),
    ];
    got.sort();
    assert_eq!(got, vec![Some(1), Some(2)]);
    assert_eq!(m.next_dead(q).unwrap(), None);
}

fn dead_objects_wait_in_their_queue_across_cycles_that_move_objects(mode: Mode) {
    // A concurrent cycle moves the dead objects it delivers after its sweep began, when the
    // block pools are empty: into chunks that sweep does not visit.
    let h = Heap::with_config(tandem::Config {
        heap_min: tandem::ByteSize(16 << 20),
        ..common::config(mode, 256, true)
    })
    .unwrap();
    let ty = node_type(&h);
    let q = h.finalizer_queue(None).unwrap();
    let mut m = h.attach().unwrap();
    let mut registered = 0u64;
    let mut taken = 0u64;
    let mut take = |m: &mut Mutator| {
        while let Some(n) = m.next_dead(q).unwrap() {
            assert_eq!(value(n) >> 32, 0x600d, "a queued object lost its contents");
            taken += 1;
        }
    };
    // The queue is read rarely, so what it holds waits there across several cycles.
    while registered < 200_000 {
        let n = node(&mut m, ty, 0x600d << 32 | registered, None);
        m.register_finalizer(q, n).unwrap();
        registered += 1;
        for _ in 0..50 {
            node(&mut m, ty, u64::MAX, None);
        }
        m.safepoint().unwrap();
        if registered.is_multiple_of(65_536) {
            take(&mut m);
        }
    }
    for _ in 0..2 {
        m.collect().unwrap();
    }
    take(&mut m);
    assert_eq!(
        taken, registered,
        "every registered object is delivered once"
    );
    let s = h.stats();
    assert!(s.evacuated_objects > 0, "nothing moved: {s:?}");
    assert_eq!(s.verify_errors, 0, "{:?}", s.verify_messages);
}

fn an_object_with_an_id_keeps_it_and_never_moves(mode: Mode) {
    let h = common::compacting_heap(mode);
    let (ty, arr) = (node_type(&h), array_type(&h));
    let mut m = h.attach().unwrap();
    const KEPT: usize = 5_000;
    let a = m.alloc(arr, KEPT).unwrap();
    m.push_root(Some(a)).unwrap();
    let mut ids = Vec::new();
    for i in 0..KEPT * 10 {
        let n = node(&mut m, ty, i as u64, None);
        if i % 10 != 0 {
            continue;
        }
        if i % 20 == 0 {
            ids.push((i / 10, m.id(n).unwrap()));
            // SAFETY: a live node.
            assert!(!unsafe { h.can_move(n) });
        }
        let a = m.peek_root(0).unwrap().unwrap();
        // SAFETY: item i/10 of the live array.
        unsafe { m.write_ref(a, 16 + 8 * (i / 10), Some(n)) };
    }
    for _ in 0..3 {
        m.collect().unwrap();
    }
    let a = m.peek_root(0).unwrap().unwrap();
    for (k, id) in ids {
        // SAFETY: item k of the live array.
        let n = unsafe { m.read_ref(a, 16 + 8 * k) }.unwrap();
        assert_eq!(m.id(n).unwrap(), id);
        assert_eq!(n.addr() as u64, id, "an object with an id stays");
    }
    assert!(h.stats().evacuated_objects > 0, "the others moved");
}

fn shrinking_keeps_the_head_and_refuses_to_grow(mode: Mode) {
    let h = common::heap(mode, 64, true);
    let (ty, arr) = (node_type(&h), array_type(&h));
    let mut m = h.attach().unwrap();
    let a = m.alloc(arr, 500).unwrap();
    m.push_root(Some(a)).unwrap();
    for i in 0..500 {
        let n = node(&mut m, ty, i, None);
        let a = m.peek_root(0).unwrap().unwrap();
        // SAFETY: item i of the live array.
        unsafe { m.write_ref(a, 16 + 8 * i as usize, Some(n)) };
    }
    let a = m.peek_root(0).unwrap().unwrap();
    assert_eq!(unsafe { h.size_of(a) }.unwrap(), 16 + 8 * 500);
    assert!(!m.shrink(a, 501).unwrap(), "cannot grow");
    assert!(m.shrink(a, 10).unwrap());
    assert_eq!(unsafe { h.size_of(a) }.unwrap(), 16 + 8 * 10);
    let n = m.alloc(ty, 0).unwrap();
    assert!(!m.shrink(n, 0).unwrap(), "not var-size");
    m.collect().unwrap();
    let a = m.peek_root(0).unwrap().unwrap();
    for i in 0..10 {
        // SAFETY: item i of the live array.
        let n = unsafe { m.read_ref(a, 16 + 8 * i) }.unwrap();
        assert_eq!(value(n), i as u64);
    }
    let s = h.stats();
    assert_eq!(s.verify_errors, 0, "{:?}", s.verify_messages);
}

fn disabled_collection_runs_only_when_asked_and_a_full_heap_fails_cleanly(mode: Mode) {
    let h = common::heap(mode, 32, false);
    let ty = node_type(&h);
    let mut m = h.attach().unwrap();
    m.collect().unwrap();
    h.set_auto_collect(false);
    let cycles = h.stats().cycles;
    // Garbage well past the trigger, well inside the maximum.
    for _ in 0..400_000 {
        m.alloc(ty, 0).unwrap();
    }
    assert_eq!(h.stats().cycles, cycles, "no automatic cycle");
    m.collect().unwrap();
    assert!(h.stats().cycles > cycles, "explicit collections still run");
    // Past the maximum: out of memory, no collection, no hang.
    let oom = (0..3_000_000).find_map(|_| m.alloc(ty, 0).err());
    assert!(
        matches!(oom, Some(tandem::Error::OutOfMemory(_))),
        "{oom:?}"
    );
    h.set_auto_collect(true);
    for _ in 0..100_000 {
        m.alloc(ty, 0).unwrap();
    }
}

fn a_lowered_maximum_holds_though_the_heap_grew_past_it(mode: Mode) {
    let h = common::heap(mode, 32, false);
    let ty = node_type(&h);
    let mut m = h.attach().unwrap();
    // Grow the heap to its maximum with live nodes, then drop them all.
    let fill = |m: &mut Mutator| {
        m.push_root(None).unwrap();
        let mut n = 0usize;
        while let Ok(o) = m.alloc(ty, 0) {
            let head = m.peek_root(0).expect("the list root");
            // SAFETY: a fresh node; an initialising store.
            unsafe { o.store_ref(NEXT, head) };
            assert!(m.set_root(0, Some(o)));
            n += 1;
        }
        m.pop_root().unwrap();
        n * 24
    };
    assert!(fill(&mut m) > 24 << 20, "the heap grew to its maximum");
    m.collect().unwrap();
    h.set_heap_max(8 << 20).unwrap();
    // Its chunks are still committed, idle: they must not take the heap past the new
    // maximum.
    let held = fill(&mut m);
    assert!(held <= 8 << 20, "{held} bytes held under an 8 MiB maximum");
    assert!(h.stats().heap_committed <= 8 << 20, "{:?}", h.stats());
}

fn collection_levels_start_finish_and_run_the_triggers(mode: Mode) {
    let h = common::heap(mode, 64, false);
    let ty = node_type(&h);
    let fired = Arc::new(AtomicBool::new(false));
    let f = fired.clone();
    let q = h
        .finalizer_queue(Some(Box::new(move || f.store(true, Ordering::Relaxed))))
        .unwrap();
    let mut m = h.attach().unwrap();
    let c0 = h.stats().cycles;
    m.collect_ex(CollectLevel::Start).unwrap();
    m.collect_ex(CollectLevel::Finish).unwrap();
    assert!(h.stats().cycles > c0, "the started cycle finished");
    let o = m.alloc(ty, 0).unwrap();
    m.register_finalizer(q, o).unwrap();
    m.collect_ex(CollectLevel::Full).unwrap();
    assert!(
        fired.load(Ordering::Relaxed),
        "a full collection runs the triggers"
    );
    assert!(m.next_dead(q).unwrap().is_some());
}

fn memory_pressure_counts_while_its_owner_lives(mode: Mode) {
    let h = common::heap(mode, 64, false);
    let ty = node_type(&h);
    let mut m = h.attach().unwrap();
    let owner = m.alloc(ty, 0).unwrap();
    m.push_root(Some(owner)).unwrap();
    let c0 = h.stats().cycles;
    m.add_memory_pressure(owner, 256 << 20);
    let dead = m.alloc(ty, 0).unwrap();
    m.add_memory_pressure(dead, 1 << 20);
    // The pressure is past any trigger: a cycle runs without any allocation.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while h.stats().cycles == c0 {
        assert!(std::time::Instant::now() < deadline, "no cycle");
        m.safepoint().unwrap();
        std::thread::yield_now();
    }
    m.collect().unwrap();
    assert_eq!(
        h.stats().memory_pressure,
        256 << 20,
        "the dead owner's share is gone"
    );
    m.pop_root().unwrap();
    m.collect().unwrap();
    assert_eq!(h.stats().memory_pressure, 0);
}

fn torture_mode_collects_at_every_nth_slow_path(mode: Mode) {
    let h = Heap::with_config(tandem::Config {
        torture: 50,
        ..common::config(mode, 64, true)
    })
    .unwrap();
    let ty = node_type(&h);
    let mut m = h.attach().unwrap();
    let mut list = None;
    for i in 0..2_000 {
        list = Some(node(&mut m, ty, i, list));
        m.push_root(list).unwrap();
        m.safepoint().unwrap();
        list = m.pop_root().unwrap();
    }
    let mut n = 0;
    while let Some(o) = list {
        n += 1;
        // SAFETY: a live node.
        list = unsafe { m.read_ref(o, NEXT) };
    }
    assert_eq!(n, 2_000);
    // Stop-the-world mode waits for each collection; concurrent mode only starts cycles
    // (requests made while one runs join it): polls alone keep starting them.
    if mode == Mode::Stw {
        assert!(h.stats().cycles >= 40, "{} cycles", h.stats().cycles);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while h.stats().cycles < 45 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} cycles",
            h.stats().cycles
        );
        m.safepoint().unwrap();
    }
    let s = h.stats();
    assert_eq!(s.verify_errors, 0, "{:?}", s.verify_messages);
}

fn the_gc_hook_sees_each_pause_and_cycle_on_the_mutator_thread(mode: Mode) {
    use tandem::refs::hooks::GcEventKind;
    use tandem::PauseKind;
    let h = common::heap(mode, 64, false);
    let ty = node_type(&h);
    type Seen = (GcEventKind, u64, u64, std::thread::ThreadId);
    let seen: Arc<std::sync::Mutex<Vec<Seen>>> = Arc::default();
    let s = seen.clone();
    h.set_gc_hook(Some(Box::new(move |e| {
        let me = std::thread::current().id();
        s.lock().unwrap().push((e.kind, e.cycle, e.allocated, me));
    })));
    let mut m = h.attach().unwrap();
    for _ in 0..10_000 {
        m.alloc(ty, 0).unwrap();
    }
    m.collect().unwrap();
    m.safepoint().unwrap();
    let seen = seen.lock().unwrap();
    let me = std::thread::current().id();
    assert!(seen.iter().all(|e| e.3 == me), "on this mutator's thread");
    let (kind, cycle, allocated, _) = *seen.last().expect("events");
    assert_eq!(kind, GcEventKind::Cycle);
    assert!(allocated > 0);
    let pauses: Vec<GcEventKind> = seen
        .iter()
        .filter(|e| e.1 == cycle && e.0 != GcEventKind::Cycle)
        .map(|e| e.0)
        .collect();
    let expected = match mode {
        Mode::Stw => vec![GcEventKind::Pause(PauseKind::StwCollection)],
        Mode::Concurrent => vec![
            GcEventKind::Pause(PauseKind::InitMark),
            GcEventKind::Pause(PauseKind::FinalMark),
        ],
    };
    assert_eq!(pauses, expected);
}

fn roots_can_be_walked_and_the_heap_dumped_with_the_world_stopped(mode: Mode) {
    let h = common::heap(mode, 64, false);
    let ty = node_type(&h);
    let mut m = h.attach().unwrap();
    let mut list = None;
    for i in 0..100 {
        list = Some(node(&mut m, ty, i, list));
    }
    m.push_root(list).unwrap();
    // A large array of distinct nodes, which walks read a slice at a time.
    let items = 2053;
    let arr = m.alloc(array_type(&h), items).unwrap();
    m.push_root(Some(arr)).unwrap();
    for i in 0..items {
        let n = node(&mut m, ty, 1000 + i as u64, None);
        let arr = m.peek_root(0).unwrap().unwrap();
        // SAFETY: item i of the rooted array (items from offset 16).
        unsafe { m.write_ref(arr, 16 + 8 * i, Some(n)) };
    }
    for _ in 0..50_000 {
        m.alloc(ty, 0).unwrap();
    }
    let head = m.peek_root(1).unwrap().unwrap();
    let mut holds_head = false;
    // SAFETY: root slots are readable during the walk.
    h.walk_roots(|s| holds_head |= unsafe { s.read() } == head.as_ptr())
        .unwrap();
    assert!(holds_head, "the shadow-stack slot is among the roots");
    let mut out = Vec::new();
    h.dump_heap(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("# tandem heap dump"));
    let nodes: Vec<Vec<&str>> = lines
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .filter(|f| f[1] == ty.0.to_string())
        .collect();
    assert_eq!(
        nodes.len(),
        100 + items,
        "the list and the array's nodes, not the garbage"
    );
    assert!(nodes.iter().all(|f| f[2] == "24"));
    assert_eq!(
        nodes.iter().filter(|f| f.len() == 4).count(),
        99,
        "all but the tail refer"
    );
    let arrays: Vec<&str> = text
        .lines()
        .skip(1)
        .filter(|l| l.split(' ').count() > 4)
        .collect();
    assert_eq!(arrays.len(), 1);
    assert_eq!(arrays[0].split(' ').count(), 3 + items, "every item listed");
}

fn a_cycle_can_be_driven_one_phase_at_a_time(mode: Mode) {
    use tandem::collector::step::Phase;
    let h = common::heap(mode, 64, true);
    let ty = node_type(&h);
    let mut m = h.attach().unwrap();
    let c0 = h.stats().cycles;
    let phases: Vec<Phase> = match mode {
        Mode::Stw => vec![m.collect_step().unwrap()],
        Mode::Concurrent => (0..3).map(|_| m.collect_step().unwrap()).collect(),
    };
    let expected = match mode {
        Mode::Stw => vec![Phase::Idle],
        Mode::Concurrent => vec![Phase::Marking, Phase::Sweeping, Phase::Idle],
    };
    assert_eq!(phases, expected);
    assert_eq!(h.stats().cycles, c0 + 1);
    // Stepping ended with the cycle: the next ones start and end on their own.
    m.push_root(None).unwrap();
    while h.stats().cycles < c0 + 3 {
        let n = m.alloc(ty, 0).unwrap();
        m.set_root(0, Some(n));
    }
    m.pop_root().unwrap();
    // (Held at their first boundary, they ended only when the heap filled up.)
    assert!(h.stats().heap_peak < 48 << 20, "{:?}", h.stats());
    m.collect_ex(CollectLevel::Finish).unwrap();
    if mode == Mode::Concurrent {
        // Left mid-cycle, the program runs on, and any wait for the collector ends it.
        assert_eq!(m.collect_step().unwrap(), Phase::Marking);
        for _ in 0..10_000 {
            m.alloc(ty, 0).unwrap();
        }
        m.collect().unwrap();
        assert!(h.stats().cycles >= c0 + 3);
        // Left mid-cycle again, the cycle goes on once the heap reaches its limit, and the
        // next ones run on their own: 160 MB of garbage in a 64 MB heap, with no wait.
        let arr = array_type(&h);
        let before = h.stats().cycles;
        assert_eq!(m.collect_step().unwrap(), Phase::Marking);
        for _ in 0..20_000 {
            m.alloc(arr, 1000).unwrap();
        }
        let s = h.stats();
        assert!(s.cycles >= before + 2, "{s:?}");
        // (Held there, it ended only when the heap filled up, and allocations failed.)
        assert!(s.heap_peak < 56 << 20 && s.out_of_memory == 0, "{s:?}");
    }
    assert_eq!(h.stats().verify_errors, 0);
}

/// Item `i`'s offset in an [`array_type`] object.
fn item(i: usize) -> usize {
    16 + 8 * i
}

/// Reference `i` of the array at root depth `depth`.
fn load_item(m: &mut Mutator, depth: usize, i: usize) -> Option<ObjRef> {
    let a = m.peek_root(depth).unwrap().unwrap();
    // SAFETY: a live array of at least i + 1 references.
    unsafe { m.read_ref(a, item(i)) }
}

/// Stores `v` as reference `i` of the array at root depth `depth`.
fn store_item(m: &mut Mutator, depth: usize, i: usize, v: Option<ObjRef>) {
    let a = m.peek_root(depth).unwrap().unwrap();
    // SAFETY: a live array of at least i + 1 references.
    unsafe { m.write_ref(a, item(i), v) };
}

/// A verified 64 MiB heap under the torture setting that moves objects as often as it
/// can, with the node and array types and a finalizer queue without a trigger.
fn torture_heap(mode: Mode) -> (Heap, TypeId, TypeId, u32) {
    let h = Heap::with_config(tandem::Config {
        evacuate_all: true,
        ..common::config(mode, 64, true)
    })
    .unwrap();
    let (ty, arr) = (node_type(&h), array_type(&h));
    let q = h.finalizer_queue(None).unwrap();
    (h, ty, arr, q)
}

fn weak_loads_while_weak_slots_are_settled_see_them_settled(mode: Mode) {
    use tandem::collector::step::Phase;
    // The torture setting leaves weak slots to be settled after the final-mark pause at every
    // cycle (`refs::weak::Window`), and stepping holds the collector there: loads made then
    // find the slots as the pause left them and must judge them as the settling will.
    let (h, ty, arr, q) = torture_heap(mode);
    let mut m = h.attach().unwrap();
    const N: usize = 256;
    const ROUNDS: usize = 6;
    // Roots, from the top: the even targets (0), the weakrefs (1). Each round gives the
    // odd weakrefs fresh targets, finalizable and only weakly held.
    let (strong, weaks) = (0, 1);
    for _ in 0..2 {
        let a = m.alloc(arr, N).unwrap();
        m.push_root(Some(a)).unwrap();
    }
    let mut delivered = 0;
    for round in 0..ROUNDS {
        for i in (0..N).filter(|i| round == 0 || i % 2 == 1) {
            let n = node(&mut m, ty, i as u64, None);
            if i % 2 == 1 {
                m.register_finalizer(q, n).unwrap();
            }
            m.push_root(Some(n)).unwrap();
            let w = m.weakref_new(Some(n)).unwrap();
            let n = m.pop_root().unwrap();
            store_item(&mut m, weaks, i, Some(w));
            if i % 2 == 0 {
                store_item(&mut m, strong, i, n);
            }
        }
        let mut phase = m.collect_step().unwrap();
        if phase == Phase::Marking {
            phase = m.collect_step().unwrap();
            assert_eq!(phase, Phase::Sweeping);
        }
        // Concurrent mode: after the final-mark pause, before any slot is settled (the
        // objects moved, the odd ones died); stw mode: after the collection.
        for i in 0..N {
            let w = load_item(&mut m, weaks, i).unwrap();
            let got = m.weakref_get(w).unwrap();
            if i % 2 == 0 {
                let held = load_item(&mut m, strong, i);
                assert_eq!(got, held, "round {round}: a held target reads as itself");
                assert_eq!(got.map(value), Some(i as u64));
            } else {
                assert_eq!(got, None, "round {round}: target {i} died");
            }
        }
        // A weakref made now, to an object allocated now, is not being settled.
        let fresh = node(&mut m, ty, 7, None);
        m.push_root(Some(fresh)).unwrap();
        let w = m.weakref_new(Some(fresh)).unwrap();
        let fresh = m.pop_root().unwrap();
        assert_eq!(
            m.weakref_get(w).unwrap(),
            fresh,
            "round {round}: a fresh target"
        );
        while phase != Phase::Idle {
            phase = m.collect_step().unwrap();
        }
        while let Some(d) = m.next_dead(q).unwrap() {
            let i = value(d) as usize;
            let w = load_item(&mut m, weaks, i).unwrap();
            assert_eq!(
                m.weakref_get(w).unwrap(),
                None,
                "{i}: delivered, not cleared"
            );
            delivered += 1;
        }
    }
    let s = h.stats();
    assert_eq!(delivered, ROUNDS * N / 2, "{s:?}");
    assert!(s.evacuated_objects > 0, "the torture setting moves objects");
    assert_eq!(s.verify_errors, 0, "{:?}", s.verify_messages);
}

fn dead_objects_taken_from_a_queue_while_marking_runs_stay_intact(mode: Mode) {
    use tandem::collector::step::Phase;
    // A concurrent cycle marks the ready lists after its init-mark pause, not in it: an
    // object the program takes before that must be kept by the cycle all the same (and,
    // with objects moving, handed out as its copy).
    let (h, ty, arr, q) = torture_heap(mode);
    let mut m = h.attach().unwrap();
    const N: usize = 300;
    let a = m.alloc(arr, N).unwrap();
    m.push_root(Some(a)).unwrap();
    for i in 0..N {
        // Each dead object reaches a second node, which must survive with it.
        let tail = node(&mut m, ty, 1000 + i as u64, None);
        let n = node(&mut m, ty, i as u64, Some(tail));
        m.register_finalizer(q, n).unwrap();
    }
    m.collect().unwrap();
    let mut phase = m.collect_step().unwrap();
    // Concurrent mode: held after the init-mark pause, before the ready list is marked.
    // Each object taken goes into a node allocated now, which is black (never traced by
    // this cycle): nothing but the taking itself can keep it alive.
    let mut taken = 0;
    while let Some(d) = m.next_dead(q).unwrap() {
        let i = value(d) as usize;
        let holder = node(&mut m, ty, 0, Some(d));
        store_item(&mut m, 0, i, Some(holder));
        taken += 1;
        if taken == N / 2 {
            break;
        }
    }
    while phase != Phase::Idle {
        phase = m.collect_step().unwrap();
    }
    while let Some(d) = m.next_dead(q).unwrap() {
        let i = value(d) as usize;
        let holder = node(&mut m, ty, 0, Some(d));
        store_item(&mut m, 0, i, Some(holder));
        taken += 1;
    }
    assert_eq!(taken, N);
    for _ in 0..3 {
        m.collect().unwrap();
    }
    for i in 0..N {
        let holder = load_item(&mut m, 0, i).expect("every object was taken");
        // SAFETY: a live node.
        let d = unsafe { m.read_ref(holder, NEXT) }.expect("the holder holds it");
        assert_eq!(value(d), i as u64);
        // SAFETY: a live node.
        let tail = unsafe { m.read_ref(d, NEXT) }.expect("what it reaches survived");
        assert_eq!(value(tail), 1000 + i as u64);
    }
    let s = h.stats();
    assert!(s.evacuated_objects > 0, "the torture setting moves objects");
    assert_eq!(s.verify_errors, 0, "{:?}", s.verify_messages);
}

in_both_modes!(
    a_cycle_can_be_driven_one_phase_at_a_time,
    roots_can_be_walked_and_the_heap_dumped_with_the_world_stopped,
    the_gc_hook_sees_each_pause_and_cycle_on_the_mutator_thread,
    a_weakref_is_cleared_when_its_target_dies_and_kept_while_it_lives,
    weakrefs_follow_their_targets_when_they_move,
    destructors_run_once_for_each_dead_object_and_never_for_live_ones,
    finalizer_queue_delivers_in_reference_order_and_keeps_what_they_reach,
    a_cycle_of_finalizable_objects_is_delivered_together,
    dead_objects_wait_in_their_queue_across_cycles_that_move_objects,
    an_object_with_an_id_keeps_it_and_never_moves,
    shrinking_keeps_the_head_and_refuses_to_grow,
    disabled_collection_runs_only_when_asked_and_a_full_heap_fails_cleanly,
    a_lowered_maximum_holds_though_the_heap_grew_past_it,
    collection_levels_start_finish_and_run_the_triggers,
    memory_pressure_counts_while_its_owner_lives,
    torture_mode_collects_at_every_nth_slow_path,
    weak_loads_while_weak_slots_are_settled_see_them_settled,
    dead_objects_taken_from_a_queue_while_marking_runs_stay_intact,
);
