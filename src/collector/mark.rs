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
use super::validate::{self, Found, Place};
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

/// Marks the object at `addr` found in `from` (for messages); returns its type when this
/// call marked it (so the caller must scan it). A reference that [`validate`] rejects is
/// reported and not followed.
#[inline]
pub fn mark<'a>(rt: &'a Runtime, addr: usize, bad: &BadRefs, from: Found) -> Option<&'a TypeInfo> {
    let place = claim(rt, addr, bad, from)?;
    finish(rt, addr, place, bad, from)
}

/// The first half of [`mark`]: sets the mark bit of the object at `addr` from side
/// metadata alone, without reading the object; returns where it lies when this call set
/// the bit (the caller must then [`finish`] it). The tracer runs the halves a few edges
/// apart, so that only objects it claims have their headers fetched.
#[inline(always)]
fn claim(rt: &Runtime, addr: usize, bad: &BadRefs, from: Found) -> Option<Place> {
    let space = &rt.space;
    // The line mark is read once, for the black-allocation test and for `locate`.
    let located = if space.in_immix(addr) {
        let line = space.line_mark(addr);
        if line == crate::heap::metadata::black_stamp(space.epoch()) {
            // Allocated during this cycle's marking: live, and nothing it references needs
            // tracing through it (SATB covers every object reachable at the snapshot).
            return None;
        }
        validate::locate_small(space, addr, line)
    } else if space.in_heap(addr) && space.meta.is_marked(addr) {
        // A large object already marked: skip `locate`, which takes the space's lock.
        return None;
    } else {
        validate::locate(space, addr)
    };
    let place = match located {
        Ok(p) => p,
        Err(why) => {
            bad.report_ref(addr, from, why);
            return None;
        }
    };
    space.meta.mark(addr).then_some(place)
}

