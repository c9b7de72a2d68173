#!/usr/bin/env bash
# scripts/test.sh: builds embt for testing (Debug unless CMake options say otherwise) and runs the
# whole ctest suite. Configures only when the build directory has no cache yet or options are given.
# Usage: scripts/test.sh [BUILD_DIR [CMAKE_OPTION...]]   (BUILD_DIR defaults to build-debug)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
dir=${1:-build-debug}
shift $(($# > 0 ? 1 : 0))
jobs=$(nproc 2>/dev/null || echo 2)

if [[ ! -f $dir/CMakeCache.txt || $# -gt 0 ]]; then
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Debug "$@"
fi
cmake --build "$dir" -j"$jobs"
ctest --test-dir "$dir" --output-on-failure -j2
