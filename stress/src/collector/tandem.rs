//! The Tandem backend: the Rust API, one registered type per [`Shape`]. The stress runs also
//! reach through it to the heap, for its statistics and its verify hook.

use super::global_root::GlobalRoot;
use super::layout::{self, Items, Shape, MAX_ARRAY_WORDS, MAX_NODE_REFS, MAX_NODE_WORDS};
use super::{Collector, GcStats, Global, Mutator, Pause};
use crate::failure::Fallible;
use std::sync::Arc;
use tandem::{Heap, ObjRef, TypeId, TypeInfo};

/// Type ids of every shape, copied into each mutator so that an allocation indexes a table
/// it holds rather than following a pointer.
#[derive(Debug, Clone, Copy)]
struct Types {
    nodes: [[TypeId; MAX_NODE_WORDS + 1]; MAX_NODE_REFS + 1],
    /// Indexed by the position of the item kind in [`Items::ALL`], then by data words.
    arrays: [[TypeId; MAX_ARRAY_WORDS + 1]; 3],
}

impl Types {
    #[inline(always)]
    fn of(&self, shape: Shape) -> TypeId {
        match shape {
            Shape::Node { refs, words } => self.nodes[refs][words],
            Shape::Array { items, words } => self.arrays[items as usize][words],
        }
    }
}

/// The way back from a type id to its shape (for [`Mutator::shape`] and the verify hook),
/// indexed by the id.
type Shapes = Arc<[Option<Shape>]>;

/// A Tandem heap with the workloads' types registered.
#[derive(Debug)]
pub struct TandemCollector {
    heap: Heap,
    types: Types,
    shapes: Shapes,
}

impl TandemCollector {
    /// Registers a type for every shape with `heap`.
    pub fn new(heap: Heap) -> tandem::Result<TandemCollector> {
        let mut registered = Vec::new();
        let mut reg = |shape: Shape, info: TypeInfo| {
            let ty = heap.register_type(info)?;
            registered.push((ty, shape));
            Ok::<_, tandem::Error>(ty)
        };
        let mut nodes = [[TypeId(0); MAX_NODE_WORDS + 1]; MAX_NODE_REFS + 1];
        for (refs, row) in nodes.iter_mut().enumerate() {
            for (words, ty) in row.iter_mut().enumerate() {
                let info = TypeInfo {
                    fixed_size: layout::node_size(refs, words),
                    ref_offsets: (0..refs).map(layout::node_ref).collect(),
                    ..Default::default()
                };
                *ty = reg(Shape::Node { refs, words }, info)?;
            }
        }
        let mut arrays = [[TypeId(0); MAX_ARRAY_WORDS + 1]; 3];
        for (items, row) in Items::ALL.into_iter().zip(arrays.iter_mut()) {
            for (words, ty) in row.iter_mut().enumerate() {
                let info = TypeInfo {
                    fixed_size: layout::array_word(words),
                    item_size: items.size(),
                    length_offset: layout::LEN,
                    item_ref_offsets: if items == Items::Refs {
                        vec![0]
                    } else {
                        vec![]
                    },
                    ..Default::default()
                };
                *ty = reg(Shape::Array { items, words }, info)?;
            }
        }
        let len = registered.iter().map(|(ty, _)| ty.0 as usize + 1).max();
        let mut shapes = vec![None; len.unwrap_or(0)];
        for (ty, shape) in registered {
            shapes[ty.0 as usize] = Some(shape);
        }
        Ok(TandemCollector {
            heap,
            types: Types { nodes, arrays },
            shapes: shapes.into(),
        })
    }

    /// The heap.
    pub fn heap(&self) -> &Heap {
        &self.heap
    }

    /// Makes `check` the heap's verify hook (run on every reachable object after each GC
    /// under `TANDEM_VERIFY=1`), with the shape each object was allocated with.
    pub fn set_verify_hook(&self, check: fn(Shape, ObjRef) -> Result<(), String>) {
        let shapes = self.shapes.clone();
        self.heap.set_verify_hook(Some(Box::new(move |obj| {
            // SAFETY: the collector calls the hook on reachable objects with the world
            // stopped, so the object is live and its header readable.
            let ty = unsafe { obj.type_id() };
            match shapes.get(ty.0 as usize).copied().flatten() {
                Some(shape) => check(shape, obj),
                None => Err(format!(
                    "object {:#x} has type id {}, which no workload allocates",
                    obj.addr(),
                    ty.0
                )),
            }
        })));
    }
}

impl Collector for TandemCollector {
    type Mutator = TandemMutator;
    type Global = GlobalRoot;

    fn attach(&self) -> Fallible<TandemMutator> {
        Ok(TandemMutator {
            m: self.heap.attach()?,
            types: self.types,
            shapes: self.shapes.clone(),
        })
    }

