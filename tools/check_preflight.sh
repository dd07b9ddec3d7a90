#!/usr/bin/env bash
# CI check of what the build and `make bench` say when something is missing
# (issue 14, items 2 and 6). Nothing is uninstalled: headers are hidden by
# putting a zlib.h / png.h / gif_lib.h / cblas.h that does not compile first on the include
# path (EXTRA_CFLAGS=-I...), and pkg-config by a pkg-config on PATH that fails
# as a missing one does.
#   - zlib.h / png.h / gif_lib.h / zlib and png / protobuf-c.h hidden, protoc-c or onnx.proto
#     missing: make stops before compiling anything with one message naming the header(s)
#     or file(s) and the Debian package(s), once;
#   - BLAS=openblas with OpenBLAS hidden and no pkg-config: make says to install
#     libopenblas-dev (not an undefined cblas_sgemm at link time);
#   - OpenBLAS installed but no pkg-config: BLAS=auto and BLAS=openblas still
#     find it (tools/find_openblas.sh probes the usual paths);
#   - MPI=1 without mpicc: make says to install openmpi-bin libopenmpi-dev;
#     MPI=auto without it builds without MPI;
#   - make bench without Fashion-MNIST names the apt-get line and fails.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fails=0
fail() { echo "check_preflight: $*" >&2; fails=$((fails + 1)); }
mkdir -p "$t/hide-zlib" "$t/hide-png" "$t/hide-gif" "$t/hide-blas" "$t/nopc" "$t/hide-pbc/protobuf-c"
echo '#error hidden by check_preflight' > "$t/hide-pbc/protobuf-c/protobuf-c.h"
echo '#error hidden by check_preflight' > "$t/hide-zlib/zlib.h"
echo '#error hidden by check_preflight' > "$t/hide-png/png.h"
echo '#error hidden by check_preflight' > "$t/hide-gif/gif_lib.h"
echo '#error hidden by check_preflight' > "$t/hide-blas/cblas.h"
printf '#!/bin/sh\necho "pkg-config: command not found" >&2\nexit 127\n' > "$t/nopc/pkg-config"
chmod +x "$t/nopc/pkg-config"

# expect_stop WHAT NEEDLE... -- make (output in $t/out) stopped with one message holding each needle
expect_stop() {
  local what=$1 rc=$2; shift 2
  [ "$rc" != 0 ] || fail "$what: make succeeded"
  grep -Eq '(^| )(cc|gcc|clang)( .*)? -c ' "$t/out" && fail "$what: make compiled something: $(head -c 300 "$t/out")"
  [ "$(grep -c '\*\*\*' "$t/out")" = 1 ] || fail "$what: expected one make error, got: $(cat "$t/out")"
  for n in "$@"; do grep -qF -- "$n" "$t/out" || fail "$what: message lacks '$n': $(cat "$t/out")"; done
}
make lib BLAS=builtin EXTRA_CFLAGS="-I$t/hide-zlib" > "$t/out" 2>&1; rc=$?
expect_stop "zlib.h hidden" $rc "zlib.h" "zlib1g-dev" "apt-get update && apt-get install -y zlib1g-dev"
grep -q "libpng-dev" "$t/out" && fail "zlib.h hidden: message names libpng-dev too"
make test BLAS=builtin EXTRA_CFLAGS="-I$t/hide-png" > "$t/out" 2>&1; rc=$?
expect_stop "png.h hidden" $rc "png.h" "libpng-dev"
make lib BLAS=builtin EXTRA_CFLAGS="-I$t/hide-gif" > "$t/out" 2>&1; rc=$?
expect_stop "gif_lib.h hidden" $rc "gif_lib.h" "libgif-dev"
make lib BLAS=builtin EXTRA_CFLAGS="-I$t/hide-pbc" > "$t/out" 2>&1; rc=$?
expect_stop "protobuf-c.h hidden" $rc "protobuf-c/protobuf-c.h" "libprotobuf-c-dev"
make lib BLAS=builtin PROTOC_C="$t/none/protoc-c" > "$t/out" 2>&1; rc=$?
expect_stop "protoc-c missing" $rc "protoc-c" "apt-get install -y protobuf-c-compiler"
make test BLAS=builtin ONNX_PROTO="$t/none/onnx.proto" > "$t/out" 2>&1; rc=$?
expect_stop "onnx.proto missing" $rc "onnx.proto" "apt-get install -y libonnx-dev"
make demo EXTRA_CFLAGS="-I$t/hide-zlib -I$t/hide-png" > "$t/out" 2>&1; rc=$?
expect_stop "zlib.h and png.h hidden" $rc "zlib.h (zlib1g-dev), png.h (libpng-dev)" "apt-get install -y zlib1g-dev libpng-dev"
PATH="$t/nopc:$PATH" make lib BLAS=openblas EXTRA_CFLAGS="-I$t/hide-blas" > "$t/out" 2>&1; rc=$?
expect_stop "BLAS=openblas, OpenBLAS hidden, no pkg-config" $rc "BLAS=openblas" "libopenblas-dev" "BLAS=builtin"
make lib MPI=1 MPICC="$t/none/mpicc" > "$t/out" 2>&1; rc=$?
expect_stop "MPI=1 without mpicc" $rc "MPI=1" "apt-get update && apt-get install -y openmpi-bin libopenmpi-dev" "MPI=0"
v=$(make -s print-variant MPICC="$t/none/mpicc")
[[ "$v" != *-mpi ]] || fail "MPI=auto without mpicc builds with MPI ($v)"
# make clean needs nothing
make -n clean BLAS=openblas EXTRA_CFLAGS="-I$t/hide-zlib -I$t/hide-blas" > "$t/out" 2>&1 || fail "make clean checks headers: $(cat "$t/out")"

# OpenBLAS installed (this machine, if it has it) but pkg-config missing: still found
if pkg-config --exists openblas 2>/dev/null; then
  v=$(PATH="$t/nopc:$PATH" make -s print-config | awk '$1 == "BLAS" && NF == 2 {print $2}')
  [ "$v" = openblas ] || fail "BLAS=auto without pkg-config ignores the installed OpenBLAS (chose '$v')"
  v=$(PATH="$t/nopc:$PATH" make -s print-config BLAS=openblas | sed -n 's/^BLAS flags //p')
  [[ " $v " == *" -lopenblas "* ]] || fail "BLAS=openblas without pkg-config: flags '$v'"
else
  echo "check_preflight: OpenBLAS not installed here: the pkg-config fallback is not checked"
fi

# make bench without the data set
FASHION_MNIST="$t/none" BENCH=mlp tools/bench.sh "$(make -s print-variant)" > "$t/out" 2>&1; rc=$?
[ $rc != 0 ] || fail "bench without Fashion-MNIST exited 0"
grep -q "apt-get install dataset-fashion-mnist" "$t/out" || fail "bench without Fashion-MNIST: $(cat "$t/out")"

[ $fails = 0 ] || exit 1
echo "preflight: missing zlib/libpng/giflib/protobuf-c/protoc-c/onnx.proto/OpenBLAS/pkg-config/MPI/Fashion-MNIST each named with its package"
