// cuda/norms.cu — layer_norm and rms_norm over the last dim, forward and
// backward (plans and contracts in norms.h).
//
// Letters: R rows (x's leading dims flattened), C the normalized (last)
// dim, P the parts of a backward call (NormGradParts).
//
// Each kernel is written once for both ops (kRms): rms_norm is layer_norm
// with the mean fixed at 0 and no bias. Sums run in the accumulation type
// (float, double for float64); the parameter gradients' partials are added
// in double by the last kernel.
#include <cstdint>

#include "cuda/common.cuh"
#include "cuda/norms.h"
#include "cuda/rows.cuh"

namespace llmsys::cuda {
namespace {

using rowops::GroupSum;
using rowops::kRowMaxThreads;
using rowops::LoadPack;
using rowops::RowCacheElems;
using rowops::RowGroup;
using rowops::RowGroupOf;
using rowops::RowPlan;
using rowops::RowVecElems;
using rowops::Sqrt;
using rowops::StorePack;

// ---- forward ----

// One row per group (a warp or the block), the row in registers: the
// thread holds vectors lane, lane + size, ... (at most kVecs of kVec
// elements each; the plan makes sure they cover the row).
template <class T, int kVec, int kVecs, bool kRms>
__global__ void __launch_bounds__(kRowMaxThreads, 1)
    norm_forward_kernel(const T* __restrict__ x,       // (R, C)
                        const T* __restrict__ weight,  // (C) or null
                        const T* __restrict__ bias,    // (C) or null
                        T* __restrict__ out,           // (R, C)
                        T* __restrict__ mean,          // (R); null for rms
                        T* __restrict__ rstd,          // (R)
                        int64_t rows, int64_t cols, Acc<T> eps,
                        bool warp_rows) {
  using A = Acc<T>;
  constexpr int kE = kVec * kVecs;
  __shared__ A scratch[32];
  const RowGroup grp = RowGroupOf(warp_rows);
  // Within a row, 32-bit indices: the plan caches rows of at most
  // RowCacheLimit (16384) elements.
  const int nvec = static_cast<int>(cols / kVec);
  const A n = static_cast<A>(cols);  // 0 gives mean and rstd NaN, as 0 / 0
  for (int64_t r = grp.first; r < rows; r += grp.stride) {
    const T* xr = x + r * cols;
    A v[kE] = {};
    A sum = A(0);
#pragma unroll
    for (int k = 0; k < kVecs; ++k) {
      const int vi = grp.lane + k * grp.size;
      if (vi < nvec) {
        LoadPack<T, kVec>(xr + vi * kVec, v + k * kVec);
#pragma unroll
        for (int i = 0; i < kVec; ++i) {
          const A a = v[k * kVec + i];
          sum += kRms ? a * a : a;
        }
      }
    }
    sum = GroupSum(sum, scratch, warp_rows);
    A mu = A(0), var;
    if constexpr (kRms) {
      var = sum / n;
    } else {
      mu = sum / n;
      A sq = A(0);
#pragma unroll
      for (int k = 0; k < kVecs; ++k) {
        const int vi = grp.lane + k * grp.size;
        if (vi < nvec) {
#pragma unroll
          for (int i = 0; i < kVec; ++i) {
            const A d = v[k * kVec + i] - mu;
            sq += d * d;
          }
        }
      }
      var = GroupSum(sq, scratch, warp_rows) / n;
    }
    const A rs = A(1) / Sqrt(var + eps);
    T* outr = out + r * cols;
#pragma unroll
    for (int k = 0; k < kVecs; ++k) {
      const int vi = grp.lane + k * grp.size;
      if (vi < nvec) {
        A y[kVec], p[kVec] = {};
#pragma unroll
        for (int i = 0; i < kVec; ++i) y[i] = (v[k * kVec + i] - mu) * rs;
        if (weight != nullptr) {
          LoadPack<T, kVec>(weight + vi * kVec, p);
#pragma unroll
          for (int i = 0; i < kVec; ++i) y[i] *= p[i];
        }
        if (bias != nullptr) {
          LoadPack<T, kVec>(bias + vi * kVec, p);
#pragma unroll
          for (int i = 0; i < kVec; ++i) y[i] += p[i];
        }
        StorePack<T, kVec>(outr + vi * kVec, y);
      }
    }
    if (grp.lane == 0) {
      if constexpr (!kRms) mean[r] = FromAcc<T>(mu);
      rstd[r] = FromAcc<T>(rs);
    }
  }
}

// Rows too long for registers: one block per row, x read once per pass
// (sum, squared deviations, output) through L1/L2.
template <class T, int kVec, bool kRms>
__global__ void __launch_bounds__(kRowMaxThreads, 1)
    norm_forward_uncached_kernel(const T* __restrict__ x,       // (R, C)
                                 const T* __restrict__ weight,  // (C) or null
                                 const T* __restrict__ bias,    // (C) or null
                                 T* __restrict__ out,           // (R, C)
                                 T* __restrict__ mean,  // (R); null for rms
                                 T* __restrict__ rstd,  // (R)
                                 int64_t rows, int64_t cols, Acc<T> eps) {
  using A = Acc<T>;
  __shared__ A scratch[32];
  const int tid = static_cast<int>(threadIdx.x);
  const int nt = static_cast<int>(blockDim.x);
  const int64_t nvec = cols / kVec;
  const A n = static_cast<A>(cols);
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * cols;
    A v[kVec];
    A sum = A(0);
    for (int64_t vi = tid; vi < nvec; vi += nt) {
      LoadPack<T, kVec>(xr + vi * kVec, v);
#pragma unroll
      for (int i = 0; i < kVec; ++i) sum += kRms ? v[i] * v[i] : v[i];
    }
    sum = BlockSum(sum, scratch);
    A mu = A(0), var;
    if constexpr (kRms) {
      var = sum / n;
    } else {
      mu = sum / n;
      A sq = A(0);
      for (int64_t vi = tid; vi < nvec; vi += nt) {
        LoadPack<T, kVec>(xr + vi * kVec, v);
#pragma unroll
        for (int i = 0; i < kVec; ++i) sq += (v[i] - mu) * (v[i] - mu);
      }
      var = BlockSum(sq, scratch) / n;
    }
    const A rs = A(1) / Sqrt(var + eps);
    T* outr = out + r * cols;
    for (int64_t vi = tid; vi < nvec; vi += nt) {
      A p[kVec] = {};
      LoadPack<T, kVec>(xr + vi * kVec, v);
#pragma unroll
      for (int i = 0; i < kVec; ++i) v[i] = (v[i] - mu) * rs;
      if (weight != nullptr) {
        LoadPack<T, kVec>(weight + vi * kVec, p);
#pragma unroll
        for (int i = 0; i < kVec; ++i) v[i] *= p[i];
      }
      if (bias != nullptr) {
        LoadPack<T, kVec>(bias + vi * kVec, p);
#pragma unroll
        for (int i = 0; i < kVec; ++i) v[i] += p[i];
      }
      StorePack<T, kVec>(outr + vi * kVec, v);
    }
    if (tid == 0) {
      if constexpr (!kRms) mean[r] = FromAcc<T>(mu);
      rstd[r] = FromAcc<T>(rs);
    }
  }
}

// ---- backward ----
//
// With xhat = (x - mean) * rstd (rms_norm: x * rstd) and gy = g * weight:
//   layer_norm: dx = rstd * (gy - mean(gy) - xhat * mean(gy * xhat))
//   rms_norm:   dx = rstd * (gy - x * rstd^2 * mean(gy * x))
//   dweight = sum over rows of g * xhat, dbias = sum over rows of g.
// Block p takes the rows of part p; its threads keep the parameter sums of
// their columns in registers over those rows (in row order), then write
// them as partial row p (warps of a block first added in warp order).

template <class T, int kVec, int kVecs, bool kRms>
__global__ void __launch_bounds__(kRowMaxThreads, 1)
    norm_backward_kernel(const T* __restrict__ x,       // (R, C)
                         const T* __restrict__ weight,  // (C) or null
                         const T* __restrict__ g,       // (R, C)
                         const T* __restrict__ mean,    // (R); null for rms
                         const T* __restrict__ rstd,    // (R)
                         T* __restrict__ dx,            // (R, C) or null
                         Acc<T>* __restrict__ dw_part,  // (P, C) or null
                         Acc<T>* __restrict__ db_part,  // (P, C) or null
                         int64_t rows, int64_t cols, int64_t parts,
                         bool warp_rows) {
  using A = Acc<T>;
  constexpr int kE = kVec * kVecs;
  __shared__ A scratch[32];
  // warp_rows: the warps' parameter sums, added in warp order. The plan
  // gives warp_rows only for C <= 32 * kE.
  __shared__ A combine[2][32 * kE];
  const int tid = static_cast<int>(threadIdx.x);
  const int groups = warp_rows ? static_cast<int>(blockDim.x) / 32 : 1;
  const int group = warp_rows ? tid >> 5 : 0;
  const int lane = warp_rows ? tid & 31 : tid;
  const int size = warp_rows ? 32 : static_cast<int>(blockDim.x);
  const int nvec = static_cast<int>(cols / kVec);  // C <= RowCacheLimit
  const A n = static_cast<A>(cols);
  const bool sums = dw_part != nullptr || db_part != nullptr;
  for (int64_t part = blockIdx.x; part < parts; part += gridDim.x) {
    const int64_t r0 = part * rows / parts, r1 = (part + 1) * rows / parts;
    A dw[kE] = {}, db[kE] = {};
    for (int64_t r = r0 + group; r < r1; r += groups) {
      const A mu = kRms ? A(0) : ToAcc(mean[r]);
      const A rs = ToAcc(rstd[r]);
      const T* xr = x + r * cols;
      const T* gr = g + r * cols;
      // xs: xhat (layer_norm) or x (rms_norm); gs: gy.
      A xs[kE] = {}, gs[kE] = {};
      A s1 = A(0), s2 = A(0);
#pragma unroll
      for (int k = 0; k < kVecs; ++k) {
        const int vi = lane + k * size;
        if (vi < nvec) {
          A* xk = xs + k * kVec;
          A* gk = gs + k * kVec;
          LoadPack<T, kVec>(xr + vi * kVec, xk);
          LoadPack<T, kVec>(gr + vi * kVec, gk);
          A w[kVec] = {};
          if (weight != nullptr) LoadPack<T, kVec>(weight + vi * kVec, w);
#pragma unroll
          for (int i = 0; i < kVec; ++i) {
            const A gi = gk[i];
            const A xh = (xk[i] - mu) * rs;
            const A gy = weight != nullptr ? gi * w[i] : gi;
            dw[k * kVec + i] += gi * xh;
            if constexpr (!kRms) {
              db[k * kVec + i] += gi;
              xk[i] = xh;
              s1 += gy;
            }
            s2 += gy * xk[i];
            gk[i] = gy;
          }
        }
      }
      if (dx != nullptr) {
        T* dxr = dx + r * cols;
        A m1 = A(0);
        if constexpr (!kRms) m1 = GroupSum(s1, scratch, warp_rows) / n;
        const A m2 = GroupSum(s2, scratch, warp_rows) / n;
#pragma unroll
        for (int k = 0; k < kVecs; ++k) {
          const int vi = lane + k * size;
          if (vi < nvec) {
            A d[kVec];
#pragma unroll
            for (int i = 0; i < kVec; ++i) {
              const int e = k * kVec + i;
              d[i] = kRms ? rs * (gs[e] - xs[e] * rs * rs * m2)
                          : rs * (gs[e] - m1 - xs[e] * m2);
            }
            StorePack<T, kVec>(dxr + vi * kVec, d);
          }
        }
      }
    }
    if (!sums) continue;
    if (!warp_rows) {
#pragma unroll
      for (int k = 0; k < kVecs; ++k) {
        const int vi = lane + k * size;
        if (vi < nvec) {
#pragma unroll
          for (int i = 0; i < kVec; ++i) {
            const int64_t at = part * cols + (vi * kVec + i);
            if (dw_part != nullptr) dw_part[at] = dw[k * kVec + i];
            if (db_part != nullptr) db_part[at] = db[k * kVec + i];
          }
        }
      }
      continue;
    }
    // Every warp's lane l holds the same columns: add warp by warp.
    for (int w = 0; w < groups; ++w) {
      if (group == w) {
#pragma unroll
        for (int k = 0; k < kVecs; ++k) {
          const int vi = lane + k * size;
          if (vi < nvec) {
#pragma unroll
            for (int i = 0; i < kVec; ++i) {
              const int j = vi * kVec + i;  // < C <= 32 * kE
              const int e = k * kVec + i;
              combine[0][j] = (w == 0 ? A(0) : combine[0][j]) + dw[e];
              combine[1][j] = (w == 0 ? A(0) : combine[1][j]) + db[e];
            }
          }
        }
      }
      __syncthreads();
    }
    for (int64_t j = tid; j < cols; j += blockDim.x) {
      if (dw_part != nullptr) dw_part[part * cols + j] = combine[0][j];
      if (db_part != nullptr) db_part[part * cols + j] = combine[1][j];
    }
    __syncthreads();  // the next part writes `combine` again
  }
}

// Rows too long for registers: one block per part, each row read twice
// (the row sums, then dx), the thread's parameter sums kept in its own
// columns of the partial rows.
template <class T, int kVec, bool kRms>
__global__ void __launch_bounds__(kRowMaxThreads, 1)
    norm_backward_uncached_kernel(const T* __restrict__ x,       // (R, C)
                                  const T* __restrict__ weight,  // (C)|null
                                  const T* __restrict__ g,       // (R, C)
                                  const T* __restrict__ mean,    // (R)|null
                                  const T* __restrict__ rstd,    // (R)
                                  T* __restrict__ dx,            // (R, C)|null
                                  Acc<T>* __restrict__ dw_part,  // (P, C)|null
                                  Acc<T>* __restrict__ db_part,  // (P, C)|null
                                  int64_t rows, int64_t cols, int64_t parts) {
  using A = Acc<T>;
  __shared__ A scratch[32];
  const int tid = static_cast<int>(threadIdx.x);
  const int nt = static_cast<int>(blockDim.x);
  const int64_t nvec = cols / kVec;
  const A n = static_cast<A>(cols);
  for (int64_t part = blockIdx.x; part < parts; part += gridDim.x) {
    const int64_t r0 = part * rows / parts, r1 = (part + 1) * rows / parts;
    A* dwp = dw_part != nullptr ? dw_part + part * cols : nullptr;  // (C)
    A* dbp = db_part != nullptr ? db_part + part * cols : nullptr;  // (C)
    // Only this thread ever touches its columns of the partial rows.
    for (int64_t j = int64_t{tid} * kVec; j < cols; j += int64_t{nt} * kVec)
#pragma unroll
      for (int i = 0; i < kVec; ++i) {
        if (dwp != nullptr) dwp[j + i] = A(0);
        if (dbp != nullptr) dbp[j + i] = A(0);
      }
    for (int64_t r = r0; r < r1; ++r) {
      const A mu = kRms ? A(0) : ToAcc(mean[r]);
      const A rs = ToAcc(rstd[r]);
      const T* xr = x + r * cols;
      const T* gr = g + r * cols;
      A xv[kVec] = {}, gv[kVec] = {}, w[kVec] = {};
      A m1 = A(0), m2 = A(0);
      if (dx != nullptr) {
        A s1 = A(0), s2 = A(0);
        for (int64_t vi = tid; vi < nvec; vi += nt) {
          LoadPack<T, kVec>(xr + vi * kVec, xv);
          LoadPack<T, kVec>(gr + vi * kVec, gv);
          if (weight != nullptr) LoadPack<T, kVec>(weight + vi * kVec, w);
#pragma unroll
          for (int i = 0; i < kVec; ++i) {
            const A gy = weight != nullptr ? gv[i] * w[i] : gv[i];
            s1 += gy;
            s2 += gy * (kRms ? xv[i] : (xv[i] - mu) * rs);
          }
        }
        if constexpr (!kRms) m1 = BlockSum(s1, scratch) / n;
        m2 = BlockSum(s2, scratch) / n;
      }
      for (int64_t vi = tid; vi < nvec; vi += nt) {
        LoadPack<T, kVec>(xr + vi * kVec, xv);
        LoadPack<T, kVec>(gr + vi * kVec, gv);
        if (weight != nullptr) LoadPack<T, kVec>(weight + vi * kVec, w);
        A d[kVec];
#pragma unroll
        for (int i = 0; i < kVec; ++i) {
          const int64_t j = vi * kVec + i;
          const A xh = (xv[i] - mu) * rs;
          if (dwp != nullptr) dwp[j] += gv[i] * xh;
          if (dbp != nullptr) dbp[j] += gv[i];
          const A gy = weight != nullptr ? gv[i] * w[i] : gv[i];
          d[i] = kRms ? rs * (gy - xv[i] * rs * rs * m2)
                      : rs * (gy - m1 - xh * m2);
        }
        if (dx != nullptr) StorePack<T, kVec>(dx + r * cols + vi * kVec, d);
      }
    }
  }
}

// out[j] = sum over p of part[p, j], in p order (32 threads per column
// take every 32nd part, then one thread adds their 32 sums in order).
// Blocks of 32 * kNormGradCols threads; P may be 0 (out is zero).
template <class T>
__global__ void __launch_bounds__(32 * kNormGradCols)
    norm_param_grad_kernel(const Acc<T>* __restrict__ part,  // (P, C)
                           int64_t parts, int64_t cols,
                           T* __restrict__ out) {  // (C)
  __shared__ double sums[32][kNormGradCols];
  const int tid = static_cast<int>(threadIdx.x);
  const int c = tid % kNormGradCols, l = tid / kNormGradCols;
  for (int64_t tile = blockIdx.x; tile * kNormGradCols < cols;
       tile += gridDim.x) {
    const int64_t j = tile * kNormGradCols + c;
    double s = 0;
    if (j < cols)
      for (int64_t p = l; p < parts; p += 32)
        s += static_cast<double>(part[p * cols + j]);
    sums[l][c] = s;
    __syncthreads();
    if (l == 0 && j < cols) {
      double t = 0;
      for (int q = 0; q < 32; ++q) t += sums[q][c];
      out[j] = rowops::FromDouble<T>(t);
    }
    __syncthreads();  // the next tile writes `sums` again
  }
}

template <class T>
__global__ void norm_zero_kernel(T* __restrict__ p, int64_t n) {  // (n)
  LLMSYS_GRID_STRIDE_LOOP(i, n) p[i] = FromAcc<T>(Acc<T>(0));
}

// ---- launchers ----

bool Aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;  // null is aligned
}

