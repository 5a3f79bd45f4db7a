"""Python bindings for crun-rs's libcrun (``libcrun.so.0``), through ctypes.

The functions mirror crun's own Python module (``python_crun``): :func:`make_context`,
:func:`load_from_file`, :func:`load_from_memory`, :func:`run`, :func:`create`, :func:`start`,
:func:`delete`, :func:`kill`, :func:`list`, :func:`status`, :func:`spec`,
:func:`set_verbosity`, :func:`get_verbosity`; plus the console API
(:func:`open_console_socket`, :func:`receive_console_fd`, :func:`receive_fd_from_socket`,
:func:`new_terminal`) and :func:`read_container_status`.

Differences from crun's module:

* Errors raise :class:`OSError` built as ``OSError(errno, message)``, so Python picks the
  subclass: ``FileNotFoundError`` for ENOENT, ``PermissionError`` for EACCES/EPERM,
  ``FileExistsError`` for EEXIST, and so on.  ``e.errno`` is the library's positive errno
  (0 for errors without one, e.g. a malformed config) and ``e.strerror`` its message.
* Contexts and containers are objects that free their C memory (``close()``, ``with`` or
  garbage collection) instead of capsules that leak.

The library is ``$CRUN_RS_LIBRARY`` when set, else what ``ctypes.util.find_library("crun")``
finds, else ``libcrun.so.0`` from the loader's path.  Calls release the GIL.
"""

from __future__ import annotations

import ctypes
import os
from ctypes import byref, c_size_t, c_void_p
from dataclasses import dataclass
from typing import Any, List, Optional, Union

from . import _lib
from ._lib import ContainerList, ErrorPtr, StatusStruct

__all__ = [
    "VERBOSITY_ERROR",
    "VERBOSITY_WARNING",
    "VERBOSITY_DEBUG",
    "RUN_OPTIONS_PREFORK",
    "RUN_OPTIONS_KEEP",
    "CREATE_OPTIONS_PREFORK",
    "Context",
    "Container",
    "ContainerStatus",
    "make_context",
    "load_from_file",
    "load_from_memory",
    "run",
    "create",
    "start",
    "delete",
    "kill",
    "list",
    "status",
    "spec",
    "read_container_status",
    "set_verbosity",
    "get_verbosity",
    "open_console_socket",
    "receive_console_fd",
    "receive_fd_from_socket",
    "new_terminal",
    "library_path",
    "has_function",
]

VERBOSITY_ERROR = 0
VERBOSITY_WARNING = 1
VERBOSITY_DEBUG = 2

RUN_OPTIONS_PREFORK = 1 << 0
RUN_OPTIONS_KEEP = 1 << 1
CREATE_OPTIONS_PREFORK = 1 << 0

PathLike = Union[str, bytes, "os.PathLike[str]"]


def library_path() -> str:
    """The path libcrun is (or will be) loaded from."""
    return _lib.loaded_path() or _lib.library_path()


def has_function(name: str) -> bool:
    """Whether the loaded libcrun exports ``name`` (e.g. ``"libcrun_container_run"``)."""
    return _lib.has(name)


def _b(s: Optional[PathLike]) -> Optional[bytes]:
    if s is None:
        return None
    if isinstance(s, bytes):
        return s
    return os.fsencode(s)


def _raise(err: Any, ret: int, func: str) -> None:
    """Turn a filled ``libcrun_error_t`` into an OSError and release it."""
    if err:
        e = err.contents
        errno_ = int(e.status)
        msg = e.msg.decode("utf-8", "replace") if e.msg else f"{func} failed"
        _lib.fn("libcrun_error_release")(byref(err))
    else:
        # A negative return without *err: crun encodes -errno-1.
        errno_ = -ret - 1 if ret < 0 else 0
        msg = f"{func} failed without an error message"
    raise OSError(errno_, msg)


def _call(name: str, *args: Any) -> int:
    err = ErrorPtr()
    ret = _lib.fn(name)(*args, byref(err))
    if ret < 0:
        _raise(err, ret, name)
    return int(ret)


def _with_memstream(name: str, *args: Any) -> str:
    """Call ``name(*args, FILE *out, err)`` and return what it wrote."""
    c = _lib.libc()
    buf = c_void_p()
    size = c_size_t()
    fp = c.open_memstream(byref(buf), byref(size))
    if not fp:
        e = ctypes.get_errno()
        raise OSError(e, "open_memstream")
    err = ErrorPtr()
    try:
        ret = _lib.fn(name)(*args, fp, byref(err))
    finally:
        c.fclose(fp)
        data = ctypes.string_at(buf, size.value) if buf.value else b""
        c.free(buf)
    if ret < 0:
        _raise(err, ret, name)
    return data.decode("utf-8", "replace")


