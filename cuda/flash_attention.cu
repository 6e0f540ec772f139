// cuda/flash_attention.cu — attention.flash: FlashAttention-2 forward and
// backward (Dao, "FlashAttention-2", 2023) on CUDA. Kernels first (SIMT, then
// tensor cores), then the launchers; plans and layouts in
// cuda/flash_attention.h, the tensor-core primitives in cuda/mma.cuh.
//
// Letters: B batch, H heads, N queries, M keys, D head size of q and k, Dv
// head size of v; BH = B H. Inside a kernel, `rows` are the query rows of a
// tile (kRows, from n0), `keys` the keys of a tile (kKeys, from m0), and hd
// the compiled head-size bound (kD, 64 or 128; D and Dv at most kD).
//
// Semantics (those of attention.reference, the oracle): S = scale q k^T over
// the allowed keys (not padded, and m <= n when causal), lse = log sum exp S,
// P = exp(S - lse); dropout keeps P[b, h, n, m] iff
// llmsys_random_uniform(seed, offset, ((b H + h) N + n) M + m) >= p and
// scales kept ones by 1/(1-p); the softmax sum is taken before dropout. A
// row with no allowed key gives out 0 and lse -inf and no gradient. A NaN
// score makes its row's max, lse and outputs NaN (MaxNan); what sits at a
// masked position (a NaN key or value of a padded or future key, a NaN
// query of a fully masked row) never reaches anything, as in the reference,
// which skips those terms: padded keys' K and V rows are loaded as zeros,
// fully masked query rows' Q and dO rows too, and the SIMT products of a
// tile that straddles the causal diagonal stop at each row's last allowed
// key (the tensor-core products cover the whole tile: see there).
//
// The SIMT kernels (every dtype, any D and Dv up to 128): a block of
// kThreads threads owns one tile of query rows (forward, dQ) or of keys
// (dK/dV) of one (b, h) and loops over the other side's tiles, staging them
// in shared memory as accumulators (float, or double for float64). Every
// product's output tile is spread over the threads 16 wide (tx, columns
// tx + 16 j) by kThreads / 16 tall (ty, rows ty + TY i), so the rows a warp
// reads are two adjacent ones and the columns 16 consecutive ones: with one
// element of padding per shared-memory row no read has a bank conflict.
// The forward's online softmax gives each warp whole rows (32 lanes across
// the keys, WarpMax/WarpSum). The tensor-core kernels (bfloat16/float16,
// D = Dv in {64, 128}) have the same structure on mma.sync tiles; see their
// section. The backward runs three kernels: Delta = rowsum(dO * O) per row,
// then dQ per query tile and dK, dV per key tile, each recomputing P from
// q, k and the saved lse, so no two blocks write one element and the
// results do not depend on timing (the price: S and dP are computed twice,
// 7 matrix products where FlashAttention-2's atomic dQ needs 5).
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <type_traits>

#include "cuda/common.cuh"
#include "cuda/flash_attention.h"
#include "cuda/mma.cuh"
#include "llmsys/random.h"

