#!/usr/bin/env bash
# scripts/quickstart.sh: from a fresh Debian 12 clone to a working embt. Installs the missing Debian
# packages (apt-get; sudo only when not root), builds a Release `embt` into build/, then converts the
# bundled GloVe sample to build/sample.embt, validates it and prints its summary.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

packages=(build-essential cmake pkg-config zlib1g-dev libyaml-dev libcriterion-dev python3)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || { echo "quickstart: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
        sudo=(sudo)
    fi
    echo "== installing ${missing[*]}"
    "${sudo[@]}" apt-get update
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

jobs=$(nproc 2>/dev/null || echo 2)
echo "== building (Release) into build/"
# The tests are built and run by scripts/test.sh in their own Debug tree. A new compiler's warning
# must not stop a user's build: -Werror only when asked (EMBT_WERROR=ON, as .ci/run does).
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DEMBT_BUILD_TESTS=OFF -DEMBT_WERROR="${EMBT_WERROR:-OFF}"
cmake --build build -j"$jobs"

sample=data/sample/glove.6B.100d.20k.txt.gz
echo "== embt convert $sample build/sample.embt"
rm -f build/sample.embt
build/embt convert "$sample" build/sample.embt
echo "== embt validate build/sample.embt"
build/embt validate build/sample.embt
echo "== embt info build/sample.embt"
build/embt info build/sample.embt
