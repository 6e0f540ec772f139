// cuda/matmul.h — how matmul.cublas and linear.cublas (plugins/cuda/
// matmul.cc) turn row-major products into cuBLASLt calls, and the launchers
// of the small kernels around them (cuda/matmul.cu): zero fill, bias rows,
// and the deterministic sum over broadcast batch dims.
//
// Layout mapping. cuBLASLt is column-major (CUBLASLT_ORDER_COL); our tensors
// are row-major. A row-major (r, c) matrix with row stride ld is, read
// column-major, its transpose: a (c, r) matrix with leading dimension ld. So
// the row-major product C = op(X) op(Y) is computed as the column-major
// product C^T = op(Y)^T op(X)^T: cuBLASLt's A is Y's memory, its B is X's,
// its D (m = cols, n = rows) is C's memory, and each operand's transpose
// flag carries over unchanged (LtGemmOf below). No data moves.
//
// Plans. A matmul call becomes a list of GEMMs (GemmCall, pure data):
//   - b shared by every batch (a weight) and a not transposed: the batch
//     folds into rows, one GEMM (and the weight's gradient is one GEMM
//     whose inner dim runs over batch * N);
//   - otherwise the batch dims split into an outer part (one GEMM call per
//     index) and the longest inner suffix over which each operand is either
//     full (batch stride = its matrix size) or broadcast (batch stride 0):
//     one strided-batched GEMM per outer index;
//   - the gradient of an operand broadcast over some batch dims is computed
//     per batch into the workspace, then summed over the broadcast dims by
//     a reduction kernel in a fixed order (BroadcastReduce): deterministic.
// tests/cuda/matmul_test.cc runs these plans through a column-major GEMM
// written from cuBLASLt's documented semantics and checks every transpose
// and broadcast case against a plain row-major product.
//
//   MatmulShape s{...};
//   const MatmulPlan plan = MatmulForwardPlan(s);
//   for (const GemmCall& c : plan.calls) { LtGemm g = LtGemmOf(c.gemm); ... }
//
// Plain C++ (no CUDA syntax). Thread-safety: pure functions.
#ifndef LLMSYS_CUDA_MATMUL_H_
#define LLMSYS_CUDA_MATMUL_H_

#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "cuda/launch.h"

