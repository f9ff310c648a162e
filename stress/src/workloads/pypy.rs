//! pypy-like churn: what an object-oriented interpreter's heap does. Each thread first
//! builds its share of a live set of `live_mb` MiB out of dict-like and list-like
//! containers held in a namespace array:
//! - a dict is a node (table, kind, count, mask) whose table is a reference array of hash
//!   buckets, each a chain of entries (next, key, value, hash); keys are strings (byte
//!   arrays), values boxed ints;
//! - a list is a node (items, kind, length, item kind) over a reference array that grows by
//!   doubling with an array copy, and is sliced back (another array copy) when it gets long;
//!   its items are boxed ints or 2-tuples (boxed int, string).
//!
//! Then it runs `ops` operations, each on a random container, with many small objects that
//! die at once (an argument tuple of three boxed ints per operation, a temporary key string
//! per lookup): dict lookups by an equal fresh string that replace the value box, key
//! replacement, iteration and occasional rehashing; list appends (growing or slicing by
//! array copy) and reads; and now and then a container replaced by a new one. Lookups must
//! find their key and strings must keep their contents, so lost objects fail the run.

use super::Outcome;
use crate::collector::{layout, Collector, Mutator};
use crate::failure::{Failure, Fallible};
use crate::rng::Rng;
use crate::runner::{run_threads, Run};
use std::sync::atomic::{AtomicU64, Ordering};
use tandem::ObjRef;

/// The size of a run.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Params {
    /// MiB of containers built before the churn (all threads together).
    pub live_mb: usize,
    /// Operations per thread.
    pub ops: u64,
    /// Mutator threads.
    pub threads: usize,
}

const KIND_DICT: u64 = 0xd1c7;
const KIND_LIST: u64 = 0x1157;
/// Both containers keep their kind in their first data word.
const KIND: usize = layout::node_word(1, 0);
// Dict: node(1 ref, 3 words).
const D_TABLE: usize = layout::node_ref(0);
const D_COUNT: usize = layout::node_word(1, 1);
const D_MASK: usize = layout::node_word(1, 2);
// List: node(1 ref, 3 words).
const L_ITEMS: usize = layout::node_ref(0);
const L_LEN: usize = layout::node_word(1, 1);
const L_TUPLES: usize = layout::node_word(1, 2);
// Entry: node(3 refs, 1 word).
const E_NEXT: usize = layout::node_ref(0);
const E_KEY: usize = layout::node_ref(1);
const E_VALUE: usize = layout::node_ref(2);
const E_HASH: usize = layout::node_word(3, 0);
// Boxed int: node(0 refs, 1 word).
const INT_VALUE: usize = layout::node_word(0, 0);

/// Entries of a new dict.
const DICT_ENTRIES: usize = 48;
/// Items of a new list; it is sliced back to this many when it reaches `LIST_TRIM`.
const LIST_ITEMS: usize = 192;
const LIST_TRIM: usize = 320;
/// Capacity of a new list's item array.
const LIST_CAPACITY: usize = 256;

/// One thread's state: its random choices, string serials and bytes built.
struct Churn {
    rng: Rng,
    serial: u64,
    built: u64,
}

