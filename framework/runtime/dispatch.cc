#include "framework/runtime/dispatch.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "framework/core/status_macros.h"
#include "framework/core/suggest.h"

namespace llmsys::runtime {
namespace {

using tensor::Tensor;

constexpr uint64_t kCallStride = uint64_t{1} << 32;  // counters per call

int32_t Priority(const Component& c) {
  return c.As<llmsys_operator_t>()->priority;
}

// The input shapes of a call, for the profiler's trace: "[4,16,32] [32,96]".
std::string ShapesOf(const std::vector<Tensor>& tensors) {
  std::string out;
  for (const Tensor& t : tensors) {
    if (!out.empty()) out += " ";
    if (!t.defined()) {
      out += "-";
      continue;
    }
    out += "[" + absl::StrJoin(t.shape(), ",") + "]";
  }
  return out;
}

std::string ImplName(const Component& c) {
  const std::string prefix = c.op + ".";
  return c.id.rfind(prefix, 0) == 0 ? c.id.substr(prefix.size()) : c.id;
}

// Backward of one op call: the implementation's backward with what it kept.
class OpNode : public autograd::Node {
 public:
  OpNode(OperatorImpl* impl, std::shared_ptr<const ParamPack> attrs,
         CallOptions options, Profiler* profiler)
      : impl_(impl),
        attrs_(std::move(attrs)),
        options_(options),
        profiler_(profiler) {}

  std::string name() const override {
    return absl::StrCat(impl_->contract().name, " (", impl_->id(), ")");
  }

  absl::StatusOr<std::vector<Tensor>> Apply(
      const std::vector<Tensor>& grad_outputs) override {
    std::vector<bool> needs(inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i)
      needs[i] = inputs[i] != nullptr && inputs[i]->requires_grad;
    const std::vector<bool> passed = PassedThrough(grad_outputs, needs);
    bool call = false;
    for (size_t i = 0; i < needs.size(); ++i) {
      if (passed[i]) needs[i] = false;
      call = call || needs[i];
    }
    absl::StatusOr<std::vector<Tensor>> grads =
        call ? Backward(grad_outputs, needs)
             : std::vector<Tensor>(inputs.size());
    if (!grads.ok()) return grads;
    for (size_t i = 0; i < passed.size(); ++i)
      if (passed[i]) (*grads)[i] = grad_outputs[0];
    return grads;
  }

  void Release() override {
    saved_inputs.assign(saved_inputs.size(), Tensor());
    saved_outputs.assign(saved_outputs.size(), Tensor());
  }

  std::vector<Tensor> saved_inputs;   // undefined unless kept
  std::vector<Tensor> saved_outputs;  // undefined unless kept
  std::vector<TensorMeta> meta;

 private:
  // The inputs whose gradient is the output's gradient itself, shared, not
  // copied: add's (and sub's first) inputs of the output's shape and dtype.
  // d(a + b)/da = 1 is the contract, whatever the implementation; its
  // backward then runs only for a broadcast input (PyTorch's autograd
  // passes these gradients on the same way).
  std::vector<bool> PassedThrough(const std::vector<Tensor>& grad_outputs,
                                  const std::vector<bool>& needs) const {
    std::vector<bool> passed(needs.size(), false);
    const std::string& op = impl_->contract().name;
    if ((op != "add" && op != "sub") || grad_outputs.empty() ||
        !grad_outputs[0].defined())
      return passed;
    const Tensor& g = grad_outputs[0];
    const size_t n =
        op == "add" ? needs.size() : std::min<size_t>(1, needs.size());
    for (size_t i = 0; i < n; ++i)
      passed[i] = needs[i] && meta[i].defined && meta[i].shape == g.shape() &&
                  meta[i].dtype == g.dtype();
    return passed;
  }

  // The implementation's backward, timed when profiling.
  absl::StatusOr<std::vector<Tensor>> Backward(
      const std::vector<Tensor>& grad_outputs, const std::vector<bool>& needs) {
    if (profiler_ == nullptr)
      return impl_->Backward(saved_inputs, meta, *attrs_, options_,
                             saved_outputs, grad_outputs, needs);
    const Profiler::Clock::time_point start = Profiler::Clock::now();
    absl::StatusOr<std::vector<Tensor>> grads =
        impl_->Backward(saved_inputs, meta, *attrs_, options_, saved_outputs,
                        grad_outputs, needs);
    const Profiler::Clock::time_point end = Profiler::Clock::now();
    std::string shapes;
    if (profiler_->tracing()) {
      for (const TensorMeta& m : meta) {
        if (!shapes.empty()) shapes += " ";
        shapes += m.defined ? "[" + absl::StrJoin(m.shape, ",") + "]" : "-";
      }
    }
    profiler_->RecordOp(impl_->contract().name, impl_->id(),
                        Profiler::Pass::kBackward, start, end,
                        std::move(shapes));
    return grads;
  }

