// tests/torch/optimizers_vs_torch.cc — runs every built-in optimizer (sgd,
// adam, adamw, lion) in a set of configurations for 10 steps on random
// float64 parameters and gradients, through the plugin's C ABI as the host
// does (create from a parameter pack, state() for the state, allocated
// zero-filled in the declared dtype, step = 1, 2, ... with a changing
// learning rate and a no_decay mask), and writes the whole trajectory as
// JSON for optimizers_vs_torch.py to recompute with torch.optim.
//
//   optimizers_vs_torch_dump OUT.json [optimizers.so]
//
// Exit status 0 when the file was written, 1 on a usage or I/O error, when
// the plugin cannot be loaded or when an optimizer call fails.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/runtime/param_schema.h"
#include "framework/runtime/plugin.h"
#include "llmsys/plugin.h"

namespace {

using llmsys::runtime::Component;
using llmsys::runtime::ParamPack;
using llmsys::runtime::ParamValue;
using llmsys::runtime::Plugin;
using nlohmann::json;

constexpr int kSteps = 10;

struct Config {
  std::string optimizer;
  std::vector<std::pair<std::string, ParamValue>> overrides;
  double base_lr;
};

// A compact float64 CPU tensor over a vector.
struct Buffer {
  std::vector<int64_t> shape;
  std::vector<double> values;
  DLTensor dl{};

  Buffer(std::vector<int64_t> s, std::vector<double> v)
      : shape(std::move(s)), values(std::move(v)) {}
  DLTensor* View() {
    dl = DLTensor{};
    dl.data = values.data();
    dl.device = DLDevice{kDLCPU, 0};
    dl.ndim = static_cast<int32_t>(shape.size());
    dl.dtype = LLMSYS_DTYPE_F64;
    dl.shape = shape.data();
    return &dl;
  }
  json Json() const { return {{"shape", shape}, {"values", values}}; }
};

int64_t Numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// The values the plugin was created with, from the C view it received.
json ParamsJson(const llmsys_params_t* params) {
  json out = json::object();
  for (uint32_t i = 0; i < params->count; ++i) {
    const llmsys_param_t& p = params->items[i];
    switch (p.value.type) {
      case LLMSYS_TYPE_BOOL:
        out[p.name] = p.value.as.i != 0;
        break;
      case LLMSYS_TYPE_INT:
        out[p.name] = p.value.as.i;
        break;
      case LLMSYS_TYPE_FLOAT:
        out[p.name] = p.value.as.f;
        break;
      case LLMSYS_TYPE_STRING:
        out[p.name] = p.value.as.s;
        break;
      default:
        out[p.name] = nullptr;
        break;
    }
  }
  return out;
}

bool Fail(const std::string& what, const std::string& message) {
  std::cerr << "optimizers_vs_torch_dump: " << what << ": " << message << "\n";
  return false;
}

// Runs one configuration and appends its record to `runs`.
bool RunConfig(const Plugin& plugin, const Config& config, uint64_t seed,
               json* runs) {
  const Component* c =
      plugin.FindComponent(LLMSYS_KIND_OPTIMIZER, config.optimizer);
  if (c == nullptr) return Fail(config.optimizer, "no such optimizer");
  const llmsys_optimizer_t* api = c->As<llmsys_optimizer_t>();
  std::vector<std::pair<std::string, ParamValue>> overrides = config.overrides;
  overrides.emplace_back("state_dtype", std::string("float64"));
  absl::StatusOr<ParamPack> pack = ParamPack::Make(c->params, overrides);
  if (!pack.ok()) return Fail(config.optimizer, pack.status().ToString());

  char message[1024] = {};
  llmsys_error_t err{message, sizeof(message)};
  void* instance = nullptr;
  if (api->create(pack->c_params(), &instance, &err) != LLMSYS_STATUS_OK) {
    return Fail(config.optimizer, message);
  }
  std::unique_ptr<void, void (*)(void*)> owner(instance, api->destroy);
  const llmsys_state_spec_t* const* specs = nullptr;
  uint32_t num_state = 0;
  if (api->state(instance, &specs, &num_state, &err) != LLMSYS_STATUS_OK) {
    return Fail(config.optimizer, message);
  }
  json state_names = json::array();
  for (uint32_t s = 0; s < num_state; ++s) {
    if (!llmsys_dtype_equal(specs[s]->dtype, LLMSYS_DTYPE_F64)) {
      return Fail(config.optimizer, "state is not float64");
    }
    state_names.push_back(specs[s]->name);
  }

  // Three parameters; the second is excluded from weight decay, and the
  // first element of the third gets a zero gradient throughout.
  const std::vector<std::vector<int64_t>> shapes = {{3, 4}, {5}, {2, 1, 3}};
  const std::vector<uint8_t> no_decay = {0, 1, 0};
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  std::vector<std::unique_ptr<Buffer>> params, state;
  json initial = json::array();
  for (const auto& shape : shapes) {
    std::vector<double> v(Numel(shape));
    for (double& x : v) x = uniform(rng);
    params.push_back(std::make_unique<Buffer>(shape, v));
    initial.push_back(params.back()->Json());
    for (uint32_t s = 0; s < num_state; ++s) {
      state.push_back(std::make_unique<Buffer>(
          shape, std::vector<double>(Numel(shape), 0.0)));
    }
  }

  json lrs = json::array(), grads_json = json::array(),
       params_after = json::array(), state_after = json::array();
  for (int step = 1; step <= kSteps; ++step) {
    // Warm-up over 3 steps, then decay by 0.9 a step.
    const double lr =
        config.base_lr * std::min(1.0, step / 3.0) * std::pow(0.9, step - 1);
    std::vector<std::unique_ptr<Buffer>> grads;
    std::vector<DLTensor*> p_views, s_views;
    std::vector<const DLTensor*> g_views;
    json step_grads = json::array();
    for (size_t i = 0; i < shapes.size(); ++i) {
      // Gradients of varying scale, so the adaptive optimizers see both
      // large and small second moments.
      const double scale = std::pow(10.0, uniform(rng));
      std::vector<double> v(Numel(shapes[i]));
      for (double& x : v) x = scale * uniform(rng);
      if (i == 2) v[0] = 0.0;
      grads.push_back(std::make_unique<Buffer>(shapes[i], v));
      step_grads.push_back(grads.back()->Json());
      p_views.push_back(params[i]->View());
      g_views.push_back(grads.back()->View());
    }
    for (auto& s : state) s_views.push_back(s->View());
    llmsys_call_context_t ctx{};
    ctx.struct_size = sizeof(ctx);
    ctx.device = DLDevice{kDLCPU, 0};
    ctx.num_threads = 1;
    llmsys_optimizer_step_t args{};
    args.struct_size = sizeof(args);
    args.ctx = &ctx;
    args.num_params = static_cast<uint32_t>(p_views.size());
    args.params = p_views.data();
    args.grads = g_views.data();
    args.state = s_views.empty() ? nullptr : s_views.data();
    args.num_state = num_state;
    args.no_decay = no_decay.data();
    args.step = step;
    args.lr = lr;
    if (api->step(instance, &args, &err) != LLMSYS_STATUS_OK) {
      return Fail(config.optimizer + " step " + std::to_string(step), message);
    }
    lrs.push_back(lr);
    grads_json.push_back(std::move(step_grads));
    json ps = json::array(), ss = json::array();
    for (auto& p : params) ps.push_back(p->Json());
    // [parameter][state]
    for (size_t i = 0; i < params.size(); ++i) {
      json per = json::array();
      for (uint32_t s = 0; s < num_state; ++s) {
        per.push_back(state[i * num_state + s]->Json());
      }
      ss.push_back(std::move(per));
    }
    params_after.push_back(std::move(ps));
    state_after.push_back(std::move(ss));
  }
  runs->push_back({{"optimizer", config.optimizer},
                   {"params", ParamsJson(pack->c_params())},
                   {"state_names", state_names},
                   {"no_decay", no_decay},
                   {"initial", initial},
                   {"lrs", lrs},
                   {"grads", grads_json},
                   {"params_after", params_after},
                   {"state_after", state_after}});
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::cerr << "usage: optimizers_vs_torch_dump OUT.json [optimizers.so]\n";
    return 1;
  }
  const std::string file =
      argc == 3 ? argv[2]
                : std::string(LLMSYS_BUILTIN_PLUGIN_DIR) + "/optimizers.so";
  absl::StatusOr<std::shared_ptr<Plugin>> plugin = Plugin::Load(file);
  if (!plugin.ok()) {
    std::cerr << "optimizers_vs_torch_dump: " << plugin.status() << "\n";
    return 1;
  }

