// The reference reductions (sum, mean, max): values over dims with and
// without keepdim, gradients against central differences, and the errors
// bad dims get.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "tests/plugins/operators/reference_test_util.h"

namespace llmsys::plugins_test {
namespace {

using tensor::kF32;
using tensor::kF64;
using Dims = std::vector<int64_t>;

// x = [[1, 2, 3], [4, 5, 6]] (2, 3)
Tensor Small() {
  return *Tensor::FromDoubles({2, 3}, {1, 2, 3, 4, 5, 6}, kF32);
}

TEST(ReferenceReductions, SumOverEachDimAndAll) {
  auto sum = ReferenceOp("sum");
  std::vector<Tensor> all = RunForward(*sum, {Small()});
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].shape(), tensor::Shape{});  // 0-d
  EXPECT_EQ(all[0].dtype(), kF32);
  EXPECT_EQ(all[0].ToDoubles(), (std::vector<double>{21}));

  Tensor rows = RunForward(*sum, {Small()}, {{"dims", Dims{1}}})[0];
  EXPECT_EQ(rows.shape(), (tensor::Shape{2}));
  EXPECT_EQ(rows.ToDoubles(), (std::vector<double>{6, 15}));

  Tensor cols =
      RunForward(*sum, {Small()}, {{"dims", Dims{-2}}, {"keepdim", true}})[0];
  EXPECT_EQ(cols.shape(), (tensor::Shape{1, 3}));
  EXPECT_EQ(cols.ToDoubles(), (std::vector<double>{5, 7, 9}));

  Tensor both =
      RunForward(*sum, {Small()}, {{"dims", Dims{1, 0}}, {"keepdim", true}})[0];
  EXPECT_EQ(both.shape(), (tensor::Shape{1, 1}));
  EXPECT_EQ(both.ToDoubles(), (std::vector<double>{21}));
}

TEST(ReferenceReductions, SumOfThreeDimsOverMiddleAndLast) {
  auto sum = ReferenceOp("sum");
  // x[i][j][k] = 100 i + 10 j + k, (2, 3, 2)
  std::vector<double> v;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 2; ++k) v.push_back(100 * i + 10 * j + k);
  Tensor x = *Tensor::FromDoubles({2, 3, 2}, v, kF64);
  Tensor mid = RunForward(*sum, {x}, {{"dims", Dims{1}}})[0];
  EXPECT_EQ(mid.shape(), (tensor::Shape{2, 2}));
  EXPECT_EQ(mid.ToDoubles(), (std::vector<double>{30, 33, 330, 333}));
  Tensor outer = RunForward(*sum, {x}, {{"dims", Dims{0, 2}}})[0];
  EXPECT_EQ(outer.shape(), (tensor::Shape{3}));
  EXPECT_EQ(outer.ToDoubles(), (std::vector<double>{202, 242, 282}));
}

TEST(ReferenceReductions, MeanValues) {
  auto mean = ReferenceOp("mean");
  EXPECT_EQ(RunForward(*mean, {Small()})[0].ToDoubles(),
            (std::vector<double>{3.5}));
  Tensor rows =
      RunForward(*mean, {Small()}, {{"dims", Dims{-1}}, {"keepdim", true}})[0];
  EXPECT_EQ(rows.shape(), (tensor::Shape{2, 1}));
  EXPECT_EQ(rows.ToDoubles(), (std::vector<double>{2, 5}));
}

TEST(ReferenceReductions, MeanOverNothingIsNaN) {
  auto mean = ReferenceOp("mean");
  Tensor x = *Tensor::Zeros({0, 3}, kF32);
  Tensor out = RunForward(*mean, {x}, {{"dims", Dims{0}}})[0];
  EXPECT_EQ(out.shape(), (tensor::Shape{3}));
  for (double v : out.ToDoubles()) EXPECT_TRUE(std::isnan(v));
  // The sum of nothing is 0.
  EXPECT_EQ(RunForward(*ReferenceOp("sum"), {x})[0].ToDoubles(),
            (std::vector<double>{0}));
}

