//! The young generation (`TANDEM_GENERATIONAL`): nursery cycles keep every young object
//! reachable only through an old one that the REMEMBER barrier recorded, leave old garbage
//! for the full cycle, and the verifier catches a store that went around the barrier.
//! Each check runs in both collector modes, with heap verification on.

#[macro_use]
mod common;

use common::{list_values, node_type, NEXT, VALUE};
use tandem::collector::step::Phase;
use tandem::{CollectLevel, Config, Heap, Mode, Mutator, ObjRef, TypeId};

fn generational_heap(mode: Mode) -> Heap {
    Heap::with_config(Config {
        generational: true,
        ..common::config(mode, 64, true)
    })
    .unwrap()
}

/// A node with payload `v`.
fn node(m: &mut Mutator, ty: TypeId, v: u64) -> ObjRef {
    let n = m.alloc(ty, 0).unwrap();
    // SAFETY: a fresh node; VALUE is its payload word.
    unsafe { *n.field::<u64>(VALUE) = v };
    n
}

/// Roots a node with payload 0 at depth 0 and makes it old (a full cycle marks it).
fn root_old_node(m: &mut Mutator, ty: TypeId) {
    let old = node(m, ty, 0);
    m.push_root(Some(old)).unwrap();
    m.collect().unwrap();
}

/// Garbage to reuse the lines a nursery cycle frees (poisoned under verification).
fn churn(m: &mut Mutator, ty: TypeId, n: usize) {
    for i in 0..n {
        node(m, ty, i as u64);
    }
}

fn young_objects_reachable_only_from_old_ones_survive_nursery_cycles(mode: Mode) {
    let h = generational_heap(mode);
    let ty = node_type(&h);
    let mut m = h.attach().unwrap();
    root_old_node(&mut m, ty);
    // A chain hung off the old node one young node per nursery cycle: each store goes
    // into a node that the cycle before made old.
    for i in 1..=8u64 {
        let mut tail = m.peek_root(0).unwrap().unwrap();
        // SAFETY: live nodes of the rooted list.
        while let Some(next) = unsafe { m.read_ref(tail, NEXT) } {
            tail = next;
        }
        let young = node(&mut m, ty, i);
        // SAFETY: tail is a live node; NEXT is its reference field.
        unsafe { m.write_ref(tail, NEXT, Some(young)) };
        churn(&mut m, ty, 20_000);
        m.collect_ex(CollectLevel::Young).unwrap();
        churn(&mut m, ty, 20_000);
        m.collect_ex(CollectLevel::Young).unwrap();
        assert_eq!(list_values(&mut m), (0..=i).collect::<Vec<_>>());
    }
    let s = h.stats();
    assert!(
        s.nursery_cycles >= 16,
        "{} nursery cycles",
        s.nursery_cycles
    );
    assert_eq!(s.verify_errors, 0, "{:?}", s.verify_messages);
}

fn old_garbage_waits_for_the_full_cycle(mode: Mode) {
    let h = generational_heap(mode);
    let ty = node_type(&h);
    let mut m = h.attach().unwrap();
    m.push_root(None).unwrap();
    for i in 0..50_000u64 {
        let n = node(&mut m, ty, i);
        let head = m.peek_root(0).unwrap();
        // SAFETY: a fresh node; NEXT is its reference field.
        unsafe { m.write_ref(n, NEXT, head) };
        m.pop_root().unwrap();
        m.push_root(Some(n)).unwrap();
    }
    m.collect().unwrap();
    let with_list = h.stats().heap_live;
    m.pop_root().unwrap();
    m.push_root(None).unwrap();
    m.collect_ex(CollectLevel::Young).unwrap();
    let after_young = h.stats().heap_live;
    assert!(
        after_young >= with_list * 9 / 10,
        "a nursery cycle keeps the old list: {after_young} of {with_list} bytes"
    );
    m.collect().unwrap();
    let after_full = h.stats().heap_live;
    assert!(
        after_full < with_list / 4,
        "the full cycle frees it: {after_full} of {with_list} bytes"
    );
    let s = h.stats();
    assert_eq!(s.verify_errors, 0, "{:?}", s.verify_messages);
}

fn a_store_around_the_remember_barrier_is_reported(mode: Mode) {
    let h = generational_heap(mode);
    let ty = node_type(&h);
    let mut m = h.attach().unwrap();
    root_old_node(&mut m, ty);
    let old = m.peek_root(0).unwrap().unwrap();
    let young = node(&mut m, ty, 1);
    // The bug under test: a raw store into an old object, with no barrier.
    // SAFETY: old is a live node; NEXT is its reference field.
    unsafe { old.store_ref(NEXT, Some(young)) };
    m.collect_ex(CollectLevel::Young).unwrap();
    let s = h.stats();
    assert!(
        s.verify_messages
            .iter()
            .any(|msg| msg.contains("not in the remembered set")),
        "{:?}",
        s.verify_messages
    );
}

