#!/usr/bin/env python3
"""A console-socket receiver, like conmon's: listen on a UNIX socket, accept one connection,
receive the pty master (one SCM_RIGHTS fd), then print what the container writes on its pty.

Usage: receiver.py SOCKET_PATH [TIMEOUT_SECONDS]
Prints "receiver: got pty master (payload b' ')" when the fd arrives, the pty output, and
"receiver: no fd received" if the runtime never connected or closed without sending.
"""
import array
import os
import select
import socket
import sys
import time

path = sys.argv[1]
timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
try:
    os.unlink(path)
except FileNotFoundError:
    pass
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(1)
print("receiver: listening on %s" % path, flush=True)
srv.settimeout(timeout)
try:
    conn, _ = srv.accept()
except socket.timeout:
    print("receiver: no fd received (the runtime never connected)", flush=True)
    sys.exit(1)
fds = array.array("i")
msg, anc, _flags, _addr = conn.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize))
for level, kind, data in anc:
    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
        fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
conn.close()
if not fds:
    print("receiver: no fd received (connection closed without one)", flush=True)
    sys.exit(1)
master = fds[0]
print("receiver: got pty master (payload %r)" % msg, flush=True)
deadline = time.time() + timeout
while time.time() < deadline:
    r, _, _ = select.select([master], [], [], 0.2)
    if not r:
        continue
    try:
        data = os.read(master, 4096)
    except OSError:  # EIO: every slave fd closed (the container exited)
        break
    if not data:
        break
    for line in data.decode(errors="replace").splitlines():
        print("pty> %s" % line, flush=True)
print("receiver: pty closed", flush=True)
