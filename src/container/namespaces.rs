//! Namespaces: which to create, which to join by path, and the user namespace id maps.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

use crate::bail;
use crate::error::{Context, Error, Result};

/// A namespace to join: its type and an open fd.
pub struct JoinNs {
    pub typ: LinuxNamespaceType,
    pub fd: OwnedFd,
    pub path: PathBuf,
}

/// The namespace plan for a container.
pub struct NsPlan {
    /// `CLONE_NEW*` flags for namespaces to create.
    pub clone_flags: u64,
    /// Namespaces to join, user namespace first; the pid namespace is joined by the parent
    /// around the clone (see `pid_join`).
    pub join: Vec<JoinNs>,
    /// A pid namespace to join.
    pub pid_join: Option<JoinNs>,
    /// Whether the container has its own (new or joined) user namespace.
    pub userns: bool,
    /// Whether a new user namespace is created (maps must be written).
    pub new_userns: bool,
    /// A new cgroup namespace: created by the container process with `unshare` once the
    /// parent has moved it into its cgroups, so those cgroups are the namespace's roots.
    pub new_cgroupns: bool,
}

/// The `CLONE_NEW*` flag of a namespace type.
pub fn clone_flag(t: LinuxNamespaceType) -> u64 {
    (match t {
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Time => 0x80,
    }) as u64
}

/// The name of a namespace under `/proc/<pid>/ns/`.
pub fn proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// Open a namespace file.
pub fn open_ns(path: &std::path::Path) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("open namespace `{}`", path.display()))?;
    // SAFETY: open returned a fresh fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Build the plan from `linux.namespaces`.
pub fn plan(spec: &Spec) -> Result<NsPlan> {
    let mut p = NsPlan {
        clone_flags: 0,
        join: Vec::new(),
        pid_join: None,
        userns: false,
        new_userns: false,
        new_cgroupns: false,
    };
    let nss = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    let mut seen = 0u64;
    for ns in &nss {
        let f = clone_flag(ns.typ());
        if seen & f != 0 {
            bail!(
                libc::EINVAL,
                "duplicate namespace `{}` in the configuration",
                proc_name(ns.typ())
            );
        }
        seen |= f;
        if ns.typ() == LinuxNamespaceType::User {
            p.userns = true;
        }
        match ns.path() {
            Some(path) if !path.as_os_str().is_empty() => {
                let j = JoinNs {
                    typ: ns.typ(),
                    fd: open_ns(path)?,
                    path: path.clone(),
                };
                if ns.typ() == LinuxNamespaceType::Pid {
                    p.pid_join = Some(j);
                } else if ns.typ() == LinuxNamespaceType::User {
                    p.join.insert(0, j);
                } else {
                    p.join.push(j);
                }
            }
            _ => {
                if ns.typ() == LinuxNamespaceType::User {
                    p.new_userns = true;
                }
                if ns.typ() == LinuxNamespaceType::Cgroup {
                    p.new_cgroupns = true;
                    continue;
                }
                p.clone_flags |= f;
            }
        }
    }
    if p.new_userns {
        let l = spec.linux().as_ref();
        let has_maps = l
            .and_then(|l| l.uid_mappings().as_ref())
            .is_some_and(|m| !m.is_empty());
        if !has_maps {
            bail!(
                libc::EINVAL,
                "a user namespace is configured without `linux.uidMappings`"
            );
        }
    }
    Ok(p)
}

/// Join one namespace (in the child).
pub fn join(j: &JoinNs) -> Result<()> {
    // SAFETY: setns on an fd we own.
    if unsafe { libc::setns(j.fd.as_raw_fd(), clone_flag(j.typ) as i32) } < 0 {
        return Err(Error::last_os_error(format!(
            "cannot setns `{}`",
            j.path.display()
        )));
    }
    Ok(())
}

fn map_text(m: &[LinuxIdMapping]) -> String {
    m.iter()
        .map(|x| format!("{} {} {}\n", x.container_id(), x.host_id(), x.size()))
        .collect()
}

