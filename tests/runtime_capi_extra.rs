//! The rest of crun's container C API (`c-tests/test_container_extra.c`): state strings,
//! update from a file / from values (checked in the v1 cgroup files) and create with
//! `LIBCRUN_CREATE_OPTIONS_PREFORK`, against both `libcrun.so.0` and `libcrun.a`.

mod common;
mod runtime_support;

use runtime_support::*;

#[test]
fn c_container_extra_api() {
    let root = unsafe { libc::geteuid() } == 0;
    let e = Env::new("capix", &["/init", "pause"], |_| {});
    std::fs::create_dir_all(&e.root).unwrap();
    if !root {
        eprintln!("skipped: c_container_extra_api lifecycle part: needs root");
    }
    for link in [common::Linkage::Shared, common::Linkage::Static] {
        let exe = common::compile_c("test_container_extra", &[], link);
        let mut c = common::c_command(&exe);
        c.env("CRUN_RS_BUNDLE", &e.bundle)
            .env("CRUN_RS_STATE", &e.root);
        let o = output_with_timeout(c, std::time::Duration::from_secs(120));
        common::show(&format!("test_container_extra ({})", link.name()), &o);
        assert!(
            o.status.success(),
            "test_container_extra ({}) failed",
            link.name()
        );
        assert!(e.ids().is_empty(), "left behind: {:?}", e.ids());
    }
}
