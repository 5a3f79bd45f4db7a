//! The container runtime: create, start, run, state, kill, delete, list, exec.
//!
//! Module map:
//! * [`config`]: loading and checking `config.json`, the default spec;
//! * [`status`]: the state directory (`<root>/<id>/status`, `config.json`, `exec.fifo`, lock);
//! * [`namespaces`], [`mounts`], [`process`]: the pieces of container setup;
//! * `init`: the container process from `clone` to `execve`;
//! * [`sync`]: the parent/container protocol (errors as `{errno, message}`, pty handoff);
//! * `terminal`: the foreground copy loop and signal forwarding;
//! * `exec`: running a process in an existing container.
//!
//! The console ordering (the pty master is sent to `--console-socket` before any step that can
//! fail on the user's input, and the runtime connects to the socket only when it has the fd)
//! is described in `init` and [`Runtime::create_or_run`].

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

pub mod config;
mod exec;
mod glue;
mod init;
pub mod mounts;
pub mod namespaces;
pub mod prefork;
pub mod process;
pub mod signals;
pub mod status;
pub mod sync;
mod terminal;
pub mod update;

pub use config::Container;
pub use exec::ExecOptions;
pub use status::Status;

use crate::bail;
use crate::error::{Context, Error, Result};

/// The options of one runtime operation (crun's `libcrun_context_s`, in Rust).
#[derive(Debug, Clone, Default)]
pub struct RuntimeContext {
    /// `--root`; None selects the default state root.
    pub state_root: Option<String>,
    /// The container id.
    pub id: String,
    /// The bundle directory (default: the current directory).
    pub bundle: Option<PathBuf>,
    /// `--console-socket`.
    pub console_socket: Option<String>,
    /// `--pid-file`.
    pub pid_file: Option<PathBuf>,
    /// `NOTIFY_SOCKET` (kept in the state; sd_notify proxying is not implemented).
    pub notify_socket: Option<String>,
    /// A custom handler requested by name (argv[0] `krun`, `crun-<name>`).
    pub handler: Option<String>,
    /// `--preserve-fds`.
    pub preserve_fds: i32,
    /// Socket-activation fds passed as `LISTEN_FDS`.
    pub listen_fds: i32,
    /// `--systemd-cgroup`.
    pub systemd_cgroup: bool,
    /// `run --detach` (create always detaches).
    pub detach: bool,
    /// `--no-new-keyring`.
    pub no_new_keyring: bool,
    /// Do not create a cgroup.
    pub force_no_cgroup: bool,
    /// `--no-pivot`.
    pub no_pivot: bool,
}

impl RuntimeContext {
    fn root(&self) -> Option<&str> {
        self.state_root.as_deref()
    }
}

/// `run` vs `create`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Create,
    Run { keep: bool },
}

/// Cleanup on failure: kill the container process, remove the cgroup and state directory.
struct Rollback {
    dir: Option<PathBuf>,
    pid: i32,
    cgroup: String,
}

impl Rollback {
    fn disarm(&mut self) {
        self.dir = None;
        self.pid = 0;
        self.cgroup.clear();
    }
}

impl Drop for Rollback {
    fn drop(&mut self) {
        if self.pid > 0 {
            // SAFETY: kill/waitpid on our own child.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
                let mut st = 0;
                libc::waitpid(self.pid, &mut st, 0);
            }
        }
        if !self.cgroup.is_empty() {
            let _ = glue::cgroups::destroy(&self.cgroup);
        }
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// The OCI state document (`crun state`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct State {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: String,
    pub bundle: String,
    pub rootfs: String,
    pub created: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::HashMap<String, String>>,
    pub owner: String,
}

fn absolute(p: &Path) -> Result<PathBuf> {
    // No `.` components or trailing slashes: the path is stored as the state's `bundle`.
    if p.is_absolute() {
        return Ok(p.components().collect());
    }
    let cwd = std::env::current_dir().context("getcwd")?;
    Ok(cwd.join(p).components().collect())
}

