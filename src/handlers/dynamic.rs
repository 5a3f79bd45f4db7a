//! Out-of-tree handlers: `.so` files exporting `run_oci_handler_get_handler`, which returns a
//! C `struct custom_handler_s *` (crun's plug-in ABI), and the [`Library`] wrapper around
//! `dlopen` that the krun handler uses too.
//!
//! [`DynamicHandler`] adapts such a vtable to [`LoadedHandler`]: for each callback it builds
//! temporary `libcrun_container_s` / `libcrun_context_s` structs ([`CContainer`]) that point at
//! a copy of the container's configuration.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::Path;
use std::sync::Arc;

use super::{ContainerInfo, LoadedHandler, Phase, SharedLibrary, VtablePtr};
use crate::error::{Error, Result};
use crate::ffi::types::{
    custom_handler_s, libcrun_container_s, libcrun_context_s, run_oci_get_handler_cb,
    runtime_spec_schema_config_schema, string_map,
};
use crate::ffi::{libcrun_error_s, libcrun_error_t};

/// A `dlopen`ed shared library, `dlclose`d on drop.
#[derive(Debug)]
pub struct Library {
    handle: *mut c_void,
    name: String,
}

// SAFETY: a dlopen handle may be used and closed from any thread.
unsafe impl Send for Library {}
// SAFETY: dlsym on a shared handle is thread-safe.
unsafe impl Sync for Library {}

/// The text of the last `dlerror()`, or a placeholder.
fn dlerror_text() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated thread-local string.
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        "unknown dlopen error".to_string()
    } else {
        // SAFETY: non-NULL, NUL-terminated.
        unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
    }
}

impl Library {
    /// `dlopen(name, RTLD_NOW)`.  On failure the error carries `dlerror()`'s text (errno 0,
    /// like crun: the loader gives no errno).
    pub fn open(name: &str) -> std::result::Result<Self, String> {
        let c = CString::new(name).map_err(|_| format!("`{name}` contains a NUL byte"))?;
        // SAFETY: c is a valid C string; clearing dlerror first makes the text ours.
        let handle = unsafe {
            libc::dlerror();
            libc::dlopen(c.as_ptr(), libc::RTLD_NOW)
        };
        if handle.is_null() {
            return Err(dlerror_text());
        }
        Ok(Library {
            handle,
            name: name.to_string(),
        })
    }

    /// The name it was opened with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address of `symbol`, if exported.
    pub fn symbol(&self, symbol: &str) -> Option<*mut c_void> {
        let c = CString::new(symbol).ok()?;
        // SAFETY: handle is a live dlopen handle; c is a valid C string.
        let p = unsafe { libc::dlsym(self.handle, c.as_ptr()) };
        (!p.is_null()).then_some(p)
    }

    /// `symbol` as a function pointer of type `F`.
    ///
    /// # Safety
    /// `F` must be an `extern "C" fn` type matching the symbol's real signature.
    pub unsafe fn function<F: Copy>(&self, symbol: &str) -> Option<F> {
        assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<*mut c_void>());
        self.symbol(symbol)
            .map(|p| std::mem::transmute_copy::<*mut c_void, F>(&p))
    }
}

impl Drop for Library {
    fn drop(&mut self) {
        // SAFETY: handle came from dlopen and is closed once.
        unsafe { libc::dlclose(self.handle) };
    }
}

/// Copy a C string that may be NULL.
///
/// # Safety
/// `p` is NULL or a valid NUL-terminated string.
unsafe fn opt_cstr(p: *const c_char) -> Option<String> {
    (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned())
}

/// A handler loaded from a `.so`, as the manager keeps it.
pub(crate) struct DynamicEntry {
    pub(crate) lib: SharedLibrary,
    pub(crate) vtable: VtablePtr,
    pub(crate) name: String,
    pub(crate) alias: Option<String>,
    pub(crate) feature: Option<String>,
}

