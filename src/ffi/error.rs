//! Error and logging API (`error.h` in crun).  The printf-style entry points
//! (`libcrun_make_error`, `libcrun_error_wrap`, `libcrun_error`, `libcrun_warning`,
//! `libcrun_debug`, `libcrun_fail_with_error`) are defined in `src/shim/shim.c`, which formats
//! the message and calls the `crun_rs_*` bridges below.  The bridges are not exported from
//! `libcrun.so` (see `libcrun.lds`).

use std::ffi::{c_char, c_int, c_void, CStr};

use super::{arg_str, guard, guard_void, libcrun_error_s, libcrun_error_t, opt_str};
use crate::error::{normalize_errno, Error};
use crate::log;

/// `LIBCRUN_VERBOSITY_ERROR`: only errors are printed.
pub const LIBCRUN_VERBOSITY_ERROR: c_int = 0;
/// `LIBCRUN_VERBOSITY_WARNING`: errors and warnings.
pub const LIBCRUN_VERBOSITY_WARNING: c_int = 1;
/// `LIBCRUN_VERBOSITY_DEBUG`: everything.
pub const LIBCRUN_VERBOSITY_DEBUG: c_int = 2;

/// crun's output handler type: `(errno, msg, verbosity, arg)`.
pub type crun_output_handler = Option<
    unsafe extern "C" fn(errno_: c_int, msg: *const c_char, verbosity: c_int, arg: *mut c_void),
>;

/// Bridge for `libcrun_make_error`: takes ownership of `msg` (malloc'd by `vasprintf` in the
/// shim; NULL when the format was NULL).
///
/// # Safety
/// `err` is NULL or valid for writing one pointer; `msg` is NULL or malloc'd and NUL-terminated.
/// cbindgen:ignore
#[no_mangle]
pub unsafe extern "C" fn crun_rs_make_error(
    err: *mut libcrun_error_t,
    status: c_int,
    msg: *mut c_char,
) -> c_int {
    if msg.is_null() {
        return super::set_error(
            err,
            &Error::new(
                libc::EINVAL,
                "libcrun_make_error: the format string is NULL",
            ),
        );
    }
    let status = normalize_errno(status);
    if err.is_null() {
        libc::free(msg.cast());
    } else {
        let s = libc::malloc(std::mem::size_of::<libcrun_error_s>()) as *mut libcrun_error_s;
        if s.is_null() {
            super::out_of_memory();
        }
        (*s).status = status;
        (*s).msg = msg;
        *err = s;
    }
    -status - 1
}

/// Bridge for `libcrun_error_wrap`: prefixes `*err`'s message with `prefix` (malloc'd by the
/// shim, freed here).  Returns `-status - 1`, or 0 when there is no error to wrap (as crun).
///
/// # Safety
/// `err` is NULL or points to a `libcrun_error_t`; `prefix` is NULL or malloc'd.
/// cbindgen:ignore
#[no_mangle]
pub unsafe extern "C" fn crun_rs_error_wrap(
    err: *mut libcrun_error_t,
    prefix: *mut c_char,
) -> c_int {
    guard_void(0, || {
        let ret = if err.is_null() || (*err).is_null() {
            0
        } else {
            let e = &mut **err;
            if !prefix.is_null() {
                let old = if e.msg.is_null() {
                    String::new()
                } else {
                    CStr::from_ptr(e.msg).to_string_lossy().into_owned()
                };
                let p = CStr::from_ptr(prefix).to_string_lossy();
                let new = super::malloc_str(&format!("{p}: {old}"));
                libc::free(e.msg.cast());
                e.msg = new;
            }
            -normalize_errno(e.status) - 1
        };
        libc::free(prefix.cast());
        ret
    })
}

/// Bridge for `libcrun_error`, `libcrun_warning` and `libcrun_debug`.
///
/// # Safety
/// `msg` is NULL or NUL-terminated.
/// cbindgen:ignore
#[no_mangle]
pub unsafe extern "C" fn crun_rs_log(errno_: c_int, verbosity: c_int, msg: *const c_char) {
    guard_void((), || {
        let m = if msg.is_null() {
            "(null)".into()
        } else {
            CStr::from_ptr(msg).to_string_lossy()
        };
        log::write_log(errno_, verbosity, &m);
    })
}

