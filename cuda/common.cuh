// cuda/common.cuh — what every kernel file shares: loads and stores that
// convert to and from the accumulation type, warp and block reductions,
// the launch macro, and dtype dispatch in launchers.
//
// Conventions (every .cu file here follows them, so that the kernels also
// build as plain C++ against the CPU emulation in tests/cuda/emu, where the
// CPU-side tests run them without a GPU; LLMSYS_CUDA_EMULATION is defined
// there):
//   - kernels end in `_kernel`; launchers are `Launch...`, take the stream
//     last, return cudaGetLastError() of their launches and return at once
//     (cudaSuccess) for empty problems;
//   - launches go through LLMSYS_LAUNCH, warp exchanges through WarpSum /
//     WarpMax, block reductions through BlockSum / BlockMax: nothing else
//     touches `<<<>>>` or `__shfl_*`, so a CPU emulation can replace them;
//   - dynamic shared memory through LLMSYS_DYNAMIC_SMEM; static
//     `__shared__` arrays without initializers; no cooperative groups, CUB,
//     Thrust, textures or device lambdas; inline PTX only inside a small
//     __device__ wrapper function that has a plain C++ version under
//     LLMSYS_CUDA_EMULATION;
//   - device functions used: threadIdx/blockIdx/blockDim/gridDim,
//     __syncthreads, __shfl_xor_sync/__shfl_sync (full mask), atomicAdd
//     (float, double), the math of <cmath> on float and double (expf, exp,
//     logf, log1pf, tanhf, erff, sqrtf, rsqrtf, fmaxf, fminf, isnan,
//     isinf, ...), __expf, __ldg, the bf16/half conversions used below;
//   - a shape comment on every buffer, `// (B, H, N, D)`;
//   - NaN propagates as in the reference: a NaN input gives a NaN output
//     wherever the reference's would be NaN (reductions use MaxNan).
//
// Thread-safety: device code; launchers may be called from any host thread
// with its own stream.
#ifndef LLMSYS_CUDA_COMMON_CUH_
#define LLMSYS_CUDA_COMMON_CUH_

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/launch.h"

#ifndef LLMSYS_CUDA_EMULATION
#define LLMSYS_LAUNCH(kernel, grid, block, smem, stream) \
  kernel<<<(grid), (block), (smem), (stream)>>>
// `T* name` pointing at the block's dynamic shared memory (the launch's
// smem bytes), 16-byte aligned.
#define LLMSYS_DYNAMIC_SMEM(T, name)                            \
  extern __shared__ __align__(16) unsigned char llmsys_smem_[]; \
  T* name = reinterpret_cast<T*>(llmsys_smem_)
#endif  // the emulation defines both in its cuda_runtime.h

// Calls `body` with `T` bound to the C++ type of `dtype` (float, double,
// __nv_bfloat16, __half):
//   LLMSYS_DISPATCH_FLOAT(dtype, { LLMSYS_LAUNCH(neg_kernel<T>, ...)(...); });
#define LLMSYS_DISPATCH_FLOAT(dtype, ...) \
  switch (dtype) {                        \
    case ::llmsys::cuda::DType::kF32: {   \
      using T = float;                    \
      __VA_ARGS__;                        \
    } break;                              \
    case ::llmsys::cuda::DType::kF64: {   \
      using T = double;                   \
      __VA_ARGS__;                        \
    } break;                              \
    case ::llmsys::cuda::DType::kBF16: {  \
      using T = __nv_bfloat16;            \
      __VA_ARGS__;                        \
    } break;                              \
    case ::llmsys::cuda::DType::kF16: {   \
      using T = __half;                   \
      __VA_ARGS__;                        \
    } break;                              \
  }

namespace llmsys::cuda {

// The type a kernel accumulates T in.
template <class T>
struct AccOf {
  using type = float;
};
template <>
struct AccOf<double> {
  using type = double;
};
template <class T>
using Acc = typename AccOf<T>::type;

__device__ __forceinline__ float ToAcc(float x) { return x; }
__device__ __forceinline__ double ToAcc(double x) { return x; }
__device__ __forceinline__ float ToAcc(__nv_bfloat16 x) {
  return __bfloat162float(x);
}
__device__ __forceinline__ float ToAcc(__half x) { return __half2float(x); }

// Rounds an accumulator to T (round to nearest even).
template <class T>
__device__ __forceinline__ T FromAcc(Acc<T> x);
template <>
__device__ __forceinline__ float FromAcc<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ double FromAcc<double>(double x) {
  return x;
}
template <>
__device__ __forceinline__ __nv_bfloat16 FromAcc<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}
template <>
__device__ __forceinline__ __half FromAcc<__half>(float x) {
  return __float2half_rn(x);
}

// max that keeps NaN: MaxNan(NaN, x) and MaxNan(x, NaN) are NaN.
template <class A>
__device__ __forceinline__ A MaxNan(A a, A b) {
  return (a != a || a > b) ? a : b;
}

// Sum and max over the 32 lanes of a warp; every lane gets the result.
template <class A>
__device__ __forceinline__ A WarpSum(A v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
template <class A>
__device__ __forceinline__ A WarpMax(A v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1)
    v = MaxNan(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum and max over a block whose size is a multiple of 32 (at most 1024);
// every thread gets the result. `scratch` is shared memory of 32 A; the
// call writes it only after a barrier, so consecutive reductions may share
// one scratch. Every thread of the block must call it.
template <class A>
__device__ __forceinline__ A BlockSum(A v, A* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = blockDim.x >> 5;
  v = WarpSum(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : A(0);
  v = WarpSum(v);
  return v;
}
template <class A>
__device__ __forceinline__ A BlockMax(A v, A* scratch, A lowest) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = blockDim.x >> 5;
  v = WarpMax(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : lowest;
  v = WarpMax(v);
  return v;
}

// Grid-stride loop index range for ElementwisePlan launches.
#define LLMSYS_GRID_STRIDE_LOOP(i, n)                                       \
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < (n); \
       i += int64_t{blockDim.x} * gridDim.x)

}  // namespace llmsys::cuda

#endif  // LLMSYS_CUDA_COMMON_CUH_
