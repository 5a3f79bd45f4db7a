#!/bin/sh
# Link libcrun.so.0 from the Rust staticlib in DIR (target/<profile>), exporting only the
# symbols named in libcrun.lds.  Used by the Makefile and by the C tests (tests/c_tests.rs).
# cargo's cdylib cannot do this: its own version script hides the C shim's printf-style
# functions.
set -eu
dir=$1
top=$(cd "$(dirname "$0")/.." && pwd)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$top/Cargo.toml" | head -n1)
cc=${CC:-cc}
real="libcrun.so.$version"
tmp="$dir/.$real.$$"
"$cc" -shared -o "$tmp" \
  -Wl,-soname,libcrun.so.0 \
  -Wl,--version-script="$top/libcrun.lds" \
  -Wl,--gc-sections -Wl,-z,relro -Wl,-z,now \
  -Wl,--whole-archive "$dir/libcrun.a" -Wl,--no-whole-archive \
  -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
mv -f "$tmp" "$dir/$real"
ln -sfn "$real" "$dir/libcrun.so.0"
ln -sfn libcrun.so.0 "$dir/libcrun.so"
