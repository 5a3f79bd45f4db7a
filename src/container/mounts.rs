//! Root filesystem setup inside the container's mount namespace: the OCI mounts, default and
//! spec devices, `/dev` symlinks, `pivot_root` (or `chroot` for `--no-pivot`), masked and
//! read-only paths.
//!
//! Mount targets are resolved **inside the rootfs** with `openat2(RESOLVE_IN_ROOT)`, so a
//! symlink in the image cannot send a mount outside the rootfs; the mount is then made on the
//! resolved `O_PATH` fd through `/proc/self/fd/N`.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::mount::{umount2, MntFlags, MsFlags};
use nix::NixPath;
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};

use crate::bail;
use crate::error::{Context, Error, Result};

/// `/proc/self/fd/<fd>`: a path the kernel resolves to exactly what `fd` refers to.
pub fn fd_path(fd: RawFd) -> String {
    format!("/proc/self/fd/{fd}")
}

fn cstr(p: &str) -> Result<CString> {
    CString::new(p).map_err(|_| Error::new(libc::EINVAL, format!("path `{p}` contains NUL")))
}

/// `mount(2)` through nix, with "none" for a missing filesystem type: the kernel ignores the
/// type for bind, remount and propagation changes, but a NULL one is reported by valgrind as an
/// unaddressable string (and a C caller under valgrind must stay clean).
fn mount<P1, P2, P3, P4>(
    source: Option<&P1>,
    target: &P2,
    fstype: Option<&P3>,
    flags: MsFlags,
    data: Option<&P4>,
) -> nix::Result<()>
where
    P1: ?Sized + NixPath,
    P2: ?Sized + NixPath,
    P3: ?Sized + NixPath,
    P4: ?Sized + NixPath,
{
    match fstype {
        Some(t) => nix::mount::mount(source, target, Some(t), flags, data),
        None => nix::mount::mount(source, target, Some("none"), flags, data),
    }
}

/// Set once openat2 is known to be missing (ENOSYS: old kernel, valgrind).
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// `openat2(dirfd, path, flags, RESOLVE_IN_ROOT)`; without openat2 (ENOSYS, or EPERM from a
/// seccomp filter) the same resolution done in user space by [`open_in_root_fallback`].
pub fn openat2_in_root(root: RawFd, path: &str, flags: i32, mode: u32) -> Result<OwnedFd> {
    if NO_OPENAT2.load(Ordering::Relaxed) {
        return open_in_root_fallback(root, path, flags, mode);
    }
    match openat2_syscall(root, path, flags, mode) {
        Err(e) if e.errno() == libc::ENOSYS => {
            NO_OPENAT2.store(true, Ordering::Relaxed);
            open_in_root_fallback(root, path, flags, mode)
        }
        Err(e) if e.errno() == libc::EPERM => open_in_root_fallback(root, path, flags, mode),
        r => r,
    }
}

/// The most symlinks one resolution follows (the kernel's limit).
const MAX_LINKS: u32 = 40;

/// `openat(fd, name, flags | O_CLOEXEC, mode)` retried on EINTR.
fn openat_raw(fd: RawFd, name: &str, flags: i32, mode: u32) -> std::io::Result<OwnedFd> {
    let c = CString::new(name).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    loop {
        // SAFETY: c lives across the call; openat returns a new fd or -1.
        let r = unsafe { libc::openat(fd, c.as_ptr(), flags | libc::O_CLOEXEC, mode) };
        if r >= 0 {
            // SAFETY: a fresh fd we now own.
            return Ok(unsafe { OwnedFd::from_raw_fd(r) });
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// Resolve `path` under `root` like `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, one
/// component at a time with `O_PATH | O_NOFOLLOW`: `..` never climbs above `root`, a symlink's
/// target is resolved relative to its directory (an absolute one from `root`), at most
/// [`MAX_LINKS`] symlinks are followed (then ELOOP).  A trailing symlink is followed unless
/// `flags` has `O_NOFOLLOW`; with `O_CREAT` a missing last component is created.
pub fn open_in_root_fallback(root: RawFd, path: &str, flags: i32, mode: u32) -> Result<OwnedFd> {
    resolve_in_root(root, path, flags, mode).map_err(|e| {
        Error::new(
            e.raw_os_error().unwrap_or(libc::EIO),
            format!("open `{path}` in the rootfs"),
        )
    })
}

fn resolve_in_root(root: RawFd, path: &str, flags: i32, mode: u32) -> std::io::Result<OwnedFd> {
    let err = |n| std::io::Error::from_raw_os_error(n);
    let walk = libc::O_PATH | libc::O_NOFOLLOW;
    // stack[0] is the root; each further entry a directory (or, last, the target) with its name.
    let mut stack: Vec<(OwnedFd, String)> = vec![(openat_raw(root, ".", walk, 0)?, String::new())];
    let mut todo: std::collections::VecDeque<String> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
        .collect();
    let mut links = 0u32;
    while let Some(name) = todo.pop_front() {
        if name == "." {
            continue;
        }
        if name == ".." {
            if stack.len() > 1 {
                stack.pop();
            }
            continue;
        }
        let last = todo.is_empty();
        let top = match stack.last() {
            Some((fd, _)) => fd.as_raw_fd(),
            None => return Err(err(libc::EINVAL)),
        };
        let fd = match openat_raw(top, &name, walk, 0) {
            Ok(fd) => fd,
            Err(e)
                if last && e.raw_os_error() == Some(libc::ENOENT) && flags & libc::O_CREAT != 0 =>
            {
                return openat_raw(top, &name, flags | libc::O_NOFOLLOW, mode);
            }
            Err(e) => return Err(e),
        };
        let st = nix::sys::stat::fstat(fd.as_raw_fd()).map_err(|e| err(e as i32))?;
        if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
            if last && flags & libc::O_NOFOLLOW != 0 {
                // The link itself, as openat would give it.
                return openat_raw(top, &name, flags, mode);
            }
            links += 1;
            if links > MAX_LINKS {
                return Err(err(libc::ELOOP));
            }
            let target =
                nix::fcntl::readlinkat(Some(fd.as_raw_fd()), "").map_err(|e| err(e as i32))?;
            let target = target.to_string_lossy().into_owned();
            if target.starts_with('/') {
                stack.truncate(1);
            }
            for c in target.split('/').rev().filter(|c| !c.is_empty()) {
                todo.push_front(c.to_string());
            }
            continue;
        }
        if !last && st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            return Err(err(libc::ENOTDIR));
        }
        stack.push((fd, name));
    }
    // Reopen the target with the caller's flags, by name from its parent (never following a
    // symlink: the target is not one), or the root itself as ".".
    let (fd, name) = stack.pop().ok_or_else(|| err(libc::EINVAL))?;
    if flags & libc::O_DIRECTORY != 0 {
        let st = nix::sys::stat::fstat(fd.as_raw_fd()).map_err(|e| err(e as i32))?;
        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            return Err(err(libc::ENOTDIR));
        }
    }
    let flags = flags & !(libc::O_CREAT | libc::O_EXCL);
    let path_only = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC | libc::O_NOFOLLOW;
    match stack.last() {
        None => openat_raw(fd.as_raw_fd(), ".", flags, 0),
        Some(_) if flags & libc::O_PATH != 0 && flags & !path_only == 0 => Ok(fd),
        Some((parent, _)) => openat_raw(parent.as_raw_fd(), &name, flags | libc::O_NOFOLLOW, 0),
    }
}

