// cuda/softmax.cu — softmax and log_softmax along any dim, forward and
// backward, and cross_entropy forward and backward (plans and contracts in
// softmax.h).
//
// Letters: O, L, I the outer, softmax and inner extents of x seen around
// the dim (L contiguous when I == 1: rows); R the rows of cross_entropy, V
// its classes, P the parts of its loss sum.
//
// NaN: a lane with a NaN, a +inf, or only -inf gives NaN everywhere, as
// the reference's exp(x - max) does (OnlineLse::Finish says how).
#include <cstdint>

#include "cuda/common.cuh"
#include "cuda/rows.cuh"
#include "cuda/softmax.h"

namespace llmsys::cuda {
namespace {

using rowops::Exp;
using rowops::GroupMax;
using rowops::GroupSum;
using rowops::IsFinite;
using rowops::kRowMaxThreads;
using rowops::LoadPack;
using rowops::Log;
using rowops::NegInf;
using rowops::OnlineLse;
using rowops::QuietNan;
using rowops::RowCacheElems;
using rowops::RowGroup;
using rowops::RowGroupOf;
using rowops::RowPlan;
using rowops::RowVecElems;
using rowops::StorePack;

// Packs per batch of the online passes: at least 8 elements, so that the
// rescaling exp of OnlineLse runs at most once per 8.
template <int kVec>
inline constexpr int kBatchPacks = kVec >= 8 ? 1 : 8 / kVec;

// The thread's vectors of row xr, lane, lane + size, ... of its group (at
// most kVecs of kVec elements; the slots past the row keep their values),
// loaded into v; returns the row's max over the group (NaN if any is NaN).
template <class T, int kVec, int kVecs>
__device__ __forceinline__ Acc<T> LoadRowMax(const T* __restrict__ xr,
                                             const RowGroup& grp, int nvec,
                                             Acc<T>* v, Acc<T>* scratch,
                                             bool warp_rows) {
  using A = Acc<T>;
  A mx = NegInf<A>();
#pragma unroll
  for (int k = 0; k < kVecs; ++k) {
    const int vi = grp.lane + k * grp.size;
    if (vi < nvec) {
      LoadPack<T, kVec>(xr + vi * kVec, v + k * kVec);
#pragma unroll
      for (int i = 0; i < kVec; ++i) mx = MaxNan(mx, v[k * kVec + i]);
    }
  }
  return GroupMax(mx, scratch, warp_rows);
}

// The online log-sum-exp of row xr (nvec vectors of kVec) over the whole
// block: returns the sum of exp(x - max) and sets *mx to the max.
template <class T, int kVec>
__device__ __forceinline__ Acc<T> BlockRowLse(const T* __restrict__ xr,
                                              int64_t nvec, Acc<T>* scratch,
                                              Acc<T>* mx) {
  using A = Acc<T>;
  constexpr int kU = kBatchPacks<kVec>;
  const int tid = static_cast<int>(threadIdx.x);
  const int nt = static_cast<int>(blockDim.x);
  OnlineLse<A> lse;
  lse.Init();
  for (int64_t base = tid; base < nvec; base += int64_t{nt} * kU) {
    A v[kU * kVec];
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      const int64_t vi = base + int64_t{u} * nt;
      if (vi < nvec) {
        LoadPack<T, kVec>(xr + vi * kVec, v + u * kVec);
      } else {
#pragma unroll
        for (int i = 0; i < kVec; ++i) v[u * kVec + i] = NegInf<A>();
      }
    }
    lse.template Add<kU * kVec>(v);
  }
  return lse.Finish(scratch, false, mx);
}

// ---- softmax / log_softmax over rows (I == 1) ----

// One row per group (warp or block), held in registers: the thread holds
// vectors lane, lane + size, ... (at most kVecs of kVec elements).
template <class T, int kVec, int kVecs, bool kLog>
__global__ void __launch_bounds__(kRowMaxThreads, 1)
    softmax_rows_kernel(const T* __restrict__ x,  // (O, L)
                        T* __restrict__ y,        // (O, L)
                        int64_t rows, int64_t cols, bool warp_rows) {
  using A = Acc<T>;
  constexpr int kE = kVec * kVecs;
  __shared__ A scratch[32];
  const RowGroup grp = RowGroupOf(warp_rows);
  const int nvec = static_cast<int>(cols / kVec);  // L <= RowCacheLimit
  for (int64_t r = grp.first; r < rows; r += grp.stride) {
    A v[kE] = {};
    const A mx = LoadRowMax<T, kVec, kVecs>(x + r * cols, grp, nvec, v, scratch,
                                            warp_rows);
    A sum = A(0);
#pragma unroll
    for (int k = 0; k < kVecs; ++k) {
      const int vi = grp.lane + k * grp.size;
      if (vi < nvec) {
#pragma unroll
        for (int i = 0; i < kVec; ++i) {
          A& a = v[k * kVec + i];
          a -= mx;  // the shifted value; NaN for an all -inf or +inf row
          const A e = Exp(a);
          if constexpr (!kLog) a = e;
          sum += e;
        }
      }
    }
    sum = GroupSum(sum, scratch, warp_rows);
    const A log_sum = kLog ? Log(sum) : A(0);
    const A inv = kLog ? A(0) : A(1) / sum;
    T* yr = y + r * cols;
#pragma unroll
    for (int k = 0; k < kVecs; ++k) {
      const int vi = grp.lane + k * grp.size;
      if (vi < nvec) {
        A o[kVec];
#pragma unroll
        for (int i = 0; i < kVec; ++i)
          o[i] = kLog ? v[k * kVec + i] - log_sum : v[k * kVec + i] * inv;
        StorePack<T, kVec>(yr + vi * kVec, o);
      }
    }
  }
}

// Rows too long for registers: one block per row, an online max/sum pass,
// then the output pass (x read twice).
template <class T, int kVec, bool kLog>
__global__ void __launch_bounds__(kRowMaxThreads, 1)
    softmax_rows_uncached_kernel(const T* __restrict__ x,  // (O, L)
                                 T* __restrict__ y,        // (O, L)
                                 int64_t rows, int64_t cols) {
  using A = Acc<T>;
  __shared__ A scratch[32];
  const int tid = static_cast<int>(threadIdx.x);
  const int nt = static_cast<int>(blockDim.x);
  const int64_t nvec = cols / kVec;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * cols;
    A mx;
    const A sum = BlockRowLse<T, kVec>(xr, nvec, scratch, &mx);
    const A log_sum = Log(sum);
    const A inv = A(1) / sum;
    T* yr = y + r * cols;
    for (int64_t vi = tid; vi < nvec; vi += nt) {
      A v[kVec];
      LoadPack<T, kVec>(xr + vi * kVec, v);
#pragma unroll
      for (int i = 0; i < kVec; ++i)
        v[i] = kLog ? (v[i] - mx) - log_sum : Exp(v[i] - mx) * inv;
      StorePack<T, kVec>(yr + vi * kVec, v);
    }
  }
}

