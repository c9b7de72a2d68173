#!/bin/sh
# exit_codes.sh: runs the built embt binary (argument 1) through every subcommand and checks the exit
# code (0 ok, 1 error, 2 usage), that stdout stays empty whenever the code is not 0, and that each
# failure prints exactly one `embt ...` line on stderr. Prints one line per failed check.
set -u
EMBT=${1:?usage: exit_codes.sh path/to/embt}
DIR=$(mktemp -d "${TMPDIR:-/tmp}/embt-cli-XXXXXX") || exit 1
trap 'rm -rf "$DIR"' EXIT INT TERM
failures=0

# check WANT_CODE ARGS...: runs embt ARGS, compares the exit code; on a non-zero code stdout must be
# empty and stderr one line starting with "embt" (usage errors: two, the second a hint).
check() {
    want=$1
    shift
    "$EMBT" "$@" >"$DIR/out" 2>"$DIR/err"
    got=$?
    if [ "$got" -ne "$want" ]; then
        echo "FAIL: embt $* exited $got, expected $want; stderr: $(cat "$DIR/err")"
        failures=$((failures + 1))
        return
    fi
    if [ "$want" -ne 0 ]; then
        if [ -s "$DIR/out" ]; then
            echo "FAIL: embt $* wrote to stdout on failure: $(head -c 200 "$DIR/out")"
            failures=$((failures + 1))
        fi
        if ! head -n 1 "$DIR/err" | grep -q '^embt'; then
            echo "FAIL: embt $* gave no 'embt ...' error line on stderr"
            failures=$((failures + 1))
        fi
        if [ "$want" -eq 1 ] && [ "$(wc -l <"$DIR/err")" -ne 1 ]; then
            echo "FAIL: embt $* printed more than one error line: $(cat "$DIR/err")"
            failures=$((failures + 1))
        fi
    fi
}

# expect_out TEXT: stdout of the last check equals TEXT plus a newline ("" : stdout is empty)
expect_out() {
    if [ -n "$1" ]; then printf '%s\n' "$1"; fi >"$DIR/want"
    if ! cmp -s "$DIR/want" "$DIR/out"; then
        echo "FAIL: expected stdout '$1', got '$(cat "$DIR/out")'"
        failures=$((failures + 1))
    fi
}

printf '3 2\nthe 0.5 -1\ncat 2 0.25\n</s> 0 1\n' >"$DIR/vec.txt"
printf 'not an embt file, long enough to have a header and more: %0128d\n' 0 >"$DIR/junk.embt"

# top level
check 0 --help
check 0 help
check 0 --version
check 0 help info
check 0 help meta
check 2
check 2 nosuch
check 2 help nosuch
check 2 --bogus

# convert makes the file the other commands read
check 0 convert --quiet "$DIR/vec.txt" "$DIR/m.embt"
check 2 convert
check 1 convert --quiet "$DIR/absent.txt" "$DIR/x.embt"

# info
check 0 info "$DIR/m.embt"
check 0 info --format=json "$DIR/m.embt"
check 0 info --help
check 2 info
check 2 info --format=xml "$DIR/m.embt"
check 1 info "$DIR/absent.embt"
check 1 info "$DIR/junk.embt"

# validate
check 0 validate "$DIR/m.embt"
expect_out "$DIR/m.embt: ok"
check 0 validate --quiet "$DIR/m.embt"
expect_out ""
check 0 validate --format=json "$DIR/m.embt"
check 2 validate
check 2 validate --format=yaml "$DIR/m.embt"
check 1 validate "$DIR/junk.embt"
check 1 validate --quiet "$DIR/m.embt" "$DIR/absent.embt"

# meta
check 0 meta "$DIR/m.embt" set training.lr 0.025
check 0 meta "$DIR/m.embt" set training.window -5
check 0 meta "$DIR/m.embt" get training.lr
expect_out "0.025"
check 0 meta "$DIR/m.embt" get training.window
expect_out "-5"
check 0 meta "$DIR/m.embt"
check 0 meta --format=json "$DIR/m.embt"
check 1 meta "$DIR/m.embt" get training.absent
check 1 meta "$DIR/m.embt" set training 1
check 1 meta "$DIR/absent.embt"
check 2 meta
check 2 meta "$DIR/m.embt" get
check 2 meta "$DIR/m.embt" frobnicate x
check 0 validate "$DIR/m.embt"