fn openat2_syscall(root: RawFd, path: &str, flags: i32, mode: u32) -> Result<OwnedFd> {
    let c = cstr(path)?;
    // SAFETY: open_how is plain data; zeroed is a valid value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.mode = if flags & libc::O_CREAT != 0 {
        mode as u64
    } else {
        0
    };
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    loop {
        // SAFETY: c and how live across the call; the kernel reads sizeof(how) bytes.
        let r = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                root,
                c.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if r >= 0 {
            // SAFETY: the syscall returned a fresh fd we now own.
            return Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) });
        }
        let e = Error::last_os_error(format!("open `{path}` in the rootfs"));
        if e.errno() != libc::EINTR && e.errno() != libc::EAGAIN {
            return Err(e);
        }
    }
}

/// The components of `p` relative to the root (no `.`/`..` handling beyond the kernel's
/// in-root resolution).
fn rel_components(p: &Path) -> Vec<String> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".to_string()),
            _ => None,
        })
        .collect()
}

/// Create every directory of `path` under `root` (resolved in root) and return an `O_PATH` fd
/// to the last one.
pub fn mkdir_all_in_root(root: RawFd, path: &Path) -> Result<OwnedFd> {
    mkdir_all_depth(root, path, 0)
}

fn mkdir_all_depth(root: RawFd, path: &Path, depth: u32) -> Result<OwnedFd> {
    if depth > 40 {
        bail!(
            libc::ELOOP,
            "mkdir `{}`: too many levels of symbolic links",
            path.display()
        );
    }
    let comps = rel_components(path);
    let mut cur = String::from(".");
    let mut fd = openat2_in_root(root, ".", libc::O_PATH | libc::O_DIRECTORY, 0)?;
    for c in comps {
        let next = format!("{cur}/{c}");
        match openat2_in_root(root, &next, libc::O_PATH | libc::O_DIRECTORY, 0) {
            Ok(f) => fd = f,
            Err(e) if e.errno() == libc::ENOENT => {
                let name = cstr(&c)?;
                // SAFETY: fd is a directory fd; name is NUL-terminated.
                let r = unsafe { libc::mkdirat(fd.as_raw_fd(), name.as_ptr(), 0o755) };
                if r < 0 {
                    let e = Error::last_os_error(format!("mkdir `{}`", path.display()));
                    if e.errno() != libc::EEXIST {
                        return Err(e);
                    }
                    // A dangling symlink: create its target, resolved inside the root.
                    if let Ok(link) = nix::fcntl::readlinkat(Some(fd.as_raw_fd()), c.as_str()) {
                        let link = PathBuf::from(link);
                        let target = if link.is_absolute() {
                            link
                        } else {
                            PathBuf::from(&cur).join(link)
                        };
                        mkdir_all_depth(root, &target, depth + 1)?;
                    }
                }
                fd = openat2_in_root(root, &next, libc::O_PATH | libc::O_DIRECTORY, 0)
                    .with_context(|| format!("mkdir `{}`", path.display()))?;
            }
            Err(e) => return Err(e.wrap(format!("mkdir `{}`", path.display()))),
        }
        cur = next;
    }
    Ok(fd)
}

