//! Custom handlers in the runtime: an out-of-tree handler (`c-tests/fake_handler.c` as a
//! `.so`) selected by the `run.oci.handler` annotation is loaded in the parent, configured at
//! each phase, and run in place of `execve`; a missing executable is not fatal with a handler.
//! Needs root.

mod runtime_support;

use std::path::Path;
use std::process::Command;

use crun::container::{Container, Runtime, RuntimeContext};
use runtime_support::*;
use serde_json::json;

fn build_so(out: &Path) {
    let o = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-I"])
        .arg(repo().join("include"))
        .arg("-o")
        .arg(out)
        .arg(repo().join("c-tests/fake_handler.c"))
        .output()
        .expect("run cc");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn out_of_tree_handler_runs_in_place_of_exec() {
    if !need_root("out_of_tree_handler_runs_in_place_of_exec") {
        return;
    }
    let e = Env::new("handler", &["nonexistent-in-rootfs"], |c| {
        c["annotations"] = json!({"run.oci.handler": "fake"});
    });
    let plugins = e.dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    build_so(&plugins.join("fake_handler.so"));
    let mut m = crun::handlers::HandlerManager::new_builtin().unwrap();
    m.load_directory(&plugins).unwrap();
    let log = e.dir.join("fake.log");
    // The only test in this binary: the environment is ours.
    std::env::set_var("FAKE_HANDLER_LOG", &log);
    let c = Container::load_from_file(&e.bundle.join("config.json")).unwrap();
    let ctx = RuntimeContext {
        state_root: Some(e.root.to_string_lossy().into_owned()),
        id: "h1".into(),
        bundle: Some(e.bundle.clone()),
        ..Default::default()
    };
    let code = Runtime::run_with_handlers(&ctx, &c, false, Some(&m)).unwrap();
    assert_eq!(code, 0, "the handler's run returned 0");
    let text = std::fs::read_to_string(&log).unwrap();
    // Parent-side and pre-pivot callbacks log to the host path (post-pivot ones cannot).
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.first(), Some(&"load"), "{text}");
    assert!(lines[1].starts_with("modify "), "{text}");
    // crun's phase order: BEFORE_USERNS (4, parent), BEFORE_MOUNTS (1), MOUNTS (3),
    // AFTER_MOUNTS (2), each with the container's id and rootfs.
    let phases: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("configure phase="))
        .map(|l| &l[..1])
        .collect();
    assert_eq!(phases, vec!["4", "1", "3", "2"], "{text}");
    assert!(lines
        .iter()
        .any(|l| l.contains("id=h1") && l.contains("rootfs=")));
    assert!(e.ids().is_empty(), "run removed the container");
    // A failing run is reported; nothing is left behind.
    std::env::set_var("FAKE_HANDLER_RUN_RET", "3");
    let ctx2 = RuntimeContext {
        id: "h2".into(),
        ..ctx.clone()
    };
    let code = Runtime::run_with_handlers(&ctx2, &c, false, Some(&m)).unwrap();
    assert_eq!(code, 1, "a failing handler run exits 1");
    std::env::remove_var("FAKE_HANDLER_RUN_RET");
    // Without the manager holding `fake`, the named handler does not exist.
    let err = Runtime::run(
        &RuntimeContext {
            id: "h3".into(),
            ..ctx
        },
        &c,
        false,
    )
    .unwrap_err();
    assert!(err.message().contains("fake"), "{}", err.message());
    assert!(e.ids().is_empty());
}
