//! The container process's last steps before `execve`: executable lookup, working directory,
//! rlimits, user and groups, capabilities, `noNewPrivileges`, umask, environment, fds.

use std::ffi::CString;
use std::os::fd::BorrowedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxCapabilities, Process};

use super::sync;
use crate::bail;
use crate::error::{Context, Error, Result};

/// The `PATH` used when the process environment has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The value of `name` in an `env` list.
pub fn env_get<'a>(env: &'a [String], name: &str) -> Option<&'a str> {
    env.iter()
        .rev()
        .find_map(|e| e.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
}

fn is_executable_file(p: &Path) -> Option<bool> {
    let md = std::fs::metadata(p).ok()?;
    Some(md.is_file() && md.permissions().mode() & 0o111 != 0)
}

/// Find `cmd` as crun's `find_executable` does: a name with a `/` is taken as is (relative to
/// `cwd`), otherwise each `$PATH` entry is tried.  Not found is ENOENT "executable file `x` not
/// found in $PATH"; found but not executable is EACCES.
pub fn find_executable(cmd: &str, path_env: Option<&str>, cwd: &Path) -> Result<PathBuf> {
    if cmd.is_empty() {
        bail!(libc::ENOENT, "executable file `` not found in $PATH");
    }
    if cmd.contains('/') {
        let p = if Path::new(cmd).is_absolute() {
            PathBuf::from(cmd)
        } else {
            cwd.join(cmd)
        };
        return match is_executable_file(&p) {
            Some(true) => Ok(PathBuf::from(cmd)),
            Some(false) => Err(Error::new(
                libc::EACCES,
                format!("open executable `{cmd}`: the file is not an executable regular file"),
            )),
            None => Err(Error::new(
                libc::ENOENT,
                format!("executable file `{cmd}` not found in $PATH"),
            )),
        };
    }
    let mut denied = false;
    for dir in path_env.unwrap_or(DEFAULT_PATH).split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let base = if Path::new(dir).is_absolute() {
            PathBuf::from(dir)
        } else {
            cwd.join(dir)
        };
        let p = base.join(cmd);
        match is_executable_file(&p) {
            Some(true) => return Ok(p),
            Some(false) => denied = true,
            None => {}
        }
    }
    if denied {
        bail!(
            libc::EACCES,
            "open executable `{cmd}`: no executable regular file in $PATH"
        );
    }
    bail!(libc::ENOENT, "executable file `{cmd}` not found in $PATH")
}

/// Apply `process.rlimits`.  When setrlimit says EPERM and `sock` (the sync socket) is given,
/// ask the parent to set the limit with prlimit: under valgrind the container process is still
/// emulated and setrlimit(RLIMIT_NOFILE) refuses every hard limit but valgrind's own; the
/// parent's prlimit on another pid reaches the kernel.  A real EPERM comes back from the parent.
pub fn apply_rlimits(p: &Process, sock: Option<BorrowedFd<'_>>) -> Result<()> {
    for r in p.rlimits().as_deref().unwrap_or(&[]) {
        let name = serde_json::to_value(r.typ())
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let res = rlimit_resource(&name)
            .ok_or_else(|| Error::new(libc::EINVAL, format!("unknown rlimit `{name}`")))?;
        let lim = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        // SAFETY: setrlimit reads a valid struct.
        if unsafe { libc::setrlimit(res, &lim) } < 0 {
            let e = Error::last_os_error(format!("setrlimit `{name}`"));
            match sock {
                Some(sock) if e.errno() == libc::EPERM => {
                    let req = format!("{} {} {} {name}", res, lim.rlim_cur, lim.rlim_max);
                    sync::send(sock, sync::Kind::Rlimit, 0, &req)?;
                    sync::expect(sock, sync::Kind::Go, "set rlimits")?;
                }
                _ => return Err(e),
            }
        }
    }
    Ok(())
}

