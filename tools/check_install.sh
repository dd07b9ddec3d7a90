#!/usr/bin/env bash
# Installs Cortex into a temporary prefix and builds examples/quickstart.c
# against it through pkg-config, then runs it (CI check of `make install`).
set -euo pipefail
pfx=$(mktemp -d)
trap 'rm -rf "$pfx"' EXIT
make -s install PREFIX="$pfx" >/dev/null
export PKG_CONFIG_PATH="$pfx/lib/pkgconfig"
cc -std=c11 examples/quickstart.c -o "$pfx/quickstart" $(pkg-config --cflags --libs --static cortex) -Wl,-rpath,"$pfx/lib"
(cd "$pfx" && mkdir -p data && cp -r "$OLDPWD/data/fashion-mnist-subset" data/ && ./quickstart)
echo "make install + pkg-config: quickstart built and ran"
