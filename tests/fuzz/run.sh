#!/usr/bin/env bash
# tests/fuzz/run.sh: builds the libFuzzer targets with clang (-DEMBT_BUILD_FUZZERS=ON: ASan + UBSan
# + fuzzer instrumentation, asserts on) and runs each for a bounded time on its seed corpus, failing
# on any crash, leak, timeout or sanitizer report. The growing corpus of each target is kept in
# BUILD_DIR/corpus/<target> between runs; crashing inputs land in BUILD_DIR/artifacts/<target>/.
# Usage: tests/fuzz/run.sh [SECONDS [TARGET...]]   (SECONDS per target, default 60; all targets)
# Environment: BUILD_DIR (default build-fuzz), FUZZ_ARGS (extra libFuzzer flags, e.g. -jobs=2).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
seconds=${1:-60}
shift $(($# > 0 ? 1 : 0))
targets=("$@")
((${#targets[@]})) || targets=(embt meta text roundtrip word2vec_bin fasttext_bin npy npz
    safetensors json export config model eval resume)
build=${BUILD_DIR:-build-fuzz}
src=$PWD

if [[ ! -f $build/CMakeCache.txt ]]; then
    # Debug flags plus -O1: fast enough to fuzz, and assert() stays on (no NDEBUG)
    CC=clang cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS=-O1 \
        -DEMBT_BUILD_FUZZERS=ON -DEMBT_BUILD_TESTS=OFF
fi
cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" \
    --target "${targets[@]/#/fuzz_}" "${targets[@]/#/fuzz_replay_}"

seeds_for() {
    case $1 in
    embt) echo "$src/format/valid $src/format/invalid" ;;
    meta) echo "$src/format/valid $src/tests/fuzz/seeds/meta" ;;
    *) echo "$src/tests/fuzz/seeds/$1" ;;
    esac
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
for t in "${targets[@]}"; do
    corpus=$build/corpus/$t
    artifacts=$build/artifacts/$t
    mkdir -p "$corpus" "$artifacts"
    regressions=()
    [[ -d $src/tests/fuzz/regressions/$t ]] && regressions=("$src/tests/fuzz/regressions/$t")
    log=$build/fuzz-$t.log
    echo "==== fuzz_$t: ${seconds}s"
    # the first directory is the writable corpus; seeds and reproducers are read from the others.
    # -max_len 65536: room for the larger seeds (align-4096.embt is 20 kB).
    # shellcheck disable=SC2046,SC2086
    if "$build/fuzz_$t" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 \
        -max_len=65536 -print_final_stats=1 -artifact_prefix="$artifacts/" \
        ${FUZZ_SEED:+-seed=$FUZZ_SEED} ${FUZZ_ARGS:-} \
        "$corpus" $(seeds_for "$t") "${regressions[@]}" >"$log" 2>&1; then
        execs=$(grep -h 'stat::number_of_executed_units' "$log" | awk '{ s += $2 } END { print s + 0 }')
        echo "fuzz_$t: ok, $execs executions, corpus $(find "$corpus" -type f | wc -l) files" \
            "($(du -sk "$corpus" | cut -f1) kB)"
    else
        echo "fuzz_$t: FAILED (log $log, inputs in $artifacts/)"
        grep -E 'ERROR: |SUMMARY: |check failed|runtime error' "$log" | head -20 || true
        failed+=("$t")
    fi
done
if ((${#failed[@]})); then
    echo "fuzz targets failed: ${failed[*]}"
    exit 1
fi
