//! graph, mutation-heavy: threads share `slots` nodes in one reference array held by a
//! global root. Each operation, picked at random, inserts a fresh node linked to shared
//! ones (evicting a node and usually clearing its fields, so that evicted nodes do not keep
//! unbounded history alive), overwrites a random reference field of a shared node, walks
//! up to 16 random references, or builds and walks a private chain of up to 64 short-lived
//! nodes. The thread polls the safepoint once per operation; an iteration of the run is one
//! operation.
//!
//! Shared fields are read and written with no lock: reference fields are atomic words in
//! both collectors, so threads race on them freely, as a VM's threads do, which is what
//! stresses a concurrent collector's barriers. Every node and the shared array are checked
//! objects (see [`objects`]) in the stress runs and the bench alike, and every node read is
//! checked; at the end every node reachable from the array is checked and counted (the
//! live set).
//!
//! Rooting: a node read from the shared graph is used only until the thread's next
//! allocation or safepoint poll, unless it is pushed on the shadow stack first.

use super::objects::{self, check_read, Checks, IdSource};
use super::Outcome;
use crate::collector::layout::{self, node_ref};
use crate::collector::{Collector, Global, Items, Mutator, Shape};
use crate::failure::{Failure, Fallible};
use crate::rng::Rng;
use crate::runner::{run_threads, Run};
use tandem::ObjRef;

const REFS: usize = 4;
/// A node: four references, then its id and checksum (no payload).
const NODE: Shape = Shape::Node {
    refs: REFS,
    words: objects::CHECK_WORDS,
};
/// The shared array is a checked reference array.
const ARRAY: Checks = Checks::On;
const WALK_STEPS: usize = 16;
const CHAIN_MAX: usize = 64;
/// Nodes checked between safepoint polls in the final walk.
const POLL_EVERY: usize = 1024;

/// The size of a run.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Params {
    /// Shared nodes.
    pub slots: usize,
    /// Mutator threads.
    pub threads: usize,
    /// Seed for the random choices.
    pub seed: u64,
    /// Test hook: corrupt the shared array's id, which only the verifier and the final
    /// check read, to prove that they catch it.
    #[serde(skip)]
    pub corrupt_shared_array: bool,
}

/// Runs the workload until `run` is spent; fails on a bad node or chain. Counts one unit of
/// work per operation.
pub fn run<C: Collector>(c: &C, p: &Params, run: &Run) -> Fallible<Outcome> {
    let slots = p.slots.max(1);
    let threads = p.threads.max(1);
    let mut m = c.attach()?;
    let array = build(c, &mut m, p, slots).map_err(|e| e.context("setting up the shared graph"))?;
    let g = Shared {
        array: &array,
        slots,
    };
    m.blocking(|| {
        run_threads(c, threads, run, |ctx, m| {
            let mut rng = Rng::new(p.seed ^ ((ctx.index as u64 + 1) << 32));
            let mut ids = IdSource::new(ctx.index as u64 + 1);
            let mut ops = 0;
            while !ctx.should_stop(ops) {
                m.safepoint();
                match rng.below(100) {
                    0..=34 => insert(m, &g, &mut rng, &mut ids)?,
                    35..=69 => overwrite(m, &g, &mut rng, &mut ids)?,
                    70..=87 => walk(m, &g, &mut rng)?,
                    _ => chain(m, &mut rng, &mut ids)?,
                }
                ops += 1;
                if ops % 1024 == 0 {
                    ctx.count(1024);
                }
            }
            ctx.count(ops % 1024);
            Ok(())
        })
    })?;
    let reachable =
        final_check(&mut m, &g).map_err(|e| e.context("final check of the shared graph"))?;
    Ok(Outcome {
        live_set_bytes: (reachable * NODE.size(0) + ARRAY.array(Items::Refs).size(slots)) as u64,
        checked: format!(
            "{} operations on {threads} threads; every node read checked; {reachable} nodes \
             reachable at the end, all checked",
            run.work()
        ),
        ..Outcome::default()
    })
}

/// The shared array and its size.
struct Shared<'a, G> {
    array: &'a G,
    slots: usize,
}

impl<G: Global> Shared<'_, G> {
    /// The node in a random slot (or null), unrooted.
    fn random_slot<M: Mutator>(&self, m: &mut M, rng: &mut Rng) -> Option<ObjRef> {
        let arr = self.array.get();
        // SAFETY: an item of the live shared array.
        unsafe { m.read_ref(arr, ARRAY.item(rng.below(self.slots))) }
    }
}

