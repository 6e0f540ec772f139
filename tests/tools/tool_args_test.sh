#!/usr/bin/env bash
# The bad-input paths of tools/bench_distributed.sh, tools/gpu_check.sh and
# tools/test.sh (the scripts themselves run for minutes, or on a GPU): each
# must exit 2 with a message naming the option, before anything runs.
#
#   tests/tools/tool_args_test.sh BUILD_DIR
set -uo pipefail
build=$(cd "$1" && pwd)
tools=$(cd "$(dirname "$0")/../.." && pwd)/tools
fail() { echo "FAIL: $*" >&2; exit 1; }
expect() {  # expect SCRIPT 'MESSAGE' ARGS...: exit 2, MESSAGE on stderr
  local script=$1 want=$2; shift 2
  local err rc
  err=$(bash "$tools/$script" "$@" 2>&1 >/dev/null); rc=$?
  [[ $rc -eq 2 ]] || fail "$script '$*' exited $rc, not 2: $err"
  [[ $err == *"$want"* ]] || fail "$script '$*' said '$err', not '$want'"
}
expect bench_distributed.sh "unknown option '--fast'" "$build" --fast
expect bench_distributed.sh "--steps needs a positive whole number, got ''" \
  "$build" --steps
expect bench_distributed.sh "--ranks needs a positive whole number, got '0'" \
  "$build" --ranks 0
expect bench_distributed.sh "--batch 5 is not a multiple of --ranks 2" \
  "$build" --batch 5
expect bench_distributed.sh "no /no/such/build/bin/llmsys" /no/such/build
expect gpu_check.sh "unknown option '--fast'" --fast
bash "$tools/gpu_check.sh" --help | grep -q 'gpu_check.sh' ||
  fail "gpu_check.sh --help printed no usage"
expect test.sh "unknown option '--fast'" --fast
LLMSYS_TEST_BUDGET=soon expect test.sh \
  "LLMSYS_TEST_BUDGET must be whole seconds, got 'soon'"
echo "ok: bench_distributed.sh, gpu_check.sh and test.sh refuse bad options"
