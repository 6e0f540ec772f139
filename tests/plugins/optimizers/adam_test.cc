// Tests of the built-in optimizers "adam" and "adamw" (plugins/optimizers),
// loaded from the built optimizers.so and driven through the C ABI as the
// host drives them (tests/plugins/optimizers/optimizer_test_util.h).
//
// The expected numbers follow torch.optim.Adam / AdamW and are worked out by
// hand in the comments beside them. Most cases use eps = 0 and betas whose
// powers are exact, so the closed forms are short: with bias corrections
// bc1 = 1 - beta1^t and bc2 = 1 - beta2^t, the update is
// p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps).
#include <gtest/gtest.h>

#include <cmath>
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

TEST(AdamTest, DeclaresTorchDefaults) {
  for (const char* id : {"adam", "adamw"}) {
    OptimizerHarness h(id);
    ASSERT_TRUE(h.ok());
    const std::vector<std::pair<std::string, runtime::ParamValue>> expected = {
        {"beta1", 0.9},
        {"beta2", 0.999},
        {"eps", 1e-8},
        {"weight_decay", std::string(id) == "adamw" ? 0.01 : 0.0},
        {"amsgrad", false},
        {"state_dtype", std::string("float32")}};
    const auto& params = h.component()->params;
    ASSERT_EQ(params.size(), expected.size()) << id;
    for (size_t i = 0; i < expected.size(); ++i) {
      EXPECT_EQ(params[i].name, expected[i].first) << id;
      ASSERT_TRUE(params[i].default_value.has_value()) << id;
      EXPECT_EQ(*params[i].default_value, expected[i].second)
          << id << " " << params[i].name;
    }
  }
}

TEST(AdamTest, StateIsTwoMomentsAndTheMaxWithAmsgrad) {
  OptimizerHarness h("adam");
  ASSERT_TRUE(h.ok());
  auto plain = h.MustCreate({});
  ASSERT_NE(plain, nullptr);
  const auto state = plain->State();
  ASSERT_EQ(state.size(), 2u);
  EXPECT_EQ(state[0].first, "exp_avg");
  EXPECT_EQ(state[1].first, "exp_avg_sq");
  EXPECT_TRUE(llmsys_dtype_equal(state[0].second, LLMSYS_DTYPE_F32));

  auto ams = h.MustCreate(
      {{"amsgrad", true}, {"state_dtype", std::string("float64")}});
  ASSERT_NE(ams, nullptr);
  const auto state2 = ams->State();
  ASSERT_EQ(state2.size(), 3u);
  EXPECT_EQ(state2[2].first, "max_exp_avg_sq");
  for (const auto& s : state2) {
    EXPECT_TRUE(llmsys_dtype_equal(s.second, LLMSYS_DTYPE_F64)) << s.first;
  }
}

// beta1 0.5, beta2 0.75, eps 0, lr 0.1; one parameter [1, -1], gradients
// [2, -0.5] then [1, 0.5].
TEST(AdamTest, TwoStepsInClosedForm) {
  const Overrides o = {{"beta1", 0.5}, {"beta2", 0.75}, {"eps", 0.0}};
  // Step 1 (bc1 0.5, bc2 0.25, step size 0.2):
  //   a: m = 0.5 * 2 = 1, v = 0.25 * 4 = 1, denom = 1 / 0.5 = 2,
  //      p = 1 - 0.2 * 1 / 2 = 0.9
  //   b: m = -0.25, v = 0.0625, denom = 0.25 / 0.5 = 0.5,
  //      p = -1 + 0.2 * 0.25 / 0.5 = -0.9
  // Step 2 (bc1 0.75, bc2 0.4375, step size 0.1 / 0.75):
  //   a: m = 0.5 + 0.5 = 1, v = 0.75 + 0.25 = 1, denom = 1 / sqrt(0.4375),
  //      p = 0.9 - 0.1 / 0.75 * sqrt(0.4375)
  //   b: m = -0.125 + 0.25 = 0.125, v = 0.046875 + 0.0625 = 0.109375,
  //      denom = sqrt(0.109375 / 0.4375) = 0.5,
  //      p = -0.9 - 0.1 / 0.75 * 0.125 / 0.5 = -0.9 - 1 / 30
  const Trace params = {
      {{0.9, -0.9}}, {{0.9 - 0.1 / 0.75 * std::sqrt(0.4375), -0.9 - 1 / 30.0}}};
  const Trace state = {{{1.0, -0.25}, {1.0, 0.0625}},
                       {{1.0, 0.125}, {1.0, 0.109375}}};
  OptimizerHarness h("adam");
  ASSERT_TRUE(h.ok());
  Overrides o64 = o;
  o64.emplace_back("state_dtype", std::string("float64"));
  Trace p, s;
  h.Run<double>(o64, {{1.0, -1.0}}, {{{2.0, -0.5}}, {{1.0, 0.5}}}, {0.1, 0.1},
                nullptr, &p, &s);
  ExpectTrace(p, params, kF64Tol, "float64 params");
  ExpectTrace(s, state, kF64Tol, "float64 state");
  p.clear(), s.clear();
  h.Run<float>(o, {{1.0, -1.0}}, {{{2.0, -0.5}}, {{1.0, 0.5}}}, {0.1, 0.1},
               nullptr, &p, &s);
  ExpectTrace(p, params, kF32Tol, "float32 params");
  ExpectTrace(s, state, kF32Tol, "float32 state");
}

