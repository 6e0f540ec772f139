// framework/runtime/operator_call.h — one operator implementation, created
// and called through its C ABI on host tensors.
//
// This is the one place the host crosses into an operator: the dispatcher
// (dispatch.h) and the conformance suite both call through it. It checks
// the call against the op contract, makes inputs compact unless the operator
// reads strides, asks infer() for the output specs, allocates outputs and
// workspace, and prefixes every plugin error with the op and the
// implementation.
//
//   LLMSYS_ASSIGN_OR_RETURN(auto impl, OperatorImpl::Create(*component,
//                                                         *contract));
//   LLMSYS_ASSIGN_OR_RETURN(ParamPack attrs, impl->Attrs({{"dim", -1}}));
//   LLMSYS_ASSIGN_OR_RETURN(std::vector<Tensor> out,
//                           impl->Forward({x}, attrs, CallRng{}));
//
// Thread-safety: as the operator's instance (one thread at a time).
#ifndef LLMSYS_FRAMEWORK_RUNTIME_OPERATOR_CALL_H_
#define LLMSYS_FRAMEWORK_RUNTIME_OPERATOR_CALL_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/runtime/op_contract.h"
#include "framework/runtime/param_schema.h"
#include "framework/runtime/plugin.h"
#include "framework/tensor/tensor.h"

namespace llmsys::runtime {

using tensor::Tensor;

// The random stream of one call (llmsys/random.h).
struct CallRng {
  uint64_t seed = 0;
  uint64_t offset = 0;
};

struct CallOptions {
  CallRng rng;
  int32_t num_threads = 1;
  // Fill outputs and input gradients with NaN before the call, so an
  // implementation that leaves elements unwritten is caught (conformance).
  bool poison = false;
};

using AttrList = std::vector<std::pair<std::string, ParamValue>>;

// What backward needs to know about an input it may not have kept.
struct TensorMeta {
  bool defined = false;
  tensor::Shape shape;
  DLDataType dtype = tensor::kF32;
};

class OperatorImpl {
 public:
  // Creates an instance of operator `component` (which implements
  // `contract`) with its parameters' defaults replaced by `params`.
  static absl::StatusOr<std::unique_ptr<OperatorImpl>> Create(
      const Component& component, const OpContract& contract,
      const AttrList& params = {});
  ~OperatorImpl();
  OperatorImpl(const OperatorImpl&) = delete;
  OperatorImpl& operator=(const OperatorImpl&) = delete;

  const Component& component() const { return *component_; }
  const llmsys_operator_t& op() const { return *op_; }
  const OpContract& contract() const { return *contract_; }
  const std::string& id() const { return component_->id; }
  bool has_backward() const { return op_->backward != nullptr; }
  uint32_t flags() const { return op_->flags; }
  DLDevice device() const;

  // The contract's attributes with `attrs` (by name) replacing defaults.
  // Errors name the op and the attribute.
  absl::StatusOr<ParamPack> Attrs(const AttrList& attrs) const;

  // Runs forward. `inputs` follow the contract, a variadic input expanded
  // in place; an undefined Tensor is an absent optional input.
  absl::StatusOr<std::vector<Tensor>> Forward(const std::vector<Tensor>& inputs,
                                              const ParamPack& attrs,
                                              const CallOptions& options) const;

  // What forward would produce, without running it: the output shapes and
  // dtypes and the workspace the implementation asks for (its argument
  // checks run; nothing is allocated but compact copies of the inputs).
  struct InferResult {
    std::vector<TensorMeta> outputs;
    size_t workspace_bytes = 0;
  };
  absl::StatusOr<InferResult> Infer(const std::vector<Tensor>& inputs,
                                    const ParamPack& attrs,
                                    const CallOptions& options = {}) const;

  // Runs backward. `inputs` and `outputs` are those of the forward call
  // (undefined where the operator did not ask to keep them); meta[i]
  // describes input i whether kept or not. grad_outputs[i] undefined means
  // zero. needs_grad[i] says which inputs get a gradient; the others come
  // back undefined.
  absl::StatusOr<std::vector<Tensor>> Backward(
      const std::vector<Tensor>& inputs, const std::vector<TensorMeta>& meta,
      const ParamPack& attrs, const CallOptions& options,
      const std::vector<Tensor>& outputs,
      const std::vector<Tensor>& grad_outputs,
      const std::vector<bool>& needs_grad) const;

 private:
  OperatorImpl(const Component& component, const OpContract& contract);
  absl::Status Error(const char* stage, llmsys_status_t code,
                     const llmsys_error_t& err) const;
  absl::Status CheckInputs(const std::vector<Tensor>& inputs,
                           bool allow_missing) const;
  // Forward, or only its infer step when `infer_only` is set.
  absl::StatusOr<std::vector<Tensor>> Run(const std::vector<Tensor>& inputs,
                                          const ParamPack& attrs,
                                          const CallOptions& options,
                                          InferResult* infer_only) const;

  const Component* component_;
  const llmsys_operator_t* op_;
  const OpContract* contract_;
  void* instance_ = nullptr;
};

}  // namespace llmsys::runtime

#endif  // LLMSYS_FRAMEWORK_RUNTIME_OPERATOR_CALL_H_
