//! cgroups: create a container's cgroup, apply `linux.resources`, move processes in, freeze,
//! update and destroy it, on cgroup v1 ("legacy"), hybrid (v1 controllers plus a v2 hierarchy at
//! `/sys/fs/cgroup/unified`) and v2 ("unified") hosts.
//!
//! # Paths
//! A cgroup is named by one path relative to the root of every hierarchy, e.g. `/mycontainer`;
//! that is what [`CgroupHandle::path`] returns and what crun stores as `cgroup-path` in its
//! status file.  As in crun's cgroupfs manager:
//! * no `cgroupsPath`: `/<id>`;
//! * an absolute `cgroupsPath` is used as is;
//! * a relative `cgroupsPath` is taken relative to the hierarchy root (`foo/bar` -> `/foo/bar`).
//!
//! With `systemd: true` the `cgroupsPath` is systemd's `slice:prefix:name` form; see
//! [`systemd`].
//!
//! # Hierarchies
//! The hierarchies are found in `/proc/thread-self/mountinfo` (cgroup and cgroup2 mounts under
//! `/sys/fs/cgroup`).  On v1 and hybrid hosts the cgroup is created in every v1 hierarchy
//! (including named ones such as `name=systemd`) and, on hybrid hosts, also in the v2
//! hierarchy.  A resource whose controller is not mounted as v1 but is available in the hybrid
//! v2 hierarchy (hugetlb on some kernels) is applied there, v2 style.
//!
//! # Errors
//! A value the kernel rejects is an error naming the file and the value, e.g.
//! ``write `memory.limit_in_bytes` = `abc`: Invalid argument``.  [`setup`] removes what it
//! created when it fails.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;

use crate::error::{Context, Error, Result};

pub mod bpf;
pub mod dbus;
pub mod systemd;
pub mod v1;
pub mod v2;

/// Where the hierarchies are mounted.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The host's cgroup layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupMode {
    /// cgroup v1 only.
    Legacy,
    /// v1 controllers plus a v2 hierarchy (usually at `/sys/fs/cgroup/unified`).
    Hybrid,
    /// cgroup v2 only, mounted at `/sys/fs/cgroup`.
    Unified,
}

/// What the runtime asks for.
#[derive(Debug, Clone, Copy)]
pub struct CgroupRequest<'a> {
    /// The container id.
    pub id: &'a str,
    /// `linux.cgroupsPath`.
    pub cgroups_path: Option<&'a str>,
    /// `linux.resources`.
    pub resources: Option<&'a LinuxResources>,
    /// `--systemd-cgroup`.
    pub systemd: bool,
}

/// A created cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupHandle {
    path: String,
    mode: CgroupMode,
}

impl CgroupHandle {
    /// The path relative to every hierarchy root (crun's `cgroup-path`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The layout the cgroup was created for.
    pub fn mode(&self) -> CgroupMode {
        self.mode
    }
}

/// One v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Hierarchy {
    /// Its mount point.
    pub mount: PathBuf,
    /// Its controllers (`cpu`, `cpuacct`, ...), and `name=xxx` for a named hierarchy.
    pub controllers: BTreeSet<String>,
}

impl V1Hierarchy {
    /// Whether it carries `controller`.
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.contains(controller)
    }
}

/// The mounted hierarchies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hierarchies {
    /// The v1 hierarchies.
    pub v1: Vec<V1Hierarchy>,
    /// The v2 hierarchy's mount point, if any.
    pub unified: Option<PathBuf>,
}

impl Hierarchies {
    /// Read `/proc/thread-self/mountinfo` (the calling thread's mount namespace).
    pub fn detect() -> Result<Hierarchies> {
        let text = fs::read_to_string("/proc/thread-self/mountinfo")
            .or_else(|_| fs::read_to_string("/proc/self/mountinfo"))
            .context("read `/proc/self/mountinfo`")?;
        Ok(Self::parse_mountinfo(&text))
    }

