//! The container half of libcrun's C API: load/free a configuration, and run, create, start,
//! state, kill, delete, exec, pause, update, list and spec through a `libcrun_context_t`.
//!
//! A `libcrun_container_t` returned here is allocated by crun-rs and must be released with
//! `libcrun_container_free`.  Strings inside it are `malloc`'d.

use std::ffi::{c_char, c_int, c_uint, CStr};
use std::path::PathBuf;

use super::error::crun_output_handler;
use super::types::*;
use super::{
    arg_str, guard, guard_ptr, guard_void, libcrun_error_t, malloc_str, null_arg, opt_str,
};
use crate::container::{Container, ExecOptions, Runtime, RuntimeContext};
use crate::error::{Context, Error, Result};

/// Free a malloc'd C string (NULL-safe).
unsafe fn free_str(p: *mut c_char) {
    if !p.is_null() {
        libc::free(p.cast());
    }
}

fn new_container(c: Container) -> *mut libcrun_container_t {
    let (uid, gid) = c
        .spec
        .process()
        .as_ref()
        .map(|p| (p.user().uid(), p.user().gid()))
        .unwrap_or((0, 0));
    let annotations: Vec<(String, String)> = c
        .spec
        .annotations()
        .clone()
        .map(|a| a.into_iter().collect())
        .unwrap_or_default();
    let config_file = c
        .config_file
        .as_ref()
        .map(|p| malloc_str(&p.to_string_lossy()))
        .unwrap_or(std::ptr::null_mut());
    let content = malloc_str(&c.config_content);
    let def = Box::into_raw(Box::new(runtime_spec_schema_config_schema { spec: c.spec }));
    let ann = Box::into_raw(Box::new(string_map {
        entries: annotations,
    }));
    Box::into_raw(Box::new(libcrun_container_s {
        container_def: def,
        // SAFETY: geteuid/getegid cannot fail.
        host_uid: unsafe { libc::geteuid() },
        // SAFETY: as above.
        host_gid: unsafe { libc::getegid() },
        container_uid: uid,
        container_gid: gid,
        config_file,
        config_file_content: content,
        annotations: ann,
        proc_fd: -1,
        private_data: std::ptr::null_mut(),
        cleanup_private_data: None,
        context: std::ptr::null_mut(),
    }))
}

/// Rebuild the Rust container from a C one.
unsafe fn container_of(c: *mut libcrun_container_t) -> Result<Container> {
    if c.is_null() {
        return Err(null_arg("container"));
    }
    let c = &*c;
    if c.container_def.is_null() {
        return Err(Error::new(libc::EINVAL, "invalid container: no definition"));
    }
    let spec = (*c.container_def).spec.clone();
    let content = if c.config_file_content.is_null() {
        serde_json::to_string(&spec)
            .map_err(|e| Error::new(libc::EINVAL, format!("serialize configuration: {e}")))?
    } else {
        CStr::from_ptr(c.config_file_content)
            .to_string_lossy()
            .into_owned()
    };
    let config_file = if c.config_file.is_null() {
        None
    } else {
        Some(PathBuf::from(
            CStr::from_ptr(c.config_file).to_string_lossy().into_owned(),
        ))
    };
    Ok(Container {
        spec,
        config_file,
        config_content: content,
    })
}

/// Restores the previous output handler when dropped.
struct HandlerScope {
    prev: Option<(crate::log::OutputHandlerFn, *mut std::ffi::c_void)>,
}

impl Drop for HandlerScope {
    fn drop(&mut self) {
        if let Some((h, a)) = self.prev {
            crate::log::set_output_handler(Some(h), a);
        }
    }
}

