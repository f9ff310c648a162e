//! Heap verification (`TANDEM_VERIFY=1`), run while the world is stopped.
//!
//! * Before marking: every free line, and every freed large object's run, still holds the
//!   poison written when it was freed, so a write through a dangling pointer is caught.
//! * After marking: every object reachable from the roots is marked, its lines are stamped,
//!   its header names a registered type, and its references point into the heap.
//! * After sweeping (stw: in the same pause; concurrent: at the next init-mark pause, since
//!   the sweep runs alongside the mutators): every reachable object lies on lines the sweep
//!   kept live (or that were allocated since) and passes the VM's verify hook (tandem-stress
//!   checks a checksum), so a wrongly freed object shows up as poison in its fields.
//!
//! Every reference is checked by [`validate`] before anything is read through it, so the
//! verifier reports a corrupt heap instead of crashing on it.

use crate::heap::blocks::{chunk_first_block, find_unpoisoned};
use crate::heap::metadata::{black_stamp, BlockState, LINE_FREE, LINE_FRESH};
use crate::heap::reclaim::line_decommitted;
use crate::heap::{Space, BLOCKS_PER_CHUNK, LINES_PER_BLOCK, LINE_SIZE, POISON};
use crate::runtime::Runtime;
use crate::sync::Ordering;

/// Problems found, with the first messages.
#[derive(Debug, Default)]
pub struct Findings {
    /// How many problems.
    pub count: u64,
    /// The first messages.
    pub messages: Vec<String>,
}

impl Findings {
    fn report(&mut self, msg: String) {
        self.count += 1;
        if self.messages.len() < 32 {
            tracing::error!(target: "tandem::verify", "{msg}");
            self.messages.push(msg);
        }
    }
}

/// Checks that all freed memory still holds the poison pattern: free lines and freed
/// large objects' runs (and what reusing such a run found since the last check).
pub fn freed_memory_poisoned(rt: &Runtime, f: &mut Findings) {
    free_lines_poisoned(rt, f);
    for b in rt.space.los.broken_poison() {
        f.report(b.to_string());
    }
}

/// Checks that every free line of every committed block still holds the poison pattern.
pub fn free_lines_poisoned(rt: &Runtime, f: &mut Findings) {
    let space = &rt.space;
    let pinned = space.pin_chunks();
    for &c in &pinned.chunks {
        let first = chunk_first_block(c);
        for b in first..first + BLOCKS_PER_CHUNK {
            if space.meta.block_state(b) == BlockState::Clearing {
                // Being zeroed by the thread that took it.
                continue;
            }
            let lines = space.meta.block_lines(b);
            // Decommitted pages read as zero, not poison, until written (see `heap::reclaim`).
            let decommitted = space.meta.decommitted(b);
            for (l, mark) in lines.iter().enumerate().take(LINES_PER_BLOCK) {
                if mark.load(Ordering::Relaxed) != LINE_FREE {
                    continue;
                }
                let expect = if line_decommitted(decommitted, l) {
                    0
                } else {
                    POISON
                };
                let addr = space.block_addr(b) + l * LINE_SIZE;
                if let Some((i, w)) = find_unpoisoned(addr, LINE_SIZE, expect) {
                    f.report(format!(
                        "free line {addr:#x} (block {b}, line {l}) was written after it was \
                         freed: word {i} is {w:#x}"
                    ));
                }
            }
        }
    }
}

/// What [`reachable`] checks on each object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Marked (or, with `black_ok`, allocated black: unmarked but on live-stamped lines)
    /// and every line stamped with the cycle's epoch.
    Marks {
        /// Whether objects allocated during concurrent marking are acceptable unmarked.
        black_ok: bool,
    },
    /// The VM's verify hook passes.
    Hook,
    /// After the sweep of the current epoch: every line is one the sweep kept live or
    /// one allocated since, and the VM's verify hook passes.
    Swept,
}

