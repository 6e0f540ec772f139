#include "framework/autograd/autograd.h"

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "framework/core/status_macros.h"
#include "framework/tensor/host_math.h"

namespace llmsys::autograd {
namespace {

thread_local bool grad_enabled = true;

// buffer += g, without writing into a tensor anyone else may hold: in
// place when the buffer's memory is its alone, else into a new tensor.
absl::Status Accumulate(Tensor& buffer, const Tensor& g) {
  if (!buffer.defined()) {
    buffer = g;
    return absl::OkStatus();
  }
  if (buffer.sole_owner() && buffer.shape() == g.shape())
    return tensor::AddInto(buffer, g);
  LLMSYS_ASSIGN_OR_RETURN(buffer, tensor::Add(buffer, g));
  return absl::OkStatus();
}

// The leaf owns its gradient: the first one is taken as is when nothing
// else holds its memory (a fresh op output), else copied.
absl::Status AccumulateLeaf(VarImpl& leaf, Tensor g) {
  if (!leaf.grad.defined()) {
    if (g.sole_owner() && g.is_contiguous()) {
      leaf.grad = std::move(g);
      return absl::OkStatus();
    }
    // A copy (device memory may run out: a status, not an abort).
    LLMSYS_ASSIGN_OR_RETURN(leaf.grad,
                            Tensor::Empty(g.shape(), g.dtype(), g.device()));
    return leaf.grad.CopyFrom(g);
  }
  return tensor::AddInto(leaf.grad, g);
}

// `status` from the backward of `n`, its message prefixed with the node.
absl::Status InBackwardOf(const Node& n, const absl::Status& status) {
  return absl::Status(status.code(),
                      absl::StrCat("backward of ", n.name(), ": ",
                                   std::string(status.message())));
}

std::string VarName(const VarImpl& v) {
  return v.name.empty() ? v.data.Describe() : "'" + v.name + "'";
}

}  // namespace

Var MakeLeaf(Tensor data, bool requires_grad, std::string name) {
  auto v = std::make_shared<VarImpl>();
  v->data = std::move(data);
  v->requires_grad = requires_grad;
  v->name = std::move(name);
  return v;
}

namespace {

class CastNode final : public Node {
 public:
  explicit CastNode(DLDataType from) : from_(from) {}
  std::string name() const override { return "cast"; }
  absl::StatusOr<std::vector<Tensor>> Apply(
      const std::vector<Tensor>& grad_outputs) override {
    const Tensor& g = grad_outputs[0];
    if (!g.defined()) return std::vector<Tensor>{Tensor()};
    LLMSYS_ASSIGN_OR_RETURN(Tensor back, g.To(from_));
    return std::vector<Tensor>{std::move(back)};
  }

