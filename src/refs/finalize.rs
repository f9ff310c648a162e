//! Finalizer queues (PyPy's `FinalizerQueue`): the VM registers objects with a queue; when
//! one dies, it and everything it reaches stay alive, it goes to the queue's ready list
//! (a root) in the order [`super::order`] gives, and the queue's trigger runs on a mutator
//! thread, which takes the objects with [`FinalizerQueues::next_dead`] and finalizes them.
//! Each registration is delivered at most once; a resurrected object that should be
//! finalized again is registered again.

use super::{dead, follow, order};
use crate::collector::validate;
use crate::heap::ADDRESS_BITS;
use crate::object::{ObjRef, FLAG_NO_DESTRUCTOR};
use crate::runtime::Runtime;
use crate::sync::unmodelled::Arc;
use crate::sync::{AtomicBool, Mutex, Ordering};
use std::collections::VecDeque;

/// A queue's trigger: called on a mutator thread after a cycle that queued something.
pub type Trigger = Arc<dyn Fn() + Send + Sync>;

/// One finalizer queue.
pub struct FinalizerQueue {
    ready: Mutex<VecDeque<usize>>,
    trigger: Option<Trigger>,
    fresh: AtomicBool,
}

/// Every finalizer queue, by id (the index).
#[derive(Default)]
pub struct FinalizerQueues {
    list: Mutex<Vec<Arc<FinalizerQueue>>>,
}

/// Most finalizer queues a heap can have.
pub const MAX_QUEUES: usize = 1 << 16;
const _: () = assert!(MAX_QUEUES <= 1 << (64 - ADDRESS_BITS));

/// An object registered with a finalizer queue, in one word: its address in the low
/// [`ADDRESS_BITS`] and the queue's id above. A program whose objects all have finalizers
/// (Python's `__del__`) holds one per object allocated since the last cycle, and reference
/// processing holds a second copy of the dying ones: as (address, id) pairs, 16 bytes
/// each with padding, they and their lists' growth took most of such a program's 219 MB
/// peak RSS (heap 75 MB).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Registration(u64);

impl Registration {
    /// `addr` (a heap object) registered with queue `queue` (below [`MAX_QUEUES`]).
    pub fn new(addr: usize, queue: u32) -> Registration {
        // One compare per registration: an address past the bits would land in another
        // queue.
        assert!(addr >> ADDRESS_BITS == 0 && (queue as usize) < MAX_QUEUES);
        Registration(addr as u64 | u64::from(queue) << ADDRESS_BITS)
    }

    /// The object.
    pub fn addr(self) -> usize {
        (self.0 & ((1 << ADDRESS_BITS) - 1)) as usize
    }

    /// The queue's id.
    pub fn queue(self) -> u32 {
        (self.0 >> ADDRESS_BITS) as u32
    }

    /// The same queue, for the object now at `addr` (it moved).
    fn moved(self, addr: usize) -> Registration {
        Registration::new(addr, self.queue())
    }
}

impl FinalizerQueues {
    /// A new queue whose `trigger` runs after cycles that queue something; its id.
    pub fn create(&self, trigger: Option<Trigger>) -> crate::Result<u32> {
        let mut l = self.list.lock();
        if l.len() >= MAX_QUEUES {
            return Err(crate::Error::State(format!(
                "too many finalizer queues (at most {MAX_QUEUES})"
            )));
        }
        l.push(Arc::new(FinalizerQueue {
            ready: Mutex::new(VecDeque::new()),
            trigger,
            fresh: AtomicBool::new(false),
        }));
        Ok(l.len() as u32 - 1)
    }

    /// The queue `id`, or an error naming it.
    pub fn get(&self, id: u32) -> crate::Result<Arc<FinalizerQueue>> {
        self.list.lock().get(id as usize).cloned().ok_or_else(|| {
            crate::Error::InvalidArgument(format!("{id} is not a finalizer queue of this heap"))
        })
    }

