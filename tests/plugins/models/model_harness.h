// tests/plugins/models/model_harness.h — drives a model plugin as the host
// does: a registry with the reference operators, an op dispatcher, a
// parameter store, and one runtime::Graph per create() or forward() call
// through the model's C struct. Merge builds a test's config from its
// defaults and overrides; Train runs training steps with an update rule
// (PlainSgd); CheckGradients compares a backward's gradients with float64
// central differences.
//
// clang-format off
//   ModelRun run("gpt", {{"vocab_size", int64_t{8}}});
//   ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
//   ForwardResult r = run.Forward({{"tokens", tokens}}, LLMSYS_MODE_EVAL);
//   autograd::Var logits = r.outputs.at("logits");
// clang-format on
//
// Thread-safety: test-only, one thread.
#ifndef LLMSYS_TESTS_PLUGINS_MODELS_MODEL_HARNESS_H_
#define LLMSYS_TESTS_PLUGINS_MODELS_MODEL_HARNESS_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "framework/autograd/autograd.h"
#include "framework/runtime/dispatch.h"
#include "framework/runtime/graph.h"
#include "framework/runtime/param_schema.h"
#include "framework/runtime/parameters.h"
#include "framework/runtime/registry.h"
#include "llmsys/plugin.h"

namespace llmsys::models_test {

using Overrides = std::vector<std::pair<std::string, runtime::ParamValue>>;
using Inputs = std::vector<std::pair<std::string, tensor::Tensor>>;

// `base` with each of `extra` replacing the entry of the same name, or
// appended when there is none: a test's small config plus its overrides.
inline Overrides Merge(Overrides base, const Overrides& extra) {
  for (const auto& e : extra) {
    auto it = std::find_if(base.begin(), base.end(),
                           [&](const auto& x) { return x.first == e.first; });
    if (it != base.end())
      it->second = e.second;
    else
      base.push_back(e);
  }
  return base;
}

// reference.so and the model plugins from the build's plugin folder, plus the
// SDK fixture plugin; loaded once per test binary.
inline runtime::PluginRegistry& Registry() {
  static runtime::PluginRegistry* registry = [] {
    auto* r = new runtime::PluginRegistry;
    for (const std::string& file :
         {std::string(LLMSYS_BUILTIN_PLUGIN_DIR) + "/reference.so",
          std::string(LLMSYS_BUILTIN_PLUGIN_DIR) + "/gpt.so",
          std::string(LLMSYS_BUILTIN_PLUGIN_DIR) + "/transformer.so",
          std::string(LLMSYS_BUILTIN_PLUGIN_DIR) + "/bert.so",
          std::string(LLMSYS_BUILTIN_PLUGIN_DIR) + "/reder.so",
          std::string(LLMSYS_SDK_VALUES_PLUGIN)}) {
      absl::Status s = r->LoadFile(file);
      EXPECT_TRUE(s.ok()) << s;
    }
    return r;
  }();
  return *registry;
}

// A tensor of `dtype` holding `values`.
inline tensor::Tensor MakeTensor(const tensor::Shape& shape,
                                 const std::vector<double>& values,
                                 DLDataType dtype) {
  absl::StatusOr<tensor::Tensor> t =
      tensor::Tensor::FromDoubles(shape, values, dtype);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : tensor::Tensor();
}

struct ForwardResult {
  llmsys_status_t status = LLMSYS_STATUS_UNKNOWN;
  std::string message;
  std::map<std::string, autograd::Var> outputs;
  // Handles the call left unreleased (the inputs released): should be 0.
  int64_t leaked_handles = 0;
};

// One model instance with its own parameters and op dispatcher.
class ModelRun {
 public:
  ModelRun(std::string model_id, Overrides overrides, uint64_t seed = 1)
      : id_(std::move(model_id)),
        overrides_(std::move(overrides)),
        ops_(&Registry(), tensor::kCpu),
        params_(seed, tensor::kCpu) {}
  ~ModelRun() {
    if (instance_ != nullptr) api_->destroy(instance_);
  }
  ModelRun(const ModelRun&) = delete;
  ModelRun& operator=(const ModelRun&) = delete;

  // Calls create(); the message is in message().
  llmsys_status_t Create() {
    absl::StatusOr<const runtime::Component*> c =
        Registry().Find(LLMSYS_KIND_MODEL, id_);
    if (!c.ok()) {
      message_ = std::string(c.status().message());
      return LLMSYS_STATUS_NOT_FOUND;
    }
    api_ = (*c)->As<llmsys_model_t>();
    absl::StatusOr<runtime::ParamPack> pack =
        runtime::ParamPack::Make((*c)->params, overrides_);
    if (!pack.ok()) {
      message_ = std::string(pack.status().message());
      return LLMSYS_STATUS_INVALID_ARGUMENT;
    }
    runtime::Graph graph(&ops_, &params_);
    char message[2048] = {};
    llmsys_error_t err{message, sizeof(message)};
    const llmsys_status_t s =
        api_->create(pack->c_params(), graph.c(), &instance_, &err);
    message_ = message;
    EXPECT_EQ(graph.live_values(), 0) << "create() leaked value handles";
    return s;
  }

  // Calls forward() on `inputs` (copied into the graph as constants);
  // past_length as in llmsys/model.h (LLMSYS_MODE_GENERATE's cache).
  ForwardResult Forward(const Inputs& inputs, uint32_t mode,
                        int64_t past_length = 0) {
    ForwardResult r;
    runtime::Graph graph(&ops_, &params_);
    std::vector<llmsys_named_value_t> values;
    for (const auto& [name, t] : inputs)
      values.push_back({name.c_str(), graph.NewValue(autograd::MakeLeaf(t))});
    llmsys_model_inputs_t in{};
    in.struct_size = sizeof(in);
    in.mode = mode;
    in.values = values.data();
    in.num_values = static_cast<uint32_t>(values.size());
    in.past_length = past_length;
    char message[2048] = {};
    llmsys_error_t err{message, sizeof(message)};
    r.status = api_->forward(instance_, graph.c(), &in, &err);
    r.message = message;
    for (llmsys_named_value_t& v : values) graph.Release(v.value);
    r.leaked_handles = graph.live_values();
    r.outputs = graph.outputs();
    return r;
  }

