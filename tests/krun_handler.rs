//! The krun handler against a fake libkrun (`c-tests/fake_libkrun.c`), called directly through
//! the Rust API: selection, each lifecycle method, the arguments passed to every `krun_*` call,
//! errno conversion of every failing call, validation before the VM starts, and the
//! `.krun_config.json` confinement (CVE-2025-24965).
//!
//! `run` is executed in a forked child chrooted into a temporary rootfs, so these tests need
//! root; they print "skipped: ..." otherwise.

mod common;

use std::collections::HashMap;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use crun::handlers::krun::KrunHandler;
use crun::handlers::{configure_handler, ContainerInfo, HandlerManager, LoadedHandler, Phase};

/// The tests fork and set the environment the fake reads: one at a time.
static LOCK: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn is_root() -> bool {
    // SAFETY: plain getter.
    unsafe { libc::geteuid() == 0 }
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root (chroot and mknod in the test rootfs)");
            return;
        }
    };
}

/// Build the fake as `libkrun.so.1` (dir "default") and, in dir "all", also as
/// `libkrun-sev.so.1` and `libkrun-awsnitro.so.1` tagged `[sev]` / `[nitro]`.
fn fake_dirs() -> &'static (PathBuf, PathBuf) {
    static DIRS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    DIRS.get_or_init(|| {
        let base = common::target_dir().join(format!("c-tests/fake-krun-{}", std::process::id()));
        let default = base.join("default");
        let all = base.join("all");
        std::fs::create_dir_all(&default).unwrap();
        std::fs::create_dir_all(&all).unwrap();
        let build = |out: &Path, soname: &str, tag: Option<&str>| {
            let mut c = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()));
            c.args(["-Wall", "-Wextra", "-Werror", "-shared", "-fPIC"])
                .arg(format!("-Wl,-soname,{soname}"))
                .arg("-o")
                .arg(out)
                .arg(common::root().join("c-tests/fake_libkrun.c"));
            if let Some(t) = tag {
                c.arg(format!("-DFAKE_TAG=\"{t}\""));
            }
            let o = c.output().expect("run cc");
            assert!(
                o.status.success(),
                "building the fake libkrun failed:\n{}",
                String::from_utf8_lossy(&o.stderr)
            );
        };
        build(&default.join("libkrun.so.1"), "libkrun.so.1", None);
        build(&all.join("libkrun.so.1"), "libkrun.so.1", None);
        build(
            &all.join("libkrun-sev.so.1"),
            "libkrun-sev.so.1",
            Some("sev"),
        );
        build(
            &all.join("libkrun-awsnitro.so.1"),
            "libkrun-awsnitro.so.1",
            Some("nitro"),
        );
        (default, all)
    })
}

/// A temporary container: bundle dir with `rootfs/dev`, a state dir and a log path.
struct Case {
    dir: PathBuf,
    rootfs: PathBuf,
    state: PathBuf,
    log: PathBuf,
}

