// The reference norms operators (layer_norm, rms_norm): known values, the
// saved statistics, gradients against central differences with and without
// the affine parameters, and the errors bad shapes get.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "tests/plugins/operators/reference_test_util.h"

namespace llmsys::plugins_test {
namespace {

using tensor::kF32;
using tensor::kF64;

void ExpectNear(const std::vector<double>& got, const std::vector<double>& want,
                double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
}

TEST(ReferenceNorms, LayerNormKnownValuesAndStatistics) {
  auto ln = ReferenceOp("layer_norm");
  for (DLDataType dtype : {kF32, kF64}) {
    SCOPED_TRACE(dtype.bits);
    const double tol = dtype.bits == 32 ? 1e-6 : 1e-14;
    Tensor x = *Tensor::FromDoubles({2, 4}, {1, 2, 3, 4, -1, 0, 0, 1}, dtype);
    Tensor w = *Tensor::FromDoubles({4}, {1, 2, 0.5, -1}, dtype);
    Tensor b = *Tensor::FromDoubles({4}, {0, 1, 0, 0.5}, dtype);
    std::vector<Tensor> out = RunForward(*ln, {x, w, b});
    ASSERT_EQ(out.size(), 3u);
    EXPECT_EQ(out[0].shape(), (tensor::Shape{2, 4}));
    EXPECT_EQ(out[1].shape(), (tensor::Shape{2}));
    EXPECT_EQ(out[2].shape(), (tensor::Shape{2}));
    EXPECT_TRUE(llmsys_dtype_equal(out[0].dtype(), dtype));
    // Row 0: mean 2.5, biased var 1.25; row 1: mean 0, var 0.5; eps 1e-5.
    ExpectNear(
        out[0].ToDoubles(),
        {-1.3416354199689269, 0.105576386687382, 0.2236059033281545,
         -0.8416354199689269, -1.4141994204496, 1.0, 0.0, -0.9141994204496},
        tol);
    ExpectNear(out[1].ToDoubles(), {2.5, 0.0}, tol);
    ExpectNear(out[2].ToDoubles(), {0.894423613312618, 1.4141994204496}, tol);
    // No affine parameters: the plain normalized row.
    std::vector<Tensor> plain = RunForward(*ln, {x, Tensor(), Tensor()});
    ASSERT_EQ(plain.size(), 3u);
    const std::vector<double> row = plain[0].ToDoubles();
    ExpectNear(std::vector<double>(row.begin(), row.begin() + 4),
               {-1.3416354199689269, -0.447211806656309, 0.447211806656309,
                1.3416354199689269},
               tol);
  }
}

TEST(ReferenceNorms, LayerNormEpsAttribute) {
  auto ln = ReferenceOp("layer_norm");
  Tensor x = *Tensor::FromDoubles({1, 2}, {0, 2}, kF64);  // var 1
  std::vector<Tensor> out =
      RunForward(*ln, {x, Tensor(), Tensor()}, {{"eps", 3.0}});
  ExpectNear(out[2].ToDoubles(), {0.5}, 1e-15);  // 1 / sqrt(1 + 3)
  ExpectNear(out[0].ToDoubles(), {-0.5, 0.5}, 1e-15);
}

TEST(ReferenceNorms, LayerNormGradCheck) {
  auto ln = ReferenceOp("layer_norm");
  for (const tensor::Shape& shape :
       {tensor::Shape{5}, tensor::Shape{3, 7}, tensor::Shape{2, 3, 4},
        tensor::Shape{1, 1}}) {
    const int64_t c = shape.back();
    Tensor x = RandomTensor(shape, kF64, 1, -2, 2);
    Tensor w = RandomTensor({c}, kF64, 2, 0.5, 1.5);
    Tensor b = RandomTensor({c}, kF64, 3);
    SCOPED_TRACE(x.Describe());
    EXPECT_LT(CheckedGrad(*ln, {x, w, b}), 1e-6);
    EXPECT_LT(CheckedGrad(*ln, {x, Tensor(), Tensor()}), 1e-6);
    EXPECT_LT(CheckedGrad(*ln, {x, w, Tensor()}), 1e-6);
    EXPECT_LT(CheckedGrad(*ln, {x, Tensor(), b}, {{"eps", 0.1}}), 1e-6);
  }
}

TEST(ReferenceNorms, LayerNormWithoutUpstreamGradientGivesZeros) {
  auto ln = ReferenceOp("layer_norm");
  Tensor x = RandomTensor({2, 3}, kF64, 1);
  Tensor w = RandomTensor({3}, kF64, 2);
  runtime::ParamPack pack = *ln->Attrs({});
  std::vector<Tensor> out = *ln->Forward({x, w, Tensor()}, pack, {});
  std::vector<runtime::TensorMeta> meta = {
      {true, {2, 3}, kF64}, {true, {3}, kF64}, {false, {}, kF64}};
  runtime::CallOptions options;
  options.poison = true;
  absl::StatusOr<std::vector<Tensor>> g =
      ln->Backward({x, w, Tensor()}, meta, pack, options, out,
                   {Tensor(), Tensor(), Tensor()}, {true, true, false});
  ASSERT_TRUE(g.ok()) << g.status();
  for (double v : (*g)[0].ToDoubles()) EXPECT_EQ(v, 0.0);
  for (double v : (*g)[1].ToDoubles()) EXPECT_EQ(v, 0.0);
  EXPECT_FALSE((*g)[2].defined());
}

TEST(ReferenceNorms, RmsNormKnownValues) {
  auto rms = ReferenceOp("rms_norm");
  for (DLDataType dtype : {kF32, kF64}) {
    SCOPED_TRACE(dtype.bits);
    const double tol = dtype.bits == 32 ? 1e-6 : 1e-14;
    Tensor x = *Tensor::FromDoubles({1, 2}, {3, 4}, dtype);  // mean x^2 12.5
    std::vector<Tensor> out = RunForward(*rms, {x, Tensor()});
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[1].shape(), (tensor::Shape{1}));
    ExpectNear(out[0].ToDoubles(), {0.8485281034827337, 1.1313708046436448},
               tol);
    ExpectNear(out[1].ToDoubles(), {0.2828427011609112}, tol);
    Tensor w = *Tensor::FromDoubles({2}, {2, -0.5}, dtype);
    ExpectNear(RunForward(*rms, {x, w})[0].ToDoubles(),
               {1.6970562069654673, -0.5656854023218224}, tol);
  }
}

TEST(ReferenceNorms, RmsNormGradCheck) {
  auto rms = ReferenceOp("rms_norm");
  for (const tensor::Shape& shape :
       {tensor::Shape{5}, tensor::Shape{3, 7}, tensor::Shape{2, 3, 4}}) {
    const int64_t c = shape.back();
    Tensor x = RandomTensor(shape, kF64, 4, -2, 2);
    Tensor w = RandomTensor({c}, kF64, 5, 0.5, 1.5);
    SCOPED_TRACE(x.Describe());
    EXPECT_LT(CheckedGrad(*rms, {x, w}), 1e-6);
    EXPECT_LT(CheckedGrad(*rms, {x, Tensor()}), 1e-6);
    EXPECT_LT(CheckedGrad(*rms, {x, w}, {{"eps", 0.5}}), 1e-6);
  }
}

TEST(ReferenceNorms, BadShapesNameTheOpAndShapes) {
  auto ln = ReferenceOp("layer_norm");
  Tensor x = RandomTensor({2, 5}, kF32, 1);
  ExpectInvalid(TryForward(*ln, {x, RandomTensor({4}, kF32, 2), Tensor()}),
                {"layer_norm", "weight", "(4)", "(2, 5)"});
  ExpectInvalid(TryForward(*ln, {x, Tensor(), RandomTensor({2, 5}, kF32, 2)}),
                {"layer_norm", "bias", "(2, 5)"});
  ExpectInvalid(TryForward(*ln, {x, RandomTensor({5}, kF64, 2), Tensor()}),
                {"layer_norm", "same dtype"});
  ExpectInvalid(TryForward(*ln, {Tensor::Scalar(1.0), Tensor(), Tensor()}),
                {"layer_norm", "x", "()"});
  auto rms = ReferenceOp("rms_norm");
  ExpectInvalid(TryForward(*rms, {x, RandomTensor({5, 1}, kF32, 2)}),
                {"rms_norm", "weight", "(5, 1)", "(2, 5)"});
  ExpectInvalid(
      TryForward(*rms,
                 {*Tensor::FromDoubles({2}, {1, 2}, tensor::kI32), Tensor()}),
      {"rms_norm", "int32"});
}

}  // namespace
}  // namespace llmsys::plugins_test
