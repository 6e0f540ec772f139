// matmul.cublas and linear.cublas without a GPU: the row-major ->
// cuBLASLt mapping and the batch plans of cuda/matmul.h, run through a
// column-major GEMM written from cuBLASLt's documented semantics
// (CUBLASLT_ORDER_COL: element (r, c) of batch matrix i at
// i * stride + r + c * ld; op(X) = X^T when its CUBLAS_OP_T flag is set),
// and checked against a plain row-major product, forward and both
// gradients, for every transpose and broadcast pattern. Values are small
// integers, so every sum is exact and the checks are equalities.
//
// The components need cuBLASLt, which has no CPU emulation: their argument
// checks and workspace run here on the plugin built with nvcc (skipped in
// a build without CUDA), their results in gpu_test.
#include "cuda/matmul.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "framework/runtime/operator_call.h"
#include "framework/runtime/registry.h"
#include "framework/tensor/tensor.h"
#include "tests/cuda/cuda_test_util.h"

namespace llmsys::cuda {
namespace {

using Vec = std::vector<double>;
using Shape = std::vector<int64_t>;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string Str(const Shape& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i)
    out += (i ? ", " : "") + std::to_string(s[i]);
  return out + ")";
}

Vec Random(int64_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> dist(-4, 4);
  Vec v(static_cast<size_t>(n));
  for (double& x : v) x = dist(gen);
  return v;
}

// A buffer with its size, so the reference GEMM checks every access.
struct Buf {
  double* data;
  int64_t size;
};

// cuBLASLt's D = op(A) op(B) (+ D when accumulate), column-major, with the
// checks cuBLASLt makes of a layout: op(A) is m x k, op(B) k x n, D m x n,
// every ld at least its layout's rows, dims positive, batch matrices of D
// not overlapping, every access inside its buffer.
void LtReference(const LtGemm& g, Buf a, Buf b, Buf d, bool accumulate) {
  ASSERT_GT(g.m, 0);
  ASSERT_GT(g.n, 0);
  ASSERT_GT(g.k, 0);
  ASSERT_GE(g.batch, 1);
  ASSERT_EQ(g.a.rows, g.trans_a ? g.k : g.m);
  ASSERT_EQ(g.a.cols, g.trans_a ? g.m : g.k);
  ASSERT_EQ(g.b.rows, g.trans_b ? g.n : g.k);
  ASSERT_EQ(g.b.cols, g.trans_b ? g.k : g.n);
  ASSERT_EQ(g.d.rows, g.m);
  ASSERT_EQ(g.d.cols, g.n);
  for (const LtLayout* l : {&g.a, &g.b, &g.d}) {
    ASSERT_GE(l->ld, l->rows);
    ASSERT_GE(l->stride, 0);
  }
  if (g.batch > 1) {
    ASSERT_GE(g.d.stride, g.d.ld * g.d.cols);
  }
  auto at = [](const LtLayout& l, Buf buf, int64_t i, int64_t r,
               int64_t c) -> double& {
    const int64_t e = i * l.stride + r + c * l.ld;
    EXPECT_TRUE(e >= 0 && e < buf.size)
        << "element " << e << " of " << buf.size;
    return buf.data[e >= 0 && e < buf.size ? e : 0];
  };
  for (int64_t i = 0; i < g.batch; ++i)
    for (int64_t r = 0; r < g.m; ++r)
      for (int64_t c = 0; c < g.n; ++c) {
        double s = accumulate ? at(g.d, d, i, r, c) : 0.0;
        for (int64_t p = 0; p < g.k; ++p)
          s += (g.trans_a ? at(g.a, a, i, p, r) : at(g.a, a, i, r, p)) *
               (g.trans_b ? at(g.b, b, i, c, p) : at(g.b, b, i, p, c));
        at(g.d, d, i, r, c) = s;
      }
}

// BroadcastReduce as cuda/matmul.h defines it (the kernel's loop).
void ReduceReference(const BroadcastReduce& r, const Vec& work, Vec* target) {
  ASSERT_EQ(static_cast<int64_t>(target->size()), r.outer * r.mat);
  int64_t count = 1;
  for (int d = 0; d < r.nred; ++d) count *= r.red_size[d];
  for (int64_t o = 0; o < r.outer; ++o) {
    int64_t base = 0, rest = o;
    for (int d = r.nkeep - 1; d >= 0; --d) {
      base += (rest % r.keep_size[d]) * r.keep_stride[d];
      rest /= r.keep_size[d];
    }
    for (int64_t e = 0; e < r.mat; ++e) {
      double s = 0;
      for (int64_t q = 0; q < count; ++q) {
        int64_t off = 0, x = q;
        for (int d = r.nred - 1; d >= 0; --d) {
          off += (x % r.red_size[d]) * r.red_stride[d];
          x /= r.red_size[d];
        }
        const int64_t idx = (base + off) * r.mat + e;
        EXPECT_TRUE(idx >= 0 && idx < static_cast<int64_t>(work.size()));
        s += work[static_cast<size_t>(idx)];
      }
      (*target)[static_cast<size_t>(o * r.mat + e)] = s;
    }
  }
}

// Runs a plan on the CPU: the GEMMs through LtGemmOf and LtReference, then
// the reduction. `target` starts as NaN so that unwritten elements show.
void RunPlan(const MatmulPlan& plan, Vec a, Vec b, Vec g, Vec* target) {
  std::fill(target->begin(), target->end(), kNaN);
  if (plan.zero_target) {
    std::fill(target->begin(), target->end(), 0.0);
    return;
  }
  Vec work(static_cast<size_t>(plan.work_elems), kNaN);
  auto buf = [&](MatBuf which, int64_t offset) -> Buf {
    Vec* v = which == MatBuf::kA      ? &a
             : which == MatBuf::kB    ? &b
             : which == MatBuf::kGrad ? &g
             : which == MatBuf::kOut  ? target
                                      : &work;
    EXPECT_LE(offset, static_cast<int64_t>(v->size()));
    return {v->data() + offset, static_cast<int64_t>(v->size()) - offset};
  };
  for (const GemmCall& c : plan.calls) {
    const LtGemm lt = LtGemmOf(c.gemm);
    // cuBLASLt's A is the row-major Y, its B the row-major X.
    LtReference(lt, buf(c.y, c.y_offset), buf(c.x, c.x_offset),
                buf(c.c, c.c_offset), false);
  }
  if (plan.reduce) ReduceReference(plan.reduction, work, target);
}

// ---- the row-major truth ----

int64_t Numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

// Batch dims of out, and for each out batch the index of a's (b's) matrix.
std::vector<int64_t> BroadcastIndex(const Shape& x, const Shape& batch) {
  const Shape px = PadBatch(x, batch.size());
  std::vector<int64_t> idx;
  Shape pos(batch.size(), 0);
  for (int64_t i = 0; i < Numel(batch); ++i) {
    int64_t off = 0, stride = 1;
    for (size_t d = batch.size(); d-- > 0;) {
      off += (px[d] == 1 ? 0 : pos[d]) * stride;
      stride *= px[d];
    }
    idx.push_back(off);
    for (size_t d = batch.size(); d-- > 0;) {
      if (++pos[d] < batch[d]) break;
      pos[d] = 0;
    }
  }
  return idx;
}

struct Case {
  Shape batch_a, batch_b;
  int64_t n, k, m;
  bool ta, tb;
};

MatmulShape ShapeOf(const Case& c) {
  MatmulShape s;
  s.batch_a = c.batch_a;
  s.batch_b = c.batch_b;
  const size_t nb = std::max(c.batch_a.size(), c.batch_b.size());
  const Shape pa = PadBatch(c.batch_a, nb), pb = PadBatch(c.batch_b, nb);
  for (size_t d = 0; d < nb; ++d) s.batch.push_back(pa[d] == 1 ? pb[d] : pa[d]);
  s.n = c.n;
  s.k = c.k;
  s.m = c.m;
  s.transpose_a = c.ta;
  s.transpose_b = c.tb;
  return s;
}

// op(x)[r][c] of one stored matrix (rows, cols) of op(x).
double Op(const double* x, bool t, int64_t rows, int64_t cols, int64_t r,
          int64_t c) {
  return t ? x[c * rows + r] : x[r * cols + c];
}
double& OpRef(double* x, bool t, int64_t rows, int64_t cols, int64_t r,
              int64_t c) {
  return t ? x[c * rows + r] : x[r * cols + c];
}

struct Truth {
  Vec out, ga, gb;
};

Truth Expected(const MatmulShape& s, const Vec& a, const Vec& b, const Vec& g) {
  const std::vector<int64_t> ia = BroadcastIndex(s.batch_a, s.batch);
  const std::vector<int64_t> ib = BroadcastIndex(s.batch_b, s.batch);
  Truth t;
  t.out.assign(static_cast<size_t>(Numel(s.batch) * s.n * s.m), 0.0);
  t.ga.assign(static_cast<size_t>(Numel(s.batch_a) * s.n * s.k), 0.0);
  t.gb.assign(static_cast<size_t>(Numel(s.batch_b) * s.k * s.m), 0.0);
  for (size_t i = 0; i < ia.size(); ++i) {
    const double* pa = a.data() + ia[i] * s.n * s.k;
    const double* pb = b.data() + ib[i] * s.k * s.m;
    const double* pg = g.data() + static_cast<int64_t>(i) * s.n * s.m;
    double* po = t.out.data() + static_cast<int64_t>(i) * s.n * s.m;
    double* qa = t.ga.data() + ia[i] * s.n * s.k;
    double* qb = t.gb.data() + ib[i] * s.k * s.m;
    for (int64_t n = 0; n < s.n; ++n)
      for (int64_t m = 0; m < s.m; ++m)
        for (int64_t k = 0; k < s.k; ++k) {
          const double av = Op(pa, s.transpose_a, s.n, s.k, n, k);
          const double bv = Op(pb, s.transpose_b, s.k, s.m, k, m);
          po[n * s.m + m] += av * bv;
          OpRef(qa, s.transpose_a, s.n, s.k, n, k) += pg[n * s.m + m] * bv;
          OpRef(qb, s.transpose_b, s.k, s.m, k, m) += av * pg[n * s.m + m];
        }
  }
  return t;
}

void ExpectSame(const Vec& got, const Vec& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_EQ(got[i], want[i]) << what << " element " << i;
}

void CheckCase(const Case& c) {
  const MatmulShape s = ShapeOf(c);
  const std::string what =
      "a batch " + Str(c.batch_a) + " b batch " + Str(c.batch_b) +
      " N=" + std::to_string(c.n) + " K=" + std::to_string(c.k) +
      " M=" + std::to_string(c.m) + (c.ta ? " transpose_a" : "") +
      (c.tb ? " transpose_b" : "");
  SCOPED_TRACE(what);
  const Vec a = Random(Numel(s.batch_a) * s.n * s.k, 1);
  const Vec b = Random(Numel(s.batch_b) * s.k * s.m, 2);
  const Vec g = Random(Numel(s.batch) * s.n * s.m, 3);
  const Truth t = Expected(s, a, b, g);
  Vec out(t.out.size()), ga(t.ga.size()), gb(t.gb.size());
  const MatmulPlan fwd = MatmulForwardPlan(s);
  const MatmulPlan pa = MatmulGradAPlan(s);
  const MatmulPlan pb = MatmulGradBPlan(s);
  EXPECT_EQ(fwd.work_elems, 0);  // forward never needs the workspace
  EXPECT_LE(pa.work_elems, MatmulWorkspaceElems(s));
  EXPECT_LE(pb.work_elems, MatmulWorkspaceElems(s));
  RunPlan(fwd, a, b, {}, &out);
  ExpectSame(out, t.out, "out");
  RunPlan(pa, a, b, g, &ga);
  ExpectSame(ga, t.ga, "grad_a");
  RunPlan(pb, a, b, g, &gb);
  ExpectSame(gb, t.gb, "grad_b");
}

// ---- the mapping ----

TEST(MatmulLayoutTest, RowMajorProductIsTheTransposedColumnMajorOne) {
  RowGemm g;  // C (2, 3) = X (2, 4) @ Y (4, 3)
  g.rows = 2;
  g.cols = 3;
  g.inner = 4;
  g.ldx = 4;
  g.ldy = 3;
  g.ldc = 3;
  const LtGemm lt = LtGemmOf(g);
  EXPECT_EQ(lt.m, 3);  // D = C^T (3, 2)
  EXPECT_EQ(lt.n, 2);
  EXPECT_EQ(lt.k, 4);
  EXPECT_FALSE(lt.trans_a);
  EXPECT_FALSE(lt.trans_b);
  EXPECT_EQ(lt.a.rows, 3);  // Y read column-major: (3, 4), ld 3
  EXPECT_EQ(lt.a.cols, 4);
  EXPECT_EQ(lt.a.ld, 3);
  EXPECT_EQ(lt.b.rows, 4);  // X read column-major: (4, 2), ld 4
  EXPECT_EQ(lt.b.cols, 2);
  EXPECT_EQ(lt.b.ld, 4);
  EXPECT_EQ(lt.d.rows, 3);
  EXPECT_EQ(lt.d.cols, 2);
  EXPECT_EQ(lt.d.ld, 3);
}

TEST(MatmulLayoutTest, EveryTransposeAndLeadingDimension) {
  for (bool tx : {false, true})
    for (bool ty : {false, true})
      for (int64_t pad : {0, 2}) {  // row strides wider than the rows
        SCOPED_TRACE(std::string("tx=") + (tx ? "1" : "0") +
                     " ty=" + (ty ? "1" : "0") + " pad=" + std::to_string(pad));
        const int64_t rows = 3, cols = 5, inner = 2;
        RowGemm g;
        g.rows = rows;
        g.cols = cols;
        g.inner = inner;
        g.tx = tx;
        g.ty = ty;
        g.ldx = (tx ? rows : inner) + pad;  // X stored (inner, rows) if tx
        g.ldy = (ty ? inner : cols) + pad;  // Y stored (cols, inner) if ty
        g.ldc = cols + pad;
        const int64_t xrows = tx ? inner : rows, yrows = ty ? cols : inner;
        Vec x = Random(xrows * g.ldx, 4), y = Random(yrows * g.ldy, 5);
        Vec c(static_cast<size_t>(rows * g.ldc), 0.0);
        LtReference(LtGemmOf(g), {y.data(), static_cast<int64_t>(y.size())},
                    {x.data(), static_cast<int64_t>(x.size())},
                    {c.data(), static_cast<int64_t>(c.size())}, false);
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t q = 0; q < cols; ++q) {
            double want = 0;
            for (int64_t p = 0; p < inner; ++p)
              want += (tx ? x[p * g.ldx + r] : x[r * g.ldx + p]) *
                      (ty ? y[q * g.ldy + p] : y[p * g.ldy + q]);
            EXPECT_EQ(c[r * g.ldc + q], want) << r << ", " << q;
          }
      }
}

