//! C API of the custom-handler framework (crun's `custom-handler.h`), and the built-in krun
//! handler as a C vtable so C runtimes can drive it like crun's `handler_libkrun`.
//!
//! Ownership: `libcrun_configure_handler` returns a `malloc`'d `custom_handler_instance_s`;
//! release it with `libcrun_handler_instance_free` (crun's inline
//! `cleanup_custom_handler_instance`: `unload`, then `free`) before freeing the manager, whose
//! out-of-tree libraries the vtables live in.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::path::{Path, PathBuf};

use super::types::{
    custom_handler_manager_s, custom_handler_s, handler_configure_phase, libcrun_container_t,
    libcrun_context_t, runtime_spec_schema_config_schema,
};
use super::{arg_str, guard, guard_ptr, guard_void, libcrun_error_t, null_arg, opt_str};
use crate::error::{Error, Result};
use crate::handlers::krun::KrunHandler;
use crate::handlers::{
    select_handler, Builtin, ContainerInfo, Entry, HandlerManager, LoadedHandler, Phase, Selection,
};

/// crun's `struct custom_handler_instance_s`: a handler's vtable and the cookie its `load`
/// returned.
#[repr(C)]
pub struct custom_handler_instance_s {
    pub vtable: *mut custom_handler_s,
    pub cookie: *mut c_void,
}

/// A vtable in a `static`: its pointers are immutable, so sharing it is sound.
struct StaticVtable(custom_handler_s);
// SAFETY: never written after initialisation.
unsafe impl Sync for StaticVtable {}

static KRUN_VTABLE: StaticVtable = StaticVtable(custom_handler_s {
    name: c"krun".as_ptr(),
    feature_string: c"LIBKRUN".as_ptr(),
    alias: std::ptr::null(),
    load: Some(krun_load),
    unload: Some(krun_unload),
    run_func: Some(krun_run),
    exec_func: None,
    configure_container: Some(krun_configure_container),
    can_handle_container: None,
    modify_oci_configuration: Some(krun_modify_oci_configuration),
    close_fds: Some(krun_close_fds),
});

/// The C vtable of a manager entry.
fn entry_vtable(e: &Entry) -> *mut custom_handler_s {
    match e {
        Entry::Builtin(Builtin::Krun) => &KRUN_VTABLE.0 as *const custom_handler_s as *mut _,
        Entry::Dynamic(d) => d.vtable.0 as *mut _,
    }
}

/// The krun instance behind a cookie.
///
/// # Safety
/// `cookie` is NULL or came from `krun_load`.
unsafe fn krun_cookie<'a>(cookie: *mut c_void) -> Result<&'a mut KrunHandler> {
    (cookie as *mut KrunHandler)
        .as_mut()
        .ok_or_else(|| null_arg("cookie"))
}

/// Owned pieces of a [`ContainerInfo`] read from C structs.
struct CInfo {
    id: String,
    bundle: PathBuf,
    state_dir: PathBuf,
}

/// The spec of a C container (EINVAL naming what is NULL).
///
/// # Safety
/// `container` is NULL or a valid `libcrun_container_t` whose `container_def` is NULL or ours.
unsafe fn container_spec<'a>(
    container: *mut libcrun_container_t,
) -> Result<&'a mut oci_spec::runtime::Spec> {
    let c = container.as_mut().ok_or_else(|| null_arg("container"))?;
    let def = c
        .container_def
        .as_mut()
        .ok_or_else(|| null_arg("container->container_def"))?;
    Ok(&mut def.spec)
}

/// id, bundle and state dir from the context (the argument, else `container->context`).
///
/// # Safety
/// Pointers are NULL or valid.
unsafe fn c_info(
    context: *mut libcrun_context_t,
    container: *mut libcrun_container_t,
) -> Result<CInfo> {
    let ctx = if context.is_null() {
        container
            .as_ref()
            .map_or(std::ptr::null_mut(), |c| c.context)
    } else {
        context
    };
    let (id, bundle, root) = match ctx.as_ref() {
        Some(c) => (
            opt_str(c.id, "context->id")?.unwrap_or(""),
            opt_str(c.bundle, "context->bundle")?.unwrap_or("."),
            opt_str(c.state_root, "context->state_root")?.unwrap_or("/run/crun"),
        ),
        None => ("", ".", "/run/crun"),
    };
    Ok(CInfo {
        id: id.to_string(),
        bundle: PathBuf::from(bundle),
        state_dir: Path::new(root).join(id),
    })
}