impl Case {
    fn new(name: &str) -> Case {
        let dir = std::env::temp_dir().join(format!("crun-rs-krun-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let rootfs = dir.join("rootfs");
        let state = dir.join("state/ctr");
        std::fs::create_dir_all(rootfs.join("dev")).unwrap();
        std::fs::create_dir_all(&state).unwrap();
        let log = dir.join("krun.log");
        // After chroot the fake's log path resolves inside the rootfs.
        std::fs::create_dir_all(rootfs.join(dir.strip_prefix("/").unwrap())).unwrap();
        Case {
            dir,
            rootfs,
            state,
            log,
        }
    }

    /// Every logged call, host side then container side.
    fn calls(&self) -> Vec<String> {
        let inner = self.rootfs.join(self.log.strip_prefix("/").unwrap());
        let mut out = Vec::new();
        for p in [&self.log, &inner] {
            if let Ok(s) = std::fs::read_to_string(p) {
                out.extend(s.lines().map(str::to_string));
            }
        }
        out
    }

    fn info<'a>(&'a self, spec: &'a oci_spec::runtime::Spec) -> ContainerInfo<'a> {
        ContainerInfo {
            id: "ctr",
            spec,
            bundle: &self.dir,
            state_dir: &self.state,
        }
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn spec(annotations: &[(&str, &str)], args: &[&str]) -> oci_spec::runtime::Spec {
    let a: HashMap<String, String> = annotations
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    serde_json::from_value(serde_json::json!({
        "ociVersion": "1.0.0",
        "root": {"path": "rootfs"},
        "process": {"args": args, "cwd": "/", "env": ["PATH=/bin", "A=1"], "user": {"uid": 0, "gid": 0}},
        "annotations": a,
    }))
    .unwrap()
}

/// Set the fake's environment (under LOCK).
fn fake_env(case: &Case, fail: Option<&str>, exit: Option<&str>) {
    std::env::set_var("FAKE_KRUN_LOG", &case.log);
    match fail {
        Some(f) => std::env::set_var("FAKE_KRUN_FAIL", f),
        None => std::env::remove_var("FAKE_KRUN_FAIL"),
    }
    match exit {
        Some(e) => std::env::set_var("FAKE_KRUN_EXIT", e),
        None => std::env::remove_var("FAKE_KRUN_EXIT"),
    }
}

fn load(libdir: &Path, spec: &oci_spec::runtime::Spec) -> crun::Result<Box<dyn LoadedHandler>> {
    let mut m = HandlerManager::new_builtin()?;
    m.set_krun_library_dir(Some(libdir.to_path_buf()));
    let ann: HashMap<String, String> = spec.annotations().clone().unwrap_or_default();
    configure_handler(Some(&m), Some("krun"), Some(&ann)).map(|h| h.expect("a handler"))
}

/// What happened in the container process.
#[derive(Debug)]
enum Outcome {
    /// `run` (or AfterMounts) returned this error.
    Error(i32, String),
    /// The process exited with this status (krun_start_enter "booted").
    Exited(i32),
}

/// In a forked child: AfterMounts, chroot into the rootfs, close_fds, run.
fn run_in_child(
    case: &Case,
    h: &mut dyn LoadedHandler,
    spec: &oci_spec::runtime::Spec,
    verbosity: Option<i32>,
) -> Outcome {
    let mut fds = [0; 2];
    // SAFETY: plain pipe creation.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: the child only runs the handler and exits with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let report = |e: crun::Error| -> ! {
            let msg = format!("{}\n{}", e.errno(), e.message());
            // SAFETY: fd 3 is the pipe's write end.
            unsafe {
                libc::write(3, msg.as_ptr().cast(), msg.len());
                libc::_exit(99)
            }
        };
        // SAFETY: moving the pipe's write end to fd 3 (kept by close_fds(1)).
        unsafe {
            libc::dup2(fds[1], 3);
        }
        if let Some(v) = verbosity {
            crun::log::set_verbosity(v);
        }
        let info = case.info(spec);
        if let Err(e) = h.configure_container(Phase::AfterMounts, &info, &case.rootfs) {
            report(e);
        }
        let root = std::ffi::CString::new(case.rootfs.to_str().unwrap()).unwrap();
        // SAFETY: chroot into the test rootfs.
        if unsafe { libc::chroot(root.as_ptr()) } != 0 || std::env::set_current_dir("/").is_err() {
            report(crun::Error::last_os_error("chroot"));
        }
        if let Err(e) = h.close_fds(1) {
            report(e);
        }
        let args: Vec<String> = spec.process().as_ref().unwrap().args().clone().unwrap();
        match h.run(&info, &args[0], &args) {
            Ok(v) => report(crun::Error::new(0, format!("run returned {v}"))),
            Err(e) => report(e),
        }
    }
    // SAFETY: closing our copy of the write end.
    unsafe { libc::close(fds[1]) };
    // SAFETY: fds[0] is ours.
    let mut r = unsafe { std::fs::File::from_raw_fd(fds[0]) };
    let mut out = String::new();
    r.read_to_string(&mut out).unwrap();
    let mut status = 0;
    // SAFETY: waiting for our child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "child died: {status:#x}");
    let code = libc::WEXITSTATUS(status);
    if code == 99 {
        let (errno, msg) = out.split_once('\n').unwrap();
        Outcome::Error(errno.parse().unwrap(), msg.to_string())
    } else {
        Outcome::Exited(code)
    }
}

/// Load, modify, BeforeUserns, then run in a child; returns the outcome and the call log.
fn full_run(
    case: &Case,
    libdir: &Path,
    spec: &oci_spec::runtime::Spec,
    fail: Option<&str>,
    exit: Option<&str>,
) -> (Outcome, Vec<String>) {
    fake_env(case, fail, exit);
    let mut h = load(libdir, spec).unwrap();
    let mut spec = spec.clone();
    h.modify_oci_configuration(&mut spec).unwrap();
    h.configure_container(Phase::BeforeUserns, &case.info(&spec), Path::new("rootfs"))
        .unwrap();
    let o = run_in_child(case, h.as_mut(), &spec, None);
    (o, case.calls())
}

fn find<'a>(calls: &'a [String], name: &str) -> Option<&'a String> {
    calls
        .iter()
        .find(|c| c.split_whitespace().next() == Some(name))
}

