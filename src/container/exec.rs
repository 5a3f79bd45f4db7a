//! `crun exec`: run a new process inside a running container.
//!
//! The parent joins the container's pid namespace around the clone (so the new process is its
//! direct child), the child joins the other namespaces from `/proc/<pid>/ns`, creates its pty
//! inside the container (when asked) and sends the master back; only then does the parent
//! apply `consoleSize`, connect to `--console-socket` and forward it.  Errors before `execve`
//! come back over the sync socket as `{errno, message}`; a clean EOF means `execve` succeeded.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;

use oci_spec::runtime::{LinuxNamespaceType, Process};

use super::config::Container;
use super::glue;
use super::namespaces::{self, JoinNs};
use super::process;
use super::status;
use super::sync::{self, Kind};
use super::terminal;
use super::RuntimeContext;
use crate::bail;
use crate::error::{Context, Error, Result};

/// Options of one exec.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// The process to run (a full OCI `process` object).
    pub process: Process,
    /// Return once the process is running (`--detach`).
    pub detach: bool,
    /// Where to send the pty master when `process.terminal` is set.
    pub console_socket: Option<String>,
    /// Write the new process's pid here.
    pub pid_file: Option<PathBuf>,
    /// Extra fds to pass (3..3+n).
    pub preserve_fds: i32,
    /// A sub-cgroup to run in (not supported without the cgroups module).
    pub cgroup: Option<String>,
}

