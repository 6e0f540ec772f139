// attention.naive's kernels (see cuda/attention_naive.h): one plain kernel
// per step over a materialized (B, H, N, M) score buffer, one thread per
// output element (dot products, weighted sums) or one block per row
// (softmax, the dS row sums). Nothing is tiled and nothing uses atomics:
// every sum runs in a fixed order, so results repeat bit for bit.
//
// Letters: B batch, H heads, N queries, M keys, D the head size of q and k,
// Dv that of v; a "row" is one (b, h, n).
#include "cuda/attention_naive.h"
#include "cuda/common.cuh"
#include "llmsys/random.h"

namespace llmsys::cuda {
namespace {

// The problem as every kernel sees it (passed by value).
struct Problem {
  int64_t b, h, n, m, d, dv;
  const void* mask;  // (B, M), non-zero = masked, or nullptr
  NaiveMask mask_type;
  bool causal;
  double scale, p;
  uint64_t seed, offset;
};

__device__ __forceinline__ float Exp(float x) { return expf(x); }
__device__ __forceinline__ double Exp(double x) { return exp(x); }
__device__ __forceinline__ float Log(float x) { return logf(x); }
__device__ __forceinline__ double Log(double x) { return log(x); }

// Whether key m of batch b is padding.
__device__ __forceinline__ bool Masked(const Problem& P, int64_t b, int64_t m) {
  const int64_t i = b * P.m + m;
  switch (P.mask_type) {
    case NaiveMask::kU8:
      return static_cast<const uint8_t*>(P.mask)[i] != 0;
    case NaiveMask::kI32:
      return static_cast<const int32_t*>(P.mask)[i] != 0;
    case NaiveMask::kI64:
      return static_cast<const int64_t*>(P.mask)[i] != 0;
    case NaiveMask::kF32:
      return static_cast<const float*>(P.mask)[i] != 0.0f;
    case NaiveMask::kF64:
      return static_cast<const double*>(P.mask)[i] != 0.0;
    default:
      return false;
  }
}

// Whether query n of batch b may attend key m: not padding, and m <= n
// when causal (top-left aligned, as the reference).
__device__ __forceinline__ bool Allowed(const Problem& P, int64_t b, int64_t n,
                                        int64_t m) {
  if (P.causal && m > n) return false;
  return !Masked(P, b, m);
}

// keep / (1 - p) for probability i (row-major in (B, H, N, M)): the
// contract's rule, compared in double as the reference does.
template <class A>
__device__ __forceinline__ A KeepScale(const Problem& P, int64_t i) {
  if (P.p == 0.0) return A(1);
  const float u =
      llmsys_random_uniform(P.seed, P.offset, static_cast<uint64_t>(i));
  return static_cast<double>(u) >= P.p ? static_cast<A>(1.0 / (1.0 - P.p))
                                       : A(0);
}

// s[bh, n, m] = scale * q[bh, n] . k[bh, m] where allowed, 0 elsewhere
// (masked entries are never read as scores).
template <class T>
__global__ void attention_scores_kernel(Acc<T>* s,   // (B, H, N, M)
                                        const T* q,  // (B, H, N, D)
                                        const T* k,  // (B, H, M, D)
                                        Problem P) {
  using A = Acc<T>;
  LLMSYS_GRID_STRIDE_LOOP(i, P.b * P.h * P.n * P.m) {
    const int64_t m = i % P.m, row = i / P.m;
    const int64_t n = row % P.n, bh = row / P.n, b = bh / P.h;
    A dot = A(0);
    if (Allowed(P, b, n, m)) {
      const T* qn = q + row * P.d;             // (D)
      const T* km = k + (bh * P.m + m) * P.d;  // (D)
      for (int64_t j = 0; j < P.d; ++j) dot += ToAcc(qn[j]) * ToAcc(km[j]);
      dot *= static_cast<A>(P.scale);
    }
    s[i] = dot;
  }
}

// One block per row: lse = log sum exp over the allowed scores, and the row
// becomes P = exp(S - lse) (times keep / (1 - p) when `dropout`), 0 where
// masked. A row with every key masked becomes 0 with lse -inf. lse may be
// nullptr (backward).
template <class T>
__global__ void attention_softmax_kernel(Acc<T>* s,    // (B, H, N, M)
                                         Acc<T>* lse,  // (B, H, N) or nullptr
                                         Problem P, bool dropout) {
  using A = Acc<T>;
  __shared__ A scratch[32];
  const A neg_inf = -static_cast<A>(INFINITY);
  const int64_t rows = P.b * P.h * P.n;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int64_t n = row % P.n, b = row / P.n / P.h;
    A* sr = s + row * P.m;  // (M)
    A mx = neg_inf, count = A(0);
    for (int64_t m = threadIdx.x; m < P.m; m += blockDim.x)
      if (Allowed(P, b, n, m)) {
        mx = MaxNan(mx, sr[m]);
        count += A(1);
      }
    mx = BlockMax(mx, scratch, neg_inf);
    count = BlockSum(count, scratch);
    if (count == A(0)) {  // every key masked (block-uniform branch)
      for (int64_t m = threadIdx.x; m < P.m; m += blockDim.x) sr[m] = A(0);
      if (lse != nullptr && threadIdx.x == 0) lse[row] = neg_inf;
      continue;
    }
    A sum = A(0);
    for (int64_t m = threadIdx.x; m < P.m; m += blockDim.x)
      if (Allowed(P, b, n, m)) sum += Exp(sr[m] - mx);
    sum = BlockSum(sum, scratch);
    const A row_lse = mx + Log(sum);
    for (int64_t m = threadIdx.x; m < P.m; m += blockDim.x) {
      A pm = A(0);
      if (Allowed(P, b, n, m)) {
        pm = Exp(sr[m] - row_lse);
        if (dropout) pm *= KeepScale<A>(P, row * P.m + m);
      }
      sr[m] = pm;
    }
    if (lse != nullptr && threadIdx.x == 0) lse[row] = row_lse;
  }
}

// out[bh, n, j] = sum over allowed m of P'[bh, n, m] v[bh, m, j].
template <class T>
__global__ void attention_out_kernel(T* out,            // (B, H, N, Dv)
                                     const Acc<T>* pp,  // (B, H, N, M)
                                     const T* v,        // (B, H, M, Dv)
                                     Problem P) {
  using A = Acc<T>;
  LLMSYS_GRID_STRIDE_LOOP(i, P.b * P.h * P.n * P.dv) {
    const int64_t j = i % P.dv, row = i / P.dv;
    const int64_t n = row % P.n, bh = row / P.n, b = bh / P.h;
    const A* pr = pp + row * P.m;       // (M)
    const T* vb = v + bh * P.m * P.dv;  // (M, Dv)
    const int64_t lim = P.causal && n + 1 < P.m ? n + 1 : P.m;
    A acc = A(0);
    for (int64_t m = 0; m < lim; ++m)
      if (!Masked(P, b, m)) acc += pr[m] * ToAcc(vb[m * P.dv + j]);
    out[i] = FromAcc<T>(acc);
  }
}

// dv[bh, m, j] = sum over the rows n allowed to see m of
// P[bh, n, m] keep / (1 - p) dO[bh, n, j].
template <class T>
__global__ void attention_dv_kernel(T* dv,             // (B, H, M, Dv)
                                    const Acc<T>* pp,  // (B, H, N, M): P
                                    const T* dout,     // (B, H, N, Dv)
                                    Problem P) {
  using A = Acc<T>;
  LLMSYS_GRID_STRIDE_LOOP(i, P.b * P.h * P.m * P.dv) {
    const int64_t j = i % P.dv, r = i / P.dv;
    const int64_t m = r % P.m, bh = r / P.m, b = bh / P.h;
    A acc = A(0);
    if (!Masked(P, b, m))
      for (int64_t n = P.causal ? m : 0; n < P.n; ++n) {
        const int64_t e = (bh * P.n + n) * P.m + m;  // index in (B, H, N, M)
        acc +=
            pp[e] * KeepScale<A>(P, e) * ToAcc(dout[(bh * P.n + n) * P.dv + j]);
      }
    dv[i] = FromAcc<T>(acc);
  }
}

// A row's dO . v[m] times keep / (1 - p): dP[m].
template <class T>
__device__ __forceinline__ Acc<T> RowDp(const Problem& P, const T* go,
                                        const T* vm, int64_t e) {
  using A = Acc<T>;
  A dot = A(0);
  for (int64_t j = 0; j < P.dv; ++j) dot += ToAcc(go[j]) * ToAcc(vm[j]);
  return dot * KeepScale<A>(P, e);
}

// One block per row: P becomes dS = P * (dP - sum_m P * dP) in place, 0
// where masked; dP is computed twice (once per pass) instead of stored.
template <class T>
__global__ void attention_ds_kernel(Acc<T>* ps,     // (B, H, N, M)
                                    const T* dout,  // (B, H, N, Dv)
                                    const T* v,     // (B, H, M, Dv)
                                    Problem P) {
  using A = Acc<T>;
  __shared__ A scratch[32];
  const int64_t rows = P.b * P.h * P.n;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int64_t n = row % P.n, bh = row / P.n, b = bh / P.h;
    A* pr = ps + row * P.m;             // (M)
    const T* go = dout + row * P.dv;    // (Dv)
    const T* vb = v + bh * P.m * P.dv;  // (M, Dv)
    A rowsum = A(0);
    for (int64_t m = threadIdx.x; m < P.m; m += blockDim.x)
      if (Allowed(P, b, n, m))
        rowsum += pr[m] * RowDp(P, go, vb + m * P.dv, row * P.m + m);
    rowsum = BlockSum(rowsum, scratch);
    for (int64_t m = threadIdx.x; m < P.m; m += blockDim.x) {
      A ds = A(0);
      if (Allowed(P, b, n, m))
        ds = pr[m] * (RowDp(P, go, vb + m * P.dv, row * P.m + m) - rowsum);
      pr[m] = ds;
    }
  }
}

