// The reference elementwise operators: values, broadcasting, gradients
// against central differences, and the errors bad inputs get.
#include <gtest/gtest.h>

#include "tests/plugins/operators/reference_test_util.h"

namespace llmsys::plugins_test {
namespace {

using tensor::kF32;
using tensor::kF64;

TEST(ReferenceElementwise, AddBroadcastsRowAndColumn) {
  auto add = ReferenceOp("add");
  Tensor a = *Tensor::FromDoubles({2, 1}, {1, 2}, kF32);     // column
  Tensor b = *Tensor::FromDoubles({3}, {10, 20, 30}, kF32);  // row
  std::vector<Tensor> out = RunForward(*add, {a, b});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].shape(), (tensor::Shape{2, 3}));
  EXPECT_EQ(out[0].ToDoubles(), (std::vector<double>{11, 21, 31, 12, 22, 32}));
}

TEST(ReferenceElementwise, BroadcastGradientSumsOverExpandedDims) {
  auto mul = ReferenceOp("mul");
  Tensor a = RandomTensor({4, 1, 3}, kF64, 1);
  Tensor b = RandomTensor({5, 1}, kF64, 2);
  EXPECT_LT(GradCheck(*mul, {a, b}), 1e-6);
}

TEST(ReferenceElementwise, EveryOpPassesGradCheck) {
  for (const char* op : {"add", "sub", "mul", "div"}) {
    SCOPED_TRACE(op);
    auto impl = ReferenceOp(op);
    EXPECT_LT(GradCheck(*impl, {RandomTensor({2, 3}, kF64, 3),
                                RandomTensor({3}, kF64, 4, 0.5, 2.0)}),
              1e-6);
  }
  for (const char* op : {"neg", "exp", "tanh", "sigmoid", "relu"}) {
    SCOPED_TRACE(op);
    EXPECT_LT(GradCheck(*ReferenceOp(op), {RandomTensor({7}, kF64, 5)}), 1e-6);
  }
  for (const char* op : {"log", "sqrt"}) {
    SCOPED_TRACE(op);
    EXPECT_LT(
        GradCheck(*ReferenceOp(op), {RandomTensor({7}, kF64, 6, 0.5, 2.0)}),
        1e-6);
  }
  EXPECT_LT(
      GradCheck(*ReferenceOp("pow"), {RandomTensor({5}, kF64, 7, 0.5, 2.0)},
                {{"exponent", 2.5}}),
      1e-6);
  for (const char* form : {"none", "tanh"}) {
    SCOPED_TRACE(form);
    EXPECT_LT(
        GradCheck(*ReferenceOp("gelu"), {RandomTensor({9}, kF64, 8, -3, 3)},
                  {{"approximate", std::string(form)}}),
        1e-6);
  }
}

TEST(ReferenceElementwise, GeluMatchesKnownValues) {
  auto gelu = ReferenceOp("gelu");
  Tensor x = *Tensor::FromDoubles({3}, {-1, 0, 2}, kF64);
  std::vector<double> erf = RunForward(*gelu, {x})[0].ToDoubles();
  EXPECT_NEAR(erf[0], -0.15865525393145707, 1e-15);
  EXPECT_NEAR(erf[2], 1.9544997361036416, 1e-15);
  std::vector<double> tanh =
      RunForward(*gelu, {x}, {{"approximate", std::string("tanh")}})[0]
          .ToDoubles();
  EXPECT_NEAR(tanh[0], -0.15880800939172324, 1e-15);
}

TEST(ReferenceElementwise, MismatchedShapesNameTheOpAndShapes) {
  auto add = ReferenceOp("add");
  absl::StatusOr<std::vector<Tensor>> out = TryForward(
      *add, {RandomTensor({2, 3}, kF32, 1), RandomTensor({4}, kF32, 2)});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(out.status().message().find("add"), std::string::npos);
  EXPECT_NE(out.status().message().find("(2, 3)"), std::string::npos)
      << out.status();
}

TEST(ReferenceElementwise, MixedDtypesAndIntsAreRejected) {
  auto mul = ReferenceOp("mul");
  absl::StatusOr<std::vector<Tensor>> mixed = TryForward(
      *mul, {RandomTensor({2}, kF32, 1), RandomTensor({2}, kF64, 2)});
  ASSERT_FALSE(mixed.ok());
  EXPECT_NE(mixed.status().message().find("same dtype"), std::string::npos)
      << mixed.status();
  absl::StatusOr<std::vector<Tensor>> ints = TryForward(
      *ReferenceOp("exp"), {*Tensor::FromDoubles({2}, {1, 2}, tensor::kI32)});
  ASSERT_FALSE(ints.ok());
  EXPECT_NE(ints.status().message().find("int32"), std::string::npos)
      << ints.status();
}

}  // namespace
}  // namespace llmsys::plugins_test