unsafe extern "C" fn krun_load(cookie: *mut *mut c_void, err: *mut libcrun_error_t) -> c_int {
    guard("krun load", err, || {
        if cookie.is_null() {
            return Err(null_arg("cookie"));
        }
        let h = Box::new(KrunHandler::load()?);
        *cookie = Box::into_raw(h).cast();
        Ok(0)
    })
}

unsafe extern "C" fn krun_unload(cookie: *mut c_void, err: *mut libcrun_error_t) -> c_int {
    guard("krun unload", err, || {
        if !cookie.is_null() {
            drop(Box::from_raw(cookie as *mut KrunHandler));
        }
        Ok(0)
    })
}

/// crun's `libkrun_exec`: on failure the error is printed and the process exits with
/// status 1 (crun uses `error (EXIT_FAILURE, ...)`); on success it never returns.
unsafe extern "C" fn krun_run(
    cookie: *mut c_void,
    container: *mut libcrun_container_t,
    pathname: *const c_char,
    argv: *const *mut c_char,
) -> c_int {
    let r = guard_void(Err(Error::msg("internal error: krun run panicked")), || {
        let h = krun_cookie(cookie)?;
        let spec = container_spec(container)?;
        let i = c_info(std::ptr::null_mut(), container)?;
        let path = arg_str(pathname, "pathname")?;
        let mut args = Vec::new();
        if !argv.is_null() {
            let mut p = argv;
            while !(*p).is_null() {
                args.push(CStr::from_ptr(*p).to_string_lossy().into_owned());
                p = p.add(1);
            }
        }
        let info = ContainerInfo {
            id: &i.id,
            spec,
            bundle: &i.bundle,
            state_dir: &i.state_dir,
        };
        h.run(&info, path, &args)
    });
    match r {
        Ok(v) => v,
        Err(e) => {
            crate::log::log_error(&e);
            libc::_exit(libc::EXIT_FAILURE)
        }
    }
}

unsafe extern "C" fn krun_configure_container(
    cookie: *mut c_void,
    phase: handler_configure_phase,
    context: *mut libcrun_context_t,
    container: *mut libcrun_container_t,
    rootfs: *const c_char,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("krun configure_container", err, || {
        let h = krun_cookie(cookie)?;
        let phase = Phase::from_c(phase as i32)?;
        let spec = container_spec(container)?;
        let i = c_info(context, container)?;
        let rootfs = match opt_str(rootfs, "rootfs")? {
            Some(r) => PathBuf::from(r),
            None => spec
                .root()
                .as_ref()
                .map(|r| r.path().clone())
                .ok_or_else(|| null_arg("rootfs"))?,
        };
        let info = ContainerInfo {
            id: &i.id,
            spec,
            bundle: &i.bundle,
            state_dir: &i.state_dir,
        };
        h.configure_container(phase, &info, &rootfs)?;
        Ok(0)
    })
}

unsafe extern "C" fn krun_modify_oci_configuration(
    cookie: *mut c_void,
    _context: *mut libcrun_context_t,
    def: *mut runtime_spec_schema_config_schema,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("krun modify_oci_configuration", err, || {
        let h = krun_cookie(cookie)?;
        let def = def.as_mut().ok_or_else(|| null_arg("def"))?;
        h.modify_oci_configuration(&mut def.spec)?;
        Ok(0)
    })
}

unsafe extern "C" fn krun_close_fds(
    cookie: *mut c_void,
    _container: *mut libcrun_container_t,
    preserve_fds: c_int,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("krun close_fds", err, || {
        krun_cookie(cookie)?.close_fds(preserve_fds)?;
        Ok(0)
    })
}

/// Create a handler manager holding the built-in handlers (krun).  Free it with
/// `libcrun_handler_manager_free`.
///
/// # Safety
/// `err` is NULL or points to a `libcrun_error_t` slot.
#[no_mangle]
pub unsafe extern "C" fn libcrun_handler_manager_create(
    err: *mut libcrun_error_t,
) -> *mut custom_handler_manager_s {
    guard_ptr("libcrun_handler_manager_create", err, || {
        let manager = HandlerManager::new_builtin()?;
        Ok(Box::into_raw(Box::new(custom_handler_manager_s {
            manager,
        })))
    })
}

