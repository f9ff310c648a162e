//! Heap verification (`TANDEM_VERIFY=1`), run while the world is stopped.
//!
//! * Before marking: every free line still holds the poison written when it was freed, so a
//!   write through a dangling pointer is caught.
//! * After marking: every object reachable from the roots is marked, its lines are stamped,
//!   its header names a registered type, and its references point into the heap.
//! * After sweeping: every reachable object passes the VM's verify hook (tandem-stress checks
//!   a checksum), so a wrongly freed object shows up as poison in its fields.

use crate::heap::blocks::chunk_first_block;
use crate::heap::metadata::{black_stamp, line_live, LINE_FREE};
use crate::heap::{BLOCKS_PER_CHUNK, LINES_PER_BLOCK, LINE_SIZE, POISON};
use crate::object::ObjRef;
use crate::runtime::Runtime;
use std::collections::HashSet;
use std::sync::atomic::Ordering;

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

/// Checks that every free line of every committed block still holds the poison pattern.
pub fn free_lines_poisoned(rt: &Runtime, f: &mut Findings) {
    let space = &rt.space;
    let pinned = space.pin_chunks();
    for &c in &pinned.chunks {
        let first = chunk_first_block(c);
        for b in first..first + BLOCKS_PER_CHUNK {
            let lines = space.meta.block_lines(b);
            for (l, mark) in lines.iter().enumerate().take(LINES_PER_BLOCK) {
                if mark.load(Ordering::Relaxed) != LINE_FREE {
                    continue;
                }
                let addr = space.block_addr(b) + l * LINE_SIZE;
                // SAFETY: a committed line of the heap; the world is stopped.
                let words =
                    unsafe { std::slice::from_raw_parts(addr as *const u64, LINE_SIZE / 8) };
                if let Some(i) = words.iter().position(|&w| w != POISON) {
                    f.report(format!(
                        "free line {addr:#x} (block {b}, line {l}) was written after it was \
                         freed: word {i} is {:#x}",
                        words[i]
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
}

/// Walks everything reachable from `roots` and checks each object as `check` says.
pub fn reachable(rt: &Runtime, roots: &[usize], check: Check, f: &mut Findings) {
    let check_marks = matches!(check, Check::Marks { .. });
    let black_ok = check == Check::Marks { black_ok: true };
    let space = &rt.space;
    let hook = if check_marks { None } else { rt.verify_hook() };
    let epoch = space.epoch();
    let mut seen: HashSet<usize> = HashSet::new();
    let mut todo: Vec<(usize, usize)> = roots.iter().map(|&r| (r, 0)).collect();
    while let Some((addr, from)) = todo.pop() {
        if addr == 0 || !seen.insert(addr) {
            continue;
        }
        if !space.in_heap(addr) || addr % 8 != 0 {
            f.report(format!(
                "reference {addr:#x} in {from:#x} points outside the heap"
            ));
            continue;
        }
        if !space.in_immix(addr) && !space.los.contains(addr) {
            f.report(format!(
                "reference {addr:#x} in {from:#x} is not the start of a large object"
            ));
            continue;
        }
        let obj = ObjRef::from_addr(addr).expect("non-zero");
        // SAFETY: a reachable heap object.
        let ty = unsafe { obj.type_id() };
        let Some(info) = rt.types.get(ty) else {
            f.report(format!(
                "object {addr:#x} (referenced from {from:#x}) has unknown type id {}",
                ty.0
            ));
            continue;
        };
        if check_marks {
            let mut lines_live = true;
            if space.in_immix(addr) {
                // SAFETY: live object of type `info`.
                let size = unsafe { info.size_of(obj) };
                for l in space.line_of(addr)..=space.line_of(addr + size - 1) {
                    let v = space.meta.line(l).load(Ordering::Relaxed);
                    if !line_live(v, epoch) {
                        lines_live = false;
                        f.report(format!(
                            "reachable object {addr:#x} (type {}) has unmarked line {l}",
                            ty.0
                        ));
                    }
                }
            }
            let black = black_ok
                && lines_live
                && space.in_immix(addr)
                && space.meta.line(space.line_of(addr)).load(Ordering::Relaxed)
                    == black_stamp(epoch);
            if !space.meta.is_marked(addr) && !black {
                f.report(format!(
                    "reachable object {addr:#x} (type {}) is not marked",
                    ty.0
                ));
            }
        }
        if let Some(h) = &hook {
            if let Err(m) = h(obj) {
                f.report(format!("object {addr:#x} (type {}): {m}", ty.0));
            }
        }
        // SAFETY: live object of type `info`.
        unsafe { info.for_each_slot(obj, |slot| todo.push((*slot as usize, addr))) };
    }
}