  OperatorImpl* impl_;  // owned by the dispatcher, which outlives graphs
  std::shared_ptr<const ParamPack> attrs_;
  CallOptions options_;
  Profiler* profiler_;  // null: not profiled
};

}  // namespace

struct OpDispatcher::Entry {
  std::unique_ptr<OperatorImpl> impl;
  bool chosen = false;
  uint64_t calls = 0;
};

OpDispatcher::OpDispatcher(const PluginRegistry* registry, DLDevice device)
    : registry_(registry), device_(device) {}

OpDispatcher::~OpDispatcher() = default;

std::vector<std::string> OpDispatcher::Available(const std::string& op) const {
  std::vector<const Component*> found;
  std::set<std::string> seen;
  for (const Component* c : registry_->Components()) {
    if (c->kind != LLMSYS_KIND_OPERATOR || c->op != op ||
        c->device_type != device_.device_type || !seen.insert(c->id).second)
      continue;
    found.push_back(c);
  }
  std::stable_sort(found.begin(), found.end(),
                   [](const Component* a, const Component* b) {
                     return Priority(*a) > Priority(*b);
                   });
  std::vector<std::string> names;
  for (const Component* c : found) names.push_back(ImplName(*c));
  return names;
}

absl::StatusOr<const Component*> OpDispatcher::Pick(
    const std::string& op, const std::string& name,
    const std::string& where) const {
  const std::vector<std::string> available = Available(op);
  const std::string device = tensor::DeviceName(device_);
  if (name.empty()) {
    if (available.empty())
      return absl::NotFoundError(absl::StrCat(
          "no loaded plugin implements op '", op, "' for ", device,
          " (the reference plugin, reference.so, provides every standard op "
          "on the CPU; is the built-in plugin folder on the search path?)"));
    return registry_->Find(LLMSYS_KIND_OPERATOR, op + "." + available[0],
                           device_.device_type);
  }
  std::string id = name;
  if (name.rfind(op + ".", 0) != 0) id = op + "." + name;
  for (const std::string& a : available) {
    if (op + "." + a == id)
      return registry_->Find(LLMSYS_KIND_OPERATOR, id, device_.device_type);
  }
  // Not for this device, or not at all.
  for (const Component* c : registry_->FindAnyKind(id)) {
    if (c->kind == LLMSYS_KIND_OPERATOR)
      return absl::NotFoundError(absl::StrCat(
          where, ": implementation '", name, "' of op '", op, "' runs on ",
          tensor::DeviceName(
              DLDevice{static_cast<DLDeviceType>(c->device_type), 0}),
          ", this run uses ", device, "; available for ", device, ": ",
          available.empty() ? "none" : absl::StrJoin(available, ", ")));
  }
  return absl::NotFoundError(
      absl::StrCat(where, ": unknown implementation '", name, "' of op '", op,
                   "' for ", device, "; available: ",
                   available.empty() ? "none" : absl::StrJoin(available, ", "),
                   core::DidYouMean(name, available)));
}

absl::Status OpDispatcher::Configure(
    const std::map<std::string, std::string>& choices,
    const std::string& where) {
  std::vector<std::string> ops;
  for (const OpContract& c : StandardOpContracts()) ops.push_back(c.name);
  for (const auto& p : registry_->plugins()) {
    for (const OpContract& c : p->op_contracts()) ops.push_back(c.name);
  }
  for (const auto& [op, name] : choices) {
    if (registry_->FindOpContract(op) == nullptr)
      return absl::NotFoundError(absl::StrCat(
          where, ": unknown op '", op, "'", core::DidYouMean(op, ops),
          "; ops: ", absl::StrJoin(ops, ", ")));
    LLMSYS_RETURN_IF_ERROR(
        Pick(op, name, absl::StrCat(where, " ", op)).status());
  }
  choices_ = choices;
  entries_.clear();
  return absl::OkStatus();
}

absl::StatusOr<OperatorImpl*> OpDispatcher::Resolve(const std::string& op) {
  auto it = entries_.find(op);
  if (it != entries_.end()) return it->second->impl.get();
  const OpContract* contract = registry_->FindOpContract(op);
  if (contract == nullptr) {
    std::vector<std::string> ops;
    for (const OpContract& c : StandardOpContracts()) ops.push_back(c.name);
    return absl::NotFoundError(
        absl::StrCat("unknown op '", op, "'", core::DidYouMean(op, ops)));
  }
  auto choice = choices_.find(op);
  const std::string name = choice != choices_.end() ? choice->second : "";
  LLMSYS_ASSIGN_OR_RETURN(const Component* c, Pick(op, name, "[ops] " + op));
  auto entry = std::make_unique<Entry>();
  LLMSYS_ASSIGN_OR_RETURN(entry->impl, OperatorImpl::Create(*c, *contract));
  entry->chosen = !name.empty();
  OperatorImpl* impl = entry->impl.get();
  entries_[op] = std::move(entry);
  return impl;
}

absl::StatusOr<std::vector<Var>> OpDispatcher::Autocast(
    const std::string& op, const std::vector<Var>& inputs) const {
  static const std::set<std::string> kLow = {"matmul", "linear", "attention"};
  static const std::set<std::string> kFloat32 = {
      "softmax", "log_softmax", "cross_entropy", "layer_norm", "rms_norm",
      "sum",     "mean",        "exp",           "log",        "pow"};
  auto is_float = [](const Var& v) {
    return v && tensor::IsFloatDType(v->data.dtype());
  };
  DLDataType target = autocast_;
  if (kFloat32.count(op) > 0) {
    target = tensor::kF32;
  } else if (kLow.count(op) == 0) {
    // The widest float dtype among the inputs (float64 > float32 > 16-bit).
    target = {};
    for (const Var& v : inputs) {
      if (!is_float(v)) continue;
      const DLDataType t = v->data.dtype();
      if (target.bits == 0 || t.bits > target.bits) target = t;
    }
    if (target.bits == 0) return inputs;
  }
  std::vector<Var> cast = inputs;
  for (Var& v : cast) {
    // float64 stays float64, as under torch.autocast.
    if (!is_float(v) || v->data.dtype() == target ||
        v->data.dtype() == tensor::kF64)
      continue;
    LLMSYS_ASSIGN_OR_RETURN(v, autograd::Cast(v, target));
  }
  return cast;
}

absl::StatusOr<std::vector<Var>> OpDispatcher::Call(
    const std::string& op, const std::vector<Var>& raw_inputs,
    const AttrList& attrs) {
  std::vector<Var> cast;
  if (!(autocast_ == tensor::kF32)) {
    LLMSYS_ASSIGN_OR_RETURN(cast, Autocast(op, raw_inputs));
  }
  const std::vector<Var>& inputs = cast.empty() ? raw_inputs : cast;
  LLMSYS_ASSIGN_OR_RETURN(OperatorImpl * impl, Resolve(op));
  LLMSYS_ASSIGN_OR_RETURN(ParamPack attr_pack, impl->Attrs(attrs));
  auto pack = std::make_shared<const ParamPack>(std::move(attr_pack));
  std::vector<Tensor> tensors(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i]) tensors[i] = inputs[i]->data;
  }
  CallOptions options;
  options.rng = {seed_, calls_ * kCallStride};
  options.num_threads = num_threads_;
  ++calls_;
  ++entries_[op]->calls;
  std::vector<Tensor> outputs;
  if (profiler_ == nullptr) {
    LLMSYS_ASSIGN_OR_RETURN(outputs, impl->Forward(tensors, *pack, options));
  } else {
    const Profiler::Clock::time_point start = Profiler::Clock::now();
    LLMSYS_ASSIGN_OR_RETURN(outputs, impl->Forward(tensors, *pack, options));
    profiler_->RecordOp(op, impl->id(), Profiler::Pass::kForward, start,
                        Profiler::Clock::now(),
                        profiler_->tracing() ? ShapesOf(tensors) : "");
  }

  const OpContract& contract = impl->contract();
  std::shared_ptr<OpNode> node;
  if (autograd::AnyRequiresGrad(inputs)) {
    node = std::make_shared<OpNode>(impl, pack, options, profiler_);
    const bool keep_inputs =
        (impl->flags() & LLMSYS_OP_BACKWARD_NEEDS_INPUTS) != 0;
    const bool keep_outputs =
        (impl->flags() & LLMSYS_OP_BACKWARD_NEEDS_OUTPUTS) != 0;
    node->num_outputs = static_cast<uint32_t>(outputs.size());
    for (size_t i = 0; i < inputs.size(); ++i) {
      const Tensor& t = tensors[i];
      node->meta.push_back({t.defined(),
                            t.defined() ? t.shape() : tensor::Shape{},
                            t.defined() ? t.dtype() : tensor::kF32});
      node->saved_inputs.push_back(keep_inputs ? t : Tensor());
      const bool grad = inputs[i] && inputs[i]->requires_grad &&
                        tensor::IsFloatDType(t.dtype());
      node->inputs.push_back(grad ? inputs[i] : nullptr);
    }
    for (const Tensor& t : outputs)
      node->saved_outputs.push_back(keep_outputs ? t : Tensor());
  }
  std::vector<bool> differentiable;
  for (size_t i = 0; i < outputs.size(); ++i) {
    differentiable.push_back(i < contract.outputs.size() &&
                             !contract.outputs[i].aux &&
                             tensor::IsFloatDType(outputs[i].dtype()));
  }
  return autograd::MakeOutputs(std::move(outputs), node, differentiable);
}

std::vector<OpChoice> OpDispatcher::Choices() const {
  std::vector<OpChoice> out;
  for (const auto& [op, entry] : entries_) {
    const Component& c = entry->impl->component();
    out.push_back({op, c.id,
                   c.plugin != nullptr ? c.plugin->path().string() : "",
                   entry->chosen, entry->calls});
  }
  return out;
}

}  // namespace llmsys::runtime
