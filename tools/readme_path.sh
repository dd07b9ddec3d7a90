#!/usr/bin/env bash
# CI check that a newcomer's path through README.md works as written: the
# set-up line, the two commands and the first cortex command, taken literally
# from the README (the code blocks between <!-- readme-path:NAME --> and
# <!-- /readme-path:NAME -->, so the check cannot drift from the text), run in
# a fresh copy of the repository (tracked files only: no build/ from before).
#   tools/readme_path.sh              set-up line too (as root, or with sudo)
#   tools/readme_path.sh --no-setup   skip the set-up line (packages already there)
# Checks: every line exits 0; `make test` ends "N passed, 0 failed"; after the
# two commands build/cortex exists and runs; the first cortex command exits 0
# and prints something.
set -euo pipefail
cd "$(dirname "$0")/.."
setup=1
[ "${1:-}" = --no-setup ] && setup=0
fail() { echo "readme_path: $*" >&2; exit 1; }
block() { # the lines of the code block between the markers of $1
  awk -v s="<!-- readme-path:$1 -->" -v e="<!-- /readme-path:$1 -->" '
    $0 == s { on = 1; next } $0 == e { on = 0 } on && !/^```/ && NF' README.md
}
for b in setup commands first; do
  [ -n "$(block $b)" ] || fail "README.md has no readme-path:$b block"
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git ls-files -z | xargs -0 tar cf - | tar xf - -C "$work"
cd "$work"
runline() { # $1: what, $2: the line
  echo "+ $2"
  if ! bash -eo pipefail -c "$2" > "$work/.out" 2>&1; then
    tail -n 30 "$work/.out"
    fail "$1 failed: $2"
  fi
}
if [ $setup = 1 ]; then
  if [ "$(id -u)" = 0 ] || command -v sudo >/dev/null; then
    while IFS= read -r line; do runline "set-up line" "$line"; done < <(block setup)
  else
    echo "readme_path: not root and no sudo: the set-up line is not run"
  fi
fi
while IFS= read -r line; do
  runline "command" "$line"
  case $line in
    "make test"*) tail -n 1 "$work/.out" | grep -Eq '^[0-9]+ passed, 0 failed$' ||
                    fail "make test did not end with 'N passed, 0 failed': $(tail -n 3 "$work/.out")" ;;
  esac
done < <(block commands)
[ -x build/cortex ] || fail "build/cortex does not exist after the README's two commands"
build/cortex --version > /dev/null || fail "build/cortex does not run"
while IFS= read -r line; do
  case $line in *cortex*) ;; *) fail "the first-command block does not run cortex: $line" ;; esac
  runline "first cortex command" "$line"
  [ -s "$work/.out" ] || fail "the first cortex command printed nothing: $line"
  sed 's/^/  /' "$work/.out" | head -n 5
done < <(block first)
echo "README path: set-up line$([ $setup = 1 ] || echo ' (skipped)'), make demo, make test, $(block first | head -n 1): all work as written"
