#!/bin/sh
# Build the real libkrun (the `libkrun` crate from the Cargo registry) as libkrun.so.1 into a
# cache directory and print that directory.  Used by tests/krun_real.rs.
#
#   LIBKRUN_VERSION        crate version (default 1.19.7)
#   CRUN_RS_LIBKRUN_CACHE  cache dir (default ${XDG_CACHE_HOME:-~/.cache}/crun-rs/libkrun-VERSION)
#
# Needs cargo, gcc and libc6-dev (libkrun's guest init is linked statically).  Takes about
# 90 s on 2 cores the first time; later runs print the cached directory at once.
# Only the Cargo registry is contacted.  libkrunfw (the guest kernel) is not built: without it
# krun_start_enter fails with -ENOENT, which is what the tests exercise.
set -eu
version=${LIBKRUN_VERSION:-1.19.7}
cache=${CRUN_RS_LIBKRUN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crun-rs/libkrun-$version}
lib="$cache/lib/libkrun.so.1"
if [ -f "$lib" ]; then
  echo "$cache/lib"
  exit 0
fi
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [ -f "$lib" ]; then
  echo "$cache/lib"
  exit 0
fi

# Download the crate through an ordinary dependency resolution.
fetch="$cache/fetch"
mkdir -p "$fetch/src"
cat >"$fetch/Cargo.toml" <<TOML
[package]
name = "crun-rs-fetch-libkrun"
version = "0.0.0"
edition = "2021"
[dependencies]
libkrun = "=$version"
TOML
: >"$fetch/src/lib.rs"
(cd "$fetch" && cargo fetch -q) >&2
home=${CARGO_HOME:-$HOME/.cargo}
crate=$(ls "$home"/registry/cache/*/"libkrun-$version.crate" 2>/dev/null | head -n1)
if [ -z "$crate" ]; then
  echo "build-real-libkrun: libkrun-$version.crate not found under $home/registry/cache" >&2
  exit 1
fi

src="$cache/src"
rm -rf "$src"
mkdir -p "$src"
tar -xzf "$crate" -C "$src" --strip-components=1
locked=--locked
[ -f "$src/Cargo.lock" ] || locked=
(cd "$src" && CARGO_TARGET_DIR="$cache/target" cargo build -q --release $locked) >&2
mkdir -p "$cache/lib"
cp "$cache/target/release/libkrun.so" "$lib.tmp"
mv "$lib.tmp" "$lib"
echo "$version" >"$cache/lib/VERSION"
echo "$cache/lib"
