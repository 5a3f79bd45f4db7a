#!/bin/bash
# Runtime benchmark (project issue 5): crun-rs vs Debian's crun and runc on the same bundle.
#
# Usage: scripts/bench-runtime.sh [N]            (as root; N defaults to 100)
#   env RUNTIMES="crun-rs crun runc"   which runtimes to measure (names below)
#   env CRUN_RS=path                   crun-rs binary (default: target/release/crun, built here)
#   env RSS_N=20                       iterations of the peak-RSS pass
#   env NO_NS=1                        stay in the host mount namespace (see "cgroups" below)
#   env SAMPLES=DIR                    keep the raw samples (µs, one a line) in DIR/t-RUNTIME-PHASE
#
# For every runtime, in one run:
#   * N x (create, start, wait for exit, delete) of `/init true`,
#   * N x `run` of `/init true`,
# each after 5 unmeasured warm-up rounds, timed with bash's $EPOCHREALTIME (no extra fork per
# sample).  Rounds are interleaved across runtimes (see below).  Prints, per container:
#   * wall-clock median and p90, and the ratio of the medians to crun-rs;
#   * cpu: user+sys time of the runtime's processes (bash `times` over a separate,
#     non-interleaved pass of N rounds): much less sensitive to other load on the machine;
#   * peak RSS of each runtime command (`/usr/bin/time -f %M`: max RSS of the command and the
#     processes it waited for), in a separate pass of RSS_N rounds so `time` does not skew timings.
# On a machine shared with other work the wall-clock samples are bimodal (a fast mode and one
# ~10 ms slower, for every runtime); compare the ratios and the cpu column, not absolute numbers.
#
# Same bundle and config.json for all runtimes: scripts/make-bundle.sh (static test init,
# `crun spec` of crun-rs: pid/net/ipc/uts/mount namespaces, default mounts, devices cgroup
# deny-all + crun's default allows, read-only root, no terminal).  Nothing is disabled.
#
# cgroups: this VM is "hybrid" (cgroup v1 controllers + cgroup2 at /sys/fs/cgroup/unified, with
# only hugetlb on v2).  Debian's crun 1.8.1 refuses that ("cgroups in hybrid mode not supported,
# drop all controllers from cgroupv2").  So the script re-executes itself in a private mount
# namespace (`unshare -m --propagation private`) and lazily unmounts /sys/fs/cgroup/unified
# there: every runtime then sees the same pure cgroup v1 ("legacy") layout and uses cgroupfs.
# The host's mounts are not touched.  With NO_NS=1 nothing is changed and crun is skipped on a
# hybrid host (crun-rs then also writes the v2 hierarchy).
#
# Debian packages: crun runc time (apt-get install crun runc time).
set -eu

N=${1:-100}
RSS_N=${RSS_N:-20}
WARMUP=5
here=$(cd "$(dirname "$0")/.." && pwd)

if [ "$(id -u)" != 0 ]; then
    echo "bench-runtime.sh: needs root" >&2
    exit 1
fi

hybrid() {
    awk '$5 == "/sys/fs/cgroup/unified" { f = 1 } END { exit !f }' /proc/self/mountinfo
}

if [ -z "${NO_NS:-}" ] && [ -z "${BENCH_IN_NS:-}" ] && hybrid; then
    exec unshare -m --propagation private env BENCH_IN_NS=1 "$0" "$@"
fi
if [ -n "${BENCH_IN_NS:-}" ] && hybrid; then
    umount -l /sys/fs/cgroup/unified
    echo "# private mount namespace: /sys/fs/cgroup/unified unmounted (pure cgroup v1 for all runtimes)"
fi

if [ -z "${CRUN_RS:-}" ]; then
    (cd "$here" && cargo build --release --quiet --bin crun)
    CRUN_RS=$here/target/release/crun
fi

declare -A BIN=([crun-rs]=$CRUN_RS [crun]=$(command -v crun || true) [runc]=$(command -v runc || true))
RUNTIMES=${RUNTIMES:-"crun-rs crun runc"}

work=$(mktemp -d /tmp/bench-runtime.XXXXXX)
cleanup() {
    for rt in $RUNTIMES; do
        b=${BIN[$rt]:-}
        [ -n "$b" ] || continue
        for id in $("$b" --root "$work/state-$rt" list -q 2>/dev/null); do
            "$b" --root "$work/state-$rt" delete -f "$id" >/dev/null 2>&1 || true
        done
    done
    rm -rf "$work"
}
trap cleanup EXIT

