// cuda/reductions.cuh — the strided walk engine (device side) of
// cuda/reductions.h, shared by reductions.cu and elementwise.cu: a map
// kernel (output j from the operands at j's offsets) and the reduction
// kernels of a ReducePlan, generic over
//   Src  a functor: V operator()(const Offsets&) const — the value of one
//        walked element from the operands at its offsets;
//   Red  the reducer: V, Identity(), Combine(V, V) (SumReducer, ArgMaxReducer);
//   Epi  a functor: void operator()(int64_t j, V) const — stores output j.
// Functors are plain structs passed by value (no device lambdas).
//
// Letters: K outputs, R reduced elements per output, S splits.
//
// Thread-safety: device code; the launch templates as in cuda/launch.h.
#ifndef LLMSYS_CUDA_REDUCTIONS_CUH_
#define LLMSYS_CUDA_REDUCTIONS_CUH_

#include "cuda/common.cuh"
#include "cuda/reductions.h"

namespace llmsys::cuda {

// Each operand's element offset of one walked element.
struct Offsets {
  int64_t o[kMaxOperands];
};

// Adds to `off` each operand's offset of element `idx` (row-major) of the
// dims `d` (idx < the product of d's sizes). Dims are peeled innermost
// first; the outermost takes what is left, so one dim costs no division.
// Loops unroll over compile-time indices: kernel parameters are never
// indexed at run time (that would copy them to local memory).
__device__ __forceinline__ void AddOffsets(const StridedDims& d, int64_t idx,
                                           Offsets& off) {
#pragma unroll
  for (int k = kMaxDims - 1; k > 0; --k) {
    if (k < d.n) {
      const int64_t size = d.size[k];
      const int64_t c = idx % size;
      idx /= size;
#pragma unroll
      for (int o = 0; o < kMaxOperands; ++o) off.o[o] += c * d.stride[o][k];
    }
  }
  if (d.n > 0) {
#pragma unroll
    for (int o = 0; o < kMaxOperands; ++o) off.o[o] += idx * d.stride[o][0];
  }
}

__device__ __forceinline__ Offsets OffsetsOf(const StridedDims& d,
                                             int64_t idx) {
  Offsets off;
#pragma unroll
  for (int o = 0; o < kMaxOperands; ++o) off.o[o] = 0;
  AddOffsets(d, idx, off);
  return off;
}

// ---- reducers ----

template <class A>
struct SumReducer {
  using V = A;
  __device__ static V Identity() { return A(0); }
  __device__ static V Combine(V a, V b) { return a + b; }
};

// A candidate maximum: its value and its offset in x (-1: none yet).
template <class A>
struct ArgMaxValue {
  A v;
  int64_t i;
};

// The reference's rule as a total order, so any combination order gives the
// same answer: a NaN beats every number, a larger number beats a smaller
// one, and between equals (or two NaNs) the smaller offset (the first
// element row-major: offsets grow with the reduced index) wins.
template <class A>
struct ArgMaxReducer {
  using V = ArgMaxValue<A>;
  __device__ static V Identity() {
    V v;
    v.v = A(0);
    v.i = -1;
    return v;
  }
  __device__ static V Combine(V a, V b) {
    if (a.i < 0) return b;
    if (b.i < 0) return a;
    const bool a_nan = a.v != a.v, b_nan = b.v != b.v;
    if (a_nan != b_nan) return a_nan ? a : b;
    if (!a_nan && a.v != b.v) return a.v > b.v ? a : b;
    return a.i < b.i ? a : b;
  }
};

// Every thread of the block gets the combination of the `n` (a power of
// two, the block size or less with every thread below n calling) values v
// in a fixed tree: sm[t] += sm[t + h] for h = n/2, ..., 1. `sm` holds n V.
template <class Red>
__device__ __forceinline__ typename Red::V TreeCombine(typename Red::V v,
                                                       typename Red::V* sm,
                                                       int t, int n) {
  __syncthreads();  // earlier readers of sm are done
  sm[t] = v;
  __syncthreads();
  for (int h = n / 2; h > 0; h >>= 1) {
    if (t < h) sm[t] = Red::Combine(sm[t], sm[t + h]);
    __syncthreads();
  }
  return sm[0];
}

// ---- kernels ----

// out j = epi(j, src(j's offsets)) for j in [0, n).
template <class Src, class Epi>
__global__ void strided_map_kernel(Src src, Epi epi, StridedDims dims,
                                   int64_t n) {
  LLMSYS_GRID_STRIDE_LOOP(j, n) { epi(j, src(OffsetsOf(dims, j))); }
}

// kThread: a thread per output adds its R elements in order (R may be 0).
template <class Red, class Src, class Epi>
__global__ void reduce_thread_kernel(Src src, Epi epi, ReduceGeom g) {
  LLMSYS_GRID_STRIDE_LOOP(j, g.k) {
    const Offsets base = OffsetsOf(g.kept, j);
    typename Red::V acc = Red::Identity();
    for (int64_t r = 0; r < g.r; ++r) {
      Offsets off = base;
      AddOffsets(g.red, r, off);
      acc = Red::Combine(acc, src(off));
    }
    epi(j, acc);
  }
}

// kRow: block b < K * S reduces output j = b / S over split s = b % S;
// thread t adds elements r0 + t, r0 + t + blockDim, ... in order. With
// `partials` (S > 1) it writes partials[j * S + s] (K, S), else output j.
template <class Red, class Src, class Epi>
__global__ void reduce_row_kernel(Src src, Epi epi, ReduceGeom g,
                                  int64_t splits, int64_t chunk,
                                  typename Red::V* partials) {
  using V = typename Red::V;
  LLMSYS_DYNAMIC_SMEM(V, sm);  // (blockDim)
  const int t = threadIdx.x;
  const int64_t total = g.k * splits;
  for (int64_t b = blockIdx.x; b < total; b += gridDim.x) {
    const int64_t j = b / splits;
    const int64_t s = b - j * splits;
    const Offsets base = OffsetsOf(g.kept, j);
    const int64_t r0 = s * chunk;
    const int64_t r1 = r0 + chunk < g.r ? r0 + chunk : g.r;
    V acc = Red::Identity();
    if (g.red.n == 1) {  // one reduced dim: no division per element
      for (int64_t r = r0 + t; r < r1; r += blockDim.x) {
        Offsets off = base;
#pragma unroll
        for (int o = 0; o < kMaxOperands; ++o)
          off.o[o] += r * g.red.stride[o][0];
        acc = Red::Combine(acc, src(off));
      }
    } else {
      for (int64_t r = r0 + t; r < r1; r += blockDim.x) {
        Offsets off = base;
        AddOffsets(g.red, r, off);
        acc = Red::Combine(acc, src(off));
      }
    }
    acc = TreeCombine<Red>(acc, sm, t, blockDim.x);
    if (t == 0) {
      if (partials != nullptr)
        partials[j * splits + s] = acc;
      else
        epi(j, acc);
    }
  }
}

// The kept dims of a kCol walk split into the innermost one (kin outputs
// side by side, operand strides in_stride) and the others.
struct ColGeom {
  StridedDims outer;
  int64_t kin = 1;
  int64_t in_stride[kMaxOperands] = {};
};

inline ColGeom ColGeomOf(const ReduceGeom& g) {
  ColGeom c;
  c.outer = g.kept;
  c.outer.n = g.kept.n - 1;
  c.kin = g.kept.size[g.kept.n - 1];
  for (int o = 0; o < kMaxOperands; ++o) {
    c.in_stride[o] = g.kept.stride[o][g.kept.n - 1];
    c.outer.stride[o][g.kept.n - 1] = 0;
  }
  c.outer.size[g.kept.n - 1] = 0;
  return c;
}

// kCol: block b < tiles * S handles tile b / S (outputs jo * kin + col for
// col in [c0, c0 + width)) over split b % S. Thread t is column t % width
// of row group t / width; row group y adds elements r0 + y, r0 + y + rows,
// ... in order, then a tree over the row groups.
template <class Red, class Src, class Epi>
__global__ void reduce_col_kernel(Src src, Epi epi, ReduceGeom g, ColGeom cg,
                                  int width, int64_t splits, int64_t chunk,
                                  typename Red::V* partials) {
  using V = typename Red::V;
  LLMSYS_DYNAMIC_SMEM(V, sm);  // (rows, width)
  const int t = threadIdx.x;
  const int tx = t % width, ty = t / width;
  const int rows = blockDim.x / width;
  const int64_t tiles_per_row = (cg.kin + width - 1) / width;
  const int64_t total = (g.k / cg.kin) * tiles_per_row * splits;
  for (int64_t b = blockIdx.x; b < total; b += gridDim.x) {
    const int64_t tile = b / splits;
    const int64_t s = b - tile * splits;
    const int64_t jo = tile / tiles_per_row;
    const int64_t col = (tile - jo * tiles_per_row) * width + tx;
    const bool valid = col < cg.kin;
    const int64_t r0 = s * chunk;
    const int64_t r1 = r0 + chunk < g.r ? r0 + chunk : g.r;
    V acc = Red::Identity();
    if (valid) {
      Offsets base = OffsetsOf(cg.outer, jo);
#pragma unroll
      for (int o = 0; o < kMaxOperands; ++o) base.o[o] += col * cg.in_stride[o];
      if (g.red.n == 1) {
        for (int64_t r = r0 + ty; r < r1; r += rows) {
          Offsets off = base;
#pragma unroll
          for (int o = 0; o < kMaxOperands; ++o)
            off.o[o] += r * g.red.stride[o][0];
          acc = Red::Combine(acc, src(off));
        }
      } else {
        for (int64_t r = r0 + ty; r < r1; r += rows) {
          Offsets off = base;
          AddOffsets(g.red, r, off);
          acc = Red::Combine(acc, src(off));
        }
      }
    }
    __syncthreads();  // earlier readers of sm are done
    sm[ty * width + tx] = acc;
    __syncthreads();
    for (int h = rows / 2; h > 0; h >>= 1) {
      if (ty < h)
        sm[ty * width + tx] =
            Red::Combine(sm[ty * width + tx], sm[(ty + h) * width + tx]);
      __syncthreads();
    }
    if (ty == 0 && valid) {
      const int64_t j = jo * cg.kin + col;
      if (partials != nullptr)
        partials[j * splits + s] = sm[tx];
      else
        epi(j, sm[tx]);
    }
  }
}

// The second pass: output j = its S partials (K, S) combined, thread t
// taking s = t, t + blockDim, ... in order, then a tree.
template <class Red, class Epi>
__global__ void reduce_partials_kernel(const typename Red::V* partials, Epi epi,
                                       int64_t k, int64_t splits) {
  using V = typename Red::V;
  LLMSYS_DYNAMIC_SMEM(V, sm);  // (blockDim)
  const int t = threadIdx.x;
  for (int64_t j = blockIdx.x; j < k; j += gridDim.x) {
    V acc = Red::Identity();
    for (int64_t s = t; s < splits; s += blockDim.x)
      acc = Red::Combine(acc, partials[j * splits + s]);
    acc = TreeCombine<Red>(acc, sm, t, blockDim.x);
    if (t == 0) epi(j, acc);
  }
}

// ---- launch templates ----

// Runs `epi(j, src(...))` for the n outputs of `dims`.
template <class Src, class Epi>
cudaError_t LaunchMap(const StridedDims& dims, int64_t n, Src src, Epi epi,
                      cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  const GridPlan p = ElementwisePlan(n);
  const auto kernel = &strided_map_kernel<Src, Epi>;
  LLMSYS_LAUNCH(kernel, static_cast<unsigned>(p.blocks), p.threads, 0, stream)
  (src, epi, dims, n);
  return cudaGetLastError();
}

// Runs the plan `p` for `g`: `workspace` holds p.workspace bytes (64-byte
// aligned) when p.splits > 1.
template <class Red, class Src, class Epi>
cudaError_t LaunchReduce(const ReduceGeom& g, const ReducePlan& p, Src src,
                         Epi epi, void* workspace, cudaStream_t stream) {
  using V = typename Red::V;
  switch (p.kind) {
    case ReduceKind::kNone:
      return cudaSuccess;
    case ReduceKind::kThread: {
      const auto kernel = &reduce_thread_kernel<Red, Src, Epi>;
      LLMSYS_LAUNCH(kernel, static_cast<unsigned>(p.blocks), p.threads, 0,
                    stream)
      (src, epi, g);
      return cudaGetLastError();
    }
    case ReduceKind::kRow:
    case ReduceKind::kCol:
      break;
  }
  if (p.splits > 1 && workspace == nullptr) return cudaErrorInvalidValue;
  V* partials = p.splits > 1 ? static_cast<V*>(workspace) : nullptr;
  const size_t smem = static_cast<size_t>(p.threads) * sizeof(V);
  if (p.kind == ReduceKind::kRow) {
    const auto kernel = &reduce_row_kernel<Red, Src, Epi>;
    LLMSYS_LAUNCH(kernel, static_cast<unsigned>(p.blocks), p.threads, smem,
                  stream)
    (src, epi, g, p.splits, p.chunk, partials);
  } else {
    const auto kernel = &reduce_col_kernel<Red, Src, Epi>;
    LLMSYS_LAUNCH(kernel, static_cast<unsigned>(p.blocks), p.threads, smem,
                  stream)
    (src, epi, g, ColGeomOf(g), p.width, p.splits, p.chunk, partials);
  }
  if (p.splits > 1) {
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
    const auto kernel = &reduce_partials_kernel<Red, Epi>;
    const int64_t blocks = std::min(g.k, kReduceMaxGrid);
    LLMSYS_LAUNCH(kernel, static_cast<unsigned>(blocks), kReducePartialThreads,
                  static_cast<size_t>(kReducePartialThreads) * sizeof(V),
                  stream)
    (partials, epi, g.k, p.splits);
  }
  return cudaGetLastError();
}

}  // namespace llmsys::cuda

#endif  // LLMSYS_CUDA_REDUCTIONS_CUH_