// softmax:     dx = y * (g - sum(g * y))
// log_softmax: dx = g - exp(y) * sum(g)
template <class T, int kVec, int kVecs, bool kLog>
__global__ void __launch_bounds__(kRowMaxThreads, 1)
    softmax_backward_rows_kernel(const T* __restrict__ y,  // (O, L)
                                 const T* __restrict__ g,  // (O, L)
                                 T* __restrict__ dx,       // (O, L)
                                 int64_t rows, int64_t cols, bool warp_rows) {
  using A = Acc<T>;
  constexpr int kE = kVec * kVecs;
  __shared__ A scratch[32];
  const RowGroup grp = RowGroupOf(warp_rows);
  const int nvec = static_cast<int>(cols / kVec);  // L <= RowCacheLimit
  for (int64_t r = grp.first; r < rows; r += grp.stride) {
    const T* yr = y + r * cols;
    const T* gr = g + r * cols;
    A yv[kE] = {}, gv[kE] = {};
    A sum = A(0);
#pragma unroll
    for (int k = 0; k < kVecs; ++k) {
      const int vi = grp.lane + k * grp.size;
      if (vi < nvec) {
        LoadPack<T, kVec>(yr + vi * kVec, yv + k * kVec);
        LoadPack<T, kVec>(gr + vi * kVec, gv + k * kVec);
#pragma unroll
        for (int i = 0; i < kVec; ++i) {
          const int e = k * kVec + i;
          sum += kLog ? gv[e] : gv[e] * yv[e];
        }
      }
    }
    sum = GroupSum(sum, scratch, warp_rows);
    T* dxr = dx + r * cols;
#pragma unroll
    for (int k = 0; k < kVecs; ++k) {
      const int vi = grp.lane + k * grp.size;
      if (vi < nvec) {
        A o[kVec];
#pragma unroll
        for (int i = 0; i < kVec; ++i) {
          const int e = k * kVec + i;
          o[i] = kLog ? gv[e] - Exp(yv[e]) * sum : yv[e] * (gv[e] - sum);
        }
        StorePack<T, kVec>(dxr + vi * kVec, o);
      }
    }
  }
}

