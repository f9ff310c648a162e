//! Heap verification (`Config::verify`) reports each class of heap corruption by message in
//! the statistics, and the process survives it: the corrupt data is never followed. Each
//! check runs in both collector modes.

#[macro_use]
mod common;

use common::{node_type, NEXT};
use tandem::{Heap, Mode, Mutator, ObjRef, Stats, TypeId};
/// Pointer array: header | length | items (refs).
const LENGTH: usize = 8;

/// A verifying 32 MiB heap.
fn heap(mode: Mode) -> Heap {
    common::heap(mode, 32, true)
}

/// Collects once with a sound heap (no finding), so that what follows is freed and poisoned.
fn collect_clean(h: &Heap, m: &mut Mutator) {
    m.collect().unwrap();
    let s = h.stats();
    assert_eq!(s.verify_errors, 0, "{:?}", s.verify_messages);
}

/// Collects (the mutator waits for the whole cycle, sweep included) and returns the stats.
fn collect(h: &Heap, m: &mut Mutator) -> Stats {
    m.collect().unwrap();
    h.stats()
}

/// Asserts that some verification message contains every one of `parts`.
fn assert_reported(s: &Stats, parts: &[&str]) {
    assert!(s.verify_errors > 0, "nothing reported");
    assert!(
        s.verify_messages
            .iter()
            .any(|m| parts.iter().all(|p| m.contains(p))),
        "no message with {parts:?} in {:#?}",
        s.verify_messages
    );
}

/// Allocates `bytes` of unreachable nodes.
fn garbage(m: &mut Mutator, ty: TypeId, bytes: usize) {
    for _ in 0..bytes / 24 {
        m.alloc(ty, 0).unwrap();
    }
}

fn corrupt_array_lengths_are_reported_not_followed(mode: Mode) {
    let h = heap(mode);
    let arr = common::array_type(&h);
    let mut m = h.attach().unwrap();
    // Two small arrays (in a block) and a large one (in the large-object space).
    for items in [4, 4, 2000] {
        let a = m.alloc(arr, items).unwrap();
        m.push_root(Some(a)).unwrap();
    }
    collect_clean(&h, &mut m);
    let (big, small2, small1) = (
        m.peek_root(0).unwrap().unwrap(),
        m.peek_root(1).unwrap().unwrap(),
        m.peek_root(2).unwrap().unwrap(),
    );
    // SAFETY (deliberately wrong use): the length fields of live arrays are overwritten;
    // the collector must not trust them.
    unsafe {
        *small1.field::<usize>(LENGTH) = usize::MAX / 4;
        *small2.field::<usize>(LENGTH) = 10_000;
        *big.field::<usize>(LENGTH) = 1 << 20;
    }
    let s = collect(&h, &mut m);
    let (a1, a2, a3) = (
        format!("{:#x}", small1.addr()),
        format!("{:#x}", small2.addr()),
        format!("{:#x}", big.addr()),
    );
    assert_reported(&s, &[&a1, "whose size overflows", "corrupt length"]);
    assert_reported(&s, &[&a2, "length 10000", "run past its block"]);
    assert_reported(
        &s,
        &[&a3, "length 1048576", "run past its large-object run"],
    );
}

fn a_dangling_reference_into_a_freed_line_is_reported(mode: Mode) {
    let h = heap(mode);
    let node = node_type(&h);
    let mut m = h.attach().unwrap();
    let holder = m.alloc(node, 0).unwrap();
    // Pinned: the messages name it by address, and a sparse block's objects move.
    m.pin(holder).unwrap();
    m.push_root(Some(holder)).unwrap();
    // Lines are 256 bytes: the garbage keeps the target off the holder's line.
    garbage(&mut m, node, 1024);
    let target = m.alloc(node, 0).unwrap().addr();
    garbage(&mut m, node, 1024);
    collect_clean(&h, &mut m);
    let holder = m.peek_root(0).unwrap().unwrap();
    // SAFETY (deliberately wrong use): a reference to a freed object, stored while no
    // collection runs (collect() returned after the sweep), so no barrier is needed.
    unsafe { holder.store_ref(NEXT, ObjRef::from_addr(target)) };
    let s = collect(&h, &mut m);
    let field = format!("field +{NEXT} of object {:#x}", holder.addr());
    let reference = format!("reference {target:#x}");
    assert_reported(&s, &[&reference, &field, "points into free line"]);
}

fn an_overwritten_header_is_reported(mode: Mode) {
    let h = heap(mode);
    let node = node_type(&h);
    let mut m = h.attach().unwrap();
    let holder = m.alloc(node, 0).unwrap();
    // Pinned: the messages name them by address, and a sparse block's objects move.
    m.pin(holder).unwrap();
    m.push_root(Some(holder)).unwrap();
    let victim = m.alloc(node, 0).unwrap();
    m.pin(victim).unwrap();
    let holder = m.peek_root(0).unwrap().unwrap();
    // SAFETY: both nodes are fresh; NEXT is a reference field.
    unsafe { holder.store_ref(NEXT, Some(victim)) };
    collect_clean(&h, &mut m);
    // SAFETY (deliberately wrong use): the header word of a live node gets a type id that
    // was never registered.
    unsafe {
        victim
            .header()
            .store(0xDEAD_BEEF_0000_0000, std::sync::atomic::Ordering::Relaxed)
    };
    let s = collect(&h, &mut m);
    let found = format!("field +{NEXT} of object {:#x}", holder.addr());
    let obj = format!("{:#x}", victim.addr());
    assert_reported(
        &s,
        &[&obj, &found, "unknown type id 0xdeadbeef", "corrupt header"],
    );
}

