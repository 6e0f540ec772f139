// plugins/template/template.cc — the plugin to copy when you start your own
// (plugin "llmsys.template"; README.md in this folder says how).
//
// It provides one operator, "relu.template": an implementation of the
// standard op contract
//
//   relu(Tensor x) -> Tensor out        out = max(x, 0)
//
// for float32 tensors on the CPU, with forward and backward. The backward
// rule is dx = dy where x > 0, else 0 (PyTorch's choice at x == 0); a NaN
// passes through forward and backward, as in torch.relu.
//
// What each part is for:
//   Describe()   what the host lists and `llmsys plugins describe` prints:
//                the component id "<op>.<implementation>", the contract it
//                implements, its device, its parameters and its flags.
//   constructor  runs once per instance with the validated parameters.
//   Infer()      checks the inputs and says what the host must allocate.
//                It never reads tensor data.
//   Forward()    fills the outputs the host allocated.
//   Backward()   writes input gradients from output gradients. The
//                LLMSYS_OP_BACKWARD_NEEDS_INPUTS flag makes the host keep
//                x for it; kHasBackward = true makes the SDK export it.
// Throw llmsys::sdk::Error (or call sdk::Require) for bad input: the SDK
// turns it into a status code and message at the C boundary.
//
// Thread-safety: one instance is used by one thread at a time; instances
// share nothing. Ownership: every tensor is borrowed for the call; outputs
// and gradients are host memory the operator writes but never frees.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "llmsys/sdk.hpp"

namespace llmsys::plugins {
namespace {

using sdk::Require;

// "float32", "int64", ... for messages.
std::string DtypeName(DLDataType t) {
  const char* code = t.code == kDLFloat    ? "float"
                     : t.code == kDLInt    ? "int"
                     : t.code == kDLUInt   ? "uint"
                     : t.code == kDLBfloat ? "bfloat"
                                           : "?";
  return code + std::to_string(t.bits);
}

// Checks that `t` is a float32 CPU tensor; `what` names it in the message,
// e.g. "relu.template: x".
void CheckFloat32Cpu(const DLTensor* t, const std::string& what) {
  Require(t != nullptr, what + " is NULL");
  Require(llmsys_dtype_equal(t->dtype, LLMSYS_DTYPE_F32),
          what +
              " must be float32 (the only dtype this implementation "
              "supports), got " +
              DtypeName(t->dtype));
  Require(t->device.device_type == kDLCPU, what + " must be on the CPU");
  Require(t->ndim <= LLMSYS_MAX_NDIM,
          what + " has " + std::to_string(t->ndim) + " dims; at most " +
              std::to_string(LLMSYS_MAX_NDIM) + " are supported");
}

bool SameShape(const DLTensor* a, const DLTensor* b) {
  if (a->ndim != b->ndim) return false;
  for (int32_t i = 0; i < a->ndim; ++i) {
    if (a->shape[i] != b->shape[i]) return false;
  }
  return true;
}

class ReluTemplate : public sdk::Operator {
 public:
  // Makes the SDK fill llmsys_operator_t::backward with Backward() below.
  static constexpr bool kHasBackward = true;

  static sdk::Info Describe() {
    sdk::Info info;
    info.id = "relu.template";  // "<op>.<implementation>"
    info.version = "1.0.0";
    info.description = "ReLU on float32 CPU tensors (the plugin template)";
    info.device_type = kDLCPU;
    info.op = "relu";  // The contract it implements (abi/llmsys/ops.h).
    info.op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS;
    // No parameters; add sdk::ParamSpec entries to info.params for some.
    return info;
  }

  explicit ReluTemplate(const sdk::Params& /*params*/) {}

