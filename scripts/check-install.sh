#!/bin/sh
# `make install` into a temporary prefix (and a DESTDIR), then build and run a C program with
# `pkg-config --cflags --libs libcrun`, dynamically and statically.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$top"
profile=${PROFILE:-debug}

make -s install PROFILE="$profile" PREFIX="$tmp/usr" >/dev/null
for f in lib/libcrun.so lib/libcrun.so.0 lib/libcrun.a include/libcrun.h lib/pkgconfig/libcrun.pc bin/crun bin/krun; do
  [ -e "$tmp/usr/$f" ] || { echo "check-install: missing $f"; exit 1; }
done
[ "$(readlink "$tmp/usr/lib/libcrun.so")" = libcrun.so.0 ] || { echo "check-install: bad libcrun.so link"; exit 1; }

make -s install PROFILE="$profile" PREFIX=/usr DESTDIR="$tmp/dest" >/dev/null
[ -e "$tmp/dest/usr/lib/libcrun.so.0" ] || { echo "check-install: DESTDIR install missing libcrun.so.0"; exit 1; }
grep -q '^prefix=/usr$' "$tmp/dest/usr/lib/pkgconfig/libcrun.pc" || { echo "check-install: bad prefix in libcrun.pc"; exit 1; }

cat > "$tmp/prog.c" <<'C'
#include <errno.h>
#include <string.h>
#include <libcrun.h>
int main (void)
{
  libcrun_error_t err = NULL;
  int ret = libcrun_make_error (&err, -ENOENT, "pkg-config %s", "works");
  int ok = ret == -ENOENT - 1 && err->status == ENOENT && strcmp (err->msg, "pkg-config works") == 0;
  libcrun_error_write_warning_and_release (stdout, &(libcrun_error_t *){ &err });
  return ok ? 0 : 1;
}
C
export PKG_CONFIG_PATH="$tmp/usr/lib/pkgconfig"
# shellcheck disable=SC2046
cc -std=c99 -Wall -Wextra -Werror -o "$tmp/prog-shared" "$tmp/prog.c" $(pkg-config --cflags --libs libcrun) -Wl,-rpath,"$tmp/usr/lib"
# shellcheck disable=SC2046
cc -std=c99 -Wall -Wextra -Werror -o "$tmp/prog-static" "$tmp/prog.c" $(pkg-config --cflags libcrun) "$tmp/usr/lib/libcrun.a" $(pkg-config --libs-only-other --libs --static libcrun | sed 's/-lcrun//')
out=$("$tmp/prog-shared")
[ "$out" = "pkg-config works: No such file or directory" ] || { echo "check-install: shared program printed: $out"; exit 1; }
out=$("$tmp/prog-static")
[ "$out" = "pkg-config works: No such file or directory" ] || { echo "check-install: static program printed: $out"; exit 1; }
ldd "$tmp/prog-shared" | grep -q "libcrun.so.0 => $tmp/usr/lib/libcrun.so.0" || { echo "check-install: shared program not linked to the installed libcrun.so.0"; exit 1; }
echo "check-install: 1 passed, 0 failed"