// Row-shaped operands all 16-byte aligned (null ones count as aligned)
// and rows a multiple of 16 bytes: vector loads are allowed.
bool RowsAligned(int64_t cols, DType t, const void* x, const void* out,
                 const void* weight, const void* bias) {
  return (cols * DTypeBytes(t)) % 16 == 0 && Aligned16(x) && Aligned16(out) &&
         Aligned16(weight) && Aligned16(bias);
}

template <class T>
cudaError_t Zero(void* p, int64_t n, cudaStream_t stream) {
  if (p == nullptr || n <= 0) return cudaSuccess;
  const GridPlan plan = ElementwisePlan(n);
  LLMSYS_LAUNCH(norm_zero_kernel<T>, plan.blocks, plan.threads, 0, stream)
  (static_cast<T*>(p), n);
  return cudaGetLastError();
}

template <class T, bool kRms>
cudaError_t NormForward(const RowPlan& plan, const void* x, const void* weight,
                        const void* bias, void* out, void* mean, void* rstd,
                        int64_t rows, int64_t cols, double eps,
                        cudaStream_t stream) {
  using A = Acc<T>;
  constexpr int kV = RowVecElems(sizeof(T));
  constexpr int kEv = RowCacheElems(sizeof(T), kNormForwardArrays, true);
  constexpr int kEs = RowCacheElems(sizeof(T), kNormForwardArrays, false);
  const auto* px = static_cast<const T*>(x);
  const auto* pw = static_cast<const T*>(weight);
  const auto* pb = static_cast<const T*>(bias);
  auto* po = static_cast<T*>(out);
  auto* pm = static_cast<T*>(mean);
  auto* ps = static_cast<T*>(rstd);
  const A e = static_cast<A>(eps);
  if (!plan.cached) {
    const auto kernel = plan.vec > 1
                            ? &norm_forward_uncached_kernel<T, kV, kRms>
                            : &norm_forward_uncached_kernel<T, 1, kRms>;
    LLMSYS_LAUNCH(kernel, plan.blocks, plan.threads, 0, stream)
    (px, pw, pb, po, pm, ps, rows, cols, e);
  } else {
    const auto kernel = plan.vec > 1
                            ? &norm_forward_kernel<T, kV, kEv / kV, kRms>
                            : &norm_forward_kernel<T, 1, kEs, kRms>;
    LLMSYS_LAUNCH(kernel, plan.blocks, plan.threads, 0, stream)
    (px, pw, pb, po, pm, ps, rows, cols, e, plan.warp_rows);
  }
  return cudaGetLastError();
}

