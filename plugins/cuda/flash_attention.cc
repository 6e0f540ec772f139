// attention.flash on CUDA: FlashAttention-2 (tiled online-softmax forward,
// recomputing backward), kernels in cuda/flash_attention.cu. The semantics
// are attention.reference's exactly (causal top-left aligned, padding and
// dropout masks, scale 0 = 1/sqrt(D), lse (B, H, N) float32 for 16-bit q, a
// fully masked row gives out 0 and lse -inf, NaN scores reach their rows). This
// file checks the call, picks the kernel (parameter `kernel`) and launches
// on the call's stream.
#include "cuda/flash_attention.h"

#include <string>
#include <vector>

#include "plugins/cuda/common.h"

namespace llmsys::cuda {
namespace {

using reference::AttentionDims;
using reference::AttentionDropoutP;
using reference::AttentionOutputs;
using reference::AttentionScale;
using reference::CheckAttention;

FlashKernelChoice ChoiceNamed(const std::string& name) {
  if (name == "simt") return FlashKernelChoice::kSimt;
  if (name == "tensor_core") return FlashKernelChoice::kTensorCore;
  if (name == "auto") return FlashKernelChoice::kAuto;
  Fail(LLMSYS_STATUS_INVALID_ARGUMENT,
       "attention.flash: kernel must be 'auto', 'simt' or 'tensor_core', "
       "got '" +
           name + "'");
}

// The launchers' tag for a key_padding_mask dtype (CheckAttention accepted
// it: uint8, int32, int64, float32 or float64).
FlashMask MaskKind(const DLTensor* mask) {
  if (mask == nullptr) return FlashMask::kNone;
  const DLDataType t = mask->dtype;
  if (t.code == kDLUInt) return FlashMask::kU8;
  if (t.code == kDLInt) return t.bits == 32 ? FlashMask::kI32 : FlashMask::kI64;
  return t.bits == 32 ? FlashMask::kF32 : FlashMask::kF64;
}

FlashAttentionShape ShapeOfCall(const AttentionDims& s) {
  FlashAttentionShape f;
  f.b = s.b;
  f.h = s.h;
  f.n = s.n;
  f.m = s.m;
  f.d = s.d;
  f.dv = s.dv;
  return f;
}

class FlashAttention : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {
        .id = "attention.flash",
        .description =
            "FlashAttention-2 on CUDA: tiled online-softmax forward and "
            "recomputing backward in shared memory, never an (N, M) matrix; "
            "tensor cores (mma.sync) for bfloat16/float16 with D = Dv in "
            "{64, 128}, SIMT kernels otherwise (float32, float64, any D, "
            "Dv <= 128); causal, padding and dropout masks; deterministic "
            "backward (dQ and dK/dV in separate passes, no atomics)",
        .device_type = kDLCUDA,
        .params = {sdk::ParamSpec::String(
                       "kernel", "auto",
                       "'auto' (tensor cores for bfloat16/float16 with D = Dv "
                       "in {64, 128}, else SIMT), 'simt' or 'tensor_core'")
                       .Choices("auto|simt|tensor_core")},
        .op = "attention",
        .op_flags =
            LLMSYS_OP_BACKWARD_NEEDS_INPUTS | LLMSYS_OP_BACKWARD_NEEDS_OUTPUTS,
        .priority = 100};
  }
  explicit FlashAttention(const sdk::Params& p)
      : choice_(ChoiceNamed(p.String("kernel"))) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t* workspace) override {
    std::vector<llmsys_tensor_spec_t> specs = AttentionOutputs(call);
    const AttentionDims s = CheckAttention(call);
    const DType t = DTypeOf(call, call.inputs[0]->dtype);
    const FlashAttentionShape shape = ShapeOfCall(s);
    if (const char* why = FlashAttentionUnsupported(t, shape, choice_))
      Fail(FlashHeadDim(shape) == 0 ? LLMSYS_STATUS_UNIMPLEMENTED
                                    : LLMSYS_STATUS_INVALID_ARGUMENT,
           std::string(call.op) + ": " + why + "; got q " +
               reference::DtypeName(call.inputs[0]->dtype) +
               " (B, H, N, D) = " + reference::Str({s.b, s.h, s.n, s.d}) +
               ", Dv = " + std::to_string(s.dv));
    // Delta, for the backward alone.
    if (workspace != nullptr && sdk::WorkspaceForBackward(call))
      *workspace = static_cast<size_t>(FlashAttentionWorkspaceBytes(t, shape));
    return specs;
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const AttentionDims s = CheckAttention(call);
    const DType t = DTypeOf(call, call.inputs[0]->dtype);
    const FlashAttentionShape shape = ShapeOfCall(s);
    const FlashAttentionOptions o = Options(call, s);
    LLMSYS_CUDA_CHECK(
        call,
        LaunchFlashAttentionForward(
            t, llmsys_tensor_data(outputs[0]), llmsys_tensor_data(outputs[1]),
            llmsys_tensor_data(call.inputs[0]),
            llmsys_tensor_data(call.inputs[1]),
            llmsys_tensor_data(call.inputs[2]),
            s.mask != nullptr ? llmsys_tensor_data(s.mask) : nullptr, shape, o,
            Stream(call)));
  }

  void Backward(const llmsys_op_call_t& call, const DLTensor* const* outputs,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    const AttentionDims s = CheckAttention(call);
    const DType t = DTypeOf(call, call.inputs[0]->dtype);
    const FlashAttentionShape shape = ShapeOfCall(s);
    const FlashAttentionOptions o = Options(call, s);
    const cudaStream_t stream = Stream(call);
    DLTensor* gq = grad_inputs[0];  // (B, H, N, D) or nullptr
    DLTensor* gk = grad_inputs[1];  // (B, H, M, D) or nullptr
    DLTensor* gv = grad_inputs[2];  // (B, H, M, Dv) or nullptr
    // A float mask may be handed a gradient: it is zero (a mask is not
    // differentiable).
    if (DLTensor* gmask = call.num_inputs > 3 ? grad_inputs[3] : nullptr)
      Zero(call, gmask, stream);
    const DLTensor* g = grad_outputs[0];  // (B, H, N, Dv) or nullptr
    if (g == nullptr) {  // the gradient of out is zero, and so are these
      for (DLTensor* x : {gq, gk, gv})
        if (x != nullptr) Zero(call, x, stream);
      return;
    }
    if (gq == nullptr && gk == nullptr && gv == nullptr) return;
    if (outputs[0] == nullptr || outputs[1] == nullptr)
      Fail(LLMSYS_STATUS_INTERNAL,
           std::string(call.op) + ": backward needs the saved out and lse");
    const int64_t need = FlashAttentionWorkspaceBytes(t, shape);
    if (need > 0 && (call.ctx->workspace == nullptr ||
                     call.ctx->workspace_bytes < static_cast<size_t>(need)))
      Fail(LLMSYS_STATUS_FAILED_PRECONDITION,
           std::string(call.op) + ": backward needs a workspace of " +
               std::to_string(need) + " bytes, the host gave " +
               std::to_string(call.ctx->workspace_bytes));
    auto data = [](DLTensor* x) {
      return x != nullptr ? llmsys_tensor_data(x) : nullptr;
    };
    LLMSYS_CUDA_CHECK(
        call,
        LaunchFlashAttentionBackward(
            t, data(gq), data(gk), data(gv), llmsys_tensor_data(call.inputs[0]),
            llmsys_tensor_data(call.inputs[1]),
            llmsys_tensor_data(call.inputs[2]),
            s.mask != nullptr ? llmsys_tensor_data(s.mask) : nullptr,
            llmsys_tensor_data(outputs[0]), llmsys_tensor_data(outputs[1]),
            llmsys_tensor_data(g), call.ctx->workspace, shape, o, stream));
  }

 private:
  FlashAttentionOptions Options(const llmsys_op_call_t& call,
                                const AttentionDims& s) const {
    FlashAttentionOptions o;
    o.causal = s.causal;
    o.scale = AttentionScale(call, s);
    o.dropout_p = AttentionDropoutP(call);
    o.rng_seed = call.ctx != nullptr ? call.ctx->rng_seed : 0;
    o.rng_offset = call.ctx != nullptr ? call.ctx->rng_offset : 0;
    o.mask = MaskKind(s.mask);
    o.kernel = choice_;
    return o;
  }

  static void Zero(const llmsys_op_call_t& call, DLTensor* x,
                   cudaStream_t stream) {
    const int64_t bytes = llmsys_tensor_numel(x) * ((x->dtype.bits + 7) / 8);
    LLMSYS_CUDA_CHECK(
        call, LaunchFlashAttentionZero(llmsys_tensor_data(x), bytes, stream));
  }

  FlashKernelChoice choice_;
};

}  // namespace

void RegisterFlashAttention(sdk::Registry& registry) {
  registry.Add<FlashAttention>();
}

}  // namespace llmsys::cuda