class Context:
    """A ``libcrun_context_t``: the state root, id, bundle and options used by every call.

    The C struct lives in Python memory together with the strings it points to, so it is freed
    with this object.
    """

    def __init__(
        self,
        id: str,
        bundle: PathLike = ".",
        state_root: Optional[PathLike] = None,
        systemd_cgroup: bool = False,
        notify_socket: Optional[PathLike] = None,
        detach: bool = False,
        no_new_keyring: bool = False,
        force_no_cgroup: bool = False,
        no_pivot: bool = False,
        console_socket: Optional[PathLike] = None,
        pid_file: Optional[PathLike] = None,
        preserve_fds: int = 0,
        handler: Optional[str] = None,
    ) -> None:
        if id is None:
            raise OSError(22, "make_context: `id` is None")
        self._keep: List[Optional[bytes]] = []
        s = _lib.ContextStruct()

        def keep(v: Optional[PathLike]) -> Optional[bytes]:
            b = _b(v)
            self._keep.append(b)
            return b

        s.id = keep(id)
        s.bundle = keep(bundle)
        s.state_root = keep(state_root)
        s.notify_socket = keep(notify_socket)
        s.console_socket = keep(console_socket)
        s.pid_file = keep(pid_file)
        s.handler = keep(handler)
        s.systemd_cgroup = bool(systemd_cgroup)
        s.detach = bool(detach)
        s.no_new_keyring = bool(no_new_keyring)
        s.force_no_cgroup = bool(force_no_cgroup)
        s.no_pivot = bool(no_pivot)
        s.preserve_fds = int(preserve_fds)
        s.fifo_exec_wait_fd = -1
        self._s = s

    @property
    def id(self) -> str:
        return (self._s.id or b"").decode()

    @property
    def state_root(self) -> Optional[str]:
        return self._s.state_root.decode() if self._s.state_root else None

    @property
    def ptr(self) -> Any:
        return ctypes.pointer(self._s)

    def __repr__(self) -> str:
        return f"<crun_rs.Context id={self.id!r} state_root={self.state_root!r}>"


class Container:
    """A loaded OCI configuration (``libcrun_container_t``); freed by :meth:`close`, by ``with``
    or when garbage collected."""

    def __init__(self, ptr: Any) -> None:
        self._p = ptr
        self._ctx: Optional[Context] = None  # libcrun may keep container->context

    @property
    def ptr(self) -> Any:
        if not self._p:
            raise OSError(22, "the container was closed")
        return self._p

    @property
    def closed(self) -> bool:
        return not self._p

    def close(self) -> None:
        """Free the C container (idempotent)."""
        p, self._p = self._p, None
        if p:
            _lib.fn("libcrun_container_free")(p)

    def __enter__(self) -> "Container":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def make_context(
    id: str,
    bundle: PathLike = ".",
    state_root: Optional[PathLike] = None,
    systemd_cgroup: bool = False,
    notify_socket: Optional[PathLike] = None,
    detach: bool = False,
    no_new_keyring: bool = False,
    force_no_cgroup: bool = False,
    no_pivot: bool = False,
    console_socket: Optional[PathLike] = None,
    pid_file: Optional[PathLike] = None,
    preserve_fds: int = 0,
    handler: Optional[str] = None,
) -> Context:
    """A context, with crun's ``make_context`` keywords plus ``console_socket``, ``pid_file``,
    ``preserve_fds`` and ``handler``."""
    return Context(
        id,
        bundle=bundle,
        state_root=state_root,
        systemd_cgroup=systemd_cgroup,
        notify_socket=notify_socket,
        detach=detach,
        no_new_keyring=no_new_keyring,
        force_no_cgroup=force_no_cgroup,
        no_pivot=no_pivot,
        console_socket=console_socket,
        pid_file=pid_file,
        preserve_fds=preserve_fds,
        handler=handler,
    )


def _load(name: str, arg: bytes) -> Container:
    err = ErrorPtr()
    p = _lib.fn(name)(arg, byref(err))
    if not p:
        _raise(err, -1, name)
    return Container(p)


def load_from_file(path: PathLike) -> Container:
    """Load ``config.json`` from ``path``."""
    b = _b(path)
    assert b is not None
    return _load("libcrun_container_load_from_file", b)


def load_from_memory(json: Union[str, bytes]) -> Container:
    """Load an OCI configuration from a JSON string."""
    return _load(
        "libcrun_container_load_from_memory", json.encode() if isinstance(json, str) else json
    )


def run(ctx: Context, container: Container, options: int = 0) -> int:
    """``libcrun_container_run``: without ``detach`` it waits and returns the container's exit
    status."""
    container._ctx = ctx
    return _call("libcrun_container_run", ctx.ptr, container.ptr, options)


