//! Loom models of evacuation's races (`tandem::object::forward`): the copy race over one
//! object's header, and the repair of a field against a mutator's store.
//!
//! Copies are loom cells: a reader that could see a forwarding pointer before the copy's
//! bytes (the bug the release CAS and acquire loads prevent) makes loom report the
//! unsynchronised access.
#![cfg(loom)]

use loom::sync::atomic::AtomicU64;
use loom::sync::Arc;
use tandem::object::forward::{self, forwardee, Copier, Evacuated};
use tandem::sync::{Ordering, UnsafeCell};

/// The object's type word, and the payload every copy must carry.
const HEADER: u64 = 7 << 32;
const PAYLOAD: u64 = 42;
/// The copies' addresses: copier `i` copies to `BASE + 8 * i`.
const BASE: usize = 0x1000;

struct World {
    header: AtomicU64,
    payload: UnsafeCell<u64>,
    copies: [UnsafeCell<u64>; 2],
}

impl World {
    /// An unmoved object and two empty copy slots.
    fn new() -> Arc<World> {
        Arc::new(World {
            header: AtomicU64::new(HEADER),
            payload: UnsafeCell::new(PAYLOAD),
            copies: [UnsafeCell::new(0), UnsafeCell::new(0)],
        })
    }

    fn copy_at(&self, to: usize) -> &UnsafeCell<u64> {
        &self.copies[(to - BASE) / 8]
    }
}

struct ModelCopier<'a> {
    world: &'a World,
    me: usize,
    made: bool,
    retracted: bool,
}

impl<'a> ModelCopier<'a> {
    fn new(world: &'a World, me: usize) -> ModelCopier<'a> {
        ModelCopier {
            world,
            me,
            made: false,
            retracted: false,
        }
    }
}

impl Copier for ModelCopier<'_> {
    fn copy(&mut self, h: u64) -> Option<usize> {
        assert_eq!(h & !0xFF, HEADER, "copies are made from a valid header");
        // SAFETY: loom checks the access: nobody writes the original while it is copied.
        let v = self.world.payload.with(|p| unsafe { *p });
        // SAFETY: this copier's own copy, published only by its CAS.
        self.world.copies[self.me].with_mut(|p| unsafe { *p = v });
        self.made = true;
        Some(BASE + 8 * self.me)
    }

    fn retract(&mut self, to: usize) {
        assert_eq!(to, BASE + 8 * self.me);
        self.retracted = true;
    }
}

/// Reads the payload of the copy at `to`, as a thread that followed the forwarding pointer.
fn read_copy(w: &World, to: usize) -> u64 {
    // SAFETY: loom reports it if the copy's write does not happen-before this read.
    w.copy_at(to).with(|p| unsafe { *p })
}

#[test]
fn two_copiers_and_a_reader_agree_on_one_copy_with_its_contents() {
    loom_tests::model(|| {
        let w = World::new();
        let copiers: Vec<_> = (0..2)
            .map(|me| {
                let w = w.clone();
                loom::thread::spawn(move || {
                    let mut c = ModelCopier::new(&w, me);
                    let r = forward::race(&w.header, &mut c);
                    let to = match r {
                        Evacuated::Copied(to) | Evacuated::Moved(to) => to,
                        Evacuated::Stays(_) => panic!("an unpinned object with room moves"),
                    };
                    assert_eq!(read_copy(&w, to), PAYLOAD);
                    let lost = c.made && to != BASE + 8 * me;
                    assert_eq!(c.retracted, lost, "a copier that lost retracts its copy");
                    (matches!(r, Evacuated::Copied(_)), to)
                })
            })
            .collect();
        // The reader: a load barrier that finds the object already forwarded.
        if let Some(to) = forwardee(w.header.load(Ordering::Acquire)) {
            assert_eq!(
                read_copy(&w, to),
                PAYLOAD,
                "a forwarded object's copy is complete"
            );
        }
        let results: Vec<(bool, usize)> = copiers.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(results[0].1, results[1].1, "both copiers use the same copy");
        assert_eq!(
            results.iter().filter(|r| r.0).count(),
            1,
            "exactly one copier wins"
        );
    });
}

#[test]
fn a_pin_that_arrives_during_a_copy_keeps_the_object_in_place() {
    loom_tests::model(|| {
        let w = World::new();
        let w2 = w.clone();
        let pinner = loom::thread::spawn(move || tandem::object::pin::pin(&w2.header));
        let mut c = ModelCopier::new(&w, 0);
        let r = forward::race(&w.header, &mut c);
        let pinned = pinner.join().unwrap();
        let h = w.header.load(Ordering::Relaxed);
        match r {
            // The copy won first: the pin finds a forwarding pointer (a stale reference,
            // which a real mutator never holds) and refuses it, leaving the pointer intact.
            Evacuated::Copied(to) => {
                assert!(!pinned, "a forwarded object cannot be pinned");
                assert_eq!(forwardee(h), Some(to), "the forwarding pointer is intact");
            }
            // The pin came first, or between the copy and its CAS (which then failed): the
            // object stays, pinned, and is never forwarded.
            Evacuated::Stays(set) => {
                assert!(set && pinned);
                assert!(tandem::object::pin::pinned(h) && forwardee(h).is_none());
            }
            Evacuated::Moved(_) => panic!("only one copier runs"),
        }
    });
}

#[test]
fn repairing_a_field_never_overwrites_a_mutators_newer_store() {
    loom_tests::model(|| {
        const OLD: u64 = 0x2000;
        const COPY: u64 = 0x3000;
        const NEWER: u64 = 0x4000;
        let slot = Arc::new(AtomicU64::new(OLD));
        let s2 = slot.clone();
        // The mutator's release store, modelled as a swap: loom lets a compare-and-swap read
        // a value older than a plain store it is not synchronised with (which C11's rule that
        // an RMW reads the latest value forbids, and no CPU does); a swap is ordered with it.
        let mutator = loom::thread::spawn(move || {
            s2.swap(NEWER, Ordering::Release);
        });
        let healed = forward::heal(&*slot, OLD, COPY);
        mutator.join().unwrap();
        assert_eq!(
            slot.load(Ordering::Acquire),
            NEWER,
            "the mutator's store stands (healed: {healed})"
        );
    });
}