/// Walks everything reachable from `roots`, given as (object, root slot) pairs, and checks
/// each object as `check` says.
pub fn reachable(rt: &Runtime, roots: &[(usize, usize)], check: Check, f: &mut Findings) {
    let space = &rt.space;
    let hook = if matches!(check, Check::Marks { .. }) {
        None
    } else {
        rt.verify_hook()
    };
    let epoch = space.epoch();
    let rule = space.line_rule();
    let mut found = Vec::new();
    super::walk::reachable(
        rt,
        roots,
        |r| {
            let (addr, size, place) = (r.obj.addr(), r.size, r.place);
            // SAFETY: the walk validated this header.
            let ty = unsafe { r.obj.type_id() }.0;
            match check {
                Check::Marks { black_ok } => {
                    let lines_live = place.large
                        || lines_ok(
                            space,
                            addr,
                            size,
                            |v| rule.live(v),
                            |l, _| {
                                found.push(format!(
                                    "reachable object {addr:#x} (type {ty}) has unmarked line {l}"
                                ))
                            },
                        );
                    let black = black_ok
                        && if place.large {
                            crate::heap::new_large(addr)
                        } else {
                            lines_live
                                && space.meta.line(space.line_of(addr)).load(Ordering::Relaxed)
                                    == black_stamp(epoch)
                        };
                    if !space.meta.is_marked(addr) && !black {
                        found.push(format!(
                            "reachable object {addr:#x} (type {ty}) is not marked"
                        ));
                    }
                }
                Check::Swept if !place.large => {
                    let kept = |v: u8| rule.live(v) || v == LINE_FRESH;
                    lines_ok(space, addr, size, kept, |l, v| {
                        found.push(format!(
                            "reachable object {addr:#x} (type {ty}) lies on line {l} that the \
                             last sweep did not keep (line mark {v})"
                        ))
                    });
                }
                Check::Swept | Check::Hook => {}
            }
            if let Some(h) = &hook {
                if let Err(m) = h(r.obj) {
                    found.push(format!("object {addr:#x} (type {ty}): {m}"));
                }
            }
        },
        |msg| f.report(msg),
    );
    for msg in found {
        f.report(msg);
    }
}

/// Generational mode, at a nursery cycle's first pause (before its epoch starts): every
/// reachable old object (marked by an earlier cycle) that refers to a young one (unmarked)
/// is in `remembered`, and so is every old object whose REMEMBER flag is clear. Either
/// failure is a store that missed the REMEMBER barrier (see `barriers::remember`): the
/// nursery cycle would not see the young object through it and would free it.
pub fn generations(
    rt: &Runtime,
    roots: &[(usize, usize)],
    remembered: &[Vec<usize>],
    f: &mut Findings,
) {
    use crate::barriers::remember::armed;
    use crate::sync::raw::AtomicPtr;
    let space = &rt.space;
    let set: std::collections::HashSet<usize> = remembered.iter().flatten().copied().collect();
    let mut found = Vec::new();
    super::walk::reachable(
        rt,
        roots,
        |r| {
            let a = r.obj.addr();
            if !space.meta.is_marked(a) || set.contains(&a) {
                return;
            }
            // SAFETY: the walk validated this object's header.
            let ty = unsafe { r.obj.type_id() }.0;
            // SAFETY: as above.
            if !armed(unsafe { r.obj.header() }.load(Ordering::Relaxed)) {
                found.push(format!(
                    "old object {a:#x} (type {ty}) has its REMEMBER flag clear but is not in the remembered set"
                ));
            }
            // SAFETY: a live, initialised object of type `r.info` (the world is stopped).
            unsafe {
                r.info.for_each_slot(r.obj, |slot| {
                    let v = (*(slot as *const AtomicPtr<u8>)).load(Ordering::Relaxed) as usize;
                    if v != 0 && space.in_heap(v) && !space.meta.is_marked(v) {
                        found.push(format!(
                            "old object {a:#x} (type {ty}) refers to the young object {v:#x} \
                             at +{} but is not in the remembered set (a store into it missed \
                             the REMEMBER barrier)",
                            slot as usize - a
                        ));
                    }
                })
            };
        },
        |msg| f.report(msg),
    );
    for msg in found {
        f.report(msg);
    }
}

/// Whether every line of the block-space object `[addr, addr+size)` has a mark that `ok`
/// accepts; calls `bad(line, mark)` for each that does not.
fn lines_ok(
    space: &Space,
    addr: usize,
    size: usize,
    ok: impl Fn(u8) -> bool,
    mut bad: impl FnMut(usize, u8),
) -> bool {
    let mut all = true;
    for l in space.line_of(addr)..=space.line_of(addr + size - 1) {
        let v = space.meta.line(l).load(Ordering::Relaxed);
        if !ok(v) {
            all = false;
            bad(l, v);
        }
    }
    all
}
