//! Evacuation: compacting the heap while marking traces it (Immix's opportunistic
//! defragmentation, made concurrent by a load barrier).
//!
//! 1. **Choose** ([`Evacuation::choose`], in the pause that starts a cycle, from a survey
//!    made just before it): the blocks at most three quarters used (the bytes the last
//!    marking found live there, plus lines allocated since; for blocks of young objects,
//!    what survived in such blocks last time, when it lies scattered), sparsest first, while
//!    their bytes fit in half the free headroom. They leave the allocation pools; no new
//!    object goes there.
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
use crate::heap::sweep::YoungBlocks;
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
        let a = lab
            .state
            .alloc_slow(&mut lab.window, self.space, size, false)
            .ok()
            .flatten()?;
        // A new window: the block holds survivors now, not young objects.
        self.space.meta.not_young(self.space.block_of(a));
        Some(a)
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
    /// Objects of the set that stayed, with their sizes.
    stayed: Mutex<Vec<(usize, usize)>>,
    copied_bytes: AtomicU64,
    copied_objects: AtomicU64,
    young: Mutex<Option<YoungBlocks>>,
    /// Blocks where pinned objects stayed: how many more surveys may pass them over
    /// ([`STAYED_SKIP`]), and the pinned objects' bytes there.
    stayed_blocks: Mutex<std::collections::HashMap<usize, (u8, usize)>>,
}

/// Surveys that pass over a block where pinned objects of the collection set stayed, as long
/// as the last marking found little else live there (less than a line): chosen again at
/// once, they stayed again (`tandem_id`'s objects are pinned for life), and a block of the
/// set takes no allocation, so blocks with a few pinned objects each were
/// unusable cycle after cycle (an outside client: 108 MB committed for 5 MB live).
const STAYED_SKIP: u8 = 8;

/// Most share of their live lines young survivors may fill for blocks of young objects to
/// be chosen: above it they lie packed (binary-trees' trees, built node after node), and
/// the sweep's free lines serve as well as copying would.
const YOUNG_MAX_DENSITY: f64 = 0.75;

/// Least share of the bytes allocated in young blocks that survivors' lines must hold
/// empty ([`YoungBlocks::waste`]) for young blocks to be chosen: below it (GCBench, where a
/// handful of young objects survive) compacting them gives back little, and a cycle with a
/// collection set costs the load barrier's slow path and keeps the set's free lines from
/// the allocators. pypy/48M/t2 leaves 0.4, graph/t2 0.1.
const YOUNG_MIN_WASTE: f64 = 1.0 / 16.0;

