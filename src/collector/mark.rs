//! Parallel marking: roots are marked into seed packets, then the workers trace the type
//! table's reference slots, stamping each marked object's lines with the cycle's epoch.

use crate::object::{ObjRef, TypeInfo};
use crate::runtime::Runtime;
use crate::workers::{Job, WorkerContext};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Objects per work packet.
pub const PACKET_SIZE: usize = 512;

/// A batch of marked objects whose fields are still to be scanned.
pub type MarkPacket = Vec<ObjRef>;

/// Invalid references met while marking (a VM bug), counted and described.
#[derive(Debug, Default)]
pub struct BadRefs {
    count: AtomicU64,
    messages: Mutex<Vec<String>>,
}

impl BadRefs {
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
/// call marked it (so the caller must scan it).
#[inline]
pub fn mark<'a>(rt: &'a Runtime, addr: usize, bad: &BadRefs, from: usize) -> Option<&'a TypeInfo> {
    let space = &rt.space;
    if !space.in_heap(addr) || !addr.is_multiple_of(8) {
        bad.report(format!(
            "invalid reference {addr:#x} found in {from:#x}: not an object address in the heap"
        ));
        return None;
    }
    if !space.meta.mark(addr) {
        return None;
    }
    let obj = ObjRef::from_addr(addr)?;
    // SAFETY: a heap address reached from a root; its header was written at allocation.
    let ty = unsafe { obj.type_id() };
    let Some(info) = rt.types.get(ty) else {
        bad.report(format!(
            "object {addr:#x} (found in {from:#x}) has unknown type id {}: corrupt header",
            ty.0
        ));
        return None;
    };
    if space.in_immix(addr) {
        // SAFETY: a live object of type `info`.
        let size = unsafe { info.size_of(obj) };
        if size > crate::heap::LARGE_OBJECT_THRESHOLD {
            bad.report(format!(
                "object {addr:#x} (type {}) claims {size} bytes in a block: corrupt length",
                ty.0
            ));
            return None;
        }
        let epoch = space.epoch();
        let (first, last) = (space.line_of(addr), space.line_of(addr + size - 1));
        for l in first..=last {
            // Relaxed: line marks are read by the sweep after the phase barrier of the pool.
            space.meta.line(l).store(epoch, Ordering::Relaxed);
        }
    }
    Some(info)
}

/// The parallel marking phase.
pub struct MarkJob {
    /// The runtime being collected.
    pub rt: Arc<Runtime>,
    /// Invalid references found.
    pub bad: BadRefs,
    /// Objects marked by the workers (roots not included).
    pub marked: AtomicU64,
}

impl Job<MarkPacket> for MarkJob {
    fn run(&self, ctx: &mut WorkerContext<'_, MarkPacket>) {
        let rt = &*self.rt;
        let mut stack: Vec<ObjRef> = Vec::with_capacity(4 * PACKET_SIZE);
        let mut marked = 0u64;
        while let Some(packet) = ctx.next_packet() {
            stack.extend(packet);
            while let Some(obj) = stack.pop() {
                // SAFETY: obj is marked and live; its type was checked when it was marked.
                let info = rt
                    .types
                    .get(unsafe { obj.type_id() })
                    .expect("checked when marked");
                // SAFETY: obj is a live, initialised object of type `info`.
                unsafe {
                    info.for_each_slot(obj, |slot| {
                        let child = *slot as usize;
                        if child != 0 && mark(rt, child, &self.bad, obj.addr()).is_some() {
                            marked += 1;
                            stack.push(ObjRef::from_addr(child).expect("non-zero"));
                        }
                    })
                };
                if stack.len() >= 2 * PACKET_SIZE {
                    let rest = stack.split_off(stack.len() - PACKET_SIZE);
                    ctx.push(rest);
                }
            }
        }
        self.marked.fetch_add(marked, Ordering::Relaxed);
    }
}

/// Marks what the roots point to and returns the seed packets (and the count marked).
pub fn mark_roots(
    rt: &Runtime,
    each_root_slot: impl FnOnce(&mut dyn FnMut(*mut *mut u8)),
    bad: &BadRefs,
) -> (Vec<MarkPacket>, u64) {
    let mut seeds = Vec::new();
    let mut cur = Vec::with_capacity(PACKET_SIZE);
    let mut n = 0;
    each_root_slot(&mut |slot| {
        // SAFETY: root slots are valid for reads while the world is stopped.
        let p = unsafe { slot.read() } as usize;
        if p != 0 && mark(rt, p, bad, slot as usize).is_some() {
            n += 1;
            cur.push(ObjRef::from_addr(p).expect("non-zero"));
            if cur.len() == PACKET_SIZE {
                seeds.push(std::mem::replace(&mut cur, Vec::with_capacity(PACKET_SIZE)));
            }
        }
    });
    if !cur.is_empty() {
        seeds.push(cur);
    }
    (seeds, n)
}
