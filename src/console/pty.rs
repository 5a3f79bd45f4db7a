//! Pseudo-terminals: create a hardened pty pair and make a pty the caller's stdio.
//!
//! CVE-2025-52565 (runc): a container can replace `/dev/pts/ptmx` or `/dev/pts/N` (e.g. with a
//! symlink or a bind mount of another file) so the runtime hands a *host* file to the console
//! receiver or dup's it onto the container's stdio.  [`new_terminal_at`] therefore verifies:
//!
//! 1. the opened ptmx is the character device 5:2 and either lives on a devpts mount itself
//!    (inode 2, as when `/dev/ptmx` is a symlink to `pts/ptmx`) or is the devtmpfs `ptmx`
//!    whose sibling `pts` directory is the devpts instance it multiplexes (what the kernel's
//!    `devpts_acquire` uses);
//! 2. the slave, opened from the master with `TIOCGPTPEER` (or by path with `O_NOFOLLOW` on
//!    kernels before 4.13), is a devpts pty (`major` 136..=143) of **that** devpts instance
//!    (same `st_dev`) with the index `TIOCGPTN` reported;
//! 3. the path handed back (`<pts dir>/<N>`) names that same device (`lstat`, no symlinks).

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use super::retry;
use crate::error::{Error, Result};

/// `DEVPTS_SUPER_MAGIC` from `<linux/magic.h>`.
const DEVPTS_SUPER_MAGIC: i64 = 0x1cd1;
/// The first and last Unix98 pty slave majors (`UNIX98_PTY_SLAVE_MAJOR` + 0..7).
const PTS_MAJOR_FIRST: u32 = 136;
const PTS_MAJOR_LAST: u32 = 143;
/// `TIOCGPTPEER` (`_IO('T', 0x41)`), Linux 4.13+.
const TIOCGPTPEER: libc::c_ulong = 0x5441;

fn cpath(p: &str) -> Result<CString> {
    CString::new(p).map_err(|_| Error::new(libc::EINVAL, format!("path `{p}` contains a NUL byte")))
}

fn fstat(fd: RawFd, what: &str) -> Result<libc::stat> {
    // SAFETY: fstat writes one `struct stat` into the zeroed local.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    retry(|| unsafe { libc::fstat(fd, &mut st) })
        .map_err(|e| Error::new(e, format!("fstat `{what}`")))?;
    Ok(st)
}

fn fstatfs_magic(fd: RawFd, what: &str) -> Result<i64> {
    // SAFETY: fstatfs writes one `struct statfs` into the zeroed local.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    retry(|| unsafe { libc::fstatfs(fd, &mut st) })
        .map_err(|e| Error::new(e, format!("statfs `{what}`")))?;
    #[allow(clippy::unnecessary_cast)]
    Ok(st.f_type as i64)
}

/// `open(2)` with EINTR retry, returning an owned fd.
pub(crate) fn open_fd(path: &str, flags: libc::c_int, what: &str) -> Result<OwnedFd> {
    let c = cpath(path)?;
    // SAFETY: `c` is a valid NUL-terminated path; the returned fd is owned by us.
    let fd = retry(|| unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, 0) })
        .map_err(|e| Error::new(e, format!("open {what}`{path}`")))?;
    // SAFETY: `fd` was just returned by open and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn is_pty_rdev(st: &libc::stat) -> bool {
    let major = libc::major(st.st_rdev);
    (st.st_mode & libc::S_IFMT) == libc::S_IFCHR
        && (PTS_MAJOR_FIRST..=PTS_MAJOR_LAST).contains(&major)
}

fn pty_index(st: &libc::stat) -> u64 {
    u64::from(libc::major(st.st_rdev) - PTS_MAJOR_FIRST) * 256 + u64::from(libc::minor(st.st_rdev))
}

fn hardening(msg: String) -> Error {
    Error::new(libc::EPERM, format!("pty hardening: {msg}"))
}

/// Create a pty pair from `/dev/ptmx`: returns the master (`O_RDWR|O_NOCTTY|O_CLOEXEC`,
/// unlocked) and the slave's path, e.g. `/dev/pts/3`.  See [`new_terminal_at`] for the checks.
pub fn new_terminal() -> Result<(OwnedFd, String)> {
    new_terminal_at("/dev/ptmx")
}