// The backward of both ops (rms_norm: mean and dbias null).
template <class T, bool kRms>
cudaError_t NormBackward(const NormBackwardPlan& plan, const void* x,
                         const void* weight, const void* g, const void* mean,
                         const void* rstd, void* dx, void* dweight, void* dbias,
                         int64_t rows, int64_t cols, void* workspace,
                         cudaStream_t stream) {
  using A = Acc<T>;
  if (cols <= 0) return cudaSuccess;  // every gradient is empty
  if (g == nullptr || rows <= 0) {
    // Zero incoming gradient, or no rows: every gradient asked for is 0.
    cudaError_t e = Zero<T>(dx, rows * cols, stream);
    if (e == cudaSuccess) e = Zero<T>(dweight, cols, stream);
    if (e == cudaSuccess) e = Zero<T>(dbias, cols, stream);
    return e;
  }
  constexpr int kV = RowVecElems(sizeof(T));
  constexpr int kEv = RowCacheElems(sizeof(T), kNormBackwardArrays, true);
  constexpr int kEs = RowCacheElems(sizeof(T), kNormBackwardArrays, false);
  A* ws = static_cast<A*>(workspace);
  A* dw_part = dweight != nullptr ? ws : nullptr;  // (P, C)
  A* db_part = dbias != nullptr
                   ? ws + (weight != nullptr ? plan.parts * cols : 0)
                   : nullptr;  // (P, C)
  const auto* px = static_cast<const T*>(x);
  const auto* pw = static_cast<const T*>(weight);
  const auto* pg = static_cast<const T*>(g);
  const auto* pm = static_cast<const T*>(mean);
  const auto* ps = static_cast<const T*>(rstd);
  auto* pdx = static_cast<T*>(dx);
  const RowPlan& rp = plan.row;
  if (!rp.cached) {
    const auto kernel = rp.vec > 1 ? &norm_backward_uncached_kernel<T, kV, kRms>
                                   : &norm_backward_uncached_kernel<T, 1, kRms>;
    LLMSYS_LAUNCH(kernel, rp.blocks, rp.threads, 0, stream)
    (px, pw, pg, pm, ps, pdx, dw_part, db_part, rows, cols, plan.parts);
  } else {
    const auto kernel = rp.vec > 1
                            ? &norm_backward_kernel<T, kV, kEv / kV, kRms>
                            : &norm_backward_kernel<T, 1, kEs, kRms>;
    LLMSYS_LAUNCH(kernel, rp.blocks, rp.threads, 0, stream)
    (px, pw, pg, pm, ps, pdx, dw_part, db_part, rows, cols, plan.parts,
     rp.warp_rows);
  }
  const GridPlan fin = NormParamGradPlan(cols);
  if (dweight != nullptr)
    LLMSYS_LAUNCH(norm_param_grad_kernel<T>, fin.blocks, fin.threads, 0, stream)
  (dw_part, plan.parts, cols, static_cast<T*>(dweight));
  if (dbias != nullptr)
    LLMSYS_LAUNCH(norm_param_grad_kernel<T>, fin.blocks, fin.threads, 0, stream)
  (db_part, plan.parts, cols, static_cast<T*>(dbias));
  return cudaGetLastError();
}

}  // namespace

