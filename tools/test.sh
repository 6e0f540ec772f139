#!/usr/bin/env bash
# tools/test.sh — sets everything up and runs the whole test suite: the
# release build's tests (with the CUDA parts where nvcc is found), then a
# build without CUDA whose framework, plugins and tools are instrumented
# with AddressSanitizer and UndefinedBehaviorSanitizer, running the unit
# tests (not the command-line, PyTorch, MPI and CUDA-emulation tests: the
# release pass runs those; tests/CMakeLists.txt says why). The GPU tests
# skip, saying why, where no GPU is.
#
#   tools/test.sh              # both builds
#   tools/test.sh --quick      # the release build only
set -euo pipefail

cd "$(dirname "$0")/.."
jobs=$(nproc)

# The tests need Hopper code only (no GPU runs them here, and sm_90 is what
# tools/gpu_check.sh uses): half the nvcc time of the default sm_90 +
# compute_80 PTX. CUDAARCHS set by the caller wins.
CUDAARCHS="${CUDAARCHS:-90-real}" tools/setup.sh
ctest --test-dir build --output-on-failure -j "$jobs"

if [[ "${1:-}" != "--quick" ]]; then
  tools/setup.sh --sanitize --no-cuda
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j "$jobs"
fi