/// Convert a C context.  Its `output_handler`, when set, receives messages for the duration
/// of the call.
unsafe fn context_of(
    ctx: *mut libcrun_context_t,
    id: Option<&str>,
) -> Result<(RuntimeContext, HandlerScope)> {
    if ctx.is_null() {
        return Err(null_arg("context"));
    }
    let c = &*ctx;
    let s = |p: *const c_char, n: &str| -> Result<Option<String>> {
        Ok(opt_str(p, n)?.map(str::to_string))
    };
    let id = match id {
        Some(i) => i.to_string(),
        None => s(c.id, "context->id")?.unwrap_or_default(),
    };
    let rc = RuntimeContext {
        state_root: s(c.state_root, "context->state_root")?,
        id,
        bundle: s(c.bundle, "context->bundle")?.map(PathBuf::from),
        console_socket: s(c.console_socket, "context->console_socket")?,
        pid_file: s(c.pid_file, "context->pid_file")?.map(PathBuf::from),
        notify_socket: s(c.notify_socket, "context->notify_socket")?,
        handler: s(c.handler, "context->handler")?,
        preserve_fds: c.preserve_fds.max(0),
        listen_fds: c.listen_fds.max(0),
        systemd_cgroup: c.systemd_cgroup,
        detach: c.detach,
        no_new_keyring: c.no_new_keyring,
        force_no_cgroup: c.force_no_cgroup,
        no_pivot: c.no_pivot,
    };
    let handler: crun_output_handler = c.output_handler;
    let scope = match handler {
        Some(h) => {
            let prev = crate::log::output_handler();
            crate::log::set_output_handler(Some(h), c.output_handler_arg);
            HandlerScope { prev: Some(prev) }
        }
        None => HandlerScope { prev: None },
    };
    Ok((rc, scope))
}

/// The context's handler manager (`libcrun_handler_manager_create`), if any.
///
/// # Safety
/// `ctx` is non-NULL and its `handler_manager` is NULL or a live manager from this library.
unsafe fn manager_of<'a>(
    ctx: *mut libcrun_context_t,
) -> Option<&'a crate::handlers::HandlerManager> {
    let m = (*ctx).handler_manager;
    if m.is_null() {
        None
    } else {
        Some(&(*m).manager)
    }
}

fn check_options(options: c_uint, allowed: c_uint) -> Result<()> {
    if options & !allowed != 0 {
        return Err(Error::new(
            libc::EINVAL,
            format!("internal error: unknown options {}", options & !allowed),
        ));
    }
    Ok(())
}

unsafe fn write_file(out: *mut libc::FILE, s: &str) -> Result<c_int> {
    if out.is_null() {
        return Err(null_arg("out"));
    }
    let n = libc::fwrite(s.as_ptr().cast(), 1, s.len(), out);
    if n != s.len() {
        return Err(Error::last_os_error("write to stream"));
    }
    libc::fflush(out);
    Ok(n as c_int)
}

/// Load a configuration file.  Returns NULL and sets `*err` on failure.
///
/// # Safety
/// `path` is a NUL-terminated string; `err` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn libcrun_container_load_from_file(
    path: *const c_char,
    err: *mut libcrun_error_t,
) -> *mut libcrun_container_t {
    guard_ptr("libcrun_container_load_from_file", err, || {
        let p = arg_str(path, "path")?;
        Ok(new_container(Container::load_from_file(
            std::path::Path::new(p),
        )?))
    })
}

/// Parse a configuration from JSON text.  Returns NULL and sets `*err` on failure.
///
/// # Safety
/// `json` is a NUL-terminated string; `err` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn libcrun_container_load_from_memory(
    json: *const c_char,
    err: *mut libcrun_error_t,
) -> *mut libcrun_container_t {
    guard_ptr("libcrun_container_load_from_memory", err, || {
        let j = arg_str(json, "json")?;
        Ok(new_container(Container::load_from_memory(j)?))
    })
}

/// Free a container returned by `libcrun_container_load_from_*` (NULL-safe).
///
/// # Safety
/// `c` is NULL or a container from this library, not freed before.
#[no_mangle]
pub unsafe extern "C" fn libcrun_container_free(c: *mut libcrun_container_t) {
    if c.is_null() {
        return;
    }
    guard_void((), || {
        let b = Box::from_raw(c);
        if let Some(f) = b.cleanup_private_data {
            f(b.private_data);
        }
        if !b.container_def.is_null() {
            drop(Box::from_raw(b.container_def));
        }
        if !b.annotations.is_null() {
            drop(Box::from_raw(b.annotations));
        }
        free_str(b.config_file);
        free_str(b.config_file_content);
    })
}

