//! Forwarding and the hash word: how one copy of a moving object wins, and how its
//! identity hash survives the move.
//!
//! # The copy protocol
//! A copier (a GC worker, a mutator's assist or load barrier, or the pause fixing roots)
//! that meets an object in the collection set:
//! 1. Loads the header `h` (acquire). A tagged header is a forwarding pointer: the object
//!    moved, and its copy is at `h` without the tag.
//! 2. If `h` says the object is pinned, or [`FLAG_STAYS`] (another copier already decided
//!    it stays this cycle), the object is used where it is.
//! 3. Allocates the object's size in its own copy buffer (plus one word on the first move
//!    of an object whose identity hash was taken), copies the bytes and writes the copy's
//!    header: `h` without LOGGED, with HASHED_MOVED and the hash word when hashed.
//! 4. Compare-and-swaps the old header from `h` to the copy's address with the tag
//!    (release, so whoever sees the tag sees the copy's bytes). The winner's copy stands;
//!    a loser gives its allocation back and takes the winner's (step 1).
//!
//! When a copier cannot copy (its buffer found no memory, or the object is pinned), it
//! sets FLAG_STAYS with a compare-and-swap, so no later copier moves the object while
//! someone holds its old address; the collector clears the flag when the cycle ends.
//!
//! # Why no write is lost
//! Nothing writes an object in the collection set while it is being copied: mutators hold
//! only addresses outside it (the pause that starts evacuation fixes every root, and every
//! reference a mutator loads from the heap goes through the load barrier, which resolves
//! it), and GC threads write only headers, by compare-and-swap. Pinning and hashing change
//! the header too, so a copier that read the header before them fails its CAS and reads
//! them on its retry.

use super::{ObjRef, FLAG_HASHED, FLAG_HASHED_MOVED, FLAG_LOGGED};
use crate::barriers::log::HeaderWord;
use crate::sync::Ordering;

/// Header tag of a forwarding pointer (the rest is the copy's address).
pub const TAG_FORWARDED: u64 = 1;
/// Header flag: the object stays where it is this cycle (pinned, or no room to copy it).
pub const FLAG_STAYS: u64 = 1 << 7;

/// The copy's address when header word `h` is a forwarding pointer.
#[inline(always)]
pub fn forwardee(h: u64) -> Option<usize> {
    (h & TAG_FORWARDED != 0).then_some((h & !7) as usize)
}

/// Where a copier allocates its copies (a thread-private bump buffer).
pub trait CopyBuffer {
    /// `size` bytes (8-aligned) for a copy, or None when there is no memory for it.
    fn alloc(&mut self, size: usize) -> Option<usize>;
    /// Gives back the copy at `addr` of `size` bytes that lost the race.
    fn retract(&mut self, addr: usize, size: usize);
}

/// What [`evacuate`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evacuated {
    /// This call copied the object to this address.
    Copied(usize),
    /// Another copier had moved the object to this address.
    Moved(usize),
    /// The object stays where it is; `true` when this call set its FLAG_STAYS (the caller
    /// records it, for clearing at the cycle's end).
    Stays(bool),
}

