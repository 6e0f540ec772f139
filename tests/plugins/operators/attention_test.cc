// The reference attention operator: hand-checked values, agreement with a
// straightforward computation written here (full score matrix, masks,
// dropout), fully masked rows, gradients against central differences for
// every option, and the errors bad shapes get.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "llmsys/random.h"
#include "tests/plugins/operators/reference_test_util.h"

namespace llmsys::plugins_test {
namespace {

using tensor::kF32;
using tensor::kF64;

constexpr double kInf = std::numeric_limits<double>::infinity();

runtime::CallOptions Rng(uint64_t seed, uint64_t offset) {
  runtime::CallOptions options;
  options.rng = {seed, offset};
  return options;
}

struct Expected {
  std::vector<double> out;  // (B, H, N, Dv)
  std::vector<double> lse;  // (B, H, N)
};

// softmax(scale Q K^T, masked) V, one (b, h) at a time: builds the full
// (N, M) score matrix with -inf at masked entries, then softmax, dropout
// and the product with V.
Expected Naive(const Tensor& q, const Tensor& k, const Tensor& v,
               const Tensor& mask, bool causal, double dropout_p, double scale,
               runtime::CallOptions rng) {
  const int64_t B = q.shape()[0], H = q.shape()[1], N = q.shape()[2],
                D = q.shape()[3], M = k.shape()[2], Dv = v.shape()[3];
  if (scale == 0) scale = 1 / std::sqrt(static_cast<double>(D));
  const std::vector<double> Q = q.ToDoubles(), K = k.ToDoubles(),
                            V = v.ToDoubles();
  const std::vector<double> pad =
      mask.defined() ? mask.ToDoubles() : std::vector<double>(B * M, 0.0);
  Expected e{std::vector<double>(B * H * N * Dv, 0.0),
             std::vector<double>(B * H * N, 0.0)};
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < H; ++h) {
      const int64_t bh = b * H + h;
      std::vector<std::vector<double>> S(N, std::vector<double>(M, -kInf));
      for (int64_t n = 0; n < N; ++n)
        for (int64_t m = 0; m < M; ++m) {
          if (pad[b * M + m] != 0 || (causal && m > n)) continue;
          double dot = 0;
          for (int64_t d = 0; d < D; ++d)
            dot += Q[(bh * N + n) * D + d] * K[(bh * M + m) * D + d];
          S[n][m] = scale * dot;
        }
      for (int64_t n = 0; n < N; ++n) {
        double mx = -kInf;
        for (double s : S[n]) mx = std::max(mx, s);
        if (mx == -kInf) {  // every key masked
          e.lse[bh * N + n] = -kInf;
          continue;
        }
        double sum = 0;
        for (double s : S[n]) sum += std::exp(s - mx);
        e.lse[bh * N + n] = mx + std::log(sum);
        for (int64_t m = 0; m < M; ++m) {
          double p = std::exp(S[n][m] - mx) / sum;
          if (dropout_p > 0) {
            const uint64_t i = static_cast<uint64_t>((bh * N + n) * M + m);
            p = llmsys_random_uniform(rng.rng.seed, rng.rng.offset, i) >=
                        dropout_p
                    ? p / (1 - dropout_p)
                    : 0.0;
          }
          for (int64_t j = 0; j < Dv; ++j)
            e.out[(bh * N + n) * Dv + j] += p * V[(bh * M + m) * Dv + j];
        }
      }
    }
  }
  return e;
}

void ExpectNear(const std::vector<double>& got, const std::vector<double>& want,
                double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isinf(want[i])) {
      EXPECT_EQ(got[i], want[i]) << "element " << i;
    } else {
      EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
    }
  }
}

