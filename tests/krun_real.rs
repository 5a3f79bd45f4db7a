//! The krun handler against the real libkrun (the Cargo registry crate, built by
//! `scripts/build-real-libkrun.sh`): real error paths come back as positive errnos with the
//! call named.
//!
//! `CRUN_RS_REAL_LIBKRUN=1` builds the library when it is not cached (and makes a failed build
//! a test failure); otherwise a cached build is used, or the tests skip with the reason.

mod common;

use std::collections::HashMap;
use std::io::Read;
use std::os::fd::FromRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use crun::handlers::{configure_handler, ContainerInfo, HandlerManager, LoadedHandler, Phase};

static LOCK: Mutex<()> = Mutex::new(());

/// The directory holding the real `libkrun.so.1`, or why there is none.
fn real_libkrun() -> &'static Result<PathBuf, String> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| {
        let want = std::env::var("CRUN_RS_REAL_LIBKRUN").is_ok_and(|v| v == "1");
        let version = std::env::var("LIBKRUN_VERSION").unwrap_or_else(|_| "1.19.7".into());
        let cache = std::env::var("CRUN_RS_LIBKRUN_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|_| {
                let base = std::env::var("XDG_CACHE_HOME")
                    .map(PathBuf::from)
                    .unwrap_or_else(|_| {
                        PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
                            .join(".cache")
                    });
                base.join(format!("crun-rs/libkrun-{version}"))
            });
        let lib = cache.join("lib");
        if lib.join("libkrun.so.1").exists() {
            return Ok(lib);
        }
        if !want {
            return Err(format!(
                "no real libkrun in {} (set CRUN_RS_REAL_LIBKRUN=1 to build it)",
                lib.display()
            ));
        }
        let o = Command::new(common::root().join("scripts/build-real-libkrun.sh"))
            .output()
            .expect("run scripts/build-real-libkrun.sh");
        assert!(
            o.status.success(),
            "building the real libkrun failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        Ok(PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
    })
}

macro_rules! require_real {
    () => {{
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: needs root (chroot and mknod in the test rootfs)");
            return;
        }
        match real_libkrun() {
            Ok(d) => {
                let v = std::fs::read_to_string(d.join("VERSION")).unwrap_or_default();
                eprintln!("using the real libkrun {} from {}", v.trim(), d.display());
                d.clone()
            }
            Err(why) => {
                eprintln!("skipped: {why}");
                return;
            }
        }
    }};
}

struct Case {
    dir: PathBuf,
    rootfs: PathBuf,
    state: PathBuf,
}