template <class T, int kVec, bool kLog>
__global__ void __launch_bounds__(kRowMaxThreads, 1)
    softmax_backward_rows_uncached_kernel(const T* __restrict__ y,  // (O, L)
                                          const T* __restrict__ g,  // (O, L)
                                          T* __restrict__ dx,       // (O, L)
                                          int64_t rows, int64_t cols) {
  using A = Acc<T>;
  __shared__ A scratch[32];
  const int tid = static_cast<int>(threadIdx.x);
  const int nt = static_cast<int>(blockDim.x);
  const int64_t nvec = cols / kVec;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* yr = y + r * cols;
    const T* gr = g + r * cols;
    A yv[kVec], gv[kVec];
    A sum = A(0);
    for (int64_t vi = tid; vi < nvec; vi += nt) {
      LoadPack<T, kVec>(gr + vi * kVec, gv);
      if constexpr (!kLog) LoadPack<T, kVec>(yr + vi * kVec, yv);
#pragma unroll
      for (int i = 0; i < kVec; ++i) sum += kLog ? gv[i] : gv[i] * yv[i];
    }
    sum = BlockSum(sum, scratch);
    T* dxr = dx + r * cols;
    for (int64_t vi = tid; vi < nvec; vi += nt) {
      LoadPack<T, kVec>(yr + vi * kVec, yv);
      LoadPack<T, kVec>(gr + vi * kVec, gv);
#pragma unroll
      for (int i = 0; i < kVec; ++i)
        gv[i] = kLog ? gv[i] - Exp(yv[i]) * sum : yv[i] * (gv[i] - sum);
      StorePack<T, kVec>(dxr + vi * kVec, gv);
    }
  }
}

// ---- softmax / log_softmax along a dim with I > 1 ----
//
// Block task (o, tile): thread (cx, cy) = (tid % tx, tid / tx) takes lane
// i = tile * tx + cx and L positions cy, cy + ty, ...; the ty partials of
// a lane are combined by its cy == 0 thread in cy order (shared memory).

template <class T, bool kLog>
__global__ void __launch_bounds__(kStridedThreads)
    softmax_strided_kernel(const T* __restrict__ x,  // (O, L, I)
                           T* __restrict__ y,        // (O, L, I)
                           int64_t outer, int64_t len, int64_t inner,
                           int64_t tiles, int tx) {
  using A = Acc<T>;
  constexpr int kU = 4;
  __shared__ A part_m[kStridedThreads];
  __shared__ A part_s[kStridedThreads];
  const int tid = static_cast<int>(threadIdx.x);
  const int ty = static_cast<int>(blockDim.x) / tx;
  const int cx = tid % tx, cy = tid / tx;
  for (int64_t task = blockIdx.x; task < outer * tiles; task += gridDim.x) {
    const int64_t o = task / tiles;
    const int64_t i = (task % tiles) * tx + cx;
    const bool lane_ok = i < inner;
    const T* xo = x + o * len * inner + i;  // lane i: element j at j * I
    OnlineLse<A> lse;
    lse.Init();
    if (lane_ok) {
      for (int64_t j0 = cy; j0 < len; j0 += int64_t{ty} * kU) {
        A v[kU];
#pragma unroll
        for (int u = 0; u < kU; ++u) {
          const int64_t j = j0 + int64_t{u} * ty;
          v[u] = j < len ? ToAcc(xo[j * inner]) : NegInf<A>();
        }
        lse.template Add<kU>(v);
      }
    }
    part_m[tid] = lse.m;
    part_s[tid] = lse.s;
    __syncthreads();
    if (cy == 0) {
      A mx = NegInf<A>();
      for (int q = 0; q < ty; ++q) mx = MaxNan(mx, part_m[q * tx + cx]);
      A sum = A(0);
      for (int q = 0; q < ty; ++q) {
        const A s = part_s[q * tx + cx];
        sum += s == A(0) ? A(0) : s * Exp(part_m[q * tx + cx] - mx);
      }
      part_m[cx] = mx;  // this thread's own entry (q == 0)
      part_s[cx] = IsFinite(mx) ? sum : QuietNan<A>();
    }
    __syncthreads();
    const A mx = part_m[cx], sum = part_s[cx];
    __syncthreads();  // the next task writes part_m and part_s again
    if (lane_ok) {
      const A log_sum = Log(sum), inv = A(1) / sum;
      T* yo = y + o * len * inner + i;
      for (int64_t j = cy; j < len; j += ty) {
        const A v = ToAcc(xo[j * inner]) - mx;
        yo[j * inner] = FromAcc<T>(kLog ? v - log_sum : Exp(v) * inv);
      }
    }
  }
}

template <class T, bool kLog>
__global__ void __launch_bounds__(kStridedThreads)
    softmax_backward_strided_kernel(const T* __restrict__ y,  // (O, L, I)
                                    const T* __restrict__ g,  // (O, L, I)
                                    T* __restrict__ dx,       // (O, L, I)
                                    int64_t outer, int64_t len, int64_t inner,
                                    int64_t tiles, int tx) {
  using A = Acc<T>;
  __shared__ A part_s[kStridedThreads];
  const int tid = static_cast<int>(threadIdx.x);
  const int ty = static_cast<int>(blockDim.x) / tx;
  const int cx = tid % tx, cy = tid / tx;
  for (int64_t task = blockIdx.x; task < outer * tiles; task += gridDim.x) {
    const int64_t o = task / tiles;
    const int64_t i = (task % tiles) * tx + cx;
    const bool lane_ok = i < inner;
    const int64_t base = o * len * inner + i;  // lane i: element j at j * I
    A s = A(0);
    if (lane_ok)
      for (int64_t j = cy; j < len; j += ty) {
        const A gj = ToAcc(g[base + j * inner]);
        s += kLog ? gj : gj * ToAcc(y[base + j * inner]);
      }
    part_s[tid] = s;
    __syncthreads();
    if (cy == 0) {
      A sum = A(0);
      for (int q = 0; q < ty; ++q) sum += part_s[q * tx + cx];
      part_s[cx] = sum;  // this thread's own entry (q == 0)
    }
    __syncthreads();
    const A sum = part_s[cx];
    __syncthreads();  // the next task writes part_s again
    if (lane_ok)
      for (int64_t j = cy; j < len; j += ty) {
        const A yj = ToAcc(y[base + j * inner]);
        const A gj = ToAcc(g[base + j * inner]);
        dx[base + j * inner] =
            FromAcc<T>(kLog ? gj - Exp(yj) * sum : yj * (gj - sum));
      }
  }
}