/// Load every non-hidden file in `path` as a handler `.so` exporting
/// `struct custom_handler_s *run_oci_handler_get_handler (void)`.  Returns 0, or a negative
/// value with `*err` set ("cannot opendir `path`", "cannot load `file`: dlerror", ...).
///
/// # Safety
/// `manager` is NULL or from `libcrun_handler_manager_create`; `path` is NULL or a C string;
/// `err` as for every libcrun call.
#[no_mangle]
pub unsafe extern "C" fn libcrun_handler_manager_load_directory(
    manager: *mut custom_handler_manager_s,
    path: *const c_char,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_handler_manager_load_directory", err, || {
        let m = manager.as_mut().ok_or_else(|| null_arg("manager"))?;
        let path = arg_str(path, "path")?;
        m.manager.load_directory(Path::new(path))?;
        Ok(0)
    })
}

/// Free a manager and unload its out-of-tree handlers (crun's internal `handler_manager_free`;
/// exported here as an extra).  Free handler instances first.  NULL is ignored.
///
/// # Safety
/// `manager` is NULL or from `libcrun_handler_manager_create`, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn libcrun_handler_manager_free(manager: *mut custom_handler_manager_s) {
    guard_void((), || {
        if !manager.is_null() {
            drop(Box::from_raw(manager));
        }
    })
}

/// Print `+FEATURE ` for each handler that has a feature string (`+LIBKRUN `) to `out`.
///
/// # Safety
/// `manager` is NULL or a live manager; `out` is NULL or an open `FILE *`.
#[no_mangle]
pub unsafe extern "C" fn libcrun_handler_manager_print_feature_tags(
    manager: *mut custom_handler_manager_s,
    out: *mut libc::FILE,
) {
    guard_void((), || {
        let (Some(m), false) = (manager.as_ref(), out.is_null()) else {
            return;
        };
        let tags = crate::log::to_cstring(&m.manager.feature_tags());
        libc::fputs(tags.as_ptr(), out);
    })
}

/// The vtable of the handler called (or aliased) `name`, or NULL (crun's internal
/// `handler_by_name`, exported as an extra).  `libcrun_handler_by_name (m, "krun")` is the
/// built-in krun handler, usable as crun's `handler_libkrun`.
///
/// # Safety
/// `manager` is NULL or a live manager; `name` is NULL or a C string.
#[no_mangle]
pub unsafe extern "C" fn libcrun_handler_by_name(
    manager: *mut custom_handler_manager_s,
    name: *const c_char,
) -> *mut custom_handler_s {
    guard_void(std::ptr::null_mut(), || {
        let (Some(m), Ok(name)) = (manager.as_ref(), arg_str(name, "name")) else {
            return std::ptr::null_mut();
        };
        m.manager.find(name).map_or(std::ptr::null_mut(), |i| {
            entry_vtable(&m.manager.entries[i])
        })
    })
}

/// The annotation `key` of a C container: from its configuration, else its annotation map.
///
/// # Safety
/// `container` is a valid container.
unsafe fn container_annotation(container: &libcrun_container_t, key: &str) -> Option<String> {
    if let Some(def) = container.container_def.as_ref() {
        return def
            .spec
            .annotations()
            .as_ref()
            .and_then(|a| a.get(key).cloned());
    }
    container.annotations.as_ref().and_then(|m| {
        m.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    })
}

