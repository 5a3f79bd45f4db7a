//! Container state on disk, laid out as crun lays it out.
//!
//! The state root is `--root`, else `$XDG_RUNTIME_DIR/crun` when not running as root, else
//! `/run/crun`.  Each container has `<root>/<id>/` holding `status` (a JSON document with crun's
//! keys), crun's copy of `config.json`, the `exec.fifo` while the container is created but not
//! started, and a `lock` file that serializes operations on the id (a POSIX record lock).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bail;
use crate::error::{Context, Error, Result};

/// The longest id accepted (crun's names end up in paths and cgroup names).
pub const MAX_ID_LEN: usize = 1024;

/// The contents of `<state>/<id>/status` (crun's `libcrun_container_status_s`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub pid: i32,
    #[serde(rename = "process-start-time", default)]
    pub process_start_time: u64,
    #[serde(rename = "cgroup-path", default)]
    pub cgroup_path: String,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub rootfs: String,
    #[serde(rename = "systemd-cgroup", default)]
    pub systemd_cgroup: bool,
    #[serde(default)]
    pub bundle: String,
    #[serde(default)]
    pub created: String,
    #[serde(default)]
    pub owner: String,
    #[serde(default)]
    pub detached: bool,
    #[serde(default)]
    pub external_descriptors: String,
}

/// Reject ids that cannot name a state directory safely.
pub fn validate_id(id: &str) -> Result<()> {
    if id.is_empty() {
        bail!(libc::EINVAL, "invalid container id: the id is empty");
    }
    if id == "." || id == ".." || id.contains('/') || id.contains('\0') {
        bail!(libc::EINVAL, "invalid container id `{id}`");
    }
    if id.len() > MAX_ID_LEN {
        bail!(
            libc::ENAMETOOLONG,
            "invalid container id: the id is longer than {MAX_ID_LEN} bytes"
        );
    }
    Ok(())
}

/// The state root: `state_root`, else `$XDG_RUNTIME_DIR/crun` for non-root users, else `/run/crun`.
pub fn state_root(state_root: Option<&str>) -> PathBuf {
    if let Some(r) = state_root.filter(|r| !r.is_empty()) {
        return PathBuf::from(r);
    }
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR").filter(|x| !x.is_empty()) {
            return PathBuf::from(x).join("crun");
        }
    }
    PathBuf::from("/run/crun")
}

/// Create the state root (mode 0700) if needed and return it.
pub fn ensure_state_root(root: Option<&str>) -> Result<PathBuf> {
    let r = state_root(root);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&r)
        .with_context(|| format!("mkdir `{}`", r.display()))?;
    Ok(r)
}

/// `<root>/<id>` (crun's `libcrun_get_state_directory`).
pub fn state_dir(root: Option<&str>, id: &str) -> Result<PathBuf> {
    validate_id(id)?;
    Ok(state_root(root).join(id))
}

/// An exclusive lock on one container id, held until dropped.
pub struct IdLock {
    _file: File,
}

/// Lock `<dir>/lock` (exclusive, waits).  `dir` must exist.
pub fn lock_dir(dir: &Path) -> Result<IdLock> {
    let p = dir.join("lock");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&p)
        .with_context(|| format!("open lock file `{}`", p.display()))?;
    // A POSIX record lock, not flock(2): the container process is forked while the lock is
    // held, and record locks (unlike flock and OFD locks) are not inherited by children.
    loop {
        // SAFETY: flock is plain data; fcntl reads it.
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = libc::F_WRLCK as libc::c_short;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        // SAFETY: fcntl on an fd we own with a valid struct.
        let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLKW, &fl) };
        if r == 0 {
            break;
        }
        let e = Error::last_os_error(format!("lock `{}`", p.display()));
        if e.errno() != libc::EINTR {
            return Err(e);
        }
    }
    Ok(IdLock { _file: file })
}

