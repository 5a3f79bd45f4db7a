//! C programs for the error and logging API, linked to both libcrun.so.0 and libcrun.a.

mod common;

#[test]
fn c_test_error_api() {
    common::run_c_test("test_error", &[]);
}

#[test]
fn c_test_logging() {
    common::run_c_test("test_logging", &[]);
}

#[test]
fn c_errno_sign() {
    common::run_c_test("errno_sign", &[]);
}
