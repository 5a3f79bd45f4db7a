#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Interop of crun-rs's console-socket protocol with a receiver and a sender written only with
Python's standard library (socket.recv_fds / socket.send_fds), driving libcrun.so.0 via ctypes.

Usage: test_console_recv.py /path/to/libcrun.so.0
"""
import ctypes
import errno
import os
import select
import socket
import sys
import tempfile


class LibcrunError(ctypes.Structure):
    _fields_ = [("status", ctypes.c_int), ("msg", ctypes.c_char_p)]


def load(path):
    lib = ctypes.CDLL(path)
    err_pp = ctypes.POINTER(ctypes.POINTER(LibcrunError))
    lib.libcrun_new_terminal.argtypes = [ctypes.POINTER(ctypes.c_void_p), err_pp]
    lib.libcrun_send_console_socket.argtypes = [ctypes.c_char_p, ctypes.c_int, err_pp]
    lib.libcrun_receive_console_fd.argtypes = [ctypes.c_int, ctypes.c_int, err_pp]
    lib.libcrun_error_release.argtypes = [err_pp]
    return lib


def read_until(fd, needle, timeout=5.0):
    got = b""
    end = timeout
    while end > 0 and needle not in got:
        r, _, _ = select.select([fd], [], [], 0.05)
        end -= 0.05
        if r:
            try:
                got += os.read(fd, 4096)
            except OSError as e:  # EIO while the slave is closed
                if e.errno != errno.EIO:
                    raise
    return got


def main():
    lib = load(sys.argv[1])
    libc = ctypes.CDLL(None)
    failures = []

    def check(cond, what):
        if not cond:
            failures.append(what)
            print("FAIL:", what, file=sys.stderr)

    err = ctypes.POINTER(LibcrunError)()
    with tempfile.TemporaryDirectory(prefix="crun-rs-py-") as d:
        path = os.path.join(d, "console.sock")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(1)

        # libcrun sends, Python receives.
        pty = ctypes.c_void_p()
        master = lib.libcrun_new_terminal(ctypes.byref(pty), ctypes.byref(err))
        check(master >= 0, "libcrun_new_terminal")
        slave_path = ctypes.string_at(pty.value).decode()
        libc.free(pty)
        check(slave_path.startswith("/dev/pts/"), f"pty path {slave_path!r}")
        ret = lib.libcrun_send_console_socket(path.encode(), master, ctypes.byref(err))
        check(ret == 0, "libcrun_send_console_socket")
        conn, _ = srv.accept()
        msg, fds, flags, _ = socket.recv_fds(conn, 4096, 4)
        check(msg == b" ", f"payload {msg!r}")
        check(len(fds) == 1, f"received {len(fds)} fds")
        check(flags & socket.MSG_CTRUNC == 0, "MSG_CTRUNC")
        check(conn.recv(1) == b"", "sender closed the connection")
        conn.close()
        os.close(master)
        if fds:
            check(os.isatty(fds[0]), "received fd is a tty")
            slave = os.open(slave_path, os.O_RDWR | os.O_NOCTTY)
            os.write(slave, b"hello from the slave\n")
            got = read_until(fds[0], b"hello from the slave")
            check(b"hello from the slave" in got, f"read from master: {got!r}")
            os.close(slave)
            for fd in fds:
                os.close(fd)

        # Errors come back as -errno-1 with a positive status and a message naming the path.
        missing = os.path.join(d, "missing.sock").encode()
        ret = lib.libcrun_send_console_socket(missing, 0, ctypes.byref(err))
        check(ret == -errno.ENOENT - 1, f"missing socket returns {ret}")
        check(bool(err) and err.contents.status == errno.ENOENT, "status ENOENT")
        check(bool(err) and missing in err.contents.msg, "message names the path")
        lib.libcrun_error_release(ctypes.byref(err))

        # Python sends (as runc does, payload "/dev/ptmx"), libcrun receives.
        cli = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        cli.connect(path)
        r, w = os.pipe()
        socket.send_fds(cli, [b"/dev/ptmx"], [w])
        cli.close()
        os.close(w)
        fd = lib.libcrun_receive_console_fd(srv.fileno(), 2000, ctypes.byref(err))
        check(fd >= 0, "libcrun_receive_console_fd")
        if fd >= 0:
            check(not os.get_inheritable(fd), "received fd is close-on-exec")
            os.write(fd, b"through the pipe")
            check(os.read(r, 64) == b"through the pipe", "received the pipe's write end")
            os.close(fd)
        os.close(r)

        # Python connects and closes without an fd: a clear error, no hang.
        cli = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        cli.connect(path)
        cli.close()
        fd = lib.libcrun_receive_console_fd(srv.fileno(), 2000, ctypes.byref(err))
        check(fd == -errno.ECONNRESET - 1, f"closed peer returns {fd}")
        check(bool(err) and b"connection closed before a file descriptor was received"
              in err.contents.msg, "closed-peer message")
        lib.libcrun_error_release(ctypes.byref(err))
        srv.close()

    if failures:
        print(f"test_console_recv: {len(failures)} failed", file=sys.stderr)
        return 1
    print("test_console_recv: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
