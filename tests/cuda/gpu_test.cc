// The CUDA backend and llmsys.cuda on a real GPU: transfers, the host's
// device kernels, out-of-memory errors, and every operator of cuda.so
// through the conformance suite against the CPU reference. Each test skips,
// saying why, where no GPU can run (tools/gpu_check.sh runs them on one).
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "framework/conformance/conformance.h"
#include "framework/cuda/cuda_backend.h"
#include "framework/runtime/registry.h"
#include "framework/tensor/device.h"
#include "framework/tensor/host_math.h"
#include "framework/tensor/tensor.h"

namespace llmsys::cuda_test {
namespace {

using tensor::kBF16;
using tensor::kF32;
using tensor::kF64;
using tensor::Tensor;

constexpr DLDevice kGpu{kDLCUDA, 0};

#define LLMSYS_SKIP_WITHOUT_GPU()                             \
  do {                                                        \
    if (absl::Status s = cuda::GpuAvailable(); !s.ok())       \
      GTEST_SKIP() << "no GPU can run here: " << s.message(); \
  } while (0)

TEST(GpuTest, TransfersStridesAndConversions) {
  LLMSYS_SKIP_WITHOUT_GPU();
  std::printf("GPU: %s\n", cuda::DeviceDescription().c_str());
  std::vector<double> v(24);
  for (size_t i = 0; i < v.size(); ++i) v[i] = 0.25 * static_cast<double>(i);
  Tensor host = *Tensor::FromDoubles({2, 3, 4}, v, kF32);
  Tensor dev = *host.ToDevice(kGpu);
  EXPECT_EQ(dev.ToDoubles(), host.ToDoubles());
  Tensor perm = *dev.Permute({2, 0, 1});
  Tensor host_perm = host.Permute({2, 0, 1})->Contiguous();
  EXPECT_EQ(perm.MakeContiguous()->ToDoubles(), host_perm.ToDoubles());
  EXPECT_EQ(dev.To(kBF16)->ToDoubles(), host.To(kBF16)->ToDoubles());
  EXPECT_EQ(dev.To(kF64)->ToDoubles(), host.To(kF64)->ToDoubles());
  Tensor sum = *tensor::SumToShape(dev, {3, 1});
  EXPECT_EQ(sum.ToDoubles(), tensor::SumToShape(host, {3, 1})->ToDoubles());
  Tensor acc = *Tensor::Zeros({2, 3, 4}, kF32, kGpu);
  ASSERT_TRUE(tensor::AddInto(acc, dev).ok());
  ASSERT_TRUE(tensor::AddInto(acc, dev).ok());
  EXPECT_EQ(acc.ToDoubles(), tensor::Add(host, host)->ToDoubles());
}

TEST(GpuTest, OutOfMemoryIsAStatusNamingTheDevice) {
  LLMSYS_SKIP_WITHOUT_GPU();
  absl::StatusOr<Tensor> huge =
      Tensor::Empty({int64_t{1} << 40}, kF32, kGpu);  // 4 TiB
  ASSERT_FALSE(huge.ok());
  EXPECT_TRUE(absl::IsResourceExhausted(huge.status())) << huge.status();
  EXPECT_NE(huge.status().message().find("cuda:0"), std::string::npos)
      << huge.status();
  // The device still works afterwards.
  EXPECT_TRUE(Tensor::Zeros({1024}, kF32, kGpu).ok());
}

TEST(GpuTest, EveryCudaOperatorMatchesTheReference) {
  LLMSYS_SKIP_WITHOUT_GPU();
  runtime::PluginRegistry cuda, oracle;
  const std::string dir = LLMSYS_BUILTIN_PLUGIN_DIR;
  ASSERT_TRUE(cuda.LoadFile(dir + "/cuda.so").ok());
  ASSERT_TRUE(oracle.LoadFile(dir + "/reference.so").ok());
  const std::vector<conformance::OpReport> reports =
      conformance::CheckOperators(cuda.Components(), oracle);
  std::printf("%-24s %6s %12s %12s %12s\n", "implementation", "cases",
              "forward", "backward", "gradcheck");
  for (const conformance::OpReport& r : reports) {
    std::printf("%-24s %6d %12.3g %12.3g %12.3g%s\n", r.implementation.c_str(),
                r.cases, r.forward_error, r.backward_error, r.gradcheck_error,
                r.skipped ? (" skipped: " + r.skip_reason).c_str() : "");
    EXPECT_TRUE(r.passed()) << r.implementation << ": " << r.failures[0];
  }
}

}  // namespace
}  // namespace llmsys::cuda_test
