"""Shared fixtures.  The library comes from $CRUN_RS_LIBRARY (set by `cargo test --test bindings`)
or the loader's path; the package from the source tree unless it is installed."""

import json
import os
import shutil
import sys
from typing import Callable, List

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "src"))

import crun_rs  # noqa: E402
from crun_rs import _lib  # noqa: E402


def pytest_configure(config):  # noqa: D103
    try:
        _lib.lib()
    except OSError as e:
        if os.environ.get("CRUN_RS_LIBRARY"):
            raise
        pytest.exit(f"skipped: libcrun.so.0 not found ({e}); set CRUN_RS_LIBRARY", returncode=0)


def require(*names: str) -> None:
    """Skip (with the reason) unless libcrun exports every function in `names`."""
    missing = [n for n in names if not crun_rs.has_function(n)]
    if missing:
        pytest.skip(f"{crun_rs.library_path()} does not export {', '.join(missing)} yet")


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")


BUSYBOX = next((p for p in ("/bin/busybox", "/usr/bin/busybox") if os.path.exists(p)), None)
APPLETS = ("sh", "echo", "cat", "sleep", "true", "ls", "tty")


def oci_config(args: List[str], terminal: bool = False, mounts=None) -> dict:
    """A small OCI config (busybox rootfs at `rootfs`, rlimits within root's hard limits)."""
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": terminal,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": "pytest",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        ] + (mounts or []),
        "linux": {"namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount")]},
    }


@pytest.fixture
def bundle(tmp_path) -> Callable[..., str]:
    """bundle(args, terminal=False, mounts=None) -> bundle dir with config.json and rootfs."""
    require_root()
    if BUSYBOX is None:
        pytest.skip("no static busybox (apt install busybox-static)")

    def make(args, terminal=False, mounts=None):
        b = tmp_path / "bundle"
        rootfs = b / "rootfs"
        if not rootfs.exists():
            for d in ("bin", "proc", "dev", "tmp", "out", "etc"):
                (rootfs / d).mkdir(parents=True)
            shutil.copy2(BUSYBOX, rootfs / "bin/busybox")
            for a in APPLETS:
                os.symlink("busybox", rootfs / "bin" / a)
        (b / "config.json").write_text(json.dumps(oci_config(args, terminal, mounts)))
        return str(b)

    return make


@pytest.fixture
def state_root(tmp_path) -> str:
    d = tmp_path / "state"
    d.mkdir()
    return str(d)
