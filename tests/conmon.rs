//! conmon (Debian's 2.1.6) driving our `crun` the way Podman does, through
//! `scripts/conmon-harness/harness.py` (sync pipe, start pipe, `-t` console socket, k8s-file
//! log, exit dir).  The `reference_runc_*` tests run the same harness against Debian's runc, so a
//! failure in a `crun_*` test is the runtime's, not the harness's.
//!
//! Root only; each test prints `skipped: ...` and returns when conmon, python3, busybox or the
//! runtime is missing.  `CRUN_RS_CONMON=/path/to/conmon` tests another conmon build.

mod callers_common;
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use callers_common as cc;
use serde_json::Value;

fn harness() -> PathBuf {
    common::root().join("scripts/conmon-harness/harness.py")
}

/// Why a conmon test cannot run on this machine.
fn env_missing() -> Option<String> {
    if !cc::is_root() {
        return Some("needs root".into());
    }
    if cc::which("conmon").is_none() {
        return Some("conmon not installed (apt install conmon)".into());
    }
    if cc::which("python3").is_none() {
        return Some("python3 not installed".into());
    }
    if cc::busybox().is_none() {
        return Some("no static busybox (apt install busybox-static)".into());
    }
    None
}

/// The runtime to test: our `crun`, or None (with the reason printed) when it cannot run.
fn our_runtime(test: &str) -> Option<PathBuf> {
    if let Some(r) = env_missing() {
        cc::skip(test, &r);
        return None;
    }
    let crun = common::crun_bin();
    if let Some(r) = cc::runtime_missing(&crun) {
        cc::skip(test, &r);
        return None;
    }
    Some(crun)
}

fn runc(test: &str) -> Option<PathBuf> {
    if let Some(r) = env_missing() {
        cc::skip(test, &r);
        return None;
    }
    let r = cc::which("runc");
    if r.is_none() {
        cc::skip(
            test,
            "runc not installed (apt install runc): no reference run",
        );
    }
    r
}

/// Run one container through conmon; returns the harness's JSON report.
fn run(runtime: &Path, terminal: bool, json_log: bool, cmd: &[&str]) -> Value {
    run_with(runtime, terminal, json_log, &[], cmd)
}

fn run_with(runtime: &Path, terminal: bool, json_log: bool, extra: &[&str], cmd: &[&str]) -> Value {
    let mut c = Command::new("python3");
    c.arg(harness()).arg("run").arg("--runtime").arg(runtime);
    // Another conmon (e.g. a 2.2.x build) can be tested with CRUN_RS_CONMON=/path/to/conmon.
    if let Ok(conmon) = std::env::var("CRUN_RS_CONMON") {
        c.arg("--conmon").arg(conmon);
    }
    if terminal {
        c.arg("-t");
    }
    if json_log {
        c.arg("--json-log");
    }
    c.args(extra).arg("--").args(cmd);
    let o = c.output().expect("run harness.py");
    assert!(
        o.status.success(),
        "harness failed: {}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "harness printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&o.stdout)
        )
    });
    if let Some(s) = v.get("skipped") {
        panic!("harness skipped although the test checked its needs: {s}");
    }
    v
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// `echo hello` runs: conmon reports a pid, the container exits 0, and the output is in the log.
fn assert_echo(runtime: &Path, terminal: bool) {
    let v = run(runtime, terminal, false, &["echo", "hello"]);
    let pid = v["sync"]["data"].as_i64();
    assert!(
        pid.is_some_and(|p| p > 0),
        "conmon sync pipe did not report a pid: {}",
        pretty(&v)
    );
    assert_eq!(v["start_rc"], 0, "`start` failed: {}", pretty(&v));
    assert_eq!(v["exit_code"], 0, "exit code: {}", pretty(&v));
    assert_eq!(
        v["log_text"].as_str().map(|s| s.replace('\r', "")),
        Some("hello\n".to_string()),
        "conmon's log: {}",
        pretty(&v)
    );
}

