//! Out-of-tree handlers through the Rust API: `c-tests/fake_handler.c` built as a `.so`,
//! loaded with `HandlerManager::load_directory`, selected by name, alias or
//! `can_handle_container`, and driven through the `LoadedHandler` adapter.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use crun::handlers::{
    configure_handler, configure_handler_for_spec, ContainerInfo, HandlerManager, Phase,
};

static LOCK: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn build_so(src: &str, out: &Path, extra: &[&str]) {
    let o = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-I"])
        .arg(common::root().join("include"))
        .args(extra)
        .arg("-o")
        .arg(out)
        .arg(common::root().join(src))
        .output()
        .expect("run cc");
    assert!(
        o.status.success(),
        "building {src} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A directory holding only `fake_handler.so`.
fn plugin_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = common::target_dir().join(format!("c-tests/handlers-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        build_so("c-tests/fake_handler.c", &d.join("fake_handler.so"), &[]);
        // Hidden files are skipped, even when they are not plug-ins.
        std::fs::write(d.join(".hidden"), "not a library").unwrap();
        d
    })
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("crun-rs-handler-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn set_env(log: &Path, fail: Option<&str>, can_handle: bool, ret: Option<&str>) {
    std::env::set_var("FAKE_HANDLER_LOG", log);
    match fail {
        Some(f) => std::env::set_var("FAKE_HANDLER_FAIL", f),
        None => std::env::remove_var("FAKE_HANDLER_FAIL"),
    }
    if can_handle {
        std::env::set_var("FAKE_HANDLER_CAN_HANDLE", "1");
    } else {
        std::env::remove_var("FAKE_HANDLER_CAN_HANDLE");
    }
    match ret {
        Some(r) => std::env::set_var("FAKE_HANDLER_RUN_RET", r),
        None => std::env::remove_var("FAKE_HANDLER_RUN_RET"),
    }
}

fn lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn manager() -> HandlerManager {
    let mut m = HandlerManager::new_builtin().unwrap();
    m.load_directory(plugin_dir()).unwrap();
    m
}

fn ann(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn loaded_plugins_are_listed_with_their_feature_tags() {
    let m = manager();
    assert_eq!(m.names(), ["krun", "fake"]);
    assert_eq!(m.feature_tags(), "+LIBKRUN +FAKE ");
}

#[test]
fn plugin_lifecycle_through_the_adapter() {
    let _g = lock();
    let d = tmp("life");
    let log = d.join("log");
    set_env(&log, None, false, None);
    let m = manager();
    let mut h = configure_handler(
        Some(&m),
        None,
        Some(&ann(&[("run.oci.handler", "fake-alias")])),
    )
    .unwrap()
    .expect("selected by alias");
    assert_eq!(h.name(), "fake");
    assert!(h.supports_exec());

    let spec: oci_spec::runtime::Spec = serde_json::from_str(r#"{"ociVersion":"1.0.0"}"#).unwrap();
    let mut spec2 = spec.clone();
    h.modify_oci_configuration(&mut spec2).unwrap();
    let info = ContainerInfo {
        id: "ctr1",
        spec: &spec,
        bundle: Path::new("/bundle"),
        state_dir: Path::new("/run/crun/ctr1"),
    };
    h.configure_container(Phase::BeforeUserns, &info, Path::new("/r"))
        .unwrap();
    h.configure_container(Phase::AfterMounts, &info, Path::new("/r"))
        .unwrap();
    h.close_fds(2).unwrap();
    assert_eq!(
        h.run(&info, "/bin/x", &["/bin/x".into(), "a b".into()])
            .unwrap(),
        0
    );
    assert_eq!(h.exec(&info, "/bin/y", &["/bin/y".into()]).unwrap(), 0);
    drop(h);
    assert_eq!(
        lines(&log),
        [
            "load",
            "modify magic=4242 def=set",
            "configure phase=4 magic=4242 id=ctr1 bundle=/bundle handler=fake rootfs=/r def=set",
            "configure phase=2 magic=4242 id=ctr1 bundle=/bundle handler=fake rootfs=/r def=set",
            "close_fds preserve=2",
            "run magic=4242 id=ctr1 path=/bin/x argv=/bin/x|a b",
            "exec magic=4242 id=ctr1 path=/bin/y argv=/bin/y",
            "unload magic=4242",
        ]
    );
}

#[test]
fn plugin_errors_keep_their_errno_and_message() {
    let _g = lock();
    let d = tmp("errors");
    let log = d.join("log");
    let m = manager();
    let spec: oci_spec::runtime::Spec = serde_json::from_str(r#"{"ociVersion":"1.0.0"}"#).unwrap();
    let info = ContainerInfo {
        id: "c",
        spec: &spec,
        bundle: Path::new("/b"),
        state_dir: Path::new("/s/c"),
    };

    set_env(&log, Some("load"), false, None);
    let e = configure_handler(Some(&m), Some("fake"), None)
        .err()
        .unwrap();
    assert_eq!(e.errno(), libc::EPERM);
    assert_eq!(e.message(), "load handler `fake`: fake load failure");

    set_env(&log, Some("configure2"), false, Some("-5"));
    let mut h = configure_handler(Some(&m), Some("fake"), None)
        .unwrap()
        .unwrap();
    h.configure_container(Phase::BeforeUserns, &info, Path::new("/r"))
        .unwrap();
    let e = h
        .configure_container(Phase::AfterMounts, &info, Path::new("/r"))
        .unwrap_err();
    assert_eq!(
        (e.errno(), e.message()),
        (libc::EPERM, "fake configure2 failure")
    );
    let e = h.run(&info, "/x", &["/x".into()]).unwrap_err();
    assert_eq!(e.errno(), libc::EIO);
    assert_eq!(
        e.to_string(),
        "exec container process failed with handler as `fake`: Input/output error"
    );
}

#[test]
fn can_handle_container_selects_unannotated_containers() {
    let _g = lock();
    let d = tmp("canhandle");
    let log = d.join("log");
    let m = manager();
    set_env(&log, None, true, None);
    let spec: oci_spec::runtime::Spec =
        serde_json::from_str(r#"{"ociVersion":"1.0.0","process":{"args":["/app.wasm"],"cwd":"/","user":{"uid":0,"gid":0}}}"#)
            .unwrap();
    let h = configure_handler_for_spec(Some(&m), None, &spec)
        .unwrap()
        .expect("fake accepts it");
    assert_eq!(h.name(), "fake");
    drop(h);
    assert_eq!(lines(&log)[0], "can_handle def=set");

    // krun is never auto-selected; the sandbox annotation disables handlers entirely.
    set_env(&log, None, false, None);
    assert!(configure_handler(Some(&m), None, None).unwrap().is_none());
    set_env(&log, None, true, None);
    assert!(configure_handler(
        Some(&m),
        Some("fake"),
        Some(&ann(&[("io.kubernetes.cri.container-type", "sandbox")]))
    )
    .unwrap()
    .is_none());
    set_env(&log, Some("can_handle"), true, None);
    let e = configure_handler(Some(&m), None, None).err().unwrap();
    assert_eq!(e.errno(), libc::EPERM);
}

#[test]
fn bad_plugin_directories_are_clear_errors() {
    let mut m = HandlerManager::new_builtin().unwrap();
    let e = m
        .load_directory(Path::new("/nonexistent/crun-rs-handlers"))
        .unwrap_err();
    assert_eq!(e.errno(), libc::ENOENT);
    assert!(e
        .message()
        .starts_with("cannot opendir `/nonexistent/crun-rs-handlers`"));

    let d = tmp("bad-notlib");
    std::fs::write(d.join("garbage.so"), "not an ELF").unwrap();
    let e = m.load_directory(&d).unwrap_err();
    assert!(
        e.message()
            .starts_with(&format!("cannot load `{}/garbage.so`: ", d.display())),
        "{}",
        e.message()
    );

    let d = tmp("bad-nosym");
    build_so("c-tests/fake_libkrun.c", &d.join("libkrun.so"), &[]);
    let e = m.load_directory(&d).unwrap_err();
    assert!(
        e.message()
            .starts_with("cannot find symbol `run_oci_handler_get_handler`"),
        "{}",
        e.message()
    );
    assert_eq!(m.names(), ["krun"], "nothing half-loaded");

    let e = configure_handler(Some(&m), Some("fake"), None)
        .err()
        .unwrap();
    assert_eq!(e.errno(), libc::ENOENT);
    assert_eq!(e.message(), "unknown handler `fake` (available: krun)");
}
