// cuda/launch.h — what the CUDA launchers and the llmsys.cuda plugin's
// host code share: the dtype tag the launchers take, and the launch
// planning (grid and block sizes, tile choices) as plain functions of the
// problem size, so that the CPU-side tests check them without a GPU.
//
// Plain C++ (no CUDA syntax): included by the plugin's .cc files, compiled
// by the host compiler, and by the .cu files.
//
//   const GridPlan plan = ElementwisePlan(n);  // blocks, threads
//   LLMSYS_CUDA_CHECK(LaunchNeg(DType::kF32, x, out, n, stream));
//
// Thread-safety: pure functions.
#ifndef LLMSYS_CUDA_LAUNCH_H_
#define LLMSYS_CUDA_LAUNCH_H_

#include <algorithm>
#include <cstdint>

namespace llmsys::cuda {

// The float dtypes the kernels compute in; every kernel accumulates in
// float (double for kF64).
enum class DType : int { kF32 = 0, kF64 = 1, kBF16 = 2, kF16 = 3 };

inline const char* DTypeName(DType t) {
  switch (t) {
    case DType::kF32:
      return "float32";
    case DType::kF64:
      return "float64";
    case DType::kBF16:
      return "bfloat16";
    default:
      return "float16";
  }
}

inline int DTypeBytes(DType t) {
  return t == DType::kF64 ? 8 : t == DType::kF32 ? 4 : 2;
}

// A 1-D launch: `blocks` blocks of `threads` threads.
struct GridPlan {
  int64_t blocks = 0;
  int threads = 0;
};

// Grid-stride loops over n items: 256 threads, at most `max_blocks` blocks
// (enough to fill the GPU several times; the loop covers the rest), at
// least one block so that a launch for n == 0 is never made with 0 blocks
// (launchers return early for n == 0 instead).
inline GridPlan ElementwisePlan(int64_t n, int64_t max_blocks = 65535 * 8) {
  constexpr int kThreads = 256;
  const int64_t want = (n + kThreads - 1) / kThreads;
  return {std::max<int64_t>(1, std::min(want, max_blocks)), kThreads};
}

// One block per row of `cols` elements for row-wise kernels (softmax,
// norms, cross-entropy): a warp for short rows, up to 1024 threads for long
// ones, a multiple of 32, about 8 elements per thread.
inline int RowThreads(int64_t cols) {
  int64_t t = (cols + 7) / 8;
  t = (t + 31) / 32 * 32;
  return static_cast<int>(std::clamp<int64_t>(t, 32, 1024));
}

}  // namespace llmsys::cuda

#endif  // LLMSYS_CUDA_LAUNCH_H_