TEST(ReferenceReductions, ZeroDimInput) {
  Tensor x = Tensor::Scalar(2.5, kF64);
  for (const char* op : {"sum", "mean", "max"}) {
    SCOPED_TRACE(op);
    auto impl = ReferenceOp(op);
    Tensor all = RunForward(*impl, {x})[0];
    EXPECT_EQ(all.shape(), tensor::Shape{});
    EXPECT_EQ(all.ToDoubles(), (std::vector<double>{2.5}));
    // As in PyTorch, a 0-d tensor takes dim 0 or -1.
    Tensor dim = RunForward(*impl, {x}, {{"dims", Dims{-1}}})[0];
    EXPECT_EQ(dim.ToDoubles(), (std::vector<double>{2.5}));
    EXPECT_LT(GradCheck(*impl, {x}), 1e-6);
  }
}

TEST(ReferenceReductions, MaxValuesAndKeepdim) {
  auto max = ReferenceOp("max");
  Tensor x = *Tensor::FromDoubles({2, 3}, {1, 7, -2, 4, 0, 4}, kF32);
  EXPECT_EQ(RunForward(*max, {x})[0].ToDoubles(), (std::vector<double>{7}));
  Tensor rows = RunForward(*max, {x}, {{"dims", Dims{1}}})[0];
  EXPECT_EQ(rows.shape(), (tensor::Shape{2}));
  EXPECT_EQ(rows.ToDoubles(), (std::vector<double>{7, 4}));
  Tensor cols =
      RunForward(*max, {x}, {{"dims", Dims{0}}, {"keepdim", true}})[0];
  EXPECT_EQ(cols.shape(), (tensor::Shape{1, 3}));
  EXPECT_EQ(cols.ToDoubles(), (std::vector<double>{4, 7, 4}));
}

TEST(ReferenceReductions, MaxPropagatesNaN) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor x = *Tensor::FromDoubles({2, 2}, {1, nan, 3, 2}, kF64);
  std::vector<double> out =
      RunForward(*ReferenceOp("max"), {x}, {{"dims", Dims{1}}})[0].ToDoubles();
  EXPECT_TRUE(std::isnan(out[0]));
  EXPECT_EQ(out[1], 3);
}

TEST(ReferenceReductions, MaxGradientGoesToFirstMaximalElement) {
  auto max = ReferenceOp("max");
  // Row 0 has ties at columns 1 and 3; row 1 at 0 and 2.
  Tensor x = *Tensor::FromDoubles({2, 4}, {1, 5, 2, 5, 3, 0, 3, -1}, kF64);
  Tensor w = *Tensor::FromDoubles({2}, {10, 20}, kF64);
  std::vector<Tensor> g = RunBackward(*max, {x}, {{"dims", Dims{1}}}, w);
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].ToDoubles(), (std::vector<double>{0, 10, 0, 0, 20, 0, 0, 0}));
  // Over every dim: the first 5 in row-major order.
  std::vector<Tensor> all =
      RunBackward(*max, {x}, {}, *Tensor::FromDoubles({}, {2}, kF64));
  EXPECT_EQ(all[0].ToDoubles(), (std::vector<double>{0, 2, 0, 0, 0, 0, 0, 0}));
  // Over dim 0 of a (3, 2) with a tie in column 0: the first row wins.
  Tensor y = *Tensor::FromDoubles({3, 2}, {4, 1, 4, 2, 0, 2}, kF64);
  std::vector<Tensor> cols =
      RunBackward(*max, {y}, {{"dims", Dims{0}}, {"keepdim", true}},
                  *Tensor::FromDoubles({1, 2}, {1, 1}, kF64));
  EXPECT_EQ(cols[0].ToDoubles(), (std::vector<double>{1, 0, 0, 1, 0, 0}));
}

TEST(ReferenceReductions, GradCheckManyShapesAndDims) {
  struct Case {
    tensor::Shape shape;
    Dims dims;
    bool keepdim;
  };
  const std::vector<Case> cases = {
      {{5}, {}, false},
      {{3, 4}, {}, true},
      {{3, 4}, {0}, false},
      {{3, 4}, {-1}, true},
      {{2, 3, 5}, {1}, false},
      {{2, 3, 5}, {0, 2}, true},
      {{2, 3, 5}, {-3, -1}, false},
      {{1, 7, 1}, {2}, false},
      {{3, 1, 2, 3}, {1, 3}, true},
  };
  uint64_t seed = 10;
  for (const char* op : {"sum", "mean", "max"}) {
    auto impl = ReferenceOp(op);
    for (const Case& c : cases) {
      SCOPED_TRACE(std::string(op) + " " + tensor::ShapeString(c.shape) +
                   " dims " + std::to_string(c.dims.size()) +
                   (c.keepdim ? " keepdim" : ""));
      Tensor x = RandomTensor(c.shape, kF64, ++seed);
      EXPECT_LT(
          GradCheck(*impl, {x}, {{"dims", c.dims}, {"keepdim", c.keepdim}}),
          1e-6);
    }
  }
}