TEST(MatmulLayoutTest, BatchStridesCarryOverAndZeroBroadcasts) {
  RowGemm g;
  g.rows = 2;
  g.cols = 2;
  g.inner = 3;
  g.ldx = 3;
  g.ldy = 2;
  g.ldc = 2;
  g.batch = 4;
  g.stride_x = 6;
  g.stride_y = 0;  // one Y for every batch
  g.stride_c = 4;
  const LtGemm lt = LtGemmOf(g);
  EXPECT_EQ(lt.batch, 4);
  EXPECT_EQ(lt.a.stride, 0);
  EXPECT_EQ(lt.b.stride, 6);
  EXPECT_EQ(lt.d.stride, 4);
}

// ---- the plans ----

TEST(MatmulPlanTest, EveryTransposeAndBroadcastPattern) {
  const std::vector<std::pair<Shape, Shape>> batches = {
      {{}, {}},
      {{3}, {3}},
      {{2, 3}, {}},
      {{}, {4}},
      {{2, 1}, {1, 3}},
      {{2, 3}, {3}},
      {{2, 3}, {2, 1}},
      {{1, 3, 1}, {2, 1, 4}},
      {{5, 1, 2}, {5, 3, 1}},
      {{2, 1, 3}, {1}},
      {{1}, {2, 3}},
      {{3, 1}, {}},
      {{2, 2, 1}, {2, 1, 3}},
      {{1, 1}, {1}},
  };
  const std::vector<std::array<int64_t, 3>> sizes = {
      {2, 3, 4}, {1, 1, 1}, {3, 1, 2}, {1, 5, 1}};
  for (const auto& [ba, bb] : batches)
    for (const auto& [n, k, m] : sizes)
      for (bool ta : {false, true})
        for (bool tb : {false, true}) CheckCase({ba, bb, n, k, m, ta, tb});
}

