#!/usr/bin/env bash
# tests/headers/self_contained.sh: compiles each public header alone, from a generated one-line .c
# (`#include <embt/NAME.h>`), with -std=c11 -pedantic -Wall -Wextra -Werror, and the same line as C++11
# when a C++ compiler is given; then checks that embt.h includes every other header of the directory.
# Usage: self_contained.sh INCLUDE_DIR WORK_DIR CC [CXX]
set -euo pipefail
inc=$1 work=$2 cc=$3 cxx=${4:-}
mkdir -p "$work"
failed=0
headers=("$inc"/embt/*.h)
[[ -e ${headers[0]} ]] || { echo "no headers in $inc/embt" >&2; exit 1; }
for h in "${headers[@]}"; do
    name=$(basename "$h" .h)
    unit=$work/$name.c
    echo "#include <embt/$name.h>" >"$unit"
    if "$cc" -std=c11 -pedantic -Wall -Wextra -Werror -fsyntax-only -I "$inc" "$unit"; then
        echo "ok   C11    embt/$name.h"
    else
        echo "FAIL C11    embt/$name.h" >&2
        failed=1
    fi
    if [[ -n $cxx ]]; then
        if "$cxx" -x c++ -std=c++11 -pedantic -Wall -Wextra -Werror -fsyntax-only -I "$inc" "$unit"; then
            echo "ok   C++11  embt/$name.h"
        else
            echo "FAIL C++11  embt/$name.h" >&2
            failed=1
        fi
    fi
done
[[ -n $cxx ]] || echo "note: no C++ compiler found, C++ checks skipped"
# The umbrella header is the one users include: a module header it forgets is unreachable.
for h in "${headers[@]}"; do
    name=$(basename "$h")
    [[ $name == embt.h ]] && continue
    if ! grep -Eq "^#include \"$name\"" "$inc/embt/embt.h"; then
        echo "FAIL embt/embt.h does not include $name" >&2
        failed=1
    fi
done
exit $failed
