//! graph: threads share a graph of nodes. The shared nodes sit in one large reference
//! array held by a global root; each thread, at a high rate, allocates nodes and links them
//! in (replacing array slots), overwrites random reference fields of shared nodes, walks
//! the graph checking checksums, and allocates short-lived private chains. It polls the
//! safepoint once per operation.
//!
//! Rooting: a node read from the shared graph is used only until the thread's next
//! allocation or safepoint poll, unless it is pushed on the shadow stack first. Shared
//! fields are read and written with no lock: reference fields are atomic words (acquire
//! loads, release stores), so threads race on them freely, which is what stresses the
//! collector's barriers. A node evicted from the array usually
//! has its fields cleared, so that evicted nodes do not keep unbounded history alive.

use crate::failure::{Failure, Outcome};
use crate::global_root::GlobalRoot;
use crate::objects::{self, array_slot, check_read, node_ref, IdSource, Types, GRAPH_REFS};
use crate::rng::Rng;
use crate::runner::ThreadCtx;
use tandem::{Heap, Mutator, ObjRef};

/// The longest walk through the shared graph.
const WALK_STEPS: usize = 16;
/// The longest private chain.
const CHAIN_MAX: usize = 64;

/// The shared graph: the array of shared nodes, held by a global root.
#[derive(Debug)]
pub struct SharedGraph {
    root: GlobalRoot,
    types: Types,
    slots: usize,
}

impl SharedGraph {
    /// Allocates the array with `slots` nodes, linked at random, on a temporary mutator.
    /// With `corrupt`, flips a bit of the array's id afterwards (a test of the checks).
    pub fn new(
        heap: &Heap,
        types: Types,
        slots: usize,
        seed: u64,
        corrupt: bool,
    ) -> Outcome<SharedGraph> {
        let slots = slots.max(1);
        let mut m = heap.attach()?;
        let mut ids = IdSource::new(0);
        let mut rng = Rng::new(seed);
        let arr = objects::new_refs(&mut m, &types, ids.next_id(), slots)?;
        m.push_root(Some(arr))?;
        for i in 0..slots {
            let n = objects::new_node(&mut m, types.graph_node, ids.next_id(), rng.next_u64())?;
            let arr = m.peek_root(0).flatten().expect("the array is rooted");
            // SAFETY: item i is a reference slot of the live array; no other thread runs.
            unsafe { m.write_ref(arr, array_slot(i), Some(n)) };
        }
        let arr = m.pop_root()?.expect("the array is rooted");
        for i in 0..slots {
            // SAFETY: no allocation since the array was rooted; items are reference slots
            // holding live nodes, and no other thread runs yet.
            unsafe {
                let n = m.read_ref(arr, array_slot(i)).expect("filled above");
                for k in 0..2 {
                    let t = m.read_ref(arr, array_slot(rng.below(slots)));
                    m.write_ref(n, node_ref(k), t);
                }
            }
        }
        if corrupt {
            // SAFETY: the id word of the live array; no other thread runs, and the world
            // cannot stop while this mutator runs.
            unsafe { *arr.field::<u64>(objects::ARRAY_ID) ^= 1 };
        }
        let root = GlobalRoot::new(heap, arr)?;
        Ok(SharedGraph { root, types, slots })
    }

    fn array(&self) -> ObjRef {
        self.root.get().expect("the shared array is registered")
    }

    /// Checks every shared node and the nodes it references, after the threads stopped;
    /// returns how many objects were checked.
    pub fn check_all(&self, heap: &Heap) -> Outcome<u64> {
        let mut m = heap.attach()?;
        let arr = self.array();
        // SAFETY: the array is held by the global root and nothing allocates here.
        unsafe { check_read(&self.types, arr, "graph: the shared array")? };
        // From here, what is read from the array is used only until the next poll.
        let mut checked = 1;
        for i in 0..self.slots {
            // Poll between slots, so a collection in progress is not held up by the walk;
            // the array is a global root and nothing moves, so `arr` stays valid.
            m.safepoint()?;
            // SAFETY: item i is a reference slot of the array.
            let Some(n) = (unsafe { m.read_ref(arr, array_slot(i)) }) else {
                continue;
            };
            // SAFETY: a node reachable from the global root; nothing allocates here.
            unsafe { check_read(&self.types, n, "graph: final check of a shared node")? };
            checked += 1;
            for k in 0..GRAPH_REFS {
                // SAFETY: k is a reference field of the live node n.
                if let Some(t) = unsafe { m.read_ref(n, node_ref(k)) } {
                    // SAFETY: reachable from n, as above.
                    unsafe { check_read(&self.types, t, "graph: final check of a referent")? };
                    checked += 1;
                }
            }
        }
        Ok(checked)
    }
}

/// One thread's run: operations until the budget is spent; an iteration is one operation.
pub fn run_thread(ctx: &ThreadCtx<'_>, m: &mut Mutator, g: &SharedGraph, seed: u64) -> Outcome<()> {
    let mut rng = Rng::new(seed ^ ((ctx.index as u64 + 1) << 32));
    let mut ids = IdSource::new(ctx.index as u64 + 1);
    let mut ops = 0;
    while !ctx.should_stop(ops) {
        m.safepoint()?;
        match rng.below(100) {
            0..=34 => insert(m, g, &mut rng, &mut ids)?,
            35..=69 => overwrite(m, g, &mut rng, &mut ids)?,
            70..=87 => walk(m, g, &mut rng)?,
            _ => private_chain(m, g, &mut rng, &mut ids)?,
        }
        ops += 1;
        if ops % 1024 == 0 {
            ctx.count(1024);
        }
    }
    ctx.count(ops % 1024);
    Ok(())
}