  // out has x's shape and dtype; no workspace.
  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t* workspace_bytes) override {
    const DLTensor* x = Input(call);
    *workspace_bytes = 0;
    llmsys_tensor_spec_t out{};
    out.ndim = x->ndim;
    out.dtype = x->dtype;
    for (int32_t i = 0; i < x->ndim; ++i) out.shape[i] = x->shape[i];
    return {out};
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t num_outputs) override {
    const DLTensor* x = Input(call);
    Require(
        num_outputs == 1 && outputs != nullptr,
        "relu.template: expected 1 output, got " + std::to_string(num_outputs));
    DLTensor* out = outputs[0];
    CheckFloat32Cpu(out, "relu.template: out");
    Require(SameShape(x, out) && llmsys_tensor_is_contiguous(out),
            "relu.template: out must be a compact " + sdk::ShapeString(x) +
                " tensor, got " + sdk::ShapeString(out));
    const int64_t n = llmsys_tensor_numel(x);
    const float* xs = sdk::Data<const float>(x);
    float* ys = sdk::Data<float>(out);
    // `x <= 0` is false for NaN, so NaN passes through as in torch.relu.
    for (int64_t i = 0; i < n; ++i) ys[i] = xs[i] <= 0.0f ? 0.0f : xs[i];
  }

  void Backward(const llmsys_op_call_t& call, const DLTensor* const* outputs,
                const DLTensor* const* grad_outputs, uint32_t num_outputs,
                DLTensor* const* grad_inputs) override {
    (void)outputs;  // Not kept: the flags ask only for the inputs.
    Require(num_outputs == 1,
            "relu.template: expected 1 output gradient, got " +
                std::to_string(num_outputs));
    DLTensor* dx = grad_inputs != nullptr ? grad_inputs[0] : nullptr;
    if (dx == nullptr) return;  // x needs no gradient.
    const DLTensor* x = Input(call);
    CheckFloat32Cpu(dx, "relu.template: grad x");
    Require(SameShape(x, dx) && llmsys_tensor_is_contiguous(dx),
            "relu.template: grad x must be a compact " + sdk::ShapeString(x) +
                " tensor, got " + sdk::ShapeString(dx));
    const int64_t n = llmsys_tensor_numel(x);
    float* dxs = sdk::Data<float>(dx);
    const DLTensor* dy = grad_outputs != nullptr ? grad_outputs[0] : nullptr;
    if (dy == nullptr) {  // A zero output gradient.
      for (int64_t i = 0; i < n; ++i) dxs[i] = 0.0f;
      return;
    }
    CheckFloat32Cpu(dy, "relu.template: grad out");
    Require(SameShape(x, dy) && llmsys_tensor_is_contiguous(dy),
            "relu.template: grad out must be a compact " + sdk::ShapeString(x) +
                " tensor, got " + sdk::ShapeString(dy));
    const float* xs = sdk::Data<const float>(x);
    const float* dys = sdk::Data<const float>(dy);
    for (int64_t i = 0; i < n; ++i) dxs[i] = xs[i] <= 0.0f ? 0.0f : dys[i];
  }

 private:
  // The one input, checked: the contract has exactly one tensor, x.
  static const DLTensor* Input(const llmsys_op_call_t& call) {
    Require(call.num_inputs == 1 && call.inputs != nullptr,
            "relu.template: expected 1 input (x), got " +
                std::to_string(call.num_inputs));
    const DLTensor* x = call.inputs[0];
    CheckFloat32Cpu(x, "relu.template: x");
    Require(llmsys_tensor_is_contiguous(x),
            "relu.template: x " + sdk::ShapeString(x) +
                " must be contiguous; call the contiguous op first");
    return x;
  }
};

}  // namespace
}  // namespace llmsys::plugins

// The plugin's id, version, one-line description and SPDX licence. Rename
// the id when you copy this file: two plugins with one id cannot both load.
LLMSYS_PLUGIN("llmsys.template", "0.1.0",
              "A template plugin to copy: relu.template", "MIT") {
  registry.Add<llmsys::plugins::ReluTemplate>();
}
