// plugins/optimizers/optimizers.cc — the built-in optimizers (plugin
// "llmsys.optimizers"): sgd, adam, adamw and lion, with the update rules of
// torch.optim (PyTorch 1.13 and 2.x, single-tensor path) and, for lion, of
// Chen et al. 2023 ("Symbolic Discovery of Optimization Algorithms").
//
// For each parameter p with gradient g, learning rate lr (given by the host
// for every step, after its schedule) and step t (1 for the first update);
// `decay` is false for the parameters the host's no_decay mask excludes and
// when weight_decay is 0:
//
// sgd (torch.optim.SGD), state "momentum_buffer" when momentum > 0:
//   g = maximize ? -g : g
//   if decay:          g = g + weight_decay * p
//   if momentum != 0:  buf = (t == 1) ? g : momentum * buf + (1 - dampening) *
//   g
//                      g = nesterov ? g + momentum * buf : buf
//   p = p - lr * g
//
// adam (torch.optim.Adam), state "exp_avg", "exp_avg_sq" and, with amsgrad,
// "max_exp_avg_sq":
//   if decay:  g = g + weight_decay * p                    (L2 in the gradient)
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g * g
//   if amsgrad:  v_max = max(v_max, v), and v_max replaces v below
//   p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
//
// adamw (torch.optim.AdamW): adam with decoupled weight decay instead of L2:
//   if decay:  p = p * (1 - lr * weight_decay)   (before the adam update)
//
// lion, state "exp_avg" (m):
//   c = beta1 * m + (1 - beta1) * g
//   p = p - lr * (sign(c) + weight_decay * p)     (weight_decay * p only if
//                                                  decay; sign(0) = 0)
//   m = beta2 * m + (1 - beta2) * g
//
// State starts zero-filled (the host allocates it so and checkpoints it).
// That is already the right start for adam, adamw and lion; sgd's first
// momentum step instead copies the gradient into the buffer, as PyTorch does
// when it creates the buffer, by the rule "t == 1 means a fresh buffer" (so
// dampening does not scale the first gradient). Because the host restores t
// and the state on resume, a resumed run continues exactly where it stopped.
//
// Dtypes: parameters and gradients are float32 or float64 (the same dtype
// for a parameter and its gradient), compact row-major, on the CPU. Every
// optimizer has a parameter state_dtype, "float32" (the default, as for
// PyTorch's float32 training) or "float64", the dtype of all its state
// tensors (the ABI declares one dtype per state tensor, before any parameter
// is seen). Arithmetic is done in the wider of the parameter's and the
// state's dtype; float64 parameters with float64 state therefore follow
// torch.optim on float64 tensors to rounding (tests/torch/
// optimizers_vs_torch.*), while with float32 state they carry float32
// rounding of the state from step to step. Scalar factors (bias
// corrections, step sizes) are computed in double, as PyTorch does in
// Python. Every tensor is checked before any is updated, so a rejected step
// changes nothing.
//
// Thread-safety: an instance is used by one thread at a time (optimizer.h).
// Ownership: tensors are borrowed for the call and updated in place.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "llmsys/sdk.hpp"

namespace llmsys::plugins {
namespace {

using sdk::ParamSpec;
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

// The parameter every optimizer shares.
ParamSpec StateDtypeParam() {
  return ParamSpec::String("state_dtype", "float32",
                           "dtype of the optimizer state tensors (float64 "
                           "keeps float64 training exact)")
      .Choices("float32|float64");
}

// What all four optimizers share: the state dtype, the checks of a step's
// arguments and the dispatch on dtypes.
class OptimizerBase : public sdk::Optimizer {
 protected:
  OptimizerBase(std::string id, const sdk::Params& p) : id_(std::move(id)) {
    const std::string dtype = p.String("state_dtype");
    if (dtype == "float32") {
      state_dtype_ = LLMSYS_DTYPE_F32;
    } else if (dtype == "float64") {
      state_dtype_ = LLMSYS_DTYPE_F64;
    } else {
      sdk::Fail(LLMSYS_STATUS_INVALID_ARGUMENT,
                id_ + ": state_dtype must be float32 or float64, got '" +
                    dtype + "'");
    }
  }

  // Throws unless lo <= v <= hi (and v is finite).
  void RequireIn(const char* name, double v, double lo, double hi) const {
    Require(std::isfinite(v) && v >= lo && v <= hi,
            id_ + ": " + name + " must be in [" + Num(lo) + ", " + Num(hi) +
                "], got " + Num(v));
  }
  // Throws unless 0 <= v < 1 (torch.optim's rule for Adam's betas).
  void RequireBeta(const char* name, double v) const {
    Require(std::isfinite(v) && v >= 0.0 && v < 1.0,
            id_ + ": " + name + " must be in [0, 1), got " + Num(v));
  }
  void RequireMin(const char* name, double v, double lo) const {
    Require(std::isfinite(v) && v >= lo,
            id_ + ": " + name + " must be >= " + Num(lo) + ", got " + Num(v));
  }

