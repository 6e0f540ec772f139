#!/usr/bin/env bash
# tools/bench_vs_torch.sh's bad-input paths (the comparison itself takes
# minutes and runs by hand, see docs/performance.md): each must exit 2 with
# a message naming the option, before anything runs.
#
#   tests/tools/bench_vs_torch_args_test.sh BUILD_DIR
set -uo pipefail
build=$(cd "$1" && pwd)
script=$(cd "$(dirname "$0")/../.." && pwd)/tools/bench_vs_torch.sh
fail() { echo "FAIL: $*" >&2; exit 1; }
expect() {  # expect 'MESSAGE' ARGS...: exit 2, MESSAGE on stderr
  local want=$1; shift
  local err rc
  err=$(bash "$script" "$@" 2>&1 >/dev/null); rc=$?
  [[ $rc -eq 2 ]] || fail "'$*' exited $rc, not 2: $err"
  [[ $err == *"$want"* ]] || fail "'$*' said '$err', not '$want'"
}
expect "unknown option '--fast'" "$build" --fast
expect "--steps needs a whole number, got ''" "$build" --steps
expect "--rounds needs a whole number, got 'three'" "$build" --rounds three
expect "--threads needs a whole number, got '-1'" "$build" --threads -1
expect "must be at least 1" "$build" --steps 0
expect "not found: build first" /no/such/build --steps 2
echo "ok: bench_vs_torch.sh refuses bad options"
