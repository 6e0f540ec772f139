// dropout: zeroes each element with probability p, drawn from the call's
// counter-based random stream (llmsys/random.h), and scales the kept ones by
// 1 / (1 - p). The mask is an auxiliary output that backward reads back.
#include <string>
#include <vector>

#include "llmsys/random.h"
#include "plugins/operators/reference/common.h"

namespace llmsys::reference {
namespace {

class Dropout : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = "dropout.reference",
            .description =
                "reference dropout: element i kept iff "
                "llmsys_random_uniform(seed, offset, i) >= p",
            .op = "dropout",
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_OUTPUTS};
  }
  explicit Dropout(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    const DLTensor* x = FloatArg(call, 0, "x");  // any shape
    DropoutP(call);
    return {SpecOf(call, x->dtype, ShapeOf(x)),
            SpecOf(call, LLMSYS_DTYPE_U8, ShapeOf(x))};
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* x = call.inputs[0];  // any shape
    const double p = DropoutP(call);
    const double scale = Scale(p);
    const uint64_t seed = call.ctx->rng_seed;
    const uint64_t offset = call.ctx->rng_offset;
    ForFloat(x->dtype, [&]<class T>(T) {
      const T* px = sdk::Data<const T>(x);
      T* out = sdk::Data<T>(outputs[0]);               // x's shape
      uint8_t* mask = sdk::Data<uint8_t>(outputs[1]);  // x's shape
      for (int64_t i = 0; i < llmsys_tensor_numel(x); ++i) {
        const bool keep =
            llmsys_random_uniform(seed, offset, static_cast<uint64_t>(i)) >= p;
        mask[i] = keep ? 1 : 0;
        out[i] = keep ? static_cast<T>(px[i] * scale) : T(0);
      }
    });
  }

  // dx = g * mask / (1 - p).
  void Backward(const llmsys_op_call_t& call, const DLTensor* const* outputs,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    DLTensor* gx = grad_inputs[0];  // x's shape
    if (gx == nullptr) return;
    const DLTensor* g = grad_outputs[0];  // x's shape, or nullptr (zero)
    const uint8_t* mask = sdk::Data<const uint8_t>(outputs[1]);  // x's shape
    const double scale = Scale(DropoutP(call));
    ForFloat(gx->dtype, [&]<class T>(T) {
      const T* pg = g != nullptr ? sdk::Data<const T>(g) : nullptr;
      T* pgx = sdk::Data<T>(gx);
      for (int64_t i = 0; i < llmsys_tensor_numel(gx); ++i)
        pgx[i] = pg != nullptr && mask[i] != 0 ? static_cast<T>(pg[i] * scale)
                                               : T(0);
    });
  }

 private:
  // 1 / (1 - p); p == 1 keeps nothing, so the scale is never used then.
  static double Scale(double p) { return p < 1.0 ? 1.0 / (1.0 - p) : 0.0; }
};

}  // namespace

void RegisterDropout(sdk::Registry& registry) { registry.Add<Dropout>(); }

}  // namespace llmsys::reference
