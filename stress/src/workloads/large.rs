//! large-object churn: each thread allocates arrays over 8 KiB (Tandem's large-object
//! space; whole blocks in libgc) up to `max_bytes`: byte arrays (40%), word arrays (30%)
//! and reference arrays (15%) that point at a few kept byte or word arrays (never at other
//! reference arrays, so that no chain of them builds up and the live set stays bounded by
//! `keep * max_bytes` per thread), plus small byte arrays (15%). Every array is written in
//! full. About one in six replaces a random slot of the thread's `keep` array; the rest die
//! at once. An iteration of the run is one allocation.
//!
//! Every 64 allocations the thread checks what it keeps against its own record of it (kind,
//! length, and the id that fills the first and last items). With [`Checks::On`] every array
//! is a checked object too: each new array and every kept one is checksummed in full, and
//! so is every array a kept reference array holds, which may hold no more than it was given.

use super::objects::{self, check_read, Checks, IdSource};
use super::Outcome;
use crate::collector::{layout, Collector, Items, Mutator};
use crate::failure::{Failure, Fallible};
use crate::rng::Rng;
use crate::runner::{run_threads, Run, ThreadCtx};
use std::sync::atomic::{AtomicU64, Ordering};
use tandem::ObjRef;

/// Smallest large array payload: over Tandem's 8 KiB large-object threshold.
const MIN_LARGE: usize = tandem::heap::LARGE_OBJECT_THRESHOLD;
/// Most references stored into each reference array.
const REFS_FILLED: usize = 4;
/// Allocations between checks of what a thread keeps.
const CHECK_EVERY: u64 = 64;

/// The size of a run.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Params {
    /// Largest array payload in bytes.
    pub max_bytes: usize,
    /// Arrays each thread keeps.
    pub keep: usize,
    /// Mutator threads.
    pub threads: usize,
    /// Seed for the random choices.
    pub seed: u64,
}

/// Runs the workload until `run` is spent; fails if a kept array lost its contents. Counts
/// one unit of work per allocation.
pub fn run<C: Collector>(c: &C, p: &Params, run: &Run, checks: Checks) -> Fallible<Outcome> {
    let threads = p.threads.max(1);
    let live = AtomicU64::new(0);
    run_threads(c, threads, run, |ctx, m| {
        let most_kept = one_thread(ctx, m, p, checks)?;
        // Relaxed: a sum read after the threads are joined.
        live.fetch_add(most_kept, Ordering::Relaxed);
        Ok(())
    })?;
    Ok(Outcome {
        live_set_bytes: live.into_inner(),
        checked: format!(
            "{} allocations on {threads} threads; kept arrays checked every {CHECK_EVERY}",
            run.work()
        ),
        ..Outcome::default()
    })
}

/// What one keep slot holds.
#[derive(Debug, Clone, Copy)]
struct Kept {
    items: Items,
    id: u64,
    len: usize,
}

/// One thread's run; returns the most bytes it kept at once.
fn one_thread<M: Mutator>(
    ctx: &ThreadCtx<'_>,
    m: &mut M,
    p: &Params,
    checks: Checks,
) -> Fallible<u64> {
    let max = p.max_bytes.max(2 * MIN_LARGE);
    let keep_len = p.keep.max(1);
    let mut rng = Rng::new(p.seed ^ ((ctx.index as u64 + 1) << 32));
    let mut ids = IdSource::new(ctx.index as u64 + 1);
    let keep_array = checks.array(Items::Refs);
    // What each keep slot holds (plain data; the arrays themselves are in the heap).
    let mut kept: Vec<Option<Kept>> = vec![None; keep_len];
    let size = |k: &Kept| checks.array(k.items).size(k.len);
    let mut most_kept = 0;
    let keep = objects::new_array(m, checks, Items::Refs, ids.next_id(), keep_len)?;
    m.push_root(Some(keep))?;
    let mut n = 0;
    while !ctx.should_stop(n) {
        m.safepoint();
        let id = ids.next_id();
        let (items, len) = match rng.below(20) {
            0..=7 => (Items::Bytes, rng.range(MIN_LARGE, max)),
            8..=13 => (Items::Words, rng.range(MIN_LARGE / 8, max / 8)),
            14..=16 => (
                Items::Refs,
                rng.range(MIN_LARGE / 8, (max / 8).min(16 << 10)),
            ),
            _ => (Items::Bytes, rng.range(8, MIN_LARGE / 2)),
        };
        let obj = objects::new_array(m, checks, items, id, len)?;
        if items == Items::Refs {
            fill_refs(m, checks, &mut rng, obj, len, &kept);
        }
        if checks == Checks::On {
            // SAFETY: allocated since the last safepoint, so live; nothing allocates here.
            unsafe { check_read(m, obj, "large: a new array")? };
        }
        if rng.chance(1, 6) {
            let slot = rng.below(keep_len);
            let keep = m.root(0).expect("the keep array is rooted");
            // SAFETY: an item of this thread's live keep array; `obj` is fresh.
            unsafe { m.write_ref(keep, checks.item(slot), Some(obj)) };
            kept[slot] = Some(Kept { items, id, len });
            let bytes: usize = kept.iter().flatten().map(size).sum();
            most_kept = most_kept.max(bytes);
        }
        n += 1;
        ctx.count(1);
        if n % CHECK_EVERY == 0 {
            check_kept(m, checks, &kept)?;
        }
    }
    check_kept(m, checks, &kept)?;
    m.pop_root();
    Ok((most_kept + keep_array.size(keep_len)) as u64)
}