impl DynamicEntry {
    /// `dlopen` `path` and ask it for its vtable.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let display = path.display().to_string();
        let lib = Library::open(&display)
            .map_err(|e| Error::msg(format!("cannot load `{display}`: {e}")))?;
        // SAFETY: the plug-in ABI declares `struct custom_handler_s *run_oci_handler_get_handler()`.
        let cb: run_oci_get_handler_cb = unsafe {
            lib.function::<unsafe extern "C" fn() -> *mut custom_handler_s>(
                "run_oci_handler_get_handler",
            )
        };
        let Some(cb) = cb else {
            return Err(Error::msg(format!(
                "cannot find symbol `run_oci_handler_get_handler` in `{display}`"
            )));
        };
        // SAFETY: calling the plug-in's exported constructor.
        let vt = unsafe { cb() };
        if vt.is_null() {
            return Err(Error::msg(format!(
                "the callback `run_oci_handler_get_handler` of `{display}` didn't return a handler"
            )));
        }
        // SAFETY: vt points to the plug-in's vtable, valid while lib is loaded.
        let (name, alias, feature) = unsafe {
            (
                opt_cstr((*vt).name),
                opt_cstr((*vt).alias),
                opt_cstr((*vt).feature_string),
            )
        };
        let Some(name) = name else {
            return Err(Error::new(
                libc::EINVAL,
                format!("the handler in `{display}` has no name"),
            ));
        };
        Ok(DynamicEntry {
            lib: Arc::new(lib),
            vtable: VtablePtr(vt),
            name,
            alias,
            feature,
        })
    }

    /// Ask the plug-in's `can_handle_container` (absent: no).
    pub(crate) fn can_handle(&self, spec: &oci_spec::runtime::Spec) -> Result<bool> {
        // SAFETY: the vtable is valid while self.lib is loaded.
        let Some(f) = (unsafe { (*self.vtable.0).can_handle_container }) else {
            return Ok(false);
        };
        let mut c = CContainer::new(spec.clone(), "", Path::new("."), Path::new("."), None)?;
        let mut err: libcrun_error_t = std::ptr::null_mut();
        // SAFETY: c's pointers live until the end of this function; err is our out slot.
        let ret = unsafe { f(c.container_ptr(), &mut err) };
        let ret = take_c_error(ret, err, || {
            format!("handler `{}`: can_handle_container", self.name)
        })?;
        Ok(ret > 0)
    }

    /// Call the plug-in's `load` and wrap the instance.
    pub(crate) fn load(&self) -> Result<DynamicHandler> {
        let mut cookie: *mut c_void = std::ptr::null_mut();
        // SAFETY: vtable valid while lib loaded.
        if let Some(load) = unsafe { (*self.vtable.0).load } {
            let mut err: libcrun_error_t = std::ptr::null_mut();
            // SAFETY: cookie and err are valid out-parameters.
            let ret = unsafe { load(&mut cookie, &mut err) };
            take_c_error(ret, err, || format!("load handler `{}`", self.name))?;
        }
        Ok(DynamicHandler {
            lib: Arc::clone(&self.lib),
            vtable: self.vtable,
            cookie,
            name: self.name.clone(),
        })
    }
}

/// Turn a C callback's `(ret, err)` into a [`Result`]: a negative `ret` is a failure whose
/// `*err` (if set) is taken over and freed; without `*err` the failure is `-ret - 1` as an
/// errno (crun's convention) with `what()` as the message.
pub(crate) fn take_c_error<F, S>(ret: c_int, err: libcrun_error_t, what: F) -> Result<c_int>
where
    F: FnOnce() -> S,
    S: std::fmt::Display,
{
    let owned = if err.is_null() {
        None
    } else {
        // SAFETY: a C callback sets *err to a malloc'd libcrun_error_s with a malloc'd msg
        // (crun's contract); we take both over and free them.
        unsafe {
            let s: &libcrun_error_s = &*err;
            let msg = opt_cstr(s.msg).unwrap_or_default();
            let status = s.status;
            libc::free(s.msg.cast());
            libc::free(err.cast());
            Some((status, msg))
        }
    };
    if ret >= 0 {
        return Ok(ret);
    }
    Err(match owned {
        Some((status, msg)) => Error::new(status, msg),
        None => Error::new(-ret - 1, what().to_string()),
    })
}

/// Temporary C view of a container for calling a C handler: owns every string and struct the
/// pointers refer to.
pub(crate) struct CContainer {
    schema: Box<runtime_spec_schema_config_schema>,
    annotations: Box<string_map>,
    _strings: Vec<CString>,
    context: Box<libcrun_context_s>,
    container: Box<libcrun_container_s>,
}

