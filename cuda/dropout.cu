// cuda/dropout.cu — dropout forward and backward (contract and plan in
// dropout.h).
//
// Letters: N the elements of x (any shape, flattened), Q = ceil(N / 4)
// the groups of 4 elements that share one Philox call.
#include <cstdint>

#include "cuda/common.cuh"
#include "cuda/dropout.h"
#include "cuda/rows.cuh"
#include "llmsys/random.h"

namespace llmsys::cuda {
namespace {

using rowops::Pack;

// x * scale rounded to T: float32 and float64 multiply in double (as the
// reference: the same bits), bfloat16 and float16 in float.
__device__ __forceinline__ float Scaled(float x, double s) {
  return static_cast<float>(static_cast<double>(x) * s);
}
__device__ __forceinline__ double Scaled(double x, double s) { return x * s; }
__device__ __forceinline__ __nv_bfloat16 Scaled(__nv_bfloat16 x, double s) {
  return FromAcc<__nv_bfloat16>(ToAcc(x) * static_cast<float>(s));
}
__device__ __forceinline__ __half Scaled(__half x, double s) {
  return FromAcc<__half>(ToAcc(x) * static_cast<float>(s));
}

template <class T>
__device__ __forceinline__ T Zero() {
  return FromAcc<T>(Acc<T>(0));
}

// The 4 random words of group q: Philox4x32-10 of counter offset + q under
// key seed, as llmsys_random_u32(seed, offset, 4 q + r) for r in [0, 4).
__device__ __forceinline__ void GroupWords(uint64_t seed, uint64_t offset,
                                           int64_t q, uint32_t c[4]) {
  const uint64_t counter = offset + static_cast<uint64_t>(q);
  const uint32_t key[2] = {static_cast<uint32_t>(seed),
                           static_cast<uint32_t>(seed >> 32)};
  c[0] = static_cast<uint32_t>(counter);
  c[1] = static_cast<uint32_t>(counter >> 32);
  c[2] = 0;
  c[3] = 0;
  llmsys_philox4x32_10(c, key);
}

// kVec4: x and out aligned to 4 elements, mask to 4 bytes, so each full
// group is one vector load and two vector stores.
template <class T, bool kVec4>
__global__ void dropout_forward_kernel(const T* __restrict__ x,     // (N)
                                       T* __restrict__ out,         // (N)
                                       uint8_t* __restrict__ mask,  // (N)
                                       int64_t n, uint64_t seed,
                                       uint64_t offset, uint32_t threshold,
                                       double scale) {
  const int64_t groups = (n + 3) / 4;
  LLMSYS_GRID_STRIDE_LOOP(q, groups) {
    uint32_t c[4];
    GroupWords(seed, offset, q, c);
    const int64_t i0 = q * 4;
    if (kVec4 && i0 + 4 <= n) {
      const Pack<T, 4> xv = *reinterpret_cast<const Pack<T, 4>*>(x + i0);
      Pack<T, 4> ov;
      Pack<uint8_t, 4> mv;
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const bool keep = (c[r] >> 8) >= threshold;
        mv.v[r] = keep ? 1 : 0;
        ov.v[r] = keep ? Scaled(xv.v[r], scale) : Zero<T>();
      }
      *reinterpret_cast<Pack<T, 4>*>(out + i0) = ov;
      *reinterpret_cast<Pack<uint8_t, 4>*>(mask + i0) = mv;
    } else {
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int64_t i = i0 + r;
        if (i < n) {
          const bool keep = (c[r] >> 8) >= threshold;
          mask[i] = keep ? 1 : 0;
          out[i] = keep ? Scaled(x[i], scale) : Zero<T>();
        }
      }
    }
  }
}