TEST(MatmulPlanTest, EmptyDimsGiveZerosOrNothing) {
  const std::vector<std::pair<Shape, Shape>> batches = {
      {{}, {}},  {{2}, {}},  {{2, 1}, {1, 3}},
      {{0}, {}}, {{1}, {0}}, {{2, 0}, {1}}};
  const std::vector<std::array<int64_t, 3>> sizes = {
      {2, 0, 3}, {0, 2, 3}, {2, 3, 0}, {2, 3, 4}};
  for (const auto& [ba, bb] : batches)
    for (const auto& [n, k, m] : sizes)
      for (bool ta : {false, true})
        for (bool tb : {false, true}) CheckCase({ba, bb, n, k, m, ta, tb});
}

TEST(MatmulPlanTest, ASharedWeightFoldsTheBatchIntoOneGemm) {
  const MatmulShape s = ShapeOf({{4, 5}, {}, 3, 6, 7, false, true});
  ASSERT_TRUE(FoldsBatch(s));
  const MatmulPlan fwd = MatmulForwardPlan(s);
  ASSERT_EQ(fwd.calls.size(), 1u);
  EXPECT_EQ(fwd.calls[0].gemm.rows, 4 * 5 * 3);
  EXPECT_EQ(fwd.calls[0].gemm.batch, 1);
  // The weight's gradient: one GEMM whose inner dim runs over the batch,
  // no workspace.
  const MatmulPlan gb = MatmulGradBPlan(s);
  ASSERT_EQ(gb.calls.size(), 1u);
  EXPECT_EQ(gb.calls[0].gemm.inner, 4 * 5 * 3);
  EXPECT_FALSE(gb.reduce);
  EXPECT_EQ(MatmulWorkspaceElems(s), 0);
  // A transposed a cannot fold its batch into rows.
  EXPECT_FALSE(FoldsBatch(ShapeOf({{4, 5}, {}, 3, 6, 7, true, true})));
}