/// The second half of [`mark`], for an object [`claim`] marked at `place`: checks its
/// header and stamps its lines with the cycle's epoch; returns its type (None, reported,
/// when the header is not an object's).
#[inline(always)]
fn finish<'a>(
    rt: &'a Runtime,
    addr: usize,
    place: Place,
    bad: &BadRefs,
    from: Found,
) -> Option<&'a TypeInfo> {
    let space = &rt.space;
    let obj = ObjRef::from_addr(addr)?;
    // The header was written at allocation and published to us by the pause or by the
    // release store that made the object reachable.
    let (info, size) = match validate::object(&rt.types, obj, place) {
        Ok(v) => v,
        Err(why) => {
            bad.report_object(addr, from, why);
            return None;
        }
    };
    if !place.large {
        let epoch = space.epoch();
        space.meta.add_marked_bytes(space.block_of(addr), size);
        let (first, last) = (space.line_of(addr), space.line_of(addr + size - 1));
        for l in first..=last {
            // Relaxed: line marks are read by the sweep after the phase barrier of the pool.
            space.meta.line(l).store(epoch, Ordering::Relaxed);
        }
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
    let mut packets = Vec::new();
    let mut cur = Vec::with_capacity(PACKET_SIZE);
    let mut n = 0;
    let mut lab = None;
    for (addr, from) in addrs {
        if addr == 0 {
            continue;
        }
        let from = Found::root(from);
        let addr = forward_edge(rt, addr, from, &mut lab);
        if mark(rt, addr, bad, from).is_some() {
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

/// A small FIFO that prefetches what enters it and hands it out [`PREFETCH_DEPTH`] entries
/// later, so that cache misses on a large heap overlap instead of stalling the marker one
/// by one (edge enqueuing and grey-object prefetch, as in Garner, Blackburn and Frampton's
/// study of tracing and Boehm's mark stack prefetch). Three sit in each marker:
/// * between loading a reference and claiming its target (its mark word and line mark);
/// * between claiming an object and finishing it (its header: type and size). Most
///   references lead to objects already marked, whose headers are then never fetched;
/// * between popping an object from the mark stack and scanning it (the depth-first stack
///   holds many objects whose lines were evicted since they were marked).
#[derive(Debug)]
pub struct Prefetcher<T: Copy> {
    /// Entries `head..head + len` (wrapping) are in flight; the others are stale copies.
    ring: [T; PREFETCH_DEPTH],
    head: usize,
    len: usize,
}

/// Entries in flight between prefetch and use.
const PREFETCH_DEPTH: usize = 8;

/// An edge: a reference's target and where it was found (for messages about bad ones).
pub type Edge = (usize, Found);

impl<T: Copy + Default> Default for Prefetcher<T> {
    fn default() -> Prefetcher<T> {
        Prefetcher {
            ring: [T::default(); PREFETCH_DEPTH],
            head: 0,
            len: 0,
        }
    }
}

impl<T: Copy> Prefetcher<T> {
    /// Adds `item`, prefetching `addr`; when full, returns the oldest entry.
    #[inline]
    pub fn push(&mut self, addr: usize, item: T) -> Option<T> {
        prefetch(addr);
        self.enqueue(item)
    }

    /// Adds `item` (whose memory the caller prefetched); when full, returns the oldest entry.
    #[inline]
    pub fn enqueue(&mut self, item: T) -> Option<T> {
        if self.len == PREFETCH_DEPTH {
            // Full: the oldest leaves and the new entry takes its place.
            let out = std::mem::replace(&mut self.ring[self.head], item);
            self.head = (self.head + 1) % PREFETCH_DEPTH;
            return Some(out);
        }
        self.ring[(self.head + self.len) % PREFETCH_DEPTH] = item;
        self.len += 1;
        None
    }

    /// The oldest entry.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        let e = self.ring[self.head];
        self.head = (self.head + 1) % PREFETCH_DEPTH;
        self.len -= 1;
        Some(e)
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

/// What a tracer has in flight between loading references and pushing grey objects: edges
/// waiting for their mark words, claimed objects waiting for their headers, and the copy
/// buffer of objects it evacuated.
#[derive(Default)]
struct InFlight {
    edges: Prefetcher<Edge>,
    claimed: Prefetcher<Claimed>,
    lab: Option<CopyLab>,
}

/// An object whose mark bit this tracer set: its address, where it lies, where it was found.
type Claimed = (usize, Place, Found);

impl Tracer<'_> {
    /// Loads `obj`'s references into the edge FIFO, which marks them once their side
    /// metadata had time to arrive in the cache; returns how many objects that marked.
    fn scan(&self, obj: ObjRef, fly: &mut InFlight, stack: &mut Vec<ObjRef>) -> u64 {
        let rt = self.rt;
        let mut marked = 0;
        // SAFETY: obj is marked and live; its type was checked when it was marked.
        let info = rt
            .types
            .get(unsafe { obj.type_id() })
            .expect("checked when marked");
        // SAFETY: obj is a live, initialised object of type `info`; reference slots are
        // atomic words, loaded with acquire (see `ObjRef::store_ref`).
        unsafe {
            info.for_each_slot(obj, |slot| {
                let child = (*(slot as *const AtomicPtr<u8>)).load(Ordering::Acquire) as usize;
                if child != 0 {
                    rt.space.meta.prefetch_marks(child);
                    let found = Found::field(obj.addr(), slot as usize);
                    if let Some(edge) = fly.edges.enqueue((child, found)) {
                        marked += self.mark_edge(edge, fly, stack);
                    }
                }
            })
        };
        marked
    }

    /// Claims one edge's target (its copy, when it moves); a claimed object enters the
    /// header FIFO, and the one leaving it is finished and pushed for scanning. Returns
    /// how many objects that marked.
    #[inline(always)]
    fn mark_edge(&self, (child, from): Edge, fly: &mut InFlight, stack: &mut Vec<ObjRef>) -> u64 {
        let child = forward_edge(self.rt, child, from, &mut fly.lab);
        match claim(self.rt, child, self.bad, from) {
            Some(place) => match fly.claimed.push(child, (child, place, from)) {
                Some(c) => self.finish_claimed(c, stack),
                None => 0,
            },
            None => 0,
        }
    }

    /// Finishes marking a claimed object and pushes it for scanning; 1 when it was one.
    #[inline(always)]
    fn finish_claimed(&self, (addr, place, from): Claimed, stack: &mut Vec<ObjRef>) -> u64 {
        match finish(self.rt, addr, place, self.bad, from) {
            Some(_) => {
                stack.push(ObjRef::from_addr(addr).expect("non-zero"));
                1
            }
            None => 0,
        }
    }

    /// The next object to scan: one popped from the stack a few pops ago (prefetched since);
    /// when the stack runs dry, what is in flight is marked first (it may refill it).
    /// None when nothing is left locally.
    #[inline]
    fn next_grey(
        &self,
        greys: &mut Prefetcher<Option<ObjRef>>,
        fly: &mut InFlight,
        stack: &mut Vec<ObjRef>,
        marked: &mut u64,
    ) -> Option<ObjRef> {
        loop {
            if let Some(obj) = stack.pop() {
                match greys.push(obj.addr(), Some(obj)) {
                    Some(ready) => return ready,
                    None => continue,
                }
            }
            if let Some(obj) = greys.pop() {
                return obj;
            }
            *marked += self.flush(fly, stack);
            if stack.is_empty() {
                return None;
            }
        }
    }

    /// Marks every edge and finishes every claimed object still in flight.
    fn flush(&self, fly: &mut InFlight, stack: &mut Vec<ObjRef>) -> u64 {
        let mut marked = 0;
        while let Some(edge) = fly.edges.pop() {
            marked += self.mark_edge(edge, fly, stack);
        }
        while let Some(c) = fly.claimed.pop() {
            marked += self.finish_claimed(c, stack);
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
        let mut fly = InFlight::default();
        let mut greys = Prefetcher::<Option<ObjRef>>::default();
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
        stack.extend(std::iter::from_fn(|| greys.pop()).flatten());
        if let Some(lab) = fly.lab {
            self.rt.evac.give_lab(lab);
        }
        (marked, scanned)
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
                let (n, _) = tracer.drain(&mut stack, YIELD_CHECK_INTERVAL);
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
    fn the_prefetcher_hands_entries_out_in_order_once_full() {
        let mut p = Prefetcher::<usize>::default();
        for i in 0..PREFETCH_DEPTH {
            assert_eq!(p.push(i, i), None, "holds up to its depth");
        }
        assert_eq!(p.push(100, 100), Some(0));
        assert_eq!(p.push(101, 101), Some(1));
        let rest: Vec<usize> = std::iter::from_fn(|| p.pop()).collect();
        let mut want: Vec<usize> = (2..PREFETCH_DEPTH).collect();
        want.extend([100, 101]);
        assert_eq!(rest, want);
        assert_eq!(p.pop(), None);
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
