#!/usr/bin/env bash
# Fuzzing in CI: build the libFuzzer targets (make fuzz: clang with its fuzzer
# runtime, Debian packages clang and libclang-rt-14-dev), replay every input of
# fuzz/regressions/NAME/ (inputs that once crashed, leaked or hit undefined
# behaviour: each must now pass), then fuzz each target for a bounded time from
# its seed corpus (fuzz/corpus/NAME/, copied: the committed corpus is not
# changed). A crash leaves its input in build/fuzz/artifacts/; keep it in
# fuzz/regressions/NAME/ once the reader is fixed.
#   tools/fuzz_ci.sh [SECONDS per target, default 20] [TARGET ...]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-20}
shift || true
TARGETS=("$@")
if [ ${#TARGETS[@]} = 0 ]; then
  for f in fuzz/fuzz_*.c; do n=${f#fuzz/fuzz_}; TARGETS+=("${n%.c}"); done
fi
make -s -j2 fuzz
ART=build/fuzz/artifacts
mkdir -p "$ART"
# leaks count as failures; a too-large allocation is reported, not returned
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
LIMITS=(-rss_limit_mb=1024 -malloc_limit_mb=1024 -timeout=10)
for t in "${TARGETS[@]}"; do
  bin=build/fuzz/fuzz_$t
  reg=fuzz/regressions/$t
  if [ -d "$reg" ] && [ -n "$(ls -A "$reg")" ]; then
    echo "== $t: regressions ($(ls "$reg" | wc -l) inputs)"
    "$bin" "${LIMITS[@]}" "$reg"/* >"$ART/$t.replay.log" 2>&1 || { cat "$ART/$t.replay.log"; exit 1; }
    if [ "$t" = netdef ]; then   # the full parse too (cx_net_parse: builds and runs the layers)
      CX_FUZZ_NET_FULL=1 "$bin" "${LIMITS[@]}" "$reg"/* >"$ART/$t.replay_full.log" 2>&1 ||
        { cat "$ART/$t.replay_full.log"; exit 1; }
    fi
  fi
  echo "== $t: fuzzing for ${SECS}s"
  work=$(mktemp -d)
  cp fuzz/corpus/"$t"/* "$work"/
  if ! "$bin" "${LIMITS[@]}" -max_total_time="$SECS" -print_final_stats=1 -artifact_prefix="$ART/$t-" \
       "$work" >"$ART/$t.log" 2>&1; then
    tail -n 60 "$ART/$t.log"
    rm -rf "$work"
    echo "fuzz_ci: $t failed; the input is in $ART/ (see $ART/$t.log)"
    exit 1
  fi
  rm -rf "$work"
  grep -E 'stat::(number_of_executed_units|average_exec_per_sec)' "$ART/$t.log" | tr '\n' ' '
  echo
done
echo "fuzz_ci: ${#TARGETS[@]} targets, no failure"