/// Run a container (create + start).  Without `context->detach` it waits and returns the
/// container's exit status, deleting it unless `LIBCRUN_RUN_OPTIONS_KEEP` is set.  With
/// `LIBCRUN_RUN_OPTIONS_PREFORK` the runtime runs in a forked, detached process and the result
/// comes back through a pipe: the caller is never the container's parent.
///
/// # Safety
/// Pointers are valid or NULL (EINVAL).
#[no_mangle]
pub unsafe extern "C" fn libcrun_container_run(
    context: *mut libcrun_context_t,
    container: *mut libcrun_container_t,
    options: c_uint,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_container_run", err, || {
        check_options(
            options,
            LIBCRUN_RUN_OPTIONS_PREFORK | LIBCRUN_RUN_OPTIONS_KEEP,
        )?;
        let (ctx, _scope) = context_of(context, None)?;
        let c = container_of(container)?;
        (*container).context = context;
        let keep = options & LIBCRUN_RUN_OPTIONS_KEEP != 0;
        if options & LIBCRUN_RUN_OPTIONS_PREFORK != 0 {
            crate::container::prefork::run(&ctx, &c, keep, manager_of(context))
        } else {
            Runtime::run_with_handlers(&ctx, &c, keep, manager_of(context))
        }
    })
}

/// Create a container: it waits for `libcrun_container_start`.  With
/// `LIBCRUN_CREATE_OPTIONS_PREFORK` the runtime runs in a forked, detached process and the
/// result comes back through a pipe: the container's init is never the caller's child.
///
/// # Safety
/// Pointers are valid or NULL (EINVAL).
#[no_mangle]
pub unsafe extern "C" fn libcrun_container_create(
    context: *mut libcrun_context_t,
    container: *mut libcrun_container_t,
    options: c_uint,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_container_create", err, || {
        check_options(options, LIBCRUN_CREATE_OPTIONS_PREFORK)?;
        let (ctx, _scope) = context_of(context, None)?;
        let c = container_of(container)?;
        (*container).context = context;
        if options & LIBCRUN_CREATE_OPTIONS_PREFORK != 0 {
            crate::container::prefork::create(&ctx, &c, manager_of(context)).map(|_| 0)
        } else {
            Runtime::create_with_handlers(&ctx, &c, manager_of(context)).map(|_| 0)
        }
    })
}

/// Start a created container.
///
/// # Safety
/// Pointers are valid or NULL (EINVAL).
#[no_mangle]
pub unsafe extern "C" fn libcrun_container_start(
    context: *mut libcrun_context_t,
    id: *const c_char,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_container_start", err, || {
        let id = arg_str(id, "id")?;
        let (ctx, _scope) = context_of(context, Some(id))?;
        Runtime::start(&ctx, id).map(|_| 0)
    })
}

/// Write the OCI state of `id` as JSON to `out`.
///
/// # Safety
/// Pointers are valid or NULL (EINVAL); `out` is an open `FILE *`.
#[no_mangle]
pub unsafe extern "C" fn libcrun_container_state(
    context: *mut libcrun_context_t,
    id: *const c_char,
    out: *mut libc::FILE,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_container_state", err, || {
        let id = arg_str(id, "id")?;
        let (ctx, _scope) = context_of(context, Some(id))?;
        let s = Runtime::state(&ctx, id)?;
        write_file(out, &(s + "\n")).map(|_| 0)
    })
}

/// Send `signal` (a name like `TERM`/`SIGTERM` or a number) to the container's init.
///
/// # Safety
/// Pointers are valid or NULL (EINVAL).
#[no_mangle]
pub unsafe extern "C" fn libcrun_container_kill(
    context: *mut libcrun_context_t,
    id: *const c_char,
    signal: *const c_char,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_container_kill", err, || {
        let id = arg_str(id, "id")?;
        let sig = arg_str(signal, "signal")?;
        let (ctx, _scope) = context_of(context, Some(id))?;
        Runtime::kill(&ctx, id, sig, false).map(|_| 0)
    })
}

