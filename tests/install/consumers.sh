#!/usr/bin/env bash
# tests/install/consumers.sh: ctest install.consumers. Installs the current build into a temporary
# prefix, then builds examples/loader.c as an outside project would: with CMake find_package(embt)
# (shared and static targets) and with pkg-config (shared, and static via --static), and runs each
# program on a file made by the installed `embt convert`. Nothing outside the temporary prefix is used
# from the build tree.
# Env: EMBT_SOURCE_DIR, EMBT_BUILD_DIR, CMAKE_COMMAND, CC, PKG_CONFIG, EMBT_CONSUMER_FLAGS, EMBT_VERSION.
set -euo pipefail
src=${EMBT_SOURCE_DIR:?}
build=${EMBT_BUILD_DIR:?}
cmake=${CMAKE_COMMAND:-cmake}
cc=${CC:-cc}
pkgconfig=${PKG_CONFIG:-pkg-config}
flags=${EMBT_CONSUMER_FLAGS:-}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/embt-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

fail() { echo "install.consumers: $*" >&2; exit 1; }
step() { echo "-- $*"; }

step "cmake --install into $prefix"
"$cmake" --install "$build" --prefix "$prefix" >"$tmp/install.log" || { cat "$tmp/install.log"; fail "install failed"; }
for f in include/embt/embt.h bin/embt; do
    [[ -e $prefix/$f ]] || fail "not installed: $f"
done
pc=$(find "$prefix" -name embt.pc -path '*/pkgconfig/*' | head -n 1)
config=$(find "$prefix" -name embtConfig.cmake | head -n 1)
[[ -n $pc ]] || fail "embt.pc not installed"
[[ -n $config ]] || fail "embtConfig.cmake not installed"
libdir=$(dirname "$(dirname "$pc")")
for f in libembt.a libembt.so; do
    [[ -e $libdir/$f ]] || fail "not installed: $libdir/$f"
done
[[ ! -e $prefix/include/embt/internal.h ]] || fail "internal.h must not be installed"

step "a sample file made by the installed embt"
printf '%s\n' 'king 0.25 -1 3.5' 'queen 0.1 2 -3' >"$tmp/tiny.txt"
"$prefix/bin/embt" convert "$tmp/tiny.txt" "$tmp/tiny.embt" || fail "installed embt convert failed"
expected='queen 0.100000001 2 -3'

run_loader() { # description, program, env assignments...
    local what=$1 prog=$2 out
    shift 2
    out=$(env "$@" "$prog" "$tmp/tiny.embt" queen) || fail "$what: loader exited $?"
    [[ $out == "$expected" ]] || fail "$what: expected '$expected', got '$out'"
    echo "   $what: $out"
}

step "CMake: find_package(embt) with CMAKE_PREFIX_PATH=$prefix"
"$cmake" -S "$src/tests/install/consumer" -B "$tmp/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$flags" -DCMAKE_BUILD_TYPE=Release \
    -DEMBT_EXAMPLE_SOURCE="$src/examples/loader.c" >"$tmp/cmake.log" 2>&1 ||
    { cat "$tmp/cmake.log"; fail "configuring the CMake consumer failed"; }
found=$(sed -n 's/^embt_DIR:PATH=//p' "$tmp/cmake/CMakeCache.txt")
[[ $found == "$(dirname "$config")" ]] || fail "find_package found embt in '$found', not in the prefix"
"$cmake" --build "$tmp/cmake" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; fail "building the CMake consumer failed"; }
run_loader "cmake embt::embt" "$tmp/cmake/loader_shared"
run_loader "cmake embt::embt_static" "$tmp/cmake/loader_static"
if readelf -d "$tmp/cmake/loader_static" | grep -q 'NEEDED.*libembt'; then
    fail "loader_static depends on libembt.so"
fi

step "pkg-config with PKG_CONFIG_PATH=$(dirname "$pc")"
export PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(dirname "$pc")
version=$("$pkgconfig" --modversion embt) || fail "pkg-config does not find embt"
[[ -z ${EMBT_VERSION:-} || $version == "$EMBT_VERSION" ]] || fail "pkg-config version $version, expected $EMBT_VERSION"
cflags=$("$pkgconfig" --cflags embt)
libs=$("$pkgconfig" --libs embt)
echo "   cflags: $cflags"
echo "   libs: $libs"
# shellcheck disable=SC2086
"$cc" -std=c11 $flags $cflags -o "$tmp/loader_pc" "$src/examples/loader.c" $libs ||
    fail "building with pkg-config --cflags --libs embt failed"
readelf -d "$tmp/loader_pc" | grep -q 'NEEDED.*libembt\.so' || fail "loader_pc does not use libembt.so"
run_loader "pkg-config shared" "$tmp/loader_pc" LD_LIBRARY_PATH="$libdir"

# --static lists the private dependencies; -l:libembt.a picks the archive over the shared library
# installed next to it, while zlib, libyaml and libc stay shared.
static_libs=$("$pkgconfig" --static --libs embt)
echo "   static libs: $static_libs"
static_libs=$(sed -E 's/(^| )-lembt( |$)/\1-l:libembt.a\2/' <<<"$static_libs")
# shellcheck disable=SC2086
"$cc" -std=c11 $flags $cflags -o "$tmp/loader_pc_static" "$src/examples/loader.c" $static_libs ||
    fail "building with pkg-config --static --libs embt failed"
if readelf -d "$tmp/loader_pc_static" | grep -q 'NEEDED.*libembt'; then
    fail "loader_pc_static depends on libembt.so"
fi
run_loader "pkg-config static" "$tmp/loader_pc_static"
echo "install.consumers: ok"
