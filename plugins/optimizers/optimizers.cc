// plugins/optimizers/optimizers.cc — the built-in optimizers (plugin
// "llmsys.optimizers").
//
// sgd: stochastic gradient descent with momentum, dampening, Nesterov
// momentum, L2 weight decay and maximize, with the semantics of PyTorch 2.x
// torch.optim.SGD (its single-tensor path). For each parameter p with
// gradient g, in p's dtype:
//
//   g = maximize ? -g : g
//   if weight_decay != 0 and p is not in no_decay:  g = g + weight_decay * p
//   if momentum != 0:
//     buf = (step == 1) ? g : momentum * buf + (1 - dampening) * g
//     g = nesterov ? g + momentum * buf : buf
//   p = p - lr * g
//
// Like PyTorch, the first step copies the (decayed) gradient into the
// momentum buffer instead of dampening it. The buffer is the one state
// tensor "momentum_buffer" (float32, shaped like the parameter) when
// momentum > 0; with momentum == 0 the optimizer has no state. Because the
// host restores `step` and the buffer on resume, a resumed run continues
// exactly where it stopped.
//
// Parameters and gradients: float32 or float64 (the same dtype for a
// parameter and its gradient), compact row-major, on the CPU. float64
// parameters are updated in float64, but their momentum buffer is stored in
// float32 (the one dtype the state declares), so it carries float32
// rounding from step to step. Every tensor
// is checked before any is updated, so a rejected step changes nothing.
//
// Thread-safety: an instance is used by one thread at a time (optimizer.h).
// Ownership: tensors are borrowed for the call and updated in place.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "llmsys/sdk.hpp"

namespace llmsys::plugins {
namespace {

using sdk::Require;

bool IsF32(DLDataType t) { return llmsys_dtype_equal(t, LLMSYS_DTYPE_F32); }
bool IsF64(DLDataType t) { return llmsys_dtype_equal(t, LLMSYS_DTYPE_F64); }

// "float32", "int64", ... for messages.
std::string DtypeString(DLDataType t) {
  std::string s;
  switch (t.code) {
    case kDLFloat:
      s = "float";
      break;
    case kDLInt:
      s = "int";
      break;
    case kDLUInt:
      s = "uint";
      break;
    case kDLBfloat:
      s = "bfloat";
      break;
    default:
      s = "dtype code " + std::to_string(t.code) + " bits ";
      break;
  }
  s += std::to_string(t.bits);
  if (t.lanes != 1) s += "x" + std::to_string(t.lanes);
  return s;
}

bool SameShape(const DLTensor* a, const DLTensor* b) {
  if (a->ndim != b->ndim) return false;
  for (int32_t i = 0; i < a->ndim; ++i) {
    if (a->shape[i] != b->shape[i]) return false;
  }
  return true;
}

class Sgd : public sdk::Optimizer {
 public:
  static sdk::Info Describe() {
    using sdk::ParamSpec;
    sdk::Info info;
    info.id = "sgd";
    info.version = "1.0.0";
    info.description =
        "Stochastic gradient descent with momentum, Nesterov momentum and "
        "weight decay (torch.optim.SGD semantics)";
    info.device_type = kDLCPU;
    info.params.push_back(
        ParamSpec::Float("momentum", 0.0,
                         "momentum factor (0 disables momentum and its state)")
            .Range(0.0, 1.0));
    info.params.push_back(
        ParamSpec::Float("dampening", 0.0,
                         "dampening for momentum: the new gradient is scaled "
                         "by 1 - dampening")
            .Range(0.0, 1.0));
    info.params.push_back(ParamSpec::Bool(
        "nesterov", false,
        "Nesterov momentum (needs momentum > 0 and dampening 0)"));
    info.params.push_back(
        ParamSpec::Float("weight_decay", 0.0,
                         "L2 penalty added to the gradient as weight_decay * "
                         "param (not for no-decay parameters)")
            .Min(0.0));
    info.params.push_back(ParamSpec::Bool(
        "maximize", false, "maximize the objective instead of minimizing it"));
    return info;
  }

  explicit Sgd(const sdk::Params& p)
      : momentum_(p.Float("momentum")),
        dampening_(p.Float("dampening")),
        nesterov_(p.Bool("nesterov")),
        weight_decay_(p.Float("weight_decay")),
        maximize_(p.Bool("maximize")) {
    // The host validates ranges before create(); these checks keep the
    // optimizer safe when it is driven directly through the C ABI.
    Require(
        std::isfinite(momentum_) && momentum_ >= 0.0 && momentum_ <= 1.0,
        "sgd: momentum must be in [0, 1], got " + std::to_string(momentum_));
    Require(
        std::isfinite(dampening_) && dampening_ >= 0.0 && dampening_ <= 1.0,
        "sgd: dampening must be in [0, 1], got " + std::to_string(dampening_));
    Require(
        std::isfinite(weight_decay_) && weight_decay_ >= 0.0,
        "sgd: weight_decay must be >= 0, got " + std::to_string(weight_decay_));
    Require(!nesterov_ || (momentum_ > 0.0 && dampening_ == 0.0),
            "sgd: nesterov = true requires momentum > 0 and dampening = 0 "
            "(got momentum " +
                std::to_string(momentum_) + ", dampening " +
                std::to_string(dampening_) +
                "); set nesterov = false or change them");
  }

  std::vector<sdk::StateSpec> State() const override {
    if (momentum_ == 0.0) return {};
    return {{.name = "momentum_buffer", .dtype = LLMSYS_DTYPE_F32}};
  }

