#!/usr/bin/env bash
# shellcheck disable=SC2046,SC2086  # pkg-config output is split into words on purpose
# Installs Cortex into a temporary prefix and builds examples/quickstart.c
# against it through pkg-config twice, then runs both (CI check of `make install`):
#   - against libcortex.a: `pkg-config --static` flags, with -lcortex turned into
#     -l:libcortex.a (with both libraries installed the linker would otherwise
#     pick libcortex.so);
#   - against libcortex.so: `pkg-config` without --static and -Wl,-rpath, which
#     proves the shared library exports everything a user program needs.
# readelf checks that each binary links the library it is meant to.
set -euo pipefail
pfx=$(mktemp -d)
trap 'rm -rf "$pfx"' EXIT
make -s install PREFIX="$pfx" >/dev/null
export PKG_CONFIG_PATH="$pfx/lib/pkgconfig"
mkdir -p "$pfx/run/data" && cp -r data/fashion-mnist-subset "$pfx/run/data/"

needs_so() { readelf -d "$1" | grep -q 'NEEDED.*\[libcortex\.so'; }

static_libs=$(pkg-config --libs --static cortex | sed 's/-lcortex\( \|$\)/-l:libcortex.a\1/')
cc -std=c11 examples/quickstart.c -o "$pfx/quickstart-static" $(pkg-config --cflags cortex) $static_libs
if needs_so "$pfx/quickstart-static"; then
  echo "check_install: quickstart-static needs libcortex.so" >&2; exit 1
fi
(cd "$pfx/run" && rm -f mlp.safetensors && ../quickstart-static && test -s mlp.safetensors)

cc -std=c11 examples/quickstart.c -o "$pfx/quickstart-shared" \
  $(pkg-config --cflags --libs cortex) -Wl,-rpath,"$pfx/lib"
if ! needs_so "$pfx/quickstart-shared"; then
  echo "check_install: quickstart-shared does not use libcortex.so" >&2; exit 1
fi
(cd "$pfx/run" && rm -f mlp.safetensors && ../quickstart-shared && test -s mlp.safetensors)
echo "make install + pkg-config: quickstart built against libcortex.a (--static) and libcortex.so, both ran"
