#!/bin/sh
# check_exports.sh -- libcortex.so exports the public API and nothing else.
#
#   tools/check_exports.sh [path/to/libcortex.so]     (default: build the
#                                                       default variant's)
#   make check-exports [CC=... BLAS=... ...]
#
# The public API is every function and variable declared with external
# linkage in include/cortex.h and include/cortex/*.h (tools/gen_exports.sh -l;
# static inline functions of the headers are not symbols and are skipped).
# Fails when
#   - the library exports a symbol the public headers do not declare
#     (an internal helper leaked: cx_xmalloc, cx_record, a kernel, ...),
#   - a function or variable a public header declares is not exported
#     (a user program calling it would not link against the shared library),
#   - a public name does not start with cx_.
set -eu
cd "$(dirname "$0")/.."

if [ $# -gt 1 ]; then
    echo "usage: $0 [libcortex.so]" >&2
    exit 2
fi
if [ $# -eq 1 ]; then
    so=$1
else
    make -s lib >/dev/null
    so=$(make -s print-variant)/libcortex.so
fi
[ -r "$so" ] || { echo "check_exports: $so not found" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

tools/gen_exports.sh -l include/cortex.h include/cortex/*.h > "$tmp/public"
# Defined dynamic symbols (drop any @VERSION suffix).
nm -D --defined-only "$so" | awk 'NF >= 3 { sub(/@.*/, "", $3); print $3 }' \
    | LC_ALL=C sort -u > "$tmp/exported"

LC_ALL=C comm -13 "$tmp/public" "$tmp/exported" > "$tmp/leaked"
LC_ALL=C comm -23 "$tmp/public" "$tmp/exported" > "$tmp/missing"
grep -v '^cx_' "$tmp/public" > "$tmp/unprefixed" || true

status=0
if [ -s "$tmp/leaked" ]; then
    echo "check_exports: $(wc -l < "$tmp/leaked") symbol(s) exported by $so but declared in no public header:"
    sed 's/^/  /' "$tmp/leaked"
    status=1
fi
if [ -s "$tmp/missing" ]; then
    echo "check_exports: $(wc -l < "$tmp/missing") public function(s)/variable(s) not exported by $so:"
    sed 's/^/  /' "$tmp/missing"
    status=1
fi
if [ -s "$tmp/unprefixed" ]; then
    echo "check_exports: public name(s) without the cx_ prefix:"
    sed 's/^/  /' "$tmp/unprefixed"
    status=1
fi
if [ $status != 0 ]; then
    echo "check_exports: FAILED"
    exit 1
fi

# How many global symbols of the static library (same objects) stay hidden.
hidden=""
a=${so%.so}.a
if [ -r "$a" ]; then
    n=$(nm -g --defined-only "$a" 2>/dev/null | awk 'NF >= 3 { print $3 }' | LC_ALL=C sort -u \
        | LC_ALL=C comm -23 - "$tmp/public" | wc -l)
    hidden=", $((n)) internal global symbols of $(basename "$a") hidden"
fi
echo "check_exports: $so exports exactly the $(wc -l < "$tmp/public" | tr -d ' ') functions and variables of the public headers$hidden"
