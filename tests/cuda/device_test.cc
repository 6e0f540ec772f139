// The host's device paths on the emulated CUDA device (emulated_device.h):
// transfers in both directions with any strides and dtypes, fills, gradient
// accumulation and broadcast sums on the device, the gradient norm and its
// clipping, device memory through the host API, the call context an
// operator on a device receives, and the registry's one-id-per-device
// rule. The same paths run on a real GPU in gpu_test.cc.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "framework/autograd/autograd.h"
#include "framework/cuda/cuda_backend.h"
#include "framework/tensor/host_math.h"
#include "framework/tensor/tensor.h"
#include "framework/train/schedule.h"
#include "tests/cuda/cuda_test_util.h"

namespace llmsys::cuda_test {
namespace {

using tensor::kBF16;
using tensor::kF32;
using tensor::kF64;
using tensor::kI64;
using tensor::Tensor;

std::vector<double> Iota(int64_t n, double scale = 1.0) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = scale * i;
  return v;
}

class DeviceTest : public ::testing::Test {
 protected:
  void SetUp() override { device_ = &EmulatedDevice::Install(); }
  EmulatedDevice* device_ = nullptr;
};

TEST_F(DeviceTest, RoundTripKeepsValuesAndDevice) {
  Tensor host = *Tensor::FromDoubles({2, 3}, Iota(6, 0.5), kF32);
  const int before = device_->copies_from_host();
  Tensor dev = *host.ToDevice(kCuda0);
  EXPECT_EQ(dev.device(), kCuda0);
  EXPECT_EQ(dev.Describe(), "float32 (2, 3) cuda:0");
  if (!OnRealGpu()) {
    EXPECT_EQ(device_->copies_from_host(), before + 1);  // one transfer
  }
  EXPECT_EQ(dev.ToDoubles(), host.ToDoubles());
  Tensor back = *dev.ToDevice(tensor::kCpu);
  EXPECT_EQ(back.device(), tensor::kCpu);
  EXPECT_EQ(back.ToDoubles(), host.ToDoubles());
  // Already there: the same tensor, no copy.
  EXPECT_EQ((*dev.ToDevice(kCuda0)).data(), dev.data());
}

TEST_F(DeviceTest, StridedDeviceViewsCopyToTheHost) {
  Tensor dev = *Tensor::FromDoubles({2, 3}, Iota(6), kF64)->ToDevice(kCuda0);
  Tensor t = *dev.Transpose(0, 1);  // (3, 2) view on the device
  EXPECT_FALSE(t.is_contiguous());
  Tensor host = *Tensor::Empty({3, 2}, kF64);
  ASSERT_TRUE(host.CopyFrom(t).ok());
  EXPECT_EQ(host.ToDoubles(), (std::vector<double>{0, 3, 1, 4, 2, 5}));
  Tensor compact = *t.MakeContiguous();
  EXPECT_EQ(compact.device(), kCuda0);
  EXPECT_TRUE(compact.is_contiguous());
  EXPECT_EQ(compact.ToDoubles(), (std::vector<double>{0, 3, 1, 4, 2, 5}));
}

TEST_F(DeviceTest, HostCopiesIntoStridedDeviceViewsWithConversion) {
  Tensor dev = *Tensor::Zeros({2, 3}, kF32, kCuda0);
  EXPECT_EQ(dev.ToDoubles(), std::vector<double>(6, 0.0));
  Tensor col = *dev.Slice(1, 1, 2);  // (2, 1) strided view
  Tensor src = *Tensor::FromDoubles({2, 1}, {7, 9}, kF64);  // converted
  ASSERT_TRUE(col.CopyFrom(src).ok());
  EXPECT_EQ(dev.ToDoubles(), (std::vector<double>{0, 7, 0, 0, 9, 0}));
  // Device to device with dtype conversion: bf16 rounds as on the host.
  Tensor bf = *dev.To(kBF16);
  EXPECT_EQ(bf.device(), kCuda0);
  Tensor x = *Tensor::FromDoubles({1}, {1.00390625}, kF32);  // 1 + 2^-8
  EXPECT_EQ(x.ToDevice(kCuda0)->To(kBF16)->ToDoubles(),
            x.To(kBF16)->ToDoubles());
}

TEST_F(DeviceTest, FillAddIntoAndSumToShapeOnTheDevice) {
  Tensor a = *Tensor::Empty({2, 3}, kF32, kCuda0);
  ASSERT_TRUE(a.Fill(1.5).ok());
  Tensor b = *Tensor::FromDoubles({2, 3}, Iota(6), kF32)->ToDevice(kCuda0);
  ASSERT_TRUE(tensor::AddInto(a, b).ok());
  EXPECT_EQ(a.ToDoubles(), (std::vector<double>{1.5, 2.5, 3.5, 4.5, 5.5, 6.5}));
  // The gradient of a broadcast (1, 3) bias and of a (2, 1) column.
  Tensor rows = *tensor::SumToShape(a, {3});
  EXPECT_EQ(rows.device(), kCuda0);
  EXPECT_EQ(rows.ToDoubles(), (std::vector<double>{6, 8, 10}));
  Tensor cols = *tensor::SumToShape(a, {2, 1});
  EXPECT_EQ(cols.ToDoubles(), (std::vector<double>{7.5, 16.5}));
  // Devices must match.
  Tensor host = *Tensor::Zeros({2, 3}, kF32);
  EXPECT_FALSE(tensor::AddInto(host, b).ok());
}

// ClipGradNorm on GPU gradients: summed and scaled on the device (no
// gradient copied to the host), with the host's norm and clipped values.
TEST_F(DeviceTest, ClipGradNormStaysOnTheDevice) {
  struct Case {
    tensor::Shape shape;
    DLDataType dtype;
  };
  const std::vector<Case> cases = {
      {{300, 700}, kF32}, {{7, 5}, kF64}, {{33}, kBF16}};
  std::vector<autograd::Var> on_host, on_device;
  for (size_t c = 0; c < cases.size(); ++c) {
    int64_t n = 1;
    for (int64_t d : cases[c].shape) n *= d;
    std::vector<double> g(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
      g[static_cast<size_t>(i)] = std::sin(0.1 * i + static_cast<double>(c));
    Tensor grad = *Tensor::FromDoubles(cases[c].shape, g, cases[c].dtype);
    on_host.push_back(autograd::MakeLeaf(*Tensor::Zeros({1}, kF32), true));
    on_host.back()->grad = grad;
    on_device.push_back(autograd::MakeLeaf(*Tensor::Zeros({1}, kF32), true));
    on_device.back()->grad = *grad.ToDevice(kCuda0);
  }
  on_device.push_back(autograd::MakeLeaf(*Tensor::Zeros({1}, kF32), true));
  on_host.push_back(on_device.back());  // no gradient: skipped
  const int before = device_->copies_to_host();
  // Clipped to norm 1, with a loss scale of 4 to divide out.
  absl::StatusOr<double> host = train::ClipGradNorm(on_host, 1.0, 1, 4.0);
  absl::StatusOr<double> dev = train::ClipGradNorm(on_device, 1.0, 1, 4.0);
  ASSERT_TRUE(host.ok()) << host.status();
  ASSERT_TRUE(dev.ok()) << dev.status();
  if (!OnRealGpu()) {
    EXPECT_EQ(device_->copies_to_host(), before);
  }
  EXPECT_GT(*host, 1.0);
  EXPECT_NEAR(*dev, *host, 1e-12 * *host);
  for (size_t c = 0; c < cases.size(); ++c) {
    EXPECT_EQ(on_device[c]->grad.device(), kCuda0);
    const std::vector<double> want = on_host[c]->grad.ToDoubles();
    const std::vector<double> got = on_device[c]->grad.ToDoubles();
    const double tolerance = cases[c].dtype == kBF16 ? 1e-2 : 1e-6;
    for (size_t i = 0; i < want.size(); ++i)
      ASSERT_NEAR(got[i], want[i], tolerance * std::abs(want[i]) + 1e-12)
          << "case " << c << " [" << i << "]";
  }
}

TEST_F(DeviceTest, IndexTensorsAndEmptyShapesTransfer) {
  Tensor idx = *Tensor::FromDoubles({4}, {3, 1, 0, 2}, kI64);
  EXPECT_EQ((*idx.ToDevice(kCuda0)).ToDoubles(), idx.ToDoubles());
  Tensor empty = *Tensor::Empty({0, 5}, kF32, kCuda0);
  EXPECT_TRUE((*empty.ToDevice(tensor::kCpu)).ToDoubles().empty());
}

TEST_F(DeviceTest, AMissingDeviceIsAClearError) {
  absl::StatusOr<Tensor> t = Tensor::Empty({2}, kF32, {kDLCUDA, 3});
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("cuda:3"), std::string::npos)
      << t.status();
}

TEST(GpuAvailableTest, SaysWhyWhenThereIsNoGpu) {
  const absl::Status s = cuda::GpuAvailable();
  if (s.ok())
    GTEST_SKIP() << "this machine has a GPU: " << cuda::DeviceDescription();
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_NE(s.message().find("CUDA"), std::string::npos) << s;
  EXPECT_EQ(cuda::DeviceDescription(), std::string(s.message()));
}

}  // namespace
}  // namespace llmsys::cuda_test
