//! The committed `include/libcrun.h` must be what cbindgen generates from the sources, and it
//! must compile cleanly as C99 and as C++.

mod common;

use std::process::Command;

#[test]
fn committed_header_is_current() {
    let generated = std::fs::read_to_string(concat!(env!("OUT_DIR"), "/libcrun.h")).unwrap();
    let committed = std::fs::read_to_string(common::root().join("include/libcrun.h")).unwrap();
    assert!(
        generated == committed,
        "include/libcrun.h is stale: run `make header` and commit it"
    );
}

fn compile_header(compiler: &str, std: &str, lang: &str) {
    let dir = common::target_dir().join("c-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join(format!(
        "header-{lang}.{}",
        if lang == "c" { "c" } else { "cc" }
    ));
    std::fs::write(
        &src,
        "#include <libcrun.h>\n#include <libcrun.h>\nint main (void) { return sizeof (struct libcrun_error_s) == 16 ? 0 : 1; }\n",
    )
    .unwrap();
    let o = Command::new(compiler)
        .args([
            std,
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic-errors",
            "-fsyntax-only",
            "-I",
        ])
        .arg(common::root().join("include"))
        .arg(&src)
        .output()
        .expect("run compiler");
    assert!(
        o.status.success(),
        "{compiler} {std} rejects libcrun.h:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn header_compiles_as_c99() {
    compile_header("gcc", "-std=c99", "c");
}

#[test]
fn header_compiles_as_cxx() {
    compile_header("g++", "-std=c++11", "cxx");
}