/// Send `signal` to every process of the container.
///
/// # Safety
/// Pointers are valid or NULL (EINVAL).
#[no_mangle]
pub unsafe extern "C" fn libcrun_container_killall(
    context: *mut libcrun_context_t,
    id: *const c_char,
    signal: *const c_char,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_container_killall", err, || {
        let id = arg_str(id, "id")?;
        let sig = arg_str(signal, "signal")?;
        let (ctx, _scope) = context_of(context, Some(id))?;
        Runtime::kill(&ctx, id, sig, true).map(|_| 0)
    })
}

/// Delete a container (`force`: kill it first if running).  `def` is unused (may be NULL).
///
/// # Safety
/// Pointers are valid or NULL (EINVAL; `def` may be NULL).
#[no_mangle]
pub unsafe extern "C" fn libcrun_container_delete(
    context: *mut libcrun_context_t,
    def: *mut runtime_spec_schema_config_schema,
    id: *const c_char,
    force: bool,
    err: *mut libcrun_error_t,
) -> c_int {
    let _ = def;
    guard("libcrun_container_delete", err, || {
        let id = arg_str(id, "id")?;
        let (ctx, _scope) = context_of(context, Some(id))?;
        Runtime::delete(&ctx, id, force).map(|_| 0)
    })
}

fn exec_common(
    ctx: &RuntimeContext,
    id: &str,
    process: oci_spec::runtime::Process,
) -> Result<c_int> {
    let opts = ExecOptions {
        process,
        detach: ctx.detach,
        console_socket: ctx.console_socket.clone(),
        pid_file: ctx.pid_file.clone(),
        preserve_fds: ctx.preserve_fds,
        cgroup: None,
    };
    Runtime::exec(ctx, id, &opts)
}

fn load_process_file(path: &str) -> Result<oci_spec::runtime::Process> {
    let data = std::fs::read_to_string(path).map_err(|e| {
        Error::new(
            e.raw_os_error().unwrap_or(libc::EIO),
            format!("open `{path}`"),
        )
    })?;
    serde_json::from_str(&data).map_err(|e| {
        Error::new(
            libc::EINVAL,
            format!(
                "load process file `{path}`: line {} column {}: {e}",
                e.line(),
                e.column()
            ),
        )
    })
}

/// Run a process (described by a `process.json` file) in a running container.  Returns the
/// process's exit status, or 0 with `context->detach`.
///
/// # Safety
/// Pointers are valid or NULL (EINVAL).
#[no_mangle]
pub unsafe extern "C" fn libcrun_container_exec_process_file(
    context: *mut libcrun_context_t,
    id: *const c_char,
    path: *const c_char,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_container_exec_process_file", err, || {
        let id = arg_str(id, "id")?;
        let path = arg_str(path, "path")?;
        let (ctx, _scope) = context_of(context, Some(id))?;
        exec_common(&ctx, id, load_process_file(path)?)
    })
}

/// Run `process` in a running container.
///
/// # Safety
/// Pointers are valid or NULL (EINVAL).
#[no_mangle]
pub unsafe extern "C" fn libcrun_container_exec(
    context: *mut libcrun_context_t,
    id: *const c_char,
    process: *mut runtime_spec_schema_config_schema_process,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_container_exec", err, || {
        let id = arg_str(id, "id")?;
        if process.is_null() {
            return Err(null_arg("process"));
        }
        let (ctx, _scope) = context_of(context, Some(id))?;
        exec_common(&ctx, id, (*process).process.clone())
    })
}