  const std::string& message() const { return message_; }
  runtime::ParameterStore& params() { return params_; }
  runtime::OpDispatcher& ops() { return ops_; }
  const runtime::Parameter& Param(const std::string& name) {
    const runtime::Parameter* p = params_.Find(name);
    EXPECT_NE(p, nullptr) << "no parameter " << name;
    return *p;
  }
  void ZeroGrads() {
    for (const runtime::Parameter& p : params_.all())
      p.var->grad = tensor::Tensor();
  }

 private:
  std::string id_;
  Overrides overrides_;
  runtime::OpDispatcher ops_;
  runtime::ParameterStore params_;
  const llmsys_model_t* api_ = nullptr;
  void* instance_ = nullptr;
  std::string message_;
};

// How many numbers the parameters of `run` hold.
inline int64_t NumParameters(ModelRun& run) {
  int64_t n = 0;
  for (const runtime::Parameter& p : run.params().all())
    n += p.var->data.numel();
  return n;
}

// An optimizer step on one float32 parameter: `step` counts from 1, `k`
// is the parameter's index in declaration order, `w` its data and `g` its
// gradient.
using Update = std::function<void(int step, size_t k, float* w,
                                  const std::vector<double>& g)>;

// w -= lr * g.
inline Update PlainSgd(double lr) {
  return [lr](int, size_t, float* w, const std::vector<double>& g) {
    for (size_t i = 0; i < g.size(); ++i) w[i] -= static_cast<float>(lr * g[i]);
  };
}

// The first and the last loss of Train.
struct Losses {
  double first = 0, last = 0;
};

// `steps` TRAIN forwards of `run` on `inputs`, each followed by backward
// and `update` of every parameter; each loss must be finite and each
// parameter get a gradient (fatal failures otherwise: call it in
// ASSERT_NO_FATAL_FAILURE). Records the test property "loss" =
// "first -> last".
inline void Train(ModelRun& run, const Inputs& inputs, int steps,
                  const Update& update, Losses* losses) {
  for (int step = 1; step <= steps; ++step) {
    run.ZeroGrads();
    ForwardResult r = run.Forward(inputs, LLMSYS_MODE_TRAIN);
    ASSERT_EQ(r.status, LLMSYS_STATUS_OK) << r.message;
    const autograd::Var loss = r.outputs.at("loss");
    losses->last = loss->data.ToDoubles()[0];
    ASSERT_TRUE(std::isfinite(losses->last)) << "step " << step - 1;
    if (step == 1) losses->first = losses->last;
    ASSERT_TRUE(autograd::Backward(loss).ok());
    size_t k = 0;
    for (const runtime::Parameter& p : run.params().all()) {
      ASSERT_TRUE(p.var->grad.defined()) << p.name << " got no gradient";
      update(step, k++, p.var->data.data_as<float>(), p.var->grad.ToDoubles());
    }
  }
  char text[64];
  std::snprintf(text, sizeof(text), "%.4f -> %.4f", losses->first,
                losses->last);
  ::testing::Test::RecordProperty("loss", text);
}

// The elements CheckGradients perturbs in a parameter of n elements: the
// first, one a third in, and the last.
inline std::vector<int64_t> FirstThirdLast(int64_t n) {
  return {int64_t{0}, n / 3, n - 1};
}

// Compares the gradients a backward left on `run`'s float64 parameters
// `names` with central differences (loss(w + h) - loss(w - h)) / 2h, for
// the elements `elements(numel)` of each: the relative error
// |grad - numeric| / max(|numeric|, 1e-3) must stay below `tolerance`. The
// worst is recorded as the test property "worst_relative_error". `loss`
// runs one forward with the parameters as they are and returns the loss;
// with dropout it resets the dispatcher's call counter first, so every
// forward draws the same masks.
inline void CheckGradients(ModelRun& run, const std::function<double()>& loss,
                           const std::vector<std::string>& names, double h,
                           double tolerance,
                           const std::function<std::vector<int64_t>(int64_t)>&
                               elements = FirstThirdLast) {
  double worst = 0;
  for (const std::string& name : names) {
    const runtime::Parameter& p = run.Param(name);
    ASSERT_TRUE(p.var->grad.defined()) << name;
    const std::vector<double> grad = p.var->grad.ToDoubles();
    double* w = p.var->data.data_as<double>();
    for (int64_t i : elements(p.var->data.numel())) {
      const double saved = w[i];
      w[i] = saved + h;
      const double up = loss();
      w[i] = saved - h;
      const double down = loss();
      w[i] = saved;
      const double numeric = (up - down) / (2 * h);
      const double error =
          std::abs(grad[i] - numeric) / std::max(std::abs(numeric), 1e-3);
      worst = std::max(worst, error);
      EXPECT_LT(error, tolerance)
          << name << "[" << i << "]: backward " << grad[i]
          << ", central differences " << numeric;
    }
  }
  char worst_text[32];
  std::snprintf(worst_text, sizeof(worst_text), "%.2e", worst);
  ::testing::Test::RecordProperty("worst_relative_error", worst_text);
}

}  // namespace llmsys::models_test

#endif  // LLMSYS_TESTS_PLUGINS_MODELS_MODEL_HARNESS_H_