    fn global(&self, obj: ObjRef) -> Fallible<GlobalRoot> {
        Ok(GlobalRoot::new(&self.heap, obj)?)
    }

    fn stats(&self) -> GcStats {
        let s = self.heap.stats();
        GcStats {
            pauses: s
                .pauses
                .iter()
                .map(|p| Pause {
                    start_ns: p.start_ns,
                    dur_ns: p.duration_ns,
                    ttsp_ns: p.ttsp_ns,
                    mark_ns: p.mark_ns,
                    kind: p.kind.name().to_string(),
                })
                .collect(),
            gcs: s.gcs,
            gc_threads: self.heap.config().threads,
            mode: format!("{:?}", self.heap.config().mode).to_lowercase(),
            allocated_bytes: s.bytes_allocated,
            // Concurrent pauses come before their cycle's sweep and leave heap_after at 0;
            // Stats.heap_live then holds the last cycle's figure.
            heap_live_max: s
                .pauses
                .iter()
                .map(|p| p.heap_after)
                .chain([s.heap_live])
                .max()
                .filter(|&v| v > 0)
                .map(|v| v as u64),
            heap_peak: s.heap_peak as u64,
            collection_ns: None,
            ttsp_max_ns: s.ttsp_max_ns,
            longest_wait_ns: s.longest_wait_ns(),
            gc_cpu_ns: Some(s.gc_cpu_ns()),
        }
    }
}

impl Global for GlobalRoot {
    fn get(&self) -> ObjRef {
        GlobalRoot::get(self).expect("a workload's global holds an object")
    }
}

/// A Tandem mutator and the type table.
#[derive(Debug)]
pub struct TandemMutator {
    m: tandem::Mutator,
    types: Types,
    shapes: Shapes,
}

impl Mutator for TandemMutator {
    #[inline(always)]
    fn alloc(&mut self, shape: Shape, len: usize) -> Fallible<ObjRef> {
        Ok(self.m.alloc(self.types.of(shape), len)?)
    }

    unsafe fn shape(&self, obj: ObjRef) -> Shape {
        // SAFETY: the caller passes a live object.
        let ty = unsafe { obj.type_id() };
        self.shapes[ty.0 as usize].expect("every object has a registered shape")
    }

    #[inline]
    fn push_root(&mut self, obj: Option<ObjRef>) -> Fallible<()> {
        Ok(self.m.push_root(obj)?)
    }

    #[inline]
    fn pop_root(&mut self) -> Option<ObjRef> {
        self.m
            .pop_root()
            .expect("a workload popped an empty shadow stack")
    }

    #[inline]
    fn root(&mut self, depth: usize) -> Option<ObjRef> {
        self.m
            .peek_root(depth)
            .expect("a workload peeked below its shadow stack")
    }

    #[inline]
    fn set_root(&mut self, depth: usize, obj: Option<ObjRef>) {
        assert!(
            self.m.set_root(depth, obj),
            "a workload set a root below its shadow stack"
        );
    }

    #[inline(always)]
    unsafe fn read_ref(&mut self, obj: ObjRef, off: usize) -> Option<ObjRef> {
        // SAFETY: forwarded to the caller's contract.
        unsafe { self.m.read_ref(obj, off) }
    }

    #[inline(always)]
    unsafe fn write_ref(&mut self, obj: ObjRef, off: usize, v: Option<ObjRef>) {
        // SAFETY: forwarded to the caller's contract.
        unsafe { self.m.write_ref(obj, off, v) }
    }

    #[inline]
    unsafe fn copy_refs(&mut self, dst: ObjRef, to: usize, src: ObjRef, from: usize, n: usize) {
        // Item by item through the barriered accessors (the Rust API has no bulk copy yet).
        // Forward or backward so that an overlapping copy inside one array is right.
        let one = |m: &mut tandem::Mutator, i: usize| {
            // SAFETY: the caller guarantees both ranges are reference items of live arrays.
            unsafe {
                let v = m.read_ref(src, layout::item(from + i));
                m.write_ref(dst, layout::item(to + i), v);
            }
        };
        if dst != src || to < from {
            (0..n).for_each(|i| one(&mut self.m, i));
        } else {
            (0..n).rev().for_each(|i| one(&mut self.m, i));
        }
    }

    #[inline(always)]
    fn safepoint(&mut self) {
        // A failed collector is reported by the next allocation (this poll has no result).
        let _ = self.m.safepoint();
    }

    fn blocking<R>(&mut self, f: impl FnOnce() -> R) -> R {
        self.m.native(f)
    }

    fn collect(&mut self) -> Fallible<()> {
        Ok(self.m.collect()?)
    }
}
