// Tests of the built-in optimizer "sgd" (plugins/optimizers), loaded from
// the built optimizers.so and driven through the C ABI as the host drives
// it: create from a parameter pack, ask for the state, allocate it
// zero-filled, then step with step = 1, 2, ...
//
// The expected numbers follow torch.optim.SGD (PyTorch 2.x, single-tensor
// path) and are worked out by hand in the comments beside them.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "framework/runtime/param_schema.h"
#include "framework/runtime/plugin.h"
#include "llmsys/plugin.h"
#include "tests/plugins/optimizers/optimizer_test_util.h"
#include "tests/plugins/plugin_test_util.h"

namespace llmsys::plugins_test {
namespace {

// The sgd component, driven by the optimizer harness.
class SgdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(harness_.ok());
    plugin_ = harness_.plugin();
    component_ = harness_.component();
  }

  llmsys_status_t Create(const Overrides& overrides,
                         std::unique_ptr<OptimizerInstance>* out,
                         std::string* message = nullptr) {
    return harness_.Create(overrides, out, message);
  }
  std::unique_ptr<OptimizerInstance> MustCreate(const Overrides& overrides) {
    return harness_.MustCreate(overrides);
  }
  // Parameters and, with momentum, the buffers after each step.
  template <class T>
  void Run(const Overrides& overrides,
           const std::vector<std::vector<double>>& initial,
           const std::vector<std::vector<std::vector<double>>>& grads,
           const std::vector<double>& lrs, const uint8_t* no_decay,
           Trace* params_after, Trace* buffers_after) {
    harness_.Run<T>(overrides, initial, grads, lrs, no_decay, params_after,
                    buffers_after);
  }

  OptimizerHarness harness_{"sgd"};
  const runtime::Plugin* plugin_ = nullptr;
  const runtime::Component* component_ = nullptr;
};

void ExpectTrace(const Trace& actual, const Trace& expected, double tol,
                 const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (size_t s = 0; s < expected.size(); ++s) {
    ASSERT_EQ(actual[s].size(), expected[s].size()) << what;
    for (size_t p = 0; p < expected[s].size(); ++p) {
      ASSERT_EQ(actual[s][p].size(), expected[s][p].size()) << what;
      for (size_t k = 0; k < expected[s][p].size(); ++k) {
        EXPECT_NEAR(actual[s][p][k], expected[s][p][k], tol)
            << what << " after step " << s + 1 << ", parameter " << p
            << ", element " << k;
      }
    }
  }
}

// Tolerances: float32 arithmetic on values of order 1; float64 parameters
// keep a float32 momentum buffer, so their results carry its rounding.
constexpr double kF32Tol = 2e-6;
constexpr double kF64Tol = 1e-6;

TEST_F(SgdTest, DeclaresTorchParametersAndDefaults) {
  EXPECT_EQ(plugin_->id(), "llmsys.optimizers");
  EXPECT_EQ(component_->device_type, kDLCPU);
  const std::vector<std::pair<std::string, runtime::ParamValue>> expected = {
      {"momentum", 0.0},   {"dampening", 0.0},
      {"nesterov", false}, {"weight_decay", 0.0},
      {"maximize", false}, {"state_dtype", std::string("float32")}};
  ASSERT_EQ(component_->params.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    const runtime::ParamSchemaEntry& e = component_->params[i];
    EXPECT_EQ(e.name, expected[i].first);
    ASSERT_TRUE(e.default_value.has_value()) << e.name;
    EXPECT_EQ(*e.default_value, expected[i].second) << e.name;
  }
  EXPECT_EQ(component_->params[0].min_value, 0.0);
  EXPECT_EQ(component_->params[0].max_value, 1.0);
  EXPECT_EQ(component_->params[3].min_value, 0.0);
  EXPECT_FALSE(component_->params[3].max_value.has_value());
  EXPECT_EQ(component_->params[5].choices,
            (std::vector<std::string>{"float32", "float64"}));
}