TEST(ReferenceAttention, HandCheckedValues) {
  auto attn = ReferenceOp("attention");
  for (DLDataType dtype : {kF32, kF64}) {
    SCOPED_TRACE(dtype.bits);
    const double tol = dtype.bits == 32 ? 1e-5 : 1e-13;
    // Scores 0 and ln 3 (scale 1): P = (1/4, 3/4), out = 4/4 + 3 * 8/4 = 7,
    // lse = ln 4.
    Tensor q = *Tensor::FromDoubles({1, 1, 1, 1}, {1}, dtype);
    Tensor k = *Tensor::FromDoubles({1, 1, 2, 1}, {0, std::log(3.0)}, dtype);
    Tensor v = *Tensor::FromDoubles({1, 1, 2, 1}, {4, 8}, dtype);
    std::vector<Tensor> out =
        RunForward(*attn, {q, k, v, Tensor()}, {{"scale", 1.0}});
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[0].shape(), (tensor::Shape{1, 1, 1, 1}));
    EXPECT_EQ(out[1].shape(), (tensor::Shape{1, 1, 1}));
    ExpectNear(out[0].ToDoubles(), {7}, tol);
    ExpectNear(out[1].ToDoubles(), {std::log(4.0)}, tol);
    // Default scale 1/sqrt(D), D = 4: q . k = 2 ln 3 * 2 = ln 9 -> scaled
    // ln 3 again.
    Tensor q4 = *Tensor::FromDoubles({1, 1, 1, 4}, {1, 1, 1, 1}, dtype);
    const double l = std::log(3.0) / 2;
    Tensor k4 =
        *Tensor::FromDoubles({1, 1, 2, 4}, {0, 0, 0, 0, l, l, l, l}, dtype);
    ExpectNear(RunForward(*attn, {q4, k4, v, Tensor()})[0].ToDoubles(), {7},
               tol);
    // Padding the second key leaves P = (1, 0); lse = 0.
    Tensor pad = *Tensor::FromDoubles({1, 2}, {0, 1}, tensor::kU8);
    std::vector<Tensor> padded =
        RunForward(*attn, {q, k, v, pad}, {{"scale", 1.0}});
    ExpectNear(padded[0].ToDoubles(), {4}, tol);
    ExpectNear(padded[1].ToDoubles(), {0}, tol);
  }
}

TEST(ReferenceAttention, CausalIsTopLeftAligned) {
  auto attn = ReferenceOp("attention");
  // N = 2, M = 3, all scores 0: query 0 sees key 0, query 1 keys 0 and 1.
  Tensor q = *Tensor::FromDoubles({1, 1, 2, 1}, {0, 0}, kF64);
  Tensor k = *Tensor::FromDoubles({1, 1, 3, 1}, {0, 0, 0}, kF64);
  Tensor v = *Tensor::FromDoubles({1, 1, 3, 1}, {2, 4, 100}, kF64);
  std::vector<Tensor> out =
      RunForward(*attn, {q, k, v, Tensor()}, {{"causal", true}});
  ExpectNear(out[0].ToDoubles(), {2, 3}, 1e-14);
  ExpectNear(out[1].ToDoubles(), {0, std::log(2.0)}, 1e-14);
}

struct Case {
  int64_t b, h, n, m, d, dv;
  bool causal;
  bool pad;  // a key padding mask (batch 0 pads its last key)
  double dropout_p;
  double scale;
};

std::string Name(const Case& c) {
  return "B" + std::to_string(c.b) + " H" + std::to_string(c.h) + " N" +
         std::to_string(c.n) + " M" + std::to_string(c.m) + " D" +
         std::to_string(c.d) + " Dv" + std::to_string(c.dv) +
         (c.causal ? " causal" : "") + (c.pad ? " pad" : "") + " p" +
         std::to_string(c.dropout_p) + " scale" + std::to_string(c.scale);
}

const std::vector<Case>& Cases() {
  static const std::vector<Case> cases = {
      {1, 1, 3, 3, 2, 2, false, false, 0.0, 0.0},
      {1, 1, 5, 5, 3, 3, true, false, 0.0, 0.0},
      {2, 3, 4, 3, 5, 2, false, true, 0.0, 0.0},   // N > M, Dv != D
      {2, 2, 3, 5, 4, 3, true, true, 0.0, 0.7},    // N < M, causal + pad
      {2, 1, 5, 3, 2, 3, true, false, 0.0, 0.0},   // causal, N > M
      {1, 2, 4, 4, 3, 2, false, false, 0.3, 0.0},  // dropout
      {2, 2, 3, 4, 2, 1, true, true, 0.5, 1.3},    // everything
  };
  return cases;
}

Tensor PadMask(int64_t b, int64_t m, DLDataType dtype) {
  std::vector<double> pad(b * m, 0.0);
  pad[m - 1] = 1;         // batch 0, last key
  if (b > 1) pad[m] = 1;  // batch 1, first key
  return *Tensor::FromDoubles({b, m}, pad, dtype);
}

