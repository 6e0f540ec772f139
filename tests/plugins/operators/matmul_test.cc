// The reference matmul: known products, transposes, broadcast batch dims,
// gradients against central differences, and the errors bad shapes get.
#include <gtest/gtest.h>

#include "tests/plugins/operators/reference_test_util.h"

namespace llmsys::plugins_test {
namespace {

using tensor::kF32;
using tensor::kF64;

// a = [[1, 2, 3], [4, 5, 6]] (2, 3); b = [[7, 8], [9, 10], [11, 12]] (3, 2)
Tensor A() { return *Tensor::FromDoubles({2, 3}, {1, 2, 3, 4, 5, 6}, kF32); }
Tensor B() { return *Tensor::FromDoubles({3, 2}, {7, 8, 9, 10, 11, 12}, kF32); }

// A compact copy of x with its last two dims swapped.
Tensor Swap(const Tensor& x) { return x.Transpose(-1, -2)->Contiguous(); }

TEST(ReferenceMatmul, TwoByThreeTimesThreeByTwo) {
  auto matmul = ReferenceOp("matmul");
  std::vector<Tensor> out = RunForward(*matmul, {A(), B()});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].shape(), (tensor::Shape{2, 2}));
  EXPECT_EQ(out[0].dtype(), kF32);
  EXPECT_EQ(out[0].ToDoubles(), (std::vector<double>{58, 64, 139, 154}));
}

TEST(ReferenceMatmul, TransposesGiveTheSameProduct) {
  auto matmul = ReferenceOp("matmul");
  const std::vector<double> want = {58, 64, 139, 154};
  EXPECT_EQ(RunForward(*matmul, {Swap(A()), B()}, {{"transpose_a", true}})[0]
                .ToDoubles(),
            want);
  EXPECT_EQ(RunForward(*matmul, {A(), Swap(B())}, {{"transpose_b", true}})[0]
                .ToDoubles(),
            want);
  Tensor both = RunForward(*matmul, {Swap(A()), Swap(B())},
                           {{"transpose_a", true}, {"transpose_b", true}})[0];
  EXPECT_EQ(both.shape(), (tensor::Shape{2, 2}));
  EXPECT_EQ(both.ToDoubles(), want);
  // a^T a: (3, 2) @ (2, 3) = (3, 3).
  Tensor gram = RunForward(*matmul, {A(), A()}, {{"transpose_a", true}})[0];
  EXPECT_EQ(gram.shape(), (tensor::Shape{3, 3}));
  EXPECT_EQ(gram.ToDoubles(),
            (std::vector<double>{17, 22, 27, 22, 29, 36, 27, 36, 45}));
}

TEST(ReferenceMatmul, BatchDimsBroadcast) {
  auto matmul = ReferenceOp("matmul");
  // a (2, 1, 2, 2): two batches of 2x2, b (3, 2, 1): three column vectors.
  Tensor a = *Tensor::FromDoubles({2, 1, 2, 2}, {1, 0, 0, 1, 2, 1, 1, 2},
                                  kF32);  // identity, [[2, 1], [1, 2]]
  Tensor b = *Tensor::FromDoubles({3, 2, 1}, {1, 2, 3, 4, 5, 6}, kF32);
  Tensor out = RunForward(*matmul, {a, b})[0];
  EXPECT_EQ(out.shape(), (tensor::Shape{2, 3, 2, 1}));
  EXPECT_EQ(out.ToDoubles(), (std::vector<double>{1, 2, 3, 4, 5, 6,  // identity
                                                  4, 5, 10, 11, 16, 17}));
}

TEST(ReferenceMatmul, EmptyInnerDimGivesZeros) {
  auto matmul = ReferenceOp("matmul");
  Tensor out = RunForward(
      *matmul, {*Tensor::Zeros({2, 0}, kF32), *Tensor::Zeros({0, 3}, kF32)})[0];
  EXPECT_EQ(out.shape(), (tensor::Shape{2, 3}));
  EXPECT_EQ(out.ToDoubles(), std::vector<double>(6, 0.0));
}

TEST(ReferenceMatmul, GradCheckShapesTransposesAndBroadcasting) {
  struct Case {
    tensor::Shape a, b;
    bool ta, tb;
  };
  const std::vector<Case> cases = {
      {{2, 3}, {3, 4}, false, false},
      {{3, 2}, {3, 4}, true, false},
      {{2, 3}, {4, 3}, false, true},
      {{3, 2}, {4, 3}, true, true},
      {{1, 1}, {1, 5}, false, false},
      {{3, 5, 3}, {3, 3, 2}, false, false},     // equal batch
      {{2, 1, 3, 5}, {4, 5, 3}, false, false},  // (2, 1) with (4)
      {{5, 3}, {2, 3, 5}, true, true},          // 2-D with 3-D
      {{3, 1, 4, 3}, {1, 2, 4, 3}, true, false},
      {{1, 3, 2}, {3, 4, 5, 2}, false, true},
  };
  auto matmul = ReferenceOp("matmul");
  uint64_t seed = 20;
  for (const Case& c : cases) {
    SCOPED_TRACE(tensor::ShapeString(c.a) + " @ " + tensor::ShapeString(c.b) +
                 (c.ta ? " ta" : "") + (c.tb ? " tb" : ""));
    Tensor a = RandomTensor(c.a, kF64, ++seed);
    Tensor b = RandomTensor(c.b, kF64, ++seed);
    EXPECT_LT(GradCheck(*matmul, {a, b},
                        {{"transpose_a", c.ta}, {"transpose_b", c.tb}}),
              1e-6);
  }
}

