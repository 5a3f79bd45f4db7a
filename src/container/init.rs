//! The container process: everything between `clone` and `execve`.
//!
//! Order (crun ≥ 1.17 / runc): join namespaces → wait for the parent → hostname → mounts →
//! `pivot_root` → masked/read-only paths → `setsid` → **create the pty in the container's
//! devpts and send the master to the parent** → then every step that can fail on the user's
//! input (executable lookup, `chdir`, rlimits, user, capabilities) → `Ready` → wait for
//! `start` → seccomp → `execve`.  Any error before `execve` travels to the parent over the
//! sync socket as `{errno, full message}`.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::path::PathBuf;

use super::config::Container;
use super::glue;
use super::mounts;
use super::namespaces::NsPlan;
use super::process;
use super::sync::{self, Kind};
use crate::bail;
use crate::error::{Context, Error, Result};

/// What the container process needs.
pub struct InitArgs<'a> {
    pub container: &'a Container,
    pub rootfs: Option<PathBuf>,
    pub bundle: PathBuf,
    pub plan: &'a NsPlan,
    /// The container end of the sync socket (taken by [`run`]).
    pub sync: Option<OwnedFd>,
    /// Read end of the exec fifo (`create`): wait on it before `execve`.
    pub fifo: Option<RawFd>,
    pub no_pivot: bool,
    pub preserve_fds: i32,
    pub listen_fds: i32,
    pub no_new_keyring: bool,
    pub seccomp: Option<glue::seccomp::Filter>,
    /// Connected to `linux.seccomp.listenerPath` (before the mounts hide the host path): the
    /// user-notification fd goes there once the filter is loaded.
    pub seccomp_listener: Option<OwnedFd>,
    /// A custom handler (krun): configured around the mounts, run in place of `execve`.
    pub handler: Option<Box<dyn crate::handlers::LoadedHandler>>,
    pub id: String,
    pub state_dir: PathBuf,
    /// The container's pid as the runtime sees it (sent with `Go`).
    pub host_pid: i32,
    /// Namespaces the process must still create itself (see `namespaces::spawn`).
    pub unshare: u64,
}

/// The state document hooks get on stdin.
fn hook_state(a: &InitArgs<'_>, status: &str) -> Result<String> {
    let st = super::status::Status {
        pid: a.host_pid,
        bundle: a.bundle.to_string_lossy().into_owned(),
        rootfs: a
            .rootfs
            .as_ref()
            .map(|r| r.to_string_lossy().into_owned())
            .unwrap_or_default(),
        ..Default::default()
    };
    super::state_json(&a.id, &st, status, a.container)
}

/// Reset signal handling inherited from the parent (Rust ignores SIGPIPE; the parent may
/// block signals it forwards).
pub fn reset_signals() {
    // SAFETY: signal-mask and disposition syscalls on stack values.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        for sig in 1..32 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
    }
}

/// Run the container process; never returns.
pub fn run(mut args: InitArgs<'_>) -> ! {
    reset_signals();
    let Some(sock) = args.sync.take() else {
        // SAFETY: nothing to report to; leave at once.
        unsafe { libc::_exit(1) }
    };
    let code = match setup(&mut args, sock.as_fd()) {
        Ok(ready) => {
            let e = finish(ready, sock.as_fd(), &mut args);
            // Exec failed.  The parent of `run` may still listen; after `start` nobody does, so
            // also write to stderr (the pty when a terminal is used), as crun does.
            let _ = sync::send_error(sock.as_fd(), &e);
            crate::log::log_error(&e);
            1
        }
        Err(e) => {
            if sync::send_error(sock.as_fd(), &e).is_err() {
                crate::log::log_error(&e);
            }
            1
        }
    };
    // SAFETY: leave without running the parent's atexit handlers or destructors.
    unsafe { libc::_exit(code) }
}

/// The result of setup: what to exec.
pub struct Ready {
    path: PathBuf,
    args: Vec<String>,
    env: Vec<String>,
}

fn sethostname_checked(c: &Container, has_uts: bool) -> Result<()> {
    if let Some(h) = c.spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        if !has_uts {
            bail!(
                libc::EPERM,
                "unable to set hostname without a UTS namespace"
            );
        }
        nix::unistd::sethostname(h).with_context(|| format!("sethostname `{h}`"))?;
    }
    if let Some(d) = c.spec.domainname().as_deref().filter(|h| !h.is_empty()) {
        if !has_uts {
            bail!(
                libc::EPERM,
                "unable to set domainname without a UTS namespace"
            );
        }
        // SAFETY: d is valid for d.len() bytes.
        if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } < 0 {
            return Err(Error::last_os_error(format!("setdomainname `{d}`")));
        }
    }
    Ok(())
}

fn apply_sysctl(c: &Container) -> Result<()> {
    let Some(map) = c.spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    for (k, v) in map {
        if k.contains("..") || k.starts_with('/') {
            bail!(libc::EINVAL, "invalid sysctl key `{k}`");
        }
        let p = format!("/proc/sys/{}", k.replace('.', "/"));
        std::fs::write(&p, v).with_context(|| format!("sysctl `{k}`: write `{p}`"))?;
    }
    Ok(())
}

