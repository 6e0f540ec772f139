#!/usr/bin/env bash
# tools/gpu_check.sh — everything issue 9 asks of a GPU, in one run (about
# 5 minutes on one H200): the CUDA tests (the host's device paths, every
# llmsys.cuda operator against the CPU reference, and the emulation's
# per-kernel tests again on the real GPU), the quickstart with
# device = "cuda", and a benchmark table against PyTorch on the same GPU
# (GEMM and flash attention in TFLOP/s, LayerNorm and softmax in GB/s
# against the copy bandwidth).
#
#   tools/gpu_check.sh                 # build in build-gpu/, run everything
#   tools/gpu_check.sh --skip-build    # reuse build-gpu/
#   tools/gpu_check.sh --pack          # build, then pack what the runs need
#                                      # (binaries, plugins, shared libraries)
#                                      # into build-gpu-pack/ and stop
#   tools/gpu_check.sh --prebuilt      # unpack build-gpu-pack/ and run: for a
#                                      # GPU machine without the -dev packages
#   OUT=/some/dir tools/gpu_check.sh   # logs and JSON records go there too
#
# Every step runs under its own time limit and the script goes on after a
# failure, so one run shows everything that breaks; the summary at the end
# lists each step's result, and the exit status is the number of failed
# steps. Building needs cmake, ninja, a C++20 compiler, nvcc and the Debian
# -dev packages tools/setup.sh installs; the table needs PyTorch with CUDA.
# The binaries hold absolute paths into the build folder, so a packed build
# runs from a checkout at the same path (--prebuilt links it there).
set -u
cd "$(dirname "$0")/.."
build=build-gpu
skip_build=0
pack=0
prebuilt=0
for arg in "$@"; do
  case "$arg" in
    --skip-build) skip_build=1 ;;
    --pack) pack=1 ;;
    --prebuilt) prebuilt=1; skip_build=1 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
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
# The steps after the build share one deadline (GPU_CHECK_BUDGET seconds,
# default 420): a hung step cannot eat a short device lease.
budget=${GPU_CHECK_BUDGET:-420}
deadline=

# step NAME LIMIT_SECONDS COMMAND...: runs it, logs to $out/NAME.log, and
# records the result.
step() {
  local name=$1 limit=$2
  shift 2
  if [[ -n "$deadline" ]]; then
    local left=$((deadline - SECONDS))
    if ((left < 5)); then
      summary+=("SKIPPED $name (the ${budget}s budget is spent)")
      failed=$((failed + 1))
      return
    fi
    ((limit > left)) && limit=$left
  fi
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

# The files the runs need, and the shared libraries they load that a bare
# machine may lack (all but glibc's and the CUDA driver's and toolkit's).
pack_files=(bin/llmsys lib/llmsys/plugins tests/cuda/gpu_test
            tests/cuda/cuda_test tests/cuda/emu/cuda_emu.so
            tests/distributed/nccl_test)
if [[ $prebuilt -eq 1 ]]; then
  here=$(pwd -P)
  if [[ ! -f build-gpu-pack/pack.tar.gz ]]; then
    echo "gpu_check.sh: no build-gpu-pack/pack.tar.gz (make it with --pack)" >&2
    exit 2
  fi
  origin=$(cat build-gpu-pack/origin)
  if [[ "$origin" != "$here" ]]; then
    if [[ -e "$origin" ]]; then
      echo "gpu_check.sh: the pack was built in $origin, which exists here" >&2
      exit 2
    fi
    mkdir -p "$(dirname "$origin")" && ln -s "$here" "$origin"
  fi
  mkdir -p "$build" && tar -xzf build-gpu-pack/pack.tar.gz -C "$build"
  # cuBLAS from the toolkit or from PyTorch's wheels, whichever is there.
  blas=$(find /usr/local/cuda*/ /usr/lib /opt -name 'libcublasLt.so.13*' \
           2>/dev/null | head -1)
  export LD_LIBRARY_PATH="$here/$build/deps${blas:+:$(dirname "$blas")}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  echo "gpu_check.sh: LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  missing=$(ldd "$build/bin/llmsys" "$build/lib/llmsys/plugins/cuda.so" \
              "$build/tests/cuda/gpu_test" | grep 'not found' | sort -u)
  [[ -n "$missing" ]] && echo "gpu_check.sh: missing libraries: $missing"
fi

if [[ $pack -eq 0 ]]; then
  step gpu 30 nvidia-smi \
    --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
fi

if [[ $skip_build -eq 0 ]]; then
  step configure 120 cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CUDA_ARCHITECTURES=90-real
  step build 3600 cmake --build "$build" -j "$jobs" --target llmsys cuda \
    reference cpu gpt optimizers samplers evaluators gpu_test cuda_test \
    nccl_test
fi

if [[ $pack -eq 1 ]]; then
  [[ $failed -eq 0 ]] || exit $failed
  rm -rf build-gpu-pack && mkdir -p build-gpu-pack "$build/deps"
  for f in $(cd "$build" && find "${pack_files[@]}" -name '*.so' -o -type f \
               -perm -u+x); do
    ldd "$build/$f" | awk '$3 ~ /^\// {print $3}'
  done | sort -u | grep -v -E '/(libc|libm|libdl|librt|libpthread|ld-linux[^/]*|libcuda|libcublas[^/]*|libcudart)\.so' |
    xargs -r cp -L -t "$build/deps"
  tar -czf build-gpu-pack/pack.tar.gz -C "$build" "${pack_files[@]}" deps
  pwd -P > build-gpu-pack/origin
  ls -l build-gpu-pack
  exit 0
fi

deadline=$((SECONDS + budget))
step gpu_test 120 "$build/tests/cuda/gpu_test"
# The emulation's tests (every kernel family, training) on the real GPU.
step cuda_test_on_gpu 150 env LLMSYS_CUDA_TEST_ON_GPU=1 \
  "$build/tests/cuda/cuda_test"

# NCCL as one rank on the GPU (MPI starts it), where mpirun is installed.
if command -v mpirun >/dev/null; then
  step nccl_one_rank 60 env OMPI_ALLOW_RUN_AS_ROOT=1 \
    OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun -np 1 \
    "$build/tests/distributed/nccl_test"
fi

# The quickstart on the GPU: a short run of the same experiment.
step quickstart_cuda 90 "$build/bin/llmsys" run experiments/quickstart.toml \
  --set train.device=cuda --set train.steps=200 --set train.eval_every=100 \
  --set experiment.output="$out/runs" --overwrite --no-progress

step bench_llmsys 120 "$build/bin/llmsys" bench cuda --json "$out/llmsys.json"
step bench_torch 120 python3 tools/bench_cuda_torch.py --json "$out/torch.json"
if [[ -s "$out/llmsys.json" && -s "$out/torch.json" ]]; then
  step table 30 python3 tools/gpu_bench_table.py "$out/llmsys.json" \
    "$out/torch.json"
fi

# Out-of-bounds accesses and races in the attention kernels, where the
# runtime lets compute-sanitizer reach the GPU.
sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
if [[ -n "$sanitizer" ]]; then
  step memcheck 90 env LLMSYS_CUDA_TEST_ON_GPU=1 "$sanitizer" --tool memcheck \
    --error-exitcode 1 "$build/tests/cuda/cuda_test" \
    --gtest_filter='FlashAttentionTest.*:NaiveAttentionTest.*:CudaSoftmaxTest.*'
fi

echo
echo "=== gpu_check summary ($(date -u +%FT%TZ))"
printf '%s\n' "${summary[@]}" | tee "$out/summary.txt"
exit $failed
