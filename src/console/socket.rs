//! AF_UNIX sockets and fd passing (crun's `utils.c` socket helpers, made strict).
//!
//! Differences from crun, all deliberate: every socket and every received fd is close-on-exec
//! (`SOCK_CLOEXEC`, `MSG_CMSG_CLOEXEC`); `sendmsg` uses `MSG_NOSIGNAL` so a vanished peer is an
//! `EPIPE` error rather than a `SIGPIPE`; and the receiver checks the control data: exactly one
//! `SCM_RIGHTS` message with exactly one fd, nothing truncated, at least one data byte.  Any fd
//! that arrives in a rejected message is closed.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::pty::open_fd;
use super::{check_fd, retry};
use crate::error::{Error, Result};

/// `sizeof(((struct sockaddr_un *)0)->sun_path)`.
const SUN_PATH_LEN: usize = 108;
/// `SCM_PIDFD` (Linux 6.5): a control message that carries an fd we must close.
const SCM_PIDFD: libc::c_int = 4;

fn new_socket(ty: libc::c_int) -> Result<OwnedFd> {
    // SAFETY: socket() returns a new fd that we own, or -1.
    let fd = retry(|| unsafe { libc::socket(libc::AF_UNIX, ty | libc::SOCK_CLOEXEC, 0) })
        .map_err(|e| Error::new(e, "create UNIX socket"))?;
    // SAFETY: fresh fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn sockaddr(path: &str) -> Option<(libc::sockaddr_un, libc::socklen_t)> {
    let b = path.as_bytes();
    if b.is_empty() || b.len() >= SUN_PATH_LEN || b.contains(&0) {
        return None;
    }
    // SAFETY: sockaddr_un is plain data; all-zero is valid.
    let mut a: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    a.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in a.sun_path.iter_mut().zip(b) {
        *d = *s as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + b.len() + 1;
    Some((a, len as libc::socklen_t))
}

fn too_long(path: &str) -> Error {
    Error::new(
        libc::ENAMETOOLONG,
        format!("socket path `{path}` is too long (even through /proc/self/fd)"),
    )
}

fn check_path(path: &str) -> Result<()> {
    if path.is_empty() {
        return Err(Error::new(libc::EINVAL, "socket path is empty"));
    }
    if path.contains('\0') {
        return Err(Error::new(
            libc::EINVAL,
            format!("socket path `{path}` contains a NUL byte"),
        ));
    }
    Ok(())
}

/// Create a socket bound to `path` (`SOCK_DGRAM` if `dgram`, else `SOCK_STREAM` and `listen`).
/// Paths of 108 bytes or more are bound through `/proc/self/fd/<dir fd>/<name>`.
pub fn open_unix_domain_socket(path: &str, dgram: bool) -> Result<OwnedFd> {
    check_path(path)?;
    let sock = new_socket(if dgram {
        libc::SOCK_DGRAM
    } else {
        libc::SOCK_STREAM
    })?;
    // `_dir` keeps the directory fd open while its /proc name is in use.
    let (_dir, addr) = match sockaddr(path) {
        Some(a) => (None, a),
        None => {
            let (dir, base) = match path.rfind('/') {
                Some(0) => ("/", &path[1..]),
                Some(i) => (&path[..i], &path[i + 1..]),
                None => (".", path),
            };
            let dfd = open_fd(dir, libc::O_PATH | libc::O_DIRECTORY, "")
                .map_err(|e| e.wrap(format!("bind socket to `{path}`")))?;
            let via = format!("/proc/self/fd/{}/{base}", dfd.as_raw_fd());
            (Some(dfd), sockaddr(&via).ok_or_else(|| too_long(path))?)
        }
    };
    // SAFETY: addr is a valid sockaddr_un of length addr.1.
    retry(|| unsafe {
        libc::bind(
            sock.as_raw_fd(),
            &addr.0 as *const libc::sockaddr_un as *const libc::sockaddr,
            addr.1,
        )
    })
    .map_err(|e| Error::new(e, format!("bind socket to `{path}`")))?;
    if !dgram {
        // SAFETY: listen on our socket.
        retry(|| unsafe { libc::listen(sock.as_raw_fd(), 128) })
            .map_err(|e| Error::new(e, format!("listen on `{path}`")))?;
    }
    Ok(sock)
}

/// Create a socket connected to `path` (`SOCK_DGRAM` if `dgram`, else `SOCK_STREAM`).
/// Paths of 108 bytes or more are opened `O_PATH` and connected through `/proc/self/fd/<N>`.
pub fn open_unix_domain_client_socket(path: &str, dgram: bool) -> Result<OwnedFd> {
    check_path(path)?;
    let ctx = || format!("connect socket to `{path}`");
    let sock = new_socket(if dgram {
        libc::SOCK_DGRAM
    } else {
        libc::SOCK_STREAM
    })?;
    let (_target, addr) = match sockaddr(path) {
        Some(a) => (None, a),
        None => {
            let t = open_fd(path, libc::O_PATH, "").map_err(|e| e.wrap(ctx()))?;
            let via = format!("/proc/self/fd/{}", t.as_raw_fd());
            (Some(t), sockaddr(&via).ok_or_else(|| too_long(path))?)
        }
    };
    let fd = sock.as_raw_fd();
    // SAFETY: addr is a valid sockaddr_un of length addr.1.
    let r = unsafe {
        libc::connect(
            fd,
            &addr.0 as *const libc::sockaddr_un as *const libc::sockaddr,
            addr.1,
        )
    };
    if r < 0 {
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        match errno {
            // An interrupted connect completes asynchronously: wait for it.
            libc::EINTR | libc::EINPROGRESS | libc::EALREADY => {
                wait_connected(fd).map_err(|e| Error::new(e, ctx()))?
            }
            libc::ECONNREFUSED if !is_socket(path) => {
                return Err(Error::new(
                    libc::ENOTSOCK,
                    format!("{}: `{path}` is not a socket", ctx()),
                ))
            }
            e => return Err(Error::new(e, ctx())),
        }
    }
    Ok(sock)
}

fn is_socket(path: &str) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).map_or(true, |m| m.file_type().is_socket())
}