  const std::vector<Config> configs = {
      {"sgd", {}, 0.1},
      {"sgd", {{"momentum", 0.9}}, 0.1},
      {"sgd",
       {{"momentum", 0.9}, {"dampening", 0.3}, {"weight_decay", 0.01}},
       0.1},
      {"sgd",
       {{"momentum", 0.8}, {"nesterov", true}, {"weight_decay", 0.05}},
       0.05},
      {"sgd",
       {{"momentum", 0.5}, {"maximize", true}, {"weight_decay", 0.02}},
       0.1},
      {"adam", {}, 0.01},
      {"adam", {{"weight_decay", 0.1}}, 0.01},
      {"adam",
       {{"beta1", 0.8},
        {"beta2", 0.95},
        {"eps", 1e-6},
        {"weight_decay", 0.05},
        {"amsgrad", true}},
       0.02},
      {"adamw", {}, 0.01},
      {"adamw",
       {{"beta1", 0.85},
        {"beta2", 0.98},
        {"eps", 1e-7},
        {"weight_decay", 0.1},
        {"amsgrad", true}},
       0.02},
      {"lion", {}, 0.01},
      {"lion",
       {{"beta1", 0.95}, {"beta2", 0.98}, {"weight_decay", 0.5}},
       0.003},
  };

  json runs = json::array();
  uint64_t seed = 20230213;
  for (const Config& config : configs) {
    if (!RunConfig(**plugin, config, seed++, &runs)) return 1;
  }

  // The schema defaults, for the script to compare with torch.optim's.
  json defaults = json::object();
  for (const char* id : {"sgd", "adam", "adamw", "lion"}) {
    const llmsys::runtime::Component* c =
        (*plugin)->FindComponent(LLMSYS_KIND_OPTIMIZER, id);
    if (c == nullptr) return 1;
    absl::StatusOr<ParamPack> pack = ParamPack::Make(c->params);
    if (!pack.ok()) return 1;
    defaults[id] = ParamsJson(pack->c_params());
  }

  std::ofstream out(argv[1]);
  out << json{{"steps", kSteps}, {"defaults", defaults}, {"runs", runs}}.dump()
      << "\n";
  if (!out) {
    std::cerr << "optimizers_vs_torch_dump: cannot write " << argv[1] << "\n";
    return 1;
  }
  return 0;
}