template <class T, bool kVec4>
__global__ void dropout_backward_kernel(
    const T* __restrict__ g,           // (N)
    const uint8_t* __restrict__ mask,  // (N)
    T* __restrict__ dx,                // (N)
    int64_t n, double scale) {
  const int64_t groups = (n + 3) / 4;
  LLMSYS_GRID_STRIDE_LOOP(q, groups) {
    const int64_t i0 = q * 4;
    if (kVec4 && i0 + 4 <= n) {
      const Pack<T, 4> gv = *reinterpret_cast<const Pack<T, 4>*>(g + i0);
      const Pack<uint8_t, 4> mv =
          *reinterpret_cast<const Pack<uint8_t, 4>*>(mask + i0);
      Pack<T, 4> ov;
#pragma unroll
      for (int r = 0; r < 4; ++r)
        ov.v[r] = mv.v[r] != 0 ? Scaled(gv.v[r], scale) : Zero<T>();
      *reinterpret_cast<Pack<T, 4>*>(dx + i0) = ov;
    } else {
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int64_t i = i0 + r;
        if (i < n) dx[i] = mask[i] != 0 ? Scaled(g[i], scale) : Zero<T>();
      }
    }
  }
}

template <class T>
__global__ void dropout_zero_kernel(T* __restrict__ p, int64_t n) {  // (N)
  LLMSYS_GRID_STRIDE_LOOP(i, n) p[i] = Zero<T>();
}

bool AlignedTo(const void* p, uintptr_t bytes) {
  return reinterpret_cast<uintptr_t>(p) % bytes == 0;
}

template <class T>
cudaError_t DropoutForwardT(const void* x, void* out, void* mask, int64_t n,
                            double p, uint64_t seed, uint64_t offset,
                            cudaStream_t stream) {
  const GridPlan plan = DropoutPlan(n);
  const bool vec = AlignedTo(x, 4 * sizeof(T)) &&
                   AlignedTo(out, 4 * sizeof(T)) && AlignedTo(mask, 4);
  const auto kernel = vec ? &dropout_forward_kernel<T, true>
                          : &dropout_forward_kernel<T, false>;
  LLMSYS_LAUNCH(kernel, plan.blocks, plan.threads, 0, stream)
  (static_cast<const T*>(x), static_cast<T*>(out), static_cast<uint8_t*>(mask),
   n, seed, offset, DropoutThreshold(p), DropoutScale(p));
  return cudaGetLastError();
}

template <class T>
cudaError_t DropoutBackwardT(const void* g, const void* mask, void* dx,
                             int64_t n, double p, cudaStream_t stream) {
  if (g == nullptr) {
    const GridPlan plan = ElementwisePlan(n);
    LLMSYS_LAUNCH(dropout_zero_kernel<T>, plan.blocks, plan.threads, 0, stream)
    (static_cast<T*>(dx), n);
    return cudaGetLastError();
  }
  const GridPlan plan = DropoutPlan(n);
  const bool vec = AlignedTo(g, 4 * sizeof(T)) &&
                   AlignedTo(dx, 4 * sizeof(T)) && AlignedTo(mask, 4);
  const auto kernel = vec ? &dropout_backward_kernel<T, true>
                          : &dropout_backward_kernel<T, false>;
  LLMSYS_LAUNCH(kernel, plan.blocks, plan.threads, 0, stream)
  (static_cast<const T*>(g), static_cast<const uint8_t*>(mask),
   static_cast<T*>(dx), n, DropoutScale(p));
  return cudaGetLastError();
}

}  // namespace

cudaError_t LaunchDropoutForward(DType t, const void* x, void* out, void* mask,
                                 int64_t n, double p, uint64_t seed,
                                 uint64_t offset, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  cudaError_t e = cudaSuccess;
  LLMSYS_DISPATCH_FLOAT(
      t, { e = DropoutForwardT<T>(x, out, mask, n, p, seed, offset, stream); });
  return e;
}

cudaError_t LaunchDropoutBackward(DType t, const void* g, const void* mask,
                                  void* dx, int64_t n, double p,
                                  cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  cudaError_t e = cudaSuccess;
  LLMSYS_DISPATCH_FLOAT(
      t, { e = DropoutBackwardT<T>(g, mask, dx, n, p, stream); });
  return e;
}

}  // namespace llmsys::cuda
