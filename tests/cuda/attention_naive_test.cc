// attention.naive on the emulated device (tests/cuda/emu: the kernels of
// cuda/attention_naive.cu compiled for the CPU, called through the plugin's
// host code): its workspace plan, its argument checks, and its outputs and
// gradients against the reference semantics written out in double in
// attention_test_util.cc (masks, causal, dropout from the call's random
// stream, a row with every key masked, NaN keys), for all four float dtypes.
#include "cuda/attention_naive.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "framework/tensor/tensor.h"
#include "tests/cuda/attention_test_util.h"
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
using Vec = std::vector<double>;

constexpr double kInf = std::numeric_limits<double>::infinity();

// ---- the workspace plan ----

TEST(NaiveAttentionPlanTest, TheWorkspaceHoldsEveryScoreInTheAccumulator) {
  using cuda::DType;
  const cuda::NaiveAttentionShape s{2, 3, 4, 5, 8, 8};
  EXPECT_EQ(cuda::NaiveAttentionWorkspaceBytes(DType::kF32, s),
            2u * 3 * 4 * 5 * 4);
  EXPECT_EQ(cuda::NaiveAttentionWorkspaceBytes(DType::kBF16, s),
            2u * 3 * 4 * 5 * 4);
  EXPECT_EQ(cuda::NaiveAttentionWorkspaceBytes(DType::kF16, s),
            2u * 3 * 4 * 5 * 4);
  EXPECT_EQ(cuda::NaiveAttentionWorkspaceBytes(DType::kF64, s),
            2u * 3 * 4 * 5 * 8);
  EXPECT_EQ(cuda::NaiveAttentionWorkspaceBytes(DType::kF32, {2, 3, 4, 0, 8, 8}),
            0u);
}

// ---- argument checks ----

TEST(NaiveAttentionInferTest, OutputsFollowQAndV) {
  for (DLDataType t : {kF32, kF64, kBF16, kF16}) {
    absl::StatusOr<Specs> s =
        Infer("attention.naive",
              {FakeTensor{{2, 3, 4, 8}, t}, FakeTensor{{2, 3, 5, 8}, t},
               FakeTensor{{2, 3, 5, 6}, t}, FakeTensor{{2, 5}, kU8}});
    ASSERT_TRUE(s.ok()) << s.status();
    ASSERT_EQ(s->size(), 2u);
    EXPECT_EQ((*s)[0].first, (std::vector<int64_t>{2, 3, 4, 6}));
    EXPECT_EQ((*s)[1].first, (std::vector<int64_t>{2, 3, 4}));
    EXPECT_TRUE(llmsys_dtype_equal((*s)[0].second, t));
    EXPECT_TRUE(llmsys_dtype_equal((*s)[1].second, t.bits == 16 ? kF32 : t));
  }
}

TEST(NaiveAttentionInferTest, BadInputsNameTheProblem) {
  struct Bad {
    std::vector<std::optional<FakeTensor>> in;
    runtime::AttrList attrs;
    std::string says;
  };
  const std::vector<Bad> bad = {
      {{FakeTensor{{2, 3, 4, 8}, kF32}, FakeTensor{{2, 3, 5, 7}, kF32},
        FakeTensor{{2, 3, 5, 6}, kF32}, std::nullopt},
       {},
       "q and k must agree on D"},
      {{FakeTensor{{2, 3, 4, 8}, kF32}, FakeTensor{{2, 3, 5, 8}, kF32},
        FakeTensor{{2, 3, 6, 6}, kF32}, std::nullopt},
       {},
       "k and v must agree on M"},
      {{FakeTensor{{2, 3, 4, 8}, kF32}, FakeTensor{{2, 3, 5, 8}, kF32},
        FakeTensor{{2, 3, 5, 6}, kF32}, FakeTensor{{2, 4}, kU8}},
       {},
       "key_padding_mask must have shape"},
      {{FakeTensor{{2, 3, 4, 8}, kF32}, FakeTensor{{2, 3, 5, 8}, kF64},
        FakeTensor{{2, 3, 5, 6}, kF32}, std::nullopt},
       {},
       "same dtype"},
      {{FakeTensor{{2, 3, 4, 8}, kI32}, FakeTensor{{2, 3, 5, 8}, kI32},
        FakeTensor{{2, 3, 5, 6}, kI32}, std::nullopt},
       {},
       "must be float32"},
      {{FakeTensor{{2, 3, 4, 8}, kF32}, FakeTensor{{2, 3, 5, 8}, kF32},
        FakeTensor{{2, 3, 5, 6}, kF32}, std::nullopt},
       {{"dropout_p", 1.5}},
       "dropout_p must be in [0, 1]"},
      {{FakeTensor{{3, 4, 8}, kF32}, FakeTensor{{3, 5, 8}, kF32},
        FakeTensor{{3, 5, 6}, kF32}, std::nullopt},
       {},
       "must be 4-d"},
  };
  for (const Bad& b : bad) {
    absl::StatusOr<Specs> s = Infer("attention.naive", b.in, b.attrs);
    ASSERT_FALSE(s.ok()) << b.says;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << b.says;
    EXPECT_NE(s.status().message().find(b.says), std::string::npos)
        << s.status();
  }
}

