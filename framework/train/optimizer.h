// framework/train/optimizer.h — an optimizer component applied to a
// model's parameters, with the per-parameter state it declared allocated,
// zero-filled and owned by the host (so checkpoints hold it).
//
//   LLMSYS_ASSIGN_OR_RETURN(auto opt, Optimizer::Create(*component, params,
//                                                       parameters.all()));
//   LLMSYS_RETURN_IF_ERROR(opt->Step(/*step=*/1, /*lr=*/1e-3));
//
// Thread-safety: one thread.
#ifndef LLMSYS_FRAMEWORK_TRAIN_OPTIMIZER_H_
#define LLMSYS_FRAMEWORK_TRAIN_OPTIMIZER_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/runtime/parameters.h"
#include "framework/runtime/plugin.h"
#include "framework/tensor/tensor.h"

namespace llmsys::train {

class Optimizer {
 public:
  // Creates the component's instance with `params` and allocates its state
  // for every trainable parameter of `parameters`.
  static absl::StatusOr<std::unique_ptr<Optimizer>> Create(
      const runtime::Component& component,
      const std::vector<std::pair<std::string, runtime::ParamValue>>& params,
      const std::vector<runtime::Parameter>& parameters);
  ~Optimizer();

  // One update of every trainable parameter from its gradient (a parameter
  // without one gets a zero gradient). `step` counts from 1.
  absl::Status Step(int64_t step, double lr, int32_t num_threads = 1);

  // The state tensors, named "<parameter>.<state>" (checkpoints).
  std::vector<std::pair<std::string, tensor::Tensor>> State() const;
  const runtime::Component& component() const { return *component_; }

 private:
  Optimizer() = default;
  const runtime::Component* component_ = nullptr;
  void* instance_ = nullptr;
  std::vector<runtime::Parameter> params_;
  std::vector<std::string> state_names_;
  std::vector<tensor::Tensor> state_;  // parameter-major
};

}  // namespace llmsys::train

#endif  // LLMSYS_FRAMEWORK_TRAIN_OPTIMIZER_H_
