// What every built-in optimizer (sgd, adam, adamw, lion) shares: a
// documented schema with ranges, a state_dtype choice, float32 and float64
// parameters, and checked step arguments whose errors name the parameter —
// a rejected step changing nothing. Driven through the C ABI as the host
// drives it (tests/plugins/optimizers/optimizer_test_util.h).
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

// Each optimizer with every feature that has state or decay turned on.
Overrides FullFeatured(const std::string& id) {
  if (id == "sgd") {
    return {{"momentum", 0.9}, {"nesterov", true}, {"weight_decay", 0.01}};
  }
  if (id == "adam") return {{"amsgrad", true}, {"weight_decay", 0.01}};
  if (id == "adamw") return {{"amsgrad", true}, {"weight_decay", 0.1}};
  return {{"weight_decay", 0.1}};
}

class OptimizerCommonTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    harness_ = std::make_unique<OptimizerHarness>(GetParam());
    ASSERT_TRUE(harness_->ok());
  }

  std::unique_ptr<OptimizerInstance> MakeFull(bool f64_state = false) {
    Overrides o = FullFeatured(GetParam());
    if (f64_state) o.emplace_back("state_dtype", std::string("float64"));
    return harness_->MustCreate(o);
  }

  std::unique_ptr<OptimizerHarness> harness_;
};

TEST_P(OptimizerCommonTest, EveryParameterHasADocAndARange) {
  EXPECT_EQ(harness_->plugin()->id(), "llmsys.optimizers");
  EXPECT_EQ(harness_->component()->device_type, kDLCPU);
  bool has_state_dtype = false;
  for (const runtime::ParamSchemaEntry& e : harness_->component()->params) {
    EXPECT_FALSE(e.doc.empty()) << e.name;
    EXPECT_EQ(e.doc.find('\n'), std::string::npos) << e.name;
    EXPECT_FALSE(e.required) << e.name;
    if (e.type == LLMSYS_TYPE_FLOAT) {
      EXPECT_TRUE(e.min_value.has_value()) << e.name;
      EXPECT_EQ(*e.min_value, 0.0) << e.name;
    }
    if (e.name == "state_dtype") {
      has_state_dtype = true;
      EXPECT_EQ(e.choices, (std::vector<std::string>{"float32", "float64"}));
    }
  }
  EXPECT_TRUE(has_state_dtype);
}

TEST_P(OptimizerCommonTest, StateDtypeChoosesTheDeclaredDtype) {
  for (bool f64 : {false, true}) {
    auto opt = MakeFull(f64);
    ASSERT_NE(opt, nullptr);
    const auto state = opt->State();
    EXPECT_FALSE(state.empty());
    for (const auto& s : state) {
      EXPECT_TRUE(llmsys_dtype_equal(s.second,
                                     f64 ? LLMSYS_DTYPE_F64 : LLMSYS_DTYPE_F32))
          << s.first;
    }
  }
}

// float32 (float32 state) follows float64 (float64 state) to float32
// rounding over a few steps on an odd-sized pair of parameters, the second
// excluded from weight decay, with the learning rate changing.
TEST_P(OptimizerCommonTest, Float32FollowsFloat64) {
  const int64_t n = 7;
  std::vector<std::vector<double>> initial(2, std::vector<double>(n));
  std::vector<std::vector<std::vector<double>>> grads;
  std::vector<double> lrs;
  for (int64_t k = 0; k < n; ++k) {
    initial[0][k] = 0.3 * static_cast<double>(k) - 1.0;
    initial[1][k] = 0.5 - 0.2 * static_cast<double>(k);
  }
  for (int s = 0; s < 4; ++s) {
    std::vector<std::vector<double>> g(2, std::vector<double>(n));
    for (int64_t k = 0; k < n; ++k) {
      g[0][k] = std::sin(1.7 * static_cast<double>(k) + s) * (1.0 + s);
      g[1][k] = std::cos(0.9 * static_cast<double>(k) - s);
    }
    grads.push_back(g);
    lrs.push_back(0.02 / (1.0 + s));
  }
  const uint8_t mask[] = {0, 1};
  Overrides o64 = FullFeatured(GetParam());
  o64.emplace_back("state_dtype", std::string("float64"));
  Trace p64, s64, p32, s32;
  harness_->Run<double>(o64, initial, grads, lrs, mask, &p64, &s64);
  harness_->Run<float>(FullFeatured(GetParam()), initial, grads, lrs, mask,
                       &p32, &s32);
  ExpectTrace(p32, p64, 1e-5, "params");
  ExpectTrace(s32, s64, 1e-5, "state");
  // The parameters moved.
  ASSERT_FALSE(p64.empty());
  EXPECT_NE(p64.back()[0][0], initial[0][0]);
}

