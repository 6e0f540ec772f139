#include "framework/runtime/operator_call.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "framework/core/status_macros.h"
#include "framework/tensor/device.h"

namespace llmsys::runtime {
namespace {

using tensor::Shape;

constexpr size_t kMessageBytes = 2048;

// Plugin status codes are absl::StatusCode numbers; anything else is
// UNKNOWN.
absl::StatusCode ToCode(llmsys_status_t s) {
  if (s <= 0 || s > 16) return absl::StatusCode::kUnknown;
  return static_cast<absl::StatusCode>(s);
}

absl::StatusOr<llmsys_call_context_t> MakeContext(const Component& c,
                                                  DLDevice device,
                                                  const CallOptions& options,
                                                  const Tensor& workspace) {
  llmsys_call_context_t ctx;
  std::memset(&ctx, 0, sizeof(ctx));
  ctx.struct_size = sizeof(ctx);
  ctx.host = c.plugin != nullptr ? c.plugin->host_api() : nullptr;
  ctx.device = device;
  ctx.rng_seed = options.rng.seed;
  ctx.rng_offset = options.rng.offset;
  ctx.workspace = workspace.defined() ? workspace.data() : nullptr;
  ctx.workspace_bytes =
      workspace.defined() ? static_cast<size_t>(workspace.numel()) : 0;
  ctx.num_threads = options.num_threads < 1 ? 1 : options.num_threads;
  if (device.device_type != kDLCPU) {  // stream, BLAS handles, workspace
    LLMSYS_ASSIGN_OR_RETURN(tensor::DeviceBackend * b,
                            tensor::BackendFor(device));
    LLMSYS_RETURN_IF_ERROR(b->FillContext(device, &ctx));
  }
  return ctx;
}

absl::Status Poison(Tensor& t) {
  if (!tensor::IsFloatDType(t.dtype())) return absl::OkStatus();
  return t.Fill(std::numeric_limits<double>::quiet_NaN());
}

}  // namespace

OperatorImpl::OperatorImpl(const Component& component,
                           const OpContract& contract)
    : component_(&component),
      op_(component.As<llmsys_operator_t>()),
      contract_(&contract) {}

OperatorImpl::~OperatorImpl() {
  if (instance_ != nullptr && op_->destroy != nullptr) op_->destroy(instance_);
}

absl::StatusOr<std::unique_ptr<OperatorImpl>> OperatorImpl::Create(
    const Component& component, const OpContract& contract,
    const AttrList& params) {
  if (component.kind != LLMSYS_KIND_OPERATOR || component.op != contract.name)
    return absl::InvalidArgumentError(absl::StrCat(
        "'", component.id, "' is not an operator of op ", contract.name));
  std::unique_ptr<OperatorImpl> impl(new OperatorImpl(component, contract));
  if (impl->op_->create != nullptr) {
    absl::StatusOr<ParamPack> pack = ParamPack::Make(component.params, params);
    if (!pack.ok())
      return absl::InvalidArgumentError(
          absl::StrCat("operator ", component.id, ": ",
                       std::string(pack.status().message())));
    char message[kMessageBytes] = {};
    llmsys_error_t err{message, sizeof(message)};
    llmsys_status_t s =
        impl->op_->create(pack->c_params(), &impl->instance_, &err);
    if (s != LLMSYS_STATUS_OK) return impl->Error("create", s, err);
  }
  return impl;
}

DLDevice OperatorImpl::device() const {
  return DLDevice{static_cast<DLDeviceType>(component_->device_type), 0};
}

absl::Status OperatorImpl::Error(const char* stage, llmsys_status_t code,
                                 const llmsys_error_t& err) const {
  std::string file =
      component_->plugin != nullptr ? component_->plugin->path().string() : "";
  return absl::Status(
      ToCode(code),
      absl::StrCat("op ", contract_->name, " (", component_->id, ", ", file,
                   ") ", stage, ": ",
                   err.message[0] != '\0' ? err.message : "(no message)"));
}

absl::StatusOr<ParamPack> OperatorImpl::Attrs(const AttrList& attrs) const {
  absl::StatusOr<ParamPack> pack =
      ParamPack::Make(contract_->attributes, attrs);
  if (!pack.ok())
    return absl::InvalidArgumentError(absl::StrCat(
        "op ", contract_->name, ": ", std::string(pack.status().message()),
        " (signature: ", contract_->signature, ")"));
  return pack;
}

absl::Status OperatorImpl::CheckInputs(const std::vector<Tensor>& inputs,
                                       bool allow_missing) const {
  const auto& args = contract_->inputs;
  size_t fixed = 0;
  bool variadic = false;
  for (const OpTensorArg& a : args) {
    if (a.variadic)
      variadic = true;
    else
      ++fixed;
  }
  if (variadic ? inputs.size() < fixed + 1 : inputs.size() != fixed)
    return absl::InvalidArgumentError(absl::StrCat(
        "op ", contract_->name, " takes ", variadic ? "at least " : "",
        variadic ? fixed + 1 : fixed, " tensor inputs, got ", inputs.size(),
        " (signature: ", contract_->signature, ")"));
  const size_t extra = inputs.size() - fixed;  // items of the variadic input
  size_t k = 0;
  const DLDevice device = this->device();
  for (const OpTensorArg& a : args) {
    const size_t n = a.variadic ? extra : 1;
    for (size_t j = 0; j < n; ++j, ++k) {
      const Tensor& t = inputs[k];
      if (!t.defined()) {
        if (!a.optional && !allow_missing)
          return absl::InvalidArgumentError(absl::StrCat(
              "op ", contract_->name, ": input '", a.name, "' is required"));
        continue;
      }
      if (!(t.device() == device))
        return absl::InvalidArgumentError(absl::StrCat(
            "op ", contract_->name, " (", component_->id, "): input '", a.name,
            "' is on ", tensor::DeviceName(t.device()),
            ", the implementation runs on ", tensor::DeviceName(device)));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Tensor>> OperatorImpl::Forward(
    const std::vector<Tensor>& inputs, const ParamPack& attrs,
    const CallOptions& options) const {
  return Run(inputs, attrs, options, nullptr);
}

absl::StatusOr<OperatorImpl::InferResult> OperatorImpl::Infer(
    const std::vector<Tensor>& inputs, const ParamPack& attrs,
    const CallOptions& options) const {
  InferResult result;
  LLMSYS_RETURN_IF_ERROR(Run(inputs, attrs, options, &result).status());
  return result;
}

absl::StatusOr<std::vector<Tensor>> OperatorImpl::Run(
    const std::vector<Tensor>& inputs, const ParamPack& attrs,
    const CallOptions& options, InferResult* infer_only) const {
  LLMSYS_RETURN_IF_ERROR(CheckInputs(inputs, /*allow_missing=*/false));
  const bool strided = (op_->flags & LLMSYS_OP_STRIDED_INPUTS) != 0;
  std::vector<Tensor> held;  // compact copies, alive for the call
  held.reserve(inputs.size());
  std::vector<DLTensor> dl(inputs.size());
  std::vector<const DLTensor*> in_ptrs(inputs.size(), nullptr);
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined()) continue;
    if (strided) {
      held.push_back(inputs[i]);
    } else {
      LLMSYS_ASSIGN_OR_RETURN(Tensor compact, inputs[i].MakeContiguous());
      held.push_back(std::move(compact));
    }
    dl[i] = held.back().Dl();
    if (!strided) dl[i].strides = nullptr;
    in_ptrs[i] = &dl[i];
  }
  llmsys_op_call_t call;
  std::memset(&call, 0, sizeof(call));
  call.struct_size = sizeof(call);
  call.op = contract_->name.c_str();
  call.inputs = in_ptrs.data();
  call.num_inputs = static_cast<uint32_t>(in_ptrs.size());
  call.attrs = *attrs.c_params();
  call.phase = infer_only != nullptr ? LLMSYS_PHASE_ANY : LLMSYS_PHASE_FORWARD;

  const uint32_t num_outputs = static_cast<uint32_t>(contract_->outputs.size());
  std::vector<llmsys_tensor_spec_t> specs(num_outputs);
  std::memset(specs.data(), 0, sizeof(llmsys_tensor_spec_t) * num_outputs);
  size_t workspace_bytes = 0;
  char message[kMessageBytes] = {};
  llmsys_error_t err{message, sizeof(message)};
  LLMSYS_ASSIGN_OR_RETURN(llmsys_call_context_t ctx,
                          MakeContext(*component_, device(), options, {}));
  call.ctx = &ctx;
  llmsys_status_t s = op_->infer(instance_, &call, specs.data(), num_outputs,
                                 &workspace_bytes, &err);
  if (s != LLMSYS_STATUS_OK) return Error("infer", s, err);
  if (infer_only != nullptr) {
    for (const llmsys_tensor_spec_t& spec : specs)
      infer_only->outputs.push_back(
          {true,
           Shape(spec.shape,
                 spec.shape + std::clamp(spec.ndim, 0, LLMSYS_MAX_NDIM)),
           spec.dtype});
    infer_only->workspace_bytes = workspace_bytes;
    return std::vector<Tensor>{};
  }

  std::vector<Tensor> outputs;
  std::vector<DLTensor> out_dl(num_outputs);
  std::vector<DLTensor*> out_ptrs(num_outputs);
  outputs.reserve(num_outputs);
  for (uint32_t i = 0; i < num_outputs; ++i) {
    const llmsys_tensor_spec_t& spec = specs[i];
    if (spec.ndim < 0 || spec.ndim > LLMSYS_MAX_NDIM)
      return absl::InternalError(absl::StrCat(
          "op ", contract_->name, " (", component_->id, ") infer: output '",
          contract_->outputs[i].name, "' has ", spec.ndim, " dims"));
    Shape shape(spec.shape, spec.shape + spec.ndim);
    absl::StatusOr<Tensor> t = Tensor::Empty(shape, spec.dtype, device());
    if (!t.ok())
      return absl::Status(
          t.status().code(),
          absl::StrCat("op ", contract_->name, " (", component_->id,
                       ") infer: output '", contract_->outputs[i].name,
                       "': ", std::string(t.status().message())));
    if (options.poison) LLMSYS_RETURN_IF_ERROR(Poison(*t));
    outputs.push_back(*std::move(t));
    out_dl[i] = outputs.back().Dl();
    out_dl[i].strides = nullptr;
    out_ptrs[i] = &out_dl[i];
  }
  Tensor workspace;
  if (workspace_bytes > 0) {
    LLMSYS_ASSIGN_OR_RETURN(
        workspace, Tensor::Empty({static_cast<int64_t>(workspace_bytes)},
                                 tensor::kU8, device()));
  }
  LLMSYS_ASSIGN_OR_RETURN(
      ctx, MakeContext(*component_, device(), options, workspace));
  s = op_->forward(instance_, &call, out_ptrs.data(), num_outputs, &err);
  if (s != LLMSYS_STATUS_OK) return Error("forward", s, err);
  return outputs;
}

absl::StatusOr<std::vector<Tensor>> OperatorImpl::Backward(
    const std::vector<Tensor>& inputs, const std::vector<TensorMeta>& meta,
    const ParamPack& attrs, const CallOptions& options,
    const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs,
    const std::vector<bool>& needs_grad) const {
  if (op_->backward == nullptr)
    return absl::UnimplementedError(
        absl::StrCat("op ", contract_->name, ": implementation ",
                     component_->id, " has no backward"));
  if (meta.size() != inputs.size() || needs_grad.size() != inputs.size())
    return absl::InternalError("Backward: inputs, meta and needs_grad differ");
  LLMSYS_RETURN_IF_ERROR(CheckInputs(inputs, /*allow_missing=*/true));
  const bool strided = (op_->flags & LLMSYS_OP_STRIDED_INPUTS) != 0;
  // Every DLTensor below points into a Tensor in `held` (reserved: no
  // reallocation moves the shape arrays the views point to).
  std::vector<Tensor> held;
  const uint32_t num_outputs = static_cast<uint32_t>(contract_->outputs.size());
  held.reserve(inputs.size() * 2 + num_outputs * 2);
  auto view = [&](const Tensor& t,
                  bool keep_strides) -> absl::StatusOr<DLTensor> {
    if (keep_strides) {
      held.push_back(t);
    } else {
      LLMSYS_ASSIGN_OR_RETURN(Tensor compact, t.MakeContiguous());
      held.push_back(std::move(compact));
    }
    DLTensor d = held.back().Dl();
    if (!keep_strides) d.strides = nullptr;
    return d;
  };
  std::vector<DLTensor> dl(inputs.size());
  std::vector<const DLTensor*> in_ptrs(inputs.size(), nullptr);
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined()) continue;
    LLMSYS_ASSIGN_OR_RETURN(dl[i], view(inputs[i], strided));
    in_ptrs[i] = &dl[i];
  }
  std::vector<DLTensor> out_dl(num_outputs), gout_dl(num_outputs);
  std::vector<const DLTensor*> out_ptrs(num_outputs, nullptr),
      gout_ptrs(num_outputs, nullptr);
  for (uint32_t i = 0; i < num_outputs; ++i) {
    if (i < outputs.size() && outputs[i].defined()) {
      LLMSYS_ASSIGN_OR_RETURN(out_dl[i], view(outputs[i], false));
      out_ptrs[i] = &out_dl[i];
    }
    if (i < grad_outputs.size() && grad_outputs[i].defined() &&
        !contract_->outputs[i].aux) {
      LLMSYS_ASSIGN_OR_RETURN(gout_dl[i], view(grad_outputs[i], false));
      gout_ptrs[i] = &gout_dl[i];
    }
  }
  std::vector<Tensor> grads(inputs.size());
  std::vector<DLTensor> gin_dl(inputs.size());
  std::vector<DLTensor*> gin_ptrs(inputs.size(), nullptr);
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!needs_grad[i] || !meta[i].defined) continue;
    LLMSYS_ASSIGN_OR_RETURN(
        grads[i], Tensor::Empty(meta[i].shape, meta[i].dtype, device()));
    if (options.poison) LLMSYS_RETURN_IF_ERROR(Poison(grads[i]));
    gin_dl[i] = grads[i].Dl();
    gin_dl[i].strides = nullptr;
    gin_ptrs[i] = &gin_dl[i];
  }
  llmsys_op_call_t call;
  std::memset(&call, 0, sizeof(call));
  call.struct_size = sizeof(call);
  call.op = contract_->name.c_str();
  call.inputs = in_ptrs.data();
  call.num_inputs = static_cast<uint32_t>(in_ptrs.size());
  call.attrs = *attrs.c_params();
  call.phase = LLMSYS_PHASE_BACKWARD;
  LLMSYS_ASSIGN_OR_RETURN(llmsys_call_context_t ctx,
                          MakeContext(*component_, device(), options, {}));
  call.ctx = &ctx;
  // The workspace infer asks for backward, if the inputs allow asking.
  size_t workspace_bytes = 0;
  bool all_inputs = true;
  for (size_t i = 0; i < inputs.size(); ++i)
    all_inputs = all_inputs && (inputs[i].defined() || !meta[i].defined);
  char message[kMessageBytes] = {};
  llmsys_error_t err{message, sizeof(message)};
  Tensor workspace;
  if (all_inputs) {
    std::vector<llmsys_tensor_spec_t> specs(num_outputs);
    llmsys_status_t s = op_->infer(instance_, &call, specs.data(), num_outputs,
                                   &workspace_bytes, &err);
    if (s != LLMSYS_STATUS_OK) return Error("infer (for backward)", s, err);
    if (workspace_bytes > 0) {
      LLMSYS_ASSIGN_OR_RETURN(
          workspace, Tensor::Empty({static_cast<int64_t>(workspace_bytes)},
                                   tensor::kU8, device()));
      LLMSYS_ASSIGN_OR_RETURN(
          ctx, MakeContext(*component_, device(), options, workspace));
    }
  }
  llmsys_status_t s =
      op_->backward(instance_, &call, out_ptrs.data(), gout_ptrs.data(),
                    num_outputs, gin_ptrs.data(), &err);
  if (s != LLMSYS_STATUS_OK) return Error("backward", s, err);
  return grads;
}

}  // namespace llmsys::runtime
