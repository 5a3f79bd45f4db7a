//! Helpers shared by the caller tests (`tests/conmon.rs`, `tests/podman.rs`, `tests/bindings.rs`):
//! finding external tools, skipping with a printed reason, and probing whether our `crun`
//! binary is a runtime yet.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether we run as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `name` found on PATH (or in the sbin directories, which root's PATH may lack).
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    found
}

/// Print the skip reason in the standard form and return it (tests `return` right after).
pub fn skip(test: &str, reason: &str) {
    eprintln!("skipped: {test}: {reason}");
}

/// Why `crun` cannot serve as an OCI runtime yet, if it cannot: it must answer `--version`
/// with a `crun version` line (the runtime's CLI has not landed while it does not).
pub fn runtime_missing(crun: &Path) -> Option<String> {
    match Command::new(crun).arg("--version").output() {
        Ok(o) if o.status.success() && String::from_utf8_lossy(&o.stdout).contains("version") => {
            None
        }
        Ok(o) => Some(format!(
            "{} is not an OCI runtime yet (`--version` exited {} and printed {:?})",
            crun.display(),
            o.status,
            String::from_utf8_lossy(&o.stdout)
        )),
        Err(e) => Some(format!("cannot run {}: {e}", crun.display())),
    }
}

/// A static busybox for container root filesystems.
pub fn busybox() -> Option<PathBuf> {
    ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Podman's not-found regex (`libpod/oci_util.go`), case-insensitive: exit 127.
pub fn podman_not_found_re(msg: &str) -> bool {
    let m = msg.to_lowercase();
    m.contains("executable file not found in")
        || m.contains("no such file or directory")
        || m.contains("open executable")
}

/// Podman's permission regex: exit 126.
pub fn podman_permission_re(msg: &str) -> bool {
    let m = msg.to_lowercase();
    m.contains("permission denied") || m.contains("operation not permitted")
}