# outputs that are not regular files are refused and left alone (rename would replace the node)
mkfifo "$DIR/pipe"
check 1 convert --to word2vec "$DIR/m.embt" "$DIR/pipe"
[ -p "$DIR/pipe" ] || { echo "FAIL: the FIFO output was replaced"; failures=$((failures + 1)); }
check 1 info "$DIR/pipe" # an input FIFO is refused at once, not waited on

# small leniencies the review found: each is an error now
check 1 lookup --ids "$DIR/m.embt" ' 1'
printf '\000\000\300\177\000\000\200\077' >"$DIR/nan.raw"
check 1 init "$DIR/n.embt" --rows 1 --dim 2 --init "values:$DIR/nan.raw"
printf 'input: a.txt\n---\noutput: b.embt\n' >"$DIR/two.yaml"
check 2 train "$DIR/two.yaml"
printf '\357\273\277bom\nb\n' >"$DIR/bom.txt"
check 0 init "$DIR/bom.embt" --vocab "$DIR/bom.txt" --dim 2
check 0 lookup "$DIR/bom.embt" bom # the byte order mark is not part of the first token

printf '__label__a x y\n__label__b z w\n' >"$DIR/lab.txt"
check 0 train --task classify --input "$DIR/lab.txt" --output "$DIR/cls.embt" -q --epoch 1 --dim 4
check 0 meta "$DIR/cls.embt" set training.word_ngrams -1
check 1 predict "$DIR/cls.embt" "$DIR/lab.txt" # was read as 2^64 - 1, capped at 64

# an endless line is refused at a bound, not read until memory runs out
check 1 lookup "$DIR/m.embt" - </dev/zero
check 1 predict "$DIR/cls.embt" /dev/zero

# an output that is the text input would replace it
check 1 train --task classify --input "$DIR/lab.txt" --output "$DIR/lab.txt" -q --epoch 1
check 1 train --input "$DIR/lab.txt" --output "$DIR/lab.txt" -q --epoch 1
check 1 init "$DIR/bom.txt" --vocab "$DIR/bom.txt" --dim 2
grep -q '__label__a' "$DIR/lab.txt" || { echo "FAIL: lab.txt was replaced"; failures=$((failures + 1)); }

# results that cannot be written are exit 1 with one line (the output device is full)
if [ -w /dev/full ]; then
    for args in "--version" "validate $DIR/m.embt" "info $DIR/m.embt"; do
        # shellcheck disable=SC2086
        "$EMBT" $args >/dev/full 2>"$DIR/err"
        got=$?
        if [ "$got" -ne 1 ] || [ "$(wc -l <"$DIR/err")" -ne 1 ]; then
            echo "FAIL: embt $args > /dev/full exited $got with $(wc -l <"$DIR/err") error lines"
            failures=$((failures + 1))
        fi
    done
fi

# a signal in the middle of a write removes the temporary file (then ends the process as usual);
# SIGINT takes the same handler, but a background job of sh starts with it ignored
# (the second time through a symbolic link: the temporary file is beside its target)
mkdir "$DIR/real"
for sig in TERM HUP; do
    [ "$sig" = HUP ] && ln -s real/target.embt "$DIR/big.embt" && : >"$DIR/real/target.embt"
    "$EMBT" init "$DIR/big.embt" --rows 20000000 --dim 64 >/dev/null 2>&1 &
    pid=$!
    i=0
    while [ -z "$(ls "$DIR" "$DIR/real" | grep '\.embt\.tmp\.')" ] && [ $i -lt 100 ]; do
        sleep 0.05
        i=$((i + 1))
    done
    kill -s "$sig" "$pid"
    wait "$pid"
    if ls "$DIR" "$DIR/real" | grep -q '\.embt\.tmp\.'; then
        echo "FAIL: SIG$sig during init left $(ls "$DIR" "$DIR/real" | grep '\.embt\.tmp\.')"
        failures=$((failures + 1))
    fi
    rm -f "$DIR"/big.embt* "$DIR"/real/*
done

if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed"
    exit 1
fi
echo "all checks passed"