/// One block of young objects in this many is never chosen, so that every sweep measures
/// young survivors in place (an evacuated block shows none).
const YOUNG_SAMPLE: usize = 8;

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
    /// bytes the last marking found live there, plus what the lines allocated since its
    /// sweep are expected to keep (at the young survival the last sweep measured).
    /// Blocks filled only since the last sweep (young objects) are estimated from what the
    /// last marking found in such blocks, and are worth it only when their survivors lie
    /// scattered ([`YOUNG_MAX_DENSITY`], [`YOUNG_MIN_WASTE`]). With `all`
    /// (`TANDEM_EVACUATE_ALL`), every block with room for a line more is worth it. Read
    /// before the pause, so that the pause does not scan the line table.
    pub fn survey(&self, space: &Space, all: bool, nursery: bool) -> Vec<(usize, usize)> {
        let max_used = if all {
            BLOCK_SIZE - LINE_SIZE
        } else {
            MAX_USED
        };
        // The share of a young block's allocated bytes expected to survive, when young
        // blocks are worth evacuating at all.
        let stats = *self.young.lock();
        let young = match stats {
            Some(y) if all || (y.density <= YOUNG_MAX_DENSITY && y.waste() >= YOUNG_MIN_WASTE) => {
                Some(y.survival)
            }
            None if all => Some(1.0),
            _ => None,
        };
        // Lines allocated since the last sweep in a block that also holds older survivors
        // (holes the allocators refilled) hold young objects too: estimated with the young
        // survival whether or not blocks of young objects qualify. Counted whole, a block
        // whose holes are refilled between cycles never qualified (pypy/48M/t2, 6 runs: RSS
        // 206-223 -> 206 MiB, 32 instead of 32-36 cycles; graph/t2 320-324 instead of
        // 326-336 cycles, RSS unchanged).
        let refill_survival = stats.map_or(1.0, |y| y.survival);
        let mut stayed = self.stayed_blocks.lock();
        stayed.retain(|_, (n, _)| {
            *n -= 1;
            *n > 0
        });
        let mut candidates = Vec::new();
        for c in space.committed_chunks() {
            let first = crate::heap::blocks::chunk_first_block(c);
            for b in first..first + crate::heap::BLOCKS_PER_CHUNK {
                let live = space.meta.live_bytes(b);
                if let Some(&(_, pinned)) = stayed.get(&b).filter(|_| !stayed.is_empty()) {
                    if live < pinned + LINE_SIZE {
                        continue;
                    }
                }
                if live == 0 && (young.is_none() || (!all && b % YOUNG_SAMPLE == 0)) {
                    // Free, or filled only since the last sweep with young objects that
                    // would not be worth copying, or kept for the next sweep to measure.
                    continue;
                }
                // Epoch stamps are live lines of the last marking; higher values are fresh
                // or black lines, allocated since.
                let lines = space.meta.block_lines(b);
                if nursery
                    && lines.iter().any(|l| {
                        let v = l.load(Ordering::Relaxed);
                        v != LINE_FREE && v <= MAX_EPOCH
                    })
                {
                    // A nursery cycle does not trace old objects: it cannot move them.
                    continue;
                }
                let since = lines
                    .iter()
                    .filter(|l| l.load(Ordering::Relaxed) > MAX_EPOCH)
                    .count();
                let used = match young {
                    Some(survival) if live == 0 => {
                        (since as f64 * LINE_SIZE as f64 * survival) as usize
                    }
                    _ => live + (since as f64 * LINE_SIZE as f64 * refill_survival) as usize,
                };
                if (live != 0 || since != 0) && used <= max_used {
                    candidates.push((used, b));
                }
            }
        }
        candidates.sort_unstable();
        candidates
    }

    /// Records what the last sweep found in blocks of young objects, for the next survey.
    pub fn young_blocks(&self, y: Option<YoungBlocks>) {
        *self.young.lock() = y;
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
            space.meta.not_young(b);
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
                    // SAFETY: a live object (caller's contract) that stays: its header holds.
                    let h = unsafe { obj.header() }.load(Ordering::Relaxed);
                    let size = types
                        .get(crate::object::TypeId::of_header(h))
                        // SAFETY: a live object of this type.
                        .and_then(|info| unsafe { info.size_of(obj) })
                        .unwrap_or(0);
                    self.stayed.lock().push((addr, size));
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
        let mut skip = self.stayed_blocks.lock();
        for &(a, size) in &stayed {
            // SAFETY: an object of the set that stayed: live, never forwarded.
            let h = unsafe { ObjRef::from_addr(a).expect("non-zero").header() }
                .fetch_and(!FLAG_STAYS, Ordering::Relaxed);
            if crate::object::pin::pinned(h) {
                let e = skip.entry(space.block_of(a)).or_insert((STAYED_SKIP, 0));
                *e = (STAYED_SKIP, e.1 + size);
            }
        }
        drop(skip);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heap::metadata::LINE_FRESH;

    #[test]
    fn young_blocks_are_candidates_only_when_their_survivors_lie_scattered() {
        let s = crate::heap::test_space(1);
        // Sixteen blocks half filled since the last sweep, which left nothing there.
        let blocks: Vec<usize> = (0..16)
            .map(|_| s.acquire_free().unwrap().unwrap())
            .collect();
        for &b in &blocks {
            for l in &s.meta.block_lines(b)[..64] {
                l.store(LINE_FRESH, Ordering::Relaxed);
            }
        }
        let evac = Evacuation::default();
        assert!(
            evac.survey(&s, false, false).is_empty(),
            "nothing measured yet"
        );
        let packed = YoungBlocks {
            survival: 0.1,
            density: 0.9,
        };
        evac.young_blocks(Some(packed));
        assert!(evac.survey(&s, false, false).is_empty(), "packed survivors");
        let few = YoungBlocks {
            survival: 0.01,
            density: 0.4,
        };
        evac.young_blocks(Some(few));
        assert!(
            evac.survey(&s, false, false).is_empty(),
            "too few survivors to matter"
        );
        let scattered = YoungBlocks {
            survival: 0.1,
            density: 0.4,
        };
        evac.young_blocks(Some(scattered));
        // Each at a tenth of its allocated lines, but the sample left to measure.
        let used = (64.0 * LINE_SIZE as f64 * 0.1) as usize;
        let mut expected: Vec<(usize, usize)> = blocks
            .iter()
            .filter(|&&b| b % YOUNG_SAMPLE != 0)
            .map(|&b| (used, b))
            .collect();
        expected.sort_unstable();
        assert!(expected.len() >= 14);
        assert_eq!(evac.survey(&s, false, false), expected);
        // The torture setting takes the sample too.
        assert_eq!(evac.survey(&s, true, false).len(), blocks.len());
    }

    #[test]
    fn a_block_whose_holes_were_refilled_counts_its_new_lines_at_the_young_survival() {
        let s = crate::heap::test_space(1);
        let b = s.acquire_free().unwrap().unwrap();
        // 4 KB of survivors from the last marking, and lines 16-127 refilled since.
        s.meta.add_marked_bytes(b, 4096);
        s.meta.settle_live_bytes(b);
        for l in &s.meta.block_lines(b)[16..] {
            l.store(LINE_FRESH, Ordering::Relaxed);
        }
        let evac = Evacuation::default();
        assert!(
            evac.survey(&s, false, false).is_empty(),
            "counted whole, the refilled lines fill the block"
        );
        // Young blocks not worth compacting themselves (packed), but few young objects
        // survive: the refilled lines are mostly garbage.
        evac.young_blocks(Some(YoungBlocks {
            survival: 0.05,
            density: 0.9,
        }));
        let used = 4096 + (112.0 * LINE_SIZE as f64 * 0.05) as usize;
        assert_eq!(evac.survey(&s, false, false), vec![(used, b)]);
    }
}
