// layer_norm.cuda and rms_norm.cuda: the normalizations over the last dim
// on a CUDA GPU (kernels in cuda/norms.cu). Forward: one fused pass per
// row (a warp or a block per row, the row held in registers up to
// RowCacheLimit elements). Backward: dx from the saved statistics with two
// row sums, and the parameter gradients summed deterministically (per-part
// partial sums in the workspace, added in order by a second kernel).
#include "cuda/norms.h"

#include <string>
#include <vector>

#include "plugins/cuda/common.h"

namespace llmsys::cuda {
namespace {

double EpsOf(const llmsys_op_call_t& call) {
  const double eps = sdk::Params(&call.attrs).Float("eps");
  if (!(eps >= 0.0))
    ArgFail(call, "eps must be >= 0, got " + std::to_string(eps));
  return eps;
}

// (rows, cols) of x (..., C).
struct NormDims {
  int64_t rows, cols;
};
NormDims DimsOf(const DLTensor* x) {
  const Shape xs = ShapeOf(x);
  return {Numel(Shape(xs.begin(), xs.end() - 1)), xs.back()};
}

const void* DataOrNull(const DLTensor* t) {
  return t != nullptr ? sdk::Data<const void>(t) : nullptr;
}
void* MutableOrNull(DLTensor* t) {
  return t != nullptr ? sdk::Data<void>(t) : nullptr;
}

// The workspace infer asked for, or INTERNAL when the host gave less.
void* Workspace(const llmsys_op_call_t& call, size_t bytes) {
  if (bytes == 0) return nullptr;
  if (call.ctx->workspace == nullptr || call.ctx->workspace_bytes < bytes)
    Fail(LLMSYS_STATUS_INTERNAL, std::string(call.op) + ": the host gave " +
                                     std::to_string(call.ctx->workspace_bytes) +
                                     " bytes of workspace, infer asked for " +
                                     std::to_string(bytes));
  return call.ctx->workspace;
}

class LayerNorm : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = "layer_norm.cuda",
            .description =
                "layer_norm over the last dim on a CUDA GPU (float32, "
                "float64, bfloat16, float16; float sums, double for "
                "float64): one fused pass per row, the row read once into "
                "registers (rows of 4K-16K elements by dtype and alignment; "
                "longer ones re-read per pass); backward from the saved "
                "mean and rstd, dweight and dbias summed "
                "deterministically (per-part partials, added in order)",
            .device_type = kDLCUDA,
            .op = "layer_norm",
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS |
                        LLMSYS_OP_BACKWARD_NEEDS_OUTPUTS,
            .priority = 100};
  }
  explicit LayerNorm(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t* workspace) override {
    const DLTensor* x = FloatArg(call, 0, "x");               // (..., C)
    const DLTensor* weight = OptionalArg(call, 1, "weight");  // (C) or absent
    const DLTensor* bias = OptionalArg(call, 2, "bias");      // (C) or absent
    if (weight != nullptr) FloatArg(call, 1, "weight");
    if (bias != nullptr) FloatArg(call, 2, "bias");
    CheckNormArgs(call, x, weight, "weight");
    const Shape stats = CheckNormArgs(call, x, bias, "bias");  // (...)
    EpsOf(call);
    const NormDims d = DimsOf(x);
    if (sdk::WorkspaceForBackward(call))  // the parameters' partial sums
      *workspace =
          LayerNormWorkspaceBytes(d.rows, d.cols, DTypeOf(call, x->dtype),
                                  weight != nullptr, bias != nullptr);
    return {SpecOf(call, x->dtype, ShapeOf(x)), SpecOf(call, x->dtype, stats),
            SpecOf(call, x->dtype, stats)};
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* x = call.inputs[0];       // (..., C)
    const DLTensor* weight = call.inputs[1];  // (C) or nullptr
    const DLTensor* bias = call.inputs[2];    // (C) or nullptr
    const NormDims d = DimsOf(x);
    LLMSYS_CUDA_CHECK(
        call,
        LaunchLayerNormForward(
            DTypeOf(call, x->dtype), sdk::Data<const void>(x),
            DataOrNull(weight), DataOrNull(bias), sdk::Data<void>(outputs[0]),
            sdk::Data<void>(outputs[1]), sdk::Data<void>(outputs[2]), d.rows,
            d.cols, EpsOf(call), Stream(call)));
  }

  void Backward(const llmsys_op_call_t& call, const DLTensor* const* outputs,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    const DLTensor* x = call.inputs[0];       // (..., C)
    const DLTensor* weight = call.inputs[1];  // (C) or nullptr
    const DLTensor* bias = call.inputs[2];    // (C) or nullptr
    const DLTensor* g = grad_outputs[0];      // (..., C) or nullptr (zero)
    DLTensor* gx = grad_inputs[0];            // (..., C) or nullptr
    DLTensor* gw = grad_inputs[1];            // (C) or nullptr
    DLTensor* gb = grad_inputs[2];            // (C) or nullptr
    if (gx == nullptr && gw == nullptr && gb == nullptr) return;
    const NormDims d = DimsOf(x);
    const DType t = DTypeOf(call, x->dtype);
    // Partial sums only for the parameter gradients of a non-zero g.
    const bool sums = g != nullptr && (gw != nullptr || gb != nullptr);
    void* ws = Workspace(
        call, sums ? LayerNormWorkspaceBytes(d.rows, d.cols, t,
                                             weight != nullptr, bias != nullptr)
                   : 0);
    LLMSYS_CUDA_CHECK(
        call, LaunchLayerNormBackward(
                  t, sdk::Data<const void>(x), DataOrNull(weight),
                  DataOrNull(g), sdk::Data<const void>(outputs[1]),
                  sdk::Data<const void>(outputs[2]), MutableOrNull(gx),
                  MutableOrNull(gw), MutableOrNull(gb), d.rows, d.cols, ws,
                  Stream(call)));
  }
};

