//! libgc (the Boehm collector) loaded at run time, so that `tandem-stress` builds and runs
//! where it is not installed: the comparison is optional, Tandem's side never needs it.
//!
//! [`load`] opens the library once per process with `dlopen` and resolves the functions the
//! [`boehm`](super::boehm) backend calls into a [`Libgc`] of function pointers. It tries, in
//! order: `libgc.so.1` and `libgc.so` in `TANDEM_STRESS_LIBGC_DIR` (when set), then `libgc.so.1`
//! and `libgc.so` on the dynamic linker's search path. `TANDEM_STRESS_LIBGC=off` pretends libgc is
//! absent, to exercise that path on a machine that has it.
//!
//! The calls are the ones gc.h's macros expand to for a `GC_THREADS` client: `GC_MALLOC`
//! and `GC_MALLOC_ATOMIC` are `GC_malloc` and `GC_malloc_atomic`, whose thread-local free
//! lists live inside libgc (built with thread-local allocation), so calling the exported
//! functions through pointers costs what the PLT call of a linked binary costs.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::OnceLock;

/// `struct GC_stack_base` on platforms without a separate register stack.
#[repr(C)]
pub struct GcStackBase {
    /// The stack's cold end.
    pub mem_base: *mut c_void,
}

/// `GC_on_collection_event_proc`: called with a `GC_EventType`.
pub type EventHook = Option<extern "C" fn(c_int)>;

/// What to run to get libgc (Debian and Ubuntu; `.ci/setup.sh` does it).
pub const INSTALL_HINT: &str = "install it with `apt-get install libgc-dev` (or `libgc1`), \
     or set TANDEM_STRESS_LIBGC_DIR to the folder that holds libgc.so.1";

/// libgc's functions, resolved once.
#[derive(Debug)]
pub struct Libgc {
    /// The file that was opened (as passed to `dlopen`).
    pub path: String,
    /// `GC_init`.
    pub init: unsafe extern "C" fn(),
    /// `GC_allow_register_threads`.
    pub allow_register_threads: unsafe extern "C" fn(),
    /// `GC_start_mark_threads`.
    pub start_mark_threads: unsafe extern "C" fn(),
    /// `GC_malloc` (what `GC_MALLOC` expands to).
    pub malloc: unsafe extern "C" fn(usize) -> *mut c_void,
    /// `GC_malloc_atomic` (what `GC_MALLOC_ATOMIC` expands to): memory libgc never scans.
    pub malloc_atomic: unsafe extern "C" fn(usize) -> *mut c_void,
    /// `GC_malloc_uncollectable`: scanned for roots, never collected.
    pub malloc_uncollectable: unsafe extern "C" fn(usize) -> *mut c_void,
    /// `GC_free`.
    pub free: unsafe extern "C" fn(*mut c_void),
    /// `GC_gcollect`.
    pub gcollect: unsafe extern "C" fn(),
    /// `GC_get_stack_base`.
    pub get_stack_base: unsafe extern "C" fn(*mut GcStackBase) -> c_int,
    /// `GC_register_my_thread`.
    pub register_my_thread: unsafe extern "C" fn(*const GcStackBase) -> c_int,
    /// `GC_unregister_my_thread`.
    pub unregister_my_thread: unsafe extern "C" fn() -> c_int,
    /// `GC_get_heap_size`.
    pub get_heap_size: unsafe extern "C" fn() -> usize,
    /// `GC_get_total_bytes`.
    pub get_total_bytes: unsafe extern "C" fn() -> usize,
    /// `GC_get_parallel`.
    pub get_parallel: unsafe extern "C" fn() -> c_int,
    /// `GC_set_on_collection_event`.
    pub set_on_collection_event: unsafe extern "C" fn(EventHook),
}

static LIBGC: OnceLock<Result<Libgc, String>> = OnceLock::new();

/// libgc, loaded on the first call; `Err` says why it is not available (with the install
/// hint where it is not installed).
pub fn load() -> Result<&'static Libgc, &'static str> {
    LIBGC.get_or_init(open).as_ref().map_err(String::as_str)
}

/// Checks `TANDEM_STRESS_LIBGC`: unset, empty or `on` use libgc where it is installed, `off`
/// pretends it is absent; anything else is an error that names the variable.
pub fn pretend_absent() -> Result<bool, String> {
    match std::env::var("TANDEM_STRESS_LIBGC") {
        Err(std::env::VarError::NotPresent) => Ok(false),
        Ok(v) if v.is_empty() || v == "on" => Ok(false),
        Ok(v) if v == "off" => Ok(true),
        Ok(v) => Err(format!(
            "TANDEM_STRESS_LIBGC={v:?} is not understood: `off` pretends libgc is absent, `on` (or \
             unset) uses it where it is installed"
        )),
        Err(e) => Err(format!("TANDEM_STRESS_LIBGC: {e}")),
    }
}