  void Step(const llmsys_optimizer_step_t& args) override {
    Validate(args);
    const uint32_t num_state = HasBuffer() ? 1 : 0;
    for (uint32_t i = 0; i < args.num_params; ++i) {
      const bool decay = weight_decay_ != 0.0 &&
                         (args.no_decay == nullptr || args.no_decay[i] == 0);
      DLTensor* buf = num_state ? args.state[i * num_state] : nullptr;
      if (IsF32(args.params[i]->dtype)) {
        Update<float>(args.params[i], args.grads[i], buf, decay, args.step,
                      args.lr);
      } else {
        Update<double>(args.params[i], args.grads[i], buf, decay, args.step,
                       args.lr);
      }
    }
  }

 private:
  bool HasBuffer() const { return momentum_ != 0.0; }

  // Checks every tensor before any is touched.
  void Validate(const llmsys_optimizer_step_t& args) const {
    Require(args.struct_size >=
                offsetof(llmsys_optimizer_step_t, lr) + sizeof(args.lr),
            "sgd: the step arguments are too small (struct_size " +
                std::to_string(args.struct_size) + ")");
    Require(args.step >= 1,
            "sgd: step must be >= 1 (1 for the first update), got " +
                std::to_string(args.step));
    Require(std::isfinite(args.lr) && args.lr >= 0.0,
            "sgd: the learning rate must be finite and >= 0, got " +
                std::to_string(args.lr));
    const uint32_t num_state = HasBuffer() ? 1 : 0;
    Require(args.num_state == num_state,
            "sgd: expected " + std::to_string(num_state) +
                " state tensor(s) per parameter, got " +
                std::to_string(args.num_state));
    if (args.num_params == 0) return;
    Require(args.params != nullptr && args.grads != nullptr,
            "sgd: params or grads is NULL");
    Require(num_state == 0 || args.state != nullptr, "sgd: state is NULL");
    for (uint32_t i = 0; i < args.num_params; ++i) {
      const std::string where = "sgd: parameter " + std::to_string(i);
      const DLTensor* p = args.params[i];
      const DLTensor* g = args.grads[i];
      Require(p != nullptr, where + " is NULL");
      Require(g != nullptr, where + ": its gradient is NULL");
      Require(
          p->device.device_type == kDLCPU && g->device.device_type == kDLCPU,
          where + ": parameter and gradient must be on the CPU");
      Require(IsF32(p->dtype) || IsF64(p->dtype),
              where + ": dtype " + DtypeString(p->dtype) +
                  " is not supported (float32 or float64)");
      Require(llmsys_dtype_equal(p->dtype, g->dtype),
              where + ": gradient dtype " + DtypeString(g->dtype) +
                  " differs from the parameter's " + DtypeString(p->dtype));
      Require(SameShape(p, g),
              where + ": gradient shape " + sdk::ShapeString(g) +
                  " differs from the parameter's " + sdk::ShapeString(p));
      Require(llmsys_tensor_is_contiguous(p) && llmsys_tensor_is_contiguous(g),
              where + ": parameter and gradient must be contiguous");
      if (num_state == 0) continue;
      const DLTensor* b = args.state[i * num_state];
      Require(b != nullptr, where + ": its momentum_buffer is NULL");
      Require(b->device.device_type == kDLCPU,
              where + ": momentum_buffer must be on the CPU");
      Require(IsF32(b->dtype), where + ": momentum_buffer dtype " +
                                   DtypeString(b->dtype) +
                                   " is not the declared float32");
      Require(SameShape(p, b),
              where + ": momentum_buffer shape " + sdk::ShapeString(b) +
                  " differs from the parameter's " + sdk::ShapeString(p));
      Require(llmsys_tensor_is_contiguous(b),
              where + ": momentum_buffer must be contiguous");
    }
  }

  // One parameter, computed in T (the parameter's dtype) as PyTorch does;
  // the buffer is stored as float32.
  template <class T>
  void Update(DLTensor* param, const DLTensor* grad, DLTensor* buffer,
              bool decay, int64_t step, double lr) const {
    const int64_t n = llmsys_tensor_numel(param);
    T* p = sdk::Data<T>(param);
    const T* g = sdk::Data<const T>(grad);
    float* buf = buffer != nullptr ? sdk::Data<float>(buffer) : nullptr;
    const T wd = static_cast<T>(weight_decay_);
    const T momentum = static_cast<T>(momentum_);
    const T keep = static_cast<T>(1.0 - dampening_);
    const T neg_lr = static_cast<T>(-lr);
    for (int64_t k = 0; k < n; ++k) {
      T d = maximize_ ? -g[k] : g[k];
      if (decay) d += wd * p[k];
      if (buf != nullptr) {
        T b = step == 1 ? d : momentum * static_cast<T>(buf[k]) + keep * d;
        buf[k] = static_cast<float>(b);
        d = nesterov_ ? d + momentum * b : b;
      }
      p[k] += neg_lr * d;
    }
  }

  double momentum_;
  double dampening_;
  bool nesterov_;
  double weight_decay_;
  bool maximize_;
};

}  // namespace
}  // namespace llmsys::plugins

LLMSYS_PLUGIN("llmsys.optimizers", "0.1.0",
              "Built-in optimizers: sgd (torch.optim.SGD semantics)", "MIT") {
  registry.Add<llmsys::plugins::Sgd>();
}
