//! The foreground side of `crun run` / `crun exec` without `--detach`: signal forwarding,
//! the pty copy loop (stdin → master, master → stdout) with SIGWINCH forwarding, and the exit
//! status of the container process.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::glue;
use crate::error::{Context, Error, Result};

/// Signals a foreground runtime forwards to the container (plus SIGCHLD, which it handles).
fn forwarded() -> SigSet {
    let mut s = SigSet::empty();
    for sig in Signal::iterator() {
        match sig {
            Signal::SIGKILL
            | Signal::SIGSTOP
            | Signal::SIGSEGV
            | Signal::SIGBUS
            | Signal::SIGILL
            | Signal::SIGFPE
            | Signal::SIGTRAP
            | Signal::SIGABRT
            | Signal::SIGSYS
            | Signal::SIGTSTP
            | Signal::SIGTTIN
            | Signal::SIGTTOU
            | Signal::SIGPIPE => {}
            _ => s.add(sig),
        }
    }
    s
}

/// Blocks the forwarded signals while alive; the previous mask is restored on drop.
pub struct BlockedSignals {
    old: SigSet,
}

/// Block forwarded signals now (before the clone) so none is lost before the loop starts.
pub fn block_signals() -> Result<BlockedSignals> {
    let mut old = SigSet::empty();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&forwarded()), Some(&mut old))
        .context("block signals")?;
    Ok(BlockedSignals { old })
}

impl Drop for BlockedSignals {
    fn drop(&mut self) {
        let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.old), None);
    }
}

fn status_code(st: i32) -> i32 {
    if libc::WIFEXITED(st) {
        libc::WEXITSTATUS(st)
    } else if libc::WIFSIGNALED(st) {
        128 + libc::WTERMSIG(st)
    } else {
        1
    }
}

/// Reap `pid` if it exited; its exit code.  Only `pid` is waited for: a library caller's
/// other children are not ours to reap.
fn reap(pid: i32) -> Option<i32> {
    let mut st = 0;
    // SAFETY: waitpid writes into st.
    let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
    (r == pid).then(|| status_code(st))
}

/// A pidfd for `pid` (readable once it exits), or None on kernels without pidfd_open.
fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if r < 0 {
        return None;
    }
    // SAFETY: r is a fresh fd we own; pidfds are close-on-exec.
    Some(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(r as RawFd) })
}

fn read_some(fd: RawFd, buf: &mut [u8]) -> isize {
    loop {
        // SAFETY: buf is a valid mutable slice.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        return n;
    }
}

fn drain(master: RawFd) {
    // SAFETY: fcntl on our fd.
    unsafe {
        let fl = libc::fcntl(master, libc::F_GETFL);
        libc::fcntl(master, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
    let mut buf = [0u8; 8192];
    loop {
        let n = read_some(master, &mut buf);
        if n <= 0 {
            return;
        }
        crate::sys::write_all(1, &buf[..n as usize]);
    }
}

/// Wait for `pid` in the foreground, forwarding signals and (with `master`) copying the
/// terminal.  Must be called with [`block_signals`] in effect.  Returns the exit code
/// (128 + signal for a killed process).
pub fn wait_foreground(pid: i32, master: Option<OwnedFd>) -> Result<i32> {
    // Non-blocking: poll reports a process-directed signal as readable, but in a
    // multithreaded caller another thread (which does not block it) may take it before the
    // read, and a blocking read would then wait forever.
    let sfd = SignalFd::with_flags(&forwarded(), SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .context("signalfd")?;
    // The exit is watched through a pidfd: in a multithreaded caller SIGCHLD may be delivered
    // to another thread and never reach this thread's signalfd.  For the same reason the
    // signalfd is non-blocking: a signal poll reported may be taken by another thread before
    // the read, and a blocking read would then wait forever.
    let pidfd = pidfd_open(pid);
    // The process may already be gone (SIGCHLD arrived before the signalfd existed).
    if let Some(code) = reap(pid) {
        if let Some(m) = &master {
            drain(m.as_raw_fd());
        }
        return Ok(code);
    }
    // SAFETY: fd 0 stays open for the life of the process.
    let stdin = unsafe { BorrowedFd::borrow_raw(0) };
    // SAFETY: isatty only inspects the fd.
    let stdin_tty = unsafe { libc::isatty(0) } == 1;
    let _raw = match (&master, stdin_tty) {
        (Some(_), true) => Some(glue::console::set_raw(stdin)?),
        _ => None,
    };
    if let Some(m) = &master {
        if stdin_tty {
            let _ = glue::console::setup_size(m.as_fd(), 0, 0);
        }
    }
    let mut stdin_open = master.is_some();
    let mut master_open = master.is_some();
    let mut buf = [0u8; 8192];
    loop {
        let mut fds = vec![libc::pollfd {
            fd: sfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if let Some(p) = &pidfd {
            fds.push(libc::pollfd {
                fd: p.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        if let Some(m) = &master {
            if master_open {
                fds.push(libc::pollfd {
                    fd: m.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
            if stdin_open {
                fds.push(libc::pollfd {
                    fd: 0,
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
        }
        // SAFETY: fds is a valid array of pollfd.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if r < 0 {
            let e = Error::last_os_error("poll");
            if e.errno() == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        for p in &fds {
            if p.revents == 0 {
                continue;
            }
            if Some(p.fd) == pidfd.as_ref().map(|f| f.as_raw_fd()) {
                let mut st = 0;
                // SAFETY: the process exited (the pidfd is readable): reap it.
                let r = unsafe { libc::waitpid(pid, &mut st, 0) };
                if r == pid {
                    if let Some(m) = &master {
                        drain(m.as_raw_fd());
                    }
                    return Ok(status_code(st));
                }
                return Err(Error::last_os_error(format!("waitpid `{pid}`")));
            } else if p.fd == sfd.as_raw_fd() {
                if let Ok(Some(si)) = sfd.read_signal() {
                    let sig = si.ssi_signo as i32;
                    if sig == libc::SIGCHLD {
                        if let Some(code) = reap(pid) {
                            if let Some(m) = &master {
                                drain(m.as_raw_fd());
                            }
                            return Ok(code);
                        }
                    } else if sig == libc::SIGWINCH {
                        if let Some(m) = &master {
                            let _ = glue::console::setup_size(m.as_fd(), 0, 0);
                        }
                    } else {
                        // SAFETY: kill with a pid and signal number.
                        unsafe { libc::kill(pid, sig) };
                    }
                }
            } else if Some(p.fd) == master.as_ref().map(|m| m.as_raw_fd()) {
                let n = read_some(p.fd, &mut buf);
                if n <= 0 {
                    master_open = false;
                } else {
                    crate::sys::write_all(1, &buf[..n as usize]);
                }
            } else if p.fd == 0 {
                let n = read_some(0, &mut buf);
                if n <= 0 {
                    stdin_open = false;
                } else if let Some(m) = &master {
                    crate::sys::write_all(m.as_raw_fd(), &buf[..n as usize]);
                }
            }
        }
    }
}