/// Resolve `dest` in root, creating it (a directory, or an empty file when `dir` is false)
/// when missing.  Returns an `O_PATH` fd.
pub fn create_target(root: RawFd, dest: &Path, dir: bool) -> Result<OwnedFd> {
    let rel = dest.to_string_lossy();
    let rel = rel.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    match openat2_in_root(root, rel, libc::O_PATH, 0) {
        Ok(f) => return Ok(f),
        Err(e) if e.errno() != libc::ENOENT => return Err(e),
        Err(_) => {}
    }
    if dir {
        return mkdir_all_in_root(root, dest);
    }
    let parent = dest.parent().unwrap_or(Path::new("/"));
    let pfd = mkdir_all_in_root(root, parent)?;
    let name = dest
        .file_name()
        .ok_or_else(|| Error::new(libc::EINVAL, format!("invalid path `{}`", dest.display())))?;
    let name = cstr(&name.to_string_lossy())?;
    // Reopen the parent as a real directory fd to create the file in it.
    let dfd = openat2_in_root(pfd.as_raw_fd(), ".", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    // SAFETY: dfd is a directory fd; name is NUL-terminated.
    let r = unsafe {
        libc::openat(
            dfd.as_raw_fd(),
            name.as_ptr(),
            libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            0o644,
        )
    };
    if r < 0 {
        let e = Error::last_os_error(format!("create `{}`", dest.display()));
        if e.errno() != libc::EEXIST {
            return Err(e);
        }
    } else {
        // SAFETY: r is a fresh fd.
        drop(unsafe { OwnedFd::from_raw_fd(r) });
    }
    openat2_in_root(root, rel, libc::O_PATH, 0)
}

/// Parsed mount options.
#[derive(Debug, Clone)]
pub struct MountOpts {
    pub flags: MsFlags,
    pub clear: MsFlags,
    pub propagation: MsFlags,
    pub data: Vec<String>,
    pub bind: bool,
    pub recursive: bool,
}

/// The propagation flags of `private`, `shared`, `slave`, `unbindable` and their recursive
/// `r`-prefixed forms; `None` for any other option.
fn propagation_flags(o: &str) -> Option<MsFlags> {
    let (recursive, base) = match o.strip_prefix('r') {
        Some(b @ ("private" | "shared" | "slave" | "unbindable")) => (true, b),
        _ => (false, o),
    };
    let flags = match base {
        "private" => MsFlags::MS_PRIVATE,
        "shared" => MsFlags::MS_SHARED,
        "slave" => MsFlags::MS_SLAVE,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        _ => return None,
    };
    Some(if recursive {
        flags | MsFlags::MS_REC
    } else {
        flags
    })
}

/// Split OCI mount options into flags, propagation and fs data.
pub fn parse_options(opts: &[String]) -> MountOpts {
    let mut m = MountOpts {
        flags: MsFlags::empty(),
        clear: MsFlags::empty(),
        propagation: MsFlags::empty(),
        data: Vec::new(),
        bind: false,
        recursive: false,
    };
    for o in opts {
        if let Some(p) = propagation_flags(o) {
            m.propagation = p;
            continue;
        }
        let (set, clear): (MsFlags, MsFlags) = match o.as_str() {
            "ro" | "rro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" | "rrw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" | "rnosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" | "rsuid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" | "rnodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" | "rdev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" | "rnoexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" | "rexec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" | "ratime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" | "rnoatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" | "rdiratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" | "rnodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" | "rrelatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" | "rnorelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" | "rstrictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" | "rnostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "bind" => {
                m.bind = true;
                continue;
            }
            "rbind" => {
                m.bind = true;
                m.recursive = true;
                continue;
            }
            // Options crun accepts that have no mount(2) meaning here.
            "tmpcopyup" | "notmpcopyup" | "copy-symlink" | "src-nofollow" | "dest-nofollow"
            | "defaults" => continue,
            _ => {
                m.data.push(o.clone());
                continue;
            }
        };
        m.flags |= set;
        m.flags &= !clear;
        m.clear |= clear;
    }
    m
}

/// The statvfs flags of `path` that a bind remount must keep (locked in a user namespace).
fn locked_flags(path: &str) -> MsFlags {
    let Ok(c) = cstr(path) else {
        return MsFlags::empty();
    };
    // SAFETY: statvfs writes into a zeroed struct.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is NUL-terminated and s is valid.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return MsFlags::empty();
    }
    let mut f = MsFlags::empty();
    if s.f_flag & libc::ST_NOSUID != 0 {
        f |= MsFlags::MS_NOSUID;
    }
    if s.f_flag & libc::ST_NODEV != 0 {
        f |= MsFlags::MS_NODEV;
    }
    if s.f_flag & libc::ST_NOEXEC != 0 {
        f |= MsFlags::MS_NOEXEC;
    }
    f
}

fn do_mount(
    src: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
    what: &Path,
) -> Result<()> {
    mount(src, target, fstype, flags, data)
        .with_context(|| format!("mount `{}` to `{}`", src.unwrap_or("none"), what.display()))
}