/// The parent's side of a [`sync::Kind::Rlimit`] request: `prlimit(pid, ...)` with the
/// `resource soft hard name` the child sent.
pub fn set_rlimit_of(pid: i32, req: &str) -> Result<()> {
    let bad = || Error::new(libc::EPROTO, format!("invalid rlimit request `{req}`"));
    let mut it = req.split(' ');
    let res: libc::__rlimit_resource_t = it.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
    let cur: libc::rlim_t = it.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
    let max: libc::rlim_t = it.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
    let name = it.next().ok_or_else(bad)?;
    if rlimit_resource(name) != Some(res) {
        return Err(bad());
    }
    let lim = libc::rlimit {
        rlim_cur: cur,
        rlim_max: max,
    };
    // SAFETY: prlimit reads a valid struct; no old value is requested.
    if unsafe { libc::prlimit(pid, res, &lim, std::ptr::null_mut()) } < 0 {
        return Err(Error::last_os_error(format!("setrlimit `{name}`")));
    }
    Ok(())
}

/// Answer a [`sync::Kind::Rlimit`] request from the child `pid` on `sock`.
pub fn answer_rlimit(sock: BorrowedFd<'_>, pid: i32, req: &str) -> Result<()> {
    match set_rlimit_of(pid, req) {
        Ok(()) => sync::send(sock, sync::Kind::Go, 0, ""),
        Err(e) => sync::send_error(sock, &e),
    }
}

fn rlimit_resource(name: &str) -> Option<libc::__rlimit_resource_t> {
    Some(match name {
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        _ => return None,
    })
}

/// Write `process.oomScoreAdj`.
pub fn apply_oom_score_adj(p: &Process) -> Result<()> {
    if let Some(v) = p.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", v.to_string())
            .context("write `/proc/self/oom_score_adj`")?;
    }
    Ok(())
}

fn cap_set(list: &Option<oci_spec::runtime::Capabilities>) -> Result<caps::CapsHashSet> {
    let mut out = caps::CapsHashSet::new();
    for c in list.iter().flatten() {
        let name = serde_json::to_value(c)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let cap: caps::Capability = name
            .parse()
            .map_err(|_| Error::new(libc::EINVAL, format!("unknown capability `{name}`")))?;
        out.insert(cap);
    }
    Ok(out)
}

fn caps_err(e: caps::errors::CapsError, what: &str) -> Error {
    let errno = std::io::Error::last_os_error()
        .raw_os_error()
        .filter(|e| *e != 0)
        .unwrap_or(libc::EPERM);
    Error::new(errno, format!("{what}: {e}"))
}

/// Drop capabilities from the bounding set that are not listed (must run while still root).
pub fn apply_bounding(c: Option<&LinuxCapabilities>) -> Result<()> {
    let keep = match c {
        Some(c) => cap_set(c.bounding())?,
        None => caps::CapsHashSet::new(),
    };
    for cap in caps::all() {
        if keep.contains(&cap) {
            continue;
        }
        if let Err(e) = caps::drop(None, caps::CapSet::Bounding, cap) {
            // A capability this kernel does not know is fine.
            let errno = std::io::Error::last_os_error().raw_os_error();
            if errno == Some(libc::EINVAL) {
                continue;
            }
            return Err(caps_err(e, &format!("drop bounding capability `{cap}`")));
        }
    }
    Ok(())
}

/// Switch to the process user (groups, gid, uid) keeping capabilities across the switch.
pub fn apply_user(p: &Process) -> Result<()> {
    let u = p.user();
    let uid = u.uid();
    let gid = u.gid();
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) } < 0 {
        return Err(Error::last_os_error("prctl PR_SET_KEEPCAPS"));
    }
    let groups: Vec<libc::gid_t> = u.additional_gids().clone().unwrap_or_default();
    // SAFETY: groups is a valid slice of gids.
    if unsafe { libc::setgroups(groups.len(), groups.as_ptr()) } < 0 {
        let e = Error::last_os_error("setgroups");
        // In a user namespace with setgroups denied, only an empty list is acceptable.
        if !(e.errno() == libc::EPERM && groups.is_empty()) {
            return Err(e);
        }
    }
    // SAFETY: plain syscalls.
    if unsafe { libc::setresgid(gid, gid, gid) } < 0 {
        return Err(Error::last_os_error(format!("setresgid to `{gid}`")));
    }
    // SAFETY: plain syscalls.
    if unsafe { libc::setresuid(uid, uid, uid) } < 0 {
        return Err(Error::last_os_error(format!("setresuid to `{uid}`")));
    }
    Ok(())
}

