#!/usr/bin/env bash
# tests/tools/out_of_tree_plugins_test.sh — what a plugin author outside the
# repository does, for every kind of plugin:
#
#   1. install llmsys from BUILD_DIR into a fresh prefix (cmake --install);
#   2. scaffold a plugin with the installed `llmsys new-plugin` into an empty
#      folder outside the source tree;
#   3. configure it with find_package(llmsys) against that prefix, build it
#      with warnings as errors and run its own tests (`llmsys plugins check`,
#      and a 5-step run of its experiment that must use the component);
#   4. load the built .so once more with the installed `llmsys plugins check`.
#
# Then it checks the package itself: every ABI header is installed, and the
# version file accepts 1.0 and 1.<this minor> but refuses a newer minor and
# another major (SameMajorVersion on the ABI version).
#
#   tests/tools/out_of_tree_plugins_test.sh BUILD_DIR [CMAKE_GENERATOR]
#
# Registered with CTest by tests/tools/CMakeLists.txt (release builds).
set -euo pipefail

build=$(cd "$1" && pwd)
generator=${2:-}
source_dir=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/llmsys_out_of_tree.XXXXXX")
trap 'rm -rf "$work"' EXIT
unset LLMSYS_PLUGIN_PATH  # only the installed plugins and the one built here

gen_args=()
if [[ -n "$generator" ]]; then gen_args=(-G "$generator"); fi

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

echo "== cmake --install $build --prefix $work/prefix"
cmake --install "$build" --prefix "$work/prefix" >"$work/install.log" ||
  { cat "$work/install.log"; fail "cmake --install failed"; }
llmsys=$work/prefix/bin/llmsys
[[ -x "$llmsys" ]] || fail "no $llmsys after the install"

# Every header of abi/llmsys/ is installed, byte for byte.
for header in "$source_dir"/abi/llmsys/*; do
  cmp -s "$header" "$work/prefix/include/llmsys/$(basename "$header")" ||
    fail "include/llmsys/$(basename "$header") is missing or differs"
done

for spec in "operator relu" "operator gelu" "operator attention" optimizer \
            sampler evaluator model; do
  read -r kind op <<<"$spec"
  name=oot_${op:-$kind}
  dir=$work/$name
  echo "== $kind ${op:+(op $op) }in $dir"
  "$llmsys" new-plugin --kind "$kind" --name "$name" ${op:+--op "$op"} \
    "$dir" >/dev/null
  cmake -S "$dir" -B "$dir/build" "${gen_args[@]}" \
    -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_CXX_FLAGS=-Werror \
    >"$dir/configure.log" ||
    { cat "$dir/configure.log"; fail "$name: configure failed"; }
  cmake --build "$dir/build" >"$dir/build.log" ||
    { cat "$dir/build.log"; fail "$name: build failed"; }
  ctest --test-dir "$dir/build" --output-on-failure >"$dir/ctest.log" ||
    { cat "$dir/ctest.log"; fail "$name: its tests failed"; }
  grep -q "100% tests passed, 0 tests failed out of 2" "$dir/ctest.log" ||
    { cat "$dir/ctest.log"; fail "$name: expected its 2 tests to pass"; }
  "$llmsys" plugins check "$dir/build/$name.so" >"$dir/check.log" ||
    { cat "$dir/check.log"; fail "$name: llmsys plugins check failed"; }
  id=$name
  if [[ "$kind" == operator ]]; then id=$op.$name; fi
  grep -Eq "^ok +$kind +$id " "$dir/check.log" ||
    { cat "$dir/check.log"; fail "$name: check does not list $kind $id"; }
  echo "ok $kind $id"
done

# find_package(llmsys VERSION): the package's version is the ABI's.
abi_minor=$(sed -n 's/^#define LLMSYS_ABI_VERSION_MINOR \([0-9]*\)$/\1/p' \
  "$source_dir/abi/llmsys/version.h")
probe() {  # probe VERSION: configures a project asking for llmsys VERSION
  local dir=$work/probe_${1//./_}
  mkdir -p "$dir"
  printf 'cmake_minimum_required(VERSION 3.20)\nproject(p CXX)\nfind_package(llmsys %s REQUIRED)\n' \
    "$1" >"$dir/CMakeLists.txt"
  cmake -S "$dir" -B "$dir/build" "${gen_args[@]}" \
    -DCMAKE_PREFIX_PATH="$work/prefix" >"$dir/log" 2>&1
}
for ok in 1.0 "1.$abi_minor"; do
  probe "$ok" || { cat "$work/probe_${ok//./_}/log"; fail "find_package(llmsys $ok) failed"; }
done
for refused in "1.$((abi_minor + 1))" 2.0; do
  if probe "$refused"; then fail "find_package(llmsys $refused) was accepted"; fi
  grep -q "version: 1.$abi_minor" "$work/probe_${refused//./_}/log" ||
    { cat "$work/probe_${refused//./_}/log"; fail "find_package(llmsys $refused): no version in the message"; }
done
echo "ok find_package(llmsys 1.0 / 1.$abi_minor) accepted, 1.$((abi_minor + 1)) / 2.0 refused"
