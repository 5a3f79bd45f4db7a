//! The `crun` command line itself: global options, help/version, `spec`, option forms,
//! argv[0] handler selection, unknown commands and options.

mod runtime_support;

use std::process::Command;

use runtime_support::*;

fn tmpdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("crun-rs-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(args: &[&str], cwd: &std::path::Path) -> std::process::Output {
    let mut c = Command::new(crun());
    c.args(args).current_dir(cwd);
    output_with_timeout(c, std::time::Duration::from_secs(30))
}

#[test]
fn version_and_help() {
    let d = tmpdir("version");
    for v in ["--version", "-v"] {
        let o = run(&[v], &d);
        assert!(o.status.success());
        let s = String::from_utf8_lossy(&o.stdout);
        assert!(s.starts_with("crun version "), "{s}");
        assert!(s.contains("spec: 1.0.0"), "{s}");
        assert!(s.contains("+LIBKRUN"), "{s}");
    }
    let o = run(&["--help"], &d);
    assert!(o.status.success());
    let s = String::from_utf8_lossy(&o.stdout);
    for cmd in [
        "create", "delete", "exec", "kill", "list", "run", "spec", "start", "state",
    ] {
        assert!(s.contains(cmd), "help lacks {cmd}");
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn unknown_command_and_options_fail_with_1() {
    let d = tmpdir("unknown");
    let o = run(&["frobnicate"], &d);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown command `frobnicate`"));
    let o = run(&["state", "--bogus", "x"], &d);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unrecognized option '--bogus'"));
    let o = run(&["--root"], &d);
    assert_eq!(o.status.code(), Some(1));
    let o = run(&[], &d);
    assert_eq!(o.status.code(), Some(1));
    let o = run(&["--log-format", "yaml", "list"], &d);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("yaml"));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn spec_writes_a_default_config_once() {
    let d = tmpdir("spec");
    let o = run(&["spec"], &d);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("config.json")).unwrap()).unwrap();
    assert_eq!(v["ociVersion"], "1.0.0");
    assert_eq!(v["root"]["path"], "rootfs");
    let o = run(&["spec"], &d);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("config.json already exists"));
    let r = d.join("rootless");
    std::fs::create_dir_all(&r).unwrap();
    let o = run(&["spec", "--rootless", "--bundle", r.to_str().unwrap()], &d);
    assert!(o.status.success());
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r.join("config.json")).unwrap()).unwrap();
    let ns = v["linux"]["namespaces"].as_array().unwrap();
    assert!(ns.iter().any(|n| n["type"] == "user"));
    assert!(v["linux"]["uidMappings"].is_array());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn list_on_an_empty_root_and_repeated_globals() {
    let d = tmpdir("list");
    let root = d.join("root");
    let r = root.to_str().unwrap();
    // conmon-rs repeats global flags; both `--opt V` and `--opt=V` forms work.
    let o = run(&["--root", r, &format!("--root={r}"), "list", "-q"], &d);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stdout.is_empty());
    let o = run(&["--root", r, "list", "--format=json"], &d);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v, serde_json::json!([]));
    let o = run(&["--root", r, "list"], &d);
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("NAME"));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn errors_go_to_the_log_file_and_stderr() {
    let d = tmpdir("log");
    let log = d.join("log.txt");
    let o = run(
        &[
            "--log",
            log.to_str().unwrap(),
            "--root",
            d.join("root").to_str().unwrap(),
            "state",
            "nope",
        ],
        &d,
    );
    assert_eq!(o.status.code(), Some(1));
    let want = "container `nope` does not exist: No such file or directory";
    assert!(String::from_utf8_lossy(&o.stderr).contains(want));
    assert!(std::fs::read_to_string(&log).unwrap().contains(want));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn argv0_krun_selects_the_krun_handler() {
    let d = tmpdir("krun");
    let krun = d.join("krun");
    std::os::unix::fs::symlink(crun(), &krun).unwrap();
    std::fs::write(
        d.join("config.json"),
        r#"{"ociVersion":"1.0.0","process":{"args":["/bin/true"],"cwd":"/","user":{"uid":0,"gid":0}},"linux":{}}"#,
    )
    .unwrap();
    let root = d.join("root");
    let mut c = Command::new(&krun);
    c.args(["--root", root.to_str().unwrap(), "run", "k1"])
        .current_dir(&d);
    let o = output_with_timeout(c, std::time::Duration::from_secs(30));
    // Without libkrun installed the handler cannot load; with it, /dev/kvm decides.  Either
    // way the handler was selected and nothing is left in the state root.
    let err = String::from_utf8_lossy(&o.stderr);
    if o.status.success() {
        eprintln!("note: libkrun is installed and the VM ran");
    } else {
        assert!(err.contains("krun"), "{err}");
    }
    let left: Vec<_> = std::fs::read_dir(&root)
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    std::fs::remove_dir_all(&d).unwrap();
}
