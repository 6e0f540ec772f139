// sum.cuda, mean.cuda and max.cuda on the emulated device (tests/cuda/emu:
// cuda/reductions.cu compiled for the CPU, called through the plugin's host
// code): the strided walk's geometry and launch plans, the argument checks
// and workspace requests, and values and gradients against the reference's
// rules written out below in double (every plan kind, split plans, keepdim,
// empty groups, NaN, ties), for all four float dtypes.
#include "cuda/reductions.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "framework/tensor/tensor.h"
#include "tests/cuda/cuda_test_util.h"

namespace llmsys::cuda_test {
namespace {

using cuda::DType;
using cuda::MakeReduceGeom;
using cuda::PlanReduce;
using cuda::ReduceGeom;
using cuda::ReduceKind;
using cuda::ReducePlan;
using tensor::kBF16;
using tensor::kF16;
using tensor::kF32;
using tensor::kF64;
using tensor::kI32;
using tensor::Tensor;
using Shape = std::vector<int64_t>;
using Vec = std::vector<double>;

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();

ReduceGeom GeomOf(const Shape& x, const std::vector<bool>& reduced) {
  return MakeReduceGeom(x, reduced, {cuda::CompactStrides(x)});
}

// ---- geometry ----

TEST(ReduceGeomTest, NeighbourDimsMergeAndSizeOneDimsDrop) {
  // (2, 3, 4) over dim 1: kept (2 stride 12), (4 stride 1); reduced (3
  // stride 4).
  ReduceGeom g = GeomOf({2, 3, 4}, {false, true, false});
  EXPECT_EQ(g.k, 8);
  EXPECT_EQ(g.r, 3);
  ASSERT_EQ(g.kept.n, 2);
  EXPECT_EQ(g.kept.size[0], 2);
  EXPECT_EQ(g.kept.stride[0][0], 12);
  EXPECT_EQ(g.kept.size[1], 4);
  EXPECT_EQ(g.kept.stride[0][1], 1);
  ASSERT_EQ(g.red.n, 1);
  EXPECT_EQ(g.red.size[0], 3);
  EXPECT_EQ(g.red.stride[0][0], 4);
  // Over dims 0 and 1: one reduced dim of 6.
  g = GeomOf({2, 3, 4}, {true, true, false});
  ASSERT_EQ(g.red.n, 1);
  EXPECT_EQ(g.red.size[0], 6);
  EXPECT_EQ(g.red.stride[0][0], 4);
  ASSERT_EQ(g.kept.n, 1);
  // Everything: no kept dim, one reduced dim of 24 with stride 1.
  g = GeomOf({2, 3, 4}, {true, true, true});
  EXPECT_EQ(g.kept.n, 0);
  EXPECT_EQ(g.k, 1);
  ASSERT_EQ(g.red.n, 1);
  EXPECT_EQ(g.red.size[0], 24);
  EXPECT_EQ(g.red.stride[0][0], 1);
  // A size-1 reduced dim between kept ones: the kept ones merge.
  g = GeomOf({4, 1, 5}, {false, true, false});
  EXPECT_EQ(g.r, 1);
  ASSERT_EQ(g.kept.n, 1);
  EXPECT_EQ(g.kept.size[0], 20);
  EXPECT_EQ(g.red.n, 0);
  // An empty group or no outputs: nothing walked.
  g = GeomOf({3, 0}, {false, true});
  EXPECT_EQ(g.k, 3);
  EXPECT_EQ(g.r, 0);
  g = GeomOf({0, 3}, {false, true});
  EXPECT_EQ(g.k, 0);
}

TEST(ReduceGeomTest, BroadcastOperandsKeepTheirOwnStrides) {
  // x (2, 3) walked with a row (3) broadcast: the dims do not merge, the
  // row's stride along dim 0 is 0.
  const Shape x = {2, 3};
  const ReduceGeom g =
      MakeReduceGeom(x, {false, false},
                     {cuda::CompactStrides(x), cuda::BroadcastStrides({3}, x)});
  ASSERT_EQ(g.kept.n, 2);
  EXPECT_EQ(g.kept.stride[1][0], 0);
  EXPECT_EQ(g.kept.stride[1][1], 1);
  EXPECT_EQ(cuda::BroadcastStrides({2, 1, 4}, {3, 2, 5, 4}),
            (Shape{0, 4, 0, 1}));
  EXPECT_EQ(cuda::BroadcastStrides({}, {3, 2}), (Shape{0, 0}));
}

// ---- plans ----

// What every plan must satisfy: the splits cover [0, R) without an empty
// one, block sizes fit a GPU, trees get powers of two.
void ExpectConsistent(const ReduceGeom& g, const ReducePlan& p, int bytes) {
  if (g.k == 0) {
    EXPECT_EQ(p.kind, ReduceKind::kNone);
    return;
  }
  EXPECT_GE(p.blocks, 1);
  EXPECT_LE(p.blocks, cuda::kReduceMaxGrid);
  EXPECT_GE(p.threads, 32);
  EXPECT_LE(p.threads, 1024);
  if (p.kind == ReduceKind::kThread) {
    EXPECT_LE(g.r, cuda::kReduceThreadMaxR);
    EXPECT_EQ(p.workspace, 0u);
    return;
  }
  EXPECT_EQ(p.threads & (p.threads - 1), 0) << p.threads;
  EXPECT_GE(p.splits, 1);
  EXPECT_GE(p.splits * p.chunk, g.r);
  EXPECT_LT((p.splits - 1) * p.chunk, g.r);
  EXPECT_EQ(p.workspace,
            p.splits > 1 ? static_cast<size_t>(g.k * p.splits * bytes) : 0u);
  if (p.kind == ReduceKind::kCol) {
    EXPECT_EQ(p.width & (p.width - 1), 0);
    EXPECT_LE(p.width, 32);
    EXPECT_EQ(p.threads % p.width, 0);
  }
}

TEST(ReducePlanTest, KindsFollowTheLayout) {
  // A row sum (softmax-like rows): a block per row, no split.
  ReduceGeom g = GeomOf({8192, 768}, {false, true});
  ReducePlan p = PlanReduce(g, 4, true);
  EXPECT_EQ(p.kind, ReduceKind::kRow);
  EXPECT_EQ(p.splits, 1);
  EXPECT_EQ(p.threads, 128);
  ExpectConsistent(g, p, 4);
  // A bias gradient: columns, split over the rows into a workspace.
  g = GeomOf({8, 1024, 768}, {true, true, false});
  p = PlanReduce(g, 4, true);
  EXPECT_EQ(p.kind, ReduceKind::kCol);
  EXPECT_EQ(p.width, 32);
  EXPECT_EQ(p.tiles, 24);
  EXPECT_GT(p.splits, 1);
  ExpectConsistent(g, p, 4);
  // Without a workspace: one pass.
  p = PlanReduce(g, 4, false);
  EXPECT_EQ(p.splits, 1);
  EXPECT_EQ(p.workspace, 0u);
  ExpectConsistent(g, p, 4);
  // Three columns: tiles of 4.
  g = GeomOf({1000, 3}, {true, false});
  p = PlanReduce(g, 8, true);
  EXPECT_EQ(p.kind, ReduceKind::kCol);
  EXPECT_EQ(p.width, 4);
  ExpectConsistent(g, p, 8);
  // Short groups: a thread per output (R = 0 and R = 1 included).
  for (const Shape& x : {Shape{100, 16}, Shape{100, 1}, Shape{100, 0}}) {
    g = GeomOf(x, {false, true});
    p = PlanReduce(g, 4, true);
    EXPECT_EQ(p.kind, ReduceKind::kThread);
    ExpectConsistent(g, p, 4);
  }
  // No outputs.
  g = GeomOf({0, 100}, {false, true});
  EXPECT_EQ(PlanReduce(g, 4, true).kind, ReduceKind::kNone);
}

TEST(ReducePlanTest, AFullSumOfAHugeTensorSplitsIntoManyBlocks) {
  const ReduceGeom g = GeomOf({int64_t{1} << 33}, {true});  // 8 Gi elements
  const ReducePlan p = PlanReduce(g, 8, true);
  EXPECT_EQ(p.kind, ReduceKind::kRow);
  EXPECT_EQ(p.splits, cuda::kReduceMaxSplits);
  EXPECT_EQ(p.threads, cuda::kReduceRowMaxThreads);
  EXPECT_EQ(p.workspace, cuda::kReduceMaxSplits * 8u);
  ExpectConsistent(g, p, 8);
  // Many outputs of a huge tensor: the grid is capped (the kernels loop).
  const ReduceGeom many = GeomOf({int64_t{1} << 24, 64}, {false, true});
  const ReducePlan q = PlanReduce(many, 4, true);
  EXPECT_EQ(q.blocks, cuda::kReduceMaxGrid);
  ExpectConsistent(many, q, 4);
}

TEST(ReducePlanTest, PlansAreConsistentForManyShapes) {
  std::mt19937 gen(7);
  for (int trial = 0; trial < 500; ++trial) {
    const int ndim = 1 + static_cast<int>(gen() % 4);
    Shape x;
    std::vector<bool> reduced;
    for (int d = 0; d < ndim; ++d) {
      const int64_t sizes[] = {1, 2, 3, 7, 33, 100, 1000, 5000};
      x.push_back(sizes[gen() % 8]);
      reduced.push_back(gen() % 2 == 0);
    }
    const ReduceGeom g = GeomOf(x, reduced);
    for (int bytes : {4, 8, 16})
      for (bool split : {false, true})
        ExpectConsistent(g, PlanReduce(g, bytes, split), bytes);
  }
}

TEST(ReducePlanTest, SplitsOnlyWhenTheWorkspaceHoldsThePartials) {
  const ReduceGeom g = GeomOf({3, 100000}, {false, true});
  const ReducePlan split = PlanReduce(g, 4, true);
  ASSERT_GT(split.workspace, 0u);
  char buffer[1];
  EXPECT_EQ(cuda::PlanReduceWithin(g, 4, buffer, split.workspace).splits,
            split.splits);
  EXPECT_EQ(cuda::PlanReduceWithin(g, 4, buffer, split.workspace - 1).splits,
            1);
  EXPECT_EQ(cuda::PlanReduceWithin(g, 4, nullptr, 0).splits, 1);
  EXPECT_EQ(cuda::ReduceValueBytes(DType::kF64, false), 8);
  EXPECT_EQ(cuda::ReduceValueBytes(DType::kBF16, false), 4);
  EXPECT_EQ(cuda::ReduceValueBytes(DType::kF32, true), 16);
}

// ---- argument checks ----

TEST(ReductionsInferTest, OutputShapesFollowDimsAndKeepdim) {
  struct Case {
    std::string id;
    Shape x;
    runtime::AttrList attrs;
    Shape out;
  };
  const std::vector<Case> cases = {
      {"sum.cuda", {2, 3, 4}, {}, {}},
      {"sum.cuda", {2, 3, 4}, {{"keepdim", true}}, {1, 1, 1}},
      {"mean.cuda", {2, 3, 4}, {{"dims", Shape{1}}}, {2, 4}},
      {"mean.cuda",
       {2, 3, 4},
       {{"dims", Shape{-1, 0}}, {"keepdim", true}},
       {1, 3, 1}},
      {"max.cuda", {2, 3, 4}, {{"dims", Shape{2}}}, {2, 3}},
      {"max.cuda", {}, {{"dims", Shape{0}}}, {}},
      {"sum.cuda", {5, 0}, {{"dims", Shape{1}}}, {5}},
  };
  for (const Case& c : cases) {
    for (DLDataType t : {kF32, kF64, kBF16, kF16}) {
      absl::StatusOr<Specs> s = Infer(c.id, {FakeTensor{c.x, t}}, c.attrs);
      ASSERT_TRUE(s.ok()) << c.id << ": " << s.status();
      ASSERT_EQ(s->size(), 1u);
      EXPECT_EQ((*s)[0].first, c.out) << c.id;
      EXPECT_TRUE(llmsys_dtype_equal((*s)[0].second, t));
    }
  }
}

TEST(ReductionsInferTest, BadInputsNameTheProblem) {
  struct Bad {
    std::string id;
    std::vector<std::optional<FakeTensor>> in;
    runtime::AttrList attrs;
    std::string says;
  };
  const std::vector<Bad> bad = {
      {"sum.cuda",
       {FakeTensor{{2, 3}, kF32}},
       {{"dims", Shape{2}}},
       "out of range"},
      {"mean.cuda",
       {FakeTensor{{2, 3}, kF32}},
       {{"dims", Shape{1, -1}}},
       "repeated"},
      {"max.cuda",
       {FakeTensor{{2, 0}, kF32}},
       {{"dims", Shape{1}}},
       "empty reduction"},
      {"max.cuda", {FakeTensor{{0}, kF32}}, {}, "empty reduction"},
      {"sum.cuda", {FakeTensor{{2, 3}, kI32}}, {}, "must be float32"},
  };
  for (const Bad& b : bad) {
    absl::StatusOr<Specs> s = Infer(b.id, b.in, b.attrs);
    ASSERT_FALSE(s.ok()) << b.says;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << b.says;
    EXPECT_NE(s.status().message().find(b.says), std::string::npos)
        << s.status();
  }
}

TEST(ReductionsInferTest, LongGroupsAskForAWorkspace) {
  std::unique_ptr<runtime::OperatorImpl> impl = EmulatedOp("sum.cuda", "sum");
  ASSERT_NE(impl, nullptr);
  absl::StatusOr<Tensor> x = Tensor::Empty({3, 100000}, kF32, kCuda0);
  ASSERT_TRUE(x.ok());
  const runtime::ParamPack attrs = *impl->Attrs({{"dims", Shape{1}}});
  absl::StatusOr<runtime::OperatorImpl::InferResult> r =
      impl->Infer({*x}, attrs);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->workspace_bytes,
            PlanReduce(GeomOf({3, 100000}, {false, true}), 4, true).workspace);
  EXPECT_GT(r->workspace_bytes, 0u);
  // Short groups need none.
  const runtime::ParamPack rows = *impl->Attrs({{"dims", Shape{0}}});
  r = impl->Infer({*x}, rows);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->workspace_bytes, 0u);
}

