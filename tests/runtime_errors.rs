//! Bad input: a clear error with a positive errno rendered as `msg: strerror`, exit status 1,
//! and nothing left behind in the state root.  Needs root for the cases that start a process.

mod runtime_support;

use runtime_support::*;
use serde_json::json;

fn assert_clean(e: &Env) {
    assert!(e.ids().is_empty(), "left behind: {:?}", e.ids());
}

#[test]
fn malformed_and_invalid_configs() {
    if !need_root("malformed_and_invalid_configs") {
        return;
    }
    let e = Env::new("badcfg", &["/init", "true"], |_| {});
    let cfg = e.bundle.join("config.json");
    let good = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        "{\n  \"ociVersion\": \"1.0.0\",\n  \"process\": {,\n}",
    )
    .unwrap();
    let err = e.fails(&["run", "c"]);
    assert!(err.contains("line 3 column"), "{err}");
    assert!(err.contains("Invalid argument"), "{err}");
    assert_clean(&e);
    std::fs::write(&cfg, &good).unwrap();
    e.edit_config(|c| c["ociVersion"] = json!("2.0.0"));
    let err = e.fails(&["run", "c"]);
    assert!(err.contains("unknown version specified"), "{err}");
    e.edit_config(|c| c["ociVersion"] = json!("1.3.0"));
    assert!(e.run(&["run", "c"]).status.success(), "any 1.x is accepted");
    e.edit_config(|c| {
        c.as_object_mut().unwrap().remove("root");
    });
    let err = e.fails(&["run", "c"]);
    assert!(err.contains("root.path"), "{err}");
    std::fs::write(&cfg, &good).unwrap();
    e.edit_config(|c| c["root"]["path"] = json!("no-such-rootfs"));
    let err = e.fails(&["run", "c"]);
    assert!(
        err.contains("rootfs") && err.contains("No such file or directory"),
        "{err}"
    );
    std::fs::write(&cfg, &good).unwrap();
    e.edit_config(|c| c["process"]["args"] = json!([]));
    let err = e.fails(&["run", "c"]);
    assert!(err.contains("process.args"), "{err}");
    let err = e.fails(&["run", "--config", "missing.json", "c"]);
    assert!(
        err.contains("missing.json") && err.contains("No such file or directory"),
        "{err}"
    );
    assert_clean(&e);
}

#[test]
fn invalid_and_duplicate_ids() {
    if !need_root("invalid_and_duplicate_ids") {
        return;
    }
    let e = Env::new("ids", &["/init", "pause"], |_| {});
    for bad in ["a/b", "..", "."] {
        let err = e.fails(&["create", bad]);
        assert!(err.contains("invalid container id"), "{bad}: {err}");
    }
    let long = "x".repeat(2000);
    let err = e.fails(&["create", &long]);
    assert!(err.contains("invalid container id"), "{err}");
    let err = e.fails(&["create", ""]);
    assert!(err.contains("invalid container id"), "{err}");
    assert_clean(&e);
    e.ok(&["create", "dup"]);
    let pid = e.state("dup")["pid"].clone();
    let err = e.fails(&["create", "dup"]);
    assert!(
        err.contains("container `dup` already exists: File exists"),
        "{err}"
    );
    // The first container is intact.
    assert_eq!(e.state("dup")["pid"], pid);
    assert_eq!(e.state("dup")["status"], "created");
    e.ok(&["delete", "dup"]);
    assert_clean(&e);
}

#[test]
fn unknown_container_and_wrong_state() {
    if !need_root("unknown_container_and_wrong_state") {
        return;
    }
    let e = Env::new("states", &["/init", "pause"], |_| {});
    // As crun: a forced delete of a missing container succeeds (podman relies on it).
    e.ok(&["delete", "--force", "nope"]);
    for cmd in [
        vec!["state", "nope"],
        vec!["start", "nope"],
        vec!["kill", "nope"],
        vec!["delete", "nope"],
        vec!["exec", "nope", "/init", "true"],
    ] {
        let err = e.fails(&cmd);
        assert!(
            err.contains("container `nope` does not exist: No such file or directory"),
            "{cmd:?}: {err}"
        );
    }
    // Like crun and runc: a forced delete of a missing container succeeds (podman's cleanup
    // after a failed create relies on it), also with several ids.
    e.ok(&["delete", "--force", "nope"]);
    e.ok(&["delete", "-f", "nope", "nope2"]);
    e.ok(&["run", "-d", "r"]);
    let err = e.fails(&["start", "r"]);
    assert!(err.contains("already been started"), "{err}");
    let err = e.fails(&["delete", "r"]);
    assert!(err.contains("not in created or stopped state"), "{err}");
    e.ok(&["kill", "r", "KILL"]);
    wait_until(std::time::Duration::from_secs(10), "stop", || {
        e.state("r")["status"] == "stopped"
    });
    let err = e.fails(&["kill", "r", "TERM"]);
    assert!(err.contains("not running"), "{err}");
    e.ok(&["delete", "r"]);
    assert_clean(&e);
}

