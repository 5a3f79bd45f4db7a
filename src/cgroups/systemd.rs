//! The `--systemd-cgroup` manager.
//!
//! `cgroupsPath` uses systemd's `slice:prefix:name` form (runc/crun): the container gets the
//! scope `prefix-name.scope` inside `slice` (`system.slice` when empty), e.g.
//! `machine.slice:libpod:abc` -> `/machine.slice/libpod-abc.scope`.  Without a `cgroupsPath`
//! the scope is `crun-<id>.scope` in `system.slice`.
//!
//! When systemd is not running (no `/run/systemd/system`, sd_booted(3)'s test), asking for the
//! systemd manager is an `ENOTSUP` error saying so.
//!
//! **Limitation:** crun-rs does not talk D-Bus.  When systemd is running, the scope's cgroup is
//! created directly with cgroupfs at the path systemd would use (with a warning), so the
//! container is placed and limited as requested, but systemd does not know the unit.

use std::path::Path;

use super::CgroupMode;
use crate::error::Result;

/// Whether systemd is the running init system (`sd_booted`).
pub fn running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// Expand a slice name into its path: `a-b-c.slice` -> `/a.slice/a-b.slice/a-b-c.slice`.
pub fn expand_slice(slice: &str) -> Result<String> {
    let Some(base) = slice.strip_suffix(".slice") else {
        crate::bail!(
            libc::EINVAL,
            "invalid slice name `{slice}`: no `.slice` suffix"
        );
    };
    if base == "-" {
        return Ok(String::new());
    }
    if base.is_empty()
        || base.contains('/')
        || base.starts_with('-')
        || base.ends_with('-')
        || base.contains("--")
    {
        crate::bail!(libc::EINVAL, "invalid slice name `{slice}`");
    }
    let mut out = String::new();
    let mut prefix = String::new();
    for part in base.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        out.push('/');
        out.push_str(&prefix);
        out.push_str(".slice");
    }
    Ok(out)
}

/// The cgroup path (relative to the hierarchy roots) for a `slice:prefix:name` cgroupsPath.
pub fn scope_path(id: &str, cgroups_path: Option<&str>) -> Result<String> {
    let (slice, scope) = match cgroups_path.filter(|p| !p.is_empty()) {
        None => ("system.slice".to_string(), format!("crun-{id}.scope")),
        Some(p) => {
            let parts: Vec<&str> = p.split(':').collect();
            match parts.as_slice() {
                [slice, prefix, name] => {
                    let slice = if slice.is_empty() {
                        "system.slice"
                    } else {
                        slice
                    };
                    let scope = if name.ends_with(".slice") {
                        // A name that is a slice means "run in that slice" (runc).
                        String::new()
                    } else if prefix.is_empty() {
                        format!("{name}.scope")
                    } else {
                        format!("{prefix}-{name}.scope")
                    };
                    if scope.is_empty() {
                        return expand_slice(name);
                    }
                    (slice.to_string(), scope)
                }
                _ => crate::bail!(
                    libc::EINVAL,
                    "invalid systemd cgroupsPath `{p}`: expected `slice:prefix:name`"
                ),
            }
        }
    };
    if scope.contains('/') {
        crate::bail!(libc::EINVAL, "invalid systemd scope name `{scope}`");
    }
    Ok(format!("{}/{scope}", expand_slice(&slice)?))
}

/// Resolve the cgroup path for the systemd manager, failing when systemd is not running.
pub fn cgroup_path(id: &str, cgroups_path: Option<&str>, _mode: CgroupMode) -> Result<String> {
    let path = scope_path(id, cgroups_path)?;
    if !running() {
        crate::bail!(
            libc::ENOTSUP,
            "systemd cgroup manager requested but systemd is not running (no `/run/systemd/system`)"
        );
    }
    crate::log::warning(&format!(
        "systemd cgroup manager: D-Bus is not supported by crun-rs, creating `{path}` directly"
    ));
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_and_scopes() {
        assert_eq!(
            expand_slice("machine-libpod.slice").unwrap(),
            "/machine.slice/machine-libpod.slice"
        );
        assert_eq!(expand_slice("-.slice").unwrap(), "");
        assert!(expand_slice("foo").is_err());
        assert_eq!(
            scope_path("abc", Some("machine.slice:libpod:abc")).unwrap(),
            "/machine.slice/libpod-abc.scope"
        );
        assert_eq!(
            scope_path("abc", None).unwrap(),
            "/system.slice/crun-abc.scope"
        );
        assert_eq!(
            scope_path("abc", Some(":crun:abc")).unwrap(),
            "/system.slice/crun-abc.scope"
        );
        assert_eq!(
            scope_path("abc", Some("/not/systemd")).unwrap_err().errno(),
            libc::EINVAL
        );
    }

    #[test]
    fn not_running_is_enotsup() {
        if running() {
            eprintln!("skipped: systemd is running on this machine");
            return;
        }
        let e = cgroup_path("abc", None, CgroupMode::Hybrid).unwrap_err();
        assert_eq!(e.errno(), libc::ENOTSUP);
        assert!(e.message().contains("systemd is not running"), "{e}");
    }
}