// ---- cross_entropy ----

__device__ __forceinline__ int64_t TargetAt(const void* targets, bool t64,
                                            int64_t r) {
  return t64 ? static_cast<const int64_t*>(targets)[r]
             : static_cast<const int32_t*>(targets)[r];
}

// The loss of each row (see LaunchCrossEntropyForward): one online pass
// (max, sum of exp, and the sum of x for the smoothing term). Writes
// loss_none[r] ('none') or row_loss[r] (the other reductions).
template <class T, int kVec>
__global__ void __launch_bounds__(kRowMaxThreads, 1)
    cross_entropy_forward_kernel(const T* __restrict__ logits,      // (R, V)
                                 const void* __restrict__ targets,  // (R)
                                 bool t64, int64_t rows, int64_t classes,
                                 int64_t ignore, Acc<T> eps,
                                 T* __restrict__ loss_none,      // (R) or null
                                 Acc<T>* __restrict__ row_loss,  // (R) or null
                                 bool warp_rows) {
  using A = Acc<T>;
  constexpr int kU = kBatchPacks<kVec>;
  __shared__ A scratch[32];
  const RowGroup grp = RowGroupOf(warp_rows);
  const int64_t nvec = classes / kVec;
  const bool smooth = eps != A(0);
  for (int64_t r = grp.first; r < rows; r += grp.stride) {
    const int64_t t = TargetAt(targets, t64, r);  // the same for the group
    A loss;
    if (t == ignore) {
      loss = A(0);
    } else if (t < 0 || t >= classes) {
      loss = QuietNan<A>();
    } else {
      const T* xr = logits + r * classes;
      OnlineLse<A> lse;
      lse.Init();
      A sx = A(0);
      for (int64_t base = grp.lane; base < nvec;
           base += int64_t{grp.size} * kU) {
        A v[kU * kVec];
#pragma unroll
        for (int u = 0; u < kU; ++u) {
          const int64_t vi = base + int64_t{u} * grp.size;
          if (vi < nvec) {
            LoadPack<T, kVec>(xr + vi * kVec, v + u * kVec);
#pragma unroll
            for (int i = 0; i < kVec; ++i) sx += v[u * kVec + i];
          } else {
#pragma unroll
            for (int i = 0; i < kVec; ++i) v[u * kVec + i] = NegInf<A>();
          }
        }
        lse.template Add<kU * kVec>(v);
      }
      A mx;
      const A sum = lse.Finish(scratch, warp_rows, &mx);
      const A l = mx + Log(sum);
      const A xt = ToAcc(xr[t]);
      if (smooth) {
        sx = GroupSum(sx, scratch, warp_rows);
        loss =
            (A(1) - eps) * (l - xt) + eps * (l - sx / static_cast<A>(classes));
      } else {
        loss = l - xt;
      }
    }
    if (grp.lane == 0) {
      if (loss_none != nullptr)
        loss_none[r] = FromAcc<T>(loss);
      else
        row_loss[r] = loss;
    }
  }
}

// Part p of P: the sum of row_loss (if not null) and the count of
// non-ignored targets over rows [p R / P, (p + 1) R / P), each thread
// taking every blockDim-th row in order, then a block sum.
template <class A>
__global__ void __launch_bounds__(kCeReduceThreads)
    cross_entropy_partials_kernel(const A* __restrict__ row_loss,    // (R)|null
                                  const void* __restrict__ targets,  // (R)
                                  bool t64, int64_t ignore, int64_t rows,
                                  int64_t parts,
                                  double* __restrict__ part_loss,     // (P)
                                  double* __restrict__ part_count) {  // (P)
  __shared__ double scratch[32];
  const int tid = static_cast<int>(threadIdx.x);
  for (int64_t p = blockIdx.x; p < parts; p += gridDim.x) {
    const int64_t r0 = p * rows / parts, r1 = (p + 1) * rows / parts;
    double sl = 0, sc = 0;
    for (int64_t r = r0 + tid; r < r1; r += blockDim.x) {
      if (TargetAt(targets, t64, r) != ignore) sc += 1;
      if (row_loss != nullptr) sl += static_cast<double>(row_loss[r]);
    }
    sl = BlockSum(sl, scratch);
    sc = BlockSum(sc, scratch);
    if (tid == 0) {
      part_loss[p] = sl;
      part_count[p] = sc;
    }
  }
}

