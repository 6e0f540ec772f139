// cuda/gemm_simt.cu — the CUDA-core GEMM of matmul.cuda and linear.cuda,
// the fixed-order sum over broadcast batch dims, and a zero fill (plans and
// contracts in gemm_simt.h).
//
// Letters: B the GEMM's batch, R its rows, C its columns, I its inner dim
// (op(X) is (R, I), op(Y) is (I, C)); T the kTile side of a block's tile;
// O the reduction's target matrices, E the elements per matrix, W the work
// matrices it reads.
#include <cstdint>

#include "cuda/common.cuh"
#include "cuda/gemm_simt.h"

namespace llmsys::cuda {
namespace {

// One block per kTile x kTile tile of C at a time (blocks loop over the
// batch's tiles). Per step of kTile along I, the block stages op(X)'s
// (T rows, T inner) and op(Y)'s (T inner, T cols) tiles in shared memory,
// converted to the accumulation type, inner-major so that the multiply loop
// reads a row of each; zeros stand for elements past R, C or I (so ragged
// edges add exact zeros, and a NaN or inf just outside the matrix never
// meets them in a kept output). Thread (lx, ly) owns rows ly + 16 i and
// columns lx + 16 j of the tile (i, j < kTile / 16): a warp's stores are
// runs of 16 consecutive columns. Global loads walk each operand's stored
// rows with consecutive threads (coalesced whether transposed or not).
template <class T, int kTile>
__global__ void __launch_bounds__(kSimtThreads)
    simt_gemm_kernel(RowGemm g, const T* __restrict__ x,  // (B, op: R, I)
                     const T* __restrict__ y,             // (B, op: I, C)
                     T* c,                                // (B, R, C)
                     const T* __restrict__ bias,          // (C) or null
                     Acc<T> alpha, Acc<T> beta, int64_t tiles_rows,
                     int64_t tiles_cols) {
  using A = Acc<T>;
  constexpr int kPer = kTile / kSimtSide;  // outputs per thread per side
  __shared__ A xs[kTile][kTile + 1];       // (T inner, T rows), padded
  __shared__ A ys[kTile][kTile + 1];       // (T inner, T cols), padded
  const int tid = static_cast<int>(threadIdx.x);
  const int lx = tid % kSimtSide, ly = tid / kSimtSide;
  const int64_t tiles = tiles_rows * tiles_cols;
  const int64_t work = g.batch * tiles;
  for (int64_t w = blockIdx.x; w < work; w += gridDim.x) {
    const int64_t b = w / tiles, t = w % tiles;
    const int64_t row0 = (t / tiles_cols) * kTile;
    const int64_t col0 = (t % tiles_cols) * kTile;
    const T* xb = x + b * g.stride_x;  // (op: R, I)
    const T* yb = y + b * g.stride_y;  // (op: I, C)
    A acc[kPer][kPer];
#pragma unroll
    for (int i = 0; i < kPer; ++i)
#pragma unroll
      for (int j = 0; j < kPer; ++j) acc[i][j] = A(0);
    for (int64_t k0 = 0; k0 < g.inner; k0 += kTile) {
      for (int e = tid; e < kTile * kTile; e += kSimtThreads) {
        // op(X)[row0 + r, k0 + k]: stored (R, I) row-major, or (I, R).
        const int xr = g.tx ? e % kTile : e / kTile;
        const int xk = g.tx ? e / kTile : e % kTile;
        const int64_t gr = row0 + xr, gk = k0 + xk;
        A xv = A(0);
        if (gr < g.rows && gk < g.inner)
          xv = ToAcc(g.tx ? xb[gk * g.ldx + gr] : xb[gr * g.ldx + gk]);
        xs[xk][xr] = xv;
        // op(Y)[k0 + k, col0 + n]: stored (I, C) row-major, or (C, I).
        const int yk = g.ty ? e % kTile : e / kTile;
        const int yn = g.ty ? e / kTile : e % kTile;
        const int64_t hk = k0 + yk, hn = col0 + yn;
        A yv = A(0);
        if (hk < g.inner && hn < g.cols)
          yv = ToAcc(g.ty ? yb[hn * g.ldy + hk] : yb[hk * g.ldy + hn]);
        ys[yk][yn] = yv;
      }
      __syncthreads();
#pragma unroll 8
      for (int k = 0; k < kTile; ++k) {
        A xv[kPer], yv[kPer];
#pragma unroll
        for (int i = 0; i < kPer; ++i) xv[i] = xs[k][ly + kSimtSide * i];
#pragma unroll
        for (int j = 0; j < kPer; ++j) yv[j] = ys[k][lx + kSimtSide * j];
#pragma unroll
        for (int i = 0; i < kPer; ++i)
#pragma unroll
          for (int j = 0; j < kPer; ++j) acc[i][j] += xv[i] * yv[j];
      }
      __syncthreads();  // the next step overwrites the tiles
    }
    T* cb = c + b * g.stride_c;  // (R, C)
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
      const int64_t r = row0 + ly + kSimtSide * i;
      if (r >= g.rows) continue;
#pragma unroll
      for (int j = 0; j < kPer; ++j) {
        const int64_t n = col0 + lx + kSimtSide * j;
        if (n >= g.cols) continue;
        A v = alpha * acc[i][j];
        if (bias != nullptr) v += ToAcc(bias[n]);
        T* p = cb + r * g.ldc + n;
        if (beta != A(0)) v += beta * ToAcc(*p);
        *p = FromAcc<T>(v);
      }
    }
  }
}

// target[o, e] = the sum over the reduced dims (BroadcastReduce). A block
// takes 32 consecutive target elements at a time; its kSimtReduceParts
// warps split the reduced items round-robin, each summing its share in
// order, and lane l of warp 0 adds the parts in part order.
template <class T>
__global__ void __launch_bounds__(kSimtReduceThreads)
    simt_reduce_kernel(T* __restrict__ target,      // (O, E)
                       const T* __restrict__ work,  // (W, E)
                       BroadcastReduce spec) {
  using A = Acc<T>;
  __shared__ A parts[kSimtReduceParts][kSimtReduceCols];
  const int lane = static_cast<int>(threadIdx.x) % kSimtReduceCols;
  const int part = static_cast<int>(threadIdx.x) / kSimtReduceCols;
  const int64_t total = spec.outer * spec.mat;
  int64_t count = 1;
  for (int d = 0; d < spec.nred; ++d) count *= spec.red_size[d];
  for (int64_t first = blockIdx.x * int64_t{kSimtReduceCols}; first < total;
       first += int64_t{gridDim.x} * kSimtReduceCols) {
    const int64_t i = first + lane;
    A sum = A(0);
    if (i < total) {
      const int64_t e = i % spec.mat;
      int64_t o = i / spec.mat;
      int64_t base = 0;  // the kept dims' coordinates of o, as a work matrix
      for (int d = spec.nkeep - 1; d >= 0; --d) {
        base += (o % spec.keep_size[d]) * spec.keep_stride[d];
        o /= spec.keep_size[d];
      }
      for (int64_t r = part; r < count; r += kSimtReduceParts) {
        int64_t off = 0, q = r;  // r's row-major position over reduced dims
        for (int d = spec.nred - 1; d >= 0; --d) {
          off += (q % spec.red_size[d]) * spec.red_stride[d];
          q /= spec.red_size[d];
        }
        sum += ToAcc(work[(base + off) * spec.mat + e]);
      }
    }
    parts[part][lane] = sum;
    __syncthreads();
    if (part == 0 && i < total) {
      A s = parts[0][lane];
#pragma unroll
      for (int p = 1; p < kSimtReduceParts; ++p) s += parts[p][lane];
      target[i] = FromAcc<T>(s);
    }
    __syncthreads();  // the next round writes `parts` again
  }
}

template <class T>
__global__ void simt_zero_kernel(T* __restrict__ p,  // (n)
                                 int64_t n) {
  LLMSYS_GRID_STRIDE_LOOP(i, n) p[i] = FromAcc<T>(Acc<T>(0));
}

template <class T, int kTile>
void LaunchGemmTiles(const SimtGemmPlan& plan, const RowGemm& g, const void* x,
                     const void* y, void* c, const void* bias, double alpha,
                     double beta, cudaStream_t stream) {
  const auto kernel = simt_gemm_kernel<T, kTile>;
  LLMSYS_LAUNCH(kernel, plan.blocks, plan.threads, 0, stream)
  (g, static_cast<const T*>(x), static_cast<const T*>(y), static_cast<T*>(c),
   static_cast<const T*>(bias), static_cast<Acc<T>>(alpha),
   static_cast<Acc<T>>(beta), plan.tiles_rows, plan.tiles_cols);
}

}  // namespace