// ---- values against the reference's rules ----

Vec Random(int64_t n, uint32_t seed) {
  return RandomUniform(n, seed, -1.0, 1.0);
}

// For each element of x (row-major), the index of its output.
std::vector<int64_t> OutIndex(const Shape& x, const std::vector<bool>& red) {
  std::vector<int64_t> index(static_cast<size_t>(Numel(x)));
  Shape pos(x.size(), 0);
  for (size_t k = 0; k < index.size(); ++k) {
    int64_t o = 0;
    for (size_t d = 0; d < x.size(); ++d)
      if (!red[d]) o = o * x[d] + pos[d];
    index[k] = o;
    for (size_t d = x.size(); d-- > 0;) {
      if (++pos[d] < x[d]) break;
      pos[d] = 0;
    }
  }
  return index;
}

struct Want {
  Vec out, grad;
};

// The reference: sums in double, mean = sum / count (0/0 NaN), max the
// first NaN else the first maximal element, its gradient there only.
Want Reference(const std::string& op, const Shape& x,
               const std::vector<bool>& red, const Vec& xv, const Vec& g) {
  const std::vector<int64_t> index = OutIndex(x, red);
  int64_t count = 1;
  for (size_t d = 0; d < x.size(); ++d)
    if (red[d]) count *= x[d];
  int64_t outs = 1;
  for (size_t d = 0; d < x.size(); ++d)
    if (!red[d]) outs *= x[d];
  Want w;
  w.out.assign(static_cast<size_t>(outs), 0.0);
  w.grad.assign(xv.size(), 0.0);
  if (op == "max") {
    std::vector<int64_t> arg(w.out.size(), -1);
    for (size_t i = 0; i < xv.size(); ++i) {
      int64_t& b = arg[index[i]];
      if (b < 0) {
        b = static_cast<int64_t>(i);
        continue;
      }
      if (std::isnan(xv[b])) continue;
      if (std::isnan(xv[i]) || xv[i] > xv[b]) b = static_cast<int64_t>(i);
    }
    for (size_t j = 0; j < arg.size(); ++j) {
      w.out[j] = xv[arg[j]];
      w.grad[arg[j]] = g[j];
    }
    return w;
  }
  for (size_t i = 0; i < xv.size(); ++i) w.out[index[i]] += xv[i];
  const bool mean = op == "mean";
  if (mean)
    for (double& v : w.out) v /= static_cast<double>(count);
  for (size_t i = 0; i < xv.size(); ++i)
    w.grad[i] = mean ? g[index[i]] / static_cast<double>(count) : g[index[i]];
  return w;
}

