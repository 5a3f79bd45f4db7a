#!/usr/bin/env python3
"""Drive an OCI runtime through conmon the way Podman does, and report what came back.

Podman starts conmon with two pipes: the *sync pipe* (`_OCI_SYNCPIPE`, conmon writes one JSON
line: `{"data": <pid>}` on success, `{"data": -1, "message": "..."}` when the runtime's `create`
failed) and the *start pipe* (`_OCI_STARTPIPE`, conmon blocks on it until the caller writes).
conmon then runs `<runtime> [--runtime-arg...] create --bundle B --pid-file P
[--console-socket S] <id>`; with `-t` it passes a console socket and expects the pty master on it.
After the pid arrives, the caller runs `<runtime> start <id>`; conmon writes the container's
output to its log (`k8s-file` format: `<time> <stream> <F|P> <text>`) and the exit code to
`<exit-dir>/<id>`.

Usage (prints one JSON object on stdout):

    harness.py run --runtime /usr/sbin/runc [--terminal] [--conmon /usr/bin/conmon]
                   [--json-log] [--bad-mount] [--timeout 20] -- echo hello

`--json-log` adds Podman's `--runtime-arg --log-format=json --runtime-arg --log <file>`.
Everything (bundle, busybox rootfs, runtime state root, logs) lives under a temporary directory
that is removed at the end (`--keep` keeps it).  Needs root and a static busybox
(`busybox-static`).  Standard library only.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
APPLETS = ("sh", "echo", "cat", "sleep", "true", "false", "ls", "id", "tty", "stty", "env")


def find_busybox():
    for p in BUSYBOX_CANDIDATES:
        if os.path.exists(p):
            out = subprocess.run(["file", "-L", p], capture_output=True, text=True) if shutil.which("file") else None
            if out is None or "statically linked" in out.stdout or "static-pie" in out.stdout:
                return p
    return None


def make_rootfs(rootfs, busybox):
    """A minimal rootfs: a static busybox with applet links, plus the mount points."""
    for d in ("bin", "proc", "sys", "dev", "tmp", "etc", "root"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    shutil.copy2(busybox, os.path.join(rootfs, "bin/busybox"))
    for a in APPLETS:
        os.symlink("busybox", os.path.join(rootfs, "bin", a))
    with open(os.path.join(rootfs, "etc/passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\n")
    with open(os.path.join(rootfs, "etc/group"), "w") as f:
        f.write("root:x:0:\ntty:x:5:\n")
    # A file that exists but is not executable (exit 126 through Podman).
    with open(os.path.join(rootfs, "bin/not-executable"), "w") as f:
        f.write("#!/bin/sh\necho should not run\n")
    os.chmod(os.path.join(rootfs, "bin/not-executable"), 0o644)


def make_config(args, terminal, readonly=False):
    """An OCI config close to `runc spec`, without cgroup limits or rlimits above 1024."""
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": terminal,
            "user": {"uid": 0, "gid": 0},
            "args": list(args),
            "env": ["PATH=/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": readonly},
        "hostname": "harness",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
        ],
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/sys/firmware"],
            "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"],
        },
    }


def make_bundle(bundle, args, terminal, busybox, bad_mount=False):
    os.makedirs(bundle, exist_ok=True)
    make_rootfs(os.path.join(bundle, "rootfs"), busybox)
    cfg = make_config(args, terminal)
    if bad_mount:
        # A bind mount whose source does not exist: the runtime fails before the pty exists.
        cfg["mounts"].append({"destination": "/mnt", "type": "bind",
                              "source": "/nonexistent-mount-source", "options": ["rbind"]})
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)


def read_line(fd, timeout):
    """Read one line (or until EOF) from fd, within timeout seconds."""
    import select
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            return buf, "timeout"
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            return buf, "eof"
        buf += chunk
    return buf, "line"


def run_cmd(argv, timeout):
    """Run argv with its output in a file (as Podman passes its own stdio: only the process is
    waited for, not whoever inherits its stderr).  Returns (returncode or "timeout", stderr)."""
    with tempfile.TemporaryFile() as out:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            rc = "timeout"
        out.seek(0)
        return rc, out.read().decode(errors="replace")


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def run(opts):
    busybox = find_busybox()
    if busybox is None:
        return {"skipped": "no static busybox (apt install busybox-static)"}
    tmp = tempfile.mkdtemp(prefix="conmon-harness-")
    cid = "h" + uuid.uuid4().hex[:12]
    bundle = os.path.join(tmp, "bundle")
    root = os.path.join(tmp, "state")
    exit_dir = os.path.join(tmp, "exits")
    sock_dir = os.path.join(tmp, "sock")
    log_path = os.path.join(tmp, "ctr.log")
    oci_log = os.path.join(tmp, "oci-log")
    for d in (root, exit_dir, sock_dir):
        os.makedirs(d)
    make_bundle(bundle, opts.cmd, opts.terminal, busybox, opts.bad_mount)
    runtime = [opts.runtime, "--root", root]
    result = {"cid": cid, "runtime": opts.runtime, "terminal": opts.terminal, "cmd": opts.cmd}

    conmon = [
        opts.conmon, "--api-version", "1",
        "-c", cid, "-u", cid, "-n", cid,
        "-r", opts.runtime,
        "-b", bundle,
        "-p", os.path.join(bundle, "pidfile"),
        "-P", os.path.join(tmp, "conmon.pid"),
        "--exit-dir", exit_dir,
        "--socket-dir-path", sock_dir,
        "--full-attach",
        "-l", "k8s-file:" + log_path,
        "--log-level", "debug",
        "--runtime-arg", "--root", "--runtime-arg", root,
    ]
    if opts.json_log:
        conmon += ["--runtime-arg", "--log-format=json", "--runtime-arg", "--log", "--runtime-arg", oci_log]
    if opts.terminal:
        conmon.append("-t")
    result["conmon_argv"] = conmon

    sync_r, sync_w = os.pipe()
    start_r, start_w = os.pipe()

    def child_fds():
        # Podman passes the pipes as fds 3 and 4 (ExtraFiles).
        os.dup2(sync_w, 3)
        os.dup2(start_r, 4)
        for fd in (sync_w, start_r):
            if fd not in (3, 4):
                os.close(fd)

    env = dict(os.environ, _OCI_SYNCPIPE="3", _OCI_STARTPIPE="4")
    # HARNESS_STRACE=FILE runs conmon under strace -f (debugging aid).
    trace = ["strace", "-f", "-o", os.environ["HARNESS_STRACE"], "-s", "200"] if os.environ.get("HARNESS_STRACE") else []
    p = subprocess.Popen(trace + conmon, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, preexec_fn=child_fds, pass_fds=(3, 4),
                         cwd=bundle)
    os.close(sync_w)
    os.close(start_r)
    os.write(start_w, b"0")
    os.close(start_w)
    try:
        out, err = p.communicate(timeout=opts.timeout)
        result["conmon_rc"] = p.returncode
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        result["conmon_rc"] = "timeout"
    result["conmon_stderr"] = err.decode(errors="replace")

    raw, how = read_line(sync_r, opts.timeout)
    result["sync_raw"] = raw.decode(errors="replace")
    result["sync_read"] = how
    try:
        result["sync"] = json.loads(raw.decode()) if raw.strip() else None
    except ValueError as e:
        result["sync"] = None
        result["sync_error"] = str(e)

    pid = (result["sync"] or {}).get("data", -1) if isinstance(result["sync"], dict) else -1
    if isinstance(pid, int) and pid > 0:
        result["start_rc"], result["start_stderr"] = run_cmd(runtime + ["start", cid], opts.timeout)
        exit_file = os.path.join(exit_dir, cid)
        deadline = time.monotonic() + opts.timeout
        while not os.path.exists(exit_file) and time.monotonic() < deadline:
            time.sleep(0.05)
        if os.path.exists(exit_file):
            time.sleep(0.05)
            with open(exit_file) as f:
                txt = f.read().strip()
            result["exit_code"] = int(txt) if txt.lstrip("-").isdigit() else txt
        else:
            result["exit_code"] = None
    os.close(sync_r)

    # Let conmon flush and exit, then clean up.
    try:
        with open(os.path.join(tmp, "conmon.pid")) as f:
            cpid = int(f.read().strip())
    except (OSError, ValueError):
        cpid = None
    deadline = time.monotonic() + 5
    while cpid and pid_alive(cpid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if cpid and pid_alive(cpid):
        os.kill(cpid, 9)
        result["conmon_killed"] = True
    if os.path.exists(log_path):
        with open(log_path, errors="replace") as f:
            result["log"] = f.read()
    else:
        result["log"] = None
    result["log_text"] = log_text(result["log"] or "")
    if os.path.exists(oci_log):
        with open(oci_log, errors="replace") as f:
            result["oci_log"] = f.read()
    result["delete_rc"], result["delete_stderr"] = run_cmd(runtime + ["delete", "-f", cid], opts.timeout)
    # Never leave a container behind, even when the runtime's start/delete hung.
    if isinstance(pid, int) and pid > 0 and pid_alive(pid):
        try:
            os.kill(pid, 9)
            result["container_killed"] = True
        except ProcessLookupError:
            pass
    if opts.keep:
        result["tmp"] = tmp
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def log_text(log):
    """The payload of a k8s-file log: `<time> <stream> <F|P> <text>` lines, partial lines joined."""
    out = ""
    for line in log.splitlines():
        parts = line.split(" ", 3)
        if len(parts) < 3:
            continue
        text = parts[3] if len(parts) == 4 else ""
        out += text + ("\n" if parts[2] == "F" else "")
    return out


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="op", required=True)
    r = sub.add_parser("run", help="run one container through conmon, print a JSON report")
    r.add_argument("--runtime", required=True)
    r.add_argument("--conmon", default=shutil.which("conmon") or "/usr/bin/conmon")
    r.add_argument("--terminal", "-t", action="store_true")
    r.add_argument("--json-log", action="store_true")
    r.add_argument("--timeout", type=float, default=20)
    r.add_argument("--keep", action="store_true")
    r.add_argument("--bad-mount", action="store_true",
                   help="add a bind mount of a nonexistent source (fails before the pty exists)")
    r.add_argument("cmd", nargs="+")
    b = sub.add_parser("bundle", help="write a busybox bundle to DIR")
    b.add_argument("dir")
    b.add_argument("--terminal", "-t", action="store_true")
    b.add_argument("cmd", nargs="+")
    opts = ap.parse_args(argv)
    if opts.op == "bundle":
        bb = find_busybox()
        if bb is None:
            print("no static busybox", file=sys.stderr)
            return 77
        make_bundle(opts.dir, opts.cmd, opts.terminal, bb)
        return 0
    res = run(opts)
    json.dump(res, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
