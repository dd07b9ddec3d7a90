#!/usr/bin/env bash
# Runs every test binary given, adds up their RESULT lines, prints "N passed, N failed".
# A binary that crashes or prints no RESULT counts as one failed test.
# Step-arena allocations start as NaN (include/cortex/core.h, cx_arena_alloc):
# code that reads step memory it never wrote fails instead of seeing zeros.
export CX_ARENA_POISON=${CX_ARENA_POISON-1}
passed=0; failed=0
for t in "$@"; do
  out=$("$t" 2>&1); rc=$?
  line=$(printf '%s\n' "$out" | grep '^RESULT ' | tail -n1)
  if [ -z "$line" ]; then
    printf '%s\n' "$out" | tail -n 20
    echo "CRASHED $t (exit $rc)"; failed=$((failed+1)); continue
  fi
  set -- $line; p=$2; f=$3
  passed=$((passed+p)); failed=$((failed+f))
  if [ "$f" != 0 ] || [ $rc != 0 ]; then printf '%s\n' "$out" | grep -v '^RESULT' | tail -n 40; fi
  if [ "$f" = 0 ] && [ $rc != 0 ]; then echo "ERROR $t exited $rc"; failed=$((failed+1)); fi
  printf '%-40s %3d passed, %d failed\n' "$(basename "$t")" "$p" "$f"
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
