"""Real containers through the Python bindings (root, busybox rootfs)."""

import errno
import json
import os
import signal
import time
import uuid

import pytest

import crun_rs
from conftest import require

CONTAINER_API = (
    "libcrun_container_load_from_file",
    "libcrun_container_load_from_memory",
    "libcrun_container_free",
    "libcrun_container_run",
    "libcrun_container_create",
    "libcrun_container_start",
    "libcrun_container_delete",
    "libcrun_container_kill",
    "libcrun_container_state",
    "libcrun_get_containers_list",
    "libcrun_free_containers_list",
)


@pytest.fixture(autouse=True)
def _api():
    require(*CONTAINER_API)


def cid() -> str:
    return "py-" + uuid.uuid4().hex[:10]


def out_mount(d):
    return [{"destination": "/out", "type": "bind", "source": str(d), "options": ["rbind", "rw"]}]


def test_run_foreground_returns_exit_status_and_runs_the_command(bundle, state_root, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    b = bundle(["sh", "-c", "echo hello > /out/result; exit 3"], mounts=out_mount(out))
    ctx = crun_rs.make_context(cid(), bundle=b, state_root=state_root)
    with crun_rs.load_from_file(os.path.join(b, "config.json")) as ctr:
        ret = crun_rs.run(ctx, ctr)
    assert ret == 3
    assert (out / "result").read_text() == "hello\n"
    assert crun_rs.list(ctx) == []  # run without KEEP removes the state


def test_load_from_memory_and_close_twice(bundle, state_root):
    b = bundle(["true"])
    with open(os.path.join(b, "config.json")) as f:
        ctr = crun_rs.load_from_memory(f.read())
    assert not ctr.closed
    ctr.close()
    ctr.close()
    assert ctr.closed
    with pytest.raises(OSError) as ei:
        crun_rs.run(crun_rs.make_context(cid(), bundle=b, state_root=state_root), ctr)
    assert ei.value.errno == errno.EINVAL


def test_create_start_status_list_kill_delete(bundle, state_root):
    b = bundle(["sleep", "100"])
    id_ = cid()
    ctx = crun_rs.make_context(id_, bundle=b, state_root=state_root)
    with crun_rs.load_from_file(os.path.join(b, "config.json")) as ctr:
        assert crun_rs.create(ctx, ctr) >= 0
    try:
        assert crun_rs.list(ctx) == [id_]
        st = json.loads(crun_rs.status(ctx, id_))
        assert st["id"] == id_
        assert st["status"] == "created"
        assert st["pid"] > 0
        crun_rs.start(ctx, id_)
        assert json.loads(crun_rs.status(ctx, id_))["status"] == "running"
        crun_rs.kill(ctx, id_, "SIGKILL")
        deadline = time.monotonic() + 10
        while json.loads(crun_rs.status(ctx, id_))["status"] != "stopped":
            assert time.monotonic() < deadline, "container did not stop after SIGKILL"
            time.sleep(0.05)
        crun_rs.delete(ctx, id_)
        assert crun_rs.list(ctx) == []
    finally:
        try:
            crun_rs.delete(ctx, id_, force=True)
        except OSError:
            pass


def test_kill_with_signal_number_and_force_delete(bundle, state_root):
    b = bundle(["sleep", "100"])
    id_ = cid()
    ctx = crun_rs.make_context(id_, bundle=b, state_root=state_root)
    with crun_rs.load_from_file(os.path.join(b, "config.json")) as ctr:
        crun_rs.create(ctx, ctr)
    crun_rs.start(ctx, id_)
    crun_rs.kill(ctx, id_, int(signal.SIGTERM))
    crun_rs.delete(ctx, id_, force=True)
    assert crun_rs.list(ctx) == []


def test_errors_from_container_calls(state_root):
    ctx = crun_rs.make_context("does-not-exist", state_root=state_root)
    with pytest.raises(FileNotFoundError) as ei:
        crun_rs.start(ctx, "does-not-exist")
    assert ei.value.errno == errno.ENOENT
    with pytest.raises(FileNotFoundError):
        crun_rs.status(ctx, "does-not-exist")
    with pytest.raises(FileNotFoundError):
        crun_rs.kill(ctx, "does-not-exist", "SIGKILL")
    with pytest.raises(FileNotFoundError):
        crun_rs.delete(ctx, "does-not-exist")


def test_nonexistent_command_raises_with_the_library_message(bundle, state_root):
    b = bundle(["/nonexistent-cmd"])
    ctx = crun_rs.make_context(cid(), bundle=b, state_root=state_root)
    with crun_rs.load_from_file(os.path.join(b, "config.json")) as ctr:
        with pytest.raises(FileNotFoundError) as ei:
            crun_rs.run(ctx, ctr)
    assert ei.value.errno == errno.ENOENT
    assert "nonexistent-cmd" in ei.value.strerror


def test_read_container_status(bundle, state_root):
    require("libcrun_read_container_status", "libcrun_free_container_status")
    b = bundle(["sleep", "100"])
    id_ = cid()
    ctx = crun_rs.make_context(id_, bundle=b, state_root=state_root)
    with crun_rs.load_from_file(os.path.join(b, "config.json")) as ctr:
        crun_rs.create(ctx, ctr)
    try:
        st = crun_rs.read_container_status(ctx, id_)
        assert st.pid > 0
        assert st.bundle == b
        assert st.rootfs and st.rootfs.endswith("rootfs")
    finally:
        crun_rs.delete(ctx, id_, force=True)


def test_console_socket_receives_the_pty_and_output(bundle, state_root, tmp_path):
    require("libcrun_open_unix_domain_socket", "libcrun_receive_console_fd")
    b = bundle(["sh", "-c", "tty; echo hello from the pty"], terminal=True)
    sock = str(tmp_path / "console.sock")
    listen_fd = crun_rs.open_console_socket(sock)
    id_ = cid()
    ctx = crun_rs.make_context(id_, bundle=b, state_root=state_root, console_socket=sock)
    try:
        with crun_rs.load_from_file(os.path.join(b, "config.json")) as ctr:
            crun_rs.create(ctx, ctr)
        master = crun_rs.receive_console_fd(listen_fd, 10000)
        try:
            crun_rs.start(ctx, id_)
            data = b""
            deadline = time.monotonic() + 10
            while b"hello from the pty" not in data and time.monotonic() < deadline:
                try:
                    chunk = os.read(master, 4096)
                except OSError as e:  # EIO once the container closed the slave
                    assert e.errno == errno.EIO
                    break
                if not chunk:
                    break
                data += chunk
            text = data.decode(errors="replace")
            assert "/dev/pts/" in text
            assert "hello from the pty" in text
        finally:
            os.close(master)
    finally:
        os.close(listen_fd)
        try:
            crun_rs.delete(ctx, id_, force=True)
        except OSError:
            pass


THREADED_RUN = r"""
import sys, threading, time
sys.path.insert(0, sys.argv[1])
import crun_rs
stop = False
def spin():
    while not stop:
        time.sleep(0.001)
ts = [threading.Thread(target=spin) for _ in range(4)]
for t in ts:
    t.start()
try:
    ctx = crun_rs.make_context(sys.argv[3], bundle=sys.argv[2], state_root=sys.argv[4])
    with crun_rs.load_from_file(sys.argv[2] + "/config.json") as c:
        print(crun_rs.run(ctx, c))
finally:
    stop = True
"""


def test_run_foreground_with_other_threads(bundle, state_root):
    import subprocess
    import sys

    b = bundle(["sh", "-c", "exit 4"])
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
    p = subprocess.run(
        [sys.executable, "-c", THREADED_RUN, src, b, cid(), state_root],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "4"


def test_force_delete_of_missing_container_succeeds(state_root):
    ctx = crun_rs.make_context("never-created", state_root=state_root)
    assert crun_rs.delete(ctx, "never-created", force=True) == 0
