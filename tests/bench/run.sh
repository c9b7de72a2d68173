#!/bin/bash
# run.sh: the one command of the benchmark suite (issue 7): installs the peers, fetches the real data,
# builds embt (Release), times embt against gensim, NumPy, PyTorch and fastText on the same work
# (alternating runs), and writes results.md, results.json and plot.png (tests/bench/report.py).
#
#   tests/bench/run.sh [--smoke] [--runs N] [--out DIR] [--bin BUILD_DIR] [--rows ID,...]
#
#   --smoke    tiny inputs (2,000 rows of data/sample), no peers, no installs, no downloads: seconds
#   --runs N   runs of each side per row (default 5, smoke 1; the slow rows use at most 3, the training rows 1)
#   --out DIR  where the results go (default tests/bench/results)
#   --bin DIR  an existing build directory (embt and tests/gather_rate ...) instead of building
#   --rows L   only these rows (ids, comma-separated, e.g. skipgram,classify_glove) with their
#              quality figures; no physical references or file sizes
# Environment: EMBT_DATA (data directory, default ~/.cache/embt-data), EMBT_BENCH_BUILD (build
# directory, default /tmp/embt-bench-build), EMBT_BENCH_PYTHON (peer interpreter, /usr/bin/python3),
# EMBT_BENCH_WORD2VEC (a word2vec.c binary: an extra peer of the skip-gram row; missing when unset).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
smoke=0 runs="" out=$here/results bin="" only=""
# embt's epochs in "cooking classification from pretrained GloVe" (fastText's stay 25): under tuning
cls_glove_epochs=120
while (($#)); do
    case $1 in
    --smoke) smoke=1 ;;
    --runs) runs=$2 && shift ;;
    --runs=*) runs=${1#*=} ;;
    --out) out=$2 && shift ;;
    --out=*) out=${1#*=} ;;
    --bin) bin=$2 && shift ;;
    --bin=*) bin=${1#*=} ;;
    --rows) only=$2 && shift ;;
    --rows=*) only=${1#*=} ;;
    -h | --help) sed -n '2,16p' "$0" | cut -c3- && exit 0 ;;
    *) echo "run.sh: unknown argument '$1' (try --help)" >&2 && exit 2 ;;
    esac
    shift
done
[[ -n $runs ]] || runs=$( ((smoke)) && echo 1 || echo 5)
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --runs needs a positive integer" >&2 && exit 2; }
slow=$((runs < 3 ? runs : 3))
want() { [[ -z $only || ",$only," == *",$1,"* ]]; } # want ROW_ID: the row is to be run