 private:
  DLDataType from_;
};

}  // namespace

absl::StatusOr<Var> Cast(const Var& x, DLDataType dtype) {
  if (!x || x->data.dtype() == dtype) return x;
  LLMSYS_ASSIGN_OR_RETURN(Tensor converted, x->data.To(dtype));
  std::shared_ptr<CastNode> node;
  if (x->requires_grad && GradEnabled()) {
    node = std::make_shared<CastNode>(x->data.dtype());
    node->inputs.push_back(x);
  }
  std::vector<Var> out = MakeOutputs({std::move(converted)}, node, {true});
  return out[0];
}

Var Detach(const Var& v) { return MakeLeaf(v->data, false, v->name); }

bool GradEnabled() { return grad_enabled; }

NoGradGuard::NoGradGuard() : previous_(grad_enabled) { grad_enabled = false; }
NoGradGuard::~NoGradGuard() { grad_enabled = previous_; }

GradModeGuard::GradModeGuard(bool enabled) : previous_(grad_enabled) {
  grad_enabled = enabled;
}
GradModeGuard::~GradModeGuard() { grad_enabled = previous_; }

bool AnyRequiresGrad(const std::vector<Var>& inputs) {
  if (!grad_enabled) return false;
  for (const Var& v : inputs) {
    if (v && v->requires_grad) return true;
  }
  return false;
}

std::vector<Var> MakeOutputs(std::vector<Tensor> outputs,
                             const std::shared_ptr<Node>& node,
                             const std::vector<bool>& differentiable) {
  std::vector<Var> vars;
  for (size_t i = 0; i < outputs.size(); ++i) {
    auto v = std::make_shared<VarImpl>();
    v->data = std::move(outputs[i]);
    if (node && i < differentiable.size() && differentiable[i]) {
      v->requires_grad = true;
      v->grad_fn = node;
      v->output_index = static_cast<uint32_t>(i);
    }
    vars.push_back(std::move(v));
  }
  return vars;
}

absl::Status Backward(const Var& root, const Tensor& grad,
                      const BackwardOptions& options) {
  if (!root) return absl::InvalidArgumentError("backward() on a null value");
  if (!root->requires_grad)
    return absl::InvalidArgumentError(absl::StrCat(
        "backward() on ", VarName(*root),
        ", which does not require a gradient (no parameter reaches it, or it "
        "was computed under no_grad or detached)"));
  Tensor seed = grad;
  if (!seed.defined()) {
    if (root->data.numel() != 1)
      return absl::InvalidArgumentError(absl::StrCat(
          "backward() on a non-scalar ", root->data.Describe(),
          " needs a gradient of the same shape; call it on a scalar loss"));
    LLMSYS_ASSIGN_OR_RETURN(
        seed, Tensor::Empty(root->data.shape(), root->data.dtype(),
                            root->data.device()));
    LLMSYS_RETURN_IF_ERROR(seed.Fill(1.0));
  } else if (seed.shape() != root->data.shape()) {
    return absl::InvalidArgumentError(
        absl::StrCat("backward(): gradient ", seed.Describe(),
                     " does not match ", root->data.Describe()));
  }
  if (!root->grad_fn) {
    LLMSYS_RETURN_IF_ERROR(AccumulateLeaf(*root, seed));
    if (options.on_leaf_ready) options.on_leaf_ready(root);
    return absl::OkStatus();
  }

  // Dependencies: how many edges reach each node from the root's subgraph
  // (and each leaf, when on_leaf_ready wants to know its last).
  const bool count_leaves = static_cast<bool>(options.on_leaf_ready);
  std::map<Node*, int> pending;
  std::map<const VarImpl*, int> leaf_pending;
  std::vector<Node*> stack = {root->grad_fn.get()};
  pending[root->grad_fn.get()] = 0;
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Var& in : n->inputs) {
      if (count_leaves && in && !in->grad_fn && in->requires_grad)
        ++leaf_pending[in.get()];
      if (!in || !in->grad_fn) continue;
      auto [it, inserted] = pending.try_emplace(in->grad_fn.get(), 0);
      ++it->second;
      if (inserted) stack.push_back(in->grad_fn.get());
    }
  }
  std::map<Node*, std::vector<Tensor>> buffers;
  std::map<Node*, std::shared_ptr<Node>> keep;  // alive while walking
  buffers[root->grad_fn.get()].resize(root->grad_fn->num_outputs);
  buffers[root->grad_fn.get()][root->output_index] = seed;
  keep[root->grad_fn.get()] = root->grad_fn;
  std::vector<Node*> ready = {root->grad_fn.get()};
  while (!ready.empty()) {
    Node* n = ready.back();
    ready.pop_back();
    if (n->released)
      return absl::FailedPreconditionError(absl::StrCat(
          "backward() through the graph a second time: the tensors ", n->name(),
          " saved were freed by the first backward (pass retain_graph to "
          "the first call to keep them)"));
    std::vector<Tensor> grads = std::move(buffers[n]);
    grads.resize(n->num_outputs);
    buffers.erase(n);
    bool any = false;
    for (const Tensor& g : grads) any = any || g.defined();
    // A one-input node may add straight into its input's buffer (a slice);
    // otherwise Apply returns one gradient per input.
    bool added = false;
    if (any && n->inputs.size() == 1 && n->inputs[0] && n->inputs[0]->grad_fn) {
      const Var& in = n->inputs[0];
      std::vector<Tensor>& buf = buffers[in->grad_fn.get()];
      buf.resize(in->grad_fn->num_outputs);
      absl::StatusOr<bool> r =
          n->AccumulateInputGrad(grads, buf[in->output_index]);
      if (!r.ok()) return InBackwardOf(*n, r.status());
      added = *r;
    }
    absl::StatusOr<std::vector<Tensor>> in_grads =
        any && !added ? n->Apply(grads) : std::vector<Tensor>();
    if (!in_grads.ok()) return InBackwardOf(*n, in_grads.status());
    if (!options.retain_graph) {
      n->Release();
      n->released = true;
    }
    for (size_t i = 0; i < n->inputs.size(); ++i) {
      const Var& in = n->inputs[i];
      if (!in) continue;
      // Moved out, so a fresh gradient can be kept without a copy.
      Tensor g = i < in_grads->size() ? std::move((*in_grads)[i]) : Tensor();
      if (g.defined() && g.shape() != in->data.shape())
        return absl::InternalError(absl::StrCat(
            "backward of ", n->name(), " gave input ", i, " a gradient ",
            g.Describe(), " for ", in->data.Describe()));
      if (in->grad_fn) {
        Node* next = in->grad_fn.get();
        if (g.defined()) {
          std::vector<Tensor>& buf = buffers[next];
          buf.resize(next->num_outputs);
          LLMSYS_RETURN_IF_ERROR(Accumulate(buf[in->output_index], g));
        }
        keep[next] = in->grad_fn;
        if (--pending[next] == 0) ready.push_back(next);
      } else if (in->requires_grad) {
        if (g.defined())
          LLMSYS_RETURN_IF_ERROR(AccumulateLeaf(*in, std::move(g)));
        if (count_leaves && --leaf_pending[in.get()] == 0)
          options.on_leaf_ready(in);
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace llmsys::autograd
