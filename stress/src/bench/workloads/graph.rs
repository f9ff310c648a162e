//! graph, mutation-heavy: threads share `slots` nodes in one reference array held by a
//! global root. Each operation, picked at random, inserts a fresh node linked to shared
//! ones (evicting a node and usually clearing its fields), overwrites a random reference
//! field of a shared node, walks 16 random references, or builds and walks a private chain
//! of up to 64 short-lived nodes. Shared fields are accessed under striped locks (libgc's
//! fields are plain words; see `locks.rs`); every node read is checked (its second word is a hash of its
//! id), so a node freed too early shows up as a failure. The live set reported is what a
//! walk from the array reaches at the end.

use super::{mix, Outcome};
use crate::bench::api::{self, run_threads, BResult, Collector, Global, Mutator};
use crate::locks::FieldLocks;
use crate::rng::Rng;
use tandem::ObjRef;

const REFS: usize = 4;
const WORDS: usize = 2;
const ID: usize = api::node_word(REFS, 0);
const CHECK: usize = api::node_word(REFS, 1);
const WALK_STEPS: usize = 16;
const CHAIN_MAX: usize = 64;

/// The size of a run.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Params {
    /// Shared nodes.
    pub slots: usize,
    /// Operations per thread.
    pub ops: u64,
    /// Mutator threads.
    pub threads: usize,
}

fn new_node<M: Mutator>(m: &mut M, id: u64) -> BResult<ObjRef> {
    let n = m.node(REFS, WORDS)?;
    // SAFETY: the data words of a fresh node that no other thread can see.
    unsafe {
        api::set_word(n, ID, id);
        api::set_word(n, CHECK, mix(id));
    }
    Ok(n)
}

fn check(n: ObjRef, what: &str) -> BResult<()> {
    // SAFETY: `n` is live (the callers read it since their last allocation); data words
    // are written only before a node is shared.
    let (id, sum) = unsafe { (api::word(n, ID), api::word(n, CHECK)) };
    if mix(id) == sum {
        Ok(())
    } else {
        Err(format!(
            "graph: {what}: node {:#x} has id {id:#x} and check {sum:#x}",
            n.addr()
        ))
    }
}

struct Shared<'a, G> {
    array: &'a G,
    locks: FieldLocks,
    slots: usize,
}

impl<G: Global> Shared<'_, G> {
    fn read<M: Mutator>(&self, m: &mut M, obj: ObjRef, off: usize) -> Option<ObjRef> {
        // SAFETY: callers pass reference fields of live shared objects; the stripe lock
        // orders this access against other threads' stores.
        self.locks
            .with(obj, off, || unsafe { m.read_ref(obj, off) })
    }

    fn write<M: Mutator>(&self, m: &mut M, obj: ObjRef, off: usize, v: Option<ObjRef>) {
        // SAFETY: as for `read`.
        self.locks
            .with(obj, off, || unsafe { m.write_ref(obj, off, v) })
    }

    fn swap<M: Mutator>(
        &self,
        m: &mut M,
        obj: ObjRef,
        off: usize,
        v: Option<ObjRef>,
    ) -> Option<ObjRef> {
        // SAFETY: as for `read`.
        self.locks.with(obj, off, || unsafe {
            let old = m.read_ref(obj, off);
            m.write_ref(obj, off, v);
            old
        })
    }

    fn random_slot<M: Mutator>(&self, m: &mut M, rng: &mut Rng) -> Option<ObjRef> {
        let arr = self.array.get();
        self.read(m, arr, api::item(rng.below(self.slots)))
    }
}

