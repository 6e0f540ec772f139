#!/usr/bin/env bash
# tools/setup.sh — sets up llmsys on a fresh Debian 12 machine and builds it.
#
#   tools/setup.sh                 # install what is missing, build into build/
#   tools/setup.sh --sanitize      # the same, with ASan+UBSan, into build-asan/
#   tools/setup.sh --no-cuda       # build without the CUDA parts
#
# Installs each Debian package the project needs only when it is missing (a
# no-op when all are present; uses sudo when not root), then configures and
# builds with CMake and Ninja. CUDA parts build when nvcc is found (on PATH or
# in /usr/local/cuda/bin); the CUDA toolkit itself is not installed here.
set -euo pipefail

cd "$(dirname "$0")/.."

build_dir=build
cmake_args=(-DCMAKE_BUILD_TYPE=Release)
for arg in "$@"; do
  case "$arg" in
    # -O1 -g1 (line tables): the usual sanitizer setting; it compiles
    # twice as fast as -O2 -g, which keeps tools/test.sh within CI's time.
    --sanitize)
      build_dir=build-asan
      cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DLLMSYS_SANITIZE=ON
                  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG"
                  "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG") ;;
    --no-cuda) cmake_args+=(-DLLMSYS_CUDA=OFF) ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

packages=(
  cmake ninja-build g++ pkg-config
  make                                        # cmake's default generator: out-of-tree plugins
  libboost-dev libboost-program-options-dev   # Boost.DLL (headers), program_options
  libabsl-dev                                 # Status, StatusOr, strings
  libtomlplusplus-dev                         # experiment files
  libdlpack-dev                               # tensors at the ABI
  libopenblas-dev                             # CPU GEMM
  nlohmann-json3-dev                          # JSON output
  zlib1g-dev                                  # gzip corpora
  libopenmpi-dev openmpi-bin                  # mpirun -np N llmsys run
  libssl-dev                                  # SHA-256 (libcrypto): plugin pins, provenance
  libgtest-dev libgmock-dev                   # tests
  chromium                                    # tests: report.html rendered headless
  python3-torch python3-numpy                 # PyTorch cross-check (tests/torch)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "setup.sh: installing ${missing[*]}"
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq \
    --no-install-recommends "${missing[@]}"
fi

if ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi

cmake -S . -B "$build_dir" -G Ninja "${cmake_args[@]}"
cmake --build "$build_dir"
