"""ctypes declarations for libcrun.so.0 (crun-rs): struct layouts and function prototypes.

Internal: use the functions in :mod:`crun_rs`.  Layouts are crun's (x86_64 offsets in comments);
``tests/test_abi.py`` checks the sizes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import threading
from ctypes import (
    POINTER,
    Structure,
    c_bool,
    c_char_p,
    c_int,
    c_size_t,
    c_uint,
    c_ulonglong,
    c_ushort,
    c_void_p,
)
from typing import Any, Callable, Dict, Optional

# void (*crun_output_handler)(int errno_, const char *msg, int verbosity, void *arg)
OUTPUT_HANDLER = ctypes.CFUNCTYPE(None, c_int, c_char_p, c_int, c_void_p)


class ErrorStruct(Structure):
    """``struct libcrun_error_s`` (16 bytes)."""

    _fields_ = [("status", c_int), ("msg", c_char_p)]


ErrorPtr = POINTER(ErrorStruct)  # libcrun_error_t


class ContextStruct(Structure):
    """``struct libcrun_context_s`` (120 bytes)."""

    _fields_ = [
        ("state_root", c_char_p),  # 0
        ("id", c_char_p),  # 8
        ("bundle", c_char_p),  # 16
        ("console_socket", c_char_p),  # 24
        ("pid_file", c_char_p),  # 32
        ("notify_socket", c_char_p),  # 40
        ("handler", c_char_p),  # 48
        ("preserve_fds", c_int),  # 56
        ("listen_fds", c_int),  # 60
        ("output_handler", c_void_p),  # 64
        ("output_handler_arg", c_void_p),  # 72
        ("fifo_exec_wait_fd", c_int),  # 80
        ("systemd_cgroup", c_bool),  # 84
        ("detach", c_bool),  # 85
        ("no_new_keyring", c_bool),  # 86
        ("force_no_cgroup", c_bool),  # 87
        ("no_pivot", c_bool),  # 88
        ("argv", POINTER(c_char_p)),  # 96
        ("argc", c_int),  # 104
        ("handler_manager", c_void_p),  # 112
    ]


class ContainerStruct(Structure):
    """``struct libcrun_container_s`` (80 bytes); only freed by ``libcrun_container_free``."""

    _fields_ = [
        ("container_def", c_void_p),  # 0
        ("host_uid", c_uint),  # 8
        ("host_gid", c_uint),  # 12
        ("container_uid", c_uint),  # 16
        ("container_gid", c_uint),  # 20
        ("config_file", c_char_p),  # 24
        ("config_file_content", c_char_p),  # 32
        ("annotations", c_void_p),  # 40
        ("proc_fd", c_int),  # 48
        ("private_data", c_void_p),  # 56
        ("cleanup_private_data", c_void_p),  # 64
        ("context", POINTER(ContextStruct)),  # 72
    ]


class StatusStruct(Structure):
    """``struct libcrun_container_status_s`` (88 bytes)."""

    _fields_ = [
        ("pid", c_int),  # 0
        ("process_start_time", c_ulonglong),  # 8
        ("bundle", c_char_p),  # 16
        ("rootfs", c_char_p),  # 24
        ("cgroup_path", c_char_p),  # 32
        ("scope", c_char_p),  # 40
        ("systemd_cgroup", c_int),  # 48
        ("created", c_char_p),  # 56
        ("detached", c_int),  # 64
        ("external_descriptors", c_char_p),  # 72
        ("owner", c_char_p),  # 80
    ]


class ContainerList(Structure):
    """``struct libcrun_container_list_s``."""


ContainerList._fields_ = [("next", POINTER(ContainerList)), ("name", c_char_p)]

E = POINTER(ErrorPtr)  # libcrun_error_t *err
FILEP = c_void_p

# name -> (restype, argtypes).  Functions returning a malloc'd pointer use c_void_p so ctypes
# does not copy-and-lose the pointer we must free.
PROTOTYPES: Dict[str, Any] = {
    # error.h
    "libcrun_error_release": (c_int, [E]),
    "libcrun_set_verbosity": (None, [c_int]),
    "libcrun_get_verbosity": (c_int, []),
    "libcrun_set_log_format": (c_int, [c_char_p, E]),
    "libcrun_make_error": (c_int, [E, c_int, c_char_p]),  # variadic; only "%s" used
    # container.h
    "libcrun_container_load_from_file": (POINTER(ContainerStruct), [c_char_p, E]),
    "libcrun_container_load_from_memory": (POINTER(ContainerStruct), [c_char_p, E]),
    "libcrun_container_free": (None, [POINTER(ContainerStruct)]),
    "libcrun_container_run": (c_int, [POINTER(ContextStruct), POINTER(ContainerStruct), c_uint, E]),
    "libcrun_container_create": (c_int, [POINTER(ContextStruct), POINTER(ContainerStruct), c_uint, E]),
    "libcrun_container_start": (c_int, [POINTER(ContextStruct), c_char_p, E]),
    "libcrun_container_delete": (c_int, [POINTER(ContextStruct), c_void_p, c_char_p, c_bool, E]),
    "libcrun_container_kill": (c_int, [POINTER(ContextStruct), c_char_p, c_char_p, E]),
    "libcrun_container_state": (c_int, [POINTER(ContextStruct), c_char_p, FILEP, E]),
    "libcrun_container_spec": (c_int, [c_bool, FILEP, E]),
    # status.h
    "libcrun_get_containers_list": (c_int, [POINTER(POINTER(ContainerList)), c_char_p, E]),
    "libcrun_free_containers_list": (None, [POINTER(ContainerList)]),
    "libcrun_read_container_status": (c_int, [POINTER(StatusStruct), c_char_p, c_char_p, E]),
    "libcrun_free_container_status": (None, [POINTER(StatusStruct)]),
    # console (crun-rs exports crun's internal socket/terminal helpers under libcrun_*)
    "libcrun_open_unix_domain_socket": (c_int, [c_char_p, c_int, E]),
    "libcrun_open_unix_domain_client_socket": (c_int, [c_char_p, c_int, E]),
    "libcrun_receive_fd_from_socket": (c_int, [c_int, E]),
    "libcrun_send_fd_to_socket": (c_int, [c_int, c_int, E]),
    "libcrun_receive_console_fd": (c_int, [c_int, c_int, E]),
    "libcrun_new_terminal": (c_int, [POINTER(c_void_p), E]),
    "libcrun_terminal_setup_size": (c_int, [c_int, c_ushort, c_ushort, E]),
}

_lock = threading.Lock()
_lib: Optional[ctypes.CDLL] = None
_path: Optional[str] = None


def library_path() -> str:
    """Where libcrun is loaded from: ``$CRUN_RS_LIBRARY``, else ``ctypes.util.find_library('crun')``,
    else ``libcrun.so.0`` (the dynamic loader's search path)."""
    env = os.environ.get("CRUN_RS_LIBRARY")
    if env:
        return env
    found = ctypes.util.find_library("crun")
    return found or "libcrun.so.0"


def lib() -> ctypes.CDLL:
    """The loaded library (loaded on first use)."""
    global _lib, _path
    with _lock:
        if _lib is None:
            path = library_path()
            try:
                _lib = ctypes.CDLL(path)
            except OSError as e:
                raise OSError(
                    getattr(e, "errno", None) or 2,
                    f"cannot load libcrun from `{path}` (set CRUN_RS_LIBRARY): {e}",
                ) from e
            _path = path
        return _lib


def loaded_path() -> Optional[str]:
    return _path


def has(name: str) -> bool:
    """Whether the library exports ``name``."""
    return hasattr(lib(), name)


def fn(name: str) -> Callable[..., Any]:
    """The prototyped function ``name``; ENOSYS OSError when the library lacks it."""
    l = lib()
    try:
        f: Callable[..., Any] = getattr(l, name)
    except AttributeError:
        raise OSError(
            errno.ENOSYS, f"`{name}` is not exported by the libcrun at `{_path}` (ENOSYS)"
        ) from None
    restype, argtypes = PROTOTYPES[name]
    setattr(f, "restype", restype)
    setattr(f, "argtypes", argtypes)
    return f


_libc: Optional[ctypes.CDLL] = None


def libc() -> ctypes.CDLL:
    """The C library (for ``open_memstream``/``fclose``/``free``)."""
    global _libc
    if _libc is None:
        c = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        c.open_memstream.restype = c_void_p
        c.open_memstream.argtypes = [POINTER(c_void_p), POINTER(c_size_t)]
        c.fclose.restype = c_int
        c.fclose.argtypes = [c_void_p]
        c.free.restype = None
        c.free.argtypes = [c_void_p]
        _libc = c
    return _libc