fn wait_connected(fd: RawFd) -> std::result::Result<(), i32> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: poll on one pollfd.
    retry(|| unsafe { libc::poll(&mut p, 1, -1) })?;
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: SO_ERROR writes one int.
    retry(|| unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            &mut err as *mut libc::c_int as *mut libc::c_void,
            &mut len,
        )
    })?;
    if err != 0 {
        return Err(err);
    }
    Ok(())
}

/// `socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC)`.
pub fn create_socket_pair() -> Result<(OwnedFd, OwnedFd)> {
    let mut p = [-1 as libc::c_int; 2];
    // SAFETY: socketpair writes two fds that we then own.
    retry(|| unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            p.as_mut_ptr(),
        )
    })
    .map_err(|e| Error::new(e, "create socket pair"))?;
    // SAFETY: both fds are fresh and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) })
}

/// Control-message buffer, aligned for `struct cmsghdr`.
#[repr(C, align(8))]
struct CmsgBuf<const N: usize>([u8; N]);

/// Send `fd` over the connected socket `sock` in one `sendmsg` with one `SCM_RIGHTS` message.
/// An empty `payload` sends the single byte `" "`: a message without data would make the kernel
/// drop the fd on a stream socket.
pub fn send_fd_to_socket(sock: RawFd, fd: RawFd, payload: &[u8]) -> Result<()> {
    // Validate the fds only when sendmsg fails, so the fast path is one syscall.
    let explain = |e: i32| -> Error {
        if e == libc::EBADF {
            if let Err(x) = check_fd(sock, "socket").and(check_fd(fd, "file descriptor to send")) {
                return x;
            }
        }
        Error::new(e, format!("send fd {fd} to socket {sock}"))
    };
    let data: &[u8] = if payload.is_empty() { b" " } else { payload };
    let mut cbuf = CmsgBuf([0u8; 64]);
    // SAFETY: CMSG_* compute sizes/pointers inside `cbuf`, which is large and aligned enough for
    // one cmsghdr + one int; msg points to live locals for the duration of sendmsg.
    let sent = unsafe {
        let space = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as usize;
        let mut iov = libc::iovec {
            iov_base: data.as_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        };
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.0.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut RawFd, fd);
        retry(|| libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL)).map_err(explain)?
    } as usize;
    // A stream socket may take the data in pieces; the fd went with the first one.
    let mut off = sent;
    while off < data.len() {
        let rest = &data[off..];
        // SAFETY: send from a live slice.
        let n = retry(|| unsafe {
            libc::send(sock, rest.as_ptr().cast(), rest.len(), libc::MSG_NOSIGNAL)
        })
        .map_err(explain)?;
        off += n as usize;
    }
    Ok(())
}