/// Whether the host's `/sys/fs/cgroup` is a pure cgroup2 mount.
fn host_is_cgroup2() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}

/// Everything the mount phase needs to know.
pub struct RootfsSetup<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub terminal: bool,
    pub in_userns: bool,
    /// The container has its own cgroup namespace (fresh cgroup mounts show its roots).
    pub cgroupns: bool,
}

/// Prepare the rootfs before `pivot_root`: propagation, bind of the rootfs on itself, the OCI
/// mounts, devices and `/dev` symlinks.  Returns an `O_PATH` fd to the rootfs mount.
pub fn prepare_rootfs(s: &RootfsSetup<'_>) -> Result<OwnedFd> {
    // Nothing we do may propagate back to the host.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .context("make `/` a recursive slave mount")?;
    let rootfs_s = s.rootfs.to_string_lossy().into_owned();
    let meta =
        std::fs::metadata(s.rootfs).with_context(|| format!("rootfs `{}`", s.rootfs.display()))?;
    if !meta.is_dir() {
        bail!(
            libc::ENOTDIR,
            "rootfs `{}` is not a directory",
            s.rootfs.display()
        );
    }
    do_mount(
        Some(&rootfs_s),
        &rootfs_s,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
        s.rootfs,
    )?;
    let prop = match s
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().clone())
        .as_deref()
    {
        Some("shared") => MsFlags::MS_SHARED,
        Some("rshared") => MsFlags::MS_SHARED | MsFlags::MS_REC,
        Some("slave") => MsFlags::MS_SLAVE,
        Some("rslave") => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        Some("unbindable") => MsFlags::MS_UNBINDABLE,
        Some("runbindable") => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        Some("private") => MsFlags::MS_PRIVATE,
        _ => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
    };
    mount(
        None::<&str>,
        rootfs_s.as_str(),
        None::<&str>,
        prop,
        None::<&str>,
    )
    .context("set rootfs propagation")?;
    let root = nix::fcntl::open(
        s.rootfs,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("open rootfs `{}`", s.rootfs.display()))?;
    // SAFETY: open returned a fresh fd.
    let root = unsafe { OwnedFd::from_raw_fd(root) };

    let mut has_dev = false;
    for m in s.spec.mounts().as_deref().unwrap_or(&[]) {
        if m.destination() == Path::new("/dev") {
            has_dev = true;
        }
        do_spec_mount(s, root.as_raw_fd(), m)
            .with_context(|| format!("mount `{}`", m.destination().display()))?;
    }
    create_devices(s, root.as_raw_fd(), has_dev)?;
    Ok(root)
}

fn do_spec_mount(s: &RootfsSetup<'_>, root: RawFd, m: &Mount) -> Result<()> {
    let opts = parse_options(m.options().as_deref().unwrap_or(&[]));
    let typ = m.typ().as_deref().unwrap_or("");
    let bind = opts.bind || typ == "bind";
    let dest = m.destination();
    if !dest.is_absolute() {
        bail!(
            libc::EINVAL,
            "invalid mount destination `{}`: not absolute",
            dest.display()
        );
    }
    let src = m.source().as_ref().map(|p| {
        if bind && p.is_relative() {
            s.bundle.join(p)
        } else {
            p.to_path_buf()
        }
    });
    if bind {
        let src = src.ok_or_else(|| Error::new(libc::EINVAL, "bind mount without a source"))?;
        let src_s = src.to_string_lossy().into_owned();
        let st = std::fs::metadata(&src).with_context(|| format!("stat `{src_s}`"))?;
        let target = create_target(root, dest, st.is_dir())?;
        let tp = fd_path(target.as_raw_fd());
        let mut f = MsFlags::MS_BIND;
        if opts.recursive {
            f |= MsFlags::MS_REC;
        }
        do_mount(Some(&src_s), &tp, None, f, None, dest)?;
        // The new mount is on top of the fd's mount: reopen to reach it.
        let target = create_target(root, dest, st.is_dir())?;
        let tp = fd_path(target.as_raw_fd());
        let extra = opts.flags
            & (MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC
                | MsFlags::MS_NOATIME
                | MsFlags::MS_NODIRATIME
                | MsFlags::MS_RELATIME
                | MsFlags::MS_STRICTATIME);
        if !extra.is_empty() {
            let keep = locked_flags(&tp);
            do_mount(
                None,
                &tp,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | extra | keep,
                None,
                dest,
            )?;
        }
        if !opts.propagation.is_empty() {
            do_mount(None, &tp, None, opts.propagation, None, dest)?;
        }
        return Ok(());
    }
    let data = opts.data.join(",");
    let data = (!data.is_empty()).then_some(data);
    let target = create_target(root, dest, true)?;
    let tp = fd_path(target.as_raw_fd());
    let src_s = src
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| typ.to_string());
    let flags = opts.flags & !MsFlags::MS_REMOUNT;
    let r = match typ {
        "cgroup" | "cgroup2" => {
            if host_is_cgroup2() {
                do_mount(Some("cgroup2"), &tp, Some("cgroup2"), flags, None, dest)
            } else {
                mount_cgroup_v1(root, dest, flags, s.cgroupns)
            }
        }
        _ => do_mount(Some(&src_s), &tp, Some(typ), flags, data.as_deref(), dest),
    };
    match r {
        Ok(()) => {}
        // Without a network (or IPC) namespace of its own, or in a user namespace, sysfs and
        // mqueue cannot be mounted fresh: bind the host's, as crun does.
        Err(e)
            if (typ == "sysfs" || typ == "mqueue")
                && (e.errno() == libc::EPERM || e.errno() == libc::EBUSY) =>
        {
            let host = if typ == "sysfs" {
                "/sys"
            } else {
                "/dev/mqueue"
            };
            do_mount(
                Some(host),
                &tp,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
                dest,
            )?;
            let target = create_target(root, dest, true)?;
            let tp = fd_path(target.as_raw_fd());
            let extra = flags & (MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV);
            if !extra.is_empty() {
                let keep = locked_flags(&tp);
                do_mount(
                    None,
                    &tp,
                    None,
                    MsFlags::MS_BIND | MsFlags::MS_REMOUNT | extra | keep,
                    None,
                    dest,
                )?;
            }
        }
        Err(e) => return Err(e),
    }
    if !opts.propagation.is_empty() {
        let target = create_target(root, dest, true)?;
        do_mount(
            None,
            &fd_path(target.as_raw_fd()),
            None,
            opts.propagation,
            None,
            dest,
        )?;
    }
    Ok(())
}

