//! The C ABI.  This layer only converts pointers, catches panics and maps [`Error`]s to
//! `struct libcrun_error_s`; the logic lives in the safe modules.
//!
//! Every exported function goes through [`guard`] (or [`guard_ptr`]), so a panic never unwinds
//! into C and a NULL pointer becomes an EINVAL error that names the argument.

#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_int, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::{Error, Result};

pub mod console;
pub mod container;
pub mod error;
pub mod handler;
pub mod status;
pub mod types;

/// crun's error struct: a positive errno (or 0) and a `malloc`'d message.
#[repr(C)]
pub struct libcrun_error_s {
    pub status: c_int,
    pub msg: *mut c_char,
}

/// Every fallible libcrun call takes a `libcrun_error_t *err`.
pub type libcrun_error_t = *mut libcrun_error_s;

/// Store `e` into `*err` (when `err` is not NULL) as a malloc'd struct and message, and return
/// `-status - 1`.  Like crun, a previous `*err` is not freed: callers release first.
pub(crate) fn set_error(err: *mut libcrun_error_t, e: &Error) -> c_int {
    if !err.is_null() {
        let msg = crate::log::to_cstring(e.message());
        // SAFETY: malloc/strdup return fresh allocations or NULL (checked); err is non-NULL and
        // points to caller-owned storage for one pointer.
        unsafe {
            let s = libc::malloc(std::mem::size_of::<libcrun_error_s>()) as *mut libcrun_error_s;
            let m = libc::strdup(msg.as_ptr());
            if s.is_null() || m.is_null() {
                out_of_memory();
            }
            (*s).status = e.errno();
            (*s).msg = m;
            *err = s;
        }
    }
    e.return_code()
}

/// crun prints this and exits when malloc fails; so do we.
pub(crate) fn out_of_memory() -> ! {
    let m = b"out of memory\n";
    // SAFETY: writing a static buffer to fd 2, then exiting without running Rust destructors.
    unsafe {
        libc::write(2, m.as_ptr().cast(), m.len());
        libc::_exit(1)
    }
}

fn panic_error(func: &str) -> Error {
    Error::new(
        libc::EFAULT,
        format!("internal error: {func} panicked (this is a bug in crun-rs)"),
    )
}

/// Run `f`, converting `Err` and panics into `*err` and a negative return.
pub(crate) fn guard<F>(func: &str, err: *mut libcrun_error_t, f: F) -> c_int
where
    F: FnOnce() -> Result<c_int>,
{
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => set_error(err, &e),
        Err(_) => set_error(err, &panic_error(func)),
    }
}

/// Like [`guard`] for calls that return a pointer (NULL on failure).
#[allow(dead_code)]
pub(crate) fn guard_ptr<T, F>(func: &str, err: *mut libcrun_error_t, f: F) -> *mut T
where
    F: FnOnce() -> Result<*mut T>,
{
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            set_error(err, &e);
            std::ptr::null_mut()
        }
        Err(_) => {
            set_error(err, &panic_error(func));
            std::ptr::null_mut()
        }
    }
}

/// Run `f` for a call that has no error out-parameter; panics are swallowed into `default`.
pub(crate) fn guard_void<T, F: FnOnce() -> T>(default: T, f: F) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(default)
}

/// The error for a NULL argument.
pub(crate) fn null_arg(name: &str) -> Error {
    Error::new(libc::EINVAL, format!("invalid argument: `{name}` is NULL"))
}

/// Borrow a C string argument; NULL is EINVAL naming the argument, invalid UTF-8 is EINVAL.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string valid for `'a`.
pub(crate) unsafe fn arg_str<'a>(p: *const c_char, name: &str) -> Result<&'a str> {
    if p.is_null() {
        return Err(null_arg(name));
    }
    CStr::from_ptr(p).to_str().map_err(|_| {
        Error::new(
            libc::EINVAL,
            format!("invalid argument: `{name}` is not valid UTF-8"),
        )
    })
}

/// Like [`arg_str`], but NULL is `None`.
///
/// # Safety
/// As [`arg_str`].
pub(crate) unsafe fn opt_str<'a>(p: *const c_char, name: &str) -> Result<Option<&'a str>> {
    if p.is_null() {
        Ok(None)
    } else {
        arg_str(p, name).map(Some)
    }
}

/// A `malloc`'d copy of `s`, for strings handed to C callers who `free()` them.
pub(crate) fn malloc_str(s: &str) -> *mut c_char {
    let c = crate::log::to_cstring(s);
    // SAFETY: strdup copies a valid NUL-terminated string.
    let p = unsafe { libc::strdup(c.as_ptr()) };
    if p.is_null() {
        out_of_memory();
    }
    p
}
