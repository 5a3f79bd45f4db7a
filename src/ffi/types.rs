//! The C structs of libcrun's public API, with crun's field order and sizes (x86_64 offsets in
//! comments; `tests/abi.rs` and `c-tests/test_abi.c` check them).  Shared by the container,
//! status and handler parts of the C API.
#![allow(dead_code)]

use std::ffi::{c_char, c_int, c_uint, c_ulonglong, c_void};

use super::error::crun_output_handler;

/// The parsed OCI configuration.  Opaque to C: crun-rs keeps the spec in Rust.
pub struct runtime_spec_schema_config_schema {
    pub(crate) spec: oci_spec::runtime::Spec,
}

/// An OCI `process` object.  Opaque to C (see `libcrun_process_from_json`, if present).
pub struct runtime_spec_schema_config_schema_process {
    pub(crate) process: oci_spec::runtime::Process,
}

/// The container's annotations.  Opaque to C.
pub struct string_map {
    pub(crate) entries: Vec<(String, String)>,
}

/// The handler manager.  Opaque to C (`libcrun_handler_manager_create` / `_free`).
pub struct custom_handler_manager_s {
    pub(crate) manager: crate::handlers::HandlerManager,
}

/// `struct libcrun_context_s` (120 bytes).  The caller owns every string.
#[repr(C)]
pub struct libcrun_context_s {
    /* 0 */ pub state_root: *const c_char,
    /* 8 */ pub id: *const c_char,
    /* 16 */ pub bundle: *const c_char,
    /* 24 */ pub console_socket: *const c_char,
    /* 32 */ pub pid_file: *const c_char,
    /* 40 */ pub notify_socket: *const c_char,
    /* 48 */ pub handler: *const c_char,
    /* 56 */ pub preserve_fds: c_int,
    /* 60 */ pub listen_fds: c_int,
    /* 64 */ pub output_handler: crun_output_handler,
    /* 72 */ pub output_handler_arg: *mut c_void,
    /* 80 */ pub fifo_exec_wait_fd: c_int,
    /* 84 */ pub systemd_cgroup: bool,
    /* 85 */ pub detach: bool,
    /* 86 */ pub no_new_keyring: bool,
    /* 87 */ pub force_no_cgroup: bool,
    /* 88 */ pub no_pivot: bool,
    /* 96 */ pub argv: *mut *mut c_char,
    /* 104 */ pub argc: c_int,
    /* 112 */ pub handler_manager: *mut custom_handler_manager_s,
}

/// `libcrun_context_t`.
pub type libcrun_context_t = libcrun_context_s;

/// `struct libcrun_container_s` (80 bytes).
#[repr(C)]
pub struct libcrun_container_s {
    /* 0 */ pub container_def: *mut runtime_spec_schema_config_schema,
    /* 8 */ pub host_uid: libc::uid_t,
    /* 12 */ pub host_gid: libc::gid_t,
    /* 16 */ pub container_uid: libc::uid_t,
    /* 20 */ pub container_gid: libc::gid_t,
    /* 24 */ pub config_file: *mut c_char,
    /* 32 */ pub config_file_content: *mut c_char,
    /* 40 */ pub annotations: *mut string_map,
    /* 48 */ pub proc_fd: c_int,
    /* 56 */ pub private_data: *mut c_void,
    /* 64 */
    pub cleanup_private_data: Option<unsafe extern "C" fn(private_data: *mut c_void)>,
    /* 72 */ pub context: *mut libcrun_context_s,
}

/// `libcrun_container_t`.
pub type libcrun_container_t = libcrun_container_s;

/// `struct libcrun_container_status_s` (88 bytes): the state file's contents.
#[repr(C)]
pub struct libcrun_container_status_s {
    /* 0 */ pub pid: libc::pid_t,
    /* 8 */ pub process_start_time: c_ulonglong,
    /* 16 */ pub bundle: *mut c_char,
    /* 24 */ pub rootfs: *mut c_char,
    /* 32 */ pub cgroup_path: *mut c_char,
    /* 40 */ pub scope: *mut c_char,
    /* 48 */ pub systemd_cgroup: c_int,
    /* 56 */ pub created: *mut c_char,
    /* 64 */ pub detached: c_int,
    /* 72 */ pub external_descriptors: *mut c_char,
    /* 80 */ pub owner: *mut c_char,
}

/// `libcrun_container_status_t`.
pub type libcrun_container_status_t = libcrun_container_status_s;

/// `struct libcrun_container_list_s`: a singly linked list of container names.
#[repr(C)]
pub struct libcrun_container_list_s {
    pub next: *mut libcrun_container_list_s,
    pub name: *mut c_char,
}

/// `libcrun_container_list_t`.
pub type libcrun_container_list_t = libcrun_container_list_s;

