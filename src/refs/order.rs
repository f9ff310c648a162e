//! The order in which dead finalizable objects are delivered (PyPy's finalizer ordering,
//! by strongly connected components).
//!
//! Take the graph of dead objects reachable from the dead finalizable ones. A finalizable
//! object is delivered now when no finalizable object outside its strongly connected
//! component reaches it (through any path of dead objects); the others wait for a later
//! cycle, when whatever reached them is gone. So if A reaches B and both die, A is
//! delivered first; a cycle of finalizable objects is delivered together. Everything
//! reachable from any of them is kept alive by the caller either way.
//!
//! Tarjan's algorithm (iterative: dead graphs can be deep) numbers the components sinks
//! first, so a walk from the highest number down visits every component after all those
//! that reach it; it carries "reached by another finalizable component" along the edges.

use std::collections::HashMap;

/// For each of `roots` (dead finalizable objects, no duplicates), whether it is delivered
/// now. `children(addr, out)` appends the dead objects `addr` refers to; it is called once
/// or twice per object reached.
pub fn deliverable(roots: &[usize], mut children: impl FnMut(usize, &mut Vec<usize>)) -> Vec<bool> {
    // When no root reaches any dead object, nothing holds one back: no graph to build
    // (a program whose finalizable objects hold no references, or only live ones, spent
    // most of the collector's time numbering them).
    let mut kids = Vec::new();
    let leaves = roots
        .iter()
        .take_while(|&&r| {
            kids.clear();
            children(r, &mut kids);
            kids.is_empty()
        })
        .count();
    if leaves == roots.len() {
        return vec![true; roots.len()];
    }
    let g = Components::find(roots, &mut children);
    let n = g.count as usize;
    // Roots are nodes 0..roots.len(), numbered first.
    let mut finalizable = vec![false; n];
    for i in 0..roots.len() {
        finalizable[g.scc[i] as usize] = true;
    }
    // Nodes by component, highest first (every edge leads to a lower or equal number): a
    // counting sort, the components being numbered densely.
    let mut starts = vec![0u32; n + 1];
    for &c in &g.scc {
        starts[n - 1 - c as usize] += 1;
    }
    let mut sum = 0;
    for s in starts.iter_mut() {
        (*s, sum) = (sum, sum + *s);
    }
    let mut by_component = vec![0u32; g.scc.len()];
    for (i, &c) in g.scc.iter().enumerate() {
        let slot = &mut starts[n - 1 - c as usize];
        by_component[*slot as usize] = i as u32;
        *slot += 1;
    }
    let mut reached = vec![false; n];
    for i in by_component {
        let c = g.scc[i as usize] as usize;
        if !(finalizable[c] || reached[c]) {
            continue;
        }
        for &k in g.kids(i) {
            let d = g.scc[k as usize] as usize;
            if d != c {
                reached[d] = true;
            }
        }
    }
    (0..roots.len())
        .map(|i| !reached[g.scc[i] as usize])
        .collect()
}

/// A hasher for addresses: they are distinct multiples of 8, so one multiply spreads them
/// (SipHash's resistance to chosen keys buys nothing here and costs most of the time).
#[derive(Default, Clone, Copy)]
struct AddrHasher(u64);

impl std::hash::Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64 >> 3).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type AddrMap<V> = HashMap<usize, V, std::hash::BuildHasherDefault<AddrHasher>>;

/// The strongly connected components of the graph reachable from some roots, with each
/// node's edges (as node numbers) kept for the walk over the components.
struct Components {
    scc: Vec<u32>,
    /// Node i's edges are `edges[starts[i]..starts[i + 1]]`.
    starts: Vec<u32>,
    edges: Vec<u32>,
    count: u32,
}

impl Components {
    fn kids(&self, i: u32) -> &[u32] {
        &self.edges[self.starts[i as usize] as usize..self.starts[i as usize + 1] as usize]
    }

