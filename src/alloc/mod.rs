//! Thread-local bump allocation (TLABs) and its slow path.
//!
//! The fast path, mirrored by `tandem_alloc` in `ffi/include/tandem.h`, is:
//! ```text
//! new = cursor + size; if new <= limit { obj = cursor; cursor = new } else slow path
//! ```
//! The window `[cursor, limit)` is a hole: a run of free lines of one block, zeroed when it
//! is handed out. The slow path takes the next hole of the current block, then a recyclable
//! block, then a free block. A medium object (over one line) that does not fit the current
//! hole goes to a separate overflow window in a free block, so that holes are not skipped.

use crate::error::Result;
use crate::heap::blocks::find_hole;
use crate::heap::metadata::{black_stamp, BlockState, LINE_FRESH};
use crate::heap::{Space, BLOCK_SIZE, LINES_PER_BLOCK, LINE_SIZE};
use crate::sync::Ordering;

/// The bump window read by the inline fast paths.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct BumpWindow {
    /// Next free byte.
    pub cursor: usize,
    /// End of the window.
    pub limit: usize,
}

impl BumpWindow {
    /// The fast path: bumps and returns the old cursor, or None when `size` does not fit.
    #[inline(always)]
    pub fn bump(&mut self, size: usize) -> Option<usize> {
        let new = self.cursor.checked_add(size)?;
        if new <= self.limit {
            let a = self.cursor;
            self.cursor = new;
            Some(a)
        } else {
            None
        }
    }
}

/// The slow-path state of one TLAB.
#[derive(Debug)]
pub struct TlabState {
    region_start: usize,
    block: Option<usize>,
    next_line: usize,
    overflow: BumpWindow,
    overflow_start: usize,
    overflow_block: Option<usize>,
    /// An empty block its owner cleared (see [`Slow::Clear`]), for the next window.
    cleared: Option<usize>,
    /// Bytes handed out to objects since the last [`TlabState::take_allocated`].
    allocated: usize,
}

/// What [`TlabState::alloc_slow_or_clear`] needs next.
#[derive(Debug, PartialEq, Eq)]
pub enum Slow {
    /// The address allocated, or None when the heap has no block left.
    Done(Option<usize>),
    /// An empty block (state `Clearing`) for the caller to zero where the collector need
    /// not wait for it (a native region: zeroing fresh memory takes page faults, up to
    /// milliseconds for 32 KiB on a busy virtual machine), then to hand back with
    /// [`TlabState::adopt_cleared`]. The block is in no pool and no TLAB meanwhile, and
    /// sweeps and the verifier leave `Clearing` blocks alone.
    Clear(ClearBlock),
}

/// A block handed out by [`Slow::Clear`].
#[derive(Debug, PartialEq, Eq)]
pub struct ClearBlock {
    /// The block's index.
    pub block: usize,
    /// [`Space::sweeps_begun`] when it was taken (while its thread ran, so no sweep began
    /// in between). A sweep that begins while the block is being cleared may not have
    /// reached its chunk yet, and would free the lines of a block in use: such a block goes
    /// back to the sweeps instead of into the TLAB.
    sweeps: u64,
}

impl Default for TlabState {
    fn default() -> Self {
        TlabState {
            region_start: 0,
            block: None,
            next_line: LINES_PER_BLOCK,
            overflow: BumpWindow::default(),
            overflow_start: 0,
            overflow_block: None,
            cleared: None,
            allocated: 0,
        }
    }
}

/// Zeroes lines `first..end` of block `b`, stamps them (fresh, or with the marking epoch
/// when allocating black) and returns the window.
fn prepare_lines(
    space: &Space,
    b: usize,
    first: usize,
    end: usize,
    black: bool,
    zeroed: bool,
) -> BumpWindow {
    let stamp = if black {
        black_stamp(space.epoch())
    } else {
        LINE_FRESH
    };
    let start = space.block_addr(b) + first * LINE_SIZE;
    let len = (end - first) * LINE_SIZE;
    if !zeroed {
        // SAFETY: the lines are free, committed, and owned by this TLAB alone.
        unsafe { std::ptr::write_bytes(start as *mut u8, 0, len) };
    }
    for l in &space.meta.block_lines(b)[first..end] {
        l.store(stamp, Ordering::Relaxed);
    }
    BumpWindow {
        cursor: start,
        limit: start + len,
    }
}

/// Takes an empty block, marked `Clearing` for its owner to zero; None when none is left.
fn empty_block(space: &Space) -> Result<Option<ClearBlock>> {
    let Some(b) = space.acquire_free()? else {
        return Ok(None);
    };
    space.meta.set_block_state(b, BlockState::Clearing);
    Ok(Some(ClearBlock {
        block: b,
        sweeps: space.sweeps_begun(),
    }))
}

/// Zeroes the whole of block `b`, which its caller alone holds (state `Clearing`).
pub fn clear_block(space: &Space, b: usize) {
    // SAFETY: a committed block in no pool and no TLAB: only the caller reaches it.
    unsafe { std::ptr::write_bytes(space.block_addr(b) as *mut u8, 0, BLOCK_SIZE) };
}