TEST_F(SgdTest, StateIsOneFloat32MomentumBufferOnlyWithMomentum) {
  std::unique_ptr<OptimizerInstance> plain = MustCreate({});
  ASSERT_NE(plain, nullptr);
  EXPECT_TRUE(plain->State().empty());

  std::unique_ptr<OptimizerInstance> heavy = MustCreate({{"momentum", 0.9}});
  ASSERT_NE(heavy, nullptr);
  const auto state = heavy->State();
  ASSERT_EQ(state.size(), 1u);
  EXPECT_EQ(state[0].first, "momentum_buffer");
  EXPECT_TRUE(llmsys_dtype_equal(state[0].second, LLMSYS_DTYPE_F32));
}

// p <- p - lr * g, with the learning rate changing between steps.
TEST_F(SgdTest, PlainStepFollowsTheGradient) {
  const std::vector<std::vector<double>> initial = {{1.0, -2.0, 0.5}};
  const std::vector<std::vector<std::vector<double>>> grads = {
      {{0.1, 0.2, -0.3}}, {{1.0, -1.0, 0.0}}};
  const std::vector<double> lrs = {0.1, 0.05};
  // Step 1: [1 - 0.01, -2 - 0.02, 0.5 + 0.03]. Step 2 (lr 0.05):
  // [0.99 - 0.05, -2.02 + 0.05, 0.53].
  const Trace expected = {{{0.99, -2.02, 0.53}}, {{0.94, -1.97, 0.53}}};
  Trace p, b;
  Run<double>({}, initial, grads, lrs, nullptr, &p, &b);
  ExpectTrace(p, expected, 1e-12, "float64");
  p.clear(), b.clear();
  Run<float>({}, initial, grads, lrs, nullptr, &p, &b);
  ExpectTrace(p, expected, kF32Tol, "float32");
}

// buf <- g at step 1, then buf <- 0.9 buf + g; p <- p - 0.1 buf.
TEST_F(SgdTest, MomentumBufferStartsAsTheFirstGradient) {
  const std::vector<std::vector<std::vector<double>>> grads = {
      {{0.5}}, {{-0.25}}, {{1.0}}};
  // buf: 0.5; 0.45 - 0.25 = 0.2; 0.18 + 1 = 1.18.
  const Trace buffers = {{{0.5}}, {{0.2}}, {{1.18}}};
  // p: 1 - 0.05 = 0.95; 0.95 - 0.02 = 0.93; 0.93 - 0.118 = 0.812.
  const Trace params = {{{0.95}}, {{0.93}}, {{0.812}}};
  for (bool f64 : {false, true}) {
    Trace p, b;
    if (f64) {
      Run<double>({{"momentum", 0.9}}, {{1.0}}, grads, {0.1, 0.1, 0.1}, nullptr,
                  &p, &b);
    } else {
      Run<float>({{"momentum", 0.9}}, {{1.0}}, grads, {0.1, 0.1, 0.1}, nullptr,
                 &p, &b);
    }
    const double tol = f64 ? kF64Tol : kF32Tol;
    ExpectTrace(p, params, tol, f64 ? "float64 params" : "float32 params");
    ExpectTrace(b, buffers, tol, f64 ? "float64 buffer" : "float32 buffer");
  }
}

// Dampening scales new gradients by 1 - dampening, but not the first one
// (PyTorch copies it into the fresh buffer).
TEST_F(SgdTest, DampeningSkipsTheFirstStep) {
  Trace p, b;
  Run<float>({{"momentum", 0.9}, {"dampening", 0.5}}, {{1.0}},
             {{{0.5}}, {{-0.25}}, {{1.0}}}, {0.1, 0.1, 0.1}, nullptr, &p, &b);
  // buf: 0.5 (undampened); 0.45 + 0.5 * -0.25 = 0.325;
  // 0.9 * 0.325 + 0.5 * 1 = 0.7925.
  ExpectTrace(b, {{{0.5}}, {{0.325}}, {{0.7925}}}, kF32Tol, "buffer");
  // p: 1 - 0.05 = 0.95; 0.95 - 0.0325 = 0.9175; 0.9175 - 0.07925 = 0.83825.
  ExpectTrace(p, {{{0.95}}, {{0.9175}}, {{0.83825}}}, kF32Tol, "params");
}

