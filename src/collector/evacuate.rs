//! Evacuation: compacting the heap while marking traces it (Immix's opportunistic
//! defragmentation, made concurrent by a load barrier).
//!
//! 1. **Choose** ([`Evacuation::choose`], in the pause that starts a cycle, from a survey
//!    made just before it): the blocks at most three quarters used (the bytes the last
//!    marking found live there, plus lines allocated since), sparsest first, while their
//!    bytes fit in half the free headroom. They leave the allocation pools; no new object goes there.
//! 2. **Fix the roots** (same pause): every root into the set is copied and its slot
//!    updated, so mutators start out holding no address in the set.
//! 3. **Trace and copy**: a tracer that meets a reference into the set copies the object
//!    (or finds its copy, see `object::forward`), repairs the field it read, and marks and
//!    scans the copy instead. In concurrent mode the mutators' load barrier does the same
//!    for every reference they load from the heap, into a copy buffer of their own; SATB
//!    marking then reaches every copy a mutator made (it holds only objects the snapshot
//!    reaches, or new ones), so every live copy is scanned and its fields repaired.
//! 4. **Finish** (the pause that ends marking): every live object was scanned, so no field
//!    of a live object and no root holds an address in the set. The copy buffers are
//!    retired, the set is dissolved, and the sweep frees the old copies' lines like any
//!    dead object's: only objects that stayed (pinned, or no memory to copy them) keep
//!    lines live in those blocks.
//!
//! Copies are stamped as fresh lines, never black: a copy is live only once the tracer
//! marks it, which also makes it scanned (a black copy would keep its fields unrepaired).

use crate::alloc::{BumpWindow, TlabState};
use crate::heap::metadata::{LINE_FREE, MAX_EPOCH};
use crate::heap::{Space, BLOCK_SIZE, LINE_SIZE};
use crate::object::forward::{self, CopyBuffer, Evacuated, FLAG_STAYS};
use crate::object::{ObjRef, TypeRegistry};
use crate::sync::unmodelled::AtomicU64;
use crate::sync::{AtomicBool, Mutex, Ordering};

/// A thread's copy buffer: a bump window over fresh (not black) lines.
#[derive(Debug, Default)]
pub struct CopyLab {
    window: BumpWindow,
    state: TlabState,
}

impl CopyLab {
    /// Gives back its blocks (they are swept with the rest); returns the bytes it handed out.
    pub fn retire(&mut self, space: &Space) -> usize {
        self.state.retire(&mut self.window, space);
        self.state.take_allocated()
    }
}

/// A [`CopyLab`] with the space it allocates from.
struct LabIn<'a> {
    lab: &'a mut CopyLab,
    space: &'a Space,
}

impl CopyBuffer for LabIn<'_> {
    fn alloc(&mut self, size: usize) -> Option<usize> {
        if let Some(a) = self.lab.window.bump(size) {
            return Some(a);
        }
        let lab = &mut *self.lab;
        lab.state
            .alloc_slow(&mut lab.window, self.space, size, false)
            .ok()
            .flatten()
    }

    fn retract(&mut self, addr: usize, size: usize) {
        if self.lab.window.cursor == addr + size {
            self.lab.window.cursor = addr;
        }
        // Otherwise the lost copy is an unmarked object: its lines are freed by the sweep
        // unless a live neighbour keeps them.
    }
}

/// The collection set of the running cycle and the evacuation's own state.
#[derive(Debug, Default)]
pub struct Evacuation {
    active: AtomicBool,
    blocks: Mutex<Vec<usize>>,
    labs: Mutex<Vec<CopyLab>>,
    stayed: Mutex<Vec<usize>>,
    copied_bytes: AtomicU64,
    copied_objects: AtomicU64,
}

/// Most bytes in use a block may have to be chosen: a quarter of it is free (on the bench,
/// half left graph/t2 at 98 MiB RSS, three quarters 65 MiB, seven eighths 61 MiB).
const MAX_USED: usize = BLOCK_SIZE * 3 / 4;

/// What one cycle's evacuation did.
#[derive(Debug, Default, Clone, Copy)]
pub struct EvacuationReport {
    /// Blocks in the collection set.
    pub blocks: usize,
    /// Bytes copied (the copies' sizes).
    pub copied_bytes: u64,
    /// Objects copied.
    pub copied_objects: u64,
    /// Objects of the set that stayed in place (pinned, or no memory to copy them).
    pub stayed: usize,
}

