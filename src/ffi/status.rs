//! The state-directory half of libcrun's C API (crun's `status.h`).

use std::ffi::{c_char, c_int, CStr};

use super::types::*;
use super::{arg_str, guard, guard_void, libcrun_error_t, malloc_str, null_arg, opt_str};
use crate::container::status::{self, Status};

unsafe fn take(p: *mut c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

unsafe fn free_str(p: &mut *mut c_char) {
    if !p.is_null() {
        libc::free((*p).cast());
        *p = std::ptr::null_mut();
    }
}

fn opt_malloc(s: &str) -> *mut c_char {
    malloc_str(s)
}

/// The state directory of `id`: `<state_root>/<id>` (default root: `$XDG_RUNTIME_DIR/crun`
/// for non-root users, else `/run/crun`).  `*out` is malloc'd.
///
/// # Safety
/// `out` points to a `char *`; strings are NUL-terminated (`state_root` may be NULL).
#[no_mangle]
pub unsafe extern "C" fn libcrun_get_state_directory(
    out: *mut *mut c_char,
    state_root: *const c_char,
    id: *const c_char,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_get_state_directory", err, || {
        if out.is_null() {
            return Err(null_arg("out"));
        }
        let root = opt_str(state_root, "state_root")?;
        let id = arg_str(id, "id")?;
        let root_dir = status::ensure_state_root(root)?;
        status::validate_id(id)?;
        *out = malloc_str(&root_dir.join(id).to_string_lossy());
        Ok(0)
    })
}

/// Read `<state_root>/<id>/status` into `*st` (strings are malloc'd; release them with
/// `libcrun_free_container_status`).
///
/// # Safety
/// `st` points to a writable struct; strings are NUL-terminated (`state_root` may be NULL).
#[no_mangle]
pub unsafe extern "C" fn libcrun_read_container_status(
    st: *mut libcrun_container_status_t,
    state_root: *const c_char,
    id: *const c_char,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_read_container_status", err, || {
        if st.is_null() {
            return Err(null_arg("status"));
        }
        let root = opt_str(state_root, "state_root")?;
        let id = arg_str(id, "id")?;
        let s = status::read_status(root, id)?;
        let out = &mut *st;
        out.pid = s.pid;
        out.process_start_time = s.process_start_time;
        out.bundle = opt_malloc(&s.bundle);
        out.rootfs = opt_malloc(&s.rootfs);
        out.cgroup_path = opt_malloc(&s.cgroup_path);
        out.scope = opt_malloc(&s.scope);
        out.systemd_cgroup = s.systemd_cgroup as c_int;
        out.created = opt_malloc(&s.created);
        out.detached = s.detached as c_int;
        out.external_descriptors = opt_malloc(&s.external_descriptors);
        out.owner = opt_malloc(&s.owner);
        Ok(0)
    })
}

/// Write `*st` as `<state_root>/<id>/status` (the directory must exist).
///
/// # Safety
/// `st` points to a valid struct whose strings are NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn libcrun_write_container_status(
    state_root: *const c_char,
    id: *const c_char,
    st: *mut libcrun_container_status_t,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_write_container_status", err, || {
        if st.is_null() {
            return Err(null_arg("status"));
        }
        let root = opt_str(state_root, "state_root")?;
        let id = arg_str(id, "id")?;
        let s = &*st;
        let v = Status {
            pid: s.pid,
            process_start_time: s.process_start_time,
            cgroup_path: take(s.cgroup_path),
            scope: take(s.scope),
            rootfs: take(s.rootfs),
            systemd_cgroup: s.systemd_cgroup != 0,
            bundle: take(s.bundle),
            created: take(s.created),
            owner: take(s.owner),
            detached: s.detached != 0,
            external_descriptors: take(s.external_descriptors),
        };
        status::write_status(root, id, &v).map(|_| 0)
    })
}

/// Free the strings of a status filled by `libcrun_read_container_status` (not the struct).
///
/// # Safety
/// `st` is NULL or a struct whose strings are NULL or malloc'd.
#[no_mangle]
pub unsafe extern "C" fn libcrun_free_container_status(st: *mut libcrun_container_status_t) {
    if st.is_null() {
        return;
    }
    guard_void((), || {
        let s = &mut *st;
        free_str(&mut s.bundle);
        free_str(&mut s.rootfs);
        free_str(&mut s.cgroup_path);
        free_str(&mut s.scope);
        free_str(&mut s.created);
        free_str(&mut s.external_descriptors);
        free_str(&mut s.owner);
    })
}