double Tolerance(DLDataType t) {
  if (llmsys_dtype_equal(t, kF64)) return 1e-12;
  if (llmsys_dtype_equal(t, kF32)) return 1e-5;
  return 2e-2;
}

// Runs op (sum, mean or max) forward and backward on the emulated device
// and checks both against the reference; xv is rounded to dtype first.
void Check(const std::string& op, const Shape& x, const Shape& dims,
           bool keepdim, DLDataType dtype, Vec xv = {}) {
  SCOPED_TRACE(op + " of " + ::testing::PrintToString(x) + " over " +
               ::testing::PrintToString(dims));
  std::unique_ptr<runtime::OperatorImpl> impl = EmulatedOp(op + ".cuda", op);
  ASSERT_NE(impl, nullptr);
  if (xv.empty()) xv = Random(Numel(x), 11);
  const Tensor tx = OnDevice(x, xv, dtype);
  xv = tx.ToDoubles();
  std::vector<bool> red(x.size(), dims.empty());
  const int64_t nd = static_cast<int64_t>(x.size());
  for (int64_t d : dims) red[static_cast<size_t>(d < 0 ? d + nd : d)] = true;
  const runtime::ParamPack attrs =
      *impl->Attrs({{"dims", dims}, {"keepdim", keepdim}});
  runtime::CallOptions options;
  options.poison = true;
  absl::StatusOr<std::vector<Tensor>> out = impl->Forward({tx}, attrs, options);
  ASSERT_TRUE(out.ok()) << out.status();
  const Shape out_shape = (*out)[0].shape();
  const Tensor tg = OnDevice(out_shape, Random(Numel(out_shape), 12), dtype);
  const Want want = Reference(op, x, red, xv, tg.ToDoubles());
  const double tol = Tolerance(dtype);
  ExpectNear((*out)[0].ToDoubles(), want.out, tol, "out");
  // Backward as the host runs it: sum and mean keep no input.
  const bool kept = (impl->flags() & LLMSYS_OP_BACKWARD_NEEDS_INPUTS) != 0;
  absl::StatusOr<std::vector<Tensor>> grads =
      impl->Backward({kept ? tx : Tensor()}, {{true, x, dtype}}, attrs, options,
                     *out, {tg}, {true});
  ASSERT_TRUE(grads.ok()) << grads.status();
  ExpectNear((*grads)[0].ToDoubles(), want.grad, tol, "grad");
}