    fn find(roots: &[usize], children: &mut impl FnMut(usize, &mut Vec<usize>)) -> Components {
        const NONE: u32 = u32::MAX;
        // First every node and its edges, numbered in discovery order (iteratively).
        let mut index: AddrMap<u32> = AddrMap::default();
        let (mut starts, mut edges) = (vec![0u32], Vec::new());
        let mut addrs: Vec<usize> = Vec::new();
        let mut kids = Vec::new();
        let mut number = |a: usize, addrs: &mut Vec<usize>| {
            *index.entry(a).or_insert_with(|| {
                addrs.push(a);
                addrs.len() as u32 - 1
            })
        };
        for &r in roots {
            number(r, &mut addrs);
        }
        let mut next = 0;
        while next < addrs.len() {
            kids.clear();
            children(addrs[next], &mut kids);
            for &k in &kids {
                let ki = number(k, &mut addrs);
                edges.push(ki);
            }
            starts.push(edges.len() as u32);
            next += 1;
        }
        drop(index);
        let mut g = Components {
            scc: vec![NONE; addrs.len()],
            starts,
            edges,
            count: 0,
        };
        // Then Tarjan's algorithm over the numbered graph, with an explicit call stack.
        let n = addrs.len();
        let mut order = vec![NONE; n];
        let mut low = vec![0u32; n];
        let mut on_stack = vec![false; n];
        let mut stack: Vec<u32> = Vec::new();
        let mut calls: Vec<(u32, u32)> = Vec::new();
        let mut visited = 0u32;
        for root in 0..n as u32 {
            if order[root as usize] != NONE {
                continue;
            }
            let enter = |v: u32, order: &mut Vec<u32>, low: &mut Vec<u32>, visited: &mut u32| {
                order[v as usize] = *visited;
                low[v as usize] = *visited;
                *visited += 1;
            };
            enter(root, &mut order, &mut low, &mut visited);
            on_stack[root as usize] = true;
            stack.push(root);
            calls.push((root, g.starts[root as usize]));
            while let Some(&mut (v, ref mut e)) = calls.last_mut() {
                if *e < g.starts[v as usize + 1] {
                    let w = g.edges[*e as usize];
                    *e += 1;
                    if order[w as usize] == NONE {
                        enter(w, &mut order, &mut low, &mut visited);
                        on_stack[w as usize] = true;
                        stack.push(w);
                        calls.push((w, g.starts[w as usize]));
                    } else if on_stack[w as usize] {
                        low[v as usize] = low[v as usize].min(order[w as usize]);
                    }
                    continue;
                }
                calls.pop();
                if low[v as usize] == order[v as usize] {
                    loop {
                        let w = stack.pop().expect("v is on the stack");
                        on_stack[w as usize] = false;
                        g.scc[w as usize] = g.count;
                        if w == v {
                            break;
                        }
                    }
                    g.count += 1;
                }
                if let Some(&(parent, _)) = calls.last() {
                    let p = parent as usize;
                    low[p] = low[p].min(low[v as usize]);
                }
            }
        }
        g
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(edges: &[(usize, usize)], roots: &[usize]) -> Vec<bool> {
        let mut adj: HashMap<usize, Vec<usize>> = HashMap::new();
        for &(a, b) in edges {
            adj.entry(a).or_default().push(b);
        }
        deliverable(roots, |a, out| {
            out.extend(adj.get(&a).into_iter().flatten())
        })
    }

    #[test]
    fn a_finalizable_object_reached_by_another_waits_for_it() {
        // 1 -> 2 -> 3, 1 and 3 finalizable: 1 first; 3 waits.
        assert_eq!(run(&[(1, 2), (2, 3)], &[1, 3]), vec![true, false]);
        assert_eq!(run(&[(1, 2), (2, 3)], &[3, 1]), vec![false, true]);
    }

    #[test]
    fn a_cycle_of_finalizable_objects_is_delivered_together() {
        // 1 <-> 2 (both finalizable), 2 -> 3 (finalizable, reached by the cycle).
        let d = run(&[(1, 2), (2, 1), (2, 3)], &[1, 2, 3]);
        assert_eq!(d, vec![true, true, false]);
        // A self-loop does not hold an object back.
        assert_eq!(run(&[(1, 1)], &[1]), vec![true]);
    }

    #[test]
    fn a_cycle_reached_by_another_finalizable_object_waits() {
        // 0 -> 1 <-> 2: the cycle waits for 0.
        let d = run(&[(0, 1), (1, 2), (2, 1)], &[1, 2, 0]);
        assert_eq!(d, vec![false, false, true]);
    }

    #[test]
    fn leaves_are_delivered_unless_a_later_root_reaches_them() {
        assert_eq!(run(&[], &[5, 6, 7]), vec![true, true, true]);
        // 5 and 6 reach nothing, 1 reaches 6 through 2: 6 waits.
        assert_eq!(run(&[(1, 2), (2, 6)], &[5, 6, 1]), vec![true, false, true]);
        // Many components, in every order of their numbers.
        let edges: Vec<(usize, usize)> = (0..50).map(|i| (100 + i, 200 + i)).collect();
        let roots: Vec<usize> = (0..50).flat_map(|i| [200 + i, 100 + i]).collect();
        let d = run(&edges, &roots);
        assert!(d.chunks(2).all(|p| p == [false, true]), "{d:?}");
    }

    #[test]
    fn unrelated_objects_are_all_delivered_and_deep_chains_do_not_overflow() {
        let chain: Vec<(usize, usize)> = (1..200_000).map(|i| (i, i + 1)).collect();
        let d = run(&chain, &[1, 500_000, 200_000]);
        assert_eq!(d, vec![true, true, false]);
    }
}
