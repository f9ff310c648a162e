//! One thread's tracing over a mark stack (the workers', the final mark's and the mark
//! assists'): prefetch rings, blackening, marked-byte counts, and large arrays scanned in
//! slices.

use super::{mark, mark_all, BadRefs};
use crate::barriers::remember;
use crate::collector::evacuate::{forward_edge, CopyLab};
use crate::collector::validate::{self, Found};
use crate::heap::metadata::prefetch;
use crate::object::{ObjRef, TypeInfo};
use crate::runtime::Runtime;
use crate::sync::raw::AtomicPtr;
use crate::sync::Ordering;

/// Items of a large array scanned per mark-stack entry. The rest of the array waits on the
/// stack as one entry (see `slice_entry`) under the children of the items scanned, so
/// that an entry grows the stack by at most this many items' references however long the
/// array (a list of 10 M distinct objects pushed 10 M entries, 80 MB, at once), other
/// markers can take the rest of an array to scan, and a marker checks for work to share and
/// for a waiting allocation between slices, as between small objects.
pub const SLICE_ITEMS: usize = 256;

/// Bit 0 of a mark-stack entry that names a slice of a large array rather than an object
/// (objects are 8-byte aligned).
const SLICE_TAG: usize = 1;
/// Bits of a slice entry that hold the array's page number (large objects start on a
/// page, and user addresses are below 2^47 unless a 5-level page table was asked for).
const SLICE_PAGE_BITS: u32 = 35;
/// First bit of a slice entry's slice number; the bits above it hold slice numbers up to
/// 2^28 (6.9e10 items).
const SLICE_SHIFT: u32 = SLICE_PAGE_BITS + 1;

/// The mark-stack entry for slice `slice` (items `slice * SLICE_ITEMS..`) of the large
/// object at `large`, or None when they do not fit in one (an array that long, or that
/// high in the address space, has the rest of it scanned at once).
fn slice_entry(large: usize, slice: usize) -> Option<ObjRef> {
    use crate::heap::vm::PAGE_SIZE;
    debug_assert!(large.is_multiple_of(PAGE_SIZE));
    let fits = large >> (SLICE_PAGE_BITS + PAGE_SIZE.trailing_zeros()) == 0
        && slice < 1 << (usize::BITS - SLICE_SHIFT);
    fits.then(|| {
        let e = SLICE_TAG | (large / PAGE_SIZE) << 1 | slice << SLICE_SHIFT;
        ObjRef::from_addr(e).expect("tagged: not null")
    })
}

/// The large object and slice number a [`slice_entry`] names; None for an object's entry.
#[inline(always)]
fn as_slice(entry: ObjRef) -> Option<(ObjRef, usize)> {
    let e = entry.addr();
    (e & SLICE_TAG != 0).then(|| {
        let page = (e >> 1) & ((1 << SLICE_PAGE_BITS) - 1);
        let obj = ObjRef::from_addr(page * crate::heap::vm::PAGE_SIZE).expect("not page 0");
        (obj, e >> SLICE_SHIFT)
    })
}

/// Blocks whose marked bytes a tracer holds at once ([`BlockBytes`]).
const BYTES_WAYS: usize = 256;

/// Marked bytes of the blocks a tracer marks in, added to each block's counter when its
/// entry is evicted or the tracer's job ends ([`Carry`]): about one atomic add per block a
/// job visits, where there was one per run of objects in one block. A depth-first trace
/// of a tree has a frontier of a block or more per level, interleaved further by the
/// prefetch ring: flushing at every change of block, the locked add (which waits for the
/// tracer's cache misses in flight) took a quarter of the mark loop (binary-trees, stw),
/// and 16 entries still 9%; with 256 (4 KiB) it is gone from the profile.
struct BlockBytes {
    /// (block + 1, bytes); block 0 means an empty entry. Direct-mapped by block.
    entries: [(usize, usize); BYTES_WAYS],
    /// Every byte added, for the job's total.
    total: usize,
}

impl Default for BlockBytes {
    fn default() -> Self {
        BlockBytes {
            entries: [(0, 0); BYTES_WAYS],
            total: 0,
        }
    }
}

impl BlockBytes {
    #[inline(always)]
    fn add(&mut self, space: &crate::heap::Space, block: usize, size: usize) {
        let e = &mut self.entries[block % BYTES_WAYS];
        if e.0 != block + 1 {
            Self::evict(space, e);
            e.0 = block + 1;
        }
        e.1 += size;
        self.total += size;
    }

