//! Type registration and the layout table the inline allocation fast path reads.

use crate::error::{fail, Code, FfiResult};
use std::ffi::c_char;
use std::sync::atomic::{AtomicU32, Ordering};
use tandem_core::object::types::MAX_TYPES;
use tandem_core::{TraceFn, TypeInfo};

/// One entry of `tandem_type_layouts` (C: `tandem_type_layout`); all zero for ids that are
/// not registered, which sends the fast path to the slow path and its error.
#[repr(C)]
pub struct TypeLayout {
    /// Bytes of the fixed part.
    pub fixed_size: AtomicU32,
    /// Bytes per item (0: fixed-size type).
    pub item_size: AtomicU32,
    /// Offset of the length field.
    pub length_offset: AtomicU32,
    /// The type's flags.
    pub flags: AtomicU32,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: TypeLayout = TypeLayout {
    fixed_size: AtomicU32::new(0),
    item_size: AtomicU32::new(0),
    length_offset: AtomicU32::new(0),
    flags: AtomicU32::new(0),
};

/// The layout of every registered type, indexed by type id, for `tandem_alloc`.
#[no_mangle]
pub static tandem_type_layouts: [TypeLayout; MAX_TYPES] = [EMPTY; MAX_TYPES];

/// Clears the table (at init).
pub fn reset_layouts() {
    for l in tandem_type_layouts.iter() {
        l.fixed_size.store(0, Ordering::Relaxed);
        l.item_size.store(0, Ordering::Relaxed);
        l.length_offset.store(0, Ordering::Relaxed);
        l.flags.store(0, Ordering::Relaxed);
    }
}

/// Publishes the layout of type `id`. A type with a destructor keeps a zero fixed size
/// here, so the inline allocator sends its objects to the slow path, which registers them;
/// so does every type when `all_out_of_line` (verify mode: a destructor's inline allocation
/// then reaches the slow path, which reports it).
pub fn publish_layout(id: u32, info: &TypeInfo, all_out_of_line: bool) {
    let l = &tandem_type_layouts[id as usize];
    l.item_size.store(info.item_size as u32, Ordering::Relaxed);
    l.length_offset
        .store(info.length_offset as u32, Ordering::Relaxed);
    l.flags.store(info.flags, Ordering::Relaxed);
    // Release: a thread that sees a non-zero fixed size sees the rest of the entry.
    let fixed = if info.destructor.is_some() || all_out_of_line {
        0
    } else {
        info.fixed_size as u32
    };
    l.fixed_size.store(fixed, Ordering::Release);
}

/// The C type description (`tandem_type_info`).
#[repr(C)]
pub struct CTypeInfo {
    /// sizeof(tandem_type_info), for ABI evolution.
    pub size: u32,
    /// VM flags.
    pub flags: u32,
    /// Bytes of the fixed part, header included.
    pub fixed_size: usize,
    /// Bytes per item (0: fixed-size).
    pub item_size: usize,
    /// Offset of the length field.
    pub length_offset: usize,
    /// Reference offsets in the fixed part.
    pub ref_offsets: *const usize,
    /// How many.
    pub n_ref_offsets: usize,
    /// Reference offsets in each item.
    pub item_ref_offsets: *const usize,
    /// How many.
    pub n_item_ref_offsets: usize,
    /// Optional tracer.
    pub trace: Option<TraceFn>,
    /// Optional name, for diagnostics.
    pub name: *const c_char,
    /// Optional destructor (absent from the first layout).
    pub destructor: Option<tandem_core::DestructorFn>,
}

/// The first layout's size of `tandem_type_info` (before `destructor`).
pub const TYPE_INFO_V1_SIZE: usize = std::mem::offset_of!(CTypeInfo, destructor);
/// The size of `tandem_type_info` now.
pub const TYPE_INFO_SIZE: usize = std::mem::size_of::<CTypeInfo>();

fn offsets(p: *const usize, n: usize, what: &str) -> FfiResult<Vec<usize>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if p.is_null() || n > 1 << 20 {
        return fail(
            Code::InvalidArgument,
            format!("{what}: NULL array or absurd count {n}"),
        );
    }
    // SAFETY: the caller passes `n` readable offsets (checked non-null above).
    Ok(unsafe { std::slice::from_raw_parts(p, n) }.to_vec())
}

/// Converts a C description.
///
/// # Safety
/// `info` must be NULL or point to a readable `tandem_type_info` whose arrays are valid.
pub unsafe fn convert(info: *const CTypeInfo) -> FfiResult<TypeInfo> {
    if info.is_null() {
        return fail(Code::InvalidArgument, "the type info is NULL");
    }
    // SAFETY: non-null; the caller promises a readable struct. Read the size field first.
    let size = unsafe { (*info).size } as usize;
    if size != TYPE_INFO_SIZE && size != TYPE_INFO_V1_SIZE {
        return fail(
            Code::InvalidArgument,
            format!(
                "tandem_type_info.size is {size}, expected {TYPE_INFO_SIZE}: set it to \
                 sizeof(tandem_type_info) from the same tandem.h"
            ),
        );
    }
    // The fields below up to `name` are in the first layout, which the caller's struct
    // holds (its size says so); each is read through the raw pointer, with no reference to
    // the whole struct.
    // SAFETY: as just said.
    let (fixed_size, item_size, length_offset, flags, trace) = unsafe {
        (
            (*info).fixed_size,
            (*info).item_size,
            (*info).length_offset,
            (*info).flags,
            (*info).trace,
        )
    };
    // SAFETY: as above.
    let (refs, n_refs, item_refs, n_item_refs) = unsafe {
        (
            (*info).ref_offsets,
            (*info).n_ref_offsets,
            (*info).item_ref_offsets,
            (*info).n_item_ref_offsets,
        )
    };
    let destructor = if size == TYPE_INFO_SIZE {
        // SAFETY: the whole struct is readable (its size matches ours).
        unsafe { (*info).destructor }
    } else {
        None
    };
    Ok(TypeInfo {
        fixed_size,
        item_size,
        length_offset,
        ref_offsets: offsets(refs, n_refs, "ref_offsets")?,
        item_ref_offsets: offsets(item_refs, n_item_refs, "item_ref_offsets")?,
        flags,
        trace,
        destructor,
    })
}
