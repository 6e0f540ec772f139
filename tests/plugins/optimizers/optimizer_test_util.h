// tests/plugins/optimizers/optimizer_test_util.h — drives one optimizer of
// the built optimizers.so through the C ABI as the host does: create from a
// parameter pack, ask for the state, allocate it zero-filled in the declared
// dtype, then step with step = 1, 2, ... and record every parameter and
// state tensor after each step.
//
//   OptimizerHarness h("adam");
//   Trace params, state;
//   h.Run<double>({{"amsgrad", true}}, {{1.0, 2.0}}, {{{0.5, -1}}}, {0.1},
//                 nullptr, &params, &state);
//   ExpectTrace(params, {{{0.9, 2.1}}}, 1e-12, "params");
//
// Thread-safety: test-only, used from the test's thread.
// Ownership: the harness keeps the plugin loaded; instances it creates are
// destroyed with their OptimizerInstance.
#ifndef LLMSYS_TESTS_PLUGINS_OPTIMIZERS_OPTIMIZER_TEST_UTIL_H_
#define LLMSYS_TESTS_PLUGINS_OPTIMIZERS_OPTIMIZER_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "framework/runtime/param_schema.h"
#include "framework/runtime/plugin.h"
#include "llmsys/plugin.h"
#include "tests/plugins/plugin_test_util.h"

namespace llmsys::plugins_test {

using Overrides = std::vector<std::pair<std::string, runtime::ParamValue>>;
// [step][tensor][element]; for state, tensors are parameter-major
// (state[p * num_state + s]), as the host passes them.
using Trace = std::vector<std::vector<std::vector<double>>>;

// The arguments of one step, as the host would pass them.
struct StepCall {
  std::vector<DLTensor*> params;
  std::vector<const DLTensor*> grads;
  std::vector<DLTensor*> state;
  uint32_t num_state = 0;
  const uint8_t* no_decay = nullptr;
  int64_t step = 1;
  double lr = 0.1;
};

// One optimizer instance, destroyed with this object.
class OptimizerInstance {
 public:
  OptimizerInstance(const llmsys_optimizer_t* api, void* instance)
      : api_(api), instance_(instance) {}
  ~OptimizerInstance() { api_->destroy(instance_); }
  OptimizerInstance(const OptimizerInstance&) = delete;
  OptimizerInstance& operator=(const OptimizerInstance&) = delete;

  // The declared state: (name, dtype) pairs.
  std::vector<std::pair<std::string, DLDataType>> State() {
    const llmsys_state_spec_t* const* specs = nullptr;
    uint32_t n = 0;
    ErrorBuffer err;
    EXPECT_EQ(api_->state(instance_, &specs, &n, err.get()), LLMSYS_STATUS_OK)
        << err.message();
    std::vector<std::pair<std::string, DLDataType>> out;
    for (uint32_t i = 0; i < n; ++i) {
      out.emplace_back(specs[i]->name, specs[i]->dtype);
    }
    return out;
  }

  llmsys_status_t Step(const StepCall& c, ErrorBuffer* err) {
    llmsys_call_context_t ctx = CpuContext();
    llmsys_optimizer_step_t args{};
    args.struct_size = sizeof(args);
    args.ctx = &ctx;
    args.num_params = static_cast<uint32_t>(c.params.size());
    args.params = c.params.data();
    args.grads = c.grads.data();
    args.state = c.state.empty() ? nullptr : c.state.data();
    args.num_state = c.num_state;
    args.no_decay = c.no_decay;
    args.step = c.step;
    args.lr = c.lr;
    return api_->step(instance_, &args, err->get());
  }

 private:
  const llmsys_optimizer_t* api_;
  void* instance_;
};

// A state tensor of either declared dtype.
class StateTensor {
 public:
  StateTensor(DLDataType dtype, int64_t n) {
    if (llmsys_dtype_equal(dtype, LLMSYS_DTYPE_F64)) {
      f64_ = std::make_unique<TestTensor<double>>(std::vector<int64_t>{n},
                                                  std::vector<double>(n, 0.0));
    } else {
      EXPECT_TRUE(llmsys_dtype_equal(dtype, LLMSYS_DTYPE_F32));
      f32_ = std::make_unique<TestTensor<float>>(std::vector<int64_t>{n},
                                                 std::vector<float>(n, 0.0f));
    }
  }
  DLTensor* dl() { return f64_ ? f64_->dl() : f32_->dl(); }
  std::vector<double> values() const {
    if (f64_) return f64_->values();
    return std::vector<double>(f32_->values().begin(), f32_->values().end());
  }

 private:
  std::unique_ptr<TestTensor<float>> f32_;
  std::unique_ptr<TestTensor<double>> f64_;
};

class OptimizerHarness {
 public:
  explicit OptimizerHarness(const std::string& id) {
    plugin_ = LoadBuiltinPlugin("optimizers.so");
    if (plugin_ == nullptr) return;
    component_ = plugin_->FindComponent(LLMSYS_KIND_OPTIMIZER, id);
    EXPECT_NE(component_, nullptr) << "no optimizer '" << id << "'";
    if (component_ != nullptr) api_ = component_->As<llmsys_optimizer_t>();
  }

