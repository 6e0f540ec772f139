// The reference shape ops (contiguous, concat, where, masked_fill,
// embedding): values on hand-checked examples, strided inputs, every dtype
// the copying ops take, gradients against central differences, and the
// errors bad inputs get.
#include <gtest/gtest.h>

#include "tests/plugins/operators/reference_test_util.h"

namespace llmsys::plugins_test {
namespace {

using tensor::kBF16;
using tensor::kF16;
using tensor::kF32;
using tensor::kF64;
using tensor::kI32;
using tensor::kI64;
using tensor::kU8;

// 0, 1, ..., n - 1 in `shape`.
Tensor Iota(const tensor::Shape& shape, DLDataType dtype) {
  std::vector<double> v(static_cast<size_t>(tensor::Numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(i);
  return *Tensor::FromDoubles(shape, v, dtype);
}

// ---- contiguous ----

TEST(ReferenceContiguous, ReadsTheStridesOfATranspose) {
  auto contiguous = ReferenceOp("contiguous");
  ASSERT_TRUE(contiguous->flags() & LLMSYS_OP_STRIDED_INPUTS);
  Tensor xt = *Iota({2, 3}, kF32).Transpose(0, 1);  // (3, 2), strides (1, 3)
  ASSERT_FALSE(xt.is_contiguous());
  std::vector<Tensor> out = RunForward(*contiguous, {xt});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].shape(), (tensor::Shape{3, 2}));
  EXPECT_TRUE(out[0].is_contiguous());
  EXPECT_EQ(out[0].ToDoubles(), (std::vector<double>{0, 3, 1, 4, 2, 5}));
}

TEST(ReferenceContiguous, ReadsSlicesWithOffsetAndStep) {
  auto contiguous = ReferenceOp("contiguous");
  Tensor x = Iota({4, 5}, kF64);
  // Rows 1..3, columns 1 and 3: an offset and a column step of 2.
  Tensor s = *(*x.Slice(0, 1, 4)).Slice(1, 1, 5, 2);  // (3, 2)
  ASSERT_NE(s.offset(), 0);
  EXPECT_EQ(RunForward(*contiguous, {s})[0].ToDoubles(),
            (std::vector<double>{6, 8, 11, 13, 16, 18}));
  // A permuted 3-D slice.
  Tensor y = *(*Iota({2, 3, 4}, kF32).Permute({2, 0, 1})).Slice(0, 1, 3);
  EXPECT_EQ(y.shape(), (tensor::Shape{2, 2, 3}));
  EXPECT_EQ(RunForward(*contiguous, {y})[0].ToDoubles(), y.ToDoubles());
}

TEST(ReferenceContiguous, ReadsExpandedDims) {
  auto contiguous = ReferenceOp("contiguous");
  Tensor col = *Tensor::FromDoubles({3, 1}, {1, 2, 3}, kF32);
  Tensor e = *col.Expand({2, 3, 4});  // strides (0, 1, 0)
  Tensor out = RunForward(*contiguous, {e})[0];
  EXPECT_EQ(out.shape(), (tensor::Shape{2, 3, 4}));
  std::vector<double> want;
  for (int b = 0; b < 2; ++b)
    for (int r = 1; r <= 3; ++r)
      for (int c = 0; c < 4; ++c) want.push_back(r);
  EXPECT_EQ(out.ToDoubles(), want);
}

TEST(ReferenceContiguous, CopiesEveryDtype) {
  auto contiguous = ReferenceOp("contiguous");
  for (DLDataType dtype : {kU8, kI32, kI64, kF32, kF64, kBF16, kF16}) {
    SCOPED_TRACE(tensor::DTypeName(dtype));
    Tensor xt = *Iota({3, 4}, dtype).Transpose(0, 1);  // (4, 3)
    Tensor out = RunForward(*contiguous, {xt})[0];
    EXPECT_EQ(out.dtype(), dtype);
    EXPECT_EQ(out.shape(), (tensor::Shape{4, 3}));
    EXPECT_EQ(out.ToDoubles(),
              (std::vector<double>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}));
  }
}

TEST(ReferenceContiguous, CompactZeroDimAndEmptyInputs) {
  auto contiguous = ReferenceOp("contiguous");
  Tensor x = Iota({2, 3}, kI64);
  EXPECT_EQ(RunForward(*contiguous, {x})[0].ToDoubles(), x.ToDoubles());
  Tensor s = Tensor::Scalar(4.5, kF64);
  Tensor out = RunForward(*contiguous, {s})[0];
  EXPECT_EQ(out.shape(), tensor::Shape{});
  EXPECT_EQ(out.ToDoubles(), (std::vector<double>{4.5}));
  Tensor empty = *(*Tensor::Zeros({0, 3}, kF32)).Transpose(0, 1);
  EXPECT_EQ(RunForward(*contiguous, {empty})[0].shape(), (tensor::Shape{3, 0}));
}

TEST(ReferenceContiguous, GradientIsACopy) {
  auto contiguous = ReferenceOp("contiguous");
  Tensor xt = *RandomTensor({3, 5}, kF64, 1).Transpose(0, 1);
  EXPECT_LT(GradCheck(*contiguous, {xt}), 1e-6);
  Tensor w = RandomTensor({5, 3}, kF64, 2);
  std::vector<Tensor> g = RunBackward(*contiguous, {xt}, {}, w);
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].ToDoubles(), w.ToDoubles());
  // The input is not kept for backward: only its shape is needed.
  EXPECT_EQ(contiguous->flags() & LLMSYS_OP_BACKWARD_NEEDS_INPUTS, 0u);
  runtime::CallOptions options;
  options.poison = true;
  absl::StatusOr<std::vector<Tensor>> alone = contiguous->Backward(
      {Tensor()}, {{true, {5, 3}, kF64}}, *contiguous->Attrs({}), options,
      {Tensor()}, {w}, {true});
  ASSERT_TRUE(alone.ok()) << alone.status();
  EXPECT_EQ((*alone)[0].ToDoubles(), w.ToDoubles());
}

