//! `libcrun.so.0` exports the public API only, under the soname `libcrun.so.0`.

mod common;

use std::process::Command;

fn dynamic_symbols() -> Vec<String> {
    let so = common::libs().join("libcrun.so.0");
    let o = Command::new("nm")
        .args(["-D", "--defined-only", "--format=posix"])
        .arg(&so)
        .output()
        .expect("run nm");
    assert!(o.status.success(), "nm failed");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

#[test]
fn only_libcrun_symbols_are_exported() {
    let syms = dynamic_symbols();
    let foreign: Vec<_> = syms.iter().filter(|s| !s.starts_with("libcrun_")).collect();
    assert!(foreign.is_empty(), "non-API symbols exported: {foreign:?}");
    eprintln!("exported: {}", syms.join(" "));
}

#[test]
fn error_and_logging_api_is_exported() {
    let syms = dynamic_symbols();
    for name in [
        "libcrun_make_error",
        "libcrun_error_release",
        "libcrun_error_write_warning_and_release",
        "libcrun_error_wrap",
        "libcrun_error_get_errno",
        "libcrun_fail_with_error",
        "libcrun_error",
        "libcrun_warning",
        "libcrun_debug",
        "libcrun_set_verbosity",
        "libcrun_get_verbosity",
        "libcrun_set_log_format",
        "libcrun_init_logging",
    ] {
        assert!(syms.iter().any(|s| s == name), "{name} is not exported");
    }
}

#[test]
fn soname_is_libcrun_so_0() {
    let o = Command::new("readelf")
        .arg("-d")
        .arg(common::libs().join("libcrun.so.0"))
        .output()
        .expect("run readelf");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("Library soname: [libcrun.so.0]"),
        "soname missing:\n{out}"
    );
}