/// The host's cgroup hierarchies under `/sys/fs/cgroup`: (directory name, fs type, options).
fn host_cgroup_mounts() -> Vec<(String, String, String)> {
    let Ok(mi) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in mi.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let f: Vec<&str> = left.split_whitespace().collect();
        let r: Vec<&str> = right.split_whitespace().collect();
        if f.len() < 5 || r.len() < 3 {
            continue;
        }
        let Some(name) = f[4].strip_prefix("/sys/fs/cgroup/") else {
            continue;
        };
        if name.contains('/') || (r[0] != "cgroup" && r[0] != "cgroup2") {
            continue;
        }
        let opts: Vec<&str> = r[2]
            .split(',')
            .filter(|o| *o != "rw" && *o != "ro")
            .collect();
        out.push((name.to_string(), r[0].to_string(), opts.join(",")));
    }
    out
}

/// This process's path in the v1 hierarchy with `opts` (or the v2 one for `""`).
fn own_cgroup(opts: &str) -> Option<String> {
    let s = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    s.lines().find_map(|l| {
        let mut it = l.splitn(3, ':');
        let (_, ctrls, path) = (it.next()?, it.next()?, it.next()?);
        let same = if opts.is_empty() {
            ctrls.is_empty()
        } else {
            let mut a: Vec<&str> = ctrls.split(',').collect();
            let mut b: Vec<&str> = opts.split(',').collect();
            a.sort_unstable();
            b.sort_unstable();
            a == b
        };
        same.then(|| path.to_string())
    })
}

/// The OCI `cgroup` mount on a v1/hybrid host: a tmpfs with one directory per hierarchy,
/// each showing the container's own cgroup (a fresh mount inside a cgroup namespace, else a
/// bind of the container's cgroup directory), plus crun's `cpu` → `cpu,cpuacct` symlinks.
fn mount_cgroup_v1(root: RawFd, dest: &Path, flags: MsFlags, cgroupns: bool) -> Result<()> {
    let base = create_target(root, dest, true)?;
    do_mount(
        Some("tmpfs"),
        &fd_path(base.as_raw_fd()),
        Some("tmpfs"),
        flags & !MsFlags::MS_RDONLY,
        Some("mode=755"),
        dest,
    )?;
    let sub = flags & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    for (name, fstype, opts) in host_cgroup_mounts() {
        let d = dest.join(&name);
        let t = create_target(root, &d, true)?;
        let tp = fd_path(t.as_raw_fd());
        let v2 = fstype == "cgroup2";
        let key = if v2 { "" } else { opts.as_str() };
        if cgroupns {
            let data = (!v2).then_some(opts.as_str());
            do_mount(Some("cgroup"), &tp, Some(fstype.as_str()), sub, data, &d)?;
        } else {
            let Some(own) = own_cgroup(key) else { continue };
            let src = format!("/sys/fs/cgroup/{name}{own}");
            do_mount(Some(&src), &tp, None, MsFlags::MS_BIND, None, &d)?;
        }
        if flags.contains(MsFlags::MS_RDONLY) {
            let t = create_target(root, &d, true)?;
            let tp = fd_path(t.as_raw_fd());
            do_mount(
                None,
                &tp,
                None,
                MsFlags::MS_BIND
                    | MsFlags::MS_REMOUNT
                    | MsFlags::MS_RDONLY
                    | sub
                    | locked_flags(&tp),
                None,
                &d,
            )?;
        }
        // `cpu,cpuacct` is also reachable as `cpu` and `cpuacct`.
        if name.contains(',') {
            let dir = openat2_in_root(
                root,
                &dest.to_string_lossy(),
                libc::O_RDONLY | libc::O_DIRECTORY,
                0,
            )?;
            for part in name.split(',') {
                let (n, t) = (cstr(part)?, cstr(&name)?);
                // SAFETY: dir is a directory fd; both strings are NUL-terminated.
                unsafe { libc::symlinkat(t.as_ptr(), dir.as_raw_fd(), n.as_ptr()) };
            }
        }
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        let base = create_target(root, dest, true)?;
        do_mount(
            None,
            &fd_path(base.as_raw_fd()),
            None,
            MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | (flags & !MsFlags::MS_RDONLY),
            Some("mode=755"),
            dest,
        )?;
    }
    Ok(())
}

