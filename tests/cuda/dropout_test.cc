// dropout.cuda on the emulated device (tests/cuda/emu: cuda/dropout.cu
// compiled for the CPU, called through the plugin's host code): the
// integer keep test against the contract's float one, the plan, the
// argument checks, and the mask bit for bit against
// llmsys_random_uniform(seed, offset, i) >= p, the values, p = 0 and
// p = 1, the backward from the mask, for all four float dtypes, aligned
// (vector) and unaligned (single-element) data and sizes that are not a
// multiple of 4.
#include "cuda/dropout.h"

#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "framework/tensor/tensor.h"
#include "llmsys/random.h"
#include "tests/cuda/cuda_test_util.h"

namespace llmsys::cuda_test {
namespace {

using tensor::kBF16;
using tensor::kF16;
using tensor::kF32;
using tensor::kF64;
using tensor::kI32;
using tensor::kU8;
using tensor::Tensor;
using Shape = std::vector<int64_t>;
using Vec = std::vector<double>;

// ---- the keep test and the plan ----

// (word >> 8) >= DropoutThreshold(p) exactly when the contract's
// uniform = (word >> 8) * 2^-24 (a float) compares >= p as a double.
TEST(CudaDropoutPlanTest, IntegerThresholdMatchesTheFloatTest) {
  const double tiny = std::ldexp(1.0, -24);
  std::vector<double> ps = {0.0,       1.0,    0.5,      0.1,
                            1.0 / 3.0, tiny,   1 - tiny, 0.7,
                            0.9999999, 1e-300, tiny / 2, 0.25 + tiny / 3};
  std::mt19937 gen(5);
  for (int i = 0; i < 20; ++i)
    ps.push_back(std::uniform_real_distribution<double>(0, 1)(gen));
  for (double p : ps) {
    const uint32_t thr = cuda::DropoutThreshold(p);
    EXPECT_LE(thr, 1u << 24) << p;
    std::vector<uint32_t> ks = {0, 1, (1u << 24) - 1, (1u << 24) - 2};
    for (int64_t d = -2; d <= 2; ++d) {
      const int64_t k = int64_t{thr} + d;
      if (k >= 0 && k < (int64_t{1} << 24))
        ks.push_back(static_cast<uint32_t>(k));
    }
    for (int i = 0; i < 200; ++i) ks.push_back(gen() >> 8);
    for (uint32_t k : ks) {
      const float u = static_cast<float>(k) * (1.0f / 16777216.0f);
      EXPECT_EQ(k >= thr, static_cast<double>(u) >= p)
          << "p " << p << " k " << k << " threshold " << thr;
    }
  }
  EXPECT_EQ(cuda::DropoutThreshold(0.0), 0u);
  EXPECT_EQ(cuda::DropoutThreshold(1.0), 1u << 24);
  EXPECT_EQ(cuda::DropoutThreshold(0.5), 1u << 23);
}

TEST(CudaDropoutPlanTest, ScaleAndPlan) {
  EXPECT_EQ(cuda::DropoutScale(0.0), 1.0);
  EXPECT_EQ(cuda::DropoutScale(0.5), 2.0);
  EXPECT_EQ(cuda::DropoutScale(1.0), 0.0);
  EXPECT_EQ(cuda::DropoutPlan(0).blocks, 1);
  EXPECT_EQ(cuda::DropoutPlan(1).blocks, 1);
  EXPECT_EQ(cuda::DropoutPlan(4 * 256).blocks, 1);
  EXPECT_EQ(cuda::DropoutPlan(4 * 256 + 1).blocks, 2);
  EXPECT_EQ(cuda::DropoutPlan(int64_t{1} << 34).blocks, 65535 * 8);
}

// ---- argument checks ----

TEST(CudaDropoutInferTest, OutputsAndBadP) {
  for (DLDataType t : {kF32, kF64, kBF16, kF16}) {
    absl::StatusOr<Specs> s =
        Infer("dropout.cuda", {FakeTensor{{3, 5}, t}}, {{"p", 0.25}});
    ASSERT_TRUE(s.ok()) << s.status();
    ASSERT_EQ(s->size(), 2u);
    EXPECT_EQ((*s)[0].first, (Shape{3, 5}));
    EXPECT_TRUE(llmsys_dtype_equal((*s)[0].second, t));
    EXPECT_EQ((*s)[1].first, (Shape{3, 5}));
    EXPECT_TRUE(llmsys_dtype_equal((*s)[1].second, kU8));
  }
  for (double p : {-0.1, 1.5}) {
    absl::StatusOr<Specs> s =
        Infer("dropout.cuda", {FakeTensor{{3}, kF32}}, {{"p", p}});
    ASSERT_FALSE(s.ok()) << p;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(s.status().message().find("p must be in [0, 1]"),
              std::string::npos)
        << s.status();
  }
  absl::StatusOr<Specs> s = Infer("dropout.cuda", {FakeTensor{{3}, kI32}});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("must be float32"), std::string::npos)
      << s.status();
}

// ---- values ----

Vec Random(int64_t n, uint32_t seed) {
  return RandomUniform(n, seed, -3.0, 3.0);
}

// x * scale rounded to the dtype as the kernels do it (float32 and float64
// in double, the 16-bit ones in float).
double Scaled(double x, double scale, DLDataType t) {
  if (llmsys_dtype_equal(t, kF64)) return x * scale;
  if (llmsys_dtype_equal(t, kF32))
    return static_cast<double>(static_cast<float>(x * scale));
  return static_cast<double>(static_cast<float>(x) * static_cast<float>(scale));
}

struct Ran {
  Vec out, mask, dx;
  bool ok = false;
};

Ran RunDropout(const Tensor& x, double p, uint64_t seed, uint64_t offset,
               const Vec& g, bool backward) {
  Ran ran;
  std::unique_ptr<runtime::OperatorImpl> impl =
      EmulatedOp("dropout.cuda", "dropout");
  if (impl == nullptr) return ran;
  const runtime::ParamPack pack = *impl->Attrs({{"p", p}});
  runtime::CallOptions options;
  options.poison = true;
  options.rng = {seed, offset};
  absl::StatusOr<std::vector<Tensor>> out = impl->Forward({x}, pack, options);
  EXPECT_TRUE(out.ok()) << out.status();
  if (!out.ok()) return ran;
  ran.out = (*out)[0].ToDoubles();
  ran.mask = (*out)[1].ToDoubles();
  ran.ok = true;
  if (!backward) return ran;
  const Tensor tg = g.empty() ? Tensor() : OnDevice(x.shape(), g, x.dtype());
  absl::StatusOr<std::vector<Tensor>> grads =
      impl->Backward({Tensor()}, {{true, x.shape(), x.dtype()}}, pack, options,
                     *out, {tg, Tensor()}, {true});
  EXPECT_TRUE(grads.ok()) << grads.status();
  if (!grads.ok()) return ran;
  ran.dx = (*grads)[0].ToDoubles();
  return ran;
}

void CheckDropout(DLDataType t, const Shape& shape, double p, uint64_t seed,
                  uint64_t offset, bool unaligned) {
  const std::string what = "dropout " + tensor::DTypeName(t) + " n " +
                           std::to_string(Numel(shape)) + " p " +
                           std::to_string(p) + (unaligned ? " off" : "");
  const int64_t n = Numel(shape);
  const Tensor x = OnDevice(shape, Random(n, 3), t, unaligned);
  const Vec g = OnDevice(shape, Random(n, 4), t).ToDoubles();
  const Ran r = RunDropout(x, p, seed, offset, g, true);
  ASSERT_TRUE(r.ok) << what;
  const Vec xv = x.ToDoubles();
  const double scale = cuda::DropoutScale(p);
  ASSERT_EQ(r.mask.size(), static_cast<size_t>(n)) << what;
  int64_t kept = 0, bad = 0;
  for (int64_t i = 0; i < n && bad < 10; ++i) {
    const bool keep =
        llmsys_random_uniform(seed, offset, static_cast<uint64_t>(i)) >= p;
    kept += keep;
    // The contract's mask, bit for bit; the values as the dtype rounds.
    const double want_x = keep ? Scaled(xv[i], scale, t) : 0.0;
    const double want_g = keep ? Scaled(g[i], scale, t) : 0.0;
    const double tol =
        llmsys_dtype_equal(t, kF32) || llmsys_dtype_equal(t, kF64)
            ? 0.0
            : 1e-2 * (1 + std::abs(want_x) + std::abs(want_g));
    const bool ok = r.mask[i] == (keep ? 1.0 : 0.0) &&
                    std::abs(r.out[i] - want_x) <= tol &&
                    std::abs(r.dx[i] - want_g) <= tol;
    if (!ok) ++bad;
    EXPECT_TRUE(ok) << what << " [" << i << "]: mask " << r.mask[i] << " keep "
                    << keep << " out " << r.out[i] << " want " << want_x
                    << " dx " << r.dx[i] << " want " << want_g;
  }
  if (p == 0.0) {
    EXPECT_EQ(kept, n) << what;
  }
  if (p == 1.0) {
    EXPECT_EQ(kept, 0) << what;
  }
}

TEST(CudaDropoutTest, MaskMatchesTheContractBitForBit) {
  const uint64_t big = (uint64_t{7} << 32) | 0xfffffff0u;  // counter carries
  for (DLDataType t : {kF32, kF64, kBF16, kF16})
    for (const Shape& shape : {Shape{1}, Shape{7}, Shape{4, 9}, Shape{1027}}) {
      CheckDropout(t, shape, 0.3, 1234, 0, false);
      CheckDropout(t, shape, 0.5, 0xdeadbeefcafef00dull, big, false);
      CheckDropout(t, shape, 0.1, 99, uint64_t{5} << 32, true);
    }
}

TEST(CudaDropoutTest, PZeroKeepsEverythingAndPOneNothing) {
  for (DLDataType t : {kF32, kBF16}) {
    CheckDropout(t, {3, 11}, 0.0, 17, 3, false);
    CheckDropout(t, {3, 11}, 1.0, 17, 3, false);
  }
  // p = 0 leaves x as it is.
  const Tensor x = OnDevice({10}, Random(10, 8), kF32);
  const Ran r = RunDropout(x, 0.0, 1, 2, {}, false);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.out, x.ToDoubles());
}

TEST(CudaDropoutTest, NoIncomingGradientGivesZeroAndEmptyIsFine) {
  const Tensor x = OnDevice({2, 6}, Random(12, 9), kF32);
  Ran r = RunDropout(x, 0.5, 1, 0, {}, true);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.dx, Vec(12, 0.0));
  r = RunDropout(OnDevice({0, 3}, {}, kF32), 0.5, 1, 0, {}, true);
  ASSERT_TRUE(r.ok);
  EXPECT_TRUE(r.out.empty());
  EXPECT_TRUE(r.mask.empty());
}

}  // namespace
}  // namespace llmsys::cuda_test
