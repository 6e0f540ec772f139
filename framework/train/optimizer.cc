#include "framework/train/optimizer.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "framework/core/status_macros.h"

namespace llmsys::train {

absl::StatusOr<std::unique_ptr<Optimizer>> Optimizer::Create(
    const runtime::Component& component,
    const std::vector<std::pair<std::string, runtime::ParamValue>>& params,
    const std::vector<runtime::Parameter>& parameters) {
  std::unique_ptr<Optimizer> o(new Optimizer);
  o->component_ = &component;
  for (const runtime::Parameter& p : parameters)
    if (p.trainable) o->params_.push_back(p);
  const auto* c = component.As<llmsys_optimizer_t>();
  absl::StatusOr<runtime::ParamPack> pack =
      runtime::ParamPack::Make(component.params, params);
  if (!pack.ok())
    return absl::InvalidArgumentError(absl::StrCat(
        "optimizer ", component.id, ": ", pack.status().message()));
  char message[1024] = {};
  llmsys_error_t err{message, sizeof(message)};
  llmsys_status_t s = c->create(pack->c_params(), &o->instance_, &err);
  if (s != LLMSYS_STATUS_OK)
    return runtime::PluginStatus(s, component, "create", message);
  const llmsys_state_spec_t* const* specs = nullptr;
  uint32_t n = 0;
  s = c->state(o->instance_, &specs, &n, &err);
  if (s != LLMSYS_STATUS_OK)
    return runtime::PluginStatus(s, component, "state", message);
  for (const runtime::Parameter& p : o->params_) {
    for (uint32_t k = 0; k < n; ++k) {
      LLMSYS_ASSIGN_OR_RETURN(
          tensor::Tensor t,
          tensor::Tensor::Zeros(p.var->data.shape(), specs[k]->dtype,
                                p.var->data.device()));
      o->state_.push_back(std::move(t));
      o->state_names_.push_back(absl::StrCat(p.name, ".", specs[k]->name));
    }
  }
  return o;
}

Optimizer::~Optimizer() {
  if (instance_ != nullptr)
    component_->As<llmsys_optimizer_t>()->destroy(instance_);
}

absl::Status Optimizer::Step(int64_t step, double lr, int32_t num_threads) {
  const size_t n = params_.size();
  std::vector<DLTensor> p_dl(n), g_dl(n), s_dl(state_.size());
  std::vector<DLTensor*> p_ptr(n), s_ptr(state_.size());
  std::vector<const DLTensor*> g_ptr(n);
  std::vector<tensor::Tensor> zeros;
  zeros.reserve(n);
  std::vector<uint8_t> no_decay(n);
  for (size_t i = 0; i < n; ++i) {
    const autograd::Var& v = params_[i].var;
    p_dl[i] = v->data.Dl();
    p_ptr[i] = &p_dl[i];
    if (!v->grad.defined()) {
      LLMSYS_ASSIGN_OR_RETURN(
          tensor::Tensor z,
          tensor::Tensor::Zeros(v->data.shape(), v->data.dtype(),
                                v->data.device()));
      zeros.push_back(std::move(z));
      g_dl[i] = zeros.back().Dl();
    } else {
      g_dl[i] = v->grad.Dl();
    }
    g_ptr[i] = &g_dl[i];
    no_decay[i] = (params_[i].flags & LLMSYS_PARAMETER_NO_DECAY) ? 1 : 0;
  }
  for (size_t i = 0; i < state_.size(); ++i) {
    s_dl[i] = state_[i].Dl();
    s_ptr[i] = &s_dl[i];
  }
  const DLDevice device =
      params_.empty() ? tensor::kCpu : params_[0].var->data.device();
  LLMSYS_ASSIGN_OR_RETURN(
      llmsys_call_context_t ctx,
      runtime::DeviceCallContext(*component_, device, num_threads));
  llmsys_optimizer_step_t args;
  std::memset(&args, 0, sizeof(args));
  args.struct_size = sizeof(args);
  args.ctx = &ctx;
  args.num_params = static_cast<uint32_t>(n);
  args.params = p_ptr.data();
  args.grads = g_ptr.data();
  args.state = s_ptr.data();
  args.num_state = n == 0 ? 0 : static_cast<uint32_t>(state_.size() / n);
  args.no_decay = no_decay.data();
  args.step = step;
  args.lr = lr;
  char message[1024] = {};
  llmsys_error_t err{message, sizeof(message)};
  llmsys_status_t s =
      component_->As<llmsys_optimizer_t>()->step(instance_, &args, &err);
  if (s != LLMSYS_STATUS_OK)
    return runtime::PluginStatus(s, *component_, "step", message);
  return absl::OkStatus();
}

std::vector<std::pair<std::string, tensor::Tensor>> Optimizer::State() const {
  std::vector<std::pair<std::string, tensor::Tensor>> out;
  for (size_t i = 0; i < state_.size(); ++i)
    out.emplace_back(state_names_[i], state_[i]);
  return out;
}

}  // namespace llmsys::train