  // The declared state, all of dtype state_dtype_.
  std::vector<sdk::StateSpec> Specs(
      std::initializer_list<const char*> names) const {
    std::vector<sdk::StateSpec> specs;
    for (const char* n : names) {
      specs.push_back({.name = n, .dtype = state_dtype_});
    }
    return specs;
  }

  // Checks every tensor of the step before any is touched: `state` is the
  // declared state, in order.
  void Validate(const llmsys_optimizer_step_t& args,
                const std::vector<sdk::StateSpec>& state) const {
    Require(args.struct_size >=
                offsetof(llmsys_optimizer_step_t, lr) + sizeof(args.lr),
            id_ + ": the step arguments are too small (struct_size " +
                std::to_string(args.struct_size) + ")");
    Require(args.step >= 1, id_ +
                                ": step must be >= 1 (1 for the first "
                                "update), got " +
                                std::to_string(args.step));
    Require(std::isfinite(args.lr) && args.lr >= 0.0,
            id_ + ": the learning rate must be finite and >= 0, got " +
                Num(args.lr));
    const uint32_t num_state = static_cast<uint32_t>(state.size());
    Require(args.num_state == num_state,
            id_ + ": expected " + std::to_string(num_state) +
                " state tensor(s) per parameter, got " +
                std::to_string(args.num_state));
    if (args.num_params == 0) return;
    Require(args.params != nullptr && args.grads != nullptr,
            id_ + ": params or grads is NULL");
    Require(num_state == 0 || args.state != nullptr, id_ + ": state is NULL");
    for (uint32_t i = 0; i < args.num_params; ++i) {
      const std::string where = id_ + ": parameter " + std::to_string(i);
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
      for (uint32_t s = 0; s < num_state; ++s) {
        const std::string& name = state[s].name;
        const DLTensor* b = args.state[i * num_state + s];
        Require(b != nullptr, where + ": its " + name + " is NULL");
        Require(b->device.device_type == kDLCPU,
                where + ": " + name + " must be on the CPU");
        Require(llmsys_dtype_equal(b->dtype, state_dtype_),
                where + ": " + name + " dtype " + DtypeString(b->dtype) +
                    " is not the declared " + DtypeString(state_dtype_));
        Require(SameShape(p, b),
                where + ": " + name + " shape " + sdk::ShapeString(b) +
                    " differs from the parameter's " + sdk::ShapeString(p));
        Require(llmsys_tensor_is_contiguous(b),
                where + ": " + name + " must be contiguous");
      }
    }
  }

  // Whether parameter i gets weight decay.
  static bool Decays(const llmsys_optimizer_step_t& args, uint32_t i,
                     double weight_decay) {
    return weight_decay != 0.0 &&
           (args.no_decay == nullptr || args.no_decay[i] == 0);
  }

  // Calls f.template operator()<T, S>(i) for each parameter i, with T its
  // element type and S the state's.
  template <class F>
  void ForEachParam(const llmsys_optimizer_step_t& args, F&& f) const {
    const bool f64_state = IsF64(state_dtype_);
    for (uint32_t i = 0; i < args.num_params; ++i) {
      const bool f64 = IsF64(args.params[i]->dtype);
      if (f64 && f64_state) {
        f.template operator()<double, double>(i);
      } else if (f64) {
        f.template operator()<double, float>(i);
      } else if (f64_state) {
        f.template operator()<float, double>(i);
      } else {
        f.template operator()<float, float>(i);
      }
    }
  }

  // State tensor s of parameter i, as S*.
  template <class S>
  static S* StateData(const llmsys_optimizer_step_t& args, uint32_t i,
                      uint32_t s) {
    return sdk::Data<S>(args.state[i * args.num_state + s]);
  }

  static std::string Num(double v) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%g", v);
    return buf;
  }

  const std::string id_;
  DLDataType state_dtype_ = LLMSYS_DTYPE_F32;
};

// The wider of the parameter's and the state's element type.
template <class T, class S>
using Compute = std::conditional_t<(sizeof(T) > sizeof(S)), T, S>;

// ---------------------------------------------------------------------------

class Sgd : public OptimizerBase {
 public:
  static sdk::Info Describe() {
    sdk::Info info;
    info.id = "sgd";
    info.version = "1.1.0";
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
    info.params.push_back(StateDtypeParam());
    return info;
  }

