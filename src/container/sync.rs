//! The parent/container sync socket.
//!
//! A `SOCK_SEQPACKET` socketpair carries small messages `{kind, errno, text}` (one packet each),
//! like crun's `sync_socket_message_s`: errors travel as a **positive errno plus the full
//! message** so the parent can print exactly what the container process saw.  A `Terminal`
//! message is followed by one packet carrying the pty master as `SCM_RIGHTS`.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use crate::error::{Context, Error, Result};

/// Largest packet we send or accept.
pub const MAX_MSG: usize = 8192;

/// Message kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Kind {
    /// Parent → child: go on (user namespace maps written, cgroup joined).
    Go = 0,
    /// Child → parent: setup failed; `errno` and text describe it.  The child exits after it.
    Error = 1,
    /// Child → parent: a warning to log.
    Warning = 2,
    /// Child → parent: a debug message to log.
    Debug = 3,
    /// Child → parent: the next packet carries the pty master.
    Terminal = 4,
    /// Child → parent: setup finished; the process is about to wait for `start` or exec.
    Ready = 5,
    /// Exec helper → parent: the pid of the process that will exec (as text).
    Pid = 6,
    /// Child → parent: namespaces exist, run `prestart`/`createRuntime` hooks now (before the
    /// mounts and `pivot_root`); the parent answers `Go`.
    Hooks = 7,
    /// Child → parent: setrlimit was refused (valgrind emulates RLIMIT_NOFILE and refuses any
    /// other hard limit than its own): set `resource soft hard name` on me with prlimit.  The
    /// parent answers `Go`, or `Error` with what prlimit said.
    Rlimit = 8,
}

impl Kind {
    fn from_i32(v: i32) -> Option<Kind> {
        Some(match v {
            0 => Kind::Go,
            1 => Kind::Error,
            2 => Kind::Warning,
            3 => Kind::Debug,
            4 => Kind::Terminal,
            5 => Kind::Ready,
            6 => Kind::Pid,
            7 => Kind::Hooks,
            8 => Kind::Rlimit,
            _ => return None,
        })
    }
}

/// A received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub kind: Kind,
    pub errno: i32,
    pub text: String,
}

impl Message {
    /// The error an `Error` message describes.
    pub fn to_error(&self) -> Error {
        Error::new(self.errno, self.text.clone())
    }
}

/// Send one message.  Never raises SIGPIPE.
pub fn send(sock: BorrowedFd<'_>, kind: Kind, errno: i32, text: &str) -> Result<()> {
    let mut buf = Vec::with_capacity(8 + text.len());
    buf.extend_from_slice(&(kind as i32).to_ne_bytes());
    buf.extend_from_slice(&errno.to_ne_bytes());
    let max = MAX_MSG - 8;
    let t = if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        &text[..end]
    } else {
        text
    };
    buf.extend_from_slice(t.as_bytes());
    loop {
        // SAFETY: buf is a valid slice; sock is a valid fd for the duration of the call.
        let n = unsafe {
            libc::send(
                sock.as_raw_fd(),
                buf.as_ptr().cast(),
                buf.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        if n >= 0 {
            return Ok(());
        }
        let e = Error::last_os_error("send to sync socket");
        if e.errno() != libc::EINTR {
            return Err(e);
        }
    }
}

/// Send an error message.
pub fn send_error(sock: BorrowedFd<'_>, e: &Error) -> Result<()> {
    send(sock, Kind::Error, e.errno(), e.message())
}

/// Receive one message; `Ok(None)` when the peer closed the socket.
pub fn recv(sock: BorrowedFd<'_>) -> Result<Option<Message>> {
    let mut buf = vec![0u8; MAX_MSG];
    let n = loop {
        // SAFETY: buf is a valid mutable slice of buf.len() bytes.
        let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n >= 0 {
            break n as usize;
        }
        let e = Error::last_os_error("read from sync socket");
        if e.errno() != libc::EINTR {
            return Err(e);
        }
    };
    if n == 0 {
        return Ok(None);
    }
    if n < 8 {
        return Err(Error::new(
            libc::EPROTO,
            format!("read from sync socket: short message ({n} bytes)"),
        ));
    }
    let kind_v = i32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let errno = i32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let kind = Kind::from_i32(kind_v).ok_or_else(|| {
        Error::new(
            libc::EPROTO,
            format!("read from sync socket: unknown message type {kind_v}"),
        )
    })?;
    Ok(Some(Message {
        kind,
        errno,
        text: String::from_utf8_lossy(&buf[8..n]).into_owned(),
    }))
}

/// Receive a message and require `kind`; an `Error` message becomes the error, EOF is EPIPE
/// with `what` named.
pub fn expect(sock: BorrowedFd<'_>, kind: Kind, what: &str) -> Result<Message> {
    loop {
        match recv(sock)? {
            None => {
                return Err(Error::new(
                    libc::EPIPE,
                    format!("{what}: the other end of the sync socket closed"),
                ))
            }
            Some(m) if m.kind == Kind::Error => return Err(m.to_error()),
            Some(m) if m.kind == kind => return Ok(m),
            Some(m) if m.kind == Kind::Warning => crate::log::warning(&m.text),
            Some(m) if m.kind == Kind::Debug => crate::log::debug(&m.text),
            Some(m) => {
                return Err(Error::new(
                    libc::EPROTO,
                    format!("{what}: unexpected sync message {:?}", m.kind),
                ))
            }
        }
    }
}

/// A close-on-exec `SOCK_SEQPACKET` pair.
pub fn socketpair() -> Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .context("create sync socket pair")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn round_trip_keeps_errno_and_full_message() {
        let (a, b) = socketpair().unwrap();
        let long = "x".repeat(2000);
        send(
            a.as_fd(),
            Kind::Error,
            libc::ENOENT,
            &format!("executable file `{long}` not found in $PATH"),
        )
        .unwrap();
        let m = recv(b.as_fd()).unwrap().unwrap();
        assert_eq!(m.kind, Kind::Error);
        assert_eq!(m.errno, libc::ENOENT);
        assert!(m.text.ends_with("not found in $PATH"));
        assert_eq!(
            m.to_error().to_string(),
            format!("executable file `{long}` not found in $PATH: No such file or directory")
        );
        send(a.as_fd(), Kind::Ready, 0, "").unwrap();
        send(a.as_fd(), Kind::Error, libc::EACCES, "boom").unwrap();
        assert_eq!(
            expect(b.as_fd(), Kind::Ready, "x").unwrap().kind,
            Kind::Ready
        );
        let e = expect(b.as_fd(), Kind::Ready, "x").unwrap_err();
        assert_eq!((e.errno(), e.message()), (libc::EACCES, "boom"));
        drop(a);
        assert_eq!(recv(b.as_fd()).unwrap(), None);
        assert_eq!(
            expect(b.as_fd(), Kind::Ready, "wait").unwrap_err().errno(),
            libc::EPIPE
        );
    }
}
