//! Builds the printf-style C shim and generates `include/libcrun.h` with cbindgen.
//!
//! The header is written to `$OUT_DIR/libcrun.h` on every build; `tests/header.rs` fails when
//! the committed `include/libcrun.h` differs.  `CRUN_RS_UPDATE_HEADER=1` (what `make header`
//! sets) also writes the committed copy.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=CRUN_RS_UPDATE_HEADER");

    cc::Build::new()
        .file("src/shim/shim.c")
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        .compile("crun_rs_shim");

    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is valid");
    let bindings = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen can parse the crate");
    bindings.write_to_file(out_dir.join("libcrun.h"));
    if std::env::var_os("CRUN_RS_UPDATE_HEADER").is_some_and(|v| v == "1") {
        bindings.write_to_file(crate_dir.join("include/libcrun.h"));
    }
}