// A bad second parameter is reported by index and shapes, and the first
// parameter and its state are left untouched.
TEST_P(OptimizerCommonTest, ShapeMismatchNamesTheParameterAndChangesNothing) {
  auto opt = MakeFull();
  ASSERT_NE(opt, nullptr);
  const uint32_t num_state = static_cast<uint32_t>(opt->State().size());
  TestTensor<float> p0({3}, {1, 2, 3});
  TestTensor<float> g0({3}, {1, 1, 1});
  TestTensor<float> p1({2, 3}, {1, 2, 3, 4, 5, 6});
  TestTensor<float> g1({3, 2}, {1, 1, 1, 1, 1, 1});
  std::vector<std::unique_ptr<TestTensor<float>>> state;
  StepCall call;
  call.params = {p0.dl(), p1.dl()};
  call.grads = {g0.dl(), g1.dl()};
  for (uint32_t s = 0; s < num_state; ++s) {
    state.push_back(std::make_unique<TestTensor<float>>(
        std::vector<int64_t>{3}, std::vector<float>(3, 0.0f)));
    call.state.push_back(state.back()->dl());
  }
  for (uint32_t s = 0; s < num_state; ++s) {
    state.push_back(std::make_unique<TestTensor<float>>(
        std::vector<int64_t>{2, 3}, std::vector<float>(6, 0.0f)));
    call.state.push_back(state.back()->dl());
  }
  call.num_state = num_state;
  ErrorBuffer err;
  EXPECT_EQ(opt->Step(call, &err), LLMSYS_STATUS_INVALID_ARGUMENT);
  const std::string m = err.message();
  EXPECT_EQ(m.rfind(GetParam() + ": parameter 1", 0), 0u) << m;
  EXPECT_NE(m.find("(3, 2)"), std::string::npos) << m;
  EXPECT_NE(m.find("(2, 3)"), std::string::npos) << m;
  EXPECT_EQ(p0.values(), (std::vector<float>{1, 2, 3}));
  for (auto& s : state) {
    for (float v : s->values()) EXPECT_EQ(v, 0.0f);
  }
}

