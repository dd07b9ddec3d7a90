#!/bin/sh
# Rewrites README.md's list of ops (between <!-- ops --> and <!-- /ops -->)
# and its count from the op table, as `cortex ops --names` prints it:
#   tools/update_readme_ops.sh build/<variant>/cortex      (make readme-ops)
set -eu
bin=${1:?usage: tools/update_readme_ops.sh CORTEX_BINARY}
cd "$(dirname "$0")/.."
names=$("$bin" ops --names)
n=$(printf '%s\n' "$names" | wc -l | tr -d ' ')
list=$(printf '%s\n' "$names" | sed 's/.*/`&`/' | tr '\n' ' ' | sed 's/ $//')
tmp=README.md.tmp.$$
awk -v list="$list" -v n="$n" '
  { line = $0 }
  line ~ /Today.s [0-9]+ ops/ { sub(/Today.s [0-9]+ ops/, "Today'"'"'s " n " ops", line) }
  line ~ /<!-- ops -->.*<!-- \/ops -->/ {
    i = index(line, "<!-- ops -->"); j = index(line, "<!-- /ops -->")
    line = substr(line, 1, i + 11) list substr(line, j)
  }
  { print line }' README.md > "$tmp"
mv "$tmp" README.md
echo "README.md lists the $n ops of the table"
