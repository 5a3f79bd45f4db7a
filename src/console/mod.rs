//! Console / TTY handoff: ptys, termios, AF_UNIX sockets and fd passing.
//!
//! This is the safe Rust API behind crun's `terminal.c` and the socket helpers of `utils.c`; the
//! C ABI (`libcrun_new_terminal`, `libcrun_send_console_socket`, ...) lives in
//! `crate::ffi::console` and only converts arguments.  See `docs/console.md`.
//!
//! * [`pty`]: [`new_terminal`] (hardened against CVE-2025-52565) and [`set_stdio`].
//! * [`termios`]: [`set_raw`] / [`SavedTermios`] and [`terminal_setup_size`].
//! * [`socket`]: listening and client sockets (paths longer than `sun_path` go through
//!   `/proc/self/fd`), socket pairs, and sending / receiving one fd with strict checks.
//! * [`handoff`]: the `--console-socket` protocol: one `sendmsg` carrying the 1-byte payload
//!   `" "` and exactly one `SCM_RIGHTS` fd, the pty master.
//!
//! Every fd created here is close-on-exec; every syscall that can return `EINTR` is retried.

pub mod handoff;
pub mod pty;
pub mod socket;
pub mod termios;

pub use handoff::{receive_console_from_listener, send_console_to_socket_path};
pub use pty::{
    new_terminal, new_terminal_at, new_terminal_pair, new_terminal_pair_at, set_stdio, set_stdio_fd,
};
pub use socket::{
    create_socket_pair, open_unix_domain_client_socket, open_unix_domain_socket, receive_fd,
    receive_fd_from_socket, send_fd_to_socket,
};
pub use termios::{set_raw, terminal_setup_size, SavedTermios};

use std::os::fd::RawFd;

use crate::error::{Error, Result};

/// Run a libc call that returns `-1` + errno on failure, retrying on `EINTR`.
pub(crate) fn retry<T, F>(mut f: F) -> std::result::Result<T, i32>
where
    T: Copy + PartialOrd + Default,
    F: FnMut() -> T,
{
    loop {
        let r = f();
        if r < T::default() {
            let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            if errno == libc::EINTR {
                continue;
            }
            return Err(errno);
        }
        return Ok(r);
    }
}

/// Fail with `EBADF` naming `what` unless `fd` is an open file descriptor.
pub(crate) fn check_fd(fd: RawFd, what: &str) -> Result<()> {
    if fd < 0 {
        return Err(Error::new(
            libc::EBADF,
            format!("invalid {what}: file descriptor {fd}"),
        ));
    }
    // SAFETY: F_GETFD only queries the descriptor table; it has no effect on `fd`.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(Error::last_os_error(format!(
            "invalid {what}: file descriptor {fd} is not open"
        )));
    }
    Ok(())
}
