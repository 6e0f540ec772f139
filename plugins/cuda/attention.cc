// attention.naive on CUDA: scaled dot-product attention the plain way,
// every score materialized in a (B, H, N, M) workspace, one simple kernel
// per step and no cuBLAS (cuda/attention_naive.{h,cu}): the baseline
// attention.flash is checked and timed against on the GPU.
//
// Semantics are the reference's (masks, causal, dropout from the call's
// random stream, out 0 and lse -inf for a row with every key masked). Its
// backward recomputes the scores and probabilities from q, k and the masks
// in the accumulation type (float, double for float64) instead of reading
// the saved lse, so only the inputs are kept for it. lse is float32 for
// 16-bit inputs (the accumulation type, as the contract says).
//
// Dtypes: float32, float64, bfloat16, float16 (q, k and v alike); the mask
// uint8, int32, int64, float32 or float64. Workspace: B * H * N * M
// accumulators, in forward and in backward.
#include <string>
#include <vector>

#include "cuda/attention_naive.h"
#include "plugins/cuda/common.h"

namespace llmsys::cuda {
namespace {

NaiveMask NaiveMaskOf(const DLTensor* mask) {
  if (mask == nullptr) return NaiveMask::kNone;
  const DLDataType t = mask->dtype;
  if (t.code == kDLUInt) return NaiveMask::kU8;
  if (t.code == kDLInt) return t.bits == 32 ? NaiveMask::kI32 : NaiveMask::kI64;
  return t.bits == 32 ? NaiveMask::kF32 : NaiveMask::kF64;
}

NaiveAttentionShape ShapeOfDims(const reference::AttentionDims& d) {
  NaiveAttentionShape s;
  s.b = d.b;
  s.h = d.h;
  s.n = d.n;
  s.m = d.m;
  s.d = d.d;
  s.dv = d.dv;
  return s;
}

NaiveAttentionOptions OptionsOf(const llmsys_op_call_t& call,
                                const reference::AttentionDims& d) {
  NaiveAttentionOptions o;
  o.causal = d.causal;
  o.scale = reference::AttentionScale(call, d);
  o.dropout_p = reference::AttentionDropoutP(call);
  o.seed = call.ctx->rng_seed;
  o.offset = call.ctx->rng_offset;
  return o;
}

// The call's workspace, checked to hold what infer asked for.
void* Workspace(const llmsys_op_call_t& call, size_t bytes) {
  if (bytes == 0) return nullptr;
  if (call.ctx->workspace == nullptr || call.ctx->workspace_bytes < bytes)
    Fail(LLMSYS_STATUS_FAILED_PRECONDITION,
         std::string(call.op) + ": attention.naive needs " +
             std::to_string(bytes) +
             " bytes of workspace (as infer asked), the host gave " +
             std::to_string(call.ctx->workspace != nullptr
                                ? call.ctx->workspace_bytes
                                : 0));
  return call.ctx->workspace;
}

class NaiveAttention : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = "attention.naive",
            .description =
                "naive scaled dot-product attention on CUDA: every score "
                "materialized in a (B, H, N, M) workspace, one plain kernel "
                "per step, no cuBLAS (the GPU baseline)",
            .device_type = kDLCUDA,
            .op = "attention",
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS,
            .priority = 10};
  }
  explicit NaiveAttention(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t* workspace) override {
    std::vector<llmsys_tensor_spec_t> out = reference::AttentionOutputs(call);
    const reference::AttentionDims d = reference::CheckAttention(call);
    *workspace = NaiveAttentionWorkspaceBytes(
        DTypeOf(call, call.inputs[0]->dtype), ShapeOfDims(d));
    return out;
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const reference::AttentionDims d = reference::CheckAttention(call);
    const DType t = DTypeOf(call, call.inputs[0]->dtype);
    const NaiveAttentionShape s = ShapeOfDims(d);
    const cudaStream_t stream = Stream(call);
    void* ws = Workspace(call, NaiveAttentionWorkspaceBytes(t, s));
    LLMSYS_CUDA_CHECK(
        call, LaunchNaiveAttentionForward(
                  t, llmsys_tensor_data(outputs[0]),   // (B, H, N, Dv)
                  llmsys_tensor_data(outputs[1]),      // (B, H, N)
                  llmsys_tensor_data(call.inputs[0]),  // (B, H, N, D)
                  llmsys_tensor_data(call.inputs[1]),  // (B, H, M, D)
                  llmsys_tensor_data(call.inputs[2]),  // (B, H, M, Dv)
                  d.mask != nullptr ? llmsys_tensor_data(d.mask)  // (B, M)
                                    : nullptr,
                  NaiveMaskOf(d.mask), s, OptionsOf(call, d), ws, stream));
  }

  void Backward(const llmsys_op_call_t& call, const DLTensor* const*,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    const reference::AttentionDims d = reference::CheckAttention(call);
    const DType t = DTypeOf(call, call.inputs[0]->dtype);
    const NaiveAttentionShape s = ShapeOfDims(d);
    const cudaStream_t stream = Stream(call);
    const DLTensor* g = grad_outputs[0];  // (B, H, N, Dv) or nullptr (zero)
    auto data = [](DLTensor* x) {
      return x != nullptr ? llmsys_tensor_data(x) : nullptr;
    };
    void* ws = g != nullptr
                   ? Workspace(call, NaiveAttentionWorkspaceBytes(t, s))
                   : nullptr;
    LLMSYS_CUDA_CHECK(
        call, LaunchNaiveAttentionBackward(
                  t, data(grad_inputs[0]),  // (B, H, N, D) or nullptr
                  data(grad_inputs[1]),     // (B, H, M, D) or nullptr
                  data(grad_inputs[2]),     // (B, H, M, Dv) or nullptr
                  g != nullptr ? llmsys_tensor_data(g) : nullptr,
                  llmsys_tensor_data(call.inputs[0]),
                  llmsys_tensor_data(call.inputs[1]),
                  llmsys_tensor_data(call.inputs[2]),
                  d.mask != nullptr ? llmsys_tensor_data(d.mask) : nullptr,
                  NaiveMaskOf(d.mask), s, OptionsOf(call, d), ws, stream));
    // A float mask may be handed a gradient: it is zero (a mask is not
    // differentiable).
    if (call.num_inputs > 3 && grad_inputs[3] != nullptr) {
      DLTensor* gm = grad_inputs[3];
      LLMSYS_CUDA_CHECK(
          call,
          LaunchAttentionZero(
              llmsys_tensor_data(gm),
              llmsys_tensor_numel(gm) * ((gm->dtype.bits + 7) / 8), stream));
    }
  }
};

}  // namespace

void RegisterAttention(sdk::Registry& registry) {
  registry.Add<NaiveAttention>();
}

}  // namespace llmsys::cuda
