//! The console / TTY API: C programs for every function (both linkages), the Python receiver,
//! and Rust-level integration checks.

mod common;

#[test]
fn c_test_console_pty() {
    common::run_c_test("test_console_pty", &[]);
}
