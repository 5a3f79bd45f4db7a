//! cgroup v1: per-controller hierarchies.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxMemory, LinuxResources, LinuxThrottleDevice,
};

use super::{read_file, write_file, Hierarchies, V1Hierarchy, WAIT};
use crate::error::{Context, Error, Result};

/// Create `path` in `hier`, recording the directories it made in `created`.  In the cpuset
/// hierarchy every new level inherits `cpuset.cpus`/`cpuset.mems` from its parent (an empty
/// cpuset cannot hold tasks).
pub fn create(hier: &V1Hierarchy, path: &str, created: &mut Vec<PathBuf>) -> Result<()> {
    let mut cur = hier.mount.clone();
    for comp in path.split('/').filter(|c| !c.is_empty()) {
        let parent = cur.clone();
        cur.push(comp);
        match fs::create_dir(&cur) {
            Ok(()) => {
                created.push(cur.clone());
                if hier.has("cpuset") {
                    for f in ["cpuset.cpus", "cpuset.mems"] {
                        let mine = read_file(&cur, f)?;
                        if mine.trim().is_empty() {
                            let theirs = read_file(&parent, f)?;
                            write_file(&cur, f, theirs.trim())?;
                        }
                    }
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
            Err(e) => return Err(e).with_context(|| format!("mkdir `{}`", cur.display())),
        }
    }
    Ok(())
}

fn dir(h: &Hierarchies, controller: &str, path: &str) -> Option<PathBuf> {
    h.v1_for(controller)
        .map(|x| x.mount.join(path.trim_start_matches('/')))
}

fn need(h: &Hierarchies, controller: &str, path: &str) -> Result<PathBuf> {
    dir(h, controller, path).ok_or_else(|| {
        Error::new(
            libc::ENOENT,
            format!("the `{controller}` cgroup controller is not mounted"),
        )
    })
}

/// Apply the resources that have v1 controllers.  Controllers that are not mounted as v1 but
/// exist in a hybrid v2 hierarchy are left to `v2::apply_hybrid`.
pub fn apply(h: &Hierarchies, path: &str, r: &LinuxResources) -> Result<()> {
    let hybrid_has = |c: &str| super::v2::hybrid_controller(h, c);
    if let Some(m) = r.memory() {
        memory(&need(h, "memory", path)?, m)?;
    }
    if let Some(c) = r.cpu() {
        cpu(h, path, c)?;
    }
    if let Some(p) = r.pids() {
        if p.limit() != 0 {
            let v = if p.limit() > 0 {
                p.limit().to_string()
            } else {
                "max".to_string()
            };
            write_file(&need(h, "pids", path)?, "pids.max", &v)?;
        }
    }
    if let Some(b) = r.block_io() {
        blkio(&need(h, "blkio", path)?, b)?;
    }
    if let Some(hp) = r.hugepage_limits() {
        if !hp.is_empty() {
            match dir(h, "hugetlb", path) {
                Some(d) => {
                    for l in hp {
                        write_file(
                            &d,
                            &format!("hugetlb.{}.limit_in_bytes", l.page_size()),
                            &l.limit().to_string(),
                        )?;
                    }
                }
                None if hybrid_has("hugetlb") => {}
                None => {
                    return Err(Error::new(
                        libc::ENOENT,
                        "the `hugetlb` cgroup controller is not mounted",
                    ))
                }
            }
        }
    }
    if let Some(devs) = r.devices() {
        match dir(h, "devices", path) {
            Some(d) => devices(&d, devs)?,
            // The hybrid v2 hierarchy enforces them with an eBPF program instead.
            None if h.unified.is_some() => {}
            None => return Err(Error::new(
                libc::ENOENT,
                "the `devices` cgroup controller is not mounted: device rules cannot be enforced",
            )),
        }
    }
    if let Some(n) = r.network() {
        if let Some(id) = n.class_id() {
            match dir(h, "net_cls", path) {
                Some(d) => write_file(&d, "net_cls.classid", &id.to_string())?,
                None => crate::log::warning(
                    "the `net_cls` cgroup controller is not mounted: network classID ignored",
                ),
            }
        }
        if let Some(prios) = n.priorities() {
            if !prios.is_empty() {
                match dir(h, "net_prio", path) {
                    Some(d) => {
                        for p in prios {
                            write_file(
                                &d,
                                "net_prio.ifpriomap",
                                &format!("{} {}", p.name(), p.priority()),
                            )?;
                        }
                    }
                    None => crate::log::warning(
                        "the `net_prio` cgroup controller is not mounted: network priorities ignored",
                    ),
                }
            }
        }
    }
    if let Some(rdma) = r.rdma() {
        if !rdma.is_empty() {
            match dir(h, "rdma", path) {
                Some(d) => {
                    for (dev, l) in rdma {
                        write_file(&d, "rdma.max", &super::v2::rdma_line(dev, l))?;
                    }
                }
                None if hybrid_has("rdma") => {}
                None => crate::log::warning(
                    "the `rdma` cgroup controller is not mounted: rdma limits ignored",
                ),
            }
        }
    }
    Ok(())
}

fn memory(d: &Path, m: &LinuxMemory) -> Result<()> {
    let mut limit_done = true;
    if let Some(l) = m.limit() {
        if let Err(e) = write_file(d, "memory.limit_in_bytes", &l.to_string()) {
            // Raising the limit above the current memory+swap limit fails until memsw is raised.
            if e.errno() != libc::EINVAL || m.swap().is_none() {
                return Err(e);
            }
            limit_done = false;
        }
    }
    if let Some(s) = m.swap() {
        match write_file(d, "memory.memsw.limit_in_bytes", &s.to_string()) {
            Ok(()) => {}
            // No swap accounting: nothing to limit (crun ignores it too).
            Err(e) if e.errno() == libc::ENOENT => {}
            Err(e) => return Err(e),
        }
    }
    if !limit_done {
        if let Some(l) = m.limit() {
            write_file(d, "memory.limit_in_bytes", &l.to_string())?;
        }
    }
    if let Some(k) = m.kernel() {
        write_file(d, "memory.kmem.limit_in_bytes", &k.to_string())?;
    }
    if let Some(k) = m.kernel_tcp() {
        write_file(d, "memory.kmem.tcp.limit_in_bytes", &k.to_string())?;
    }
    if let Some(r) = m.reservation() {
        write_file(d, "memory.soft_limit_in_bytes", &r.to_string())?;
    }
    if let Some(s) = m.swappiness() {
        if s > 100 {
            crate::bail!(
                libc::EINVAL,
                "invalid memory swappiness `{s}`: must be between 0 and 100"
            );
        }
        write_file(d, "memory.swappiness", &s.to_string())?;
    }
    if m.disable_oom_killer() == Some(true) {
        write_file(d, "memory.oom_control", "1")?;
    }
    if let Some(u) = m.use_hierarchy() {
        write_file(d, "memory.use_hierarchy", if u { "1" } else { "0" })?;
    }
    Ok(())
}

fn cpu(h: &Hierarchies, path: &str, c: &LinuxCpu) -> Result<()> {
    let has_cpu = c.shares().is_some()
        || c.quota().is_some()
        || c.period().is_some()
        || c.realtime_period().is_some()
        || c.realtime_runtime().is_some()
        || c.burst().is_some()
        || c.idle().is_some();
    if has_cpu {
        let d = need(h, "cpu", path)?;
        if let Some(s) = c.shares() {
            if s > 0 {
                write_file(&d, "cpu.shares", &s.to_string())?;
            }
        }
        let mut period_retry = false;
        if let Some(p) = c.period() {
            if p > 0 {
                if let Err(e) = write_file(&d, "cpu.cfs_period_us", &p.to_string()) {
                    // A period can conflict with the current quota; retry after the quota.
                    if e.errno() != libc::EINVAL || c.quota().is_none() {
                        return Err(e);
                    }
                    period_retry = true;
                }
            }
        }
        if let Some(q) = c.quota() {
            if q != 0 {
                write_file(&d, "cpu.cfs_quota_us", &q.to_string())?;
            }
        }
        if period_retry {
            if let Some(p) = c.period() {
                write_file(&d, "cpu.cfs_period_us", &p.to_string())?;
            }
        }
        if let Some(b) = c.burst() {
            write_file(&d, "cpu.cfs_burst_us", &b.to_string())?;
        }
        if let Some(p) = c.realtime_period() {
            if p > 0 {
                write_file(&d, "cpu.rt_period_us", &p.to_string())?;
            }
        }
        if let Some(r) = c.realtime_runtime() {
            if r != 0 {
                write_file(&d, "cpu.rt_runtime_us", &r.to_string())?;
            }
        }
        if let Some(i) = c.idle() {
            write_file(&d, "cpu.idle", &i.to_string())?;
        }
    }
    let cpus = c.cpus().as_deref().filter(|s| !s.is_empty());
    let mems = c.mems().as_deref().filter(|s| !s.is_empty());
    if cpus.is_some() || mems.is_some() {
        let d = need(h, "cpuset", path)?;
        if let Some(v) = cpus {
            write_file(&d, "cpuset.cpus", v)?;
        }
        if let Some(v) = mems {
            write_file(&d, "cpuset.mems", v)?;
        }
    }
    Ok(())
}

/// Open the first of `names` that exists (the bfq scheduler renames the weight files).
fn first_existing<'a>(d: &Path, names: &[&'a str]) -> &'a str {
    names
        .iter()
        .find(|n| d.join(n).exists())
        .copied()
        .unwrap_or(names[0])
}