fn setup(a: &mut InitArgs<'_>, sock: BorrowedFd<'_>) -> Result<Ready> {
    let c = a.container;
    if a.unshare != 0 {
        // SAFETY: unshare with namespace flags in the (single-threaded) container process.
        if unsafe { libc::unshare(a.unshare as i32) } < 0 {
            return Err(Error::last_os_error("unshare the container namespaces"));
        }
    }
    for j in &a.plan.join {
        super::namespaces::join(j)?;
    }
    let go = sync::expect(sock, Kind::Go, "wait for the parent")?;
    a.host_pid = go.text.parse().unwrap_or(0);
    if a.seccomp.as_ref().is_some_and(|f| f.has_listener()) {
        if let Some(path) = glue::seccomp::listener_path(&c.spec) {
            a.seccomp_listener = Some(glue::seccomp::connect_listener(&path)?);
        }
    }
    if a.plan.userns {
        // SAFETY: plain syscalls; root in the new user namespace once the maps are written.
        if unsafe { libc::setresgid(0, 0, 0) } < 0 {
            return Err(Error::last_os_error(
                "setresgid to `0` in the user namespace",
            ));
        }
        // SAFETY: as above.
        if unsafe { libc::setresuid(0, 0, 0) } < 0 {
            return Err(Error::last_os_error(
                "setresuid to `0` in the user namespace",
            ));
        }
    }
    let hooks = c.spec.hooks().clone().unwrap_or_default();
    let has_early = hooks.prestart().as_ref().is_some_and(|h| !h.is_empty())
        || hooks
            .create_runtime()
            .as_ref()
            .is_some_and(|h| !h.is_empty());
    if has_early {
        sync::send(sock, Kind::Hooks, 0, "")?;
        sync::expect(sock, Kind::Go, "wait for the runtime's hooks")?;
    }
    if a.plan.new_cgroupns {
        // SAFETY: unshare with a namespace flag.
        if unsafe { libc::unshare(libc::CLONE_NEWCGROUP) } < 0 {
            return Err(Error::last_os_error("unshare the cgroup namespace"));
        }
    }
    if !a.no_new_keyring {
        // KEYCTL_JOIN_SESSION_KEYRING with a NULL name: a fresh anonymous session keyring.
        // Failures (no keyring support, seccomp on the host) only cost isolation: ignore.
        // SAFETY: keyctl with integer/NULL arguments.
        unsafe { libc::syscall(libc::SYS_keyctl, 1, std::ptr::null::<libc::c_char>()) };
    }
    let has_uts = a.plan.clone_flags & libc::CLONE_NEWUTS as u64 != 0
        || a.plan
            .join
            .iter()
            .any(|j| j.typ == oci_spec::runtime::LinuxNamespaceType::Uts);
    sethostname_checked(c, has_uts)?;
    let has_mnt = a.plan.clone_flags & libc::CLONE_NEWNS as u64 != 0
        || a.plan
            .join
            .iter()
            .any(|j| j.typ == oci_spec::runtime::LinuxNamespaceType::Mount);
    let terminal = c.terminal();
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(0) };
    if let Some(rootfs) = &a.rootfs {
        if !has_mnt {
            bail!(
                libc::EINVAL,
                "a mount namespace is required to set up the rootfs `{}`",
                rootfs.display()
            );
        }
        let setup = mounts::RootfsSetup {
            spec: &c.spec,
            rootfs,
            bundle: &a.bundle,
            terminal,
            in_userns: a.plan.userns,
            cgroupns: a.plan.new_cgroupns
                || a.plan
                    .join
                    .iter()
                    .any(|j| j.typ == oci_spec::runtime::LinuxNamespaceType::Cgroup),
        };
        let bundle = a.bundle.clone();
        let (id, state_dir) = (a.id.clone(), a.state_dir.clone());
        let phase = |h: &mut Option<Box<dyn crate::handlers::LoadedHandler>>,
                     p: crate::handlers::Phase|
         -> Result<()> {
            if let Some(h) = h.as_mut() {
                let info = crate::handlers::ContainerInfo {
                    id: &id,
                    spec: &c.spec,
                    bundle: &bundle,
                    state_dir: &state_dir,
                };
                h.configure_container(p, &info, rootfs)
                    .with_context(|| format!("failed configuring handler at phase: {p:?}"))?;
            }
            Ok(())
        };
        phase(&mut a.handler, crate::handlers::Phase::BeforeMounts)?;
        let root = mounts::prepare_rootfs(&setup)?;
        phase(&mut a.handler, crate::handlers::Phase::Mounts)?;
        phase(&mut a.handler, crate::handlers::Phase::AfterMounts)?;
        // createContainer hooks: in the container's namespaces, before pivot_root.
        if let Some(h) = hooks.create_container().as_ref().filter(|h| !h.is_empty()) {
            glue::hooks::run(h, &hook_state(a, "created")?, "createContainer")?;
        }
        mounts::do_pivot(&root, rootfs, a.no_pivot)?;
        drop(root);
        apply_sysctl(c)?;
        mounts::finalize(&c.spec)?;
    } else {
        apply_sysctl(c)?;
    }
    // SAFETY: setsid cannot fail in a fresh process that is not a group leader; if it is (the
    // pid namespace init is not), the error is harmless.
    unsafe { libc::setsid() };

    let p = c.process()?;
    if terminal {
        // Create the pty from the container's own devpts and hand the master over at once:
        // every later step may fail, and a monitor waiting on the console socket must get
        // the fd before the error (crun #1524, runc's ordering).
        let pts = process::hand_over_terminal(p, sock)?;
        if let Some(sz) = p.console_size() {
            glue::console::setup_size(
                // SAFETY: fd 0 is the pty slave after set_stdio and stays open.
                unsafe { BorrowedFd::borrow_raw(0) },
                sz.height() as u16,
                sz.width() as u16,
            )?;
        }
        if a.rootfs.is_some() {
            mounts::bind_console(&pts)?;
        }
    }

    // From here on, errors come from the user's configuration and are reported after the
    // terminal handoff.
    let env: Vec<String> = p.env().clone().unwrap_or_default();
    let args: Vec<String> = p.args().clone().unwrap_or_default();
    let cwd = p.cwd().clone();
    let path = match process::find_executable(
        args.first().map(String::as_str).unwrap_or(""),
        process::env_get(&env, "PATH"),
        &cwd,
    ) {
        Ok(p) => p,
        // A handler (krun) runs the command elsewhere: a missing local binary is fine.
        Err(e) if a.handler.is_some() && e.errno() == libc::ENOENT => {
            PathBuf::from(args.first().cloned().unwrap_or_default())
        }
        Err(e) => return Err(e),
    };
    nix::unistd::chdir(&cwd).with_context(|| format!("chdir to `{}`", cwd.display()))?;
    process::apply_rlimits(p, Some(sock))?;
    process::apply_oom_score_adj(p)?;
    // Without noNewPrivileges, loading a filter needs CAP_SYS_ADMIN: it is loaded here while
    // we still have it (crun does the same); with noNewPrivileges it is the last step before
    // execve (below).
    let mut env = process::apply_identity(p, &mut a.seccomp, env)?;
    if a.listen_fds > 0 {
        env.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
        env.push(format!("LISTEN_FDS={}", a.listen_fds));
        env.push(format!("LISTEN_PID={}", std::process::id()));
    }
    process::prepare_fds(a.preserve_fds.max(a.listen_fds))?;
    Ok(Ready { path, args, env })
}