impl TlabState {
    /// Bytes handed out since the last call, and resets the count.
    pub fn take_allocated(&mut self) -> usize {
        std::mem::take(&mut self.allocated)
    }

    fn close_window(&mut self, w: &mut BumpWindow) {
        self.allocated += w.cursor - self.region_start;
        *w = BumpWindow::default();
        self.region_start = 0;
    }

    /// Allocates `size` bytes (8-aligned, at most the large-object threshold) after the fast
    /// path failed. Ok(None) when the heap has no block left. With `black` (concurrent
    /// marking runs), new windows are stamped live for this cycle: allocate-black at line
    /// granularity. Empty blocks are zeroed here.
    pub fn alloc_slow(
        &mut self,
        w: &mut BumpWindow,
        space: &Space,
        size: usize,
        black: bool,
    ) -> Result<Option<usize>> {
        loop {
            match self.alloc_slow_or_clear(w, space, size, black)? {
                Slow::Done(r) => return Ok(r),
                Slow::Clear(c) => {
                    clear_block(space, c.block);
                    self.adopt_cleared(space, c);
                }
            }
        }
    }

    /// [`TlabState::alloc_slow`], except that an empty block is handed to the caller to
    /// zero ([`Slow::Clear`]).
    pub fn alloc_slow_or_clear(
        &mut self,
        w: &mut BumpWindow,
        space: &Space,
        size: usize,
        black: bool,
    ) -> Result<Slow> {
        if size > LINE_SIZE {
            return self.alloc_overflow(space, size, black);
        }
        loop {
            if let Some(a) = w.bump(size) {
                return Ok(Slow::Done(Some(a)));
            }
            self.close_window(w);
            if let Some(b) = self.block {
                if let Some(h) = find_hole(&space.meta, b, self.next_line) {
                    // The first window of a block its owner cleared needs no second memset.
                    let zeroed = self.cleared.take_if(|c| *c == b).is_some();
                    *w = prepare_lines(space, b, h.start, h.end, black, zeroed);
                    self.region_start = w.cursor;
                    self.next_line = h.end;
                    continue;
                }
                space.meta.set_block_state(b, BlockState::Full);
                self.block = None;
            }
            let b = match self.cleared {
                Some(b) => b,
                None => match space.acquire_recyclable() {
                    Some(b) => b,
                    None => {
                        return Ok(empty_block(space)?.map_or(Slow::Done(None), Slow::Clear));
                    }
                },
            };
            self.block = Some(b);
            self.next_line = 0;
        }
    }

    /// Takes back a block that [`Slow::Clear`] handed out, zeroed since; the next window
    /// starts in it, unless a sweep began meanwhile: then it goes back to the sweeps as a
    /// retired block does (`Full`, its lines free: the sweep that reaches it frees it).
    pub fn adopt_cleared(&mut self, space: &Space, c: ClearBlock) {
        debug_assert_eq!(space.meta.block_state(c.block), BlockState::Clearing);
        if space.sweeps_begun() != c.sweeps {
            if let Some(p) = space.poison() {
                // Under verification free lines hold the poison pattern, not zeros.
                crate::heap::blocks::poison_range(space.block_addr(c.block), BLOCK_SIZE, p);
            }
            space.meta.set_block_state(c.block, BlockState::Full);
            tracing::trace!(
                block = c.block,
                "a sweep began while the block was cleared: given back"
            );
            return;
        }
        space.meta.set_block_state(c.block, BlockState::Allocating);
        self.cleared = Some(c.block);
    }

    fn alloc_overflow(&mut self, space: &Space, size: usize, black: bool) -> Result<Slow> {
        loop {
            if let Some(a) = self.overflow.bump(size) {
                return Ok(Slow::Done(Some(a)));
            }
            self.close_overflow(space);
            let Some(b) = self.cleared.take() else {
                return Ok(empty_block(space)?.map_or(Slow::Done(None), Slow::Clear));
            };
            self.overflow = prepare_lines(space, b, 0, LINES_PER_BLOCK, black, true);
            self.overflow_start = self.overflow.cursor;
            self.overflow_block = Some(b);
            debug_assert_eq!(self.overflow.limit - self.overflow.cursor, BLOCK_SIZE);
        }
    }

    fn close_overflow(&mut self, space: &Space) {
        self.allocated += self.overflow.cursor - self.overflow_start;
        self.overflow = BumpWindow::default();
        self.overflow_start = 0;
        if let Some(b) = self.overflow_block.take() {
            space.meta.set_block_state(b, BlockState::Full);
        }
    }

