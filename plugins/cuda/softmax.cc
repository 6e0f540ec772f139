// softmax.cuda and log_softmax.cuda along any dim, and cross_entropy.cuda,
// on a CUDA GPU (kernels in cuda/softmax.cu): rows of the last dim fused
// (read once into registers when they fit), other dims through a strided
// kernel; cross_entropy as one online log-sum-exp pass per row, its
// reduction in a fixed order with the mean's count computed on the GPU.
#include "cuda/softmax.h"

#include <string>
#include <vector>

#include "plugins/cuda/common.h"

namespace llmsys::cuda {
namespace {

template <bool kLog>
class Softmax : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static constexpr const char* kOp = kLog ? "log_softmax" : "softmax";
  static sdk::Info Describe() {
    return {.id = std::string(kOp) + ".cuda",
            .description =
                std::string(kOp) +
                " along any dim on a CUDA GPU (float32, float64, bfloat16, "
                "float16; float sums, double for float64): a warp or block "
                "per row of the last dim, the row read once into registers "
                "(rows of 4K-16K elements by dtype and alignment; longer "
                "ones: an online max/sum pass and an output pass); other dims "
                "by a strided kernel coalesced "
                "over the inner dims",
            .device_type = kDLCUDA,
            .op = kOp,
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_OUTPUTS,
            .priority = 100};
  }
  explicit Softmax(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    const DLTensor* x = FloatArg(call, 0, "x");  // any shape
    LanesOf(call, ShapeOf(x));                   // checks dim
    return {SpecOf(call, x->dtype, ShapeOf(x))};
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* x = call.inputs[0];  // any shape
    const Lanes l = LanesOf(call, ShapeOf(x));
    LLMSYS_CUDA_CHECK(
        call, LaunchSoftmaxForward(DTypeOf(call, x->dtype), kLog,
                                   sdk::Data<const void>(x),
                                   sdk::Data<void>(outputs[0]), l.outer, l.len,
                                   l.inner, Stream(call)));
  }

