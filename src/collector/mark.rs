//! Marking: roots and SATB entries are marked into packets, then workers trace the type
//! table's reference slots, stamping each marked object's lines with the cycle's epoch.
//!
//! The same job runs in a pause (stop-the-world or final mark, all workers) and
//! concurrently with the mutators (`TANDEM_CONC_THREADS` workers). Concurrently, reference
//! slots are read with acquire loads (mutators store with release), workers also drain the
//! SATB queue, and they give way (publish their work and return) when an allocation is
//! waiting for the cycle: the cycle then goes on concurrently with every worker, and only
//! if that too keeps allocations waiting does the pause finish the trace.

use super::evacuate::{forward_edge, CopyLab};
use super::validate::{self, Found};
use crate::barriers::remember;
use crate::heap::metadata::prefetch;
use crate::object::{ObjRef, TypeInfo};
use crate::runtime::Runtime;
use crate::sync::raw::AtomicPtr;
use crate::sync::unmodelled::Arc;
use crate::sync::{AtomicBool, AtomicU64, Mutex, Ordering};
use crate::workers::{Job, WorkerContext};

/// Objects per work packet.
pub const PACKET_SIZE: usize = 512;
/// Objects a marker scans between checks for work to share and (concurrently) for a
/// waiting allocation.
const YIELD_CHECK_INTERVAL: usize = 256;

/// Items of a large array scanned per mark-stack entry. The rest of the array waits on the
/// stack as one entry (see [`slice_entry`]) under the children of the items scanned, so
/// that an entry grows the stack by at most this many items' references however long the
/// array (a list of 10 M distinct objects pushed 10 M entries, 80 MB, at once), other
/// markers can take the rest of an array to scan, and a marker checks for work to share and
/// for a waiting allocation between slices, as between small objects.
pub const SLICE_ITEMS: usize = 256;

/// Bit 0 of a mark-stack entry that names a slice of a large array rather than an object
/// (objects are 8-byte aligned).
const SLICE_TAG: usize = 1;
/// Bits of a slice entry that hold the array's page number (user addresses are below
/// 2^47, and large objects start on a page).
const SLICE_PAGE_BITS: u32 = 35;
/// First bit of a slice entry's slice number; the bits above it hold slice numbers up to
/// 2^28 (6.9e10 items). An array longer still has the rest of it scanned at once.
const SLICE_SHIFT: u32 = SLICE_PAGE_BITS + 1;

