// dropout.cuda: element i kept iff llmsys_random_uniform(seed, offset, i)
// >= p (the contract in abi/llmsys/ops.h), on a CUDA GPU (kernels in
// cuda/dropout.cu): one Philox call per 4 elements, the mask bit-identical
// to the CPU implementations' for the same seed and offset.
#include "cuda/dropout.h"

#include <string>
#include <vector>

#include "plugins/cuda/common.h"

namespace llmsys::cuda {
namespace {

class Dropout : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = "dropout.cuda",
            .description =
                "dropout on a CUDA GPU (float32, float64, bfloat16, "
                "float16): element i kept iff "
                "llmsys_random_uniform(seed, offset, i) >= p (one Philox "
                "call per 4 elements; the same mask as the CPU's), kept "
                "ones scaled by 1 / (1 - p)",
            .device_type = kDLCUDA,
            .op = "dropout",
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_OUTPUTS,
            .priority = 100};
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
    LLMSYS_CUDA_CHECK(
        call, LaunchDropoutForward(
                  DTypeOf(call, x->dtype), sdk::Data<const void>(x),
                  sdk::Data<void>(outputs[0]), sdk::Data<void>(outputs[1]),
                  llmsys_tensor_numel(x), DropoutP(call), call.ctx->rng_seed,
                  call.ctx->rng_offset, Stream(call)));
  }

  // dx = g * mask / (1 - p).
  void Backward(const llmsys_op_call_t& call, const DLTensor* const* outputs,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    DLTensor* gx = grad_inputs[0];  // x's shape
    if (gx == nullptr) return;
    const DLTensor* g = grad_outputs[0];  // x's shape, or nullptr (zero)
    const DLTensor* mask = outputs[1];    // x's shape, uint8
    LLMSYS_CUDA_CHECK(
        call, LaunchDropoutBackward(
                  DTypeOf(call, gx->dtype),
                  g != nullptr ? sdk::Data<const void>(g) : nullptr,
                  sdk::Data<const void>(mask), sdk::Data<void>(gx),
                  llmsys_tensor_numel(gx), DropoutP(call), Stream(call)));
  }
};

}  // namespace

void RegisterDropout(sdk::Registry& registry) { registry.Add<Dropout>(); }

}  // namespace llmsys::cuda
