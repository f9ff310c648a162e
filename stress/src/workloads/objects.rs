//! Checked objects: objects that carry their id and a checksum, so that a freed, poisoned
//! or overwritten object fails its check. The stress runs allocate nothing else, and the
//! collector's verifier ([`verify`], the heap's verify hook under `TANDEM_VERIFY=1`) checks
//! every reachable object after each GC; the workloads check what they read. In the
//! bench's runs, workloads that take [`Checks::Off`] allocate the plain objects of the
//! published programs instead.
//!
//! Where the two words go (in the layout of [`crate::collector::layout`]):
//! ```text
//! node:  header | refs | payload words | id | checksum
//! array: header | length | id | checksum | items
//! ```
//! A node's checksum covers its id and payload words; a byte or word array's its id, length
//! and every item; a reference array's its id and length (its items are references).

use crate::checksum::Checksum;
use crate::collector::layout::{self, array_word, node_word, Items, Shape};
use crate::collector::Mutator;
use crate::failure::{Failure, Fallible};
use tandem::ObjRef;

/// Whether a workload's objects carry an id and checksum, checked on every read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checks {
    /// Plain objects (the bench).
    Off,
    /// Checked objects (the stress runs).
    On,
}

/// Data words a checked object adds: its id and its checksum.
pub const CHECK_WORDS: usize = 2;

impl Checks {
    /// Data words these checks add to every object.
    #[inline(always)]
    pub const fn words(self) -> usize {
        match self {
            Checks::Off => 0,
            Checks::On => CHECK_WORDS,
        }
    }

    /// The shape of an array of `items` with these checks.
    #[inline(always)]
    pub const fn array(self, items: Items) -> Shape {
        Shape::Array {
            items,
            words: self.words(),
        }
    }

    /// Offset of item `i` of a reference or word array allocated with these checks.
    #[inline(always)]
    pub const fn item(self, i: usize) -> usize {
        layout::array_item(self.words(), i)
    }
}

/// Hands out object ids unique across threads: the owner in the top bits, a count below.
#[derive(Debug)]
pub struct IdSource(u64);

impl IdSource {
    /// Ids for owner `owner` (a thread index plus one; 0 for set-up on the main thread).
    pub fn new(owner: u64) -> IdSource {
        IdSource(owner << 40)
    }

    /// The next id.
    #[inline]
    pub fn next_id(&mut self) -> u64 {
        self.0 += 1;
        self.0
    }
}

/// A checked node with `refs` null references and `payload` as its payload words.
pub fn new_node<M: Mutator>(m: &mut M, refs: usize, payload: &[u64], id: u64) -> Fallible<ObjRef> {
    let words = payload.len();
    let obj = m.node(refs, words + CHECK_WORDS)?;
    let sum = payload
        .iter()
        .fold(Checksum::new(id), |s, &w| s.word(w))
        .value();
    // SAFETY: the data words of a fresh node of `words + 2` words, which no other thread
    // can see yet.
    unsafe {
        for (k, &w) in payload.iter().enumerate() {
            layout::set_word(obj, node_word(refs, k), w);
        }
        layout::set_word(obj, node_word(refs, words), id);
        layout::set_word(obj, node_word(refs, words + 1), sum);
    }
    Ok(obj)
}

/// Payload word `k` of a live node with `refs` references.
///
/// # Safety
/// `obj` must be a live node with `refs` references and more than `k` data words.
#[inline]
pub unsafe fn payload(obj: ObjRef, refs: usize, k: usize) -> u64 {
    // SAFETY: caller's contract.
    unsafe { layout::word(obj, node_word(refs, k)) }
}

/// An array of `len` items with `checks`: null references, or word (byte) items that all
/// hold `id` (its low byte), so that the first and last items tell whether the array kept
/// its contents even unchecked; checked, it also carries `id` and its checksum.
pub fn new_array<M: Mutator>(
    m: &mut M,
    checks: Checks,
    items: Items,
    id: u64,
    len: usize,
) -> Fallible<ObjRef> {
    let obj = m.alloc(checks.array(items), len)?;
    let base = checks.item(0);
    // SAFETY: the items of the fresh array of `len` items, which no other thread can see.
    unsafe {
        match items {
            Items::Refs => {}
            Items::Words => std::slice::from_raw_parts_mut(obj.field::<u64>(base), len).fill(id),
            Items::Bytes => std::ptr::write_bytes(obj.field::<u8>(base), id as u8, len),
        }
    }
    if checks == Checks::On {
        // SAFETY: a fresh array of this shape: its items are written, and its data words
        // are ours to write.
        unsafe {
            let sum = array_sum(items, obj, id);
            layout::set_word(obj, array_word(0), id);
            layout::set_word(obj, array_word(1), sum);
        }
    }
    Ok(obj)
}