/// Runs the workload; fails if a key is not found or a string lost its contents.
pub fn run<C: Collector>(c: &C, p: &Params) -> Fallible<Outcome> {
    let threads = p.threads.max(1);
    let live = AtomicU64::new(0);
    let containers = AtomicU64::new(0);
    run_threads(c, threads, &Run::once(), |ctx, m| {
        let index = ctx.index;
        let target = (p.live_mb as u64) << 20;
        let target = target / threads as u64;
        let mut st = Churn {
            rng: Rng::new(0x9e3 ^ ((index as u64 + 1) << 32)),
            serial: (index as u64) << 40,
            built: 0,
        };
        let capacity = (target / 4000) as usize + 16;
        let ns = m.ref_array(capacity)?;
        st.built += layout::array_size(capacity, 8) as u64;
        m.push_root(Some(ns))?;
        let mut count = 0;
        while count < capacity && st.built < target {
            let obj = if count % 2 == 0 {
                new_dict(m, &mut st)?
            } else {
                new_list(m, &mut st, count % 4 == 3)?
            };
            let ns = m.root(0).expect("the namespace is rooted");
            // SAFETY: item `count` < capacity of the live namespace array.
            unsafe { m.write_ref(ns, layout::item(count), Some(obj)) };
            count += 1;
        }
        // Relaxed: sums read after the threads are joined.
        live.fetch_add(st.built, Ordering::Relaxed);
        containers.fetch_add(count as u64, Ordering::Relaxed);
        for _ in 0..p.ops {
            op(m, &mut st, count)?;
        }
        m.pop_root();
        Ok(())
    })?;
    Ok(Outcome {
        live_set_bytes: live.into_inner(),
        checked: format!(
            "{} containers, {} operations on {threads} threads; every lookup found its key \
             and every string read was intact",
            containers.into_inner(),
            p.ops * threads as u64
        ),
        measured_from_pause: 0,
    })
}

/// One operation on a random container of the namespace at `root(0)`.
fn op<M: Mutator>(m: &mut M, st: &mut Churn, count: usize) -> Fallible<()> {
    m.safepoint();
    argument_tuple(m, st)?;
    let k = st.rng.below(count);
    if st.rng.chance(1, 2048) {
        let obj = if st.rng.chance(1, 2) {
            new_dict(m, st)?
        } else {
            let tuples = st.rng.chance(1, 2);
            new_list(m, st, tuples)?
        };
        let ns = m.root(0).expect("the namespace is rooted");
        // SAFETY: item k < count of the live namespace; `obj` is fresh.
        unsafe { m.write_ref(ns, layout::item(k), Some(obj)) };
        return Ok(());
    }
    let ns = m.root(0).expect("the namespace is rooted");
    // SAFETY: item k < count of the live namespace, filled at build time.
    let c = unsafe { m.read_ref(ns, layout::item(k)) }.expect("containers are never null");
    m.push_root(Some(c))?;
    // SAFETY: a live container's kind word.
    if unsafe { layout::word(c, KIND) } == KIND_DICT {
        match st.rng.below(8) {
            0..=4 => dict_update(m, st)?,
            5 | 6 => dict_replace_key(m, st)?,
            _ => dict_sum(m),
        }
        if st.rng.chance(1, 256) {
            dict_rehash(m)?;
        }
    } else {
        match st.rng.below(8) {
            0..=5 => {
                for _ in 0..st.rng.range(1, 4) {
                    list_append(m, st)?;
                }
            }
            _ => list_sum(m, st)?,
        }
    }
    m.pop_root();
    Ok(())
}

/// The short-lived garbage of a call: a tuple of three fresh boxed ints, read and dropped.
fn argument_tuple<M: Mutator>(m: &mut M, st: &mut Churn) -> Fallible<()> {
    for i in 0..3 {
        let b = new_int(m, st, i)?;
        m.push_root(Some(b))?;
    }
    let t = m.ref_array(3)?;
    let mut sum = 0;
    for i in (0..3).rev() {
        let b = m.pop_root();
        // SAFETY: item i of the fresh 3-tuple; `b` was rooted.
        unsafe { m.write_ref(t, layout::item(i), b) };
    }
    for i in 0..3 {
        // SAFETY: items of the live tuple hold boxed ints.
        unsafe {
            let b = m.read_ref(t, layout::item(i)).expect("filled above");
            sum += layout::word(b, INT_VALUE);
        }
    }
    if sum != 3 {
        return Err(Failure::Check(format!(
            "pypy: an argument tuple sums to {sum}, expected 3"
        )));
    }
    Ok(())
}

fn new_int<M: Mutator>(m: &mut M, st: &mut Churn, v: u64) -> Fallible<ObjRef> {
    let b = m.node(0, 1)?;
    // SAFETY: the data word of a fresh boxed int.
    unsafe { layout::set_word(b, INT_VALUE, v) };
    st.built += layout::node_size(0, 1) as u64;
    Ok(b)
}