// dq[bh, n, j] = scale * sum over allowed m of dS[bh, n, m] k[bh, m, j].
template <class T>
__global__ void attention_dq_kernel(T* dq,             // (B, H, N, D)
                                    const Acc<T>* ds,  // (B, H, N, M)
                                    const T* k,        // (B, H, M, D)
                                    Problem P) {
  using A = Acc<T>;
  LLMSYS_GRID_STRIDE_LOOP(i, P.b * P.h * P.n * P.d) {
    const int64_t j = i % P.d, row = i / P.d;
    const int64_t n = row % P.n, bh = row / P.n, b = bh / P.h;
    const A* dr = ds + row * P.m;      // (M)
    const T* kb = k + bh * P.m * P.d;  // (M, D)
    const int64_t lim = P.causal && n + 1 < P.m ? n + 1 : P.m;
    A acc = A(0);
    for (int64_t m = 0; m < lim; ++m)
      if (!Masked(P, b, m)) acc += dr[m] * ToAcc(kb[m * P.d + j]);
    dq[i] = FromAcc<T>(acc * static_cast<A>(P.scale));
  }
}

// dk[bh, m, j] = scale * sum over the rows n allowed to see m of
// dS[bh, n, m] q[bh, n, j].
template <class T>
__global__ void attention_dk_kernel(T* dk,             // (B, H, M, D)
                                    const Acc<T>* ds,  // (B, H, N, M)
                                    const T* q,        // (B, H, N, D)
                                    Problem P) {
  using A = Acc<T>;
  LLMSYS_GRID_STRIDE_LOOP(i, P.b * P.h * P.m * P.d) {
    const int64_t j = i % P.d, r = i / P.d;
    const int64_t m = r % P.m, bh = r / P.m, b = bh / P.h;
    A acc = A(0);
    if (!Masked(P, b, m))
      for (int64_t n = P.causal ? m : 0; n < P.n; ++n)
        acc +=
            ds[(bh * P.n + n) * P.m + m] * ToAcc(q[(bh * P.n + n) * P.d + j]);
    dk[i] = FromAcc<T>(acc * static_cast<A>(P.scale));
  }
}

