//! Virtual memory: one reservation made at start-up, committed and released in pieces.

use crate::error::{Error, Result};

/// The system page size we assume for commit granularity.
pub const PAGE_SIZE: usize = 4096;

/// A reserved, initially inaccessible range of address space (`PROT_NONE`, `MAP_NORESERVE`).
#[derive(Debug)]
pub struct Reservation {
    base: usize,
    size: usize,
    mapped: usize,
    mapped_len: usize,
}

impl Reservation {
    /// Reserves `size` bytes aligned to `align` (a power of two); `accessible` maps it
    /// read-write at once (still lazily backed), for side tables touched sparsely.
    pub fn new(size: usize, align: usize, accessible: bool) -> Result<Reservation> {
        debug_assert!(align.is_power_of_two() && align >= PAGE_SIZE);
        let mapped_len = size
            .checked_add(align)
            .ok_or_else(|| Error::Os(format!("cannot reserve {size} bytes: size overflows")))?;
        let prot = if accessible {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_NONE
        };
        // SAFETY: an anonymous private mapping at a kernel-chosen address aliases nothing.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mapped_len,
                prot,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(Error::Os(format!(
                "mmap of {mapped_len} bytes of address space failed: {}",
                std::io::Error::last_os_error()
            )));
        }
        let mapped = p as usize;
        let base = (mapped + align - 1) & !(align - 1);
        Ok(Reservation {
            base,
            size,
            mapped,
            mapped_len,
        })
    }

    /// First byte of the aligned range.
    pub fn base(&self) -> usize {
        self.base
    }

    /// Length of the aligned range.
    pub fn size(&self) -> usize {
        self.size
    }

    fn check(&self, addr: usize, len: usize) {
        assert!(
            addr >= self.base
                && addr + len <= self.base + self.size
                && addr.is_multiple_of(PAGE_SIZE),
            "range {addr:#x}+{len:#x} outside reservation"
        );
    }

    /// Makes `[addr, addr+len)` readable and writable; fresh pages read as zero.
    pub fn commit(&self, addr: usize, len: usize) -> Result<()> {
        self.check(addr, len);
        // SAFETY: the range lies inside our own mapping (checked above).
        let r = unsafe {
            libc::mprotect(
                addr as *mut libc::c_void,
                len,
                libc::PROT_READ | libc::PROT_WRITE,
            )
        };
        if r != 0 {
            return Err(Error::Os(format!(
                "committing {len} bytes failed: {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(())
    }

    /// Returns the pages of `[addr, addr+len)` to the OS and makes them inaccessible again.
    pub fn release(&self, addr: usize, len: usize) {
        self.check(addr, len);
        // SAFETY: the range lies inside our own mapping and holds no live object (caller's
        // contract); dropping its pages loses nothing reachable.
        unsafe {
            libc::madvise(addr as *mut libc::c_void, len, libc::MADV_DONTNEED);
            libc::mprotect(addr as *mut libc::c_void, len, libc::PROT_NONE);
        }
    }

    /// Asks the kernel to back the reservation with transparent huge pages where it can
    /// (`MADV_HUGEPAGE`; with THP off, or unsupported, it is a no-op and says so in the log).
    pub fn advise_huge_pages(&self) {
        // SAFETY: an advice on this reservation's own mapping; it changes no contents.
        let r = unsafe {
            libc::madvise(
                self.base as *mut libc::c_void,
                self.size,
                libc::MADV_HUGEPAGE,
            )
        };
        if r != 0 {
            tracing::warn!(
                "TANDEM_HUGE_PAGES: madvise(MADV_HUGEPAGE) failed: {}",
                std::io::Error::last_os_error()
            );
        }
    }

    /// Returns the pages of `[addr, addr+len)` to the OS but keeps them accessible (they read
    /// as zero afterwards). Used for side tables.
    pub fn discard(&self, addr: usize, len: usize) {
        self.check(addr, len);
        // SAFETY: inside our own mapping; callers only discard metadata of released memory.
        unsafe {
            libc::madvise(addr as *mut libc::c_void, len, libc::MADV_DONTNEED);
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        // SAFETY: we own this mapping and nothing refers into it once the heap is dropped.
        unsafe {
            libc::munmap(self.mapped as *mut libc::c_void, self.mapped_len);
        }
    }
}