/// Allocates the array of `slots` nodes, links each to two random nodes, and holds it in a
/// global root.
fn build<C: Collector>(c: &C, m: &mut C::Mutator, p: &Params, slots: usize) -> Fallible<C::Global> {
    let mut ids = IdSource::new(0);
    let mut rng = Rng::new(p.seed);
    let arr = objects::new_array(m, ARRAY, Items::Refs, ids.next_id(), slots)?;
    m.push_root(Some(arr))?;
    for i in 0..slots {
        let n = objects::new_node(m, REFS, &[], ids.next_id())?;
        let arr = m.root(0).expect("the array is rooted");
        // SAFETY: item i of the live array; no other thread runs yet.
        unsafe { m.write_ref(arr, ARRAY.item(i), Some(n)) };
    }
    let arr = m.root(0).expect("the array is rooted");
    for i in 0..slots {
        // SAFETY: no allocation since `arr` was read; items hold live nodes.
        unsafe {
            let n = m.read_ref(arr, ARRAY.item(i)).expect("filled above");
            for k in 0..2 {
                let t = m.read_ref(arr, ARRAY.item(rng.below(slots)));
                m.write_ref(n, node_ref(k), t);
            }
        }
    }
    if p.corrupt_shared_array {
        let off = objects::id_offset(ARRAY.array(Items::Refs)).expect("a checked array");
        // SAFETY: the id word of the live array; no other thread runs yet.
        unsafe { layout::set_word(arr, off, layout::word(arr, off) ^ 1) };
    }
    let global = c.global(arr)?;
    m.pop_root();
    Ok(global)
}

/// Allocates a node, links it to random shared nodes and puts it in a random slot.
fn insert<M: Mutator, G: Global>(
    m: &mut M,
    g: &Shared<'_, G>,
    rng: &mut Rng,
    ids: &mut IdSource,
) -> Fallible<()> {
    let n = objects::new_node(m, REFS, &[], ids.next_id())?;
    // Nothing allocates from here on, so `n` and the nodes read below stay live.
    for k in 0..REFS {
        if rng.chance(3, 4) {
            let t = g.random_slot(m, rng);
            if let Some(t) = t {
                // SAFETY: reachable at the read, nothing allocated since.
                unsafe { check_read(m, t, "graph: linking a new node")? };
            }
            // SAFETY: `n` is not shared yet; k is one of its reference fields.
            unsafe { m.write_ref(n, node_ref(k), t) };
        }
    }
    let arr = g.array.get();
    let slot = ARRAY.item(rng.below(g.slots));
    // SAFETY: an item of the live shared array. Another thread may store into the slot
    // between the two accesses; then both evict the same node, which is harmless.
    let old = unsafe {
        let old = m.read_ref(arr, slot);
        m.write_ref(arr, slot, Some(n));
        old
    };
    if let Some(old) = old {
        // SAFETY: `old` was reachable at the read and nothing allocated since.
        unsafe { check_read(m, old, "graph: evicting a node")? };
        if rng.chance(7, 8) {
            for k in 0..REFS {
                // SAFETY: a reference field of the live node `old`.
                unsafe { m.write_ref(old, node_ref(k), None) };
            }
        }
    }
    Ok(())
}

/// Overwrites a random field of a random shared node with a shared node, null or a fresh
/// node.
fn overwrite<M: Mutator, G: Global>(
    m: &mut M,
    g: &Shared<'_, G>,
    rng: &mut Rng,
    ids: &mut IdSource,
) -> Fallible<()> {
    let Some(mut src) = g.random_slot(m, rng) else {
        return Ok(());
    };
    // SAFETY: reachable at the read, nothing allocated since.
    unsafe { check_read(m, src, "graph: overwriting a field")? };
    let value = match rng.below(10) {
        0..=5 => {
            let v = g.random_slot(m, rng);
            if let Some(v) = v {
                // SAFETY: reachable at the read, nothing allocated since.
                unsafe { check_read(m, v, "graph: reading a new referent")? };
            }
            v
        }
        6 => None,
        _ => {
            // The allocation may collect: keep `src` on the shadow stack across it.
            m.push_root(Some(src))?;
            let fresh = objects::new_node(m, REFS, &[], ids.next_id());
            src = m.pop_root().expect("src is rooted");
            Some(fresh?)
        }
    };
    // SAFETY: a reference field of the live node `src`.
    unsafe { m.write_ref(src, node_ref(rng.below(REFS)), value) };
    Ok(())
}