fn write_file_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp-{}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    std::fs::write(&tmp, data).with_context(|| format!("write `{}`", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| {
        let _ = std::fs::remove_file(&tmp);
        format!("write `{}`", path.display())
    })
}

/// Check that `path` names a listening-capable UNIX socket, without connecting to it.
fn check_console_socket(path: &str) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let md = std::fs::metadata(path).with_context(|| format!("open console socket `{path}`"))?;
    if !md.file_type().is_socket() {
        bail!(
            libc::ENOTSOCK,
            "open console socket `{path}`: not a UNIX socket"
        );
    }
    Ok(())
}

/// The runtime entry points.
pub struct Runtime;

impl Runtime {
    /// `crun create`.
    pub fn create(ctx: &RuntimeContext, c: &Container) -> Result<()> {
        Self::create_or_run(ctx, c, Mode::Create, None).map(|_| ())
    }

    /// `crun run`: returns the container's exit code (0 when detached).
    pub fn run(ctx: &RuntimeContext, c: &Container, keep: bool) -> Result<i32> {
        Self::create_or_run(ctx, c, Mode::Run { keep }, None)
    }

    /// [`Runtime::create`] choosing handlers from `manager` (e.g. one that loaded out-of-tree
    /// handler `.so`s) instead of the built-in ones.
    pub fn create_with_handlers(
        ctx: &RuntimeContext,
        c: &Container,
        manager: Option<&crate::handlers::HandlerManager>,
    ) -> Result<()> {
        Self::create_or_run(ctx, c, Mode::Create, manager).map(|_| ())
    }

    /// [`Runtime::run`] choosing handlers from `manager`.
    pub fn run_with_handlers(
        ctx: &RuntimeContext,
        c: &Container,
        keep: bool,
        manager: Option<&crate::handlers::HandlerManager>,
    ) -> Result<i32> {
        Self::create_or_run(ctx, c, Mode::Run { keep }, manager)
    }

