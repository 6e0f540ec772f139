#include "framework/runtime/couplings.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "framework/core/status_macros.h"

namespace llmsys::runtime {
namespace {

using autograd::Var;
using tensor::Tensor;

// Calls F or G of layer `index` on x in a graph of its own.
absl::StatusOr<Var> CallFunction(OpDispatcher* ops, ParameterStore* params,
                                 const llmsys_function_t& fn, const Var& x,
                                 const std::vector<Var>& context, size_t index,
                                 const char* which) {
  const std::string what = absl::StrCat("coupling layer ", index, " ", which);
  if (fn.call == nullptr)
    return absl::InvalidArgumentError(absl::StrCat(what, ": call is NULL"));
  Graph graph(ops, params);
  const llmsys_value_t xv = graph.NewValue(x);
  std::vector<llmsys_value_t> ctx;
  for (const Var& c : context) ctx.push_back(graph.NewValue(c));
  llmsys_value_t out = nullptr;
  char message[2048] = {};
  llmsys_error_t err{message, sizeof(message)};
  const llmsys_status_t st =
      fn.call(fn.self, graph.c(), xv, ctx.data(),
              static_cast<uint32_t>(ctx.size()), &out, &err);
  Var y = out != nullptr ? out->var : nullptr;
  graph.Release(xv);
  for (llmsys_value_t c : ctx) graph.Release(c);
  if (out != nullptr) graph.Release(out);
  if (st != LLMSYS_STATUS_OK)
    return absl::Status(static_cast<absl::StatusCode>(st),
                        absl::StrCat(what, ": ", message));
  if (!y) return absl::InvalidArgumentError(absl::StrCat(what, ": no output"));
  if (y->data.shape() != x->data.shape() ||
      !(y->data.dtype() == x->data.dtype()))
    return absl::InvalidArgumentError(absl::StrCat(
        what, " returned ", y->data.Describe(),
        "; it must keep its input's shape and dtype, ", x->data.Describe()));
  return y;
}

absl::StatusOr<Tensor> Zeros(const Tensor& like) {
  return Tensor::Zeros(like.shape(), like.dtype(), like.device());
}

// a (op) b through the dispatcher, as the model's own call would be.
absl::StatusOr<Tensor> Binary(OpDispatcher* ops, const char* op,
                              const Tensor& a, const Tensor& b) {
  LLMSYS_ASSIGN_OR_RETURN(
      std::vector<Var> out,
      ops->Call(op, {autograd::MakeLeaf(a), autograd::MakeLeaf(b)}));
  return out.at(0)->data;
}

class CouplingNode : public autograd::Node {
 public:
  std::string name() const override { return "call_couplings"; }

  absl::StatusOr<std::vector<Tensor>> Apply(
      const std::vector<Tensor>& grads) override {
    autograd::GradModeGuard grad_on(true);
    const uint64_t calls = ops->calls();
    Tensor y1 = out1, y2 = out2;
    Tensor dy1 = grads[0], dy2 = grads[1];
    if (!dy1.defined()) {
      LLMSYS_ASSIGN_OR_RETURN(dy1, Zeros(y1));
    }
    if (!dy2.defined()) {
      LLMSYS_ASSIGN_OR_RETURN(dy2, Zeros(y2));
    }
    // `fn` on x (as a leaf that needs a gradient) at its forward's random
    // position, back-propagated from `grad`: its output and d/dx.
    auto recompute =
        [&](size_t i, const llmsys_function_t& fn, const char* which,
            uint64_t at, const Tensor& x,
            const Tensor& grad) -> absl::StatusOr<std::pair<Tensor, Tensor>> {
      ops->set_calls(at);
      Var leaf = autograd::MakeLeaf(x, /*requires_grad=*/true);
      LLMSYS_ASSIGN_OR_RETURN(
          Var y, CallFunction(ops, params, fn, leaf, context, i, which));
      if (y->requires_grad) LLMSYS_RETURN_IF_ERROR(autograd::Backward(y, grad));
      Tensor dx = leaf->grad;
      if (!dx.defined()) {
        LLMSYS_ASSIGN_OR_RETURN(dx, Zeros(x));
      }
      return std::make_pair(y->data, dx);
    };
    for (size_t i = layers.size(); i-- > 0;) {
      const llmsys_coupling_t& l = layers[i];
      if (l.inverse == 0) {
        LLMSYS_ASSIGN_OR_RETURN(auto g,
                                recompute(i, l.g, "G", g_calls[i], y1, dy2));
        LLMSYS_ASSIGN_OR_RETURN(Tensor x2, Binary(ops, "sub", y2, g.first));
        LLMSYS_ASSIGN_OR_RETURN(dy1, Binary(ops, "add", dy1, g.second));
        LLMSYS_ASSIGN_OR_RETURN(auto f,
                                recompute(i, l.f, "F", f_calls[i], x2, dy1));
        LLMSYS_ASSIGN_OR_RETURN(Tensor x1, Binary(ops, "sub", y1, f.first));
        LLMSYS_ASSIGN_OR_RETURN(dy2, Binary(ops, "add", dy2, f.second));
        y1 = std::move(x1);
        y2 = std::move(x2);
      } else {
        // (y1, y2) = (b1, b2), the layer's output; its input is (a1, a2).
        LLMSYS_ASSIGN_OR_RETURN(Tensor minus, Negate(dy1));
        LLMSYS_ASSIGN_OR_RETURN(auto f,
                                recompute(i, l.f, "F", f_calls[i], y2, minus));
        LLMSYS_ASSIGN_OR_RETURN(Tensor a1, Binary(ops, "add", y1, f.first));
        LLMSYS_ASSIGN_OR_RETURN(dy2, Binary(ops, "add", dy2, f.second));
        LLMSYS_ASSIGN_OR_RETURN(minus, Negate(dy2));
        LLMSYS_ASSIGN_OR_RETURN(auto g,
                                recompute(i, l.g, "G", g_calls[i], a1, minus));
        LLMSYS_ASSIGN_OR_RETURN(Tensor a2, Binary(ops, "add", y2, g.first));
        LLMSYS_ASSIGN_OR_RETURN(dy1, Binary(ops, "add", dy1, g.second));
        y1 = std::move(a1);
        y2 = std::move(a2);
      }
    }
    ops->set_calls(calls);
    return std::vector<Tensor>{dy1, dy2};
  }