/// Follows random references from a random shared node, checking each node met.
fn walk<M: Mutator, G: Global>(m: &mut M, g: &Shared<'_, G>, rng: &mut Rng) -> Fallible<()> {
    let mut cur = g.random_slot(m, rng);
    for _ in 0..WALK_STEPS {
        let Some(n) = cur else { break };
        // SAFETY: reachable when read; the walk neither allocates nor polls.
        unsafe { check_read(m, n, "graph: walking")? };
        // SAFETY: a reference field of the live node `n`.
        cur = unsafe { m.read_ref(n, node_ref(rng.below(REFS))) };
    }
    Ok(())
}

/// Builds a private chain of short-lived nodes (rooted by its head), then walks it: the
/// ids must count down by one from the head, since each node took the next id.
fn chain<M: Mutator>(m: &mut M, rng: &mut Rng, ids: &mut IdSource) -> Fallible<()> {
    let len = rng.range(1, CHAIN_MAX + 1);
    m.push_root(None)?;
    let mut head_id = 0;
    for _ in 0..len {
        head_id = ids.next_id();
        let n = objects::new_node(m, REFS, &[], head_id)?;
        let head = m.root(0);
        // SAFETY: `n` is fresh and private; field 0 is a reference field.
        unsafe { m.write_ref(n, node_ref(0), head) };
        m.set_root(0, Some(n));
    }
    let mut cur = m.pop_root();
    let mut walked = 0;
    // Nothing allocates during the walk, so the popped chain stays live.
    while let Some(n) = cur {
        // SAFETY: a live private node.
        unsafe { check_read(m, n, "graph: private chain")? };
        // SAFETY: as above.
        let id = unsafe { objects::id_of(m, n) };
        if walked == len || id != head_id - walked as u64 {
            return Err(Failure::Check(format!(
                "graph: private chain of {len} nodes has node id {id:#x} at position \
                 {walked}, where id {:#x} was expected",
                head_id.wrapping_sub(walked as u64)
            )));
        }
        walked += 1;
        // SAFETY: field 0 of a live private node.
        cur = unsafe { m.read_ref(n, node_ref(0)) };
    }
    if walked != len {
        return Err(Failure::Check(format!(
            "graph: private chain of {len} nodes ended after {walked} nodes"
        )));
    }
    Ok(())
}

/// Checks the shared array and every node reachable from it, after the threads stopped;
/// returns how many nodes are reachable. Polls every [`POLL_EVERY`] nodes so that a
/// collection in progress is not held up. A poll may start a cycle that moves objects,
/// which updates only roots: the nodes still to visit wait on the shadow stack (as compiled
/// code's stack maps would hold them), and a node is remembered by its id, which moving
/// keeps, not by its address. Each node is checked when first met and pushed once, so the
/// shadow stack holds at most the graph's nodes.
fn final_check<M: Mutator, G: Global>(m: &mut M, g: &Shared<'_, G>) -> Fallible<usize> {
    let arr = g.array.get();
    // SAFETY: the array is held by the global root; nothing writes its data.
    unsafe { check_read(m, arr, "the shared array")? };
    let mut seen = std::collections::HashSet::new();
    let mut pending = 0;
    // Whether `n` is met for the first time, once it is checked.
    let mut first_meeting = |m: &mut M, n: ObjRef| -> Fallible<bool> {
        // SAFETY: the callers pass a node read from a reachable slot or field, with no
        // poll since.
        unsafe { check_read(m, n, "a reachable node")? };
        // SAFETY: checked just above.
        Ok(seen.insert(unsafe { objects::id_of(m, n) }))
    };
    let mut visits = 0;
    for i in 0..g.slots {
        // SAFETY: an item of the live shared array; no other thread runs now.
        if let Some(n) = unsafe { m.read_ref(g.array.get(), ARRAY.item(i)) } {
            if first_meeting(m, n)? {
                m.push_root(Some(n))?;
                pending += 1;
            }
        }
        while pending > 0 {
            let n = m.pop_root().expect("a node to visit was pushed");
            pending -= 1;
            for k in 0..REFS {
                // SAFETY: a reference field of `n`, popped from a root since the last poll.
                if let Some(child) = unsafe { m.read_ref(n, node_ref(k)) } {
                    if first_meeting(m, child)? {
                        m.push_root(Some(child))?;
                        pending += 1;
                    }
                }
            }
            visits += 1;
            if visits % POLL_EVERY == 0 {
                // Every node still to visit is on the shadow stack; `n` is not used again.
                m.safepoint();
            }
        }
    }
    Ok(seen.len())
}
