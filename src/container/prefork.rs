//! `LIBCRUN_RUN_OPTIONS_PREFORK`: run the container from a forked, detached process and hand
//! the result back through a pipe, as crun does.  The caller is then never the parent of the
//! container (no SIGCHLD, no reaping, no signal mask games in a multithreaded program).
//!
//! The calling process forks; the child calls `setsid` and forks again (the intermediate exits
//! at once, so the caller reaps it right away); the grandchild runs the container, in the
//! foreground when the context says so, and writes `{i32 status, i32 errno, i32 pid, message}`
//! to the pipe in one `write` (at most 511 message bytes, below `PIPE_BUF`).  The caller reads
//! it: status >= 0 is the result, a negative one the error `{errno, message}`.  A caller that is
//! a child subreaper (a foreground run makes it one) inherits the grandchild: it reaps it by
//! the pid it was sent.

use std::os::fd::{AsRawFd, RawFd};

use super::config::Container;
use super::{Runtime, RuntimeContext};
use crate::error::{Context, Error, Result};

/// The longest message sent back (crun: 511 bytes).
const MAX_MSG: usize = 511;

/// Encode a result for the pipe, with the sender's pid.
fn encode(r: &Result<i32>, pid: i32) -> Vec<u8> {
    let (status, errno, msg) = match r {
        Ok(code) => (*code, 0, ""),
        Err(e) => (-1, e.errno(), e.message()),
    };
    let mut end = msg.len().min(MAX_MSG);
    while !msg.is_char_boundary(end) {
        end -= 1;
    }
    let mut buf = Vec::with_capacity(8 + end);
    buf.extend_from_slice(&status.to_ne_bytes());
    buf.extend_from_slice(&errno.to_ne_bytes());
    buf.extend_from_slice(&pid.to_ne_bytes());
    buf.extend_from_slice(&msg.as_bytes()[..end]);
    buf
}

/// Decode what the pipe carried: the result and the sender's pid.  An empty or short read
/// means the child died first.
fn decode(buf: &[u8]) -> (Result<i32>, i32) {
    if buf.len() < 12 {
        let e = Error::new(
            libc::EPIPE,
            "the forked runtime exited without reporting a result",
        );
        return (Err(e), 0);
    }
    let int = |i: usize| i32::from_ne_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
    let (status, errno, pid) = (int(0), int(4), int(8));
    if status >= 0 {
        return (Ok(status), pid);
    }
    let msg = String::from_utf8_lossy(&buf[12..]).into_owned();
    (Err(Error::new(errno, msg)), pid)
}

/// Read the one message the grandchild writes (a single `write` below `PIPE_BUF`).  Not to
/// EOF: a created container's init still holds the write end until it execs.
fn read_message(fd: RawFd) -> Vec<u8> {
    let mut buf = [0u8; 1024];
    loop {
        // SAFETY: buf is a valid mutable buffer.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        if n <= 0 {
            return Vec::new();
        }
        return buf[..n as usize].to_vec();
    }
}

/// `Runtime::run` from a forked, detached process (see the module documentation).
pub fn run(
    ctx: &RuntimeContext,
    c: &Container,
    keep: bool,
    manager: Option<&crate::handlers::HandlerManager>,
) -> Result<i32> {
    forked("run the container", || {
        Runtime::run_with_handlers(ctx, c, keep, manager)
    })
}

/// `Runtime::create` from a forked, detached process (`LIBCRUN_CREATE_OPTIONS_PREFORK`): the
/// container's init is never the caller's child.
pub fn create(
    ctx: &RuntimeContext,
    c: &Container,
    manager: Option<&crate::handlers::HandlerManager>,
) -> Result<i32> {
    forked("create the container", || {
        Runtime::create_with_handlers(ctx, c, manager).map(|_| 0)
    })
}

/// Run `f` in a forked, detached grandchild and return its result (see the module
/// documentation); `what` names the operation in internal errors.
fn forked(what: &str, f: impl FnOnce() -> Result<i32>) -> Result<i32> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe")?;
    // SAFETY: fork; the child only runs the runtime and leaves with _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Error::last_os_error("fork"));
    }
    if pid == 0 {
        drop(r);
        // SAFETY: setsid/fork/_exit in the single-threaded child.
        unsafe {
            libc::setsid();
            match libc::fork() {
                0 => {}
                n if n > 0 => libc::_exit(0),
                _ => {
                    let e = Error::last_os_error("fork");
                    crate::sys::write_all(w.as_raw_fd(), &encode(&Err(e), libc::getpid()));
                    libc::_exit(1);
                }
            }
        }
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
            Err(Error::new(
                libc::EIO,
                format!("{what}: internal error (panic)"),
            ))
        });
        // SAFETY: getpid cannot fail.
        crate::sys::write_all(w.as_raw_fd(), &encode(&res, unsafe { libc::getpid() }));
        // SAFETY: leave without running the caller's atexit handlers or destructors.
        unsafe { libc::_exit(if res.is_ok() { 0 } else { 1 }) }
    }
    drop(w);
    let mut st = 0;
    // SAFETY: reap the intermediate child, which exits at once.
    while unsafe { libc::waitpid(pid, &mut st, 0) } < 0 {
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break;
        }
    }
    let (res, sender) = decode(&read_message(r.as_raw_fd()));
    let res = res.map_err(|e| {
        if e.errno() == libc::EPIPE && sender == 0 {
            Error::new(libc::EPIPE, format!("{what}: {}", e.message()))
        } else {
            e
        }
    });
    if sender > 0 && sender != pid {
        // Reparented to us when we are a subreaper: reap it (it exits right after writing).
        // Otherwise it is not our child and waitpid fails at once with ECHILD.
        // SAFETY: waitpid on a pid we were told about; st is valid.
        while unsafe { libc::waitpid(sender, &mut st, 0) } < 0 {
            if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                break;
            }
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_round_trip_through_the_encoding() {
        assert_eq!(decode(&encode(&Ok(3), 42)), (Ok(3), 42));
        let e = Error::new(libc::ENOENT, "executable file `x` not found in $PATH");
        assert_eq!(decode(&encode(&Err(e.clone()), 7)), (Err(e), 7));
        let long = Error::new(libc::EINVAL, "é".repeat(400));
        let got = decode(&encode(&Err(long), 1)).0.unwrap_err();
        assert!(got.message().len() <= MAX_MSG && got.message().chars().all(|c| c == 'é'));
        assert_eq!(decode(&[]).0.unwrap_err().errno(), libc::EPIPE);
    }
}