// ---- values against the reference semantics ----

using Problem = AttentionProblem;
using Result = AttentionResult;

Vec Random(int64_t n, uint32_t seed, double lo = -1.0, double hi = 1.0) {
  return RandomUniform(n, seed, lo, hi);
}

// Runs attention.naive forward and (with_grad) backward on the emulated
// device; the inputs it used (after rounding to `dtype`) come back in q, k,
// v, g.
Result RunNaive(const Problem& s, DLDataType dtype, DLDataType mask_dtype,
                Vec* q, Vec* k, Vec* v, Vec* g, bool with_grad = true) {
  return RunAttention(
      "attention.naive", {}, s, dtype, mask_dtype, q, k, v, g,
      with_grad ? std::vector<bool>{true, true, true} : std::vector<bool>{});
}

double Tolerance(DLDataType t) {
  if (llmsys_dtype_equal(t, kF64)) return 1e-12;
  if (llmsys_dtype_equal(t, kF32)) return 2e-5;
  return 3e-2;  // bfloat16 and float16 inputs and outputs
}

void Check(const Problem& s, DLDataType dtype, DLDataType mask_dtype = kU8) {
  Vec q = Random(s.b * s.h * s.n * s.d, 1),
      k = Random(s.b * s.h * s.m * s.d, 2),
      v = Random(s.b * s.h * s.m * s.dv, 3),
      g = Random(s.b * s.h * s.n * s.dv, 4);
  const Result got = RunNaive(s, dtype, mask_dtype, &q, &k, &v, &g);
  const Result want = AttentionReference(s, q, k, v, g);
  const double tol = Tolerance(dtype);
  ExpectNear(got.out, want.out, tol, "out");
  ExpectNear(got.lse, want.lse, dtype.bits == 16 ? 1e-4 : tol, "lse");
  ExpectNear(got.dq, want.dq, tol, "dq");
  ExpectNear(got.dk, want.dk, tol, "dk");
  ExpectNear(got.dv, want.dv, tol, "dv");
}

TEST(NaiveAttentionTest, PlainAttentionInEveryDtype) {
  for (DLDataType t : {kF64, kF32, kBF16, kF16}) {
    SCOPED_TRACE(tensor::DTypeName(t));
    Check({.b = 2, .h = 2, .n = 3, .m = 5, .d = 4, .dv = 3}, t);
  }
}

TEST(NaiveAttentionTest, PaddingAndCausalMasksWithAFullyMaskedBatch) {
  // Batch 1 masks every key: its rows give out 0, lse -inf, no gradient.
  Problem s{.b = 2, .h = 2, .n = 5, .m = 4, .d = 3, .dv = 2, .causal = true};
  s.mask = {0, 1, 0, 0,   // batch 0: key 1 is padding
            1, 1, 1, 1};  // batch 1: everything
  for (DLDataType t : {kF64, kF32, kBF16}) {
    SCOPED_TRACE(tensor::DTypeName(t));
    Check(s, t);
  }
  for (DLDataType mt : {kI32, tensor::kI64, kF32, kF64}) {
    SCOPED_TRACE("mask " + std::string(mt.code == kDLFloat ? "float" : "int") +
                 std::to_string(mt.bits));
    Check(s, kF64, mt);
  }
  Vec q = Random(2 * 2 * 5 * 3, 1), k = Random(2 * 2 * 4 * 3, 2),
      v = Random(2 * 2 * 4 * 2, 3), g = Random(2 * 2 * 5 * 2, 4);
  const Result r = RunNaive(s, kF32, kU8, &q, &k, &v, &g);
  ASSERT_EQ(r.lse.size(), 20u);
  for (int64_t i = 10; i < 20; ++i) EXPECT_EQ(r.lse[i], -kInf) << i;
  for (int64_t i = 10 * 2; i < 20 * 2; ++i) EXPECT_EQ(r.out[i], 0.0) << i;
}

