#!/bin/sh
# The README demo: build a bundle (static test init + busybox when installed), then run real
# containers with a terminal through --console-socket and show what a receiver (a stand-in for
# conmon, scripts/demo/receiver.py) gets on the pty.
#
#   1. a container that prints through its pty;
#   2. the bug crun-rs fixes: a container whose command does not exist still delivers the pty
#      master to the console socket first, then crun reports
#      "executable file `x` not found in $PATH: No such file or directory" and exits 1.
#
# Usage: scripts/demo.sh TARGET_DIR   (the directory holding the built `crun`, e.g. target/release)
# Needs root (namespaces, mounts), gcc with static libc, python3.
set -eu
target=${1:?usage: demo.sh TARGET_DIR}
here=$(cd "$(dirname "$0")" && pwd)
crun=$(cd "$target" && pwd)/crun
[ -x "$crun" ] || { echo "demo: $crun not found (build first: make)" >&2; exit 1; }
if [ "$(id -u)" != 0 ]; then
    echo "demo: run as root (containers need namespaces and mounts)" >&2
    exit 1
fi
work=$(mktemp -d /tmp/crun-rs-demo.XXXXXX)
trap 'for id in $("$crun" --root "$work/state" list -q 2>/dev/null); do "$crun" --root "$work/state" delete -f "$id"; done; rm -rf "$work"' EXIT
bundle=$work/bundle
"$here/make-bundle.sh" "$bundle" "$crun" >/dev/null
set_args() {
    python3 - "$bundle/config.json" "$1" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["args"] = json.loads(sys.argv[2])
c["process"]["terminal"] = True
c["process"]["consoleSize"] = {"height": 24, "width": 80}
json.dump(c, open(sys.argv[1], "w"), indent=2)
PY
}
run_one() {
    # $1: container id, $2: args JSON
    set_args "$2"
    sock=$work/$1.sock
    python3 "$here/demo/receiver.py" "$sock" 5 &
    rpid=$!
    while [ ! -S "$sock" ]; do sleep 0.05; done
    echo "\$ crun create --console-socket $sock $1"
    if "$crun" --root "$work/state" create --bundle "$bundle" --console-socket "$sock" "$1"; then
        echo "\$ crun start $1"
        "$crun" --root "$work/state" start "$1"
        wait $rpid || true
        "$crun" --root "$work/state" delete -f "$1"
    else
        echo "(crun exited with status $?)"
        wait $rpid || true
    fi
    echo
}

echo "== 1. a container with a terminal, through --console-socket"
if [ -x "$bundle/rootfs/bin/busybox" ]; then
    run_one demo1 '["/bin/sh", "-c", "echo hello from a crun-rs container; echo tty: $(tty); stty size; id"]'
else
    run_one demo1 '["/init", "echo", "hello from a crun-rs container"]'
fi
echo "== 2. a command that does not exist: the pty master arrives first, then the error"
run_one demo2 '["nonexistent-command"]'