// ---- concat ----

TEST(ReferenceConcat, JoinsAlongDim0And1) {
  auto concat = ReferenceOp("concat");
  Tensor a = *Tensor::FromDoubles({1, 2}, {1, 2}, kF32);
  Tensor b = *Tensor::FromDoubles({2, 2}, {3, 4, 5, 6}, kF32);
  Tensor rows = RunForward(*concat, {a, b})[0];
  EXPECT_EQ(rows.shape(), (tensor::Shape{3, 2}));
  EXPECT_EQ(rows.ToDoubles(), (std::vector<double>{1, 2, 3, 4, 5, 6}));

  Tensor c = *Tensor::FromDoubles({2, 1}, {7, 8}, kF32);
  Tensor d = *Tensor::FromDoubles({2, 3}, {1, 2, 3, 4, 5, 6}, kF32);
  Tensor cols = RunForward(*concat, {c, d, c}, {{"dim", int64_t{-1}}})[0];
  EXPECT_EQ(cols.shape(), (tensor::Shape{2, 5}));
  EXPECT_EQ(cols.ToDoubles(),
            (std::vector<double>{7, 1, 2, 3, 7, 8, 4, 5, 6, 8}));
}

TEST(ReferenceConcat, MiddleDimEmptyItemAndOneItem) {
  auto concat = ReferenceOp("concat");
  Tensor a = Iota({2, 1, 2}, kF64);            // 0..3
  Tensor e = *Tensor::Zeros({2, 0, 2}, kF64);  // nothing
  Tensor b =
      *Tensor::FromDoubles({2, 2, 2}, {10, 11, 12, 13, 14, 15, 16, 17}, kF64);
  Tensor out = RunForward(*concat, {a, e, b}, {{"dim", int64_t{1}}})[0];
  EXPECT_EQ(out.shape(), (tensor::Shape{2, 3, 2}));
  EXPECT_EQ(out.ToDoubles(),
            (std::vector<double>{0, 1, 10, 11, 12, 13, 2, 3, 14, 15, 16, 17}));
  EXPECT_EQ(RunForward(*concat, {b})[0].ToDoubles(), b.ToDoubles());
}

TEST(ReferenceConcat, AnyDtypeForward) {
  auto concat = ReferenceOp("concat");
  for (DLDataType dtype : {kU8, kI32, kI64, kBF16}) {
    SCOPED_TRACE(tensor::DTypeName(dtype));
    Tensor a = *Tensor::FromDoubles({2, 1}, {1, 2}, dtype);
    Tensor b = *Tensor::FromDoubles({2, 2}, {3, 4, 5, 6}, dtype);
    Tensor out = RunForward(*concat, {a, b}, {{"dim", int64_t{1}}})[0];
    EXPECT_EQ(out.dtype(), dtype);
    EXPECT_EQ(out.ToDoubles(), (std::vector<double>{1, 3, 4, 2, 5, 6}));
  }
}

