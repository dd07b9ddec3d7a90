#!/bin/sh
# onnx_bench.sh -- inference speed of exported models, Cortex (bench/bench_onnx:
# cx_onnx_run in a C loop) against onnxruntime-node (tools/ort_run.js --bench),
# one thread each (OMP/OpenBLAS threads 1; intra_op_num_threads 1), batch 1
# and 64, run back to back, two rounds; prints ms per run and the ratio
# Cortex / onnxruntime (above 1: Cortex is slower).
#
#   tools/onnx_bench.sh DIR      (DIR from tools/onnx_export_compare.sh: NAME.onnx, NAME_in.pb)
set -eu
cd "$(dirname "$0")/.."
dir=${1:-/tmp/cortex_onnx_compare}
B=$(make -s print-variant)
make -s "$B/bench/bench_onnx" >/dev/null
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
for name in mlp lenet resnet; do
    [ -f "$dir/$name.onnx" ] || continue
    for batch in 1 64; do
        if [ $batch = 1 ]; then runs=2000; else runs=200; fi
        for round in 1 2; do
            c=$("$B/bench/bench_onnx" "$dir/$name.onnx" "$dir/${name}_in.pb" --batch $batch --runs $runs --threads 1 |
                sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p')
            o=$(node tools/ort_run.js "$dir/$name.onnx" --input "$dir/${name}_in.pb" --limit-print 0 --bench $runs \
                --batch $batch --threads 1 | sed -n 's/.*median \([0-9.]*\) ms.*/\1/p')
            awk -v n=$name -v b=$batch -v r=$round -v c="$c" -v o="$o" \
                'BEGIN { printf "%-7s batch %-3d round %d: cortex %.4f ms  onnxruntime %.4f ms  ratio %.2f\n", n, b, r, c, o, c / o }'
        done
    done
done
