//! Pinning: a count in the header word, so that a copier's compare-and-swap of the header
//! (to install a forwarding pointer) fails when a pin arrived after it read the header.
//!
//! An object is pinned while its count is above zero or its `FLAG_PINNED` is set (objects
//! from `alloc_nonmoving`, pinned for life). A pinned object never moves: the evacuating
//! tracer marks it in place.

use super::forward::forwardee;
use super::FLAG_PINNED;
use crate::barriers::log::HeaderWord;
use crate::sync::Ordering;

/// Lowest bit of the pin count.
const PIN_ONE: u64 = 1 << 8;
/// The pin count's bits (16 bits: up to 65535 pins of one object at once).
const PIN_MASK: u64 = 0xFFFF << 8;

/// Whether the header word `h` says its object must not move.
#[inline]
pub fn pinned(h: u64) -> bool {
    h & (PIN_MASK | FLAG_PINNED) != 0
}

/// Adds one pin to the object whose header is `header`; false when its count is full, or
/// when the header is a forwarding pointer (a stale reference: the object moved).
pub fn pin(header: &impl HeaderWord) -> bool {
    update(header, |h| {
        (h & PIN_MASK != PIN_MASK && forwardee(h).is_none()).then_some(h + PIN_ONE)
    })
}

/// Pins the object for life (its id was taken); false when the header is a forwarding
/// pointer.
pub fn fix(header: &impl HeaderWord) -> bool {
    update(header, |h| {
        forwardee(h).is_none().then_some(h | FLAG_PINNED)
    })
}

/// Removes one pin; false when the object had no counted pin.
pub fn unpin(header: &impl HeaderWord) -> bool {
    update(header, |h| {
        (h & PIN_MASK != 0 && forwardee(h).is_none()).then_some(h - PIN_ONE)
    })
}

/// Applies `f` to the header by compare-and-swap until it sticks; false when `f` refuses.
fn update(header: &impl HeaderWord, f: impl Fn(u64) -> Option<u64>) -> bool {
    // Relaxed: the count orders nothing else; a copier's CAS on the header sees it.
    let mut h = header.load(Ordering::Relaxed);
    loop {
        let Some(new) = f(h) else {
            return false;
        };
        match header.compare_exchange(h, new, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return true,
            Err(now) => h = now,
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::sync::raw::AtomicU64;

    #[test]
    fn pins_are_counted_and_the_count_never_wraps() {
        let h = AtomicU64::new(7 << 32);
        assert!(!pinned(h.load(Ordering::Relaxed)));
        assert!(pin(&h) && pin(&h));
        assert!(unpin(&h));
        assert!(pinned(h.load(Ordering::Relaxed)), "one pin left");
        assert!(unpin(&h));
        assert!(!pinned(h.load(Ordering::Relaxed)));
        assert!(!unpin(&h), "no pin to remove");
        assert_eq!(
            h.load(Ordering::Relaxed),
            7 << 32,
            "type and flags untouched"
        );
        h.store((7 << 32) | PIN_MASK, Ordering::Relaxed);
        assert!(!pin(&h), "a full count refuses");
        assert!(pinned(FLAG_PINNED), "nonmoving objects are pinned for life");
    }
}