impl Case {
    fn new(name: &str) -> Case {
        let dir =
            std::env::temp_dir().join(format!("crun-rs-krunreal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let rootfs = dir.join("rootfs");
        std::fs::create_dir_all(rootfs.join("dev")).unwrap();
        let state = dir.join("state/c");
        std::fs::create_dir_all(&state).unwrap();
        Case { dir, rootfs, state }
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn spec(json: serde_json::Value) -> oci_spec::runtime::Spec {
    let mut base = serde_json::json!({
        "ociVersion": "1.0.0",
        "root": {"path": "rootfs"},
        "process": {"args": ["/bin/true"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
    });
    base.as_object_mut()
        .unwrap()
        .extend(json.as_object().unwrap().clone());
    serde_json::from_value(base).unwrap()
}

/// Load the handler from `lib`, BeforeUserns, then AfterMounts + chroot + run in a child.
/// Returns (errno, message) of the error `run` returned, or the exit status.
fn run_case(lib: &Path, case: &Case, spec: &oci_spec::runtime::Spec) -> Result<i32, (i32, String)> {
    let mut m = HandlerManager::new_builtin().unwrap();
    m.set_krun_library_dir(Some(lib.to_path_buf()));
    let ann: HashMap<String, String> = spec.annotations().clone().unwrap_or_default();
    let mut h: Box<dyn LoadedHandler> = configure_handler(Some(&m), Some("krun"), Some(&ann))
        .unwrap()
        .unwrap();
    let mut spec = spec.clone();
    h.modify_oci_configuration(&mut spec).unwrap();
    let info = ContainerInfo {
        id: "c",
        spec: &spec,
        bundle: &case.dir,
        state_dir: &case.state,
    };
    h.configure_container(Phase::BeforeUserns, &info, Path::new("rootfs"))
        .unwrap();
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: the child runs the handler and _exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let report = |e: crun::Error| -> ! {
            let s = format!("{}\n{}", e.errno(), e.message());
            unsafe {
                libc::write(3, s.as_ptr().cast(), s.len());
                libc::_exit(99)
            }
        };
        unsafe { libc::dup2(fds[1], 3) };
        if let Err(e) = h.configure_container(Phase::AfterMounts, &info, &case.rootfs) {
            report(e);
        }
        let root = std::ffi::CString::new(case.rootfs.to_str().unwrap()).unwrap();
        if unsafe { libc::chroot(root.as_ptr()) } != 0 || std::env::set_current_dir("/").is_err() {
            report(crun::Error::last_os_error("chroot"));
        }
        let _ = h.close_fds(1);
        match h.run(&info, "/bin/true", &["/bin/true".to_string()]) {
            Ok(v) => report(crun::Error::new(0, format!("run returned {v}"))),
            Err(e) => report(e),
        }
    }
    unsafe { libc::close(fds[1]) };
    let mut out = String::new();
    unsafe { std::fs::File::from_raw_fd(fds[0]) }
        .read_to_string(&mut out)
        .unwrap();
    let mut status = 0;
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "child died: {status:#x}");
    if libc::WEXITSTATUS(status) == 99 {
        let (e, m) = out.split_once('\n').unwrap();
        Err((e.parse().unwrap(), m.to_string()))
    } else {
        Ok(libc::WEXITSTATUS(status))
    }
}

#[test]
fn real_libkrun_rejects_zero_ram_with_a_positive_errno() {
    let lib = require_real!();
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let case = Case::new("ram0");
    // A 1-byte memory limit is 0 MiB: the real krun_set_vm_config returns -EINVAL.
    let s = spec(serde_json::json!({
        "annotations": {"krun.cpus": "1"},
        "linux": {"resources": {"memory": {"limit": 1}}}
    }));
    let r = run_case(&lib, &case, &s);
    assert_eq!(r, Err((libc::EINVAL, "krun_set_vm_config".to_string())));
    assert_eq!(
        crun::Error::new(libc::EINVAL, "krun_set_vm_config").to_string(),
        "krun_set_vm_config: Invalid argument"
    );
}

#[test]
fn real_libkrun_without_libkrunfw_fails_to_start_with_enoent() {
    let lib = require_real!();
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let case = Case::new("nofw");
    let s = spec(serde_json::json!({"annotations": {"krun.cpus": "1", "krun.ram_mib": "256"}}));
    match run_case(&lib, &case, &s) {
        Err((e, m)) => {
            assert_eq!(m, "could not start krun");
            assert_eq!(
                e,
                libc::ENOENT,
                "libkrun reports a missing libkrunfw as -ENOENT"
            );
            assert_eq!(
                crun::Error::new(e, m).to_string(),
                "could not start krun: No such file or directory"
            );
        }
        Ok(st) => panic!("expected krun_start_enter to fail without libkrunfw, exited {st}"),
    }
}

#[test]
fn real_libkrun_rejects_a_bad_kernel_format() {
    let lib = require_real!();
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let case = Case::new("kfmt");
    std::fs::write(case.rootfs.join("vmlinux"), b"not a kernel").unwrap();
    std::fs::write(
        case.rootfs.join(".krun_vm.json"),
        r#"{"cpus": 1, "ram_mib": 256, "kernel_path": "/vmlinux", "kernel_format": 9}"#,
    )
    .unwrap();
    let r = run_case(&lib, &case, &spec(serde_json::json!({})));
    assert_eq!(r, Err((libc::EINVAL, "krun_set_kernel".to_string())));
}

#[test]
fn real_microvm_boot() {
    let _lib = require_real!();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let hw_virt = cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"));
    let pvm = Path::new("/sys/module/kvm_pvm").exists()
        || std::fs::read_to_string("/proc/modules")
            .unwrap_or_default()
            .contains("kvm_pvm");
    if pvm || !hw_virt {
        eprintln!(
            "skipped: booting a real microVM needs hardware KVM (VMX/SVM) and libkrunfw.so.5; \
             this host's /dev/kvm is {} (the guest dies with KVM_EXIT_INTERNAL_ERROR)",
            if pvm { "kvm-pvm" } else { "without VMX/SVM" }
        );
        return;
    }
    eprintln!(
        "skipped: no libkrunfw.so.5 is built or shipped by any reachable registry (see \
         docs/krun.md); a boot test needs one on the library path"
    );
}
