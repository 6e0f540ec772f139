// framework/autograd/autograd.h — define-by-run reverse-mode autograd.
//
// A Var is a tensor value in a computation. Every op call made through the
// host (runtime/dispatch.h) and every view (views.h) records a Node whose
// inputs are the Vars it read; Backward() walks that tape from a scalar in
// reverse topological order, calls each Node once with the summed gradients
// of its outputs, and accumulates into the `grad` of every leaf that
// requires it (parameters). Afterwards the graph's saved tensors are freed:
// a second Backward through it is a FAILED_PRECONDITION unless the first
// passed retain_graph.
//
//   Var w = MakeLeaf(weights, /*requires_grad=*/true, "w");
//   ... y = op calls on w ...
//   LLMSYS_RETURN_IF_ERROR(Backward(y));   // y must be a scalar
//   use(w->grad);
//
//   { NoGradGuard no_grad; ... }           // records nothing
//   Var c = Detach(y);                     // same data, no history
//
// Thread-safety: a graph is built and walked on one thread. The grad mode
// (NoGradGuard) is per thread.
#ifndef LLMSYS_FRAMEWORK_AUTOGRAD_AUTOGRAD_H_
#define LLMSYS_FRAMEWORK_AUTOGRAD_AUTOGRAD_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "framework/tensor/tensor.h"

namespace llmsys::autograd {

using tensor::Tensor;

class Node;

struct VarImpl {
  Tensor data;
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;  // null for leaves
  uint32_t output_index = 0;      // which output of grad_fn this is
  Tensor grad;                    // leaves: accumulated by Backward
  std::string name;               // for messages (parameters)
};
using Var = std::shared_ptr<VarImpl>;

// A leaf (no history): a parameter when requires_grad, else a constant.
Var MakeLeaf(Tensor data, bool requires_grad = false, std::string name = {});
// `x` converted to `dtype` (x itself when it has it); the gradient flows
// back converted to x's dtype (mixed precision: a float32 master weight
// used in bfloat16).
absl::StatusOr<Var> Cast(const Var& x, DLDataType dtype);
// The same data, cut from the graph.
Var Detach(const Var& v);

// One recorded computation. Subclasses save what their backward needs.
class Node {
 public:
  virtual ~Node() = default;
  // For messages: "matmul.reference", "view.permute".
  virtual std::string name() const = 0;
  // grad_outputs[i] is the summed gradient of output i (undefined when no
  // path reached it). Returns one gradient per entry of inputs(), undefined
  // where inputs()[i] is null or gets none.
  virtual absl::StatusOr<std::vector<Tensor>> Apply(
      const std::vector<Tensor>& grad_outputs) = 0;
  // For a node with one input: adds the input's gradient for
  // `grad_outputs` straight into `buffer`, the gradient summed for that
  // input so far (undefined: none yet; it may be replaced, never written
  // when others hold it), and returns true; or returns false, and Backward
  // calls Apply. A slice adds into its part only, instead of a whole
  // tensor of zeros around it.
  virtual absl::StatusOr<bool> AccumulateInputGrad(
      const std::vector<Tensor>& grad_outputs, Tensor& buffer) {
    (void)grad_outputs;
    (void)buffer;
    return false;
  }
  // Frees the saved tensors (after backward, unless retained).
  virtual void Release() {}

  // Inputs in call order; null where no gradient is needed.
  std::vector<Var> inputs;
  uint32_t num_outputs = 1;
  bool released = false;
};

// Whether op calls on this thread record nodes (true by default).
bool GradEnabled();

// Turns recording off on this thread for its lifetime.
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// Sets recording on or off on this thread for its lifetime (a backward
// that recomputes a forward turns it on).
class GradModeGuard {
 public:
  explicit GradModeGuard(bool enabled);
  ~GradModeGuard();
  GradModeGuard(const GradModeGuard&) = delete;
  GradModeGuard& operator=(const GradModeGuard&) = delete;

 private:
  bool previous_;
};

// True when any of `inputs` requires a gradient and recording is on.
bool AnyRequiresGrad(const std::vector<Var>& inputs);

// Makes the output Vars of one recorded call: each requires grad iff
// `node` is non-null and the output is differentiable (diff[i]).
std::vector<Var> MakeOutputs(std::vector<Tensor> outputs,
                             const std::shared_ptr<Node>& node,
                             const std::vector<bool>& differentiable);

struct BackwardOptions {
  // Keep the saved tensors, so Backward may run through the graph again.
  bool retain_graph = false;
  // Called once for each leaf that requires grad and is reached, as soon
  // as this backward has added its last gradient to the leaf's grad (while
  // the rest of the graph is still being walked): data-parallel training
  // starts the leaf's all-reduce then (distributed/data_parallel.h).
  std::function<void(const Var&)> on_leaf_ready = {};
};

// Back-propagates from `root`. `grad` is d(loss)/d(root); it may be left
// undefined only when root has one element (it is then 1). Errors: root
// does not require grad; a non-scalar root without `grad`; a graph already
// freed by an earlier Backward; a node whose backward fails (its name and
// message).
absl::Status Backward(const Var& root, const Tensor& grad = {},
                      const BackwardOptions& options = {});

}  // namespace llmsys::autograd

#endif  // LLMSYS_FRAMEWORK_AUTOGRAD_AUTOGRAD_H_
