//! cgroup v2: the unified hierarchy.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxRdma, LinuxResources, LinuxThrottleDevice,
};

use super::{
    blkio_weight_to_io_weight, read_file, shares_to_weight, v2_limit, write_file, Hierarchies, WAIT,
};
use crate::error::{Context, Error, Result};

/// Create `path` under the v2 mount `root`, enabling in every ancestor (root included) the
/// controllers it has available, so the new cgroup gets their files.  Controllers that cannot
/// be enabled (e.g. because the ancestor holds processes) are skipped; a later write to a
/// missing file reports it.
pub fn create(root: &Path, path: &str, created: &mut Vec<PathBuf>) -> Result<()> {
    let mut cur = root.to_path_buf();
    for comp in path.split('/').filter(|c| !c.is_empty()) {
        enable_controllers(&cur);
        cur.push(comp);
        match fs::create_dir(&cur) {
            Ok(()) => created.push(cur.clone()),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
            Err(e) => return Err(e).with_context(|| format!("mkdir `{}`", cur.display())),
        }
    }
    Ok(())
}

fn enable_controllers(dir: &Path) {
    let Ok(avail) = read_file(dir, "cgroup.controllers") else {
        return;
    };
    let enabled = read_file(dir, "cgroup.subtree_control").unwrap_or_default();
    for c in avail.split_whitespace() {
        if enabled.split_whitespace().any(|e| e == c) {
            continue;
        }
        if let Err(e) = write_file(dir, "cgroup.subtree_control", &format!("+{c}")) {
            crate::log::debug(&format!("cgroup `{}`: {e}", dir.display()));
        }
    }
}

/// On a hybrid host: whether `controller` is not a v1 hierarchy but is available in the v2 one.
pub fn hybrid_controller(h: &Hierarchies, controller: &str) -> bool {
    if h.v1_for(controller).is_some() {
        return false;
    }
    let Some(u) = &h.unified else {
        return false;
    };
    read_file(u, "cgroup.controllers")
        .map(|s| s.split_whitespace().any(|c| c == controller))
        .unwrap_or(false)
}

/// On a hybrid host, apply to the v2 directory `dir` what v1 cannot: hugetlb and rdma when only
/// v2 has them, device rules (eBPF) when v1 has no devices hierarchy, and `unified`.
pub fn apply_hybrid(h: &Hierarchies, dir: &Path, r: &LinuxResources) -> Result<()> {
    if hybrid_controller(h, "hugetlb") {
        hugetlb(dir, r)?;
    }
    if hybrid_controller(h, "rdma") {
        rdma(dir, r)?;
    }
    if h.v1_for("devices").is_none() {
        if let Some(devs) = r.devices() {
            super::bpf::apply(dir, devs)?;
        }
    }
    unified(dir, r)
}

/// Apply `r` to the v2 cgroup directory `dir`.
pub fn apply(dir: &Path, r: &LinuxResources, devices: bool) -> Result<()> {
    if let Some(m) = r.memory() {
        memory(dir, m)?;
    }
    if let Some(c) = r.cpu() {
        cpu(dir, c)?;
    }
    if let Some(p) = r.pids() {
        if p.limit() != 0 {
            write_file(dir, "pids.max", &v2_limit(p.limit()))?;
        }
    }
    if let Some(b) = r.block_io() {
        io(dir, b)?;
    }
    hugetlb(dir, r)?;
    rdma(dir, r)?;
    if devices {
        if let Some(devs) = r.devices() {
            super::bpf::apply(dir, devs)?;
        }
    }
    if let Some(n) = r.network() {
        if n.class_id().is_some() || n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            crate::log::warning(
                "network classID and priorities need the v1 net_cls/net_prio controllers: ignored on cgroup v2",
            );
        }
    }
    unified(dir, r)
}

fn memory(dir: &Path, m: &LinuxMemory) -> Result<()> {
    if m.check_before_update() == Some(true) {
        let cur: u64 = read_file(dir, "memory.current")?
            .trim()
            .parse()
            .unwrap_or(0);
        let swap: u64 = read_file(dir, "memory.swap.current")
            .map(|s| s.trim().parse().unwrap_or(0))
            .unwrap_or(0);
        let mut limit: u64 = 0;
        if let Some(l) = m.limit().filter(|l| *l >= 0) {
            limit = l as u64;
        }
        if let Some(s) = m.swap().filter(|s| *s >= 0) {
            limit += s as u64;
        }
        if limit > 0 && limit <= cur + swap {
            crate::bail!(
                libc::EBUSY,
                "cannot set the memory limit lower than its current usage"
            );
        }
    }
    if let Some(l) = m.limit() {
        write_file(dir, "memory.max", &v2_limit(l))?;
    }
    if let Some(s) = m.swap() {
        // OCI's swap is memory+swap; v2's memory.swap.max is swap alone.
        let v = if s > 0 {
            let Some(l) = m.limit() else {
                crate::bail!(
                    libc::EINVAL,
                    "cannot set swap limit without the memory limit"
                );
            };
            if l >= 0 && s < l {
                crate::bail!(
                    libc::EINVAL,
                    "cannot set memory+swap limit less than the memory limit"
                );
            }
            if l < 0 {
                s.to_string()
            } else {
                (s - l).to_string()
            }
        } else {
            v2_limit(s)
        };
        match write_file(dir, "memory.swap.max", &v) {
            Ok(()) => {}
            Err(e) if e.errno() == libc::ENOENT => {} // no swap accounting
            Err(e) => return Err(e),
        }
    }
    if let Some(r) = m.reservation() {
        write_file(dir, "memory.low", &v2_limit(r))?;
    }
    if m.disable_oom_killer() == Some(true) {
        crate::bail!(libc::EINVAL, "cannot disable the OOM killer with cgroup v2");
    }
    if m.swappiness().is_some() {
        crate::bail!(libc::EINVAL, "cannot set memory swappiness with cgroup v2");
    }
    if m.kernel().is_some() || m.kernel_tcp().is_some() {
        crate::log::warning("kernel memory limits are not supported on cgroup v2: ignored");
    }
    Ok(())
}