#[test]
fn run_passes_annotations_and_vm_json_to_libkrun() {
    require_root!();
    let _g = lock();
    let case = Case::new("args");
    std::fs::write(
        case.rootfs.join(".krun_vm.json"),
        r#"{"cpus": 7, "ram_mib": 4096, "virtiofs_tag": "myfs", "virtiofs_shm_size": 1048576,
            "kernel_path": "/boot/vmlinux", "kernel_format": 1, "initrd_path": "/boot/initrd",
            "kernel_cmdline": "console=hvc0 init=/init.krun"}"#,
    )
    .unwrap();
    let s = spec(
        &[("krun.cpus", "3"), ("krun.ram_mib", "2048")],
        &["/bin/true"],
    );
    let (o, calls) = full_run(&case, &fake_dirs().0, &s, None, Some("42"));
    assert!(matches!(o, Outcome::Exited(42)), "{o:?} {calls:?}");
    let names: Vec<&str> = calls
        .iter()
        .map(|c| c.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "krun_create_ctx",
            "krun_set_log_level",
            "krun_add_virtiofs2",
            "krun_set_vm_config",
            "krun_set_kernel",
            "krun_start_enter"
        ]
    );
    assert!(calls[1].ends_with("level=1"), "{}", calls[1]);
    assert!(
        calls[2].ends_with("tag=myfs path=/ shm=1048576"),
        "{}",
        calls[2]
    );
    assert!(calls[3].ends_with("cpus=3 ram_mib=2048"), "{}", calls[3]);
    assert!(
        calls[4].ends_with(
            "path=/boot/vmlinux format=1 initrd=/boot/initrd cmdline=console=hvc0 init=/init.krun"
        ),
        "{}",
        calls[4]
    );
}

#[test]
fn run_uses_vm_json_then_defaults() {
    require_root!();
    let _g = lock();
    let case = Case::new("json");
    std::fs::write(
        case.rootfs.join(".krun_vm.json"),
        r#"{"cpus": 2, "ram_mib": 512}"#,
    )
    .unwrap();
    let (o, calls) = full_run(&case, &fake_dirs().0, &spec(&[], &["/x"]), None, Some("0"));
    assert!(matches!(o, Outcome::Exited(0)), "{o:?}");
    assert!(find(&calls, "krun_set_vm_config")
        .unwrap()
        .ends_with("cpus=2 ram_mib=512"));
    assert!(find(&calls, "krun_set_kernel").is_none());

    let case = Case::new("defaults");
    let (o, calls) = full_run(&case, &fake_dirs().0, &spec(&[], &["/x"]), None, Some("0"));
    assert!(matches!(o, Outcome::Exited(0)), "{o:?}");
    let cpus = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).unwrap();
    let n = (0..nix::sched::CpuSet::count())
        .filter(|&i| cpus.is_set(i).unwrap())
        .count()
        .clamp(1, 16);
    assert!(
        find(&calls, "krun_set_vm_config")
            .unwrap()
            .ends_with(&format!("cpus={n} ram_mib=1024")),
        "{calls:?}"
    );
    assert!(find(&calls, "krun_add_virtiofs2")
        .unwrap()
        .ends_with("tag=/dev/root path=/ shm=536870912"));
}

#[test]
fn every_failing_krun_call_gives_a_positive_errno_and_names_the_call() {
    require_root!();
    let _g = lock();
    for (call, errno, expected) in [
        ("krun_set_log_level", libc::EINVAL, "krun_set_log_level"),
        ("krun_add_virtiofs2", libc::ENOENT, "krun_add_virtiofs2"),
        ("krun_set_vm_config", libc::EINVAL, "krun_set_vm_config"),
        ("krun_set_kernel", libc::EOPNOTSUPP, "krun_set_kernel"),
        ("krun_start_enter", libc::EINVAL, "could not start krun"),
        ("krun_start_enter", libc::ENOENT, "could not start krun"),
    ] {
        let case = Case::new("fail");
        std::fs::write(
            case.rootfs.join(".krun_vm.json"),
            r#"{"kernel_path": "/k", "kernel_format": 0}"#,
        )
        .unwrap();
        let (o, calls) = full_run(
            &case,
            &fake_dirs().0,
            &spec(&[], &["/x"]),
            Some(&format!("{call}:{errno}")),
            Some("0"),
        );
        match o {
            Outcome::Error(e, msg) => {
                assert_eq!((e, msg.as_str()), (errno, expected), "{call}");
                let shown = crun::Error::new(e, msg).to_string();
                assert!(!shown.contains("Unknown error"), "{shown}");
                if errno == libc::EINVAL {
                    assert_eq!(shown, format!("{expected}: Invalid argument"));
                }
            }
            o => panic!("{call}: expected an error, got {o:?}"),
        }
        // Nothing after the failing call.
        assert_eq!(calls.last().unwrap().split_whitespace().next(), Some(call));
    }
}