/// Bridge for `libcrun_fail_with_error`: logs at ERROR and exits with status 1.
///
/// # Safety
/// As [`crun_rs_log`].
/// cbindgen:ignore
#[no_mangle]
pub unsafe extern "C" fn crun_rs_fail(errno_: c_int, msg: *const c_char) -> ! {
    crun_rs_log(errno_, log::VERBOSITY_ERROR, msg);
    libc::exit(libc::EXIT_FAILURE)
}

/// Free `*err` and its message and set `*err` to NULL.  NULL-safe; returns 0.
///
/// # Safety
/// `err` is NULL or points to NULL or to an error made by this library.
#[no_mangle]
pub unsafe extern "C" fn libcrun_error_release(err: *mut libcrun_error_t) -> c_int {
    if err.is_null() || (*err).is_null() {
        return 0;
    }
    libc::free((**err).msg.cast());
    libc::free((*err).cast());
    *err = std::ptr::null_mut();
    0
}

/// The positive errno stored in `*err`, or 0 when there is none.
///
/// # Safety
/// `err` is NULL or points to NULL or to a valid error.
#[no_mangle]
pub unsafe extern "C" fn libcrun_error_get_errno(err: *mut libcrun_error_t) -> c_int {
    if err.is_null() || (*err).is_null() {
        return 0;
    }
    normalize_errno((**err).status)
}

extern "C" {
    static mut stderr: *mut libc::FILE;
}

/// Print `msg: strerror(status)` (or `msg` when status is 0) and a newline to `out` (stderr when
/// NULL), then release the error.  Note the double pointer, as in crun.
///
/// # Safety
/// `out` is NULL or an open `FILE *`; `err` is NULL or points to a `libcrun_error_t *`.
#[no_mangle]
pub unsafe extern "C" fn libcrun_error_write_warning_and_release(
    out: *mut libc::FILE,
    err: *mut *mut libcrun_error_t,
) {
    if err.is_null() || (*err).is_null() || (**err).is_null() {
        return;
    }
    guard_void((), || {
        let e = &**(*err);
        let msg = if e.msg.is_null() {
            String::new()
        } else {
            CStr::from_ptr(e.msg).to_string_lossy().into_owned()
        };
        let line = Error::new(e.status, msg).to_string() + "\n";
        let out = if out.is_null() { stderr } else { out };
        libc::fwrite(line.as_ptr().cast(), 1, line.len(), out);
        libc::fflush(out);
    });
    libcrun_error_release(*err);
}

/// Set the verbosity (`LIBCRUN_VERBOSITY_*`).
#[no_mangle]
pub extern "C" fn libcrun_set_verbosity(verbosity: c_int) {
    log::set_verbosity(verbosity)
}

/// The current verbosity.
#[no_mangle]
pub extern "C" fn libcrun_get_verbosity() -> c_int {
    log::verbosity()
}

/// Select `"text"` or `"json"` log output.  Anything else fails with status 0.
///
/// # Safety
/// `format` is NULL or NUL-terminated; `err` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn libcrun_set_log_format(
    format: *const c_char,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_set_log_format", err, || {
        let f = arg_str(format, "format")?;
        log::set_format(log::parse_format(f)?);
        Ok(0)
    })
}

/// Open the log target `log` (NULL = stderr, `PATH`, `file:PATH`, `syslog:[ID]`), make it the
/// current output handler, and return it through `output_handler` / `output_handler_arg`
/// (either may be NULL).  `id` names the syslog identity when `syslog:` has none.
///
/// # Safety
/// Pointers are NULL or valid; strings are NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn libcrun_init_logging(
    output_handler: *mut crun_output_handler,
    output_handler_arg: *mut *mut c_void,
    id: *const c_char,
    log: *const c_char,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_init_logging", err, || {
        let id = opt_str(id, "id")?;
        let log = opt_str(log, "log")?;
        let (h, arg) = log::init_logging(id, log)?;
        if !output_handler.is_null() {
            *output_handler = Some(h);
        }
        if !output_handler_arg.is_null() {
            *output_handler_arg = arg;
        }
        Ok(0)
    })
}

/// Make `handler(arg)` the process-wide output handler (crun's internal
/// `crun_set_output_handler`, exported here so C callers can capture messages).  NULL restores
/// the stderr handler.
#[no_mangle]
pub extern "C" fn libcrun_set_output_handler(handler: crun_output_handler, arg: *mut c_void) {
    log::set_output_handler(handler, arg)
}