/// Write `/proc/<pid>/{uid_map,setgroups,gid_map}` for a new user namespace (in the parent).
pub fn write_id_maps(spec: &Spec, pid: i32) -> Result<()> {
    let l = spec.linux().as_ref();
    let uid = l.and_then(|l| l.uid_mappings().clone()).unwrap_or_default();
    let gid = l.and_then(|l| l.gid_mappings().clone()).unwrap_or_default();
    std::fs::write(format!("/proc/{pid}/uid_map"), map_text(&uid))
        .with_context(|| format!("write `/proc/{pid}/uid_map`"))?;
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        let _ = std::fs::write(format!("/proc/{pid}/setgroups"), "deny");
    }
    if !gid.is_empty() {
        std::fs::write(format!("/proc/{pid}/gid_map"), map_text(&gid))
            .with_context(|| format!("write `/proc/{pid}/gid_map`"))?;
    }
    Ok(())
}

/// `clone3` with `flags` and no stack: returns 0 in the child, the pid in the parent.
pub fn clone_process(flags: u64) -> Result<i32> {
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
    }
    let args = CloneArgs {
        flags,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    // SAFETY: clone3 without CLONE_VM and without a stack behaves like fork(2): the child gets
    // a copy of the address space and continues from here.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if r >= 0 {
        return Ok(r as i32);
    }
    let e = Error::last_os_error("clone");
    if e.errno() != libc::ENOSYS || flags & 0x80 != 0 {
        return Err(e.wrap("clone the container process"));
    }
    // Kernels without clone3: clone(2) with fork semantics.
    // SAFETY: as above; a NULL stack makes the child share the stack copy like fork.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags as libc::c_ulong) | libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if r < 0 {
        return Err(Error::last_os_error("clone the container process"));
    }
    Ok(r as i32)
}

/// Create the container process with the namespaces in `flags`.  Returns 0 in the child and
/// the pid in the parent, plus the flags the child still has to `unshare` itself (first thing,
/// see `init`).
///
/// Without a new user namespace this goes through glibc's `fork()`, whose atfork handlers keep
/// malloc and stdio locks consistent in the child of a multithreaded caller (the C API may be
/// called with other threads running).  The pid and time namespaces, which only apply to
/// children, are entered by unsharing them around the fork and restoring the caller's
/// `*_for_children` namespaces right after.  With a new user namespace every namespace must be
/// created inside it, so `clone3` makes them at once.
pub fn spawn(flags: u64) -> Result<(i32, u64)> {
    if flags & libc::CLONE_NEWUSER as u64 != 0 {
        return clone_process(flags).map(|p| (p, 0));
    }
    let for_children = flags & (libc::CLONE_NEWPID as u64 | 0x80);
    let rest = flags & !for_children;
    let mut saved = Vec::new();
    if for_children != 0 {
        for (bit, name) in [(libc::CLONE_NEWPID as u64, "pid"), (0x80u64, "time")] {
            if for_children & bit != 0 {
                saved.push((bit, open_ns(Path::new(&format!("/proc/self/ns/{name}")))?));
            }
        }
        // SAFETY: unshare with namespace flags; only affects future children.
        if unsafe { libc::unshare(for_children as i32) } < 0 {
            return Err(Error::last_os_error("unshare the pid/time namespace"));
        }
    }
    // SAFETY: fork in a process that may be multithreaded: the child only continues into the
    // container setup, like crun's.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        return Ok((0, rest));
    }
    let err = (pid < 0).then(|| Error::last_os_error("fork the container process"));
    for (bit, fd) in &saved {
        // SAFETY: setns back into our own namespace (restores *_for_children).
        unsafe { libc::setns(fd.as_raw_fd(), *bit as i32) };
    }
    match err {
        Some(e) => Err(e),
        None => Ok((pid, rest)),
    }
}