/// The mark-stack entry for slice `slice` (items `slice * SLICE_ITEMS..`) of the large
/// object at `large`, or None when `slice` does not fit in one.
fn slice_entry(large: usize, slice: usize) -> Option<ObjRef> {
    use crate::heap::vm::PAGE_SIZE;
    debug_assert!(large.is_multiple_of(PAGE_SIZE) && large >> (SLICE_PAGE_BITS + 12) == 0);
    (slice < 1 << (usize::BITS - SLICE_SHIFT)).then(|| {
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

/// A batch of marked objects whose fields are still to be scanned.
pub type MarkPacket = Vec<ObjRef>;

/// Invalid references met while marking (a VM bug), counted and described.
#[derive(Debug, Default)]
pub struct BadRefs {
    count: AtomicU64,
    messages: Mutex<Vec<String>>,
}

impl BadRefs {
    /// An invalid reference `addr`, found in `from`.
    #[cold]
    fn report_ref(&self, addr: usize, from: Found, why: String) {
        self.report(format!("invalid reference {addr:#x} in {from}: {why}"));
    }

    /// A reference `addr`, found in `from`, to something that is not a valid object.
    #[cold]
    fn report_object(&self, addr: usize, from: Found, why: String) {
        self.report(format!("object {addr:#x} (found in {from}) {why}"));
    }

    /// A marked small object found invalid when it was to be scanned (where it was found is
    /// no longer known: `TANDEM_VERIFY` names the reference).
    #[cold]
    fn report_scanned(&self, addr: usize, why: String) {
        self.report(format!(
            "object {addr:#x} (reached by the marker; TANDEM_VERIFY=1 names the reference) \
             {why}"
        ));
    }

    fn report(&self, msg: String) {
        if self.count.fetch_add(1, Ordering::Relaxed) < 16 {
            tracing::error!("{msg}");
            self.messages.lock().push(msg);
        }
    }

    /// (count, first messages).
    pub fn take(&self) -> (u64, Vec<String>) {
        (
            self.count.swap(0, Ordering::Relaxed),
            std::mem::take(&mut *self.messages.lock()),
        )
    }
}

/// Marks the object at `addr` found in `from` (for messages) from side metadata alone,
/// without reading the object; true when this call marked it, so the caller must push it
/// for scanning. A reference that [`validate`] rejects is reported and not followed. A
/// small object's header is checked when it is scanned ([`Tracer::scan`]), once its memory
/// has been prefetched; a large object's here.
#[inline(always)]
fn mark(rt: &Runtime, addr: usize, bad: &BadRefs, from: Found) -> bool {
    let space = &rt.space;
    if !space.in_immix(addr) {
        return mark_elsewhere(rt, addr, bad, from);
    }
    // The line mark is read once, for the black-allocation test and for the validity test.
    let line = space.line_mark(addr);
    if line == crate::heap::metadata::black_stamp(space.epoch()) {
        // Allocated during this cycle's marking: live, and nothing it references needs
        // tracing through it (SATB covers every object reachable at the snapshot).
        return false;
    }
    if !validate::small_ref_ok(addr, line) {
        if let Err(why) = validate::locate_small(space, addr, line) {
            bad.report_ref(addr, from, why);
        }
        return false;
    }
    space.meta.mark(addr)
}

/// [`mark`] for a reference outside the block space: a large object, or an invalid one.
#[inline(never)]
fn mark_elsewhere(rt: &Runtime, addr: usize, bad: &BadRefs, from: Found) -> bool {
    let space = &rt.space;
    if space.in_heap(addr) && space.meta.is_marked(addr) {
        // A large object already marked: skip `locate`, which takes the space's lock.
        return false;
    }
    let place = match validate::locate(space, addr) {
        Ok(p) => p,
        Err(why) => {
            bad.report_ref(addr, from, why);
            return false;
        }
    };
    if crate::heap::new_large(addr) {
        // Allocated during this marking (generational mode): live, young, not traced,
        // like an object on a black line.
        return false;
    }
    if !space.meta.mark(addr) {
        return false;
    }
    let obj = ObjRef::from_addr(addr).expect("located objects are not null");
    if let Err(why) = validate::object(&rt.types, obj, place) {
        bad.report_object(addr, from, why);
        return false;
    }
    true
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
}

impl Default for BlockBytes {
    fn default() -> Self {
        BlockBytes {
            entries: [(0, 0); BYTES_WAYS],
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

/// Marks each `(address, root slot or 0 for a SATB entry)` pair and returns packets of the
/// newly marked objects and how many there were.
pub fn mark_all(
    rt: &Runtime,
    addrs: impl IntoIterator<Item = (usize, usize)>,
    bad: &BadRefs,
) -> (Vec<MarkPacket>, u64) {
    mark_found(
        rt,
        addrs.into_iter().map(|(a, slot)| (a, Found::root(slot))),
        bad,
    )
}

/// [`mark_all`] for references found anywhere (`Found` says where, for messages and for
/// repairing the slot when the target moves).
fn mark_found(
    rt: &Runtime,
    addrs: impl IntoIterator<Item = (usize, Found)>,
    bad: &BadRefs,
) -> (Vec<MarkPacket>, u64) {
    let mut packets = Vec::new();
    let mut cur = Vec::with_capacity(PACKET_SIZE);
    let mut n = 0;
    let mut lab = None;
    for (addr, from) in addrs {
        if addr == 0 {
            continue;
        }
        let addr = forward_edge(rt, addr, from, &mut lab);
        if mark(rt, addr, bad, from) {
            n += 1;
            cur.push(ObjRef::from_addr(addr).expect("non-zero"));
            if cur.len() == PACKET_SIZE {
                packets.push(std::mem::replace(&mut cur, Vec::with_capacity(PACKET_SIZE)));
            }
        }
    }
    if !cur.is_empty() {
        packets.push(cur);
    }
    if let Some(lab) = lab {
        rt.evac.give_lab(lab);
    }
    (packets, n)
}

/// Marks what the fields of the remembered objects `objs` refer to, a nursery cycle's
/// second set of roots (see `barriers::remember`), arming each object again; returns
/// packets of the newly marked objects and how many there were. Runs while the mutators
/// run: a field overwritten before it is read was logged by the SATB barrier, and a field
/// that refers into the collection set is repaired like any the markers meet.
pub fn mark_remembered(
    rt: &Runtime,
    buffers: Vec<Vec<usize>>,
    bad: &BadRefs,
) -> (Vec<MarkPacket>, u64) {
    let mut objs: Vec<usize> = buffers.into_iter().flatten().collect();
    objs.sort_unstable();
    objs.dedup();
    let edges = RememberedEdges {
        rt,
        bad,
        objs: objs.into_iter(),
        rest: None,
        fields: Vec::new(),
        next: 0,
    };
    mark_found(rt, edges, bad)
}

/// The fields of remembered objects, read one object (or [`SLICE_ITEMS`] items of an
/// array) at a time as the marker asks for them: gathered whole first, graph/t2's nursery
/// cycles held 3-4 MB of edges at once, and the allocator kept that much in each thread's
/// arena after.
struct RememberedEdges<'a> {
    rt: &'a Runtime,
    bad: &'a BadRefs,
    objs: std::vec::IntoIter<usize>,
    /// The array being read and its first item not yet read.
    rest: Option<(ObjRef, &'a TypeInfo, usize)>,
    fields: Vec<(usize, Found)>,
    next: usize,
}

impl<'a> RememberedEdges<'a> {
    /// The next remembered object that is valid, armed again, its type and first item (0).
    fn next_object(&mut self) -> Option<(ObjRef, &'a TypeInfo, usize)> {
        loop {
            let a = self.objs.next()?;
            let Some(obj) = ObjRef::from_addr(a) else {
                continue;
            };
            match validate::checked(&self.rt.space, &self.rt.types, obj) {
                Ok((info, _)) => {
                    // SAFETY: a checked, live object.
                    remember::arm(unsafe { obj.header() });
                    return Some((obj, info, 0));
                }
                Err(why) => self.bad.report(format!("remembered object {a:#x}: {why}")),
            }
        }
    }
}

impl Iterator for RememberedEdges<'_> {
    type Item = (usize, Found);

    fn next(&mut self) -> Option<(usize, Found)> {
        while self.next == self.fields.len() {
            let (obj, info, first) = match self.rest.take() {
                Some(r) => r,
                None => self.next_object()?,
            };
            self.fields.clear();
            self.next = 0;
            let end = first + SLICE_ITEMS;
            // SAFETY: a checked, live object of type `info`.
            if unsafe { info.sliceable_items(obj) } > end {
                self.rest = Some((obj, info, end));
            }
            let (a, fields) = (obj.addr(), &mut self.fields);
            // SAFETY: a live, initialised object of type `info`; reference slots are atomic
            // words, loaded with acquire (see `ObjRef::store_ref`).
            unsafe {
                info.for_each_slot_in(obj, first..end, |slot| {
                    let child = (*(slot as *const AtomicPtr<u8>)).load(Ordering::Acquire) as usize;
                    if child != 0 {
                        fields.push((child, Found::field(a, slot as usize)));
                    }
                })
            };
        }
        self.next += 1;
        Some(self.fields[self.next - 1])
    }
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
/// one entry in and the oldest out, is a swap with no length to keep.
#[derive(Debug)]
struct Ring<T: Copy> {
    slots: [(usize, T); PREFETCH_DEPTH],
    next: usize,
}

/// Entries in flight between prefetch and use (a power of two).
const PREFETCH_DEPTH: usize = 8;

impl<T: Copy + Default> Default for Ring<T> {
    fn default() -> Ring<T> {
        Ring {
            slots: [(0, T::default()); PREFETCH_DEPTH],
            next: 0,
        }
    }
}

impl<T: Copy + Default> Ring<T> {
    /// Puts `(addr, extra)` in (the caller prefetched what it needs of `addr`) and takes
    /// out the oldest entry, whose address is 0 when its slot was empty.
    #[inline(always)]
    fn exchange(&mut self, addr: usize, extra: T) -> (usize, T) {
        let out = std::mem::replace(&mut self.slots[self.next], (addr, extra));
        self.next = (self.next + 1) % PREFETCH_DEPTH;
        out
    }

    /// Takes out the oldest entry that is not empty.
    fn take_oldest(&mut self) -> Option<(usize, T)> {
        (0..PREFETCH_DEPTH).find_map(|i| {
            let slot = &mut self.slots[(self.next + i) % PREFETCH_DEPTH];
            let e = std::mem::take(slot);
            (e.0 != 0).then_some(e)
        })
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
        let (obj, info, first) = if let Some((obj, slice)) = as_slice(entry) {
            // SAFETY: a marked large object, checked when it was marked.
            let info = rt.types.get(unsafe { obj.type_id() });
            (obj, info.expect("checked when marked"), slice * SLICE_ITEMS)
        } else if rt.space.in_immix(entry.addr()) {
            match blacken_small(rt, entry, self.bad, &mut fly.carry.bytes) {
                Some(info) => (entry, info, 0),
                None => return 0,
            }
        } else {
            // SAFETY: entry is a marked large object, whose header `mark` checked.
            let info = rt.types.get(unsafe { entry.type_id() });
            (entry, info.expect("checked when marked"), 0)
        };
        if first == 0 && rt.config.generational {
            // Old from now on: the next store into it must record it.
            // SAFETY: a checked, live object.
            remember::arm(unsafe { obj.header() });
        }
        let mut end = usize::MAX;
        if !rt.space.in_immix(obj.addr()) {
            // SAFETY: a live large object of type `info`.
            let items = unsafe { info.sliceable_items(obj) };
            if items > first + SLICE_ITEMS {
                if let Some(rest) = slice_entry(obj.addr(), first / SLICE_ITEMS + 1) {
                    stack.push(rest);
                    end = first + SLICE_ITEMS;
                }
            }
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
    /// copy buffer back.
    pub fn finish(&self, mut carry: Carry) {
        carry.bytes.flush(&self.rt.space);
        if let Some(lab) = carry.lab {
            self.rt.evac.give_lab(lab);
        }
    }
}

/// The parallel marking phase.
pub struct MarkJob {
    /// The runtime being collected.
    pub rt: Arc<Runtime>,
    /// Invalid references found.
    pub bad: BadRefs,
    /// Objects marked by the workers.
    pub marked: AtomicU64,
    /// Running alongside mutators: drain SATB buffers, give way to waiting allocations.
    pub concurrent: bool,
    /// Set when a concurrent phase gave way.
    pub aborted: AtomicBool,
    /// Nanoseconds after `started` before which a waiting allocation does not make the
    /// markers give way (0: give way at once).
    give_way_after_ns: AtomicU64,
    started: std::time::Instant,
}

impl MarkJob {
    /// A marking job for `rt`.
    pub fn new(rt: Arc<Runtime>, concurrent: bool) -> MarkJob {
        MarkJob {
            rt,
            bad: BadRefs::default(),
            marked: AtomicU64::new(0),
            concurrent,
            aborted: AtomicBool::new(false),
            give_way_after_ns: AtomicU64::new(0),
            started: std::time::Instant::now(),
        }
    }

    /// Continues a phase that gave way: clears `aborted`, and from now on the markers give
    /// way only once `patience` has passed.
    pub fn resume_after_giving_way(&self, patience: std::time::Duration) {
        self.aborted.store(false, Ordering::Relaxed);
        let at = self.started.elapsed() + patience;
        self.give_way_after_ns
            .store(at.as_nanos() as u64, Ordering::Relaxed);
    }

    fn should_give_way(&self) -> bool {
        self.rt.requests.is_urgent()
            && self.started.elapsed().as_nanos() as u64
                >= self.give_way_after_ns.load(Ordering::Relaxed)
    }

    fn give_way(&self, ctx: &mut WorkerContext<'_, MarkPacket>, stack: &mut Vec<ObjRef>) {
        self.aborted.store(true, Ordering::Relaxed);
        for chunk in stack.chunks(PACKET_SIZE) {
            ctx.push(chunk.to_vec());
        }
        stack.clear();
        ctx.abort();
    }
}

impl MarkJob {
    /// Traces `packets` on the calling thread for up to `budget` objects, so a small
    /// closure (the usual final mark) costs no worker wake-ups. Returns what is left, as
    /// packets for the pool.
    pub fn drain_here(&self, packets: Vec<MarkPacket>, budget: usize) -> Vec<MarkPacket> {
        let mut stack: Vec<ObjRef> = packets.into_iter().flatten().collect();
        let (marked, _) = self.tracer().drain(&mut stack, budget);
        self.marked.fetch_add(marked, Ordering::Relaxed);
        stack.chunks(PACKET_SIZE).map(<[ObjRef]>::to_vec).collect()
    }

    fn tracer(&self) -> Tracer<'_> {
        Tracer {
            rt: &self.rt,
            bad: &self.bad,
        }
    }
}

impl Job<MarkPacket> for MarkJob {
    fn run(&self, ctx: &mut WorkerContext<'_, MarkPacket>) {
        let rt = &*self.rt;
        let tracer = self.tracer();
        let mut stack: Vec<ObjRef> = Vec::with_capacity(4 * PACKET_SIZE);
        let mut marked = 0u64;
        let mut carry = Carry::default();
        'phase: loop {
            if stack.is_empty() && self.concurrent {
                marked += tracer.take_satb(&mut stack).unwrap_or(0);
            }
            if stack.is_empty() {
                match ctx.next_packet() {
                    Some(p) => stack.extend(p),
                    None => break 'phase,
                }
            }
            while !stack.is_empty() {
                let (n, _) = tracer.drain_carrying(&mut stack, YIELD_CHECK_INTERVAL, &mut carry);
                marked += n;
                while stack.len() >= 2 * PACKET_SIZE {
                    let rest = stack.split_off(stack.len() - PACKET_SIZE);
                    ctx.push(rest);
                }
                if stack.len() >= 2 && ctx.queues_empty() {
                    // Nothing is queued for idle workers or assists.
                    ctx.push(Tracer::bottom_half(&mut stack));
                }
                if self.concurrent {
                    rt.assists.progress(n);
                    if self.should_give_way() {
                        self.give_way(ctx, &mut stack);
                        break 'phase;
                    }
                }
            }
        }
        tracer.finish(carry);
        self.marked.fetch_add(marked, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::stats::GcCause;
    use std::time::Duration;

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

    #[test]
    fn markers_give_way_to_a_waiting_allocation_only_after_the_patience() {
        let rt = Arc::new(Runtime::new(Config::default()).unwrap());
        let job = MarkJob::new(rt.clone(), true);
        assert!(!job.should_give_way(), "nothing waits yet");
        rt.requests.request(GcCause::AllocationFailure);
        assert!(job.should_give_way(), "at once by default");
        job.aborted.store(true, Ordering::Relaxed);
        job.resume_after_giving_way(Duration::from_secs(3600));
        assert!(!job.aborted.load(Ordering::Relaxed));
        assert!(!job.should_give_way(), "escalated marking is patient");
        job.resume_after_giving_way(Duration::ZERO);
        assert!(
            job.should_give_way(),
            "and gives way once the patience is spent"
        );
    }
}