impl CContainer {
    pub(crate) fn new(
        spec: oci_spec::runtime::Spec,
        id: &str,
        bundle: &Path,
        state_dir: &Path,
        handler: Option<&str>,
    ) -> Result<Self> {
        let cs = |s: &str, what: &str| {
            CString::new(s)
                .map_err(|_| Error::new(libc::EINVAL, format!("{what} `{s}` contains a NUL byte")))
        };
        let id_c = cs(id, "container id")?;
        let bundle_c = cs(&bundle.to_string_lossy(), "bundle")?;
        let state_root = state_dir
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let root_c = cs(&state_root, "state root")?;
        let config_c = cs(&bundle.join("config.json").to_string_lossy(), "config file")?;
        let handler_c = handler.map(|h| cs(h, "handler")).transpose()?;
        let annotations = Box::new(string_map {
            entries: spec
                .annotations()
                .as_ref()
                .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        });
        let mut schema = Box::new(runtime_spec_schema_config_schema { spec });
        let mut context = Box::new(libcrun_context_s {
            state_root: root_c.as_ptr(),
            id: id_c.as_ptr(),
            bundle: bundle_c.as_ptr(),
            console_socket: std::ptr::null(),
            pid_file: std::ptr::null(),
            notify_socket: std::ptr::null(),
            handler: handler_c.as_ref().map_or(std::ptr::null(), |h| h.as_ptr()),
            preserve_fds: 0,
            listen_fds: 0,
            output_handler: None,
            output_handler_arg: std::ptr::null_mut(),
            fifo_exec_wait_fd: -1,
            systemd_cgroup: false,
            detach: false,
            no_new_keyring: false,
            force_no_cgroup: false,
            no_pivot: false,
            argv: std::ptr::null_mut(),
            argc: 0,
            handler_manager: std::ptr::null_mut(),
        });
        let mut annotations = annotations;
        let container = Box::new(libcrun_container_s {
            container_def: &mut *schema,
            // SAFETY: plain getters.
            host_uid: unsafe { libc::geteuid() },
            host_gid: unsafe { libc::getegid() },
            container_uid: 0,
            container_gid: 0,
            config_file: config_c.as_ptr() as *mut c_char,
            config_file_content: std::ptr::null_mut(),
            annotations: &mut *annotations,
            proc_fd: -1,
            private_data: std::ptr::null_mut(),
            cleanup_private_data: None,
            context: &mut *context,
        });
        let mut strings = vec![id_c, bundle_c, root_c, config_c];
        strings.extend(handler_c);
        Ok(CContainer {
            schema,
            annotations,
            _strings: strings,
            context,
            container,
        })
    }

    pub(crate) fn container_ptr(&mut self) -> *mut libcrun_container_s {
        &mut *self.container
    }

    pub(crate) fn context_ptr(&mut self) -> *mut libcrun_context_s {
        &mut *self.context
    }

    pub(crate) fn schema_ptr(&mut self) -> *mut runtime_spec_schema_config_schema {
        &mut *self.schema
    }

    /// The (possibly callback-modified) configuration.
    pub(crate) fn into_spec(self) -> oci_spec::runtime::Spec {
        let _ = &self.annotations;
        self.schema.spec
    }
}

/// A C plug-in handler instance: its vtable, the cookie `load` returned and a reference to the
/// library (unloaded when the last instance and the manager are gone).
pub struct DynamicHandler {
    lib: SharedLibrary,
    vtable: VtablePtr,
    cookie: *mut c_void,
    name: String,
}

impl DynamicHandler {
    fn vt(&self) -> &custom_handler_s {
        // SAFETY: the vtable is valid while self.lib is loaded, which self keeps alive.
        unsafe { &*self.vtable.0 }
    }

    fn c_container(&self, info: &ContainerInfo) -> Result<CContainer> {
        CContainer::new(
            info.spec.clone(),
            info.id,
            info.bundle,
            info.state_dir,
            Some(&self.name),
        )
    }