    /// Adds an entry's bytes to its block's counter and empties it.
    #[inline(always)]
    fn evict(space: &crate::heap::Space, e: &mut (usize, usize)) {
        if e.0 != 0 {
            space.meta.add_marked_bytes(e.0 - 1, e.1);
        }
        *e = (0, 0);
    }

    /// Adds what is pending to the blocks' counters.
    fn flush(&mut self, space: &crate::heap::Space) {
        for e in &mut self.entries {
            Self::evict(space, e);
        }
    }
}

/// Checks the header of `obj`, a small object this thread is about to scan, and stamps its
/// lines with the cycle's epoch; returns its type (None, reported, when the header is not
/// an object's). Done at scan time rather than when the object was marked, so that its
/// memory is fetched once, after the grey-object prefetch, for both its header and fields.
#[inline(always)]
fn blacken_small<'a>(
    rt: &'a Runtime,
    obj: ObjRef,
    bad: &BadRefs,
    bytes: &mut BlockBytes,
) -> Option<&'a TypeInfo> {
    let space = &rt.space;
    let addr = obj.addr();
    let place = validate::small_place(space, addr);
    // The header was written at allocation and published to us by the pause or by the
    // release store that made the object reachable.
    let (info, size) = match validate::object(&rt.types, obj, place) {
        Ok(v) => v,
        Err(why) => {
            bad.report_scanned(addr, why);
            return None;
        }
    };
    bytes.add(space, space.block_of(addr), size);
    let epoch = space.epoch();
    let (first, last) = (space.line_of(addr), space.line_of(addr + size - 1));
    // Relaxed: line marks are read by the sweep after the phase barrier of the pool.
    // Most objects lie in one or two lines: those need no loop.
    space.meta.line(first).store(epoch, Ordering::Relaxed);
    space.meta.line(last).store(epoch, Ordering::Relaxed);
    for l in first + 1..last {
        space.meta.line(l).store(epoch, Ordering::Relaxed);
    }
    Some(info)
}

/// A ring of addresses in flight between a prefetch and their use, with something carried
/// beside each, so that cache misses on a large heap overlap instead of stalling the marker
/// one by one (edge enqueuing and grey-object prefetch, as in Garner, Blackburn and
/// Frampton's study of tracing and Boehm's mark stack prefetch). Two sit in each marker:
/// * between loading a reference and marking its target (its mark word and line mark):
///   most references lead to objects already marked, whose memory is then never fetched;
/// * between popping an object from the mark stack and scanning it (its header and fields:
///   the depth-first stack holds many objects whose lines were evicted, or never fetched,
///   since they were marked).
///
/// The ring is always full, address 0 standing for an empty slot, so that the common step,
/// one entry in and the oldest out, is a swap. Its entries are always the `len` slots
/// before `next` (an exchange fills the slot at `next`, which is the oldest entry or,
/// when fewer are in flight, empty; taking one takes the oldest), so the oldest is found
/// without a search: on a linked list, where one entry at a time is in flight, searching
/// both rings for it took half the mark loop.
#[derive(Debug)]
struct Ring<T: Copy> {
    slots: [(usize, T); PREFETCH_DEPTH],
    next: usize,
    len: usize,
}

/// Entries in flight between prefetch and use (a power of two).
const PREFETCH_DEPTH: usize = 8;

impl<T: Copy + Default> Default for Ring<T> {
    fn default() -> Ring<T> {
        Ring {
            slots: [(0, T::default()); PREFETCH_DEPTH],
            next: 0,
            len: 0,
        }
    }
}

impl<T: Copy + Default> Ring<T> {
    /// Puts `(addr, extra)` in (the caller prefetched what it needs of `addr`) and takes
    /// out the oldest entry, whose address is 0 when its slot was empty.
    #[inline(always)]
    fn exchange(&mut self, addr: usize, extra: T) -> (usize, T) {
        debug_assert_ne!(addr, 0);
        let out = std::mem::replace(&mut self.slots[self.next], (addr, extra));
        self.next = (self.next + 1) % PREFETCH_DEPTH;
        self.len += usize::from(out.0 == 0);
        out
    }

    /// Whether nothing is in flight.
    #[inline(always)]
    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Takes out the oldest entry.
    #[inline(always)]
    fn take_oldest(&mut self) -> Option<(usize, T)> {
        if self.len == 0 {
            return None;
        }
        let i = (self.next + PREFETCH_DEPTH - self.len) % PREFETCH_DEPTH;
        self.len -= 1;
        Some(std::mem::take(&mut self.slots[i]))
    }
}