__global__ void attention_zero_kernel(unsigned char* p,  // (bytes)
                                      int64_t bytes) {
  LLMSYS_GRID_STRIDE_LOOP(i, bytes) { p[i] = 0; }
}

Problem ProblemOf(const NaiveAttentionShape& s, const void* mask,
                  NaiveMask mask_type, const NaiveAttentionOptions& o) {
  Problem P;
  P.b = s.b;
  P.h = s.h;
  P.n = s.n;
  P.m = s.m;
  P.d = s.d;
  P.dv = s.dv;
  P.mask = mask;
  P.mask_type = mask != nullptr ? mask_type : NaiveMask::kNone;
  P.causal = o.causal;
  P.scale = o.scale;
  P.p = o.dropout_p;
  P.seed = o.seed;
  P.offset = o.offset;
  return P;
}

// Blocks for one-block-per-row kernels (they loop over the rest).
int64_t RowBlocks(int64_t rows) {
  constexpr int64_t kMaxRowBlocks = int64_t{1} << 20;
  return rows < kMaxRowBlocks ? rows : kMaxRowBlocks;
}

#define LLMSYS_RETURN_IF_LAUNCH_FAILED()                              \
  do {                                                                \
    if (const cudaError_t e_ = cudaGetLastError(); e_ != cudaSuccess) \
      return e_;                                                      \
  } while (0)

}  // namespace

