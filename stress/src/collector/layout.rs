//! The object layout both collectors see, and the [`Shape`] that names one. Every object
//! starts with a header word, as a VM's objects do (Tandem owns it; the Boehm backend stores
//! the shape there):
//! ```text
//! node:  header | ref 0 .. ref r-1 | word 0 .. word w-1
//! array: header | length | word 0 .. word w-1 | items ...
//!        0        8        16
//! ```
//! References come first, so that a collector traces a prefix of the object; an array's
//! data words (the stress runs keep an id and a checksum there) sit before its items, so
//! that items stay one contiguous run.

use tandem::ObjRef;

/// Offset of an array's length word.
pub const LEN: usize = 8;
/// Offset of an array's first data word (its first item when it has no data words).
pub const ITEMS: usize = 16;
/// Most reference fields a node may have.
pub const MAX_NODE_REFS: usize = 8;
/// Most data words a node may have.
pub const MAX_NODE_WORDS: usize = 4;
/// Most data words an array may have.
pub const MAX_ARRAY_WORDS: usize = 2;

/// What an array's items are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Items {
    /// References, which the collector traces.
    Refs,
    /// Data words, never scanned.
    Words,
    /// Bytes, never scanned.
    Bytes,
}

impl Items {
    /// Every kind, in the order the backends number them.
    pub const ALL: [Items; 3] = [Items::Refs, Items::Words, Items::Bytes];

    /// Bytes per item.
    #[inline(always)]
    pub const fn size(self) -> usize {
        match self {
            Items::Bytes => 1,
            Items::Refs | Items::Words => 8,
        }
    }
}

/// What an object looks like: all a collector needs to size and trace it, and all a
/// checker needs to find its words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `refs` references, then `words` data words.
    Node {
        /// Reference fields (at most [`MAX_NODE_REFS`]).
        refs: usize,
        /// Data words (at most [`MAX_NODE_WORDS`]).
        words: usize,
    },
    /// A length, `words` data words, then the items.
    Array {
        /// What the items are.
        items: Items,
        /// Data words before the items (at most [`MAX_ARRAY_WORDS`]).
        words: usize,
    },
}

impl Shape {
    /// Bytes of an object of this shape with `len` items (ignored for a node), rounded up
    /// to 8.
    #[inline(always)]
    pub const fn size(self, len: usize) -> usize {
        match self {
            Shape::Node { refs, words } => node_size(refs, words),
            Shape::Array { items, words } => (ITEMS + 8 * words + len * items.size() + 7) & !7,
        }
    }
}

/// Offset of reference field `k` of a node.
#[inline(always)]
pub const fn node_ref(k: usize) -> usize {
    8 + 8 * k
}

/// Offset of data word `k` of a node with `refs` reference fields.
#[inline(always)]
pub const fn node_word(refs: usize, k: usize) -> usize {
    8 + 8 * (refs + k)
}

/// Offset of data word `k` of an array.
#[inline(always)]
pub const fn array_word(k: usize) -> usize {
    ITEMS + 8 * k
}

/// Offset of item `i` of a reference or word array with no data words.
#[inline(always)]
pub const fn item(i: usize) -> usize {
    ITEMS + 8 * i
}

/// Offset of item `i` of a reference or word array with `words` data words.
#[inline(always)]
pub const fn array_item(words: usize, i: usize) -> usize {
    ITEMS + 8 * (words + i)
}

/// Bytes of a node with `refs` references and `words` data words.
#[inline(always)]
pub const fn node_size(refs: usize, words: usize) -> usize {
    8 * (1 + refs + words)
}

/// Bytes of an array with no data words and `len` items of `item_size` bytes, rounded up
/// to 8.
#[inline(always)]
pub const fn array_size(len: usize, item_size: usize) -> usize {
    (ITEMS + len * item_size + 7) & !7
}

/// Reads the data word at `off` of `obj`.
///
/// # Safety
/// `off` must be a data word (not a reference) of the live object `obj`, and nobody may
/// write it meanwhile.
#[inline(always)]
pub unsafe fn word(obj: ObjRef, off: usize) -> u64 {
    // SAFETY: caller's contract; objects are 8-aligned and so are their words.
    unsafe { obj.field::<u64>(off).read() }
}

/// Writes the data word at `off` of `obj`.
///
/// # Safety
/// `off` must be a data word of the live object `obj` that no other thread accesses
/// meanwhile.
#[inline(always)]
pub unsafe fn set_word(obj: ObjRef, off: usize, v: u64) {
    // SAFETY: caller's contract.
    unsafe { obj.field::<u64>(off).write(v) }
}

/// The length (items) of an array.
///
/// # Safety
/// `obj` must be a live array.
#[inline(always)]
pub unsafe fn len(obj: ObjRef) -> usize {
    // SAFETY: caller's contract: arrays hold their length at LEN.
    unsafe { word(obj, LEN) as usize }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_count_the_header_the_data_words_and_the_items() {
        assert_eq!(Shape::Node { refs: 2, words: 3 }.size(0), 48);
        let bytes = Shape::Array {
            items: Items::Bytes,
            words: 2,
        };
        assert_eq!(bytes.size(9), 16 + 16 + 16);
        let refs = Shape::Array {
            items: Items::Refs,
            words: 0,
        };
        assert_eq!(refs.size(3), array_size(3, 8));
        assert_eq!(array_item(2, 0), array_word(2));
    }
}