# A fifo opened read-write: `read -t` on it sleeps without forking (poll interval for exits).
mkfifo "$work/tick"
exec 9<>"$work/tick"
# wait_exit PID: until the container process has exited.  After `create` it is an orphan that
# this VM's pid 1 reaps only every few seconds, so a zombie ("Z" in /proc/PID/stat) counts as
# exited.
wait_exit() {
    local st
    while read -r _ _ st _ 2>/dev/null <"/proc/$1/stat" && [ "$st" != Z ]; do
        read -r -t 0.0002 -u 9 _ || true
    done
}

bundle=$work/bundle
"$here/scripts/make-bundle.sh" "$bundle" "$CRUN_RS" '["/init","true"]' >/dev/null

fail() {
    echo "bench-runtime.sh: $*" >&2
    [ -s "$work/err" ] && cat "$work/err" >&2
    exit 1
}

now_us() {
    local t=${EPOCHREALTIME/./}
    echo "$t"
}

# one_cycle RT ID: create, start, wait for the container process to exit, delete.
one_cycle() {
    local b=${BIN[$1]} root=$work/state-$1 id=$2 pid
    "$b" --root "$root" create --bundle "$bundle" --pid-file "$work/pid" "$id" \
        </dev/null >/dev/null 2>"$work/err" || fail "$1 create $id"
    read -r pid <"$work/pid" || [ -n "$pid" ]
    "$b" --root "$root" start "$id" 2>"$work/err" || fail "$1 start $id"
    wait_exit "$pid"
    "$b" --root "$root" delete "$id" 2>"$work/err" || fail "$1 delete $id"
}

one_run() {
    local b=${BIN[$1]} root=$work/state-$1 id=$2
    "$b" --root "$root" run --bundle "$bundle" "$id" </dev/null >/dev/null 2>"$work/err" ||
        fail "$1 run $id"
}

# stats FILE: median and p90 (in ms) of the microsecond samples in FILE.
stats() {
    sort -n "$1" | awk '{ v[NR] = $1 } END {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        p = v[int(NR * 0.9 + 0.5)]
        printf "%.2f %.2f\n", m / 1000, p / 1000 }'
}