TEST(ReferenceReductions, SumAndMeanBackwardNeedOnlyShapes) {
  runtime::CallOptions options;
  options.poison = true;
  const std::vector<runtime::TensorMeta> meta = {{true, {2, 3}, kF64}};
  Tensor w = *Tensor::FromDoubles({3}, {1, 2, 3}, kF64);
  for (const char* op : {"sum", "mean"}) {
    SCOPED_TRACE(op);
    auto impl = ReferenceOp(op);
    EXPECT_EQ(impl->flags() & LLMSYS_OP_BACKWARD_NEEDS_INPUTS, 0u);
    runtime::ParamPack pack = *impl->Attrs({{"dims", Dims{0}}});
    // The input is not kept: backward works from grad_inputs' shape.
    absl::StatusOr<std::vector<Tensor>> g = impl->Backward(
        {Tensor()}, meta, pack, options, {Tensor()}, {w}, {true});
    ASSERT_TRUE(g.ok()) << g.status();
    const double scale = std::string(op) == "mean" ? 0.5 : 1.0;
    std::vector<double> want = {1, 2, 3, 1, 2, 3};
    for (double& v : want) v *= scale;
    EXPECT_EQ((*g)[0].ToDoubles(), want);
    // No output gradient means zero.
    g = impl->Backward({Tensor()}, meta, pack, options, {Tensor()}, {Tensor()},
                       {true});
    ASSERT_TRUE(g.ok()) << g.status();
    EXPECT_EQ((*g)[0].ToDoubles(), std::vector<double>(6, 0.0));
  }
}

TEST(ReferenceReductions, Float32MatchesFloat64) {
  Tensor x64 = RandomTensor({4, 6}, kF64, 3);
  Tensor x32 = *x64.To(kF32);
  for (const char* op : {"sum", "mean", "max"}) {
    SCOPED_TRACE(op);
    auto impl = ReferenceOp(op);
    std::vector<double> a =
        RunForward(*impl, {x64}, {{"dims", Dims{0}}})[0].ToDoubles();
    Tensor out32 = RunForward(*impl, {x32}, {{"dims", Dims{0}}})[0];
    EXPECT_EQ(out32.dtype(), kF32);
    std::vector<double> b = out32.ToDoubles();
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-6);
  }
}

TEST(ReferenceReductions, BadDimsAreRejected) {
  for (const char* op : {"sum", "mean", "max"}) {
    SCOPED_TRACE(op);
    auto impl = ReferenceOp(op);
    Tensor x = RandomTensor({2, 3}, kF32, 1);
    ExpectInvalid(TryForward(*impl, {x}, {{"dims", Dims{2}}}),
                  {op, "dim 2", "out of range"});
    ExpectInvalid(TryForward(*impl, {x}, {{"dims", Dims{-3}}}),
                  {op, "-3", "out of range"});
    ExpectInvalid(TryForward(*impl, {x}, {{"dims", Dims{1, -1}}}),
                  {op, "repeated", "(2, 3)"});
    ExpectInvalid(
        TryForward(*impl, {*Tensor::FromDoubles({2}, {1, 2}, tensor::kI64)}),
        {op, "int64", "(2)"});
  }
}

TEST(ReferenceReductions, MaxOverEmptyReductionIsRejected) {
  auto max = ReferenceOp("max");
  Tensor x = *Tensor::Zeros({0, 3}, kF32);
  ExpectInvalid(TryForward(*max, {x}), {"max", "empty", "(0, 3)"});
  ExpectInvalid(TryForward(*max, {x}, {{"dims", Dims{0}}}),
                {"max", "empty", "(0, 3)"});
  // Reducing a non-empty dim of an empty tensor is fine: an empty result.
  Tensor out = RunForward(*max, {x}, {{"dims", Dims{1}}})[0];
  EXPECT_EQ(out.shape(), (tensor::Shape{0}));
}

}  // namespace
}  // namespace llmsys::plugins_test
