#!/bin/sh
# Benchmark the console fd-passing API against a bare sendmsg/recvmsg loop in C.
#   scripts/bench-console.sh [iterations]      (PROFILE=release by default; PROFILE=debug works)
# Builds libcrun.a for PROFILE, compiles benches/console/bench_console.c against it (static and
# shared), and prints round trips per second side by side with the ratio.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
profile=${PROFILE:-release}
if [ "$profile" = debug ]; then
  cargo build --lib
else
  cargo build --lib --profile "$profile"
fi
out=target/$profile
./scripts/link-so.sh "$out"
cc=${CC:-cc}
libs="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"
# shellcheck disable=SC2086
"$cc" -O2 -Wall -Wextra -Iinclude -o "$out/bench_console-static" benches/console/bench_console.c "$out/libcrun.a" $libs
"$cc" -O2 -Wall -Wextra -Iinclude -o "$out/bench_console-shared" benches/console/bench_console.c \
  -L"$out" -Wl,-rpath,"$top/$out" -lcrun
echo "== static ($profile)"
"$out/bench_console-static" "$@"
echo "== shared ($profile)"
"$out/bench_console-shared" "$@"