TEST(MatmulPlanTest, FullBatchesAreOneStridedGemm) {
  const MatmulShape s = ShapeOf({{2, 3}, {2, 3}, 4, 5, 6, false, false});
  const MatmulPlan fwd = MatmulForwardPlan(s);
  ASSERT_EQ(fwd.calls.size(), 1u);
  const RowGemm& g = fwd.calls[0].gemm;
  EXPECT_EQ(g.batch, 6);
  EXPECT_EQ(g.stride_x, 4 * 5);
  EXPECT_EQ(g.stride_y, 5 * 6);
  EXPECT_EQ(g.stride_c, 4 * 6);
  EXPECT_EQ(MatmulWorkspaceElems(s), 0);
}

TEST(MatmulPlanTest, BroadcastOverAllBatchesIsStrideZero) {
  // a (N, K) shared, b one per batch: stride 0 for a, and a's gradient is
  // summed from the workspace.
  const MatmulShape s = ShapeOf({{}, {6}, 2, 3, 4, false, false});
  const MatmulPlan fwd = MatmulForwardPlan(s);
  ASSERT_EQ(fwd.calls.size(), 1u);
  EXPECT_EQ(fwd.calls[0].gemm.batch, 6);
  EXPECT_EQ(fwd.calls[0].gemm.stride_x, 0);
  const MatmulPlan ga = MatmulGradAPlan(s);
  EXPECT_TRUE(ga.reduce);
  EXPECT_EQ(ga.work_elems, 6 * 2 * 3);
  EXPECT_EQ(ga.reduction.outer, 1);
  EXPECT_EQ(ga.reduction.nred, 1);
  EXPECT_EQ(ga.reduction.red_size[0], 6);
  EXPECT_EQ(MatmulWorkspaceElems(s), 6 * 2 * 3);
}