/// The identity hash of an object first hashed at `addr`: splitmix64 of the address.
#[inline]
pub fn hash_of_address(addr: usize) -> u64 {
    let mut z = (addr as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The extra bytes an object whose header is `h` carries beyond its type's size: its hash
/// word, once it moved after being hashed.
#[inline(always)]
pub fn hash_word_bytes(h: u64) -> usize {
    if h & FLAG_HASHED_MOVED != 0 {
        8
    } else {
        0
    }
}

/// The identity hash of `obj` of `base_size` bytes (its type's size, without the hash word),
/// marking it hashed: the address while it never moved, else the word its first move saved.
///
/// # Safety
/// `obj` must be a live object the caller holds (not forwarded) of `base_size` bytes.
pub unsafe fn identity_hash(obj: ObjRef, base_size: usize) -> u64 {
    // SAFETY: caller's contract.
    let h = unsafe { obj.header() }.fetch_or(FLAG_HASHED, Ordering::Relaxed);
    if h & FLAG_HASHED_MOVED != 0 {
        // SAFETY: a moved, hashed object carries its hash word after its base size.
        unsafe { obj.field::<u64>(base_size).read() }
    } else {
        hash_of_address(obj.addr())
    }
}

/// A copier's side of the race: making a copy once it decided to.
pub trait Copier {
    /// Allocates and fills a copy of the object whose header is `h` (its header included),
    /// returning the copy's address; None when it cannot (no memory, or an invalid object).
    fn copy(&mut self, h: u64) -> Option<usize>;
    /// Gives back the copy at `to`, which lost the race.
    fn retract(&mut self, to: usize);
}

/// The copy race over the object whose header is `header` (steps 1-4 above).
pub fn race(header: &impl HeaderWord, copier: &mut impl Copier) -> Evacuated {
    // Acquire pairs with the winner's release CAS: a copy's bytes are seen with its tag.
    let mut h = header.load(Ordering::Acquire);
    loop {
        if let Some(to) = forwardee(h) {
            return Evacuated::Moved(to);
        }
        if h & FLAG_STAYS != 0 {
            return Evacuated::Stays(false);
        }
        let copy = if super::pin::pinned(h) {
            None
        } else {
            copier.copy(h)
        };
        let Some(to) = copy else {
            // Relaxed: the flag only has to win against later copiers' CAS on this word.
            match header.compare_exchange(h, h | FLAG_STAYS, Ordering::Relaxed, Ordering::Acquire) {
                Ok(_) => return Evacuated::Stays(true),
                Err(now) => {
                    h = now;
                    continue;
                }
            }
        };
        // Release: publishes the copy's bytes to whoever loads the forwarding pointer.
        match header.compare_exchange(
            h,
            to as u64 | TAG_FORWARDED,
            Ordering::Release,
            Ordering::Acquire,
        ) {
            Ok(_) => return Evacuated::Copied(to),
            Err(now) => {
                copier.retract(to);
                h = now;
            }
        }
    }
}

/// Repairs a field or root slot that held `old` to hold `new`, unless someone stored
/// another reference since (that one stands). Release: whoever loads `new` from the slot
/// sees the copy, which the forwarding CAS published to this thread.
pub fn heal(slot: &impl HeaderWord, old: u64, new: u64) -> bool {
    slot.compare_exchange(old, new, Ordering::Release, Ordering::Relaxed)
        .is_ok()
}

/// Copies an object of the heap into a [`CopyBuffer`].
struct ObjectCopier<'a, F, B> {
    obj: ObjRef,
    base_size: F,
    buf: &'a mut B,
    last: usize,
}

impl<F: Fn(u64) -> Option<usize>, B: CopyBuffer> Copier for ObjectCopier<'_, F, B> {
    fn copy(&mut self, h: u64) -> Option<usize> {
        let size = (self.base_size)(h)?;
        let hashed_first_move = h & (FLAG_HASHED | FLAG_HASHED_MOVED) == FLAG_HASHED;
        let old_size = size + hash_word_bytes(h);
        let total = if hashed_first_move {
            size + 8
        } else {
            old_size
        };
        let to = self.buf.alloc(total)?;
        self.last = total;
        let mut new_header = h & !FLAG_LOGGED;
        // SAFETY: `to` is `total` fresh bytes owned by this copier; the source's bytes after
        // its header are live and written by no one (see the module documentation). The
        // header is not copied: other copiers and pins change it by CAS meanwhile (a plain
        // read of it would race); the copy's header is built from `h`.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.obj.as_ptr().add(super::HEADER_SIZE),
                (to + super::HEADER_SIZE) as *mut u8,
                old_size - super::HEADER_SIZE,
            );
            if hashed_first_move {
                new_header |= FLAG_HASHED_MOVED;
                ((to + size) as *mut u64).write(hash_of_address(self.obj.addr()));
            }
            (to as *mut u64).write(new_header);
        }
        Some(to)
    }

    fn retract(&mut self, to: usize) {
        self.buf.retract(to, self.last);
    }
}

/// Copies `obj` (or finds its copy), following the protocol above. `base_size` gives the
/// size of an object from its header (None: not a valid object, which then stays).
///
/// # Safety
/// `obj` must be an object of the collection set that is live or was copied: its header
/// is valid or a forwarding pointer, and nothing but copiers and header flags change it.
pub unsafe fn evacuate(
    obj: ObjRef,
    base_size: impl Fn(u64) -> Option<usize>,
    buf: &mut impl CopyBuffer,
) -> Evacuated {
    let mut copier = ObjectCopier {
        obj,
        base_size,
        buf,
        last: 0,
    };
    // SAFETY: caller's contract: the header word is readable.
    race(unsafe { obj.header() }, &mut copier)
}