fn same_ns(pid: i32, name: &str) -> bool {
    let a = std::fs::metadata(format!("/proc/self/ns/{name}"));
    let b = std::fs::metadata(format!("/proc/{pid}/ns/{name}"));
    use std::os::unix::fs::MetadataExt;
    match (a, b) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

pub(super) fn exec(ctx: &RuntimeContext, id: &str, o: &ExecOptions) -> Result<i32> {
    let dir = status::state_dir(ctx.state_root.as_deref(), id)?;
    let st = status::read_status_in(&dir, id)?;
    if !status::is_running(&st) {
        bail!(libc::ESRCH, "the container `{id}` is not running");
    }
    let c = Container::load_from_file(&dir.join("config.json"))?;
    let manager = crate::handlers::HandlerManager::new_builtin()?;
    if let Some(h) = crate::handlers::configure_handler_for_spec(
        Some(&manager),
        ctx.handler.as_deref(),
        &c.spec,
    )? {
        if !h.supports_exec() {
            bail!(libc::ENOTSUP, "the handler does not support exec");
        }
    }
    let p = &o.process;
    match p.args() {
        Some(a) if !a.is_empty() && !a[0].is_empty() => {}
        _ => bail!(libc::EINVAL, "exec: the process has no `args`"),
    }
    let terminal = p.terminal().unwrap_or(false);
    if terminal && o.detach && o.console_socket.is_none() {
        bail!(
            libc::EINVAL,
            "use --console-socket with --detach when a terminal is used"
        );
    }
    if let (true, Some(cs)) = (terminal, &o.console_socket) {
        super::check_console_socket(cs)?;
    }
    // Namespaces to join: the ones the container has that differ from ours, user first and
    // mount last (so the other /proc paths resolve on the host).
    let mut joins: Vec<JoinNs> = Vec::new();
    let mut pid_join = None;
    let order = [
        LinuxNamespaceType::User,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Cgroup,
        LinuxNamespaceType::Time,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Mount,
    ];
    for t in order {
        let name = namespaces::proc_name(t);
        if same_ns(st.pid, name) {
            continue;
        }
        let path = PathBuf::from(format!("/proc/{}/ns/{name}", st.pid));
        if !path.exists() {
            continue;
        }
        let j = JoinNs {
            typ: t,
            fd: namespaces::open_ns(&path)?,
            path,
        };
        if t == LinuxNamespaceType::Pid {
            pid_join = Some(j);
        } else {
            joins.push(j);
        }
    }
    let seccomp = glue::seccomp::prepare(&c.spec)?;
    let blocked = if o.detach {
        None
    } else {
        Some(terminal::block_signals()?)
    };
    let (psock, csock) = sync::socketpair()?;
    // A helper process joins the cgroups first and only then creates the process that execs
    // (as its sibling, CLONE_PARENT): that fork is charged to the container's cgroups, so
    // pids.max holds for it too (a migration into a cgroup is never refused by the pids
    // controller, a fork is).
    // glibc's fork (not a raw clone): the caller may be multithreaded.
    // SAFETY: see namespaces::spawn.
    let helper = match unsafe { libc::fork() } {
        r if r < 0 => return Err(Error::last_os_error("fork the exec helper")),
        r => r,
    };
    if helper == 0 {
        drop(psock);
        super::init::reset_signals();
        let code = match exec_helper(pid_join.as_ref(), csock.as_fd()) {
            Ok(0) => {
                // The process that execs.
                match child(&joins, p, csock.as_fd(), o.preserve_fds, seccomp) {
                    Ok(never) => match never {},
                    Err(e) => {
                        if sync::send_error(csock.as_fd(), &e).is_err() {
                            crate::log::log_error(&e);
                        }
                        1
                    }
                }
            }
            Ok(_) => 0,
            Err(e) => {
                if sync::send_error(csock.as_fd(), &e).is_err() {
                    crate::log::log_error(&e);
                }
                1
            }
        };
        // SAFETY: leave the child without running the parent's destructors.
        unsafe { libc::_exit(code) }
    }
    drop(csock);
    let reap = |p: i32| {
        // SAFETY: waitpid on our own child.
        unsafe {
            let mut s = 0;
            libc::waitpid(p, &mut s, 0);
        }
    };
    let kill_helper = |e: Error| -> Error {
        // SAFETY: kill our own child.
        unsafe { libc::kill(helper, libc::SIGKILL) };
        reap(helper);
        e
    };
    if !st.cgroup_path.is_empty() {
        glue::cgroups::enter(&st.cgroup_path, helper).map_err(kill_helper)?;
    }
    sync::send(psock.as_fd(), Kind::Go, 0, "").map_err(kill_helper)?;
    let pid = match sync::recv(psock.as_fd()).map_err(kill_helper)? {
        Some(m) if m.kind == Kind::Pid => {
            reap(helper);
            m.text.trim().parse::<i32>().map_err(|_| {
                Error::new(
                    libc::EPROTO,
                    format!("exec helper sent a bad pid `{}`", m.text),
                )
            })?
        }
        Some(m) if m.kind == Kind::Error => {
            reap(helper);
            return Err(m.to_error());
        }
        _ => {
            return Err(kill_helper(Error::new(
                libc::EPROTO,
                "the exec helper exited without creating the process",
            )))
        }
    };
    let kill_child = |e: Error| -> Error {
        // SAFETY: kill/waitpid on our own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        reap(pid);
        e
    };
    sync::send(psock.as_fd(), Kind::Go, 0, "").map_err(kill_child)?;
    let mut master = None;
    loop {
        match sync::recv(psock.as_fd()).map_err(kill_child)? {
            None => break,
            Some(m) if m.kind == Kind::Terminal => {
                let fd = glue::console::recv_fd(psock.as_fd())
                    .context("receive the terminal from the exec process")
                    .map_err(kill_child)?;
                if let Some(sz) = p.console_size() {
                    glue::console::setup_size(fd.as_fd(), sz.height() as u16, sz.width() as u16)
                        .map_err(kill_child)?;
                }
                match &o.console_socket {
                    Some(cs) => {
                        glue::console::send_console_to_socket_path(cs, fd.as_fd())
                            .with_context(|| format!("send the terminal to `{cs}`"))
                            .map_err(kill_child)?;
                    }
                    None => master = Some(fd),
                }
            }
            Some(m) if m.kind == Kind::Error => {
                let e = m.to_error();
                // SAFETY: reap our child, which exits after reporting.
                unsafe {
                    let mut s = 0;
                    libc::waitpid(pid, &mut s, 0);
                }
                return Err(e);
            }
            Some(m) if m.kind == Kind::Warning => crate::log::warning(&m.text),
            Some(m) if m.kind == Kind::Rlimit => {
                process::answer_rlimit(psock.as_fd(), pid, &m.text).map_err(kill_child)?
            }
            Some(_) => {}
        }
    }
    if let Some(pf) = &o.pid_file {
        let pf = super::absolute(pf)?;
        super::write_file_atomic(&pf, pid.to_string().as_bytes()).context("write the pid file")?;
    }
    if o.detach {
        return Ok(0);
    }
    let code = terminal::wait_foreground(pid, master);
    drop(blocked);
    code
}

enum Never {}

/// The exec helper, in the container's cgroups once the parent's first `Go` arrives: join the
/// container's pid namespace (for our children) and create the process that execs as our
/// sibling.  Returns 0 in that process, its pid (after reporting it) in the helper.
fn exec_helper(pid_join: Option<&JoinNs>, sock: BorrowedFd<'_>) -> Result<i32> {
    sync::expect(sock, Kind::Go, "wait for the parent")?;
    if let Some(j) = pid_join {
        namespaces::join(j)?;
    }
    // SAFETY: clone(2) without CLONE_VM or a stack behaves like fork(2); this process is
    // single-threaded (a fresh fork).  CLONE_PARENT makes the runtime its parent, so it can
    // wait for it; the exit signal is ours (SIGCHLD).
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (libc::CLONE_PARENT | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if r < 0 {
        return Err(Error::last_os_error("fork the exec process"));
    }
    let pid = r as i32;
    if pid > 0 {
        sync::send(sock, Kind::Pid, 0, &pid.to_string())?;
    }
    Ok(pid)
}

fn child(
    joins: &[JoinNs],
    p: &Process,
    sock: BorrowedFd<'_>,
    preserve_fds: i32,
    seccomp: Option<glue::seccomp::Filter>,
) -> Result<Never> {
    sync::expect(sock, Kind::Go, "wait for the parent")?;
    for j in joins {
        namespaces::join(j)?;
    }
    // SAFETY: setsid in a fresh process.
    unsafe { libc::setsid() };
    let terminal = p.terminal().unwrap_or(false);
    if terminal {
        process::hand_over_terminal(p, sock)?;
    }
    let env: Vec<String> = p.env().clone().unwrap_or_default();
    let args: Vec<String> = p.args().clone().unwrap_or_default();
    let cwd = p.cwd().clone();
    let path = process::find_executable(&args[0], process::env_get(&env, "PATH"), &cwd)?;
    nix::unistd::chdir(&cwd).with_context(|| format!("chdir to `{}`", cwd.display()))?;
    process::apply_rlimits(p, Some(sock))?;
    let mut seccomp = seccomp;
    let env = process::apply_identity(p, &mut seccomp, env)?;
    process::prepare_fds(preserve_fds)?;
    if let Some(f) = seccomp {
        glue::seccomp::apply(f)?;
    }
    Err(process::exec(&path, &args, &env))
}