/// Run a process in a running container with options (`struct_size` must be
/// `sizeof(struct libcrun_container_exec_options_s)`; `process` or `path` names the process).
///
/// # Safety
/// Pointers are valid or NULL (EINVAL).
#[no_mangle]
pub unsafe extern "C" fn libcrun_container_exec_with_options(
    context: *mut libcrun_context_t,
    id: *const c_char,
    opts: *mut libcrun_container_exec_options_s,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_container_exec_with_options", err, || {
        let id = arg_str(id, "id")?;
        if opts.is_null() {
            return Err(null_arg("opts"));
        }
        let o = &*opts;
        if o.struct_size != std::mem::size_of::<libcrun_container_exec_options_s>() {
            return Err(Error::new(
                libc::EINVAL,
                "invalid libcrun_container_exec_options_s struct",
            ));
        }
        if !o.cgroup.is_null() {
            let _ = arg_str(o.cgroup, "opts->cgroup")?;
        }
        let (ctx, _scope) = context_of(context, Some(id))?;
        let process = if !o.process.is_null() {
            (*o.process).process.clone()
        } else if !o.path.is_null() {
            load_process_file(arg_str(o.path, "opts->path")?)?
        } else {
            return Err(Error::new(
                libc::EINVAL,
                "invalid argument: both `opts->process` and `opts->path` are NULL",
            ));
        };
        exec_common(&ctx, id, process)
    })
}

/// Parse a `process` JSON object (for `libcrun_container_exec`); free it with
/// `libcrun_process_free`.  A crun-rs addition: crun's process struct comes from libocispec.
///
/// # Safety
/// `json` is a NUL-terminated string; `err` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn libcrun_process_from_json(
    json: *const c_char,
    err: *mut libcrun_error_t,
) -> *mut runtime_spec_schema_config_schema_process {
    guard_ptr("libcrun_process_from_json", err, || {
        let j = arg_str(json, "json")?;
        let process: oci_spec::runtime::Process = serde_json::from_str(j).map_err(|e| {
            Error::new(
                libc::EINVAL,
                format!(
                    "parse process: line {} column {}: {e}",
                    e.line(),
                    e.column()
                ),
            )
        })?;
        Ok(Box::into_raw(Box::new(
            runtime_spec_schema_config_schema_process { process },
        )))
    })
}

/// Free a process from `libcrun_process_from_json` (NULL-safe).
///
/// # Safety
/// `p` is NULL or from `libcrun_process_from_json`, not freed before.
#[no_mangle]
pub unsafe extern "C" fn libcrun_process_free(p: *mut runtime_spec_schema_config_schema_process) {
    if !p.is_null() {
        guard_void((), || drop(Box::from_raw(p)));
    }
}

/// Write the default configuration (`crun spec`; `root` false gives the rootless variant) to
/// `out`; returns the number of bytes written.
///
/// # Safety
/// `out` is an open `FILE *`.
#[no_mangle]
pub unsafe extern "C" fn libcrun_container_spec(
    root: bool,
    out: *mut libc::FILE,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_container_spec", err, || {
        write_file(out, &crate::container::config::default_spec_json(!root))
    })
}

/// Write the containers in `context->state_root` as a JSON array to `out`.
///
/// # Safety
/// Pointers are valid or NULL (EINVAL).
#[no_mangle]
pub unsafe extern "C" fn libcrun_write_json_containers_list(
    context: *mut libcrun_context_t,
    out: *mut libc::FILE,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_write_json_containers_list", err, || {
        let (ctx, _scope) = context_of(context, Some(""))?;
        let text = Runtime::list_json(&Runtime::list(&ctx)?)?;
        write_file(out, &(text + "\n")).map(|_| 0)
    })
}

/// The pids of the container's processes as a malloc'd array ending with 0.
///
/// # Safety
/// Pointers are valid or NULL (EINVAL).
#[no_mangle]
pub unsafe extern "C" fn libcrun_container_read_pids(
    context: *mut libcrun_context_t,
    id: *const c_char,
    recurse: bool,
    pids: *mut *mut libc::pid_t,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_container_read_pids", err, || {
        let id = arg_str(id, "id")?;
        if pids.is_null() {
            return Err(null_arg("pids"));
        }
        let (ctx, _scope) = context_of(context, Some(id))?;
        let list = Runtime::pids(&ctx, id, recurse)?;
        let arr =
            libc::calloc(list.len() + 1, std::mem::size_of::<libc::pid_t>()) as *mut libc::pid_t;
        if arr.is_null() {
            super::out_of_memory();
        }
        for (i, p) in list.iter().enumerate() {
            *arr.add(i) = *p;
        }
        *pids = arr;
        Ok(0)
    })
}

