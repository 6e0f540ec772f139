// The reference ctc_loss: loss and gradient against a brute-force sum over
// every alignment (every path of T_n symbols that collapses to the target)
// on tiny cases, repeated labels, empty targets and infeasible pairs
// included; each reduction; float32; central differences; and the errors
// bad inputs get.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "tests/plugins/operators/reference_test_util.h"

namespace llmsys::plugins_test {
namespace {

using tensor::kF32;
using tensor::kF64;
using tensor::kI32;
using tensor::kI64;

const double kInf = std::numeric_limits<double>::infinity();

// One sample of a batch: its frame count and target.
struct Sample {
  int64_t frames;
  std::vector<int64_t> target;
};

// A batch as the op's inputs: log_probs (T, N, C) random in [-3, 0) (not
// normalized: the loss is defined for any values), targets (N, S) padded
// with `pad`, lengths (N).
struct Batch {
  int64_t t, c;
  std::vector<Sample> samples;
  Tensor log_probs, targets, input_lengths, target_lengths;
};

Batch MakeBatch(int64_t t, int64_t c, std::vector<Sample> samples,
                DLDataType dtype = kF64, DLDataType index = kI64,
                uint64_t seed = 5, int64_t pad = 0) {
  Batch b{t, c, std::move(samples), {}, {}, {}, {}};
  const int64_t n = static_cast<int64_t>(b.samples.size());
  int64_t s = 1;
  for (const Sample& x : b.samples)
    s = std::max<int64_t>(s, static_cast<int64_t>(x.target.size()));
  b.log_probs = RandomTensor({t, n, c}, dtype, seed, -3.0, 0.0);
  std::vector<double> tg(static_cast<size_t>(n * s), double(pad)), il, tl;
  for (int64_t i = 0; i < n; ++i) {
    const Sample& x = b.samples[i];
    for (size_t j = 0; j < x.target.size(); ++j)
      tg[i * s + j] = double(x.target[j]);
    il.push_back(double(x.frames));
    tl.push_back(double(x.target.size()));
  }
  b.targets = *Tensor::FromDoubles({n, s}, tg, index);
  b.input_lengths = *Tensor::FromDoubles({n}, il, index);
  b.target_lengths = *Tensor::FromDoubles({n}, tl, index);
  return b;
}

std::vector<Tensor> Inputs(const Batch& b) {
  return {b.log_probs, b.targets, b.input_lengths, b.target_lengths};
}

// The path collapsed: repeats merged, then blanks dropped.
std::vector<int64_t> Collapse(const std::vector<int64_t>& path, int64_t blank) {
  std::vector<int64_t> out;
  for (size_t i = 0; i < path.size(); ++i) {
    if (i > 0 && path[i] == path[i - 1]) continue;
    if (path[i] != blank) out.push_back(path[i]);
  }
  return out;
}

// Brute force for sample n: -log p with p the sum over every path of its
// first `frames` frames that collapses to the target, and d(-log p) /
// d log_probs[t, n, c] for every t < T and c (0 past the frames). Loss inf
// and gradient NaN when no path does.
struct Brute {
  double loss;
  std::vector<double> grad;  // (T, C)
};

Brute BruteForce(const Batch& b, int64_t n, int64_t blank) {
  const std::vector<double> lp = b.log_probs.ToDoubles();
  const int64_t nn = static_cast<int64_t>(b.samples.size());
  const Sample& x = b.samples[n];
  auto y = [&](int64_t t, int64_t c) { return lp[(t * nn + n) * b.c + c]; };
  double p = 0;
  std::vector<double> through(b.t * b.c, 0.0);  // prob of paths via (t, c)
  std::vector<int64_t> path(x.frames, 0);
  int64_t count = 1;
  for (int64_t t = 0; t < x.frames; ++t) count *= b.c;
  for (int64_t k = 0; k < count; ++k) {
    int64_t rest = k;
    for (int64_t t = 0; t < x.frames; ++t) {
      path[t] = rest % b.c;
      rest /= b.c;
    }
    if (Collapse(path, blank) != x.target) continue;
    double logp = 0;
    for (int64_t t = 0; t < x.frames; ++t) logp += y(t, path[t]);
    p += std::exp(logp);
    for (int64_t t = 0; t < x.frames; ++t)
      through[t * b.c + path[t]] += std::exp(logp);
  }
  Brute r{-std::log(p), std::vector<double>(b.t * b.c, 0.0)};
  for (int64_t i = 0; i < x.frames * b.c; ++i)
    r.grad[i] =
        p > 0 ? -through[i] / p : std::numeric_limits<double>::quiet_NaN();
  return r;
}

double Rel(double a, double b) {
  if (std::isinf(a) || std::isinf(b)) return a == b ? 0 : kInf;
  if (std::isnan(a) || std::isnan(b))
    return std::isnan(a) && std::isnan(b) ? 0 : kInf;
  return std::abs(a - b) / std::max(1.0, std::abs(b));
}

runtime::AttrList Attrs(const std::string& reduction, bool zero_infinity,
                        int64_t blank = 0) {
  return {{"reduction", reduction},
          {"zero_infinity", zero_infinity},
          {"blank", blank}};
}

// T = 5, C = 3, blank 0: distinct labels, a repeat (needs a blank between),
// the empty target, an infeasible pair (2 frames for "2 2", which needs 3),
// a target filling every frame, no frames at all, a repeat that just fits.
std::vector<Sample> TinySamples() {
  return {{5, {1, 2}},    {4, {1, 1}}, {3, {}},     {2, {2, 2}},
          {5, {2, 1, 2}}, {0, {}},     {3, {1, 1}}, {5, {1, 2, 1}}};
}

// Loss (reduction 'none') and gradient (upstream w) against brute force.
void CheckAgainstBruteForce(const Batch& b, int64_t blank, bool zero_inf) {
  auto ctc = ReferenceOp("ctc_loss");
  const auto attrs = Attrs("none", zero_inf, blank);
  const int64_t n = static_cast<int64_t>(b.samples.size());
  const std::vector<double> loss =
      RunForward(*ctc, Inputs(b), attrs)[0].ToDoubles();
  ASSERT_EQ(loss.size(), static_cast<size_t>(n));
  const Tensor w = RandomTensor({n}, kF64, 11, 0.5, 2.0);
  const std::vector<double> wv = w.ToDoubles();
  std::vector<Tensor> g = RunBackward(*ctc, Inputs(b), attrs, w);
  ASSERT_EQ(g.size(), 4u);
  EXPECT_FALSE(g[1].defined() || g[2].defined() || g[3].defined());
  const std::vector<double> gv = g[0].ToDoubles();
  for (int64_t i = 0; i < n; ++i) {
    SCOPED_TRACE("sample " + std::to_string(i));
    const Brute want = BruteForce(b, i, blank);
    const bool infeasible = std::isinf(want.loss);
    EXPECT_LT(Rel(loss[i], zero_inf && infeasible ? 0.0 : want.loss), 1e-12)
        << loss[i] << " vs brute force " << want.loss;
    for (int64_t t = 0; t < b.t; ++t) {
      for (int64_t c = 0; c < b.c; ++c) {
        const double got = gv[(t * n + i) * b.c + c];
        double expect = wv[i] * want.grad[t * b.c + c];
        if (zero_inf && infeasible) expect = 0;
        EXPECT_LT(Rel(got, expect), 1e-12)
            << "grad[" << t << ", " << i << ", " << c << "] " << got
            << " vs brute force " << expect;
      }
    }
  }
}

TEST(ReferenceCtcLoss, MatchesBruteForceOverEveryAlignment) {
  const Batch b = MakeBatch(5, 3, TinySamples());
  // The brute force itself: the infeasible pair has no path, the rest do.
  for (size_t i = 0; i < b.samples.size(); ++i)
    EXPECT_EQ(std::isinf(BruteForce(b, i, 0).loss), i == 3) << i;
  CheckAgainstBruteForce(b, 0, /*zero_inf=*/true);
  CheckAgainstBruteForce(b, 0, /*zero_inf=*/false);
}

TEST(ReferenceCtcLoss, MatchesBruteForceWithAnotherBlankAndInt32) {
  // blank 2: labels 0 and 1; padding 1 in targets is never read.
  const Batch b = MakeBatch(
      4, 3, {{4, {0, 1}}, {4, {0, 0}}, {2, {1}}, {1, {1, 1}}, {4, {}}}, kF64,
      kI32, 7, /*pad=*/1);
  CheckAgainstBruteForce(b, 2, true);
  CheckAgainstBruteForce(b, 2, false);
  // C = 2, the blank and one label repeated.
  CheckAgainstBruteForce(MakeBatch(5, 2, {{5, {1, 1}}, {5, {1, 1, 1}}}), 0,
                         true);
}

TEST(ReferenceCtcLoss, InfeasibleGivesInfOrZero) {
  auto ctc = ReferenceOp("ctc_loss");
  const Batch b = MakeBatch(3, 3, {{3, {1, 1}}, {2, {1, 2, 1}}, {0, {1}}});
  std::vector<double> l =
      RunForward(*ctc, Inputs(b), Attrs("none", false))[0].ToDoubles();
  EXPECT_TRUE(std::isfinite(l[0]));
  EXPECT_EQ(l[1], kInf);
  EXPECT_EQ(l[2], kInf);
  l = RunForward(*ctc, Inputs(b), Attrs("none", true))[0].ToDoubles();
  EXPECT_TRUE(std::isfinite(l[0]) && l[0] > 0);
  EXPECT_EQ(l[1], 0.0);
  EXPECT_EQ(l[2], 0.0);
  EXPECT_EQ(RunForward(*ctc, Inputs(b), Attrs("sum", false))[0].ToDoubles(),
            std::vector<double>{kInf});
  // The default is zero_infinity true: finite.
  EXPECT_TRUE(std::isfinite(RunForward(*ctc, Inputs(b))[0].ToDoubles()[0]));
}

// 'sum' and 'mean' from 'none': sum_n loss_n and mean_n loss_n / max(U, 1),
// and their gradients from 'none''s with upstream 1 and 1 / (N max(U, 1)).
TEST(ReferenceCtcLoss, EveryReduction) {
  auto ctc = ReferenceOp("ctc_loss");
  for (DLDataType dtype : {kF32, kF64}) {
    SCOPED_TRACE(dtype.bits);
    const double tol = dtype.bits == 32 ? 1e-5 : 1e-12;
    const Batch b = MakeBatch(5, 3, TinySamples(), dtype);
    const int64_t n = static_cast<int64_t>(b.samples.size());
    const std::vector<double> none =
        RunForward(*ctc, Inputs(b), Attrs("none", true))[0].ToDoubles();
    double sum = 0, mean = 0;
    std::vector<double> w_sum(n, 1.0), w_mean(n);
    for (int64_t i = 0; i < n; ++i) {
      const double u = std::max<double>(1, b.samples[i].target.size());
      sum += none[i];
      mean += none[i] / u / static_cast<double>(n);
      w_mean[i] = 1.0 / (u * static_cast<double>(n));
    }
    const Tensor sum_out = RunForward(*ctc, Inputs(b), Attrs("sum", true))[0];
    EXPECT_EQ(sum_out.shape(), tensor::Shape{});
    EXPECT_EQ(sum_out.dtype(), dtype);
    EXPECT_NEAR(sum_out.ToDoubles()[0], sum, tol * sum);
    EXPECT_NEAR(
        RunForward(*ctc, Inputs(b), Attrs("mean", true))[0].ToDoubles()[0],
        mean, tol * mean);
    EXPECT_NEAR(RunForward(*ctc, Inputs(b))[0].ToDoubles()[0], mean,
                tol * mean);  // the default is 'mean'
    for (const auto& [red, wv] :
         {std::pair{"sum", w_sum}, std::pair{"mean", w_mean}}) {
      SCOPED_TRACE(red);
      const Tensor one = *Tensor::FromDoubles({}, {1.0}, dtype);
      const std::vector<double> got =
          RunBackward(*ctc, Inputs(b), Attrs(red, true), one)[0].ToDoubles();
      const std::vector<double> want =
          RunBackward(*ctc, Inputs(b), Attrs("none", true),
                      *Tensor::FromDoubles({n}, wv, dtype))[0]
              .ToDoubles();
      ASSERT_EQ(got.size(), want.size());
      for (size_t k = 0; k < got.size(); ++k)
        EXPECT_NEAR(got[k], want[k], tol) << k;
    }
  }
}

TEST(ReferenceCtcLoss, Float32MatchesFloat64) {
  auto ctc = ReferenceOp("ctc_loss");
  const Batch b64 = MakeBatch(5, 3, TinySamples(), kF64);
  const Batch b32 = MakeBatch(5, 3, TinySamples(), kF32);
  const std::vector<double> a =
      RunForward(*ctc, Inputs(b32), Attrs("none", true))[0].ToDoubles();
  const std::vector<double> e =
      RunForward(*ctc, Inputs(b64), Attrs("none", true))[0].ToDoubles();
  ASSERT_EQ(a.size(), e.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_LT(Rel(a[i], e[i]), 1e-5) << i;
}

TEST(ReferenceCtcLoss, GradCheckForEveryReduction) {
  auto ctc = ReferenceOp("ctc_loss");
  // Longer than brute force allows: T = 12, C = 5, blank 4 for one batch.
  const Batch tiny = MakeBatch(5, 3, TinySamples());
  const Batch big = MakeBatch(
      12, 5, {{12, {1, 2, 2, 3}}, {9, {0, 0, 0}}, {12, {}}, {7, {3, 1, 3, 1}}},
      kF64, kI64, 9);
  for (const char* red : {"none", "sum", "mean"}) {
    SCOPED_TRACE(red);
    EXPECT_LT(CheckedGrad(*ctc, Inputs(tiny), Attrs(red, true)), 1e-7);
    EXPECT_LT(CheckedGrad(*ctc, Inputs(big), Attrs(red, true, 4)), 1e-7);
  }
}

TEST(ReferenceCtcLoss, BadInputsNameTheProblem) {
  auto ctc = ReferenceOp("ctc_loss");
  const Batch b = MakeBatch(4, 3, {{4, {1, 2}}, {3, {2}}});
  auto with = [&](int which, Tensor t) {
    std::vector<Tensor> in = Inputs(b);
    in[which] = std::move(t);
    return in;
  };
  auto ints = [](tensor::Shape s, std::vector<double> v) {
    return *Tensor::FromDoubles(s, v, kI64);
  };
  ExpectInvalid(TryForward(*ctc, with(0, RandomTensor({4, 6}, kF64, 1)), {}),
                {"ctc_loss", "log_probs", "(T, N, C)", "(4, 6)"});
  ExpectInvalid(
      TryForward(*ctc, with(0, ints({4, 2, 3}, std::vector<double>(24, 0.0))),
                 {}),
      {"log_probs", "float32 or float64", "int64"});
  ExpectInvalid(TryForward(*ctc, with(1, ints({3, 2}, {1, 2, 2, 0, 1, 1})), {}),
                {"targets", "(N, S) = (2, S)", "(3, 2)"});
  ExpectInvalid(TryForward(*ctc, with(1, RandomTensor({2, 2}, kF32, 1)), {}),
                {"targets", "int32 or int64", "float32"});
  ExpectInvalid(TryForward(*ctc, with(2, ints({3}, {4, 3, 1})), {}),
                {"input_lengths", "(N) = (2)", "(3)"});
  ExpectInvalid(TryForward(*ctc, with(3, ints({2, 1}, {2, 1})), {}),
                {"target_lengths", "(N) = (2)", "(2, 1)"});
  ExpectInvalid(TryForward(*ctc, with(2, ints({2}, {4, 5})), {}),
                {"input_lengths[1] = 5", "out of range [0, 4]"});
  ExpectInvalid(TryForward(*ctc, with(2, ints({2}, {-1, 3})), {}),
                {"input_lengths[0] = -1", "out of range"});
  ExpectInvalid(TryForward(*ctc, with(3, ints({2}, {3, 1})), {}),
                {"target_lengths[0] = 3", "out of range [0, 2]"});
  ExpectInvalid(TryForward(*ctc, with(1, ints({2, 2}, {1, 0, 2, 0})), {}),
                {"target 0", "targets[0, 1]", "blank"});
  ExpectInvalid(TryForward(*ctc, with(1, ints({2, 2}, {1, 2, 3, 0})), {}),
                {"target 3", "targets[1, 0]", "out of range [0, 3)"});
  ExpectInvalid(TryForward(*ctc, Inputs(b), {{"blank", int64_t{3}}}),
                {"blank 3", "out of range [0, 3)"});
  ExpectInvalid(
      TryForward(*ctc, Inputs(b), {{"reduction", std::string("avg")}}),
      {"ctc_loss", "reduction", "'avg'"});
  // Padding past target_lengths is not read: any value is fine there.
  EXPECT_TRUE(TryForward(*ctc, with(1, ints({2, 2}, {1, 2, 2, -7})), {}).ok());
}

}  // namespace
}  // namespace llmsys::plugins_test
