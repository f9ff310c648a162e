//! Loom model of the object barrier's "log once per cycle" race (`tandem::barriers::log`).
//!
//! Two threads store into distinct fields of one object at the same time, each after the
//! object barrier. The fields are loom cells: if either store could overlap the logging
//! of the old values (the bug the LOGGING/LOGGED pair prevents), loom reports the
//! concurrent access. The log must hold every field's pre-store value exactly once.
#![cfg(loom)]

use loom::sync::atomic::AtomicU64;
use loom::sync::{Arc, Mutex};
use tandem::barriers::log::{log_once, FLAG_LOGGED};
use tandem::sync::{Ordering, UnsafeCell};

struct Object {
    header: AtomicU64,
    fields: [UnsafeCell<u64>; 2],
    log: Mutex<Vec<u64>>,
}

fn store_with_barrier(o: &Object, field: usize, value: u64) -> bool {
    let logged = log_once(&o.header, || {
        for f in &o.fields {
            // SAFETY: loom checks the access against concurrent stores.
            let old = f.with(|p| unsafe { *p });
            o.log.lock().unwrap().push(old);
        }
    });
    // SAFETY: as above.
    o.fields[field].with_mut(|p| unsafe { *p = value });
    logged
}

#[test]
fn stores_into_distinct_fields_wait_until_every_old_value_is_logged() {
    loom_tests::model(|| {
        let o = Arc::new(Object {
            header: AtomicU64::new(0),
            fields: [UnsafeCell::new(10), UnsafeCell::new(20)],
            log: Mutex::new(Vec::new()),
        });
        let o2 = o.clone();
        let t = loom::thread::spawn(move || store_with_barrier(&o2, 1, 21));
        let a = store_with_barrier(&o, 0, 11);
        let b = t.join().unwrap();
        assert!(a ^ b, "exactly one thread logs the object");
        assert_ne!(o.header.load(Ordering::SeqCst) & FLAG_LOGGED, 0);
        let mut log = o.log.lock().unwrap().clone();
        log.sort_unstable();
        assert_eq!(log, vec![10, 20], "the log holds the pre-store values once");
    });
}
