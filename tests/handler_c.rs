//! The handler-manager C API from C (`c-tests/test_handler.c`), linked against both
//! `libcrun.so.0` and `libcrun.a`, with the fake libkrun on `LD_LIBRARY_PATH` and the fake
//! plug-in (`c-tests/fake_handler.c`) in a handler directory.

mod common;

use std::path::Path;
use std::process::Command;

fn build_so(src: &str, out: &Path, soname: Option<&str>) {
    let mut c = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()));
    c.args(["-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-I"])
        .arg(common::root().join("include"));
    if let Some(s) = soname {
        c.arg(format!("-Wl,-soname,{s}"));
    }
    let o = c
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

#[test]
fn handler_manager_c_api() {
    let base = common::libs().join("handler-c");
    let (krun_dir, plugin_dir) = (base.join("krun"), base.join("plugins"));
    std::fs::create_dir_all(&krun_dir).unwrap();
    std::fs::create_dir_all(&plugin_dir).unwrap();
    build_so(
        "c-tests/fake_libkrun.c",
        &krun_dir.join("libkrun.so.1"),
        Some("libkrun.so.1"),
    );
    build_so(
        "c-tests/fake_handler.c",
        &plugin_dir.join("fake_handler.so"),
        None,
    );
    for link in [common::Linkage::Shared, common::Linkage::Static] {
        let exe = common::compile_c("test_handler", &[], link);
        let (klog, hlog) = (base.join("krun.log"), base.join("handler.log"));
        let _ = std::fs::remove_file(&klog);
        let _ = std::fs::remove_file(&hlog);
        let o = common::c_command(&exe)
            .arg(&plugin_dir)
            .arg(&klog)
            .arg(&hlog)
            .env("LD_LIBRARY_PATH", &krun_dir)
            .env("FAKE_KRUN_LOG", &klog)
            .env("FAKE_HANDLER_LOG", &hlog)
            .env_remove("FAKE_KRUN_FAIL")
            .env_remove("FAKE_HANDLER_FAIL")
            .env_remove("FAKE_HANDLER_CAN_HANDLE")
            .output()
            .unwrap();
        common::show(&format!("test_handler ({})", link.name()), &o);
        assert!(o.status.success(), "test_handler ({}) failed", link.name());
    }
}