/// Lock an existing container's state directory; ENOENT names the container.
pub fn lock_container(root: Option<&str>, id: &str) -> Result<(PathBuf, IdLock)> {
    let dir = state_dir(root, id)?;
    if !dir.join("status").exists() && !dir.is_dir() {
        return Err(not_found(id));
    }
    let l = lock_dir(&dir).map_err(|e| {
        if e.errno() == libc::ENOENT {
            not_found(id)
        } else {
            e
        }
    })?;
    Ok((dir, l))
}

/// The error for an unknown container.
pub fn not_found(id: &str) -> Error {
    Error::new(libc::ENOENT, format!("container `{id}` does not exist"))
}

/// Write `status` atomically (temp file + rename) into `<root>/<id>/status`.
pub fn write_status(root: Option<&str>, id: &str, st: &Status) -> Result<()> {
    let dir = state_dir(root, id)?;
    write_status_in(&dir, st)
}

/// Write `status` atomically into `<dir>/status`.
pub fn write_status_in(dir: &Path, st: &Status) -> Result<()> {
    let tmp = dir.join("status.tmp");
    let data = serde_json::to_vec_pretty(st)
        .map_err(|e| Error::new(libc::EINVAL, format!("serialize status: {e}")))?;
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&tmp)
        .with_context(|| format!("open `{}`", tmp.display()))?;
    f.write_all(&data)
        .with_context(|| format!("write `{}`", tmp.display()))?;
    drop(f);
    let dst = dir.join("status");
    fs::rename(&tmp, &dst).with_context(|| format!("rename `{}`", dst.display()))
}

/// Read `<root>/<id>/status`.
pub fn read_status(root: Option<&str>, id: &str) -> Result<Status> {
    let dir = state_dir(root, id)?;
    read_status_in(&dir, id)
}

/// Read `<dir>/status`.
pub fn read_status_in(dir: &Path, id: &str) -> Result<Status> {
    let p = dir.join("status");
    let data = match fs::read(&p) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_found(id)),
        Err(e) => return Err(io_err(e, format!("read `{}`", p.display()))),
    };
    serde_json::from_slice(&data).map_err(|e| {
        Error::new(
            libc::EINVAL,
            format!("parse status file `{}`: {e}", p.display()),
        )
    })
}

/// An io::Error with a message, errno preserved (see `Context`).
pub(crate) fn io_err(e: std::io::Error, msg: String) -> Error {
    match Err::<(), _>(e).context(msg) {
        Err(x) => x,
        Ok(()) => Error::msg("internal error"),
    }
}

/// Remove the state directory of `id` (crun's `libcrun_container_delete_status`).
pub fn delete_status(root: Option<&str>, id: &str) -> Result<()> {
    let dir = state_dir(root, id)?;
    match fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(not_found(id)),
        Err(e) => Err(io_err(e, format!("remove `{}`", dir.display()))),
    }
}

/// The names of every container in the state root (directories holding a `status` file),
/// sorted.
pub fn list(root: Option<&str>) -> Result<Vec<String>> {
    let r = state_root(root);
    let rd = match fs::read_dir(&r) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(e, format!("opendir `{}`", r.display()))),
    };
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.with_context(|| format!("readdir `{}`", r.display()))?;
        let name = ent.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if ent.path().join("status").exists() {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

/// The start time of `pid` (field 22 of `/proc/<pid>/stat`), or None if it does not exist.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: skip past the last ')'.
    let rest = &s[s.rfind(')')? + 1..];
    // Fields after ')' start at field 3; starttime is field 22.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the process recorded in `st` is still alive (and is the same process: the start
/// time must match, so a recycled pid does not count).  A zombie counts as not running.
pub fn is_running(st: &Status) -> bool {
    if st.pid <= 0 {
        return false;
    }
    let Ok(s) = fs::read_to_string(format!("/proc/{}/stat", st.pid)) else {
        return false;
    };
    let Some(close) = s.rfind(')') else {
        return false;
    };
    let mut fields = s[close + 1..].split_whitespace();
    let state = fields.next().unwrap_or("");
    if state == "Z" || state == "X" {
        return false;
    }
    match process_start_time(st.pid) {
        Some(t) => st.process_start_time == 0 || t == st.process_start_time,
        None => false,
    }
}

/// The OCI status string of a container: `created`, `running`, `paused` or `stopped`.
pub fn status_string(dir: &Path, st: &Status) -> &'static str {
    if !is_running(st) {
        return "stopped";
    }
    if dir.join("exec.fifo").exists() {
        return "created";
    }
    if is_paused(st) {
        return "paused";
    }
    "running"
}

