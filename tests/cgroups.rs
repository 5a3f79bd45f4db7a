//! `crun::cgroups` against the real kernel: resources are read back from the cgroup files.
//!
//! v1 (legacy/hybrid hosts) tests use the host hierarchies with unique names under the root and
//! remove what they create.  v2 tests use the hybrid v2 hierarchy when there is one, and a
//! private cgroup2 mount in a private mount namespace (`v2_private_hierarchy`, which re-runs this
//! binary's ignored `v2_inner` test in a subprocess).  All of them need root and skip otherwise.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crun::cgroups::{self, CgroupMode, CgroupRequest, Hierarchies};
use oci_spec::runtime::LinuxResources;

fn is_root() -> bool {
    // SAFETY: trivial libc call.
    unsafe { libc::geteuid() == 0 }
}

fn unique(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "/crun-rs-test-{}-{}-{tag}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Skip unless root on a host with v1 hierarchies.
fn v1_host(test: &str) -> Option<Hierarchies> {
    if !is_root() {
        eprintln!("skipped {test}: needs root");
        return None;
    }
    let h = Hierarchies::detect().unwrap();
    match h.mode() {
        Ok(CgroupMode::Legacy) | Ok(CgroupMode::Hybrid) => Some(h),
        m => {
            eprintln!("skipped {test}: no cgroup v1 hierarchies ({m:?})");
            None
        }
    }
}

fn need_v1(h: &Hierarchies, test: &str, ctrls: &[&str]) -> bool {
    for c in ctrls {
        if h.v1_for(c).is_none() {
            eprintln!("skipped {test}: v1 controller `{c}` not mounted");
            return false;
        }
    }
    true
}

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

fn read(h: &Hierarchies, ctrl: &str, path: &str, file: &str) -> String {
    let d = h
        .v1_for(ctrl)
        .unwrap()
        .mount
        .join(path.trim_start_matches('/'));
    std::fs::read_to_string(d.join(file))
        .unwrap_or_else(|e| panic!("read {}/{file}: {e}", d.display()))
        .trim()
        .to_string()
}

/// A shell that waits for a line on stdin before running `script`.
fn gated(script: &str) -> (Child, ChildStdin) {
    let mut c = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("read go; {script}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdin = c.stdin.take().unwrap();
    (c, stdin)
}

fn go(stdin: &mut ChildStdin) {
    stdin.write_all(b"go\n").unwrap();
    stdin.flush().unwrap();
}

fn assert_gone(h: &Hierarchies, path: &str) {
    for d in h.dirs(path) {
        assert!(!d.exists(), "{} still exists", d.display());
    }
}

/// Removes the cgroup even when a test fails half-way.
struct Cleanup(String);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = cgroups::destroy(&self.0);
    }
}

fn first_block_device() -> Option<(u32, u32, String)> {
    let text = std::fs::read_to_string("/proc/partitions").ok()?;
    text.lines().skip(2).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() == 4 {
            Some((f[0].parse().ok()?, f[1].parse().ok()?, f[3].to_string()))
        } else {
            None
        }
    })
}

#[test]
fn mode_is_detected() {
    let h = Hierarchies::detect().unwrap();
    let m = cgroups::mode().unwrap();
    let statfs_v2 = {
        // SAFETY: statfs into a zeroed struct.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::statfs(c"/sys/fs/cgroup".as_ptr(), &mut st) };
        rc == 0 && st.f_type == libc::CGROUP2_SUPER_MAGIC
    };
    if statfs_v2 {
        assert_eq!(m, CgroupMode::Unified);
    } else if Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists() {
        assert_eq!(m, CgroupMode::Hybrid);
        assert!(!h.v1.is_empty());
    } else {
        assert_eq!(m, CgroupMode::Legacy);
    }
}