TEST(MatmulPlanTest, MixedBroadcastsSplitIntoOuterCallsOfInnerBatches) {
  // a (2, 1), b (1, 3): the inner dim (3) is broadcast for a and full for
  // b; the outer dim (2) full for a, broadcast for b: 2 calls of 3.
  const MatmulShape s = ShapeOf({{2, 1}, {1, 3}, 2, 2, 2, false, false});
  const BatchSplit split = SplitBatch(s);
  EXPECT_EQ(split.outer, 2);
  EXPECT_EQ(split.inner, 3);
  EXPECT_EQ(split.inner_a, 0);
  EXPECT_EQ(split.inner_b, 1);
  EXPECT_EQ(split.outer_a, (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(split.outer_b, (std::vector<int64_t>{0, 0}));
  EXPECT_EQ(MatmulForwardPlan(s).calls.size(), 2u);
  // Size-1 batch dims never split anything.
  const BatchSplit ones =
      SplitBatch(ShapeOf({{1, 4, 1}, {4, 1}, 2, 2, 2, false, false}));
  EXPECT_EQ(ones.outer, 1);
  EXPECT_EQ(ones.inner, 4);
}

TEST(MatmulPlanTest, TheReductionKeepsAFixedOrderOverBroadcastDims) {
  // grad of b (1, 3) from batch (2, 3): kept dim 3 (stride 1), reduced dim
  // 2 (stride 3).
  const MatmulShape s = ShapeOf({{2, 3}, {1, 3}, 2, 2, 2, true, false});
  const MatmulPlan gb = MatmulGradBPlan(s);
  ASSERT_TRUE(gb.reduce);
  EXPECT_EQ(gb.reduction.outer, 3);
  EXPECT_EQ(gb.reduction.nkeep, 1);
  EXPECT_EQ(gb.reduction.keep_size[0], 3);
  EXPECT_EQ(gb.reduction.keep_stride[0], 1);
  EXPECT_EQ(gb.reduction.nred, 1);
  EXPECT_EQ(gb.reduction.red_size[0], 2);
  EXPECT_EQ(gb.reduction.red_stride[0], 3);
}

// ---- linear ----

TEST(LinearLayoutTest, ForwardAndBothGradientsAreTheProducts) {
  const int64_t rows = 5, k = 3, m = 4;
  const Vec x = Random(rows * k, 6), w = Random(m * k, 7),
            g = Random(rows * m, 8);
  auto run = [](const RowGemm& gemm, Vec xs, Vec ys, int64_t c_elems) {
    Vec c(static_cast<size_t>(c_elems), kNaN);
    LtReference(LtGemmOf(gemm), {ys.data(), static_cast<int64_t>(ys.size())},
                {xs.data(), static_cast<int64_t>(xs.size())},
                {c.data(), static_cast<int64_t>(c.size())}, false);
    return c;
  };
  const Vec out = run(LinearForwardGemm(rows, k, m), x, w, rows * m);
  const Vec gx = run(LinearGradXGemm(rows, k, m), g, w, rows * k);
  const Vec gw = run(LinearGradWGemm(rows, k, m), g, x, m * k);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < m; ++j) {
      double want = 0;
      for (int64_t p = 0; p < k; ++p) want += x[r * k + p] * w[j * k + p];
      EXPECT_EQ(out[r * m + j], want);
    }
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t p = 0; p < k; ++p) {
      double want = 0;
      for (int64_t j = 0; j < m; ++j) want += g[r * m + j] * w[j * k + p];
      EXPECT_EQ(gx[r * k + p], want);
    }
  for (int64_t j = 0; j < m; ++j)
    for (int64_t p = 0; p < k; ++p) {
      double want = 0;
      for (int64_t r = 0; r < rows; ++r) want += g[r * m + j] * x[r * k + p];
      EXPECT_EQ(gw[j * k + p], want);
    }
  Vec gbias(static_cast<size_t>(m), kNaN);
  ReduceReference(ColumnSums(rows, m), g, &gbias);
  for (int64_t j = 0; j < m; ++j) {
    double want = 0;
    for (int64_t r = 0; r < rows; ++r) want += g[r * m + j];
    EXPECT_EQ(gbias[j], want);
  }
}