TEST(ReferenceConcat, GradCheckSplitsTheGradient) {
  auto concat = ReferenceOp("concat");
  EXPECT_LT(GradCheck(*concat, {RandomTensor({3, 2}, kF64, 1),
                                RandomTensor({1, 2}, kF64, 2),
                                RandomTensor({5, 2}, kF64, 3)}),
            1e-6);
  EXPECT_LT(GradCheck(*concat,
                      {RandomTensor({2, 3, 1}, kF64, 4),
                       RandomTensor({2, 3, 4}, kF64, 5)},
                      {{"dim", int64_t{-1}}}),
            1e-6);
  EXPECT_LT(GradCheck(*concat,
                      {RandomTensor({3, 1, 5}, kF64, 6),
                       RandomTensor({3, 2, 5}, kF64, 7),
                       RandomTensor({3, 3, 5}, kF64, 8)},
                      {{"dim", int64_t{1}}}),
            1e-6);
  // Known split: w = 1..6 over out (3, 2) from a (1, 2) and b (2, 2).
  std::vector<Tensor> g = RunBackward(
      *concat, {RandomTensor({1, 2}, kF64, 9), RandomTensor({2, 2}, kF64, 10)},
      {}, Iota({3, 2}, kF64));
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(g[0].ToDoubles(), (std::vector<double>{0, 1}));
  EXPECT_EQ(g[1].ToDoubles(), (std::vector<double>{2, 3, 4, 5}));
}

TEST(ReferenceConcat, BadInputsAreRejected) {
  auto concat = ReferenceOp("concat");
  ExpectInvalid(TryForward(*concat, {RandomTensor({2, 3}, kF32, 1),
                                     RandomTensor({2, 4}, kF32, 2)}),
                {"concat", "xs[1]", "(2, 4)", "(2, 3)", "dim 0"});
  ExpectInvalid(TryForward(*concat, {RandomTensor({2, 3}, kF32, 1),
                                     RandomTensor({2, 3, 1}, kF32, 2)}),
                {"concat", "(2, 3, 1)", "(2, 3)"});
  ExpectInvalid(TryForward(*concat, {RandomTensor({2, 3}, kF32, 1),
                                     RandomTensor({2, 3}, kF64, 2)}),
                {"concat", "same dtype", "float32", "float64"});
  ExpectInvalid(TryForward(*concat, {RandomTensor({2, 3}, kF32, 1)},
                           {{"dim", int64_t{2}}}),
                {"concat", "dim 2", "out of range"});
  ExpectInvalid(TryForward(*concat, {Tensor::Scalar(1), Tensor::Scalar(2)}),
                {"concat", "0-d"});
}

// ---- where ----

TEST(ReferenceWhere, BroadcastsCondAAndB) {
  auto where = ReferenceOp("where");
  Tensor cond = *Tensor::FromDoubles({2, 1}, {1, 0}, kU8);
  Tensor a = *Tensor::FromDoubles({1, 3}, {1, 2, 3}, kF32);
  Tensor b = Tensor::Scalar(-1, kF32);
  std::vector<Tensor> out = RunForward(*where, {cond, a, b});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].shape(), (tensor::Shape{2, 3}));
  EXPECT_EQ(out[0].ToDoubles(), (std::vector<double>{1, 2, 3, -1, -1, -1}));
}

TEST(ReferenceWhere, CondMayBeIntOrFloat) {
  auto where = ReferenceOp("where");
  Tensor a = *Tensor::FromDoubles({4}, {1, 2, 3, 4}, kF64);
  Tensor b = *Tensor::FromDoubles({4}, {-1, -2, -3, -4}, kF64);
  for (DLDataType dtype : {kI32, kI64, kF32, kF64}) {
    SCOPED_TRACE(tensor::DTypeName(dtype));
    Tensor cond = *Tensor::FromDoubles({4}, {0, 2, -1, 0}, dtype);
    EXPECT_EQ(RunForward(*where, {cond, a, b})[0].ToDoubles(),
              (std::vector<double>{-1, 2, 3, -4}));
  }
  Tensor half = *Tensor::FromDoubles({4}, {0, 0.5, 0, 0}, kF32);
  EXPECT_EQ(RunForward(*where, {half, a, b})[0].ToDoubles(),
            (std::vector<double>{-1, 2, -3, -4}));
}