#[test]
fn v1_resources_are_written_and_process_moved() {
    let Some(h) = v1_host("v1_resources") else {
        return;
    };
    if !need_v1(
        &h,
        "v1_resources",
        &["memory", "pids", "cpu", "cpuset", "devices"],
    ) {
        return;
    }
    let path = unique("res");
    let _c = Cleanup(path.clone());
    let blk = first_block_device();
    let blkio = match &blk {
        Some((maj, min, _)) if h.v1_for("blkio").is_some() => format!(
            r#","blockIO":{{"throttleReadBpsDevice":[{{"major":{maj},"minor":{min},"rate":1048576}}],
                "throttleWriteIopsDevice":[{{"major":{maj},"minor":{min},"rate":300}}]}}"#
        ),
        _ => String::new(),
    };
    let r = res(&format!(
        r#"{{"memory":{{"limit":67108864,"reservation":33554432,"swappiness":10}},
            "pids":{{"limit":77}},
            "cpu":{{"shares":512,"quota":50000,"period":100000,"cpus":"0","mems":"0"}},
            "devices":[{{"allow":false,"access":"rwm"}},
                       {{"allow":true,"type":"c","major":1,"minor":11,"access":"r"}}]
            {blkio}}}"#
    ));
    let mut child = Command::new("/bin/sleep").arg("60").spawn().unwrap();
    let pid = child.id() as i32;
    let handle = cgroups::setup(
        &CgroupRequest {
            id: "ignored",
            cgroups_path: Some(&path),
            resources: Some(&r),
            systemd: false,
        },
        pid,
    )
    .unwrap();
    assert_eq!(handle.path(), path);
    assert_eq!(
        read(&h, "memory", &path, "memory.limit_in_bytes"),
        "67108864"
    );
    assert_eq!(
        read(&h, "memory", &path, "memory.soft_limit_in_bytes"),
        "33554432"
    );
    assert_eq!(read(&h, "memory", &path, "memory.swappiness"), "10");
    assert_eq!(read(&h, "pids", &path, "pids.max"), "77");
    assert_eq!(read(&h, "cpu", &path, "cpu.shares"), "512");
    assert_eq!(read(&h, "cpu", &path, "cpu.cfs_quota_us"), "50000");
    assert_eq!(read(&h, "cpu", &path, "cpu.cfs_period_us"), "100000");
    assert_eq!(read(&h, "cpuset", &path, "cpuset.cpus"), "0");
    assert_eq!(read(&h, "cpuset", &path, "cpuset.mems"), "0");
    let devs = read(&h, "devices", &path, "devices.list");
    assert!(devs.lines().any(|l| l == "c 1:11 r"), "{devs}");
    assert!(devs.lines().any(|l| l == "c 1:3 rwm"), "{devs}");
    assert!(!devs.lines().any(|l| l == "a *:* rwm"), "{devs}");
    if let (Some((maj, min, _)), true) = (&blk, h.v1_for("blkio").is_some()) {
        let bps = read(&h, "blkio", &path, "blkio.throttle.read_bps_device");
        assert!(bps.contains(&format!("{maj}:{min} 1048576")), "{bps}");
        let iops = read(&h, "blkio", &path, "blkio.throttle.write_iops_device");
        assert!(iops.contains(&format!("{maj}:{min} 300")), "{iops}");
    }
    // The process is in the cgroup in every hierarchy, the v2 one of a hybrid host included.
    for d in h.dirs(&path) {
        let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap();
        assert!(
            procs.lines().any(|l| l == pid.to_string()),
            "{} has {procs:?}",
            d.display()
        );
    }
    assert_eq!(cgroups::read_pids(&path, false).unwrap(), vec![pid]);
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(own.contains(&format!("memory:{path}")), "{own}");

    cgroups::destroy(&path).unwrap();
    assert_gone(&h, &path);
    // destroy killed the leftover process.
    let st = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(st.signal(), Some(libc::SIGKILL));
    // Destroying again is fine.
    cgroups::destroy(&path).unwrap();
}