  explicit Sgd(const sdk::Params& p)
      : OptimizerBase("sgd", p),
        momentum_(p.Float("momentum")),
        dampening_(p.Float("dampening")),
        nesterov_(p.Bool("nesterov")),
        weight_decay_(p.Float("weight_decay")),
        maximize_(p.Bool("maximize")) {
    // The host validates ranges before create(); these checks keep the
    // optimizer safe when it is driven directly through the C ABI.
    RequireIn("momentum", momentum_, 0.0, 1.0);
    RequireIn("dampening", dampening_, 0.0, 1.0);
    RequireMin("weight_decay", weight_decay_, 0.0);
    Require(!nesterov_ || (momentum_ > 0.0 && dampening_ == 0.0),
            "sgd: nesterov = true requires momentum > 0 and dampening = 0 "
            "(got momentum " +
                Num(momentum_) + ", dampening " + Num(dampening_) +
                "); set nesterov = false or change them");
  }

  std::vector<sdk::StateSpec> State() const override {
    if (momentum_ == 0.0) return {};
    return Specs({"momentum_buffer"});
  }

  void Step(const llmsys_optimizer_step_t& args) override {
    Validate(args, State());
    ForEachParam(args, [&]<class T, class S>(uint32_t i) {
      using C = Compute<T, S>;
      T* p = sdk::Data<T>(args.params[i]);
      const T* g = sdk::Data<const T>(args.grads[i]);
      S* buf = momentum_ != 0.0 ? StateData<S>(args, i, 0) : nullptr;
      const int64_t n = llmsys_tensor_numel(args.params[i]);
      const bool decay = Decays(args, i, weight_decay_);
      const C wd = static_cast<C>(weight_decay_);
      const C momentum = static_cast<C>(momentum_);
      const C keep = static_cast<C>(1.0 - dampening_);
      const C neg_lr = static_cast<C>(-args.lr);
      const bool fresh = args.step == 1;
      for (int64_t k = 0; k < n; ++k) {
        const C pk = static_cast<C>(p[k]);
        C d = static_cast<C>(g[k]);
        if (maximize_) d = -d;
        if (decay) d = d + wd * pk;
        if (buf != nullptr) {
          const C b = fresh ? d : static_cast<C>(buf[k]) * momentum + keep * d;
          buf[k] = static_cast<S>(b);
          d = nesterov_ ? d + momentum * b : b;
        }
        p[k] = static_cast<T>(pk + neg_lr * d);
      }
    });
  }

 private:
  double momentum_;
  double dampening_;
  bool nesterov_;
  double weight_decay_;
  bool maximize_;
};

// ---------------------------------------------------------------------------

// Elements per thread below which an update stays on one thread.
constexpr int64_t kGrain = 1 << 14;

// One Adam/AdamW update of elements [k0, k1) of one parameter: the fused
// loop every thread runs on its range (compiled per vector ISA).
template <class T, class S, class C>
struct AdamUpdate {
  T* p;
  const T* g;
  S* m;
  S* v;
  S* v_max;  // amsgrad's running maximum, or nullptr
  bool l2, shrink;
  C wd, shrink_by, beta1, beta2, one_minus_beta1, one_minus_beta2, bc2_sqrt,
      eps, neg_step_size;
};

template <class T, class S, class C>
LLMSYS_MULTIVERSION void AdamKernel(const AdamUpdate<T, S, C>& u, int64_t k0,
                                    int64_t k1) {
  // Locals, so the stores below cannot change them and the loop vectorizes.
  T* __restrict p = u.p;
  const T* __restrict g = u.g;
  S* __restrict m = u.m;
  S* __restrict v = u.v;
  S* __restrict v_max = u.v_max;
  const C shrink_by = u.shrink ? u.shrink_by : C(1);
  const C wd = u.l2 ? u.wd : C(0);
  const C beta1 = u.beta1, beta2 = u.beta2;
  const C one_minus_beta1 = u.one_minus_beta1,
          one_minus_beta2 = u.one_minus_beta2;
  const C bc2_sqrt = u.bc2_sqrt, eps = u.eps;
  const C neg_step_size = u.neg_step_size;
  for (int64_t k = k0; k < k1; ++k) {
    const C pk = static_cast<C>(p[k]) * shrink_by;
    const C gk = static_cast<C>(g[k]) + wd * static_cast<C>(p[k]);
    const C mk = static_cast<C>(m[k]) * beta1 + one_minus_beta1 * gk;
    C vk = static_cast<C>(v[k]) * beta2 + one_minus_beta2 * gk * gk;
    m[k] = static_cast<S>(mk);
    v[k] = static_cast<S>(vk);
    if (v_max != nullptr) {
      vk = std::max(static_cast<C>(v_max[k]), vk);
      v_max[k] = static_cast<S>(vk);
    }
    const C denom = std::sqrt(vk) / bc2_sqrt + eps;
    p[k] = static_cast<T>(pk + neg_step_size * mk / denom);
  }
}

// adam and adamw: the same update, with L2 in the gradient (adam) or
// decoupled weight decay (adamw).
class AdamBase : public OptimizerBase {
 public:
  std::vector<sdk::StateSpec> State() const override {
    if (amsgrad_) return Specs({"exp_avg", "exp_avg_sq", "max_exp_avg_sq"});
    return Specs({"exp_avg", "exp_avg_sq"});
  }

