//! Finalizer queues (PyPy's `FinalizerQueue`): the VM registers objects with a queue; when
//! one dies, it and everything it reaches stay alive, it goes to the queue's ready list
//! (a root) in the order [`super::order`] gives, and the queue's trigger runs on a mutator
//! thread, which takes the objects with [`FinalizerQueues::next_dead`] and finalizes them.
//! Each registration is delivered at most once; a resurrected object that should be
//! finalized again is registered again.

use super::{dead, follow, order};
use crate::collector::validate;
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

    /// Puts each `(queue id, addr)` at the end of its queue's ready list, in the order
    /// given for each queue (step 2 of reference processing); returns how many. Each
    /// queue's lock is taken once per run of entries for it, not once per object (the
    /// program taking objects contends for it).
    pub fn deliver_all(&self, entries: &mut [(u32, usize)]) -> usize {
        // Stable: each queue keeps the entries' order.
        entries.sort_by_key(|e| e.0);
        let list = self.list.lock().clone();
        let mut n = 0;
        for run in entries.chunk_by(|a, b| a.0 == b.0) {
            if let Some(q) = list.get(run[0].0 as usize) {
                q.ready.lock().extend(run.iter().map(|e| e.1));
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
    registered: &mut Vec<(usize, u32)>,
    mark: &mut dyn FnMut(Vec<usize>),
) -> usize {
    let mut dying = Vec::new();
    registered.retain_mut(|(a, q)| {
        follow(rt, a);
        // Liveness first, from the mark bits: a live object's header is read only when it
        // dies (reading it for each of a million live registrations cost a cache miss each,
        // every cycle: 100-200 ms of stalls). A live ignored one is dropped when it dies.
        if !dead(rt, *a) {
            return true;
        }
        if !ignored(*a) {
            dying.push((*a, *q));
        }
        false
    });
    if dying.is_empty() {
        return 0;
    }
    // By address, so that `roots` (deduplicated: an object may be registered with several
    // queues) and the verdicts line up with `dying` in one pass below.
    dying.sort_unstable();
    let mut roots: Vec<usize> = dying.iter().map(|e| e.0).collect();
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
    let verdicts: Vec<(usize, bool)> = roots.iter().copied().zip(now).collect();
    mark(roots);
    let mut delivered = Vec::new();
    let mut verdict = verdicts.iter().peekable();
    for (a, q) in dying {
        while verdict.next_if(|v| v.0 < a).is_some() {}
        let now = verdict.peek().is_some_and(|v| v.0 == a && v.1);
        let mut to = a;
        follow(rt, &mut to);
        if now {
            delivered.push((q, to));
        } else {
            registered.push((to, q));
        }
    }
    rt.refs.queues.deliver_all(&mut delivered)
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
