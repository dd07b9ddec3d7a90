#!/usr/bin/env bash
# shellcheck disable=SC2046,SC2086  # pkg-config output is split into words on purpose
# CI check of `make install`: installs Cortex and builds examples/quickstart.c
# against it the way a user does, then runs it.
#   tools/check_install.sh            into a temporary prefix (not a directory the
#                                     dynamic linker searches)
#   tools/check_install.sh --system   into /usr/local as root (then uninstalls);
#                                     for a CI machine or container of its own
# Checks:
#   - the installed shared library is versioned: libcortex.so.X.Y.Z with the
#     SONAME libcortex.so.X, and the links libcortex.so.X and libcortex.so;
#   - shared: `cc quickstart.c $(pkg-config --cflags --libs cortex)`, no rpath;
#     the binary needs libcortex.so.X (not libcortex.so) and has no RPATH/RUNPATH.
#     Temporary prefix: it does NOT start without LD_LIBRARY_PATH (the loader
#     error a user would see) and runs with LD_LIBRARY_PATH=PREFIX/lib.
#     /usr/local: it runs with no LD_LIBRARY_PATH at all (make install ran ldconfig);
#   - static: `pkg-config --static` flags with -lcortex turned into
#     -l:libcortex.a, and the binary needs no libcortex.so;
#   - the installed cortex CLI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
system=0
[ "${1:-}" = --system ] && system=1
fail() { echo "check_install: $*" >&2; exit 1; }
work=$(mktemp -d)
if [ $system = 1 ]; then
  [ "$(id -u)" = 0 ] || fail "--system installs into /usr/local: run it as root"
  pfx=/usr/local
  trap 'make -s uninstall PREFIX=/usr/local >/dev/null; rm -rf "$work"' EXIT
else
  pfx=$work/prefix
  trap 'rm -rf "$work"' EXIT
fi
make -s install PREFIX="$pfx" > "$work/install.log"
export PKG_CONFIG_PATH="$pfx/lib/pkgconfig"
mkdir -p "$work/run/data" && cp -r data/fashion-mnist-subset "$work/run/data/"
ver=$(sed -n 's/^#define CORTEX_VERSION "\(.*\)"/\1/p' include/cortex.h)
major=${ver%%.*}
lib=$pfx/lib

# the versioned library and its links
{ [ -f "$lib/libcortex.so.$ver" ] && [ ! -L "$lib/libcortex.so.$ver" ]; } || fail "$lib/libcortex.so.$ver is not a file"
[ "$(readlink "$lib/libcortex.so.$major")" = "libcortex.so.$ver" ] || fail "libcortex.so.$major does not link to libcortex.so.$ver"
[ "$(readlink "$lib/libcortex.so")" = "libcortex.so.$major" ] || fail "libcortex.so does not link to libcortex.so.$major"
soname=$(readelf -d "$lib/libcortex.so.$ver" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libcortex.so.$major" ] || fail "SONAME of libcortex.so.$ver is '$soname', expected libcortex.so.$major"

# shared: exactly what the README tells a user to type
cc -std=c11 examples/quickstart.c -o "$work/quickstart-shared" $(pkg-config --cflags --libs cortex)
readelf -d "$work/quickstart-shared" | grep -q "NEEDED.*\[libcortex\.so\.$major\]" ||
  fail "quickstart-shared does not need libcortex.so.$major"
! readelf -d "$work/quickstart-shared" | grep -Eq 'RPATH|RUNPATH' || fail "quickstart-shared has an rpath"
if [ $system = 1 ]; then
  (cd "$work/run" && env -u LD_LIBRARY_PATH ../quickstart-shared > out.txt && test -s mlp.safetensors) ||
    fail "quickstart-shared does not run from /usr/local without LD_LIBRARY_PATH (ldconfig?)"
else
  if (cd "$work/run" && env -u LD_LIBRARY_PATH ../quickstart-shared > out.txt 2> err.txt); then
    fail "quickstart-shared ran without LD_LIBRARY_PATH from a private prefix: the test would prove nothing"
  fi
  grep -q "libcortex.so.$major" "$work/run/err.txt" || fail "unexpected loader error: $(cat "$work/run/err.txt")"
  grep -q "LD_LIBRARY_PATH=$lib" "$work/install.log" || fail "make install did not say to set LD_LIBRARY_PATH=$lib"
  (cd "$work/run" && rm -f mlp.safetensors && LD_LIBRARY_PATH=$lib ../quickstart-shared > out.txt && test -s mlp.safetensors) ||
    fail "quickstart-shared does not run with LD_LIBRARY_PATH=$lib"
fi
grep -q 'saved' "$work/run/out.txt" || fail "quickstart printed no report: $(cat "$work/run/out.txt")"

# static
static_libs=$(pkg-config --libs --static cortex | sed 's/-lcortex\( \|$\)/-l:libcortex.a\1/')
cc -std=c11 examples/quickstart.c -o "$work/quickstart-static" $(pkg-config --cflags cortex) $static_libs
! readelf -d "$work/quickstart-static" | grep -q 'NEEDED.*\[libcortex\.so' || fail "quickstart-static needs libcortex.so"
(cd "$work/run" && rm -f mlp.safetensors && env -u LD_LIBRARY_PATH ../quickstart-static > /dev/null && test -s mlp.safetensors)

# the CLI
"$pfx/bin/cortex" --version | grep -q "cortex $ver" || fail "$pfx/bin/cortex --version"
echo "make install (PREFIX=$pfx): libcortex.so.$ver (SONAME libcortex.so.$major); quickstart built with" \
     "pkg-config --cflags --libs cortex (no rpath$([ $system = 1 ] && echo ', no LD_LIBRARY_PATH' || echo ', LD_LIBRARY_PATH')) and with --static, both ran"