  void Step(const llmsys_optimizer_step_t& args) override {
    Validate(args, State());
    const double t = static_cast<double>(args.step);
    const double bias_correction1 = 1.0 - std::pow(beta1_, t);
    const double bias_correction2 = 1.0 - std::pow(beta2_, t);
    const double step_size = args.lr / bias_correction1;
    const double bias_correction2_sqrt = std::sqrt(bias_correction2);
    ForEachParam(args, [&]<class T, class S>(uint32_t i) {
      using C = Compute<T, S>;
      AdamUpdate<T, S, C> u;
      u.p = sdk::Data<T>(args.params[i]);
      u.g = sdk::Data<const T>(args.grads[i]);
      u.m = StateData<S>(args, i, 0);
      u.v = StateData<S>(args, i, 1);
      u.v_max = amsgrad_ ? StateData<S>(args, i, 2) : nullptr;
      const bool decay = Decays(args, i, weight_decay_);
      u.l2 = decay && !decoupled_;
      u.shrink = decay && decoupled_;
      u.wd = static_cast<C>(weight_decay_);
      u.shrink_by = static_cast<C>(1.0 - args.lr * weight_decay_);
      u.beta1 = static_cast<C>(beta1_);
      u.beta2 = static_cast<C>(beta2_);
      u.one_minus_beta1 = static_cast<C>(1.0 - beta1_);
      u.one_minus_beta2 = static_cast<C>(1.0 - beta2_);
      u.bc2_sqrt = static_cast<C>(bias_correction2_sqrt);
      u.eps = static_cast<C>(eps_);
      u.neg_step_size = static_cast<C>(-step_size);
      // Elementwise, so any split gives the same bits.
      sdk::ParallelRange(
          args.ctx, llmsys_tensor_numel(args.params[i]), kGrain,
          [&](int64_t k0, int64_t k1) { AdamKernel(u, k0, k1); });
    });
  }

 protected:
  static void AddParams(sdk::Info* info, double default_weight_decay,
                        const char* weight_decay_doc) {
    info->device_type = kDLCPU;
    info->params.push_back(
        ParamSpec::Float("beta1", 0.9,
                         "decay rate of the first moment (exp_avg), < 1")
            .Range(0.0, 1.0));
    info->params.push_back(
        ParamSpec::Float("beta2", 0.999,
                         "decay rate of the second moment (exp_avg_sq), < 1")
            .Range(0.0, 1.0));
    info->params.push_back(
        ParamSpec::Float("eps", 1e-8,
                         "added to the denominator for numerical stability")
            .Range(0.0, 1.0));
    info->params.push_back(
        ParamSpec::Float("weight_decay", default_weight_decay, weight_decay_doc)
            .Min(0.0));
    info->params.push_back(
        ParamSpec::Bool("amsgrad", false,
                        "AMSGrad: normalize by the running maximum of "
                        "exp_avg_sq (adds the state max_exp_avg_sq)"));
    info->params.push_back(StateDtypeParam());
  }

  AdamBase(std::string id, const sdk::Params& p, bool decoupled)
      : OptimizerBase(std::move(id), p),
        beta1_(p.Float("beta1")),
        beta2_(p.Float("beta2")),
        eps_(p.Float("eps")),
        weight_decay_(p.Float("weight_decay")),
        amsgrad_(p.Bool("amsgrad")),
        decoupled_(decoupled) {
    RequireBeta("beta1", beta1_);
    RequireBeta("beta2", beta2_);
    RequireIn("eps", eps_, 0.0, 1.0);
    RequireMin("weight_decay", weight_decay_, 0.0);
  }