fn open() -> Result<Libgc, String> {
    if pretend_absent()? {
        return Err(
            "TANDEM_STRESS_LIBGC=off pretends libgc is absent (unset it to compare)".into(),
        );
    }
    let mut names = Vec::new();
    if let Some(dir) = std::env::var_os("TANDEM_STRESS_LIBGC_DIR").filter(|d| !d.is_empty()) {
        let dir = std::path::PathBuf::from(dir);
        for f in ["libgc.so.1", "libgc.so"] {
            names.push(dir.join(f).to_string_lossy().into_owned());
        }
    }
    names.extend(["libgc.so.1".to_string(), "libgc.so".to_string()]);
    open_first(names)
}

/// Opens the first of `names` that `dlopen` accepts and resolves libgc's functions in it.
fn open_first(names: Vec<String>) -> Result<Libgc, String> {
    let mut errors = Vec::new();
    for name in names {
        let Ok(c_name) = std::ffi::CString::new(name.as_str()) else {
            errors.push(format!("{name}: a NUL in the path"));
            continue;
        };
        // SAFETY: a NUL-terminated path; RTLD_LOCAL keeps libgc's symbols out of the global
        // scope, so nothing else in the process binds to them.
        let handle = unsafe { libc::dlopen(c_name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            errors.push(dl_error());
            continue;
        }
        // The handle is never closed: the pointers below live as long as the process.
        return resolve(handle, name);
    }
    Err(format!(
        "cannot load libgc ({}): {INSTALL_HINT}",
        errors.join("; ")
    ))
}

/// The message of the last failed `dl*` call.
fn dl_error() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated string valid until the next dl*
    // call on this thread (glibc keeps the error per thread); it is copied at once.
    let msg = unsafe { libc::dlerror() };
    if msg.is_null() {
        "unknown dlopen error".into()
    } else {
        // SAFETY: non-NULL from dlerror: a valid C string (see above).
        unsafe { CStr::from_ptr(msg) }
            .to_string_lossy()
            .into_owned()
    }
}

/// Looks up `name` in `handle`.
fn symbol(handle: *mut c_void, name: &CStr, path: &str) -> Result<*mut c_void, String> {
    // SAFETY: `handle` came from a successful dlopen and is never closed; `name` is a C
    // string.
    let p = unsafe { libc::dlsym(handle, name.as_ptr() as *const c_char) };
    if p.is_null() {
        Err(format!(
            "{path} lacks {} (libgc 8.0 or later is needed): {INSTALL_HINT}",
            name.to_string_lossy()
        ))
    } else {
        Ok(p)
    }
}

fn resolve(handle: *mut c_void, path: String) -> Result<Libgc, String> {
    macro_rules! func {
        ($name:literal: fn($($arg:ty),*) $(-> $ret:ty)?) => {{
            let p = symbol(handle, $name, &path)?;
            // SAFETY: `p` is libgc's exported function of that name, whose C signature
            // (gc.h, libgc 8.x) is the one written here.
            unsafe {
                std::mem::transmute::<*mut c_void, unsafe extern "C" fn($($arg),*) $(-> $ret)?>(p)
            }
        }};
    }
    Ok(Libgc {
        init: func!(c"GC_init": fn()),
        allow_register_threads: func!(c"GC_allow_register_threads": fn()),
        start_mark_threads: func!(c"GC_start_mark_threads": fn()),
        malloc: func!(c"GC_malloc": fn(usize) -> *mut c_void),
        malloc_atomic: func!(c"GC_malloc_atomic": fn(usize) -> *mut c_void),
        malloc_uncollectable: func!(c"GC_malloc_uncollectable": fn(usize) -> *mut c_void),
        free: func!(c"GC_free": fn(*mut c_void)),
        gcollect: func!(c"GC_gcollect": fn()),
        get_stack_base: func!(c"GC_get_stack_base": fn(*mut GcStackBase) -> c_int),
        register_my_thread: func!(c"GC_register_my_thread": fn(*const GcStackBase) -> c_int),
        unregister_my_thread: func!(c"GC_unregister_my_thread": fn() -> c_int),
        get_heap_size: func!(c"GC_get_heap_size": fn() -> usize),
        get_total_bytes: func!(c"GC_get_total_bytes": fn() -> usize),
        get_parallel: func!(c"GC_get_parallel": fn() -> c_int),
        set_on_collection_event: func!(c"GC_set_on_collection_event": fn(EventHook)),
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_is_reported_with_the_install_hint() {
        let e = open_first(vec!["/nonexistent/libgc.so.1".into()]).unwrap_err();
        assert!(e.contains("cannot load libgc"), "{e}");
        assert!(e.contains("/nonexistent/libgc.so.1"), "{e}");
        assert!(e.contains("apt-get install libgc-dev"), "{e}");
    }

    #[test]
    fn a_library_without_gc_functions_is_not_taken_for_libgc() {
        // libc is always loaded; it has no GC_init.
        let e = open_first(vec!["libc.so.6".into()]).unwrap_err();
        assert!(e.contains("lacks GC_init"), "{e}");
    }
}