namespace llmsys::cuda {

// ---- one GEMM, row-major, and its cuBLASLt form ----

// For i in [0, batch): C_i (rows, cols) = op(X_i) (rows, inner) @ op(Y_i)
// (inner, cols). X_i is stored row-major as (rows, inner), or (inner, rows)
// when tx; Y_i as (inner, cols), or (cols, inner) when ty. ld* are the
// stored row strides, stride_* the elements between consecutive batch
// matrices (0: one matrix shared by every batch).
struct RowGemm {
  int64_t rows = 0, cols = 0, inner = 0;
  bool tx = false, ty = false;
  int64_t ldx = 0, ldy = 0, ldc = 0;
  int64_t batch = 1;
  int64_t stride_x = 0, stride_y = 0, stride_c = 0;
};

// A column-major cuBLASLt matrix layout (CUBLASLT_ORDER_COL): element
// (r, c) of batch matrix i is at i * stride + r + c * ld.
struct LtLayout {
  int64_t rows = 0, cols = 0, ld = 0, stride = 0;
};

// D (m, n) = op(A) (m, k) @ op(B) (k, n), column-major, `batch` times; A is
// the row-major Y's memory, B is X's, D is C's (also cuBLASLt's C when it
// accumulates). trans_a / trans_b are CUBLAS_OP_T when set.
struct LtGemm {
  int64_t m = 0, n = 0, k = 0;
  bool trans_a = false, trans_b = false;
  LtLayout a, b, d;
  int64_t batch = 1;
};

// C^T = op(Y)^T op(X)^T (see the top of the file). Y stored (inner, cols)
// row-major reads column-major as (cols, inner) = op(Y)^T when !ty; stored
// (cols, inner) it reads as (inner, cols), whose transpose is op(Y)^T: the
// flag carries over. Likewise X.
inline LtGemm LtGemmOf(const RowGemm& g) {
  LtGemm lt;
  lt.m = g.cols;
  lt.n = g.rows;
  lt.k = g.inner;
  lt.trans_a = g.ty;
  lt.trans_b = g.tx;
  lt.a = g.ty ? LtLayout{g.inner, g.cols, g.ldy, g.stride_y}
              : LtLayout{g.cols, g.inner, g.ldy, g.stride_y};
  lt.b = g.tx ? LtLayout{g.rows, g.inner, g.ldx, g.stride_x}
              : LtLayout{g.inner, g.rows, g.ldx, g.stride_x};
  lt.d = LtLayout{g.cols, g.rows, g.ldc, g.stride_c};
  lt.batch = g.batch;
  return lt;
}

// ---- matmul plans ----

// The sizes of one matmul call: op(a) (batch_a..., N, K), op(b)
// (batch_b..., K, M), out (batch..., N, M) with batch the broadcast of the
// two (as reference::MatmulDims).
struct MatmulShape {
  std::vector<int64_t> batch_a, batch_b, batch;
  int64_t n = 0, k = 0, m = 0;
  bool transpose_a = false, transpose_b = false;
};

// The buffers a GemmCall reads and writes.
enum class MatBuf : int {
  kA,     // a (batch_a..., N, K) or (batch_a..., K, N)
  kB,     // b (batch_b..., K, M) or (batch_b..., M, K)
  kGrad,  // dL/dout (batch..., N, M)
  kOut,   // the plan's target: out, grad_a or grad_b
  kWork,  // the workspace: per-batch products (batch..., rows, cols)
};

// One (batched) GEMM of a plan, on buffers plus element offsets.
struct GemmCall {
  RowGemm gemm;
  MatBuf x = MatBuf::kA, y = MatBuf::kB, c = MatBuf::kOut;
  int64_t x_offset = 0, y_offset = 0, c_offset = 0;
};

constexpr int kMaxBatchDims = 8;

// target[o, e] = sum over r of work[(base(o) + off(r)) * mat + e], for o in
// [0, outer) (row-major over the kept dims) and e in [0, mat): base(o) sums
// keep_stride[d] times o's coordinate along kept dim d, off(r) likewise
// over the reduced dims, r running row-major (a fixed order). Strides count
// matrices of `mat` elements.
struct BroadcastReduce {
  int64_t outer = 0, mat = 0;
  int nkeep = 0, nred = 0;
  int64_t keep_size[kMaxBatchDims] = {}, keep_stride[kMaxBatchDims] = {};
  int64_t red_size[kMaxBatchDims] = {}, red_stride[kMaxBatchDims] = {};
};

// What computes one target (out, grad_a or grad_b): zero it when the sum
// is empty, else run `calls` in order and, when `reduce`, sum the
// workspace into the target.
struct MatmulPlan {
  bool zero_target = false;
  std::vector<GemmCall> calls;
  bool reduce = false;
  BroadcastReduce reduction;
  int64_t work_elems = 0;  // workspace elements the calls write
};

inline int64_t NumelOf(const std::vector<int64_t>& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

// `x` (a's or b's batch dims) padded with leading 1s to `nb` dims.
inline std::vector<int64_t> PadBatch(const std::vector<int64_t>& x, size_t nb) {
  std::vector<int64_t> out(nb - x.size(), 1);
  out.insert(out.end(), x.begin(), x.end());
  return out;
}

// The batch split: `outer` GEMM calls of `inner` batches each. For call o,
// operand a's first matrix is matrix outer_a[o] of a (counting matrices),
// and its batches step inner_a matrices (1, or 0 when broadcast); likewise
// b. The output's batches are always consecutive: call o starts at output
// matrix o * inner.
struct BatchSplit {
  int64_t outer = 1, inner = 1;
  std::vector<int64_t> outer_a, outer_b;
  int64_t inner_a = 1, inner_b = 1;
};

inline BatchSplit SplitBatch(const MatmulShape& s) {
  const size_t nb = s.batch.size();
  const std::vector<int64_t> pa = PadBatch(s.batch_a, nb);
  const std::vector<int64_t> pb = PadBatch(s.batch_b, nb);
  // Per operand: 0 unset (only size-1 dims so far), 1 full, 2 broadcast.
  int state_a = 0, state_b = 0;
  size_t split = nb;  // dims [split, nb) form the inner batch
  while (split > 0) {
    const size_t d = split - 1;
    if (s.batch[d] != 1) {
      const int ca = pa[d] == s.batch[d] ? 1 : 2;
      const int cb = pb[d] == s.batch[d] ? 1 : 2;
      if ((state_a != 0 && state_a != ca) || (state_b != 0 && state_b != cb))
        break;
      state_a = ca;
      state_b = cb;
    }
    split = d;
  }
  BatchSplit r;
  for (size_t d = 0; d < nb; ++d) (d < split ? r.outer : r.inner) *= s.batch[d];
  r.inner_a = state_a == 2 ? 0 : 1;
  r.inner_b = state_b == 2 ? 0 : 1;
  // Row-major matrix strides of a and b over their own (padded) dims; 0
  // along broadcast dims.
  std::vector<int64_t> sa(nb, 0), sb(nb, 0);
  int64_t na = 1, nbb = 1;
  for (size_t d = nb; d-- > 0;) {
    sa[d] = pa[d] == 1 ? 0 : na;
    sb[d] = pb[d] == 1 ? 0 : nbb;
    na *= pa[d];
    nbb *= pb[d];
  }
  r.outer_a.assign(static_cast<size_t>(r.outer), 0);
  r.outer_b.assign(static_cast<size_t>(r.outer), 0);
  std::vector<int64_t> pos(split, 0);  // row-major position over dims < split
  for (int64_t o = 0; o < r.outer; ++o) {
    int64_t ia = 0, ib = 0;
    for (size_t d = 0; d < split; ++d) {
      ia += pos[d] * sa[d];
      ib += pos[d] * sb[d];
    }
    r.outer_a[static_cast<size_t>(o)] = ia;
    r.outer_b[static_cast<size_t>(o)] = ib;
    for (size_t d = split; d-- > 0;) {
      if (++pos[d] < s.batch[d]) break;
      pos[d] = 0;
    }
  }
  return r;
}

// Whether the batch folds into the rows of one GEMM: b is one matrix shared
// by every batch and a has one (untransposed) matrix per batch.
inline bool FoldsBatch(const MatmulShape& s) {
  return !s.transpose_a && NumelOf(s.batch_b) == 1 &&
         NumelOf(s.batch_a) == NumelOf(s.batch) && NumelOf(s.batch) > 0;
}

// Row strides of the stored matrices.
inline int64_t LdA(const MatmulShape& s) { return s.transpose_a ? s.n : s.k; }
inline int64_t LdB(const MatmulShape& s) { return s.transpose_b ? s.k : s.m; }

namespace matmul_internal {

// One GEMM operand: which buffer, transposed or not, its row stride, its
// matrix size, and how it is indexed by the batch (0 full: batch i is
// matrix i; 1: a's index; 2: b's index).
struct Operand {
  MatBuf buf;
  bool t;
  int64_t ld, mat;
  int index;
};

// The calls of `split` for C (rows, cols) = op(X) op(Y), C full-indexed in
// buffer `c`.
inline void AddSplitCalls(const BatchSplit& split, int64_t rows, int64_t cols,
                          int64_t inner, const Operand& x, const Operand& y,
                          MatBuf c, std::vector<GemmCall>* calls) {
  auto first = [&](const Operand& p, int64_t o) {
    if (p.index == 1) return split.outer_a[static_cast<size_t>(o)] * p.mat;
    if (p.index == 2) return split.outer_b[static_cast<size_t>(o)] * p.mat;
    return o * split.inner * p.mat;
  };
  auto step = [&](const Operand& p) {
    if (p.index == 1) return split.inner_a * p.mat;
    if (p.index == 2) return split.inner_b * p.mat;
    return p.mat;
  };
  for (int64_t o = 0; o < split.outer; ++o) {
    GemmCall call;
    call.gemm.rows = rows;
    call.gemm.cols = cols;
    call.gemm.inner = inner;
    call.gemm.tx = x.t;
    call.gemm.ty = y.t;
    call.gemm.ldx = x.ld;
    call.gemm.ldy = y.ld;
    call.gemm.ldc = cols;
    call.gemm.batch = split.inner;
    call.gemm.stride_x = split.inner > 1 ? step(x) : 0;
    call.gemm.stride_y = split.inner > 1 ? step(y) : 0;
    call.gemm.stride_c = split.inner > 1 ? rows * cols : 0;
    call.x = x.buf;
    call.y = y.buf;
    call.c = c;
    call.x_offset = first(x, o);
    call.y_offset = first(y, o);
    call.c_offset = o * split.inner * rows * cols;
    calls->push_back(call);
  }
}

inline GemmCall Single(int64_t rows, int64_t cols, int64_t inner, MatBuf x,
                       bool tx, int64_t ldx, MatBuf y, bool ty, int64_t ldy) {
  GemmCall call;
  call.gemm.rows = rows;
  call.gemm.cols = cols;
  call.gemm.inner = inner;
  call.gemm.tx = tx;
  call.gemm.ty = ty;
  call.gemm.ldx = ldx;
  call.gemm.ldy = ldy;
  call.gemm.ldc = cols;
  call.x = x;
  call.y = y;
  call.c = MatBuf::kOut;
  return call;
}

// The reduction of per-batch products (batch..., mat) in the workspace to
// the target (batch_x..., mat), summing over the dims where x broadcasts.
inline BroadcastReduce ReduceOver(const std::vector<int64_t>& batch_x,
                                  const std::vector<int64_t>& batch,
                                  int64_t mat) {
  const size_t nb = batch.size();
  const std::vector<int64_t> px = PadBatch(batch_x, nb);
  BroadcastReduce r;
  r.outer = NumelOf(batch_x);
  r.mat = mat;
  int64_t stride = 1;  // row-major matrix strides of the work buffer
  std::vector<int64_t> strides(nb, 0);
  for (size_t d = nb; d-- > 0;) {
    strides[d] = stride;
    stride *= batch[d];
  }
  for (size_t d = 0; d < nb; ++d) {
    if (batch[d] == 1) continue;
    if (px[d] == batch[d]) {
      r.keep_size[r.nkeep] = batch[d];
      r.keep_stride[r.nkeep++] = strides[d];
    } else {
      r.red_size[r.nred] = batch[d];
      r.red_stride[r.nred++] = strides[d];
    }
  }
  return r;
}

}  // namespace matmul_internal

// out (batch..., N, M) = op(a) @ op(b).
inline MatmulPlan MatmulForwardPlan(const MatmulShape& s) {
  using matmul_internal::Operand;
  MatmulPlan plan;
  const int64_t batch = NumelOf(s.batch);
  if (batch * s.n * s.m == 0) return plan;
  if (s.k == 0) {
    plan.zero_target = true;
    return plan;
  }
  if (FoldsBatch(s)) {
    plan.calls.push_back(
        matmul_internal::Single(batch * s.n, s.m, s.k, MatBuf::kA, false, s.k,
                                MatBuf::kB, s.transpose_b, LdB(s)));
    return plan;
  }
  const BatchSplit split = SplitBatch(s);
  matmul_internal::AddSplitCalls(
      split, s.n, s.m, s.k,
      Operand{MatBuf::kA, s.transpose_a, LdA(s), s.n * s.k, 1},
      Operand{MatBuf::kB, s.transpose_b, LdB(s), s.k * s.m, 2}, MatBuf::kOut,
      &plan.calls);
  return plan;
}

// grad_a (a's shape) = dL/da: per batch, g op(b)^T (N, K), or op(b) g^T
// (K, N) when a is transposed; summed over the batch dims a broadcasts.
inline MatmulPlan MatmulGradAPlan(const MatmulShape& s) {
  using matmul_internal::Operand;
  MatmulPlan plan;
  const int64_t batch = NumelOf(s.batch), mat = s.n * s.k;
  if (NumelOf(s.batch_a) * mat == 0) return plan;
  if (batch == 0 || s.m == 0) {
    plan.zero_target = true;
    return plan;
  }
  if (FoldsBatch(s)) {  // (batch * N, K) = g (batch * N, M) @ op(b)^T
    plan.calls.push_back(
        matmul_internal::Single(batch * s.n, s.k, s.m, MatBuf::kGrad, false,
                                s.m, MatBuf::kB, !s.transpose_b, LdB(s)));
    return plan;
  }
  const bool full = NumelOf(s.batch_a) == batch;
  const MatBuf c = full ? MatBuf::kOut : MatBuf::kWork;
  const BatchSplit split = SplitBatch(s);
  const Operand g{MatBuf::kGrad, false, s.m, s.n * s.m, 0};
  if (!s.transpose_a)  // (N, K) = g (N, M) @ op(b)^T
    matmul_internal::AddSplitCalls(
        split, s.n, s.k, s.m, g,
        Operand{MatBuf::kB, !s.transpose_b, LdB(s), s.k * s.m, 2}, c,
        &plan.calls);
  else  // (K, N) = op(b) (K, M) @ g^T
    matmul_internal::AddSplitCalls(
        split, s.k, s.n, s.m,
        Operand{MatBuf::kB, s.transpose_b, LdB(s), s.k * s.m, 2},
        Operand{MatBuf::kGrad, true, s.m, s.n * s.m, 0}, c, &plan.calls);
  if (!full) {
    plan.reduce = true;
    plan.reduction = matmul_internal::ReduceOver(s.batch_a, s.batch, mat);
    plan.work_elems = batch * mat;
  }
  return plan;
}

// grad_b (b's shape) = dL/db: per batch, op(a)^T g (K, M), or g^T op(a)
// (M, K) when b is transposed; summed over the batch dims b broadcasts.
inline MatmulPlan MatmulGradBPlan(const MatmulShape& s) {
  using matmul_internal::Operand;
  MatmulPlan plan;
  const int64_t batch = NumelOf(s.batch), mat = s.k * s.m;
  if (NumelOf(s.batch_b) * mat == 0) return plan;
  if (batch == 0 || s.n == 0) {
    plan.zero_target = true;
    return plan;
  }
  if (FoldsBatch(s)) {  // the batch runs inside the inner dim
    const int64_t rows = batch * s.n;
    if (!s.transpose_b)  // (K, M) = a^T (K, rows) @ g (rows, M)
      plan.calls.push_back(matmul_internal::Single(
          s.k, s.m, rows, MatBuf::kA, true, s.k, MatBuf::kGrad, false, s.m));
    else  // (M, K) = g^T (M, rows) @ a (rows, K)
      plan.calls.push_back(matmul_internal::Single(
          s.m, s.k, rows, MatBuf::kGrad, true, s.m, MatBuf::kA, false, s.k));
    return plan;
  }
  const bool full = NumelOf(s.batch_b) == batch;
  const MatBuf c = full ? MatBuf::kOut : MatBuf::kWork;
  const BatchSplit split = SplitBatch(s);
  const Operand g{MatBuf::kGrad, false, s.m, s.n * s.m, 0};
  if (!s.transpose_b)  // (K, M) = op(a)^T (K, N) @ g (N, M)
    matmul_internal::AddSplitCalls(
        split, s.k, s.m, s.n,
        Operand{MatBuf::kA, !s.transpose_a, LdA(s), s.n * s.k, 1}, g, c,
        &plan.calls);
  else  // (M, K) = g^T (M, N) @ op(a) (N, K)
    matmul_internal::AddSplitCalls(
        split, s.m, s.k, s.n, Operand{MatBuf::kGrad, true, s.m, s.n * s.m, 0},
        Operand{MatBuf::kA, s.transpose_a, LdA(s), s.n * s.k, 1}, c,
        &plan.calls);
  if (!full) {
    plan.reduce = true;
    plan.reduction = matmul_internal::ReduceOver(s.batch_b, s.batch, mat);
    plan.work_elems = batch * mat;
  }
  return plan;
}

// The workspace a matmul call asks for (elements): what either gradient
// needs (they run one after the other on one stream, so they share it).
inline int64_t MatmulWorkspaceElems(const MatmulShape& s) {
  const int64_t a = MatmulGradAPlan(s).work_elems;
  const int64_t b = MatmulGradBPlan(s).work_elems;
  return a > b ? a : b;
}

// ---- linear: x (rows, K) @ weight (M, K)^T + bias (M) ----

// out (rows, M) = x @ weight^T.
inline RowGemm LinearForwardGemm(int64_t rows, int64_t k, int64_t m) {
  RowGemm g;
  g.rows = rows;
  g.cols = m;
  g.inner = k;
  g.tx = false;
  g.ty = true;
  g.ldx = k;
  g.ldy = k;
  g.ldc = m;
  return g;
}

// grad_x (rows, K) = g (rows, M) @ weight (M, K).
inline RowGemm LinearGradXGemm(int64_t rows, int64_t k, int64_t m) {
  RowGemm g;
  g.rows = rows;
  g.cols = k;
  g.inner = m;
  g.ldx = m;
  g.ldy = k;
  g.ldc = k;
  return g;
}

// grad_weight (M, K) = g^T (M, rows) @ x (rows, K). In cuBLASLt's form g is
// operand B (transposed) and D has M columns, so CUBLASLT_EPILOGUE_BGRADB
// sums op(B) over the inner dim (rows): grad_bias = column sums of g.
inline RowGemm LinearGradWGemm(int64_t rows, int64_t k, int64_t m) {
  RowGemm g;
  g.rows = m;
  g.cols = k;
  g.inner = rows;
  g.tx = true;
  g.ldx = m;
  g.ldy = k;
  g.ldc = k;
  return g;
}

// grad_bias (M) = the column sums of g (rows, M), as a BroadcastReduce.
inline BroadcastReduce ColumnSums(int64_t rows, int64_t m) {
  BroadcastReduce r;
  r.outer = 1;
  r.mat = m;
  r.nred = 1;
  r.red_size[0] = rows;
  r.red_stride[0] = 1;
  return r;
}

// ---- launchers (cuda/matmul.cu) ----

// Sets `bytes` bytes at `p` to zero (float zeros in every dtype).
cudaError_t LaunchMatmulZero(void* p, int64_t bytes, cudaStream_t stream);

// out (rows, M) = bias (M) in every row.
cudaError_t LaunchBiasRows(DType t, void* out, const void* bias, int64_t rows,
                           int64_t m, cudaStream_t stream);

// target = the sums `spec` describes over `work`, accumulated in float
// (double for kF64) in a fixed order, rounded once.
cudaError_t LaunchBroadcastReduce(DType t, void* target, const void* work,
                                  const BroadcastReduce& spec,
                                  cudaStream_t stream);

}  // namespace llmsys::cuda

#endif  // LLMSYS_CUDA_MATMUL_H_
