//! The workloads' object layouts, their constructors and the checksum check that both the
//! verify hook (after every GC) and the workloads (on every object they read) run.
//!
//! ```text
//! node:  header | id | checksum | payload | ref 0 .. ref n-1
//!        0        8    16         24        32
//! array: header | length | id | checksum | items ...
//!        0        8        16   24         32
//! ```
//! A node's checksum covers its id and payload; a byte or word array's covers its id, length
//! and every item; a reference array's covers its id and length (items are references).

use crate::checksum::Checksum;
use crate::failure::Failure;
use crate::rng::Rng;
use tandem::{Heap, Mutator, ObjRef, TypeId, TypeInfo};

/// Offset of an object's id.
pub const NODE_ID: usize = 8;
/// Offset of a node's checksum.
pub const NODE_CHECKSUM: usize = 16;
/// Offset of a node's payload word.
pub const NODE_PAYLOAD: usize = 24;
/// Offset of a node's first reference field.
pub const NODE_REFS: usize = 32;
/// Reference fields of a tree node (left, right).
pub const TREE_REFS: usize = 2;
/// Reference fields of a graph node.
pub const GRAPH_REFS: usize = 4;

/// Offset of an array's length.
pub const ARRAY_LENGTH: usize = 8;
/// Offset of an array's id.
pub const ARRAY_ID: usize = 16;
/// Offset of an array's checksum.
pub const ARRAY_CHECKSUM: usize = 24;
/// Offset of an array's first item.
pub const ARRAY_ITEMS: usize = 32;

/// Offset of reference field `k` of a node.
#[inline]
pub const fn node_ref(k: usize) -> usize {
    NODE_REFS + 8 * k
}

/// Offset of item `i` of a word or reference array.
#[inline]
pub const fn array_slot(i: usize) -> usize {
    ARRAY_ITEMS + 8 * i
}

/// The registered type ids of every layout above.
#[derive(Debug, Clone, Copy)]
pub struct Types {
    /// A node with [`TREE_REFS`] references (binary-trees).
    pub tree_node: TypeId,
    /// A node with [`GRAPH_REFS`] references (graph).
    pub graph_node: TypeId,
    /// An array of bytes.
    pub bytes: TypeId,
    /// An array of non-reference words.
    pub words: TypeId,
    /// An array of references.
    pub refs: TypeId,
}

impl Types {
    /// Registers every layout with `heap`.
    pub fn register(heap: &Heap) -> tandem::Result<Types> {
        let node = |refs: usize| TypeInfo {
            fixed_size: NODE_REFS + 8 * refs,
            ref_offsets: (0..refs).map(node_ref).collect(),
            ..Default::default()
        };
        let array = |item_size: usize, item_refs: Vec<usize>| TypeInfo {
            fixed_size: ARRAY_ITEMS,
            item_size,
            length_offset: ARRAY_LENGTH,
            item_ref_offsets: item_refs,
            ..Default::default()
        };
        Ok(Types {
            tree_node: heap.register_type(node(TREE_REFS))?,
            graph_node: heap.register_type(node(GRAPH_REFS))?,
            bytes: heap.register_type(array(1, vec![]))?,
            words: heap.register_type(array(8, vec![]))?,
            refs: heap.register_type(array(8, vec![0]))?,
        })
    }
}

/// Hands out object ids unique across threads: the owner in the top bits, a count below.
#[derive(Debug)]
pub struct IdSource(u64);

impl IdSource {
    /// Ids for owner `owner` (a thread index plus one; 0 for set-up on the main thread).
    pub fn new(owner: u64) -> IdSource {
        IdSource(owner << 40)
    }

    /// The next id.
    #[inline]
    pub fn next_id(&mut self) -> u64 {
        self.0 += 1;
        self.0
    }
}

/// Allocates a node of type `ty` with all references null and a valid checksum.
pub fn new_node(m: &mut Mutator, ty: TypeId, id: u64, payload: u64) -> tandem::Result<ObjRef> {
    let obj = m.alloc(ty, 0)?;
    // SAFETY: a fresh node of a node type: the words at 8, 16 and 24 lie inside it, and no
    // other thread can see it yet.
    unsafe {
        obj.field::<u64>(NODE_ID).write(id);
        obj.field::<u64>(NODE_PAYLOAD).write(payload);
        obj.field::<u64>(NODE_CHECKSUM)
            .write(Checksum::new(id).word(payload).value());
    }
    Ok(obj)
}

/// Allocates a byte array of `len` pseudo-random bytes (seeded by its id), checksummed.
pub fn new_bytes(m: &mut Mutator, types: &Types, id: u64, len: usize) -> tandem::Result<ObjRef> {
    let obj = m.alloc(types.bytes, len)?;
    // SAFETY: a fresh byte array of `len` items; nobody else can see it.
    let items = unsafe { std::slice::from_raw_parts_mut(obj.field::<u8>(ARRAY_ITEMS), len) };
    let mut rng = Rng::new(id);
    for chunk in items.chunks_mut(8) {
        chunk.copy_from_slice(&rng.next_u64().to_le_bytes()[..chunk.len()]);
    }
    let sum = Checksum::new(id).word(len as u64).bytes(items).value();
    // SAFETY: as above; id and checksum lie in the fixed part.
    unsafe { write_array_sum(obj, id, sum) };
    Ok(obj)
}