/// A nonexistent command: conmon reports `{"data": -1, "message": <runtime's error>}` and the
/// message is one Podman maps to 127.  `runs` times in a row (the error must never be lost).
fn assert_not_found(runtime: &Path, terminal: bool, json_log: bool, runs: usize) {
    for i in 0..runs {
        let v = run(runtime, terminal, json_log, &["/nonexistent-cmd"]);
        assert_eq!(
            v["sync"]["data"],
            -1,
            "run {i}: conmon did not report a failure through the sync pipe: {}",
            pretty(&v)
        );
        let msg = v["sync"]["message"].as_str().unwrap_or("");
        assert!(
            msg.contains("nonexistent-cmd") && cc::podman_not_found_re(msg),
            "run {i}: the runtime's not-found error did not reach the sync pipe: {}",
            pretty(&v)
        );
    }
}

#[test]
fn reference_runc_echo() {
    if let Some(r) = runc("reference_runc_echo") {
        assert_echo(&r, false);
        assert_echo(&r, true);
    }
}

#[test]
fn reference_runc_not_found() {
    if let Some(r) = runc("reference_runc_not_found") {
        assert_not_found(&r, false, false, 1);
        assert_not_found(&r, true, false, 1);
    }
}

#[test]
fn crun_echo_reaches_log() {
    if let Some(r) = our_runtime("crun_echo_reaches_log") {
        assert_echo(&r, false);
    }
}

#[test]
fn crun_echo_reaches_log_terminal() {
    if let Some(r) = our_runtime("crun_echo_reaches_log_terminal") {
        assert_echo(&r, true);
    }
}

#[test]
fn crun_not_found_reported_10_of_10() {
    if let Some(r) = our_runtime("crun_not_found_reported_10_of_10") {
        assert_not_found(&r, false, false, 10);
    }
}

#[test]
fn crun_not_found_reported_10_of_10_terminal() {
    if let Some(r) = our_runtime("crun_not_found_reported_10_of_10_terminal") {
        assert_not_found(&r, true, false, 10);
    }
}

/// Podman adds `--log-format=json --log <file>` for runtimes named crun: the error must still
/// reach conmon's sync pipe (crun copies errors to stderr), and the log file must be one JSON
/// object that Podman can parse.
#[test]
fn crun_not_found_with_json_log() {
    if let Some(r) = our_runtime("crun_not_found_with_json_log") {
        for terminal in [false, true] {
            assert_not_found(&r, terminal, true, 1);
            let v = run(&r, terminal, true, &["/nonexistent-cmd"]);
            let log = v["oci_log"].as_str().unwrap_or("");
            let first: Value = serde_json::from_str(log.trim()).unwrap_or_else(|e| {
                panic!(
                    "the --log file is not one JSON object ({e}): {}",
                    pretty(&v)
                )
            });
            assert_eq!(first["level"], "error", "{}", pretty(&v));
            assert!(
                cc::podman_not_found_re(first["msg"].as_str().unwrap_or("")),
                "{}",
                pretty(&v)
            );
        }
    }
}

/// A failure before the pty exists (a bind mount of a missing source), with and without `-t`:
/// conmon must still report the runtime's error.  With `-t` this is the case where runc, which
/// connects the console socket early and closes it without an fd, loses the error under conmon
/// >= 2.1.8 (peers.md section 4.4); crun-rs does not connect until it has the pty.
#[test]
fn crun_early_failure_reported() {
    if let Some(r) = our_runtime("crun_early_failure_reported") {
        for terminal in [false, true] {
            let v = run_with(&r, terminal, false, &["--bad-mount"], &["echo", "hello"]);
            assert_eq!(v["sync"]["data"], -1, "{}", pretty(&v));
            let msg = v["sync"]["message"].as_str().unwrap_or("");
            assert!(
                msg.contains("nonexistent-mount-source") && cc::podman_not_found_re(msg),
                "the mount error did not reach the sync pipe (terminal={terminal}): {}",
                pretty(&v)
            );
        }
    }
}
