#!/bin/sh
# Benchmark crun-rs against Debian's crun and runc: 100 x (create, start, wait, delete) and
# 100 x `run` of a container running `true`, with per-container medians, ratios and the peak
# RSS of one runtime invocation (benches/runtime/bench.py).
#
# All of them run inside one private mount namespace that mounts a pure cgroup2 hierarchy at
# /sys/fs/cgroup: Debian's crun 1.8 refuses this host's hybrid (v1 + unified) layout, and
# giving every runtime the same cgroup layout keeps the comparison fair.
#
# Usage: scripts/bench-runtime.sh [TARGET_DIR [N]]   (default target/release, 100)
# Needs root; `apt-get install crun runc` for the other two (missing ones are skipped).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
target=${1:-$here/target/release}
n=${2:-100}
ours=$(cd "$target" && pwd)/crun
[ -x "$ours" ] || { echo "bench: $ours not found (cargo build --release)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "bench: needs root" >&2; exit 1; }
work=$(mktemp -d /tmp/crun-rs-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$here/scripts/make-bundle.sh" "$work/bundle" "$ours" '["/init", "true"]' >/dev/null
# A plain config all three accept: no terminal, default namespaces, no cgroup mount.
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["mounts"] = [m for m in c["mounts"] if m["type"] != "cgroup"]
json.dump(c, open(sys.argv[1], "w"), indent=2)
PY
# Debian's crun 1.8 raises RLIMIT_MEMLOCK to load its eBPF device filter on cgroup v2, which
# fails here (root lacks CAP_SYS_RESOURCE): it runs with --cgroup-manager=disabled, and so does
# a second crun-rs row for the like-for-like comparison.
set -- "crun-rs=$ours" "crun-rs-nocg=$ours,--cgroup-manager=disabled"
p=$(command -v crun || true)
[ -n "$p" ] && set -- "$@" "crun-nocg=$p,--cgroup-manager=disabled" || echo "bench: crun not installed: skipped" >&2
p=$(command -v runc || true)
[ -n "$p" ] && set -- "$@" "runc=$p" || echo "bench: runc not installed: skipped" >&2
unshare --mount --propagation private sh -c '
    mount -t cgroup2 cgroup2 /sys/fs/cgroup || exit 1
    exec python3 "$0" "$@"' "$here/benches/runtime/bench.py" "$work/bundle" "$n" "$@"
