#!/usr/bin/env bash
# make demo: train an MLP on the Fashion-MNIST subset shipped in data/, then evaluate it.
set -euo pipefail
CORTEX=${1:-build/cortex}
mkdir -p out
"$CORTEX" train --data data/fashion-mnist-subset --hidden 256 --epochs 8 --batch 64 --optim adam \
  --lr 0.001 --val 1000 --seed 1 --threads 1 --out out/demo-mlp.safetensors --metrics out/demo-metrics.csv
"$CORTEX" eval out/demo-mlp.safetensors data/fashion-mnist-subset --confusion
echo "model: out/demo-mlp.safetensors   metrics: out/demo-metrics.csv"
echo
echo "The cortex command is $CORTEX (a link to this build's binary). Try:"
echo "  $CORTEX help"
echo "  $CORTEX summary models/lenet5.net"
echo "  $CORTEX train --model models/lenet5.net --epochs 2 --out out/lenet5.safetensors"
echo "or put it on your PATH for this shell: export PATH=\"$PWD/build:\$PATH\" (or: make install)"