cudaError_t LaunchLayerNormForward(DType t, const void* x, const void* weight,
                                   const void* bias, void* out, void* mean,
                                   void* rstd, int64_t rows, int64_t cols,
                                   double eps, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  const rowops::RowPlan plan = NormForwardPlan(
      rows, cols, t, RowsAligned(cols, t, x, out, weight, bias));
  cudaError_t e = cudaSuccess;
  LLMSYS_DISPATCH_FLOAT(t, {
    e = NormForward<T, false>(plan, x, weight, bias, out, mean, rstd, rows,
                              cols, eps, stream);
  });
  return e;
}

cudaError_t LaunchLayerNormBackward(DType t, const void* x, const void* weight,
                                    const void* g, const void* mean,
                                    const void* rstd, void* dx, void* dweight,
                                    void* dbias, int64_t rows, int64_t cols,
                                    void* workspace, cudaStream_t stream) {
  const NormBackwardPlan plan =
      PlanNormBackward(rows, cols, t, RowsAligned(cols, t, x, g, dx, weight));
  cudaError_t e = cudaSuccess;
  LLMSYS_DISPATCH_FLOAT(t, {
    e = NormBackward<T, false>(plan, x, weight, g, mean, rstd, dx, dweight,
                               dbias, rows, cols, workspace, stream);
  });
  return e;
}