  void Backward(const llmsys_op_call_t& call, const DLTensor* const* outputs,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    DLTensor* gx = grad_inputs[0];  // x's shape
    if (gx == nullptr) return;
    const DLTensor* y = outputs[0];       // x's shape
    const DLTensor* g = grad_outputs[0];  // x's shape, or nullptr (zero)
    const Lanes l = LanesOf(call, ShapeOf(y));
    LLMSYS_CUDA_CHECK(
        call, LaunchSoftmaxBackward(
                  DTypeOf(call, y->dtype), kLog, sdk::Data<const void>(y),
                  g != nullptr ? sdk::Data<const void>(g) : nullptr,
                  sdk::Data<void>(gx), l.outer, l.len, l.inner, Stream(call)));
  }
};

CeReduction CeReductionOf(const llmsys_op_call_t& call) {
  switch (reference::ReductionOf(call)) {
    case reference::Reduction::kMean:
      return CeReduction::kMean;
    case reference::Reduction::kSum:
      return CeReduction::kSum;
    default:
      return CeReduction::kNone;
  }
}

class CrossEntropy : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = "cross_entropy.cuda",
            .description =
                "cross_entropy on a CUDA GPU (float32, float64, bfloat16, "
                "float16 logits; int32 or int64 targets): one online "
                "log-sum-exp pass per row, 'mean'/'sum' added in a fixed "
                "order (deterministic), the mean's count on the GPU; "
                "backward softmax minus the smoothed one-hot. A target "
                "outside [0, V) that is not ignore_index cannot be checked "
                "on the host: its row's loss and gradient are NaN (so "
                "'mean' and 'sum' are NaN). label_smoothing 0 leaves out "
                "the smoothing term entirely",
            .device_type = kDLCUDA,
            .op = "cross_entropy",
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS,
            .priority = 100};
  }
  explicit CrossEntropy(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t* workspace) override {
    const DLTensor* logits = FloatArg(call, 0, "logits");    // (..., V)
    const DLTensor* targets = IndexArg(call, 1, "targets");  // (...)
    const Shape ls = ShapeOf(logits);
    if (ls.empty() || ls.back() == 0)
      ArgFail(call, "logits must have a non-empty class dim (last), got " +
                        reference::Describe("logits", logits));
    const Shape positions(ls.begin(), ls.end() - 1);  // (...)
    if (ShapeOf(targets) != positions)
      ArgFail(call, "targets must have logits' shape without the class dim " +
                        reference::Str(positions) + ", got " +
                        reference::Describe("logits", logits) + " and " +
                        reference::Describe("targets", targets));
    const CeReduction r = CeReductionOf(call);
    reference::LabelSmoothingOf(call);
    *workspace = CrossEntropyWorkspaceBytes(Numel(positions),
                                            DTypeOf(call, logits->dtype), r);
    return {SpecOf(call, logits->dtype,
                   r == CeReduction::kNone ? positions : Shape{})};
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* logits = call.inputs[0];   // (..., V)
    const DLTensor* targets = call.inputs[1];  // (...)
    const CeReduction r = CeReductionOf(call);
    const int64_t v = ShapeOf(logits).back();
    const int64_t rows = llmsys_tensor_numel(targets);
    const DType t = DTypeOf(call, logits->dtype);
    LLMSYS_CUDA_CHECK(
        call,
        LaunchCrossEntropyForward(
            t, sdk::Data<const void>(logits), sdk::Data<const void>(targets),
            targets->dtype.bits == 64, sdk::Data<void>(outputs[0]), rows, v,
            sdk::Params(&call.attrs).Int("ignore_index"),
            reference::LabelSmoothingOf(call), r,
            Workspace(call, CrossEntropyWorkspaceBytes(rows, t, r)),
            Stream(call)));
  }

  void Backward(const llmsys_op_call_t& call, const DLTensor* const*,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    DLTensor* gx = grad_inputs[0];  // (..., V)
    if (gx == nullptr) return;
    const DLTensor* logits = call.inputs[0];   // (..., V)
    const DLTensor* targets = call.inputs[1];  // (...)
    const DLTensor* g = grad_outputs[0];       // (...) or (), or nullptr
    const CeReduction r = CeReductionOf(call);
    const int64_t v = ShapeOf(logits).back();
    const int64_t rows = llmsys_tensor_numel(targets);
    const DType t = DTypeOf(call, logits->dtype);
    // Only 'mean' needs the workspace in backward (the count).
    const bool count = g != nullptr && r == CeReduction::kMean;
    LLMSYS_CUDA_CHECK(
        call,
        LaunchCrossEntropyBackward(
            t, sdk::Data<const void>(logits), sdk::Data<const void>(targets),
            targets->dtype.bits == 64,
            g != nullptr ? sdk::Data<const void>(g) : nullptr,
            sdk::Data<void>(gx), rows, v,
            sdk::Params(&call.attrs).Int("ignore_index"),
            reference::LabelSmoothingOf(call), r,
            Workspace(call, count ? CrossEntropyWorkspaceBytes(rows, t, r) : 0),
            Stream(call)));
  }

 private:
  // The workspace infer asked for, or INTERNAL when the host gave less.
  static void* Workspace(const llmsys_op_call_t& call, size_t bytes) {
    if (bytes == 0) return nullptr;
    if (call.ctx->workspace == nullptr || call.ctx->workspace_bytes < bytes)
      Fail(LLMSYS_STATUS_INTERNAL,
           std::string(call.op) + ": the host gave " +
               std::to_string(call.ctx->workspace_bytes) +
               " bytes of workspace, infer asked for " + std::to_string(bytes));
    return call.ctx->workspace;
  }
};

}  // namespace

void RegisterSoftmax(sdk::Registry& registry) {
  registry.Add<Softmax<false>>();
  registry.Add<Softmax<true>>();
  registry.Add<CrossEntropy>();
}

}  // namespace llmsys::cuda