#[test]
fn create_ctx_failure_is_reported_at_load() {
    require_root!();
    let _g = lock();
    let case = Case::new("ctx");
    fake_env(&case, Some("krun_create_ctx:12"), None);
    let e = load(&fake_dirs().0, &spec(&[], &["/x"])).err().unwrap();
    assert_eq!(e.errno(), libc::ENOMEM);
    assert!(
        e.message().ends_with("could not create krun context"),
        "{}",
        e.message()
    );
}

#[test]
fn missing_libraries_name_all_three() {
    let dir = std::env::temp_dir().join(format!("crun-rs-krun-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let e = KrunHandler::load_from(Some(&dir)).unwrap_err();
    assert_eq!(e.errno(), libc::ENOENT);
    for lib in ["libkrun.so.1", "libkrun-sev.so.1", "libkrun-awsnitro.so.1"] {
        assert!(e.message().contains(lib), "{}", e.message());
    }
    assert!(e.message().contains("for krun_config: "));
    let _ = std::fs::remove_dir(&dir);
}

#[test]
fn invalid_settings_are_rejected_before_the_vm_starts() {
    require_root!();
    let _g = lock();
    for (ann, json, needle) in [
        (("krun.cpus", "300"), None, "annotation `krun.cpus`"),
        (("krun.cpus", "-2"), None, "annotation `krun.cpus`"),
        (("krun.ram_mib", "lots"), None, "annotation `krun.ram_mib`"),
        (
            ("krun.ram_mib", "4294967296"),
            None,
            "annotation `krun.ram_mib`",
        ),
        (
            ("x", "y"),
            Some(r#"{"cpus": 1.5}"#),
            "`cpus` in `/.krun_vm.json`",
        ),
        (("x", "y"), Some(r#"{"ram_mib": -5}"#), "`ram_mib`"),
        (("x", "y"), Some(r#"{"cpus": 256}"#), "`cpus`"),
        (("x", "y"), Some("{not json"), ".krun_vm.json"),
    ] {
        let case = Case::new("invalid");
        if let Some(j) = json {
            std::fs::write(case.rootfs.join(".krun_vm.json"), j).unwrap();
        }
        fake_env(&case, None, Some("0"));
        let s = spec(&[ann], &["/x"]);
        let mut h = load(&fake_dirs().0, &s).unwrap();
        // In the parent, at create time.
        let e = h
            .configure_container(Phase::BeforeUserns, &case.info(&s), Path::new("rootfs"))
            .unwrap_err();
        assert_eq!(e.errno(), libc::EINVAL, "{}", e.message());
        assert!(e.message().contains(needle), "{}", e.message());

        // And again in run, if BeforeUserns was skipped: no krun_* call after create_ctx.
        if json.is_none() {
            let o = run_in_child(&case, h.as_mut(), &s, None);
            match o {
                Outcome::Error(e, m) => {
                    assert_eq!(e, libc::EINVAL);
                    assert!(m.contains(needle), "{m}");
                }
                o => panic!("{o:?}"),
            }
            let calls = case.calls();
            assert_eq!(calls, ["krun_create_ctx"], "{ann:?}");
        }
    }
}

#[test]
fn config_file_is_written_0444_from_the_state_dir() {
    require_root!();
    let _g = lock();
    let case = Case::new("config");
    fake_env(&case, None, None);
    let s = spec(&[], &["/bin/sh"]);
    std::fs::write(case.state.join("config.json"), b"{\"from\":\"state\"}").unwrap();
    let mut h = load(&fake_dirs().0, &s).unwrap();
    h.configure_container(Phase::BeforeUserns, &case.info(&s), &case.rootfs)
        .unwrap();
    let p = case.rootfs.join(".krun_config.json");
    let md = std::fs::symlink_metadata(&p).unwrap();
    assert!(md.file_type().is_file());
    assert_eq!(md.permissions().mode() & 0o7777, 0o444);
    assert_eq!(std::fs::read(&p).unwrap(), b"{\"from\":\"state\"}");

    // Without a state copy the spec itself is written; an existing 0444 file is replaced.
    std::fs::remove_file(case.state.join("config.json")).unwrap();
    h.configure_container(Phase::BeforeUserns, &case.info(&s), &case.rootfs)
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    assert_eq!(v["process"]["args"][0], "/bin/sh");
}

#[test]
fn planted_symlinks_are_not_followed() {
    require_root!();
    let _g = lock();
    let case = Case::new("symlink");
    fake_env(&case, None, None);
    let outside = case.dir.join("outside");
    std::fs::write(&outside, "original").unwrap();
    let missing = case.dir.join("would-be-created");
    std::os::unix::fs::symlink(&outside, case.rootfs.join(".krun_config.json")).unwrap();
    let s = spec(&[], &["/bin/sh"]);
    let mut h = load(&fake_dirs().0, &s).unwrap();
    h.configure_container(Phase::BeforeUserns, &case.info(&s), &case.rootfs)
        .unwrap();
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "original");
    let md = std::fs::symlink_metadata(case.rootfs.join(".krun_config.json")).unwrap();
    assert!(
        md.file_type().is_file(),
        "the symlink was replaced by a file"
    );
    assert_eq!(md.permissions().mode() & 0o7777, 0o444);

    // A dangling link is not followed to create its target either.
    std::fs::remove_file(case.rootfs.join(".krun_config.json")).unwrap();
    std::os::unix::fs::symlink(&missing, case.rootfs.join(".krun_config.json")).unwrap();
    h.configure_container(Phase::BeforeUserns, &case.info(&s), &case.rootfs)
        .unwrap();
    assert!(!missing.exists());

    // `.krun_vm.json` is read without following a link: ELOOP, naming the file.
    std::os::unix::fs::symlink(&outside, case.rootfs.join(".krun_vm.json")).unwrap();
    let e = h
        .configure_container(Phase::BeforeUserns, &case.info(&s), &case.rootfs)
        .unwrap_err();
    assert_eq!(e.errno(), libc::ELOOP);
    assert!(e.message().contains(".krun_vm.json"), "{}", e.message());
}

#[test]
fn device_rules_and_dev_kvm() {
    require_root!();
    let _g = lock();
    if !Path::new("/dev/kvm").exists() {
        eprintln!("skipped: no /dev/kvm on this host");
        return;
    }
    let case = Case::new("dev");
    fake_env(&case, None, None);
    let mut s = spec(&[], &["/x"]);
    let mut h = load(&fake_dirs().0, &s).unwrap();
    assert!(!h.supports_exec());
    assert_eq!(h.name(), "krun");
    h.modify_oci_configuration(&mut s).unwrap();
    let rules = s
        .linux()
        .as_ref()
        .unwrap()
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .clone()
        .unwrap();
    let kvm = std::fs::metadata("/dev/kvm").unwrap().rdev();
    assert!(rules.iter().any(|r| r.allow()
        && r.typ() == Some(oci_spec::runtime::LinuxDeviceType::C)
        && r.major() == Some(libc::major(kvm) as i64)
        && r.minor() == Some(libc::minor(kvm) as i64)
        && r.access().as_deref() == Some("rwm")));

    h.configure_container(Phase::AfterMounts, &case.info(&s), &case.rootfs)
        .unwrap();
    let md = std::fs::symlink_metadata(case.rootfs.join("dev/kvm")).unwrap();
    assert!(md.file_type().is_char_device());
    assert_eq!(md.rdev(), libc::makedev(10, 232));
    assert_eq!(md.permissions().mode() & 0o777, 0o666);

    // Listed in the spec: left to the runtime.
    let case2 = Case::new("dev2");
    let s2: oci_spec::runtime::Spec = serde_json::from_value(serde_json::json!({
        "ociVersion": "1.0.0",
        "linux": {"devices": [{"path": "/dev/kvm", "type": "c", "major": 10, "minor": 232}]}
    }))
    .unwrap();
    h.configure_container(Phase::AfterMounts, &case2.info(&s2), &case2.rootfs)
        .unwrap();
    assert!(!case2.rootfs.join("dev/kvm").exists());
}

#[test]
fn flavours_select_their_library() {
    require_root!();
    let _g = lock();
    let all = &fake_dirs().1;

    let case = Case::new("sev");
    let (o, calls) = full_run(
        &case,
        all,
        &spec(&[("krun.variant", "sev")], &["/x"]),
        None,
        Some("5"),
    );
    assert!(matches!(o, Outcome::Exited(5)), "{o:?}");
    let after_load: Vec<&String> = calls
        .iter()
        .filter(|c| !c.contains("krun_create_ctx"))
        .collect();
    assert!(
        after_load.iter().all(|c| c.starts_with("[sev] ")),
        "{calls:?}"
    );
    assert!(calls
        .iter()
        .any(|c| c.ends_with("krun_set_root_disk ctx=0 path=/disk.img")));
    assert!(calls
        .iter()
        .any(|c| c.ends_with("krun_set_tee_config_file ctx=0 path=/krun-sev.json")));
    assert!(!calls.iter().any(|c| c.contains("virtiofs")));

    // /krun-sev.json alone selects SEV too.
    let case = Case::new("sevfile");
    std::fs::write(case.rootfs.join("krun-sev.json"), "{}").unwrap();
    let (_, calls) = full_run(&case, all, &spec(&[], &["/x"]), None, Some("0"));
    assert!(calls
        .iter()
        .any(|c| c.starts_with("[sev] krun_start_enter")));

    let case = Case::new("nitro");
    let (o, calls) = full_run(
        &case,
        all,
        &spec(&[("krun.variant", "aws-nitro")], &["/bin/app", "a", "b"]),
        None,
        Some("6"),
    );
    assert!(matches!(o, Outcome::Exited(6)), "{o:?}");
    assert!(calls
        .iter()
        .any(|c| c == "[nitro] krun_set_console_output ctx=0 path=/dev/stdout"));
    assert!(
        calls
            .iter()
            .any(|c| c == "[nitro] krun_set_exec ctx=0 path=/bin/app argv=a|b envc=2"),
        "{calls:?}"
    );

    // Only libkrun.so.1 installed: SEV is a clear error before any VM call.
    let case = Case::new("nosev");
    fake_env(&case, None, Some("0"));
    let s = spec(&[("krun.variant", "sev")], &["/x"]);
    let mut h = load(&fake_dirs().0, &s).unwrap();
    let e = h
        .configure_container(Phase::BeforeUserns, &case.info(&s), Path::new("rootfs"))
        .unwrap_err();
    assert_eq!(e.errno(), libc::ENOENT);
    assert_eq!(
        e.message(),
        "the container requires libkrun-sev but it's not available"
    );
}

#[test]
fn log_level_follows_verbosity() {
    require_root!();
    let _g = lock();
    for (v, level) in [
        (crun::log::VERBOSITY_DEBUG, 4),
        (crun::log::VERBOSITY_WARNING, 2),
    ] {
        let case = Case::new("loglevel");
        fake_env(&case, None, Some("0"));
        let s = spec(&[], &["/x"]);
        let mut h = load(&fake_dirs().0, &s).unwrap();
        h.configure_container(Phase::BeforeUserns, &case.info(&s), &case.rootfs)
            .unwrap();
        let o = run_in_child(&case, h.as_mut(), &s, Some(v));
        assert!(matches!(o, Outcome::Exited(0)), "{o:?}");
        assert!(find(&case.calls(), "krun_set_log_level")
            .unwrap()
            .ends_with(&format!("level={level}")));
    }
}

#[test]
fn guest_runs_the_workload_from_krun_config_json() {
    require_root!();
    let _g = lock();
    let Some(busybox) = ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(Path::new)
        .find(|p| p.exists())
    else {
        eprintln!("skipped: busybox (Debian busybox-static) not installed");
        return;
    };
    let case = Case::new("workload");
    std::fs::create_dir_all(case.rootfs.join("bin")).unwrap();
    std::fs::copy(busybox, case.rootfs.join("bin/busybox")).unwrap();
    // The fake's krun_start_enter execs process.args from /.krun_config.json like the guest
    // init: the status proves the file written at BeforeUserns carried the workload.
    let s = spec(&[], &["/bin/busybox", "sh", "-c", "exit 7"]);
    let (o, _) = full_run(&case, &fake_dirs().0, &s, None, None);
    assert!(matches!(o, Outcome::Exited(7)), "{o:?}");
}

#[test]
fn close_fds_keeps_preserved_descriptors() {
    let _g = lock();
    // SAFETY: fork; the child only checks descriptors and _exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let f = std::fs::File::open("/dev/null").unwrap();
        // SAFETY: arranging fds 3 (kept) and 9 (closed).
        unsafe {
            libc::dup2(f.as_raw_fd(), 3);
            libc::dup2(f.as_raw_fd(), 9);
        }
        let mut h: Box<dyn LoadedHandler> = match KrunHandler::load_from(Some(&fake_dirs().0)) {
            Ok(h) => Box::new(h),
            // SAFETY: leaving the child.
            Err(_) => unsafe { libc::_exit(2) },
        };
        let ok = h.close_fds(1).is_ok()
            // SAFETY: fcntl probes.
            && unsafe { libc::fcntl(3, libc::F_GETFD) } >= 0
            && unsafe { libc::fcntl(9, libc::F_GETFD) } < 0;
        // SAFETY: leaving the child.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waiting for our child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
}

/// A fake `passt` on `PATH` that logs its arguments to `$FAKE_PASST_LOG` and exits with
/// `$FAKE_PASST_EXIT` (as if it had daemonized).
fn fake_passt_path(case: &Case, with_passt: bool) -> std::ffi::OsString {
    let bin = case.dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    if with_passt {
        let p = bin.join("passt");
        std::fs::write(
            &p,
            "#!/bin/sh\necho \"$@\" >> \"$FAKE_PASST_LOG\"\nexit ${FAKE_PASST_EXIT:-0}\n",
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let old = std::env::var_os("PATH").unwrap_or_default();
    std::env::set_var("PATH", &bin);
    std::env::set_var("FAKE_PASST_LOG", case.dir.join("passt.log"));
    old
}

#[test]
fn passt_networking() {
    require_root!();
    let _g = lock();
    let s = spec(&[("krun.use_passt", "1")], &["/x"]);
    // Build the fakes before PATH is pointed at the fake passt (cc needs the real PATH).
    let _ = fake_dirs();

    let case = Case::new("passt");
    let old = fake_passt_path(&case, true);
    std::env::remove_var("FAKE_PASST_EXIT");
    let (o, calls) = full_run(&case, &fake_dirs().0, &s, None, Some("0"));
    std::env::set_var("PATH", &old);
    assert!(matches!(o, Outcome::Exited(0)), "{o:?}");
    let passt = std::fs::read_to_string(case.dir.join("passt.log")).unwrap();
    let fd: i32 = passt
        .trim()
        .strip_prefix("-t all -u all --no-dhcp-dns --no-map-gw --fd ")
        .unwrap_or_else(|| panic!("passt args: {passt}"))
        .parse()
        .unwrap();
    let net = find(&calls, "krun_add_net_unixstream").expect("net configured");
    let our_fd: i32 = net
        .split_whitespace()
        .find_map(|w| w.strip_prefix("fd="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(our_fd >= 3 && our_fd != fd, "{net}");
    assert!(
        net.ends_with(&format!(
            "path=(null) fd={our_fd} features={} flags=2",
            crun::handlers::krun::COMPAT_NET_FEATURES
        )),
        "{net}"
    );

    // An old libkrun rejecting the flags gets a retry without them; the final error is named.
    let case = Case::new("passt-retry");
    let old = fake_passt_path(&case, true);
    let (o, calls) = full_run(
        &case,
        &fake_dirs().0,
        &s,
        Some("krun_add_net_unixstream:22"),
        Some("0"),
    );
    std::env::set_var("PATH", &old);
    let nets: Vec<&String> = calls
        .iter()
        .filter(|c| c.starts_with("krun_add_net_unixstream"))
        .collect();
    assert_eq!(nets.len(), 2, "{calls:?}");
    assert!(nets[0].ends_with("flags=2") && nets[1].ends_with("flags=0"));
    match o {
        Outcome::Error(e, m) => {
            assert_eq!((e, m.as_str()), (libc::EINVAL, "krun_add_net_unixstream"))
        }
        o => panic!("{o:?}"),
    }

    // passt failing or missing is reported before the VM is configured.
    let case = Case::new("passt-fail");
    let old = fake_passt_path(&case, true);
    std::env::set_var("FAKE_PASST_EXIT", "3");
    let (o, calls) = full_run(&case, &fake_dirs().0, &s, None, Some("0"));
    std::env::remove_var("FAKE_PASST_EXIT");
    std::env::set_var("PATH", &old);
    match o {
        Outcome::Error(e, m) => {
            assert_eq!(
                (e, m.as_str()),
                (0, "start passt: `passt` exited with status 3")
            )
        }
        o => panic!("{o:?}"),
    }
    assert_eq!(calls, ["krun_create_ctx"]);

    let case = Case::new("passt-missing");
    let old = fake_passt_path(&case, false);
    let (o, _) = full_run(&case, &fake_dirs().0, &s, None, Some("0"));
    std::env::set_var("PATH", &old);
    match o {
        Outcome::Error(e, m) => {
            assert_eq!(
                (e, m.as_str()),
                (libc::ENOENT, "start passt: execute `passt`")
            )
        }
        o => panic!("{o:?}"),
    }
}

#[test]
fn dev_kvm_is_bind_mounted_inside_a_user_namespace() {
    require_root!();
    let _g = lock();
    if !Path::new("/dev/kvm").exists() {
        eprintln!("skipped: no /dev/kvm on this host");
        return;
    }
    let case = Case::new("userns");
    fake_env(&case, None, None);
    let mut s = spec(&[], &["/x"]);
    let mut h = load(&fake_dirs().0, &s).unwrap();
    h.modify_oci_configuration(&mut s).unwrap();
    // SAFETY: the child only sets up namespaces, runs AfterMounts and _exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let code = (|| -> Result<(), String> {
            nix::sched::unshare(
                nix::sched::CloneFlags::CLONE_NEWUSER | nix::sched::CloneFlags::CLONE_NEWNS,
            )
            .map_err(|e| format!("unshare: {e}"))?;
            std::fs::write("/proc/self/setgroups", "deny").map_err(|e| e.to_string())?;
            std::fs::write("/proc/self/uid_map", "0 0 1").map_err(|e| e.to_string())?;
            std::fs::write("/proc/self/gid_map", "0 0 1").map_err(|e| e.to_string())?;
            h.configure_container(Phase::AfterMounts, &case.info(&s), &case.rootfs)
                .map_err(|e| e.to_string())?;
            let md = std::fs::metadata(case.rootfs.join("dev/kvm")).map_err(|e| e.to_string())?;
            if !md.file_type().is_char_device() || md.rdev() != libc::makedev(10, 232) {
                return Err(format!("not the kvm node: {md:?}"));
            }
            Ok(())
        })();
        if let Err(e) = &code {
            eprintln!("userns child: {e}");
        }
        // SAFETY: leaving the child.
        unsafe { libc::_exit(if code.is_ok() { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waiting for our child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "status {status:#x}"
    );
    // Outside the child's mount namespace only the placeholder file is left.
    let md = std::fs::symlink_metadata(case.rootfs.join("dev/kvm")).unwrap();
    assert!(md.file_type().is_file() && md.len() == 0);
}

#[test]
fn gpu_and_nested_virt_options() {
    require_root!();
    let _g = lock();
    let s = spec(
        &[("krun.gpu_flags", "3"), ("krun.nested_virt", "1")],
        &["/x"],
    );

    // virtio-gpu needs /dev/dri in the container: a clear error before the VM is configured.
    let case = Case::new("gpu-nodri");
    let (o, calls) = full_run(&case, &fake_dirs().0, &s, None, Some("0"));
    match o {
        Outcome::Error(e, m) => {
            assert_eq!(e, libc::ENOENT);
            assert!(m.contains("/dev/dri"), "{m}");
        }
        o => panic!("{o:?}"),
    }
    assert_eq!(calls, ["krun_create_ctx"]);

    let case = Case::new("gpu");
    std::fs::create_dir_all(case.rootfs.join("dev/dri")).unwrap();
    let (o, calls) = full_run(&case, &fake_dirs().0, &s, None, Some("0"));
    assert!(matches!(o, Outcome::Exited(0)), "{o:?}");
    assert!(find(&calls, "krun_set_gpu_options")
        .unwrap()
        .ends_with("flags=3"));
    assert!(find(&calls, "krun_check_nested_virt").is_some());
    assert!(find(&calls, "krun_set_nested_virt")
        .unwrap()
        .ends_with("enabled=1"));

    // The render-server flag (1 << 9) also needs the server binary.
    let case = Case::new("gpu-rs");
    std::fs::create_dir_all(case.rootfs.join("dev/dri")).unwrap();
    let s = spec(&[("krun.gpu_flags", "512")], &["/x"]);
    let (o, _) = full_run(&case, &fake_dirs().0, &s, None, Some("0"));
    match o {
        Outcome::Error(e, m) => {
            assert_eq!(e, libc::ENOENT);
            assert!(m.contains("/usr/libexec/virgl_render_server"), "{m}");
        }
        o => panic!("{o:?}"),
    }
}
