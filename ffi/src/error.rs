//! Error codes, the thread-local last-error text, and the guard every entry point runs in.

use std::cell::Cell;
use std::ffi::{c_char, CString};
use tandem_core::Error;

/// Result codes of the C ABI (`tandem_result` in tandem.h).
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Success.
    Ok = 0,
    /// A NULL or malformed argument.
    InvalidArgument = 1,
    /// Called before `tandem_init` or after `tandem_shutdown`.
    NotInitialized = 2,
    /// `tandem_init` called twice.
    AlreadyInitialized = 3,
    /// A bad option or environment variable.
    Config = 4,
    /// A malformed type description or a full type table.
    BadType = 5,
    /// A type id that was never registered.
    UnknownType = 6,
    /// A size that overflows or cannot fit the heap.
    SizeOverflow = 7,
    /// No memory left after a full GC.
    OutOfMemory = 8,
    /// NULL, foreign or detached mutator.
    BadMutator = 9,
    /// A mutator used from a thread other than its own.
    WrongThread = 10,
    /// Shadow-stack overflow or underflow.
    ShadowStack = 11,
    /// Unknown or duplicate root slot.
    Root = 12,
    /// Operation not allowed in the current state.
    State = 13,
    /// The operating system refused memory or a thread.
    Os = 14,
    /// An internal error (a caught panic); the runtime may be unusable.
    Internal = 15,
}

impl From<&Error> for Code {
    fn from(e: &Error) -> Code {
        match e {
            Error::Config(_) => Code::Config,
            Error::InvalidArgument(_) => Code::InvalidArgument,
            Error::BadType(_) => Code::BadType,
            Error::UnknownType(_) => Code::UnknownType,
            Error::SizeOverflow(_) => Code::SizeOverflow,
            Error::OutOfMemory(_) => Code::OutOfMemory,
            Error::ShadowStack(_) => Code::ShadowStack,
            Error::Root(_) => Code::Root,
            Error::Shutdown => Code::NotInitialized,
            Error::Os(_) => Code::Os,
            Error::State(_) => Code::State,
            Error::Internal(_) => Code::Internal,
        }
    }
}

/// An error as the C ABI reports it: a code and a message.
#[derive(Debug)]
pub struct FfiError(pub Code, pub String);

impl From<Error> for FfiError {
    fn from(e: Error) -> FfiError {
        FfiError(Code::from(&e), e.to_string())
    }
}

/// Result of an entry point's body.
pub type FfiResult<T> = Result<T, FfiError>;

/// Shorthand for an error result.
pub fn fail<T>(code: Code, msg: impl Into<String>) -> FfiResult<T> {
    Err(FfiError(code, msg.into()))
}

thread_local! {
    /// This thread's last error code. No destructor, like `LAST_TEXT` (see `thread`).
    static LAST_CODE: Cell<Code> = const { Cell::new(Code::Ok) };
    /// This thread's last error text: a `CString` owned here, null when none; freed at the
    /// next error or at thread exit ([`forget_thread`]).
    static LAST_TEXT: Cell<*mut CString> = const { Cell::new(std::ptr::null_mut()) };
}

/// Records `e` as this thread's last error.
pub fn set_last_error(e: &FfiError) {
    let text = format!("tandem: {}", e.1).replace('\0', " ");
    LAST_CODE.set(e.0);
    if !replace_text(Box::into_raw(Box::new(
        CString::new(text).unwrap_or_default(),
    ))) {
        crate::thread::watch();
    }
}

/// Frees this thread's error text (its thread-exit step).
pub(crate) fn forget_thread() {
    replace_text(std::ptr::null_mut());
}

/// Puts `text` (null or a leaked `Box`) in `LAST_TEXT` and frees the text it held; whether
/// there was one.
fn replace_text(text: *mut CString) -> bool {
    let old = LAST_TEXT.replace(text);
    if old.is_null() {
        return false;
    }
    // SAFETY: a `Box` this thread made and no longer lends (an earlier error's text, valid
    // only until the next error).
    drop(unsafe { Box::from_raw(old) });
    true
}

/// This thread's last error code (`Code::Ok` when none).
pub fn last_error_code() -> Code {
    LAST_CODE.get()
}

/// This thread's last error text, owned (empty when none).
pub fn last_error_text() -> String {
    let t = LAST_TEXT.get();
    // SAFETY: null, or the live text this thread owns.
    unsafe { t.as_ref() }.map_or_else(String::new, |t| t.to_string_lossy().into_owned())
}

/// This thread's last error text (empty when none); valid until the thread's next error.
pub fn last_error_ptr() -> *const c_char {
    let t = LAST_TEXT.get();
    // SAFETY: as in `last_error_text`.
    unsafe { t.as_ref() }.map_or(c"".as_ptr(), |t| t.as_ptr())
}

/// Runs an entry point's body: records errors, turns panics into `Code::Internal`, never
/// lets an unwind cross the ABI, and keeps the thread from being cancelled inside (see
/// `thread`).
pub fn guard<T>(on_error: T, body: impl FnOnce() -> FfiResult<T>) -> (T, Code) {
    // A destructor may call nothing (see `callback`; the other callbacks inside the
    // collector's work are refused only calls that wait, by those calls).
    let body = || {
        tandem_core::callback::check_any("Tandem")?;
        body()
    };
    let caught = crate::thread::without_cancellation(|| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(body))
    });
    match caught {
        Ok(Ok(v)) => (v, Code::Ok),
        Ok(Err(e)) => {
            set_last_error(&e);
            (on_error, e.0)
        }
        Err(p) => {
            let msg = tandem_core::fault::panic_message(&*p);
            let e = FfiError(
                Code::Internal,
                format!("internal error (caught panic): {msg}"),
            );
            set_last_error(&e);
            (on_error, Code::Internal)
        }
    }
}

/// Runs a body that returns only a status code.
pub fn status(body: impl FnOnce() -> FfiResult<()>) -> i32 {
    guard((), body).1 as i32
}
