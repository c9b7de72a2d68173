#!/usr/bin/env bash
# tests/install/readme_example.sh: ctest docs.readme_example. The README shows examples/loader.c as
# its library example; this fails when the two differ, so the README always shows code that builds
# and is tested (example.loader, install.consumers).
set -euo pipefail
src=${EMBT_SOURCE_DIR:?}
tmp=$(mktemp "${TMPDIR:-/tmp}/embt-readme.XXXXXX")
trap 'rm -f "$tmp"' EXIT
# The fenced ```c block whose first line is loader.c's opening comment.
awk '
    /^```c$/ && !done { inblock = 1; first = 1; next }
    /^```$/ && inblock { inblock = 0; if (taken) done = 1; next }
    inblock && first { first = 0; if ($0 ~ /^\/\* loader\.c:/) taken = 1 }
    inblock && taken && !done { print }
' "$src/README.md" >"$tmp"
[[ -s $tmp ]] || { echo "README.md has no \`\`\`c block starting with loader.c's comment" >&2; exit 1; }
diff -u "$src/examples/loader.c" "$tmp" || { echo "README.md's library example differs from examples/loader.c" >&2; exit 1; }
echo "docs.readme_example: ok"
