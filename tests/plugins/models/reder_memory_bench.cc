// Peak memory and time of one reder training step (forward and backward)
// with and without recompute, for 2, 4, 8 and 16 coupling layers: the
// table of docs/models.md. Memory is the host tensor memory
// (tensor::HostTensorMemory) above what the parameters hold before the
// step; "activations" leaves out the parameters' gradients (one per
// parameter, allocated in backward), so it is what the stored path keeps
// per layer and recompute does not.
//
//   build/tests/plugins/reder_memory_bench [batch] [length]   # 32 x 20
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "framework/autograd/autograd.h"
#include "framework/runtime/dispatch.h"
#include "framework/runtime/graph.h"
#include "framework/runtime/param_schema.h"
#include "framework/runtime/parameters.h"
#include "framework/runtime/registry.h"
#include "llmsys/model.h"

namespace {

using llmsys::autograd::Var;
namespace runtime = llmsys::runtime;
namespace tensor = llmsys::tensor;

void Check(const absl::Status& s) {
  if (!s.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(s.message()).c_str());
    std::exit(1);
  }
}

struct Measure {
  double activations_mb, peak_mb, params_mb, seconds;
};

Measure Step(runtime::PluginRegistry& registry, int64_t layers, bool recompute,
             int64_t batch, int64_t length) {
  const runtime::Component* c =
      registry.Find(LLMSYS_KIND_MODEL, "reder").value();
  runtime::OpDispatcher ops(&registry, tensor::kCpu);
  ops.set_num_threads(2);
  runtime::ParameterStore params(1, tensor::kCpu);
  absl::StatusOr<runtime::ParamPack> pack =
      runtime::ParamPack::Make(c->params, {{"vocab_size", int64_t{8000}},
                                           {"n_layer", layers},
                                           {"n_embd", int64_t{256}},
                                           {"ffn_dim", int64_t{1024}},
                                           {"recompute", recompute}});
  Check(pack.status());
  const auto* api = c->As<llmsys_model_t>();
  void* instance = nullptr;
  char message[2048] = {};
  llmsys_error_t err{message, sizeof(message)};
  {
    runtime::Graph graph(&ops, &params);
    if (api->create(pack->c_params(), graph.c(), &instance, &err) !=
        LLMSYS_STATUS_OK) {
      std::fprintf(stderr, "create: %s\n", message);
      std::exit(1);
    }
  }
  double param_bytes = 0;
  for (const runtime::Parameter& p : params.all())
    param_bytes += static_cast<double>(p.var->data.numel() * 4);
  // Sentences of `length` tokens both ways.
  std::vector<double> ids,
      lengths(static_cast<size_t>(batch), static_cast<double>(length));
  for (int64_t i = 0; i < batch * length; ++i)
    ids.push_back(4 + (i * 7) % 5000);
  auto tensor_of = [](tensor::Shape s, const std::vector<double>& v,
                      DLDataType t) {
    return tensor::Tensor::FromDoubles(s, v, t).value();
  };
  const std::vector<std::pair<std::string, tensor::Tensor>> inputs = {
      {"src", tensor_of({batch, length}, ids, tensor::kI64)},
      {"src_lengths", tensor_of({batch}, lengths, tensor::kI64)},
      {"tgt", tensor_of({batch, length}, ids, tensor::kI64)},
      {"tgt_lengths", tensor_of({batch}, lengths, tensor::kI64)}};
  tensor::ResetPeakHostTensorMemory();
  const int64_t base = tensor::HostTensorMemory().current;
  const auto start = std::chrono::steady_clock::now();
  {
    runtime::Graph graph(&ops, &params);
    std::vector<llmsys_named_value_t> values;
    for (const auto& [name, t] : inputs)
      values.push_back(
          {name.c_str(), graph.NewValue(llmsys::autograd::MakeLeaf(t))});
    llmsys_model_inputs_t in{};
    in.struct_size = sizeof(in);
    in.mode = LLMSYS_MODE_TRAIN;
    in.values = values.data();
    in.num_values = static_cast<uint32_t>(values.size());
    if (api->forward(instance, graph.c(), &in, &err) != LLMSYS_STATUS_OK) {
      std::fprintf(stderr, "forward: %s\n", message);
      std::exit(1);
    }
    for (auto& v : values) graph.Release(v.value);
    Var loss = graph.outputs().at("loss");
    Check(llmsys::autograd::Backward(loss));
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  const double peak =
      static_cast<double>(tensor::HostTensorMemory().peak - base);
  api->destroy(instance);
  return {(peak - param_bytes) / 1e6, peak / 1e6, param_bytes / 1e6, seconds};
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t batch = argc > 1 ? std::atoll(argv[1]) : 32;
  const int64_t length = argc > 2 ? std::atoll(argv[2]) : 20;
  runtime::PluginRegistry registry;
  for (const char* so : {"reference.so", "reder.so"})
    Check(registry.LoadFile(std::string(LLMSYS_BUILTIN_PLUGIN_DIR) + "/" + so));
  // The fast CPU operators when this build has them (OpenBLAS).
  (void)registry.LoadFile(std::string(LLMSYS_BUILTIN_PLUGIN_DIR) + "/cpu.so");
  std::printf(
      "reder training step, batch %lld x %lld tokens (x2 upsampled, both "
      "directions), n_embd 256, ffn_dim 1024, float32\n\n",
      static_cast<long long>(batch), static_cast<long long>(length));
  std::printf(
      "| layers | parameters (MB) | stored: peak step memory (MB) | stored: "
      "activations | recompute: peak | recompute: activations | time "
      "stored / recompute (s) |\n| --- | --- | --- | --- | --- | --- | --- "
      "|\n");
  for (int64_t layers : {2, 4, 8, 16}) {
    const Measure s = Step(registry, layers, false, batch, length);
    const Measure r = Step(registry, layers, true, batch, length);
    std::printf("| %lld | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f / %.2f |\n",
                static_cast<long long>(layers), s.params_mb, s.peak_mb,
                s.activations_mb, r.peak_mb, r.activations_mb, s.seconds,
                r.seconds);
  }
  return 0;
}
