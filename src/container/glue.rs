//! Call sites into the modules other parts of crun-rs provide (console, cgroups, seccomp, hooks,
//! handlers).  Keeping them behind this small private adapter lets the runtime build while
//! those modules land; each function says what it forwards to.

use std::os::fd::{BorrowedFd, OwnedFd};

use oci_spec::runtime::{Hook, LinuxResources, Spec};

use crate::error::{Error, Result};

fn pending(what: &str) -> Error {
    Error::new(
        libc::ENOTSUP,
        format!("{what} is not available in this build of crun-rs"),
    )
}

/// Pty and fd-passing helpers (`crate::console`).
pub mod console {
    use super::*;

    /// A new pty from the current `/dev/ptmx`: the master and the slave's path.
    pub fn new_terminal() -> Result<(OwnedFd, String)> {
        Err(pending("terminal support"))
    }

    /// Make the slave `pty` the process's stdio and controlling terminal.
    pub fn set_stdio(_pty: &str) -> Result<()> {
        Err(pending("terminal support"))
    }

    /// Send `fd` with `payload` over the connected socket `sock`.
    pub fn send_fd(_sock: BorrowedFd<'_>, _fd: BorrowedFd<'_>, _payload: &[u8]) -> Result<()> {
        Err(pending("terminal support"))
    }

    /// Receive one fd from `sock`.
    pub fn recv_fd(_sock: BorrowedFd<'_>) -> Result<OwnedFd> {
        Err(pending("terminal support"))
    }

    /// Connect to the console socket at `path` and send `master` (one `' '` byte + SCM_RIGHTS).
    pub fn send_console_to_socket_path(_path: &str, _master: BorrowedFd<'_>) -> Result<()> {
        Err(pending("terminal support"))
    }

    /// Saved terminal attributes, restored on drop.
    pub struct Raw;

    /// Put `fd` in raw mode.
    pub fn set_raw(_fd: BorrowedFd<'_>) -> Result<Raw> {
        Err(pending("terminal support"))
    }

    /// `TIOCSWINSZ` (0 rows/cols: copy the caller's stdin size).
    pub fn setup_size(_fd: BorrowedFd<'_>, _rows: u16, _cols: u16) -> Result<()> {
        Err(pending("terminal support"))
    }
}

/// Cgroups (`crate::cgroups`).  Until it lands, containers run in the caller's cgroup and the
/// recorded `cgroup-path` is empty.
pub mod cgroups {
    use super::*;

    /// Create the container's cgroup and move `pid` into it; returns its path.
    pub fn setup(
        _id: &str,
        _cgroups_path: Option<&str>,
        _resources: Option<&LinuxResources>,
        _systemd: bool,
        _pid: i32,
    ) -> Result<String> {
        Ok(String::new())
    }

    /// Move `pid` into the cgroup at `path`.
    pub fn enter(_path: &str, _pid: i32) -> Result<()> {
        Ok(())
    }

    /// Remove the cgroup at `path`.
    pub fn destroy(_path: &str) -> Result<()> {
        Ok(())
    }

    /// The pids in the cgroup at `path`.
    pub fn read_pids(path: &str, _recurse: bool) -> Result<Vec<i32>> {
        if path.is_empty() {
            return Err(pending("cgroup support"));
        }
        Err(pending("cgroup support"))
    }

    /// Freeze or thaw.
    pub fn freeze(_path: &str, _frozen: bool) -> Result<()> {
        Err(pending("cgroup support"))
    }

    /// Apply new resources.
    pub fn update(_path: &str, _res: &LinuxResources) -> Result<()> {
        Err(pending("cgroup support"))
    }
}

/// Seccomp (`crate::seccomp`).
pub mod seccomp {
    use super::*;

    /// A prepared filter.
    pub struct Filter;

    /// Compile the spec's filter (in the parent or before the pivot).
    pub fn prepare(spec: &Spec) -> Result<Option<Filter>> {
        match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
            None => Ok(None),
            Some(_) => {
                crate::log::warning("seccomp is not available in this build: filter ignored");
                Ok(None)
            }
        }
    }

    /// Load the filter (the last step before exec).
    pub fn apply(_f: Filter) -> Result<()> {
        Ok(())
    }
}

/// OCI hooks (`crate::hooks`).
pub mod hooks {
    use super::*;

    /// Run `hooks` with the state JSON on stdin.
    pub fn run(hooks: &[Hook], _state_json: &str, kind: &str) -> Result<()> {
        if hooks.is_empty() {
            return Ok(());
        }
        Err(pending(&format!("running `{kind}` hooks")))
    }
}
