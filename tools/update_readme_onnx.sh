#!/bin/sh
# Rewrites README.md's ONNX conformance table (between <!-- onnx-table -->
# and <!-- /onnx-table -->) from a run of the conformance runner on Debian's
# libonnx-testdata node tests:
#   tools/update_readme_onnx.sh RUNNER DIR        (make readme-onnx)
set -eu
runner=${1:?usage: tools/update_readme_onnx.sh ONNX_CONFORMANCE_BINARY TESTDATA_DIR}
dir=${2:?usage: tools/update_readme_onnx.sh ONNX_CONFORMANCE_BINARY TESTDATA_DIR}
cd "$(dirname "$0")/.."
md=$(mktemp)
trap 'rm -f "$md"' EXIT
"$runner" "$dir" --markdown "$md" | tail -1
grep -q '<!-- onnx-table -->' README.md || { echo "README.md has no <!-- onnx-table --> marker"; exit 1; }
tmp=README.md.tmp.$$
awk -v md="$md" '
  /<!-- onnx-table -->/ { print; while ((getline l < md) > 0) print l; skip = 1; next }
  /<!-- \/onnx-table -->/ { skip = 0 }
  !skip { print }' README.md > "$tmp"
mv "$tmp" README.md
echo "README.md has the per-op conformance table"