/// Set the effective, permitted, inheritable and ambient sets (after [`apply_user`]).
pub fn apply_caps(c: Option<&LinuxCapabilities>) -> Result<()> {
    let (e, p, i, a) = match c {
        Some(c) => (
            cap_set(c.effective())?,
            cap_set(c.permitted())?,
            cap_set(c.inheritable())?,
            cap_set(c.ambient())?,
        ),
        None => Default::default(),
    };
    caps::set(None, caps::CapSet::Inheritable, &i)
        .map_err(|x| caps_err(x, "set inheritable capabilities"))?;
    caps::set(
        None,
        caps::CapSet::Effective,
        &e.intersection(&p).copied().collect(),
    )
    .map_err(|x| caps_err(x, "set effective capabilities"))?;
    caps::set(None, caps::CapSet::Permitted, &p)
        .map_err(|x| caps_err(x, "set permitted capabilities"))?;
    caps::set(None, caps::CapSet::Effective, &e)
        .map_err(|x| caps_err(x, "set effective capabilities"))?;
    // Ambient capabilities must be permitted and inheritable; skip the others as crun does.
    let amb: caps::CapsHashSet = a
        .into_iter()
        .filter(|c| p.contains(c) && i.contains(c))
        .collect();
    if caps::has_cap(None, caps::CapSet::Ambient, caps::Capability::CAP_CHOWN).is_ok() {
        caps::set(None, caps::CapSet::Ambient, &amb)
            .map_err(|x| caps_err(x, "set ambient capabilities"))?;
    }
    Ok(())
}

/// `prctl(PR_SET_NO_NEW_PRIVS)`.
pub fn set_no_new_privs() -> Result<()> {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } < 0 {
        return Err(Error::last_os_error("prctl PR_SET_NO_NEW_PRIVS"));
    }
    Ok(())
}

/// Look `uid` up in the container's `/etc/passwd` (already the root): its home directory.
pub fn home_for_uid(uid: u32) -> Option<String> {
    let s = std::fs::read_to_string("/etc/passwd").ok()?;
    s.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[5].to_string())
    })
}

/// Read `rel` below `root` with every symlink resolved inside `root` (a container's
/// `/etc/passwd` may be a symlink that must not lead to a host file).  Missing is empty.
fn read_in_root(root: &Path, rel: &str) -> String {
    use std::io::Read;
    let Ok(dir) = std::fs::File::open(root) else {
        return String::new();
    };
    use std::os::fd::AsRawFd;
    match super::mounts::openat2_in_root(dir.as_raw_fd(), rel, libc::O_RDONLY, 0) {
        Ok(fd) => {
            let mut s = String::new();
            let _ = std::fs::File::from(fd).read_to_string(&mut s);
            s
        }
        Err(_) => String::new(),
    }
}

