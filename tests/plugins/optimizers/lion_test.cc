// Tests of the built-in optimizer "lion" (plugins/optimizers), loaded from
// the built optimizers.so and driven through the C ABI as the host drives it
// (tests/plugins/optimizers/optimizer_test_util.h).
//
// Lion (Chen et al. 2023), worked out by hand beside each case:
//   c = beta1 * m + (1 - beta1) * g
//   p = p - lr * (sign(c) + weight_decay * p)
//   m = beta2 * m + (1 - beta2) * g
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "llmsys/plugin.h"
#include "tests/plugins/optimizers/optimizer_test_util.h"

namespace llmsys::plugins_test {
namespace {

constexpr double kF64Tol = 1e-12;
constexpr double kF32Tol = 2e-6;

TEST(LionTest, DeclaresPaperDefaultsAndOneMomentum) {
  OptimizerHarness h("lion");
  ASSERT_TRUE(h.ok());
  const std::vector<std::pair<std::string, runtime::ParamValue>> expected = {
      {"beta1", 0.9},
      {"beta2", 0.99},
      {"weight_decay", 0.0},
      {"state_dtype", std::string("float32")}};
  const auto& params = h.component()->params;
  ASSERT_EQ(params.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(params[i].name, expected[i].first);
    ASSERT_TRUE(params[i].default_value.has_value());
    EXPECT_EQ(*params[i].default_value, expected[i].second) << params[i].name;
  }
  auto lion = h.MustCreate({});
  ASSERT_NE(lion, nullptr);
  const auto state = lion->State();
  ASSERT_EQ(state.size(), 1u);
  EXPECT_EQ(state[0].first, "exp_avg");
  EXPECT_TRUE(llmsys_dtype_equal(state[0].second, LLMSYS_DTYPE_F32));
}

// Defaults (beta1 0.9, beta2 0.99), lr 0.1, p = [1, 1, 1], gradients
// [0.5, -2, 0] then [-0.01, 1, 0].
TEST(LionTest, TwoStepsInClosedForm) {
  // Step 1: m = 0, c = 0.1 g = [0.05, -0.2, 0], sign [1, -1, 0],
  //   p = [0.9, 1.1, 1], m = 0.01 g = [0.005, -0.02, 0].
  // Step 2: c = 0.9 m + 0.1 g = [0.0045 - 0.001, -0.018 + 0.1, 0]
  //   = [0.0035, 0.082, 0]: sign [1, 1, 0] (element 0 follows the momentum,
  //   not the gradient), p = [0.8, 1.0, 1],
  //   m = 0.99 m + 0.01 g = [0.00495 - 0.0001, -0.0198 + 0.01, 0]
  //   = [0.00485, -0.0098, 0].
  const Trace params = {{{0.9, 1.1, 1.0}}, {{0.8, 1.0, 1.0}}};
  const Trace state = {{{0.005, -0.02, 0.0}}, {{0.00485, -0.0098, 0.0}}};
  const std::vector<std::vector<std::vector<double>>> grads = {
      {{0.5, -2.0, 0.0}}, {{-0.01, 1.0, 0.0}}};
  OptimizerHarness h("lion");
  ASSERT_TRUE(h.ok());
  Trace p, s;
  h.Run<double>({{"state_dtype", std::string("float64")}}, {{1.0, 1.0, 1.0}},
                grads, {0.1, 0.1}, nullptr, &p, &s);
  ExpectTrace(p, params, kF64Tol, "float64 params");
  ExpectTrace(s, state, kF64Tol, "float64 state");
  p.clear(), s.clear();
  h.Run<float>({}, {{1.0, 1.0, 1.0}}, grads, {0.1, 0.1}, nullptr, &p, &s);
  ExpectTrace(p, params, kF32Tol, "float32 params");
  ExpectTrace(s, state, kF32Tol, "float32 state");
}

// Weight decay enters the update as lr * weight_decay * p, except for the
// parameters no_decay excludes.
TEST(LionTest, WeightDecayIsDecoupledAndHonoursNoDecay) {
  OptimizerHarness h("lion");
  ASSERT_TRUE(h.ok());
  const Overrides o = {{"weight_decay", 0.5},
                       {"state_dtype", std::string("float64")}};
  const uint8_t mask[] = {0, 1};
  Trace p, s;
  h.Run<double>(o, {{2.0}, {2.0}}, {{{1.0}, {1.0}}, {{1.0}, {1.0}}}, {0.1, 0.1},
                mask, &p, &s);
  // c > 0 at both steps. Decayed: 2 - 0.1 * (1 + 1) = 1.8;
  //   1.8 - 0.1 * (1 + 0.9) = 1.61. Not decayed: 1.9; 1.8.
  // m = 0.01; 0.0099 + 0.01 = 0.0199 for both.
  ExpectTrace(p, {{{1.8}, {1.9}}, {{1.61}, {1.8}}}, kF64Tol, "params");
  ExpectTrace(s, {{{0.01}, {0.01}}, {{0.0199}, {0.0199}}}, kF64Tol, "state");

  p.clear(), s.clear();
  h.Run<double>(o, {{2.0}, {2.0}}, {{{1.0}, {1.0}}, {{1.0}, {1.0}}}, {0.1, 0.1},
                nullptr, &p, &s);
  ExpectTrace(p, {{{1.8}, {1.8}}, {{1.61}, {1.61}}}, kF64Tol, "no mask");
}

// beta1 = 1 uses only the momentum for the direction, beta2 = 1 freezes it:
// both are allowed (the paper's range is [0, 1]).
TEST(LionTest, BetasOfOneAreAllowed) {
  OptimizerHarness h("lion");
  ASSERT_TRUE(h.ok());
  Trace p, s;
  h.Run<double>({{"beta1", 1.0}, {"beta2", 1.0}}, {{1.0}}, {{{3.0}}}, {0.1},
                nullptr, &p, &s);
  // c = m = 0: sign 0, p unchanged; m stays 0.
  ExpectTrace(p, {{{1.0}}}, kF64Tol, "params");
  ExpectTrace(s, {{{0.0}}}, kF64Tol, "state");
}

}  // namespace
}  // namespace llmsys::plugins_test