// With the default eps the first step is lr * g / (|g| + eps): a step of
// almost exactly lr against the gradient's sign, whatever its size.
TEST(AdamTest, FirstStepWithDefaultsIsAboutLrTimesSign) {
  OptimizerHarness h("adam");
  ASSERT_TRUE(h.ok());
  Trace p, s;
  h.Run<double>({{"state_dtype", std::string("float64")}}, {{0.0, 0.0}},
                {{{1e-3, -4.0}}}, {0.01}, nullptr, &p, &s);
  // m = 0.1 g, v = 0.001 g^2, bc1 = 0.1, bc2 = 0.001:
  // p = -0.01 * g / (|g| + 1e-8).
  ExpectTrace(p, {{{-0.01 * 1e-3 / (1e-3 + 1e-8), 0.01 * 4.0 / (4.0 + 1e-8)}}},
              kF64Tol, "params");
}

// beta1 = beta2 = 0.5, eps 0, lr 0.1, p = 0, gradients 2 then 0: the second
// moment halves, AMSGrad keeps its maximum.
TEST(AdamTest, AmsgradNormalizesByTheRunningMaximum) {
  OptimizerHarness h("adam");
  ASSERT_TRUE(h.ok());
  const Overrides o = {{"beta1", 0.5},
                       {"beta2", 0.5},
                       {"eps", 0.0},
                       {"amsgrad", true},
                       {"state_dtype", std::string("float64")}};
  Trace p, s;
  h.Run<double>(o, {{0.0}}, {{{2.0}}, {{0.0}}}, {0.1, 0.1}, nullptr, &p, &s);
  // Step 1: m = 1, v = v_max = 2, bc1 = bc2 = 0.5, denom = 2 / 1 = 2,
  //   p = -0.2 * 1 / 2 = -0.1.
  // Step 2: m = 0.5, v = 1, v_max = 2, bc1 = bc2 = 0.75,
  //   p = -0.1 - 0.1 / 0.75 * 0.5 / (sqrt(2) / sqrt(0.75)).
  ExpectTrace(p,
              {{{-0.1}},
               {{-0.1 - 0.1 / 0.75 * 0.5 * std::sqrt(0.75) / std::sqrt(2.0)}}},
              kF64Tol, "amsgrad params");
  ExpectTrace(s, {{{1.0}, {2.0}, {2.0}}, {{0.5}, {1.0}, {2.0}}}, kF64Tol,
              "amsgrad state");

  // Without AMSGrad the smaller v gives the larger step:
  // p = -0.1 - 0.1 / 0.75 * 0.5 / (1 / sqrt(0.75)).
  p.clear(), s.clear();
  Overrides plain = o;
  plain[3].second = false;
  h.Run<double>(plain, {{0.0}}, {{{2.0}}, {{0.0}}}, {0.1, 0.1}, nullptr, &p,
                &s);
  ExpectTrace(p, {{{-0.1}}, {{-0.1 - 0.1 / 0.75 * 0.5 * std::sqrt(0.75)}}},
              kF64Tol, "plain params");
}

// adam's weight decay is L2 in the gradient, so it shows in the moments;
// no_decay excludes the second parameter.
TEST(AdamTest, L2WeightDecayEntersTheMomentsAndHonoursNoDecay) {
  OptimizerHarness h("adam");
  ASSERT_TRUE(h.ok());
  const Overrides o = {{"beta1", 0.5},
                       {"beta2", 0.75},
                       {"eps", 0.0},
                       {"weight_decay", 0.5},
                       {"state_dtype", std::string("float64")}};
  const uint8_t mask[] = {0, 1};
  Trace p, s;
  h.Run<double>(o, {{2.0}, {2.0}}, {{{1.0}, {1.0}}, {{1.0}, {1.0}}}, {0.1, 0.1},
                mask, &p, &s);
  // Decayed: g = 1 + 0.5 * 2 = 2, m = 1, v = 1, p = 2 - 0.2 * 1 / 2 = 1.9;
  //   g = 1 + 0.95 = 1.95, m = 0.5 + 0.975 = 1.475,
  //   v = 0.75 + 0.25 * 1.95^2 = 1.700625,
  //   p = 1.9 - 0.1 / 0.75 * 1.475 / (sqrt(1.700625) / sqrt(0.4375)).
  // Not decayed: m = 0.5, v = 0.25, p = 1.9; m = 0.75, v = 0.4375,
  //   p = 1.9 - 0.1 / 0.75 * 0.75 / 1 = 1.8.
  const double p2 =
      1.9 - 0.1 / 0.75 * 1.475 / (std::sqrt(1.700625) / std::sqrt(0.4375));
  ExpectTrace(p, {{{1.9}, {1.9}}, {{p2}, {1.8}}}, kF64Tol, "params");
  // State is parameter-major: [m0, v0, m1, v1].
  ExpectTrace(
      s,
      {{{1.0}, {1.0}, {0.5}, {0.25}}, {{1.475}, {1.700625}, {0.75}, {0.4375}}},
      kF64Tol, "state");
}