TEST(ReferenceAttention, MatchesStraightforwardComputation) {
  auto attn = ReferenceOp("attention");
  uint64_t seed = 10;
  for (const Case& c : Cases()) {
    for (DLDataType dtype : {kF32, kF64}) {
      SCOPED_TRACE(Name(c) + (dtype.bits == 32 ? " f32" : " f64"));
      Tensor q = RandomTensor({c.b, c.h, c.n, c.d}, dtype, ++seed, -2, 2);
      Tensor k = RandomTensor({c.b, c.h, c.m, c.d}, dtype, ++seed, -2, 2);
      Tensor v = RandomTensor({c.b, c.h, c.m, c.dv}, dtype, ++seed);
      Tensor mask = c.pad ? PadMask(c.b, c.m, tensor::kI64) : Tensor();
      const runtime::CallOptions rng = Rng(77, 3ull << 32);
      std::vector<Tensor> out = RunForward(*attn, {q, k, v, mask},
                                           {{"causal", c.causal},
                                            {"dropout_p", c.dropout_p},
                                            {"scale", c.scale}},
                                           rng);
      ASSERT_EQ(out.size(), 2u);
      const Expected e =
          Naive(q, k, v, mask, c.causal, c.dropout_p, c.scale, rng);
      const double tol = dtype.bits == 32 ? 1e-5 : 1e-12;
      ExpectNear(out[0].ToDoubles(), e.out, tol);
      ExpectNear(out[1].ToDoubles(), e.lse, tol);
    }
  }
}

TEST(ReferenceAttention, GradCheckEveryOption) {
  auto attn = ReferenceOp("attention");
  uint64_t seed = 100;
  for (const Case& c : Cases()) {
    SCOPED_TRACE(Name(c));
    Tensor q = RandomTensor({c.b, c.h, c.n, c.d}, kF64, ++seed, -2, 2);
    Tensor k = RandomTensor({c.b, c.h, c.m, c.d}, kF64, ++seed, -2, 2);
    Tensor v = RandomTensor({c.b, c.h, c.m, c.dv}, kF64, ++seed);
    Tensor mask = c.pad ? PadMask(c.b, c.m, tensor::kU8) : Tensor();
    EXPECT_LT(CheckedGrad(*attn, {q, k, v, mask},
                          {{"causal", c.causal},
                           {"dropout_p", c.dropout_p},
                           {"scale", c.scale}},
                          Rng(5, 1ull << 32)),
              1e-6);
  }
}

TEST(ReferenceAttention, FullyMaskedRowIsZeroWithoutNaN) {
  auto attn = ReferenceOp("attention");
  // Batch 1 pads every key; batch 0 pads none.
  Tensor q = RandomTensor({2, 2, 3, 4}, kF64, 1);
  Tensor k = RandomTensor({2, 2, 3, 4}, kF64, 2);
  Tensor v = RandomTensor({2, 2, 3, 2}, kF64, 3);
  Tensor mask = *Tensor::FromDoubles({2, 3}, {0, 0, 0, 1, 1, 1}, tensor::kF32);
  for (double p : {0.0, 0.5}) {
    SCOPED_TRACE(p);
    const AttrList attrs = {{"dropout_p", p}};
    std::vector<Tensor> out =
        RunForward(*attn, {q, k, v, mask}, attrs, Rng(1, 0));
    const std::vector<double> o = out[0].ToDoubles(), lse = out[1].ToDoubles();
    for (size_t i = o.size() / 2; i < o.size(); ++i) EXPECT_EQ(o[i], 0.0);
    for (size_t i = lse.size() / 2; i < lse.size(); ++i)
      EXPECT_EQ(lse[i], -kInf);
    std::vector<Tensor> g =
        RunBackward(*attn, {q, k, v, mask}, attrs,
                    RandomTensor({2, 2, 3, 2}, kF64, 4), Rng(1, 0));
    ASSERT_EQ(g.size(), 4u);
    // The float mask is handed a gradient by the test's RunBackward: zeros.
    ASSERT_TRUE(g[3].defined());
    for (double x : g[3].ToDoubles()) EXPECT_EQ(x, 0.0);
    for (int i = 0; i < 3; ++i) {
      const std::vector<double> gv = g[i].ToDoubles();
      for (size_t j = 0; j < gv.size(); ++j) {
        EXPECT_FALSE(std::isnan(gv[j])) << i << " " << j;
        if (j >= gv.size() / 2) {
          EXPECT_EQ(gv[j], 0.0) << i << " " << j;
        }
      }
    }
    EXPECT_LT(CheckedGrad(*attn, {q, k, v, mask}, attrs, Rng(1, 0)), 1e-6);
  }
  // Causal with N > M and every key padded in one row's reach: a row whose
  // only visible key is padded.
  Tensor q1 = RandomTensor({1, 1, 2, 2}, kF64, 5);
  Tensor k1 = RandomTensor({1, 1, 2, 2}, kF64, 6);
  Tensor v1 = RandomTensor({1, 1, 2, 2}, kF64, 7);
  Tensor pad0 = *Tensor::FromDoubles({1, 2}, {1, 0}, tensor::kI32);
  std::vector<Tensor> out =
      RunForward(*attn, {q1, k1, v1, pad0}, {{"causal", true}});
  ExpectNear(out[0].ToDoubles(), {0, 0, v1.ToDoubles()[2], v1.ToDoubles()[3]},
             1e-14);
  EXPECT_EQ(out[1].ToDoubles()[0], -kInf);
  EXPECT_LT(CheckedGrad(*attn, {q1, k1, v1, pad0}, {{"causal", true}}), 1e-6);
}

