//! binary-trees from the Computer Language Benchmarks Game: a stretch tree of depth D+1, a
//! long-lived tree of depth D, then for each depth d = 4, 6, .., D, 2^(D-d+4) trees built
//! bottom-up and walked (item check), and the long-lived tree checked last. The stretch and
//! long-lived trees are built on the calling thread; the trees of each depth are shared out
//! among the threads, as the published multithreaded programs share them, so the total
//! work is the same at every thread count. Every node count is checked.
//!
//! An iteration of the run is one whole program; with a deadline, the threads stop inside
//! the program when it passes (then the long-lived tree is still checked). With
//! [`Checks::On`] each node also carries its height as payload, its id and a checksum, all
//! checked as the trees are walked; with [`Checks::Off`] nodes are the published two
//! references and nothing else.

use super::objects::{self, Checks, IdSource};
use super::trees::{build_tree, expect_tree, tree_nodes};
use super::Outcome;
use crate::collector::{Collector, Mutator, Shape};
use crate::failure::{Failure, Fallible};
use crate::runner::{run_threads, Run};
use tandem::ObjRef;

/// The smallest depth of the short-lived trees.
pub const MIN_DEPTH: u32 = 4;
/// Payload words of a checked node: its height.
const PAYLOAD: usize = 1;

/// The size of a run.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Params {
    /// Depth of the long-lived tree (D).
    pub depth: u32,
    /// Threads sharing the short-lived trees.
    pub threads: usize,
}

/// Runs programs until `run` is spent (one per iteration); fails on a wrong node count or,
/// checked, a wrong node. Counts one unit of work per tree checked.
pub fn run<C: Collector>(c: &C, p: &Params, run: &Run, checks: Checks) -> Fallible<Outcome> {
    let depth = p.depth.max(MIN_DEPTH);
    let threads = p.threads.max(1);
    let mut m = c.attach()?;
    // The main thread's nodes: owner 0; the threads of program k own k * threads + i + 1.
    let mut nodes = Nodes::new(checks, 0);
    let mut programs = 0;
    while !run.should_stop(programs) {
        let first_owner = programs * threads as u64 + 1;
        program(c, &mut m, &mut nodes, depth, threads, first_owner, run)?;
        programs += 1;
    }
    let node = nodes.shape().size(0) as u64;
    Ok(Outcome {
        live_set_bytes: (1 + threads as u64) * tree_nodes(depth) * node,
        checked: format!(
            "{programs} program(s): {} trees had the right node counts",
            run.work()
        ),
        ..Outcome::default()
    })
}

/// One program: stretch tree, long-lived tree, the short-lived trees on `threads` threads,
/// the long-lived tree's check.
fn program<C: Collector>(
    c: &C,
    m: &mut C::Mutator,
    nodes: &mut Nodes,
    depth: u32,
    threads: usize,
    first_owner: u64,
    run: &Run,
) -> Fallible<()> {
    let stretch = nodes.build(m, depth + 1)?;
    nodes.expect(m, stretch, depth + 1)?;
    run.count(1);
    let long_lived = nodes.build(m, depth)?;
    m.push_root(Some(long_lived))?;
    let checks = nodes.checks;
    m.blocking(|| {
        run_threads(c, threads, run, |ctx, m| {
            let mut nodes = Nodes::new(checks, first_owner + ctx.index as u64);
            let mut d = MIN_DEPTH;
            while d <= depth {
                let iterations = 1u64 << (depth - d + MIN_DEPTH);
                let mut i = ctx.index as u64;
                while i < iterations {
                    if run.out_of_time() {
                        return Ok(());
                    }
                    m.safepoint();
                    let t = nodes.build(m, d)?;
                    nodes.expect(m, t, d)?;
                    ctx.count(1);
                    i += threads as u64;
                }
                d += 2;
            }
            Ok(())
        })
    })?;
    let long_lived = m.pop_root().expect("the long-lived tree is rooted");
    nodes.expect(m, long_lived, depth)?;
    run.count(1);
    Ok(())
}

/// How one thread makes and checks tree nodes.
struct Nodes {
    checks: Checks,
    ids: IdSource,
}

impl Nodes {
    fn new(checks: Checks, owner: u64) -> Nodes {
        Nodes {
            checks,
            ids: IdSource::new(owner),
        }
    }

    fn shape(&self) -> Shape {
        let words = match self.checks {
            Checks::Off => 0,
            Checks::On => PAYLOAD + objects::CHECK_WORDS,
        };
        Shape::Node { refs: 2, words }
    }

    fn build<M: Mutator>(&mut self, m: &mut M, depth: u32) -> Fallible<ObjRef> {
        let (checks, ids) = (self.checks, &mut self.ids);
        build_tree(m, depth, &mut |m: &mut M, height| match checks {
            Checks::Off => m.node(2, 0),
            Checks::On => objects::new_node(m, 2, &[height as u64], ids.next_id()),
        })
    }

    fn expect<M: Mutator>(&self, m: &mut M, tree: ObjRef, depth: u32) -> Fallible<()> {
        let checks = self.checks;
        expect_tree(m, tree, depth, "binary-trees", &mut |m: &M, n, height| {
            if checks == Checks::Off {
                return Ok(());
            }
            // SAFETY: `n` is a node of a rooted tree, which nothing writes during the walk.
            unsafe { objects::check_read(m, n, "binary-trees node")? };
            // SAFETY: as above; a checked tree node's first payload word is its height.
            let found = unsafe { objects::payload(n, 2, 0) };
            if found == height as u64 {
                return Ok(());
            }
            // SAFETY: as above.
            let id = unsafe { objects::id_of(m, n) };
            Err(Failure::Check(format!(
                "binary-trees: node id {id:#x} has height {found}, expected {height}"
            )))
        })
    }
}
