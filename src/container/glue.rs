//! Call sites into the modules other parts of crun-rs provide (console, cgroups, seccomp, hooks,
//! handlers), kept behind one small private adapter so the runtime code reads the same whatever
//! their exact signatures are.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use oci_spec::runtime::{Hook, LinuxResources, Spec};

use crate::error::Result;

/// Pty and fd-passing helpers (`crate::console`).
pub mod console {
    use super::*;

    /// A new pty from the current `/dev/ptmx`: the master and the slave's path.
    pub fn new_terminal() -> Result<(OwnedFd, String)> {
        crate::console::new_terminal()
    }

    /// Make the slave `pty` the process's stdio and controlling terminal.
    pub fn set_stdio(pty: &str) -> Result<()> {
        crate::console::set_stdio(pty)
    }

    /// Send `fd` with `payload` over the connected socket `sock`.
    pub fn send_fd(sock: BorrowedFd<'_>, fd: BorrowedFd<'_>, payload: &[u8]) -> Result<()> {
        crate::console::send_fd_to_socket(sock.as_raw_fd(), fd.as_raw_fd(), payload)
    }

    /// Receive one fd from `sock`.
    pub fn recv_fd(sock: BorrowedFd<'_>) -> Result<OwnedFd> {
        crate::console::receive_fd_from_socket(sock.as_raw_fd(), None)
    }

    /// Connect to the console socket at `path` and send `master` (one `' '` byte + SCM_RIGHTS).
    pub fn send_console_to_socket_path(path: &str, master: BorrowedFd<'_>) -> Result<()> {
        crate::console::send_console_to_socket_path(path, master.as_raw_fd())
    }

    /// Saved terminal attributes, restored on drop.
    pub type Raw = crate::console::SavedTermios;

    /// Put `fd` in raw mode.
    pub fn set_raw(fd: BorrowedFd<'_>) -> Result<Raw> {
        crate::console::set_raw(fd.as_raw_fd())
    }

    /// `TIOCSWINSZ` (0 rows/cols: copy the caller's stdin size).
    pub fn setup_size(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> Result<()> {
        crate::console::terminal_setup_size(fd.as_raw_fd(), rows, cols)
    }
}

/// Cgroups (`crate::cgroups`).
pub mod cgroups {
    use super::*;

    /// Create the container's cgroup and move `pid` into it; returns its path.
    pub fn setup(
        id: &str,
        cgroups_path: Option<&str>,
        resources: Option<&LinuxResources>,
        systemd: bool,
        pid: i32,
    ) -> Result<String> {
        let req = crate::cgroups::CgroupRequest {
            id,
            cgroups_path,
            resources,
            systemd,
        };
        crate::cgroups::setup(&req, pid).map(|h| h.path().to_string())
    }

    /// Move `pid` into the cgroup at `path`.
    pub fn enter(path: &str, pid: i32) -> Result<()> {
        crate::cgroups::enter(path, pid)
    }

    /// Remove the cgroup at `path`.
    pub fn destroy(path: &str) -> Result<()> {
        crate::cgroups::destroy(path)
    }

    /// The pids in the cgroup at `path`.
    pub fn read_pids(path: &str, recurse: bool) -> Result<Vec<i32>> {
        crate::cgroups::read_pids(path, recurse)
    }

    /// Freeze or thaw.
    pub fn freeze(path: &str, frozen: bool) -> Result<()> {
        crate::cgroups::freeze(path, frozen)
    }

    /// Apply new resources.
    pub fn update(path: &str, res: &LinuxResources) -> Result<()> {
        crate::cgroups::update(path, res)
    }
}

/// Seccomp (`crate::seccomp`).
pub mod seccomp {
    use super::*;
    use crate::error::{Context, Error};

    /// A prepared filter.
    pub type Filter = crate::seccomp::SeccompFilter;

    /// Compile the spec's filter (in the parent, before the clone).
    pub fn prepare(spec: &Spec) -> Result<Option<Filter>> {
        match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
            None => Ok(None),
            Some(s) => crate::seccomp::prepare(s).map(Some),
        }
    }

    /// Load the filter (the last step before exec).  A user-notification fd with nowhere to
    /// go (no `listenerPath`) is closed with a warning.
    pub fn apply(f: Filter) -> Result<()> {
        if let Some(fd) = f.apply()? {
            crate::log::warning("seccomp listener fd not forwarded (no listenerPath)");
            drop(fd);
        }
        Ok(())
    }

    /// `linux.seccomp.listenerPath`, when set and not empty.
    pub fn listener_path(spec: &Spec) -> Option<String> {
        spec.linux()
            .as_ref()
            .and_then(|l| l.seccomp().as_ref())
            .and_then(|s| s.listener_path().as_ref())
            .map(|p| p.to_string_lossy().into_owned())
            .filter(|p| !p.is_empty())
    }

    /// Connect to the seccomp agent at `path` (done while the host path is still visible).
    pub fn connect_listener(path: &str) -> Result<std::os::fd::OwnedFd> {
        crate::console::socket::open_unix_domain_client_socket(path, false)
            .context("seccomp listener")
    }

    /// Load the filter and send its user-notification fd over `sock` (connected to the
    /// spec's `listenerPath`) as the spec's `containerProcessState`, with `state` (the
    /// container state JSON) and the container's `pid`.
    pub fn apply_and_send(
        f: Filter,
        sock: &std::os::fd::OwnedFd,
        spec: &Spec,
        pid: i32,
        state: &str,
    ) -> Result<()> {
        use std::os::fd::AsRawFd;
        let path = listener_path(spec).unwrap_or_default();
        let metadata = spec
            .linux()
            .as_ref()
            .and_then(|l| l.seccomp().as_ref())
            .and_then(|s| s.listener_metadata().clone())
            .unwrap_or_default();
        let state: serde_json::Value = serde_json::from_str(state)
            .map_err(|e| Error::new(libc::EINVAL, format!("container state: {e}")))?;
        let payload = crate::seccomp::listener_message(pid, &metadata, &state)?;
        let Some(fd) = f.apply()? else {
            return Ok(());
        };
        crate::console::socket::send_fd_to_socket(sock.as_raw_fd(), fd.as_raw_fd(), &payload)
            .with_context(|| format!("send seccomp fd to `{path}`"))
    }
}

/// OCI hooks (`crate::hooks`).
pub mod hooks {
    use super::*;

    /// Run `hooks` with the state JSON on stdin.
    pub fn run(hooks: &[Hook], state_json: &str, kind: &str) -> Result<()> {
        crate::hooks::run_hooks(hooks, state_json, kind)
    }
}