/// The checksum of an array of `items` with `id`, from its length and items.
///
/// # Safety
/// `obj` must be a live checked array of `items` whose items nobody writes meanwhile.
unsafe fn array_sum(items: Items, obj: ObjRef, id: u64) -> u64 {
    // SAFETY: caller's contract: the length word and `len` items lie inside the array.
    unsafe {
        let len = layout::len(obj);
        let sum = Checksum::new(id).word(len as u64);
        let base = layout::array_item(CHECK_WORDS, 0);
        match items {
            Items::Refs => sum,
            Items::Words => std::slice::from_raw_parts(obj.field::<u64>(base), len)
                .iter()
                .fold(sum, |s, &w| s.word(w)),
            Items::Bytes => sum.bytes(std::slice::from_raw_parts(obj.field::<u8>(base), len)),
        }
        .value()
    }
}

/// The id and the offsets of the checksum a checked object of `shape` carries, or None
/// if the shape has no room for them.
fn id_offsets(shape: Shape) -> Option<(usize, usize)> {
    match shape {
        Shape::Node { refs, words } if words >= CHECK_WORDS => Some((
            node_word(refs, words - CHECK_WORDS),
            node_word(refs, words - 1),
        )),
        Shape::Array { words, .. } if words == CHECK_WORDS => Some((array_word(0), array_word(1))),
        _ => None,
    }
}

/// The offset of the id of a checked object of `shape` (the test hook corrupts it).
pub fn id_offset(shape: Shape) -> Option<usize> {
    id_offsets(shape).map(|(id, _)| id)
}

/// Recomputes the checksum of the checked object `obj` of `shape`; the error names the
/// object's id and both values. The collector's verify hook.
///
/// The stored words are read as they are: the verifier calls this with the world stopped,
/// the workloads on objects whose data nobody writes after allocation.
pub fn verify(shape: Shape, obj: ObjRef) -> Result<(), String> {
    let Some((id_off, sum_off)) = id_offsets(shape) else {
        return Err(format!(
            "object {:#x} of shape {shape:?} carries no checksum",
            obj.addr()
        ));
    };
    // SAFETY: `obj` is live (the verifier and the workloads pass reachable objects) and of
    // `shape`, so its id, checksum and the words or items summed lie inside it.
    let (id, stored, expected) = unsafe {
        let id = layout::word(obj, id_off);
        let stored = layout::word(obj, sum_off);
        let expected = match shape {
            Shape::Node { refs, words } => (0..words - CHECK_WORDS)
                .fold(Checksum::new(id), |s, k| {
                    s.word(layout::word(obj, node_word(refs, k)))
                })
                .value(),
            Shape::Array { items, .. } => array_sum(items, obj, id),
        };
        (id, stored, expected)
    };
    if stored == expected {
        Ok(())
    } else {
        Err(format!(
            "object id {id:#x} at {:#x}: checksum expected {expected:#x}, found {stored:#x}",
            obj.addr()
        ))
    }
}

/// Checks the checked object `obj` as a workload read, naming `what` the workload was doing
/// on failure.
///
/// # Safety
/// `obj` must be a live object of `m`'s collector whose data nobody writes meanwhile.
pub unsafe fn check_read<M: Mutator>(m: &M, obj: ObjRef, what: &str) -> Fallible<()> {
    // SAFETY: caller's contract.
    let shape = unsafe { m.shape(obj) };
    verify(shape, obj).map_err(|e| Failure::Check(format!("{what}: {e}")))
}

/// The id of the checked object `obj`.
///
/// # Safety
/// As for [`check_read`].
pub unsafe fn id_of<M: Mutator>(m: &M, obj: ObjRef) -> u64 {
    // SAFETY: caller's contract.
    let shape = unsafe { m.shape(obj) };
    let off = id_offset(shape).expect("a checked object has an id");
    // SAFETY: as above; the id lies inside an object of that shape.
    unsafe { layout::word(obj, off) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_checked_shapes_have_an_id() {
        assert_eq!(id_offset(Shape::Node { refs: 2, words: 0 }), None);
        assert_eq!(
            id_offset(Shape::Node { refs: 2, words: 3 }),
            Some(node_word(2, 1))
        );
        assert_eq!(id_offset(Checks::Off.array(Items::Refs)), None);
        assert_eq!(id_offset(Checks::On.array(Items::Refs)), Some(16));
    }
}
