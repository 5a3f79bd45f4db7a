//! Console / TTY C API: crun's `terminal.h` functions and the socket helpers of `utils.h`, plus
//! the two `--console-socket` protocol calls.  Logic lives in [`crate::console`]; this layer
//! converts pointers and maps errors (`-errno - 1`, positive `status` in `*err`).
//!
//! Every fd returned is owned by the caller and is close-on-exec.  See `docs/console.md`.

use std::ffi::{c_char, c_int, c_ushort, c_void};
use std::os::fd::IntoRawFd;

use super::{arg_str, guard, guard_void, libcrun_error_t, malloc_str, null_arg};
use crate::console::{self, SavedTermios};
use crate::error::Error;

/// Create a pty pair from `/dev/ptmx` and return the master fd (`O_RDWR|O_NOCTTY|O_CLOEXEC`,
/// unlocked).  `*pty_path` receives the slave's path (e.g. `/dev/pts/3`), malloc'd: `free()` it.
/// The ptmx and the slave are verified to be of the same devpts instance (CVE-2025-52565).
///
/// # Safety
/// `pty_path` is NULL or valid for writing one pointer; `err` as for every libcrun call.
#[no_mangle]
pub unsafe extern "C" fn libcrun_new_terminal(
    pty_path: *mut *mut c_char,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_new_terminal", err, || {
        if pty_path.is_null() {
            return Err(null_arg("pty_path"));
        }
        let (master, path) = console::new_terminal()?;
        *pty_path = malloc_str(&path);
        Ok(master.into_raw_fd())
    })
}

/// Open the pty slave `pty_path` and make it the caller's stdin, stdout, stderr and controlling
/// terminal (`dup3` onto 0, 1, 2; `ioctl(0, TIOCSCTTY)`).  Call it in a session leader
/// (after `setsid()`).  Returns 0.
///
/// # Safety
/// `pty_path` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn libcrun_set_stdio(
    pty_path: *const c_char,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_set_stdio", err, || {
        console::set_stdio(arg_str(pty_path, "pty_path")?)?;
        Ok(0)
    })
}

/// Put the terminal `fd` in raw mode (crun's `libcrun_set_raw`).  When `saved` is not NULL,
/// `*saved` receives the previous settings (malloc'd): pass it to `libcrun_restore_terminal`
/// (restore and free) or `libcrun_free_terminal_status` / `free()` (free only).  Returns 0.
///
/// # Safety
/// `saved` is NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn libcrun_set_raw(
    fd: c_int,
    saved: *mut *mut c_void,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_set_raw", err, || {
        let s = console::set_raw(fd)?;
        if saved.is_null() {
            s.disarm();
        } else {
            // malloc'd (not Box'd) so a caller that plain free()s it, as crun's callers of a
            // malloc'd status may, does no harm.  SavedTermios owns no heap memory.
            let p = libc::malloc(std::mem::size_of::<SavedTermios>()).cast::<SavedTermios>();
            if p.is_null() {
                super::out_of_memory();
            }
            p.write(s);
            *saved = p.cast();
        }
        Ok(0)
    })
}

/// Restore the settings saved by `libcrun_set_raw` on their terminal and free them.
/// NULL is ignored.
///
/// # Safety
/// `saved` is NULL or a pointer from `libcrun_set_raw` not yet restored or freed.
#[no_mangle]
pub unsafe extern "C" fn libcrun_restore_terminal(saved: *mut c_void) {
    guard_void((), || {
        if !saved.is_null() {
            let s = saved.cast::<SavedTermios>().read();
            libc::free(saved);
            let _ = s.restore();
        }
    })
}

/// Free the settings saved by `libcrun_set_raw` without restoring them.  NULL is ignored.
///
/// # Safety
/// As `libcrun_restore_terminal`.
#[no_mangle]
pub unsafe extern "C" fn libcrun_free_terminal_status(saved: *mut c_void) {
    guard_void((), || {
        if !saved.is_null() {
            let s = saved.cast::<SavedTermios>().read();
            libc::free(saved);
            s.disarm();
        }
    })
}

/// Set the window size of the terminal `fd` to `rows` x `cols`.  If either is 0, the caller's
/// stdin window size is copied instead; if stdin is not a terminal nothing is done.  Returns 0.
///
/// # Safety
/// `err` as for every libcrun call.
#[no_mangle]
pub unsafe extern "C" fn libcrun_terminal_setup_size(
    fd: c_int,
    rows: c_ushort,
    cols: c_ushort,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_terminal_setup_size", err, || {
        console::terminal_setup_size(fd, rows, cols)?;
        Ok(0)
    })
}

/// Create an AF_UNIX socket bound to `path` (`SOCK_DGRAM` if `dgram`, else `SOCK_STREAM`,
/// listening) and return it.  Paths longer than `sun_path` are bound via `/proc/self/fd`.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn libcrun_open_unix_domain_socket(
    path: *const c_char,
    dgram: c_int,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_open_unix_domain_socket", err, || {
        let p = arg_str(path, "path")?;
        Ok(console::open_unix_domain_socket(p, dgram != 0)?.into_raw_fd())
    })
}

