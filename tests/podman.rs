//! Podman (Debian's 4.3.1) with `--runtime <our crun>` and `--rootfs <busybox dir>`: no image
//! pulls, no network.  All Podman state (storage, run root, tmp dir, events, containers.conf)
//! lives in a per-test temporary directory.  `reference_runc` runs the same cases with Debian's
//! runc, so a failing `crun_*` case is the runtime's.
//!
//! Root only; each test prints `skipped: ...` and returns when podman, conmon, busybox or the
//! runtime is missing.  `CRUN_RS_CONMON=/path/to/conmon` selects another conmon.

mod callers_common;
mod common;

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use callers_common as cc;

struct Podman {
    dir: PathBuf,
    runtime: PathBuf,
}

fn env_missing() -> Option<String> {
    if !cc::is_root() {
        return Some("needs root".into());
    }
    for (tool, pkg) in [("podman", "podman"), ("conmon", "conmon")] {
        if cc::which(tool).is_none() {
            return Some(format!("{tool} not installed (apt install {pkg})"));
        }
    }
    if cc::busybox().is_none() {
        return Some("no static busybox (apt install busybox-static)".into());
    }
    None
}

impl Podman {
    fn new(tag: &str, runtime: &Path) -> Podman {
        // Podman refuses a runroot longer than 50 characters: keep the directory name short.
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = PathBuf::from(format!("/tmp/crp-{}-{n}", std::process::id()));
        eprintln!("{tag}: podman state in {}", dir.display());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        std::fs::write(
            dir.join("containers.conf"),
            "[containers]\nnetns = \"none\"\n\n[engine]\ncgroup_manager = \"cgroupfs\"\n\
             events_logger = \"file\"\n",
        )
        .unwrap();
        let p = Podman {
            dir,
            runtime: runtime.to_path_buf(),
        };
        p.make_rootfs();
        p
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    fn make_rootfs(&self) {
        let r = self.rootfs();
        for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "root"] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        std::fs::copy(cc::busybox().unwrap(), r.join("bin/busybox")).unwrap();
        for a in ["sh", "echo", "cat", "sleep", "true", "tty"] {
            symlink("busybox", r.join("bin").join(a)).unwrap();
        }
        std::fs::write(r.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        std::fs::write(r.join("etc/group"), "root:x:0:\ntty:x:5:\n").unwrap();
        let ne = r.join("bin/not-executable");
        std::fs::write(&ne, "#!/bin/sh\necho should not run\n").unwrap();
        std::fs::set_permissions(&ne, std::fs::Permissions::from_mode(0o644)).unwrap();
    }

    fn command(&self) -> Command {
        // A hung runtime must fail the test, not hang it.
        let mut c = Command::new("timeout");
        c.args(["-k", "5", "120", "podman"])
            .arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("runroot"))
            .arg("--tmpdir")
            .arg(self.dir.join("tmp"))
            .args([
                "--storage-driver",
                "vfs",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
            ])
            .arg("--runtime")
            .arg(&self.runtime)
            // The runtime's state root too (Podman passes no --root by default: /run/crun).
            .arg("--runtime-flag")
            .arg(format!("root={}", self.dir.join("rtroot").display()))
            .env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .stdin(Stdio::null());
        if let Ok(conmon) = std::env::var("CRUN_RS_CONMON") {
            c.arg("--conmon").arg(conmon);
        }
        c
    }

