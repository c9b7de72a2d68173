#!/bin/bash
# make-sample.sh: rebuilds data/sample/glove.6B.100d.20k.txt.gz, the bundled sample: the first 20,000
# lines of GloVe 6B 100d, gzipped deterministically (gzip -9n: no name, no timestamp).
#   EMBT_SHARED_SCRIPTS  directory of fetch-real-data.sh (default: ../shared/scripts from the repo root)
#   EMBT_DATA            where the real data lives or is fetched to (default: ../data from the repo root)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
shared=${EMBT_SHARED_SCRIPTS:-$root/../shared/scripts}
data=${EMBT_DATA:-$root/../data}
out_dir=$root/data/sample
out=$out_dir/glove.6B.100d.20k.txt.gz
rows=20000
max_bytes=$((8 * 1000 * 1000))

"$shared/fetch-real-data.sh" "$data" >/dev/null
src=$data/glove.6B.100d.txt
[[ -s $src ]] || { echo "make-sample.sh: $src is missing after the fetch" >&2; exit 1; }

mkdir -p "$out_dir"
tmp=$(mktemp "$out_dir/.sample.XXXXXX")
trap 'rm -f "$tmp"' EXIT
head -n "$rows" "$src" | gzip -9n >"$tmp"

lines=$(gzip -dc "$tmp" | wc -l)
[[ $lines -eq $rows ]] || { echo "make-sample.sh: sample has $lines lines, expected $rows" >&2; exit 1; }
size=$(stat -c %s "$tmp")
if ((size >= max_bytes)); then
  echo "make-sample.sh: sample is $size bytes, limit $max_bytes" >&2
  exit 1
fi
chmod 0644 "$tmp"
mv "$tmp" "$out"
trap - EXIT
rm -f "$out_dir/glove.6B.100d.20k.txt" # only the .gz is kept
echo "$out: $rows rows, $size bytes, sha256 $(sha256sum "$out" | cut -d' ' -f1)" >&2