    /// Parse mountinfo text; only mounts under `/sys/fs/cgroup` count, the last one mounted on
    /// a mount point wins.
    pub fn parse_mountinfo(text: &str) -> Hierarchies {
        let mut h = Hierarchies::default();
        for line in text.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let fields: Vec<&str> = left.split(' ').collect();
            let rfields: Vec<&str> = right.split(' ').collect();
            if fields.len() < 5 || rfields.len() < 3 {
                continue;
            }
            let mount = PathBuf::from(unescape_mountinfo(fields[4]));
            if !mount.starts_with(CGROUP_ROOT) {
                continue;
            }
            // Something mounted over a previous mount point hides it.
            h.v1.retain(|x| x.mount != mount);
            if h.unified.as_deref() == Some(mount.as_path()) {
                h.unified = None;
            }
            if mount == Path::new(CGROUP_ROOT) {
                // A new filesystem on /sys/fs/cgroup hides everything below it.
                h.v1.clear();
                h.unified = None;
            }
            match rfields[0] {
                "cgroup2" => h.unified = Some(mount),
                "cgroup" => {
                    let controllers: BTreeSet<String> = rfields[2]
                        .split(',')
                        .filter(|o| {
                            !matches!(
                                *o,
                                "rw" | "ro"
                                    | "relatime"
                                    | "noatime"
                                    | "nosuid"
                                    | "nodev"
                                    | "noexec"
                                    | "clone_children"
                                    | "noprefix"
                                    | "xattr"
                                    | "cpuset_v2_mode"
                                    | "favordynmods"
                            ) && !o.starts_with("release_agent=")
                        })
                        .map(str::to_string)
                        .collect();
                    if !controllers.is_empty() {
                        h.v1.push(V1Hierarchy { mount, controllers });
                    }
                }
                _ => {}
            }
        }
        h
    }

    /// The layout these mounts make.
    pub fn mode(&self) -> Result<CgroupMode> {
        match (&self.unified, self.v1.is_empty()) {
            (Some(u), true) if u == Path::new(CGROUP_ROOT) => Ok(CgroupMode::Unified),
            (Some(_), true) => Ok(CgroupMode::Unified),
            (Some(_), false) => Ok(CgroupMode::Hybrid),
            (None, false) => Ok(CgroupMode::Legacy),
            (None, true) => Err(Error::new(
                libc::ENOENT,
                format!("no cgroup hierarchy is mounted under `{CGROUP_ROOT}`"),
            )),
        }
    }

    /// The v1 hierarchy carrying `controller`.
    pub fn v1_for(&self, controller: &str) -> Option<&V1Hierarchy> {
        self.v1.iter().find(|h| h.has(controller))
    }

    /// The v2 hierarchy, when it is the only one (pure v2).
    fn pure_v2(&self) -> Option<&Path> {
        if self.v1.is_empty() {
            self.unified.as_deref()
        } else {
            None
        }
    }

    /// Every directory the cgroup `path` has (or would have), v1 first.
    pub fn dirs(&self, path: &str) -> Vec<PathBuf> {
        let rel = path.trim_start_matches('/');
        let mut v: Vec<PathBuf> = self.v1.iter().map(|h| h.mount.join(rel)).collect();
        if let Some(u) = &self.unified {
            v.push(u.join(rel));
        }
        v
    }
}