/// Resolve a `--user` value (`uid[:gid]` or `name[:group]`) against an `/etc/passwd` and
/// `/etc/group` below `root`.
pub fn resolve_user(spec: &str, root: &Path) -> Result<(u32, u32)> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if u.is_empty() {
        bail!(libc::EINVAL, "invalid user `{spec}`");
    }
    let passwd = read_in_root(root, "etc/passwd");
    let (uid, default_gid) = match u.parse::<u32>() {
        Ok(uid) => {
            let gid = passwd.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 4 && f[2].parse::<u32>().ok() == Some(uid))
                    .then(|| f[3].parse::<u32>().ok())
                    .flatten()
            });
            (uid, gid.unwrap_or(0))
        }
        Err(_) => passwd
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 4 && f[0] == u).then(|| {
                    (
                        f[2].parse::<u32>().unwrap_or(0),
                        f[3].parse::<u32>().unwrap_or(0),
                    )
                })
            })
            .ok_or_else(|| {
                Error::new(
                    libc::ENOENT,
                    format!("cannot find user `{u}` in the container's /etc/passwd"),
                )
            })?,
    };
    let gid = match g {
        None => default_gid,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                let group = read_in_root(root, "etc/group");
                group
                    .lines()
                    .find_map(|l| {
                        let f: Vec<&str> = l.split(':').collect();
                        (f.len() >= 3 && f[0] == g)
                            .then(|| f[2].parse::<u32>().ok())
                            .flatten()
                    })
                    .ok_or_else(|| {
                        Error::new(
                            libc::ENOENT,
                            format!("cannot find group `{g}` in the container's /etc/group"),
                        )
                    })?
            }
        },
    };
    Ok((uid, gid))
}

/// Make fds `3..3+preserve` inheritable and every fd above close-on-exec.
pub fn prepare_fds(preserve: i32) -> Result<()> {
    let first = 3 + preserve.max(0) as u32;
    for fd in 3..first {
        // SAFETY: fcntl on an fd number; EBADF is ignored.
        unsafe {
            let fl = libc::fcntl(fd as i32, libc::F_GETFD);
            if fl >= 0 {
                libc::fcntl(fd as i32, libc::F_SETFD, fl & !libc::FD_CLOEXEC);
            }
        }
    }
    // SAFETY: close_range with CLOEXEC only sets flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r < 0 {
        return Err(Error::last_os_error("close_range"));
    }
    Ok(())
}

/// `execve(path, args, env)`; returns only on failure.
pub fn exec(path: &Path, args: &[String], env: &[String]) -> Error {
    let c = |s: &str| CString::new(s.replace('\0', "")).unwrap_or_default();
    let p = c(&path.to_string_lossy());
    let argv: Vec<CString> = args.iter().map(|a| c(a)).collect();
    let envv: Vec<CString> = env.iter().map(|a| c(a)).collect();
    let mut ap: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ap.push(std::ptr::null());
    let mut ep: Vec<*const libc::c_char> = envv.iter().map(|a| a.as_ptr()).collect();
    ep.push(std::ptr::null());
    // SAFETY: all pointers are valid NUL-terminated strings in NULL-terminated arrays.
    unsafe { libc::execve(p.as_ptr(), ap.as_ptr(), ep.as_ptr()) };
    let e = Error::last_os_error("");
    if e.errno() == libc::ENOENT {
        Error::new(
            libc::ENOENT,
            format!(
                "exec container process (missing dynamic library?) `{}`",
                path.display()
            ),
        )
    } else {
        Error::new(
            e.errno(),
            format!("exec container process `{}`", path.display()),
        )
    }
}

/// The identity and privilege steps shared by the container init and `exec`, in crun's order:
/// the seccomp filter first when `noNewPrivileges` is off (loading it then needs
/// CAP_SYS_ADMIN, which is still held), the bounding set, user and groups, capabilities,
/// `no_new_privs`, umask.  Returns `env` with `HOME` set from the container's passwd when the
/// spec does not set it.  With `noNewPrivileges` the filter stays in `seccomp` for the caller
/// to load as the last step before `execve`.
pub(crate) fn apply_identity(
    p: &Process,
    seccomp: &mut Option<super::glue::seccomp::Filter>,
    mut env: Vec<String>,
) -> Result<Vec<String>> {
    let nnp = p.no_new_privileges().unwrap_or(false);
    if !nnp {
        if let Some(f) = seccomp.take() {
            super::glue::seccomp::apply(f)?;
        }
    }
    let caps = p.capabilities().as_ref();
    apply_bounding(caps)?;
    apply_user(p)?;
    apply_caps(caps)?;
    if nnp {
        set_no_new_privs()?;
    }
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(p.user().umask().unwrap_or(0o022) as libc::mode_t) };
    if env_get(&env, "HOME").is_none() {
        let home = home_for_uid(p.user().uid()).unwrap_or_else(|| "/".into());
        env.push(format!("HOME={home}"));
    }
    Ok(env)
}