    fn call_exec(
        &mut self,
        f: Option<
            unsafe extern "C" fn(
                *mut c_void,
                *mut libcrun_container_s,
                *const c_char,
                *const *mut c_char,
            ) -> c_int,
        >,
        what: &str,
        info: &ContainerInfo,
        pathname: &str,
        argv: &[String],
    ) -> Result<i32> {
        let Some(f) = f else {
            crate::bail!(
                libc::ENOTSUP,
                "the handler `{}` does not support {what}",
                self.name
            );
        };
        let mut c = self.c_container(info)?;
        let path = CString::new(pathname)
            .map_err(|_| Error::new(libc::EINVAL, "the executable path contains a NUL byte"))?;
        let args: Vec<CString> = argv
            .iter()
            .map(|a| {
                CString::new(a.as_str())
                    .map_err(|_| Error::new(libc::EINVAL, "an argument contains a NUL byte"))
            })
            .collect::<Result<_>>()?;
        let mut ptrs: Vec<*mut c_char> = args.iter().map(|a| a.as_ptr() as *mut c_char).collect();
        ptrs.push(std::ptr::null_mut());
        // SAFETY: every pointer refers to data alive for the call.
        let ret = unsafe { f(self.cookie, c.container_ptr(), path.as_ptr(), ptrs.as_ptr()) };
        if ret == 0 {
            return Ok(0);
        }
        Err(Error::new(
            if ret < 0 { -ret } else { 0 },
            format!(
                "exec container process failed with handler as `{}`",
                self.name
            ),
        ))
    }
}

impl LoadedHandler for DynamicHandler {
    fn name(&self) -> &str {
        &self.name
    }

    fn modify_oci_configuration(&mut self, spec: &mut oci_spec::runtime::Spec) -> Result<()> {
        let Some(f) = self.vt().modify_oci_configuration else {
            return Ok(());
        };
        let mut c = CContainer::new(
            spec.clone(),
            "",
            Path::new("."),
            Path::new("."),
            Some(&self.name),
        )?;
        let mut err: libcrun_error_t = std::ptr::null_mut();
        // SAFETY: pointers owned by c for the call.
        let ret = unsafe { f(self.cookie, c.context_ptr(), c.schema_ptr(), &mut err) };
        take_c_error(ret, err, || {
            format!("handler `{}`: modify_oci_configuration", self.name)
        })?;
        *spec = c.into_spec();
        Ok(())
    }

    fn configure_container(
        &mut self,
        phase: Phase,
        info: &ContainerInfo,
        rootfs: &Path,
    ) -> Result<()> {
        let Some(f) = self.vt().configure_container else {
            return Ok(());
        };
        let mut c = self.c_container(info)?;
        let root = CString::new(rootfs.as_os_str().as_encoded_bytes())
            .map_err(|_| Error::new(libc::EINVAL, "the rootfs path contains a NUL byte"))?;
        let mut err: libcrun_error_t = std::ptr::null_mut();
        // SAFETY: pointers owned by c and root for the call.
        let ret = unsafe {
            f(
                self.cookie,
                phase.to_c(),
                c.context_ptr(),
                c.container_ptr(),
                root.as_ptr(),
                &mut err,
            )
        };
        take_c_error(ret, err, || {
            format!("handler `{}`: configure_container", self.name)
        })?;
        Ok(())
    }

    fn close_fds(&mut self, preserve_fds: i32) -> Result<()> {
        let Some(f) = self.vt().close_fds else {
            return Ok(());
        };
        let spec: oci_spec::runtime::Spec = serde_json::from_str(r#"{"ociVersion":"1.0.0"}"#)
            .map_err(|e| Error::msg(e.to_string()))?;
        let mut c = CContainer::new(spec, "", Path::new("."), Path::new("."), Some(&self.name))?;
        let mut err: libcrun_error_t = std::ptr::null_mut();
        // SAFETY: pointers owned by c for the call.
        let ret = unsafe { f(self.cookie, c.container_ptr(), preserve_fds, &mut err) };
        take_c_error(ret, err, || format!("handler `{}`: close_fds", self.name))?;
        Ok(())
    }

    fn run(&mut self, info: &ContainerInfo, pathname: &str, argv: &[String]) -> Result<i32> {
        let f = self.vt().run_func;
        self.call_exec(f, "run", info, pathname, argv)
    }

    fn supports_exec(&self) -> bool {
        self.vt().exec_func.is_some()
    }

    fn exec(&mut self, info: &ContainerInfo, pathname: &str, argv: &[String]) -> Result<i32> {
        let f = self.vt().exec_func;
        self.call_exec(f, "exec", info, pathname, argv)
    }
}

impl Drop for DynamicHandler {
    fn drop(&mut self) {
        if let Some(unload) = self.vt().unload {
            let mut err: libcrun_error_t = std::ptr::null_mut();
            // SAFETY: cookie came from this vtable's load; err is our out slot.
            let ret = unsafe { unload(self.cookie, &mut err) };
            if let Err(e) = take_c_error(ret, err, || format!("unload handler `{}`", self.name)) {
                crate::log::warning(&e.to_string());
            }
        }
        let _ = &self.lib;
    }
}
