//! `tandem_get_pauses`: the recent pause log for C, so hosts can compute percentiles and
//! split pauses by kind as the Rust API's `Stats::pauses` allows.

use crate::error::{fail, status, Code};
use tandem_core::stats::PauseKind;
use tandem_core::GcCause;

/// One pause (`tandem_pause`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct CPause {
    /// TANDEM_PAUSE_STW, _INIT_MARK, _FINAL_MARK or _DEGENERATE.
    pub kind: u32,
    /// TANDEM_CAUSE_TRIGGER, _ALLOCATION_FAILURE or _EXPLICIT.
    pub cause: u32,
    /// Nanoseconds from tandem_init to the stop request.
    pub start_ns: u64,
    /// Stop request to resume, ns.
    pub duration_ns: u64,
    /// Stop request until every thread had stopped, ns.
    pub ttsp_ns: u64,
    /// Heap bytes in use when the cycle started.
    pub heap_before: u64,
    /// Heap bytes live after it (0 where not known: see the header).
    pub heap_after: u64,
}

pub(crate) fn kind_code(k: PauseKind) -> u32 {
    match k {
        PauseKind::StwCollection => 0,
        PauseKind::InitMark => 1,
        PauseKind::FinalMark => 2,
        PauseKind::Degenerate => 3,
    }
}

pub(crate) fn cause_code(c: GcCause) -> u32 {
    match c {
        GcCause::Trigger => 0,
        GcCause::AllocationFailure => 1,
        GcCause::Explicit => 2,
        GcCause::Young => 3,
    }
}

/// Copies the most recent pauses (at most `capacity`, oldest first) to `out` and their
/// number to `*written`.
#[no_mangle]
pub unsafe extern "C" fn tandem_get_pauses(
    out: *mut CPause,
    capacity: usize,
    written: *mut usize,
) -> i32 {
    status(|| {
        if written.is_null() || (out.is_null() && capacity > 0) {
            return fail(Code::InvalidArgument, "tandem_get_pauses: NULL output");
        }
        let pauses = crate::global::with_heap(|h| Ok(h.recent_pauses(capacity)))?;
        for (i, p) in pauses.iter().enumerate() {
            let c = CPause {
                kind: kind_code(p.kind),
                cause: cause_code(p.cause),
                start_ns: p.start_ns,
                duration_ns: p.duration_ns,
                ttsp_ns: p.ttsp_ns,
                heap_before: p.heap_before as u64,
                heap_after: p.heap_after as u64,
            };
            // SAFETY: i < pauses.len() <= capacity: inside the caller's array.
            unsafe { out.add(i).write(c) };
        }
        // SAFETY: non-null, writable by the API contract.
        unsafe { written.write(pauses.len()) };
        Ok(())
    })
}