#[test]
fn rejected_value_names_file_and_value_and_setup_cleans_up() {
    let Some(h) = v1_host("rejected_value") else {
        return;
    };
    if !need_v1(&h, "rejected_value", &["cpuset"]) {
        return;
    }
    let path = unique("bad");
    let _c = Cleanup(path.clone());
    let r = res(r#"{"cpu":{"cpus":"4095"}}"#);
    let mut child = Command::new("/bin/sleep").arg("60").spawn().unwrap();
    let e = cgroups::setup(
        &CgroupRequest {
            id: "x",
            cgroups_path: Some(&path),
            resources: Some(&r),
            systemd: false,
        },
        child.id() as i32,
    )
    .unwrap_err();
    child.kill().unwrap();
    child.wait().unwrap();
    // EINVAL or ERANGE depending on the kernel.
    assert!([libc::EINVAL, libc::ERANGE].contains(&e.errno()), "{e}");
    assert!(e.message().contains("write `cpuset.cpus` = `4095`"), "{e}");
    assert_gone(&h, &path);
}

#[test]
fn memory_hog_is_oom_killed_at_512k() {
    let Some(h) = v1_host("memory_hog") else {
        return;
    };
    if !need_v1(&h, "memory_hog", &["memory"]) {
        return;
    }
    let path = unique("oom");
    let _c = Cleanup(path.clone());
    // The shell doubles a variable until it is far above 512 KiB.  It is the only process in
    // the cgroup (no pipeline children the OOM killer could pick instead), so it is the one
    // killed.
    let (mut child, mut stdin) =
        gated("a=x; i=0; while [ $i -lt 26 ]; do a=\"$a$a\"; i=$((i+1)); done; echo ${#a}");
    let r = res(r#"{"memory":{"limit":524288}}"#);
    cgroups::setup(
        &CgroupRequest {
            id: "x",
            cgroups_path: Some(&path),
            resources: Some(&r),
            systemd: false,
        },
        child.id() as i32,
    )
    .unwrap();
    assert_eq!(read(&h, "memory", &path, "memory.limit_in_bytes"), "524288");
    go(&mut stdin);
    let st = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(st.signal(), Some(libc::SIGKILL), "hog survived: {st:?}");
    let failcnt: u64 = read(&h, "memory", &path, "memory.failcnt").parse().unwrap();
    assert!(failcnt > 0, "memory.failcnt = {failcnt}");
    let oom = read(&h, "memory", &path, "memory.oom_control");
    let kills: u64 = oom
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .map(|v| v.parse().unwrap())
        .unwrap_or(1);
    assert!(kills >= 1, "{oom}");
    cgroups::destroy(&path).unwrap();
    assert_gone(&h, &path);
}

#[test]
fn fork_bomb_is_stopped_by_pids_max() {
    let Some(h) = v1_host("fork_bomb") else {
        return;
    };
    if !need_v1(&h, "fork_bomb", &["pids"]) {
        return;
    }
    let path = unique("pids");
    let _c = Cleanup(path.clone());
    let (mut child, mut stdin) =
        gated("i=0; while [ $i -lt 40 ]; do sleep 30 & i=$((i+1)); done; echo spawned; sleep 30");
    let r = res(r#"{"pids":{"limit":10}}"#);
    cgroups::setup(
        &CgroupRequest {
            id: "x",
            cgroups_path: Some(&path),
            resources: Some(&r),
            systemd: false,
        },
        child.id() as i32,
    )
    .unwrap();
    go(&mut stdin);
    // Wait until pids.max was hit.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ev = read(&h, "pids", &path, "pids.events");
        let hits: u64 = ev
            .lines()
            .find_map(|l| l.strip_prefix("max "))
            .map(|v| v.parse().unwrap())
            .unwrap_or(0);
        if hits > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "pids.max never hit: {ev}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let current: u64 = read(&h, "pids", &path, "pids.current").parse().unwrap();
    assert!(current <= 10, "pids.current = {current}");
    let pids = cgroups::read_pids(&path, true).unwrap();
    assert!(!pids.is_empty() && pids.len() <= 10, "{pids:?}");
    // destroy kills the whole bomb.
    cgroups::destroy(&path).unwrap();
    assert_gone(&h, &path);
    child.wait().unwrap();
}

#[test]
fn freeze_and_thaw_v1() {
    let Some(h) = v1_host("freeze_v1") else {
        return;
    };
    if !need_v1(&h, "freeze_v1", &["freezer"]) {
        return;
    }
    let path = unique("frz");
    let _c = Cleanup(path.clone());
    let mut child = Command::new("/bin/sh")
        .args(["-c", "while :; do :; done"])
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    cgroups::setup(
        &CgroupRequest {
            id: "x",
            cgroups_path: Some(&path),
            resources: None,
            systemd: false,
        },
        pid,
    )
    .unwrap();
    cgroups::freeze(&path, true).unwrap();
    assert_eq!(read(&h, "freezer", &path, "freezer.state"), "FROZEN");
    // A frozen busy loop accumulates no CPU time.
    let ticks = || -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let f: Vec<&str> = s.rsplit(')').next().unwrap().split_whitespace().collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    };
    let t0 = ticks();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(ticks(), t0, "frozen process ran");
    cgroups::freeze(&path, false).unwrap();
    assert_eq!(read(&h, "freezer", &path, "freezer.state"), "THAWED");
    let t1 = ticks();
    let deadline = Instant::now() + Duration::from_secs(5);
    while ticks() == t1 {
        assert!(Instant::now() < deadline, "thawed process did not run");
        std::thread::sleep(Duration::from_millis(50));
    }
    // destroy of a frozen cgroup thaws and kills.
    cgroups::freeze(&path, true).unwrap();
    cgroups::destroy(&path).unwrap();
    assert_gone(&h, &path);
    child.wait().unwrap();
}

#[test]
fn update_and_enter_v1() {
    let Some(h) = v1_host("update_v1") else {
        return;
    };
    if !need_v1(&h, "update_v1", &["memory", "pids", "cpu"]) {
        return;
    }
    let path = unique("upd");
    let _c = Cleanup(path.clone());
    let mut a = Command::new("/bin/sleep").arg("60").spawn().unwrap();
    let mut b = Command::new("/bin/sleep").arg("60").spawn().unwrap();
    cgroups::setup(
        &CgroupRequest {
            id: "x",
            cgroups_path: Some(&path),
            resources: Some(&res(
                r#"{"memory":{"limit":33554432,"swap":67108864},"pids":{"limit":20}}"#,
            )),
            systemd: false,
        },
        a.id() as i32,
    )
    .unwrap();
    cgroups::update(
        &path,
        &res(r#"{"memory":{"limit":134217728,"swap":268435456},"pids":{"limit":-1},"cpu":{"shares":300,"quota":20000}}"#),
    )
    .unwrap();
    // The new limit is above the old memory+swap limit: written after memsw (retry path).
    assert_eq!(
        read(&h, "memory", &path, "memory.limit_in_bytes"),
        "134217728"
    );
    let memsw = h
        .v1_for("memory")
        .unwrap()
        .mount
        .join(path.trim_start_matches('/'))
        .join("memory.memsw.limit_in_bytes");
    if memsw.exists() {
        assert_eq!(
            read(&h, "memory", &path, "memory.memsw.limit_in_bytes"),
            "268435456"
        );
    }
    assert_eq!(read(&h, "pids", &path, "pids.max"), "max");
    assert_eq!(read(&h, "cpu", &path, "cpu.shares"), "300");
    assert_eq!(read(&h, "cpu", &path, "cpu.cfs_quota_us"), "20000");
    // A bad value is reported with file and value.
    let e = cgroups::update(&path, &res(r#"{"cpu":{"shares":1,"period":10}}"#)).unwrap_err();
    assert!(e.message().contains("cpu.cfs_period_us"), "{e}");
    assert!(e.message().contains("`10`"), "{e}");

    cgroups::enter(&path, b.id() as i32).unwrap();
    let mut pids = cgroups::read_pids(&path, false).unwrap();
    pids.sort();
    let mut want = vec![a.id() as i32, b.id() as i32];
    want.sort();
    assert_eq!(pids, want);

    assert_eq!(
        cgroups::update(&unique("missing"), &res("{}"))
            .unwrap_err()
            .errno(),
        libc::ENOENT
    );
    assert_eq!(
        cgroups::enter(&unique("missing"), b.id() as i32)
            .unwrap_err()
            .errno(),
        libc::ENOENT
    );
    cgroups::destroy(&path).unwrap();
    assert_gone(&h, &path);
    a.wait().unwrap();
    b.wait().unwrap();
}

#[test]
fn nested_path_and_recursive_pids() {
    let Some(h) = v1_host("nested") else {
        return;
    };
    let base = unique("nest");
    let _c = Cleanup(base.clone());
    let inner = format!("{base}/a/b");
    let mut child = Command::new("/bin/sleep").arg("60").spawn().unwrap();
    let hd = cgroups::setup(
        &CgroupRequest {
            id: "x",
            cgroups_path: Some(inner.trim_start_matches('/')),
            resources: None,
            systemd: false,
        },
        child.id() as i32,
    )
    .unwrap();
    assert_eq!(hd.path(), inner);
    assert_eq!(cgroups::read_pids(&base, false).unwrap(), Vec::<i32>::new());
    assert_eq!(
        cgroups::read_pids(&base, true).unwrap(),
        vec![child.id() as i32]
    );
    cgroups::destroy(&base).unwrap();
    assert_gone(&h, &base);
    child.wait().unwrap();
}

#[test]
fn systemd_manager_without_systemd_is_a_clear_error() {
    if Path::new("/run/systemd/system").exists() {
        eprintln!("skipped systemd_manager: systemd is running here");
        return;
    }
    let e = cgroups::setup(
        &CgroupRequest {
            id: "x",
            cgroups_path: Some("machine.slice:crun:x"),
            resources: None,
            systemd: true,
        },
        1,
    )
    .unwrap_err();
    assert_eq!(e.errno(), libc::ENOTSUP);
    assert!(e.message().contains("systemd is not running"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// cgroup v2

/// The hybrid v2 hierarchy, when the host has one.
fn hybrid_unified(test: &str) -> Option<(Hierarchies, PathBuf)> {
    if !is_root() {
        eprintln!("skipped {test}: needs root");
        return None;
    }
    let h = Hierarchies::detect().unwrap();
    if h.mode().ok() != Some(CgroupMode::Hybrid) {
        eprintln!("skipped {test}: not a hybrid host");
        return None;
    }
    let u = h.unified.clone().unwrap();
    Some((h, u))
}

/// Run `script` (after the gate) in cgroup `path` with device `rules` enforced by the eBPF
/// program on the v2 directory `v2dir`; returns its stdout.
fn device_probe(path: &str, v2dir: Option<&Path>, rules: &str, setup_res: bool) -> String {
    let blk = first_block_device()
        .map(|(_, _, n)| format!("/dev/{n}"))
        .filter(|p| Path::new(p).exists())
        .unwrap_or_else(|| "/dev/nonexistent-blk".to_string());
    let script = format!(
        "t() {{ if ( eval \"exec 3$1 $2\" ) 2>/dev/null; then echo \"$2$1 ok\"; else echo \"$2$1 denied\"; fi; }}; \
         t '<' /dev/kmsg; t '>' /dev/kmsg; t '>' /dev/null; t '<' /dev/zero; t '<' {blk}"
    );
    let (child, mut stdin) = gated(&script);
    let r = res(&format!(r#"{{"devices":{rules}}}"#));
    cgroups::setup(
        &CgroupRequest {
            id: "x",
            cgroups_path: Some(path),
            resources: if setup_res { Some(&r) } else { None },
            systemd: false,
        },
        child.id() as i32,
    )
    .unwrap();
    if let Some(d) = v2dir {
        cgroups::bpf::apply(d, r.devices().as_ref().unwrap()).unwrap();
    }
    go(&mut stdin);
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .replace(&blk, "/dev/BLK")
}

#[test]
fn v2_device_ebpf_program_on_hybrid_hierarchy() {
    let Some((_h, u)) = hybrid_unified("v2_devices") else {
        return;
    };
    let path = unique("dev");
    let _c = Cleanup(path.clone());
    let dir = u.join(path.trim_start_matches('/'));
    let out = device_probe(
        &path,
        Some(&dir),
        r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":11,"access":"r"}]"#,
        false,
    );
    assert_eq!(
        out,
        "/dev/kmsg< ok\n/dev/kmsg> denied\n/dev/null> ok\n/dev/zero< ok\n/dev/BLK< denied\n"
    );
    // Update: replace the program; kmsg now denied entirely, old program detached.
    cgroups::bpf::apply(
        &dir,
        &serde_json::from_str::<Vec<_>>(r#"[{"allow":false,"access":"rwm"}]"#).unwrap(),
    )
    .unwrap();
    let fd = std::fs::File::open(&dir).unwrap();
    let n = cgroups::bpf::attached(&std::os::fd::OwnedFd::from(fd)).unwrap();
    assert_eq!(n.len(), 1, "old program not detached: {n:?}");
    cgroups::destroy(&path).unwrap();
    assert!(!dir.exists());
}

#[test]
fn hybrid_v2_part_gets_process_and_v2_only_controllers() {
    let Some((h, u)) = hybrid_unified("hybrid_v2") else {
        return;
    };
    let path = unique("hyb");
    let _c = Cleanup(path.clone());
    let hugetlb_v2 = cgroups::v2::hybrid_controller(&h, "hugetlb");
    let r = res(if hugetlb_v2 {
        r#"{"hugepageLimits":[{"pageSize":"2MB","limit":4194304}],"unified":{"cgroup.max.descendants":"3"}}"#
    } else {
        r#"{"unified":{"cgroup.max.descendants":"3"}}"#
    });
    let mut child = Command::new("/bin/sleep").arg("60").spawn().unwrap();
    cgroups::setup(
        &CgroupRequest {
            id: "x",
            cgroups_path: Some(&path),
            resources: Some(&r),
            systemd: false,
        },
        child.id() as i32,
    )
    .unwrap();
    let dir = u.join(path.trim_start_matches('/'));
    let rd = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(rd("cgroup.procs"), child.id().to_string());
    assert_eq!(rd("cgroup.max.descendants"), "3");
    if hugetlb_v2 && dir.join("hugetlb.2MB.max").exists() {
        assert_eq!(rd("hugetlb.2MB.max"), "4194304");
    }
    // A unified key the kernel rejects is named with its value.
    let e = cgroups::update(
        &path,
        &res(r#"{"unified":{"cgroup.max.descendants":"abc"}}"#),
    )
    .unwrap_err();
    assert_eq!(e.errno(), libc::EINVAL);
    assert!(
        e.message()
            .contains("write `cgroup.max.descendants` = `abc`"),
        "{e}"
    );
    let e = cgroups::update(&path, &res(r#"{"unified":{"nosuch.file":"1"}}"#)).unwrap_err();
    assert_eq!(e.errno(), libc::ENOENT);
    assert!(
        e.message().contains("controller `nosuch` not available"),
        "{e}"
    );
    // v2 freezer on the hybrid hierarchy.
    cgroups::v2::freeze(&dir, true).unwrap();
    assert!(rd("cgroup.events").lines().any(|l| l == "frozen 1"));
    cgroups::v2::freeze(&dir, false).unwrap();
    assert!(rd("cgroup.events").lines().any(|l| l == "frozen 0"));
    cgroups::destroy(&path).unwrap();
    assert_gone(&h, &path);
    child.wait().unwrap();
}

/// Runs `v2_inner` in a subprocess: there the test thread unshares its mount namespace and
/// mounts a cgroup2 hierarchy over /sys/fs/cgroup, making the host look like pure v2.
#[test]
fn v2_private_hierarchy() {
    if !is_root() {
        eprintln!("skipped v2_private_hierarchy: needs root");
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "v2_inner",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CRUN_RS_V2_INNER", "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{text}");
}

#[test]
#[ignore = "run by v2_private_hierarchy in a private mount namespace"]
fn v2_inner() {
    assert_eq!(std::env::var("CRUN_RS_V2_INNER").as_deref(), Ok("1"));
    // SAFETY: unshare/mount with valid constant arguments, affecting only this thread (and the
    // processes it spawns).
    unsafe {
        assert_eq!(libc::unshare(libc::CLONE_NEWNS), 0, "unshare");
        assert_eq!(
            libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null()
            ),
            0
        );
        assert_eq!(
            libc::mount(
                c"cgroup2".as_ptr(),
                c"/sys/fs/cgroup".as_ptr(),
                c"cgroup2".as_ptr(),
                0,
                std::ptr::null()
            ),
            0,
            "mount cgroup2: {}",
            std::io::Error::last_os_error()
        );
    }
    assert_eq!(cgroups::mode().unwrap(), CgroupMode::Unified);
    let root = Path::new("/sys/fs/cgroup");
    let avail = std::fs::read_to_string(root.join("cgroup.controllers")).unwrap();
    let has = |c: &str| avail.split_whitespace().any(|x| x == c);
    eprintln!("v2 controllers available here: {avail:?}");

    let path = unique("v2");
    let _c = Cleanup(path.clone());
    let mut json = String::from(r#"{"unified":{"cgroup.max.depth":"2"}"#);
    if has("pids") {
        json.push_str(r#","pids":{"limit":33}"#);
    }
    if has("memory") {
        json.push_str(r#","memory":{"limit":67108864,"swap":100663296,"reservation":1048576}"#);
    }
    if has("cpu") {
        json.push_str(r#","cpu":{"shares":1024,"quota":50000,"period":100000}"#);
    }
    if has("hugetlb") {
        json.push_str(r#","hugepageLimits":[{"pageSize":"2MB","limit":2097152}]"#);
    }
    json.push('}');
    let r = res(&json);
    let mut child = Command::new("/bin/sleep").arg("60").spawn().unwrap();
    let hd = cgroups::setup(
        &CgroupRequest {
            id: "x",
            cgroups_path: Some(&path),
            resources: Some(&r),
            systemd: false,
        },
        child.id() as i32,
    )
    .unwrap();
    assert_eq!(hd.mode(), CgroupMode::Unified);
    let dir = root.join(path.trim_start_matches('/'));
    let rd = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(rd("cgroup.procs"), child.id().to_string());
    assert_eq!(rd("cgroup.max.depth"), "2");
    if has("pids") {
        assert_eq!(rd("pids.max"), "33");
    }
    if has("memory") {
        assert_eq!(rd("memory.max"), "67108864");
        assert_eq!(rd("memory.low"), "1048576");
        if dir.join("memory.swap.max").exists() {
            assert_eq!(rd("memory.swap.max"), "33554432");
        }
    }
    if has("cpu") {
        assert_eq!(rd("cpu.weight"), "39");
        assert_eq!(rd("cpu.max"), "50000 100000");
    }
    if has("hugetlb") {
        assert_eq!(rd("hugetlb.2MB.max"), "2097152");
    }
    cgroups::freeze(&path, true).unwrap();
    assert!(rd("cgroup.events").lines().any(|l| l == "frozen 1"));
    cgroups::freeze(&path, false).unwrap();
    assert!(rd("cgroup.events").lines().any(|l| l == "frozen 0"));
    cgroups::update(&path, &res(r#"{"unified":{"cgroup.max.depth":"max"}}"#)).unwrap();
    assert_eq!(rd("cgroup.max.depth"), "max");
    assert_eq!(
        cgroups::read_pids(&path, true).unwrap(),
        vec![child.id() as i32]
    );
    cgroups::destroy(&path).unwrap();
    assert!(!dir.exists());
    child.wait().unwrap();

    // Device rules on pure v2 go through setup() itself.
    let path = unique("v2dev");
    let _c2 = Cleanup(path.clone());
    let out = device_probe(
        &path,
        None,
        r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":11,"access":"r"}]"#,
        true,
    );
    assert_eq!(
        out,
        "/dev/kmsg< ok\n/dev/kmsg> denied\n/dev/null> ok\n/dev/zero< ok\n/dev/BLK< denied\n"
    );
    // update replaces the program instead of stacking a second one.
    let dir = root.join(path.trim_start_matches('/'));
    let count = || {
        let fd = std::fs::File::open(&dir).unwrap();
        cgroups::bpf::attached(&std::os::fd::OwnedFd::from(fd))
            .unwrap()
            .len()
    };
    assert_eq!(count(), 1);
    cgroups::update(
        &path,
        &res(r#"{"devices":[{"allow":true,"access":"rwm"}]}"#),
    )
    .unwrap();
    assert_eq!(count(), 1);
    cgroups::destroy(&path).unwrap();
    assert!(!dir.exists());
}
