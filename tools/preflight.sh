#!/bin/sh
# Preflight check of the build (run by the Makefile before it compiles anything):
# prints nothing when the C compiler and the headers the build needs are there,
# otherwise ONE line naming what is missing and the Debian packages to install.
# Usage: [PROTOC_C=protoc-c] [ONNX_PROTO=/usr/include/onnx/onnx.proto] \
#          tools/preflight.sh CC [compiler flags: -I..., pkg-config --cflags ...]
# (CC may be several words, e.g. "ccache gcc"). PROTOC_C and ONNX_PROTO are the
# schema compiler and ONNX's schema the build compiles (the Makefile passes its own).
cc=$1
shift
first=${cc%% *}
if ! command -v "$first" >/dev/null 2>&1; then
  case $first in
    clang*) pkg=clang ;;
    *) pkg="gcc libc6-dev" ;;
  esac
  echo "no C compiler '$first': install $pkg (as root: apt-get update && apt-get install -y $pkg)"
  exit 0
fi
missing='' pkgs=''
# header:Debian package
for hp in stdio.h:libc6-dev zlib.h:zlib1g-dev png.h:libpng-dev gif_lib.h:libgif-dev \
          protobuf-c/protobuf-c.h:libprotobuf-c-dev; do
  h=${hp%%:*} p=${hp#*:}
  # shellcheck disable=SC2086  # CC and the flags are split into words on purpose
  if ! printf '#include <%s>\n' "$h" | $cc "$@" -E -x c - >/dev/null 2>&1; then
    missing="$missing${missing:+, }$h ($p)"
    pkgs="$pkgs${pkgs:+ }$p"
  fi
done
# the ONNX schema compiler and the schema (not headers: found by path)
protoc=${PROTOC_C:-protoc-c}
if ! command -v "${protoc%% *}" >/dev/null 2>&1; then
  missing="$missing${missing:+, }$protoc (protobuf-c-compiler)"
  pkgs="$pkgs${pkgs:+ }protobuf-c-compiler"
fi
proto=${ONNX_PROTO:-/usr/include/onnx/onnx.proto}
if [ ! -r "$proto" ]; then
  missing="$missing${missing:+, }$proto (libonnx-dev)"
  pkgs="$pkgs${pkgs:+ }libonnx-dev"
fi
[ -z "$missing" ] && exit 0
echo "cannot build: not found: $missing. Install: as root 'apt-get update && apt-get install -y $pkgs', as a user 'sudo apt-get install -y $pkgs'; then run make again"