TEST(LinearLayoutTest, TheEpiloguesSeeTheBiasAlongTheRightDim) {
  const int64_t rows = 7, k = 3, m = 5;
  // CUBLASLT_EPILOGUE_BIAS adds a vector as long as D's rows: M.
  const LtGemm fwd = LtGemmOf(LinearForwardGemm(rows, k, m));
  EXPECT_EQ(fwd.d.rows, m);
  EXPECT_EQ(fwd.d.cols, rows);
  EXPECT_TRUE(fwd.trans_a);  // the weight (M, K) row-major, transposed
  EXPECT_FALSE(fwd.trans_b);
  // CUBLASLT_EPILOGUE_BGRADB sums op(B) over k into a vector as long as
  // D's columns: B must be g (op(B) = g, rows x M), k the rows, n = M.
  const LtGemm gw = LtGemmOf(LinearGradWGemm(rows, k, m));
  EXPECT_EQ(gw.n, m);
  EXPECT_EQ(gw.k, rows);
  EXPECT_TRUE(gw.trans_b);
  EXPECT_EQ(gw.b.rows, m);  // g (rows, M) row-major read as (M, rows)
  EXPECT_EQ(gw.b.cols, rows);
  EXPECT_EQ(gw.b.ld, m);
}

// ---- the components' argument checks (the plugin built with nvcc) ----