/// The devices every container gets (OCI "Default Devices").
const DEFAULT_DEVICES: &[(&str, u64, u64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/tty", 5, 0),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
];

fn create_devices(s: &RootfsSetup<'_>, root: RawFd, _has_dev: bool) -> Result<()> {
    let spec_devs: &[LinuxDevice] = s
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_deref())
        .unwrap_or(&[]);
    mkdir_all_in_root(root, Path::new("/dev"))?;
    for (path, maj, min) in DEFAULT_DEVICES {
        if spec_devs.iter().any(|d| d.path() == Path::new(path)) {
            continue;
        }
        make_device(
            root,
            Path::new(path),
            libc::S_IFCHR,
            *maj,
            *min,
            0o666,
            None,
            None,
            s.in_userns,
        )?;
    }
    for d in spec_devs {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
            LinuxDeviceType::B => libc::S_IFBLK,
            LinuxDeviceType::P => libc::S_IFIFO,
            LinuxDeviceType::A => bail!(
                libc::EINVAL,
                "invalid device type `a` for `{}`",
                d.path().display()
            ),
        };
        make_device(
            root,
            d.path(),
            kind,
            d.major() as u64,
            d.minor() as u64,
            d.file_mode().unwrap_or(0o666) & 0o7777,
            d.uid(),
            d.gid(),
            s.in_userns,
        )?;
    }
    let dev = openat2_in_root(root, "dev", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    let links: &[(&str, &str)] = &[
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ];
    for (name, target) in links {
        if *name == "ptmx" && spec_devs.iter().any(|d| d.path() == Path::new("/dev/ptmx")) {
            continue;
        }
        let n = cstr(name)?;
        let t = cstr(target)?;
        // SAFETY: dev is a directory fd; both strings are NUL-terminated.
        if unsafe { libc::symlinkat(t.as_ptr(), dev.as_raw_fd(), n.as_ptr()) } < 0 {
            let e = Error::last_os_error(format!("symlink `/dev/{name}`"));
            if e.errno() == libc::EEXIST {
                continue;
            }
            return Err(e);
        }
    }
    if s.terminal {
        create_target(root, Path::new("/dev/console"), false)?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn make_device(
    root: RawFd,
    path: &Path,
    kind: libc::mode_t,
    major: u64,
    minor: u64,
    mode: u32,
    uid: Option<u32>,
    gid: Option<u32>,
    in_userns: bool,
) -> Result<()> {
    let parent = path.parent().unwrap_or(Path::new("/dev"));
    let pfd = mkdir_all_in_root(root, parent)?;
    let dir = openat2_in_root(pfd.as_raw_fd(), ".", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    let name = path
        .file_name()
        .ok_or_else(|| Error::new(libc::EINVAL, format!("invalid device `{}`", path.display())))?;
    let cname = cstr(&name.to_string_lossy())?;
    // An existing entry (e.g. from the image) is replaced.
    // SAFETY: dir is a directory fd; cname is NUL-terminated.
    unsafe { libc::unlinkat(dir.as_raw_fd(), cname.as_ptr(), 0) };
    let dev = libc::makedev(major as u32, minor as u32);
    let r = if in_userns {
        -1
    } else {
        // SAFETY: as above.
        unsafe { libc::mknodat(dir.as_raw_fd(), cname.as_ptr(), kind | mode, dev) }
    };
    if r < 0 {
        let e = if in_userns {
            Error::new(libc::EPERM, "mknod in a user namespace")
        } else {
            Error::last_os_error(format!("mknod `{}`", path.display()))
        };
        if e.errno() != libc::EPERM || kind == libc::S_IFIFO {
            return Err(e);
        }
        // No CAP_MKNOD (user namespace): bind mount the host's device node.
        drop(dir);
        let t = create_target(root, path, false)?;
        let host = path.to_string_lossy().into_owned();
        do_mount(
            Some(&host),
            &fd_path(t.as_raw_fd()),
            None,
            MsFlags::MS_BIND,
            None,
            path,
        )?;
        return Ok(());
    }
    if uid.is_some() || gid.is_some() {
        // SAFETY: as above; -1 leaves an id unchanged.
        let r = unsafe {
            libc::fchownat(
                dir.as_raw_fd(),
                cname.as_ptr(),
                uid.map_or(u32::MAX, |u| u),
                gid.map_or(u32::MAX, |g| g),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if r < 0 {
            return Err(Error::last_os_error(format!("chown `{}`", path.display())));
        }
    }
    Ok(())
}

/// Make `root` the root of the mount namespace: `pivot_root`, or `MS_MOVE` + `chroot` when
/// `no_pivot` is set.
pub fn do_pivot(root: &OwnedFd, rootfs: &Path, no_pivot: bool) -> Result<()> {
    if no_pivot {
        nix::unistd::chdir(rootfs).with_context(|| format!("chdir `{}`", rootfs.display()))?;
        mount(
            Some(rootfs),
            "/",
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )
        .context("move the rootfs to `/`")?;
        nix::unistd::chroot(".").context("chroot")?;
        nix::unistd::chdir("/").context("chdir `/`")?;
        return Ok(());
    }
    nix::unistd::fchdir(root.as_raw_fd()).context("fchdir to the rootfs")?;
    nix::unistd::pivot_root(".", ".").context("pivot_root")?;
    umount2(".", MntFlags::MNT_DETACH).context("umount the old root")?;
    nix::unistd::chdir("/").context("chdir `/`")?;
    Ok(())
}

/// After the pivot: masked paths, read-only paths and a read-only root.
pub fn finalize(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    for p in linux
        .and_then(|l| l.masked_paths().as_deref())
        .unwrap_or(&[])
    {
        mask_path(p).with_context(|| format!("mask path `{p}`"))?;
    }
    for p in linux
        .and_then(|l| l.readonly_paths().as_deref())
        .unwrap_or(&[])
    {
        readonly_path(p).with_context(|| format!("make path `{p}` read-only"))?;
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        let keep = locked_flags("/");
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | keep,
            None::<&str>,
        )
        .context("remount the rootfs read-only")?;
    }
    Ok(())
}

fn mask_path(p: &str) -> Result<()> {
    let md = match std::fs::symlink_metadata(p) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).context(format!("stat `{p}`")),
    };
    if md.is_dir() {
        mount(
            Some("tmpfs"),
            p,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            Some("size=0k"),
        )
        .with_context(|| format!("mount tmpfs on `{p}`"))
    } else {
        mount(
            Some("/dev/null"),
            p,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .with_context(|| format!("bind `/dev/null` on `{p}`"))
    }
}

fn readonly_path(p: &str) -> Result<()> {
    match mount(
        Some(p),
        p,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    ) {
        Ok(()) => {}
        Err(nix::errno::Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e).context(format!("bind `{p}`")),
    }
    let keep = locked_flags(p);
    mount(
        None::<&str>,
        p,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | keep,
        None::<&str>,
    )
    .with_context(|| format!("remount `{p}` read-only"))
}

/// Bind the pty slave `pts` onto `/dev/console` (after the pivot).
pub fn bind_console(pts: &str) -> Result<()> {
    let p = PathBuf::from("/dev/console");
    if !p.exists() {
        std::fs::File::create(&p).context("create `/dev/console`")?;
    }
    mount(
        Some(pts),
        "/dev/console",
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .with_context(|| format!("bind `{pts}` on `/dev/console`"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn propagation_options() {
        use nix::mount::MsFlags as F;
        let p = |o: &str| super::parse_options(&[o.to_string()]).propagation;
        assert_eq!(p("private"), F::MS_PRIVATE);
        assert_eq!(p("rprivate"), F::MS_PRIVATE | F::MS_REC);
        assert_eq!(p("shared"), F::MS_SHARED);
        assert_eq!(p("rshared"), F::MS_SHARED | F::MS_REC);
        assert_eq!(p("slave"), F::MS_SLAVE);
        assert_eq!(p("rslave"), F::MS_SLAVE | F::MS_REC);
        assert_eq!(p("unbindable"), F::MS_UNBINDABLE);
        assert_eq!(p("runbindable"), F::MS_UNBINDABLE | F::MS_REC);
        assert_eq!(p("rbind"), F::empty());
        assert!(super::parse_options(&["rbind".to_string()]).recursive);
        assert_eq!(p("ro"), F::empty());
    }

    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt};

    /// (dev, ino) of what an fd refers to.
    fn id_of(fd: &OwnedFd) -> (u64, u64) {
        let st = nix::sys::stat::fstat(fd.as_raw_fd()).unwrap();
        (st.st_dev, st.st_ino)
    }

    fn id_of_path(p: &Path) -> (u64, u64) {
        let m = std::fs::symlink_metadata(p).unwrap();
        (m.dev(), m.ino())
    }

    /// The user-space RESOLVE_IN_ROOT fallback (used when openat2 is missing, e.g. under
    /// valgrind) gives the same answers as openat2: symlinks escaping with `..` and absolute
    /// symlinks stay in the root, loops end with ELOOP.
    #[test]
    fn open_in_root_fallback_stays_in_root() {
        let top = std::env::temp_dir().join(format!("crun-rs-inroot-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&top);
        let r = top.join("root");
        std::fs::create_dir_all(r.join("a/b")).unwrap();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::create_dir_all(top.join("etc")).unwrap();
        std::fs::write(r.join("a/b/file"), b"x").unwrap();
        std::fs::write(r.join("etc/passwd"), b"inside").unwrap();
        std::fs::write(top.join("etc/passwd"), b"outside").unwrap();
        symlink("/a/b", r.join("abs")).unwrap();
        symlink("../../../../../etc", r.join("a/up")).unwrap();
        symlink("/../../etc/passwd", r.join("abs_up")).unwrap();
        symlink("b/file", r.join("a/rel")).unwrap();
        symlink("loop2", r.join("loop1")).unwrap();
        symlink("loop1", r.join("loop2")).unwrap();
        symlink("missing", r.join("dangling")).unwrap();
        let root = nix::fcntl::open(
            &r,
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .unwrap();
        // SAFETY: a fresh fd.
        let root = unsafe { OwnedFd::from_raw_fd(root) };
        let rfd = root.as_raw_fd();
        let ok_cases: &[(&str, i32, &str)] = &[
            (".", libc::O_PATH, ""),
            ("/", libc::O_RDONLY | libc::O_DIRECTORY, ""),
            ("..", libc::O_PATH, ""),
            ("../../a/b", libc::O_PATH | libc::O_DIRECTORY, "a/b"),
            ("abs/file", libc::O_RDONLY, "a/b/file"),
            ("abs", libc::O_PATH | libc::O_NOFOLLOW, "abs"),
            ("a/up/passwd", libc::O_RDONLY, "etc/passwd"),
            ("abs_up", libc::O_RDONLY, "etc/passwd"),
            ("a/rel", libc::O_PATH, "a/b/file"),
            ("a/b/../../abs/./file", libc::O_PATH, "a/b/file"),
        ];
        let use_openat2 = openat2_syscall(rfd, ".", libc::O_PATH, 0).is_ok();
        for (p, flags, want) in ok_cases {
            let fd = open_in_root_fallback(rfd, p, *flags, 0)
                .unwrap_or_else(|e| panic!("fallback `{p}`: {e}"));
            assert_eq!(id_of(&fd), id_of_path(&r.join(want)), "fallback `{p}`");
            if use_openat2 {
                let fd2 = openat2_syscall(rfd, p, *flags, 0).unwrap();
                assert_eq!(id_of(&fd2), id_of(&fd), "openat2 vs fallback `{p}`");
            }
        }
        // Reads go through the reopened fd: the inside file, never the host's.
        let fd = open_in_root_fallback(rfd, "a/up/passwd", libc::O_RDONLY, 0).unwrap();
        let mut f = std::fs::File::from(fd);
        let mut s = String::new();
        std::io::Read::read_to_string(&mut f, &mut s).unwrap();
        assert_eq!(s, "inside");
        let err_cases: &[(&str, i32, i32)] = &[
            ("loop1", libc::O_PATH, libc::ELOOP),
            ("loop1/x", libc::O_PATH, libc::ELOOP),
            ("dangling", libc::O_PATH, libc::ENOENT),
            ("a/b/file/x", libc::O_PATH, libc::ENOTDIR),
            ("a/b/file", libc::O_PATH | libc::O_DIRECTORY, libc::ENOTDIR),
            ("nope/x", libc::O_PATH, libc::ENOENT),
        ];
        for (p, flags, errno) in err_cases {
            let e = open_in_root_fallback(rfd, p, *flags, 0).unwrap_err();
            assert_eq!(e.errno(), *errno, "fallback `{p}`: {e}");
            assert!(e.message().contains(p), "{e}");
            if use_openat2 {
                let e2 = openat2_syscall(rfd, p, *flags, 0).unwrap_err();
                assert_eq!(e2.errno(), *errno, "openat2 `{p}`: {e2}");
            }
        }
        // O_CREAT creates the last component inside the root, through an escaping symlink.
        let fd =
            open_in_root_fallback(rfd, "a/up/new", libc::O_CREAT | libc::O_WRONLY, 0o600).unwrap();
        drop(fd);
        assert!(r.join("etc/new").is_file());
        assert!(!top.join("etc/new").exists());
        // The public entry point falls back by itself once openat2 is known missing.
        NO_OPENAT2.store(true, Ordering::Relaxed);
        let fd = openat2_in_root(rfd, "abs/file", libc::O_PATH, 0);
        NO_OPENAT2.store(false, Ordering::Relaxed);
        assert_eq!(id_of(&fd.unwrap()), id_of_path(&r.join("a/b/file")));
        std::fs::remove_dir_all(&top).unwrap();
    }

    #[test]
    fn options_split_into_flags_propagation_and_data() {
        let o: Vec<String> = ["rbind", "ro", "nosuid", "rslave", "mode=755", "size=10k"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let m = parse_options(&o);
        assert!(m.bind && m.recursive);
        assert!(m.flags.contains(MsFlags::MS_RDONLY | MsFlags::MS_NOSUID));
        assert_eq!(m.propagation, MsFlags::MS_SLAVE | MsFlags::MS_REC);
        assert_eq!(m.data, vec!["mode=755".to_string(), "size=10k".to_string()]);
        let m = parse_options(&["ro".into(), "rw".into()]);
        assert!(!m.flags.contains(MsFlags::MS_RDONLY));
    }

    #[test]
    fn targets_resolve_inside_the_root() {
        let d = std::env::temp_dir().join(format!("crun-rs-mnt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("root/etc")).unwrap();
        // An absolute symlink pointing outside must resolve inside the root.
        std::os::unix::fs::symlink("/tmp-outside-xyz", d.join("root/escape")).unwrap();
        let root = std::fs::File::open(d.join("root")).unwrap();
        let fd = create_target(root.as_raw_fd(), Path::new("/escape/sub"), true).unwrap();
        drop(fd);
        assert!(d.join("root/tmp-outside-xyz/sub").is_dir());
        assert!(!Path::new("/tmp-outside-xyz").exists());
        let fd = create_target(root.as_raw_fd(), Path::new("/etc/x/file"), false).unwrap();
        drop(fd);
        assert!(d.join("root/etc/x/file").is_file());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