fn is_paused(st: &Status) -> bool {
    // A frozen process shows state `T`/`D` only on v1; rely on the cgroup freezer files.
    if st.cgroup_path.is_empty() {
        return false;
    }
    let v2 = format!("/sys/fs/cgroup/{}/cgroup.freeze", st.cgroup_path);
    if let Ok(s) = fs::read_to_string(&v2) {
        return s.trim() == "1";
    }
    let v1 = format!("/sys/fs/cgroup/freezer/{}/freezer.state", st.cgroup_path);
    if let Ok(s) = fs::read_to_string(v1) {
        return s.trim() == "FROZEN";
    }
    false
}

/// The current time as crun writes `created`: RFC 3339 with nanoseconds, UTC.
pub fn now_rfc3339() -> String {
    let (tm, nsec) = crate::sys::utc_now();
    format!("{}.{:09}Z", crate::sys::format_date_time(&tm), nsec)
}

/// The user name of the current effective uid (crun's `owner`), or the number.
pub fn current_owner() -> String {
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() };
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_validated() {
        assert!(validate_id("abc-1_2.3").is_ok());
        for bad in ["", ".", "..", "a/b", "/x"] {
            let e = validate_id(bad).unwrap_err();
            assert_eq!(e.errno(), libc::EINVAL, "{bad}");
        }
        let long = "x".repeat(MAX_ID_LEN + 1);
        assert_eq!(validate_id(&long).unwrap_err().errno(), libc::ENAMETOOLONG);
    }

    #[test]
    fn status_round_trips_with_crun_keys() {
        let d = std::env::temp_dir().join(format!("crun-rs-status-{}", std::process::id()));
        fs::create_dir_all(d.join("c1")).unwrap();
        let root = d.to_str().unwrap();
        let st = Status {
            pid: 42,
            process_start_time: 7,
            cgroup_path: "/x".into(),
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: now_rfc3339(),
            owner: "root".into(),
            detached: true,
            ..Default::default()
        };
        write_status(Some(root), "c1", &st).unwrap();
        let raw = fs::read_to_string(d.join("c1/status")).unwrap();
        for k in [
            "\"pid\"",
            "\"process-start-time\"",
            "\"cgroup-path\"",
            "\"scope\"",
            "\"rootfs\"",
            "\"systemd-cgroup\"",
            "\"bundle\"",
            "\"created\"",
            "\"owner\"",
            "\"detached\"",
            "\"external_descriptors\"",
        ] {
            assert!(raw.contains(k), "{k} missing in {raw}");
        }
        assert_eq!(read_status(Some(root), "c1").unwrap(), st);
        assert_eq!(list(Some(root)).unwrap(), vec!["c1".to_string()]);
        delete_status(Some(root), "c1").unwrap();
        assert_eq!(
            read_status(Some(root), "c1").unwrap_err().errno(),
            libc::ENOENT
        );
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn own_process_is_running() {
        let pid = std::process::id() as i32;
        let t = process_start_time(pid).unwrap();
        let st = Status {
            pid,
            process_start_time: t,
            ..Default::default()
        };
        assert!(is_running(&st));
        let st2 = Status {
            pid,
            process_start_time: t + 1,
            ..Default::default()
        };
        assert!(!is_running(&st2));
    }
}