fn throttle(d: &Path, file: &str, list: &Option<Vec<LinuxThrottleDevice>>) -> Result<()> {
    for t in list.iter().flatten() {
        write_file(
            d,
            file,
            &format!("{}:{} {}", t.major(), t.minor(), t.rate()),
        )?;
    }
    Ok(())
}

fn blkio(d: &Path, b: &LinuxBlockIo) -> Result<()> {
    if let Some(w) = b.weight() {
        let f = first_existing(d, &["blkio.weight", "blkio.bfq.weight"]);
        write_file(d, f, &w.to_string())?;
    }
    if let Some(w) = b.leaf_weight() {
        write_file(d, "blkio.leaf_weight", &w.to_string())?;
    }
    for wd in b.weight_device().iter().flatten() {
        if let Some(w) = wd.weight() {
            let f = first_existing(d, &["blkio.weight_device", "blkio.bfq.weight_device"]);
            write_file(d, f, &format!("{}:{} {}", wd.major(), wd.minor(), w))?;
        }
        if let Some(w) = wd.leaf_weight() {
            write_file(
                d,
                "blkio.leaf_weight_device",
                &format!("{}:{} {}", wd.major(), wd.minor(), w),
            )?;
        }
    }
    throttle(
        d,
        "blkio.throttle.read_bps_device",
        b.throttle_read_bps_device(),
    )?;
    throttle(
        d,
        "blkio.throttle.write_bps_device",
        b.throttle_write_bps_device(),
    )?;
    throttle(
        d,
        "blkio.throttle.read_iops_device",
        b.throttle_read_iops_device(),
    )?;
    throttle(
        d,
        "blkio.throttle.write_iops_device",
        b.throttle_write_iops_device(),
    )?;
    Ok(())
}

