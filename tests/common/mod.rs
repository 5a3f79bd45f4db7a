//! Shared helpers for integration tests: locating build outputs, linking `libcrun.so.0`, and
//! compiling and running the C programs in `c-tests/` against both the shared and the static
//! library.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `target/<profile>`: the directory holding `libcrun.a` and the `crun` binary.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test>-<hash>
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

/// The `crun` binary built for this test run.
pub fn crun_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_crun"))
}

/// Link `libcrun.so.0` from `libcrun.a` (once per test process) and return the target dir.
pub fn libs() -> &'static Path {
    static LIBS: OnceLock<PathBuf> = OnceLock::new();
    LIBS.get_or_init(|| {
        let dir = target_dir();
        // `cargo test` builds the library only as an rlib: bring libcrun.a up to date.
        let mut build = Command::new(env!("CARGO"));
        build.args(["build", "--lib", "--quiet"]);
        if dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let st = build
            .current_dir(root())
            .status()
            .expect("run cargo build --lib");
        assert!(st.success(), "cargo build --lib failed");
        assert!(
            dir.join("libcrun.a").exists(),
            "{} missing: build the staticlib first",
            dir.join("libcrun.a").display()
        );
        // Link into a per-process directory so concurrent test binaries do not race.
        let base = dir.join("c-tests");
        remove_stale_lib_dirs(&base);
        let out = base.join(format!("lib-{}", std::process::id()));
        std::fs::create_dir_all(&out).unwrap();
        let _ = std::fs::remove_file(out.join("libcrun.a"));
        if std::fs::hard_link(dir.join("libcrun.a"), out.join("libcrun.a")).is_err() {
            std::fs::copy(dir.join("libcrun.a"), out.join("libcrun.a")).unwrap();
        }
        let st = Command::new(root().join("scripts/link-so.sh"))
            .arg(&out)
            .status()
            .expect("run scripts/link-so.sh");
        assert!(st.success(), "linking libcrun.so.0 failed");
        out
    })
}

/// Remove `lib-<pid>` directories left by test processes that have exited.
fn remove_stale_lib_dirs(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("lib-")) else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Which library a C test program is linked to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Linkage {
    Shared,
    Static,
}

impl Linkage {
    pub fn name(self) -> &'static str {
        match self {
            Linkage::Shared => "shared",
            Linkage::Static => "static",
        }
    }
}

pub const WARNINGS: &[&str] = &["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-g", "-O1"];
pub const LIBS_PRIVATE: &[&str] = &[
    "-lgcc_s",
    "-lutil",
    "-lrt",
    "-lpthread",
    "-lm",
    "-ldl",
    "-lc",
];

/// Compile `c-tests/<name>.c` (plus `extra` sources) against `include/` and the library.
pub fn compile_c(name: &str, extra: &[&str], link: Linkage) -> PathBuf {
    let libdir = libs();
    let out = libdir.join(format!("{name}-{}", link.name()));
    let mut cmd = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()));
    cmd.args(WARNINGS)
        .arg("-I")
        .arg(root().join("include"))
        .arg("-I")
        .arg(root().join("c-tests"))
        .arg("-o")
        .arg(&out)
        .arg(root().join(format!("c-tests/{name}.c")));
    for e in extra {
        cmd.arg(root().join(format!("c-tests/{e}")));
    }
    match link {
        Linkage::Shared => {
            cmd.arg(format!("-L{}", libdir.display()))
                // DT_RPATH (not RUNPATH): wins over the LD_LIBRARY_PATH cargo sets.
                .arg("-Wl,--disable-new-dtags")
                .arg(format!("-Wl,-rpath,{}", libdir.display()))
                .arg("-lcrun");
        }
        Linkage::Static => {
            cmd.arg(libdir.join("libcrun.a")).args(LIBS_PRIVATE);
        }
    }
    let o = cmd.output().expect("run cc");
    assert!(
        o.status.success(),
        "compiling {name} ({}) failed:\n{}",
        link.name(),
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// Whether the C tests run under valgrind (`CRUN_RS_VALGRIND=1`, set by `make test` in CI).
pub fn valgrind() -> bool {
    std::env::var("CRUN_RS_VALGRIND").is_ok_and(|v| v == "1")
}

/// A command for `exe`, under valgrind when asked.
pub fn c_command(exe: &Path) -> Command {
    if valgrind() {
        let mut c = Command::new("valgrind");
        c.args([
            "--quiet",
            "--error-exitcode=99",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite",
            "--show-leak-kinds=definite",
            "--track-fds=no",
        ])
        .arg(exe);
        c
    } else {
        Command::new(exe)
    }
}

/// Print a finished C program's output so failures are readable.
pub fn show(name: &str, o: &Output) {
    eprintln!(
        "--- {name}: {}\n--- stdout:\n{}--- stderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Compile `c-tests/<name>.c` for both linkages, run each, and assert exit status 0.
pub fn run_c_test(name: &str, extra: &[&str]) {
    for link in [Linkage::Shared, Linkage::Static] {
        let exe = compile_c(name, extra, link);
        let o = c_command(&exe).output().expect("run C test");
        show(&format!("{name} ({})", link.name()), &o);
        assert!(
            o.status.success(),
            "{name} ({}) failed: {}",
            link.name(),
            o.status
        );
    }
}
