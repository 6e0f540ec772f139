// cuda/dropout.h — launchers of the dropout kernels (dropout.cu) and their
// plan, for the llmsys.cuda plugin (plugins/cuda/dropout.cc) and its
// CPU-side tests.
//
// The contract (abi/llmsys/ops.h): element i is kept iff
// llmsys_random_uniform(seed, offset, i) >= p (llmsys/random.h), kept ones
// are scaled by 1 / (1 - p), and mask[i] = 1 when kept, 0 when dropped.
// One thread takes 4 consecutive elements, the 4 words of one Philox call
// (counter offset + i / 4), so the mask is bit-identical to the CPU's.
//
//   LaunchDropoutForward(t, x, out, mask, n, p, ctx->rng_seed,
//                        ctx->rng_offset, stream);
//
// Thread-safety: pure functions; launchers as cuda/common.cuh says.
#ifndef LLMSYS_CUDA_DROPOUT_H_
#define LLMSYS_CUDA_DROPOUT_H_

#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdint>

#include "cuda/launch.h"

namespace llmsys::cuda {

// The kept test as an integer one: u = (word >> 8) * 2^-24 >= p exactly
// when (word >> 8) >= ceil(p * 2^24) (p * 2^24 is exact in double), so
// the kernels compare 24-bit integers. p in [0, 1] gives [0, 2^24]: 0
// keeps everything, 2^24 nothing.
inline uint32_t DropoutThreshold(double p) {
  return static_cast<uint32_t>(std::ceil(p * 16777216.0));
}

// 1 / (1 - p); 0 for p == 1 (nothing is kept, the scale is never used).
inline double DropoutScale(double p) { return p < 1.0 ? 1.0 / (1.0 - p) : 0.0; }

// Groups of 4 elements (one Philox call each) over a grid-stride loop.
inline GridPlan DropoutPlan(int64_t n) { return ElementwisePlan((n + 3) / 4); }

// out = x * scale where kept, else 0; mask = 1 where kept, else 0.
cudaError_t LaunchDropoutForward(DType t,
                                 const void* x,  // (N)
                                 void* out,      // (N)
                                 void* mask,     // (N) uint8
                                 int64_t n, double p, uint64_t seed,
                                 uint64_t offset, cudaStream_t stream);

// dx = g * scale where mask != 0, else 0; g null: dx = 0.
cudaError_t LaunchDropoutBackward(DType t,
                                  const void* g,     // (N) or null
                                  const void* mask,  // (N) uint8
                                  void* dx,          // (N)
                                  int64_t n, double p, cudaStream_t stream);

}  // namespace llmsys::cuda

#endif  // LLMSYS_CUDA_DROPOUT_H_
