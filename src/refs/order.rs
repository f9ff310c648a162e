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
/// now. `children(addr, out)` appends the dead objects `addr` refers to.
pub fn deliverable(roots: &[usize], mut children: impl FnMut(usize, &mut Vec<usize>)) -> Vec<bool> {
    let g = Components::find(roots, &mut children);
    let n = g.count as usize;
    let mut finalizable = vec![false; n];
    for r in roots {
        finalizable[g.component(*r)] = true;
    }
    // Nodes by component, highest first: every edge leads to a lower or equal number.
    let mut by_component: Vec<usize> = (0..g.addrs.len()).collect();
    by_component.sort_unstable_by_key(|&i| std::cmp::Reverse(g.scc[i]));
    let mut reached = vec![false; n];
    let mut kids = Vec::new();
    for i in by_component {
        let c = g.scc[i] as usize;
        if !(finalizable[c] || reached[c]) {
            continue;
        }
        kids.clear();
        children(g.addrs[i], &mut kids);
        for k in &kids {
            let d = g.component(*k);
            if d != c {
                reached[d] = true;
            }
        }
    }
    roots.iter().map(|r| !reached[g.component(*r)]).collect()
}

/// The strongly connected components of the graph reachable from some roots.
struct Components {
    index: HashMap<usize, u32>,
    addrs: Vec<usize>,
    scc: Vec<u32>,
    count: u32,
}

impl Components {
    fn component(&self, addr: usize) -> usize {
        self.scc[self.index[&addr] as usize] as usize
    }

    fn find(roots: &[usize], children: &mut impl FnMut(usize, &mut Vec<usize>)) -> Components {
        const NONE: u32 = u32::MAX;
        let mut g = Components {
            index: HashMap::new(),
            addrs: Vec::new(),
            scc: Vec::new(),
            count: 0,
        };
        let mut low: Vec<u32> = Vec::new();
        let mut on_stack: Vec<bool> = Vec::new();
        let mut stack: Vec<u32> = Vec::new();
        // (node, its children, next child to visit)
        let mut calls: Vec<(u32, Vec<usize>, usize)> = Vec::new();
        for &root in roots {
            if g.index.contains_key(&root) {
                continue;
            }
            let mut enter =
                |addr: usize,
                 g: &mut Components,
                 low: &mut Vec<u32>,
                 on_stack: &mut Vec<bool>,
                 stack: &mut Vec<u32>,
                 calls: &mut Vec<(u32, Vec<usize>, usize)>| {
                    let v = g.addrs.len() as u32;
                    g.index.insert(addr, v);
                    g.addrs.push(addr);
                    g.scc.push(NONE);
                    low.push(v);
                    on_stack.push(true);
                    stack.push(v);
                    let mut kids = Vec::new();
                    children(addr, &mut kids);
                    calls.push((v, kids, 0));
                };
            enter(
                root,
                &mut g,
                &mut low,
                &mut on_stack,
                &mut stack,
                &mut calls,
            );
            while let Some((v, kids, next)) = calls.last_mut() {
                let v = *v;
                if let Some(&w) = kids.get(*next) {
                    *next += 1;
                    match g.index.get(&w) {
                        None => enter(w, &mut g, &mut low, &mut on_stack, &mut stack, &mut calls),
                        Some(&wi) if on_stack[wi as usize] => {
                            low[v as usize] = low[v as usize].min(wi);
                        }
                        Some(_) => {}
                    }
                    continue;
                }
                calls.pop();
                if low[v as usize] == v {
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
                if let Some((parent, _, _)) = calls.last() {
                    let p = *parent as usize;
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
    fn unrelated_objects_are_all_delivered_and_deep_chains_do_not_overflow() {
        let chain: Vec<(usize, usize)> = (1..200_000).map(|i| (i, i + 1)).collect();
        let d = run(&chain, &[1, 500_000, 200_000]);
        assert_eq!(d, vec![true, true, false]);
    }
}