TEST(ReferenceWhere, GradientsGoToTheChosenSideSummedOverBroadcast) {
  auto where = ReferenceOp("where");
  Tensor cond = *Tensor::FromDoubles({2, 3}, {1, 0, 1, 0, 0, 1}, kU8);
  Tensor a = RandomTensor({3}, kF64, 1);     // broadcast over rows
  Tensor b = RandomTensor({2, 1}, kF64, 2);  // broadcast over columns
  std::vector<Tensor> g =
      RunBackward(*where, {cond, a, b}, {}, Iota({2, 3}, kF64));
  ASSERT_EQ(g.size(), 3u);
  EXPECT_FALSE(g[0].defined());  // cond gets no gradient
  EXPECT_EQ(g[1].ToDoubles(), (std::vector<double>{0, 0, 2 + 5}));
  EXPECT_EQ(g[2].ToDoubles(), (std::vector<double>{1, 3 + 4}));
  EXPECT_LT(GradCheck(*where, {cond, a, b}), 1e-6);
  Tensor c3 = *Tensor::FromDoubles({3, 1, 1}, {1, 0, 1}, kI64);
  EXPECT_LT(GradCheck(*where, {c3, RandomTensor({1, 2, 5}, kF64, 3),
                               RandomTensor({2, 1}, kF64, 4)}),
            1e-6);
}

TEST(ReferenceWhere, BadInputsAreRejected) {
  auto where = ReferenceOp("where");
  ExpectInvalid(TryForward(*where, {*Tensor::FromDoubles({2}, {1, 0}, kU8),
                                    RandomTensor({3}, kF32, 1),
                                    RandomTensor({3}, kF32, 2)}),
                {"where", "broadcast", "cond uint8 (2)", "a float32 (3)",
                 "b float32 (3)"});
  ExpectInvalid(TryForward(*where, {*Tensor::FromDoubles({3}, {1, 0, 1}, kU8),
                                    RandomTensor({3}, kF32, 1),
                                    RandomTensor({3}, kF64, 2)}),
                {"where", "same dtype"});
  ExpectInvalid(TryForward(*where, {*Tensor::FromDoubles({3}, {1, 0, 1}, kU8),
                                    *Tensor::FromDoubles({3}, {1, 2, 3}, kI32),
                                    RandomTensor({3}, kF32, 2)}),
                {"where", "'a'", "int32"});
}

// ---- masked_fill ----

TEST(ReferenceMaskedFill, FillsWhereTheBroadcastMaskIsTrue) {
  auto masked_fill = ReferenceOp("masked_fill");
  Tensor x = *Tensor::FromDoubles({2, 3}, {1, 2, 3, 4, 5, 6}, kF32);
  Tensor mask = *Tensor::FromDoubles({3}, {0, 1, 1}, kU8);
  std::vector<Tensor> out =
      RunForward(*masked_fill, {x, mask}, {{"value", -9.5}});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].shape(), (tensor::Shape{2, 3}));
  EXPECT_EQ(out[0].ToDoubles(),
            (std::vector<double>{1, -9.5, -9.5, 4, -9.5, -9.5}));
  Tensor rows = *Tensor::FromDoubles({2, 1}, {1, 0}, kI32);
  EXPECT_EQ(
      RunForward(*masked_fill, {x, rows}, {{"value", 0.0}})[0].ToDoubles(),
      (std::vector<double>{0, 0, 0, 4, 5, 6}));
}

TEST(ReferenceMaskedFill, GradientIsZeroWhereFilled) {
  auto masked_fill = ReferenceOp("masked_fill");
  Tensor x = RandomTensor({2, 3}, kF64, 1);
  Tensor mask = *Tensor::FromDoubles({2, 1}, {0, 1}, kU8);
  std::vector<Tensor> g = RunBackward(*masked_fill, {x, mask}, {{"value", 1.0}},
                                      Iota({2, 3}, kF64));
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(g[0].ToDoubles(), (std::vector<double>{0, 1, 2, 0, 0, 0}));
  EXPECT_FALSE(g[1].defined());
  EXPECT_LT(GradCheck(*masked_fill, {x, mask}, {{"value", 1.0}}), 1e-6);
  Tensor m3 = *Tensor::FromDoubles(
      {3, 1, 5}, {1, 0, 0, 1, 0, 0, 1, 1, 0, 0, 1, 1, 1, 1, 0}, kU8);
  EXPECT_LT(GradCheck(*masked_fill, {RandomTensor({3, 4, 5}, kF64, 2), m3},
                      {{"value", -2.0}}),
            1e-6);
}