cudaError_t LaunchAttentionZero(void* p, int64_t bytes, cudaStream_t stream) {
  if (bytes <= 0) return cudaSuccess;
  const GridPlan plan = ElementwisePlan(bytes);
  LLMSYS_LAUNCH(attention_zero_kernel, plan.blocks, plan.threads, 0, stream)
  (static_cast<unsigned char*>(p), bytes);
  return cudaGetLastError();
}

cudaError_t LaunchNaiveAttentionForward(
    DType t, void* out, void* lse, const void* q, const void* k, const void* v,
    const void* mask, NaiveMask mask_type, const NaiveAttentionShape& s,
    const NaiveAttentionOptions& o, void* workspace, cudaStream_t stream) {
  const Problem P = ProblemOf(s, mask, mask_type, o);
  const int64_t rows = s.b * s.h * s.n;
  if (rows == 0) return cudaSuccess;  // out and lse are empty
  LLMSYS_DISPATCH_FLOAT(t, {
    using A = Acc<T>;
    A* sp = static_cast<A*>(workspace);  // (B, H, N, M)
    if (rows * s.m > 0) {
      const GridPlan plan = ElementwisePlan(rows * s.m);
      LLMSYS_LAUNCH(attention_scores_kernel<T>, plan.blocks, plan.threads, 0,
                    stream)
      (sp, static_cast<const T*>(q), static_cast<const T*>(k), P);
      LLMSYS_RETURN_IF_LAUNCH_FAILED();
    }
    LLMSYS_LAUNCH(attention_softmax_kernel<T>, RowBlocks(rows), RowThreads(s.m),
                  0, stream)
    (sp, static_cast<A*>(lse), P, o.dropout_p > 0.0);
    LLMSYS_RETURN_IF_LAUNCH_FAILED();
    if (rows * s.dv > 0) {
      const GridPlan plan = ElementwisePlan(rows * s.dv);
      LLMSYS_LAUNCH(attention_out_kernel<T>, plan.blocks, plan.threads, 0,
                    stream)
      (static_cast<T*>(out), sp, static_cast<const T*>(v), P);
      LLMSYS_RETURN_IF_LAUNCH_FAILED();
    }
  });
  return cudaSuccess;
}