namespace llmsys::cuda {
namespace {

// Everything a kernel reads about its call, passed by value. Pointers are
// to T (the call's dtype) except mask (its own dtype), lse and delta (Acc<T>).
struct FlashParams {
  const void* q;     // (B, H, N, D)
  const void* k;     // (B, H, M, D)
  const void* v;     // (B, H, M, Dv)
  const void* mask;  // (B, M), or nullptr
  const void* out;   // (B, H, N, Dv), backward
  const void* lse;   // (B, H, N), backward
  const void* dout;  // (B, H, N, Dv), backward
  void* o_out;       // (B, H, N, Dv), forward
  void* o_lse;       // (B, H, N), forward
  void* grad_q;      // (B, H, N, D) or nullptr
  void* grad_k;      // (B, H, M, D) or nullptr
  void* grad_v;      // (B, H, M, Dv) or nullptr
  void* delta;       // (B, H, N) accumulators, backward
  int64_t bh, h, n, m;
  int d, dv;
  FlashMask mask_kind;
  bool causal, dropout;
  double scale, keep_scale;  // keep_scale = 1 / (1 - p)
  uint32_t keep_threshold;   // kept iff (random word >> 8) >= this
  uint64_t seed, offset;
};

__device__ __forceinline__ float FlashExp(float x) { return expf(x); }
__device__ __forceinline__ double FlashExp(double x) { return exp(x); }
__device__ __forceinline__ float FlashLog(float x) { return logf(x); }
__device__ __forceinline__ double FlashLog(double x) { return log(x); }

template <class A>
__device__ __forceinline__ A FlashInf() {
  return static_cast<A>(INFINITY);
}
template <class A>
__device__ __forceinline__ A FlashNan() {
  return static_cast<A>(NAN);
}

// Whether key (b, m) is padding: element b M + m of the mask is non-zero.
__device__ __forceinline__ bool KeyMasked(const void* mask, FlashMask kind,
                                          int64_t i) {
  switch (kind) {
    case FlashMask::kU8:
      return static_cast<const uint8_t*>(mask)[i] != 0;
    case FlashMask::kI32:
      return static_cast<const int32_t*>(mask)[i] != 0;
    case FlashMask::kI64:
      return static_cast<const int64_t*>(mask)[i] != 0;
    case FlashMask::kF32:
      return static_cast<const float*>(mask)[i] != 0.0f;
    case FlashMask::kF64:
      return static_cast<const double*>(mask)[i] != 0.0;
    default:
      return false;
  }
}

// Whether query n may attend key m of batch b (n < N and m < M checked
// by the caller's bounds too).
__device__ __forceinline__ bool Allowed(const FlashParams& p, int64_t b,
                                        int64_t n, int64_t m) {
  if (n >= p.n || m >= p.m) return false;
  if (p.causal && m > n) return false;
  return !KeyMasked(p.mask, p.mask_kind, b * p.m + m);
}

// keep / (1 - p) for probability i (row-major in (B, H, N, M)); 1 without
// dropout. Never inf * 0: p = 1 keeps nothing and gives 0.
template <class A>
__device__ __forceinline__ A KeepScale(const FlashParams& p, uint64_t i) {
  if (!p.dropout) return A(1);
  const uint32_t word = llmsys_random_u32(p.seed, p.offset, i);
  return (word >> 8) >= p.keep_threshold ? static_cast<A>(p.keep_scale) : A(0);
}

// Copies rows [r0, r0 + kTileRows) of a (len, cols) row-major matrix at
// src into dst (kTileRows, kHd + 1) as accumulators. Rows at or past len,
// columns at or past cols, padded keys (when `keys`) and rows whose saved
// lse is -inf (when row_lse is not null) are zeros.
template <class T, int kTileRows, int kHd, int kThreads>
__device__ __forceinline__ void LoadTile(Acc<T>* dst, const T* src, int64_t r0,
                                         int64_t len, int cols,
                                         const FlashParams& p, int64_t b,
                                         bool keys, const Acc<T>* row_lse) {
  using A = Acc<T>;
  constexpr int kLd = kHd + 1;
  for (int idx = threadIdx.x; idx < kTileRows * kHd; idx += kThreads) {
    const int r = idx / kHd, c = idx % kHd;
    const int64_t row = r0 + r;
    bool zero = row >= len || c >= cols;
    if (!zero && keys) zero = KeyMasked(p.mask, p.mask_kind, b * p.m + row);
    if (!zero && row_lse != nullptr) zero = row_lse[row] == -FlashInf<A>();
    dst[r * kLd + c] = zero ? A(0) : ToAcc(src[row * cols + c]);
  }
}

// The per-thread products over shared-memory tiles. The thread's output
// element (i, j) is row ty + kTY i, column tx + 16 j of the tile.
//
// acc[i][j] += sum_{x < len} a[row_i][x] * b[col_j][x]   (A B^T)
template <class A, int kRM, int kCM, int kTY>
__device__ __forceinline__ void ProductNT(A (&acc)[kRM][kCM], const A* a,
                                          int lda, const A* b, int ldb,
                                          int len) {
  const int tx = threadIdx.x % kFlashSimtTx, ty = threadIdx.x / kFlashSimtTx;
#pragma unroll 2
  for (int x = 0; x < len; ++x) {
    A av[kRM], bv[kCM];
#pragma unroll
    for (int i = 0; i < kRM; ++i) av[i] = a[(ty + kTY * i) * lda + x];
#pragma unroll
    for (int j = 0; j < kCM; ++j) bv[j] = b[(tx + kFlashSimtTx * j) * ldb + x];
#pragma unroll
    for (int i = 0; i < kRM; ++i)
#pragma unroll
      for (int j = 0; j < kCM; ++j) acc[i][j] += av[i] * bv[j];
  }
}

// acc[i][j] += sum_x a[row_i][x] * b[x][col_j]   (A B), x < len; when
// kDiag, only x <= row_i + diag (a causal tile: key x of the tile is
// allowed for row row_i iff m0 + x <= n0 + row_i, diag = n0 - m0).
template <bool kDiag, class A, int kRM, int kCM, int kTY>
__device__ __forceinline__ void ProductNN(A (&acc)[kRM][kCM], const A* a,
                                          int lda, const A* b, int ldb, int len,
                                          int64_t diag) {
  const int tx = threadIdx.x % kFlashSimtTx, ty = threadIdx.x / kFlashSimtTx;
  if (!kDiag) {
#pragma unroll 2
    for (int x = 0; x < len; ++x) {
      A av[kRM], bv[kCM];
#pragma unroll
      for (int i = 0; i < kRM; ++i) av[i] = a[(ty + kTY * i) * lda + x];
#pragma unroll
      for (int j = 0; j < kCM; ++j) bv[j] = b[x * ldb + tx + kFlashSimtTx * j];
#pragma unroll
      for (int i = 0; i < kRM; ++i)
#pragma unroll
        for (int j = 0; j < kCM; ++j) acc[i][j] += av[i] * bv[j];
    }
  } else {
#pragma unroll
    for (int i = 0; i < kRM; ++i) {
      const int row = ty + kTY * i;
      const int64_t last = row + diag;  // the last allowed x
      const int end = last < 0         ? 0
                      : last + 1 < len ? static_cast<int>(last + 1)
                                       : len;
      for (int x = 0; x < end; ++x) {
        const A av = a[row * lda + x];
#pragma unroll
        for (int j = 0; j < kCM; ++j)
          acc[i][j] += av * b[x * ldb + tx + kFlashSimtTx * j];
      }
    }
  }
}

// acc[i][j] += sum_x a[x][row_i] * b[x][col_j]   (A^T B), x < len; when
// kDiag, only x >= row_i - diag (row_i is a key of the tile, x a query row:
// allowed iff m0 + row_i <= n0 + x, diag = n0 - m0).
template <bool kDiag, class A, int kRM, int kCM, int kTY>
__device__ __forceinline__ void ProductTN(A (&acc)[kRM][kCM], const A* a,
                                          int lda, const A* b, int ldb, int len,
                                          int64_t diag) {
  const int tx = threadIdx.x % kFlashSimtTx, ty = threadIdx.x / kFlashSimtTx;
  if (!kDiag) {
#pragma unroll 2
    for (int x = 0; x < len; ++x) {
      A av[kRM], bv[kCM];
#pragma unroll
      for (int i = 0; i < kRM; ++i) av[i] = a[x * lda + ty + kTY * i];
#pragma unroll
      for (int j = 0; j < kCM; ++j) bv[j] = b[x * ldb + tx + kFlashSimtTx * j];
#pragma unroll
      for (int i = 0; i < kRM; ++i)
#pragma unroll
        for (int j = 0; j < kCM; ++j) acc[i][j] += av[i] * bv[j];
    }
  } else {
#pragma unroll
    for (int i = 0; i < kRM; ++i) {
      const int row = ty + kTY * i;
      const int64_t first = row - diag;  // the first allowed x
      const int begin = first < 0     ? 0
                        : first < len ? static_cast<int>(first)
                                      : len;
      for (int x = begin; x < len; ++x) {
        const A av = a[x * lda + row];
#pragma unroll
        for (int j = 0; j < kCM; ++j)
          acc[i][j] += av * b[x * ldb + tx + kFlashSimtTx * j];
      }
    }
  }
}

// ---- SIMT forward ----

// One block per (tile of kRows query rows, b h); blocks of the last tiles
// (the most keys when causal) come first. Per key tile: S = scale Q K^T
// into p (rows, keys); each warp takes whole rows for the online softmax
// (running max and sum in registers, the tile's rescale alpha into shared
// memory, P' = P * keep over S); then every thread rescales its part of
// the output accumulator by alpha and adds P' V.
template <class T, int kD, int kRows, int kKeys, int kThreads>
__global__ void __launch_bounds__(kThreads)
    flash_attention_forward_simt_kernel(FlashParams p) {
  using A = Acc<T>;
  constexpr FlashTiles kTiles{kRows, kKeys, kThreads};
  constexpr FlashSmemLayout kL =
      SimtFlashLayout(FlashPass::kForward, kTiles, kD);
  constexpr int kLd = kD + 1, kLp = kKeys + 1;
  constexpr int kTY = kThreads / kFlashSimtTx;
  constexpr int kWarps = kThreads / 32;
  constexpr int kRowsPerWarp = kRows / kWarps;
  constexpr int kKeysPerLane = kKeys / 32;
  static_assert(kRows % kTY == 0 && kKeys % kFlashSimtTx == 0 &&
                    kD % kFlashSimtTx == 0 && kRows % kWarps == 0 &&
                    kKeys % 32 == 0,
                "forward tiles do not fit the thread layout");
  LLMSYS_DYNAMIC_SMEM(A, smem);
  A* qs = smem + kL.q;           // (rows, D)
  A* ks = smem + kL.k;           // (keys, D)
  A* vs = smem + kL.v;           // (keys, Dv)
  A* ps = smem + kL.p;           // (rows, keys): S, then P'
  A* alpha_s = smem + kL.stats;  // (rows) this tile's rescale
  A* seen_s = alpha_s + kRows;   // (rows) 1 when a key was allowed
  A* inv_l_s = seen_s + kRows;   // (rows) 1 / l (NaN for a NaN row)

  const int64_t tiles = (p.n + kRows - 1) / kRows;
  const int64_t block = blockIdx.x;
  const int64_t bh = block % p.bh, b = bh / p.h;
  const int64_t n0 = (tiles - 1 - block / p.bh) * kRows;
  const T* q = static_cast<const T*>(p.q) + bh * p.n * p.d;   // (N, D)
  const T* k = static_cast<const T*>(p.k) + bh * p.m * p.d;   // (M, D)
  const T* v = static_cast<const T*>(p.v) + bh * p.m * p.dv;  // (M, Dv)
  const A scale = static_cast<A>(p.scale);
  const A inf = FlashInf<A>();
  const int tx = threadIdx.x % kFlashSimtTx, ty = threadIdx.x / kFlashSimtTx;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

  LoadTile<T, kRows, kD, kThreads>(qs, q, n0, p.n, p.d, p, b, false, nullptr);
  // The rows warp w owns: w kRowsPerWarp + rr.
  A run_max[kRowsPerWarp], run_sum[kRowsPerWarp];
  bool seen[kRowsPerWarp];
#pragma unroll
  for (int rr = 0; rr < kRowsPerWarp; ++rr) {
    run_max[rr] = -inf;
    run_sum[rr] = A(0);
    seen[rr] = false;
  }
  constexpr int kRM = kRows / kTY, kCM = kD / kFlashSimtTx;  // output part
  A acc[kRM][kCM];
#pragma unroll
  for (int i = 0; i < kRM; ++i)
#pragma unroll
    for (int j = 0; j < kCM; ++j) acc[i][j] = A(0);

  // Causal: no row of this tile sees a key past its last row (nor past N).
  int64_t m_end = p.m;
  if (p.causal) {
    const int64_t last = n0 + kRows < p.n ? n0 + kRows : p.n;
    m_end = last < p.m ? last : p.m;
  }
  for (int64_t m0 = 0; m0 < m_end; m0 += kKeys) {
    const int kv_len =
        m_end - m0 < kKeys ? static_cast<int>(m_end - m0) : kKeys;
    LoadTile<T, kKeys, kD, kThreads>(ks, k, m0, p.m, p.d, p, b, true, nullptr);
    LoadTile<T, kKeys, kD, kThreads>(vs, v, m0, p.m, p.dv, p, b, true, nullptr);
    __syncthreads();  // q (first tile), k and v are in place

    {  // S = scale Q K^T into ps
      constexpr int kSM = kRows / kTY, kSN = kKeys / kFlashSimtTx;
      A s[kSM][kSN];
#pragma unroll
      for (int i = 0; i < kSM; ++i)
#pragma unroll
        for (int j = 0; j < kSN; ++j) s[i][j] = A(0);
      ProductNT<A, kSM, kSN, kTY>(s, qs, kLd, ks, kLd, p.d);
#pragma unroll
      for (int i = 0; i < kSM; ++i)
#pragma unroll
        for (int j = 0; j < kSN; ++j)
          ps[(ty + kTY * i) * kLp + tx + kFlashSimtTx * j] = s[i][j] * scale;
    }
    __syncthreads();  // S complete

    // Online softmax, a warp per row.
#pragma unroll
    for (int rr = 0; rr < kRowsPerWarp; ++rr) {
      const int r = warp * kRowsPerWarp + rr;
      const int64_t n = n0 + r;
      A val[kKeysPerLane];
      bool ok[kKeysPerLane];
      A tile_max = -inf;
      bool any = false;
#pragma unroll
      for (int e = 0; e < kKeysPerLane; ++e) {
        const int c = lane + 32 * e;
        ok[e] = Allowed(p, b, n, m0 + c);
        val[e] = ps[r * kLp + c];
        if (ok[e]) {
          tile_max = MaxNan(tile_max, val[e]);
          any = true;
        }
      }
      tile_max = WarpMax(tile_max);
      any = WarpSum(any ? A(1) : A(0)) > A(0);
      const A m_old = run_max[rr];
      const A m_new = MaxNan(m_old, tile_max);
      A tile_sum = A(0);
#pragma unroll
      for (int e = 0; e < kKeysPerLane; ++e) {
        const int c = lane + 32 * e;
        // m_new == -inf: every allowed score so far is -inf; they add
        // nothing (and the row ends NaN, see below).
        A pe = ok[e] && m_new != -inf ? FlashExp(val[e] - m_new) : A(0);
        tile_sum += pe;
        if (ok[e] && p.dropout)
          pe *= KeepScale<A>(
              p, static_cast<uint64_t>((bh * p.n + n) * p.m + m0 + c));
        ps[r * kLp + c] = pe;
      }
      tile_sum = WarpSum(tile_sum);
      const A alpha = m_old == -inf ? A(0) : FlashExp(m_old - m_new);
      run_sum[rr] = run_sum[rr] * alpha + tile_sum;
      run_max[rr] = m_new;
      seen[rr] = seen[rr] || any;
      if (lane == 0) alpha_s[r] = alpha;
    }
    __syncthreads();  // P' and alpha complete

    // O = alpha O + P' V
#pragma unroll
    for (int i = 0; i < kRM; ++i) {
      const A alpha = alpha_s[ty + kTY * i];
#pragma unroll
      for (int j = 0; j < kCM; ++j) acc[i][j] *= alpha;
    }
    if (p.causal && m0 + kKeys - 1 > n0)
      ProductNN<true, A, kRM, kCM, kTY>(acc, ps, kLp, vs, kLd, kv_len, n0 - m0);
    else
      ProductNN<false, A, kRM, kCM, kTY>(acc, ps, kLp, vs, kLd, kv_len, 0);
    __syncthreads();  // done with k, v and ps
  }

  // out = O / l and lse = max + log l; a row with no allowed key gives 0
  // and -inf, one whose allowed scores are all -inf gives NaN (as the
  // reference's exp(-inf - -inf)).
  A* lse = static_cast<A*>(p.o_lse) + bh * p.n;  // (N)
#pragma unroll
  for (int rr = 0; rr < kRowsPerWarp; ++rr) {
    const int r = warp * kRowsPerWarp + rr;
    if (lane != 0) continue;
    A inv_l, row_lse;
    if (!seen[rr]) {
      inv_l = A(0);
      row_lse = -inf;
    } else if (run_max[rr] == -inf) {
      inv_l = FlashNan<A>();
      row_lse = FlashNan<A>();
    } else {
      inv_l = A(1) / run_sum[rr];
      row_lse = run_max[rr] + FlashLog(run_sum[rr]);
    }
    seen_s[r] = seen[rr] ? A(1) : A(0);
    inv_l_s[r] = inv_l;
    if (n0 + r < p.n) lse[n0 + r] = row_lse;
  }
  __syncthreads();
  T* out = static_cast<T*>(p.o_out) + bh * p.n * p.dv;  // (N, Dv)
#pragma unroll
  for (int i = 0; i < kRM; ++i) {
    const int r = ty + kTY * i;
    const int64_t n = n0 + r;
    if (n >= p.n) continue;
    const bool row_seen = seen_s[r] != A(0);
    const A inv_l = inv_l_s[r];
#pragma unroll
    for (int j = 0; j < kCM; ++j) {
      const int c = tx + kFlashSimtTx * j;
      if (c < p.dv)
        out[n * p.dv + c] = FromAcc<T>(row_seen ? acc[i][j] * inv_l : A(0));
    }
  }
}

// ---- backward ----

// Delta[row] = sum_j dO[row, j] O[row, j], a warp per row of (B H N).
template <class T>
__global__ void flash_attention_delta_kernel(const T* out,   // (BHN, Dv)
                                             const T* dout,  // (BHN, Dv)
                                             Acc<T>* delta,  // (BHN)
                                             int64_t rows, int dv) {
  using A = Acc<T>;
  const int64_t row = blockIdx.x * int64_t{blockDim.x / 32} + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows) return;  // whole warps leave together
  A sum = A(0);
  for (int j = lane; j < dv; j += 32)
    sum += ToAcc(dout[row * dv + j]) * ToAcc(out[row * dv + j]);
  sum = WarpSum(sum);
  if (lane == 0) delta[row] = sum;
}

// dQ: one block per (tile of kRows query rows, b h), heavy tiles first. Per
// key tile: dP = dO V^T (V staged in kv), then S = Q K^T (K staged in kv
// over V), dS = P (dP keep - Delta) into ds, dQ += dS K; at the end
// dQ = scale dQ.
template <class T, int kD, int kRows, int kKeys, int kThreads>
__global__ void __launch_bounds__(kThreads)
    flash_attention_dq_simt_kernel(FlashParams p) {
  using A = Acc<T>;
  constexpr FlashTiles kTiles{kRows, kKeys, kThreads};
  constexpr FlashSmemLayout kL =
      SimtFlashLayout(FlashPass::kBackwardDq, kTiles, kD);
  constexpr int kLd = kD + 1, kLp = kKeys + 1;
  constexpr int kTY = kThreads / kFlashSimtTx;
  static_assert(
      kRows % kTY == 0 && kKeys % kFlashSimtTx == 0 && kD % kFlashSimtTx == 0,
      "dQ tiles do not fit the thread layout");
  LLMSYS_DYNAMIC_SMEM(A, smem);
  A* qs = smem + kL.q;         // (rows, D)
  A* dos = smem + kL.dout;     // (rows, Dv)
  A* kvs = smem + kL.k;        // (keys, Dv): V, then (keys, D): K
  A* dss = smem + kL.ds;       // (rows, keys)
  A* lse_s = smem + kL.stats;  // (rows)
  A* delta_s = lse_s + kRows;  // (rows)

  const int64_t tiles = (p.n + kRows - 1) / kRows;
  const int64_t block = blockIdx.x;
  const int64_t bh = block % p.bh, b = bh / p.h;
  const int64_t n0 = (tiles - 1 - block / p.bh) * kRows;
  const T* q = static_cast<const T*>(p.q) + bh * p.n * p.d;         // (N, D)
  const T* k = static_cast<const T*>(p.k) + bh * p.m * p.d;         // (M, D)
  const T* v = static_cast<const T*>(p.v) + bh * p.m * p.dv;        // (M, Dv)
  const T* dout = static_cast<const T*>(p.dout) + bh * p.n * p.dv;  // (N, Dv)
  const A* lse = static_cast<const A*>(p.lse) + bh * p.n;           // (N)
  const A* delta = static_cast<const A*>(p.delta) + bh * p.n;       // (N)
  const A scale = static_cast<A>(p.scale);
  const A inf = FlashInf<A>();
  const int tx = threadIdx.x % kFlashSimtTx, ty = threadIdx.x / kFlashSimtTx;

  LoadTile<T, kRows, kD, kThreads>(qs, q, n0, p.n, p.d, p, b, false, lse);
  LoadTile<T, kRows, kD, kThreads>(dos, dout, n0, p.n, p.dv, p, b, false, lse);
  for (int r = threadIdx.x; r < kRows; r += kThreads) {
    const int64_t n = n0 + r;
    lse_s[r] = n < p.n ? lse[n] : -inf;
    delta_s[r] = n < p.n ? delta[n] : A(0);
  }
  __syncthreads();  // q, dO and the stats in place (read even without keys)
  constexpr int kRM = kRows / kTY, kCM = kD / kFlashSimtTx;     // dQ part
  constexpr int kSM = kRows / kTY, kSN = kKeys / kFlashSimtTx;  // S part
  A acc[kRM][kCM];
#pragma unroll
  for (int i = 0; i < kRM; ++i)
#pragma unroll
    for (int j = 0; j < kCM; ++j) acc[i][j] = A(0);

  int64_t m_end = p.m;
  if (p.causal) {
    const int64_t last = n0 + kRows < p.n ? n0 + kRows : p.n;
    m_end = last < p.m ? last : p.m;
  }
  for (int64_t m0 = 0; m0 < m_end; m0 += kKeys) {
    const int kv_len =
        m_end - m0 < kKeys ? static_cast<int>(m_end - m0) : kKeys;
    A dp[kSM][kSN], s[kSM][kSN];
#pragma unroll
    for (int i = 0; i < kSM; ++i)
#pragma unroll
      for (int j = 0; j < kSN; ++j) dp[i][j] = s[i][j] = A(0);
    LoadTile<T, kKeys, kD, kThreads>(kvs, v, m0, p.m, p.dv, p, b, true,
                                     nullptr);
    __syncthreads();  // v in place
    ProductNT<A, kSM, kSN, kTY>(dp, dos, kLd, kvs, kLd, p.dv);
    __syncthreads();  // done with v
    LoadTile<T, kKeys, kD, kThreads>(kvs, k, m0, p.m, p.d, p, b, true, nullptr);
    __syncthreads();  // k in place
    ProductNT<A, kSM, kSN, kTY>(s, qs, kLd, kvs, kLd, p.d);
#pragma unroll
    for (int i = 0; i < kSM; ++i) {
      const int r = ty + kTY * i;
      const int64_t n = n0 + r;
      const A row_lse = lse_s[r], row_delta = delta_s[r];
#pragma unroll
      for (int j = 0; j < kSN; ++j) {
        const int c = tx + kFlashSimtTx * j;
        const int64_t m = m0 + c;
        A ds = A(0);
        if (row_lse != -inf && Allowed(p, b, n, m)) {
          const A pr = FlashExp(s[i][j] * scale - row_lse);
          const A keep =
              KeepScale<A>(p, static_cast<uint64_t>((bh * p.n + n) * p.m + m));
          ds = pr * (dp[i][j] * keep - row_delta);
        }
        dss[r * kLp + c] = ds;
      }
    }
    __syncthreads();  // dS complete
    if (p.causal && m0 + kKeys - 1 > n0)
      ProductNN<true, A, kRM, kCM, kTY>(acc, dss, kLp, kvs, kLd, kv_len,
                                        n0 - m0);
    else
      ProductNN<false, A, kRM, kCM, kTY>(acc, dss, kLp, kvs, kLd, kv_len, 0);
    __syncthreads();  // done with k and dS
  }

  T* dq = static_cast<T*>(p.grad_q) + bh * p.n * p.d;  // (N, D)
#pragma unroll
  for (int i = 0; i < kRM; ++i) {
    const int r = ty + kTY * i;
    const int64_t n = n0 + r;
    if (n >= p.n) continue;
    const bool live = lse_s[r] != -inf;  // a fully masked row gets 0
#pragma unroll
    for (int j = 0; j < kCM; ++j) {
      const int c = tx + kFlashSimtTx * j;
      if (c < p.d)
        dq[n * p.d + c] = FromAcc<T>(live ? acc[i][j] * scale : A(0));
    }
  }
}

// dK and dV: one block per (tile of kKeys keys, b h), keys from the first
// (the most query rows when causal) on. Per query tile: S = Q K^T and
// dP = dO V^T, P' = P keep into p and dS = P (dP keep - Delta) into ds,
// then dV += P'^T dO and dK += dS^T Q; at the end dK = scale dK. A padded
// key's rows are 0.
template <class T, int kD, int kRows, int kKeys, int kThreads>
__global__ void __launch_bounds__(kThreads)
    flash_attention_dkdv_simt_kernel(FlashParams p) {
  using A = Acc<T>;
  constexpr FlashTiles kTiles{kRows, kKeys, kThreads};
  constexpr FlashSmemLayout kL =
      SimtFlashLayout(FlashPass::kBackwardDkdv, kTiles, kD);
  constexpr int kLd = kD + 1, kLp = kKeys + 1;
  constexpr int kTY = kThreads / kFlashSimtTx;
  static_assert(kRows % kTY == 0 && kKeys % kFlashSimtTx == 0 &&
                    kKeys % kTY == 0 && kD % kFlashSimtTx == 0,
                "dK/dV tiles do not fit the thread layout");
  LLMSYS_DYNAMIC_SMEM(A, smem);
  A* ks = smem + kL.k;         // (keys, D)
  A* vs = smem + kL.v;         // (keys, Dv)
  A* qs = smem + kL.q;         // (rows, D)
  A* dos = smem + kL.dout;     // (rows, Dv)
  A* ps = smem + kL.p;         // (rows, keys) P'
  A* dss = smem + kL.ds;       // (rows, keys) dS
  A* lse_s = smem + kL.stats;  // (rows)
  A* delta_s = lse_s + kRows;  // (rows)

  const int64_t block = blockIdx.x;
  const int64_t bh = block % p.bh, b = bh / p.h;
  const int64_t m0 = block / p.bh * kKeys;
  const T* q = static_cast<const T*>(p.q) + bh * p.n * p.d;         // (N, D)
  const T* k = static_cast<const T*>(p.k) + bh * p.m * p.d;         // (M, D)
  const T* v = static_cast<const T*>(p.v) + bh * p.m * p.dv;        // (M, Dv)
  const T* dout = static_cast<const T*>(p.dout) + bh * p.n * p.dv;  // (N, Dv)
  const A* lse = static_cast<const A*>(p.lse) + bh * p.n;           // (N)
  const A* delta = static_cast<const A*>(p.delta) + bh * p.n;       // (N)
  const A scale = static_cast<A>(p.scale);
  const A inf = FlashInf<A>();
  const int tx = threadIdx.x % kFlashSimtTx, ty = threadIdx.x / kFlashSimtTx;

  LoadTile<T, kKeys, kD, kThreads>(ks, k, m0, p.m, p.d, p, b, true, nullptr);
  LoadTile<T, kKeys, kD, kThreads>(vs, v, m0, p.m, p.dv, p, b, true, nullptr);
  constexpr int kRM = kKeys / kTY, kCM = kD / kFlashSimtTx;     // dK, dV part
  constexpr int kSM = kRows / kTY, kSN = kKeys / kFlashSimtTx;  // S part
  A dk_acc[kRM][kCM], dv_acc[kRM][kCM];
#pragma unroll
  for (int i = 0; i < kRM; ++i)
#pragma unroll
    for (int j = 0; j < kCM; ++j) dk_acc[i][j] = dv_acc[i][j] = A(0);

  // Causal: rows before m0 see none of these keys.
  const int64_t n_begin = p.causal ? m0 / kRows * kRows : 0;
  for (int64_t n0 = n_begin; n0 < p.n; n0 += kRows) {
    const int q_len = p.n - n0 < kRows ? static_cast<int>(p.n - n0) : kRows;
    LoadTile<T, kRows, kD, kThreads>(qs, q, n0, p.n, p.d, p, b, false, lse);
    LoadTile<T, kRows, kD, kThreads>(dos, dout, n0, p.n, p.dv, p, b, false,
                                     lse);
    for (int r = threadIdx.x; r < kRows; r += kThreads) {
      const int64_t n = n0 + r;
      lse_s[r] = n < p.n ? lse[n] : -inf;
      delta_s[r] = n < p.n ? delta[n] : A(0);
    }
    __syncthreads();  // q, dO, stats (and k, v on the first tile) in place
    {
      A s[kSM][kSN], dp[kSM][kSN];
#pragma unroll
      for (int i = 0; i < kSM; ++i)
#pragma unroll
        for (int j = 0; j < kSN; ++j) s[i][j] = dp[i][j] = A(0);
      ProductNT<A, kSM, kSN, kTY>(s, qs, kLd, ks, kLd, p.d);
      ProductNT<A, kSM, kSN, kTY>(dp, dos, kLd, vs, kLd, p.dv);
#pragma unroll
      for (int i = 0; i < kSM; ++i) {
        const int r = ty + kTY * i;
        const int64_t n = n0 + r;
        const A row_lse = lse_s[r], row_delta = delta_s[r];
#pragma unroll
        for (int j = 0; j < kSN; ++j) {
          const int c = tx + kFlashSimtTx * j;
          const int64_t m = m0 + c;
          A pk = A(0), ds = A(0);
          if (row_lse != -inf && Allowed(p, b, n, m)) {
            const A pr = FlashExp(s[i][j] * scale - row_lse);
            const A keep = KeepScale<A>(
                p, static_cast<uint64_t>((bh * p.n + n) * p.m + m));
            pk = pr * keep;
            ds = pr * (dp[i][j] * keep - row_delta);
          }
          ps[r * kLp + c] = pk;
          dss[r * kLp + c] = ds;
        }
      }
    }
    __syncthreads();  // P' and dS complete
    if (p.causal && n0 < m0 + kKeys - 1) {
      ProductTN<true, A, kRM, kCM, kTY>(dv_acc, ps, kLp, dos, kLd, q_len,
                                        n0 - m0);
      ProductTN<true, A, kRM, kCM, kTY>(dk_acc, dss, kLp, qs, kLd, q_len,
                                        n0 - m0);
    } else {
      ProductTN<false, A, kRM, kCM, kTY>(dv_acc, ps, kLp, dos, kLd, q_len, 0);
      ProductTN<false, A, kRM, kCM, kTY>(dk_acc, dss, kLp, qs, kLd, q_len, 0);
    }
    __syncthreads();  // done with q, dO, P' and dS
  }

  T* dk = static_cast<T*>(p.grad_k);  // (B, H, M, D) or nullptr
  T* dv = static_cast<T*>(p.grad_v);  // (B, H, M, Dv) or nullptr
#pragma unroll
  for (int i = 0; i < kRM; ++i) {
    const int c = ty + kTY * i;
    const int64_t m = m0 + c;
    if (m >= p.m) continue;
    const bool padded = KeyMasked(p.mask, p.mask_kind, b * p.m + m);
#pragma unroll
    for (int j = 0; j < kCM; ++j) {
      const int col = tx + kFlashSimtTx * j;
      if (dk != nullptr && col < p.d)
        dk[(bh * p.m + m) * p.d + col] =
            FromAcc<T>(padded ? A(0) : dk_acc[i][j] * scale);
      if (dv != nullptr && col < p.dv)
        dv[(bh * p.m + m) * p.dv + col] =
            FromAcc<T>(padded ? A(0) : dv_acc[i][j]);
    }
  }
}

// Zeros `bytes` bytes.
__global__ void flash_attention_zero_kernel(unsigned char* p,  // (bytes)
                                            int64_t bytes) {
  LLMSYS_GRID_STRIDE_LOOP(i, bytes) p[i] = 0;
}

// ---- tensor-core kernels (bfloat16/float16, D = Dv = kD in {64, 128}) ----
//
// Four warps. In the forward, warp w owns query rows 32 w .. 32 w + 31 of
// the block's 128 (two m-tiles of 16); in the dQ pass rows 16 w .. 16 w +
// 15 of 64; in the dK/dV pass keys 16 w .. 16 w + 15 of 64. Products are
// mma.sync m16n8k16 with float accumulators (cuda/mma.cuh for the fragment
// layouts): lane l (g = l / 4, t = l % 4) holds, of a 16 x 8 accumulator
// tile, rows g and g + 8 and columns 2t, 2t + 1, so a row's softmax
// statistics reduce over the 4 lanes of a quad (QuadMax, QuadSum), and an
// accumulator tile turns into the A operand of the next product in
// registers (P of P V, dS of dS K, P^T and dS^T of dV and dK). Tiles stream
// from global memory with cp.async (16 bytes a copy, so every tensor must
// start 16-byte aligned; the launchers fall back to SIMT otherwise) into
// padded row-major shared memory, the next tile's copies overlapping this
// one's products, and reach the tensor cores through ldmatrix (.trans where
// the product needs the tile transposed). What sits at a masked position
// inside a computed tile is multiplied by an exact 0: padded keys' rows,
// fully masked query rows and rows past the end are zeros in shared memory,
// so only a NaN or inf at a causally masked position of a tile that
// straddles the diagonal (a future key or value, the query or incoming
// gradient of a row that does not see a key of the tile) reaches results
// the reference keeps finite, as in PyTorch's kernels; that row's own
// outputs are NaN anyway.

constexpr int kTcThreads = 128;

__device__ __forceinline__ float QuadMax(float v) {
  v = MaxNan(v, __shfl_xor_sync(0xffffffffu, v, 1));
  return MaxNan(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
__device__ __forceinline__ float QuadSum(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

// keep / (1 - p) for probabilities i and i + 1, from one Philox block when
// both fall in it.
__device__ __forceinline__ void KeepScalePair(const FlashParams& p, uint64_t i,
                                              float& z0, float& z1) {
  const float kept = static_cast<float>(p.keep_scale);
  uint32_t c[4], key[2] = {static_cast<uint32_t>(p.seed),
                           static_cast<uint32_t>(p.seed >> 32)};
  uint64_t counter = p.offset + i / 4;
  c[0] = static_cast<uint32_t>(counter);
  c[1] = static_cast<uint32_t>(counter >> 32);
  c[2] = c[3] = 0;
  llmsys_philox4x32_10(c, key);
  z0 = (c[i % 4] >> 8) >= p.keep_threshold ? kept : 0.0f;
  if ((i + 1) % 4 != 0) {
    z1 = (c[(i + 1) % 4] >> 8) >= p.keep_threshold ? kept : 0.0f;
    return;
  }
  z1 = KeepScale<float>(p, i + 1);
}

// Issues the copies of rows [r0, r0 + kTileRows) of a (len, kD) matrix of
// T at src into dst (kTileRows rows of kD + 8 elements, as 32-bit words):
// cp.async for each 16-byte chunk of a row in range, zeros for rows past
// len, for padded keys (when `keys`) and for rows whose saved lse is -inf
// (when row_lse is not null). The caller commits.
template <class T, int kTileRows, int kD>
__device__ __forceinline__ void IssueTileTc(uint32_t* dst, const T* src,
                                            int64_t r0, int64_t len,
                                            const FlashParams& p, int64_t b,
                                            bool keys, const float* row_lse) {
  constexpr int kChunks = kD / 8;     // 16-byte chunks a row
  constexpr int kLdw = (kD + 8) / 2;  // 32-bit words a shared row
  for (int c = threadIdx.x; c < kTileRows * kChunks; c += kTcThreads) {
    const int r = c / kChunks, ch = c % kChunks;
    const int64_t row = r0 + r;
    uint32_t* to = dst + r * kLdw + ch * 4;
    bool zero = row >= len;
    if (!zero && keys) zero = KeyMasked(p.mask, p.mask_kind, b * p.m + row);
    if (!zero && row_lse != nullptr) zero = row_lse[row] == -FlashInf<float>();
    if (zero)
      to[0] = to[1] = to[2] = to[3] = 0u;
    else
      CpAsync16(to, src + row * kD + ch * 8);
  }
}

// The word address of the row this lane gives ldmatrix.x4 for an A
// fragment: the 16 x 16 block at (row0, col0) (col0 in elements, a
// multiple of 16) of a row-major tile with rows of kLdw words.
template <int kLdw>
__device__ __forceinline__ const uint32_t* ARowTc(const uint32_t* tile,
                                                  int row0, int col0) {
  const int lane = threadIdx.x % 32;
  return tile + (row0 + lane % 16) * kLdw + col0 / 2 + (lane / 16) * 4;
}
// For the B fragments of two n-tiles (rows n0 .. n0 + 15 of a tile that
// holds B^T row-major: K of Q K^T), k from col0: registers 0, 1 are n-tile
// n0's b0, b1 and registers 2, 3 n-tile n0 + 8's.
template <int kLdw>
__device__ __forceinline__ const uint32_t* BtRowTc(const uint32_t* tile, int n0,
                                                   int col0) {
  const int lane = threadIdx.x % 32;
  return tile + (n0 + (lane / 16) * 8 + lane % 8) * kLdw + col0 / 2 +
         ((lane / 8) % 2) * 4;
}
// For the B fragments of two n-tiles (columns n0 .. n0 + 15) of a tile that
// holds B row-major (k rows from k0: V of P V), read with ldmatrix.trans:
// registers 0, 1 are n-tile n0's b0, b1 and registers 2, 3 n-tile n0 + 8's.
template <int kLdw>
__device__ __forceinline__ const uint32_t* BRowTc(const uint32_t* tile, int k0,
                                                  int n0) {
  const int lane = threadIdx.x % 32;
  return tile + (k0 + ((lane / 8) % 2) * 8 + lane % 8) * kLdw + n0 / 2 +
         (lane / 16) * 4;
}

// The A fragments of mma.m16n8k16 that the accumulators c of kN n-tiles
// make once rounded to T (n-tiles 2 kk and 2 kk + 1 give k-block kk): how
// P and dS become the A operand of the next product.
template <class T, int kN>
__device__ __forceinline__ void AFragmentsTc(const float (&c)[kN][4],
                                             uint32_t (&a)[kN / 2][4]) {
#pragma unroll
  for (int kk = 0; kk < kN / 2; ++kk) {
    a[kk][0] = PackPair<T>(c[2 * kk][0], c[2 * kk][1]);
    a[kk][1] = PackPair<T>(c[2 * kk][2], c[2 * kk][3]);
    a[kk][2] = PackPair<T>(c[2 * kk + 1][0], c[2 * kk + 1][1]);
    a[kk][3] = PackPair<T>(c[2 * kk + 1][2], c[2 * kk + 1][3]);
  }
}

// Forward: one block per (tile of query rows, b h), heavy tiles first; warp
// w owns kMt m-tiles of 16 rows (rows 16 (kMt w + i) .. + 15), so that each
// fragment of K and V read from shared memory feeds 2 kMt products. Per key
// tile: S = Q K^T (Q's fragments reloaded from shared memory), the online
// softmax on the accumulators in the log2 domain, P' = P keep rounded to T
// as the A operand of O += P' V. K of the next tile loads during P V, V
// during Q K^T.
template <class T, int kD>
__global__ void __launch_bounds__(kTcThreads)
    flash_attention_forward_tc_kernel(FlashParams p) {
  constexpr FlashTiles kTiles = TensorCoreFlashTiles(FlashPass::kForward, kD);
  constexpr int kRows = kTiles.rows, kKeys = kTiles.keys;
  constexpr FlashSmemLayout kL =
      TensorCoreFlashLayout(FlashPass::kForward, kTiles, kD);
  constexpr int kLdw = (kD + 8) / 2;
  constexpr int kMt = kRows / (16 * (kTcThreads / 32));  // m-tiles a warp
  constexpr int kNt = kKeys / 8;                         // n-tiles of S
  constexpr int kOt = kD / 8;                            // n-tiles of O
  static_assert(kMt >= 1 && kRows == 16 * kMt * (kTcThreads / 32) &&
                    kKeys % 16 == 0 && kNt * 4 <= 32,
                "the forward's tiles do not fit its warps");
  // The allowed-key bits of a lane's 4 kNt scores (bit 4 j + x: s[.][j][x]).
  constexpr uint32_t kOkBits =
      kNt * 4 == 32 ? 0xffffffffu : (1u << (kNt * 4)) - 1u;
  LLMSYS_DYNAMIC_SMEM(uint32_t, smem);
  uint32_t* qs = smem + kL.q / 2;  // (rows, D)
  uint32_t* ks = smem + kL.k / 2;  // (keys, D)
  uint32_t* vs = smem + kL.v / 2;  // (keys, D)

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, t = lane % 4;
  const int64_t tiles = (p.n + kRows - 1) / kRows;
  const int64_t block = blockIdx.x;
  const int64_t bh = block % p.bh, b = bh / p.h;
  const int64_t n0 = (tiles - 1 - block / p.bh) * kRows;
  const T* q = static_cast<const T*>(p.q) + bh * p.n * kD;  // (N, D)
  const T* k = static_cast<const T*>(p.k) + bh * p.m * kD;  // (M, D)
  const T* v = static_cast<const T*>(p.v) + bh * p.m * kD;  // (M, D)
  const float inf = FlashInf<float>();
  const float scale2 = static_cast<float>(p.scale * 1.4426950408889634);
  int64_t m_end = p.m;
  if (p.causal) {
    const int64_t last = n0 + kRows < p.n ? n0 + kRows : p.n;
    m_end = last < p.m ? last : p.m;
  }
  // This lane's rows: row0 + 16 i + 8 rr for m-tile i, half rr.
  const int r_warp = warp * kMt * 16;
  const int64_t row0 = n0 + r_warp + g;

  IssueTileTc<T, kRows, kD>(qs, q, n0, p.n, p, b, false, nullptr);
  if (m_end > 0) IssueTileTc<T, kKeys, kD>(ks, k, 0, p.m, p, b, true, nullptr);
  CpAsyncCommit();

  float o[kMt][kOt][4];
#pragma unroll
  for (int i = 0; i < kMt; ++i)
#pragma unroll
    for (int j = 0; j < kOt; ++j)
#pragma unroll
      for (int x = 0; x < 4; ++x) o[i][j][x] = 0.0f;
  float run_max[kMt][2], run_sum[kMt][2];
  bool seen[kMt][2];
#pragma unroll
  for (int i = 0; i < kMt; ++i)
#pragma unroll
    for (int rr = 0; rr < 2; ++rr) {
      run_max[i][rr] = -inf;
      run_sum[i][rr] = 0.0f;
      seen[i][rr] = false;
    }

  for (int64_t m0 = 0; m0 < m_end; m0 += kKeys) {
    CpAsyncWaitAll();
    __syncthreads();  // k (and q) in place; every warp is done with v
    IssueTileTc<T, kKeys, kD>(vs, v, m0, p.m, p, b, true, nullptr);
    CpAsyncCommit();

    float s[kMt][kNt][4];
#pragma unroll
    for (int i = 0; i < kMt; ++i)
#pragma unroll
      for (int j = 0; j < kNt; ++j)
#pragma unroll
        for (int x = 0; x < 4; ++x) s[i][j][x] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < kD / 16; ++kk) {
      uint32_t qa[kMt][4];
#pragma unroll
      for (int i = 0; i < kMt; ++i)
        LdMatrixX4(qa[i], ARowTc<kLdw>(qs, r_warp + 16 * i, kk * 16));
#pragma unroll
      for (int np = 0; np < kNt / 2; ++np) {
        uint32_t kb[4];
        LdMatrixX4(kb, BtRowTc<kLdw>(ks, np * 16, kk * 16));
#pragma unroll
        for (int i = 0; i < kMt; ++i) {
          Mma16816<T>(s[i][2 * np], qa[i], kb[0], kb[1]);
          Mma16816<T>(s[i][2 * np + 1], qa[i], kb[2], kb[3]);
        }
      }
    }

    // Masks (bit 4 j + x for s[i][j][x]), then the online softmax.
    const bool full = m0 + kKeys <= p.m && n0 + kRows <= p.n &&
                      (!p.causal || m0 + kKeys - 1 <= n0) &&
                      p.mask_kind == FlashMask::kNone;
    uint32_t pf[kMt][kKeys / 16][4];  // P' as A fragments, 16 keys each
#pragma unroll
    for (int i = 0; i < kMt; ++i) {
      const int64_t row_i = row0 + 16 * i;
      uint32_t ok = kOkBits;
      if (!full) {
#pragma unroll
        for (int j = 0; j < kNt; ++j)
#pragma unroll
          for (int x = 0; x < 4; ++x)
            if (!Allowed(p, b, row_i + 8 * (x / 2), m0 + j * 8 + 2 * t + x % 2))
              ok &= ~(1u << (4 * j + x));
      }
      float tile_max[2] = {-inf, -inf};
#pragma unroll
      for (int j = 0; j < kNt; ++j)
#pragma unroll
        for (int x = 0; x < 4; ++x) {
          s[i][j][x] *= scale2;
          if ((ok >> (4 * j + x)) & 1u)
            tile_max[x / 2] = MaxNan(tile_max[x / 2], s[i][j][x]);
        }
      float alpha[2], m_new[2], tile_sum[2] = {0.0f, 0.0f};
#pragma unroll
      for (int rr = 0; rr < 2; ++rr) {
        // The row's allowed keys in this tile: bits x = 2 rr, 2 rr + 1.
        const uint32_t row_bits = (ok >> (2 * rr)) & 0x33333333u;
        const float any = QuadSum(row_bits != 0 ? 1.0f : 0.0f);
        seen[i][rr] = seen[i][rr] || any > 0.0f;
        tile_max[rr] = QuadMax(tile_max[rr]);
        m_new[rr] = MaxNan(run_max[i][rr], tile_max[rr]);
        alpha[rr] =
            run_max[i][rr] == -inf ? 0.0f : exp2f(run_max[i][rr] - m_new[rr]);
      }
#pragma unroll
      for (int j = 0; j < kNt; ++j) {
#pragma unroll
        for (int x = 0; x < 4; ++x) {
          const float mn = m_new[x / 2];
          const bool allowed = (ok >> (4 * j + x)) & 1u;
          s[i][j][x] = allowed && mn != -inf ? exp2f(s[i][j][x] - mn) : 0.0f;
          tile_sum[x / 2] += s[i][j][x];
        }
        if (p.dropout) {
#pragma unroll
          for (int rr = 0; rr < 2; ++rr) {
            float z0, z1;
            KeepScalePair(
                p,
                static_cast<uint64_t>((bh * p.n + row_i + 8 * rr) * p.m + m0 +
                                      j * 8 + 2 * t),
                z0, z1);
            s[i][j][2 * rr] *= z0;
            s[i][j][2 * rr + 1] *= z1;
          }
        }
      }
#pragma unroll
      for (int rr = 0; rr < 2; ++rr) {
        run_sum[i][rr] = run_sum[i][rr] * alpha[rr] + QuadSum(tile_sum[rr]);
        run_max[i][rr] = m_new[rr];
      }
#pragma unroll
      for (int j = 0; j < kOt; ++j) {
        o[i][j][0] *= alpha[0];
        o[i][j][1] *= alpha[0];
        o[i][j][2] *= alpha[1];
        o[i][j][3] *= alpha[1];
      }
      AFragmentsTc<T>(s[i], pf[i]);
    }

    CpAsyncWaitAll();
    __syncthreads();  // v in place; every warp is done with k
    if (m0 + kKeys < m_end) {
      IssueTileTc<T, kKeys, kD>(ks, k, m0 + kKeys, p.m, p, b, true, nullptr);
      CpAsyncCommit();
    }
#pragma unroll
    for (int kk = 0; kk < kKeys / 16; ++kk) {
#pragma unroll
      for (int dp = 0; dp < kD / 16; ++dp) {
        uint32_t vb[4];
        LdMatrixX4Trans(vb, BRowTc<kLdw>(vs, kk * 16, dp * 16));
#pragma unroll
        for (int i = 0; i < kMt; ++i) {
          Mma16816<T>(o[i][2 * dp], pf[i][kk], vb[0], vb[1]);
          Mma16816<T>(o[i][2 * dp + 1], pf[i][kk], vb[2], vb[3]);
        }
      }
    }
  }
  CpAsyncWaitAll();  // no copy outlives the block (q when no key tile ran)

  // out = O / l, lse = (max + log2 l) ln 2; no allowed key: 0 and -inf;
  // allowed keys whose scores are all -inf: NaN (as the reference).
  T* out = static_cast<T*>(p.o_out) + bh * p.n * kD;     // (N, D)
  float* lse = static_cast<float*>(p.o_lse) + bh * p.n;  // (N)
#pragma unroll
  for (int i = 0; i < kMt; ++i) {
#pragma unroll
    for (int rr = 0; rr < 2; ++rr) {
      const int64_t row = row0 + 16 * i + 8 * rr;
      if (row >= p.n) continue;
      float inv_l, row_lse;
      if (!seen[i][rr]) {
        inv_l = 0.0f;
        row_lse = -inf;
      } else if (run_max[i][rr] == -inf) {
        inv_l = row_lse = FlashNan<float>();
      } else {
        inv_l = 1.0f / run_sum[i][rr];
        row_lse =
            (run_max[i][rr] + log2f(run_sum[i][rr])) * 0.6931471805599453f;
      }
      if (t == 0) lse[row] = row_lse;
      uint32_t* to = reinterpret_cast<uint32_t*>(out + row * kD);
#pragma unroll
      for (int j = 0; j < kOt; ++j)
        to[j * 4 + t] = seen[i][rr] ? PackPair<T>(o[i][j][2 * rr] * inv_l,
                                                  o[i][j][2 * rr + 1] * inv_l)
                                    : 0u;
    }
  }
}

// Issues the rows [n0, n0 + kRows) of Q and dO (zeros past N and for rows
// whose saved lse is -inf) and stores their lse log2(e) and Delta into st
// (2 kRows floats); the caller commits.
template <class T, int kRows, int kD>
__device__ __forceinline__ void IssueRowsTc(uint32_t* qs, uint32_t* dos,
                                            float* st, const T* q,
                                            const T* dout, const float* lse,
                                            const float* delta, int64_t n0,
                                            const FlashParams& p, int64_t b) {
  IssueTileTc<T, kRows, kD>(qs, q, n0, p.n, p, b, false, lse);
  IssueTileTc<T, kRows, kD>(dos, dout, n0, p.n, p, b, false, lse);
  for (int r = threadIdx.x; r < kRows; r += kTcThreads) {
    const int64_t n = n0 + r;
    st[r] = n < p.n ? lse[n] * 1.4426950408889634f : -FlashInf<float>();
    st[kRows + r] = n < p.n ? delta[n] : 0.0f;
  }
}

// dQ: one block per (tile of 64 query rows, b h), heavy tiles first; K and V
// tiles double-buffered (the next pair loads during this one's products).
// Per key tile: S = Q K^T and dP = dO V^T, dS = P (dP keep - Delta) with P
// from the saved lse, dQ += dS K (K read transposed); at the end
// dQ = scale dQ.
template <class T, int kD>
__global__ void __launch_bounds__(kTcThreads)
    flash_attention_dq_tc_kernel(FlashParams p) {
  constexpr FlashTiles kTiles =
      TensorCoreFlashTiles(FlashPass::kBackwardDq, kD);
  constexpr int kRows = kTiles.rows, kKeys = kTiles.keys;
  constexpr FlashSmemLayout kL =
      TensorCoreFlashLayout(FlashPass::kBackwardDq, kTiles, kD);
  constexpr int kLdw = (kD + 8) / 2;
  constexpr int kNt = kKeys / 8;  // n-tiles of S and dP
  constexpr int kOt = kD / 8;     // n-tiles of dQ
  static_assert(
      kRows == 16 * (kTcThreads / 32) && kKeys % 16 == 0 && kNt * 4 <= 32,
      "the dQ pass's tiles do not fit its warps");
  LLMSYS_DYNAMIC_SMEM(uint32_t, smem);
  uint32_t* qs = smem + kL.q / 2;      // (rows, D)
  uint32_t* dos = smem + kL.dout / 2;  // (rows, D)
  uint32_t* ks = smem + kL.k / 2;      // 2 x (keys, D)
  uint32_t* vs = smem + kL.v / 2;      // 2 x (keys, D)
  float* lse_s = reinterpret_cast<float*>(smem + kL.stats / 2);  // (rows)
  float* delta_s = lse_s + kRows;                                // (rows)
  constexpr int kKvWords = kKeys * kLdw;  // one k or v buffer

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, t = lane % 4;
  const int64_t tiles = (p.n + kRows - 1) / kRows;
  const int64_t block = blockIdx.x;
  const int64_t bh = block % p.bh, b = bh / p.h;
  const int64_t n0 = (tiles - 1 - block / p.bh) * kRows;
  const T* q = static_cast<const T*>(p.q) + bh * p.n * kD;             // (N, D)
  const T* k = static_cast<const T*>(p.k) + bh * p.m * kD;             // (M, D)
  const T* v = static_cast<const T*>(p.v) + bh * p.m * kD;             // (M, D)
  const T* dout = static_cast<const T*>(p.dout) + bh * p.n * kD;       // (N, D)
  const float* lse = static_cast<const float*>(p.lse) + bh * p.n;      // (N)
  const float* delta = static_cast<const float*>(p.delta) + bh * p.n;  // (N)
  const float inf = FlashInf<float>();
  constexpr float kLog2e = 1.4426950408889634f;
  const float scale2 = static_cast<float>(p.scale * 1.4426950408889634);
  int64_t m_end = p.m;
  if (p.causal) {
    const int64_t last = n0 + kRows < p.n ? n0 + kRows : p.n;
    m_end = last < p.m ? last : p.m;
  }
  const int r_lane = warp * 16 + g;  // this lane's rows in the tile: +0, +8
  const int64_t row0 = n0 + r_lane;

  IssueTileTc<T, kRows, kD>(qs, q, n0, p.n, p, b, false, lse);
  IssueTileTc<T, kRows, kD>(dos, dout, n0, p.n, p, b, false, lse);
  if (m_end > 0) {
    IssueTileTc<T, kKeys, kD>(ks, k, 0, p.m, p, b, true, nullptr);
    IssueTileTc<T, kKeys, kD>(vs, v, 0, p.m, p, b, true, nullptr);
  }
  CpAsyncCommit();
  for (int r = threadIdx.x; r < kRows; r += kTcThreads) {
    const int64_t n = n0 + r;
    lse_s[r] = n < p.n ? lse[n] : -inf;
    delta_s[r] = n < p.n ? delta[n] : 0.0f;
  }

  float dq[kOt][4];
#pragma unroll
  for (int j = 0; j < kOt; ++j)
    dq[j][0] = dq[j][1] = dq[j][2] = dq[j][3] = 0.0f;

  int buf = 0;
  for (int64_t m0 = 0; m0 < m_end; m0 += kKeys, buf ^= 1) {
    CpAsyncWaitAll();
    __syncthreads();  // this tile in place; every warp is done with the last
    if (m0 + kKeys < m_end) {
      IssueTileTc<T, kKeys, kD>(ks + (buf ^ 1) * kKvWords, k, m0 + kKeys, p.m,
                                p, b, true, nullptr);
      IssueTileTc<T, kKeys, kD>(vs + (buf ^ 1) * kKvWords, v, m0 + kKeys, p.m,
                                p, b, true, nullptr);
      CpAsyncCommit();
    }
    const uint32_t* kt = ks + buf * kKvWords;
    const uint32_t* vt = vs + buf * kKvWords;

    float s[kNt][4], dp[kNt][4];
#pragma unroll
    for (int j = 0; j < kNt; ++j)
#pragma unroll
      for (int x = 0; x < 4; ++x) s[j][x] = dp[j][x] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < kD / 16; ++kk) {
      uint32_t qa[4], da[4];
      LdMatrixX4(qa, ARowTc<kLdw>(qs, warp * 16, kk * 16));
      LdMatrixX4(da, ARowTc<kLdw>(dos, warp * 16, kk * 16));
#pragma unroll
      for (int np = 0; np < kNt / 2; ++np) {
        uint32_t kb[4], vb[4];
        LdMatrixX4(kb, BtRowTc<kLdw>(kt, np * 16, kk * 16));
        LdMatrixX4(vb, BtRowTc<kLdw>(vt, np * 16, kk * 16));
        Mma16816<T>(s[2 * np], qa, kb[0], kb[1]);
        Mma16816<T>(s[2 * np + 1], qa, kb[2], kb[3]);
        Mma16816<T>(dp[2 * np], da, vb[0], vb[1]);
        Mma16816<T>(dp[2 * np + 1], da, vb[2], vb[3]);
      }
    }

    // dS, zero where masked or where the row has no allowed key.
    const bool full = m0 + kKeys <= p.m && n0 + kRows <= p.n &&
                      (!p.causal || m0 + kKeys - 1 <= n0) &&
                      p.mask_kind == FlashMask::kNone;
    float lse2[2], row_delta[2];
    bool live[2];
#pragma unroll
    for (int rr = 0; rr < 2; ++rr) {
      const float l = lse_s[r_lane + 8 * rr];
      live[rr] = l != -inf;
      lse2[rr] = l * kLog2e;
      row_delta[rr] = delta_s[r_lane + 8 * rr];
    }
#pragma unroll
    for (int j = 0; j < kNt; ++j) {
      float z[4] = {1.0f, 1.0f, 1.0f, 1.0f};
      if (p.dropout) {
#pragma unroll
        for (int rr = 0; rr < 2; ++rr)
          KeepScalePair(p,
                        static_cast<uint64_t>((bh * p.n + row0 + 8 * rr) * p.m +
                                              m0 + j * 8 + 2 * t),
                        z[2 * rr], z[2 * rr + 1]);
      }
#pragma unroll
      for (int x = 0; x < 4; ++x) {
        const int rr = x / 2;
        const bool ok =
            live[rr] &&
            (full || Allowed(p, b, row0 + 8 * rr, m0 + j * 8 + 2 * t + x % 2));
        const float pr = exp2f(s[j][x] * scale2 - lse2[rr]);
        s[j][x] = ok ? pr * (dp[j][x] * z[x] - row_delta[rr]) : 0.0f;
      }
    }
    uint32_t dsf[kKeys / 16][4];
    AFragmentsTc<T>(s, dsf);
    // dQ += dS K
#pragma unroll
    for (int kk = 0; kk < kKeys / 16; ++kk) {
#pragma unroll
      for (int dp2 = 0; dp2 < kD / 16; ++dp2) {
        uint32_t kb[4];
        LdMatrixX4Trans(kb, BRowTc<kLdw>(kt, kk * 16, dp2 * 16));
        Mma16816<T>(dq[2 * dp2], dsf[kk], kb[0], kb[1]);
        Mma16816<T>(dq[2 * dp2 + 1], dsf[kk], kb[2], kb[3]);
      }
    }
  }
  CpAsyncWaitAll();
  __syncthreads();  // the stats are in place even when no key tile ran

  T* out = static_cast<T*>(p.grad_q) + bh * p.n * kD;  // (N, D)
  const float scale = static_cast<float>(p.scale);
#pragma unroll
  for (int rr = 0; rr < 2; ++rr) {
    const int64_t row = row0 + 8 * rr;
    if (row >= p.n) continue;
    const bool live = lse_s[r_lane + 8 * rr] != -inf;  // else 0
    uint32_t* to = reinterpret_cast<uint32_t*>(out + row * kD);
#pragma unroll
    for (int j = 0; j < kOt; ++j)
      to[j * 4 + t] =
          live ? PackPair<T>(dq[j][2 * rr] * scale, dq[j][2 * rr + 1] * scale)
               : 0u;
  }
}

// dK and dV: one block per (tile of 64 keys, b h), keys from the first on;
// Q, dO and their rows' lse and Delta double-buffered. Per query tile:
// S^T = K Q^T and dP^T = V dO^T (each warp's 16 keys by the tile's
// queries), P'^T = P^T keep and dS^T = P^T (dP^T keep - Delta) as A
// operands of dV += P'^T dO and dK += dS^T Q (dO and Q read transposed); at
// the end dK = scale dK, and a padded key's rows are 0.
template <class T, int kD>
__global__ void __launch_bounds__(kTcThreads)
    flash_attention_dkdv_tc_kernel(FlashParams p) {
  constexpr FlashTiles kTiles =
      TensorCoreFlashTiles(FlashPass::kBackwardDkdv, kD);
  constexpr int kRows = kTiles.rows, kKeys = kTiles.keys;
  constexpr FlashSmemLayout kL =
      TensorCoreFlashLayout(FlashPass::kBackwardDkdv, kTiles, kD);
  constexpr int kLdw = (kD + 8) / 2;
  constexpr int kNt = kRows / 8;  // n-tiles (queries) of S^T and dP^T
  constexpr int kOt = kD / 8;     // n-tiles of dK and dV
  static_assert(kKeys == 16 * (kTcThreads / 32) && kRows % 16 == 0,
                "the dK/dV pass's tiles do not fit its warps");
  LLMSYS_DYNAMIC_SMEM(uint32_t, smem);
  uint32_t* ks = smem + kL.k / 2;      // (keys, D)
  uint32_t* vs = smem + kL.v / 2;      // (keys, D)
  uint32_t* qs = smem + kL.q / 2;      // 2 x (rows, D)
  uint32_t* dos = smem + kL.dout / 2;  // 2 x (rows, D)
  // 2 x [lse (rows), delta (rows)]
  float* stats = reinterpret_cast<float*>(smem + kL.stats / 2);
  constexpr int kQWords = kRows * kLdw;  // one q or dout buffer

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, t = lane % 4;
  const int64_t block = blockIdx.x;
  const int64_t bh = block % p.bh, b = bh / p.h;
  const int64_t m0 = block / p.bh * kKeys;
  const T* q = static_cast<const T*>(p.q) + bh * p.n * kD;             // (N, D)
  const T* k = static_cast<const T*>(p.k) + bh * p.m * kD;             // (M, D)
  const T* v = static_cast<const T*>(p.v) + bh * p.m * kD;             // (M, D)
  const T* dout = static_cast<const T*>(p.dout) + bh * p.n * kD;       // (N, D)
  const float* lse = static_cast<const float*>(p.lse) + bh * p.n;      // (N)
  const float* delta = static_cast<const float*>(p.delta) + bh * p.n;  // (N)
  const float inf = FlashInf<float>();
  const float scale2 = static_cast<float>(p.scale * 1.4426950408889634);
  const int64_t key0 = m0 + warp * 16 + g;  // this lane's keys: +0, +8

  IssueTileTc<T, kKeys, kD>(ks, k, m0, p.m, p, b, true, nullptr);
  IssueTileTc<T, kKeys, kD>(vs, v, m0, p.m, p, b, true, nullptr);
  // Causal: rows before m0 see none of these keys.
  const int64_t n_begin = p.causal ? m0 / kRows * kRows : 0;
  if (n_begin < p.n)
    IssueRowsTc<T, kRows, kD>(qs, dos, stats, q, dout, lse, delta, n_begin, p,
                              b);
  CpAsyncCommit();

  float dk[kOt][4], dv[kOt][4];
#pragma unroll
  for (int j = 0; j < kOt; ++j)
#pragma unroll
    for (int x = 0; x < 4; ++x) dk[j][x] = dv[j][x] = 0.0f;

  int buf = 0;
  for (int64_t n0 = n_begin; n0 < p.n; n0 += kRows, buf ^= 1) {
    CpAsyncWaitAll();
    __syncthreads();  // this tile in place; every warp is done with the last
    if (n0 + kRows < p.n) {
      IssueRowsTc<T, kRows, kD>(
          qs + (buf ^ 1) * kQWords, dos + (buf ^ 1) * kQWords,
          stats + (buf ^ 1) * 2 * kRows, q, dout, lse, delta, n0 + kRows, p, b);
      CpAsyncCommit();
    }
    const uint32_t* qt = qs + buf * kQWords;
    const uint32_t* dot = dos + buf * kQWords;
    const float* lse2_s = stats + buf * 2 * kRows;  // lse log2 e (rows)
    const float* delta_s = lse2_s + kRows;          // (rows)

    float st[kNt][4], dpt[kNt][4];
#pragma unroll
    for (int j = 0; j < kNt; ++j)
#pragma unroll
      for (int x = 0; x < 4; ++x) st[j][x] = dpt[j][x] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < kD / 16; ++kk) {
      uint32_t ka[4], va[4];
      LdMatrixX4(ka, ARowTc<kLdw>(ks, warp * 16, kk * 16));
      LdMatrixX4(va, ARowTc<kLdw>(vs, warp * 16, kk * 16));
#pragma unroll
      for (int np = 0; np < kNt / 2; ++np) {
        uint32_t qb[4], db[4];
        LdMatrixX4(qb, BtRowTc<kLdw>(qt, np * 16, kk * 16));
        LdMatrixX4(db, BtRowTc<kLdw>(dot, np * 16, kk * 16));
        Mma16816<T>(st[2 * np], ka, qb[0], qb[1]);
        Mma16816<T>(st[2 * np + 1], ka, qb[2], qb[3]);
        Mma16816<T>(dpt[2 * np], va, db[0], db[1]);
        Mma16816<T>(dpt[2 * np + 1], va, db[2], db[3]);
      }
    }

    // P'^T into st, dS^T into dpt; element x of n-tile j is key
    // key0 + 8 (x / 2), query n0 + 8 j + 2 t + x % 2.
    const bool full = m0 + kKeys <= p.m && n0 + kRows <= p.n &&
                      (!p.causal || n0 >= m0 + kKeys - 1) &&
                      p.mask_kind == FlashMask::kNone;
#pragma unroll
    for (int j = 0; j < kNt; ++j) {
#pragma unroll
      for (int x = 0; x < 4; ++x) {
        const int c = 8 * j + 2 * t + x % 2;  // query in the tile
        const int64_t n = n0 + c, m = key0 + 8 * (x / 2);
        const float l2 = lse2_s[c];
        const bool ok = l2 != -inf && (full || Allowed(p, b, n, m));
        const float pr = exp2f(st[j][x] * scale2 - l2);
        const float z = KeepScale<float>(
            p, static_cast<uint64_t>((bh * p.n + n) * p.m + m));
        st[j][x] = ok ? pr * z : 0.0f;
        dpt[j][x] = ok ? pr * (dpt[j][x] * z - delta_s[c]) : 0.0f;
      }
    }
    uint32_t pf[kRows / 16][4], dsf[kRows / 16][4];
    AFragmentsTc<T>(st, pf);
    AFragmentsTc<T>(dpt, dsf);
    // dV += P'^T dO, dK += dS^T Q
#pragma unroll
    for (int kk = 0; kk < kRows / 16; ++kk) {
#pragma unroll
      for (int dp2 = 0; dp2 < kD / 16; ++dp2) {
        uint32_t db[4], qb[4];
        LdMatrixX4Trans(db, BRowTc<kLdw>(dot, kk * 16, dp2 * 16));
        Mma16816<T>(dv[2 * dp2], pf[kk], db[0], db[1]);
        Mma16816<T>(dv[2 * dp2 + 1], pf[kk], db[2], db[3]);
        LdMatrixX4Trans(qb, BRowTc<kLdw>(qt, kk * 16, dp2 * 16));
        Mma16816<T>(dk[2 * dp2], dsf[kk], qb[0], qb[1]);
        Mma16816<T>(dk[2 * dp2 + 1], dsf[kk], qb[2], qb[3]);
      }
    }
  }
  CpAsyncWaitAll();

  const float scale = static_cast<float>(p.scale);
#pragma unroll
  for (int rr = 0; rr < 2; ++rr) {
    const int64_t m = key0 + 8 * rr;
    if (m >= p.m) continue;
    const bool padded = KeyMasked(p.mask, p.mask_kind, b * p.m + m);
    if (p.grad_k != nullptr) {
      uint32_t* to = reinterpret_cast<uint32_t*>(static_cast<T*>(p.grad_k) +
                                                 (bh * p.m + m) * kD);
#pragma unroll
      for (int j = 0; j < kOt; ++j)
        to[j * 4 + t] = padded ? 0u
                               : PackPair<T>(dk[j][2 * rr] * scale,
                                             dk[j][2 * rr + 1] * scale);
    }
    if (p.grad_v != nullptr) {
      uint32_t* to = reinterpret_cast<uint32_t*>(static_cast<T*>(p.grad_v) +
                                                 (bh * p.m + m) * kD);
#pragma unroll
      for (int j = 0; j < kOt; ++j)
        to[j * 4 + t] =
            padded ? 0u : PackPair<T>(dv[j][2 * rr], dv[j][2 * rr + 1]);
    }
  }
}

// ---- launch helpers ----

// Lets `kernel` use `bytes` of dynamic shared memory (above the default
// 48 KiB a kernel must opt in; every plan stays within
// kFlashMaxSmemBytes).
template <class Kernel>
cudaError_t AllowSmem(Kernel* kernel, int64_t bytes) {
  if (bytes <= kFlashDefaultSmemBytes) return cudaSuccess;
  return cudaFuncSetAttribute(kernel,
                              cudaFuncAttributeMaxDynamicSharedMemorySize,
                              static_cast<int>(bytes));
}

FlashParams MakeParams(const FlashAttentionShape& s,
                       const FlashAttentionOptions& o) {
  FlashParams p{};
  p.bh = s.b * s.h;
  p.h = s.h;
  p.n = s.n;
  p.m = s.m;
  p.d = static_cast<int>(s.d);
  p.dv = static_cast<int>(s.dv);
  p.mask_kind = o.mask;
  p.causal = o.causal;
  p.dropout = o.dropout_p > 0.0;
  p.scale = o.scale;
  p.keep_scale = o.dropout_p < 1.0 ? 1.0 / (1.0 - o.dropout_p) : 0.0;
  // u = (word >> 8) 2^-24 >= p  <=>  (word >> 8) >= ceil(p 2^24), exactly.
  p.keep_threshold = static_cast<uint32_t>(std::ceil(o.dropout_p * 16777216.0));
  p.seed = o.rng_seed;
  p.offset = o.rng_offset;
  return p;
}

template <class Kernel>
cudaError_t LaunchPlanned(Kernel* kernel, const FlashAttentionPlan& plan,
                          const FlashParams& p, cudaStream_t stream) {
  if (cudaError_t e = AllowSmem(kernel, plan.smem_bytes); e != cudaSuccess)
    return e;
  LLMSYS_LAUNCH(kernel, static_cast<unsigned>(plan.blocks), plan.tiles.threads,
                plan.smem_bytes, stream)
  (p);
  return cudaGetLastError();
}

template <class T>
constexpr bool kIsHalf16 =
    std::is_same_v<T, __nv_bfloat16> || std::is_same_v<T, __half>;

// Launches `pass` as `plan` says (its kernel's tiles are the plan's).
template <class T, int kD>
cudaError_t LaunchPass(FlashPass pass, const FlashAttentionPlan& plan,
                       const FlashParams& p, cudaStream_t stream) {
  if constexpr (kIsHalf16<T>) {
    if (plan.kernel == FlashKernel::kTensorCore) {
      switch (pass) {
        case FlashPass::kForward:
          return LaunchPlanned(flash_attention_forward_tc_kernel<T, kD>, plan,
                               p, stream);
        case FlashPass::kBackwardDq:
          return LaunchPlanned(flash_attention_dq_tc_kernel<T, kD>, plan, p,
                               stream);
        default:
          return LaunchPlanned(flash_attention_dkdv_tc_kernel<T, kD>, plan, p,
                               stream);
      }
    }
  }
  constexpr int kAcc = sizeof(Acc<T>);
  constexpr FlashTiles f = SimtFlashTiles(FlashPass::kForward, kAcc, kD);
  constexpr FlashTiles q = SimtFlashTiles(FlashPass::kBackwardDq, kAcc, kD);
  constexpr FlashTiles kv = SimtFlashTiles(FlashPass::kBackwardDkdv, kAcc, kD);
  switch (pass) {
    case FlashPass::kForward:
      return LaunchPlanned(
          flash_attention_forward_simt_kernel<T, kD, f.rows, f.keys, f.threads>,
          plan, p, stream);
    case FlashPass::kBackwardDq:
      return LaunchPlanned(
          flash_attention_dq_simt_kernel<T, kD, q.rows, q.keys, q.threads>,
          plan, p, stream);
    default:
      return LaunchPlanned(
          flash_attention_dkdv_simt_kernel<T, kD, kv.rows, kv.keys, kv.threads>,
          plan, p, stream);
  }
}

template <class T>
cudaError_t LaunchPassFor(FlashPass pass, const FlashAttentionPlan& plan,
                          const FlashParams& p, cudaStream_t stream) {
  return plan.head_dim == 64 ? LaunchPass<T, 64>(pass, plan, p, stream)
                             : LaunchPass<T, 128>(pass, plan, p, stream);
}

bool Aligned16(const void* x) {
  return reinterpret_cast<uintptr_t>(x) % 16 == 0;
}

// The plan of `pass`, SIMT when the tensor-core kernel's 16-byte copies
// cannot read these tensors (a view that starts mid-vector).
FlashAttentionPlan PlanOf(FlashPass pass, DType t, const FlashAttentionShape& s,
                          const FlashAttentionOptions& o,
                          std::initializer_list<const void*> tensors) {
  FlashAttentionPlan plan = FlashAttentionPlanFor(pass, t, s, o.kernel);
  if (plan.kernel != FlashKernel::kTensorCore) return plan;
  for (const void* x : tensors)
    if (!Aligned16(x))
      return FlashAttentionPlanFor(pass, t, s, FlashKernelChoice::kSimt);
  return plan;
}

}  // namespace