fn a_write_into_a_freed_large_object_is_reported(mode: Mode) {
    let h = heap(mode);
    let arr = common::array_type(&h);
    let mut m = h.attach().unwrap();
    let big = m.alloc(arr, 4096).unwrap().addr();
    collect_clean(&h, &mut m);
    // SAFETY (deliberately wrong use): under verification freed large-object memory stays
    // committed and poisoned until reused, so this write lands in poison, not in a hole.
    unsafe { *((big + 64) as *mut u64) = 42 };
    let s = collect(&h, &mut m);
    let run = format!("freed large object memory {big:#x}");
    assert_reported(
        &s,
        &[&run, "written after it was freed", "word 8", "is 0x2a"],
    );
}

fn a_dangling_reference_to_a_freed_large_object_is_reported(mode: Mode) {
    let h = heap(mode);
    let (node, arr) = (node_type(&h), common::array_type(&h));
    let mut m = h.attach().unwrap();
    let holder = m.alloc(node, 0).unwrap();
    m.push_root(Some(holder)).unwrap();
    let big = m.alloc(arr, 4096).unwrap().addr();
    collect_clean(&h, &mut m);
    let holder = m.peek_root(0).unwrap().unwrap();
    // SAFETY (deliberately wrong use): a reference to a freed large object.
    unsafe { holder.store_ref(NEXT, ObjRef::from_addr(big)) };
    let s = collect(&h, &mut m);
    let reference = format!("reference {big:#x}");
    assert_reported(&s, &[&reference, "points into a freed large object"]);
}

/// The concurrent sweep runs alongside the mutators, so its result is checked at the next
/// init-mark pause: an array whose length grew over lines the sweep freed is found there,
/// before marking stamps those lines again.
#[test]
fn an_object_on_lines_the_concurrent_sweep_freed_is_reported_at_the_next_init_mark() {
    let _w = common::Watchdog::new("init_mark_sweep_check", common::TEST_LIMIT);
    let h = heap(Mode::Concurrent);
    let (node, arr) = (node_type(&h), common::array_type(&h));
    let mut m = h.attach().unwrap();
    let a = m.alloc(arr, 4).unwrap();
    m.push_root(Some(a)).unwrap();
    garbage(&mut m, node, 2048);
    collect_clean(&h, &mut m);
    let a = m.peek_root(0).unwrap().unwrap();
    // SAFETY (deliberately wrong use): a plausible length (the array still fits its block)
    // that covers lines freed by the sweep.
    unsafe { *a.field::<usize>(LENGTH) = 100 };
    let s = collect(&h, &mut m);
    let obj = format!("reachable object {:#x}", a.addr());
    assert_reported(
        &s,
        &[&obj, "that the last sweep did not keep (line mark 0)"],
    );
}

/// Evacuation updates every reachable reference before the collection set's blocks are
/// recycled; the final-mark verification finds one that was not (a VM store that bypassed
/// the barriers with an address it kept from before the move).
#[test]
fn a_reference_to_a_moved_objects_old_copy_is_reported_before_its_block_is_recycled() {
    use tandem::collector::step::Phase;
    let _w = common::Watchdog::new("stale_copy_check", common::TEST_LIMIT);
    let h = common::compacting_heap(Mode::Concurrent);
    let (node, arr) = (node_type(&h), common::array_type(&h));
    let mut m = h.attach().unwrap();
    // One node in ten kept (in a large, unmoving array): every block is sparse.
    let kept = 2_000;
    let a = m.alloc(arr, kept).unwrap();
    m.push_root(Some(a)).unwrap();
    for i in 0..kept * 10 {
        let n = m.alloc(node, 0).unwrap();
        if i % 10 == 0 {
            let a = m.peek_root(0).unwrap().unwrap();
            // SAFETY: item i / 10 of the live array; n is live.
            unsafe { m.write_ref(a, 16 + 8 * (i / 10), Some(n)) };
        }
    }
    collect_clean(&h, &mut m);
    let a = m.peek_root(0).unwrap().unwrap();
    // SAFETY: item 0 of the live array, read before the move (no set exists yet).
    let old = unsafe { m.read_ref(a, 16) }.unwrap().addr();
    // Init mark chooses the set; the cycle waits at the boundary.
    assert_eq!(m.collect_step().unwrap(), Phase::Marking);
    // SAFETY: as above; the load barrier copies the node out of the set.
    let new = unsafe { m.read_ref(a, 16) }.unwrap().addr();
    assert_ne!(new, old, "the sparse block's node did not move");
    let holder = m.alloc(node, 0).unwrap();
    m.push_root(Some(holder)).unwrap();
    // SAFETY (deliberately wrong use): a raw store of the address kept from before the move.
    unsafe { *holder.field::<usize>(NEXT) = old };
    assert_eq!(m.collect_step().unwrap(), Phase::Sweeping);
    let s = h.stats();
    let what = format!(
        "reference {old:#x} in field +8 of object {:#x}",
        holder.addr()
    );
    let moved = format!("is the old copy of an object that moved to {new:#x}");
    assert_reported(&s, &[&what, &moved]);
    // Forget the dangling reference before the set's blocks are recycled.
    m.pop_root().unwrap();
    assert_eq!(m.collect_step().unwrap(), Phase::Idle);
}

in_both_modes!(
    corrupt_array_lengths_are_reported_not_followed,
    a_dangling_reference_into_a_freed_line_is_reported,
    an_overwritten_header_is_reported,
    a_write_into_a_freed_large_object_is_reported,
    a_dangling_reference_to_a_freed_large_object_is_reported,
);