/// Allocates a word array of `len` pseudo-random words (seeded by its id), checksummed.
pub fn new_words(m: &mut Mutator, types: &Types, id: u64, len: usize) -> tandem::Result<ObjRef> {
    let obj = m.alloc(types.words, len)?;
    // SAFETY: a fresh word array of `len` 8-aligned items; nobody else can see it.
    let items = unsafe { std::slice::from_raw_parts_mut(obj.field::<u64>(ARRAY_ITEMS), len) };
    let mut rng = Rng::new(id);
    let mut sum = Checksum::new(id).word(len as u64);
    for w in items.iter_mut() {
        *w = rng.next_u64();
        sum = sum.word(*w);
    }
    // SAFETY: as above.
    unsafe { write_array_sum(obj, id, sum.value()) };
    Ok(obj)
}

/// Allocates a reference array of `len` null slots, checksummed.
pub fn new_refs(m: &mut Mutator, types: &Types, id: u64, len: usize) -> tandem::Result<ObjRef> {
    let obj = m.alloc(types.refs, len)?;
    let sum = Checksum::new(id).word(len as u64).value();
    // SAFETY: a fresh array; nobody else can see it.
    unsafe { write_array_sum(obj, id, sum) };
    Ok(obj)
}

/// # Safety
/// `obj` is a fresh array that only this thread can see.
unsafe fn write_array_sum(obj: ObjRef, id: u64, sum: u64) {
    // SAFETY: caller's contract; both words lie in the fixed part.
    unsafe {
        obj.field::<u64>(ARRAY_ID).write(id);
        obj.field::<u64>(ARRAY_CHECKSUM).write(sum);
    }
}

/// The id of `obj` (any layout here).
///
/// # Safety
/// `obj` must be a live object of one of `types`.
pub unsafe fn id_of(types: &Types, obj: ObjRef) -> u64 {
    // SAFETY: caller's contract; both layouts hold the id at a fixed offset.
    unsafe {
        if is_node(types, obj.type_id()) {
            obj.field::<u64>(NODE_ID).read()
        } else {
            obj.field::<u64>(ARRAY_ID).read()
        }
    }
}

/// The payload of a node.
///
/// # Safety
/// `obj` must be a live node.
pub unsafe fn payload_of(obj: ObjRef) -> u64 {
    // SAFETY: caller's contract.
    unsafe { obj.field::<u64>(NODE_PAYLOAD).read() }
}

fn is_node(types: &Types, ty: TypeId) -> bool {
    ty == types.tree_node || ty == types.graph_node
}

/// Recomputes the checksum of `obj`; the error names the object's id and both values.
///
/// # Safety
/// `obj` must point at a live object whose non-reference fields nobody writes meanwhile
/// (reference fields are not read).
pub unsafe fn check(types: &Types, obj: ObjRef) -> Result<(), String> {
    // SAFETY: caller's contract: a live object, whose header holds its type.
    let ty = unsafe { obj.type_id() };
    // SAFETY: each branch reads only words inside the layout its type id names; the
    // lengths are the ones the allocator wrote.
    let (id, stored, expected) = unsafe {
        if is_node(types, ty) {
            let id = obj.field::<u64>(NODE_ID).read();
            let payload = obj.field::<u64>(NODE_PAYLOAD).read();
            let stored = obj.field::<u64>(NODE_CHECKSUM).read();
            (id, stored, Checksum::new(id).word(payload).value())
        } else if ty == types.bytes || ty == types.words || ty == types.refs {
            let id = obj.field::<u64>(ARRAY_ID).read();
            let stored = obj.field::<u64>(ARRAY_CHECKSUM).read();
            let len = obj.field::<usize>(ARRAY_LENGTH).read();
            let sum = Checksum::new(id).word(len as u64);
            let sum = if ty == types.bytes {
                sum.bytes(std::slice::from_raw_parts(
                    obj.field::<u8>(ARRAY_ITEMS),
                    len,
                ))
            } else if ty == types.words {
                std::slice::from_raw_parts(obj.field::<u64>(ARRAY_ITEMS), len)
                    .iter()
                    .fold(sum, |s, &w| s.word(w))
            } else {
                sum
            };
            (id, stored, sum.value())
        } else {
            return Err(format!(
                "object {:#x} has type id {}, which no workload allocates",
                obj.addr(),
                ty.0
            ));
        }
    };
    if stored == expected {
        Ok(())
    } else {
        Err(format!(
            "object id {id:#x} at {:#x}: checksum expected {expected:#x}, found {stored:#x}",
            obj.addr()
        ))
    }
}

/// Checks `obj` as a workload read, naming `what` the workload was doing on failure.
///
/// # Safety
/// As for [`check`].
pub unsafe fn check_read(types: &Types, obj: ObjRef, what: &str) -> Result<(), Failure> {
    // SAFETY: forwarded.
    unsafe { check(types, obj) }.map_err(|e| Failure::Check(format!("{what}: {e}")))
}

/// Installs [`check`] as the heap's verify hook (run after every GC under `TANDEM_VERIFY=1`).
pub fn install_verify_hook(heap: &Heap, types: Types) {
    heap.set_verify_hook(Some(Box::new(move |obj| {
        // SAFETY: the collector calls the hook on reachable objects with the world stopped,
        // so the object is live and no mutator writes it meanwhile.
        unsafe { check(&types, obj) }
    })));
}