/// Like [`new_terminal`] with another ptmx, e.g. `<rootfs>/dev/pts/ptmx` of a devpts instance
/// mounted elsewhere.  The slave path is `<pts dir>/<N>` for that instance.
///
/// The slave is verified by `lstat` on its path, **not** by opening it: opening and closing the
/// slave would leave the master in the "other side closed" state (`POLLHUP`, reads fail with
/// `EIO`) until someone opens it again, and a console receiver that gets the master in that
/// window (conmon) would see a hung-up terminal.  [`new_terminal_pair`] opens and keeps it.
pub fn new_terminal_at(ptmx: &str) -> Result<(OwnedFd, String)> {
    let t = open_ptmx(ptmx)?;
    let lst = lstat_pty(&t, ptmx)?;
    check_slave(&t, &lst, &t.path, ptmx)?;
    Ok((t.master, t.path))
}

/// Create a pty pair and also open the slave from the master (`TIOCGPTPEER`, or by path with
/// `O_NOFOLLOW` before Linux 4.13), as runc does: returns `(master, slave, slave path)`, all
/// close-on-exec.  The slave fd is verified to be a devpts pty of the ptmx's devpts instance
/// with the expected index, and the path to name the same device.  Hand the slave to
/// [`set_stdio_fd`] instead of re-opening the path.
pub fn new_terminal_pair() -> Result<(OwnedFd, OwnedFd, String)> {
    new_terminal_pair_at("/dev/ptmx")
}

/// [`new_terminal_pair`] with another ptmx.
pub fn new_terminal_pair_at(ptmx: &str) -> Result<(OwnedFd, OwnedFd, String)> {
    let t = open_ptmx(ptmx)?;
    let mfd = t.master.as_raw_fd();
    // SAFETY: TIOCGPTPEER takes open flags by value and returns a new fd that we own.
    let peer = retry(|| unsafe {
        libc::ioctl(
            mfd,
            TIOCGPTPEER as _,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    });
    let peer = match peer {
        // SAFETY: fd just returned by the kernel, owned by nobody else.
        Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd) },
        Err(libc::EINVAL) | Err(libc::ENOTTY) => open_fd(
            &t.path,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_NOFOLLOW,
            "",
        )?,
        Err(e) => return Err(Error::new(e, format!("open the peer of `{ptmx}`"))),
    };
    let pst = fstat(peer.as_raw_fd(), &t.path)?;
    if fstatfs_magic(peer.as_raw_fd(), &t.path)? != DEVPTS_SUPER_MAGIC {
        return Err(hardening(format!("the peer of `{ptmx}` is not on devpts")));
    }
    check_slave(&t, &pst, &format!("the peer of `{ptmx}`"), ptmx)?;
    // The path must name the same device, without symlinks.
    let lst = lstat_pty(&t, ptmx)?;
    if lst.st_rdev != pst.st_rdev || lst.st_dev != pst.st_dev {
        return Err(hardening(format!(
            "`{}` is not the peer of `{ptmx}`",
            t.path
        )));
    }
    Ok((t.master, peer, t.path))
}

/// An unlocked, verified ptmx.
struct Ptmx {
    master: OwnedFd,
    /// `<pts dir>/<n>`.
    path: String,
    n: u32,
    pts_dir: PathBuf,
    devpts_dev: libc::dev_t,
}

/// Open `ptmx`, check it is the ptmx of a devpts instance, find that instance, unlock the pty.
fn open_ptmx(ptmx: &str) -> Result<Ptmx> {
    // Resolve symlinks (`/dev/ptmx -> pts/ptmx` in containers) so the pts directory is found
    // relative to the real ptmx; the fd checks below make this race-free.
    let real = std::fs::canonicalize(ptmx).map_err(|e| {
        Error::new(
            e.raw_os_error().unwrap_or(libc::ENOENT),
            format!("open `{ptmx}`"),
        )
    })?;
    let real_s = real.to_string_lossy().into_owned();
    let master = open_fd(
        &real_s,
        libc::O_RDWR | libc::O_NOCTTY | libc::O_NOFOLLOW,
        "",
    )
    .map_err(|e| {
        if real_s == ptmx {
            e
        } else {
            e.wrap(format!("open `{ptmx}`"))
        }
    })?;
    let mfd = master.as_raw_fd();

    let mst = fstat(mfd, ptmx)?;
    if (mst.st_mode & libc::S_IFMT) != libc::S_IFCHR || mst.st_rdev != libc::makedev(5, 2) {
        return Err(hardening(format!("`{ptmx}` is not the ptmx device (5:2)")));
    }
    let on_devpts = fstatfs_magic(mfd, ptmx)? == DEVPTS_SUPER_MAGIC;
    if on_devpts && mst.st_ino != 2 {
        return Err(hardening(format!(
            "`{ptmx}` is on devpts but is not its ptmx (inode {})",
            mst.st_ino
        )));
    }
    let (pts_dir, devpts_dev) = find_pts_dir(&real, on_devpts.then_some(mst.st_dev), ptmx)?;

    // unlockpt
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int from the pointer.
    retry(|| unsafe { libc::ioctl(mfd, libc::TIOCSPTLCK, &unlock) })
        .map_err(|e| Error::new(e, "unlockpt"))?;
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int.
    retry(|| unsafe { libc::ioctl(mfd, libc::TIOCGPTN, &mut n) })
        .map_err(|e| Error::new(e, "ptsname: ioctl TIOCGPTN"))?;
    let path = format!("{}/{n}", pts_dir.display());
    Ok(Ptmx {
        master,
        path,
        n,
        pts_dir,
        devpts_dev,
    })
}