class RmsNorm : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = "rms_norm.cuda",
            .description =
                "rms_norm over the last dim on a CUDA GPU (float32, "
                "float64, bfloat16, float16; float sums, double for "
                "float64): one fused pass per row, the row read once into "
                "registers (rows of 4K-16K elements by dtype and alignment; "
                "longer ones re-read per pass); backward from the saved "
                "rstd, dweight summed deterministically",
            .device_type = kDLCUDA,
            .op = "rms_norm",
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS |
                        LLMSYS_OP_BACKWARD_NEEDS_OUTPUTS,
            .priority = 100};
  }
  explicit RmsNorm(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t* workspace) override {
    const DLTensor* x = FloatArg(call, 0, "x");               // (..., C)
    const DLTensor* weight = OptionalArg(call, 1, "weight");  // (C) or absent
    if (weight != nullptr) FloatArg(call, 1, "weight");
    const Shape stats = CheckNormArgs(call, x, weight, "weight");  // (...)
    EpsOf(call);
    const NormDims d = DimsOf(x);
    if (sdk::WorkspaceForBackward(call))  // the weight's partial sums
      *workspace = RmsNormWorkspaceBytes(
          d.rows, d.cols, DTypeOf(call, x->dtype), weight != nullptr);
    return {SpecOf(call, x->dtype, ShapeOf(x)), SpecOf(call, x->dtype, stats)};
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* x = call.inputs[0];       // (..., C)
    const DLTensor* weight = call.inputs[1];  // (C) or nullptr
    const NormDims d = DimsOf(x);
    LLMSYS_CUDA_CHECK(
        call,
        LaunchRmsNormForward(DTypeOf(call, x->dtype), sdk::Data<const void>(x),
                             DataOrNull(weight), sdk::Data<void>(outputs[0]),
                             sdk::Data<void>(outputs[1]), d.rows, d.cols,
                             EpsOf(call), Stream(call)));
  }

  void Backward(const llmsys_op_call_t& call, const DLTensor* const* outputs,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    const DLTensor* x = call.inputs[0];       // (..., C)
    const DLTensor* weight = call.inputs[1];  // (C) or nullptr
    const DLTensor* g = grad_outputs[0];      // (..., C) or nullptr (zero)
    DLTensor* gx = grad_inputs[0];            // (..., C) or nullptr
    DLTensor* gw = grad_inputs[1];            // (C) or nullptr
    if (gx == nullptr && gw == nullptr) return;
    const NormDims d = DimsOf(x);
    const DType t = DTypeOf(call, x->dtype);
    const bool sums = g != nullptr && gw != nullptr;
    void* ws = Workspace(
        call,
        sums ? RmsNormWorkspaceBytes(d.rows, d.cols, t, weight != nullptr) : 0);
    LLMSYS_CUDA_CHECK(
        call,
        LaunchRmsNormBackward(t, sdk::Data<const void>(x), DataOrNull(weight),
                              DataOrNull(g), sdk::Data<const void>(outputs[1]),
                              MutableOrNull(gx), MutableOrNull(gw), d.rows,
                              d.cols, ws, Stream(call)));
  }
};

}  // namespace

void RegisterNorms(sdk::Registry& registry) {
  registry.Add<LayerNorm>();
  registry.Add<RmsNorm>();
}

}  // namespace llmsys::cuda