// The real llmsys.cuda plugin, or nullptr in a build without CUDA. Its
// init() touches no GPU; tensors live on the emulated device.
const runtime::PluginRegistry* RealPlugin() {
  static const runtime::PluginRegistry* const registry =
      []() -> const runtime::PluginRegistry* {
    const std::filesystem::path file =
        std::filesystem::path(LLMSYS_BUILTIN_PLUGIN_DIR) / "cuda.so";
    if (!std::filesystem::exists(file)) return nullptr;
    cuda_test::EmulatedPlugin();  // installs the emulated cuda:0
    auto* r = new runtime::PluginRegistry;
    const absl::Status s = r->LoadFile(file);
    EXPECT_TRUE(s.ok()) << s;
    return r;
  }();
  return registry;
}

struct Inferred {
  std::vector<std::vector<int64_t>> shapes;
  size_t workspace = 0;
};

absl::StatusOr<Inferred> InferReal(
    const std::string& id,
    const std::vector<std::optional<cuda_test::FakeTensor>>& inputs,
    const runtime::AttrList& attrs = {}) {
  const runtime::PluginRegistry* registry = RealPlugin();
  absl::StatusOr<const runtime::Component*> c =
      registry->Find(LLMSYS_KIND_OPERATOR, id, kDLCUDA);
  if (!c.ok()) return c.status();
  const runtime::OpContract* contract = registry->FindOpContract((*c)->op);
  if (contract == nullptr) return absl::NotFoundError((*c)->op);
  absl::StatusOr<std::unique_ptr<runtime::OperatorImpl>> impl =
      runtime::OperatorImpl::Create(**c, *contract);
  if (!impl.ok()) return impl.status();
  std::vector<tensor::Tensor> in;
  for (const std::optional<cuda_test::FakeTensor>& f : inputs) {
    if (!f.has_value()) {
      in.emplace_back();
      continue;
    }
    absl::StatusOr<tensor::Tensor> t =
        tensor::Tensor::Empty(f->shape, f->dtype, cuda_test::kCuda0);
    if (!t.ok()) return t.status();
    in.push_back(*t);
  }
  absl::StatusOr<runtime::ParamPack> pack = (*impl)->Attrs(attrs);
  if (!pack.ok()) return pack.status();
  absl::StatusOr<runtime::OperatorImpl::InferResult> r =
      (*impl)->Infer(in, *pack);
  if (!r.ok()) return r.status();
  Inferred out;
  for (const runtime::TensorMeta& m : r->outputs) out.shapes.push_back(m.shape);
  out.workspace = r->workspace_bytes;
  return out;
}

#define LLMSYS_NEED_REAL_PLUGIN()                      \
  if (RealPlugin() == nullptr)                         \
  GTEST_SKIP() << "no llmsys.cuda built with nvcc in " \
               << LLMSYS_BUILTIN_PLUGIN_DIR << " (a build without CUDA)"