TEST(ReferenceAttention, DropoutOneGivesZeros) {
  auto attn = ReferenceOp("attention");
  Tensor q = RandomTensor({1, 1, 2, 3}, kF64, 1);
  Tensor k = RandomTensor({1, 1, 2, 3}, kF64, 2);
  Tensor v = RandomTensor({1, 1, 2, 3}, kF64, 3);
  std::vector<Tensor> out =
      RunForward(*attn, {q, k, v, Tensor()}, {{"dropout_p", 1.0}});
  for (double x : out[0].ToDoubles()) EXPECT_EQ(x, 0.0);
  for (double x : out[1].ToDoubles()) EXPECT_TRUE(std::isfinite(x));
}

TEST(ReferenceAttention, BadShapesNameEveryArgument) {
  auto attn = ReferenceOp("attention");
  Tensor q = RandomTensor({2, 3, 4, 5}, kF32, 1);
  Tensor k = RandomTensor({2, 3, 6, 5}, kF32, 2);
  Tensor v = RandomTensor({2, 3, 6, 7}, kF32, 3);
  ExpectInvalid(
      TryForward(*attn, {RandomTensor({3, 4, 5}, kF32, 1), k, v, Tensor()}),
      {"attention", "4-d", "q float32 (3, 4, 5)"});
  ExpectInvalid(
      TryForward(*attn, {q, RandomTensor({1, 3, 6, 5}, kF32, 2), v, Tensor()}),
      {"attention", "B and H", "q float32 (2, 3, 4, 5)",
       "k float32 (1, 3, 6, 5)", "v float32 (2, 3, 6, 7)"});
  ExpectInvalid(
      TryForward(*attn, {q, k, RandomTensor({2, 2, 6, 7}, kF32, 3), Tensor()}),
      {"attention", "B and H", "v float32 (2, 2, 6, 7)"});
  ExpectInvalid(
      TryForward(*attn, {q, k, RandomTensor({2, 3, 5, 7}, kF32, 3), Tensor()}),
      {"attention", "M", "k float32 (2, 3, 6, 5)", "v float32 (2, 3, 5, 7)"});
  ExpectInvalid(
      TryForward(*attn, {q, RandomTensor({2, 3, 6, 4}, kF32, 2), v, Tensor()}),
      {"attention", "D", "q float32 (2, 3, 4, 5)", "k float32 (2, 3, 6, 4)"});
  ExpectInvalid(TryForward(*attn, {q, k, v, PadMask(2, 5, tensor::kU8)}),
                {"attention", "key_padding_mask", "(2, 6)", "uint8 (2, 5)"});
  ExpectInvalid(
      TryForward(*attn, {q, RandomTensor({2, 3, 6, 5}, kF64, 2), v, Tensor()}),
      {"attention", "same dtype"});
  ExpectInvalid(TryForward(*attn, {q, k, v, Tensor()}, {{"dropout_p", 1.5}}),
                {"attention", "dropout_p", "1.5"});
}

}  // namespace
}  // namespace llmsys::plugins_test
