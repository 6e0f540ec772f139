// Tensors: views share storage and never copy, broadcasting, dtypes, host
// alignment, and the DLPack round trip.
#include "framework/tensor/tensor.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "framework/core/thread_pool.h"
#include "framework/tensor/host_math.h"

namespace llmsys::tensor {
namespace {

Tensor Iota(const Shape& shape, DLDataType dtype = kF32) {
  std::vector<double> v(static_cast<size_t>(Numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(i);
  return *Tensor::FromDoubles(shape, v, dtype);
}

TEST(TensorTest, EmptyIsAlignedCompactAndRecordsItsDevice) {
  Tensor t = *Tensor::Empty({3, 5}, kF32);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data()) % 64, 0u);
  EXPECT_EQ(t.strides(), (Shape{5, 1}));
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.device().device_type, kDLCPU);
  EXPECT_EQ(t.Describe(), "float32 (3, 5) cpu");
  EXPECT_FALSE(Tensor::Empty({2, -1}, kF32).ok());
  EXPECT_FALSE(Tensor::Empty({2}, DLDataType{kDLFloat, 8, 1}).ok());
  EXPECT_FALSE(Tensor::Empty({1, 1, 1, 1, 1, 1, 1, 1, 1}, kF32).ok());
}

TEST(TensorTest, ViewsShareStorageWithoutCopying) {
  Tensor x = Iota({2, 3, 4});
  Tensor t = *x.Transpose(0, 2);  // (4, 3, 2)
  EXPECT_EQ(t.shape(), (Shape{4, 3, 2}));
  EXPECT_EQ(t.storage(), x.storage());
  EXPECT_FALSE(t.is_contiguous());
  // t[1][2][1] = x[1][2][1] = 1*12 + 2*4 + 1
  EXPECT_EQ(t.Contiguous().ToDoubles()[1 * 6 + 2 * 2 + 1], 21);

  Tensor s = *x.Slice(2, 1, 4, 2);  // (2, 3, 2): columns 1 and 3
  EXPECT_EQ(s.storage(), x.storage());
  EXPECT_EQ(s.ToDoubles(),
            (std::vector<double>{1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23}));
  Tensor neg = *x.Slice(-1, -2, 100);  // the last two, clamped
  EXPECT_EQ(neg.shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(neg.ToDoubles()[0], 2);

  Tensor row = Iota({1, 3});
  Tensor e = *row.Expand({4, 2, -1});
  EXPECT_EQ(e.shape(), (Shape{4, 2, 3}));
  EXPECT_EQ(e.strides(), (Shape{0, 0, 1}));
  EXPECT_EQ(e.ToDoubles()[23], 2);
  EXPECT_FALSE(row.Expand({4, 2}).ok());  // 3 -> 2 is not an expansion

  Tensor u = *(*x.Unsqueeze(1)).Squeeze(1);
  EXPECT_EQ(u.shape(), x.shape());
  EXPECT_FALSE(x.Squeeze(0).ok());
}

TEST(TensorTest, ViewNeedsCompatibleStridesAndReshapeCopiesOtherwise) {
  Tensor x = Iota({2, 3, 4});
  Tensor v = *x.View({6, -1});
  EXPECT_EQ(v.shape(), (Shape{6, 4}));
  EXPECT_EQ(v.storage(), x.storage());
  Tensor t = *x.Transpose(1, 2);  // (2, 4, 3)
  // Merging the first dim with a permuted one is still a view...
  Tensor merged = *(*x.Permute({1, 0, 2})).View({3, 2, 2, 2});
  EXPECT_EQ(merged.storage(), x.storage());
  // ...flattening a transposed pair is not.
  absl::StatusOr<Tensor> flat = t.View({2, 12});
  EXPECT_TRUE(absl::IsFailedPrecondition(flat.status())) << flat.status();
  Tensor copy = *t.Reshape({2, 12});
  EXPECT_NE(copy.storage(), x.storage());
  EXPECT_EQ(copy.ToDoubles(), t.ToDoubles());
  EXPECT_FALSE(x.View({5, -1}).ok());
  EXPECT_FALSE(x.View({-1, -1}).ok());
}

TEST(TensorTest, PermuteAndDimErrorsNameTheProblem) {
  Tensor x = Iota({2, 3});
  absl::StatusOr<Tensor> p = x.Permute({0, 0});
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("repeats dim 0"), std::string::npos);
  absl::StatusOr<Tensor> t = x.Transpose(0, 2);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("dim 2 is out of range for 2 dims"),
            std::string::npos)
      << t.status();
}

TEST(TensorTest, Broadcasting) {
  EXPECT_EQ(*BroadcastShapes({3, 1, 5}, {4, 1}), (Shape{3, 4, 5}));
  EXPECT_EQ(*BroadcastShapes({}, {2}), (Shape{2}));
  absl::StatusOr<Shape> bad = BroadcastShapes({2, 3}, {4});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("(2, 3) and (4)"), std::string::npos);
  Tensor g = Iota({2, 3});
  EXPECT_EQ((*SumToShape(g, {1, 3})).ToDoubles(),
            (std::vector<double>{3, 5, 7}));
  EXPECT_EQ((*SumToShape(g, {})).ToDoubles(), (std::vector<double>{15}));
}