TEST(ReferenceMatmul, BroadcastGradientSumsOverBatches) {
  auto matmul = ReferenceOp("matmul");
  // a (2, 1, 1) = [[[1]], [[2]]], b (1, 1) = [[3]]; out = a * 3, loss =
  // sum(w * out) with w = 1: grad a = 3 each, grad b = 1 + 2.
  Tensor a = *Tensor::FromDoubles({2, 1, 1}, {1, 2}, kF64);
  Tensor b = *Tensor::FromDoubles({1, 1}, {3}, kF64);
  std::vector<Tensor> g = RunBackward(
      *matmul, {a, b}, {}, *Tensor::FromDoubles({2, 1, 1}, {1, 1}, kF64));
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(g[0].ToDoubles(), (std::vector<double>{3, 3}));
  EXPECT_EQ(g[1].ToDoubles(), (std::vector<double>{3}));
}

TEST(ReferenceMatmul, MismatchedInnerDimsNameBothShapesAndTransposes) {
  auto matmul = ReferenceOp("matmul");
  ExpectInvalid(
      TryForward(*matmul, {RandomTensor({2, 3}, kF32, 1),
                           RandomTensor({4, 2}, kF32, 2)}),
      {"matmul", "(2, 3)", "(4, 2)", "transpose_a=false", "transpose_b=false"});
  // (2, 3) @ (2, 3) fails unless one side is transposed.
  ExpectInvalid(
      TryForward(*matmul,
                 {RandomTensor({2, 3}, kF32, 1), RandomTensor({2, 3}, kF32, 2)},
                 {{"transpose_b", false}}),
      {"matmul", "(2, 3)", "transpose_b=false"});
  EXPECT_TRUE(
      TryForward(*matmul,
                 {RandomTensor({2, 3}, kF32, 1), RandomTensor({2, 3}, kF32, 2)},
                 {{"transpose_b", true}})
          .ok());
  ExpectInvalid(
      TryForward(*matmul,
                 {RandomTensor({3, 2}, kF32, 1), RandomTensor({3, 2}, kF32, 2)},
                 {{"transpose_a", true}, {"transpose_b", true}}),
      {"matmul", "(3, 2)", "transpose_a=true", "transpose_b=true"});
}

TEST(ReferenceMatmul, BadBatchDimsRankAndDtypeAreRejected) {
  auto matmul = ReferenceOp("matmul");
  ExpectInvalid(TryForward(*matmul, {RandomTensor({2, 2, 3}, kF32, 1),
                                     RandomTensor({3, 3, 4}, kF32, 2)}),
                {"matmul", "batch", "(2, 2, 3)", "(3, 3, 4)"});
  ExpectInvalid(TryForward(*matmul, {RandomTensor({3}, kF32, 1),
                                     RandomTensor({3, 4}, kF32, 2)}),
                {"matmul", "2 dims", "(3)", "(3, 4)"});
  ExpectInvalid(TryForward(*matmul, {RandomTensor({2, 3}, kF32, 1),
                                     RandomTensor({3, 4}, kF64, 2)}),
                {"matmul", "same dtype", "float32", "float64"});
  ExpectInvalid(
      TryForward(*matmul, {*Tensor::FromDoubles({1, 1}, {1}, tensor::kI32),
                           RandomTensor({1, 1}, kF32, 2)}),
      {"matmul", "int32"});
}

}  // namespace
TEST(ReferenceLinear, BadShapesAndDtypesNameTheInputs) {
  auto linear = ReferenceOp("linear");
  const Tensor x = RandomTensor({2, 3}, kF32, 1);
  EXPECT_TRUE(
      TryForward(*linear, {x, RandomTensor({4, 3}, kF32, 2), Tensor()}).ok());
  ExpectInvalid(
      TryForward(*linear, {x, RandomTensor({4, 5}, kF32, 2), Tensor()}),
      {"linear", "weight (M, K)", "(2, 3)", "(4, 5)"});
  ExpectInvalid(TryForward(*linear, {x, RandomTensor({3}, kF32, 2), Tensor()}),
                {"linear", "weight (M, K)", "(3)"});
  ExpectInvalid(TryForward(*linear, {x, RandomTensor({4, 3}, kF32, 2),
                                     RandomTensor({3}, kF32, 3)}),
                {"linear", "bias must be (4)", "bias float32 (3)"});
  ExpectInvalid(TryForward(*linear, {x, RandomTensor({4, 3}, kF32, 2),
                                     RandomTensor({4}, kF64, 3)}),
                {"linear", "same dtype", "float32", "float64"});
  ExpectInvalid(
      TryForward(*linear, {x, RandomTensor({4, 3}, kF64, 2), Tensor()}),
      {"linear", "same dtype", "float64"});
}

}  // namespace llmsys::plugins_test