 private:
  double beta1_;
  double beta2_;
  double eps_;
  double weight_decay_;
  bool amsgrad_;
  bool decoupled_;
};

class Adam : public AdamBase {
 public:
  static sdk::Info Describe() {
    sdk::Info info;
    info.id = "adam";
    info.version = "1.0.0";
    info.description =
        "Adam with L2 weight decay in the gradient and optional AMSGrad "
        "(torch.optim.Adam semantics)";
    AddParams(&info, 0.0,
              "L2 penalty added to the gradient as weight_decay * param (not "
              "for no-decay parameters)");
    return info;
  }
  explicit Adam(const sdk::Params& p) : AdamBase("adam", p, false) {}
};

class AdamW : public AdamBase {
 public:
  static sdk::Info Describe() {
    sdk::Info info;
    info.id = "adamw";
    info.version = "1.0.0";
    info.description =
        "Adam with decoupled weight decay and optional AMSGrad "
        "(torch.optim.AdamW semantics)";
    AddParams(&info, 0.01,
              "decoupled weight decay: param *= 1 - lr * weight_decay before "
              "the update (not for no-decay parameters)");
    return info;
  }
  explicit AdamW(const sdk::Params& p) : AdamBase("adamw", p, true) {}
};

// ---------------------------------------------------------------------------

class Lion : public OptimizerBase {
 public:
  static sdk::Info Describe() {
    sdk::Info info;
    info.id = "lion";
    info.version = "1.0.0";
    info.description =
        "Lion: sign of an interpolated momentum, with decoupled weight decay "
        "(Chen et al. 2023)";
    info.device_type = kDLCPU;
    info.params.push_back(
        ParamSpec::Float("beta1", 0.9,
                         "interpolation between momentum and gradient for "
                         "the update direction")
            .Range(0.0, 1.0));
    info.params.push_back(
        ParamSpec::Float("beta2", 0.99, "decay rate of the momentum (exp_avg)")
            .Range(0.0, 1.0));
    info.params.push_back(
        ParamSpec::Float("weight_decay", 0.0,
                         "decoupled weight decay: the update adds "
                         "weight_decay * param (not for no-decay parameters)")
            .Min(0.0));
    info.params.push_back(StateDtypeParam());
    return info;
  }

  explicit Lion(const sdk::Params& p)
      : OptimizerBase("lion", p),
        beta1_(p.Float("beta1")),
        beta2_(p.Float("beta2")),
        weight_decay_(p.Float("weight_decay")) {
    RequireIn("beta1", beta1_, 0.0, 1.0);
    RequireIn("beta2", beta2_, 0.0, 1.0);
    RequireMin("weight_decay", weight_decay_, 0.0);
  }

  std::vector<sdk::StateSpec> State() const override {
    return Specs({"exp_avg"});
  }

  void Step(const llmsys_optimizer_step_t& args) override {
    Validate(args, State());
    ForEachParam(args, [&]<class T, class S>(uint32_t i) {
      using C = Compute<T, S>;
      T* p = sdk::Data<T>(args.params[i]);
      const T* g = sdk::Data<const T>(args.grads[i]);
      S* m = StateData<S>(args, i, 0);
      const int64_t n = llmsys_tensor_numel(args.params[i]);
      const C wd =
          static_cast<C>(Decays(args, i, weight_decay_) ? weight_decay_ : 0.0);
      const C lr = static_cast<C>(args.lr);
      const C beta1 = static_cast<C>(beta1_);
      const C beta2 = static_cast<C>(beta2_);
      const C one_minus_beta1 = static_cast<C>(1.0 - beta1_);
      const C one_minus_beta2 = static_cast<C>(1.0 - beta2_);
      for (int64_t k = 0; k < n; ++k) {
        const C pk = static_cast<C>(p[k]);
        const C gk = static_cast<C>(g[k]);
        const C mk = static_cast<C>(m[k]);
        const C c = beta1 * mk + one_minus_beta1 * gk;
        const C sign = static_cast<C>((c > C(0)) - (c < C(0)));
        p[k] = static_cast<T>(pk - lr * (sign + wd * pk));
        m[k] = static_cast<S>(beta2 * mk + one_minus_beta2 * gk);
      }
    });
  }

 private:
  double beta1_;
  double beta2_;
  double weight_decay_;
};

}  // namespace
}  // namespace llmsys::plugins

LLMSYS_PLUGIN("llmsys.optimizers", "0.2.0",
              "Built-in optimizers: sgd, adam, adamw (torch.optim semantics) "
              "and lion",
              "MIT") {
  registry.Add<llmsys::plugins::Sgd>();
  registry.Add<llmsys::plugins::Adam>();
  registry.Add<llmsys::plugins::AdamW>();
  registry.Add<llmsys::plugins::Lion>();
}