/// Create the pty from the calling process's `/dev/ptmx` (the container's own devpts), send
/// the master to the parent over the sync socket at once (every later step may fail, and a
/// monitor waiting on the console socket must get the fd before the error: crun #1524, runc's
/// ordering), then make the slave stdio and the controlling tty and give it to the process
/// user.  Shared by the container init and `exec --tty`.  Returns the slave's path.
pub(crate) fn hand_over_terminal(p: &Process, sock: BorrowedFd<'_>) -> Result<String> {
    use super::glue;
    use std::os::fd::AsFd;
    let (master, pts) = glue::console::new_terminal().context("create the terminal")?;
    sync::send(sock, sync::Kind::Terminal, 0, &pts)?;
    glue::console::send_fd(sock, master.as_fd(), b" ").context("send the terminal fd")?;
    drop(master);
    glue::console::set_stdio(&pts)?;
    let uid = p.user().uid();
    if uid != 0 {
        nix::unistd::chown(pts.as_str(), Some(nix::unistd::Uid::from_raw(uid)), None)
            .with_context(|| format!("chown `{pts}`"))?;
    }
    Ok(pts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executable_lookup() {
        let p = find_executable("sh", Some("/nonexistent:/bin:/usr/bin"), Path::new("/")).unwrap();
        assert!(p.ends_with("sh"));
        let e = find_executable("no-such-cmd-xyz", Some("/bin"), Path::new("/")).unwrap_err();
        assert_eq!(e.errno(), libc::ENOENT);
        assert_eq!(
            e.to_string(),
            "executable file `no-such-cmd-xyz` not found in $PATH: No such file or directory"
        );
        let e = find_executable("/nonexistent/x", None, Path::new("/")).unwrap_err();
        assert_eq!(e.errno(), libc::ENOENT);
        let e = find_executable("/etc/passwd", None, Path::new("/")).unwrap_err();
        assert_eq!(e.errno(), libc::EACCES);
    }

    #[test]
    fn env_lookup_takes_the_last_value() {
        let env = vec!["PATH=/a".to_string(), "X=1".into(), "PATH=/b".into()];
        assert_eq!(env_get(&env, "PATH"), Some("/b"));
        assert_eq!(env_get(&env, "PAT"), None);
    }

    #[test]
    fn users_resolve_from_passwd() {
        let d = std::env::temp_dir().join(format!("crun-rs-user-{}", std::process::id()));
        std::fs::create_dir_all(d.join("etc")).unwrap();
        std::fs::write(
            d.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\ntest:x:1000:1001::/home/test:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(d.join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        assert_eq!(resolve_user("test", &d).unwrap(), (1000, 1001));
        assert_eq!(resolve_user("1000", &d).unwrap(), (1000, 1001));
        assert_eq!(resolve_user("5:6", &d).unwrap(), (5, 6));
        assert_eq!(resolve_user("test:staff", &d).unwrap(), (1000, 50));
        assert_eq!(
            resolve_user("nobody-x", &d).unwrap_err().errno(),
            libc::ENOENT
        );
        assert_eq!(
            resolve_user("0:nogroup", &d).unwrap_err().errno(),
            libc::ENOENT
        );
        // A symlinked passwd resolves inside the root, never to the host's file.
        let d2 = d.join("r2");
        std::fs::create_dir_all(d2.join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d2.join("etc/passwd")).unwrap();
        assert_eq!(resolve_user("root", &d2).unwrap_err().errno(), libc::ENOENT);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
