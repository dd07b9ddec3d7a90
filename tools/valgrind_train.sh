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
  --show-leak-kinds=definite,indirect "$B/cortex" train --epochs 1 --limit 500 --val 100 --hidden 32 \
  --quiet --out "$tmp/m.safetensors" --metrics "$tmp/m.csv" > "$tmp/log" 2>&1 || { cat "$tmp/log"; exit 1; }
grep -E 'ERROR SUMMARY|definitely|indirectly' "$tmp/log" || true
# a small CNN whose 3x3 layers take the Winograd paths (forward, input and
# weight gradients) and the direct / few-channel kernels, with batch norm and a
# residual add (their input gradients are stored into new buffers, not added)
cat > "$tmp/cnn.net" <<'NET'
input 1 28 28
conv2d name=c1 out=8 k=3 p=1
relu
avgpool2d k=2
conv2d name=c2 out=16 k=3 p=1
batchnorm name=n2
relu name=r2
conv2d name=c3 out=16 k=3 p=1
add name=sum from=c3,r2
relu
maxpool2d k=2
flatten
linear name=fc out=10
NET
valgrind --error-exitcode=3 --leak-check=full --errors-for-leak-kinds=definite,indirect \
  --show-leak-kinds=definite,indirect "$B/cortex" train --model "$tmp/cnn.net" --epochs 1 --limit 192 \
  --val 64 --batch 32 --threads 2 --quiet --out "$tmp/c.safetensors" --metrics "$tmp/c.csv" > "$tmp/log2" 2>&1 ||
  { cat "$tmp/log2"; exit 1; }
grep -E 'ERROR SUMMARY|definitely|indirectly' "$tmp/log2" || true
# LeNet-5 at 2 threads: the trainer splits each batch across the threads
# (per-thread gradient buffers, the parts' sums)
valgrind --error-exitcode=3 --leak-check=full --errors-for-leak-kinds=definite,indirect \
  --show-leak-kinds=definite,indirect "$B/cortex" train --model models/lenet5.net --epochs 1 --limit 192 \
  --val 64 --batch 32 --threads 2 --quiet --out "$tmp/l.safetensors" --metrics "$tmp/l.csv" > "$tmp/log3" 2>&1 ||
  { cat "$tmp/log3"; exit 1; }
grep -E 'ERROR SUMMARY|definitely|indirectly' "$tmp/log3" || true
echo "valgrind: cortex train clean (MLP, CNN, LeNet-5 split across threads)"