fn cpu(dir: &Path, c: &LinuxCpu) -> Result<()> {
    if let Some(s) = c.shares() {
        if s > 0 {
            write_file(dir, "cpu.weight", &shares_to_weight(s).to_string())?;
        }
    }
    let quota = c.quota().filter(|q| *q != 0);
    let period = c.period().filter(|p| *p != 0);
    if quota.is_some() || period.is_some() {
        let q = match quota {
            Some(q) if q > 0 => q.to_string(),
            _ => "max".to_string(),
        };
        let v = match period {
            Some(p) => format!("{q} {p}"),
            None => q,
        };
        write_file(dir, "cpu.max", &v)?;
    }
    if let Some(b) = c.burst() {
        write_file(dir, "cpu.max.burst", &b.to_string())?;
    }
    if let Some(i) = c.idle() {
        write_file(dir, "cpu.idle", &i.to_string())?;
    }
    if c.realtime_period().is_some_and(|v| v != 0) || c.realtime_runtime().is_some_and(|v| v != 0) {
        crate::bail!(
            libc::EINVAL,
            "realtime period and runtime are not supported on cgroup v2"
        );
    }
    if let Some(v) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        write_file(dir, "cpuset.cpus", v)?;
    }
    if let Some(v) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        write_file(dir, "cpuset.mems", v)?;
    }
    Ok(())
}

fn io(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    let bfq = dir.join("io.bfq.weight").exists();
    if let Some(w) = b.weight() {
        if bfq {
            write_file(dir, "io.bfq.weight", &w.to_string())?;
        } else {
            write_file(
                dir,
                "io.weight",
                &blkio_weight_to_io_weight(w as u64).to_string(),
            )?;
        }
    }
    if b.leaf_weight().is_some() {
        crate::bail!(libc::EINVAL, "cannot set leaf_weight with cgroup v2");
    }
    for wd in b.weight_device().iter().flatten() {
        if let Some(w) = wd.weight() {
            if bfq {
                write_file(
                    dir,
                    "io.bfq.weight",
                    &format!("{}:{} {}", wd.major(), wd.minor(), w),
                )?;
            } else {
                write_file(
                    dir,
                    "io.weight",
                    &format!(
                        "{}:{} {}",
                        wd.major(),
                        wd.minor(),
                        blkio_weight_to_io_weight(w as u64)
                    ),
                )?;
            }
        }
    }
    let th = |key: &str, list: &Option<Vec<LinuxThrottleDevice>>| -> Result<()> {
        for t in list.iter().flatten() {
            write_file(
                dir,
                "io.max",
                &format!("{}:{} {key}={}", t.major(), t.minor(), t.rate()),
            )?;
        }
        Ok(())
    };
    th("rbps", b.throttle_read_bps_device())?;
    th("wbps", b.throttle_write_bps_device())?;
    th("riops", b.throttle_read_iops_device())?;
    th("wiops", b.throttle_write_iops_device())?;
    Ok(())
}

fn hugetlb(dir: &Path, r: &LinuxResources) -> Result<()> {
    for l in r.hugepage_limits().iter().flatten() {
        write_file(
            dir,
            &format!("hugetlb.{}.max", l.page_size()),
            &v2_limit(l.limit()),
        )?;
    }
    Ok(())
}

/// The `rdma.max` line for one device.
pub fn rdma_line(dev: &str, l: &LinuxRdma) -> String {
    let n = |v: Option<u32>| v.map_or("max".to_string(), |x| x.to_string());
    format!(
        "{dev} hca_handle={} hca_object={}",
        n(l.hca_handles()),
        n(l.hca_objects())
    )
}

fn rdma(dir: &Path, r: &LinuxResources) -> Result<()> {
    for (dev, l) in r.rdma().iter().flatten() {
        write_file(dir, "rdma.max", &rdma_line(dev, l))?;
    }
    Ok(())
}