TEST(ReductionsTest, EveryPlanKindInEveryDtype) {
  // The layouts below take every kind (and both offset paths) of PlanReduce.
  EXPECT_EQ(PlanReduce(GeomOf({3, 4, 7}, {true, false, true}), 4, true).kind,
            ReduceKind::kRow);
  EXPECT_EQ(
      PlanReduce(GeomOf({10, 3, 20, 6}, {true, false, true, false}), 4, true)
          .kind,
      ReduceKind::kCol);
  for (DLDataType t : {kF64, kF32, kBF16, kF16}) {
    SCOPED_TRACE(tensor::DTypeName(t));
    for (const std::string op : {"sum", "mean", "max"}) {
      Check(op, {4, 37}, {1}, false, t);           // rows
      Check(op, {37, 5}, {0}, true, t);            // columns
      Check(op, {3, 4, 7}, {0, 2}, false, t);      // rows over two dims
      Check(op, {6, 20, 4}, {1}, false, t);        // columns, kept dims around
      Check(op, {10, 3, 20, 6}, {0, 2}, true, t);  // columns over two dims
      Check(op, {3, 8}, {}, false, t);             // everything, short
      Check(op, {5, 7}, {1}, true, t);             // a thread per output
      Check(op, {3, 4, 5}, {0, 2}, false, t);      // a thread, two dims
      Check(op, {2, 3, 1, 40}, {-1, 0}, false, t);
    }
  }
}

