#!/bin/sh
# Run the whole test suite: style and lint gates, then every Rust, C, Python and Go test
# through `cargo test`.  C tests run under valgrind when it is installed.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --all-targets -- -D warnings
if command -v valgrind >/dev/null; then
  export CRUN_RS_VALGRIND=1
else
  echo "run-tests: valgrind not installed: C tests run without it"
fi
echo "== cargo test"
cargo test --no-fail-fast -- --test-threads=2
echo "== make install + pkg-config"
PROFILE=debug ./scripts/check-install.sh
