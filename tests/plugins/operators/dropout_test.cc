// The reference dropout operator: the mask follows the call's random stream
// (llmsys/random.h) exactly, replays for the same (seed, offset), keeps about
// 1 - p of a large tensor, gradients against central differences, and the
// errors bad inputs get.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "llmsys/random.h"
#include "tests/plugins/operators/reference_test_util.h"

namespace llmsys::plugins_test {
namespace {

using tensor::kF32;
using tensor::kF64;

runtime::CallOptions Rng(uint64_t seed, uint64_t offset) {
  runtime::CallOptions options;
  options.rng = {seed, offset};
  return options;
}

std::vector<double> MaskOf(const std::vector<Tensor>& out) {
  EXPECT_EQ(out.size(), 2u);
  return out.size() == 2 ? out[1].ToDoubles() : std::vector<double>{};
}

TEST(ReferenceDropout, FollowsTheRandomStream) {
  auto dropout = ReferenceOp("dropout");
  for (DLDataType dtype : {kF32, kF64}) {
    SCOPED_TRACE(dtype.bits);
    Tensor x = RandomTensor({3, 5}, dtype, 1, 0.5, 2.0);
    const std::vector<double> xv = x.ToDoubles();
    const double p = 0.3;
    std::vector<Tensor> out =
        RunForward(*dropout, {x}, {{"p", p}}, Rng(1234, 1ull << 32));
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[0].shape(), x.shape());
    EXPECT_EQ(out[1].shape(), x.shape());
    EXPECT_TRUE(llmsys_dtype_equal(out[1].dtype(), tensor::kU8));
    const std::vector<double> o = out[0].ToDoubles();
    const std::vector<double> m = out[1].ToDoubles();
    int kept = 0;
    for (size_t i = 0; i < xv.size(); ++i) {
      const bool keep = llmsys_random_uniform(1234, 1ull << 32, i) >= p;
      kept += keep;
      EXPECT_EQ(m[i], keep ? 1.0 : 0.0) << i;
      EXPECT_NEAR(o[i], keep ? xv[i] / (1 - p) : 0.0,
                  dtype.bits == 32 ? 1e-6 : 1e-15)
          << i;
    }
    EXPECT_GT(kept, 0);
    EXPECT_LT(kept, 15);
  }
}

TEST(ReferenceDropout, ZeroAndOneProbability) {
  auto dropout = ReferenceOp("dropout");
  Tensor x = RandomTensor({4, 3}, kF32, 2);
  std::vector<Tensor> none = RunForward(*dropout, {x}, {{"p", 0.0}}, Rng(1, 0));
  EXPECT_EQ(none[0].ToDoubles(), x.ToDoubles());
  for (double m : MaskOf(none)) EXPECT_EQ(m, 1.0);
  std::vector<Tensor> all = RunForward(*dropout, {x}, {{"p", 1.0}}, Rng(1, 0));
  for (double v : all[0].ToDoubles()) EXPECT_EQ(v, 0.0);  // no NaN
  for (double m : MaskOf(all)) EXPECT_EQ(m, 0.0);
  std::vector<Tensor> g = RunBackward(*dropout, {x}, {{"p", 1.0}},
                                      RandomTensor({4, 3}, kF32, 3), Rng(1, 0));
  for (double v : g[0].ToDoubles()) EXPECT_EQ(v, 0.0);
}

TEST(ReferenceDropout, SameRngReplaysDifferentRngDiffers) {
  auto dropout = ReferenceOp("dropout");
  Tensor x = RandomTensor({64}, kF32, 4);
  const std::vector<double> a =
      MaskOf(RunForward(*dropout, {x}, {}, Rng(7, 100)));
  EXPECT_EQ(a, MaskOf(RunForward(*dropout, {x}, {}, Rng(7, 100))));
  EXPECT_NE(a, MaskOf(RunForward(*dropout, {x}, {}, Rng(7, 101))));
  EXPECT_NE(a, MaskOf(RunForward(*dropout, {x}, {}, Rng(8, 100))));
}

TEST(ReferenceDropout, KeptFractionIsNearOneMinusP) {
  auto dropout = ReferenceOp("dropout");
  Tensor x = RandomTensor({200, 500}, kF32, 5);
  for (double p : {0.1, 0.5, 0.9}) {
    SCOPED_TRACE(p);
    const std::vector<double> m =
        MaskOf(RunForward(*dropout, {x}, {{"p", p}}, Rng(42, 7)));
    double kept = 0;
    for (double v : m) kept += v;
    // 100000 draws: the standard deviation of the fraction is <= 0.0016.
    EXPECT_NEAR(kept / static_cast<double>(m.size()), 1 - p, 0.01);
  }
}

TEST(ReferenceDropout, BackwardIsGradTimesMaskOverKeep) {
  auto dropout = ReferenceOp("dropout");
  Tensor x = RandomTensor({2, 7}, kF64, 6);
  Tensor w = RandomTensor({2, 7}, kF64, 7);
  const double p = 0.25;
  const std::vector<double> m =
      MaskOf(RunForward(*dropout, {x}, {{"p", p}}, Rng(3, 9)));
  std::vector<Tensor> g = RunBackward(*dropout, {x}, {{"p", p}}, w, Rng(3, 9));
  ASSERT_EQ(g.size(), 1u);
  const std::vector<double> gv = g[0].ToDoubles(), wv = w.ToDoubles();
  for (size_t i = 0; i < gv.size(); ++i)
    EXPECT_NEAR(gv[i], wv[i] * m[i] / (1 - p), 1e-15) << i;
}

TEST(ReferenceDropout, GradCheck) {
  auto dropout = ReferenceOp("dropout");
  for (const tensor::Shape& shape :
       {tensor::Shape{1}, tensor::Shape{7}, tensor::Shape{3, 5},
        tensor::Shape{2, 3, 3}}) {
    for (double p : {0.0, 0.4, 0.9}) {
      SCOPED_TRACE(std::to_string(shape.size()) + " dims, p " +
                   std::to_string(p));
      EXPECT_LT(CheckedGrad(*dropout, {RandomTensor(shape, kF64, 8)},
                            {{"p", p}}, Rng(11, 5)),
                1e-6);
    }
  }
}

TEST(ReferenceDropout, BadProbabilityAndDtype) {
  auto dropout = ReferenceOp("dropout");
  Tensor x = RandomTensor({2, 3}, kF32, 1);
  for (double p : {-0.1, 1.5}) {
    absl::StatusOr<std::vector<Tensor>> out =
        TryForward(*dropout, {x}, {{"p", p}});
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(out.status().message().find("dropout"), std::string::npos);
    EXPECT_NE(out.status().message().find("p must be in [0, 1]"),
              std::string::npos)
        << out.status();
  }
  absl::StatusOr<std::vector<Tensor>> ints =
      TryForward(*dropout, {*Tensor::FromDoubles({2}, {1, 2}, tensor::kI32)});
  ASSERT_FALSE(ints.ok());
  EXPECT_EQ(ints.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(ints.status().message().find("int32"), std::string::npos)
      << ints.status();
}

}  // namespace
}  // namespace llmsys::plugins_test
