#!/bin/sh
# Build conmon from a source tree (e.g. a v2.2.x checkout) into DEST, for running the caller
# tests against a newer conmon than Debian's 2.1.6:
#
#   scripts/conmon-harness/build-conmon.sh /path/to/conmon-src /opt/conmon-2.2.1
#   CRUN_RS_CONMON=/opt/conmon-2.2.1/conmon cargo test --test conmon --test podman
#
# Needs gcc, make, pkg-config and libglib2.0-dev; builds without systemd (DISABLE_SYSTEMD=1).
# No network: the source tree must already be on disk (no registry ships conmon 2.2.x for
# Debian 12).
set -eu
src=${1:?usage: build-conmon.sh SRC DEST}
dest=${2:?usage: build-conmon.sh SRC DEST}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -a "$src"/. "$tmp"/
make -C "$tmp" bin/conmon DISABLE_SYSTEMD=1 GIT_COMMIT=unknown >/dev/null
install -d "$dest"
install -m 0755 "$tmp/bin/conmon" "$dest/conmon"
"$dest/conmon" --version