// Nesterov: the update is g + momentum * buf.
TEST_F(SgdTest, NesterovLooksAhead) {
  Trace p, b;
  Run<float>({{"momentum", 0.9}, {"nesterov", true}}, {{1.0}},
             {{{0.5}}, {{-0.25}}, {{1.0}}}, {0.1, 0.1, 0.1}, nullptr, &p, &b);
  // buf as with plain momentum: 0.5, 0.2, 1.18.
  ExpectTrace(b, {{{0.5}}, {{0.2}}, {{1.18}}}, kF32Tol, "buffer");
  // d: 0.5 + 0.45 = 0.95; -0.25 + 0.18 = -0.07; 1 + 1.062 = 2.062.
  // p: 1 - 0.095 = 0.905; 0.905 + 0.007 = 0.912; 0.912 - 0.2062 = 0.7058.
  ExpectTrace(p, {{{0.905}}, {{0.912}}, {{0.7058}}}, kF32Tol, "params");
}

// Weight decay adds weight_decay * p to the gradient before momentum,
// except for parameters the no_decay mask excludes.
TEST_F(SgdTest, WeightDecayHonoursTheNoDecayMask) {
  const Overrides o = {{"momentum", 0.9}, {"weight_decay", 0.01}};
  const std::vector<std::vector<double>> initial = {{2.0}, {2.0}};
  const std::vector<std::vector<std::vector<double>>> grads = {
      {{0.5}, {0.5}}, {{-0.25}, {-0.25}}};
  // Decayed: d = 0.5 + 0.02 = 0.52 = buf, p = 2 - 0.052 = 1.948;
  //   d = -0.25 + 0.01948 = -0.23052, buf = 0.468 - 0.23052 = 0.23748,
  //   p = 1.948 - 0.023748 = 1.924252.
  // Not decayed: buf 0.5, p 1.95; buf 0.2, p 1.93.
  const uint8_t mask[] = {0, 1};
  Trace p, b;
  Run<float>(o, initial, grads, {0.1, 0.1}, mask, &p, &b);
  ExpectTrace(p, {{{1.948}, {1.95}}, {{1.924252}, {1.93}}}, kF32Tol,
              "params, mask {0, 1}");
  ExpectTrace(b, {{{0.52}, {0.5}}, {{0.23748}, {0.2}}}, kF32Tol,
              "buffers, mask {0, 1}");

  // A NULL mask decays every parameter.
  p.clear(), b.clear();
  Run<float>(o, initial, grads, {0.1, 0.1}, nullptr, &p, &b);
  ExpectTrace(p, {{{1.948}, {1.948}}, {{1.924252}, {1.924252}}}, kF32Tol,
              "params, no mask");
}

// maximize negates the gradient before weight decay is added (PyTorch 2.x;
// PyTorch 1.x negated the final update, which would give 1.06 here).
TEST_F(SgdTest, MaximizeNegatesTheGradientBeforeWeightDecay) {
  Trace p, b;
  Run<float>({{"maximize", true}, {"weight_decay", 0.1}}, {{1.0}},
             {{{0.5}}, {{-0.25}}}, {0.1, 0.1}, nullptr, &p, &b);
  // d = -0.5 + 0.1 * 1 = -0.4, p = 1.04;
  // d = 0.25 + 0.1 * 1.04 = 0.354, p = 1.04 - 0.0354 = 1.0046.
  ExpectTrace(p, {{{1.04}}, {{1.0046}}}, kF32Tol, "maximize + weight decay");

  p.clear(), b.clear();
  Run<float>({{"maximize", true}, {"momentum", 0.9}}, {{1.0}},
             {{{0.5}}, {{-0.25}}}, {0.1, 0.1}, nullptr, &p, &b);
  // buf = -0.5, p = 1.05; buf = -0.45 + 0.25 = -0.2, p = 1.07.
  ExpectTrace(b, {{{-0.5}}, {{-0.2}}}, kF32Tol, "maximize + momentum buffer");
  ExpectTrace(p, {{{1.05}}, {{1.07}}}, kF32Tol, "maximize + momentum");
}