/// The device rules crun always allows after the configured ones: mknod of any device, and
/// `/dev/{null,zero,full,tty,urandom,random,console,ptmx,fuse}` and `/dev/pts/*`.
pub const DEFAULT_DEVICES: &[(char, i64, i64, &str)] = &[
    ('c', -1, -1, "m"),
    ('b', -1, -1, "m"),
    ('c', 1, 3, "rwm"),
    ('c', 1, 8, "rwm"),
    ('c', 1, 7, "rwm"),
    ('c', 5, 0, "rwm"),
    ('c', 1, 5, "rwm"),
    ('c', 1, 9, "rwm"),
    ('c', 5, 1, "rwm"),
    ('c', 136, -1, "rwm"),
    ('c', 5, 2, "rwm"),
    ('c', 10, 200, "rwm"),
];

/// The `devices.allow`/`devices.deny` line for a rule.
pub fn device_line(d: &LinuxDeviceCgroup) -> Result<String> {
    let typ = d.typ().map(|t| t.as_str().to_string());
    let access = d.access().clone().unwrap_or_else(|| "rwm".to_string());
    if access.is_empty() || !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
        crate::bail!(libc::EINVAL, "invalid device access `{access}`");
    }
    let typ = typ.unwrap_or_else(|| "a".to_string());
    if typ == "a" && d.major().is_none() && d.minor().is_none() {
        return Ok("a".to_string());
    }
    if !matches!(typ.as_str(), "a" | "c" | "b") {
        crate::bail!(libc::EINVAL, "invalid device type `{typ}`");
    }
    let n = |v: Option<i64>| match v {
        Some(x) if x >= 0 => x.to_string(),
        _ => "*".to_string(),
    };
    Ok(format!("{typ} {}:{} {access}", n(d.major()), n(d.minor())))
}