fn str_len(serial: u64) -> usize {
    8 + (serial % 24) as usize
}

fn str_byte(serial: u64, i: usize) -> u8 {
    (serial as u8).wrapping_add(i as u8)
}

/// A string: its serial's 8 bytes, then bytes derived from the serial.
fn new_str<M: Mutator>(m: &mut M, st: &mut Churn) -> Fallible<ObjRef> {
    st.serial += 1;
    let serial = st.serial;
    let mut buf = [0u8; 32];
    let len = str_len(serial);
    buf[..8].copy_from_slice(&serial.to_le_bytes());
    for (i, b) in buf.iter_mut().enumerate().take(len).skip(8) {
        *b = str_byte(serial, i);
    }
    new_str_from(m, st, &buf[..len])
}

fn new_str_from<M: Mutator>(m: &mut M, st: &mut Churn, bytes: &[u8]) -> Fallible<ObjRef> {
    let s = m.byte_array(bytes.len())?;
    // SAFETY: the items of the fresh byte array of `bytes.len()` bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), s.field::<u8>(layout::ITEMS), bytes.len())
    };
    st.built += layout::array_size(bytes.len(), 1) as u64;
    Ok(s)
}

/// The bytes of a live string (copied out, at most 32).
fn str_bytes(s: ObjRef) -> ([u8; 32], usize) {
    let mut buf = [0u8; 32];
    // SAFETY: a live byte array; its length word and items are immutable after creation.
    let len = unsafe { layout::len(s) }.min(32);
    // SAFETY: as above: `len` bytes of items.
    unsafe { std::ptr::copy_nonoverlapping(s.field::<u8>(layout::ITEMS), buf.as_mut_ptr(), len) };
    (buf, len)
}

/// Fails unless `s` holds the contents `new_str` gave it.
fn check_str(s: ObjRef) -> Fallible<()> {
    let (buf, len) = str_bytes(s);
    let serial = u64::from_le_bytes(buf[..8].try_into().expect("8 bytes"));
    let ok = len >= 8 && len == str_len(serial) && (8..len).all(|i| buf[i] == str_byte(serial, i));
    if ok {
        Ok(())
    } else {
        Err(Failure::Check(format!(
            "pypy: string {:#x} lost its contents ({len} bytes)",
            s.addr()
        )))
    }
}

fn hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// A dict of `DICT_ENTRIES` fresh keys.
fn new_dict<M: Mutator>(m: &mut M, st: &mut Churn) -> Fallible<ObjRef> {
    let buckets = (DICT_ENTRIES * 4 / 3).next_power_of_two();
    let table = m.ref_array(buckets)?;
    m.push_root(Some(table))?;
    let d = m.node(1, 3)?;
    let table = m.pop_root();
    st.built += (layout::array_size(buckets, 8) + layout::node_size(1, 3)) as u64;
    // SAFETY: the fields of the fresh dict node.
    unsafe {
        m.write_ref(d, D_TABLE, table);
        layout::set_word(d, KIND, KIND_DICT);
        layout::set_word(d, D_COUNT, 0);
        layout::set_word(d, D_MASK, buckets as u64 - 1);
    }
    m.push_root(Some(d))?;
    for _ in 0..DICT_ENTRIES {
        dict_insert_new(m, st)?;
    }
    Ok(m.pop_root().expect("the dict is rooted"))
}