fn wait_fifo(fd: RawFd) -> Result<()> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: pfd is a valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, -1) };
        if r >= 0 {
            break;
        }
        let e = Error::last_os_error("poll the exec fifo");
        if e.errno() != libc::EINTR {
            return Err(e);
        }
    }
    let mut b = [0u8; 1];
    // SAFETY: b is a valid 1-byte buffer.
    let n = unsafe { libc::read(fd, b.as_mut_ptr().cast(), 1) };
    if n <= 0 {
        return Err(Error::last_os_error("read from the exec fifo"));
    }
    // SAFETY: the fd is ours; close it so it does not leak into the container.
    unsafe { libc::close(fd) };
    Ok(())
}

fn finish(r: Ready, sock: BorrowedFd<'_>, a: &mut InitArgs<'_>) -> Error {
    if let Err(e) = sync::send(sock, Kind::Ready, 0, "") {
        return e;
    }
    if let Some(fd) = a.fifo {
        if let Err(e) = wait_fifo(fd) {
            return e;
        }
    }
    // startContainer hooks: in the container, after `start`, before the user's program.
    if let Some(h) = a
        .container
        .spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().clone())
        .filter(|h| !h.is_empty())
    {
        if let Err(e) =
            hook_state(a, "running").and_then(|s| glue::hooks::run(&h, &s, "startContainer"))
        {
            return e;
        }
    }
    if let Some(f) = a.seccomp.take() {
        let r = match a.seccomp_listener.take() {
            Some(sock) => hook_state(a, "creating").and_then(|st| {
                glue::seccomp::apply_and_send(f, &sock, &a.container.spec, a.host_pid, &st)
            }),
            None => glue::seccomp::apply(f),
        };
        if let Err(e) = r {
            return e;
        }
    }
    if let Some(mut h) = a.handler.take() {
        if let Err(e) = h.close_fds(a.preserve_fds) {
            return e;
        }
        let info = crate::handlers::ContainerInfo {
            id: &a.id,
            spec: &a.container.spec,
            bundle: &a.bundle,
            state_dir: &a.state_dir,
        };
        let name = h.name().to_string();
        return match h.run(&info, &r.path.to_string_lossy(), &r.args) {
            // SAFETY: leave without running the parent's destructors.
            Ok(0) => unsafe { libc::_exit(0) },
            Ok(_) => Error::msg(format!(
                "exec container process failed with handler as `{name}`"
            )),
            Err(e) => e,
        };
    }
    process::exec(&r.path, &r.args, &r.env)
}
