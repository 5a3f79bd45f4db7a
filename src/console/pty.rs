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
pub fn new_terminal_at(ptmx: &str) -> Result<(OwnedFd, String)> {
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

    // Open the peer from the master itself, so no path lookup can be redirected.
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
        Err(libc::EINVAL) | Err(libc::ENOTTY) => {
            open_fd(&path, libc::O_RDWR | libc::O_NOCTTY | libc::O_NOFOLLOW, "")?
        }
        Err(e) => return Err(Error::new(e, format!("open the peer of `{ptmx}`"))),
    };
    let pst = fstat(peer.as_raw_fd(), &path)?;
    if !is_pty_rdev(&pst) || fstatfs_magic(peer.as_raw_fd(), &path)? != DEVPTS_SUPER_MAGIC {
        return Err(hardening(format!(
            "the peer of `{ptmx}` is not a devpts pty"
        )));
    }
    if pst.st_dev != devpts_dev {
        return Err(hardening(format!(
            "the peer of `{ptmx}` is not on the devpts instance `{}`",
            pts_dir.display()
        )));
    }
    if pty_index(&pst) != u64::from(n) {
        return Err(hardening(format!(
            "the peer of `{ptmx}` is pty {} but TIOCGPTN said {n}",
            pty_index(&pst)
        )));
    }
    // The path the caller will open later must name the same device, without symlinks.
    let cp = cpath(&path)?;
    // SAFETY: lstat writes one `struct stat` into the zeroed local.
    let mut lst: libc::stat = unsafe { std::mem::zeroed() };
    retry(|| unsafe { libc::lstat(cp.as_ptr(), &mut lst) })
        .map_err(|e| Error::new(e, format!("stat `{path}`")))?;
    if (lst.st_mode & libc::S_IFMT) != libc::S_IFCHR
        || lst.st_rdev != pst.st_rdev
        || lst.st_dev != pst.st_dev
    {
        return Err(hardening(format!("`{path}` is not the peer of `{ptmx}`")));
    }
    drop(peer);
    Ok((master, path))
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
    for target in 0..3 {
        if raw == target {
            // open() picked a free stdio slot: clear O_CLOEXEC so it survives exec like the rest.
            // SAFETY: F_SETFD on an fd we own.
            retry(|| unsafe { libc::fcntl(raw, libc::F_SETFD, 0) })
                .map_err(|e| Error::new(e, "dup terminal"))?;
            continue;
        }
        // SAFETY: dup3 onto a standard fd; the old target (if any) is closed atomically.
        retry(|| unsafe { libc::dup3(raw, target, 0) })
            .map_err(|e| Error::new(e, "dup terminal"))?;
    }
    if raw <= 2 {
        // The fd is now one of the stdio fds: do not close it.
        std::mem::forget(fd);
    } else {
        drop(fd);
    }
    // SAFETY: TIOCSCTTY with arg 0 (do not steal).
    retry(|| unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) })
        .map_err(|e| Error::new(e, "ioctl TIOCSCTTY"))?;
    Ok(())
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
    fn set_stdio_rejects_missing_and_non_tty() {
        let e = set_stdio("/nonexistent/pts/9").unwrap_err();
        assert_eq!(e.errno(), libc::ENOENT);
        assert!(e.message().contains("`/nonexistent/pts/9`"));
        let e = set_stdio("/dev/null").unwrap_err();
        assert_eq!(e.errno(), libc::ENOTTY);
    }
}