/// Choose and load the handler for `container` (crun's rules; see `docs/krun.md`).  On return
/// `*out` is NULL (run the container normally) or a `malloc`'d instance whose `load` succeeded;
/// release it with `libcrun_handler_instance_free`.  Errors: EACCES when `context->handler`
/// and the `run.oci.handler` annotation are both set, ENOENT for an unknown handler name,
/// EINVAL for a name without a manager, or the handler's `load` error.
///
/// # Safety
/// `manager` is NULL or a live manager; `context` and `container` are NULL or valid, with
/// `container->container_def` NULL or made by this library; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn libcrun_configure_handler(
    manager: *mut custom_handler_manager_s,
    context: *mut libcrun_context_t,
    container: *mut libcrun_container_t,
    out: *mut *mut custom_handler_instance_s,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_configure_handler", err, || {
        if out.is_null() {
            return Err(null_arg("out"));
        }
        *out = std::ptr::null_mut();
        let ctx = context.as_ref().ok_or_else(|| null_arg("context"))?;
        let c = container.as_ref().ok_or_else(|| null_arg("container"))?;
        let m = manager.as_ref().map(|m| &m.manager);
        let global = opt_str(ctx.handler, "context->handler")?;
        let sel = select_handler(
            m,
            global,
            |k| container_annotation(c, k),
            |i| {
                let Some(m) = m else { return Ok(false) };
                let vt = entry_vtable(&m.entries[i]);
                let Some(f) = (*vt).can_handle_container else {
                    return Ok(false);
                };
                let mut e: libcrun_error_t = std::ptr::null_mut();
                let r = f(container, &mut e);
                crate::handlers::dynamic::take_c_error(r, e, || {
                    format!("handler `{}`: can_handle_container", m.entries[i].name())
                })
                .map(|r| r > 0)
            },
        )?;
        let (Selection::Entry(i), Some(m)) = (sel, m) else {
            return Ok(0);
        };
        let vt = entry_vtable(&m.entries[i]);
        let mut cookie: *mut c_void = std::ptr::null_mut();
        if let Some(load) = (*vt).load {
            let r = load(&mut cookie, err);
            if r < 0 {
                // `*err` was set by the handler.
                return Ok(r);
            }
        }
        let inst = libc::malloc(std::mem::size_of::<custom_handler_instance_s>())
            as *mut custom_handler_instance_s;
        if inst.is_null() {
            super::out_of_memory();
        }
        inst.write(custom_handler_instance_s { vtable: vt, cookie });
        *out = inst;
        Ok(0)
    })
}

/// Unload and free an instance from `libcrun_configure_handler` (crun's
/// `cleanup_custom_handler_instance`).  An `unload` error is logged as a warning.  NULL is
/// ignored.
///
/// # Safety
/// `instance` is NULL or from `libcrun_configure_handler`, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn libcrun_handler_instance_free(instance: *mut custom_handler_instance_s) {
    guard_void((), || {
        let Some(inst) = instance.as_mut() else {
            return;
        };
        if let Some(vt) = inst.vtable.as_ref() {
            if let Some(unload) = vt.unload {
                let mut e: libcrun_error_t = std::ptr::null_mut();
                let r = unload(inst.cookie, &mut e);
                if let Err(e) = crate::handlers::dynamic::take_c_error(r, e, || "unload handler") {
                    crate::log::warning(&e.to_string());
                }
            }
        }
        libc::free(instance.cast());
    })
}

#[cfg(test)]
mod tests {
    //! The built-in krun C vtable driven like a C runtime would, against the fake libkrun:
    //! load, modify, BEFORE_USERNS, then in a forked child AFTER_MOUNTS, chroot and run_func.
    use super::*;
    use crate::ffi::types::{libcrun_container_s, libcrun_context_s, string_map};
    use std::ffi::CString;
    use std::io::Read;
    use std::os::fd::FromRawFd;