// A resumed run (fresh instance, restored buffer, step 3) continues the
// DampeningSkipsTheFirstStep trajectory: only step 1 resets the buffer.
TEST_F(SgdTest, ResumeContinuesFromTheRestoredBuffer) {
  std::unique_ptr<OptimizerInstance> sgd =
      MustCreate({{"momentum", 0.9}, {"dampening", 0.5}});
  ASSERT_NE(sgd, nullptr);
  TestTensor<float> param({1}, {0.9175f});
  TestTensor<float> grad({1}, {1.0f});
  TestTensor<float> buffer({1}, {0.325f});
  StepCall call;
  call.params = {param.dl()};
  call.grads = {grad.dl()};
  call.state = {buffer.dl()};
  call.num_state = 1;
  call.step = 3;
  ErrorBuffer err;
  ASSERT_EQ(sgd->Step(call, &err), LLMSYS_STATUS_OK) << err.message();
  EXPECT_NEAR(buffer[0], 0.7925, kF32Tol);
  EXPECT_NEAR(param[0], 0.83825, kF32Tol);
}

// Every option at once on an odd-sized tensor, float32 against a float64
// transcription of torch.optim.SGD's update (the comment at the top of
// plugins/optimizers/optimizers.cc), with the learning rate decaying.
TEST_F(SgdTest, Float32MatchesAFloat64ReferenceOnAnOddSizedTensor) {
  const double momentum = 0.8, dampening = 0.0, wd = 0.05;
  const int64_t n = 7;
  std::vector<double> p0(n), buf(n);
  std::vector<std::vector<std::vector<double>>> grads;
  std::vector<double> lrs;
  for (int64_t k = 0; k < n; ++k) p0[k] = 0.3 * static_cast<double>(k) - 1.0;
  for (int s = 0; s < 4; ++s) {
    std::vector<double> g(n);
    for (int64_t k = 0; k < n; ++k) {
      g[k] = std::sin(1.7 * static_cast<double>(k) + s) * (1.0 + s);
    }
    grads.push_back({g});
    lrs.push_back(0.2 / (1.0 + s));
  }
  Trace expected;
  std::vector<double> p = p0;
  for (size_t s = 0; s < grads.size(); ++s) {
    for (int64_t k = 0; k < n; ++k) {
      double d = grads[s][0][k] + wd * p[k];
      buf[k] = s == 0 ? d : momentum * buf[k] + (1.0 - dampening) * d;
      d = d + momentum * buf[k];  // nesterov
      p[k] -= lrs[s] * d;
    }
    expected.push_back({p});
  }
  const Overrides o = {
      {"momentum", momentum}, {"nesterov", true}, {"weight_decay", wd}};
  Trace actual, buffers;
  Run<float>(o, {p0}, grads, lrs, nullptr, &actual, &buffers);
  ExpectTrace(actual, expected, 1e-5, "float32");
  actual.clear(), buffers.clear();
  Run<double>(o, {p0}, grads, lrs, nullptr, &actual, &buffers);
  ExpectTrace(actual, expected, 1e-6, "float64");
}

