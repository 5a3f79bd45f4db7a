//! End to end: the `crun` binary invoked as `krun` (a symlink) runs a container with the krun
//! handler, against the fake libkrun on `LD_LIBRARY_PATH`.  The fake's `krun_start_enter`
//! execs `process.args` from `/.krun_config.json`, so the container's exit status proves the
//! whole chain: handler selection by argv[0], `.krun_config.json`, device setup, libkrun calls.
//!
//! Skips (with the reason) until the runtime wires the handler manager: `crun --version` must
//! list `+LIBKRUN`.  Needs root and a static busybox.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn busybox() -> Option<&'static Path> {
    ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
}

/// Why the end-to-end tests cannot run here, if they cannot.
fn skip_reason() -> Option<String> {
    // SAFETY: plain getter.
    if unsafe { libc::geteuid() } != 0 {
        return Some("needs root".into());
    }
    if busybox().is_none() {
        return Some("busybox (Debian busybox-static) not installed".into());
    }
    let v = Command::new(common::crun_bin()).arg("--version").output();
    match v {
        Ok(o) if String::from_utf8_lossy(&o.stdout).contains("+LIBKRUN") => None,
        _ => Some(
            "the runtime does not wire the handler manager yet (`crun --version` lists no \
             +LIBKRUN)"
                .into(),
        ),
    }
}

struct Bundle {
    dir: PathBuf,
    log: PathBuf,
    libdir: PathBuf,
    krun: PathBuf,
}

