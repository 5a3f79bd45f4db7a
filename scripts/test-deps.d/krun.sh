#!/bin/sh
# Pre-build the real libkrun (Cargo registry crate) into the cache so tests/krun_real.rs can
# exercise its error paths.  Skipped unless CRUN_RS_REAL_LIBKRUN=1 (about 90 s the first time,
# cached afterwards).  A failure here only makes those tests skip, so it is not fatal.
top=$(cd "$(dirname "$0")/../.." && pwd)
if [ "${CRUN_RS_REAL_LIBKRUN:-0}" = 1 ]; then
  if dir=$("$top/scripts/build-real-libkrun.sh"); then
    echo "krun: real libkrun in $dir"
  else
    echo "krun: building the real libkrun failed; tests/krun_real.rs will fail when CRUN_RS_REAL_LIBKRUN=1" >&2
  fi
fi
