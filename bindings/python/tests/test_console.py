"""The console API: a console socket receives a pty master, as conmon's does."""

import errno
import os
import socket
import threading

import pytest

import crun_rs
from conftest import require


def send_fd(path: str, fd: int, payload: bytes = b" ") -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
        socket.send_fds(s, [payload], [fd])


def test_receive_console_fd_gets_a_working_pty_master(tmp_path):
    require("libcrun_open_unix_domain_socket", "libcrun_receive_console_fd")
    path = str(tmp_path / "console.sock")
    listen_fd = crun_rs.open_console_socket(path)
    master, slave = os.openpty()
    try:
        t = threading.Thread(target=send_fd, args=(path, master))
        t.start()
        got = crun_rs.receive_console_fd(listen_fd, 5000)
        t.join()
        try:
            assert got not in (master, slave)
            os.write(slave, b"hello\n")
            assert b"hello" in os.read(got, 100)
            assert os.get_inheritable(got) is False
        finally:
            os.close(got)
    finally:
        os.close(listen_fd)
        os.close(master)
        os.close(slave)


def test_receive_console_fd_times_out(tmp_path):
    require("libcrun_open_unix_domain_socket", "libcrun_receive_console_fd")
    fd = crun_rs.open_console_socket(str(tmp_path / "c.sock"))
    try:
        with pytest.raises(TimeoutError) as ei:
            crun_rs.receive_console_fd(fd, 100)
        assert ei.value.errno == errno.ETIMEDOUT
    finally:
        os.close(fd)


def test_connect_and_close_without_fd_is_an_error(tmp_path):
    require("libcrun_open_unix_domain_socket", "libcrun_receive_console_fd")
    path = str(tmp_path / "c.sock")
    fd = crun_rs.open_console_socket(path)
    try:
        def connect_close():
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(path)

        t = threading.Thread(target=connect_close)
        t.start()
        with pytest.raises(OSError):
            crun_rs.receive_console_fd(fd, 5000)
        t.join()
    finally:
        os.close(fd)


def test_open_console_socket_in_missing_dir_is_file_not_found(tmp_path):
    require("libcrun_open_unix_domain_socket")
    with pytest.raises(FileNotFoundError) as ei:
        crun_rs.open_console_socket(str(tmp_path / "no" / "such" / "dir.sock"))
    assert ei.value.errno == errno.ENOENT


def test_receive_fd_from_socket_pair():
    require("libcrun_receive_fd_from_socket")
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    r, w = os.pipe()
    try:
        socket.send_fds(a, [b" "], [w])
        got = crun_rs.receive_fd_from_socket(b.fileno())
        os.write(got, b"via fd")
        os.close(got)
        assert os.read(r, 10) == b"via fd"
    finally:
        for x in (r, w):
            os.close(x)
        a.close()
        b.close()


def test_new_terminal():
    require("libcrun_new_terminal")
    fd, path = crun_rs.new_terminal()
    try:
        assert path.startswith("/dev/pts/")
        assert os.isatty(fd)
    finally:
        os.close(fd)