/// One thread's tracing over a mark stack: what the workers, the final mark's control
/// thread and mutator assists share.
#[derive(Clone, Copy)]
pub struct Tracer<'a> {
    /// The runtime being collected.
    pub rt: &'a Runtime,
    /// Where invalid references are reported.
    pub bad: &'a BadRefs,
}

/// What a tracer carries between objects: edges waiting for their mark words, and what
/// it carries between drains ([`Carry`]).
struct InFlight<'c> {
    edges: Ring<Found>,
    carry: &'c mut Carry,
}

/// What a tracer keeps across the [`Tracer::drain_carrying`] calls of one job: the marked
/// bytes of the blocks it marks in and the copy buffer of objects it evacuated. Ended with
/// [`Tracer::finish`].
#[derive(Default)]
pub struct Carry {
    lab: Option<CopyLab>,
    bytes: BlockBytes,
}

impl Tracer<'_> {
    /// Blackens `entry`'s object (a small object's header is checked and its lines stamped
    /// here) and marks what its references lead to, pushing what this call marked; returns
    /// how many objects that was. A large array is scanned [`SLICE_ITEMS`] items at a time:
    /// an entry for its next slice is pushed first, under the children of this one.
    fn scan(&self, entry: ObjRef, fly: &mut InFlight<'_>, stack: &mut Vec<ObjRef>) -> u64 {
        let rt = self.rt;
        let mut marked = 0;
        let (obj, first) = match as_slice(entry) {
            Some((obj, slice)) => (obj, slice * SLICE_ITEMS),
            None => (entry, 0),
        };
        let (info, end) = if rt.space.in_immix(obj.addr()) {
            match blacken_small(rt, obj, self.bad, &mut fly.carry.bytes) {
                Some(info) => (info, usize::MAX),
                None => return 0,
            }
        } else {
            // SAFETY: a marked large object (or a slice of one), whose header `mark`
            // checked.
            let info = rt.types.get(unsafe { obj.type_id() });
            let info = info.expect("checked when marked");
            (info, Self::slice_end(obj, info, first, stack))
        };
        if first == 0 && rt.config.generational {
            // Old from now on: the next store into it must record it.
            // SAFETY: a checked, live object.
            remember::arm(unsafe { obj.header() });
        }
        // SAFETY: obj is a live, initialised object of type `info`; reference slots are
        // atomic words, loaded with acquire (see `ObjRef::store_ref`).
        unsafe {
            info.for_each_slot_in(obj, first..end, |slot| {
                let child = (*(slot as *const AtomicPtr<u8>)).load(Ordering::Acquire) as usize;
                if child != 0 {
                    rt.space.meta.prefetch_marks(child);
                    if rt.evac.active() && rt.space.in_cset(child) {
                        // Its header is read before it is marked: to copy it, or to find
                        // its copy.
                        prefetch(child);
                    }
                    let from = Found::field(obj.addr(), slot as usize);
                    let (ready, from) = fly.edges.exchange(child, from);
                    if ready != 0 {
                        marked += self.mark_edge(ready, from, fly, stack);
                    }
                }
            })
        };
        marked
    }

    /// The item at which scanning the large object `obj` from item `first` stops: after
    /// one slice, with an entry for the rest pushed first, when more than a slice is left
    /// (and the entry can name it); else its end.
    fn slice_end(obj: ObjRef, info: &TypeInfo, first: usize, stack: &mut Vec<ObjRef>) -> usize {
        // SAFETY: a live large object of type `info`.
        let items = unsafe { info.sliceable_items(obj) };
        if items > first + SLICE_ITEMS {
            if let Some(rest) = slice_entry(obj.addr(), first / SLICE_ITEMS + 1) {
                stack.push(rest);
                return first + SLICE_ITEMS;
            }
        }
        usize::MAX
    }

    /// Marks one reference's target (its copy, when it moves) and pushes it for scanning
    /// when this call marked it; returns how many objects that marked.
    #[inline(always)]
    fn mark_edge(
        &self,
        child: usize,
        from: Found,
        fly: &mut InFlight<'_>,
        stack: &mut Vec<ObjRef>,
    ) -> u64 {
        let child = forward_edge(self.rt, child, from, &mut fly.carry.lab);
        if mark(self.rt, child, self.bad, from) {
            stack.push(ObjRef::from_addr(child).expect("marked objects are not null"));
            1
        } else {
            0
        }
    }

    /// The next object to scan: one popped from the stack a few pops ago (prefetched since);
    /// when the stack runs dry, the edges in flight are marked first (they may refill it).
    /// None when nothing is left locally.
    #[inline]
    fn next_grey(
        &self,
        greys: &mut Ring<()>,
        fly: &mut InFlight<'_>,
        stack: &mut Vec<ObjRef>,
        marked: &mut u64,
    ) -> Option<ObjRef> {
        loop {
            while let Some(obj) = stack.pop() {
                if stack.is_empty() && greys.is_empty() {
                    // Nothing to overlap its fetch with (a linked list): scan it now.
                    return Some(obj);
                }
                if obj.addr() & SLICE_TAG == 0 {
                    prefetch(obj.addr());
                }
                let (ready, ()) = greys.exchange(obj.addr(), ());
                if ready != 0 {
                    return ObjRef::from_addr(ready);
                }
            }
            if let Some((grey, ())) = greys.take_oldest() {
                return ObjRef::from_addr(grey);
            }
            *marked += self.flush(fly, stack);
            if stack.is_empty() {
                return None;
            }
        }
    }

    /// Marks every edge still in flight.
    fn flush(&self, fly: &mut InFlight<'_>, stack: &mut Vec<ObjRef>) -> u64 {
        let mut marked = 0;
        while let Some((child, from)) = fly.edges.take_oldest() {
            marked += self.mark_edge(child, from, fly, stack);
        }
        marked
    }

    /// Marks the entries of one full SATB buffer onto `stack`; returns how many objects
    /// that marked, or None when no buffer is queued.
    pub fn take_satb(&self, stack: &mut Vec<ObjRef>) -> Option<u64> {
        let buf = self.rt.satb.take()?;
        let (packets, n) = mark_all(self.rt, buf.into_iter().map(|a| (a, 0)), self.bad);
        stack.extend(packets.into_iter().flatten());
        Some(n)
    }

    /// Takes the bottom half of `stack` to share: in a depth-first trace, the roots of the
    /// largest untraced parts. A narrow structure such as a tree never fills a packet, and
    /// would otherwise be traced by one thread alone.
    pub fn bottom_half(stack: &mut Vec<ObjRef>) -> Vec<ObjRef> {
        stack.drain(..stack.len() / 2).collect()
    }

    /// Scans objects from `stack` until it runs dry or `budget` objects were scanned,
    /// leaving the rest (marked, not yet scanned) on `stack`. Returns (objects newly marked,
    /// objects scanned).
    pub fn drain(&self, stack: &mut Vec<ObjRef>, budget: usize) -> (u64, usize) {
        let mut carry = Carry::default();
        let r = self.drain_carrying(stack, budget, &mut carry);
        self.finish(carry);
        r
    }

    /// [`Tracer::drain`], carrying marked bytes and the copy buffer over from the last call
    /// of the same job and on to the next (a job drains a few hundred objects at a time).
    pub fn drain_carrying(
        &self,
        stack: &mut Vec<ObjRef>,
        budget: usize,
        carry: &mut Carry,
    ) -> (u64, usize) {
        let mut fly = InFlight {
            edges: Ring::default(),
            carry,
        };
        let mut greys = Ring::<()>::default();
        let mut marked = 0;
        let mut scanned = 0;
        while scanned < budget {
            let Some(obj) = self.next_grey(&mut greys, &mut fly, stack, &mut marked) else {
                break;
            };
            marked += self.scan(obj, &mut fly, stack);
            scanned += 1;
        }
        marked += self.flush(&mut fly, stack);
        stack.extend(
            std::iter::from_fn(|| greys.take_oldest()).filter_map(|(g, ())| ObjRef::from_addr(g)),
        );
        (marked, scanned)
    }

    /// Ends a job's tracing: adds the marked bytes it holds to their blocks and gives its
    /// copy buffer back; returns the bytes of the small objects it blackened.
    pub fn finish(&self, mut carry: Carry) -> usize {
        carry.bytes.flush(&self.rt.space);
        if let Some(lab) = carry.lab {
            self.rt.evac.give_lab(lab);
        }
        carry.bytes.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn the_ring_hands_entries_out_in_order_once_full() {
        let mut r = Ring::<usize>::default();
        for i in 1..=PREFETCH_DEPTH {
            assert_eq!(r.exchange(i, 10 * i).0, 0, "holds up to its depth");
        }
        assert_eq!(r.exchange(100, 1000), (1, 10), "then the oldest comes out");
        assert_eq!(r.exchange(101, 1010), (2, 20));
        let rest: Vec<usize> = std::iter::from_fn(|| r.take_oldest())
            .map(|e| e.0)
            .collect();
        let mut want: Vec<usize> = (3..=PREFETCH_DEPTH).collect();
        want.extend([100, 101]);
        assert_eq!(rest, want);
        assert_eq!(r.take_oldest(), None);
        r.exchange(7, 70);
        assert_eq!(r.take_oldest(), Some((7, 70)), "empty slots are skipped");
    }

    #[test]
    fn slice_entries_name_their_array_and_slice() {
        let page = 0x7f12_3456_7000;
        let e = slice_entry(page, 77).unwrap();
        assert_eq!(e.addr() & SLICE_TAG, SLICE_TAG, "never an object's address");
        assert_eq!(as_slice(e), Some((ObjRef::from_addr(page).unwrap(), 77)));
        let last = (1 << (usize::BITS - SLICE_SHIFT)) - 1;
        assert_eq!(as_slice(slice_entry(page, last).unwrap()).unwrap().1, last);
        assert!(
            slice_entry(page, last + 1).is_none(),
            "too far: scanned at once"
        );
        assert!(
            slice_entry(1 << 47, 1).is_none(),
            "too high: scanned at once"
        );
        assert_eq!(as_slice(ObjRef::from_addr(page + 8).unwrap()), None);
    }

    #[test]
    fn a_long_array_is_scanned_in_slices_that_bound_the_mark_stack() {
        let mut config = Config::default();
        config.mode = crate::config::Mode::Stw;
        let h = crate::Heap::new(config).unwrap();
        let node = h
            .register_type(TypeInfo {
                fixed_size: 24,
                ref_offsets: vec![8],
                ..Default::default()
            })
            .unwrap();
        let array = h
            .register_type(TypeInfo {
                fixed_size: 24,
                ref_offsets: vec![16],
                item_size: 8,
                length_offset: 8,
                item_ref_offsets: vec![0],
                ..Default::default()
            })
            .unwrap();
        let n = 40 * SLICE_ITEMS + 3;
        let mut m = h.attach().unwrap();
        let arr = m.alloc(array, n).unwrap();
        m.push_root(Some(arr)).unwrap();
        let mut nodes = Vec::new();
        for i in 0..=n {
            let x = m.alloc(node, 0).unwrap();
            let arr = m.peek_root(0).unwrap().unwrap();
            // SAFETY: fresh objects of the types above; item i is at 24 + 8 i, and the
            // fixed part's reference at 16 gets the last node.
            unsafe { arr.store_ref(if i < n { 24 + 8 * i } else { 16 }, Some(x)) };
            nodes.push(x.addr());
        }
        let arr = m.peek_root(0).unwrap().unwrap();
        let rt = &*h.owner.rt;
        assert!(!rt.space.in_immix(arr.addr()), "a large object");
        let bad = BadRefs::default();
        let tracer = Tracer { rt, bad: &bad };
        let (packets, one) = mark_all(rt, [(arr.addr(), 0)], &bad);
        assert_eq!(one, 1);
        let mut stack: Vec<ObjRef> = packets.into_iter().flatten().collect();
        let (mut marked, mut deepest) = (0, 0);
        while !stack.is_empty() {
            marked += tracer.drain(&mut stack, 1).0;
            deepest = deepest.max(stack.len());
        }
        assert_eq!(bad.take().0, 0);
        assert_eq!(marked as usize, n + 1, "every node, once");
        assert!(nodes.iter().all(|&a| rt.space.meta.is_marked(a)));
        assert!(
            deepest <= SLICE_ITEMS + PREFETCH_DEPTH + 2,
            "the stack held {deepest} entries for an array of {n}"
        );
        drop(m);
    }

    #[test]
    fn marked_bytes_reach_every_block_whatever_the_order_of_the_blocks() {
        let rt = Runtime::new(Config::default()).unwrap();
        let space = &rt.space;
        let mut bytes = BlockBytes::default();
        // Blocks that share an entry, interleaved, and one that comes back after eviction.
        let visits = [
            3,
            3 + BYTES_WAYS,
            3,
            5,
            3 + 2 * BYTES_WAYS,
            5,
            3 + BYTES_WAYS,
            3,
        ];
        for (i, &b) in visits.iter().enumerate() {
            bytes.add(space, b, 8 * (i + 1));
        }
        bytes.flush(space);
        let mut want = std::collections::HashMap::new();
        for (i, &b) in visits.iter().enumerate() {
            *want.entry(b).or_insert(0) += 8 * (i + 1);
        }
        for (&b, &n) in &want {
            assert_eq!(space.meta.settle_live_bytes(b), n, "block {b}");
        }
        assert_eq!(
            space.meta.settle_live_bytes(4),
            0,
            "nothing for a block not marked in"
        );
    }
}