/// Inserts a fresh key with a fresh boxed int into the dict at `root(0)`.
fn dict_insert_new<M: Mutator>(m: &mut M, st: &mut Churn) -> Fallible<()> {
    let key = new_str(m, st)?;
    m.push_root(Some(key))?;
    let v = new_int(m, st, st.serial)?;
    m.push_root(Some(v))?;
    let e = m.node(3, 1)?;
    st.built += layout::node_size(3, 1) as u64;
    let v = m.pop_root();
    let key = m.pop_root().expect("the key is rooted");
    let (kb, klen) = str_bytes(key);
    let h = hash(&kb[..klen]);
    let d = m.root(0).expect("the dict is rooted");
    // SAFETY: fields of the fresh entry and of the live dict and its table (the bucket
    // index is masked to the table's size); nothing allocates in between.
    unsafe {
        m.write_ref(e, E_KEY, Some(key));
        m.write_ref(e, E_VALUE, v);
        layout::set_word(e, E_HASH, h);
        let table = m.read_ref(d, D_TABLE).expect("a dict has a table");
        let b = layout::item((h & layout::word(d, D_MASK)) as usize);
        let next = m.read_ref(table, b);
        m.write_ref(e, E_NEXT, next);
        m.write_ref(table, b, Some(e));
        layout::set_word(d, D_COUNT, layout::word(d, D_COUNT) + 1);
    }
    Ok(())
}

/// The first entry of a random non-empty bucket of the dict `d`, and the bucket's offset.
fn random_entry<M: Mutator>(m: &mut M, st: &mut Churn, d: ObjRef) -> Option<(usize, ObjRef)> {
    // SAFETY: fields of the live dict `d` and items of its table (masked index).
    unsafe {
        let table = m.read_ref(d, D_TABLE)?;
        let mask = layout::word(d, D_MASK) as usize;
        for _ in 0..16 {
            let b = layout::item(st.rng.below(mask + 1));
            if let Some(e) = m.read_ref(table, b) {
                return Some((b, e));
            }
        }
    }
    None
}

/// Looks up an existing key of the dict at `root(0)` by an equal fresh string, and
/// replaces its value with a new boxed int.
fn dict_update<M: Mutator>(m: &mut M, st: &mut Churn) -> Fallible<()> {
    let d = m.root(0).expect("the dict is rooted");
    let Some((_, e)) = random_entry(m, st, d) else {
        return Ok(());
    };
    // SAFETY: the key field of a live entry.
    let key = unsafe { m.read_ref(e, E_KEY) }.expect("entries have keys");
    check_str(key)?;
    let (buf, len) = str_bytes(key);
    let probe = new_str_from(m, st, &buf[..len])?;
    let h = hash(&str_bytes(probe).0[..len]);
    let d = m.root(0).expect("the dict is rooted");
    let found = lookup(m, d, probe, h)?;
    m.push_root(Some(found))?;
    // SAFETY: the value field of the live entry `found` holds a boxed int.
    let old = unsafe { layout::word(m.read_ref(found, E_VALUE).expect("a value"), INT_VALUE) };
    let v = new_int(m, st, old.wrapping_add(1))?;
    let found = m.pop_root().expect("the entry is rooted");
    // SAFETY: the value field of the live entry.
    unsafe { m.write_ref(found, E_VALUE, Some(v)) };
    Ok(())
}

/// The entry of `d` whose key equals the string `probe` (hash `h`); an error if none.
fn lookup<M: Mutator>(m: &mut M, d: ObjRef, probe: ObjRef, h: u64) -> Fallible<ObjRef> {
    let (want, len) = str_bytes(probe);
    // SAFETY: fields of the live dict, its table (masked index) and its entries; nothing
    // allocates during the walk.
    unsafe {
        let table = m.read_ref(d, D_TABLE).expect("a dict has a table");
        let mut e = m.read_ref(table, layout::item((h & layout::word(d, D_MASK)) as usize));
        while let Some(entry) = e {
            if layout::word(entry, E_HASH) == h {
                let key = m.read_ref(entry, E_KEY).expect("entries have keys");
                let (have, klen) = str_bytes(key);
                if klen == len && have[..len] == want[..len] {
                    return Ok(entry);
                }
            }
            e = m.read_ref(entry, E_NEXT);
        }
    }
    Err(Failure::Check(format!(
        "pypy: a dict lost a key ({len} bytes, hash {h:#x})"
    )))
}