  void Release() override {
    out1 = Tensor();
    out2 = Tensor();
    context.clear();
  }

  absl::StatusOr<Tensor> Negate(const Tensor& x) {
    LLMSYS_ASSIGN_OR_RETURN(std::vector<Var> out,
                            ops->Call("neg", {autograd::MakeLeaf(x)}));
    return out.at(0)->data;
  }

  OpDispatcher* ops = nullptr;
  ParameterStore* params = nullptr;
  std::vector<llmsys_coupling_t> layers;
  std::vector<uint64_t> f_calls, g_calls;  // each call's random position
  std::vector<Var> context;
  Tensor out1, out2;  // the stack's output halves
};

}  // namespace

absl::StatusOr<std::pair<Var, Var>> RunCouplings(
    Graph& graph, const std::vector<llmsys_coupling_t>& layers, const Var& x1,
    const Var& x2, const std::vector<Var>& context) {
  OpDispatcher* ops = graph.ops();
  ParameterStore* params = graph.parameters();
  const bool record = autograd::GradEnabled();
  std::vector<Var> ctx;
  for (const Var& c : context) ctx.push_back(autograd::Detach(c));
  std::vector<uint64_t> f_calls(layers.size()), g_calls(layers.size());
  Tensor a = x1->data, b = x2->data;
  {
    autograd::NoGradGuard no_grad;
    for (size_t i = 0; i < layers.size(); ++i) {
      const llmsys_coupling_t& l = layers[i];
      auto run = [&](const llmsys_function_t& fn, const char* which,
                     uint64_t& at, const Tensor& x) -> absl::StatusOr<Tensor> {
        at = ops->calls();
        LLMSYS_ASSIGN_OR_RETURN(
            Var y, CallFunction(ops, params, fn, autograd::MakeLeaf(x), ctx, i,
                                which));
        return y->data;
      };
      if (l.inverse == 0) {
        LLMSYS_ASSIGN_OR_RETURN(Tensor f, run(l.f, "F", f_calls[i], b));
        LLMSYS_ASSIGN_OR_RETURN(a, Binary(ops, "add", a, f));
        LLMSYS_ASSIGN_OR_RETURN(Tensor g, run(l.g, "G", g_calls[i], a));
        LLMSYS_ASSIGN_OR_RETURN(b, Binary(ops, "add", b, g));
      } else {
        LLMSYS_ASSIGN_OR_RETURN(Tensor g, run(l.g, "G", g_calls[i], a));
        LLMSYS_ASSIGN_OR_RETURN(b, Binary(ops, "sub", b, g));
        LLMSYS_ASSIGN_OR_RETURN(Tensor f, run(l.f, "F", f_calls[i], b));
        LLMSYS_ASSIGN_OR_RETURN(a, Binary(ops, "sub", a, f));
      }
    }
  }
  if (!record)
    return std::make_pair(autograd::MakeLeaf(a), autograd::MakeLeaf(b));
  auto node = std::make_shared<CouplingNode>();
  node->inputs = {x1->requires_grad ? x1 : nullptr,
                  x2->requires_grad ? x2 : nullptr};
  node->num_outputs = 2;
  node->ops = ops;
  node->params = params;
  node->layers = layers;
  node->f_calls = std::move(f_calls);
  node->g_calls = std::move(g_calls);
  node->context = std::move(ctx);
  node->out1 = a;
  node->out2 = b;
  std::vector<Var> out = autograd::MakeOutputs({a, b}, node, {true, true});
  return std::make_pair(out[0], out[1]);
}

}  // namespace llmsys::runtime