cudaError_t LaunchFlashAttentionForward(DType t, void* out, void* lse,
                                        const void* q, const void* k,
                                        const void* v, const void* mask,
                                        const FlashAttentionShape& s,
                                        const FlashAttentionOptions& o,
                                        cudaStream_t stream) {
  if (s.b * s.h == 0 || s.n == 0) return cudaSuccess;
  if (FlashAttentionUnsupported(t, s, o.kernel) != nullptr)
    return cudaErrorInvalidValue;
  FlashParams p = MakeParams(s, o);
  p.q = q;
  p.k = k;
  p.v = v;
  p.mask = o.mask == FlashMask::kNone ? nullptr : mask;
  p.o_out = out;
  p.o_lse = lse;
  const FlashAttentionPlan plan =
      PlanOf(FlashPass::kForward, t, s, o, {q, k, v, out});
  cudaError_t e = cudaSuccess;
  LLMSYS_DISPATCH_FLOAT(
      t, { e = LaunchPassFor<T>(FlashPass::kForward, plan, p, stream); });
  return e;
}

cudaError_t LaunchFlashAttentionBackward(
    DType t, void* dq, void* dk, void* dv, const void* q, const void* k,
    const void* v, const void* mask, const void* out, const void* lse,
    const void* dout, void* workspace, const FlashAttentionShape& s,
    const FlashAttentionOptions& o, cudaStream_t stream) {
  if (s.b * s.h == 0 || (dq == nullptr && dk == nullptr && dv == nullptr))
    return cudaSuccess;
  if (FlashAttentionUnsupported(t, s, o.kernel) != nullptr)
    return cudaErrorInvalidValue;
  FlashParams p = MakeParams(s, o);
  p.q = q;
  p.k = k;
  p.v = v;
  p.mask = o.mask == FlashMask::kNone ? nullptr : mask;
  p.out = out;
  p.lse = lse;
  p.dout = dout;
  p.grad_q = dq;
  p.grad_k = dk;
  p.grad_v = dv;
  p.delta = workspace;
  const FlashAttentionPlan dq_plan =
      PlanOf(FlashPass::kBackwardDq, t, s, o, {q, k, v, dout, dq});
  const FlashAttentionPlan dkdv_plan =
      PlanOf(FlashPass::kBackwardDkdv, t, s, o, {q, k, v, dout, dk, dv});
  const int64_t rows = s.b * s.h * s.n;
  cudaError_t e = cudaSuccess;
  LLMSYS_DISPATCH_FLOAT(t, {
    if (rows > 0) {
      constexpr int kThreads = 256;
      const int64_t blocks = (rows + kThreads / 32 - 1) / (kThreads / 32);
      LLMSYS_LAUNCH(flash_attention_delta_kernel<T>,
                    static_cast<unsigned>(blocks), kThreads, 0, stream)
      (static_cast<const T*>(out), static_cast<const T*>(dout),
       static_cast<Acc<T>*>(workspace), rows, static_cast<int>(s.dv));
      e = cudaGetLastError();
    }
    if (e == cudaSuccess && dq != nullptr && s.n > 0)
      e = LaunchPassFor<T>(FlashPass::kBackwardDq, dq_plan, p, stream);
    if (e == cudaSuccess && (dk != nullptr || dv != nullptr) && s.m > 0)
      e = LaunchPassFor<T>(FlashPass::kBackwardDkdv, dkdv_plan, p, stream);
  });
  return e;
}

cudaError_t LaunchFlashAttentionZero(void* p, int64_t bytes,
                                     cudaStream_t stream) {
  if (bytes <= 0) return cudaSuccess;
  const GridPlan plan = ElementwisePlan(bytes);
  LLMSYS_LAUNCH(flash_attention_zero_kernel, static_cast<unsigned>(plan.blocks),
                plan.threads, 0, stream)
  (static_cast<unsigned char*>(p), bytes);
  return cudaGetLastError();
}

}  // namespace llmsys::cuda