/// Create an AF_UNIX socket connected to `path` and return it.  Paths longer than `sun_path`
/// are opened `O_PATH` and connected via `/proc/self/fd/N`.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn libcrun_open_unix_domain_client_socket(
    path: *const c_char,
    dgram: c_int,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_open_unix_domain_client_socket", err, || {
        let p = arg_str(path, "path")?;
        Ok(console::open_unix_domain_client_socket(p, dgram != 0)?.into_raw_fd())
    })
}

/// `socketpair(AF_UNIX, SOCK_SEQPACKET|SOCK_CLOEXEC)` into `pair[0]`, `pair[1]`.  Returns 0.
///
/// # Safety
/// `pair` is NULL or valid for writing two ints.
#[no_mangle]
pub unsafe extern "C" fn libcrun_create_socket_pair(
    pair: *mut c_int,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_create_socket_pair", err, || {
        if pair.is_null() {
            return Err(null_arg("pair"));
        }
        let (a, b) = console::create_socket_pair()?;
        *pair = a.into_raw_fd();
        *pair.add(1) = b.into_raw_fd();
        Ok(0)
    })
}

/// Send `fd` over the connected socket `sock`: one `sendmsg` with the payload `" "` and one
/// `SCM_RIGHTS` fd.  Returns 0.
///
/// # Safety
/// `err` as for every libcrun call.
#[no_mangle]
pub unsafe extern "C" fn libcrun_send_fd_to_socket(
    sock: c_int,
    fd: c_int,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_send_fd_to_socket", err, || {
        console::send_fd_to_socket(sock, fd, b"")?;
        Ok(0)
    })
}

/// Like `libcrun_send_fd_to_socket` with `len` bytes of `payload` as the data (`len` 0 sends
/// `" "`: a message without data would lose the fd).  Returns 0.
///
/// # Safety
/// `payload` is NULL or valid for reading `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn libcrun_send_fd_to_socket_with_payload(
    sock: c_int,
    fd: c_int,
    payload: *const c_char,
    len: usize,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_send_fd_to_socket_with_payload", err, || {
        let data: &[u8] = if len == 0 {
            b""
        } else if payload.is_null() {
            return Err(null_arg("payload"));
        } else {
            std::slice::from_raw_parts(payload.cast(), len)
        };
        console::send_fd_to_socket(sock, fd, data)?;
        Ok(0)
    })
}

/// Receive one fd from `sock` and return it (close-on-exec).  The message must carry at least
/// one data byte and exactly one `SCM_RIGHTS` fd; anything else is an error and every fd that
/// arrived is closed.
///
/// # Safety
/// `err` as for every libcrun call.
#[no_mangle]
pub unsafe extern "C" fn libcrun_receive_fd_from_socket(
    sock: c_int,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_receive_fd_from_socket", err, || {
        Ok(console::receive_fd_from_socket(sock, None)?.into_raw_fd())
    })
}

/// Like `libcrun_receive_fd_from_socket`, storing up to `len` data bytes in `buf`
/// (`buf` NULL and `len` 0: a 1-byte internal buffer, as `libcrun_receive_fd_from_socket`).
///
/// # Safety
/// `buf` is NULL or valid for writing `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn libcrun_receive_fd_from_socket_with_payload(
    sock: c_int,
    buf: *mut c_char,
    len: usize,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_receive_fd_from_socket_with_payload", err, || {
        let payload = match (buf.is_null(), len) {
            (true, 0) => None,
            (true, _) => return Err(null_arg("buf")),
            (false, 0) => {
                return Err(Error::new(
                    libc::EINVAL,
                    "invalid argument: the payload buffer `buf` has length 0",
                ))
            }
            (false, n) => Some(std::slice::from_raw_parts_mut(buf.cast::<u8>(), n)),
        };
        Ok(console::receive_fd_from_socket(sock, payload)?.into_raw_fd())
    })
}

/// The `--console-socket` sender: connect to `console_socket`, send `master_fd` with the 1-byte
/// payload `" "`, close the connection.  `master_fd` is checked first, so the socket is never
/// connected without an fd to send.  Returns 0.
///
/// # Safety
/// `console_socket` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn libcrun_send_console_socket(
    console_socket: *const c_char,
    master_fd: c_int,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_send_console_socket", err, || {
        let p = arg_str(console_socket, "console_socket")?;
        console::send_console_to_socket_path(p, master_fd)?;
        Ok(0)
    })
}

/// The `--console-socket` receiver: accept one connection on the listening socket `listen_fd`
/// and return the fd it carries (the pty master).  `timeout_ms` bounds the whole wait
/// (negative: forever); a timeout fails with `ETIMEDOUT`.
///
/// # Safety
/// `err` as for every libcrun call.
#[no_mangle]
pub unsafe extern "C" fn libcrun_receive_console_fd(
    listen_fd: c_int,
    timeout_ms: c_int,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_receive_console_fd", err, || {
        Ok(console::receive_console_from_listener(listen_fd, timeout_ms)?.into_raw_fd())
    })
}
