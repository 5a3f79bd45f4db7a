#!/bin/sh
# Install what the test suite needs.  As root on Debian this apt-installs missing packages;
# otherwise it only reports what is missing (tests that need it skip with a printed reason).
# Each area may add packages in scripts/test-deps.d/<area>.txt (one Debian package a line)
# and extra steps in scripts/test-deps.d/<area>.sh.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
pkgs="valgrind pkg-config"
for f in "$top"/scripts/test-deps.d/*.txt; do
  [ -e "$f" ] || continue
  pkgs="$pkgs $(grep -v '^#' "$f" | tr '\n' ' ')"
done
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "install-test-deps: installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "install-test-deps: missing (not root, not installing):$missing"
  fi
fi
for f in "$top"/scripts/test-deps.d/*.sh; do
  [ -e "$f" ] || continue
  echo "install-test-deps: running $(basename "$f")"
  sh "$f"
done