/// Allocates a node, links it to random shared nodes and puts it in a random slot.
fn insert(m: &mut Mutator, g: &SharedGraph, rng: &mut Rng, ids: &mut IdSource) -> Outcome<()> {
    let n = objects::new_node(m, g.types.graph_node, ids.next_id(), rng.next_u64())?;
    // From here on nothing allocates, so `n` and the nodes read below stay live.
    let arr = g.array();
    for k in 0..GRAPH_REFS {
        if rng.chance(3, 4) {
            // SAFETY: an item of the shared array (reference fields are atomic words, so racing accesses are not data races).
            let t = unsafe { m.read_ref(arr, array_slot(rng.below(g.slots))) };
            if let Some(t) = t {
                // SAFETY: t was reachable at the read and nothing allocated since.
                unsafe { check_read(&g.types, t, "graph: linking a new node")? };
            }
            // SAFETY: `n` is not shared yet; k is one of its reference fields.
            unsafe { m.write_ref(n, node_ref(k), t) };
        }
    }
    // SAFETY: an item of the shared array (reference fields are atomic words, so racing accesses are not data races).
    let old = unsafe {
        {
            let slot = array_slot(rng.below(g.slots));
            let old = m.read_ref(arr, slot);
            m.write_ref(arr, slot, Some(n));
            old
        }
    };
    if let Some(old) = old {
        // SAFETY: `old` was reachable at the swap and nothing allocated since.
        unsafe { check_read(&g.types, old, "graph: evicting a node")? };
        if rng.chance(7, 8) {
            for k in 0..GRAPH_REFS {
                // SAFETY: a reference field of the live node `old`.
                unsafe { m.write_ref(old, node_ref(k), None) };
            }
        }
    }
    Ok(())
}

/// Overwrites a random field of a random shared node with a shared node, null or a fresh
/// node.
fn overwrite(m: &mut Mutator, g: &SharedGraph, rng: &mut Rng, ids: &mut IdSource) -> Outcome<()> {
    let arr = g.array();
    // SAFETY: an item of the shared array (reference fields are atomic words, so racing accesses are not data races).
    let Some(mut src) = (unsafe { m.read_ref(arr, array_slot(rng.below(g.slots))) }) else {
        return Ok(());
    };
    // SAFETY: reachable at the read, nothing allocated since.
    unsafe { check_read(&g.types, src, "graph: overwriting a field")? };
    let value = match rng.below(10) {
        0..=5 => {
            // SAFETY: as above.
            let v = unsafe { m.read_ref(arr, array_slot(rng.below(g.slots))) };
            if let Some(v) = v {
                // SAFETY: reachable at the read, nothing allocated since.
                unsafe { check_read(&g.types, v, "graph: reading a new referent")? };
            }
            v
        }
        6 => None,
        _ => {
            // The allocation may collect: keep `src` on the shadow stack across it.
            m.push_root(Some(src))?;
            let fresh = objects::new_node(m, g.types.graph_node, ids.next_id(), rng.next_u64());
            src = m.pop_root()?.expect("src is rooted");
            Some(fresh?)
        }
    };
    // SAFETY: a reference field of the live node `src`.
    unsafe { m.write_ref(src, node_ref(rng.below(GRAPH_REFS)), value) };
    Ok(())
}

/// Follows random references from a random shared node, checking each node met.
fn walk(m: &mut Mutator, g: &SharedGraph, rng: &mut Rng) -> Outcome<()> {
    let arr = g.array();
    // SAFETY: an item of the shared array (reference fields are atomic words, so racing accesses are not data races).
    let mut cur = unsafe { m.read_ref(arr, array_slot(rng.below(g.slots))) };
    for _ in 0..WALK_STEPS {
        let Some(n) = cur else { break };
        // SAFETY: reachable when read; the walk neither allocates nor polls.
        unsafe { check_read(&g.types, n, "graph: walking")? };
        // SAFETY: a reference field of the live node `n`.
        cur = unsafe { m.read_ref(n, node_ref(rng.below(GRAPH_REFS))) };
    }
    Ok(())
}

/// Builds a private chain of short-lived nodes (rooted by its head), then walks it.
fn private_chain(
    m: &mut Mutator,
    g: &SharedGraph,
    rng: &mut Rng,
    ids: &mut IdSource,
) -> Outcome<()> {
    let len = rng.range(1, CHAIN_MAX + 1);
    m.push_root(None)?;
    for i in 0..len {
        let n = objects::new_node(m, g.types.graph_node, ids.next_id(), i as u64)?;
        let head = m.peek_root(0).flatten();
        // SAFETY: `n` is fresh and private; field 0 is a reference field.
        unsafe { m.write_ref(n, node_ref(0), head) };
        m.set_root(0, Some(n));
    }
    let mut cur = m.pop_root()?;
    let mut expected = len;
    // Nothing allocates during the walk, so the popped chain stays live.
    while let Some(n) = cur {
        // SAFETY: a live private node.
        unsafe { check_read(&g.types, n, "graph: private chain")? };
        // SAFETY: as above.
        let payload = unsafe { objects::payload_of(n) };
        if expected == 0 || payload != expected as u64 - 1 {
            return Err(Failure::Check(format!(
                "graph: private chain of {len} nodes has payload {payload} where {} was \
                 expected",
                expected as i64 - 1
            )));
        }
        expected -= 1;
        // SAFETY: field 0 of a live private node.
        cur = unsafe { m.read_ref(n, node_ref(0)) };
    }
    if expected != 0 {
        return Err(Failure::Check(format!(
            "graph: private chain of {len} nodes ended after {} nodes",
            len - expected
        )));
    }
    Ok(())
}