impl Bundle {
    fn new(name: &str, annotations: serde_json::Value, args: &[&str]) -> Bundle {
        let dir = std::env::temp_dir().join(format!("crun-rs-e2e-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let rootfs = dir.join("rootfs");
        for d in ["bin", "dev", "proc", "tmp"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy(busybox().unwrap(), rootfs.join("bin/busybox")).unwrap();
        let log = dir.join("krun.log");
        // Container-side calls log to the same path inside the rootfs.
        std::fs::create_dir_all(rootfs.join(dir.strip_prefix("/").unwrap())).unwrap();
        let config = serde_json::json!({
            "ociVersion": "1.0.0",
            "root": {"path": "rootfs"},
            "process": {"args": args, "cwd": "/", "env": ["PATH=/bin"],
                        "user": {"uid": 0, "gid": 0}, "terminal": false},
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
            "linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}]},
            "annotations": annotations,
        });
        std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
        let libdir = dir.join("lib");
        std::fs::create_dir_all(&libdir).unwrap();
        let o = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
            .args(["-shared", "-fPIC", "-Wl,-soname,libkrun.so.1", "-o"])
            .arg(libdir.join("libkrun.so.1"))
            .arg(common::root().join("c-tests/fake_libkrun.c"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let krun = dir.join("krun");
        std::os::unix::fs::symlink(common::crun_bin(), &krun).unwrap();
        Bundle {
            dir,
            log,
            libdir,
            krun,
        }
    }

    fn krun(&self, args: &[&str], fail: Option<&str>) -> Output {
        let mut c = Command::new(&self.krun);
        c.arg("--root")
            .arg(self.dir.join("state"))
            .args(args)
            .env("LD_LIBRARY_PATH", &self.libdir)
            .env("FAKE_KRUN_LOG", &self.log)
            .env_remove("FAKE_KRUN_EXIT");
        match fail {
            Some(f) => c.env("FAKE_KRUN_FAIL", f),
            None => c.env_remove("FAKE_KRUN_FAIL"),
        };
        // Files, not pipes: after `create` the container process keeps its stdio open, so
        // reading pipes to EOF would wait for the container.
        let (out_p, err_p) = (self.dir.join("stdout"), self.dir.join("stderr"));
        c.stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&out_p).unwrap())
            .stderr(std::fs::File::create(&err_p).unwrap());
        let status = c.status().unwrap();
        let o = Output {
            status,
            stdout: std::fs::read(&out_p).unwrap(),
            stderr: std::fs::read(&err_p).unwrap(),
        };
        common::show(&format!("krun {args:?}"), &o);
        o
    }

    fn calls(&self) -> String {
        let inner = self
            .dir
            .join("rootfs")
            .join(self.log.strip_prefix("/").unwrap());
        format!(
            "{}{}",
            std::fs::read_to_string(&self.log).unwrap_or_default(),
            std::fs::read_to_string(inner).unwrap_or_default()
        )
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

macro_rules! require {
    () => {
        if let Some(why) = skip_reason() {
            eprintln!("skipped: {why}");
            return;
        }
    };
}

#[test]
fn krun_runs_the_workload_and_passes_the_settings() {
    require!();
    let b = Bundle::new(
        "ok",
        serde_json::json!({"krun.cpus": "2", "krun.ram_mib": "768"}),
        &["/bin/busybox", "sh", "-c", "exit 7"],
    );
    let bundle = b.dir.to_str().unwrap().to_string();
    let o = b.krun(&["run", "--bundle", &bundle, "e2e-ok"], None);
    assert_eq!(o.status.code(), Some(7), "the workload's status");
    let calls = b.calls();
    assert!(calls.contains("krun_create_ctx"), "{calls}");
    assert!(
        calls.contains("krun_set_vm_config ctx=0 cpus=2 ram_mib=768"),
        "{calls}"
    );
    assert!(calls.contains("krun_add_virtiofs2 ctx=0 tag=/dev/root path=/ shm=536870912"));
    let md = std::fs::metadata(b.dir.join("rootfs/.krun_config.json")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(md.permissions().mode() & 0o777, 0o444);
}

#[test]
fn krun_start_failure_is_a_positive_errno() {
    require!();
    let b = Bundle::new("fail", serde_json::json!({}), &["/bin/busybox", "true"]);
    let bundle = b.dir.to_str().unwrap().to_string();
    let o = b.krun(
        &["run", "--bundle", &bundle, "e2e-fail"],
        Some("krun_start_enter:22"),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        err.contains("could not start krun: Invalid argument"),
        "{err}"
    );
    assert!(!err.contains("Unknown error"), "{err}");
}

#[test]
fn krun_rejects_invalid_annotations_before_starting() {
    require!();
    let b = Bundle::new(
        "invalid",
        serde_json::json!({"krun.cpus": "300"}),
        &["/bin/busybox", "true"],
    );
    let bundle = b.dir.to_str().unwrap().to_string();
    let o = b.krun(&["run", "--bundle", &bundle, "e2e-invalid"], None);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_ne!(o.status.code(), Some(0));
    assert!(err.contains("annotation `krun.cpus`"), "{err}");
    assert!(err.contains("Invalid argument"), "{err}");
    assert!(!b.calls().contains("krun_start_enter"));
}

#[test]
fn handler_annotation_and_krun_argv0_conflict() {
    require!();
    let b = Bundle::new(
        "conflict",
        serde_json::json!({"run.oci.handler": "krun"}),
        &["/bin/busybox", "true"],
    );
    let bundle = b.dir.to_str().unwrap().to_string();
    let o = b.krun(&["run", "--bundle", &bundle, "e2e-conflict"], None);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        err.contains("invalid attempt to override already configured global handler"),
        "{err}"
    );
}

#[test]
fn exec_into_a_krun_container_is_refused() {
    require!();
    let b = Bundle::new(
        "exec",
        serde_json::json!({}),
        &["/bin/busybox", "sleep", "10"],
    );
    let bundle = b.dir.to_str().unwrap().to_string();
    let o = b.krun(&["create", "--bundle", &bundle, "e2e-exec"], None);
    assert_eq!(o.status.code(), Some(0), "create");
    let o = b.krun(&["exec", "e2e-exec", "/bin/busybox", "true"], None);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let _ = b.krun(&["delete", "-f", "e2e-exec"], None);
    assert_ne!(o.status.code(), Some(0));
    assert!(err.contains("the handler does not support exec"), "{err}");
    assert!(err.contains("Operation not supported"), "{err}");
    assert!(
        !b.calls().contains("krun_start_enter"),
        "the VM was never started"
    );
}