/// Receive exactly one fd from `sock` (see [`receive_fd`]); `payload` receives the data bytes
/// (`None`: a 1-byte buffer, which is what crun's sender writes).
pub fn receive_fd_from_socket(sock: RawFd, payload: Option<&mut [u8]>) -> Result<OwnedFd> {
    let mut one = [0u8; 1];
    let buf = match payload {
        Some(b) => b,
        None => &mut one[..],
    };
    receive_fd(sock, buf).map(|(fd, _)| fd)
}

/// Receive one message from `sock` that must carry at least one data byte (stored in `buf`) and
/// exactly one `SCM_RIGHTS` fd, received close-on-exec.  Returns the fd and the number of data
/// bytes.  Errors (every fd that arrived is closed):
/// * `ECONNRESET`: the peer closed the connection before sending an fd;
/// * `EBADMSG`: data without an fd, an fd with no data, two or more fds, truncated control data
///   (`MSG_CTRUNC`), or a control message that is not `SCM_RIGHTS`;
/// * `EBADF`/`ENOTSOCK`/...: `sock` is not a usable socket; `EINVAL`: `buf` is empty.
pub fn receive_fd(sock: RawFd, buf: &mut [u8]) -> Result<(OwnedFd, usize)> {
    let ctx = || format!("receive fd from socket {sock}");
    if sock < 0 {
        check_fd(sock, "socket")?;
    }
    if buf.is_empty() {
        return Err(Error::new(
            libc::EINVAL,
            format!("{}: the payload buffer is empty", ctx()),
        ));
    }
    let mut cbuf = CmsgBuf([0u8; 512]);
    // The first fd is kept; any further ones are closed as soon as they are seen.
    let mut first: Option<OwnedFd> = None;
    let mut nfds = 0usize;
    let mut other: Option<(libc::c_int, libc::c_int)> = None;
    let (n, flags);
    // SAFETY: msg points to live locals for the duration of recvmsg; the CMSG_* walk stays
    // inside the `msg_controllen` bytes the kernel filled in; every fd read from an
    // SCM_RIGHTS/SCM_PIDFD payload is new in our table and wrapped in an OwnedFd at once.
    unsafe {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.0.as_mut_ptr().cast();
        msg.msg_controllen = cbuf.0.len() as _;
        n = retry(|| libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC)).map_err(|e| {
            if e == libc::EBADF {
                if let Err(x) = check_fd(sock, "socket") {
                    return x;
                }
            }
            Error::new(e, ctx())
        })? as usize;
        flags = msg.msg_flags;
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            let level = (*c).cmsg_level;
            let ty = (*c).cmsg_type;
            let data_len = ((*c).cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
            if level == libc::SOL_SOCKET && (ty == libc::SCM_RIGHTS || ty == SCM_PIDFD) {
                let p = libc::CMSG_DATA(c) as *const RawFd;
                for i in 0..data_len / std::mem::size_of::<RawFd>() {
                    let fd = std::ptr::read_unaligned(p.add(i));
                    if fd >= 0 {
                        let owned = OwnedFd::from_raw_fd(fd);
                        nfds += 1;
                        if first.is_none() && ty == libc::SCM_RIGHTS {
                            first = Some(owned);
                        }
                    }
                }
            }
            if !(level == libc::SOL_SOCKET && ty == libc::SCM_RIGHTS) {
                other.get_or_insert((level, ty));
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    let bad = |m: String| Error::new(libc::EBADMSG, format!("{}: {m}", ctx()));
    if flags & libc::MSG_CTRUNC != 0 {
        return Err(bad(
            "control data truncated (MSG_CTRUNC): the peer sent more than one file descriptor"
                .into(),
        ));
    }
    if let Some((l, t)) = other {
        return Err(bad(format!(
            "unexpected control message (level {l}, type {t}), expected SCM_RIGHTS"
        )));
    }
    match (nfds, first) {
        (0, _) if n == 0 => Err(Error::new(
            libc::ECONNRESET,
            format!(
                "{}: connection closed before a file descriptor was received",
                ctx()
            ),
        )),
        (0, _) => Err(bad(format!(
            "received {n} bytes of data but no file descriptor"
        ))),
        (1, Some(_)) if n == 0 => Err(bad(
            "received a file descriptor with a zero-length payload".into()
        )),
        (1, Some(fd)) => Ok((fd, n)),
        (k, _) => Err(bad(format!(
            "received {k} file descriptors in one message, expected exactly one"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("crun-rs-sock-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn cloexec(fd: RawFd) -> bool {
        unsafe { libc::fcntl(fd, libc::F_GETFD) & libc::FD_CLOEXEC != 0 }
    }

    #[test]
    fn pair_round_trip_with_payload() {
        let (a, b) = create_socket_pair().unwrap();
        assert!(cloexec(a.as_raw_fd()) && cloexec(b.as_raw_fd()));
        let f = std::fs::File::open("/dev/null").unwrap();
        send_fd_to_socket(a.as_raw_fd(), f.as_raw_fd(), b"hello").unwrap();
        let mut buf = [0u8; 16];
        let (got, n) = receive_fd(b.as_raw_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
        assert!(cloexec(got.as_raw_fd()));
        // Empty payload becomes " ".
        send_fd_to_socket(a.as_raw_fd(), f.as_raw_fd(), b"").unwrap();
        let (_got, n) = receive_fd(b.as_raw_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..n], b" ");
    }

    #[test]
    fn closed_peer_and_no_fd() {
        let (a, b) = create_socket_pair().unwrap();
        unsafe { libc::send(a.as_raw_fd(), b"x".as_ptr().cast(), 1, 0) };
        let e = receive_fd_from_socket(b.as_raw_fd(), None).unwrap_err();
        assert_eq!(e.errno(), libc::EBADMSG);
        assert!(e.message().contains("no file descriptor"), "{e}");
        drop(a);
        let e = receive_fd_from_socket(b.as_raw_fd(), None).unwrap_err();
        assert_eq!(e.errno(), libc::ECONNRESET);
        assert!(e
            .message()
            .contains("connection closed before a file descriptor was received"));
    }

    #[test]
    fn bad_fds_and_paths() {
        assert_eq!(
            send_fd_to_socket(-1, 0, b"").unwrap_err().errno(),
            libc::EBADF
        );
        let (a, _b) = create_socket_pair().unwrap();
        let e = send_fd_to_socket(a.as_raw_fd(), -1, b"").unwrap_err();
        assert_eq!(e.errno(), libc::EBADF);
        assert_eq!(
            receive_fd_from_socket(-1, None).unwrap_err().errno(),
            libc::EBADF
        );
        let e = open_unix_domain_client_socket("/nonexistent/sock", false).unwrap_err();
        assert_eq!(e.errno(), libc::ENOENT);
        assert!(e.message().contains("`/nonexistent/sock`"));
        let e = open_unix_domain_client_socket("/etc/passwd", false).unwrap_err();
        assert_eq!(e.errno(), libc::ENOTSOCK, "{e}");
        let long = format!("/{}", "x".repeat(300));
        let e = open_unix_domain_socket(&long, false).unwrap_err();
        assert_eq!(e.errno(), libc::ENAMETOOLONG, "{e}");
    }

    #[test]
    fn long_paths_bind_and_connect() {
        let d = tmpdir("long");
        let mut dir = d.clone();
        while dir.as_os_str().len() < 120 {
            dir = dir.join("0123456789abcdef");
        }
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("console.sock");
        let p = path.to_str().unwrap();
        assert!(p.len() >= SUN_PATH_LEN);
        let l = open_unix_domain_socket(p, false).unwrap();
        assert!(path.exists());
        let c = open_unix_domain_client_socket(p, false).unwrap();
        assert!(cloexec(l.as_raw_fd()) && cloexec(c.as_raw_fd()));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