/// Stores up to [`REFS_FILLED`] kept byte or word arrays into random items of the fresh
/// reference array `r` of `len` items.
fn fill_refs<M: Mutator>(
    m: &mut M,
    checks: Checks,
    rng: &mut Rng,
    r: ObjRef,
    len: usize,
    kept: &[Option<Kept>],
) {
    let keep = m.root(0).expect("the keep array is rooted");
    for _ in 0..REFS_FILLED {
        let slot = rng.below(kept.len());
        if kept[slot].is_none_or(|k| k.items == Items::Refs) {
            continue;
        }
        // SAFETY: an item of this thread's live keep array, which holds the array `kept`
        // records; `r` is fresh and the index is in bounds.
        unsafe {
            let t = m.read_ref(keep, checks.item(slot));
            m.write_ref(r, checks.item(rng.below(len)), t);
        }
    }
}

/// Checks every kept array against its record and, checked, its checksum and what a kept
/// reference array holds. Polls between arrays when checksumming, which takes a while.
fn check_kept<M: Mutator>(m: &mut M, checks: Checks, kept: &[Option<Kept>]) -> Fallible<()> {
    if checks == Checks::On {
        let keep = m.root(0).expect("the keep array is rooted");
        // SAFETY: rooted; nothing allocates while checking.
        unsafe { check_read(m, keep, "large: the keep array")? };
    }
    for (i, k) in kept.iter().enumerate() {
        let Some(k) = k else { continue };
        if checks == Checks::On {
            m.safepoint();
        }
        let keep = m.root(0).expect("the keep array is rooted");
        // SAFETY: an item of the live keep array; from here to the next poll nothing
        // allocates, so what it references stays live.
        let a = unsafe { m.read_ref(keep, checks.item(i)) }.expect("a kept slot holds an array");
        // SAFETY: a kept array of the recorded kind and checks: live, with its length word;
        // the items read are inside it.
        let intact = unsafe {
            let len = layout::len(a);
            let base = checks.item(0);
            len == k.len
                && match k.items {
                    Items::Bytes => {
                        let byte = |i: usize| a.field::<u8>(base + i).read();
                        byte(0) == k.id as u8 && byte(len - 1) == k.id as u8
                    }
                    Items::Words => {
                        let word = |i: usize| layout::word(a, checks.item(i));
                        word(0) == k.id && word(len - 1) == k.id
                    }
                    Items::Refs => true,
                }
        };
        if !intact {
            return Err(Failure::Check(format!(
                "large: kept array {:#x} (id {:#x}) lost its contents",
                a.addr(),
                k.id
            )));
        }
        if checks == Checks::On {
            // SAFETY: kept, hence live; nothing writes its data.
            unsafe { check_read(m, a, "large: a kept array")? };
            if k.items == Items::Refs {
                check_held(m, a, k)?;
            }
        }
    }
    Ok(())
}

/// Checks every array the kept reference array `a` holds, and that it holds no more than
/// [`REFS_FILLED`].
fn check_held<M: Mutator>(m: &mut M, a: ObjRef, k: &Kept) -> Fallible<()> {
    let mut held = 0;
    for j in 0..k.len {
        // SAFETY: item j < len of the live, checked reference array `a`.
        if let Some(t) = unsafe { m.read_ref(a, Checks::On.item(j)) } {
            // SAFETY: reachable from a kept array; nothing allocates meanwhile.
            unsafe { check_read(m, t, "large: an array a kept array holds")? };
            held += 1;
        }
    }
    if held > REFS_FILLED {
        return Err(Failure::Check(format!(
            "large: reference array id {:#x} holds {held} references, at most \
             {REFS_FILLED} were stored",
            k.id
        )));
    }
    Ok(())
}
