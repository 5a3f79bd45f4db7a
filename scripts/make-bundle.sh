#!/bin/sh
# Build an OCI bundle for tests and the demo: DIR/rootfs with a static test init (/init and
# /sbin/init, built from c-tests/testinit.c with `gcc -static`), busybox-static when installed,
# a minimal /etc, and DIR/config.json from `crun spec` adjusted for the test init.
#
# Usage: scripts/make-bundle.sh DIR [CRUN] [ARGS_JSON]
#   CRUN       the crun binary used for `crun spec` (default: crun in PATH)
#   ARGS_JSON  process.args as JSON (default: ["/init","echo","hello from crun-rs"])
#   TESTINIT   (env) a prebuilt static test init to copy instead of compiling one
set -eu
dir=${1:?usage: make-bundle.sh DIR [CRUN] [ARGS_JSON]}
crun=${2:-crun}
args=${3:-'["/init","echo","hello from crun-rs"]'}
here=$(cd "$(dirname "$0")/.." && pwd)

mkdir -p "$dir/rootfs"
root="$dir/rootfs"
mkdir -p "$root/bin" "$root/sbin" "$root/etc" "$root/proc" "$root/sys" "$root/dev" "$root/tmp" "$root/root"
# TESTINIT: a prebuilt static test init (tests build it once); otherwise build it here.
init=${TESTINIT:-"$dir/.testinit"}
if [ ! -x "$init" ] || [ "$here/c-tests/testinit.c" -nt "$init" ]; then
    ${CC:-gcc} -static -O2 -o "$init" "$here/c-tests/testinit.c"
fi
cp "$init" "$root/init"
cp "$init" "$root/sbin/init"
if [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; then
    cp /bin/busybox "$root/bin/busybox"
    for t in sh ls cat echo stty tty id sleep true false ps mount env; do
        ln -sf busybox "$root/bin/$t"
    done
fi
cat > "$root/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
test:x:1000:1000:test:/home/test:/bin/sh
P
cat > "$root/etc/group" <<'G'
root:x:0:
tty:x:5:
test:x:1000:
G
chmod 1777 "$root/tmp"

rm -f "$dir/config.json"
(cd "$dir" && "$crun" spec)
python3 - "$dir/config.json" "$args" <<'PY'
import json, sys
path, args = sys.argv[1], json.loads(sys.argv[2])
c = json.load(open(path))
c["process"]["args"] = args
c["process"]["terminal"] = False
c["process"]["env"] = ["PATH=/bin:/sbin", "TERM=xterm"]
json.dump(c, open(path, "w"), indent=4)
PY
echo "bundle ready: $dir"