    /// Takes the next dead object of queue `id` (None when it has none), as `resolve` maps
    /// it: under the queue's lock, so that an entry [`FinalizerQueues::follow_moved`] has
    /// not repaired yet is resolved before its object's original can be freed.
    pub fn next_dead(
        &self,
        id: u32,
        resolve: impl FnOnce(usize) -> usize,
    ) -> crate::Result<Option<ObjRef>> {
        let q = self.get(id)?;
        let mut ready = q.ready.lock();
        Ok(ready.pop_front().map(resolve).and_then(ObjRef::from_addr))
    }

    /// Calls `f` with every ready list's slots (roots until the VM takes them).
    pub fn for_each_root(&self, f: &mut dyn FnMut(*mut *mut u8)) {
        for q in self.list.lock().iter() {
            for a in q.ready.lock().iter_mut() {
                f(a as *mut usize as *mut *mut u8);
            }
        }
    }

    /// Every ready list's objects, copied under each queue's lock: what a concurrent cycle
    /// marks from after its init-mark pause, which leaves them out. Sound because nothing
    /// is added to a ready list while marking runs, and an object the program takes before
    /// the copy is shaded by `Mutator::next_dead`.
    pub fn ready_snapshot(&self) -> Vec<usize> {
        let queues = self.list.lock().clone();
        let mut all = Vec::new();
        for q in queues {
            all.extend(q.ready.lock().iter().copied());
        }
        all
    }

    /// Repoints every ready list's entries at the copies of objects that moved (after
    /// marking, before the collection set dissolves; the lists were not roots of the
    /// pauses that repair roots).
    pub fn follow_moved(&self, rt: &Runtime) {
        let queues = self.list.lock().clone();
        for q in queues {
            for a in q.ready.lock().iter_mut() {
                follow(rt, a);
            }
        }
    }

    /// The triggers of the queues that received objects since they last ran.
    pub fn fresh_triggers(&self) -> Vec<Trigger> {
        self.list
            .lock()
            .iter()
            .filter(|q| q.fresh.swap(false, Ordering::Relaxed))
            .filter_map(|q| q.trigger.clone())
            .collect()
    }

    /// Puts each registration's object at the end of its queue's ready list, in address
    /// order within a queue (step 2 of reference processing: the objects delivered
    /// together are all finalizable now, in any order); returns how many. Each queue's lock
    /// is taken once per run of entries for it, not once per object (the program taking
    /// objects contends for it).
    pub fn deliver_all(&self, entries: &mut [Registration]) -> usize {
        // By queue, then address: in place (a stable sort would allocate half as much again).
        entries.sort_unstable();
        let list = self.list.lock().clone();
        let mut n = 0;
        for run in entries.chunk_by(|a, b| a.queue() == b.queue()) {
            if let Some(q) = list.get(run[0].queue() as usize) {
                q.ready.lock().extend(run.iter().map(|e| e.addr()));
                q.fresh.store(true, Ordering::Relaxed);
                n += run.len();
            }
        }
        n
    }
}

fn ignored(addr: usize) -> bool {
    // SAFETY: a registered object, not yet swept: its header is readable.
    let h = unsafe { ObjRef::from_addr(addr).expect("non-zero").header() };
    h.load(Ordering::Relaxed) & FLAG_NO_DESTRUCTOR != 0
}

