#!/usr/bin/env bash
# tests/install/loader.sh: ctest example.loader. Converts a tiny GloVe text with `embt convert`, then
# checks examples/loader.c's output line for known tokens and its exit status and one-line error
# for an unknown token, a missing file and a bad command line.
# Usage: loader.sh LOADER   (env: EMBT_BINARY, the embt CLI)
set -euo pipefail
loader=$1
: "${EMBT_BINARY:?EMBT_BINARY must name the embt CLI}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/embt-loader.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

fail() { echo "example.loader: $*" >&2; exit 1; }

# Values chosen to show %.9g round-tripping float32: 0.1 and 2e-3 are not exact in binary.
printf '%s\n' 'the 0.5 -1.25 3' 'of 0.1 2e-3 -0' 'naïve 1 -2 1e10' >"$tmp/tiny.txt"
"$EMBT_BINARY" convert "$tmp/tiny.txt" "$tmp/tiny.embt" || fail "embt convert failed"

check_row() { # token, expected stdout
    local out
    out=$("$loader" "$tmp/tiny.embt" "$1") || fail "loader exited $? for token '$1'"
    [[ $out == "$2" ]] || fail "token '$1': expected '$2', got '$out'"
}
check_row the 'the 0.5 -1.25 3'
check_row of 'of 0.100000001 0.00200000009 -0'
check_row 'naïve' 'naïve 1 -2 1e+10'

check_error() { # description, args...
    local what=$1 rc=0
    shift
    "$loader" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
    [[ $rc -eq 1 ]] || fail "$what: expected exit 1, got $rc"
    [[ ! -s $tmp/out ]] || fail "$what: stdout not empty: $(cat "$tmp/out")"
    [[ $(wc -l <"$tmp/err") -eq 1 ]] || fail "$what: expected one line on stderr, got: $(cat "$tmp/err")"
}
check_error "unknown token" "$tmp/tiny.embt" absent
check_error "missing file" "$tmp/missing.embt" the
check_error "not an embt file" "$tmp/tiny.txt" the
check_error "no arguments"
echo "example.loader: ok"