TEST(NaiveAttentionTest, CausalWithMoreKeysThanQueriesAndAScale) {
  Problem s{.b = 1, .h = 3, .n = 3, .m = 6, .d = 5, .dv = 4, .causal = true};
  s.scale = 0.7;
  for (DLDataType t : {kF64, kF32}) {
    SCOPED_TRACE(tensor::DTypeName(t));
    Check(s, t);
  }
}

TEST(NaiveAttentionTest, DropoutKeepsWhatTheRandomStreamSays) {
  Problem s{.b = 2, .h = 2, .n = 4, .m = 6, .d = 3, .dv = 5};
  s.p = 0.3;
  s.seed = 1234;
  s.offset = 77;
  s.causal = true;
  s.mask = {0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  for (DLDataType t : {kF64, kF32, kBF16, kF16}) {
    SCOPED_TRACE(tensor::DTypeName(t));
    Check(s, t);
  }
  s.p = 1.0;  // everything dropped: zeros, finite gradients
  Check(s, kF64);
}

TEST(NaiveAttentionTest, ANanKeyReachesTheRowsThatSeeIt) {
  Problem s{.b = 1, .h = 1, .n = 4, .m = 5, .d = 3, .dv = 2, .causal = true};
  Vec q = Random(4 * 3, 1), k = Random(5 * 3, 2), v = Random(5 * 2, 3),
      g = Random(4 * 2, 4);
  k[2 * 3 + 1] = std::numeric_limits<double>::quiet_NaN();  // key 2
  const Result got = RunNaive(s, kF64, kU8, &q, &k, &v, &g);
  const Result want = AttentionReference(s, q, k, v, g);
  ExpectNear(got.out, want.out, 1e-12, "out");
  ExpectNear(got.lse, want.lse, 1e-12, "lse");
  // Rows 0 and 1 do not see key 2 (causal): finite; rows 2 and 3: NaN.
  EXPECT_FALSE(std::isnan(got.out[0]));
  EXPECT_FALSE(std::isnan(got.out[1 * 2]));
  EXPECT_TRUE(std::isnan(got.out[2 * 2]));
  EXPECT_TRUE(std::isnan(got.out[3 * 2]));
}

TEST(NaiveAttentionTest, NoKeysGiveZerosAndMinusInfinity) {
  Problem s{.b = 1, .h = 2, .n = 3, .m = 0, .d = 4, .dv = 2};
  Vec q = Random(2 * 3 * 4, 1), k, v, g = Random(2 * 3 * 2, 4);
  const Result r = RunNaive(s, kF32, kU8, &q, &k, &v, &g);
  ASSERT_EQ(r.out.size(), 12u);
  for (double x : r.out) EXPECT_EQ(x, 0.0);
  for (double x : r.lse) EXPECT_EQ(x, -kInf);
  for (double x : r.dq) EXPECT_EQ(x, 0.0);
}

TEST(NaiveAttentionTest, AZeroIncomingGradientGivesZeroGradients) {
  std::unique_ptr<runtime::OperatorImpl> impl =
      EmulatedOp("attention.naive", "attention");
  ASSERT_NE(impl, nullptr);
  const Tensor q = OnDevice({1, 1, 2, 3}, Random(6, 1), kF32);
  const Tensor k = OnDevice({1, 1, 4, 3}, Random(12, 2), kF32);
  const Tensor v = OnDevice({1, 1, 4, 2}, Random(8, 3), kF32);
  const runtime::ParamPack attrs = *impl->Attrs({});
  runtime::CallOptions options;
  options.poison = true;
  const std::vector<Tensor> inputs = {q, k, v, Tensor()};
  const std::vector<runtime::TensorMeta> meta = {{true, q.shape(), kF32},
                                                 {true, k.shape(), kF32},
                                                 {true, v.shape(), kF32},
                                                 {false, {}, kF32}};
  absl::StatusOr<std::vector<Tensor>> grads =
      impl->Backward(inputs, meta, attrs, options, {}, {Tensor(), Tensor()},
                     {true, true, true, false});
  ASSERT_TRUE(grads.ok()) << grads.status();
  for (int i = 0; i < 3; ++i)
    for (double x : (*grads)[i].ToDoubles()) EXPECT_EQ(x, 0.0);
}

}  // namespace
}  // namespace llmsys::cuda_test
