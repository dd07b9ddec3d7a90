#!/bin/sh
# gen_exports.sh -- the public API of Cortex as the linker sees it.
#
#   tools/gen_exports.sh [-l] HEADER...
#
# Reads the public headers (include/cortex.h include/cortex/*.h) and finds
# every function and variable they declare with external linkage: function
# prototypes, non-static (inline) function definitions and extern/global
# variables. Typedefs, struct/union/enum definitions, macros, _Static_assert
# and static (inline) functions are not symbols of the library: skipped.
#
# Default output: a GNU ld version script for libcortex.so that exports those
# names and hides every other symbol (-Wl,--version-script=FILE):
#   { global: cx_add; ...; local: *; };
# With -l: the names only, one per line, sorted.
#
# POSIX sh + awk only (no compiler, no Python). Comments and string literals
# are handled; preprocessor directives (with continuation lines) are dropped,
# keeping the text of every conditional branch except C++-only ones
# (#ifdef __cplusplus ... #endif); extern "C" { } is ignored. Fails when the
# braces do not balance or no name is found, so a broken parse never yields an
# empty or partial API silently.
set -eu

list=0
if [ "${1-}" = "-l" ]; then list=1; shift; fi
if [ $# -eq 0 ]; then
    echo "usage: $0 [-l] HEADER..." >&2
    exit 2
fi
for f in "$@"; do
    [ -r "$f" ] || { echo "$0: cannot read $f" >&2; exit 2; }
done

names=$(awk '
BEGIN { bad = 0; incomment = 0; nl = 0 }
# ---------------------------------------------------------------- pass 1
# Errors: message on stderr (close() waits for it), exit status 1.
function die(msg) {
    print "gen_exports: " msg | "cat 1>&2"; close("cat 1>&2")
    bad = 1; exit 1
}
# Per line: strip comments (which may span lines), drop preprocessor
# directives and C++-only conditional blocks; keep the rest in L[].
function clean(line,    out, i, c, c2, n, q) {
    out = ""; n = length(line); q = ""
    for (i = 1; i <= n; i++) {
        c = substr(line, i, 1); c2 = substr(line, i, 2)
        if (incomment) {
            if (c2 == "*/") { incomment = 0; i++; out = out " " }
            continue
        }
        if (q != "") {                      # inside a string or char literal
            out = out c
            if (c == "\\") { out = out substr(line, i + 1, 1); i++ }
            else if (c == q) q = ""
            continue
        }
        if (c2 == "/*") { incomment = 1; i++; continue }
        if (c2 == "//") break
        if (c == "\"" || c == "\047") q = c
        out = out c
    }
    return out
}
FNR == 1 {
    if (incomment) { die("unterminated comment in the file read before " FILENAME) }
    incont = 0; ppdepth = 0; skipfrom = 0
}
{
    line = clean($0)
    if (incont) { incont = (line ~ /\\[ \t]*$/); next }   # directive continued
    if (line ~ /^[ \t]*#/) {
        incont = (line ~ /\\[ \t]*$/)
        d = line; sub(/^[ \t]*#[ \t]*/, "", d)
        if (d ~ /^if/) {
            ppdepth++
            if (!skipfrom && (d ~ /^ifdef[ \t]+__cplusplus/ || d ~ /^if[ \t(!]*(defined[ \t(]*)?__cplusplus/))
                if (d !~ /^if[ \t(]*!/) skipfrom = ppdepth
        } else if (d ~ /^(else|elif)/) {
            if (skipfrom == ppdepth) skipfrom = 0         # the C branch
        } else if (d ~ /^endif/) {
            if (skipfrom == ppdepth) skipfrom = 0
            ppdepth--
        }
        next
    }
    if (!skipfrom) L[++nl] = line
}

# ---------------------------------------------------------------- pass 2
function trim(s) { gsub(/^[ \t]+|[ \t]+$/, "", s); return s }
function is_keyword(w) {
    return w ~ /^(auto|break|case|char|const|continue|default|do|double|else|enum|extern|float|for|goto|if|inline|int|long|register|restrict|return|short|signed|sizeof|static|struct|switch|typedef|union|unsigned|void|volatile|while|_Alignas|_Alignof|_Atomic|_Bool|_Complex|_Generic|_Imaginary|_Noreturn|_Static_assert|_Thread_local|bool)$/
}
# Remove GNU attribute / asm annotations with their balanced parentheses.
function strip_annot(s,    out, rest, depth, i, c) {
    out = ""
    while (match(s, /(__attribute__|__attribute|__asm__|__asm|__declspec)[ \t]*[(]/)) {
        out = out substr(s, 1, RSTART - 1)
        rest = substr(s, RSTART + RLENGTH - 1)         # from the "("
        depth = 0
        for (i = 1; i <= length(rest); i++) {
            c = substr(rest, i, 1)
            if (c == "(") depth++
            else if (c == ")" && --depth == 0) break
        }
        s = " " substr(rest, i + 1)
    }
    out = out s
    gsub(/__extension__|__inline__|__inline|__restrict__|__restrict/, " ", out)
    return out
}
# Split s at commas outside parentheses and brackets into part[1..n].
function split_top(s, part,    n, depth, i, c, cur) {
    n = 0; depth = 0; cur = ""
    for (i = 1; i <= length(s); i++) {
        c = substr(s, i, 1)
        if (c == "(" || c == "[") depth++
        else if (c == ")" || c == "]") depth--
        if (c == "," && depth == 0) { part[++n] = cur; cur = ""; continue }
        cur = cur c
    }
    part[++n] = cur
    return n
}
# The name a declarator declares ("" if none): the first identifier that is
# not a keyword, after the type specifiers, looking through "(*" for pointers
# to functions. `first` is set when the type specifiers are in front.
function declarator_name(d, first,    p, head, rest, w) {
    p = index(d, "(")
    if (p > 0) {
        head = substr(d, 1, p - 1); rest = substr(d, p + 1)
        if (match(rest, /^[ \t]*[*][ \t*]*(const[ \t]+|volatile[ \t]+)*[A-Za-z_][A-Za-z0-9_]*/)) {
            w = substr(rest, RSTART, RLENGTH)           # (*name)(...) / (*name(args))(...)
            match(w, /[A-Za-z_][A-Za-z0-9_]*$/)
            return substr(w, RSTART)
        }
        d = head                                        # name(args)
    }
    sub(/=.*/, "", d)                                   # initialiser
    while (match(d, /\[[^]]*\]/)) d = substr(d, 1, RSTART - 1) " " substr(d, RSTART + RLENGTH)
    d = trim(d)
    if (!match(d, /[A-Za-z_][A-Za-z0-9_]*$/)) return ""
    w = substr(d, RSTART)
    if (is_keyword(w)) return ""
    if (first) {
        head = trim(substr(d, 1, RSTART - 1))
        if (head == "" || head ~ /(^|[^A-Za-z0-9_])(struct|union|enum)$/) return ""  # no type / a tag
    }
    return w
}
# One top-level declaration, bodies reduced to "{}", without its ";".
function declaration(s,    n, part, i, w) {
    s = trim(strip_annot(s))
    if (s == "") return
    if (s ~ /^(typedef|_Static_assert|static_assert)([^A-Za-z0-9_]|$)/) return
    if (s ~ /(^|[^A-Za-z0-9_])(static|_Thread_local)([^A-Za-z0-9_]|$)/) return
    if (s ~ /^((const|volatile|extern)[ \t]+)*(struct|union|enum)[^({]*\{\}/) {
        sub(/^[^{]*\{\}/, "int ", s)                    # keep declarators after the body
        if (trim(s) == "int") return
    }
    n = split_top(s, part)
    for (i = 1; i <= n; i++) {
        w = declarator_name(part[i], i == 1)
        if (w != "") found[w] = 1
    }
}
END {
    if (bad) exit 1
    if (incomment) { die("unterminated comment") }
    stmt = ""; depth = 0; linkage = 0
    for (ln = 1; ln <= nl; ln++) {
        text = L[ln] " "; n = length(text)
        for (i = 1; i <= n; i++) {
            c = substr(text, i, 1)
            if (c == "\"" || c == "\047") {             # literal: copy, do not interpret
                q = c; lit = c
                for (i++; i <= n; i++) {
                    c = substr(text, i, 1); lit = lit c
                    if (c == "\\") { i++; lit = lit substr(text, i, 1) }
                    else if (c == q) break
                }
                if (depth == 0) stmt = stmt lit
                continue
            }
            if (c == "{") {
                if (depth == 0 && stmt ~ /extern[ \t]*"C"[ \t]*$/) {
                    sub(/extern[ \t]*"C"[ \t]*$/, "", stmt); linkage++; continue
                }
                if (depth == 0) { head = stmt; stmt = stmt "{}" }
                depth++
                continue
            }
            if (c == "}") {
                if (depth == 0) {
                    if (linkage > 0) { linkage--; continue }
                    die("unbalanced } in the public headers")
                }
                depth--
                # the end of a function definition "T f(...) { ... }" ends the declaration
                if (depth == 0 && head ~ /[(]/ && head !~ /=/ \
                    && head !~ /^[ \t]*typedef([^A-Za-z0-9_]|$)/ \
                    && head !~ /^[ \t]*((const|volatile|extern)[ \t]+)*(struct|union|enum)([^A-Za-z0-9_]|$)/) {
                    declaration(head); stmt = ""
                }
                continue
            }
            if (depth > 0) continue
            if (c == ";") { declaration(stmt); stmt = ""; continue }
            stmt = stmt c
        }
    }
    if (depth != 0 || linkage != 0) { die("unbalanced { in the public headers") }
    if (trim(stmt) != "") { die("declaration without ;: " trim(stmt)) }
    for (w in found) print w
}' "$@")
names=$(printf '%s\n' "$names" | LC_ALL=C sort)

if [ -z "$names" ]; then
    echo "$0: no exported function or variable found in $*" >&2
    exit 1
fi

if [ "$list" = 1 ]; then
    printf '%s\n' "$names"
    exit 0
fi

echo "/* Generated by tools/gen_exports.sh from the public headers; do not edit. */"
echo "{"
echo "  global:"
printf '%s\n' "$names" | sed 's/^/    /; s/$/;/'
echo "  local:"
echo "    *;"
echo "};"
