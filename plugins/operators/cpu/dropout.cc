// dropout.cpu: element i kept iff llmsys_random_uniform(seed, offset, i) >=
// p, exactly as the reference draws, one Philox evaluation per four
// elements.
#include <algorithm>
#include <string>
#include <vector>

#include "plugins/operators/cpu/common.h"

namespace llmsys::cpu {
namespace {

class Dropout : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = "dropout.cpu",
            .description =
                "dropout: element i kept iff "
                "llmsys_random_uniform(seed, offset, i) >= p (Philox "
                "drawn four at a time)",
            .op = "dropout",
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_OUTPUTS,
            .priority = 100};
  }
  explicit Dropout(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    const DLTensor* x = FloatArg(call, 0, "x");
    DropoutP(call);
    return {SpecOf(call, x->dtype, ShapeOf(x)),
            SpecOf(call, LLMSYS_DTYPE_U8, ShapeOf(x))};
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* x = call.inputs[0];
    const double p = DropoutP(call);
    const double scale = Scale(p);
    const uint64_t seed = call.ctx->rng_seed;
    const uint64_t offset = call.ctx->rng_offset;
    const int64_t n = llmsys_tensor_numel(x);
    ForFloat(x->dtype, [&]<class T>(T) {
      const T* px = sdk::Data<const T>(x);
      T* out = sdk::Data<T>(outputs[0]);
      uint8_t* mask = sdk::Data<uint8_t>(outputs[1]);
      constexpr int64_t kChunk = 1024;
      float u[kChunk];
      for (int64_t start = 0; start < n; start += kChunk) {
        const int64_t len = std::min(kChunk, n - start);
        Uniforms(seed, offset, static_cast<uint64_t>(start), len, u);
        for (int64_t j = 0; j < len; ++j) {
          const bool keep = static_cast<double>(u[j]) >= p;
          mask[start + j] = keep ? 1 : 0;
          out[start + j] = keep ? static_cast<T>(px[start + j] * scale) : T(0);
        }
      }
    });
  }

  void Backward(const llmsys_op_call_t& call, const DLTensor* const* outputs,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    DLTensor* gx = grad_inputs[0];
    if (gx == nullptr) return;
    const DLTensor* g = grad_outputs[0];
    if (g == nullptr) return Zero(gx);
    const uint8_t* mask = sdk::Data<const uint8_t>(outputs[1]);
    const double scale = Scale(DropoutP(call));
    const int64_t n = llmsys_tensor_numel(gx);
    ForFloat(gx->dtype, [&]<class T>(T) {
      const T* pg = sdk::Data<const T>(g);
      T* pgx = sdk::Data<T>(gx);
      for (int64_t i = 0; i < n; ++i)
        pgx[i] = mask[i] != 0 ? static_cast<T>(pg[i] * scale) : T(0);
    });
  }

 private:
  static double Scale(double p) { return p < 1.0 ? 1.0 / (1.0 - p) : 0.0; }
};

}  // namespace

void RegisterDropout(sdk::Registry& registry) { registry.Add<Dropout>(); }

}  // namespace llmsys::cpu
