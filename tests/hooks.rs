//! `crun::hooks::run_hooks`: stdin state, argv, env, timeout and failure reporting.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crun::hooks::run_hooks;
use oci_spec::runtime::{Hook, HookBuilder};

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("crun-rs-hooks-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn sh(script: &str) -> Hook {
    HookBuilder::default()
        .path("/bin/sh")
        .args(vec!["sh".to_string(), "-c".to_string(), script.to_string()])
        .build()
        .unwrap()
}

#[test]
fn state_is_on_stdin() {
    let d = tmpdir("stdin");
    let out = d.join("state");
    let state = r#"{"ociVersion":"1.0.0","id":"c1","status":"created","pid":42,"bundle":"/b"}"#;
    run_hooks(
        &[sh(&format!("cat > {}", out.display()))],
        state,
        "createRuntime",
    )
    .unwrap();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), state);
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn large_state_to_hook_that_ignores_stdin() {
    // More than a pipe buffer, to a hook that never reads: must neither hang nor fail.
    let state = format!("{{\"x\":\"{}\"}}", "a".repeat(256 * 1024));
    run_hooks(&[sh("exit 0")], &state, "prestart").unwrap();
}

#[test]
fn args_and_argv0() {
    let d = tmpdir("args");
    let out = d.join("argv");
    let script = format!("echo \"$0|$1|$2\" > {}", out.display());
    let h = HookBuilder::default()
        .path("/bin/sh")
        .args(vec![
            "custom-argv0".to_string(),
            "-c".to_string(),
            script,
            "first".to_string(),
            "second arg".to_string(),
        ])
        .build()
        .unwrap();
    run_hooks(&[h], "{}", "poststart").unwrap();
    // With `sh -c script a b`, $0 is `a`; the exec'd argv[0] is checked below.
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "first|second arg|\n"
    );

    // argv[0] as the hook sees it in /proc/self/cmdline.
    let out2 = d.join("cmdline");
    let h = HookBuilder::default()
        .path("/bin/sh")
        .args(vec![
            "my-hook-name".to_string(),
            "-c".to_string(),
            format!("tr '\\0' ' ' < /proc/$$/cmdline > {}", out2.display()),
        ])
        .build()
        .unwrap();
    run_hooks(&[h], "{}", "poststart").unwrap();
    let cmdline = std::fs::read_to_string(&out2).unwrap();
    assert!(cmdline.starts_with("my-hook-name -c "), "{cmdline}");
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn env_is_exactly_the_hook_env() {
    let d = tmpdir("env");
    let out = d.join("env");
    let h = HookBuilder::default()
        .path("/bin/sh")
        .args(vec![
            "sh".to_string(),
            "-c".to_string(),
            format!("/usr/bin/env > {}", out.display()),
        ])
        .env(vec!["FOO=bar baz".to_string(), "EMPTY=".to_string()])
        .build()
        .unwrap();
    std::env::set_var("CRUN_RS_HOOK_LEAK", "1");
    run_hooks(&[h], "{}", "prestart").unwrap();
    let env = std::fs::read_to_string(&out).unwrap();
    let mut lines: Vec<&str> = env
        .lines()
        // sh itself may export PWD/SHLVL/_: ignore those.
        .filter(|l| !l.starts_with("PWD=") && !l.starts_with("SHLVL=") && !l.starts_with("_="))
        .collect();
    lines.sort();
    assert_eq!(lines, vec!["EMPTY=", "FOO=bar baz"]);
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn timeout_kills_and_names_the_hook() {
    let h = HookBuilder::default()
        .path("/bin/sleep")
        .args(vec!["sleep".to_string(), "30".to_string()])
        .timeout(1i64)
        .build()
        .unwrap();
    let t0 = Instant::now();
    let e = run_hooks(&[h], "{}", "createContainer").unwrap_err();
    let took = t0.elapsed();
    assert_eq!(e.errno(), libc::ETIMEDOUT, "{e}");
    assert!(e.message().contains("`/bin/sleep`"), "{e}");
    assert!(e.message().contains("createContainer"), "{e}");
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn timeout_not_hit_by_fast_hook() {
    let h = HookBuilder::default()
        .path("/bin/true")
        .timeout(5i64)
        .build()
        .unwrap();
    run_hooks(&[h], "{}", "startContainer").unwrap();
}

#[test]
fn failure_reports_path_and_status_and_stops_the_list() {
    let d = tmpdir("fail");
    let marker = d.join("second-ran");
    let hooks = vec![sh("exit 7"), sh(&format!("touch {}", marker.display()))];
    let e = run_hooks(&hooks, "{}", "poststop").unwrap_err();
    assert!(e.message().contains("`/bin/sh`"), "{e}");
    assert!(e.message().contains("exit code: 7"), "{e}");
    assert!(!marker.exists(), "hooks after a failing one must not run");

    let e = run_hooks(&[sh("kill -9 $$")], "{}", "poststop").unwrap_err();
    assert!(e.message().contains("signal 9"), "{e}");

    // Hooks run in order: the second sees what the first did.
    let order = d.join("order");
    run_hooks(
        &[
            sh(&format!("echo one >> {}", order.display())),
            sh(&format!("echo two >> {}", order.display())),
        ],
        "{}",
        "prestart",
    )
    .unwrap();
    assert_eq!(std::fs::read_to_string(&order).unwrap(), "one\ntwo\n");
    std::fs::remove_dir_all(d).unwrap();
}