TEST_P(OptimizerCommonTest, RejectsOtherDtypes) {
  auto opt = harness_->MustCreate({});
  ASSERT_NE(opt, nullptr);
  const uint32_t num_state = static_cast<uint32_t>(opt->State().size());
  TestTensor<float> s0({2}, {0, 0}), s1({2}, {0, 0}), s2({2}, {0, 0});
  std::vector<DLTensor*> state = {s0.dl(), s1.dl(), s2.dl()};
  state.resize(num_state);

  TestTensor<int64_t> ip({2}, {1, 2});
  TestTensor<int64_t> ig({2}, {1, 1});
  StepCall call;
  call.params = {ip.dl()};
  call.grads = {ig.dl()};
  call.state = state;
  call.num_state = num_state;
  ErrorBuffer err;
  EXPECT_EQ(opt->Step(call, &err), LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(err.message().find("parameter 0"), std::string::npos)
      << err.message();
  EXPECT_NE(err.message().find("int64"), std::string::npos) << err.message();
  EXPECT_EQ(ip.values(), (std::vector<int64_t>{1, 2}));

  // A float64 gradient for a float32 parameter.
  TestTensor<float> p({2}, {1, 2});
  TestTensor<double> g({2}, {1, 1});
  call.params = {p.dl()};
  call.grads = {g.dl()};
  ErrorBuffer err2;
  EXPECT_EQ(opt->Step(call, &err2), LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(err2.message().find("float64"), std::string::npos)
      << err2.message();
  EXPECT_EQ(p.values(), (std::vector<float>{1, 2}));
}

// State tensors must be what the optimizer declared: their number, dtype
// and the parameter's shape.
TEST_P(OptimizerCommonTest, RejectsStateThatIsNotTheDeclaredOne) {
  auto opt = MakeFull(/*f64_state=*/true);
  ASSERT_NE(opt, nullptr);
  const auto declared = opt->State();
  const uint32_t num_state = static_cast<uint32_t>(declared.size());
  TestTensor<double> p({2}, {1, 2});
  TestTensor<double> g({2}, {1, 1});
  std::vector<std::unique_ptr<TestTensor<double>>> good;
  StepCall call;
  call.params = {p.dl()};
  call.grads = {g.dl()};
  for (uint32_t s = 0; s < num_state; ++s) {
    good.push_back(std::make_unique<TestTensor<double>>(
        std::vector<int64_t>{2}, std::vector<double>{0, 0}));
    call.state.push_back(good.back()->dl());
  }
  call.num_state = num_state;

  // Wrong count.
  {
    StepCall c = call;
    c.num_state = num_state - 1;
    c.state.pop_back();
    ErrorBuffer err;
    EXPECT_EQ(opt->Step(c, &err), LLMSYS_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(err.message().find("state tensor"), std::string::npos)
        << err.message();
  }
  // float32 where float64 was declared, in the last state slot.
  TestTensor<float> f32({2}, {0, 0});
  {
    StepCall c = call;
    c.state.back() = f32.dl();
    ErrorBuffer err;
    EXPECT_EQ(opt->Step(c, &err), LLMSYS_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(err.message().find(declared.back().first), std::string::npos)
        << err.message();
    EXPECT_NE(err.message().find("float32"), std::string::npos)
        << err.message();
  }
  // Shaped unlike the parameter.
  TestTensor<double> wide({3}, {0, 0, 0});
  {
    StepCall c = call;
    c.state.front() = wide.dl();
    ErrorBuffer err;
    EXPECT_EQ(opt->Step(c, &err), LLMSYS_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(err.message().find(declared.front().first + " shape (3)"),
              std::string::npos)
        << err.message();
  }
  EXPECT_EQ(p.values(), (std::vector<double>{1, 2}));

  // The declared state works.
  ErrorBuffer err;
  EXPECT_EQ(opt->Step(call, &err), LLMSYS_STATUS_OK) << err.message();
  EXPECT_NE(p.values(), (std::vector<double>{1, 2}));
}

TEST_P(OptimizerCommonTest, RejectsStepZeroAndBadLearningRates) {
  auto opt = harness_->MustCreate({});
  ASSERT_NE(opt, nullptr);
  const uint32_t num_state = static_cast<uint32_t>(opt->State().size());
  TestTensor<float> p({1}, {1});
  TestTensor<float> g({1}, {1});
  TestTensor<float> s0({1}, {0}), s1({1}, {0});
  StepCall call;
  call.params = {p.dl()};
  call.grads = {g.dl()};
  call.state = {s0.dl(), s1.dl()};
  call.state.resize(num_state);
  call.num_state = num_state;
  call.step = 0;
  ErrorBuffer err;
  EXPECT_EQ(opt->Step(call, &err), LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(err.message().find("step"), std::string::npos) << err.message();
  call.step = 1;
  for (double lr : {-0.1, std::nan("")}) {
    call.lr = lr;
    ErrorBuffer e;
    EXPECT_EQ(opt->Step(call, &e), LLMSYS_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(e.message().find("learning rate"), std::string::npos)
        << e.message();
  }
  EXPECT_EQ(p[0], 1.0f);

  // No parameters at all is a valid, empty step.
  StepCall empty;
  empty.num_state = num_state;
  ErrorBuffer e;
  EXPECT_EQ(opt->Step(empty, &e), LLMSYS_STATUS_OK) << e.message();
}

// The host checks ranges before create(); create() checks them again for
// callers that skip the host.
TEST_P(OptimizerCommonTest, CreateRejectsOutOfRangeValuesPassedDirectly) {
  const runtime::ParamSchema& schema = harness_->component()->params;
  absl::StatusOr<runtime::ParamPack> pack = runtime::ParamPack::Make(schema);
  ASSERT_TRUE(pack.ok()) << pack.status();
  // Patch the C view: weight_decay = -1, state_dtype = "bfloat16".
  const llmsys_params_t* c = pack->c_params();
  std::vector<llmsys_param_t> items(c->items, c->items + c->count);
  for (const char* bad : {"weight_decay", "state_dtype"}) {
    std::vector<llmsys_param_t> patched = items;
    for (llmsys_param_t& item : patched) {
      if (std::string(item.name) != bad) continue;
      if (item.value.type == LLMSYS_TYPE_FLOAT) item.value.as.f = -1.0;
      if (item.value.type == LLMSYS_TYPE_STRING) item.value.as.s = "bfloat16";
    }
    llmsys_params_t params = *c;
    params.items = patched.data();
    void* instance = nullptr;
    ErrorBuffer err;
    const llmsys_optimizer_t* api =
        harness_->component()->As<llmsys_optimizer_t>();
    EXPECT_EQ(api->create(&params, &instance, err.get()),
              LLMSYS_STATUS_INVALID_ARGUMENT)
        << bad;
    EXPECT_EQ(instance, nullptr);
    EXPECT_NE(err.message().find(bad), std::string::npos) << err.message();
    EXPECT_EQ(err.message().rfind(GetParam() + ": ", 0), 0u) << err.message();
  }
}

INSTANTIATE_TEST_SUITE_P(Builtin, OptimizerCommonTest,
                         ::testing::Values("sgd", "adam", "adamw", "lion"),
                         [](const auto& info) { return info.param; });

// With float64 state, float64 sgd is exact where the default float32 buffer
// carries float32 rounding (sgd_test's MomentumBufferStartsAsTheFirst-
// Gradient at 1e-12 instead of 1e-6).
TEST(SgdStateDtypeTest, Float64StateIsExact) {
  OptimizerHarness h("sgd");
  ASSERT_TRUE(h.ok());
  Trace p, b;
  h.Run<double>({{"momentum", 0.9}, {"state_dtype", std::string("float64")}},
                {{1.0}}, {{{0.5}}, {{-0.25}}, {{1.0}}}, {0.1, 0.1, 0.1},
                nullptr, &p, &b);
  ExpectTrace(b, {{{0.5}}, {{0.2}}, {{1.18}}}, 1e-12, "buffer");
  ExpectTrace(p, {{{0.95}}, {{0.93}}, {{0.812}}}, 1e-12, "params");
}

}  // namespace
}  // namespace llmsys::plugins_test