TEST(ReferenceMaskedFill, MaskMustBroadcastToX) {
  auto masked_fill = ReferenceOp("masked_fill");
  // (2, 3) and (3) broadcast to (2, 3), which is not x's shape.
  ExpectInvalid(
      TryForward(*masked_fill,
                 {RandomTensor({3}, kF32, 1),
                  *Tensor::FromDoubles({2, 3}, {1, 0, 1, 0, 1, 0}, kU8)},
                 {{"value", 0.0}}),
      {"masked_fill", "mask uint8 (2, 3)", "x float32 (3)"});
  ExpectInvalid(TryForward(*masked_fill,
                           {RandomTensor({2, 3}, kF32, 1),
                            *Tensor::FromDoubles({2}, {1, 0}, kU8)},
                           {{"value", 0.0}}),
                {"masked_fill", "(2)", "(2, 3)"});
}

// ---- embedding ----

// weight (4, 2): row r is [10 r, 10 r + 1].
Tensor Weight(DLDataType dtype) {
  return *Tensor::FromDoubles({4, 2}, {0, 1, 10, 11, 20, 21, 30, 31}, dtype);
}

TEST(ReferenceEmbedding, GathersRows) {
  auto embedding = ReferenceOp("embedding");
  for (DLDataType itype : {kI32, kI64}) {
    SCOPED_TRACE(tensor::DTypeName(itype));
    Tensor idx = *Tensor::FromDoubles({2, 3}, {3, 0, 1, 1, 2, 3}, itype);
    std::vector<Tensor> out = RunForward(*embedding, {Weight(kF32), idx});
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].shape(), (tensor::Shape{2, 3, 2}));
    EXPECT_EQ(out[0].dtype(), kF32);
    EXPECT_EQ(out[0].ToDoubles(), (std::vector<double>{30, 31, 0, 1, 10, 11, 10,
                                                       11, 20, 21, 30, 31}));
  }
  Tensor scalar = *Tensor::FromDoubles({}, {2}, kI64);
  Tensor row = RunForward(*embedding, {Weight(kF64), scalar})[0];
  EXPECT_EQ(row.shape(), (tensor::Shape{2}));
  EXPECT_EQ(row.ToDoubles(), (std::vector<double>{20, 21}));
}

TEST(ReferenceEmbedding, BackwardScatterAddsRepeatedIndices) {
  auto embedding = ReferenceOp("embedding");
  Tensor idx = *Tensor::FromDoubles({3}, {2, 0, 2}, kI64);
  std::vector<Tensor> g =
      RunBackward(*embedding, {Weight(kF64), idx}, {}, Iota({3, 2}, kF64));
  ASSERT_EQ(g.size(), 2u);
  // Row 2 gets w rows 0 and 2; row 0 gets w row 1; rows 1 and 3 nothing.
  EXPECT_EQ(g[0].ToDoubles(), (std::vector<double>{2, 3, 0, 0, 4, 6, 0, 0}));
  EXPECT_FALSE(g[1].defined());
  EXPECT_LT(
      GradCheck(*embedding, {RandomTensor({5, 3}, kF64, 1),
                             *Tensor::FromDoubles(
                                 {2, 2, 2}, {4, 0, 4, 1, 1, 3, 0, 4}, kI32)}),
      1e-6);
}

TEST(ReferenceEmbedding, IndexOutOfRangeNamesValueAndPosition) {
  auto embedding = ReferenceOp("embedding");
  ExpectInvalid(
      TryForward(*embedding, {Weight(kF32), *Tensor::FromDoubles(
                                                {2, 2}, {0, 1, 4, 2}, kI64)}),
      {"embedding", "index 4", "(1, 0)", "[0, 4)", "indices int64 (2, 2)",
       "weight float32 (4, 2)"});
  ExpectInvalid(
      TryForward(*embedding,
                 {Weight(kF32), *Tensor::FromDoubles({3}, {0, -1, 2}, kI32)}),
      {"embedding", "index -1", "(1)"});
}

TEST(ReferenceEmbedding, BadShapesAndDtypesAreRejected) {
  auto embedding = ReferenceOp("embedding");
  ExpectInvalid(TryForward(*embedding, {RandomTensor({4}, kF32, 1),
                                        *Tensor::FromDoubles({1}, {0}, kI64)}),
                {"embedding", "2-D", "weight float32 (4)"});
  ExpectInvalid(
      TryForward(*embedding, {Weight(kF32), RandomTensor({2}, kF32, 1)}),
      {"embedding", "indices", "float32"});
  ExpectInvalid(TryForward(*embedding, {*Tensor::FromDoubles({1, 1}, {1}, kI32),
                                        *Tensor::FromDoubles({1}, {0}, kI64)}),
                {"embedding", "weight", "int32"});
}

}  // namespace
}  // namespace llmsys::plugins_test
