#!/usr/bin/env bash
# tools/gpu_check.sh — everything issue 9 asks of a GPU, in one run (under
# 8 minutes on one H200): build with CUDA, run the CUDA tests (the host's
# device paths, every llmsys.cuda operator against the CPU reference), the
# quickstart with device = "cuda", and a benchmark table against PyTorch on
# the same GPU (GEMM and flash attention in TFLOP/s, LayerNorm and softmax
# in GB/s against the copy bandwidth).
#
#   tools/gpu_check.sh                 # build in build-gpu/, run everything
#   tools/gpu_check.sh --skip-build    # reuse build-gpu/
#   OUT=/some/dir tools/gpu_check.sh   # logs and JSON records go there too
#
# Every step runs under its own time limit and the script goes on after a
# failure, so one run shows everything that breaks; the summary at the end
# lists each step's result, and the exit status is the number of failed
# steps. Needs: cmake, ninja, a C++20 compiler, nvcc, the Debian -dev
# packages tools/setup.sh installs, and PyTorch with CUDA for the table.
set -u
cd "$(dirname "$0")/.."
build=build-gpu
skip_build=0
for arg in "$@"; do
  case "$arg" in
    --skip-build) skip_build=1 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown option '$arg' (see --help)" >&2; exit 2 ;;
  esac
done
out="${OUT:-$build/gpu_check}"
mkdir -p "$out"
if ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi
jobs=$(nproc)
declare -a summary=()
failed=0

# step NAME LIMIT_SECONDS COMMAND...: runs it, logs to $out/NAME.log, and
# records the result.
step() {
  local name=$1 limit=$2
  shift 2
  local t0=$SECONDS
  echo "=== $name (limit ${limit}s): $*"
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$out/$name.log"
  local rc=${PIPESTATUS[0]}
  local took=$((SECONDS - t0))
  if [[ $rc -eq 0 ]]; then
    summary+=("ok      $name (${took}s)")
  else
    [[ $rc -eq 124 ]] && rc="timeout"
    summary+=("FAILED  $name (${took}s, exit $rc; log $out/$name.log)")
    failed=$((failed + 1))
  fi
}

step gpu 30 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv

if [[ $skip_build -eq 0 ]]; then
  step configure 120 cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CUDA_ARCHITECTURES=90-real
  step build 300 cmake --build "$build" -j "$jobs" --target llmsys cuda \
    reference cpu gpt optimizers samplers evaluators gpu_test cuda_test
fi

step gpu_test 240 "$build/tests/cuda/gpu_test"
step cuda_test 120 "$build/tests/cuda/cuda_test"

# The quickstart on the GPU: a short run of the same experiment.
step quickstart_cuda 180 "$build/bin/llmsys" run experiments/quickstart.toml \
  --set train.device=cuda --set train.steps=200 --set train.eval_every=100 \
  --set experiment.output="$out/runs" --overwrite --no-progress

step bench_llmsys 240 "$build/bin/llmsys" bench cuda --json "$out/llmsys.json"
step bench_torch 240 python3 tools/bench_cuda_torch.py --json "$out/torch.json"
if [[ -s "$out/llmsys.json" && -s "$out/torch.json" ]]; then
  step table 30 python3 tools/gpu_bench_table.py "$out/llmsys.json" \
    "$out/torch.json"
fi

echo
echo "=== gpu_check summary ($(date -u +%FT%TZ))"
printf '%s\n' "${summary[@]}" | tee "$out/summary.txt"
exit $failed
