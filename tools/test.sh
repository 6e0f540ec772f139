#!/usr/bin/env bash
# tools/test.sh — sets everything up and runs the whole test suite: the
# release build's tests, then the same tests built with AddressSanitizer and
# UndefinedBehaviorSanitizer. CUDA tests skip, saying why, where no GPU is.
#
#   tools/test.sh              # both builds
#   tools/test.sh --quick      # the release build only
set -euo pipefail

cd "$(dirname "$0")/.."
jobs=$(nproc)

tools/setup.sh
ctest --test-dir build --output-on-failure -j "$jobs"

if [[ "${1:-}" != "--quick" ]]; then
  tools/setup.sh --sanitize
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j "$jobs"
fi
