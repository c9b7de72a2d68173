#!/bin/sh
# regenerate.sh: checks that format/generate.py is deterministic and the committed corpus is current: it
# regenerates the corpus into a temporary directory and compares it byte for byte with format/valid and
# format/invalid. Exits 77 (ctest SKIP_RETURN_CODE) when python3 is absent. Usage: regenerate.sh SOURCE_DIR
src=$1
if ! command -v python3 >/dev/null 2>&1; then
    echo "SKIP: python3 not found, cannot regenerate format/"
    exit 77
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
python3 "$src/format/generate.py" --out "$tmp" || exit 1
status=0
for sub in valid invalid; do
    if ! diff -r "$tmp/$sub" "$src/format/$sub"; then
        echo "FAIL: format/$sub differs from what format/generate.py writes"
        status=1
    fi
done
[ "$status" -eq 0 ] && echo "format/ regenerates byte for byte"
exit $status
