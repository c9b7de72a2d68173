#!/usr/bin/env bash
# tests/fuzz/make_model_seeds.sh: writes the seed models of fuzz_model (seeds/model/): classifiers
# trained by `embt train --task classify` on tests/fixtures/classify/train.txt, small enough to
# mutate (dim 2 to 4, a few epochs), with and without word n-grams and buckets.
# Usage: tests/fuzz/make_model_seeds.sh EMBT_BINARY
set -euo pipefail
embt=$1
cd "$(dirname "${BASH_SOURCE[0]}")"
out=seeds/model
mkdir -p "$out"
train=../fixtures/classify/train.txt
common=(train --task classify --input "$train" --epoch 2 --min-count 1 --threads 1 --seed 7 -q)
"$embt" "${common[@]}" --dim 4 --output "$out/words-only.embt"
"$embt" "${common[@]}" --dim 3 --word-ngrams 2 --bucket 16 --output "$out/bigrams-16-buckets.embt"
"$embt" "${common[@]}" --dim 2 --word-ngrams 3 --bucket 5 --lr 0.5 --output "$out/trigrams-5-buckets.embt"
ls -l "$out"