impl Evacuation {
    /// Whether a collection set exists: tracers and load barriers must resolve references.
    #[inline(always)]
    pub fn active(&self) -> bool {
        // Relaxed: set and cleared in pauses, which order them for every reader.
        self.active.load(Ordering::Relaxed)
    }

    /// The blocks worth evacuating, sparsest first, as (estimated bytes in use, block): the
    /// bytes the last marking found live there, plus the lines allocated since its sweep.
    /// With `all` (`TANDEM_EVACUATE_ALL`), every block with room for a line more is worth
    /// it. Read before the pause, so that the pause does not scan the line table.
    pub fn survey(space: &Space, all: bool) -> Vec<(usize, usize)> {
        let max_used = if all {
            BLOCK_SIZE - LINE_SIZE
        } else {
            MAX_USED
        };
        let mut candidates = Vec::new();
        for c in space.committed_chunks() {
            let first = crate::heap::blocks::chunk_first_block(c);
            for b in first..first + crate::heap::BLOCKS_PER_CHUNK {
                let live = space.meta.live_bytes(b);
                if live == 0 {
                    // Free, or filled only since the last sweep: nothing to compact.
                    continue;
                }
                // Epoch stamps are live lines of the last marking; higher values are fresh
                // or black lines, allocated since.
                let since = space
                    .meta
                    .block_lines(b)
                    .iter()
                    .filter(|l| l.load(Ordering::Relaxed) > MAX_EPOCH)
                    .count();
                let used = live + since * LINE_SIZE;
                if used <= max_used {
                    candidates.push((used, b));
                }
            }
        }
        candidates.sort_unstable();
        candidates
    }

    /// Chooses the collection set from a [`Evacuation::survey`] (call in a pause, after
    /// the TLABs were retired and with the last sweep finished): candidates while their
    /// lines fit in half the free headroom and in `limit` bytes. Returns its size in blocks.
    pub fn choose(&self, space: &Space, candidates: &[(usize, usize)], limit: usize) -> usize {
        use crate::heap::metadata::BlockState;
        let headroom = space.heap_max().saturating_sub(space.committed())
            + space.pools.free.len() * BLOCK_SIZE;
        let budget = (headroom / 2).min(limit);
        let mut chosen = self.blocks.lock();
        let mut bytes = 0;
        for &(used, b) in candidates {
            if bytes + used > budget {
                break;
            }
            // A block freed or re-pooled since the survey is not worth it any more.
            if !matches!(
                space.meta.block_state(b),
                BlockState::Recyclable | BlockState::Full
            ) {
                continue;
            }
            bytes += used;
            space.meta.set_cset(b, true);
            chosen.push(b);
        }
        if chosen.is_empty() {
            return 0;
        }
        // The chosen blocks leave the recyclable pool: no allocation goes there.
        let kept: Vec<u32> = std::iter::from_fn(|| space.pools.recyclable.pop())
            .filter(|&b| !space.meta.in_cset(b as usize))
            .collect();
        for b in kept {
            space.pools.recyclable.push(b);
        }
        self.active.store(true, Ordering::Relaxed);
        tracing::debug!(blocks = chosen.len(), bytes, "collection set chosen");
        chosen.len()
    }

    /// A copy buffer for a tracer (give it back with [`Evacuation::give_lab`]).
    pub fn take_lab(&self) -> CopyLab {
        self.labs.lock().pop().unwrap_or_default()
    }

    /// Returns a copy buffer taken with [`Evacuation::take_lab`].
    pub fn give_lab(&self, lab: CopyLab) {
        self.labs.lock().push(lab);
    }