/// Step 2 of reference processing: delivers the dead registered objects that nothing else
/// finalizable reaches, keeps the rest registered, and marks from all of them (a nursery
/// cycle delivers none, see below). Returns how many it delivered.
pub fn resurrect(
    rt: &Runtime,
    registered: &mut Vec<Registration>,
    mark: &mut dyn FnMut(Vec<usize>),
) -> usize {
    let mut dying = Vec::new();
    registered.retain_mut(|r| {
        let mut a = r.addr();
        follow(rt, &mut a);
        *r = r.moved(a);
        // Liveness first, from the mark bits: a live object's header is read only when it
        // dies (reading it for each of a million live registrations cost a cache miss each,
        // every cycle: 100-200 ms of stalls). A live ignored one is dropped when it dies.
        if !dead(rt, a) {
            return true;
        }
        if !ignored(a) {
            dying.push(*r);
        }
        false
    });
    if dying.is_empty() {
        return 0;
    }
    // By address, so that `roots` (deduplicated: an object may be registered with several
    // queues) and the verdicts line up with `dying` in one pass below.
    dying.sort_unstable_by_key(|r| r.addr());
    let mut roots: Vec<usize> = dying.iter().map(|r| r.addr()).collect();
    roots.dedup();
    // A nursery cycle counts every old object live, dead or not: what a dead young
    // finalizable object reaches among them may be garbage whose weakrefs still stand, and
    // delivering it would hand the finalizer objects those weakrefs hand out too. So it
    // delivers nothing: the objects stay registered, kept (promoted) with what they reach,
    // for the next full cycle, at most `NURSERY_MAX_RUN` cycles away (PyPy's minor
    // collections likewise leave objects with finalizers to the major one; forcing a full
    // cycle at once would make a VM with many young finalizable objects run little else).
    let now: Vec<bool> = if rt.last_cycle_full() {
        order::deliverable(&roots, |a, out| dead_children(rt, a, out))
    } else {
        vec![false; roots.len()]
    };
    let verdicts: Vec<usize> = roots
        .iter()
        .zip(&now)
        .filter_map(|(&a, &now)| now.then_some(a))
        .collect();
    drop(now);
    mark(roots);
    // `dying` becomes the delivered ones in place; the rest go back to `registered`.
    let mut verdict = verdicts.iter().peekable();
    dying.retain_mut(|r| {
        let a = r.addr();
        while verdict.next_if(|&&v| v < a).is_some() {}
        let now = verdict.peek().is_some_and(|&&v| v == a);
        let mut to = a;
        follow(rt, &mut to);
        *r = r.moved(to);
        if !now {
            registered.push(*r);
        }
        now
    });
    rt.refs.queues.deliver_all(&mut dying)
}

/// The dead objects `addr` (a dead object) refers to.
fn dead_children(rt: &Runtime, addr: usize, out: &mut Vec<usize>) {
    let obj = ObjRef::from_addr(addr).expect("non-zero");
    let Ok((info, _)) = validate::checked(&rt.space, &rt.types, obj) else {
        return;
    };
    // SAFETY: a valid object, not yet swept; its slots hold references or null.
    unsafe {
        info.for_each_slot(obj, |slot| {
            let v =
                (*(slot as *const crate::sync::raw::AtomicU64)).load(Ordering::Relaxed) as usize;
            // An invalid reference becomes a node without children (`locate` fails on it
            // above when its turn comes); marking reports it when it resurrects it.
            if v != 0 && dead(rt, v) {
                out.push(v);
            }
        })
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registration_holds_any_heap_address_with_any_queue() {
        let top = (1usize << ADDRESS_BITS) - 8;
        let last = MAX_QUEUES as u32 - 1;
        for (addr, queue) in [(0x1000, 0), (top, 0), (0x1000, last), (top, last)] {
            let r = Registration::new(addr, queue);
            assert_eq!((r.addr(), r.queue()), (addr, queue));
            let to = addr + 8 - (addr == top) as usize * 16;
            let m = r.moved(to);
            assert_eq!((m.addr(), m.queue()), (to, queue), "a move keeps the queue");
        }
        // Sorted, they run by queue and then by address: what `deliver_all` needs.
        let mut v = [
            Registration::new(0x3000, 1),
            Registration::new(top, 0),
            Registration::new(0x2000, 1),
            Registration::new(0x1000, 0),
        ];
        v.sort_unstable();
        let got: Vec<(u32, usize)> = v.iter().map(|r| (r.queue(), r.addr())).collect();
        assert_eq!(got, [(0, 0x1000), (0, top), (1, 0x2000), (1, 0x3000)]);
    }

    #[test]
    fn deliver_all_fills_each_queue_in_address_order() {
        let qs = FinalizerQueues::default();
        let (a, b) = (qs.create(None).unwrap(), qs.create(None).unwrap());
        let mut v = [
            Registration::new(0x3000, b),
            Registration::new(0x2000, a),
            Registration::new(0x1000, b),
        ];
        assert_eq!(qs.deliver_all(&mut v), 3);
        let take = |q: u32| -> Vec<usize> {
            std::iter::from_fn(|| qs.next_dead(q, |x| x).unwrap().map(|o| o.addr())).collect()
        };
        assert_eq!(take(a), [0x2000]);
        assert_eq!(take(b), [0x1000, 0x3000]);
    }
}
