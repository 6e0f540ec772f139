// embedding.fused: row gather forward (a memcpy per index), scatter-add of
// whole rows backward.
#include <string>
#include <vector>

#include "plugins/operators/cpu/common.h"

namespace llmsys::cpu {
namespace {

class Embedding : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = "embedding.fused",
            .description =
                "embedding: row gather (memcpy per index), row "
                "scatter-add backward",
            .op = "embedding",
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS,
            .priority = 100};
  }
  explicit Embedding(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    const DLTensor* weight = FloatArg(call, 0, "weight");    // (V, C)
    const DLTensor* indices = IndexArg(call, 1, "indices");  // (...)
    if (weight->ndim != 2)
      ArgFail(call, "weight must be 2-D (V, C), got " +
                        cpu::Describe("weight", weight) + " with " +
                        cpu::Describe("indices", indices));
    Shape out = ShapeOf(indices);
    out.push_back(weight->shape[1]);
    return {SpecOf(call, weight->dtype, out)};
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* weight = call.inputs[0];
    const DLTensor* indices = call.inputs[1];
    const int64_t c = weight->shape[1];
    const int64_t n = llmsys_tensor_numel(indices);
    ForFloat(weight->dtype, [&]<class T>(T) {
      const T* pw = sdk::Data<const T>(weight);
      T* po = sdk::Data<T>(outputs[0]);
      for (int64_t k = 0; k < n; ++k) {
        const int64_t row = Row(call, weight->shape[0], indices, k);
        if (c > 0)
          std::memcpy(po + k * c, pw + row * c,
                      static_cast<size_t>(c) * sizeof(T));
      }
    });
  }

  void Backward(const llmsys_op_call_t& call, const DLTensor* const*,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    DLTensor* gw = grad_inputs[0];
    if (gw == nullptr) return;
    Zero(gw);
    const DLTensor* g = grad_outputs[0];
    if (g == nullptr) return;
    const DLTensor* indices = Arg(call, 1, "indices");
    const int64_t c = gw->shape[1];
    const int64_t n = llmsys_tensor_numel(indices);
    ForFloat(g->dtype, [&]<class T>(T) {
      const T* pg = sdk::Data<const T>(g);
      T* pw = sdk::Data<T>(gw);
      for (int64_t k = 0; k < n; ++k) {
        T* dst = pw + Row(call, gw->shape[0], indices, k) * c;
        const T* src = pg + k * c;
        for (int64_t j = 0; j < c; ++j) dst[j] += src[j];
      }
    });
  }

 private:
  // indices[k], checked to be a row of a (V, C) weight.
  static int64_t Row(const llmsys_op_call_t& call, int64_t v,
                     const DLTensor* indices, int64_t k) {
    const int64_t row = IndexAt(indices, k);
    if (row < 0 || row >= v)
      ArgFail(call, "index " + std::to_string(row) + " at position " +
                        std::to_string(k) + " (row-major) of " +
                        cpu::Describe("indices", indices) +
                        " is out of range [0, " + std::to_string(v) + ")");
    return row;
  }
};

}  // namespace

void RegisterEmbedding(sdk::Registry& registry) { registry.Add<Embedding>(); }

}  // namespace llmsys::cpu