    /// The address the object at `addr` has now: `addr` unless it lies in the collection
    /// set, else its copy (made now into `lab` if nobody copied it yet), or `addr` when it
    /// stays in place.
    ///
    /// # Safety
    /// `addr` must be a reference a tracer or a mutator legitimately holds: an object that
    /// was reachable when the set was chosen, or a copy.
    #[inline]
    pub unsafe fn resolve(
        &self,
        space: &Space,
        types: &TypeRegistry,
        addr: usize,
        lab: &mut CopyLab,
    ) -> usize {
        if !space.in_cset(addr)
            || space.meta.line(space.line_of(addr)).load(Ordering::Relaxed) == LINE_FREE
        {
            // Not moving; or a bad reference (a free line), which marking reports.
            return addr;
        }
        let Some(obj) = ObjRef::from_addr(addr) else {
            return addr;
        };
        let base_size = |h: u64| {
            let info = types.get(crate::object::TypeId::of_header(h))?;
            // SAFETY: a valid header of a live object (caller's contract) of type `info`.
            unsafe { info.size_of(obj) }
        };
        let mut buf = LabIn { lab, space };
        // SAFETY: caller's contract; the set's objects change only as `evacuate` expects.
        match unsafe { forward::evacuate(obj, base_size, &mut buf) } {
            Evacuated::Copied(to) => {
                self.copied_objects.fetch_add(1, Ordering::Relaxed);
                to
            }
            Evacuated::Moved(to) => to,
            Evacuated::Stays(set) => {
                if set {
                    self.stayed.lock().push(addr);
                }
                addr
            }
        }
    }

    /// Ends the evacuation (in the pause that ends marking, with every copy buffer of the
    /// mutators retired first): retires the tracers' buffers, clears FLAG_STAYS, dissolves
    /// the set. Returns what it did.
    pub fn finish(&self, space: &Space, mutator_bytes: usize) -> EvacuationReport {
        let mut copied = mutator_bytes as u64;
        for mut lab in std::mem::take(&mut *self.labs.lock()) {
            copied += lab.retire(space) as u64;
        }
        let stayed = std::mem::take(&mut *self.stayed.lock());
        for &a in &stayed {
            // SAFETY: an object of the set that stayed: live, never forwarded.
            unsafe { ObjRef::from_addr(a).expect("non-zero").header() }
                .fetch_and(!FLAG_STAYS, Ordering::Relaxed);
        }
        let blocks = std::mem::take(&mut *self.blocks.lock());
        for &b in &blocks {
            space.meta.set_cset(b, false);
        }
        self.active.store(false, Ordering::Relaxed);
        self.copied_bytes.fetch_add(copied, Ordering::Relaxed);
        EvacuationReport {
            blocks: blocks.len(),
            copied_bytes: copied,
            copied_objects: self.copied_objects.swap(0, Ordering::Relaxed),
            stayed: stayed.len(),
        }
    }
}

/// The copy of the object at `addr` when it lies in the collection set and has moved.
///
/// # Safety
/// `addr` is outside the set, or an object of the set not yet swept (its header readable).
#[inline]
pub unsafe fn moved_to(space: &Space, addr: usize) -> Option<usize> {
    if !space.in_cset(addr) {
        return None;
    }
    // SAFETY: caller's contract: an object of the set, not yet swept.
    let h = unsafe { ObjRef::from_addr(addr).expect("non-zero").header() };
    forward::forwardee(h.load(Ordering::Acquire))
}

/// The address a reference found at `from` resolves to while a collection set exists,
/// with the field or root slot it came from repaired (by compare-and-swap: a mutator may
/// have stored another reference since it was read). `lab` is filled on first use.
#[inline(always)]
pub fn forward_edge(
    rt: &crate::runtime::Runtime,
    child: usize,
    from: crate::collector::validate::Found,
    lab: &mut Option<CopyLab>,
) -> usize {
    if !rt.evac.active() || !rt.space.in_cset(child) {
        return child;
    }
    forward_moving_edge(rt, child, from, lab)
}

/// [`forward_edge`] for a reference into the collection set.
#[inline(never)]
fn forward_moving_edge(
    rt: &crate::runtime::Runtime,
    child: usize,
    from: crate::collector::validate::Found,
    lab: &mut Option<CopyLab>,
) -> usize {
    let lab = lab.get_or_insert_with(|| rt.evac.take_lab());
    // SAFETY: `child` was read from a root, a live object's field or a SATB buffer: an
    // object the snapshot reaches, or a copy.
    let to = unsafe { rt.evac.resolve(&rt.space, &rt.types, child, lab) };
    if let Some(slot) = from.slot().filter(|_| to != child) {
        // SAFETY: a root slot or a reference field of a live object: an aligned pointer word.
        let s = unsafe { &*(slot as *const crate::sync::raw::AtomicU64) };
        forward::heal(s, child as u64, to as u64);
    }
    to
}
