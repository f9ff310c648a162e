//! The Tandem backend: the Rust API, one registered type per node shape and array kind.

use super::api::{
    self, BResult, Collector, GcStats, Global, Mutator, Pause, MAX_NODE_REFS, MAX_NODE_WORDS,
};
use crate::global_root::GlobalRoot;
use tandem::{Config, Heap, ObjRef, TypeId, TypeInfo};

/// Type ids of every shape the workloads allocate.
#[derive(Debug, Clone, Copy)]
struct Types {
    nodes: [[TypeId; MAX_NODE_WORDS + 1]; MAX_NODE_REFS + 1],
    refs: TypeId,
    words: TypeId,
    bytes: TypeId,
}

/// A Tandem heap configured from the defaults and the `TANDEM_*` environment.
#[derive(Debug)]
pub struct TandemCollector {
    heap: Heap,
    types: Types,
}

impl TandemCollector {
    /// Creates the heap (the environment overrides `config`) and registers the types.
    pub fn new(config: Config) -> BResult<TandemCollector> {
        let heap = Heap::new(config).map_err(|e| e.to_string())?;
        let reg = |info: TypeInfo| heap.register_type(info).map_err(|e| e.to_string());
        let mut nodes = [[TypeId(0); MAX_NODE_WORDS + 1]; MAX_NODE_REFS + 1];
        for (refs, row) in nodes.iter_mut().enumerate() {
            for (words, ty) in row.iter_mut().enumerate() {
                *ty = reg(TypeInfo {
                    fixed_size: api::node_size(refs, words),
                    ref_offsets: (0..refs).map(api::node_ref).collect(),
                    ..Default::default()
                })?;
            }
        }
        let array = |item_size: usize, item_refs: Vec<usize>| TypeInfo {
            fixed_size: api::ITEMS,
            item_size,
            length_offset: api::LEN,
            item_ref_offsets: item_refs,
            ..Default::default()
        };
        let types = Types {
            nodes,
            refs: reg(array(8, vec![0]))?,
            words: reg(array(8, vec![]))?,
            bytes: reg(array(1, vec![]))?,
        };
        Ok(TandemCollector { heap, types })
    }
}

impl Collector for TandemCollector {
    type Mutator = TandemMutator;
    type Global = GlobalRoot;

    fn attach(&self) -> BResult<TandemMutator> {
        Ok(TandemMutator {
            m: self.heap.attach().map_err(|e| e.to_string())?,
            types: self.types,
        })
    }

    fn global(&self, obj: ObjRef) -> BResult<GlobalRoot> {
        GlobalRoot::new(&self.heap, obj).map_err(|e| e.to_string())
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
        }
    }
}

impl Global for GlobalRoot {
    fn get(&self) -> ObjRef {
        GlobalRoot::get(self).expect("a benchmark global holds an object")
    }
}

/// A Tandem mutator and the type table.
#[derive(Debug)]
pub struct TandemMutator {
    m: tandem::Mutator,
    types: Types,
}

fn err(e: tandem::Error) -> String {
    e.to_string()
}

impl Mutator for TandemMutator {
    #[inline]
    fn node(&mut self, refs: usize, words: usize) -> BResult<ObjRef> {
        self.m.alloc(self.types.nodes[refs][words], 0).map_err(err)
    }

    #[inline]
    fn ref_array(&mut self, len: usize) -> BResult<ObjRef> {
        self.m.alloc(self.types.refs, len).map_err(err)
    }

    #[inline]
    fn word_array(&mut self, len: usize) -> BResult<ObjRef> {
        self.m.alloc(self.types.words, len).map_err(err)
    }

    #[inline]
    fn byte_array(&mut self, len: usize) -> BResult<ObjRef> {
        self.m.alloc(self.types.bytes, len).map_err(err)
    }

    #[inline]
    fn push_root(&mut self, obj: Option<ObjRef>) -> BResult<()> {
        self.m.push_root(obj).map_err(err)
    }

    #[inline]
    fn pop_root(&mut self) -> Option<ObjRef> {
        self.m
            .pop_root()
            .expect("a benchmark popped an empty shadow stack")
    }

    #[inline]
    fn root(&mut self, depth: usize) -> Option<ObjRef> {
        self.m
            .peek_root(depth)
            .expect("a benchmark peeked below its shadow stack")
    }

    #[inline]
    fn set_root(&mut self, depth: usize, obj: Option<ObjRef>) {
        assert!(
            self.m.set_root(depth, obj),
            "a benchmark set a root below its shadow stack"
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
                let v = m.read_ref(src, api::item(from + i));
                m.write_ref(dst, api::item(to + i), v);
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

    fn collect(&mut self) -> BResult<()> {
        self.m.collect().map_err(err)
    }
}