TEST(ReductionsTest, SplitPlansAddTheirPartialsInOrder) {
  // Few outputs, long groups: rows and columns split over the workspace.
  for (DLDataType t : {kF64, kF32}) {
    SCOPED_TRACE(tensor::DTypeName(t));
    for (const std::string op : {"sum", "mean", "max"}) {
      Check(op, {3, 9000}, {1}, false, t);
      Check(op, {700, 40}, {0}, false, t);
      Check(op, {9000}, {}, false, t);
    }
  }
  ASSERT_GT(PlanReduce(GeomOf({3, 9000}, {false, true}), 4, true).splits, 1);
  ASSERT_GT(PlanReduce(GeomOf({700, 40}, {true, false}), 4, true).splits, 1);
}

TEST(ReductionsTest, EmptyGroupsSumToZeroAndAverageToNan) {
  for (const std::string op : {"sum", "mean"}) {
    std::unique_ptr<runtime::OperatorImpl> impl = EmulatedOp(op + ".cuda", op);
    ASSERT_NE(impl, nullptr);
    const Tensor x = *Tensor::Empty({3, 0}, kF32, kCuda0);
    runtime::CallOptions options;
    options.poison = true;
    absl::StatusOr<std::vector<Tensor>> out =
        impl->Forward({x}, *impl->Attrs({{"dims", Shape{1}}}), options);
    ASSERT_TRUE(out.ok()) << out.status();
    for (double v : (*out)[0].ToDoubles()) {
      if (op == "sum")
        EXPECT_EQ(v, 0.0);
      else
        EXPECT_TRUE(std::isnan(v));
    }
  }
}