// One block: adds the P partials in a fixed order; writes the loss ('sum':
// the total, 'mean': total / count) when `loss` is not null, and the count
// when `count` is not null.
template <class T>
__global__ void __launch_bounds__(kCeReduceThreads)
    cross_entropy_total_kernel(const double* __restrict__ part_loss,   // (P)
                               const double* __restrict__ part_count,  // (P)
                               int64_t parts, bool mean,
                               T* __restrict__ loss,          // () or null
                               double* __restrict__ count) {  // () or null
  __shared__ double scratch[32];
  const int tid = static_cast<int>(threadIdx.x);
  double sl = 0, sc = 0;
  for (int64_t p = tid; p < parts; p += blockDim.x) {
    sl += part_loss[p];
    sc += part_count[p];
  }
  sl = BlockSum(sl, scratch);
  sc = BlockSum(sc, scratch);
  if (tid == 0) {
    // 'mean' with every row ignored: 0 / 0, NaN (as the reference).
    if (loss != nullptr) loss[0] = rowops::FromDouble<T>(mean ? sl / sc : sl);
    if (count != nullptr) count[0] = sc;
  }
}

// The upstream gradient of row r: g[r] ('none') or g[0], divided by the
// count for 'mean' when it is positive.
template <class T>
__device__ __forceinline__ Acc<T> RowScale(const T* g, bool per_row,
                                           const double* count, int64_t r) {
  using A = Acc<T>;
  A s = ToAcc(g[per_row ? r : 0]);
  if (count != nullptr && count[0] > 0) s = s / static_cast<A>(count[0]);
  return s;
}

// dlogits of each row (see LaunchCrossEntropyBackward), the row held in
// registers (as softmax_rows_kernel).
template <class T, int kVec, int kVecs>
__global__ void __launch_bounds__(kRowMaxThreads, 1)
    cross_entropy_backward_kernel(const T* __restrict__ logits,      // (R, V)
                                  const void* __restrict__ targets,  // (R)
                                  bool t64,
                                  const T* __restrict__ g,  // (R) or ()
                                  bool per_row,
                                  const double* __restrict__ count,  // ()|null
                                  int64_t rows, int64_t classes, int64_t ignore,
                                  Acc<T> eps,
                                  T* __restrict__ dlogits,  // (R, V)
                                  bool warp_rows) {
  using A = Acc<T>;
  constexpr int kE = kVec * kVecs;
  __shared__ A scratch[32];
  const RowGroup grp = RowGroupOf(warp_rows);
  const int nvec = static_cast<int>(classes / kVec);  // V <= RowCacheLimit
  const A smooth = eps / static_cast<A>(classes);
  for (int64_t r = grp.first; r < rows; r += grp.stride) {
    const int64_t t = TargetAt(targets, t64, r);  // the same for the group
    T* dr = dlogits + r * classes;
    if (t == ignore || t < 0 || t >= classes) {
      // Ignored: 0; out of range: NaN (the reference rejects it).
      A o[kVec];
#pragma unroll
      for (int i = 0; i < kVec; ++i) o[i] = t == ignore ? A(0) : QuietNan<A>();
#pragma unroll
      for (int k = 0; k < kVecs; ++k) {
        const int vi = grp.lane + k * grp.size;
        if (vi < nvec) StorePack<T, kVec>(dr + vi * kVec, o);
      }
      continue;
    }
    const A s = RowScale(g, per_row, count, r);
    A v[kE] = {};
    const A mx = LoadRowMax<T, kVec, kVecs>(logits + r * classes, grp, nvec, v,
                                            scratch, warp_rows);
    A sum = A(0);
#pragma unroll
    for (int k = 0; k < kVecs; ++k) {
      const int vi = grp.lane + k * grp.size;
      if (vi < nvec) {
#pragma unroll
        for (int i = 0; i < kVec; ++i) {
          A& a = v[k * kVec + i];
          a = Exp(a - mx);
          sum += a;
        }
      }
    }
    sum = GroupSum(sum, scratch, warp_rows);
    const A inv = A(1) / sum;
#pragma unroll
    for (int k = 0; k < kVecs; ++k) {
      const int vi = grp.lane + k * grp.size;
      if (vi < nvec) {
        A o[kVec];
#pragma unroll
        for (int i = 0; i < kVec; ++i) {
          const int64_t j = int64_t{vi} * kVec + i;
          A d = v[k * kVec + i] * inv - smooth;
          if (j == t) d -= A(1) - eps;
          o[i] = s * d;
        }
        StorePack<T, kVec>(dr + vi * kVec, o);
      }
    }
  }
}

