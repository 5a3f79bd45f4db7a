"""Errors and verbosity: the library's `struct libcrun_error_s` becomes an OSError subclass."""

import ctypes
import errno

import pytest

import crun_rs
from crun_rs import _lib
from conftest import require


def raise_from_library(status: int, msg: bytes):
    """Let the library build an error (libcrun_make_error) and convert it like every call does."""
    err = _lib.ErrorPtr()
    ret = _lib.fn("libcrun_make_error")(ctypes.byref(err), status, msg)
    assert ret == -status - 1
    assert err and err.contents.status == status
    crun_rs._raise(err, ret, "test")


@pytest.mark.parametrize(
    "status,cls",
    [
        (errno.ENOENT, FileNotFoundError),
        (errno.EACCES, PermissionError),
        (errno.EPERM, PermissionError),
        (errno.EEXIST, FileExistsError),
        (errno.ETIMEDOUT, TimeoutError),
        (errno.EINVAL, OSError),
    ],
)
def test_errno_picks_the_oserror_subclass(status, cls):
    with pytest.raises(cls) as ei:
        raise_from_library(status, b"open `/x`")
    assert type(ei.value) is cls
    assert ei.value.errno == status
    assert ei.value.strerror == "open `/x`"


def test_status_zero_is_plain_oserror_with_errno_0():
    with pytest.raises(OSError) as ei:
        raise_from_library(0, b"invalid config")
    assert type(ei.value) is OSError
    assert ei.value.errno == 0
    assert ei.value.strerror == "invalid config"


def test_verbosity_round_trip():
    old = crun_rs.get_verbosity()
    try:
        for v in (crun_rs.VERBOSITY_DEBUG, crun_rs.VERBOSITY_WARNING, crun_rs.VERBOSITY_ERROR):
            crun_rs.set_verbosity(v)
            assert crun_rs.get_verbosity() == v
    finally:
        crun_rs.set_verbosity(old)


def test_missing_function_is_enosys():
    with pytest.raises(OSError) as ei:
        _lib.PROTOTYPES["libcrun_does_not_exist"] = (ctypes.c_int, [])
        try:
            _lib.fn("libcrun_does_not_exist")
        finally:
            del _lib.PROTOTYPES["libcrun_does_not_exist"]
    assert ei.value.errno == errno.ENOSYS
    assert "libcrun_does_not_exist" in str(ei.value)


def test_python_crun_compat_name():
    import python_crun

    assert python_crun.make_context is crun_rs.make_context
    assert python_crun.VERBOSITY_DEBUG == 2


def test_load_from_file_missing_is_file_not_found(tmp_path):
    require("libcrun_container_load_from_file")
    with pytest.raises(FileNotFoundError) as ei:
        crun_rs.load_from_file(str(tmp_path / "nope" / "config.json"))
    assert ei.value.errno == errno.ENOENT
    assert "nope" in ei.value.strerror


def test_load_from_memory_bad_json():
    require("libcrun_container_load_from_memory")
    with pytest.raises(OSError) as ei:
        crun_rs.load_from_memory("{not json")
    assert ei.value.strerror


def test_spec_is_a_config():
    require("libcrun_container_spec")
    import json

    for root in (True, False):
        s = json.loads(crun_rs.spec(root))
        assert s["ociVersion"].startswith("1.")
        assert s["process"]["args"]
