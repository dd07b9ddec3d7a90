#!/bin/sh
# onnx_export_compare.sh -- train small models on the shipped Fashion-MNIST
# subset, export them with `cortex onnx export`, run each exported file in
# onnxruntime (tools/ort_run.js) and in Cortex (`cortex onnx run`) on the
# same 1,000 test images, and print the max abs difference, the number of
# images with the same argmax and both accuracies.
#
#   tools/onnx_export_compare.sh [OUTDIR]      (default /tmp/cortex_onnx_compare)
#
# Needs the cortex binary (make) and onnxruntime-node:
#   cd tools/ortnode && npm install --ignore-scripts onnxruntime-node
# One thread everywhere (OMP_NUM_THREADS=1, intra_op_num_threads 1).
set -eu
cd "$(dirname "$0")/.."
out=${1:-/tmp/cortex_onnx_compare}
mkdir -p "$out"
make -s build/cortex >/dev/null
bin=build/cortex
data=data/fashion-mnist-subset
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

for spec in "mlp|--hidden 256,128|5|-1,784" "lenet|--model models/lenet5.net|5|-1,1,28,28" \
            "resnet|--model models/small_resnet.net|2|-1,1,28,28"; do
    IFS='|' read -r name flags epochs shape <<EOS
$spec
EOS
    echo "== $name ($flags, $epochs epochs)"
    # shellcheck disable=SC2086
    $bin train $flags --epochs "$epochs" --out "$out/$name.safetensors" --metrics "$out/$name.csv" --quiet \
        | grep '^test:' | sed 's/^/cortex train /'
    $bin onnx export "$out/$name.safetensors" "$out/$name.onnx" >/dev/null
    # the 1,000 test images (scaled to [0, 1] as cortex train does) as a TensorProto file
    node tools/ort_run.js "$out/$name.onnx" --idx $data/t10k-images-idx3-ubyte.gz --reshape "$shape" \
        --write-input "$out/${name}_in.pb" --limit-print 0 >/dev/null
    $bin onnx run "$out/$name.onnx" --input "$out/${name}_in.pb" --limit 0 --save "$out/${name}_cx_" >/dev/null
    node tools/ort_run.js "$out/$name.onnx" --input "$out/${name}_in.pb" --limit-print 0 \
        --compare "$out/${name}_cx_output.pb" --labels $data/t10k-labels-idx1-ubyte.gz | grep -v '^output'
done
