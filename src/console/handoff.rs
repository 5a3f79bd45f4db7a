//! The `--console-socket` protocol (crun, runc and youki send; conmon, conmon-rs and runc's
//! recvtty receive): the runtime connects a `SOCK_STREAM` AF_UNIX socket to the path, sends
//! **one** `sendmsg` with the 1-byte payload `" "` and **one** `SCM_RIGHTS` fd (the pty
//! master), and closes.  There is no reply.
//!
//! Monitors treat "connected, then closed without an fd" as fatal and lose the runtime's error
//! (conmon >= 2.1.8, conmon-rs), so [`send_console_to_socket_path`] checks the master *before*
//! it connects: it only connects with the fd in hand.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use super::socket::{open_unix_domain_client_socket, receive_fd};
use super::{check_fd, retry};
use crate::error::{Context, Error, Result};

/// Send the pty `master` to the console socket at `console_socket`: connect, one `sendmsg` with
/// `" "` + the fd, close.  Fails (without connecting) if `master` is not an open fd.
pub fn send_console_to_socket_path(console_socket: &str, master: RawFd) -> Result<()> {
    check_fd(master, "pty master").context("send console")?;
    let sock = open_unix_domain_client_socket(console_socket, false)?;
    super::send_fd_to_socket(sock.as_raw_fd(), master, b" ")
        .with_context(|| format!("send console to `{console_socket}`"))?;
    Ok(())
}

/// Accept one connection on the listening socket `listener` and receive the console fd from it
/// (strict checks of [`receive_fd`]).  `timeout_ms` bounds the whole wait (accept + receive);
/// negative waits forever.  A timeout is `ETIMEDOUT`.
pub fn receive_console_from_listener(listener: RawFd, timeout_ms: i32) -> Result<OwnedFd> {
    check_fd(listener, "console socket listener")?;
    let deadline =
        (timeout_ms >= 0).then(|| Instant::now() + Duration::from_millis(timeout_ms as u64));
    let conn = loop {
        wait_readable(listener, deadline, "a connection on the console socket")?;
        // SAFETY: accept4 returns a new fd that we own, or -1.
        match retry(|| unsafe {
            libc::accept4(
                listener,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        }) {
            Ok(fd) => break fd,
            // A non-blocking listener whose connection went away (or was taken) meanwhile.
            Err(libc::EAGAIN) | Err(libc::ECONNABORTED) => continue,
            Err(e) => {
                return Err(Error::new(
                    e,
                    format!("accept on console socket fd {listener}"),
                ))
            }
        }
    };
    // SAFETY: fresh fd owned by nobody else.
    let conn = unsafe { OwnedFd::from_raw_fd(conn) };
    wait_readable(conn.as_raw_fd(), deadline, "the console file descriptor")?;
    let mut buf = [0u8; 4096];
    let (fd, _) = receive_fd(conn.as_raw_fd(), &mut buf).context("receive console")?;
    Ok(fd)
}

fn wait_readable(fd: RawFd, deadline: Option<Instant>, what: &str) -> Result<()> {
    loop {
        let ms = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                // Round up so a sub-millisecond remainder still waits.
                left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
            }
        };
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one pollfd.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r < 0 {
            let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            if e == libc::EINTR {
                continue;
            }
            return Err(Error::new(e, format!("poll while waiting for {what}")));
        }
        if r == 0 {
            return Err(Error::new(
                libc::ETIMEDOUT,
                format!("timed out waiting for {what}"),
            ));
        }
        if p.revents & libc::POLLNVAL != 0 {
            return Err(Error::new(libc::EBADF, format!("waiting for {what}")));
        }
        return Ok(());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::{new_terminal, open_unix_domain_socket};

    #[test]
    fn handoff_round_trip_and_timeout() {
        let d = std::env::temp_dir().join(format!("crun-rs-handoff-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("c.sock");
        let ps = p.to_str().unwrap().to_string();
        let l = open_unix_domain_socket(&ps, false).unwrap();
        let e = receive_console_from_listener(l.as_raw_fd(), 50).unwrap_err();
        assert_eq!(e.errno(), libc::ETIMEDOUT);
        let (m, slave) = new_terminal().unwrap();
        let t = std::thread::spawn(move || send_console_to_socket_path(&ps, m.as_raw_fd()));
        let got = receive_console_from_listener(l.as_raw_fd(), 5000).unwrap();
        t.join().unwrap().unwrap();
        // What is written to the slave comes out of the received master.
        let s = std::fs::OpenOptions::new()
            .write(true)
            .open(&slave)
            .unwrap();
        use std::io::{Read, Write};
        (&s).write_all(b"hi\n").unwrap();
        let mut f = std::fs::File::from(got);
        let mut buf = [0u8; 16];
        let n = f.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"hi"));
        // The sender refuses to connect without a valid master.
        let e = send_console_to_socket_path(p.to_str().unwrap(), -1).unwrap_err();
        assert_eq!(e.errno(), libc::EBADF);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