/// Removes the first entry of a random bucket of the dict at `root(0)` and inserts a new
/// key, so the dict keeps its size.
fn dict_replace_key<M: Mutator>(m: &mut M, st: &mut Churn) -> Fallible<()> {
    let d = m.root(0).expect("the dict is rooted");
    let Some((b, e)) = random_entry(m, st, d) else {
        return Ok(());
    };
    // SAFETY: the live entry's next field, a table item, and the dict's count word.
    unsafe {
        let next = m.read_ref(e, E_NEXT);
        let table = m.read_ref(d, D_TABLE).expect("a dict has a table");
        m.write_ref(table, b, next);
        layout::set_word(d, D_COUNT, layout::word(d, D_COUNT) - 1);
    }
    dict_insert_new(m, st)
}

/// Sums the values of the dict at `root(0)` and checks its count.
fn dict_sum<M: Mutator>(m: &mut M) {
    let d = m.root(0).expect("the dict is rooted");
    let mut sum = 0u64;
    // SAFETY: fields of the live dict, its table and entries; nothing allocates.
    unsafe {
        let table = m.read_ref(d, D_TABLE).expect("a dict has a table");
        for i in 0..layout::len(table) {
            let mut e = m.read_ref(table, layout::item(i));
            while let Some(entry) = e {
                let v = m.read_ref(entry, E_VALUE).expect("a value");
                sum = sum.wrapping_add(layout::word(v, INT_VALUE));
                e = m.read_ref(entry, E_NEXT);
            }
        }
    }
    std::hint::black_box(sum);
}

/// Rehashes the dict at `root(0)` into a new table of the same size (the resize of a dict
/// that had many deletions): a new array, every entry relinked.
fn dict_rehash<M: Mutator>(m: &mut M) -> Fallible<()> {
    let d = m.root(0).expect("the dict is rooted");
    // SAFETY: the mask word of the live dict.
    let buckets = unsafe { layout::word(d, D_MASK) } as usize + 1;
    let new = m.ref_array(buckets)?;
    let d = m.root(0).expect("the dict is rooted");
    // SAFETY: fields of the live dict, its old table, the fresh table and the entries;
    // indexes are masked to the tables' equal sizes; nothing allocates.
    unsafe {
        let mask = layout::word(d, D_MASK);
        let old = m.read_ref(d, D_TABLE).expect("a dict has a table");
        for i in 0..buckets {
            let mut e = m.read_ref(old, layout::item(i));
            while let Some(entry) = e {
                e = m.read_ref(entry, E_NEXT);
                let b = layout::item((layout::word(entry, E_HASH) & mask) as usize);
                let head = m.read_ref(new, b);
                m.write_ref(entry, E_NEXT, head);
                m.write_ref(new, b, Some(entry));
            }
        }
        m.write_ref(d, D_TABLE, Some(new));
    }
    Ok(())
}

/// A list of `LIST_ITEMS` fresh items (2-tuples if `tuples`, else boxed ints).
fn new_list<M: Mutator>(m: &mut M, st: &mut Churn, tuples: bool) -> Fallible<ObjRef> {
    let items = m.ref_array(LIST_CAPACITY)?;
    m.push_root(Some(items))?;
    let l = m.node(1, 3)?;
    let items = m.pop_root();
    st.built += (layout::array_size(LIST_CAPACITY, 8) + layout::node_size(1, 3)) as u64;
    // SAFETY: the fields of the fresh list node.
    unsafe {
        m.write_ref(l, L_ITEMS, items);
        layout::set_word(l, KIND, KIND_LIST);
        layout::set_word(l, L_LEN, 0);
        layout::set_word(l, L_TUPLES, tuples as u64);
    }
    m.push_root(Some(l))?;
    for _ in 0..LIST_ITEMS {
        list_append(m, st)?;
    }
    Ok(m.pop_root().expect("the list is rooted"))
}