// Rows too long for registers: one block per row, an online pass for the
// log-sum-exp, then the gradient pass.
template <class T, int kVec>
__global__ void __launch_bounds__(kRowMaxThreads, 1)
    cross_entropy_backward_uncached_kernel(
        const T* __restrict__ logits,      // (R, V)
        const void* __restrict__ targets,  // (R)
        bool t64,
        const T* __restrict__ g,  // (R) or ()
        bool per_row,
        const double* __restrict__ count,  // () or null
        int64_t rows, int64_t classes, int64_t ignore, Acc<T> eps,
        T* __restrict__ dlogits) {  // (R, V)
  using A = Acc<T>;
  __shared__ A scratch[32];
  const int tid = static_cast<int>(threadIdx.x);
  const int nt = static_cast<int>(blockDim.x);
  const int64_t nvec = classes / kVec;
  const A smooth = eps / static_cast<A>(classes);
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t t = TargetAt(targets, t64, r);  // the same for the block
    T* dr = dlogits + r * classes;
    if (t == ignore || t < 0 || t >= classes) {
      A o[kVec];
#pragma unroll
      for (int i = 0; i < kVec; ++i) o[i] = t == ignore ? A(0) : QuietNan<A>();
      for (int64_t vi = tid; vi < nvec; vi += nt)
        StorePack<T, kVec>(dr + vi * kVec, o);
      continue;
    }
    const A s = RowScale(g, per_row, count, r);
    const T* xr = logits + r * classes;
    A mx;
    const A sum = BlockRowLse<T, kVec>(xr, nvec, scratch, &mx);
    const A l = mx + Log(sum);
    for (int64_t vi = tid; vi < nvec; vi += nt) {
      A v[kVec];
      LoadPack<T, kVec>(xr + vi * kVec, v);
#pragma unroll
      for (int i = 0; i < kVec; ++i) {
        A d = Exp(v[i] - l) - smooth;
        if (vi * kVec + i == t) d -= A(1) - eps;
        v[i] = s * d;
      }
      StorePack<T, kVec>(dr + vi * kVec, v);
    }
  }
}

template <class T>
__global__ void softmax_zero_kernel(T* __restrict__ p, int64_t n) {  // (n)
  LLMSYS_GRID_STRIDE_LOOP(i, n) p[i] = FromAcc<T>(Acc<T>(0));
}

// ---- launchers ----

bool Aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;  // null is aligned
}

// Rows of `cols` elements of `t` starting 16-byte aligned in every operand
// (null ones count as aligned): vector loads are allowed.
bool RowsAligned(int64_t cols, DType t, const void* a, const void* b,
                 const void* c) {
  return (cols * DTypeBytes(t)) % 16 == 0 && Aligned16(a) && Aligned16(b) &&
         Aligned16(c);
}

template <class T>
cudaError_t Zero(void* p, int64_t n, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  const GridPlan plan = ElementwisePlan(n);
  LLMSYS_LAUNCH(softmax_zero_kernel<T>, plan.blocks, plan.threads, 0, stream)
  (static_cast<T*>(p), n);
  return cudaGetLastError();
}

// softmax or log_softmax forward of (O, L, I) with the row plan `p` (used
// when I == 1).
template <class T, bool kLog>
cudaError_t SoftmaxForwardT(const RowPlan& p, const void* x, void* y,
                            int64_t outer, int64_t len, int64_t inner,
                            cudaStream_t stream) {
  const auto* px = static_cast<const T*>(x);
  auto* py = static_cast<T*>(y);
  if (inner != 1) {
    const StridedPlan sp = PlanStrided(outer, inner);
    const auto kernel = &softmax_strided_kernel<T, kLog>;
    LLMSYS_LAUNCH(kernel, sp.blocks, kStridedThreads, 0, stream)
    (px, py, outer, len, inner, sp.tiles, sp.tx);
    return cudaGetLastError();
  }
  constexpr int kV = RowVecElems(sizeof(T));
  constexpr int kEv = RowCacheElems(sizeof(T), kSoftmaxForwardArrays, true);
  constexpr int kEs = RowCacheElems(sizeof(T), kSoftmaxForwardArrays, false);
  if (!p.cached) {
    const auto kernel = p.vec > 1 ? &softmax_rows_uncached_kernel<T, kV, kLog>
                                  : &softmax_rows_uncached_kernel<T, 1, kLog>;
    LLMSYS_LAUNCH(kernel, p.blocks, p.threads, 0, stream)(px, py, outer, len);
  } else {
    const auto kernel = p.vec > 1 ? &softmax_rows_kernel<T, kV, kEv / kV, kLog>
                                  : &softmax_rows_kernel<T, 1, kEs, kLog>;
    LLMSYS_LAUNCH(kernel, p.blocks, p.threads, 0, stream)
    (px, py, outer, len, p.warp_rows);
  }
  return cudaGetLastError();
}

