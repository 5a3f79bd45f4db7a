//! Loading and checking `config.json`, and the default spec `crun spec` writes.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use crate::bail;
use crate::error::{Context, Error, Result};

/// A loaded container configuration: the parsed spec plus the text it came from.
#[derive(Debug, Clone)]
pub struct Container {
    /// The parsed OCI spec.
    pub spec: Spec,
    /// The file it was loaded from, if any.
    pub config_file: Option<PathBuf>,
    /// The raw JSON (copied to `<state>/config.json`).
    pub config_content: String,
}

impl Container {
    /// Load `path` (crun's `libcrun_container_load_from_file`).
    pub fn load_from_file(path: &Path) -> Result<Container> {
        let content =
            std::fs::read_to_string(path).with_context(|| format!("load `{}`", path.display()))?;
        let spec = parse_spec(&content).with_context(|| format!("load `{}`", path.display()))?;
        Ok(Container {
            spec,
            config_file: Some(path.to_path_buf()),
            config_content: content,
        })
    }

    /// Parse JSON text (crun's `libcrun_container_load_from_memory`).
    pub fn load_from_memory(json: &str) -> Result<Container> {
        let spec = parse_spec(json).context("load configuration")?;
        Ok(Container {
            spec,
            config_file: None,
            config_content: json.to_string(),
        })
    }

    /// The process section, or an error naming it.
    pub fn process(&self) -> Result<&oci_spec::runtime::Process> {
        self.spec
            .process()
            .as_ref()
            .ok_or_else(|| Error::new(libc::EINVAL, "block `process` not found"))
    }

    /// Whether `process.terminal` is set.
    pub fn terminal(&self) -> bool {
        self.spec
            .process()
            .as_ref()
            .and_then(|p| p.terminal())
            .unwrap_or(false)
    }

    /// The annotations as pairs.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.spec
            .annotations()
            .as_ref()
            .and_then(|a| a.get(key))
            .map(String::as_str)
    }
}

/// Parse a config, with the line and column of a syntax error, and check `ociVersion`.
pub fn parse_spec(json: &str) -> Result<Spec> {
    // First as plain JSON, so syntax errors carry their position.
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| {
        Error::new(
            libc::EINVAL,
            format!(
                "cannot parse configuration: line {} column {}: {}",
                e.line(),
                e.column(),
                strip_position(&e.to_string())
            ),
        )
    })?;
    check_version(&v)?;
    serde_json::from_str::<Spec>(json).map_err(|e| {
        Error::new(
            libc::EINVAL,
            format!(
                "invalid configuration: line {} column {}: {}",
                e.line(),
                e.column(),
                strip_position(&e.to_string())
            ),
        )
    })
}

fn strip_position(s: &str) -> &str {
    match s.rfind(" at line ") {
        Some(i) => &s[..i],
        None => s,
    }
}

fn check_version(v: &serde_json::Value) -> Result<()> {
    match v.get("ociVersion").and_then(|x| x.as_str()) {
        None => bail!(
            libc::EINVAL,
            "unknown version specified: `ociVersion` is missing"
        ),
        Some(ver) if ver.starts_with("1.") || ver == "1" => Ok(()),
        Some(ver) => bail!(libc::EINVAL, "unknown version specified `{ver}`"),
    }
}

/// Checks crun makes before running a container (`check_config_file`): a root path unless a
/// handler is used, a process with non-empty args.
pub fn check_for_run(c: &Container, has_handler: bool) -> Result<()> {
    match c.spec.root() {
        Some(r) if !r.path().as_os_str().is_empty() => {}
        _ if has_handler => {}
        _ => bail!(
            libc::EINVAL,
            "invalid configuration: `root.path` is missing"
        ),
    }
    let p = c.process()?;
    match p.args() {
        Some(a) if !a.is_empty() && !a[0].is_empty() => {}
        _ => bail!(
            libc::EINVAL,
            "invalid configuration: `process.args` is empty"
        ),
    }
    if c.spec.linux().is_none() {
        bail!(
            libc::EINVAL,
            "invalid configuration: block `linux` not found"
        );
    }
    Ok(())
}

/// The rootfs path: `root.path`, relative to the bundle.
pub fn rootfs_path(c: &Container, bundle: &Path) -> Option<PathBuf> {
    let r = c.spec.root().as_ref()?;
    let p = r.path();
    if p.as_os_str().is_empty() {
        return None;
    }
    Some(if p.is_absolute() {
        p.to_path_buf()
    } else {
        bundle.join(p)
    })
}