TEST_F(SgdTest, NesterovNeedsMomentumAndNoDampening) {
  std::unique_ptr<OptimizerInstance> sgd;
  std::string message;
  EXPECT_EQ(Create({{"momentum", 0.9}, {"dampening", 0.1}, {"nesterov", true}},
                   &sgd, &message),
            LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(sgd, nullptr);
  EXPECT_NE(message.find("nesterov"), std::string::npos) << message;
  EXPECT_NE(message.find("dampening"), std::string::npos) << message;

  message.clear();
  EXPECT_EQ(Create({{"nesterov", true}}, &sgd, &message),
            LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(message.find("momentum > 0"), std::string::npos) << message;

  EXPECT_EQ(Create({{"momentum", 0.9}, {"nesterov", true}}, &sgd, &message),
            LLMSYS_STATUS_OK)
      << message;
}

// A bad second parameter is reported by index and shapes, and the first
// parameter is left untouched: a rejected step changes nothing.
TEST_F(SgdTest, ShapeMismatchNamesTheParameterAndChangesNothing) {
  std::unique_ptr<OptimizerInstance> sgd = MustCreate({});
  ASSERT_NE(sgd, nullptr);
  TestTensor<float> p0({3}, {1, 2, 3});
  TestTensor<float> g0({3}, {1, 1, 1});
  TestTensor<float> p1({2, 3}, {1, 2, 3, 4, 5, 6});
  TestTensor<float> g1({3, 2}, {1, 1, 1, 1, 1, 1});
  StepCall call;
  call.params = {p0.dl(), p1.dl()};
  call.grads = {g0.dl(), g1.dl()};
  ErrorBuffer err;
  EXPECT_EQ(sgd->Step(call, &err), LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(err.message().find("parameter 1"), std::string::npos)
      << err.message();
  EXPECT_NE(err.message().find("(3, 2)"), std::string::npos) << err.message();
  EXPECT_NE(err.message().find("(2, 3)"), std::string::npos) << err.message();
  EXPECT_EQ(p0.values(), (std::vector<float>{1, 2, 3}));
}

TEST_F(SgdTest, DtypesMustBeFloatAndAgree) {
  std::unique_ptr<OptimizerInstance> sgd = MustCreate({});
  ASSERT_NE(sgd, nullptr);
  TestTensor<float> p({2}, {1, 2});
  TestTensor<double> g({2}, {1, 1});
  StepCall call;
  call.params = {p.dl()};
  call.grads = {g.dl()};
  ErrorBuffer err;
  EXPECT_EQ(sgd->Step(call, &err), LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(err.message().find("parameter 0"), std::string::npos)
      << err.message();
  EXPECT_NE(err.message().find("float64"), std::string::npos) << err.message();

  TestTensor<int64_t> ip({2}, {1, 2});
  TestTensor<int64_t> ig({2}, {1, 1});
  call.params = {ip.dl()};
  call.grads = {ig.dl()};
  ErrorBuffer err2;
  EXPECT_EQ(sgd->Step(call, &err2), LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(err2.message().find("int64"), std::string::npos) << err2.message();
  EXPECT_EQ(ip.values(), (std::vector<int64_t>{1, 2}));
}

TEST_F(SgdTest, RejectsMissingStateAndNonCpuTensors) {
  std::unique_ptr<OptimizerInstance> sgd = MustCreate({{"momentum", 0.9}});
  ASSERT_NE(sgd, nullptr);
  TestTensor<float> p({2}, {1, 2});
  TestTensor<float> g({2}, {1, 1});
  StepCall call;
  call.params = {p.dl()};
  call.grads = {g.dl()};
  call.num_state = 0;  // momentum needs one state tensor per parameter
  ErrorBuffer err;
  EXPECT_EQ(sgd->Step(call, &err), LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(err.message().find("state"), std::string::npos) << err.message();

  TestTensor<float> buffer({2}, {0, 0});
  call.state = {buffer.dl()};
  call.num_state = 1;
  call.params[0]->device.device_type = kDLCUDA;
  ErrorBuffer err2;
  EXPECT_EQ(sgd->Step(call, &err2), LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(err2.message().find("CPU"), std::string::npos) << err2.message();
  EXPECT_EQ(p.values(), (std::vector<float>{1, 2}));
}

}  // namespace
}  // namespace llmsys::plugins_test