template <class T, bool kLog>
cudaError_t SoftmaxBackwardT(const RowPlan& p, const void* y, const void* g,
                             void* dx, int64_t outer, int64_t len,
                             int64_t inner, cudaStream_t stream) {
  const auto* py = static_cast<const T*>(y);
  const auto* pg = static_cast<const T*>(g);
  auto* pdx = static_cast<T*>(dx);
  if (inner != 1) {
    const StridedPlan sp = PlanStrided(outer, inner);
    const auto kernel = &softmax_backward_strided_kernel<T, kLog>;
    LLMSYS_LAUNCH(kernel, sp.blocks, kStridedThreads, 0, stream)
    (py, pg, pdx, outer, len, inner, sp.tiles, sp.tx);
    return cudaGetLastError();
  }
  constexpr int kV = RowVecElems(sizeof(T));
  constexpr int kEv = RowCacheElems(sizeof(T), kSoftmaxBackwardArrays, true);
  constexpr int kEs = RowCacheElems(sizeof(T), kSoftmaxBackwardArrays, false);
  if (!p.cached) {
    const auto kernel =
        p.vec > 1 ? &softmax_backward_rows_uncached_kernel<T, kV, kLog>
                  : &softmax_backward_rows_uncached_kernel<T, 1, kLog>;
    LLMSYS_LAUNCH(kernel, p.blocks, p.threads, 0, stream)
    (py, pg, pdx, outer, len);
  } else {
    const auto kernel =
        p.vec > 1 ? &softmax_backward_rows_kernel<T, kV, kEv / kV, kLog>
                  : &softmax_backward_rows_kernel<T, 1, kEs, kLog>;
    LLMSYS_LAUNCH(kernel, p.blocks, p.threads, 0, stream)
    (py, pg, pdx, outer, len, p.warp_rows);
  }
  return cudaGetLastError();
}

// The workspace of cross_entropy (CrossEntropyWorkspaceBytes).
template <class A>
struct CeWorkspace {
  double* part_loss;   // (P)
  double* part_count;  // (P)
  double* count;       // ()
  A* row_loss;         // (R)
};
template <class A>
CeWorkspace<A> CeWorkspaceOf(void* workspace, int64_t parts) {
  double* w = static_cast<double*>(workspace);
  return {w, w + parts, w + 2 * parts, reinterpret_cast<A*>(w + 2 * parts + 1)};
}

template <class T>
cudaError_t CrossEntropyForwardT(const RowPlan& p, const void* logits,
                                 const void* targets, bool t64, void* loss,
                                 int64_t rows, int64_t classes, int64_t ignore,
                                 double eps, CeReduction r, void* workspace,
                                 cudaStream_t stream) {
  using A = Acc<T>;
  const int64_t parts = CrossEntropyParts(rows);
  const CeWorkspace<A> ws = CeWorkspaceOf<A>(workspace, parts);
  const bool none = r == CeReduction::kNone;
  if (rows > 0) {
    constexpr int kV = RowVecElems(sizeof(T));
    const auto kernel = p.vec > 1 ? &cross_entropy_forward_kernel<T, kV>
                                  : &cross_entropy_forward_kernel<T, 1>;
    LLMSYS_LAUNCH(kernel, p.blocks, p.threads, 0, stream)
    (static_cast<const T*>(logits), targets, t64, rows, classes, ignore,
     static_cast<A>(eps), none ? static_cast<T*>(loss) : nullptr,
     none ? nullptr : ws.row_loss, p.warp_rows);
  }
  if (!none) {
    // Runs for R == 0 too: 'sum' is 0, 'mean' NaN.
    const auto partials = &cross_entropy_partials_kernel<A>;
    LLMSYS_LAUNCH(partials, parts, kCeReduceThreads, 0, stream)
    (ws.row_loss, targets, t64, ignore, rows, parts, ws.part_loss,
     ws.part_count);
    const auto total = &cross_entropy_total_kernel<T>;
    LLMSYS_LAUNCH(total, 1, kCeReduceThreads, 0, stream)
    (ws.part_loss, ws.part_count, parts, r == CeReduction::kMean,
     static_cast<T*>(loss), static_cast<double*>(nullptr));
  }
  return cudaGetLastError();
}

