// cuda/rows.cuh — device helpers of the row kernels (norms.cu, softmax.cu)
// and of dropout.cu: aligned vector loads and stores that convert to the
// accumulation type, the row a warp or block is on (RowGroup), reductions
// over that group, exp/log/sqrt for float and double, and an online
// log-sum-exp.
//
// Follows the conventions of common.cuh (it builds under the CPU emulation
// too). Everything here is in namespace llmsys::cuda::rowops.
//
// Thread-safety: device code.
#ifndef LLMSYS_CUDA_ROWS_CUH_
#define LLMSYS_CUDA_ROWS_CUH_

#include <cmath>
#include <cstdint>

#include "cuda/common.cuh"
#include "cuda/rows.h"

namespace llmsys::cuda::rowops {

// kN elements of T, aligned to their size: one vector load or store (16
// bytes at most per instruction; the compiler splits larger ones).
template <class T, int kN>
struct alignas(sizeof(T) * kN) Pack {
  T v[kN];
};

// a[0 .. kN) = p[0 .. kN) in the accumulation type; p aligned to the pack.
template <class T, int kN>
__device__ __forceinline__ void LoadPack(const T* p, Acc<T>* a) {
  const Pack<T, kN> pk = *reinterpret_cast<const Pack<T, kN>*>(p);
#pragma unroll
  for (int i = 0; i < kN; ++i) a[i] = ToAcc(pk.v[i]);
}

// p[0 .. kN) = a[0 .. kN) rounded to T; p aligned to the pack.
template <class T, int kN>
__device__ __forceinline__ void StorePack(T* p, const Acc<T>* a) {
  Pack<T, kN> pk;
#pragma unroll
  for (int i = 0; i < kN; ++i) pk.v[i] = FromAcc<T>(a[i]);
  *reinterpret_cast<Pack<T, kN>*>(p) = pk;
}

// Rounds a double sum to T.
template <class T>
__device__ __forceinline__ T FromDouble(double x) {
  return FromAcc<T>(static_cast<Acc<T>>(x));
}

__device__ __forceinline__ float Exp(float x) { return ::expf(x); }
__device__ __forceinline__ double Exp(double x) { return ::exp(x); }
__device__ __forceinline__ float Log(float x) { return ::logf(x); }
__device__ __forceinline__ double Log(double x) { return ::log(x); }
__device__ __forceinline__ float Sqrt(float x) { return ::sqrtf(x); }
__device__ __forceinline__ double Sqrt(double x) { return ::sqrt(x); }

template <class A>
__device__ __forceinline__ A NegInf() {
  return -static_cast<A>(INFINITY);
}
template <class A>
__device__ __forceinline__ A QuietNan() {
  return static_cast<A>(NAN);
}
// False for NaN and +-inf (no isfinite: the emulation's <cmath> and CUDA's
// disagree on which overloads are global).
template <class A>
__device__ __forceinline__ bool IsFinite(A x) {
  return x - x == A(0);
}

// The row a thread works on: with warp_rows, warp w of block b takes rows
// b * warps + w, then + gridDim.x * warps, ...; otherwise the whole block
// takes rows b, b + gridDim.x, ... `lane` is the thread's index in its
// group of `size` threads (32, or the block).
struct RowGroup {
  int lane;
  int size;
  int64_t first;
  int64_t stride;
};

__device__ __forceinline__ RowGroup RowGroupOf(bool warp_rows) {
  const int tid = static_cast<int>(threadIdx.x);
  if (warp_rows) {
    const int64_t warps = blockDim.x / 32;
    return {tid & 31, 32, int64_t{blockIdx.x} * warps + (tid >> 5),
            int64_t{gridDim.x} * warps};
  }
  return {tid, static_cast<int>(blockDim.x), int64_t{blockIdx.x},
          int64_t{gridDim.x}};
}

// Sum and max over the row's group; every thread of the group gets the
// result. With warp_rows false every thread of the block must call it (a
// block reduction, two barriers); `scratch` is shared memory of 32 A.
template <class A>
__device__ __forceinline__ A GroupSum(A v, A* scratch, bool warp_rows) {
  return warp_rows ? WarpSum(v) : BlockSum(v, scratch);
}
template <class A>
__device__ __forceinline__ A GroupMax(A v, A* scratch, bool warp_rows) {
  return warp_rows ? WarpMax(v) : BlockMax(v, scratch, NegInf<A>());
}

// A running log-sum-exp over the values a thread has seen: m their max
// (NaN once a NaN came), s = sum of exp(x - m). Fed in batches, so that the
// rescaling exp runs once per batch, not per element. -inf values (and the
// -inf that fills absent slots) add nothing.
template <class A>
struct OnlineLse {
  A m, s;

  __device__ __forceinline__ void Init() {
    m = NegInf<A>();
    s = A(0);
  }

  template <int kN>
  __device__ __forceinline__ void Add(const A* v) {
    A bm = v[0];
#pragma unroll
    for (int i = 1; i < kN; ++i) bm = MaxNan(bm, v[i]);
    const A nm = MaxNan(m, bm);
    // s == 0: nothing finite seen yet (m may be -inf: no -inf - -inf).
    s = s == A(0) ? A(0) : s * Exp(m - nm);
    m = nm;
#pragma unroll
    for (int i = 0; i < kN; ++i)
      s += v[i] == NegInf<A>() ? A(0) : Exp(v[i] - m);
  }

  // Combines the group's threads: *max gets the row's max and the result
  // is sum exp(x - max), NaN when the max is not finite (a NaN, a +inf,
  // or a row of -inf: the reference's exp(x - max) is NaN there too).
  __device__ __forceinline__ A Finish(A* scratch, bool warp_rows, A* max) {
    const A mx = GroupMax(m, scratch, warp_rows);
    const A part = s == A(0) ? A(0) : s * Exp(m - mx);
    const A sum = GroupSum(part, scratch, warp_rows);
    *max = mx;
    return IsFinite(mx) ? sum : QuietNan<A>();
  }
};

}  // namespace llmsys::cuda::rowops

#endif  // LLMSYS_CUDA_ROWS_CUH_