peer_py=${EMBT_BENCH_PYTHON:-/usr/bin/python3}
py=$peer_py # the harness and report.py need only the standard library
[[ -x $py ]] || py=$(command -v python3) || { echo "run.sh: python3 is required" >&2 && exit 1; }
peers=$here/peers
work=$(mktemp -d "${TMPDIR:-/tmp}/embt-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
jsonl=$work/rows.jsonl
: >"$jsonl"
say() { printf '== %s\n' "$*" >&2; }

# 1. Peers (Debian packages), installed when missing; never in smoke mode.
have() { # have MODULE-or-COMMAND
    case $1 in
    fasttext) command -v fasttext >/dev/null ;;
    *) [[ -x $peer_py ]] && "$peer_py" -c "import $1" 2>/dev/null ;;
    esac
}
if ((!smoke)); then
    need=()
    have numpy || need+=(python3-numpy)
    have gensim || need+=(python3-gensim)
    have torch || need+=(python3-torch)
    have matplotlib || need+=(python3-matplotlib)
    have fasttext || need+=(fasttext)
    if ((${#need[@]})); then
        say "installing ${need[*]}"
        sudo=()
        ((EUID == 0)) || sudo=(sudo)
        "${sudo[@]}" apt-get install -y "${need[@]}" ||
            { "${sudo[@]}" apt-get update && "${sudo[@]}" apt-get install -y "${need[@]}"; } ||
            say "could not install ${need[*]}: those peers are reported missing"
    fi
fi

# 2. Data.
eval_dir=${EMBT_EVAL:-$root/../shared/data/eval}
questions=$eval_dir/questions-words.txt
ws353=$eval_dir/EN-WS-353-ALL.txt
if ((smoke)); then
    data=$work
    gzip -dc "$root/data/sample/glove.6B.100d.20k.txt.gz" | head -n 2000 >"$work/glove.txt" || true
    glove=$work/glove.txt
    rows=2000
else
    data=$(bash "$root/../shared/scripts/fetch-real-data.sh" "${EMBT_DATA:-$HOME/.cache/embt-data}" | tail -n 1)
    glove=$data/glove.6B.100d.txt
    rows=341479
fi

# 3. Build (Release), or use the given build directory.
if [[ -z $bin ]]; then
    bin=${EMBT_BENCH_BUILD:-/tmp/embt-bench-build}
    say "building embt (Release) in $bin"
    cmake -S "$root" -B "$bin" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$bin" -j "$(nproc)" --target embt_tool gather_rate similar_rate membw >/dev/null
fi
tool() { # tool NAME: path of a built program
    local p
    for p in "$bin/$1" "$bin/tests/$1"; do [[ -x $p ]] && echo "$p" && return 0; done
    echo "run.sh: $1 not found under $bin" >&2
    return 1
}
embt=$(tool embt)
gather_rate="" similar_rate="" membw="" # only the programs of the rows to run (a --bin without tests)
if want gather; then gather_rate=$(tool gather_rate); fi
if want similar_one || want similar_batch; then similar_rate=$(tool similar_rate); fi
if [[ -z $only ]]; then membw=$(tool membw); fi

# Helpers: one row through the harness; peer arguments with their availability.
row() { "$py" "$peers/measure.py" row --jsonl "$jsonl" "$@"; }
fact() { "$py" "$peers/measure.py" fact --jsonl "$jsonl" "$@"; }
pa=()
peer() { # peer NAME NEEDS COMMAND: appends to pa the peer, or the reason it is missing
    if ((smoke)); then
        pa+=(--peer-missing "$1" "smoke mode: peers are not run")
    elif ! have "$2"; then
        pa+=(--peer-missing "$1" "$2 is not installed")
    else
        pa+=(--peer "$1" "$3")
    fi
}
json_num() { # json_num KEY: the first numeric value of "KEY" in the JSON on stdin
    grep -o "\"$1\":[-0-9.e]*" | head -n 1 | cut -d: -f2
}

# Converted inputs, made once and not timed.
say "preparing inputs"
cat "$glove" >/dev/null # warm page cache for every row
"$embt" convert -q --from glove "$glove" "$work/glove.embt"
"$embt" convert -q --to word2vec-bin "$work/glove.embt" "$work/glove.bin"
kv=$work/glove.kv
need_kv=0
for r in open_lookup similar_one similar_batch analogies export_text; do want $r && need_kv=1; done
[[ -n $only ]] || need_kv=1 # gensim's WS-353 figure
if ((!smoke && need_kv)) && have gensim; then
    "$peer_py" "$peers/prepare.py" "$work/glove.bin" "$kv"
fi
if [[ -s $questions ]]; then # every 20th question of each section: the gensim run stays short
    awk '/^:/ { print; next } { if (n++ % 20 == 0) print }' "$questions" >"$work/questions-20.txt"
fi
textmb=$(($(stat -c %s "$glove") / 1000000))

say "timing (runs: $runs, slow rows: $slow)"
if want glove_text; then
    pa=()
    peer gensim gensim "$peer_py $peers/load.py gensim-text $glove"
    peer numpy numpy "$peer_py $peers/load.py numpy-text $glove"
    row --id glove_text --title "GloVe text ($textmb MB) to a loaded table" --runs "$slow" \
        --note "embt convert writes the .embt; peers: in-process load time (imports excluded)" \
        --embt "$embt convert -q --from glove $glove $work/t.embt" "${pa[@]}"
fi

if want w2v_bin; then
    pa=()
    peer gensim gensim "$peer_py $peers/load.py gensim-bin $work/glove.bin"
    row --id w2v_bin --title "word2vec binary to a loaded table" --runs "$runs" \
        --note "embt convert writes the .embt; gensim: load_word2vec_format(binary=True)" \
        --embt "$embt convert -q $work/glove.bin $work/b.embt" "${pa[@]}"
fi

if want open_lookup; then
    pa=()
    peer gensim gensim "$peer_py $peers/open_lookup.py $kv king"
    row --id open_lookup --title "open a converted file and look up one word" --runs "$runs" --wall \
        --note "whole process, as a user runs it: embt lookup vs Python + gensim KeyedVectors.load(mmap='r')" \
        --embt "$embt lookup $work/glove.embt king" "${pa[@]}"
fi

if want gather; then
    n_ids=$((rows > 20000 ? 10000 : rows / 2))
    pa=()
    peer numpy numpy "$peer_py $peers/gather.py numpy $rows 100 $n_ids 41"
    peer torch torch "$peer_py $peers/gather.py torch $rows 100 $n_ids 41"
    row --id gather --title "$n_ids random-id gathers, dim 100 ($rows rows, f32)" --runs "$runs" \
        --note "median per call of 41 calls, fresh ids each; embt_gather (tests/bench/gather_rate)" \
        --parse embt 'gather_f32: \{median_us: ([0-9.]+)' 1e-6 \
        --embt "$gather_rate $rows 100 $n_ids" "${pa[@]}"
fi

if want similar_one; then
    pa=()
    peer gensim gensim "$peer_py $peers/similar.py gensim single $kv"
    peer numpy numpy "$peer_py $peers/similar.py numpy single $kv"
    row --id similar_one --title "top-10 neighbours, one query" --runs "$runs" \
        --note "mean of 50 queries, norms computed before timing (tests/bench/similar_rate)" \
        --parse embt 'one top-10 query: ([0-9.]+) ms mean' 1e-3 \
        --embt "$similar_rate $work/glove.embt" "${pa[@]}"
fi

if want similar_batch; then
    pa=()
    peer gensim gensim "$peer_py $peers/similar.py gensim batch $kv"
    peer numpy numpy "$peer_py $peers/similar.py numpy batch $kv"
    row --id similar_batch --title "top-10 neighbours, batch of 1,000 queries" --runs "$slow" \
        --note "gensim has no batch query: 200 most_similar calls x 5; numpy: 10 matrix products of 100 queries" \
        --parse embt 'batch of 1000 top-10 queries: ([0-9.]+) ms' 1e-3 \
        --embt "$similar_rate $work/glove.embt" "${pa[@]}"
fi

if want analogies; then
    if [[ -s $work/questions-20.txt ]]; then
        pa=()
        peer gensim gensim "$peer_py $peers/evaluate.py analogies $kv $work/questions-20.txt 300000"
        row --id analogies --title "questions-words analogy evaluation, restrict 300000 (every 20th question)" \
            --runs "$slow" --note "embt eval (whole process) vs gensim evaluate_word_analogies (in-process)" \
            --embt "$embt eval --json --analogies $work/questions-20.txt --restrict 300000 $work/glove.embt" \
            "${pa[@]}"
        acc=$("$embt" eval --json --analogies "$work/questions-20.txt" --restrict 300000 "$work/glove.embt" | json_num accuracy)
        fact --id analogy_subset --title "analogy accuracy, every 20th question, embt eval (gensim: see figures)" --value "$acc"
    else
        row --id analogies --title "questions-words analogy evaluation, restrict 300000" \
            --embt-missing "questions-words.txt not found in $eval_dir" \
            --peer-missing gensim "questions-words.txt not found in $eval_dir"
    fi
fi

# Training rows (issue 5), one run each; quality figures for each side that ran.
has_train=0
"$embt" help train >/dev/null 2>&1 && has_train=1
ws353_of() { # ws353_of FILE.embt: its WS-353 Spearman (pairs with both words in the vocabulary)
    local rho=""
    [[ -s $ws353 ]] && rho=$("$embt" eval --json --pairs "$ws353" "$1" | json_num spearman)
    echo "${rho:-n/a}"
}
p1_of() { # p1_of embt|fasttext MODEL: its P@1 on cooking.test
    local p1
    if [[ $1 == embt ]]; then
        p1=$("$embt" test "$2" "$data/cooking.test" | sed -n 's/^P@1[[:space:]]*//p')
    else
        p1=$(fasttext test "$2" "$data/cooking.test" | sed -n 's/^P@1[[:space:]]*//p')
    fi
    echo "${p1:-unreadable}"
}
no_train_reason() { ((smoke)) && echo "smoke mode: no $1" || echo 'embt train is not there yet (issue 5)'; }

if want skipgram; then
    corpus=$data/email-corpus.txt
    sg_args="-dim 100 -ws 5 -neg 5 -t 1e-4 -epoch 3 -minCount 5 -maxn 0 -thread 2" # -maxn 0: no subwords, as embt
    pa=()
    peer fasttext fasttext "fasttext skipgram -input $corpus -output $work/ft-sg $sg_args"
    peer gensim gensim "$peer_py $peers/train_sg.py $corpus $work/gensim-sg.txt"
    w2v=${EMBT_BENCH_WORD2VEC:-}
    if ((smoke)); then
        pa+=(--peer-missing word2vec.c "smoke mode: peers are not run")
    elif [[ -z $w2v ]]; then
        pa+=(--peer-missing word2vec.c "EMBT_BENCH_WORD2VEC does not name a word2vec binary")
    elif [[ ! -x $w2v ]]; then
        pa+=(--peer-missing word2vec.c "EMBT_BENCH_WORD2VEC=$w2v is not executable")
    else
        pa+=(--peer word2vec.c "$w2v -train $corpus -output $work/w2v-sg.txt -size 100 -window 5 -negative 5 -hs 0 -sample 1e-4 -threads 2 -iter 3 -min-count 5 -cbow 0 -binary 0")
    fi
    if ((has_train && !smoke)); then
        side=(--embt "$embt train --task skipgram --input $corpus --output $work/sg.embt --dim 100 --window 5 --neg 5 --sample 1e-4 --epoch 3 --min-count 5 --threads 2")
    else
        side=(--embt-missing "$(no_train_reason corpus)")
    fi
    row --id skipgram --title "skip-gram training, e-mail corpus (dim 100, 3 epochs, 2 threads)" --runs 1 \
        --note "one run; embt, fastText and word2vec.c: whole process; gensim: model.train() only (vocabulary scan untimed)" \
        "${side[@]}" "${pa[@]}"
    if [[ -s $work/sg.embt ]]; then
        fact --id ws353_sg_embt --title "skip-gram WS-353 Spearman, embt train" --value "$(ws353_of "$work/sg.embt")"
    fi
    for v in fasttext:ft-sg.vec gensim:gensim-sg.txt word2vec:w2v-sg.txt; do
        f=$work/${v#*:}
        if [[ -s $f ]]; then
            "$embt" convert -q --from word2vec "$f" "$f.embt"
            fact --id "ws353_sg_${v%%:*}" --title "skip-gram WS-353 Spearman, ${v%%:*}" --value "$(ws353_of "$f.embt")"
        fi
    done
fi

if want classify; then
    pa=()
    peer fasttext fasttext "fasttext supervised -input $data/cooking.train -output $work/ft-cls -lr 1.0 -epoch 25 -wordNgrams 2 -thread 2"
    if ((has_train && !smoke)); then
        side=(--embt "$embt train --task classify --input $data/cooking.train --output $work/cls.embt --lr 1.0 --epoch 25 --word-ngrams 2 --threads 2")
    else
        side=(--embt-missing "$(no_train_reason 'data set')")
    fi
    row --id classify --title "cooking classification (lr 1.0, 25 epochs, word bigrams, 2 threads)" --runs 1 \
        --note "whole process, one run" "${side[@]}" "${pa[@]}"
    if [[ -s $work/ft-cls.bin ]]; then
        fact --id p1_fasttext --title "cooking P@1, fastText supervised" --value "$(p1_of fasttext "$work/ft-cls.bin")"
    fi
    if [[ -s $work/cls.embt ]]; then
        fact --id p1_embt --title "cooking P@1, embt train" --value "$(p1_of embt "$work/cls.embt")"
    else
        fact --id p1_embt --title "cooking P@1, embt train" --value missing --note "$(no_train_reason 'data set')"
    fi
fi

if want classify_glove; then
    # fastText reads pretrained vectors as a .vec: GloVe text with a word2vec header line, made once
    if ((!smoke)) && have fasttext; then
        "$embt" convert -q --to word2vec "$work/glove.embt" "$work/glove.vec"
    fi
    pa=()
    peer fasttext fasttext "fasttext supervised -input $data/cooking.train -output $work/ft-cls-glove -lr 1.0 -epoch 25 -wordNgrams 2 -thread 2 -dim 100 -pretrainedVectors $work/glove.vec"
    if ((has_train && !smoke)); then
        side=(--embt "$embt train --task classify --input $data/cooking.train --output $work/cls-glove.embt --pretrained $work/glove.embt --lr 1.0 --epoch $cls_glove_epochs --word-ngrams 2 --threads 2")
    else
        side=(--embt-missing "$(no_train_reason 'data set')")
    fi
    row --id classify_glove --title "cooking classification from pretrained GloVe (lr 1.0, word bigrams, 2 threads; epochs: fastText 25, embt $cls_glove_epochs)" \
        --runs 1 --note "whole process, one run; the .vec for fastText is made untimed" "${side[@]}" "${pa[@]}"
    if [[ -s $work/ft-cls-glove.bin ]]; then
        fact --id p1_fasttext_glove --title "cooking P@1 from GloVe, fastText supervised" --value "$(p1_of fasttext "$work/ft-cls-glove.bin")"
    fi
    if [[ -s $work/cls-glove.embt ]]; then
        fact --id p1_embt_glove --title "cooking P@1 from GloVe, embt train" --value "$(p1_of embt "$work/cls-glove.embt")"
    else
        fact --id p1_embt_glove --title "cooking P@1 from GloVe, embt train" --value missing --note "$(no_train_reason 'data set')"
    fi
fi

if want export_text; then
    pa=()
    peer gensim gensim "$peer_py $peers/export.py $kv $work/gensim-out.txt"
    row --id export_text --title "export to word2vec text" --runs "$slow" \
        --note "embt convert (whole process) vs gensim save_word2vec_format (in-process)" \
        --embt "$embt convert -q --to word2vec $work/glove.embt $work/embt-out.txt" "${pa[@]}"
    if [[ -s $work/gensim-out.txt ]]; then
        same=no
        cmp -s "$work/gensim-out.txt" "$work/embt-out.txt" && same=yes
        fact --id export_identical --title "embt's word2vec text equals gensim's byte for byte" --value "$same"
    fi
fi

if [[ -z $only ]]; then # not with --rows
    # Physical references.
    say "physical references and file sizes"
    mib=$( ((smoke)) && echo 16 || echo 1024)
    membw_out=$("$membw" "$mib")
    fact --id memcpy --title "memcpy bandwidth ($mib MiB buffers)" --unit GB/s \
        --value "$(sed -n 's/^BENCH memcpy_gbps=//p' <<<"$membw_out")"
    fact --id read --title "one-core streaming read bandwidth ($mib MiB)" --unit GB/s \
        --value "$(sed -n 's/^BENCH read_gbps=//p' <<<"$membw_out")"

    # File sizes and the quality figures that must not move.
    fact --id size_text --title "size: GloVe text" --unit bytes --value "$(stat -c %s "$glove")"
    fact --id size_bin --title "size: word2vec binary" --unit bytes --value "$(stat -c %s "$work/glove.bin")"
    for v in f32 f16 i8 f32-compressed; do
        f=$work/glove.$v.embt
        case $v in
        f32) cp "$work/glove.embt" "$f" ;;
        f32-compressed) "$embt" convert -q --compress "$work/glove.embt" "$f" ;;
        *) "$embt" convert -q --dtype "$v" "$work/glove.embt" "$f" ;;
        esac
        fact --id "size_$v" --title "size: .embt $v" --unit bytes --value "$(stat -c %s "$f")"
        if [[ -s $questions && $v != f32-compressed ]]; then
            acc=$("$embt" eval --json --analogies "$questions" --restrict 300000 "$f" | json_num accuracy)
            fact --id "analogy_$v" --title "analogy accuracy, all questions-words, embt eval, $v" --value "$acc"
        fi
        if [[ -s $ws353 && $v != f32-compressed ]]; then
            rho=$("$embt" eval --json --pairs "$ws353" "$f" | json_num spearman)
            fact --id "ws353_$v" --title "WS-353 Spearman, embt eval, $v" --value "$rho"
        fi
    done
    if ((!smoke)) && [[ -s $ws353 ]] && have gensim; then
        rho=$("$peer_py" "$peers/evaluate.py" pairs "$kv" "$ws353" | sed -n 's/^BENCH spearman=//p')
        fact --id ws353_gensim --title "WS-353 Spearman, gensim evaluate_word_pairs" --value "$rho"
    fi
fi

# 4. Report.
blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || echo unknown)
mkdir -p "$out"
"$py" "$here/report.py" "$jsonl" "$out" --mode "$( ((smoke)) && echo smoke || echo full)" \
    --runs "$runs" --blas "$blas" --compiler "$("${CC:-cc}" --version 2>/dev/null | head -n 1)"
say "results in $out"