    fn podman(&self, args: &[&str]) -> Output {
        let o = self.command().args(args).output().expect("run podman");
        eprintln!(
            "--- podman {}: {}\nstdout: {:?}\nstderr: {:?}",
            args.join(" "),
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        o
    }

    /// `podman run <opts> --rootfs <rootfs> <cmd>` with this machine's limits.
    fn run(&self, opts: &[&str], cmd: &[&str]) -> Output {
        let rootfs = self.rootfs();
        let mut a: Vec<&str> = vec!["run"];
        a.extend_from_slice(opts);
        a.extend_from_slice(&[
            "--network",
            "none",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            "--rootfs",
            rootfs.to_str().unwrap(),
        ]);
        a.extend_from_slice(cmd);
        self.podman(&a)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.command().args(["rm", "-af", "-t", "0"]).output();
        // Kill whatever this test's Podman started and left running (conmon, containers):
        // their command lines name our private directory.
        let tag = self.dir.to_string_lossy().to_string();
        if let Ok(procs) = std::fs::read_dir("/proc") {
            for e in procs.flatten() {
                let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                    continue;
                };
                let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                if String::from_utf8_lossy(&cmdline).contains(&tag) {
                    // SAFETY: kill(2) on a pid we just read; at worst it has exited (ESRCH).
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        // Unmount anything Podman left under the temporary root (shm mounts) before removing it.
        if let Ok(m) = std::fs::read_to_string("/proc/self/mountinfo") {
            let prefix = self.dir.to_string_lossy().to_string();
            let mut points: Vec<&str> = m
                .lines()
                .filter_map(|l| l.split(' ').nth(4))
                .filter(|p| p.starts_with(&prefix))
                .collect();
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for p in points {
                let _ = Command::new("umount").arg("-l").arg(p).status();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn check_echo(p: &Podman) {
    let o = p.run(&["--rm"], &["echo", "hello"]);
    assert_eq!(o.status.code(), Some(0), "podman run --rm echo");
    assert_eq!(stdout(&o), "hello\n");
}

fn check_echo_tty(p: &Podman) {
    let o = p.run(&["--rm", "-t"], &["echo", "hello"]);
    assert_eq!(o.status.code(), Some(0), "podman run --rm -t echo");
    // The pty turns \n into \r\n.
    assert_eq!(stdout(&o).replace('\r', ""), "hello\n");
}

fn check_not_found(p: &Podman, tty: bool) {
    let opts: &[&str] = if tty { &["--rm", "-t"] } else { &["--rm"] };
    let o = p.run(opts, &["/nonexistent-cmd"]);
    let err = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(127),
        "a nonexistent command must exit 127 (tty={tty}): {err}"
    );
    assert!(
        err.contains("nonexistent-cmd") && cc::podman_not_found_re(&err),
        "podman did not show the runtime's not-found error (tty={tty}): {err}"
    );
}

fn check_not_executable(p: &Podman) {
    let o = p.run(&["--rm"], &["/bin/not-executable"]);
    let err = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(126),
        "a non-executable file must exit 126: {err}"
    );
    assert!(
        err.contains("not-executable") && cc::podman_permission_re(&err),
        "podman did not show the runtime's permission error: {err}"
    );
}

fn wait_for_status(p: &Podman, id: &str, prefix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = p.podman(&[
            "ps",
            "-a",
            "--filter",
            &format!("id={id}"),
            "--format",
            "{{.Status}}",
        ]);
        let s = stdout(&o).trim().to_string();
        if s.starts_with(prefix) || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn check_detached_lifecycle(p: &Podman) {
    // ps + stop + rm.
    let o = p.run(&["-d"], &["sleep", "100"]);
    assert_eq!(o.status.code(), Some(0), "podman run -d: {}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    assert_eq!(id.len(), 64, "podman run -d printed no id: {id:?}");
    let ps = p.podman(&["ps", "--format", "{{.ID}} {{.Status}}"]);
    assert!(ps.status.success());
    let line = stdout(&ps);
    assert!(
        line.starts_with(&id[..12]) && line.contains("Up"),
        "podman ps does not show the running container: {line:?}"
    );
    let o = p.podman(&["stop", "-t", "1", &id]);
    assert!(o.status.success(), "podman stop: {}", stderr(&o));
    let st = wait_for_status(p, &id, "Exited");
    assert!(st.starts_with("Exited"), "after stop: {st:?}");
    let o = p.podman(&["rm", &id]);
    assert!(o.status.success(), "podman rm: {}", stderr(&o));
    let o = p.podman(&["ps", "-aq"]);
    assert_eq!(stdout(&o).trim(), "", "container still listed after rm");

    // kill + wait + rm.
    let o = p.run(&["-d"], &["sleep", "100"]);
    assert_eq!(o.status.code(), Some(0), "podman run -d: {}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    let o = p.podman(&["kill", &id]);
    assert!(o.status.success(), "podman kill: {}", stderr(&o));
    let o = p.podman(&["wait", &id]);
    assert!(o.status.success(), "podman wait: {}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "137", "exit code after SIGKILL");
    let o = p.podman(&["rm", &id]);
    assert!(o.status.success(), "podman rm: {}", stderr(&o));
}

/// `podman exec` (the runtime's `exec --process`) with and without a terminal, in a detached
/// container; then `podman rm -f`.
fn check_exec(p: &Podman) {
    let o = p.run(&["-d"], &["sleep", "100"]);
    assert_eq!(o.status.code(), Some(0), "podman run -d: {}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    let o = p.podman(&["exec", &id, "echo", "from exec"]);
    assert_eq!(o.status.code(), Some(0), "podman exec: {}", stderr(&o));
    assert_eq!(stdout(&o), "from exec\n");
    let o = p.podman(&["exec", "-t", &id, "tty"]);
    assert_eq!(o.status.code(), Some(0), "podman exec -t: {}", stderr(&o));
    assert!(
        stdout(&o).starts_with("/dev/pts/"),
        "exec -t: {:?}",
        stdout(&o)
    );
    let o = p.podman(&["exec", &id, "sh", "-c", "exit 7"]);
    assert_eq!(o.status.code(), Some(7), "exec exit code: {}", stderr(&o));
    let o = p.podman(&["exec", &id, "/nonexistent-cmd"]);
    assert_eq!(
        o.status.code(),
        Some(127),
        "exec of a nonexistent command: {}",
        stderr(&o)
    );
    let o = p.podman(&["rm", "-f", "-t", "0", &id]);
    assert!(o.status.success(), "podman rm -f: {}", stderr(&o));
}

/// Exit codes, stdin (`-i`) and `podman logs` of a detached container.
fn check_exit_stdin_logs(p: &Podman) {
    let o = p.run(&["--rm"], &["sh", "-c", "exit 3"]);
    assert_eq!(o.status.code(), Some(3), "exit code: {}", stderr(&o));
    let mut c = p.command();
    c.arg("run").args(["--rm", "-i", "--network", "none"]);
    c.args([
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
    ]);
    c.arg("--rootfs").arg(p.rootfs()).arg("cat");
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("podman run -i");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"through stdin\n").unwrap();
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "podman run -i cat: {}",
        stderr(&o)
    );
    assert_eq!(stdout(&o), "through stdin\n");
    let o = p.run(&["-d"], &["sh", "-c", "echo logged; echo to-stderr >&2"]);
    assert_eq!(o.status.code(), Some(0), "podman run -d: {}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    let o = p.podman(&["wait", &id]);
    assert_eq!(stdout(&o).trim(), "0", "podman wait: {}", stderr(&o));
    let o = p.podman(&["logs", &id]);
    assert!(o.status.success(), "podman logs: {}", stderr(&o));
    assert_eq!(stdout(&o), "logged\n");
    assert_eq!(stderr(&o), "to-stderr\n");
    let o = p.podman(&["rm", &id]);
    assert!(o.status.success(), "podman rm: {}", stderr(&o));
}

/// `--memory 64m`: the limit is visible through the container's `/sys/fs/cgroup` (Podman adds an
/// OCI mount of type `cgroup` there; on cgroup v1 the runtime bind-mounts each controller).
fn check_cgroup_mount(p: &Podman) {
    let o = p.run(
        &["--rm", "--memory", "64m"],
        &[
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).trim(),
        "67108864",
        "memory limit seen in the container"
    );
}

/// `--cgroupns private`: the container's cgroups are the roots of its cgroup namespace.
fn check_cgroupns_private(p: &Podman) {
    let o = p.run(
        &["--rm", "--cgroupns", "private"],
        &["cat", "/proc/self/cgroup"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for line in stdout(&o).lines() {
        let path = line.splitn(3, ':').nth(2).unwrap_or("");
        assert_eq!(
            path,
            "/",
            "cgroup not at the namespace root: {line:?} in {}",
            stdout(&o)
        );
    }
}

fn runc(test: &str) -> Option<Podman> {
    if let Some(r) = env_missing() {
        cc::skip(test, &r);
        return None;
    }
    match cc::which("runc") {
        Some(r) => Some(Podman::new(test, &r)),
        None => {
            cc::skip(test, "runc not installed: no reference run");
            None
        }
    }
}

fn ours(test: &str) -> Option<Podman> {
    if let Some(r) = env_missing() {
        cc::skip(test, &r);
        return None;
    }
    let crun = common::crun_bin();
    if let Some(r) = cc::runtime_missing(&crun) {
        cc::skip(test, &r);
        return None;
    }
    Some(Podman::new(test, &crun))
}

#[test]
fn reference_runc() {
    if let Some(p) = runc("reference_runc") {
        check_echo(&p);
        check_echo_tty(&p);
        check_not_found(&p, false);
        check_not_executable(&p);
        check_detached_lifecycle(&p);
        check_exec(&p);
        check_exit_stdin_logs(&p);
        check_failed_create_quiet(&p);
        check_cgroup_mount(&p);
        check_cgroupns_private(&p);
    }
}

#[test]
fn crun_run_rm_echo() {
    if let Some(p) = ours("crun_run_rm_echo") {
        check_echo(&p);
    }
}

#[test]
fn crun_run_rm_tty_echo() {
    if let Some(p) = ours("crun_run_rm_tty_echo") {
        check_echo_tty(&p);
    }
}

#[test]
fn crun_not_found_exits_127() {
    if let Some(p) = ours("crun_not_found_exits_127") {
        check_not_found(&p, false);
    }
}

#[test]
fn crun_not_found_exits_127_tty() {
    if let Some(p) = ours("crun_not_found_exits_127_tty") {
        check_not_found(&p, true);
    }
}

#[test]
fn crun_not_executable_exits_126() {
    if let Some(p) = ours("crun_not_executable_exits_126") {
        check_not_executable(&p);
    }
}

#[test]
fn crun_detached_ps_stop_kill_rm() {
    if let Some(p) = ours("crun_detached_ps_stop_kill_rm") {
        check_detached_lifecycle(&p);
    }
}

#[test]
fn crun_exec() {
    if let Some(p) = ours("crun_exec") {
        check_exec(&p);
    }
}

#[test]
fn crun_exit_code_stdin_logs() {
    if let Some(p) = ours("crun_exit_code_stdin_logs") {
        check_exit_stdin_logs(&p);
    }
}

/// After a failed create Podman runs `<runtime> delete --force <id>` for a container the
/// runtime never recorded; runc and crun treat that as success.  crun-rs exits 1 with
/// "container `<id>` does not exist", which Podman prints as an error-level log line.
#[test]
fn crun_failed_create_cleanup_is_quiet() {
    if let Some(p) = ours("crun_failed_create_cleanup_is_quiet") {
        check_failed_create_quiet(&p);
    }
}

fn check_failed_create_quiet(p: &Podman) {
    let o = p.run(&["--rm"], &["/nonexistent-cmd"]);
    assert_eq!(o.status.code(), Some(127));
    let err = stderr(&o);
    assert!(
        !err.contains("does not exist") && !err.contains("level=error"),
        "Podman's cleanup after the failed create reported an error: {err}"
    );
}

#[test]
fn crun_cgroup_mount_shows_limits() {
    if let Some(p) = ours("crun_cgroup_mount_shows_limits") {
        check_cgroup_mount(&p);
    }
}

#[test]
fn crun_cgroupns_private() {
    if let Some(p) = ours("crun_cgroupns_private") {
        check_cgroupns_private(&p);
    }
}