cudaError_t LaunchSimtGemm(DType t, const RowGemm& g, const void* x,
                           const void* y, void* c, const void* bias,
                           double alpha, double beta, cudaStream_t stream) {
  if (g.batch <= 0 || g.rows <= 0 || g.cols <= 0) return cudaSuccess;
  const SimtGemmPlan plan = SimtGemmPlanOf(g.rows, g.cols, g.batch);
  LLMSYS_DISPATCH_FLOAT(t, {
    if (plan.tile == 32)
      LaunchGemmTiles<T, 32>(plan, g, x, y, c, bias, alpha, beta, stream);
    else
      LaunchGemmTiles<T, 16>(plan, g, x, y, c, bias, alpha, beta, stream);
  });
  return cudaGetLastError();
}

cudaError_t LaunchSimtReduce(DType t, void* target, const void* work,
                             const BroadcastReduce& spec, cudaStream_t stream) {
  if (spec.outer * spec.mat <= 0) return cudaSuccess;
  const GridPlan plan = SimtReducePlan(spec);
  LLMSYS_DISPATCH_FLOAT(t, {
    LLMSYS_LAUNCH(simt_reduce_kernel<T>, plan.blocks, plan.threads, 0, stream)
    (static_cast<T*>(target), static_cast<const T*>(work), spec);
  });
  return cudaGetLastError();
}

cudaError_t LaunchSimtZero(DType t, void* p, int64_t n, cudaStream_t stream) {
  if (p == nullptr || n <= 0) return cudaSuccess;
  const GridPlan plan = ElementwisePlan(n);
  LLMSYS_DISPATCH_FLOAT(t, {
    LLMSYS_LAUNCH(simt_zero_kernel<T>, plan.blocks, plan.threads, 0, stream)
    (static_cast<T*>(p), n);
  });
  return cudaGetLastError();
}

}  // namespace llmsys::cuda