    /// Gives back the current blocks (at a GC or on detach); they are swept with the rest.
    pub fn retire(&mut self, w: &mut BumpWindow, space: &Space) {
        self.close_window(w);
        if let Some(b) = self.block.take() {
            space.meta.set_block_state(b, BlockState::Full);
        }
        self.next_line = LINES_PER_BLOCK;
        self.close_overflow(space);
        if let Some(b) = self.cleared.take() {
            // Empty: the next sweep finds it free.
            space.meta.set_block_state(b, BlockState::Full);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ByteSize, Config};
    use crate::heap::CHUNK_SIZE;

    fn space() -> Space {
        Space::new(&Config {
            heap_max: ByteSize(CHUNK_SIZE),
            ..Config::default()
        })
        .unwrap()
    }

    #[test]
    fn small_objects_bump_through_a_block_then_run_out() {
        let s = space();
        let (mut w, mut t) = (BumpWindow::default(), TlabState::default());
        let mut n = 0;
        loop {
            let a = match w.bump(64) {
                Some(a) => a,
                None => match t.alloc_slow(&mut w, &s, 64, false).unwrap() {
                    Some(a) => a,
                    None => break,
                },
            };
            // SAFETY: freshly allocated, zeroed, 64 bytes.
            assert_eq!(unsafe { *(a as *const u64) }, 0);
            n += 1;
        }
        assert_eq!(n, CHUNK_SIZE / 64);
        t.retire(&mut w, &s);
        assert_eq!(t.take_allocated(), CHUNK_SIZE);
    }

    #[test]
    fn an_empty_block_cleared_by_its_owner_is_used_unless_a_sweep_began_meanwhile() {
        let s = space();
        let (mut w, mut t) = (BumpWindow::default(), TlabState::default());
        let take = |w: &mut BumpWindow, t: &mut TlabState| match t
            .alloc_slow_or_clear(w, &s, 64, false)
            .unwrap()
        {
            Slow::Clear(c) => c,
            Slow::Done(_) => panic!("an empty block is handed out to clear"),
        };
        let c = take(&mut w, &mut t);
        let b = c.block;
        assert_eq!(s.meta.block_state(b), BlockState::Clearing);
        // A sweep that begins meanwhile leaves the block alone: not pooled, not freed.
        let sweep = s.begin_sweep();
        s.finish_sweep(&sweep);
        assert_eq!(s.meta.block_state(b), BlockState::Clearing);
        let pooled = crate::heap::blocks::BlockPools::peek(&s.pools.free);
        assert!(!pooled.is_empty() && pooled.iter().all(|&f| f as usize != b));
        clear_block(&s, b);
        t.adopt_cleared(&s, c);
        assert_eq!(
            s.meta.block_state(b),
            BlockState::Full,
            "back to the sweeps, not into the TLAB"
        );
        // No sweep begins this time: the cleared block serves the allocation.
        let c2 = take(&mut w, &mut t);
        let b2 = c2.block;
        assert_ne!(b2, b);
        // SAFETY: a word of the block the test holds: old bytes for the owner to clear.
        unsafe { *(s.block_addr(b2) as *mut u64) = 7 };
        clear_block(&s, b2);
        t.adopt_cleared(&s, c2);
        assert_eq!(s.meta.block_state(b2), BlockState::Allocating);
        let Slow::Done(Some(a)) = t.alloc_slow_or_clear(&mut w, &s, 64, false).unwrap() else {
            panic!("the adopted block serves the allocation");
        };
        assert_eq!(a, s.block_addr(b2));
        // SAFETY: the new object's memory.
        assert_eq!(unsafe { *(a as *const u64) }, 0, "cleared by its owner");
    }

    #[test]
    fn medium_objects_use_the_overflow_window_and_keep_holes() {
        let s = space();
        let (mut w, mut t) = (BumpWindow::default(), TlabState::default());
        let small = t.alloc_slow(&mut w, &s, 16, false).unwrap().unwrap();
        let medium = t.alloc_slow(&mut w, &s, 4000, false).unwrap().unwrap();
        assert_ne!(s.block_of(small), s.block_of(medium));
        // The small window is untouched by the medium allocation.
        assert_eq!(w.bump(16), Some(small + 16));
    }

    #[test]
    fn holes_in_recyclable_blocks_are_found_and_zeroed() {
        let s = space();
        let b = s.acquire_free().unwrap().unwrap();
        let e = s.advance_epoch();
        // Block b: lines 0..10 live, the rest free; dirty a free line.
        for l in &s.meta.block_lines(b)[..10] {
            l.store(e, Ordering::Relaxed);
        }
        // SAFETY: line 20 of a committed block we own.
        unsafe { *((s.block_addr(b) + 20 * LINE_SIZE) as *mut u64) = 7 };
        crate::heap::blocks::sweep_block(
            &s.meta,
            s.immix_base(),
            b,
            crate::heap::metadata::LineRule::full(e),
            None,
        );
        s.pools.recyclable.push(b as u32);
        let (mut w, mut t) = (BumpWindow::default(), TlabState::default());
        let a = t.alloc_slow(&mut w, &s, 8, false).unwrap().unwrap();
        assert_eq!(a, s.block_addr(b) + 10 * LINE_SIZE);
        assert_eq!(w.limit, s.block_addr(b) + BLOCK_SIZE);
        // SAFETY: inside the zeroed window.
        assert_eq!(
            unsafe { *((s.block_addr(b) + 20 * LINE_SIZE) as *const u64) },
            0
        );
    }
}