/// `struct libcrun_container_exec_options_s` (40 bytes); `struct_size` must be its `sizeof`.
#[repr(C)]
pub struct libcrun_container_exec_options_s {
    pub struct_size: usize,
    pub process: *mut runtime_spec_schema_config_schema_process,
    pub path: *const c_char,
    pub cgroup: *const c_char,
    pub merge_env: bool,
}

/// `LIBCRUN_RUN_OPTIONS_PREFORK`.
pub const LIBCRUN_RUN_OPTIONS_PREFORK: c_uint = 1 << 0;
/// `LIBCRUN_RUN_OPTIONS_KEEP`.
pub const LIBCRUN_RUN_OPTIONS_KEEP: c_uint = 1 << 1;
/// `LIBCRUN_CREATE_OPTIONS_PREFORK`.
pub const LIBCRUN_CREATE_OPTIONS_PREFORK: c_uint = 1 << 0;

/// `enum handler_configure_phase`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum handler_configure_phase {
    HANDLER_CONFIGURE_BEFORE_MOUNTS = 1,
    HANDLER_CONFIGURE_AFTER_MOUNTS = 2,
    HANDLER_CONFIGURE_MOUNTS = 3,
    HANDLER_CONFIGURE_BEFORE_USERNS = 4,
}

/// `struct custom_handler_s`: crun's handler vtable, 11 members in crun's order (88 bytes).
#[repr(C)]
pub struct custom_handler_s {
    pub name: *const c_char,
    pub feature_string: *const c_char,
    pub alias: *const c_char,
    pub load: Option<
        unsafe extern "C" fn(cookie: *mut *mut c_void, err: *mut super::libcrun_error_t) -> c_int,
    >,
    pub unload: Option<
        unsafe extern "C" fn(cookie: *mut c_void, err: *mut super::libcrun_error_t) -> c_int,
    >,
    pub run_func: Option<
        unsafe extern "C" fn(
            cookie: *mut c_void,
            container: *mut libcrun_container_t,
            pathname: *const c_char,
            argv: *const *mut c_char,
        ) -> c_int,
    >,
    pub exec_func: Option<
        unsafe extern "C" fn(
            cookie: *mut c_void,
            container: *mut libcrun_container_t,
            pathname: *const c_char,
            argv: *const *mut c_char,
        ) -> c_int,
    >,
    pub configure_container: Option<
        unsafe extern "C" fn(
            cookie: *mut c_void,
            phase: handler_configure_phase,
            context: *mut libcrun_context_t,
            container: *mut libcrun_container_t,
            rootfs: *const c_char,
            err: *mut super::libcrun_error_t,
        ) -> c_int,
    >,
    pub can_handle_container: Option<
        unsafe extern "C" fn(
            container: *mut libcrun_container_t,
            err: *mut super::libcrun_error_t,
        ) -> c_int,
    >,
    pub modify_oci_configuration: Option<
        unsafe extern "C" fn(
            cookie: *mut c_void,
            context: *mut libcrun_context_t,
            def: *mut runtime_spec_schema_config_schema,
            err: *mut super::libcrun_error_t,
        ) -> c_int,
    >,
    pub close_fds: Option<
        unsafe extern "C" fn(
            cookie: *mut c_void,
            container: *mut libcrun_container_t,
            preserve_fds: c_int,
            err: *mut super::libcrun_error_t,
        ) -> c_int,
    >,
}

/// What an out-of-tree handler `.so` exports as `run_oci_handler_get_handler`.
pub type run_oci_get_handler_cb = Option<unsafe extern "C" fn() -> *mut custom_handler_s>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn layouts_match_crun() {
        assert_eq!(size_of::<libcrun_context_s>(), 120);
        assert_eq!(offset_of!(libcrun_context_s, output_handler), 64);
        assert_eq!(offset_of!(libcrun_context_s, fifo_exec_wait_fd), 80);
        assert_eq!(offset_of!(libcrun_context_s, no_pivot), 88);
        assert_eq!(offset_of!(libcrun_context_s, argv), 96);
        assert_eq!(offset_of!(libcrun_context_s, handler_manager), 112);
        assert_eq!(size_of::<libcrun_container_s>(), 80);
        assert_eq!(offset_of!(libcrun_container_s, annotations), 40);
        assert_eq!(offset_of!(libcrun_container_s, proc_fd), 48);
        assert_eq!(offset_of!(libcrun_container_s, context), 72);
        assert_eq!(size_of::<libcrun_container_status_s>(), 88);
        assert_eq!(offset_of!(libcrun_container_status_s, systemd_cgroup), 48);
        assert_eq!(offset_of!(libcrun_container_status_s, owner), 80);
        assert_eq!(size_of::<libcrun_container_exec_options_s>(), 40);
        assert_eq!(size_of::<custom_handler_s>(), 88);
        assert_eq!(size_of::<super::super::libcrun_error_s>(), 16);
    }
}