/// The default `config.json` (`crun spec`), rootless or not.
pub fn default_spec_json(rootless: bool) -> String {
    let caps = r#"[
                "CAP_CHOWN",
                "CAP_DAC_OVERRIDE",
                "CAP_FSETID",
                "CAP_FOWNER",
                "CAP_MKNOD",
                "CAP_NET_RAW",
                "CAP_SETGID",
                "CAP_SETUID",
                "CAP_SETFCAP",
                "CAP_SETPCAP",
                "CAP_NET_BIND_SERVICE",
                "CAP_SYS_CHROOT",
                "CAP_KILL",
                "CAP_AUDIT_WRITE"
            ]"#;
    let (ns, idmaps, sys_mount, cgroup_mount) = if rootless {
        (
            r#"{ "type": "pid" }, { "type": "network" }, { "type": "ipc" }, { "type": "uts" }, { "type": "user" }, { "type": "cgroup" }, { "type": "mount" }"#,
            format!(
                r#",
        "uidMappings": [ {{ "containerID": 0, "hostID": {}, "size": 1 }} ],
        "gidMappings": [ {{ "containerID": 0, "hostID": {}, "size": 1 }} ]"#,
                // SAFETY: getuid/getgid cannot fail.
                unsafe { libc::getuid() },
                unsafe { libc::getgid() }
            ),
            r#"{ "destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"] }"#,
            "",
        )
    } else {
        (
            r#"{ "type": "pid" }, { "type": "network" }, { "type": "ipc" }, { "type": "uts" }, { "type": "cgroup" }, { "type": "mount" }"#,
            String::new(),
            r#"{ "destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"] }"#,
            r#",
        { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }"#,
        )
    };
    format!(
        r#"{{
    "ociVersion": "1.0.0",
    "process": {{
        "terminal": true,
        "user": {{ "uid": 0, "gid": 0 }},
        "args": [ "sh" ],
        "env": [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "TERM=xterm"
        ],
        "cwd": "/",
        "capabilities": {{
            "bounding": {caps},
            "effective": {caps},
            "inheritable": [],
            "permitted": {caps},
            "ambient": {caps}
        }},
        "rlimits": [ {{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }} ],
        "noNewPrivileges": true
    }},
    "root": {{ "path": "rootfs", "readonly": true }},
    "hostname": "crun",
    "mounts": [
        {{ "destination": "/proc", "type": "proc", "source": "proc" }},
        {{ "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] }},
        {{ "destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"{gid5}] }},
        {{ "destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] }},
        {{ "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"] }},
        {sys_mount}{cgroup_mount}
    ],
    "linux": {{
        "resources": {{ "devices": [ {{ "allow": false, "access": "rwm" }} ] }},
        "namespaces": [ {ns} ]{idmaps},
        "maskedPaths": [
            "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
            "/proc/scsi"
        ],
        "readonlyPaths": [
            "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
        ]
    }}
}}
"#,
        gid5 = if rootless { "" } else { r#", "gid=5""# },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_have_line_and_column() {
        let e = parse_spec("{\n  \"ociVersion\": \"1.0.0\",\n  oops\n}").unwrap_err();
        assert_eq!(e.errno(), libc::EINVAL);
        assert!(e.message().contains("line 3 column"), "{}", e.message());
    }

    #[test]
    fn version_major_is_checked() {
        let e = parse_spec(r#"{"ociVersion": "2.0.0"}"#).unwrap_err();
        assert!(e.message().contains("unknown version"), "{}", e.message());
        assert!(parse_spec(r#"{"ociVersion": "1.3.0"}"#).is_ok());
        assert!(parse_spec(r#"{"ociVersion": "1.0.2-dev"}"#).is_ok());
    }

    #[test]
    fn default_specs_parse_and_pass_checks() {
        for rootless in [false, true] {
            let c = Container::load_from_memory(&default_spec_json(rootless)).unwrap();
            check_for_run(&c, false).unwrap();
            assert!(c.terminal());
        }
    }

    #[test]
    fn empty_args_and_missing_root_are_rejected() {
        let c = Container::load_from_memory(
            r#"{"ociVersion":"1.0.0","root":{"path":"r"},"linux":{},"process":{"args":[],"cwd":"/","user":{"uid":0,"gid":0}}}"#,
        )
        .unwrap();
        assert!(check_for_run(&c, false)
            .unwrap_err()
            .message()
            .contains("process.args"));
        let c = Container::load_from_memory(
            r#"{"ociVersion":"1.0.0","linux":{},"process":{"args":["x"],"cwd":"/","user":{"uid":0,"gid":0}}}"#,
        )
        .unwrap();
        assert!(check_for_run(&c, false)
            .unwrap_err()
            .message()
            .contains("root.path"));
        assert!(check_for_run(&c, true).is_ok());
    }
}