template <class T>
cudaError_t CrossEntropyBackwardT(const RowPlan& p, const void* logits,
                                  const void* targets, bool t64, const void* g,
                                  void* dlogits, int64_t rows, int64_t classes,
                                  int64_t ignore, double eps, CeReduction r,
                                  void* workspace, cudaStream_t stream) {
  using A = Acc<T>;
  if (g == nullptr) return Zero<T>(dlogits, rows * classes, stream);
  const double* count = nullptr;
  if (r == CeReduction::kMean) {
    const int64_t parts = CrossEntropyParts(rows);
    const CeWorkspace<A> ws = CeWorkspaceOf<A>(workspace, parts);
    const auto partials = &cross_entropy_partials_kernel<A>;
    LLMSYS_LAUNCH(partials, parts, kCeReduceThreads, 0, stream)
    (static_cast<const A*>(nullptr), targets, t64, ignore, rows, parts,
     ws.part_loss, ws.part_count);
    const auto total = &cross_entropy_total_kernel<T>;
    LLMSYS_LAUNCH(total, 1, kCeReduceThreads, 0, stream)
    (ws.part_loss, ws.part_count, parts, true, static_cast<T*>(nullptr),
     ws.count);
    count = ws.count;
  }
  const auto* px = static_cast<const T*>(logits);
  const auto* pg = static_cast<const T*>(g);
  auto* pdx = static_cast<T*>(dlogits);
  const bool per_row = r == CeReduction::kNone;
  const A e = static_cast<A>(eps);
  constexpr int kV = RowVecElems(sizeof(T));
  constexpr int kEv = RowCacheElems(sizeof(T), 1, true);
  constexpr int kEs = RowCacheElems(sizeof(T), 1, false);
  if (!p.cached) {
    const auto kernel = p.vec > 1
                            ? &cross_entropy_backward_uncached_kernel<T, kV>
                            : &cross_entropy_backward_uncached_kernel<T, 1>;
    LLMSYS_LAUNCH(kernel, p.blocks, p.threads, 0, stream)
    (px, targets, t64, pg, per_row, count, rows, classes, ignore, e, pdx);
  } else {
    const auto kernel = p.vec > 1
                            ? &cross_entropy_backward_kernel<T, kV, kEv / kV>
                            : &cross_entropy_backward_kernel<T, 1, kEs>;
    LLMSYS_LAUNCH(kernel, p.blocks, p.threads, 0, stream)
    (px, targets, t64, pg, per_row, count, rows, classes, ignore, e, pdx,
     p.warp_rows);
  }
  return cudaGetLastError();
}

}  // namespace

cudaError_t LaunchSoftmaxForward(DType t, bool log, const void* x, void* y,
                                 int64_t outer, int64_t len, int64_t inner,
                                 cudaStream_t stream) {
  if (outer <= 0 || len <= 0 || inner <= 0) return cudaSuccess;
  const RowPlan p =
      SoftmaxRowsPlan(outer, len, t, RowsAligned(len, t, x, y, nullptr), false);
  cudaError_t e = cudaSuccess;
  LLMSYS_DISPATCH_FLOAT(t, {
    e = log ? SoftmaxForwardT<T, true>(p, x, y, outer, len, inner, stream)
            : SoftmaxForwardT<T, false>(p, x, y, outer, len, inner, stream);
  });
  return e;
}

cudaError_t LaunchSoftmaxBackward(DType t, bool log, const void* y,
                                  const void* g, void* dx, int64_t outer,
                                  int64_t len, int64_t inner,
                                  cudaStream_t stream) {
  if (outer <= 0 || len <= 0 || inner <= 0) return cudaSuccess;
  const RowPlan p =
      SoftmaxRowsPlan(outer, len, t, RowsAligned(len, t, y, g, dx), true);
  cudaError_t e = cudaSuccess;
  LLMSYS_DISPATCH_FLOAT(t, {
    if (g == nullptr)
      e = Zero<T>(dx, outer * len * inner, stream);
    else if (log)
      e = SoftmaxBackwardT<T, true>(p, y, g, dx, outer, len, inner, stream);
    else
      e = SoftmaxBackwardT<T, false>(p, y, g, dx, outer, len, inner, stream);
  });
  return e;
}

cudaError_t LaunchCrossEntropyForward(DType t, const void* logits,
                                      const void* targets, bool targets64,
                                      void* loss, int64_t rows, int64_t classes,
                                      int64_t ignore_index,
                                      double label_smoothing, CeReduction r,
                                      void* workspace, cudaStream_t stream) {
  if (r == CeReduction::kNone && rows <= 0) return cudaSuccess;
  const RowPlan p = CrossEntropyForwardPlan(
      rows, classes, t, RowsAligned(classes, t, logits, nullptr, nullptr));
  cudaError_t e = cudaSuccess;
  LLMSYS_DISPATCH_FLOAT(t, {
    e = CrossEntropyForwardT<T>(p, logits, targets, targets64, loss, rows,
                                classes, ignore_index, label_smoothing, r,
                                workspace, stream);
  });
  return e;
}

cudaError_t LaunchCrossEntropyBackward(DType t, const void* logits,
                                       const void* targets, bool targets64,
                                       const void* g, void* dlogits,
                                       int64_t rows, int64_t classes,
                                       int64_t ignore_index,
                                       double label_smoothing, CeReduction r,
                                       void* workspace, cudaStream_t stream) {
  if (rows <= 0 || classes <= 0) return cudaSuccess;
  const RowPlan p = CrossEntropyBackwardPlan(
      rows, classes, t, RowsAligned(classes, t, logits, dlogits, nullptr));
  cudaError_t e = cudaSuccess;
  LLMSYS_DISPATCH_FLOAT(t, {
    e = CrossEntropyBackwardT<T>(p, logits, targets, targets64, g, dlogits,
                                 rows, classes, ignore_index, label_smoothing,
                                 r, workspace, stream);
  });
  return e;
}

}  // namespace llmsys::cuda