/// Runs the workload; fails on a bad node or chain.
pub fn run<C: Collector>(c: &C, p: &Params) -> BResult<Outcome> {
    let slots = p.slots.max(1);
    let threads = p.threads.max(1);
    let mut m = c.attach()?;
    let mut rng = Rng::new(1);
    let arr = m.ref_array(slots)?;
    m.push_root(Some(arr))?;
    for i in 0..slots {
        let n = new_node(&mut m, i as u64)?;
        let arr = m.root(0).expect("the array is rooted");
        // SAFETY: item i of the live array; no other thread runs yet.
        unsafe { m.write_ref(arr, api::item(i), Some(n)) };
    }
    let arr = m.root(0).expect("the array is rooted");
    for i in 0..slots {
        // SAFETY: no allocation since `arr` was read; items hold live nodes.
        unsafe {
            let n = m.read_ref(arr, api::item(i)).expect("filled above");
            for k in 0..2 {
                let t = m.read_ref(arr, api::item(rng.below(slots)));
                m.write_ref(n, api::node_ref(k), t);
            }
        }
    }
    let global = c.global(arr)?;
    m.pop_root();
    let shared = Shared {
        array: &global,
        locks: FieldLocks::new(4096),
        slots,
    };
    m.blocking(|| {
        run_threads(c, threads, |index, m| {
            let mut rng = Rng::new(0x5eed ^ ((index as u64 + 1) << 32));
            let mut next_id = (index as u64 + 1) << 40;
            for _ in 0..p.ops {
                m.safepoint();
                next_id += 1;
                match rng.below(100) {
                    0..=34 => insert(m, &shared, &mut rng, next_id)?,
                    35..=69 => overwrite(m, &shared, &mut rng, next_id)?,
                    70..=87 => walk(m, &shared, &mut rng)?,
                    _ => chain(m, &mut rng)?,
                }
            }
            Ok(())
        })
    })?;
    let arr = global.get();
    let mut shared_nodes = 0;
    for i in 0..slots {
        if let Some(n) = shared.read(&mut m, arr, api::item(i)) {
            check(n, "final check")?;
            shared_nodes += 1;
        }
    }
    // The live set at the end: every node reachable from the array (evicted nodes that
    // shared nodes still point at included). Nothing allocates or polls during the walk
    // and the other threads are done, so the addresses stay valid.
    let mut seen = std::collections::HashSet::new();
    let mut stack: Vec<ObjRef> = Vec::new();
    for i in 0..slots {
        // SAFETY: items of the live shared array; no other thread runs now.
        if let Some(n) = unsafe { m.read_ref(arr, api::item(i)) } {
            stack.push(n);
        }
    }
    while let Some(n) = stack.pop() {
        if !seen.insert(n.addr()) {
            continue;
        }
        for k in 0..REFS {
            // SAFETY: reference fields of a reachable node.
            if let Some(t) = unsafe { m.read_ref(n, api::node_ref(k)) } {
                stack.push(t);
            }
        }
    }
    let reachable = seen.len();
    Ok(Outcome {
        live_set_bytes: (reachable * api::node_size(REFS, WORDS) + api::array_size(slots, 8))
            as u64,
        checked: format!(
            "{} operations on {threads} threads; every node read and all {shared_nodes} shared \
             nodes checked; {reachable} nodes reachable at the end",
            p.ops * threads as u64
        ),
        measured_from_pause: 0,
    })
}

fn insert<M: Mutator, G: Global>(
    m: &mut M,
    g: &Shared<'_, G>,
    rng: &mut Rng,
    id: u64,
) -> BResult<()> {
    let n = new_node(m, id)?;
    // Nothing allocates from here on, so `n` and the nodes read below stay live.
    for k in 0..REFS {
        if rng.chance(3, 4) {
            let t = g.random_slot(m, rng);
            if let Some(t) = t {
                check(t, "linking a new node")?;
            }
            // SAFETY: `n` is not shared yet; k is one of its reference fields.
            unsafe { m.write_ref(n, api::node_ref(k), t) };
        }
    }
    let arr = g.array.get();
    let old = g.swap(m, arr, api::item(rng.below(g.slots)), Some(n));
    if let Some(old) = old {
        check(old, "evicting a node")?;
        if rng.chance(7, 8) {
            for k in 0..REFS {
                g.write(m, old, api::node_ref(k), None);
            }
        }
    }
    Ok(())
}

fn overwrite<M: Mutator, G: Global>(
    m: &mut M,
    g: &Shared<'_, G>,
    rng: &mut Rng,
    id: u64,
) -> BResult<()> {
    let Some(mut src) = g.random_slot(m, rng) else {
        return Ok(());
    };
    check(src, "overwriting a field")?;
    let value = match rng.below(10) {
        0..=5 => {
            let v = g.random_slot(m, rng);
            if let Some(v) = v {
                check(v, "reading a new referent")?;
            }
            v
        }
        6 => None,
        _ => {
            // The allocation may collect: keep `src` on the shadow stack across it.
            m.push_root(Some(src))?;
            let fresh = new_node(m, id);
            src = m.pop_root().expect("src is rooted");
            Some(fresh?)
        }
    };
    g.write(m, src, api::node_ref(rng.below(REFS)), value);
    Ok(())
}

fn walk<M: Mutator, G: Global>(m: &mut M, g: &Shared<'_, G>, rng: &mut Rng) -> BResult<()> {
    let mut cur = g.random_slot(m, rng);
    for _ in 0..WALK_STEPS {
        let Some(n) = cur else { break };
        check(n, "walking")?;
        cur = g.read(m, n, api::node_ref(rng.below(REFS)));
    }
    Ok(())
}

fn chain<M: Mutator>(m: &mut M, rng: &mut Rng) -> BResult<()> {
    let len = rng.range(1, CHAIN_MAX + 1);
    m.push_root(None)?;
    for i in 0..len {
        let n = new_node(m, i as u64)?;
        let head = m.root(0);
        // SAFETY: `n` is fresh and private; field 0 is a reference field.
        unsafe { m.write_ref(n, api::node_ref(0), head) };
        m.set_root(0, Some(n));
    }
    let mut cur = m.pop_root();
    let mut expected = len;
    while let Some(n) = cur {
        check(n, "private chain")?;
        // SAFETY: a live private node (nothing allocates during the walk).
        let id = unsafe { api::word(n, ID) };
        if expected == 0 || id != expected as u64 - 1 {
            return Err(format!("graph: a private chain of {len} nodes is broken"));
        }
        expected -= 1;
        // SAFETY: field 0 of a live private node.
        cur = unsafe { m.read_ref(n, api::node_ref(0)) };
    }
    if expected != 0 {
        return Err(format!("graph: a private chain of {len} nodes is short"));
    }
    Ok(())
}
