//! Loom model of the REMEMBER barrier's flag (`tandem::barriers::remember`).
//!
//! An old object's header carries the REMEMBER flag; the first store into it after a cycle
//! clears the flag and records the object. Two threads storing into one old object record
//! it exactly once; a marker re-arming a remembered object (scanning it in a nursery cycle)
//! while a thread stores into it leaves it armed or recorded, never neither.
#![cfg(loom)]

use loom::sync::atomic::{AtomicU64, AtomicUsize};
use loom::sync::Arc;
use tandem::barriers::remember::{arm, armed, disarm};
use tandem::object::FLAG_REMEMBER;
use tandem::sync::Ordering;

/// A store's barrier: records the object (counts it) when this call disarmed it.
fn store(header: &AtomicU64, recorded: &AtomicUsize) {
    if disarm(header) {
        recorded.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn two_stores_into_an_old_object_record_it_exactly_once() {
    loom_tests::model(|| {
        let header = Arc::new(AtomicU64::new(FLAG_REMEMBER | 7 << 32));
        let recorded = Arc::new(AtomicUsize::new(0));
        let (h, r) = (header.clone(), recorded.clone());
        let t = loom::thread::spawn(move || store(&h, &r));
        store(&header, &recorded);
        t.join().unwrap();
        assert_eq!(recorded.load(Ordering::SeqCst), 1, "recorded once");
        let h = header.load(Ordering::SeqCst);
        assert!(!armed(h), "and left unarmed");
        assert_eq!(h >> 32, 7, "the type id is untouched");
    });
}

#[test]
fn a_store_racing_with_the_marker_leaves_the_object_armed_or_recorded() {
    loom_tests::model(|| {
        // A remembered object: unarmed, about to be scanned and armed by a marker.
        let header = Arc::new(AtomicU64::new(7 << 32));
        let recorded = Arc::new(AtomicUsize::new(0));
        let h = header.clone();
        let marker = loom::thread::spawn(move || arm(&*h));
        store(&header, &recorded);
        marker.join().unwrap();
        let h = header.load(Ordering::SeqCst);
        assert!(
            armed(h) || recorded.load(Ordering::SeqCst) == 1,
            "a later store would find it armed, or this one recorded it"
        );
        // Whatever the order, a store made now is seen.
        store(&header, &recorded);
        assert!(!armed(header.load(Ordering::SeqCst)));
        assert!(recorded.load(Ordering::SeqCst) >= 1);
    });
}
