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
//! When systemd runs, [`start_scope`] asks it over D-Bus (`/run/systemd/private` as root, else
//! the system bus) for a transient scope unit with `StartTransientUnit` (`PIDs`, `Slice`,
//! `Delegate=yes`, `CollectMode=inactive-or-failed`, `DefaultDependencies=no`) and waits for the
//! process to appear in it; resources are then written through cgroupfs like crun's fallback.
//! If the D-Bus socket cannot be reached at all, the cgroup is created directly with cgroupfs
//! at the same path, with a warning.  [`stop_scope`] stops the unit on destroy.

use std::path::Path;
use std::time::{Duration, Instant};

use super::dbus::{Conn, Value};
use super::CgroupMode;
use crate::error::{Error, Result};

const SYSTEMD_PRIVATE: &str = "/run/systemd/private";
const SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";

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
    Ok(path)
}

/// Connect to systemd: its private socket as root, else the system bus.
pub fn connect() -> Result<Conn> {
    // SAFETY: trivial libc call.
    let root = unsafe { libc::geteuid() } == 0;
    if root && Path::new(SYSTEMD_PRIVATE).exists() {
        if let Ok(c) = Conn::connect(Path::new(SYSTEMD_PRIVATE), false) {
            return Ok(c);
        }
    }
    Conn::connect(Path::new(SYSTEM_BUS), true)
}

/// Split `/a.slice/b-c.scope` into (`b-c.scope`, `a.slice`); the root slice is `-.slice`.
pub fn unit_and_slice(path: &str) -> Result<(String, String)> {
    let t = path.trim_end_matches('/');
    let (parent, unit) = t.rsplit_once('/').unwrap_or(("", t));
    if unit.is_empty() {
        crate::bail!(libc::EINVAL, "invalid systemd cgroup path `{path}`");
    }
    let slice = parent
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or("-.slice");
    Ok((unit.to_string(), slice.to_string()))
}

/// The `StartTransientUnit` arguments for a container scope.
pub fn transient_unit_args(unit: &str, slice: &str, pid: i32) -> Vec<Value> {
    let prop =
        |k: &str, v: Value| Value::Struct(vec![Value::Str(k.into()), Value::Variant(Box::new(v))]);
    vec![
        Value::Str(unit.into()),
        Value::Str("fail".into()),
        Value::Array(
            "(sv)".into(),
            vec![
                prop(
                    "Description",
                    Value::Str(format!("libcrun container {unit}")),
                ),
                prop("Slice", Value::Str(slice.into())),
                prop(
                    "PIDs",
                    Value::Array("u".into(), vec![Value::U32(pid as u32)]),
                ),
                prop("Delegate", Value::Bool(true)),
                prop("CollectMode", Value::Str("inactive-or-failed".into())),
                prop("DefaultDependencies", Value::Bool(false)),
            ],
        ),
        Value::Array("(sa(sv))".into(), vec![]),
    ]
}

/// Ask systemd for the scope holding `pid` at `path` and wait until the process is in it.
pub fn start_scope(path: &str, pid: i32) -> Result<()> {
    let (unit, slice) = unit_and_slice(path)?;
    let mut conn = match connect() {
        Ok(c) => c,
        Err(e) => {
            crate::log::warning(&format!(
                "systemd cgroup manager: cannot reach systemd over D-Bus ({e}); creating `{path}` directly"
            ));
            return Ok(());
        }
    };
    let reply = conn.call(
        "org.freedesktop.systemd1",
        "/org/freedesktop/systemd1",
        "org.freedesktop.systemd1.Manager",
        "StartTransientUnit",
        &transient_unit_args(&unit, &slice, pid),
    )?;
    if let Err(e) = reply {
        let errno = if e.name.ends_with(".UnitExists") {
            libc::EEXIST
        } else {
            libc::EIO
        };
        return Err(Error::new(
            errno,
            format!(
                "systemd: start transient unit `{unit}`: {}: {}",
                e.name, e.message
            ),
        ));
    }
    // The job runs asynchronously: wait for systemd to move the process.
    let deadline = Instant::now() + Duration::from_secs(10);
    let needle = format!("/{unit}");
    loop {
        let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        if cg
            .lines()
            .any(|l| l.ends_with(&needle) || l.contains(&format!("{needle}/")))
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            crate::bail!(
                libc::ETIMEDOUT,
                "systemd did not move pid {pid} into `{unit}`"
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Stop the scope unit of `path` if systemd runs and the path names a scope; errors (no such
/// unit, no D-Bus) are ignored because destroy removes the cgroup itself afterwards.
pub fn stop_scope(path: &str) {
    if !running() {
        return;
    }
    let Ok((unit, _)) = unit_and_slice(path) else {
        return;
    };
    if !unit.ends_with(".scope") {
        return;
    }
    if let Ok(mut c) = connect() {
        let _ = c.call(
            "org.freedesktop.systemd1",
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            "StopUnit",
            &[Value::Str(unit), Value::Str("replace".into())],
        );
    }
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
    fn units() {
        assert_eq!(
            unit_and_slice("/machine.slice/libpod-abc.scope").unwrap(),
            ("libpod-abc.scope".to_string(), "machine.slice".to_string())
        );
        assert_eq!(
            unit_and_slice("/a.slice/a-b.slice/x.scope").unwrap(),
            ("x.scope".to_string(), "a-b.slice".to_string())
        );
        assert_eq!(
            unit_and_slice("/x.scope").unwrap(),
            ("x.scope".to_string(), "-.slice".to_string())
        );
        let args = transient_unit_args("x.scope", "-.slice", 7);
        let sig: String = args.iter().map(Value::signature).collect();
        assert_eq!(sig, "ssa(sv)a(sa(sv))");
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
