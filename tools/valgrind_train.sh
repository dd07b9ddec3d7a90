#!/usr/bin/env bash
# Runs `cortex train` on a slice of the demo data under valgrind and fails on any
# leak or memory error. Usage: tools/valgrind_train.sh [make options...]
set -euo pipefail
# valgrind does not decode AVX-512: build without -march=native
set -- PORTABLE=1 "$@"
make -s "$@" >/dev/null
B=$(make -s print-variant "$@")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
valgrind --error-exitcode=3 --leak-check=full --errors-for-leak-kinds=definite,indirect \
  --show-leak-kinds=definite,indirect "$B/cortex" train --epochs 1 --limit 600 --val 100 --hidden 32 \
  --quiet --out "$tmp/m.safetensors" --metrics "$tmp/m.csv" > "$tmp/log" 2>&1 || { cat "$tmp/log"; exit 1; }
grep -E 'ERROR SUMMARY|definitely|indirectly' "$tmp/log" || true
echo "valgrind: cortex train clean"
