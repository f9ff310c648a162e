//! `tandem_options`: how C sets every option of the `options!` table at init, reads back the
//! effective values, and gets `TANDEM_LOG` output without a Rust subscriber of its own.

use crate::error::{fail, status, Code, FfiResult};
use parking_lot::Mutex;
use std::ffi::{c_char, CStr, CString};
use tandem_core::config::Mode;
use tandem_core::{ByteSize, Config};

/// Options for `tandem_init` (`tandem_options`); zero fields mean "default".
#[repr(C)]
pub struct CTandemOptions {
    /// sizeof(tandem_options); the first version's size (up to `mode`) is accepted too.
    pub size: u32,
    /// GC worker threads.
    pub threads: u32,
    /// Minimum heap bytes.
    pub heap_min: u64,
    /// Maximum heap bytes.
    pub heap_max: u64,
    /// Non-zero: verify the heap around every GC.
    pub verify: u32,
    /// Non-zero: pin GC workers to cores.
    pub affinity: u32,
    /// Shadow-stack slots per mutator.
    pub shadow_stack_slots: u64,
    /// "stw" or "concurrent" (NULL: default).
    pub mode: *const c_char,
    /// Workers that mark concurrently (0: default).
    pub conc_threads: u32,
    /// Zero.
    pub reserved: u32,
    /// "auto", a percentage such as "70%", or a size such as "256M" (NULL: default).
    pub gc_trigger: *const c_char,
    /// A `tracing` filter such as "info" (NULL: none).
    pub log: *const c_char,
    /// How long free memory stays committed before it goes back to the OS, e.g. "5s",
    /// "250ms", "0" (NULL: default).
    pub uncommit_delay: *const c_char,
    /// Heap growth factor over live bytes, e.g. "2" or "1.5" (NULL: default).
    pub gc_growth: *const c_char,
}

/// Size of the first `tandem_options` (through `mode`), still accepted.
const V1_SIZE: usize = std::mem::offset_of!(CTandemOptions, conc_threads);

/// The options' size if `size` is one this library knows.
fn checked_size(size: u32, what: &str) -> FfiResult<usize> {
    let size = size as usize;
    if size == V1_SIZE || size == std::mem::size_of::<CTandemOptions>() {
        return Ok(size);
    }
    fail(
        Code::InvalidArgument,
        format!(
            "{what}: tandem_options.size is {size}, expected {}: set it to \
             sizeof(tandem_options)",
            std::mem::size_of::<CTandemOptions>()
        ),
    )
}

/// The configuration `opts` asks for (NULL: defaults); the environment is applied later.
///
/// # Safety
/// `opts` is NULL or points to a readable `tandem_options` of the size it declares.
pub unsafe fn config_from(opts: *const CTandemOptions) -> FfiResult<Config> {
    let mut c = Config::default();
    if opts.is_null() {
        return Ok(c);
    }
    // SAFETY: non-null; the caller passes a readable tandem_options of at least V1 size
    // (checked before any later field is read).
    let size = checked_size(unsafe { (*opts).size }, "tandem_init")?;
    // SAFETY: as above; fields past `size` are not read (see `extended`).
    let o = unsafe { &*opts };
    let extended = size > V1_SIZE;
    if o.threads != 0 {
        c.threads = o.threads as usize;
    }
    if o.heap_min != 0 {
        c.heap_min = ByteSize(o.heap_min as usize);
    }
    if o.heap_max != 0 {
        c.heap_max = ByteSize(o.heap_max as usize);
    }
    c.verify = o.verify != 0;
    c.affinity = o.affinity != 0;
    if o.shadow_stack_slots != 0 {
        c.shadow_stack_slots = o.shadow_stack_slots as usize;
    }
    if extended && o.conc_threads != 0 {
        c.conc_threads = o.conc_threads as usize;
    }
    if extended && o.reserved != 0 {
        return fail(
            Code::InvalidArgument,
            format!("tandem_options.reserved is {}: it must be zero", o.reserved),
        );
    }
    // String options go through the environment's parser, so they accept the same forms
    // and fail with the same messages.
    let mut strings: Vec<(&str, String)> = Vec::new();
    // Fields past the first version's size are read only when the caller's struct has them.
    let ext = |p: *const c_char| if extended { p } else { std::ptr::null() };
    let fields = [
        ("TANDEM_MODE", o.mode),
        ("TANDEM_GC_TRIGGER", ext(o.gc_trigger)),
        ("TANDEM_LOG", ext(o.log)),
        ("TANDEM_UNCOMMIT_DELAY", ext(o.uncommit_delay)),
        ("TANDEM_GC_GROWTH", ext(o.gc_growth)),
    ];
    for (var, p) in fields {
        if !p.is_null() {
            // SAFETY: a NUL-terminated string by the API contract.
            let v = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
            strings.push((var, v));
        }
    }
    let lookup = |v: &str| {
        strings
            .iter()
            .find(|(k, _)| *k == v)
            .map(|(_, s)| s.clone())
    };
    Ok(c.apply_env_with(lookup)?)
}

