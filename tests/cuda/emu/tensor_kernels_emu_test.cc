// The host's own CUDA kernels (framework/cuda/tensor_kernels.cu) on the CPU
// emulation: the gradient norm's two-pass sum of squares (a fixed order,
// the same bits under any thread order) and the in-place scaling that
// clips gradients, against the same arithmetic on the host. The real GPU
// runs them through cuda_test with LLMSYS_CUDA_TEST_ON_GPU=1.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "framework/cuda/tensor_kernels.h"
#include "tests/cuda/emu/emu.h"

namespace llmsys::cuda {
namespace {

// A compact 1-D view of `n` elements of `type` at `data`.
StridedArg Flat(void* data, ElemType type, int64_t n) {
  StridedArg a{};
  a.data = data;
  a.type = type;
  a.ndim = 1;
  a.shape[0] = n;
  a.strides[0] = 1;
  return a;
}

std::vector<float> Values(int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    v[static_cast<size_t>(i)] = static_cast<float>(std::sin(0.37 * i) * 3.0);
  return v;
}

// The partials of each view, then their sum: what SumOfSquares runs.
double SumSquares(const std::vector<StridedArg>& views) {
  std::vector<double> partials(views.size() * kSumSquaresBlocks + 1, -1.0);
  for (size_t i = 0; i < views.size(); ++i)
    EXPECT_EQ(LaunchSumSquaresPartials(
                  views[i], partials.data() + i * kSumSquaresBlocks, nullptr),
              cudaSuccess)
        << emu::LastMessage();
  const int64_t count = static_cast<int64_t>(views.size()) * kSumSquaresBlocks;
  EXPECT_EQ(LaunchSumPartials(partials.data(), count, partials.data() + count,
                              nullptr),
            cudaSuccess)
      << emu::LastMessage();
  return partials[static_cast<size_t>(count)];
}

class TensorKernelsTest : public ::testing::Test {
 protected:
  void TearDown() override { emu::SetOptions({}); }
};

TEST_F(TensorKernelsTest, SumOfSquaresIsTheHostsSumInAFixedOrder) {
  // More elements than the grid has threads (grid-stride), a strided view
  // (every other element), and an empty one whose blocks still write their
  // partials.
  const int64_t big = int64_t{kSumSquaresBlocks} * 256 + 4321;
  std::vector<float> a = Values(big), b = Values(2000);
  StridedArg every_other = Flat(b.data(), ElemType::kF32, 1000);
  every_other.strides[0] = 2;
  std::vector<double> empty;
  const std::vector<StridedArg> views = {Flat(a.data(), ElemType::kF32, big),
                                         every_other,
                                         Flat(empty.data(), ElemType::kF64, 0)};
  double want = 0;
  for (float x : a) want += static_cast<double>(x) * x;
  for (size_t i = 0; i < b.size(); i += 2)
    want += static_cast<double>(b[i]) * b[i];
  const double got = SumSquares(views);
  EXPECT_NEAR(got, want, 1e-12 * want);
  // The order is the kernels', not the threads' schedule: the same bits.
  emu::SetOptions({.order = emu::Order::kShuffle, .seed = 7});
  EXPECT_EQ(SumSquares(views), got);
}

TEST_F(TensorKernelsTest, ScaleRoundsAsTheHostDoes) {
  std::vector<float> f = Values(1000);
  std::vector<float> want = f;
  for (float& x : want) x = static_cast<float>(x * 0.3);  // double, rounded
  ASSERT_EQ(LaunchScale(Flat(f.data(), ElemType::kF32, 1000), 0.3, nullptr),
            cudaSuccess)
      << emu::LastMessage();
  EXPECT_EQ(f, want);
  std::vector<__nv_bfloat16> h(3);
  for (int i = 0; i < 3; ++i) h[i] = __float2bfloat16_rn(1.5f * (i + 1));
  ASSERT_EQ(LaunchScale(Flat(h.data(), ElemType::kBF16, 3), 0.5, nullptr),
            cudaSuccess);
  EXPECT_EQ(__bfloat162float(h[0]), 0.75f);
  EXPECT_EQ(__bfloat162float(h[2]), 2.25f);
}

}  // namespace
}  // namespace llmsys::cuda