TEST(TensorTest, DtypesConvertAndHalfTypesRoundToNearestEven) {
  EXPECT_EQ(DTypeName(kBF16), "bfloat16");
  EXPECT_EQ(*ParseDType("int64"), kI64);
  EXPECT_FALSE(ParseDType("float128").ok());
  Tensor x = *Tensor::FromDoubles({4}, {1.0, -2.5, 1.00390625, 65504}, kF32);
  EXPECT_EQ((*x.To(kBF16)).ToDoubles(),
            (std::vector<double>{1.0, -2.5, 1.0, 65536}));
  EXPECT_EQ((*x.To(kF16)).ToDoubles(),
            (std::vector<double>{1.0, -2.5, 1.00390625, 65504}));
  EXPECT_EQ((*x.To(kI32)).ToDoubles(), (std::vector<double>{1, -2, 1, 65504}));
  EXPECT_EQ(FloatToBF16(1.0f + 1.0f / 256), 0x3f80);  // tie: to even
  EXPECT_EQ(BF16ToFloat(FloatToBF16(3.0f)), 3.0f);
}

TEST(TensorTest, DLPackRoundTripKeepsStorageAlive) {
  DLManagedTensor* managed = nullptr;
  {
    Tensor x = Iota({3, 4}, kF64);
    managed = (*x.Transpose(0, 1)).ToDLPack();
  }  // x is gone; the DLPack owner keeps the storage
  EXPECT_EQ(managed->dl_tensor.ndim, 2);
  EXPECT_EQ(managed->dl_tensor.shape[0], 4);
  EXPECT_EQ(managed->dl_tensor.strides[0], 1);
  Tensor back = *Tensor::FromDLPack(managed);
  EXPECT_EQ(back.shape(), (Shape{4, 3}));
  EXPECT_EQ(back.ToDoubles()[1], 4);  // back[0][1] = x[1][0]

  // A borrowed DLTensor is copied.
  std::vector<int32_t> raw = {1, 2, 3, 4, 5, 6};
  int64_t shape[2] = {2, 3};
  DLTensor view{raw.data(), {kDLCPU, 0}, 2, kI32, shape, nullptr, 0};
  Tensor copy = *Tensor::CopyOf(view);
  raw[0] = 100;
  EXPECT_EQ(copy.ToDoubles()[0], 1);
  view.dtype = DLDataType{kDLComplex, 64, 1};
  EXPECT_FALSE(Tensor::CopyOf(view).ok());
}

TEST(TensorTest, AsStridedStaysInsideItsStorage) {
  Tensor x = Iota({6});
  EXPECT_EQ((*x.AsStrided({2, 2}, {3, 1}, 1)).ToDoubles(),
            (std::vector<double>{1, 2, 4, 5}));
  absl::StatusOr<Tensor> out = x.AsStrided({3, 3}, {3, 1}, 0);
  EXPECT_TRUE(absl::IsOutOfRange(out.status())) << out.status();
}

// Copies into and sums over strided views past the size where they split
// over the host's pool (here 3 threads; 3 x 64 x 2 x 1024 floats) give the
// serial results.
TEST(TensorTest, LargeStridedCopiesAndSumsMatchOneThread) {
  const Tensor x = Iota({3, 64, 2, 1024});
  // The heads-like layout: (3, 64, 2, 1024) viewed as (3, 2, 64, 1024).
  const Tensor xt = *x.Transpose(1, 2);
  auto run = [&](int threads) {
    core::SetHostThreads(threads);
    Tensor dst = *Tensor::Zeros({3, 2, 64, 2048}, kF32);
    Tensor left = *dst.Slice(3, 0, 1024, 1);
    Tensor right = *dst.Slice(3, 1024, 2048, 1);
    EXPECT_TRUE(left.CopyFrom(xt).ok());
    EXPECT_TRUE(right.CopyFrom(xt).ok());
    EXPECT_TRUE(AddInto(right, xt).ok());
    return dst.ToDoubles();
  };
  const std::vector<double> one = run(1), three = run(3);
  core::SetHostThreads(1);
  EXPECT_EQ(three, one);
  // Spot checks: element (b, h, t, j) of the left half is x[b, t, h, j];
  // the right half holds it twice.
  auto at = [&](int64_t b, int64_t h, int64_t t, int64_t j) {
    return one[static_cast<size_t>(((b * 2 + h) * 64 + t) * 2048 + j)];
  };
  auto x_at = [](int64_t b, int64_t h, int64_t t, int64_t j) {
    return static_cast<double>(((b * 64 + t) * 2 + h) * 1024 + j);
  };
  EXPECT_EQ(at(2, 1, 63, 1023), x_at(2, 1, 63, 1023));
  EXPECT_EQ(at(1, 0, 5, 1024 + 7), 2 * x_at(1, 0, 5, 7));
}

}  // namespace
}  // namespace llmsys::tensor