def create(ctx: Context, container: Container, options: int = CREATE_OPTIONS_PREFORK) -> int:
    """``libcrun_container_create`` (prefork by default, as crun's module)."""
    container._ctx = ctx
    return _call("libcrun_container_create", ctx.ptr, container.ptr, options)


def start(ctx: Context, id: str) -> int:
    """Start a created container."""
    return _call("libcrun_container_start", ctx.ptr, _b(id))


def delete(ctx: Context, id: str, force: bool = False) -> int:
    """Delete a container (``force`` kills it first)."""
    return _call("libcrun_container_delete", ctx.ptr, None, _b(id), bool(force))


def kill(ctx: Context, id: str, signal: Union[str, int] = "SIGTERM") -> int:
    """Send ``signal`` (a name like ``"SIGKILL"``/``"KILL"`` or a number) to the container."""
    if isinstance(signal, int):
        signal = str(int(signal))
    return _call("libcrun_container_kill", ctx.ptr, _b(id), _b(signal))


def list(ctx: Context) -> List[str]:  # noqa: A001 - crun's name
    """The names of the containers under the context's state root."""
    head = ctypes.POINTER(ContainerList)()
    _call("libcrun_get_containers_list", byref(head), _b(ctx.state_root))
    names: List[str] = []
    try:
        it = head
        while it:
            if it.contents.name:
                names.append(it.contents.name.decode())
            it = it.contents.next
    finally:
        if head:
            _lib.fn("libcrun_free_containers_list")(head)
    return names


def status(ctx: Context, id: str) -> str:
    """The container's state as the JSON text ``crun state`` prints."""
    return _with_memstream("libcrun_container_state", ctx.ptr, _b(id))


def spec(root: Optional[bool] = None) -> str:
    """A default ``config.json`` (for root when ``root``; default: whether we are root)."""
    if root is None:
        root = os.geteuid() == 0
    return _with_memstream("libcrun_container_spec", bool(root))


@dataclass
class ContainerStatus:
    """``libcrun_container_status_t``, copied into Python."""

    pid: int
    process_start_time: int
    bundle: Optional[str]
    rootfs: Optional[str]
    cgroup_path: Optional[str]
    scope: Optional[str]
    systemd_cgroup: bool
    created: Optional[str]
    detached: bool
    external_descriptors: Optional[str]
    owner: Optional[str]


def read_container_status(ctx: Context, id: str) -> ContainerStatus:
    """Read ``<state_root>/<id>/status`` (``libcrun_read_container_status``)."""
    st = StatusStruct()
    _call("libcrun_read_container_status", byref(st), _b(ctx.state_root), _b(id))

    def s(v: Optional[bytes]) -> Optional[str]:
        return v.decode("utf-8", "replace") if v is not None else None

    try:
        return ContainerStatus(
            pid=st.pid,
            process_start_time=st.process_start_time,
            bundle=s(st.bundle),
            rootfs=s(st.rootfs),
            cgroup_path=s(st.cgroup_path),
            scope=s(st.scope),
            systemd_cgroup=bool(st.systemd_cgroup),
            created=s(st.created),
            detached=bool(st.detached),
            external_descriptors=s(st.external_descriptors),
            owner=s(st.owner),
        )
    finally:
        _lib.fn("libcrun_free_container_status")(byref(st))


def set_verbosity(verbosity: int) -> None:
    """``VERBOSITY_ERROR``, ``VERBOSITY_WARNING`` or ``VERBOSITY_DEBUG``."""
    _lib.fn("libcrun_set_verbosity")(int(verbosity))


def get_verbosity() -> int:
    return int(_lib.fn("libcrun_get_verbosity")())


# --- console ---------------------------------------------------------------------------------


def open_console_socket(path: PathLike) -> int:
    """A listening ``AF_UNIX`` stream socket at ``path`` for ``--console-socket`` / the context's
    ``console_socket``.  Returns the fd (close-on-exec); the caller closes it."""
    return _call("libcrun_open_unix_domain_socket", _b(path), 0)


def receive_console_fd(listen_fd: int, timeout_ms: int = -1) -> int:
    """Accept one connection on ``listen_fd`` and return the pty master it carries.  A timeout
    raises ``TimeoutError`` (ETIMEDOUT); ``timeout_ms < 0`` waits forever."""
    return _call("libcrun_receive_console_fd", int(listen_fd), int(timeout_ms))


def receive_fd_from_socket(sock: int) -> int:
    """Receive one fd sent with ``SCM_RIGHTS`` over the connected socket ``sock``."""
    return _call("libcrun_receive_fd_from_socket", int(sock))


def new_terminal() -> "tuple[int, str]":
    """Open a new pty; returns ``(master_fd, slave_path)``."""
    p = c_void_p()
    fd = _call("libcrun_new_terminal", byref(p))
    try:
        path = ctypes.string_at(p).decode() if p.value else ""
    finally:
        _lib.libc().free(p)
    return fd, path