/// Appends a fresh item to the list at `root(0)`, growing its array by doubling (an array
/// copy) when full, and slicing it back to its last `LIST_ITEMS` items (another array
/// copy, into a new array) when it reaches `LIST_TRIM`.
fn list_append<M: Mutator>(m: &mut M, st: &mut Churn) -> Fallible<()> {
    let l = m.root(0).expect("the list is rooted");
    // SAFETY: a word of the live list.
    let tuples = unsafe { layout::word(l, L_TUPLES) } != 0;
    let item = if tuples {
        let b = new_int(m, st, st.serial)?;
        m.push_root(Some(b))?;
        let s = new_str(m, st)?;
        m.push_root(Some(s))?;
        let t = m.ref_array(2)?;
        st.built += layout::array_size(2, 8) as u64;
        let s = m.pop_root();
        let b = m.pop_root();
        // SAFETY: the two items of the fresh tuple.
        unsafe {
            m.write_ref(t, layout::item(0), b);
            m.write_ref(t, layout::item(1), s);
        }
        t
    } else {
        new_int(m, st, st.serial)?
    };
    m.push_root(Some(item))?;
    let l = m.root(1).expect("the list is rooted");
    // SAFETY: fields of the live list and its item array.
    let (mut items, len) = unsafe {
        let items = m.read_ref(l, L_ITEMS).expect("a list has items");
        (items, layout::word(l, L_LEN) as usize)
    };
    // SAFETY: the item array's length word.
    if len == unsafe { layout::len(items) } {
        let grown = m.ref_array(2 * len)?;
        let l = m.root(1).expect("the list is rooted");
        // SAFETY: the list's live item array holds `len` items; the fresh one 2 * len.
        unsafe {
            items = m.read_ref(l, L_ITEMS).expect("a list has items");
            m.copy_refs(grown, 0, items, 0, len);
            m.write_ref(l, L_ITEMS, Some(grown));
        }
        items = grown;
    }
    let item = m.pop_root();
    let l = m.root(0).expect("the list is rooted");
    // SAFETY: item `len` < the array's length; the list's length word.
    unsafe {
        m.write_ref(items, layout::item(len), item);
        layout::set_word(l, L_LEN, len as u64 + 1);
    }
    if len + 1 >= LIST_TRIM {
        let sliced = m.ref_array(LIST_CAPACITY)?;
        let l = m.root(0).expect("the list is rooted");
        // SAFETY: the live item array holds len + 1 items, of which the last LIST_ITEMS
        // are copied into the fresh array of LIST_CAPACITY >= LIST_ITEMS items.
        unsafe {
            let items = m.read_ref(l, L_ITEMS).expect("a list has items");
            m.copy_refs(sliced, 0, items, len + 1 - LIST_ITEMS, LIST_ITEMS);
            m.write_ref(l, L_ITEMS, Some(sliced));
            layout::set_word(l, L_LEN, LIST_ITEMS as u64);
        }
    }
    Ok(())
}

/// Reads 16 consecutive items of the list at `root(0)`, checking tuples' strings.
fn list_sum<M: Mutator>(m: &mut M, st: &mut Churn) -> Fallible<()> {
    let l = m.root(0).expect("the list is rooted");
    let mut sum = 0u64;
    // SAFETY: fields of the live list and items below its length; nothing allocates.
    unsafe {
        let items = m.read_ref(l, L_ITEMS).expect("a list has items");
        let len = layout::word(l, L_LEN) as usize;
        let tuples = layout::word(l, L_TUPLES) != 0;
        let start = st.rng.below(len.max(1));
        for i in start..len.min(start + 16) {
            let it = m
                .read_ref(items, layout::item(i))
                .expect("list items are set");
            let b = if tuples {
                check_str(m.read_ref(it, layout::item(1)).expect("a tuple's string"))?;
                m.read_ref(it, layout::item(0)).expect("a tuple's int")
            } else {
                it
            };
            sum = sum.wrapping_add(layout::word(b, INT_VALUE));
        }
    }
    std::hint::black_box(sum);
    Ok(())
}
