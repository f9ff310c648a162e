//! large: each thread allocates a mix of large objects (over 8 KiB, so they go to the
//! large-object space) — byte arrays, word arrays and reference arrays — and a few small
//! byte arrays. About one in six is kept in a per-thread "keep" array (16 slots by
//! default, replacing an older one); the rest are dropped at once. Reference arrays point
//! at a few kept byte or word arrays (never at other reference arrays, so the live set
//! stays bounded: up to roughly `keep * max_size` bytes per thread). Every 32 allocations
//! the thread re-checks everything it keeps.

use crate::failure::{Failure, Outcome};
use crate::objects::{self, array_slot, check_read, IdSource, Types};
use crate::rng::Rng;
use crate::runner::ThreadCtx;
use tandem::heap::LARGE_OBJECT_THRESHOLD;
use tandem::{Mutator, ObjRef};

/// Items of the smallest large byte array (its object is over the threshold).
const MIN_LARGE_BYTES: usize = LARGE_OBJECT_THRESHOLD;
/// Items of the smallest large word or reference array.
const MIN_LARGE_WORDS: usize = LARGE_OBJECT_THRESHOLD / 8;
/// Most references a reference array gets.
const REFS_FILLED: usize = 4;

/// The knobs of the large workload.
#[derive(Debug, Clone, Copy)]
pub struct LargeParams {
    /// Most payload bytes of one array.
    pub max_bytes: usize,
    /// Slots of each thread's keep array.
    pub keep: usize,
    /// Seed for the random choices.
    pub seed: u64,
}

/// One thread's run; an iteration is one allocation.
pub fn run_thread(
    ctx: &ThreadCtx<'_>,
    m: &mut Mutator,
    types: &Types,
    p: LargeParams,
) -> Outcome<()> {
    let max_bytes = p.max_bytes.max(2 * MIN_LARGE_BYTES);
    let keep_len = p.keep.max(1);
    let seed = p.seed;
    let mut rng = Rng::new(seed ^ ((ctx.index as u64 + 1) << 32));
    let mut ids = IdSource::new(ctx.index as u64 + 1);
    let keep = objects::new_refs(m, types, ids.next_id(), keep_len)?;
    m.push_root(Some(keep))?;
    let mut n = 0;
    while !ctx.should_stop(n) {
        m.safepoint()?;
        let id = ids.next_id();
        let obj = match rng.below(20) {
            0..=7 => objects::new_bytes(m, types, id, rng.range(MIN_LARGE_BYTES, max_bytes))?,
            8..=13 => {
                let len = rng.range(MIN_LARGE_WORDS, max_bytes / 8);
                objects::new_words(m, types, id, len)?
            }
            14..=16 => {
                let len = rng.range(MIN_LARGE_WORDS, (max_bytes / 8).min(16 << 10));
                let r = objects::new_refs(m, types, id, len)?;
                fill_refs(m, types, &mut rng, r, len, keep_len);
                r
            }
            _ => objects::new_bytes(m, types, id, rng.range(1, MIN_LARGE_BYTES / 2))?,
        };
        // SAFETY: allocated since the last safepoint, so live; nothing allocates here.
        unsafe { check_read(types, obj, "large: a new object")? };
        if rng.chance(1, 6) {
            let keep = m.peek_root(0).flatten().expect("the keep array is rooted");
            // SAFETY: an item of this thread's live keep array.
            unsafe { m.write_ref(keep, array_slot(rng.below(keep_len)), Some(obj)) };
        }
        n += 1;
        ctx.count(1);
        if n % 32 == 0 {
            check_kept(m, types, keep_len)?;
        }
    }
    check_kept(m, types, keep_len)?;
    m.pop_root()?;
    Ok(())
}

/// Stores up to [`REFS_FILLED`] kept byte or word arrays into random items of `r`.
fn fill_refs(
    m: &mut Mutator,
    types: &Types,
    rng: &mut Rng,
    r: ObjRef,
    len: usize,
    keep_len: usize,
) {
    let keep = m.peek_root(0).flatten().expect("the keep array is rooted");
    for _ in 0..REFS_FILLED {
        // SAFETY: an item of this thread's live keep array.
        let Some(t) = (unsafe { m.read_ref(keep, array_slot(rng.below(keep_len))) }) else {
            continue;
        };
        // SAFETY: `t` is kept, hence live.
        if unsafe { t.type_id() } == types.refs {
            continue;
        }
        // SAFETY: `r` was allocated since the last safepoint and the index is in bounds.
        unsafe { m.write_ref(r, array_slot(rng.below(len)), Some(t)) };
    }
}

/// Checks every kept object and, for kept reference arrays, each object they reference.
/// Polls the safepoint between objects, since hashing large arrays takes a while.
fn check_kept(m: &mut Mutator, types: &Types, keep_len: usize) -> Outcome<()> {
    for i in 0..keep_len {
        m.safepoint()?;
        let keep = m.peek_root(0).flatten().expect("the keep array is rooted");
        if i == 0 {
            // SAFETY: rooted; nothing allocates while checking.
            unsafe { check_read(types, keep, "large: the keep array")? };
        }
        // SAFETY: an item of the live keep array; from here to the next poll nothing
        // allocates, so what it references stays live.
        let Some(obj) = (unsafe { m.read_ref(keep, array_slot(i)) }) else {
            continue;
        };
        // SAFETY: kept, hence live.
        unsafe { check_read(types, obj, "large: a kept object")? };
        // SAFETY: as above.
        if unsafe { obj.type_id() } != types.refs {
            continue;
        }
        // SAFETY: a live reference array holds its length at ARRAY_LENGTH.
        let len = unsafe { obj.field::<usize>(objects::ARRAY_LENGTH).read() };
        let mut held = 0;
        for j in 0..len {
            // SAFETY: item j < len of a live reference array.
            if let Some(t) = unsafe { m.read_ref(obj, array_slot(j)) } {
                // SAFETY: reachable from a kept array.
                unsafe { check_read(types, t, "large: an object a kept array holds")? };
                held += 1;
            }
        }
        if held > REFS_FILLED {
            // SAFETY: kept, hence live.
            let id = unsafe { objects::id_of(types, obj) };
            return Err(Failure::Check(format!(
                "large: reference array id {id:#x} holds {held} references, at most \
                 {REFS_FILLED} were stored"
            )));
        }
    }
    Ok(())
}
