//! The language bindings and the C example, run against this build's `libcrun.so.0`:
//! `bindings/python` (pytest, and a `pip install` of the package), `bindings/go` (`go test`)
//! and `examples/console-demo.c` (built with `pkg-config` against `make install PREFIX=<tmp>`).
//! Each test prints `skipped: ...` and returns when its tool (python3-pytest, go, make) is
//! missing; the container cases inside them need root and skip themselves otherwise.

mod callers_common;
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use callers_common as cc;

fn show(what: &str, o: &Output) {
    eprintln!(
        "--- {what}: {}\n--- stdout:\n{}--- stderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("crun-rs-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// This build's `libcrun.so.0`.
fn library() -> PathBuf {
    common::libs().join("libcrun.so.0")
}

/// A Python interpreter that has `module` (Debian's pytest lives in /usr/bin/python3, which
/// may not be the first python3 on PATH).
fn python_with(module: &str) -> Option<PathBuf> {
    let mut cands: Vec<PathBuf> = Vec::new();
    if let Some(p) = cc::which("python3") {
        cands.push(p);
    }
    cands.push(PathBuf::from("/usr/bin/python3"));
    cands.into_iter().find(|p| {
        Command::new(p)
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn python_dir() -> PathBuf {
    common::root().join("bindings/python")
}

#[test]
fn python_pytest() {
    let Some(py) = python_with("pytest") else {
        cc::skip(
            "python_pytest",
            "no python3 with pytest (apt install python3-pytest)",
        );
        return;
    };
    let o = Command::new(&py)
        .args([
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            "tests",
        ])
        .current_dir(python_dir())
        .env("CRUN_RS_LIBRARY", library())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run pytest");
    show("pytest bindings/python/tests", &o);
    assert!(o.status.success(), "pytest failed: {}", o.status);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(" passed"), "pytest ran no test: {out}");
}

#[test]
fn python_pip_install() {
    let Some(py) = python_with("setuptools, wheel, pip") else {
        cc::skip(
            "python_pip_install",
            "no python3 with pip, setuptools and wheel (apt install python3-pip python3-wheel)",
        );
        return;
    };
    let dir = tempdir("pip");
    let target = dir.join("site");
    // Build from a copy: setuptools writes build/ and *.egg-info next to pyproject.toml.
    let src = dir.join("src");
    let st = Command::new("cp")
        .arg("-r")
        .arg(python_dir())
        .arg(&src)
        .status()
        .expect("cp");
    assert!(st.success());
    for junk in ["build", "src/crun_rs.egg-info"] {
        let _ = std::fs::remove_dir_all(src.join(junk));
    }
    let o = Command::new(&py)
        .args([
            "-m",
            "pip",
            "install",
            "-q",
            "--no-build-isolation",
            "--no-deps",
            "--no-index",
            "--target",
        ])
        .arg(&target)
        .arg(&src)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run pip");
    show("pip install bindings/python", &o);
    assert!(o.status.success(), "pip install failed");
    assert!(
        target.join("crun_rs/py.typed").is_file(),
        "py.typed missing"
    );
    // The installed copy (not the source tree) imports and calls into the library.
    let script = "import crun_rs, python_crun, sys\n\
                  assert crun_rs.__file__.startswith(sys.argv[1]), crun_rs.__file__\n\
                  crun_rs.set_verbosity(crun_rs.VERBOSITY_WARNING)\n\
                  assert crun_rs.get_verbosity() == 1\n\
                  assert python_crun.get_verbosity() == 1\n\
                  print('ok', crun_rs.library_path())\n";
    let o = Command::new(&py)
        .arg("-c")
        .arg(script)
        .arg(&target)
        .current_dir(&dir)
        .env("PYTHONPATH", &target)
        .env("CRUN_RS_LIBRARY", library())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run python");
    show("installed package", &o);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("ok "));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A `.pc` file for this build (include/ and the freshly linked library).
fn write_pc(dir: &Path) {
    let pc = format!(
        "prefix={root}\nlibdir={lib}\nincludedir={root}/include\n\n\
         Name: libcrun\nDescription: crun-rs (build tree)\nVersion: 0.1.0\n\
         Libs: -L${{libdir}} -Wl,-rpath,${{libdir}} -lcrun\nCflags: -I${{includedir}}\n",
        root = common::root().display(),
        lib = common::libs().display()
    );
    std::fs::write(dir.join("libcrun.pc"), pc).unwrap();
}

#[test]
fn go_test() {
    let Some(go) = cc::which("go") else {
        cc::skip("go_test", "go not installed (apt install golang-go)");
        return;
    };
    if cc::which("pkg-config").is_none() {
        cc::skip("go_test", "pkg-config not installed");
        return;
    }
    let dir = tempdir("go");
    write_pc(&dir);
    let o = Command::new(go)
        .args(["test", "-count=1", "-timeout", "300s", "-v", "./..."])
        .current_dir(common::root().join("bindings/go"))
        .env("PKG_CONFIG_PATH", &dir)
        .env("CRUN_RS_LIBRARY", library())
        .env("GOFLAGS", "-mod=mod -buildvcs=false")
        .env("GOPROXY", "off")
        .env("GOCACHE", dir.join("gocache"))
        .env("GOPATH", dir.join("gopath"))
        .env("CGO_ENABLED", "1")
        .output()
        .expect("run go test");
    show("go test bindings/go", &o);
    assert!(o.status.success(), "go test failed: {}", o.status);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `make install PREFIX=<tmp>` (of this debug build), then `examples/Makefile` builds
/// console-demo with `pkg-config --cflags --libs libcrun` (shared and static), and the demo
/// runs a terminal container whose output must arrive on the pty it receives.
#[test]
fn c_console_demo() {
    let t = "c_console_demo";
    let header = std::fs::read_to_string(common::root().join("include/libcrun.h")).unwrap();
    for f in [
        "libcrun_container_create",
        "libcrun_container_start",
        "libcrun_container_delete",
        "libcrun_receive_console_fd",
    ] {
        if !header.contains(f) {
            cc::skip(t, &format!("include/libcrun.h does not declare {f} yet"));
            return;
        }
    }
    for tool in ["make", "pkg-config", "python3"] {
        if cc::which(tool).is_none() {
            cc::skip(t, &format!("{tool} not installed"));
            return;
        }
    }
    if !cc::is_root() {
        cc::skip(t, "needs root");
        return;
    }
    if cc::busybox().is_none() {
        cc::skip(t, "no static busybox (apt install busybox-static)");
        return;
    }
    let dir = tempdir("cdemo");
    let prefix = dir.join("prefix");
    let target = common::target_dir();
    let st = Command::new(common::root().join("scripts/link-so.sh"))
        .arg(&target)
        .status()
        .expect("link-so.sh");
    assert!(st.success());
    // `-o build`: use this test build's outputs instead of rebuilding in release.
    let o = Command::new("make")
        .args(["-o", "build", "install", "PROFILE=debug"])
        .arg(format!("PREFIX={}", prefix.display()))
        .current_dir(common::root())
        .output()
        .expect("make install");
    show("make install", &o);
    assert!(o.status.success(), "make install failed");
    let pc = prefix.join("lib/pkgconfig");
    let bundle = dir.join("bundle");
    let o = Command::new("python3")
        .arg(common::root().join("scripts/conmon-harness/harness.py"))
        .args(["bundle", "-t"])
        .arg(&bundle)
        .args(["--", "sh", "-c", "echo hello from the pty; tty"])
        .output()
        .expect("make bundle");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for link in ["shared", "static"] {
        let out = dir.join(link);
        std::fs::create_dir_all(&out).unwrap();
        let o = Command::new("make")
            .arg("-C")
            .arg(common::root().join("examples"))
            .arg(format!("PKG_CONFIG_PATH={}", pc.display()))
            .arg(format!("OUT={}", out.display()))
            .arg(format!("LINK={link}"))
            .output()
            .expect("make -C examples");
        show(&format!("make -C examples LINK={link}"), &o);
        assert!(o.status.success(), "building console-demo ({link}) failed");
        let o = Command::new("timeout")
            .args(["-k", "5", "120"])
            .arg(out.join("console-demo"))
            .arg(&bundle)
            .arg(format!("console-demo-{link}-{}", std::process::id()))
            .env("LD_LIBRARY_PATH", prefix.join("lib"))
            .output()
            .expect("run console-demo");
        show(&format!("console-demo ({link})"), &o);
        assert!(o.status.success(), "console-demo ({link}) failed");
        let text = String::from_utf8_lossy(&o.stdout).replace('\r', "");
        assert!(
            text.contains("received pty master fd"),
            "no console fd: {text}"
        );
        assert!(
            text.contains("hello from the pty\n/dev/pts/"),
            "the container's output did not arrive on the pty: {text}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