    /// Create (and for `run`, start and wait for) a container.
    ///
    /// Terminal handling: with `process.terminal`, the container process creates the pty after
    /// `pivot_root` and `setsid` and sends the master to this process over the sync socket
    /// *before* anything that can fail on user input.  Only then does this process connect to
    /// `--console-socket` and forward it, so the socket is connected exactly when there is an
    /// fd to send.  When the container fails before its pty exists, the socket is never
    /// connected and the error says so.
    fn create_or_run(
        ctx: &RuntimeContext,
        c: &Container,
        mode: Mode,
        manager: Option<&crate::handlers::HandlerManager>,
    ) -> Result<i32> {
        let id = ctx.id.as_str();
        status::validate_id(id)?;
        // A custom handler (krun) is chosen and loaded in the parent, and may adjust the
        // configuration before anything else (crun's libcrun_configure_handler).
        let builtin;
        let manager = match manager {
            Some(m) => m,
            None => {
                builtin = crate::handlers::HandlerManager::new_builtin()?;
                &builtin
            }
        };
        let mut handler = crate::handlers::configure_handler_for_spec(
            Some(manager),
            ctx.handler.as_deref(),
            &c.spec,
        )?;
        let mut owned = c.clone();
        if let Some(h) = handler.as_mut() {
            h.modify_oci_configuration(&mut owned.spec)?;
        }
        let c = &owned;
        config::check_for_run(c, handler.is_some())?;
        let terminal = c.terminal();
        let detach = mode == Mode::Create || ctx.detach;
        let console_socket = ctx.console_socket.as_deref().filter(|_| terminal);
        if terminal && detach && console_socket.is_none() {
            match mode {
                Mode::Create => bail!(
                    libc::EINVAL,
                    "use --console-socket with create when a terminal is used"
                ),
                Mode::Run { .. } => bail!(
                    libc::EINVAL,
                    "use --console-socket with --detach when a terminal is used"
                ),
            }
        }
        if let Some(cs) = console_socket {
            check_console_socket(cs)?;
        }
        let bundle = match &ctx.bundle {
            Some(b) => absolute(b)?,
            None => std::env::current_dir().context("getcwd")?,
        };
        let rootfs = match config::rootfs_path(c, &bundle) {
            Some(r) => Some(
                std::fs::canonicalize(&r).with_context(|| format!("rootfs `{}`", r.display()))?,
            ),
            None => None,
        };
        let plan = namespaces::plan(&c.spec)?;
        let seccomp = glue::seccomp::prepare(&c.spec)?;

        let root = status::ensure_state_root(ctx.root())?;
        let dir = root.join(id);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                bail!(libc::EEXIST, "container `{id}` already exists")
            }
            Err(e) => return Err(e).context(format!("mkdir `{}`", dir.display())),
        }
        let mut rb = Rollback {
            dir: Some(dir.clone()),
            pid: 0,
            cgroup: String::new(),
        };
        let _lock = status::lock_dir(&dir)?;
        std::fs::write(dir.join("config.json"), &c.config_content)
            .with_context(|| format!("write `{}/config.json`", dir.display()))?;
        if let Some(h) = handler.as_mut() {
            let info = crate::handlers::ContainerInfo {
                id,
                spec: &c.spec,
                bundle: &bundle,
                state_dir: &dir,
            };
            let r = rootfs.clone().unwrap_or_else(|| bundle.clone());
            h.configure_container(crate::handlers::Phase::BeforeUserns, &info, &r)?;
        }
        let fifo = if mode == Mode::Create {
            let p = dir.join("exec.fifo");
            nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600))
                .with_context(|| format!("mkfifo `{}`", p.display()))?;
            let fd = nix::fcntl::open(
                &p,
                nix::fcntl::OFlag::O_RDONLY
                    | nix::fcntl::OFlag::O_NONBLOCK
                    | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .with_context(|| format!("open `{}`", p.display()))?;
            // SAFETY: open returned a fresh fd.
            Some(unsafe { OwnedFd::from_raw_fd(fd) })
        } else {
            None
        };

        let foreground = !detach;
        let blocked = if foreground {
            // SAFETY: prctl with integer arguments.
            unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
            Some(terminal::block_signals()?)
        } else {
            None
        };

        let (parent_sock, child_sock) = sync::socketpair()?;
        // Joining a pid namespace only affects children: switch around the clone.
        let saved_pidns = match &plan.pid_join {
            Some(j) => {
                let saved = namespaces::open_ns(Path::new("/proc/self/ns/pid"))?;
                namespaces::join(j)?;
                Some(saved)
            }
            None => None,
        };
        let spawned = namespaces::spawn(plan.clone_flags);
        let cloned = spawned.as_ref().map(|(p, _)| *p).map_err(Clone::clone);
        if let Ok((0, unshare)) = spawned {
            drop(parent_sock);
            std::mem::forget(rb);
            init::run(init::InitArgs {
                container: c,
                rootfs: rootfs.clone(),
                bundle: bundle.clone(),
                plan: &plan,
                sync: Some(child_sock),
                fifo: fifo.as_ref().map(|f| f.as_raw_fd()),
                no_pivot: ctx.no_pivot,
                preserve_fds: ctx.preserve_fds,
                listen_fds: ctx.listen_fds,
                no_new_keyring: ctx.no_new_keyring,
                seccomp,
                seccomp_listener: None,
                handler: handler.take(),
                id: id.to_string(),
                state_dir: dir.clone(),
                host_pid: 0,
                unshare,
            });
        }
        if let Some(saved) = saved_pidns {
            // SAFETY: setns back into our own pid namespace.
            unsafe { libc::setns(saved.as_raw_fd(), libc::CLONE_NEWPID) };
        }
        let pid = cloned?;
        rb.pid = pid;
        drop(child_sock);
        drop(fifo);

        if plan.new_userns {
            namespaces::write_id_maps(&c.spec, pid)?;
        }
        if !ctx.force_no_cgroup {
            let linux = c.spec.linux().as_ref();
            let resources = linux.and_then(|l| l.resources().as_ref());
            let r = glue::cgroups::setup(
                id,
                linux
                    .and_then(|l| l.cgroups_path().as_ref())
                    .and_then(|p| p.to_str()),
                resources,
                ctx.systemd_cgroup,
                pid,
            );
            rb.cgroup = match r {
                Ok(p) => p,
                Err(e) if cgroup_denied_rootless(&e) => {
                    // crun's rule for rootless containers: no delegated cgroup, no cgroup.
                    crate::log::warning(&rootless_cgroup_warning(&e, resources));
                    String::new()
                }
                Err(e) => return Err(e),
            };
        }
        // The container learns its host pid from `Go` (hooks' state documents carry it).
        sync::send(parent_sock.as_fd(), sync::Kind::Go, 0, &pid.to_string())?;
        let early_hooks = c.spec.hooks().as_ref().map(|h| {
            (
                h.prestart().clone().unwrap_or_default(),
                h.create_runtime().clone().unwrap_or_default(),
            )
        });
        if let Some((prestart, create_runtime)) =
            early_hooks.filter(|(a, b)| !a.is_empty() || !b.is_empty())
        {
            // prestart and createRuntime run in the runtime namespace once the container's
            // namespaces exist, before its mounts and pivot_root (runtime-spec config.md).
            sync::expect(
                parent_sock.as_fd(),
                sync::Kind::Hooks,
                "wait for the container",
            )?;
            let st = Status {
                pid,
                bundle: bundle.to_string_lossy().into_owned(),
                rootfs: rootfs
                    .as_ref()
                    .map(|r| r.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                ..Default::default()
            };
            let state = state_json(id, &st, "creating", c)?;
            glue::hooks::run(&prestart, &state, "prestart")?;
            glue::hooks::run(&create_runtime, &state, "createRuntime")?;
            sync::send(parent_sock.as_fd(), sync::Kind::Go, 0, "")?;
        }

        let mut master: Option<OwnedFd> = None;
        let mut sent_console = false;
        loop {
            let m = match sync::recv(parent_sock.as_fd())? {
                Some(m) => m,
                None => {
                    let mut e = Error::new(
                        libc::EPIPE,
                        "the container process exited before it was ready",
                    );
                    if let (Some(cs), false) = (console_socket, sent_console) {
                        e = e.wrap(format!(
                            "console socket `{cs}` not connected: no terminal was created"
                        ));
                    }
                    return Err(e);
                }
            };
            match m.kind {
                sync::Kind::Terminal => {
                    let fd = glue::console::recv_fd(parent_sock.as_fd())
                        .context("receive the terminal from the container")?;
                    if let Some(cs) = console_socket {
                        glue::console::send_console_to_socket_path(cs, fd.as_fd())
                            .with_context(|| format!("send the terminal to `{cs}`"))?;
                        sent_console = true;
                    } else {
                        master = Some(fd);
                    }
                }
                sync::Kind::Error => {
                    let e = m.to_error();
                    if let (Some(cs), false) = (console_socket, sent_console) {
                        return Err(Error::new(
                            e.errno(),
                            format!(
                                "{} (the container failed before its terminal existed: the console socket `{cs}` was not connected)",
                                e.message()
                            ),
                        ));
                    }
                    return Err(e);
                }
                sync::Kind::Warning => crate::log::warning(&m.text),
                sync::Kind::Debug => crate::log::debug(&m.text),
                sync::Kind::Ready => break,
                sync::Kind::Rlimit => process::answer_rlimit(parent_sock.as_fd(), pid, &m.text)?,
                other => bail!(libc::EPROTO, "unexpected sync message {other:?}"),
            }
        }

        let st = Status {
            pid,
            process_start_time: status::process_start_time(pid).unwrap_or(0),
            cgroup_path: rb.cgroup.clone(),
            scope: String::new(),
            rootfs: rootfs
                .as_ref()
                .map(|r| r.to_string_lossy().into_owned())
                .unwrap_or_default(),
            systemd_cgroup: ctx.systemd_cgroup,
            bundle: bundle.to_string_lossy().into_owned(),
            created: status::now_rfc3339(),
            owner: status::current_owner(),
            detached: detach,
            external_descriptors: external_descriptors(),
        };
        status::write_status_in(&dir, &st)?;
        if let Some(pf) = &ctx.pid_file {
            write_file_atomic(&absolute(pf)?, pid.to_string().as_bytes())
                .context("write the pid file")?;
        }
        if mode == Mode::Create {
            rb.disarm();
            return Ok(0);
        }
        if let Some(h) = c.spec.hooks().as_ref() {
            let state = state_json(id, &st, "running", c)?;
            if let Err(e) =
                glue::hooks::run(h.poststart().as_deref().unwrap_or(&[]), &state, "poststart")
            {
                crate::log::warning(&e.to_string());
            }
        }
        if detach {
            rb.disarm();
            return Ok(0);
        }
        rb.dir = None;
        rb.cgroup.clear();
        let code = terminal::wait_foreground(pid, master);
        rb.pid = 0;
        drop(blocked);
        let code = code?;
        if let Mode::Run { keep: false } = mode {
            run_poststop(c, id, &st);
            if !st.cgroup_path.is_empty() {
                let _ = glue::cgroups::destroy(&st.cgroup_path);
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
        Ok(code)
    }

    /// `crun start`: release a created container through its exec fifo.
    pub fn start(ctx: &RuntimeContext, id: &str) -> Result<()> {
        let (dir, _lock) = status::lock_container(ctx.root(), id)?;
        let st = status::read_status_in(&dir, id)?;
        let fifo = dir.join("exec.fifo");
        if !fifo.exists() {
            if status::is_running(&st) {
                bail!(libc::EINVAL, "container `{id}` has already been started");
            }
            bail!(libc::EINVAL, "container `{id}` is stopped: cannot start it");
        }
        if !status::is_running(&st) {
            bail!(
                libc::ESRCH,
                "container `{id}` is not running: the container process exited"
            );
        }
        let fd = match nix::fcntl::open(
            &fifo,
            nix::fcntl::OFlag::O_WRONLY
                | nix::fcntl::OFlag::O_NONBLOCK
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(nix::errno::Errno::ENXIO) => bail!(
                libc::ENXIO,
                "container `{id}` is not waiting on its exec fifo"
            ),
            Err(e) => return Err(e).context(format!("open `{}`", fifo.display())),
        };
        // SAFETY: open returned a fresh fd.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        nix::unistd::write(&fd, b"0").context("write to the exec fifo")?;
        drop(fd);
        std::fs::remove_file(&fifo).with_context(|| format!("remove `{}`", fifo.display()))?;
        if let Ok(c) = Container::load_from_file(&dir.join("config.json")) {
            if let Some(h) = c.spec.hooks().as_ref() {
                let state = state_json(id, &st, "running", &c)?;
                if let Err(e) =
                    glue::hooks::run(h.poststart().as_deref().unwrap_or(&[]), &state, "poststart")
                {
                    crate::log::warning(&e.to_string());
                }
            }
        }
        Ok(())
    }

    /// `crun state`: the OCI state as pretty JSON.
    pub fn state(ctx: &RuntimeContext, id: &str) -> Result<String> {
        let dir = status::state_dir(ctx.root(), id)?;
        let st = status::read_status_in(&dir, id)?;
        let s = status::status_string(&dir, &st);
        let c = Container::load_from_file(&dir.join("config.json")).ok();
        let state = State {
            oci_version: "1.0.0".into(),
            id: id.to_string(),
            pid: if s == "stopped" { 0 } else { st.pid },
            status: s.into(),
            bundle: st.bundle.clone(),
            rootfs: st.rootfs.clone(),
            created: st.created.clone(),
            annotations: c.and_then(|c| c.spec.annotations().clone()),
            owner: st.owner.clone(),
        };
        serde_json::to_string_pretty(&state)
            .map_err(|e| Error::new(libc::EINVAL, format!("serialize state: {e}")))
    }

    /// `crun kill`: signal the container's init (or every process with `all`).
    pub fn kill(ctx: &RuntimeContext, id: &str, signal: &str, all: bool) -> Result<()> {
        let sig = signals::parse_signal(signal)?;
        let dir = status::state_dir(ctx.root(), id)?;
        let st = status::read_status_in(&dir, id)?;
        if !status::is_running(&st) {
            bail!(
                libc::ESRCH,
                "kill container `{id}`: the container is not running"
            );
        }
        let pids = if all {
            container_pids(&st)?
        } else {
            vec![st.pid]
        };
        for p in pids {
            // SAFETY: kill with a pid and a signal number.
            if unsafe { libc::kill(p, sig) } < 0 {
                let e = Error::last_os_error(format!("kill container `{id}`"));
                if !(all && e.errno() == libc::ESRCH) {
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// `crun delete`: remove a created or stopped container (`force`: any container).
    /// Like crun and runc, a forced delete of a container that does not exist succeeds.
    pub fn delete(ctx: &RuntimeContext, id: &str, force: bool) -> Result<()> {
        let (dir, lock) = match status::lock_container(ctx.root(), id) {
            Ok(x) => x,
            // As crun: a forced delete of a container that does not exist succeeds.
            Err(e) if force && e.errno() == libc::ENOENT => return Ok(()),
            Err(e) => return Err(e),
        };
        let st = match status::read_status_in(&dir, id) {
            Ok(st) => st,
            Err(e) if e.errno() == libc::ENOENT => {
                // A directory without status: left by a crash; remove it.
                drop(lock);
                let _ = std::fs::remove_dir_all(&dir);
                if force {
                    return Ok(());
                }
                return Err(status::not_found(id));
            }
            Err(e) => return Err(e),
        };
        let s = status::status_string(&dir, &st);
        if (s == "running" || s == "paused") && !force {
            bail!(
                libc::EBUSY,
                "the container `{id}` is not in created or stopped state"
            );
        }
        if status::is_running(&st) {
            if s == "paused" && !st.cgroup_path.is_empty() {
                let _ = glue::cgroups::freeze(&st.cgroup_path, false);
            }
            for p in container_pids(&st).unwrap_or_else(|_| vec![st.pid]) {
                // SAFETY: kill with a pid and a signal number.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
            wait_gone(&st, id)?;
        }
        if !st.cgroup_path.is_empty() {
            glue::cgroups::destroy(&st.cgroup_path)?;
        }
        if let Ok(c) = Container::load_from_file(&dir.join("config.json")) {
            run_poststop(&c, id, &st);
        }
        drop(lock);
        std::fs::remove_dir_all(&dir).with_context(|| format!("remove `{}`", dir.display()))
    }

    /// `crun list`: (id, status, state document) for each container.
    /// `items` (from [`Runtime::list`]) as `crun list --format json` prints them and
    /// `libcrun_write_json_containers_list` writes them.
    pub fn list_json(items: &[(String, Status, String)]) -> Result<String> {
        let v: Vec<serde_json::Value> = items
            .iter()
            .map(|(id, st, s)| {
                serde_json::json!({
                    "id": id,
                    "pid": if s == "stopped" { 0 } else { st.pid },
                    "status": s,
                    "bundle": st.bundle,
                    "created": st.created,
                    "owner": st.owner,
                })
            })
            .collect();
        serde_json::to_string_pretty(&v)
            .map_err(|e| Error::new(libc::EINVAL, format!("serialize list: {e}")))
    }

    pub fn list(ctx: &RuntimeContext) -> Result<Vec<(String, Status, String)>> {
        let mut out = Vec::new();
        for id in status::list(ctx.root())? {
            let Ok(dir) = status::state_dir(ctx.root(), &id) else {
                continue;
            };
            let Ok(st) = status::read_status_in(&dir, &id) else {
                continue;
            };
            let s = status::status_string(&dir, &st).to_string();
            out.push((id, st, s));
        }
        Ok(out)
    }

    /// `crun ps`: the pids of the container's processes.
    pub fn pids(ctx: &RuntimeContext, id: &str, _recurse: bool) -> Result<Vec<i32>> {
        let dir = status::state_dir(ctx.root(), id)?;
        let st = status::read_status_in(&dir, id)?;
        if !status::is_running(&st) {
            return Ok(Vec::new());
        }
        container_pids(&st)
    }

    /// `crun pause` / `crun resume`.
    pub fn pause(ctx: &RuntimeContext, id: &str, pause: bool) -> Result<()> {
        let dir = status::state_dir(ctx.root(), id)?;
        let st = status::read_status_in(&dir, id)?;
        if !status::is_running(&st) {
            bail!(libc::ESRCH, "container `{id}` is not running");
        }
        if st.cgroup_path.is_empty() {
            bail!(
                libc::ENOTSUP,
                "container `{id}` has no cgroup: cannot {}",
                if pause { "pause" } else { "resume" }
            );
        }
        glue::cgroups::freeze(&st.cgroup_path, pause)
    }

    /// `crun update`: apply new resources (a JSON `LinuxResources`).
    pub fn update(ctx: &RuntimeContext, id: &str, resources_json: &str) -> Result<()> {
        let dir = status::state_dir(ctx.root(), id)?;
        let st = status::read_status_in(&dir, id)?;
        let res: oci_spec::runtime::LinuxResources = serde_json::from_str(resources_json)
            .map_err(|e| Error::new(libc::EINVAL, format!("parse resources: {e}")))?;
        if st.cgroup_path.is_empty() {
            bail!(
                libc::ENOTSUP,
                "container `{id}` has no cgroup: cannot update it"
            );
        }
        glue::cgroups::update(&st.cgroup_path, &res)
    }

    /// `crun exec`.
    pub fn exec(ctx: &RuntimeContext, id: &str, opts: &ExecOptions) -> Result<i32> {
        exec::exec(ctx, id, opts)
    }
}

fn external_descriptors() -> String {
    let names: Vec<String> = (0..3)
        .map(|fd| {
            std::fs::read_link(format!("/proc/self/fd/{fd}"))
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    serde_json::to_string(&names).unwrap_or_else(|_| "[]".into())
}

pub(crate) fn state_json(id: &str, st: &Status, s: &str, c: &Container) -> Result<String> {
    let state = State {
        oci_version: "1.0.0".into(),
        id: id.into(),
        pid: st.pid,
        status: s.into(),
        bundle: st.bundle.clone(),
        rootfs: st.rootfs.clone(),
        created: st.created.clone(),
        annotations: c.spec.annotations().clone(),
        owner: st.owner.clone(),
    };
    serde_json::to_string(&state)
        .map_err(|e| Error::new(libc::EINVAL, format!("serialize state: {e}")))
}

fn run_poststop(c: &Container, id: &str, st: &Status) {
    if let Some(h) = c.spec.hooks().as_ref() {
        if let Ok(state) = state_json(id, st, "stopped", c) {
            if let Err(e) =
                glue::hooks::run(h.poststop().as_deref().unwrap_or(&[]), &state, "poststop")
            {
                crate::log::warning(&e.to_string());
            }
        }
    }
}

/// Whether we run rootless: euid != 0, or uid 0 in a user namespace that does not map the
/// whole host id range (so root here holds no privileges over the cgroup hierarchies).
fn is_rootless() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return true;
    }
    match std::fs::read_to_string("/proc/self/uid_map") {
        Ok(m) => {
            let f: Vec<&str> = m.split_whitespace().collect();
            f != ["0", "0", "4294967295"]
        }
        Err(_) => false,
    }
}

/// A failure to create the cgroup that a rootless container survives (as in crun): running
/// rootless and the hierarchy is not writable for us (EACCES, EPERM, EROFS).
fn cgroup_denied_rootless(e: &Error) -> bool {
    matches!(e.errno(), libc::EACCES | libc::EPERM | libc::EROFS) && is_rootless()
}

/// The warning for a rootless container that runs without a cgroup; names the configured
/// resources that are therefore not enforced.
fn rootless_cgroup_warning(e: &Error, r: Option<&oci_spec::runtime::LinuxResources>) -> String {
    let mut not = Vec::new();
    if let Some(r) = r {
        if r.memory().is_some() {
            not.push("memory");
        }
        if r.cpu().is_some() {
            not.push("cpu");
        }
        if r.pids().is_some() {
            not.push("pids");
        }
        if r.block_io().is_some() {
            not.push("blockIO");
        }
        if r.hugepage_limits().as_ref().is_some_and(|v| !v.is_empty()) {
            not.push("hugepageLimits");
        }
        if r.network().is_some() {
            not.push("network");
        }
        if r.rdma().as_ref().is_some_and(|m| !m.is_empty()) {
            not.push("rdma");
        }
        if r.unified().as_ref().is_some_and(|m| !m.is_empty()) {
            not.push("unified");
        }
        // Device rules are enforced by the devices cgroup (v1) or a BPF program on it (v2);
        // the lone "deny all" of `crun spec --rootless` is not worth a warning.
        if r.devices()
            .as_ref()
            .is_some_and(|v| v.iter().any(|d| d.allow()))
        {
            not.push("devices");
        }
    }
    let mut msg = format!("cannot create the cgroup, running rootless without one ({e})");
    if !not.is_empty() {
        msg.push_str(&format!(
            "; `linux.resources` not enforced: {}",
            not.join(", ")
        ));
    }
    msg
}

/// The container's processes: from its cgroup when it has one, else the init and its
/// descendants (from `/proc`).
fn container_pids(st: &Status) -> Result<Vec<i32>> {
    if !st.cgroup_path.is_empty() {
        if let Ok(p) = glue::cgroups::read_pids(&st.cgroup_path, true) {
            if !p.is_empty() {
                return Ok(p);
            }
        }
    }
    let mut parents: Vec<(i32, i32)> = Vec::new();
    for ent in std::fs::read_dir("/proc")
        .context("read `/proc`")?
        .flatten()
    {
        let Some(pid) = ent.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(close) = s.rfind(')') else { continue };
        let ppid = s[close + 1..]
            .split_whitespace()
            .nth(1)
            .and_then(|x| x.parse::<i32>().ok())
            .unwrap_or(0);
        parents.push((pid, ppid));
    }
    let mut out = vec![st.pid];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        for (c, pp) in &parents {
            if *pp == p && !out.contains(c) {
                out.push(*c);
            }
        }
        i += 1;
    }
    Ok(out)
}

fn wait_gone(st: &Status, id: &str) -> Result<()> {
    for _ in 0..1000 {
        if !status::is_running(st) {
            return Ok(());
        }
        // Reap it if it is our child (e.g. created through the C API in this process).
        // SAFETY: waitpid with WNOHANG on a specific pid.
        unsafe {
            let mut s = 0;
            libc::waitpid(st.pid, &mut s, libc::WNOHANG);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    bail!(
        libc::EBUSY,
        "the container `{id}` did not exit after SIGKILL"
    )
}

/// `crun spec`: write the default `config.json` into `dir` (refusing to overwrite one).
pub fn write_default_spec(dir: &Path, rootless: bool) -> Result<()> {
    let p = dir.join("config.json");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&p);
    match f {
        Ok(mut f) => {
            use std::io::Write;
            f.write_all(config::default_spec_json(rootless).as_bytes())
                .with_context(|| format!("write `{}`", p.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!(libc::EEXIST, "config.json already exists")
        }
        Err(e) => Err(e).context(format!("open `{}`", p.display())),
    }
}