/// 1 if the status's process is alive (same start time), 0 otherwise.
///
/// # Safety
/// `st` points to a valid struct.
#[no_mangle]
pub unsafe extern "C" fn libcrun_is_container_running(
    st: *mut libcrun_container_status_t,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_is_container_running", err, || {
        if st.is_null() {
            return Err(null_arg("status"));
        }
        let s = Status {
            pid: (*st).pid,
            process_start_time: (*st).process_start_time,
            ..Default::default()
        };
        Ok(status::is_running(&s) as c_int)
    })
}

/// Remove the state directory of `id`.
///
/// # Safety
/// Strings are NUL-terminated (`state_root` may be NULL).
#[no_mangle]
pub unsafe extern "C" fn libcrun_container_delete_status(
    state_root: *const c_char,
    id: *const c_char,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_container_delete_status", err, || {
        let root = opt_str(state_root, "state_root")?;
        let id = arg_str(id, "id")?;
        status::delete_status(root, id).map(|_| 0)
    })
}

/// The containers in `state_root` as a malloc'd linked list (NULL when there are none);
/// release it with `libcrun_free_containers_list`.  Returns the number of entries.
///
/// # Safety
/// `ret` points to a writable pointer; `state_root` is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn libcrun_get_containers_list(
    ret: *mut *mut libcrun_container_list_t,
    state_root: *const c_char,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_get_containers_list", err, || {
        if ret.is_null() {
            return Err(null_arg("ret"));
        }
        let root = opt_str(state_root, "state_root")?;
        let names: Vec<String> = status::list(root)?;
        let mut head: *mut libcrun_container_list_t = std::ptr::null_mut();
        for n in names.iter().rev() {
            let node = libc::malloc(std::mem::size_of::<libcrun_container_list_t>())
                as *mut libcrun_container_list_t;
            if node.is_null() {
                super::out_of_memory();
            }
            (*node).name = malloc_str(n);
            (*node).next = head;
            head = node;
        }
        *ret = head;
        Ok(names.len() as c_int)
    })
}

/// Free a list from `libcrun_get_containers_list` (NULL-safe).
///
/// # Safety
/// `list` is NULL or from `libcrun_get_containers_list`.
#[no_mangle]
pub unsafe extern "C" fn libcrun_free_containers_list(list: *mut libcrun_container_list_t) {
    let mut p = list;
    while !p.is_null() {
        let next = (*p).next;
        if !(*p).name.is_null() {
            libc::free((*p).name.cast());
        }
        libc::free(p.cast());
        p = next;
    }
}

/// The OCI status of `id` as `crun state` reports it: `*container_status` points to a static
/// string (`created`, `running`, `paused` or `stopped`) and `*running` is 1 when the process is
/// alive.  `status` is the container's status as `libcrun_read_container_status` filled it.
///
/// # Safety
/// `status`, `container_status` and `running` point to valid memory; strings are NULL or
/// NUL-terminated (`state_root` may be NULL).
#[no_mangle]
pub unsafe extern "C" fn libcrun_get_container_state_string(
    id: *const c_char,
    status: *mut libcrun_container_status_t,
    state_root: *const c_char,
    container_status: *mut *const c_char,
    running: *mut c_int,
    err: *mut libcrun_error_t,
) -> c_int {
    guard("libcrun_get_container_state_string", err, || {
        if status.is_null() {
            return Err(null_arg("status"));
        }
        if container_status.is_null() {
            return Err(null_arg("container_status"));
        }
        if running.is_null() {
            return Err(null_arg("running"));
        }
        let root = opt_str(state_root, "state_root")?;
        let id = arg_str(id, "id")?;
        let dir = status::state_dir(root, id)?;
        let s = &*status;
        let st = Status {
            pid: s.pid,
            process_start_time: s.process_start_time,
            cgroup_path: take(s.cgroup_path),
            ..Default::default()
        };
        let name: &'static CStr = match status::status_string(&dir, &st) {
            "created" => c"created",
            "running" => c"running",
            "paused" => c"paused",
            _ => c"stopped",
        };
        *running = status::is_running(&st) as c_int;
        *container_status = name.as_ptr();
        Ok(0)
    })
}