// adamw shrinks the parameter by 1 - lr * weight_decay before the Adam
// update and leaves the moments alone.
TEST(AdamTest, AdamwDecaysDecoupledAndHonoursNoDecay) {
  OptimizerHarness h("adamw");
  ASSERT_TRUE(h.ok());
  const Overrides o = {{"beta1", 0.5},
                       {"beta2", 0.75},
                       {"eps", 0.0},
                       {"weight_decay", 0.5},
                       {"state_dtype", std::string("float64")}};
  const uint8_t mask[] = {0, 1};
  Trace p, s;
  h.Run<double>(o, {{2.0}, {2.0}}, {{{1.0}, {1.0}}, {{1.0}, {1.0}}}, {0.1, 0.1},
                mask, &p, &s);
  // Both: m = 0.5, v = 0.25 -> update 0.2 * 0.5 / (0.5 / 0.5) = 0.1;
  //   m = 0.75, v = 0.4375 -> update 0.1 / 0.75 * 0.75 / 1 = 0.1.
  // Decayed: 2 * 0.95 - 0.1 = 1.8; 1.8 * 0.95 - 0.1 = 1.61.
  // Not decayed: 1.9; 1.8.
  ExpectTrace(p, {{{1.8}, {1.9}}, {{1.61}, {1.8}}}, kF64Tol, "params");
  ExpectTrace(
      s, {{{0.5}, {0.25}, {0.5}, {0.25}}, {{0.75}, {0.4375}, {0.75}, {0.4375}}},
      kF64Tol, "state");

  // A NULL mask decays both; float32 agrees to float32 rounding.
  p.clear(), s.clear();
  Overrides o32 = o;
  o32.pop_back();
  h.Run<float>(o32, {{2.0}, {2.0}}, {{{1.0}, {1.0}}, {{1.0}, {1.0}}},
               {0.1, 0.1}, nullptr, &p, &s);
  ExpectTrace(p, {{{1.8}, {1.8}}, {{1.61}, {1.61}}}, kF32Tol, "no mask");
}

// A resumed run (fresh instance, restored state, step 2) continues
// TwoStepsInClosedForm: the bias corrections come from args.step.
TEST(AdamTest, ResumeUsesTheHostsStepForBiasCorrection) {
  OptimizerHarness h("adam");
  ASSERT_TRUE(h.ok());
  auto adam = h.MustCreate({{"beta1", 0.5},
                            {"beta2", 0.75},
                            {"eps", 0.0},
                            {"state_dtype", std::string("float64")}});
  ASSERT_NE(adam, nullptr);
  TestTensor<double> param({2}, {0.9, -0.9});
  TestTensor<double> grad({2}, {1.0, 0.5});
  TestTensor<double> m({2}, {1.0, -0.25});
  TestTensor<double> v({2}, {1.0, 0.0625});
  StepCall call;
  call.params = {param.dl()};
  call.grads = {grad.dl()};
  call.state = {m.dl(), v.dl()};
  call.num_state = 2;
  call.step = 2;
  ErrorBuffer err;
  ASSERT_EQ(adam->Step(call, &err), LLMSYS_STATUS_OK) << err.message();
  EXPECT_NEAR(param[0], 0.9 - 0.1 / 0.75 * std::sqrt(0.4375), kF64Tol);
  EXPECT_NEAR(param[1], -0.9 - 1 / 30.0, kF64Tol);
}

TEST(AdamTest, BetasMustBeBelowOne) {
  for (const char* id : {"adam", "adamw"}) {
    OptimizerHarness h(id);
    ASSERT_TRUE(h.ok());
    for (const char* beta : {"beta1", "beta2"}) {
      std::unique_ptr<OptimizerInstance> opt;
      std::string message;
      // 1.0 passes the schema's [0, 1] but not torch's [0, 1).
      EXPECT_EQ(h.Create({{beta, 1.0}}, &opt, &message),
                LLMSYS_STATUS_INVALID_ARGUMENT)
          << id << " " << beta;
      EXPECT_EQ(opt, nullptr);
      EXPECT_NE(message.find(beta), std::string::npos) << message;
      EXPECT_NE(message.find("[0, 1)"), std::string::npos) << message;
    }
  }
}

}  // namespace
}  // namespace llmsys::plugins_test
