#!/usr/bin/env bash
# tests/fuzz/limits.sh: spec/FORMAT.md 10 in practice. Small files that declare huge sizes (every
# format/invalid sample: directory length over 16 MiB, offsets and lengths that wrap 2^64, 2^40 rows
# of 2^31 - 1 f64 columns, deflate ratios over 1032:1, ...) plus the reader's and the text
# importer's fuzz reproducers must make `embt validate` / `embt convert` exit 1 quickly, with a
# message that is not "out of memory", while the process may not use more than 256 MiB of address
# space. Prints the largest peak RSS seen (GNU time) when /usr/bin/time is installed.
# Usage: limits.sh EMBT_BINARY SOURCE_DIR [sanitized]
#   sanitized: the binary is built with ASan, whose shadow memory needs terabytes of address space,
#   so the cap is ASan's max_allocation_size_mb=256 (a larger single allocation aborts) instead.
set -uo pipefail
embt=$1
src=$2
mode=${3:-}
work=$(mktemp -d "${TMPDIR:-/tmp}/embt-limits-XXXXXX")
trap 'rm -rf "$work"' EXIT
cap_kb=262144
fail=0
checked=0
max_rss=0

# runs "$@" capped; sets rc, err (stderr) and rss (peak kB or 0)
run_capped() {
    local timefile=$work/time
    rm -f "$timefile"
    if [[ $mode == sanitized ]]; then
        ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}max_allocation_size_mb=256:allocator_may_return_null=0 \
            timeout 60 "$@" >/dev/null 2>"$work/err"
        rc=$?
    elif [[ -x /usr/bin/time ]]; then
        (ulimit -v $cap_kb && exec timeout 60 /usr/bin/time -f '%M' -o "$timefile" "$@") \
            >/dev/null 2>"$work/err"
        rc=$?
    else
        (ulimit -v $cap_kb && exec timeout 60 "$@") >/dev/null 2>"$work/err"
        rc=$?
    fi
    err=$(head -c 2000 "$work/err")
    rss=0
    [[ -s $timefile ]] && rss=$(tail -n 1 "$timefile")
    [[ $rss =~ ^[0-9]+$ ]] || rss=0
}

expect_exit() { # expect_exit CODE LABEL COMMAND...
    local want=$1 label=$2
    shift 2
    local t0=$SECONDS
    run_capped "$@"
    checked=$((checked + 1))
    ((rss > max_rss)) && max_rss=$rss
    if [[ $rc -ne $want ]]; then
        echo "FAIL $label: exit $rc, expected $want: $err"
        fail=1
    elif grep -qi 'out of memory' <<<"$err"; then
        echo "FAIL $label: rejected only for lack of memory: $err"
        fail=1
    elif ((SECONDS - t0 > 10)); then
        echo "FAIL $label: took $((SECONDS - t0)) s"
        fail=1
    fi
}
check() { expect_exit 1 "$@"; } # check LABEL COMMAND...: bad input, refused

for f in "$src"/format/invalid/*.embt "$src"/tests/fuzz/regressions/embt/*; do
    [[ -f $f ]] || continue
    check "validate $(basename "$f")" "$embt" validate "$f"
done
for f in "$src"/tests/fuzz/regressions/text/*; do
    [[ -f $f ]] || continue
    cp "$f" "$work/in"
    # a reproducer may convert cleanly (it was a crash, not bad input): only bad ones are checked
    if "$embt" convert "$work/in" "$work/probe.embt" >/dev/null 2>&1; then
        rm -f "$work/probe.embt"
        continue
    fi
    check "convert $(basename "$f")" "$embt" convert "$work/in" "$work/out.embt"
    if [[ -e $work/out.embt ]]; then
        echo "FAIL convert $(basename "$f"): output left behind"
        fail=1
    fi
done

# valid inputs of 0 rows whose header or shape declares rows of 2^30 and more values: they convert,
# and so does every binary export of the result, without a buffer for one row
for f in "$src"/tests/fuzz/regressions/*/zero-rows-*; do
    [[ -f $f ]] || continue
    rm -f "$work/zero.embt"
    expect_exit 0 "convert $(basename "$f")" "$embt" convert "$f" "$work/zero.embt"
    [[ -f $work/zero.embt ]] || continue
    for to in npy npz safetensors embt; do
        expect_exit 0 "export $(basename "$f") to $to" "$embt" convert --to "$to" \
            "$work/zero.embt" "$work/zero.out"
        rm -f "$work/zero.out"
    done
done

echo "limits: $checked inputs checked, largest peak RSS ${max_rss} kB (cap ${cap_kb} kB${mode:+, $mode})"
((checked > 0)) || { echo "FAIL: no input found under $src"; exit 1; }
exit $fail