TEST(MatmulInferTest, ShapesAndTheBroadcastGradientsWorkspace) {
  LLMSYS_NEED_REAL_PLUGIN();
  using cuda_test::FakeTensor;
  const DLDataType f32 = tensor::kF32, bf16 = tensor::kBF16;
  absl::StatusOr<Inferred> r =
      InferReal("matmul.cublas",
                {FakeTensor{{2, 3, 4, 5}, f32}, FakeTensor{{5, 6}, f32}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->shapes[0], (std::vector<int64_t>{2, 3, 4, 6}));
  EXPECT_EQ(r->workspace, 0u);  // the shared weight folds: no workspace
  r = InferReal("matmul.cublas",
                {FakeTensor{{3, 5, 4}, f32}, FakeTensor{{3, 6, 5}, f32}},
                {{"transpose_a", true}, {"transpose_b", true}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->shapes[0], (std::vector<int64_t>{3, 4, 6}));
  // a (4, 1) and b (5) broadcast to (4, 5): either gradient needs the 20
  // per-batch products, in the dtype.
  r = InferReal("matmul.cublas",
                {FakeTensor{{4, 1, 2, 3}, bf16}, FakeTensor{{5, 3, 7}, bf16}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->shapes[0], (std::vector<int64_t>{4, 5, 2, 7}));
  EXPECT_EQ(r->workspace, 20u * 3 * 7 * 2);
}

TEST(MatmulInferTest, BadInputsNameTheProblem) {
  LLMSYS_NEED_REAL_PLUGIN();
  using cuda_test::FakeTensor;
  const DLDataType f32 = tensor::kF32;
  const std::vector<
      std::pair<std::vector<std::optional<FakeTensor>>, std::string>>
      bad = {
          {{FakeTensor{{2, 4, 5}, f32}, FakeTensor{{4, 6}, f32}},
           "inner dims differ"},
          {{FakeTensor{{5}, f32}, FakeTensor{{5, 6}, f32}}, "at least 2 dims"},
          {{FakeTensor{{2, 4, 5}, f32}, FakeTensor{{3, 5, 6}, f32}},
           "batch dims do not broadcast"},
          {{FakeTensor{{4, 5}, f32}, FakeTensor{{5, 6}, tensor::kF64}},
           "same dtype"},
          {{FakeTensor{{4, 5}, tensor::kI32}, FakeTensor{{5, 6}, tensor::kI32}},
           "must be float32"},
      };
  for (const auto& [in, says] : bad) {
    absl::StatusOr<Inferred> r = InferReal("matmul.cublas", in);
    ASSERT_FALSE(r.ok()) << says;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << says;
    EXPECT_NE(r.status().message().find(says), std::string::npos) << r.status();
  }
}

TEST(LinearInferTest, ShapesAndBadBias) {
  LLMSYS_NEED_REAL_PLUGIN();
  using cuda_test::FakeTensor;
  const DLDataType f16 = tensor::kF16;
  absl::StatusOr<Inferred> r = InferReal(
      "linear.cublas", {FakeTensor{{2, 3, 4}, f16}, FakeTensor{{5, 4}, f16},
                        FakeTensor{{5}, f16}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->shapes[0], (std::vector<int64_t>{2, 3, 5}));
  EXPECT_EQ(r->workspace, 0u);
  r = InferReal("linear.cublas", {FakeTensor{{2, 3, 4}, f16},
                                  FakeTensor{{5, 4}, f16}, std::nullopt});
  ASSERT_TRUE(r.ok()) << r.status();
  r = InferReal("linear.cublas",
                {FakeTensor{{2, 3, 4}, f16}, FakeTensor{{5, 4}, f16},
                 FakeTensor{{4}, f16}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("bias must be (5)"), std::string::npos)
      << r.status();
  r = InferReal("linear.cublas", {FakeTensor{{2, 3, 4}, f16},
                                  FakeTensor{{5, 3}, f16}, std::nullopt});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("weight (M, K)"), std::string::npos)
      << r.status();
}

TEST(MatmulInferTest, WithoutACublasLtHandleForwardSaysSo) {
  LLMSYS_NEED_REAL_PLUGIN();
  // The emulated device passes a stream but no cuBLASLt handle.
  const runtime::PluginRegistry* registry = RealPlugin();
  const runtime::Component* c =
      *registry->Find(LLMSYS_KIND_OPERATOR, "matmul.cublas", kDLCUDA);
  std::unique_ptr<runtime::OperatorImpl> impl =
      *runtime::OperatorImpl::Create(*c, *registry->FindOpContract("matmul"));
  const tensor::Tensor a =
      *tensor::Tensor::Zeros({2, 3}, tensor::kF32, cuda_test::kCuda0);
  const tensor::Tensor b =
      *tensor::Tensor::Zeros({3, 4}, tensor::kF32, cuda_test::kCuda0);
  absl::StatusOr<std::vector<tensor::Tensor>> out =
      impl->Forward({a, b}, *impl->Attrs({}), runtime::CallOptions{});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(out.status().message().find("no cuBLASLt handle"),
            std::string::npos)
      << out.status();
}

}  // namespace
}  // namespace llmsys::cuda
