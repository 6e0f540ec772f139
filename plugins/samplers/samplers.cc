// plugins/samplers/samplers.cc — the built-in samplers (plugin
// "llmsys.samplers").
//
// greedy: the next token of each row is the argmax of its logits,
// tokens[b] = argmax_v logits[b, v], with ties going to the lowest index as
// torch.argmax does. Deterministic: it draws no random numbers and ignores
// the history. A NaN logit is an error naming its row (torch.argmax would
// silently pick the NaN), because it almost always means the model diverged.
//
// Shapes: logits (B, V) float32 with V >= 1, tokens (B) int64, both on the
// CPU. Strided views are accepted (e.g. the last position of (B, T, V)
// logits), so the host need not copy. Every row is checked before any token
// is written, so a rejected call leaves `tokens` untouched.
//
// Thread-safety: an instance is used by one thread at a time (sampler.h);
// greedy keeps no state. Ownership: tensors are borrowed for the call.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "llmsys/sdk.hpp"

namespace llmsys::plugins {
namespace {

using sdk::Require;

// Stride of dim `d` in elements (compact row-major when strides is NULL).
int64_t Stride(const DLTensor* t, int32_t d) {
  if (t->strides != nullptr) return t->strides[d];
  int64_t s = 1;
  for (int32_t i = t->ndim - 1; i > d; --i) s *= t->shape[i];
  return s;
}

class Greedy : public sdk::Sampler {
 public:
  static sdk::Info Describe() {
    sdk::Info info;
    info.id = "greedy";
    info.version = "1.0.0";
    info.description =
        "Greedy decoding: the most likely token of each row (ties to the "
        "lowest id)";
    info.device_type = kDLCPU;
    return info;  // No parameters.
  }

  explicit Greedy(const sdk::Params& /*params*/) {}

  void Sample(const llmsys_sample_args_t& args) override {
    Require(args.struct_size >=
                offsetof(llmsys_sample_args_t, tokens) + sizeof(args.tokens),
            "greedy: the sample arguments are too small (struct_size " +
                std::to_string(args.struct_size) + ")");
    const DLTensor* logits = args.logits;
    DLTensor* tokens = args.tokens;
    Require(logits != nullptr, "greedy: logits is NULL");
    Require(tokens != nullptr, "greedy: tokens is NULL");
    Require(logits->device.device_type == kDLCPU &&
                tokens->device.device_type == kDLCPU,
            "greedy: logits and tokens must be on the CPU");
    Require(logits->ndim == 2,
            "greedy: logits must be (B, V), got " + sdk::ShapeString(logits));
    Require(llmsys_dtype_equal(logits->dtype, LLMSYS_DTYPE_F32),
            "greedy: logits must be float32");
    const int64_t batch = logits->shape[0];
    const int64_t vocab = logits->shape[1];
    Require(vocab >= 1, "greedy: logits " + sdk::ShapeString(logits) +
                            " has an empty vocabulary dimension");
    Require(tokens->ndim == 1 && tokens->shape[0] == batch,
            "greedy: tokens must be (B) = (" + std::to_string(batch) +
                ") for logits " + sdk::ShapeString(logits) + ", got " +
                sdk::ShapeString(tokens));
    Require(llmsys_dtype_equal(tokens->dtype, LLMSYS_DTYPE_I64),
            "greedy: tokens must be int64");

    const float* data = sdk::Data<const float>(logits);
    const int64_t row_stride = Stride(logits, 0);
    const int64_t col_stride = Stride(logits, 1);
    std::vector<int64_t> picked(static_cast<size_t>(batch));
    for (int64_t b = 0; b < batch; ++b) {
      const float* row = data + b * row_stride;
      int64_t best = 0;
      float best_value = row[0];
      for (int64_t v = 0; v < vocab; ++v) {
        const float x = row[v * col_stride];
        if (std::isnan(x)) {
          sdk::Fail(LLMSYS_STATUS_INVALID_ARGUMENT,
                    "greedy: logits row " + std::to_string(b) +
                        " has NaN at token " + std::to_string(v) +
                        " (did the model diverge?)");
        }
        // Strictly greater: the first maximum wins, as in torch.argmax.
        if (x > best_value) {
          best_value = x;
          best = v;
        }
      }
      picked[static_cast<size_t>(b)] = best;
    }

    int64_t* out = sdk::Data<int64_t>(tokens);
    const int64_t out_stride = Stride(tokens, 0);
    for (int64_t b = 0; b < batch; ++b) {
      out[b * out_stride] = picked[static_cast<size_t>(b)];
    }
  }
};

}  // namespace
}  // namespace llmsys::plugins

LLMSYS_PLUGIN("llmsys.samplers", "0.1.0",
              "Built-in samplers: greedy (argmax decoding)", "MIT") {
  registry.Add<llmsys::plugins::Greedy>();
}