/// `lstat` the slave path (no symlinks followed).
fn lstat_pty(t: &Ptmx, ptmx: &str) -> Result<libc::stat> {
    let cp = cpath(&t.path)?;
    // SAFETY: lstat writes one `struct stat` into the zeroed local.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    retry(|| unsafe { libc::lstat(cp.as_ptr(), &mut st) })
        .map_err(|e| Error::new(e, format!("stat `{}` (the peer of `{ptmx}`)", t.path)))?;
    Ok(st)
}

/// `st` (of the slave path or fd) is pty number `t.n` of the devpts instance `t.devpts_dev`.
fn check_slave(t: &Ptmx, st: &libc::stat, what: &str, ptmx: &str) -> Result<()> {
    if !is_pty_rdev(st) {
        return Err(hardening(format!("`{}` is not a devpts pty", t.path)));
    }
    if st.st_dev != t.devpts_dev {
        return Err(hardening(format!(
            "{what} is not on the devpts instance `{}` of `{ptmx}`",
            t.pts_dir.display()
        )));
    }
    if pty_index(st) != u64::from(t.n) {
        return Err(hardening(format!(
            "{what} is pty {} but TIOCGPTN said {}",
            pty_index(st),
            t.n
        )));
    }
    Ok(())
}

/// The devpts directory serving `real_ptmx`: its own directory when the ptmx is on devpts
/// (`dev` is then its `st_dev`), else (or if that is not the same instance) the sibling `pts`.
fn find_pts_dir(
    real_ptmx: &Path,
    dev: Option<libc::dev_t>,
    ptmx: &str,
) -> Result<(PathBuf, libc::dev_t)> {
    let parent = real_ptmx.parent().unwrap_or(Path::new("/"));
    let candidates = [parent.to_path_buf(), parent.join("pts")];
    for dir in candidates.iter() {
        let ds = dir.to_string_lossy();
        let Ok(fd) = open_fd(&ds, libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW, "") else {
            continue;
        };
        if fstatfs_magic(fd.as_raw_fd(), &ds)? != DEVPTS_SUPER_MAGIC {
            continue;
        }
        let st = fstat(fd.as_raw_fd(), &ds)?;
        match dev {
            Some(d) if d != st.st_dev => continue,
            _ => return Ok((dir.clone(), st.st_dev)),
        }
    }
    Err(hardening(format!(
        "no devpts instance found for `{ptmx}` (looked in `{}` and `{}`)",
        candidates[0].display(),
        candidates[1].display()
    )))
}

/// Make the pty at `pty_path` the caller's stdin, stdout, stderr and controlling terminal:
/// `open(O_RDWR|O_NOCTTY|O_CLOEXEC|O_NOFOLLOW)`, `dup3` onto 0, 1 and 2, `ioctl(0, TIOCSCTTY)`.
/// The caller must be a session leader without a controlling terminal (call `setsid` first).
pub fn set_stdio(pty_path: &str) -> Result<()> {
    let fd = open_fd(
        pty_path,
        libc::O_RDWR | libc::O_NOCTTY | libc::O_NOFOLLOW,
        "",
    )?;
    let raw = fd.as_raw_fd();
    // SAFETY: isatty only inspects the fd.
    if unsafe { libc::isatty(raw) } == 0 {
        return Err(Error::new(
            libc::ENOTTY,
            format!("`{pty_path}` is not a terminal"),
        ));
    }
    let r = dup_stdio(raw);
    if raw <= 2 {
        // The fd is now one of the stdio fds: do not close it.
        std::mem::forget(fd);
    }
    r
}

