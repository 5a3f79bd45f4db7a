#!/usr/bin/env python3
"""Container lifecycle benchmark: N x (create, start, wait, delete) and N x `run` of a
container running /bin/true (the static test init's `true`), for each runtime given.

Usage: bench.py BUNDLE N NAME=PATH[,EXTRA_GLOBAL_ARG...] [...]
Prints per-container medians (ms), ratios against the first runtime, and the peak RSS of any
single runtime invocation (KiB).  Timings are taken without any wrapper; the RSS comes from a
separate pass of 5 lifecycles with each invocation under GNU `/usr/bin/time -f %M` (whose
forked child starts at time's own ~2 MiB, so small values have that floor).  Stdlib only.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

bundle, n = sys.argv[1], int(sys.argv[2])
runtimes = []
for a in sys.argv[3:]:
    name, rest = a.split("=", 1)
    parts = rest.split(",")
    runtimes.append((name, parts[0], parts[1:]))
TIME = "/usr/bin/time" if os.path.exists("/usr/bin/time") else None


def call(argv, check=True):
    # Output goes to files: a created container inherits the runtime's stdio, and a pipe it
    # holds open would never reach EOF.
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen(argv, cwd=bundle, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        o, e = out.read(), err.read()
    if check and p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(argv), p.returncode,
                                                   e.decode(errors="replace")))
    return o, ru.ru_maxrss


def lifecycle(base, cid, wrap):
    """create, start, wait, delete; returns the peak RSS seen (KiB)."""
    rss = 0

    def go(argv):
        nonlocal rss
        if wrap:
            with tempfile.NamedTemporaryFile("r") as f:
                out, _ = call([TIME, "-f", "%M", "-o", f.name] + base + argv)
                rss = max(rss, int(f.read().strip().splitlines()[-1]))
        else:
            out, _ = call(base + argv)
        return out

    go(["create", "--bundle", bundle, cid])
    go(["start", cid])
    while json.loads(go(["state", cid]))["status"] != "stopped":
        pass
    go(["delete", cid])
    go(["run", "--bundle", bundle, "r" + cid])
    return rss


def bench(name, path, extra):
    root = tempfile.mkdtemp(prefix="bench-%s-" % name)
    base = [path] + extra + ["--root", root]
    cycle, run = [], []
    for i in range(n):
        cid = "b%s%d" % (name, i)
        t0 = time.perf_counter()
        call(base + ["create", "--bundle", bundle, cid])
        call(base + ["start", cid])
        while json.loads(call(base + ["state", cid])[0])["status"] != "stopped":
            pass
        call(base + ["delete", cid])
        cycle.append(time.perf_counter() - t0)
    for i in range(n):
        t0 = time.perf_counter()
        call(base + ["run", "--bundle", bundle, "r%s%d" % (name, i)])
        run.append(time.perf_counter() - t0)
    rss = 0
    if TIME:
        for i in range(5):
            rss = max(rss, lifecycle(base, "m%s%d" % (name, i), True))
    os.rmdir(root)
    return statistics.median(cycle) * 1000, statistics.median(run) * 1000, rss


results = []
for name, path, extra in runtimes:
    try:
        results.append((name,) + bench(name, path, extra))
    except Exception as e:  # report and go on with the others
        print("%s: failed: %s" % (name, e), file=sys.stderr)
if not results:
    sys.exit(1)
ref = results[0]
print("%d containers each; medians per container; ratio = runtime / %s" % (n, ref[0]))
print("%-13s %14s %7s %12s %7s %14s" % ("runtime", "create..delete", "ratio", "run", "ratio",
                                       "peak RSS KiB"))
for name, c, r, rss in results:
    print("%-13s %11.2f ms %6.2fx %9.2f ms %6.2fx %14d" % (name, c, c / ref[1], r, r / ref[2], rss))