fn unified(dir: &Path, r: &LinuxResources) -> Result<()> {
    let Some(u) = r.unified() else {
        return Ok(());
    };
    // Sorted for a deterministic order of writes.
    let mut keys: Vec<&String> = u.keys().collect();
    keys.sort();
    for k in keys {
        if k.is_empty() || k.contains('/') || k == "." || k == ".." {
            crate::bail!(libc::EINVAL, "invalid unified cgroup key `{k}`");
        }
        let v = &u[k];
        if let Err(e) = write_file(dir, k, v) {
            if e.errno() == libc::ENOENT {
                let ctrl = k.split('.').next().unwrap_or(k);
                return Err(e.wrap(format!(
                    "unified key `{k}`: controller `{ctrl}` not available"
                )));
            }
            return Err(e);
        }
    }
    Ok(())
}

/// Freeze or thaw through `cgroup.freeze`, waiting for `cgroup.events` to agree.
pub fn freeze(dir: &Path, frozen: bool) -> Result<()> {
    if !dir.join("cgroup.freeze").exists() {
        if !dir.is_dir() {
            crate::bail!(libc::ENOENT, "cgroup `{}` does not exist", dir.display());
        }
        crate::bail!(
            libc::ENOTSUP,
            "`{}/cgroup.freeze` is missing: the kernel has no cgroup v2 freezer",
            dir.display()
        );
    }
    write_file(dir, "cgroup.freeze", if frozen { "1" } else { "0" })?;
    let want = if frozen { "frozen 1" } else { "frozen 0" };
    let deadline = Instant::now() + WAIT;
    loop {
        let ev = read_file(dir, "cgroup.events")?;
        if ev.lines().any(|l| l.trim() == want) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::new(
                libc::ETIMEDOUT,
                format!("cgroup `{}` did not reach `{want}`", dir.display()),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake cgroup directory holding empty regular files named `files`.
    fn fake(tag: &str, files: &[&str]) -> PathBuf {
        let d = std::env::temp_dir().join(format!("crun-rs-v2-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        for f in files {
            fs::write(d.join(f), "").unwrap();
        }
        d
    }

    fn rd(d: &Path, f: &str) -> String {
        fs::read_to_string(d.join(f)).unwrap()
    }

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn conversions_written_to_v2_files() {
        let d = fake(
            "conv",
            &[
                "memory.max",
                "memory.swap.max",
                "memory.low",
                "cpu.weight",
                "cpu.max",
                "pids.max",
                "io.weight",
                "io.max",
                "cpuset.cpus",
                "hugetlb.1GB.max",
            ],
        );
        apply(
            &d,
            &res(r#"{"memory":{"limit":1000,"swap":3000,"reservation":-1},
                     "cpu":{"shares":1024,"quota":-1,"period":250000,"cpus":"0-1"},
                     "pids":{"limit":-1},
                     "blockIO":{"weight":500,"throttleWriteIopsDevice":[{"major":8,"minor":0,"rate":9}]},
                     "hugepageLimits":[{"pageSize":"1GB","limit":0}]}"#),
            true,
        )
        .unwrap();
        assert_eq!(rd(&d, "memory.max"), "1000");
        assert_eq!(rd(&d, "memory.swap.max"), "2000");
        assert_eq!(rd(&d, "memory.low"), "max");
        assert_eq!(rd(&d, "cpu.weight"), "39");
        assert_eq!(rd(&d, "cpu.max"), "max 250000");
        assert_eq!(rd(&d, "cpuset.cpus"), "0-1");
        assert_eq!(rd(&d, "pids.max"), "max");
        assert_eq!(rd(&d, "io.weight"), "4950");
        assert_eq!(rd(&d, "io.max"), "8:0 wiops=9");
        assert_eq!(rd(&d, "hugetlb.1GB.max"), "0");
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn v2_refuses_what_it_cannot_do() {
        let d = fake("refuse", &["memory.max", "memory.swap.max", "cpu.max"]);
        let e = apply(&d, &res(r#"{"memory":{"swap":3000}}"#), true).unwrap_err();
        assert!(e.message().contains("without the memory limit"), "{e}");
        let e = apply(&d, &res(r#"{"memory":{"limit":5000,"swap":3000}}"#), true).unwrap_err();
        assert!(e.message().contains("less than the memory limit"), "{e}");
        let e = apply(&d, &res(r#"{"memory":{"disableOOMKiller":true}}"#), true).unwrap_err();
        assert_eq!(e.errno(), libc::EINVAL);
        let e = apply(&d, &res(r#"{"cpu":{"realtimeRuntime":5}}"#), true).unwrap_err();
        assert!(e.message().contains("realtime"), "{e}");
        let e = apply(&d, &res(r#"{"unified":{"../x":"1"}}"#), true).unwrap_err();
        assert_eq!(e.errno(), libc::EINVAL);
        // A file the controller does not provide is an error naming it.
        let e = apply(&d, &res(r#"{"pids":{"limit":5}}"#), true).unwrap_err();
        assert_eq!(e.errno(), libc::ENOENT);
        assert!(e.message().contains("pids.max"), "{e}");
        fs::remove_dir_all(d).unwrap();
    }
}