fn unescape_mountinfo(s: &str) -> String {
    // mountinfo escapes space, tab, newline and backslash as \ooo.
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Detect the host's cgroup layout.
pub fn mode() -> Result<CgroupMode> {
    Hierarchies::detect()?.mode()
}

/// The cgroupfs path for a request (crun's `make_cgroup_path`).
pub fn cgroupfs_path(id: &str, cgroups_path: Option<&str>) -> Result<String> {
    let p = match cgroups_path {
        None | Some("") => format!("/{id}"),
        Some(p) if p.starts_with('/') => p.to_string(),
        Some(p) => format!("/{p}"),
    };
    check_path(&p)?;
    Ok(p)
}

/// Reject paths that would escape the hierarchy or that name its root.
fn check_path(p: &str) -> Result<()> {
    let comps: Vec<&str> = p.split('/').filter(|c| !c.is_empty()).collect();
    if comps.is_empty() {
        crate::bail!(libc::EINVAL, "invalid cgroup path `{p}`: it names the root");
    }
    if comps.iter().any(|c| *c == "." || *c == "..") {
        crate::bail!(
            libc::EINVAL,
            "invalid cgroup path `{p}`: `.` and `..` are not allowed"
        );
    }
    if p.contains('\0') {
        crate::bail!(libc::EINVAL, "invalid cgroup path: NUL byte");
    }
    Ok(())
}

/// Create the cgroup, apply `resources` and move `pid` into it.
pub fn setup(req: &CgroupRequest, pid: i32) -> Result<CgroupHandle> {
    let h = Hierarchies::detect()?;
    let mode = h.mode()?;
    let path = if req.systemd {
        let p = systemd::cgroup_path(req.id, req.cgroups_path, mode)?;
        systemd::start_scope(&p, pid)?;
        p
    } else {
        cgroupfs_path(req.id, req.cgroups_path)?
    };
    let mut created = Vec::new();
    let r = setup_in(&h, mode, &path, req.resources, pid, &mut created);
    if let Err(e) = r {
        // Undo: remove what we created, deepest first.
        for d in created.iter().rev() {
            let _ = fs::remove_dir(d);
        }
        if req.systemd {
            systemd::stop_scope(&path);
        }
        return Err(e);
    }
    Ok(CgroupHandle { path, mode })
}

fn setup_in(
    h: &Hierarchies,
    mode: CgroupMode,
    path: &str,
    resources: Option<&LinuxResources>,
    pid: i32,
    created: &mut Vec<PathBuf>,
) -> Result<()> {
    if let Some(r) = resources {
        if mode == CgroupMode::Legacy {
            if let Some(u) = r.unified() {
                if !u.is_empty() {
                    crate::bail!(
                        libc::EINVAL,
                        "invalid configuration: `linux.resources.unified` needs cgroup v2"
                    );
                }
            }
        }
    }
    match mode {
        CgroupMode::Unified => {
            let root = h.pure_v2().unwrap_or(Path::new(CGROUP_ROOT));
            v2::create(root, path, created)?;
        }
        CgroupMode::Legacy | CgroupMode::Hybrid => {
            for hier in &h.v1 {
                v1::create(hier, path, created)?;
            }
            if let Some(u) = &h.unified {
                v2::create(u, path, created)?;
            }
        }
    }
    if let Some(r) = resources {
        apply(h, mode, path, r)?;
    }
    enter_in(h, path, pid)
}

/// Apply `resources` to an existing cgroup.
fn apply(h: &Hierarchies, mode: CgroupMode, path: &str, r: &LinuxResources) -> Result<()> {
    match mode {
        CgroupMode::Unified => {
            let root = h.pure_v2().unwrap_or(Path::new(CGROUP_ROOT));
            v2::apply(&root.join(path.trim_start_matches('/')), r, true)
        }
        CgroupMode::Legacy | CgroupMode::Hybrid => {
            v1::apply(h, path, r)?;
            if let Some(u) = &h.unified {
                let dir = u.join(path.trim_start_matches('/'));
                v2::apply_hybrid(h, &dir, r)?;
            }
            Ok(())
        }
    }
}

/// Move `pid` into the existing cgroup `path` (for exec).
pub fn enter(path: &str, pid: i32) -> Result<()> {
    check_path(path)?;
    let h = Hierarchies::detect()?;
    enter_in(&h, path, pid)
}

fn enter_in(h: &Hierarchies, path: &str, pid: i32) -> Result<()> {
    let mut entered = 0;
    for d in h.dirs(path) {
        if !d.is_dir() {
            continue;
        }
        write_file(&d, "cgroup.procs", &pid.to_string())?;
        entered += 1;
    }
    if entered == 0 {
        crate::bail!(libc::ENOENT, "cgroup `{path}` does not exist");
    }
    Ok(())
}

/// Update the resources of the existing cgroup `path`.
pub fn update(path: &str, resources: &LinuxResources) -> Result<()> {
    check_path(path)?;
    let h = Hierarchies::detect()?;
    let mode = h.mode()?;
    if !h.dirs(path).iter().any(|d| d.is_dir()) {
        crate::bail!(libc::ENOENT, "cgroup `{path}` does not exist");
    }
    if mode == CgroupMode::Legacy && resources.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        crate::bail!(
            libc::EINVAL,
            "invalid configuration: `linux.resources.unified` needs cgroup v2"
        );
    }
    apply(&h, mode, path, resources)
}