/// Freeze the container's processes.
///
/// # Safety
/// Pointers are valid or NULL (EINVAL).
#[no_mangle]
pub unsafe extern "C" fn libcrun_container_pause(
    context: *mut libcrun_context_t,
    id: *const c_char,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_container_pause", err, || {
        let id = arg_str(id, "id")?;
        let (ctx, _scope) = context_of(context, Some(id))?;
        Runtime::pause(&ctx, id, true).map(|_| 0)
    })
}

/// Thaw the container's processes.
///
/// # Safety
/// Pointers are valid or NULL (EINVAL).
#[no_mangle]
pub unsafe extern "C" fn libcrun_container_unpause(
    context: *mut libcrun_context_t,
    id: *const c_char,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_container_unpause", err, || {
        let id = arg_str(id, "id")?;
        let (ctx, _scope) = context_of(context, Some(id))?;
        Runtime::pause(&ctx, id, false).map(|_| 0)
    })
}

/// Apply new resources (`content`: a JSON `linux.resources` object of `len` bytes).
///
/// # Safety
/// Pointers are valid or NULL (EINVAL); `content` has `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn libcrun_container_update(
    context: *mut libcrun_context_t,
    id: *const c_char,
    content: *const c_char,
    len: usize,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_container_update", err, || {
        let id = arg_str(id, "id")?;
        if content.is_null() {
            return Err(null_arg("content"));
        }
        let bytes = std::slice::from_raw_parts(content.cast::<u8>(), len);
        let text = std::str::from_utf8(bytes)
            .map_err(|_| Error::new(libc::EINVAL, "update: content is not UTF-8"))?;
        let (ctx, _scope) = context_of(context, Some(id))?;
        Runtime::update(&ctx, id, text).map(|_| 0)
    })
}

/// Apply new resources read from `file` (a JSON `linux.resources` object).
///
/// # Safety
/// Pointers are valid or NULL (EINVAL).
#[no_mangle]
pub unsafe extern "C" fn libcrun_container_update_from_file(
    context: *mut libcrun_context_t,
    id: *const c_char,
    file: *const c_char,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_container_update_from_file", err, || {
        let id = arg_str(id, "id")?;
        let file = arg_str(file, "file")?;
        let text = std::fs::read_to_string(file).with_context(|| format!("read `{file}`"))?;
        let (ctx, _scope) = context_of(context, Some(id))?;
        Runtime::update(&ctx, id, &text).map(|_| 0)
    })
}

/// One resource to update (crun's `struct libcrun_update_value_s`): `section` (e.g.
/// `"memory"`), `name` (e.g. `"limit"`), `numeric` when `value` is a JSON number rather than a
/// string.
#[repr(C)]
pub struct libcrun_update_value_s {
    pub section: *const c_char,
    pub name: *const c_char,
    pub numeric: bool,
    pub value: *const c_char,
}

/// Apply the `len` resources in `values`.  An unknown section or name is EINVAL naming it.
///
/// # Safety
/// Pointers are valid or NULL (EINVAL); `values` has `len` entries.
#[no_mangle]
pub unsafe extern "C" fn libcrun_container_update_from_values(
    context: *mut libcrun_context_t,
    id: *const c_char,
    values: *mut libcrun_update_value_s,
    len: usize,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_container_update_from_values", err, || {
        let id = arg_str(id, "id")?;
        if values.is_null() && len > 0 {
            return Err(null_arg("values"));
        }
        let entries: &[libcrun_update_value_s] = if len == 0 {
            &[]
        } else {
            std::slice::from_raw_parts(values, len)
        };
        let mut parsed = Vec::with_capacity(len);
        for v in entries {
            parsed.push(crate::container::update::UpdateValue {
                section: arg_str(v.section, "section")?,
                name: arg_str(v.name, "name")?,
                numeric: v.numeric,
                value: arg_str(v.value, "value")?,
            });
        }
        let json = crate::container::update::resources_json(&parsed)?;
        let (ctx, _scope) = context_of(context, Some(id))?;
        Runtime::update(&ctx, id, &json).map(|_| 0)
    })
}
