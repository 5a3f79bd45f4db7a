//! End-to-end isolation tests through the real `crun` binary (project issue 8): cgroup limits
//! (memory, pids, cpu, blkio), seccomp, hooks, pause/resume/update/ps, delete cleanup and a
//! rootless container.  Every test builds its own bundle (`scripts/make-bundle.sh` plus the static
//! helper `c-tests/e2e_helper.c` as `/e2e`) in its own temp directory, uses its own `--root`
//! state directory and container ids, and cleans up containers and cgroups in `Drop`, so tests
//! run in parallel and leave nothing behind even when an assertion fails.
//!
//! They need root; otherwise each one prints "skipped: ..." and returns.

use serde_json::{json, Value};
use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

fn crun_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_crun"))
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn skip(name: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: {name}: needs root (namespaces, cgroups, mounts)");
        return true;
    }
    false
}

/// The output of one `crun` invocation.  stdout/stderr go through files, never pipes: a
/// container created by `crun create` inherits them and would keep a pipe open forever.
struct Out {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Out {
    fn ok(self, what: &str) -> Self {
        assert!(
            self.status.success(),
            "{what}: {:?}\nstdout: {}\nstderr: {}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Who runs `crun`: root, or an unprivileged uid/gid (through setpriv) with XDG_RUNTIME_DIR.
#[derive(Clone)]
struct User {
    uid: u32,
    gid: u32,
    xdg: PathBuf,
}

/// One test's world: temp dir, bundle, state root, the ids it created.
struct Env {
    dir: PathBuf,
    bundle: PathBuf,
    state: PathBuf,
    name: String,
    ids: std::cell::RefCell<Vec<String>>,
    user: Option<User>,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Layout {
    /// cgroup v1 controllers under /sys/fs/cgroup/<controller> (legacy or hybrid).
    V1,
    /// cgroup2 mounted on /sys/fs/cgroup.
    Unified,
}

fn layout() -> Layout {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        Layout::Unified
    } else {
        Layout::V1
    }
}

/// Every cgroup hierarchy mount point (v1 controllers, named hierarchies and cgroup2).
fn hierarchies() -> Vec<PathBuf> {
    let mi = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut v = Vec::new();
    for line in mi.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let fstype = post.split(' ').next().unwrap_or("");
        if fstype == "cgroup" || fstype == "cgroup2" {
            if let Some(mp) = pre.split(' ').nth(4) {
                v.push(PathBuf::from(mp));
            }
        }
    }
    v
}

impl Env {
    fn new(name: &str) -> Env {
        Self::with_user(name, None)
    }

    fn with_user(name: &str, user: Option<User>) -> Env {
        let dir = std::env::temp_dir().join(format!("crun-e2e-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let bundle = dir.join("bundle");
        let st = Command::new(repo().join("scripts/make-bundle.sh"))
            .arg(&bundle)
            .arg(crun_bin())
            .stdout(Stdio::null())
            .status()
            .expect("run scripts/make-bundle.sh");
        assert!(st.success(), "make-bundle.sh failed");
        let helper = bundle.join("rootfs/e2e");
        let out = Command::new(std::env::var("CC").unwrap_or_else(|_| "gcc".into()))
            .args(["-static", "-O2", "-Wall", "-o"])
            .arg(&helper)
            .arg(repo().join("c-tests/e2e_helper.c"))
            .output()
            .expect("run gcc");
        assert!(
            out.status.success(),
            "gcc e2e_helper.c: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let state = match &user {
            Some(u) => u.xdg.join("crun"),
            None => dir.join("state"),
        };
        Env {
            dir,
            bundle,
            state,
            name: name.to_string(),
            ids: Default::default(),
            user,
        }
    }

    /// A container id unique to this test process, registered for cleanup.
    fn id(&self, suffix: &str) -> String {
        let id = format!("e2e-{}-{}-{suffix}", std::process::id(), self.name);
        self.ids.borrow_mut().push(id.clone());
        id
    }

    fn config(&self) -> Value {
        serde_json::from_str(&fs::read_to_string(self.bundle.join("config.json")).unwrap()).unwrap()
    }

    fn set_config(&self, c: &Value) {
        let p = self.bundle.join("config.json");
        fs::write(&p, serde_json::to_string_pretty(c).unwrap()).unwrap();
        if let Some(u) = &self.user {
            std::os::unix::fs::chown(&p, Some(u.uid), Some(u.gid)).unwrap();
        }
    }

    /// Edit config.json: `f` gets the parsed config.
    fn edit(&self, f: impl FnOnce(&mut Value)) {
        let mut c = self.config();
        f(&mut c);
        self.set_config(&c);
    }

    fn command(&self, global: &[&str], args: &[&str]) -> Command {
        let mut cmd = match &self.user {
            None => {
                let mut c = Command::new(crun_bin());
                c.arg("--root").arg(&self.state);
                c
            }
            Some(u) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={}", u.uid))
                    .arg(format!("--regid={}", u.gid))
                    .arg("--clear-groups")
                    .arg("env")
                    .arg(format!("XDG_RUNTIME_DIR={}", u.xdg.display()))
                    .arg(format!("HOME={}", self.dir.display()))
                    .arg(crun_bin());
                c
            }
        };
        cmd.args(global).args(args).current_dir(&self.bundle);
        cmd
    }

    /// Run `crun [--root STATE] GLOBAL... ARGS...` and collect its output.
    fn crun_with(&self, global: &[&str], args: &[&str]) -> Out {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let (po, pe) = (
            self.dir.join(format!("out-{n}")),
            self.dir.join(format!("err-{n}")),
        );
        let mut child = self
            .command(global, args)
            .stdin(Stdio::null())
            .stdout(File::create(&po).unwrap())
            .stderr(File::create(&pe).unwrap())
            .spawn()
            .expect("spawn crun");
        let status = wait_timeout(&mut child, Duration::from_secs(60))
            .unwrap_or_else(|| panic!("crun {args:?} did not finish in 60 s"));
        let o = Out {
            status,
            stdout: fs::read_to_string(&po).unwrap_or_default(),
            stderr: fs::read_to_string(&pe).unwrap_or_default(),
        };
        let _ = fs::remove_file(po);
        let _ = fs::remove_file(pe);
        o
    }

    fn crun(&self, args: &[&str]) -> Out {
        self.crun_with(&[], args)
    }

    /// `crun create --bundle B ID` with the container's stdout/stderr in `dir/ID.out`/`.err`.
    fn create(&self, id: &str) -> Out {
        let b = self.bundle.to_str().unwrap().to_string();
        self.crun(&["create", "--bundle", &b, id])
    }

    /// `crun create` keeping the container's stdout in a file (returned) that outlives the call.
    fn create_logged(&self, id: &str) -> (Out, PathBuf) {
        let b = self.bundle.to_str().unwrap().to_string();
        let log = self.dir.join(format!("{id}.out"));
        let errp = self.dir.join(format!("{id}.err"));
        let mut child = self
            .command(&[], &["create", "--bundle", &b, id])
            .stdin(Stdio::null())
            .stdout(File::create(&log).unwrap())
            .stderr(File::create(&errp).unwrap())
            .spawn()
            .expect("spawn crun create");
        let status = wait_timeout(&mut child, Duration::from_secs(60)).expect("create hangs");
        let stderr = fs::read_to_string(&errp).unwrap_or_default();
        (
            Out {
                status,
                stdout: String::new(),
                stderr,
            },
            log,
        )
    }

    fn state(&self, id: &str) -> Value {
        let o = self.crun(&["state", id]).ok("crun state");
        serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("state JSON {e}: {}", o.stdout))
    }

    fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap_or("").to_string()
    }

    fn wait_status(&self, id: &str, want: &str) {
        let t = Instant::now();
        loop {
            let s = self.status(id);
            if s == want {
                return;
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "{id}: status `{s}`, want `{want}`"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The container's cgroup path from crun's status file (`cgroup-path`).
    fn cgroup_path(&self, id: &str) -> String {
        let s: Value =
            serde_json::from_str(&fs::read_to_string(self.state.join(id).join("status")).unwrap())
                .unwrap();
        let p = s["cgroup-path"].as_str().unwrap().to_string();
        assert!(!p.is_empty(), "{id}: empty cgroup-path in {s}");
        p
    }

    fn bundle_str(&self) -> String {
        self.bundle.to_str().unwrap().to_string()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = self
                .command(&[], &["delete", "-f", id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            // Whatever the runtime left: kill the processes and remove the cgroups.
            for h in hierarchies() {
                let d = h.join(id);
                if d.exists() {
                    if let Ok(procs) = fs::read_to_string(d.join("cgroup.procs")) {
                        for p in procs.lines().filter_map(|l| l.parse::<i32>().ok()) {
                            // SAFETY: plain kill(2) on a pid read from the test's own cgroup.
                            unsafe { libc::kill(p, libc::SIGKILL) };
                        }
                    }
                    let _ = fs::write(d.join("freezer.state"), "THAWED");
                    for _ in 0..50 {
                        if fs::remove_dir(&d).is_ok() {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn wait_timeout(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let t = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Read a cgroup file of `cg` (the container's cgroup path): the v1 `controller/v1` file, or
/// the v2 file on a unified host.
fn cg_read(cg: &str, controller: &str, v1: &str, v2: &str) -> String {
    let rel = cg.trim_start_matches('/');
    let p = match layout() {
        Layout::V1 => Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(rel)
            .join(v1),
        Layout::Unified => Path::new("/sys/fs/cgroup").join(rel).join(v2),
    };
    fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

fn resources(c: &mut Value) -> &mut Value {
    let l = c["linux"].as_object_mut().unwrap();
    let r = l.entry("resources").or_insert(json!({}));
    if !r.is_object() {
        *r = json!({});
    }
    r
}

fn set_args(c: &mut Value, args: &[&str]) {
    c["process"]["args"] = json!(args);
}

/// Case 1: A 512 KiB memory limit: the container is created and starts, the cgroup shows the
/// limit, a memory hog inside is OOM-killed (the cgroup counts an `oom_kill`), and `crun run` of
/// the hog exits 137 (SIGKILL).
#[test]
fn memory_limit_512k_kills_hog() {
    if skip("memory_limit_512k_kills_hog") {
        return;
    }
    let env = Env::new("mem");
    env.edit(|c| {
        set_args(c, &["/e2e", "hog", "64"]);
        // swap == limit: no swap beyond the limit, where swap accounting exists.
        resources(c)["memory"] = json!({"limit": 524288, "swap": 524288});
    });

    // create/start: the limit is in the cgroup before the hog runs (a running container under
    // 512 KiB can be OOM-killed at any time, so the file is read while it is created).
    let id = env.id("created");
    let (o, log) = env.create_logged(&id);
    o.ok("create with a 512 KiB limit");
    let cg = env.cgroup_path(&id);
    assert_eq!(
        cg_read(&cg, "memory", "memory.limit_in_bytes", "memory.max"),
        "524288"
    );
    env.crun(&["start", &id]).ok("start");
    env.wait_status(&id, "stopped");
    let text = fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains("survived"),
        "hog survived a 512 KiB limit: {text}"
    );
    let events = match layout() {
        Layout::V1 => cg_read(&cg, "memory", "memory.oom_control", ""),
        Layout::Unified => cg_read(&cg, "", "", "memory.events"),
    };
    let kills: u64 = events
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no oom_kill count in {events}"));
    assert!(
        kills >= 1,
        "no OOM kill in the container's cgroup: {events}"
    );
    env.crun(&["delete", &id]).ok("delete");

    // run: the container's exit status is the hog's SIGKILL.
    let id = env.id("run");
    let b = env.bundle_str();
    let o = env.crun(&["run", "--bundle", &b, &id]);
    assert!(
        !o.stdout.contains("survived"),
        "hog survived a 512 KiB limit: {}",
        o.stdout
    );
    assert_eq!(
        o.status.code(),
        Some(137),
        "crun run of the OOM-killed hog: {:?}, stderr: {}",
        o.status,
        o.stderr
    );
}

/// Case 2: pids.max = 10: a fork bomb gets EAGAIN from fork() inside the container.
#[test]
fn pids_limit_holds_fork_bomb() {
    if skip("pids_limit_holds_fork_bomb") {
        return;
    }
    let env = Env::new("pids");
    let id = env.id("bomb");
    env.edit(|c| {
        set_args(c, &["/e2e", "forkbomb", "200"]);
        resources(c)["pids"] = json!({"limit": 10});
    });
    let (o, log) = env.create_logged(&id);
    o.ok("create");
    let cg = env.cgroup_path(&id);
    assert_eq!(cg_read(&cg, "pids", "pids.max", "pids.max"), "10");
    env.crun(&["start", &id]).ok("start");
    env.wait_status(&id, "stopped");
    let text = fs::read_to_string(&log).unwrap();
    // "forked K errno E (NAME)": the container init counts as one of the 10 pids.
    let words: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"forked"), "helper output: {text}");
    let forked: u32 = words[1].parse().unwrap();
    assert!(forked < 10, "forked {forked} children under pids.max=10");
    assert!(
        text.contains("errno 11 (EAGAIN)"),
        "fork did not fail with EAGAIN: {text}"
    );
    env.crun(&["delete", &id]).ok("delete");
}

/// Case 3: cpu, cpuset, memory, pids and blkio settings are in the cgroup files of a created
/// container.
#[test]
fn resources_visible_in_cgroup_files() {
    if skip("resources_visible_in_cgroup_files") {
        return;
    }
    let env = Env::new("res");
    let id = env.id("r");
    // A real block device for the throttle rule: the first whole disk in /proc/partitions.
    let dev = fs::read_to_string("/proc/partitions")
        .unwrap()
        .lines()
        .skip(2)
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() == 4 && f[1] == "0" {
                f[0].parse::<i64>().ok()
            } else {
                None
            }
        });
    env.edit(|c| {
        set_args(c, &["/e2e", "pause"]);
        let r = resources(c);
        r["cpu"] =
            json!({"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"});
        r["memory"] = json!({"limit": 67108864, "reservation": 33554432});
        r["pids"] = json!({"limit": 42});
        r["blockIO"] = json!({"weight": 500});
        if let Some(maj) = dev {
            r["blockIO"]["throttleReadBpsDevice"] =
                json!([{"major": maj, "minor": 0, "rate": 1048576}]);
        }
    });
    env.create(&id).ok("create");
    let cg = env.cgroup_path(&id);
    match layout() {
        Layout::V1 => {
            assert_eq!(cg_read(&cg, "cpu", "cpu.shares", ""), "512");
            assert_eq!(cg_read(&cg, "cpu", "cpu.cfs_quota_us", ""), "50000");
            assert_eq!(cg_read(&cg, "cpu", "cpu.cfs_period_us", ""), "100000");
            assert_eq!(
                cg_read(&cg, "memory", "memory.soft_limit_in_bytes", ""),
                "33554432"
            );
            let blk = Path::new("/sys/fs/cgroup/blkio").join(cg.trim_start_matches('/'));
            let w = ["blkio.weight", "blkio.bfq.weight"]
                .iter()
                .find_map(|f| fs::read_to_string(blk.join(f)).ok())
                .expect("no blkio weight file");
            assert_eq!(w.trim().trim_start_matches("default ").trim(), "500");
            if let Some(maj) = dev {
                let t = cg_read(&cg, "blkio", "blkio.throttle.read_bps_device", "");
                assert_eq!(t, format!("{maj}:0 1048576"));
            }
        }
        Layout::Unified => {
            assert_eq!(cg_read(&cg, "", "", "cpu.weight"), "20");
            assert_eq!(cg_read(&cg, "", "", "cpu.max"), "50000 100000");
            assert_eq!(cg_read(&cg, "", "", "memory.low"), "33554432");
            if let Some(maj) = dev {
                let t = cg_read(&cg, "", "", "io.max");
                assert!(t.contains(&format!("{maj}:0 rbps=1048576")), "io.max: {t}");
            }
        }
    }
    assert_eq!(
        cg_read(&cg, "memory", "memory.limit_in_bytes", "memory.max"),
        "67108864"
    );
    assert_eq!(cg_read(&cg, "pids", "pids.max", "pids.max"), "42");
    assert_eq!(cg_read(&cg, "cpuset", "cpuset.cpus", "cpuset.cpus"), "0");
    assert_eq!(cg_read(&cg, "cpuset", "cpuset.mems", "cpuset.mems"), "0");
    // The container's init is in the cgroup.
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    let procs = cg_read(&cg, "pids", "cgroup.procs", "cgroup.procs");
    assert!(
        procs.lines().any(|l| l == pid.to_string()),
        "pid {pid} not in cgroup.procs: {procs}"
    );
    env.crun(&["delete", "-f", &id]).ok("delete -f");
}

/// Case 4: A seccomp profile returning EDQUOT (122) for mkdir: the container's mkdir fails with 122;
/// without the profile it succeeds.
#[test]
fn seccomp_errno_ret() {
    if skip("seccomp_errno_ret") {
        return;
    }
    let env = Env::new("seccomp");
    let b = env.bundle_str();
    env.edit(|c| {
        set_args(c, &["/e2e", "mkdir", "/tmp/newdir"]);
        c["root"]["readonly"] = json!(false);
    });
    let id = env.id("plain");
    let o = env
        .crun(&["run", "--bundle", &b, &id])
        .ok("run without seccomp");
    assert_eq!(o.stdout.trim(), "mkdir errno 0");

    env.edit(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 122}]
        });
    });
    let id = env.id("edquot");
    let o = env
        .crun(&["run", "--bundle", &b, &id])
        .ok("run with seccomp");
    assert_eq!(o.stdout.trim(), "mkdir errno 122", "stderr: {}", o.stderr);
}

/// Case 5a: every hook kind runs, in order, across create, start and delete, each with the
/// state JSON on stdin.  The hook is the static helper (`/e2e hooklog FILE KIND`): host hooks run
/// it by its host path, startContainer (whose path resolves in the container) as `/e2e`, writing
/// to the same log through a bind mount.
#[test]
fn hooks_run_in_order_with_state() {
    if skip("hooks_run_in_order_with_state") {
        return;
    }
    let env = Env::new("hooks");
    let id = env.id("h");
    let logdir = env.dir.join("hooklog");
    fs::create_dir_all(&logdir).unwrap();
    fs::create_dir_all(env.bundle.join("rootfs/hooklog")).unwrap();
    let log = logdir.join("hooks.log");
    let host_hook = env.bundle.join("rootfs/e2e").to_str().unwrap().to_string();
    let host_log = log.to_str().unwrap().to_string();
    let logdir_s = logdir.to_str().unwrap().to_string();
    env.edit(|c| {
        set_args(c, &["/e2e", "pause"]);
        c["annotations"] = json!({"org.e2e.test": "hooks"});
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/hooklog", "type": "bind", "source": logdir_s,
            "options": ["rbind", "rw"]
        }));
        let host = |k: &str| json!([{"path": host_hook, "args": ["e2e", "hooklog", host_log, k]}]);
        c["hooks"] = json!({
            "prestart": host("prestart"),
            "createRuntime": host("createRuntime"),
            "createContainer": host("createContainer"),
            "startContainer": [{"path": "/e2e",
                                "args": ["e2e", "hooklog", "/hooklog/hooks.log", "startContainer"]}],
            "poststart": host("poststart"),
            "poststop": host("poststop"),
        });
    });
    let read_log = || -> Vec<(String, Value)> {
        fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let (k, j) = l.split_once(' ').unwrap();
                (
                    k.to_string(),
                    serde_json::from_str(j).unwrap_or_else(|e| panic!("{k} state {e}: {j}")),
                )
            })
            .collect()
    };
    let kinds = |v: &[(String, Value)]| v.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();