# to_us 1m2.345s -> microseconds (the format of `times`).
to_us() {
    local m=${1%%m*} sec=${1#*m}
    sec=${sec%s}
    echo $((m * 60000000 + 10#${sec%.*} * 1000000 + 10#${sec#*.} * 1000))
}

# children_cpu: CPU_NOW = user+sys CPU time (µs) of all reaped children of this shell so far.
# `times` must run in this shell, not in a $(...) subshell.
children_cpu() {
    local u s
    times >"$work/times"
    { read -r _ _; read -r u s; } <"$work/times"
    CPU_NOW=$(($(to_us "$u") + $(to_us "$s")))
}

declare -A MED P90 RSS CPU
active=""
for rt in $RUNTIMES; do
    b=${BIN[$rt]:-}
    if [ -z "$b" ] || [ ! -x "$b" ]; then
        echo "# $rt: not installed, skipped"
        continue
    fi
    if [ "$rt" = crun ] && hybrid; then
        echo "# crun: skipped (hybrid cgroups, NO_NS set)"
        continue
    fi
    active="$active $rt"
    mkdir -p "$work/state-$rt"
    for phase in cycle run; do
        for i in $(seq 1 $WARMUP); do "one_$phase" "$rt" "w-$phase-$i"; done
        : >"$work/t-$rt-$phase"
    done
done

# Phase by phase, rounds are interleaved: round i measures every runtime, in a random order
# (fixed seed) so that each runtime follows every other one equally often.  This matters: the
# kernel's deferred teardown of the previous container (network namespace cleanup, cgroup
# offlining) lands on the next one, and runc's is the heaviest -- a fixed rotation made crun-rs
# always follow runc.  A 5 ms pause before each sample lets most of that work finish.
read -r -a order <<<"$active"
k=${#order[@]}
RANDOM=42
for phase in cycle run; do
    for i in $(seq 1 "$N"); do
        # Fisher-Yates shuffle of the runtimes for this round.
        for ((j = k - 1; j > 0; j--)); do
            r=$((RANDOM % (j + 1)))
            tmp=${order[$j]}
            order[$j]=${order[$r]}
            order[$r]=$tmp
        done
        for rt in "${order[@]}"; do
            read -r -t 0.005 -u 9 _ || true
            t0=$(now_us)
            "one_$phase" "$rt" "b-$phase-$i"
            t1=$(now_us)
            echo $((t1 - t0)) >>"$work/t-$rt-$phase"
        done
    done
done

if [ -n "${SAMPLES:-}" ]; then
    mkdir -p "$SAMPLES"
    cp "$work"/t-* "$SAMPLES"/
fi
for rt in $active; do
    b=${BIN[$rt]}
    for phase in cycle run; do
        read -r "MED[$rt-$phase]" "P90[$rt-$phase]" < <(stats "$work/t-$rt-$phase")
    done
    left=$("$b" --root "$work/state-$rt" list -q 2>/dev/null | wc -l)
    [ "$left" = 0 ] || fail "$rt left $left containers behind"

    # CPU pass (not interleaved): user+sys of the runtime processes per container.  Less
    # sensitive to other load than wall-clock time.  The orphaned container init of
    # create/start is reaped by pid 1, so only `run` includes the container's own (tiny) CPU.
    for phase in cycle run; do
        children_cpu
        c0=$CPU_NOW
        for i in $(seq 1 "$N"); do "one_$phase" "$rt" "c-$phase-$i"; done
        children_cpu
        c1=$CPU_NOW
        CPU[$rt-$phase]=$(awk -v d=$((c1 - c0)) -v n="$N" 'BEGIN { printf "%.2f", d / n / 1000 }')
    done

    # Peak RSS pass: max over RSS_N rounds of each command's max RSS (KiB).
    for i in $(seq 1 "$RSS_N"); do
        id=r-$i
        /usr/bin/time -a -o "$work/rss-create" -f %M "$b" --root "$work/state-$rt" create \
            --bundle "$bundle" --pid-file "$work/pid" "$id" </dev/null >/dev/null 2>"$work/err" ||
            fail "$rt create $id"
        read -r pid <"$work/pid" || [ -n "$pid" ]
        /usr/bin/time -a -o "$work/rss-start" -f %M "$b" --root "$work/state-$rt" start "$id"
        wait_exit "$pid"
        /usr/bin/time -a -o "$work/rss-delete" -f %M "$b" --root "$work/state-$rt" delete "$id"
        /usr/bin/time -a -o "$work/rss-run" -f %M "$b" --root "$work/state-$rt" run \
            --bundle "$bundle" "rr-$i" </dev/null >/dev/null 2>"$work/err" || fail "$rt run rr-$i"
    done
    for c in create start delete run; do
        RSS[$rt-$c]=$(sort -n "$work/rss-$c" | tail -n1)
        rm -f "$work/rss-$c"
    done
done

ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'
}

echo
echo "# $N containers per phase ($(uname -r), $(nproc) CPUs); ms per container:"
echo "# wall-clock median/p90 (interleaved rounds) and cpu = user+sys of the runtime's processes"
printf "%-8s %-24s %8s %8s %10s %8s %10s\n" runtime phase median p90 "vs crun-rs" cpu "vs crun-rs"
for rt in $RUNTIMES; do
    [ -n "${MED[$rt-cycle]:-}" ] || continue
    for phase in cycle run; do
        label=$phase
        [ "$phase" = cycle ] && label=create+start+wait+delete
        printf "%-8s %-24s %8s %8s %10s %8s %10s\n" "$rt" "$label" "${MED[$rt-$phase]}" \
            "${P90[$rt-$phase]}" "$(ratio "${MED[$rt-$phase]}" "${MED[crun-rs-$phase]:-0}")" \
            "${CPU[$rt-$phase]}" "$(ratio "${CPU[$rt-$phase]}" "${CPU[crun-rs-$phase]:-0}")"
    done
done
echo
echo "# peak RSS (KiB, max over $RSS_N rounds; /usr/bin/time %M)"
printf "%-8s %8s %8s %8s %8s %12s\n" runtime create start delete run "run vs crun-rs"
for rt in $RUNTIMES; do
    [ -n "${RSS[$rt-run]:-}" ] || continue
    printf "%-8s %8s %8s %8s %8s %12s\n" "$rt" "${RSS[$rt-create]}" "${RSS[$rt-start]}" \
        "${RSS[$rt-delete]}" "${RSS[$rt-run]}" "$(ratio "${RSS[$rt-run]}" "${RSS[crun-rs-run]:-0}")"
done
