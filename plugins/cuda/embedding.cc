// embedding.cuda: weight (V, C) rows gathered at int32/int64 indices (...)
// -> (..., C), kernels in cuda/embedding.cu.
//
// The reference fails on an index outside [0, V); this plugin cannot read
// the indices on the host (they are in GPU memory and it never
// synchronizes), so such an index gives a row of zeros (never a read
// outside weight) and no gradient. The backward is deterministic: it sorts
// the positions by row in the workspace and adds each row's gradients in
// position order (cuda/embedding.h), no atomics.
#include "cuda/embedding.h"

#include <string>
#include <vector>

#include "plugins/cuda/common.h"

namespace llmsys::cuda {
namespace {

void* DataOf(const DLTensor* t) { return llmsys_tensor_data(t); }

IndexType IndexTypeOf(DLDataType t) {
  return t.bits == 32 ? IndexType::kI32 : IndexType::kI64;
}

class Embedding : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = "embedding.cuda",
            .description =
                "embedding on a CUDA GPU: row gather (an index outside "
                "[0, V) gives a zero row and no gradient: the indices are "
                "not read on the host); deterministic backward (positions "
                "sorted by row, each row's gradients added in position "
                "order, no atomics)",
            .device_type = kDLCUDA,
            .op = "embedding",
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS,  // indices
            .priority = 100};
  }
  explicit Embedding(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t* workspace) override {
    const DLTensor* weight = FloatArg(call, 0, "weight");    // (V, C)
    const DLTensor* indices = IndexArg(call, 1, "indices");  // (...)
    if (weight->ndim != 2)
      ArgFail(call, "weight must be 2-D (V, C), got " +
                        reference::Describe("weight", weight) + " with " +
                        reference::Describe("indices", indices));
    // The backward's sort (the host calls Infer again before backward,
    // with the kept inputs; forward needs no workspace).
    const EmbeddingGradPlan plan =
        PlanEmbeddingGrad(llmsys_tensor_numel(indices), weight->shape[0]);
    if (!plan.supported)
      ArgFail(call, "supports at most " + std::to_string(kEmbeddingMaxCount) +
                        " indices and vocabulary rows, got " +
                        reference::Describe("weight", weight) + " with " +
                        reference::Describe("indices", indices));
    *workspace = sdk::WorkspaceForBackward(call) ? plan.workspace : 0;
    Shape out = ShapeOf(indices);  // (..., C)
    out.push_back(weight->shape[1]);
    return {SpecOf(call, weight->dtype, out)};
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* weight = call.inputs[0];   // (V, C)
    const DLTensor* indices = call.inputs[1];  // (...) = (N)
    DLTensor* out = outputs[0];                // (..., C) = (N, C)
    LLMSYS_CUDA_CHECK(
        call, LaunchEmbedding(DTypeOf(call, weight->dtype),
                              IndexTypeOf(indices->dtype), DataOf(weight),
                              DataOf(indices), DataOf(out),
                              llmsys_tensor_numel(indices), weight->shape[0],
                              weight->shape[1], Stream(call)));
  }

  void Backward(const llmsys_op_call_t& call, const DLTensor* const*,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    DLTensor* gw = grad_inputs[0];  // (V, C)
    if (gw == nullptr) return;
    const DLTensor* g = grad_outputs[0];                // (..., C) = (N, C)
    const DLTensor* indices = Arg(call, 1, "indices");  // kept for backward
    const int64_t n = llmsys_tensor_numel(indices);
    const int64_t v = gw->shape[0], c = gw->shape[1];
    const EmbeddingGradPlan plan = PlanEmbeddingGrad(n, v);
    void* workspace = nullptr;
    if (g != nullptr && n > 0 && v > 0 && c > 0) {
      if (!plan.supported || call.ctx == nullptr ||
          call.ctx->workspace == nullptr ||
          call.ctx->workspace_bytes < plan.workspace)
        Fail(LLMSYS_STATUS_INTERNAL,
             "embedding: backward got " +
                 std::to_string(call.ctx != nullptr ? call.ctx->workspace_bytes
                                                    : 0) +
                 " workspace bytes, needs " + std::to_string(plan.workspace) +
                 " (the host calls Infer before backward)");
      workspace = call.ctx->workspace;
    }
    LLMSYS_CUDA_CHECK(call,
                      LaunchEmbeddingBackward(
                          DTypeOf(call, gw->dtype), IndexTypeOf(indices->dtype),
                          g != nullptr ? DataOf(g) : nullptr, DataOf(indices),
                          DataOf(gw), n, v, c, plan, workspace, Stream(call)));
  }
};

}  // namespace

void RegisterEmbedding(sdk::Registry& registry) { registry.Add<Embedding>(); }

}  // namespace llmsys::cuda
