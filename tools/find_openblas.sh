#!/bin/sh
# Prints the compiler and linker flags of OpenBLAS (e.g.
# "-I/usr/include/x86_64-linux-gnu/openblas-pthread -L... -lopenblas"), or
# nothing when it is not installed. pkg-config first; without pkg-config (or
# without its openblas.pc) the usual Debian/Ubuntu/Fedora locations are probed
# by compiling, linking and running a tiny program that calls cblas_sgemm and
# openblas_set_num_threads. Used by the Makefile (BLAS=auto / BLAS=openblas).
# Usage: tools/find_openblas.sh CC [extra compiler flags]
# With CX_OPENBLAS_OPENMP=1 (the Makefile sets it for an OpenMP build whose
# compiler uses GNU's libgomp, i.e. gcc) the OpenMP build of OpenBLAS
# (Debian: libopenblas-openmp-dev, /usr/lib/<triplet>/openblas-openmp) comes
# first: its threads are libgomp's, the pool Cortex's own loops use, instead
# of a second pool of OpenBLAS pthreads that spin against it on the same
# cores. A run path makes the loader take that variant whatever the system's
# libopenblas.so.0 alternative points to; -DCX_OPENBLAS_OPENMP tells the
# sources (and a test) which one was linked.
cc=$1
shift
tmp=$(mktemp -d 2>/dev/null) || exit 0
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/p.c" <<'C'
#include <cblas.h>
int main(void) {
    float a = 1, b = 1, c = 0;
    openblas_set_num_threads(1);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 1, 1, 1, 1.0f, &a, 1, &b, 1, 0.0f, &c, 1);
    return c == 1.0f ? 0 : 1;
}
C
# probe LIBDIR FLAGS...: prints FLAGS and exits when the program compiles,
# links and runs with them (LIBDIR, possibly empty, on the loader's path)
probe() {
  lib=$1
  shift
  # shellcheck disable=SC2086  # CC and the flags are split into words on purpose
  if $cc $cflags -o "$tmp/p" "$tmp/p.c" "$@" >/dev/null 2>&1 && LD_LIBRARY_PATH=$lib "$tmp/p" 2>/dev/null; then
    echo "$*"
    exit 0
  fi
}
cflags="$* -fopenmp"
if [ "${CX_OPENBLAS_OPENMP:-0}" = 1 ]; then
  for inc in /usr/include/*/openblas-openmp; do
    [ -d "$inc" ] || continue
    lib=/usr/lib/${inc#/usr/include/}
    probe "" -DCX_OPENBLAS_OPENMP -I"$inc" -L"$lib" -Wl,-rpath,"$lib" -lopenblas
  done
fi
cflags="$*"
if pkg-config --exists openblas 2>/dev/null; then
  echo "$(pkg-config --cflags openblas) $(pkg-config --libs openblas)"
  exit 0
fi
# candidate "include dir:library dir" pairs (empty: the compiler's defaults)
for d in : /usr/include/*/openblas-pthread /usr/include/*/openblas-openmp /usr/include/*/openblas-serial \
         /usr/include/openblas: /usr/local/include/openblas: /opt/OpenBLAS/include:/opt/OpenBLAS/lib; do
  case $d in
    *:*) inc=${d%%:*} lib=${d#*:} ;;
    *) inc=$d lib=/usr/lib/${d#/usr/include/} ;;   # Debian: /usr/lib/<triplet>/openblas-pthread
  esac
  [ -n "$inc" ] && [ ! -d "$inc" ] && continue
  # shellcheck disable=SC2086  # empty parts vanish
  probe "$lib" ${inc:+-I$inc} ${lib:+-L$lib} -lopenblas
done
exit 0