    env.create(&id).ok("create");
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    assert_eq!(
        kinds(&read_log()),
        ["prestart", "createRuntime", "createContainer"]
    );
    env.crun(&["start", &id]).ok("start");
    // poststart runs in `crun start`; startContainer in the container, concurrently with it
    // (before the user's program): wait for both, their relative order is not defined here.
    let t = Instant::now();
    while read_log().len() < 5 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "hooks after start: {:?}",
            kinds(&read_log())
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut started = kinds(&read_log()[3..]);
    started.sort();
    assert_eq!(started, ["poststart", "startContainer"]);
    env.crun(&["kill", &id, "KILL"]).ok("kill");
    env.wait_status(&id, "stopped");
    assert_eq!(read_log().len(), 5, "{:?}", kinds(&read_log()));
    env.crun(&["delete", &id]).ok("delete");
    let l = read_log();
    assert_eq!(l.len(), 6, "{:?}", kinds(&l));
    assert_eq!(l[5].0, "poststop");

    let bundle = fs::canonicalize(&env.bundle).unwrap();
    for (k, s) in &l {
        assert_eq!(s["id"], json!(id), "{k}: {s}");
        assert_eq!(
            s["annotations"],
            json!({"org.e2e.test": "hooks"}),
            "{k}: {s}"
        );
        let b = fs::canonicalize(s["bundle"].as_str().unwrap()).unwrap();
        assert_eq!(b, bundle, "{k}: {s}");
        assert!(s["ociVersion"].is_string(), "{k}: {s}");
        let want: &[&str] = match k.as_str() {
            // The spec says "creating" here; crun sends "created".  Either is accepted.
            "prestart" | "createRuntime" | "createContainer" => &["creating", "created"],
            "startContainer" => &["created", "running"],
            "poststart" => &["running"],
            _ => &["stopped"],
        };
        let got = s["status"].as_str().unwrap_or("");
        assert!(want.contains(&got), "{k}: status `{got}`, want {want:?}");
        if matches!(k.as_str(), "prestart" | "createRuntime" | "poststart") {
            assert_eq!(s["pid"].as_i64(), Some(pid), "{k}: {s}");
        }
    }
}

/// Case 5b: A failing prestart, createRuntime or createContainer hook fails `create` with the
/// hook's path and exit status, and leaves no state, cgroup or process behind.
#[test]
fn failing_hook_fails_create_and_cleans_up() {
    if skip("failing_hook_fails_create_and_cleans_up") {
        return;
    }
    let env = Env::new("hookfail");
    let hook = env.dir.join("fail-hook.sh");
    fs::write(&hook, "#!/bin/sh\nexit 3\n").unwrap();
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
    let h = hook.to_str().unwrap().to_string();
    for kind in ["prestart", "createRuntime", "createContainer"] {
        let id = env.id(kind);
        env.edit(|c| {
            set_args(c, &["/e2e", "pause"]);
            c["hooks"] = json!({ kind: [{"path": h}] });
        });
        let o = env.create(&id);
        assert!(!o.status.success(), "{kind}: create succeeded");
        assert!(
            o.stderr.contains(&h) && o.stderr.contains("exit code: 3"),
            "{kind}: error does not name the hook and its status: {}",
            o.stderr
        );
        assert!(
            !env.state.join(&id).exists(),
            "{kind}: state directory left behind"
        );
        let l = env.crun(&["list", "-q"]).ok("list");
        assert!(
            !l.stdout.contains(&id),
            "{kind}: still listed: {}",
            l.stdout
        );
        for hdir in hierarchies() {
            assert!(
                !hdir.join(&id).exists(),
                "{kind}: cgroup {} left behind",
                hdir.join(&id).display()
            );
        }
    }
}

/// Case 6: pause/resume through the freezer and `crun state`; `crun update --resources FILE` in the
/// cgroup files; `crun ps` lists the container's init.
#[test]
fn pause_resume_update_ps() {
    if skip("pause_resume_update_ps") {
        return;
    }
    let env = Env::new("pause");
    let id = env.id("p");
    env.edit(|c| {
        set_args(c, &["/e2e", "pause"]);
        resources(c)["memory"] = json!({"limit": 67108864});
        resources(c)["pids"] = json!({"limit": 50});
    });
    env.create(&id).ok("create");
    env.crun(&["start", &id]).ok("start");
    env.wait_status(&id, "running");
    let cg = env.cgroup_path(&id);
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    let freezer = || match layout() {
        Layout::V1 => cg_read(&cg, "freezer", "freezer.state", ""),
        Layout::Unified => match cg_read(&cg, "", "", "cgroup.freeze").as_str() {
            "1" => "FROZEN".into(),
            _ => "THAWED".into(),
        },
    };

    env.crun(&["pause", &id]).ok("pause");
    assert_eq!(freezer(), "FROZEN");
    assert_eq!(env.status(&id), "paused");
    env.crun(&["resume", &id]).ok("resume");
    assert_eq!(freezer(), "THAWED");
    assert_eq!(env.status(&id), "running");

    let res = env.dir.join("resources.json");
    fs::write(
        &res,
        json!({"memory": {"limit": 134217728}, "pids": {"limit": 77}, "cpu": {"shares": 256}})
            .to_string(),
    )
    .unwrap();
    env.crun(&["update", "--resources", res.to_str().unwrap(), &id])
        .ok("update --resources");
    assert_eq!(
        cg_read(&cg, "memory", "memory.limit_in_bytes", "memory.max"),
        "134217728"
    );
    assert_eq!(cg_read(&cg, "pids", "pids.max", "pids.max"), "77");
    match layout() {
        Layout::V1 => assert_eq!(cg_read(&cg, "cpu", "cpu.shares", ""), "256"),
        Layout::Unified => assert_eq!(cg_read(&cg, "", "", "cpu.weight"), "10"),
    }

    let o = env.crun(&["ps", &id]).ok("ps");
    let pids: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(pids, ["PID", &pid.to_string()], "ps: {}", o.stdout);
    let o = env.crun(&["ps", "--format", "json", &id]).ok("ps json");
    assert_eq!(
        serde_json::from_str::<Value>(&o.stdout).unwrap(),
        json!([pid])
    );
    env.crun(&["delete", "-f", &id]).ok("delete -f");
}

/// `crun update` with crun's per-value flags (`--opt V` and `--opt=V`), merged on top of
/// `--resources FILE`: the values land in the v1 cgroup files; bad values are errors naming
/// the flag and change nothing.
#[test]
fn update_flags() {
    if skip("update_flags") {
        return;
    }
    if layout() != Layout::V1 {
        eprintln!("skipped: update_flags: checks cgroup v1 files");
        return;
    }
    let env = Env::new("updflags");
    let id = env.id("u");
    env.edit(|c| {
        set_args(c, &["/e2e", "pause"]);
        resources(c)["memory"] = json!({"limit": 67108864});
        resources(c)["pids"] = json!({"limit": 50});
    });
    env.create(&id).ok("create");
    let cg = env.cgroup_path(&id);
    // The file sets memory and pids; the flags override the memory limit and add the rest.
    let res = env.dir.join("upd.json");
    fs::write(&res, r#"{"memory":{"limit":33554432},"pids":{"limit":77}}"#).unwrap();
    let r = res.to_str().unwrap();
    env.crun(&[
        "update",
        "-r",
        r,
        "--memory",
        "100663296",
        "--memory-reservation=50331648",
        "--memory-swap",
        "201326592",
        "--cpu-share=512",
        "--cpu-period",
        "200000",
        "--cpu-quota=50000",
        "--cpuset-cpus",
        "0",
        "--cpuset-mems=0",
        &id,
    ])
    .ok("update with flags");
    let rd = |c: &str, f: &str| cg_read(&cg, c, f, "");
    assert_eq!(rd("memory", "memory.limit_in_bytes"), "100663296");
    assert_eq!(rd("memory", "memory.soft_limit_in_bytes"), "50331648");
    if Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists() {
        assert_eq!(rd("memory", "memory.memsw.limit_in_bytes"), "201326592");
    }
    assert_eq!(rd("pids", "pids.max"), "77");
    assert_eq!(rd("cpu", "cpu.shares"), "512");
    assert_eq!(rd("cpu", "cpu.cfs_period_us"), "200000");
    assert_eq!(rd("cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(rd("cpuset", "cpuset.cpus"), "0");
    assert_eq!(rd("cpuset", "cpuset.mems"), "0");
    // Flags alone, without a file.
    env.crun(&["update", "--pids-limit=9", "--cpu-quota", "-1", &id])
        .ok("update flags only");
    assert_eq!(rd("pids", "pids.max"), "9");
    assert_eq!(rd("cpu", "cpu.cfs_quota_us"), "-1");
    assert_eq!(rd("memory", "memory.limit_in_bytes"), "100663296");
    for (flag, v) in [
        ("--memory", "abc"),
        ("--pids-limit", "-7"),
        ("--cpu-share", "-5"),
        ("--cpu-period", "1.5"),
        ("--blkio-weight", "x"),
    ] {
        let o = env.crun(&["update", flag, v, &id]);
        assert!(!o.status.success(), "update {flag} {v} succeeded");
        assert!(
            o.stderr.contains(&format!("`{flag}`")) && o.stderr.contains("Invalid argument"),
            "update {flag} {v}: {}",
            o.stderr
        );
    }
    assert_eq!(rd("pids", "pids.max"), "9");
    env.crun(&["delete", "-f", &id]).ok("delete -f");
}

/// The state's `bundle` is a clean absolute path whichever way the bundle was named: the
/// working directory (no `--bundle`), an absolute path with `.` components and a trailing
/// `/.`, a relative `--bundle` (resolved like crun, with realpath).
#[test]
fn bundle_path_normalised() {
    if skip("bundle_path_normalised") {
        return;
    }
    let env = Env::new("bundlepath");
    env.edit(|c| set_args(c, &["/e2e", "pause"]));
    let b = env.bundle_str();
    let dotted = format!("{}/./bundle/.", env.dir.display());
    let cases: [(&str, Vec<&str>); 3] = [
        ("cwd", vec![]),
        ("abs", vec!["--bundle", &dotted]),
        ("rel", vec!["--bundle", "./"]),
    ];
    for (suffix, extra) in cases {
        let id = env.id(suffix);
        let mut args = vec!["create"];
        args.extend(extra.iter().copied());
        args.push(&id);
        env.crun(&args).ok("create");
        assert_eq!(env.state(&id)["bundle"], b.as_str(), "{suffix}: {args:?}");
        env.crun(&["delete", "-f", &id]).ok("delete -f");
    }
    // A relative bundle that does not exist: realpath's error names it.
    let id = env.id("missing");
    let o = env.crun(&["create", "--bundle", "no-such-dir", &id]);
    assert!(!o.status.success());
    assert!(o.stderr.contains("`no-such-dir`"), "{}", o.stderr);
}

/// Case 6b: `crun exec` processes join the container's cgroups: `crun ps` lists them and the
/// container's pids.max counts them (a fork bomb run by exec is held).
#[test]
fn exec_joins_cgroups() {
    if skip("exec_joins_cgroups") {
        return;
    }
    let env = Env::new("exec");
    let id = env.id("x");
    env.edit(|c| {
        set_args(c, &["/e2e", "pause"]);
        resources(c)["pids"] = json!({"limit": 5});
    });
    env.create(&id).ok("create");
    env.crun(&["start", &id]).ok("start");
    let init = env.state(&id)["pid"].as_i64().unwrap();
    let pidfile = env.dir.join("exec.pid");
    let pf = pidfile.to_str().unwrap().to_string();
    env.crun(&["exec", "-d", "--pid-file", &pf, &id, "/e2e", "pause"])
        .ok("exec -d");
    let epid: i64 = fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut want = vec![init, epid];
    want.sort();
    // `exec -d` may return while its intermediate process is still exiting: allow it to go.
    let t = Instant::now();
    loop {
        let o = env.crun(&["ps", "--format", "json", &id]).ok("ps json");
        let mut pids: Vec<i64> = serde_json::from_str(&o.stdout).unwrap();
        pids.sort();
        if pids == want {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "ps: {pids:?}, want {want:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let cg = env.cgroup_path(&id);
    let procs = cg_read(&cg, "pids", "cgroup.procs", "cgroup.procs");
    assert!(
        procs.lines().any(|l| l == epid.to_string()),
        "exec pid {epid} not in cgroup.procs: {procs}"
    );
    // init + exec'd pause + the fork bomb itself: at most 2 more under pids.max = 5.
    let o = env
        .crun(&["exec", &id, "/e2e", "forkbomb", "20"])
        .ok("exec forkbomb");
    let words: Vec<&str> = o.stdout.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"forked"), "exec output: {}", o.stdout);
    let forked: u32 = words[1].parse().unwrap();
    assert!(
        forked <= 2,
        "exec'd fork bomb forked {forked} under pids.max=5"
    );
    assert!(o.stdout.contains("errno 11 (EAGAIN)"), "{}", o.stdout);
    env.crun(&["delete", "-f", &id]).ok("delete -f");
}

/// `crun exec` into a container whose pids cgroup is full: the exec'd process is created by a
/// fork inside the cgroup, so pids.max refuses it (EAGAIN) instead of a migration pushing the
/// cgroup over its limit; a fork bomb under exec never has more than pids.max live pids.
#[test]
fn exec_respects_pids_max() {
    if skip("exec_respects_pids_max") {
        return;
    }
    let env = Env::new("execpids");
    let id = env.id("x");
    env.edit(|c| {
        set_args(c, &["/e2e", "pause"]);
        resources(c)["pids"] = json!({"limit": 5});
    });
    env.create(&id).ok("create");
    env.crun(&["start", &id]).ok("start");
    let cg = env.cgroup_path(&id);
    let live = || {
        cg_read(&cg, "pids", "cgroup.procs", "cgroup.procs")
            .lines()
            .count()
    };
    // init + the holder + 3 children = 5: the cgroup is full.
    let log = env.dir.join("hold.out");
    let mut holder = env
        .command(&[], &["exec", &id, "/e2e", "forkhold", "20"])
        .stdin(Stdio::null())
        .stdout(File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("forked")
    {
        assert!(t.elapsed() < Duration::from_secs(20), "forkhold silent");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = fs::read_to_string(&log).unwrap();
    assert!(out.starts_with("forked 3 errno 11"), "forkhold: {out}");
    assert_eq!(live(), 5);
    // One more process cannot join a full cgroup.
    let o = env.crun(&["exec", "-d", &id, "/e2e", "pause"]);
    assert!(
        !o.status.success(),
        "exec into a full pids cgroup succeeded"
    );
    assert!(
        o.stderr.contains("Resource temporarily unavailable"),
        "exec: {}",
        o.stderr
    );
    let n = live();
    assert!(n <= 5, "{n} processes under pids.max=5");
    let _ = holder.kill();
    let _ = holder.wait();
    env.crun(&["delete", "-f", &id]).ok("delete -f");
}

/// Case 7: delete removes the container's cgroup in every hierarchy and its state directory, for a
/// running container (`delete -f`) and a stopped one (`delete`).
#[test]
fn delete_removes_cgroups_and_state() {
    if skip("delete_removes_cgroups_and_state") {
        return;
    }
    let env = Env::new("delete");
    env.edit(|c| {
        set_args(c, &["/e2e", "pause"]);
        resources(c)["pids"] = json!({"limit": 20});
    });
    for force in [true, false] {
        let id = env.id(if force { "force" } else { "stopped" });
        env.create(&id).ok("create");
        let cg = env.cgroup_path(&id);
        let dirs: Vec<PathBuf> = hierarchies()
            .iter()
            .map(|h| h.join(cg.trim_start_matches('/')))
            .collect();
        assert!(!dirs.is_empty());
        for d in &dirs {
            assert!(d.is_dir(), "{} missing while created", d.display());
        }
        if force {
            env.crun(&["start", &id]).ok("start");
            env.crun(&["delete", "-f", &id]).ok("delete -f");
        } else {
            env.crun(&["kill", &id, "KILL"]).ok("kill");
            env.wait_status(&id, "stopped");
            env.crun(&["delete", &id]).ok("delete");
        }
        for d in &dirs {
            assert!(!d.exists(), "{} left after delete", d.display());
        }
        assert!(!env.state.join(&id).exists(), "state dir left");
    }
    let left: Vec<_> = fs::read_dir(&env.state)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "state root not empty: {left:?}");
}

/// Case 8: Rootless: `crun spec --rootless` generated and run by `nobody` with XDG_RUNTIME_DIR: the
/// container runs in a user namespace (uid 0 inside = nobody outside) and its state lives in
/// `$XDG_RUNTIME_DIR/crun`.  cgroups are disabled (`--cgroup-manager=disabled`): they are not
/// delegated to `nobody` here.
#[test]
fn rootless_nobody() {
    if skip("rootless_nobody") {
        return;
    }
    let max_userns = fs::read_to_string("/proc/sys/user/max_user_namespaces").unwrap_or_default();
    if max_userns.trim() == "0" {
        eprintln!("skipped: rootless_nobody: user namespaces are disabled");
        return;
    }
    // nobody/nogroup (65534) exist on every Debian system.
    let tmp = std::env::temp_dir().join(format!("crun-e2e-{}-xdg", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).unwrap();
    std::os::unix::fs::chown(&tmp, Some(65534), Some(65534)).unwrap();
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o700)).unwrap();
    struct RmDir(PathBuf);
    impl Drop for RmDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
    let _xdg_guard = RmDir(tmp.clone());
    let user = User {
        uid: 65534,
        gid: 65534,
        xdg: tmp.clone(),
    };
    let env = Env::with_user("rootless", Some(user));
    // The spec comes from `crun spec --rootless` run as nobody (it maps the caller's ids).
    fs::remove_file(env.bundle.join("config.json")).unwrap();
    std::os::unix::fs::chown(&env.bundle, Some(65534), Some(65534)).unwrap();
    env.crun(&["spec", "--rootless"]).ok("spec --rootless");
    let c = env.config();
    assert_eq!(
        c["linux"]["uidMappings"],
        json!([{"containerID": 0, "hostID": 65534, "size": 1}])
    );
    assert!(
        c["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == "user"),
        "no user namespace in {c}"
    );
    env.edit(|c| {
        set_args(c, &["/e2e", "mkdir", "/tmp/x"]);
        c["process"]["terminal"] = json!(false);
    });
    let b = env.bundle_str();
    // `run` without `--cgroup-manager=disabled`: nobody cannot create cgroups, so the
    // container runs without one, with a warning (crun's rootless rule).
    let rid = env.id("run");
    let w = ["--log-level=warning"];
    let o = env
        .crun_with(&w, &["run", "--bundle", &b, &rid])
        .ok("rootless run");
    assert!(o.stdout.contains("mkdir errno"), "run output: {}", o.stdout);
    assert!(
        o.stderr.contains("without one"),
        "no rootless cgroup warning: {}",
        o.stderr
    );
    assert!(!tmp.join("crun").join(&rid).exists(), "run left its state");
    env.edit(|c| {
        set_args(c, &["/e2e", "pause"]);
        resources(c)["pids"] = json!({"limit": 50});
    });
    let id = env.id("r");
    let o = env
        .crun_with(&w, &["create", "--bundle", &b, &id])
        .ok("rootless create");
    // The limit the config asks for cannot be applied: the warning names it.
    assert!(
        o.stderr.contains("not enforced: pids"),
        "no warning naming pids: {}",
        o.stderr
    );
    let sj: Value = serde_json::from_str(
        &fs::read_to_string(tmp.join("crun").join(&id).join("status")).unwrap(),
    )
    .unwrap();
    assert_eq!(sj["cgroup-path"], "", "status: {sj}");
    let status = tmp.join("crun").join(&id).join("status");
    assert!(status.exists(), "{} missing", status.display());
    let state: Value = serde_json::from_str(&env.crun(&["state", &id]).ok("state").stdout).unwrap();
    assert_eq!(state["status"], "created");
    let pid = state["pid"].as_i64().unwrap();
    // uid 0 in the container is 65534 on the host, in a user namespace other than ours.
    let uid_map = fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    let f: Vec<&str> = uid_map.split_whitespace().collect();
    assert_eq!(f, ["0", "65534", "1"], "uid_map: {uid_map}");
    let ns = |p: &str| fs::read_link(format!("/proc/{p}/ns/user")).unwrap();
    assert_ne!(ns(&pid.to_string()), ns("self"));
    let st = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = st.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uid_line.split_whitespace().nth(1),
        Some("65534"),
        "{uid_line}"
    );
    env.crun(&["start", &id]).ok("rootless start");
    assert_eq!(env.status(&id), "running");
    // ps falls back to the init's process tree; pause needs a cgroup and says so.
    let ps = env.crun(&["ps", "--format", "json", &id]).ok("rootless ps");
    let pids: Vec<i64> = serde_json::from_str(&ps.stdout).unwrap();
    assert_eq!(pids, [pid], "ps: {}", ps.stdout);
    let o = env.crun(&["pause", &id]);
    assert!(!o.status.success(), "pause without a cgroup succeeded");
    assert!(o.stderr.contains("has no cgroup"), "pause: {}", o.stderr);
    env.crun(&["kill", &id, "KILL"]).ok("rootless kill");
    env.wait_status(&id, "stopped");
    env.crun(&["delete", &id]).ok("rootless delete");
    assert!(!tmp.join("crun").join(&id).exists(), "state left behind");
}