TEST(ReductionsTest, MaxTakesTheFirstNanElseTheFirstMaximum) {
  // Row 0: a tie (the first 3 wins); row 1: NaNs (the first wins); row 2:
  // -inf only.
  const double inf = std::numeric_limits<double>::infinity();
  const Vec x = {1,    3, 2,    3,    0,    2,    kNan, 5,
                 kNan, 1, -inf, -inf, -inf, -inf, -inf};
  for (DLDataType t : {kF64, kF32, kBF16, kF16}) {
    SCOPED_TRACE(tensor::DTypeName(t));
    Check("max", {3, 5}, {1}, false, t, x);
    Check("max", {3, 5}, {}, false, t, x);
  }
  // The gradient of a tie goes to the first maximum only.
  std::unique_ptr<runtime::OperatorImpl> impl = EmulatedOp("max.cuda", "max");
  ASSERT_NE(impl, nullptr);
  const Tensor tx = OnDevice({4}, {2, 7, 7, 1}, kF32);
  const runtime::ParamPack attrs = *impl->Attrs({});
  absl::StatusOr<std::vector<Tensor>> out = impl->Forward({tx}, attrs, {});
  ASSERT_TRUE(out.ok()) << out.status();
  absl::StatusOr<std::vector<Tensor>> grads =
      impl->Backward({tx}, {{true, {4}, kF32}}, attrs, {}, *out,
                     {OnDevice({}, {1.5}, kF32)}, {true});
  ASSERT_TRUE(grads.ok()) << grads.status();
  EXPECT_EQ((*grads)[0].ToDoubles(), (Vec{0, 1.5, 0, 0}));
  // No incoming gradient: zeros.
  grads = impl->Backward({tx}, {{true, {4}, kF32}}, attrs, {}, *out, {Tensor()},
                         {true});
  ASSERT_TRUE(grads.ok()) << grads.status();
  EXPECT_EQ((*grads)[0].ToDoubles(), (Vec{0, 0, 0, 0}));
}

TEST(ReductionsTest, ResultsAreTheSameRunToRun) {
  std::unique_ptr<runtime::OperatorImpl> impl = EmulatedOp("sum.cuda", "sum");
  ASSERT_NE(impl, nullptr);
  const Tensor x = OnDevice({700, 40}, Random(28000, 3), kF32);
  const runtime::ParamPack attrs = *impl->Attrs({{"dims", Shape{0}}});
  const Vec first = (*impl->Forward({x}, attrs, {}))[0].ToDoubles();
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ((*impl->Forward({x}, attrs, {}))[0].ToDoubles(), first);
}

}  // namespace
}  // namespace llmsys::cuda_test