/// `dup3(fd, 0..=2)` (not close-on-exec), then `ioctl(0, TIOCSCTTY, 0)`.
fn dup_stdio(fd: RawFd) -> Result<()> {
    for target in 0..3 {
        if fd == target {
            // Already in place: clear FD_CLOEXEC so it survives exec like the others.
            // SAFETY: F_SETFD on a valid fd.
            retry(|| unsafe { libc::fcntl(fd, libc::F_SETFD, 0) })
                .map_err(|e| Error::new(e, "dup terminal"))?;
            continue;
        }
        // SAFETY: dup3 onto a standard fd; the old target (if any) is closed atomically.
        retry(|| unsafe { libc::dup3(fd, target, 0) })
            .map_err(|e| Error::new(e, "dup terminal"))?;
    }
    // SAFETY: TIOCSCTTY with arg 0 (do not steal).
    retry(|| unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) })
        .map_err(|e| Error::new(e, "ioctl TIOCSCTTY"))?;
    Ok(())
}

/// Like [`set_stdio`] with an already open terminal fd (e.g. the slave from
/// [`new_terminal_pair`]): `dup3` it onto 0, 1 and 2 and make it the controlling terminal.
/// `fd` itself is left open (close it afterwards unless it is one of 0..=2).
pub fn set_stdio_fd(fd: RawFd) -> Result<()> {
    super::check_fd(fd, "terminal")?;
    // SAFETY: isatty only inspects the fd.
    if unsafe { libc::isatty(fd) } == 0 {
        return Err(Error::new(
            libc::ENOTTY,
            format!("fd {fd} is not a terminal"),
        ));
    }
    dup_stdio(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_terminal_gives_a_pty_of_dev_pts() {
        let (m, path) = new_terminal().unwrap();
        assert!(path.starts_with("/dev/pts/"), "{path}");
        let fl = unsafe { libc::fcntl(m.as_raw_fd(), libc::F_GETFD) };
        assert_eq!(fl & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
        assert_eq!(unsafe { libc::isatty(m.as_raw_fd()) }, 1);
        // The slave path opens and is a tty.
        let s = open_fd(&path, libc::O_RDWR | libc::O_NOCTTY, "").unwrap();
        assert_eq!(unsafe { libc::isatty(s.as_raw_fd()) }, 1);
    }

    #[test]
    fn master_is_not_hung_up_after_new_terminal() {
        let (m, _path) = new_terminal().unwrap();
        let mut p = libc::pollfd {
            fd: m.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // A fresh master has no events; one whose slave was opened and closed has POLLHUP.
        assert_eq!(
            unsafe { libc::poll(&mut p, 1, 0) },
            0,
            "revents {:x}",
            p.revents
        );
    }

    #[test]
    fn pair_gives_a_verified_open_slave() {
        let (m, s, path) = new_terminal_pair().unwrap();
        assert!(path.starts_with("/dev/pts/"));
        let fl = unsafe { libc::fcntl(s.as_raw_fd(), libc::F_GETFD) };
        assert_eq!(fl & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
        let n = unsafe { libc::write(s.as_raw_fd(), b"abc\n".as_ptr().cast(), 4) };
        assert_eq!(n, 4);
        let mut buf = [0u8; 16];
        let n = unsafe { libc::read(m.as_raw_fd(), buf.as_mut_ptr().cast(), 16) };
        assert!(n >= 3 && &buf[..3] == b"abc");
        let e = new_terminal_pair_at("/dev/null").unwrap_err();
        assert_eq!(e.errno(), libc::EPERM);
    }

    #[test]
    fn not_a_ptmx_is_refused() {
        let e = new_terminal_at("/dev/null").unwrap_err();
        assert_eq!(e.errno(), libc::EPERM);
        assert!(
            e.message().contains("`/dev/null` is not the ptmx device"),
            "{e}"
        );
        let e = new_terminal_at("/nonexistent/ptmx").unwrap_err();
        assert_eq!(e.errno(), libc::ENOENT);
        assert!(e.message().contains("/nonexistent/ptmx"), "{e}");
    }

    #[test]
    fn set_stdio_fd_rejects_bad_fds() {
        assert_eq!(set_stdio_fd(-1).unwrap_err().errno(), libc::EBADF);
        let f = std::fs::File::open("/dev/null").unwrap();
        assert_eq!(
            set_stdio_fd(f.as_raw_fd()).unwrap_err().errno(),
            libc::ENOTTY
        );
    }

    #[test]
    fn set_stdio_rejects_missing_and_non_tty() {
        let e = set_stdio("/nonexistent/pts/9").unwrap_err();
        assert_eq!(e.errno(), libc::ENOENT);
        assert!(e.message().contains("`/nonexistent/pts/9`"));
        let e = set_stdio("/dev/null").unwrap_err();
        assert_eq!(e.errno(), libc::ENOTTY);
    }
}