cudaError_t LaunchNaiveAttentionBackward(
    DType t, void* grad_q, void* grad_k, void* grad_v, const void* grad_out,
    const void* q, const void* k, const void* v, const void* mask,
    NaiveMask mask_type, const NaiveAttentionShape& s,
    const NaiveAttentionOptions& o, void* workspace, cudaStream_t stream) {
  const int64_t bytes = DTypeBytes(t);
  const int64_t rows = s.b * s.h * s.n, keys = s.b * s.h * s.m;
  if (grad_out == nullptr) {  // a zero incoming gradient
    cudaError_t e = cudaSuccess;
    if (grad_q != nullptr)
      e = LaunchAttentionZero(grad_q, rows * s.d * bytes, stream);
    if (e == cudaSuccess && grad_k != nullptr)
      e = LaunchAttentionZero(grad_k, keys * s.d * bytes, stream);
    if (e == cudaSuccess && grad_v != nullptr)
      e = LaunchAttentionZero(grad_v, keys * s.dv * bytes, stream);
    return e;
  }
  const Problem P = ProblemOf(s, mask, mask_type, o);
  LLMSYS_DISPATCH_FLOAT(t, {
    using A = Acc<T>;
    A* sp = static_cast<A*>(workspace);  // (B, H, N, M): S, P, then dS
    const T* go = static_cast<const T*>(grad_out);
    const bool scores = rows * s.m > 0;
    if (scores) {  // P again, without dropout (dV and dS apply keep)
      const GridPlan plan = ElementwisePlan(rows * s.m);
      LLMSYS_LAUNCH(attention_scores_kernel<T>, plan.blocks, plan.threads, 0,
                    stream)
      (sp, static_cast<const T*>(q), static_cast<const T*>(k), P);
      LLMSYS_RETURN_IF_LAUNCH_FAILED();
      LLMSYS_LAUNCH(attention_softmax_kernel<T>, RowBlocks(rows),
                    RowThreads(s.m), 0, stream)
      (sp, static_cast<A*>(nullptr), P, false);
      LLMSYS_RETURN_IF_LAUNCH_FAILED();
    }
    if (grad_v != nullptr && keys * s.dv > 0) {  // before P becomes dS
      const GridPlan plan = ElementwisePlan(keys * s.dv);
      LLMSYS_LAUNCH(attention_dv_kernel<T>, plan.blocks, plan.threads, 0,
                    stream)
      (static_cast<T*>(grad_v), sp, go, P);
      LLMSYS_RETURN_IF_LAUNCH_FAILED();
    }
    if ((grad_q != nullptr || grad_k != nullptr) && scores) {
      LLMSYS_LAUNCH(attention_ds_kernel<T>, RowBlocks(rows), RowThreads(s.m), 0,
                    stream)
      (sp, go, static_cast<const T*>(v), P);
      LLMSYS_RETURN_IF_LAUNCH_FAILED();
    }
    if (grad_q != nullptr && rows * s.d > 0) {
      const GridPlan plan = ElementwisePlan(rows * s.d);
      LLMSYS_LAUNCH(attention_dq_kernel<T>, plan.blocks, plan.threads, 0,
                    stream)
      (static_cast<T*>(grad_q), sp, static_cast<const T*>(k), P);
      LLMSYS_RETURN_IF_LAUNCH_FAILED();
    }
    if (grad_k != nullptr && keys * s.d > 0) {
      const GridPlan plan = ElementwisePlan(keys * s.d);
      LLMSYS_LAUNCH(attention_dk_kernel<T>, plan.blocks, plan.threads, 0,
                    stream)
      (static_cast<T*>(grad_k), sp, static_cast<const T*>(q), P);
      LLMSYS_RETURN_IF_LAUNCH_FAILED();
    }
  });
  return cudaSuccess;
}

}  // namespace llmsys::cuda