/// Installs a stderr subscriber for `filter` (the effective `TANDEM_LOG`) unless empty or
/// the process already has one: C hosts get GC logs without Rust code of their own. A
/// filter that does not parse fails `tandem_init`. Write errors (a closed stderr) are
/// dropped, never raised on a GC thread.
pub fn install_log_subscriber(filter: &str) -> FfiResult<()> {
    if filter.is_empty() {
        return Ok(());
    }
    let parsed = match tracing_subscriber::EnvFilter::try_new(filter) {
        Ok(f) => f,
        Err(e) => {
            return fail(
                Code::Config,
                format!(
                    "TANDEM_LOG={filter:?} is not valid: expected a tracing filter such as \
                     `info` or `tandem::collector=debug` ({e})"
                ),
            )
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(parsed)
        .with_ansi(false)
        .with_writer(|| LossyStderr)
        .try_init();
    Ok(())
}

/// Standard error that reports every write as done.
struct LossyStderr;

impl std::io::Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// `d` as `TANDEM_UNCOMMIT_DELAY` accepts it: `0`, whole seconds, or milliseconds.
fn format_duration(d: std::time::Duration) -> String {
    match d.as_millis() {
        0 => "0".into(),
        ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms => format!("{ms}ms"),
    }
}

/// The effective options of the running heap, with the strings `tandem_get_options`
/// hands out (valid until the next `tandem_init`).
struct Effective {
    config: Config,
    gc_trigger: CString,
    log: CString,
    uncommit_delay: CString,
    gc_growth: CString,
}

static EFFECTIVE: Mutex<Option<Effective>> = Mutex::new(None);

/// Records the options the heap runs with, environment applied.
pub fn remember_effective(config: &Config) {
    let trigger = config.gc_trigger.to_string();
    *EFFECTIVE.lock() = Some(Effective {
        config: config.clone(),
        gc_trigger: CString::new(trigger).unwrap_or_default(),
        log: CString::new(config.log.clone()).unwrap_or_default(),
        uncommit_delay: CString::new(format_duration(config.uncommit_delay)).unwrap_or_default(),
        gc_growth: CString::new(config.gc_growth.0.to_string()).unwrap_or_default(),
    });
}

/// Fills `*out` (whose `size` the caller set) with the options the runtime runs with, after
/// defaults and the environment: threads, the concurrent workers actually used, heap
/// bounds, mode, trigger, log filter.
#[no_mangle]
pub unsafe extern "C" fn tandem_get_options(out: *mut CTandemOptions) -> i32 {
    status(|| {
        if out.is_null() {
            return fail(Code::InvalidArgument, "tandem_get_options: NULL output");
        }
        // SAFETY: non-null; the caller passes a writable tandem_options whose size it set.
        let size = checked_size(unsafe { (*out).size }, "tandem_get_options")?;
        crate::global::with_heap(|_| Ok(()))?;
        let g = EFFECTIVE.lock();
        let Some(e) = g.as_ref() else {
            return fail(
                Code::NotInitialized,
                "tandem_get_options: call tandem_init first",
            );
        };
        let c = &e.config;
        let mode: &'static CStr = match c.mode {
            Mode::Stw => c"stw",
            Mode::Concurrent => c"concurrent",
        };
        // SAFETY: writable for `size` bytes (checked above); the extended fields only when
        // the caller's struct has them.
        unsafe {
            let o = &mut *out;
            o.threads = c.threads as u32;
            o.heap_min = c.heap_min.0 as u64;
            o.heap_max = c.heap_max.0 as u64;
            o.verify = c.verify as u32;
            o.affinity = c.affinity as u32;
            o.shadow_stack_slots = c.shadow_stack_slots as u64;
            o.mode = mode.as_ptr();
            if size > V1_SIZE {
                o.conc_threads = c.concurrent_workers() as u32;
                o.reserved = 0;
                o.gc_trigger = e.gc_trigger.as_ptr();
                o.log = e.log.as_ptr();
                o.uncommit_delay = e.uncommit_delay.as_ptr();
                o.gc_growth = e.gc_growth.as_ptr();
            }
        }
        Ok(())
    })
}
