#!/usr/bin/env bash
# tests/fuzz/make_resume_seeds.sh: writes the seeds of fuzz_resume (seeds/resume/): training state
# from `embt train` on tests/fixtures/classify/train.txt (the corpus the target trains on), each
# prefixed with the byte that picks the target's mode: 0 skip-gram --resume, 1 skip-gram
# --pretrained, 2 classifier --resume, 3 classifier --pretrained. Small (dim 2 to 4) so that
# mutations reach every byte; stopped runs, so that the thread and optimiser state are present.
# Usage: tests/fuzz/make_resume_seeds.sh EMBT_BINARY
set -euo pipefail
embt=$1
cd "$(dirname "${BASH_SOURCE[0]}")"
out=seeds/resume
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
corpus=../fixtures/classify/train.txt
sg=(train --task skipgram --input "$corpus" --min-count 1 --threads 1 --seed 3 -q)
cls=(train --task classify --input "$corpus" --min-count 1 --threads 1 --seed 7 -q)

# seed NAME MODE FILE: the mode byte, then the file
seed() { { printf "\\x$(printf %02x "$2")"; cat "$3"; } >"$out/$1"; }

"$embt" "${sg[@]}" --dim 3 --epoch 3 --window 2 --neg 2 --stop-after 60 --output "$tmp/sg-sgd.embt"
"$embt" "${sg[@]}" --dim 2 --epoch 2 --window 3 --neg 1 --optimizer adam --stop-after 50 \
    --output "$tmp/sg-adam.embt"
"$embt" "${sg[@]}" --dim 2 --epoch 2 --optimizer adagrad --stop-after 40 --output "$tmp/sg-adagrad.embt"
"$embt" "${sg[@]}" --dim 3 --epoch 1 --output "$tmp/sg-done.embt"
"$embt" "${cls[@]}" --dim 4 --epoch 3 --stop-after 6 --output "$tmp/cls-words.embt"
"$embt" "${cls[@]}" --dim 2 --epoch 3 --word-ngrams 2 --bucket 8 --stop-after 5 \
    --output "$tmp/cls-bigrams.embt"
"$embt" "${cls[@]}" --dim 3 --epoch 2 --pretrained "$tmp/sg-done.embt" --freeze --stop-after 4 \
    --output "$tmp/cls-frozen.embt"

seed sg-resume-sgd.bin 0 "$tmp/sg-sgd.embt"
seed sg-resume-adam.bin 0 "$tmp/sg-adam.embt"
seed sg-resume-adagrad.bin 0 "$tmp/sg-adagrad.embt"
seed sg-pretrained.bin 1 "$tmp/sg-done.embt"
seed cls-resume-words.bin 2 "$tmp/cls-words.embt"
seed cls-resume-bigrams.bin 2 "$tmp/cls-bigrams.embt"
seed cls-resume-frozen.bin 2 "$tmp/cls-frozen.embt"
seed cls-pretrained.bin 3 "$tmp/sg-done.embt"
ls -l "$out"