/// The pids in cgroup `path` (and its descendants with `recurse`).
pub fn read_pids(path: &str, recurse: bool) -> Result<Vec<i32>> {
    check_path(path)?;
    let h = Hierarchies::detect()?;
    let dir = pids_dir(&h, path)?;
    let mut out = Vec::new();
    collect_pids(&dir, recurse, &mut out)?;
    Ok(out)
}

/// The directory whose `cgroup.procs` lists every process of the cgroup: the v2 one on a pure
/// v2 host, else the first v1 hierarchy that has it (pids, memory, freezer first).
fn pids_dir(h: &Hierarchies, path: &str) -> Result<PathBuf> {
    let rel = path.trim_start_matches('/');
    if let Some(u) = h.pure_v2() {
        let d = u.join(rel);
        if d.is_dir() {
            return Ok(d);
        }
    }
    for c in [
        "pids",
        "memory",
        "freezer",
        "cpu",
        "devices",
        "name=systemd",
    ] {
        if let Some(hier) = h.v1_for(c) {
            let d = hier.mount.join(rel);
            if d.is_dir() {
                return Ok(d);
            }
        }
    }
    for d in h.dirs(path) {
        if d.is_dir() {
            return Ok(d);
        }
    }
    Err(Error::new(
        libc::ENOENT,
        format!("cgroup `{path}` does not exist"),
    ))
}

fn collect_pids(dir: &Path, recurse: bool, out: &mut Vec<i32>) -> Result<()> {
    let text = read_file(dir, "cgroup.procs")?;
    for l in text.lines() {
        if let Ok(p) = l.trim().parse::<i32>() {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    if recurse {
        for sub in subdirs(dir)? {
            collect_pids(&sub, true, out)?;
        }
    }
    Ok(())
}

fn subdirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v = Vec::new();
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(v),
        Err(e) => return Err(e).with_context(|| format!("read directory `{}`", dir.display())),
    };
    for e in rd.flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            v.push(e.path());
        }
    }
    Ok(v)
}

/// How long [`freeze`] and [`destroy`] wait for the kernel.
const WAIT: Duration = Duration::from_secs(10);

/// Freeze (`true`) or thaw the cgroup `path` and wait until the kernel reports it done.
pub fn freeze(path: &str, frozen: bool) -> Result<()> {
    check_path(path)?;
    let h = Hierarchies::detect()?;
    let rel = path.trim_start_matches('/');
    if let Some(f) = h.v1_for("freezer") {
        return v1::freeze(&f.mount.join(rel), frozen);
    }
    if let Some(u) = &h.unified {
        return v2::freeze(&u.join(rel), frozen);
    }
    Err(Error::new(
        libc::ENOTSUP,
        format!("cannot freeze cgroup `{path}`: no freezer controller"),
    ))
}

/// Kill what is left in cgroup `path` (SIGKILL) and remove it, with its sub-cgroups, from every
/// hierarchy.  A cgroup that does not exist is not an error.
pub fn destroy(path: &str) -> Result<()> {
    check_path(path)?;
    let h = Hierarchies::detect()?;
    let rel = path.trim_start_matches('/');
    systemd::stop_scope(path);
    // A frozen task cannot die: thaw first.
    if let Some(f) = h.v1_for("freezer") {
        let d = f.mount.join(rel);
        if d.is_dir() {
            let _ = v1::freeze(&d, false);
        }
    }
    if let Some(u) = &h.unified {
        let d = u.join(rel);
        if d.join("cgroup.freeze").exists() {
            let _ = write_file(&d, "cgroup.freeze", "0");
        }
    }
    let deadline = Instant::now() + WAIT;
    loop {
        for d in h.dirs(path) {
            if d.is_dir() {
                let mut pids = Vec::new();
                let _ = collect_pids(&d, true, &mut pids);
                for p in pids {
                    // SAFETY: kill(2) on a pid read from the cgroup.
                    unsafe { libc::kill(p, libc::SIGKILL) };
                }
            }
        }
        let mut last_err: Option<Error> = None;
        for d in h.dirs(path) {
            if let Err(e) = remove_tree(&d) {
                last_err = Some(e);
            }
        }
        match last_err {
            None => return Ok(()),
            Some(ref e) if e.errno() == libc::EBUSY && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Some(e) => return Err(e.wrap(format!("destroy cgroup `{path}`"))),
        }
    }
}

