//! The console / TTY API: C programs for every function (both linkages), the Python receiver,
//! and Rust-level integration checks.

mod common;

#[test]
fn c_test_console_pty() {
    common::run_c_test("test_console_pty", &[]);
}

#[test]
fn c_test_console_socket() {
    common::run_c_test("test_console_socket", &[]);
}

#[test]
fn c_test_console_handoff() {
    common::run_c_test("test_console_handoff", &[]);
}

/// Python's standard library receives the pty master sent by the C API (and sends one back).
#[test]
fn python_receives_console_fd() {
    use std::process::Command;
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let so = common::libs().join("libcrun.so.0");
    let o = Command::new("python3")
        .arg(common::root().join("tests/python/test_console_recv.py"))
        .arg(&so)
        .output()
        .expect("run python3");
    common::show("test_console_recv.py", &o);
    assert!(o.status.success(), "python console test failed");
    assert!(String::from_utf8_lossy(&o.stdout).contains("test_console_recv: ok"));
}