cudaError_t LaunchRmsNormForward(DType t, const void* x, const void* weight,
                                 void* out, void* rstd, int64_t rows,
                                 int64_t cols, double eps,
                                 cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  const rowops::RowPlan plan = NormForwardPlan(
      rows, cols, t, RowsAligned(cols, t, x, out, weight, nullptr));
  cudaError_t e = cudaSuccess;
  LLMSYS_DISPATCH_FLOAT(t, {
    e = NormForward<T, true>(plan, x, weight, nullptr, out, nullptr, rstd, rows,
                             cols, eps, stream);
  });
  return e;
}

cudaError_t LaunchRmsNormBackward(DType t, const void* x, const void* weight,
                                  const void* g, const void* rstd, void* dx,
                                  void* dweight, int64_t rows, int64_t cols,
                                  void* workspace, cudaStream_t stream) {
  const NormBackwardPlan plan =
      PlanNormBackward(rows, cols, t, RowsAligned(cols, t, x, g, dx, weight));
  cudaError_t e = cudaSuccess;
  LLMSYS_DISPATCH_FLOAT(t, {
    e = NormBackward<T, true>(plan, x, weight, g, nullptr, rstd, dx, dweight,
                              nullptr, rows, cols, workspace, stream);
  });
  return e;
}

}  // namespace llmsys::cuda