fn a_large_object_allocated_during_marking_stays_young_and_is_kept(mode: Mode) {
    let h = generational_heap(mode);
    let ty = node_type(&h);
    let arr = common::array_type(&h);
    let mut m = h.attach().unwrap();
    root_old_node(&mut m, ty);
    // Into the marking of a cycle (concurrent mode; stw runs the whole cycle in one step).
    let first = m.collect_step().unwrap();
    let big = m.alloc(arr, 4096).unwrap();
    let leaf = node(&mut m, ty, 7);
    // SAFETY: item 0 of a fresh 4096-item reference array.
    unsafe { m.write_ref(big, 16, Some(leaf)) };
    let old = m.peek_root(0).unwrap().unwrap();
    // SAFETY: old is a live node; NEXT is its reference field.
    unsafe { m.write_ref(old, NEXT, Some(big)) };
    if first != Phase::Idle {
        while m.collect_step().unwrap() != Phase::Idle {}
    }
    for _ in 0..3 {
        churn(&mut m, ty, 20_000);
        m.collect_ex(CollectLevel::Young).unwrap();
    }
    let old = m.peek_root(0).unwrap().unwrap();
    // SAFETY: live objects reached from the rooted node.
    let big = unsafe { m.read_ref(old, NEXT) }.expect("the array is kept");
    // SAFETY: as above.
    let leaf = unsafe { m.read_ref(big, 16) }.expect("and so is what it refers to");
    // SAFETY: a live node.
    assert_eq!(unsafe { *leaf.field::<u64>(VALUE) }, 7);
    m.collect().unwrap();
    let s = h.stats();
    assert_eq!(s.verify_errors, 0, "{:?}", s.verify_messages);
}

/// An old object P reachable only from a dead young finalizable object E, with a weakref
/// to P: a nursery cycle, which counts P live, must not deliver E (its finalizer would
/// reach P while the weakref still hands P out); the next full cycle clears the weakref,
/// then delivers E.
fn a_nursery_cycle_leaves_finalizable_objects_to_the_full_cycle(mode: Mode) {
    let h = generational_heap(mode);
    let ty = node_type(&h);
    let q = h.finalizer_queue(None).unwrap();
    let mut m = h.attach().unwrap();
    let p = node(&mut m, ty, 42);
    m.push_root(Some(p)).unwrap();
    let w = m.weakref_new(Some(p)).unwrap();
    m.push_root(Some(w)).unwrap();
    m.collect().unwrap(); // P and the weakref are old now.
    let e = node(&mut m, ty, 7);
    let p = m.peek_root(1).unwrap().unwrap();
    // SAFETY: e is a fresh node; NEXT is its reference field.
    unsafe { m.write_ref(e, NEXT, Some(p)) };
    m.register_finalizer(q, e).unwrap();
    assert!(m.set_root(1, None)); // P is reachable only from E, E from nothing.
    churn(&mut m, ty, 20_000);
    m.collect_ex(CollectLevel::Young).unwrap();
    let w = m.peek_root(0).unwrap().unwrap();
    let delivered = m.next_dead(q).unwrap();
    let target = m.weakref_get(w).unwrap();
    assert!(
        delivered.is_none(),
        "a nursery cycle delivered E while the weakref to P (which E reaches) gave {target:?}"
    );
    assert!(target.is_some(), "P counts as live in a nursery cycle");
    m.collect_ex(CollectLevel::Young).unwrap();
    assert!(
        m.next_dead(q).unwrap().is_none(),
        "nor does a second nursery cycle"
    );
    m.collect().unwrap();
    let w = m.peek_root(0).unwrap().unwrap();
    assert_eq!(
        m.weakref_get(w).unwrap(),
        None,
        "the full cycle cleared the weakref"
    );
    let e = m.next_dead(q).unwrap().expect("and delivered E");
    // SAFETY: a delivered object is live until the VM drops it; P is kept with it.
    let p = unsafe { m.read_ref(e, NEXT) }.expect("E still reaches P");
    // SAFETY: as above.
    assert_eq!(unsafe { *p.field::<u64>(VALUE) }, 42);
    let s = h.stats();
    assert!(s.nursery_cycles >= 1, "{} nursery cycles", s.nursery_cycles);
    assert_eq!(s.verify_errors, 0, "{:?}", s.verify_messages);
}

in_both_modes!(
    a_nursery_cycle_leaves_finalizable_objects_to_the_full_cycle,
    a_large_object_allocated_during_marking_stays_young_and_is_kept,
    young_objects_reachable_only_from_old_ones_survive_nursery_cycles,
    old_garbage_waits_for_the_full_cycle,
    a_store_around_the_remember_barrier_is_reported,
);
