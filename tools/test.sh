#!/usr/bin/env bash
# tools/test.sh — sets everything up and runs the whole test suite: the
# release build's tests (with the CUDA parts where nvcc is found), then a
# build without CUDA whose framework, plugins and tools are instrumented
# with AddressSanitizer and UndefinedBehaviorSanitizer, running the unit
# tests (not the command-line, PyTorch, MPI and CUDA-emulation tests: the
# release pass runs those; tests/CMakeLists.txt says why). The GPU tests
# skip, saying why, where no GPU is.
#
#   tools/test.sh              # the release pass; the sanitizer pass too
#                              # when it fits in the time budget (below)
#   tools/test.sh --quick      # the release pass only
#   tools/test.sh --sanitize   # both passes, whatever they take
#
# The time budget: CI allows 25 minutes for this script from a clean
# clone, and a 2-core machine without AVX-512 takes about 18 of them for
# the release pass alone. The sanitizer pass takes about 0.8 times as long
# as the release pass; it runs when that estimate still ends within
# LLMSYS_TEST_BUDGET seconds of the start (default 1380, 23 minutes), and
# otherwise the script says that it skipped it and how to run it.
set -euo pipefail

cd "$(dirname "$0")/.."
jobs=$(nproc)
mode=auto
case "${1:-}" in
  "") ;;
  --quick) mode=quick ;;
  --sanitize) mode=sanitize ;;
  -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
  *) echo "test.sh: unknown option '$1' (--quick, --sanitize)" >&2; exit 2 ;;
esac
budget=${LLMSYS_TEST_BUDGET:-1380}
[[ $budget =~ ^[0-9]+$ ]] ||
  { echo "test.sh: LLMSYS_TEST_BUDGET must be whole seconds, got '$budget'" >&2; exit 2; }

# The tests need Hopper code only (no GPU runs them here, and sm_90 is what
# tools/gpu_check.sh uses): half the nvcc time of the default sm_90 +
# compute_80 PTX. CUDAARCHS set by the caller wins.
CUDAARCHS="${CUDAARCHS:-90-real}" tools/setup.sh
ctest --test-dir build --output-on-failure -j "$jobs"
release=$SECONDS

if [[ $mode == auto ]]; then
  estimate=$((release * 8 / 10))
  if ((release + estimate > budget)); then
    echo "test.sh: skipping the sanitizer pass: the release pass took" \
         "${release}s here, and the sanitizer pass (about ${estimate}s more)" \
         "would end past the ${budget}s budget. Run it with" \
         "'tools/test.sh --sanitize'."
    exit 0
  fi
fi
if [[ $mode != quick ]]; then
  tools/setup.sh --sanitize --no-cuda
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j "$jobs"
fi
