// The reference softmax operators (softmax, log_softmax, cross_entropy):
// known values, stability, gradients against central differences along
// every dim and for every cross_entropy option, and the errors bad inputs
// get.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "tests/plugins/operators/reference_test_util.h"

namespace llmsys::plugins_test {
namespace {

using tensor::kF32;
using tensor::kF64;
using tensor::kI32;
using tensor::kI64;

void ExpectNear(const std::vector<double>& got, const std::vector<double>& want,
                double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
}

double Tol(DLDataType dtype) { return dtype.bits == 32 ? 1e-6 : 1e-14; }

// ---- softmax, log_softmax ----

TEST(ReferenceSoftmax, KnownValuesAlongEachDim) {
  auto sm = ReferenceOp("softmax");
  auto lsm = ReferenceOp("log_softmax");
  for (DLDataType dtype : {kF32, kF64}) {
    SCOPED_TRACE(dtype.bits);
    // Rows (1, 2, 3) and (3, 3, 3); columns (1, 3), (2, 3), (3, 3).
    Tensor x = *Tensor::FromDoubles({2, 3}, {1, 2, 3, 3, 3, 3}, dtype);
    const double third = 1.0 / 3.0;
    ExpectNear(RunForward(*sm, {x})[0].ToDoubles(),
               {0.09003057317038046, 0.24472847105479764, 0.6652409557748218,
                third, third, third},
               Tol(dtype));
    ExpectNear(RunForward(*lsm, {x})[0].ToDoubles(),
               {-2.4076059644443806, -1.4076059644443804, -0.4076059644443804,
                std::log(third), std::log(third), std::log(third)},
               Tol(dtype));
    // dim 0: sigmoid(1 - 3), sigmoid(2 - 3), 1/2 over each column.
    const double s2 = 1 / (1 + std::exp(2.0)), s1 = 1 / (1 + std::exp(1.0));
    ExpectNear(RunForward(*sm, {x}, {{"dim", int64_t{0}}})[0].ToDoubles(),
               {s2, s1, 0.5, 1 - s2, 1 - s1, 0.5}, Tol(dtype));
    ExpectNear(RunForward(*sm, {x}, {{"dim", int64_t{-2}}})[0].ToDoubles(),
               {s2, s1, 0.5, 1 - s2, 1 - s1, 0.5}, Tol(dtype));
  }
}

TEST(ReferenceSoftmax, LargeLogitsAreStable) {
  auto sm = ReferenceOp("softmax");
  auto lsm = ReferenceOp("log_softmax");
  for (DLDataType dtype : {kF32, kF64}) {
    Tensor x = *Tensor::FromDoubles({3}, {1000, 1000, -1000}, dtype);
    ExpectNear(RunForward(*sm, {x})[0].ToDoubles(), {0.5, 0.5, 0.0},
               Tol(dtype));
    std::vector<double> l = RunForward(*lsm, {x})[0].ToDoubles();
    EXPECT_NEAR(l[0], -std::log(2.0), Tol(dtype));
    EXPECT_NEAR(l[2], -2000 - std::log(2.0), 1e-3);
  }
}

TEST(ReferenceSoftmax, GradCheckAlongEveryDim) {
  for (const char* op : {"softmax", "log_softmax"}) {
    SCOPED_TRACE(op);
    auto impl = ReferenceOp(op);
    EXPECT_LT(CheckedGrad(*impl, {RandomTensor({7}, kF64, 1, -3, 3)}), 1e-6);
    Tensor x = RandomTensor({2, 3, 5}, kF64, 2, -3, 3);
    for (int64_t dim : {0, 1, 2, -1, -3}) {
      SCOPED_TRACE(dim);
      EXPECT_LT(CheckedGrad(*impl, {x}, {{"dim", dim}}), 1e-6);
    }
  }
}

TEST(ReferenceSoftmax, BadDimAndDtypeNameTheOp) {
  auto sm = ReferenceOp("softmax");
  ExpectInvalid(
      TryForward(*sm, {RandomTensor({2, 3}, kF32, 1)}, {{"dim", int64_t{2}}}),
      {"softmax", "dim", "2"});
  ExpectInvalid(TryForward(*ReferenceOp("log_softmax"),
                           {*Tensor::FromDoubles({2}, {1, 2}, kI64)}),
                {"log_softmax", "int64"});
}

// ---- cross_entropy ----

// logits (2, 3): rows (1, 2, 3) and (1, 1, 1); targets (2, 0).
TEST(ReferenceCrossEntropy, KnownValuesForEveryReduction) {
  auto ce = ReferenceOp("cross_entropy");
  for (DLDataType dtype : {kF32, kF64}) {
    for (DLDataType tdtype : {kI32, kI64}) {
      SCOPED_TRACE(std::to_string(dtype.bits) + " " +
                   std::to_string(tdtype.bits));
      Tensor logits = *Tensor::FromDoubles({2, 3}, {1, 2, 3, 1, 1, 1}, dtype);
      Tensor t = *Tensor::FromDoubles({2}, {2, 0}, tdtype);
      const double l0 = 0.4076059644443804, l1 = std::log(3.0);
      std::vector<Tensor> mean = RunForward(*ce, {logits, t});
      EXPECT_EQ(mean[0].shape(), tensor::Shape{});
      EXPECT_TRUE(llmsys_dtype_equal(mean[0].dtype(), dtype));
      ExpectNear(mean[0].ToDoubles(), {(l0 + l1) / 2}, Tol(dtype));
      ExpectNear(
          RunForward(*ce, {logits, t}, {{"reduction", std::string("sum")}})[0]
              .ToDoubles(),
          {l0 + l1}, Tol(dtype));
      std::vector<Tensor> none =
          RunForward(*ce, {logits, t}, {{"reduction", std::string("none")}});
      EXPECT_EQ(none[0].shape(), (tensor::Shape{2}));
      ExpectNear(none[0].ToDoubles(), {l0, l1}, Tol(dtype));
      // Label smoothing 0.1: 0.9 * nll + 0.1 * mean_v(-logp[v]).
      ExpectNear(RunForward(*ce, {logits, t},
                            {{"label_smoothing", 0.1},
                             {"reduction", std::string("none")}})[0]
                     .ToDoubles(),
                 {0.5076059644443804, l1}, Tol(dtype));
    }
  }
}

TEST(ReferenceCrossEntropy, IgnoredPositionsAreZeroAndExcludedFromMean) {
  auto ce = ReferenceOp("cross_entropy");
  Tensor logits =
      *Tensor::FromDoubles({3, 3}, {1, 2, 3, 1, 1, 1, 5, 0, 0}, kF64);
  Tensor t = *Tensor::FromDoubles({3}, {2, -100, 0}, kI64);
  const double l0 = 0.4076059644443804;
  const double l2 = -(5 - std::log(std::exp(5.0) + 2));
  ExpectNear(RunForward(*ce, {logits, t})[0].ToDoubles(), {(l0 + l2) / 2},
             1e-14);
  ExpectNear(
      RunForward(*ce, {logits, t}, {{"reduction", std::string("none")}})[0]
          .ToDoubles(),
      {l0, 0.0, l2}, 1e-14);
  // A custom ignore_index inside [0, V) is ignored, not a class.
  Tensor t1 = *Tensor::FromDoubles({3}, {2, 1, 1}, kI32);
  ExpectNear(RunForward(*ce, {logits, t1},
                        {{"ignore_index", int64_t{1}},
                         {"reduction", std::string("sum")}})[0]
                 .ToDoubles(),
             {l0}, 1e-14);
  // Every position ignored: the mean is NaN (as PyTorch), the sum 0.
  Tensor all = *Tensor::FromDoubles({3}, {-100, -100, -100}, kI64);
  EXPECT_TRUE(std::isnan(RunForward(*ce, {logits, all})[0].ToDoubles()[0]));
  ExpectNear(
      RunForward(*ce, {logits, all}, {{"reduction", std::string("sum")}})[0]
          .ToDoubles(),
      {0.0}, 0);
  // ... and the gradient is zero, not NaN.
  std::vector<Tensor> g =
      RunBackward(*ce, {logits, all}, {}, Tensor::Scalar(1.0, kF64));
  ASSERT_EQ(g.size(), 2u);
  for (double v : g[0].ToDoubles()) EXPECT_EQ(v, 0.0);
  EXPECT_FALSE(g[1].defined());
}

TEST(ReferenceCrossEntropy, GradientIsSoftmaxMinusOneHot) {
  auto ce = ReferenceOp("cross_entropy");
  Tensor logits = *Tensor::FromDoubles({1, 3}, {1, 2, 3}, kF64);
  Tensor t = *Tensor::FromDoubles({1}, {2}, kI64);
  std::vector<Tensor> g =
      RunBackward(*ce, {logits, t}, {}, Tensor::Scalar(2.0, kF64));
  ExpectNear(g[0].ToDoubles(),
             {2 * 0.09003057317038046, 2 * 0.24472847105479764,
              2 * (0.6652409557748218 - 1)},
             1e-14);
}

TEST(ReferenceCrossEntropy, GradCheckEveryOption) {
  auto ce = ReferenceOp("cross_entropy");
  struct Case {
    tensor::Shape logits;
    std::vector<double> targets;
  };
  const std::vector<Case> cases = {
      {{5}, {3}},                          // a single position
      {{4, 7}, {0, 6, -100, 3}},           // one ignored
      {{2, 3, 5}, {4, 0, 1, -100, 2, 2}},  // (B, T, V)
      {{3, 1}, {0, 0, -100}},              // V = 1
  };
  for (const Case& c : cases) {
    tensor::Shape tshape(c.logits.begin(), c.logits.end() - 1);
    Tensor logits = RandomTensor(c.logits, kF64, 11, -3, 3);
    Tensor t = *Tensor::FromDoubles(tshape, c.targets, kI64);
    for (const char* reduction : {"mean", "sum", "none"}) {
      for (double eps : {0.0, 0.1, 1.0}) {
        SCOPED_TRACE(logits.Describe() + " " + reduction + " " +
                     std::to_string(eps));
        EXPECT_LT(CheckedGrad(*ce, {logits, t},
                              {{"reduction", std::string(reduction)},
                               {"label_smoothing", eps}}),
                  1e-6);
      }
    }
  }
  // A custom ignore_index.
  Tensor logits = RandomTensor({4, 3}, kF64, 12, -3, 3);
  Tensor t = *Tensor::FromDoubles({4}, {0, 2, 2, 1}, kI32);
  EXPECT_LT(CheckedGrad(*ce, {logits, t}, {{"ignore_index", int64_t{2}}}),
            1e-6);
}

TEST(ReferenceCrossEntropy, OutOfRangeTargetNamesValueAndPosition) {
  auto ce = ReferenceOp("cross_entropy");
  Tensor logits = RandomTensor({2, 3}, kF32, 1);
  ExpectInvalid(
      TryForward(*ce, {logits, *Tensor::FromDoubles({2}, {0, 3}, kI64)}),
      {"cross_entropy", "target 3", "position 1", "[0, 3)"});
  ExpectInvalid(
      TryForward(*ce, {logits, *Tensor::FromDoubles({2}, {-1, 0}, kI32)}),
      {"cross_entropy", "target -1", "position 0"});
}

TEST(ReferenceCrossEntropy, BadShapesDtypesAndAttributes) {
  auto ce = ReferenceOp("cross_entropy");
  Tensor logits = RandomTensor({2, 3}, kF32, 1);
  Tensor t = *Tensor::FromDoubles({2}, {0, 1}, kI64);
  ExpectInvalid(
      TryForward(*ce, {logits, *Tensor::FromDoubles({3}, {0, 1, 2}, kI64)}),
      {"cross_entropy", "targets", "(2, 3)", "(3)"});
  ExpectInvalid(TryForward(*ce, {logits, RandomTensor({2}, kF32, 2)}),
                {"cross_entropy", "targets", "int32 or int64", "float32"});
  ExpectInvalid(TryForward(*ce, {Tensor::Scalar(1.0), t}),
                {"cross_entropy", "logits", "()"});
  ExpectInvalid(
      TryForward(*ce, {logits, t}, {{"reduction", std::string("avg")}}),
      {"cross_entropy", "reduction", "avg"});
  ExpectInvalid(TryForward(*ce, {logits, t}, {{"label_smoothing", 1.5}}),
                {"cross_entropy", "label_smoothing", "1.5"});
  ExpectInvalid(TryForward(*ce, {logits, t}, {{"label_smoothing", -0.1}}),
                {"cross_entropy", "label_smoothing"});
}

}  // namespace
}  // namespace llmsys::plugins_test