    fn build_fake(dir: &Path) -> PathBuf {
        let out = dir.join("libkrun.so.1");
        let st = std::process::Command::new("cc")
            .args(["-shared", "-fPIC", "-Wl,-soname,libkrun.so.1", "-o"])
            .arg(&out)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("c-tests/fake_libkrun.c"))
            .status()
            .expect("run cc");
        assert!(st.success());
        out
    }

    /// Runs the whole flow in a child; returns (exit status, stderr).
    fn run_child(fail: Option<&str>) -> (i32, String) {
        let dir = std::env::temp_dir().join(format!(
            "crun-rs-krun-cvt-{}-{}",
            std::process::id(),
            fail.is_some()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let rootfs = dir.join("rootfs");
        std::fs::create_dir_all(rootfs.join("dev")).unwrap();
        let fake = build_fake(&dir);
        let spec: oci_spec::runtime::Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.0",
            "root": {"path": rootfs},
            "process": {"args": ["/x"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "annotations": {"krun.cpus": "1"}
        }))
        .unwrap();
        let mut pipe = [0; 2];
        // SAFETY: plain pipe creation.
        assert_eq!(
            unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) },
            0
        );
        // SAFETY: the child drives the vtable and _exits; it shares nothing with the parent.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: single-threaded child: environment and fd set-up, then C calls into our
            // own vtable with pointers to live locals.
            unsafe {
                libc::dup2(pipe[1], 2);
                libc::setenv(c"FAKE_KRUN_EXIT".as_ptr(), c"3".as_ptr(), 1);
                if let Some(f) = fail {
                    let f = CString::new(f).unwrap();
                    libc::setenv(c"FAKE_KRUN_FAIL".as_ptr(), f.as_ptr(), 1);
                }
                // Once loaded, `dlopen ("libkrun.so.1")` finds it by soname.
                let p = CString::new(fake.to_str().unwrap()).unwrap();
                if libc::dlopen(p.as_ptr(), libc::RTLD_NOW).is_null() {
                    libc::_exit(40);
                }
                let vt = &KRUN_VTABLE.0;
                let mut err: libcrun_error_t = std::ptr::null_mut();
                let mut cookie: *mut c_void = std::ptr::null_mut();
                if vt.load.unwrap()(&mut cookie, &mut err) != 0 {
                    libc::_exit(41);
                }
                let mut def = runtime_spec_schema_config_schema { spec: spec.clone() };
                let mut ann = string_map { entries: vec![] };
                let id = c"ctr";
                let bundle = CString::new(dir.to_str().unwrap()).unwrap();
                let root = CString::new(dir.join("state").to_str().unwrap()).unwrap();
                let mut ctx: libcrun_context_s = std::mem::zeroed();
                ctx.id = id.as_ptr();
                ctx.bundle = bundle.as_ptr();
                ctx.state_root = root.as_ptr();
                let mut c: libcrun_container_s = std::mem::zeroed();
                c.container_def = &mut def;
                c.annotations = &mut ann;
                c.context = &mut ctx;
                c.proc_fd = -1;
                if vt.modify_oci_configuration.unwrap()(cookie, &mut ctx, &mut def, &mut err) != 0 {
                    libc::_exit(42);
                }
                let rfs = CString::new(rootfs.to_str().unwrap()).unwrap();
                let cc = vt.configure_container.unwrap();
                if cc(
                    cookie,
                    handler_configure_phase::HANDLER_CONFIGURE_BEFORE_USERNS,
                    &mut ctx,
                    &mut c,
                    rfs.as_ptr(),
                    &mut err,
                ) != 0
                    || cc(
                        cookie,
                        handler_configure_phase::HANDLER_CONFIGURE_AFTER_MOUNTS,
                        &mut ctx,
                        &mut c,
                        rfs.as_ptr(),
                        &mut err,
                    ) != 0
                {
                    libc::_exit(43);
                }
                if libc::chroot(rfs.as_ptr()) != 0 || libc::chdir(c"/".as_ptr()) != 0 {
                    libc::_exit(44);
                }
                let a0 = c"/x";
                let argv = [a0.as_ptr() as *mut c_char, std::ptr::null_mut()];
                vt.run_func.unwrap()(cookie, &mut c, a0.as_ptr(), argv.as_ptr());
                libc::_exit(45);
            }
        }
        // SAFETY: our copy of the write end; the read end is ours.
        unsafe { libc::close(pipe[1]) };
        let mut err = String::new();
        unsafe { std::fs::File::from_raw_fd(pipe[0]) }
            .read_to_string(&mut err)
            .unwrap();
        let mut status = 0;
        // SAFETY: waiting for our child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        let _ = std::fs::remove_dir_all(&dir);
        assert!(libc::WIFEXITED(status));
        (libc::WEXITSTATUS(status), err)
    }

    #[test]
    fn krun_c_vtable_runs_and_reports_errors_like_crun() {
        // SAFETY: plain getter.
        if unsafe { libc::geteuid() } != 0 || !Path::new("/dev/kvm").exists() {
            eprintln!("skipped: needs root (chroot, mknod) and /dev/kvm");
            return;
        }
        let (st, err) = run_child(None);
        assert_eq!(st, 3, "the fake VM's exit status; stderr: {err}");
        // crun's behaviour: the error is printed and the process exits with status 1.
        let (st, err) = run_child(Some("krun_start_enter:22"));
        assert_eq!(st, 1, "stderr: {err}");
        assert!(
            err.contains("could not start krun: Invalid argument"),
            "{err}"
        );
        assert!(!err.contains("Unknown error"), "{err}");
    }
}
