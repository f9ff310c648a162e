//! Marking: roots and SATB entries are marked into packets, then workers trace the type
//! table's reference slots, stamping each marked object's lines with the cycle's epoch.
//!
//! The same job runs in a pause (stop-the-world or final mark, all workers) and
//! concurrently with the mutators (`TANDEM_CONC_THREADS` workers). Concurrently, reference
//! slots are read with acquire loads (mutators store with release), workers also drain the
//! SATB queue, and they give way (publish their work and return) when an allocation is
//! waiting for the cycle: the cycle then goes on concurrently with every worker, and only
//! if that too keeps allocations waiting does the pause finish the trace.

mod remembered;
mod tracer;

pub use remembered::mark_remembered;
pub use tracer::{Carry, Tracer, SLICE_ITEMS};

use super::evacuate::forward_edge;
use super::validate::{self, Found};
use crate::object::ObjRef;
use crate::runtime::Runtime;
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

/// The parallel marking phase.
pub struct MarkJob {
    /// The runtime being collected.
    pub rt: Arc<Runtime>,
    /// Invalid references found.
    pub bad: BadRefs,
    /// Objects marked by the workers.
    pub marked: AtomicU64,
    /// Bytes of the small objects the workers blackened.
    pub marked_bytes: AtomicU64,
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
            marked_bytes: AtomicU64::new(0),
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
        let bytes = tracer.finish(carry);
        self.marked_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
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