  bool ok() const { return api_ != nullptr; }
  const runtime::Component* component() const { return component_; }
  const runtime::Plugin* plugin() const { return plugin_.get(); }

  // Calls create(); on success *out owns the instance. *message gets the
  // error text.
  llmsys_status_t Create(const Overrides& overrides,
                         std::unique_ptr<OptimizerInstance>* out,
                         std::string* message = nullptr) {
    absl::StatusOr<runtime::ParamPack> pack =
        runtime::ParamPack::Make(component_->params, overrides);
    EXPECT_TRUE(pack.ok()) << pack.status();
    if (!pack.ok()) return LLMSYS_STATUS_INTERNAL;
    void* instance = nullptr;
    ErrorBuffer err;
    llmsys_status_t s = api_->create(pack->c_params(), &instance, err.get());
    if (message != nullptr) *message = err.message();
    if (s == LLMSYS_STATUS_OK) {
      *out = std::make_unique<OptimizerInstance>(api_, instance);
    }
    return s;
  }

  std::unique_ptr<OptimizerInstance> MustCreate(const Overrides& overrides) {
    std::unique_ptr<OptimizerInstance> opt;
    std::string message;
    EXPECT_EQ(Create(overrides, &opt, &message), LLMSYS_STATUS_OK) << message;
    return opt;
  }

  // Runs the optimizer with `overrides` on 1-D parameters of element type T
  // that start at `initial`, feeding grads[s] and lrs[s] at step s + 1, as
  // the host would (state allocated zero-filled in its declared dtype, step
  // counting from 1). Records the parameters and the state after each step.
  template <class T>
  void Run(const Overrides& overrides,
           const std::vector<std::vector<double>>& initial,
           const std::vector<std::vector<std::vector<double>>>& grads,
           const std::vector<double>& lrs, const uint8_t* no_decay,
           Trace* params_after, Trace* state_after) {
    std::unique_ptr<OptimizerInstance> opt = MustCreate(overrides);
    ASSERT_NE(opt, nullptr);
    const auto state = opt->State();
    const uint32_t num_state = static_cast<uint32_t>(state.size());
    std::vector<std::unique_ptr<TestTensor<T>>> params;
    std::vector<std::unique_ptr<StateTensor>> buffers;
    for (const std::vector<double>& values : initial) {
      const int64_t n = static_cast<int64_t>(values.size());
      params.push_back(std::make_unique<TestTensor<T>>(
          std::vector<int64_t>{n},
          std::vector<T>(values.begin(), values.end())));
      for (uint32_t s = 0; s < num_state; ++s) {
        buffers.push_back(std::make_unique<StateTensor>(state[s].second, n));
      }
    }
    ASSERT_EQ(grads.size(), lrs.size());
    for (size_t s = 0; s < grads.size(); ++s) {
      ASSERT_EQ(grads[s].size(), initial.size());
      std::vector<std::unique_ptr<TestTensor<T>>> g;
      StepCall call;
      for (size_t i = 0; i < initial.size(); ++i) {
        g.push_back(std::make_unique<TestTensor<T>>(
            std::vector<int64_t>{static_cast<int64_t>(grads[s][i].size())},
            std::vector<T>(grads[s][i].begin(), grads[s][i].end())));
        call.params.push_back(params[i]->dl());
        call.grads.push_back(g[i]->dl());
      }
      for (auto& b : buffers) call.state.push_back(b->dl());
      call.num_state = num_state;
      call.no_decay = no_decay;
      call.step = static_cast<int64_t>(s) + 1;
      call.lr = lrs[s];
      ErrorBuffer err;
      ASSERT_EQ(opt->Step(call, &err), LLMSYS_STATUS_OK) << err.message();
      params_after->emplace_back();
      state_after->emplace_back();
      for (auto& p : params) {
        params_after->back().emplace_back(p->values().begin(),
                                          p->values().end());
      }
      for (auto& b : buffers) state_after->back().push_back(b->values());
    }
  }

 private:
  std::shared_ptr<runtime::Plugin> plugin_;
  const runtime::Component* component_ = nullptr;
  const llmsys_optimizer_t* api_ = nullptr;
};

inline void ExpectTrace(const Trace& actual, const Trace& expected, double tol,
                        const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (size_t s = 0; s < expected.size(); ++s) {
    ASSERT_EQ(actual[s].size(), expected[s].size()) << what;
    for (size_t p = 0; p < expected[s].size(); ++p) {
      ASSERT_EQ(actual[s][p].size(), expected[s][p].size()) << what;
      for (size_t k = 0; k < expected[s][p].size(); ++k) {
        EXPECT_NEAR(actual[s][p][k], expected[s][p][k], tol)
            << what << " after step " << s + 1 << ", tensor " << p
            << ", element " << k;
      }
    }
  }
}

}  // namespace llmsys::plugins_test

#endif  // LLMSYS_TESTS_PLUGINS_OPTIMIZERS_OPTIMIZER_TEST_UTIL_H_