fn devices(d: &Path, devs: &[LinuxDeviceCgroup]) -> Result<()> {
    for dev in devs {
        let file = if dev.allow() {
            "devices.allow"
        } else {
            "devices.deny"
        };
        write_file(d, file, &device_line(dev)?)?;
    }
    for (t, maj, min, acc) in DEFAULT_DEVICES {
        let n = |v: i64| {
            if v < 0 {
                "*".to_string()
            } else {
                v.to_string()
            }
        };
        write_file(
            d,
            "devices.allow",
            &format!("{t} {}:{} {acc}", n(*maj), n(*min)),
        )?;
    }
    Ok(())
}

/// Freeze or thaw through `freezer.state`, waiting until the state is reached.
pub fn freeze(d: &Path, frozen: bool) -> Result<()> {
    let want = if frozen { "FROZEN" } else { "THAWED" };
    let deadline = Instant::now() + WAIT;
    loop {
        write_file(d, "freezer.state", want)?;
        let state = read_file(d, "freezer.state")?;
        if state.trim() == want {
            return Ok(());
        }
        if Instant::now() >= deadline {
            crate::bail!(
                libc::ETIMEDOUT,
                "`{}/freezer.state` is `{}`, not `{want}`",
                d.display(),
                state.trim()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(json: &str) -> LinuxDeviceCgroup {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn device_lines() {
        assert_eq!(
            device_line(&dev(r#"{"allow":false,"access":"rwm"}"#)).unwrap(),
            "a"
        );
        assert_eq!(
            device_line(&dev(
                r#"{"allow":true,"type":"c","major":1,"minor":3,"access":"rw"}"#
            ))
            .unwrap(),
            "c 1:3 rw"
        );
        assert_eq!(
            device_line(&dev(r#"{"allow":true,"type":"b","major":8,"access":"r"}"#)).unwrap(),
            "b 8:* r"
        );
        assert_eq!(
            device_line(&dev(r#"{"allow":true,"type":"c","access":"x"}"#))
                .unwrap_err()
                .errno(),
            libc::EINVAL
        );
    }

    #[test]
    fn fake_hierarchy_gets_v1_files() {
        let root = std::env::temp_dir().join(format!("crun-rs-v1-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let mk = |ctrl: &str, files: &[&str]| {
            let d = root.join(ctrl).join("c1");
            fs::create_dir_all(&d).unwrap();
            for f in files {
                fs::write(d.join(f), "").unwrap();
            }
            V1Hierarchy {
                mount: root.join(ctrl),
                controllers: [ctrl.to_string()].into_iter().collect(),
            }
        };
        let h = Hierarchies {
            v1: vec![
                mk(
                    "memory",
                    &[
                        "memory.limit_in_bytes",
                        "memory.oom_control",
                        "memory.kmem.tcp.limit_in_bytes",
                    ],
                ),
                mk("blkio", &["blkio.bfq.weight", "blkio.leaf_weight"]),
                mk("net_cls", &["net_cls.classid"]),
                mk("pids", &["pids.max"]),
            ],
            unified: None,
        };
        let r: LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":4096,"swap":8192,"disableOOMKiller":true,"kernelTCP":1024},
                "blockIO":{"weight":300,"leafWeight":20},
                "network":{"classID":1048577},
                "pids":{"limit":0}}"#,
        )
        .unwrap();
        apply(&h, "/c1", &r).unwrap();
        let rd = |c: &str, f: &str| fs::read_to_string(root.join(c).join("c1").join(f)).unwrap();
        assert_eq!(rd("memory", "memory.limit_in_bytes"), "4096");
        // No memsw file (no swap accounting): the swap limit is skipped like crun does.
        assert_eq!(rd("memory", "memory.oom_control"), "1");
        assert_eq!(rd("memory", "memory.kmem.tcp.limit_in_bytes"), "1024");
        // bfq renamed the weight file.
        assert_eq!(rd("blkio", "blkio.bfq.weight"), "300");
        assert_eq!(rd("blkio", "blkio.leaf_weight"), "20");
        assert_eq!(rd("net_cls", "net_cls.classid"), "1048577");
        // pids limit 0 means unset.
        assert_eq!(rd("pids", "pids.max"), "");
        // A controller that is not mounted is an error naming it.
        let r: LinuxResources = serde_json::from_str(r#"{"cpu":{"shares":2}}"#).unwrap();
        let e = apply(&h, "/c1", &r).unwrap_err();
        assert_eq!(e.errno(), libc::ENOENT);
        assert!(e.message().contains("`cpu`"), "{e}");
        fs::remove_dir_all(root).unwrap();
    }
}