/// rmdir `d` after its sub-directories (cgroup files cannot and need not be unlinked).
fn remove_tree(d: &Path) -> Result<()> {
    if !d.is_dir() {
        return Ok(());
    }
    for sub in subdirs(d)? {
        remove_tree(&sub)?;
    }
    match fs::remove_dir(d) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("rmdir `{}`", d.display())),
    }
}

/// Write `value` to `dir/file`; a rejected value names the file and the value.
pub fn write_file(dir: &Path, file: &str, value: &str) -> Result<()> {
    let p = dir.join(file);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(&p)
        .with_context(|| format!("open `{}`", p.display()))?;
    f.write_all(value.as_bytes())
        .with_context(|| format!("write `{file}` = `{}`", value.trim_end()))
}

/// Read `dir/file`.
pub fn read_file(dir: &Path, file: &str) -> Result<String> {
    let p = dir.join(file);
    fs::read_to_string(&p).with_context(|| format!("read `{}`", p.display()))
}

/// crun's cpu.shares (2-262144) -> cpu.weight (1-10000) conversion.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9999) / 262_142
}

/// crun's blkio.weight (10-1000) -> io.weight (1-10000) conversion.
pub fn blkio_weight_to_io_weight(w: u64) -> u64 {
    if w == 0 {
        return 0;
    }
    let w = w.clamp(10, 1000);
    1 + (w - 10) * 9999 / 990
}

/// `-1` (or any negative) -> `max`, else the number (v2 convention).
pub(crate) fn v2_limit(v: i64) -> String {
    if v < 0 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 30 0:23 / /sys rw,nosuid - sysfs sysfs rw
30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu
32 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
33 30 0:29 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd,release_agent=/x
34 30 0:30 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate
35 30 0:31 / /sys/fs/cgroup/my\\040dir rw - cgroup cgroup rw,pids
";

    #[test]
    fn parse_hybrid() {
        let h = Hierarchies::parse_mountinfo(HYBRID);
        assert_eq!(h.mode().unwrap(), CgroupMode::Hybrid);
        assert_eq!(h.v1.len(), 4);
        assert!(h.v1_for("cpuacct").unwrap().has("cpu"));
        assert_eq!(
            h.v1_for("name=systemd").unwrap().mount,
            Path::new("/sys/fs/cgroup/systemd")
        );
        assert_eq!(
            h.v1_for("pids").unwrap().mount,
            Path::new("/sys/fs/cgroup/my dir")
        );
        assert_eq!(
            h.unified.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );
        assert_eq!(
            h.dirs("/a/b")[4],
            PathBuf::from("/sys/fs/cgroup/unified/a/b")
        );
    }

    #[test]
    fn parse_unified_and_overmount() {
        let text = format!("{HYBRID}40 25 0:40 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
        let h = Hierarchies::parse_mountinfo(&text);
        assert_eq!(h.mode().unwrap(), CgroupMode::Unified);
        assert!(h.v1.is_empty());
        let h = Hierarchies::parse_mountinfo("1 0 0:1 / / rw - ext4 /dev/vda rw\n");
        assert_eq!(h.mode().unwrap_err().errno(), libc::ENOENT);
        let legacy: String = HYBRID
            .lines()
            .filter(|l| !l.contains("cgroup2"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            Hierarchies::parse_mountinfo(&legacy).mode().unwrap(),
            CgroupMode::Legacy
        );
    }

    #[test]
    fn paths() {
        assert_eq!(cgroupfs_path("c1", None).unwrap(), "/c1");
        assert_eq!(cgroupfs_path("c1", Some("/a/b")).unwrap(), "/a/b");
        assert_eq!(cgroupfs_path("c1", Some("a/b")).unwrap(), "/a/b");
        assert_eq!(
            cgroupfs_path("c1", Some("/a/../..")).unwrap_err().errno(),
            libc::EINVAL
        );
        assert_eq!(
            cgroupfs_path("c1", Some("/")).unwrap_err().errno(),
            libc::EINVAL
        );
        assert_eq!(cgroupfs_path("..", None).unwrap_err().errno(), libc::EINVAL);
    }

    #[test]
    fn conversions() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
        assert_eq!(v2_limit(-1), "max");
        assert_eq!(v2_limit(42), "42");
    }
}
