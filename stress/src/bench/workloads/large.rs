//! large-object churn: each thread allocates arrays over 8 KiB (Tandem's large-object
//! space; whole blocks in libgc) up to `max_bytes`: byte arrays (40%), word arrays (30%)
//! and reference arrays (15%) that point at a few kept arrays, plus small byte arrays
//! (15%). Every array is written in full. About one in six replaces a random slot of the
//! thread's `keep` array; the rest die at once. Every 64 allocations the thread checks
//! what it keeps (each array's first and last items carry its id).

use super::Outcome;
use crate::bench::api::{self, run_threads, BResult, Collector, Mutator};
use crate::rng::Rng;
use std::sync::atomic::{AtomicU64, Ordering};
use tandem::ObjRef;

/// Smallest large array payload: over Tandem's 8 KiB large-object threshold.
const MIN_LARGE: usize = 8 << 10;
/// References stored into each reference array.
const REFS_FILLED: usize = 4;

/// The size of a run.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Params {
    /// Largest array payload in bytes.
    pub max_bytes: usize,
    /// Arrays each thread keeps.
    pub keep: usize,
    /// Allocations per thread.
    pub allocs: u64,
    /// Mutator threads.
    pub threads: usize,
}

/// Runs the workload; fails if a kept array lost its contents.
pub fn run<C: Collector>(c: &C, p: &Params) -> BResult<Outcome> {
    let threads = p.threads.max(1);
    let max = p.max_bytes.max(2 * MIN_LARGE);
    let keep_len = p.keep.max(1);
    let live = AtomicU64::new(0);
    run_threads(c, threads, |index, m| {
        let mut rng = Rng::new(0x1a79e ^ ((index as u64 + 1) << 32));
        // What each keep slot holds (plain data; the arrays themselves are in the heap).
        let mut kept = vec![Kept::default(); keep_len];
        let mut most_kept = 0;
        let keep = m.ref_array(keep_len)?;
        m.push_root(Some(keep))?;
        for n in 0..p.allocs {
            m.safepoint();
            let id = ((index as u64 + 1) << 40) | n;
            let (obj, k) = match rng.below(20) {
                0..=7 => bytes_array(m, id, rng.range(MIN_LARGE, max))?,
                8..=13 => words_array(m, id, rng.range(MIN_LARGE / 8, max / 8))?,
                14..=16 => {
                    let len = rng.range(MIN_LARGE / 8, (max / 8).min(16 << 10));
                    refs_array(m, &mut rng, len, keep_len)?
                }
                _ => bytes_array(m, id, rng.range(8, MIN_LARGE / 2))?,
            };
            if rng.chance(1, 6) {
                let slot = rng.below(keep_len);
                let keep = m.root(0).expect("the keep array is rooted");
                // SAFETY: an item of this thread's live keep array; `obj` is fresh.
                unsafe { m.write_ref(keep, api::item(slot), Some(obj)) };
                kept[slot] = k;
                most_kept = most_kept.max(kept.iter().map(Kept::bytes).sum::<usize>());
            }
            if n % 64 == 63 {
                check_kept(m, &kept)?;
            }
        }
        check_kept(m, &kept)?;
        m.pop_root();
        // Relaxed: a sum read after the threads are joined.
        live.fetch_add(
            (most_kept + api::array_size(keep_len, 8)) as u64,
            Ordering::Relaxed,
        );
        Ok(())
    })?;
    Ok(Outcome {
        live_set_bytes: live.into_inner(),
        checked: format!(
            "{} allocations on {threads} threads; kept arrays checked every 64",
            p.allocs * threads as u64
        ),
        measured_from_pause: 0,
    })
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Kind {
    #[default]
    Bytes,
    Words,
    Refs,
}

/// What one keep slot holds.
#[derive(Debug, Clone, Copy, Default)]
struct Kept {
    kind: Kind,
    id: u64,
    len: usize,
}

impl Kept {
    fn bytes(&self) -> usize {
        match self.kind {
            _ if self.len == 0 => 0,
            Kind::Bytes => api::array_size(self.len, 1),
            Kind::Words | Kind::Refs => api::array_size(self.len, 8),
        }
    }
}

fn bytes_array<M: Mutator>(m: &mut M, id: u64, len: usize) -> BResult<(ObjRef, Kept)> {
    let a = m.byte_array(len)?;
    // SAFETY: `len` bytes of items of the fresh byte array.
    unsafe { std::ptr::write_bytes(a.field::<u8>(api::ITEMS), id as u8, len) };
    Ok((
        a,
        Kept {
            kind: Kind::Bytes,
            id,
            len,
        },
    ))
}

fn words_array<M: Mutator>(m: &mut M, id: u64, len: usize) -> BResult<(ObjRef, Kept)> {
    let a = m.word_array(len)?;
    // SAFETY: `len` word items of the fresh word array.
    let items = unsafe { std::slice::from_raw_parts_mut(a.field::<u64>(api::ITEMS), len) };
    items.fill(id);
    Ok((
        a,
        Kept {
            kind: Kind::Words,
            id,
            len,
        },
    ))
}

fn refs_array<M: Mutator>(
    m: &mut M,
    rng: &mut Rng,
    len: usize,
    keep_len: usize,
) -> BResult<(ObjRef, Kept)> {
    let r = m.ref_array(len)?;
    let keep = m.root(0).expect("the keep array is rooted");
    for _ in 0..REFS_FILLED {
        // SAFETY: an item of the live keep array.
        let Some(t) = (unsafe { m.read_ref(keep, api::item(rng.below(keep_len))) }) else {
            continue;
        };
        // SAFETY: an item of the fresh array `r` (in bounds); `t` is kept, hence live.
        unsafe { m.write_ref(r, api::item(rng.below(len)), Some(t)) };
    }
    Ok((
        r,
        Kept {
            kind: Kind::Refs,
            id: 0,
            len,
        },
    ))
}

fn check_kept<M: Mutator>(m: &mut M, kept: &[Kept]) -> BResult<()> {
    let keep = m.root(0).expect("the keep array is rooted");
    for (i, k) in kept.iter().enumerate() {
        // SAFETY: an item of the live keep array; nothing allocates while checking.
        let Some(a) = (unsafe { m.read_ref(keep, api::item(i)) }) else {
            continue;
        };
        // SAFETY: a kept array of the recorded kind: live, with its length word; the
        // items read are inside it.
        let ok = unsafe {
            let len = api::len(a);
            len == k.len
                && match k.kind {
                    Kind::Bytes => {
                        let (first, last) = (
                            a.field::<u8>(api::ITEMS),
                            a.field::<u8>(api::ITEMS + len - 1),
                        );
                        first.read() == k.id as u8 && last.read() == k.id as u8
                    }
                    Kind::Words => {
                        api::word(a, api::item(0)) == k.id
                            && api::word(a, api::item(len - 1)) == k.id
                    }
                    Kind::Refs => true,
                }
        };
        if !ok {
            return Err(format!(
                "large: kept array {:#x} (id {:#x}) lost its contents",
                a.addr(),
                k.id
            ));
        }
    }
    Ok(())
}