#[test]
fn process_errors_are_reported_with_errno() {
    if !need_root("process_errors_are_reported_with_errno") {
        return;
    }
    let e = Env::new("procerr", &["nonexistent-cmd"], |_| {});
    let err = e.fails(&["run", "procerr"]);
    assert!(
        err.contains(
            "executable file `nonexistent-cmd` not found in $PATH: No such file or directory"
        ),
        "{err}"
    );
    assert_clean(&e);
    let err = e.fails(&["create", "procerr"]);
    assert!(err.contains("not found in $PATH"), "{err}");
    assert_clean(&e);
    e.edit_config(|c| {
        c["process"]["args"] = json!(["/init", "true"]);
        c["process"]["cwd"] = json!("/nonexistent-dir");
    });
    let err = e.fails(&["run", "procerr"]);
    assert!(
        err.contains("chdir to `/nonexistent-dir`: No such file or directory"),
        "{err}"
    );
    assert_clean(&e);
    // A directory is not an executable.
    e.edit_config(|c| {
        c["process"]["args"] = json!(["/etc"]);
        c["process"]["cwd"] = json!("/");
    });
    let err = e.fails(&["run", "procerr"]);
    assert!(err.contains("Permission denied"), "{err}");
    assert_clean(&e);
    // A user that does not exist (exec --user NAME).
    e.edit_config(|c| c["process"]["args"] = json!(["/init", "pause"]));
    e.ok(&["run", "-d", "u"]);
    let err = e.fails(&["exec", "--user", "nosuchuser", "u", "/init", "id"]);
    assert!(
        err.contains("cannot find user `nosuchuser`") && err.contains("No such file or directory"),
        "{err}"
    );
    let err = e.fails(&["exec", "u", "/nonexistent"]);
    assert!(
        err.contains("executable file `/nonexistent` not found"),
        "{err}"
    );
    e.ok(&["delete", "-f", "u"]);
}

#[test]
fn json_log_has_one_object_per_error() {
    if !need_root("json_log_has_one_object_per_error") {
        return;
    }
    let e = Env::new("jsonlog", &["nonexistent-cmd"], |_| {});
    let log = e.dir.join("oci-log");
    let o = e.run(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format=json",
        "run",
        "jsonlog",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(v["level"], "error");
    assert!(v["msg"]
        .as_str()
        .unwrap()
        .ends_with("not found in $PATH: No such file or directory"));
    assert!(v["time"].is_string());
    // The error is also on stderr for monitors that read it.
    assert!(String::from_utf8_lossy(&o.stderr).contains("not found in $PATH"));
}

/// Whether this process has CAP_SYS_RESOURCE (then raising a hard rlimit works).
fn has_cap_sys_resource() -> bool {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let eff = s
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    eff & (1 << 24) != 0 // CAP_SYS_RESOURCE
}

#[test]
fn refused_rlimit_is_reported() {
    if !need_root("refused_rlimit_is_reported") {
        return;
    }
    if has_cap_sys_resource() {
        eprintln!("skipped: refused_rlimit_is_reported: raising a hard rlimit is allowed here");
        return;
    }
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut cur) }, 0);
    let hard = cur.rlim_max + 1;
    // Both the container's own setrlimit and the parent's prlimit (asked for on EPERM) are
    // refused: the error names the limit.
    let e = Env::new("rlimit", &["/init", "true"], |c| {
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": hard}]);
    });
    let err = e.fails(&["run", "rlimit-refused"]);
    assert!(
        err.contains("setrlimit `RLIMIT_NOFILE`: Operation not permitted"),
        "{err}"
    );
    assert_clean(&e);
}
