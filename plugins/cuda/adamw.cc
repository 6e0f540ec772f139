// adamw on CUDA: torch.optim.AdamW's rule with the parameters, state names
// and defaults of the CPU adamw (plugins/optimizers/optimizers.cc), under
// the same id, so an experiment's `optimizer = "adamw"` runs this one when
// its parameters live on a GPU. The update is fused (cuda/adamw.{h,cu}):
// one kernel launch per kAdamWTensorsPerLaunch parameters of one dtype.
//
// Dtypes: parameters and gradients float32, bfloat16, float16 or float64
// (the same for a parameter and its gradient), compact, on CUDA; the state
// is state_dtype (float32 by default, as for mixed-precision training:
// bfloat16 parameters keep float32 moments and are rounded once per step;
// or float64). Every tensor is checked before any is updated, so a
// rejected step changes nothing; the update itself never reads tensor
// memory on the host and never synchronizes.
//
// Thread-safety: an instance is used by one thread at a time (optimizer.h).
// Ownership: tensors are borrowed for the call and updated in place.
#include "cuda/adamw.h"

#include <cmath>
#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

#include "plugins/cuda/common.h"

namespace llmsys::cuda {
namespace {

using sdk::ParamSpec;
using sdk::Require;

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", v);
  return buf;
}

bool SameShape(const DLTensor* a, const DLTensor* b) {
  if (a->ndim != b->ndim) return false;
  for (int32_t i = 0; i < a->ndim; ++i)
    if (a->shape[i] != b->shape[i]) return false;
  return true;
}

// The parameter dtypes the kernel takes, as launcher tags.
bool ParamDType(DLDataType t, DType* out) {
  if (t.lanes != 1) return false;
  if (t.code == kDLFloat && t.bits == 32)
    *out = DType::kF32;
  else if (t.code == kDLFloat && t.bits == 64)
    *out = DType::kF64;
  else if (t.code == kDLBfloat && t.bits == 16)
    *out = DType::kBF16;
  else if (t.code == kDLFloat && t.bits == 16)
    *out = DType::kF16;
  else
    return false;
  return true;
}

class AdamW : public sdk::Optimizer {
 public:
  static sdk::Info Describe() {
    sdk::Info info;
    info.id = "adamw";
    info.version = "1.0.0";
    info.description =
        "Adam with decoupled weight decay and optional AMSGrad "
        "(torch.optim.AdamW semantics), fused on CUDA: one kernel launch "
        "for many parameters; bfloat16/float16 parameters keep float32 state";
    info.device_type = kDLCUDA;
    info.params.push_back(
        ParamSpec::Float("beta1", 0.9,
                         "decay rate of the first moment (exp_avg), < 1")
            .Range(0.0, 1.0));
    info.params.push_back(
        ParamSpec::Float("beta2", 0.999,
                         "decay rate of the second moment (exp_avg_sq), < 1")
            .Range(0.0, 1.0));
    info.params.push_back(
        ParamSpec::Float("eps", 1e-8,
                         "added to the denominator for numerical stability")
            .Range(0.0, 1.0));
    info.params.push_back(
        ParamSpec::Float("weight_decay", 0.01,
                         "decoupled weight decay: param *= 1 - lr * "
                         "weight_decay before the update (not for no-decay "
                         "parameters)")
            .Min(0.0));
    info.params.push_back(
        ParamSpec::Bool("amsgrad", false,
                        "AMSGrad: normalize by the running maximum of "
                        "exp_avg_sq (adds the state max_exp_avg_sq)"));
    info.params.push_back(
        ParamSpec::String("state_dtype", "float32",
                          "dtype of the optimizer state tensors (float64 "
                          "keeps float64 training exact)")
            .Choices("float32|float64"));
    return info;
  }

  explicit AdamW(const sdk::Params& p)
      : beta1_(p.Float("beta1")),
        beta2_(p.Float("beta2")),
        eps_(p.Float("eps")),
        weight_decay_(p.Float("weight_decay")),
        amsgrad_(p.Bool("amsgrad")) {
    const std::string dtype = p.String("state_dtype");
    if (dtype == "float32") {
      state_dtype_ = LLMSYS_DTYPE_F32;
    } else if (dtype == "float64") {
      state_dtype_ = LLMSYS_DTYPE_F64;
    } else {
      sdk::Fail(
          LLMSYS_STATUS_INVALID_ARGUMENT,
          "adamw: state_dtype must be float32 or float64, got '" + dtype + "'");
    }
    // The host validates ranges before create(); these keep the optimizer
    // safe when it is driven directly through the C ABI.
    RequireBeta("beta1", beta1_);
    RequireBeta("beta2", beta2_);
    Require(std::isfinite(eps_) && eps_ >= 0.0 && eps_ <= 1.0,
            "adamw: eps must be in [0, 1], got " + Num(eps_));
    Require(std::isfinite(weight_decay_) && weight_decay_ >= 0.0,
            "adamw: weight_decay must be >= 0, got " + Num(weight_decay_));
  }

  std::vector<sdk::StateSpec> State() const override {
    std::vector<sdk::StateSpec> specs = {
        {.name = "exp_avg", .dtype = state_dtype_},
        {.name = "exp_avg_sq", .dtype = state_dtype_}};
    if (amsgrad_)
      specs.push_back({.name = "max_exp_avg_sq", .dtype = state_dtype_});
    return specs;
  }

  void Step(const llmsys_optimizer_step_t& args) override {
    const std::vector<sdk::StateSpec> state = State();
    std::vector<DType> dtypes = Validate(args, state);
    if (args.num_params == 0) return;
    Require(args.ctx != nullptr && args.ctx->stream != nullptr,
            "adamw: the host passed no CUDA stream (this adamw runs on a "
            "CUDA device with a host that owns its streams)",
            LLMSYS_STATUS_FAILED_PRECONDITION);
    const auto stream = static_cast<cudaStream_t>(args.ctx->stream);
    const AdamWScalars s = AdamWScalarsOf(args.lr, args.step, beta1_, beta2_,
                                          eps_, weight_decay_, amsgrad_);
    const DType state_type =
        state_dtype_.bits == 64 ? DType::kF64 : DType::kF32;
    const uint32_t ns = args.num_state;
    // One group (and one launch per kAdamWTensorsPerLaunch) per dtype.
    for (const DType t :
         {DType::kF32, DType::kBF16, DType::kF16, DType::kF64}) {
      std::vector<AdamWTensor> group;
      for (uint32_t i = 0; i < args.num_params; ++i) {
        if (dtypes[i] != t) continue;
        AdamWTensor x;
        x.param = llmsys_tensor_data(args.params[i]);
        x.grad = llmsys_tensor_data(args.grads[i]);
        x.exp_avg = llmsys_tensor_data(args.state[i * ns + 0]);
        x.exp_avg_sq = llmsys_tensor_data(args.state[i * ns + 1]);
        x.max_exp_avg_sq =
            amsgrad_ ? llmsys_tensor_data(args.state[i * ns + 2]) : nullptr;
        x.numel = llmsys_tensor_numel(args.params[i]);
        x.decay = weight_decay_ != 0.0 &&
                  (args.no_decay == nullptr || args.no_decay[i] == 0);
        group.push_back(x);
      }
      if (group.empty()) continue;
      const cudaError_t e =
          LaunchAdamW(t, state_type, group.data(),
                      static_cast<int64_t>(group.size()), s, stream);
      if (e != cudaSuccess)
        sdk::Fail(e == cudaErrorMemoryAllocation
                      ? LLMSYS_STATUS_RESOURCE_EXHAUSTED
                      : LLMSYS_STATUS_INTERNAL,
                  std::string("adamw: CUDA error ") + cudaGetErrorName(e) +
                      " (" + cudaGetErrorString(e) + ") launching the " +
                      DTypeName(t) + " update");
    }
  }

 private:
  void RequireBeta(const char* name, double v) const {
    Require(
        std::isfinite(v) && v >= 0.0 && v < 1.0,
        std::string("adamw: ") + name + " must be in [0, 1), got " + Num(v));
  }

  // Checks every tensor of the step before any is touched (as the CPU
  // adamw, on CUDA) and returns the parameters' launcher dtypes.
  std::vector<DType> Validate(const llmsys_optimizer_step_t& args,
                              const std::vector<sdk::StateSpec>& state) const {
    Require(args.struct_size >=
                offsetof(llmsys_optimizer_step_t, lr) + sizeof(args.lr),
            "adamw: the step arguments are too small (struct_size " +
                std::to_string(args.struct_size) + ")");
    Require(args.step >= 1,
            "adamw: step must be >= 1 (1 for the first "
            "update), got " +
                std::to_string(args.step));
    Require(std::isfinite(args.lr) && args.lr >= 0.0,
            "adamw: the learning rate must be finite and >= 0, got " +
                Num(args.lr));
    const uint32_t num_state = static_cast<uint32_t>(state.size());
    Require(args.num_state == num_state,
            "adamw: expected " + std::to_string(num_state) +
                " state tensor(s) per parameter, got " +
                std::to_string(args.num_state));
    std::vector<DType> dtypes(args.num_params, DType::kF32);
    if (args.num_params == 0) return dtypes;
    Require(args.params != nullptr && args.grads != nullptr,
            "adamw: params or grads is NULL");
    Require(args.state != nullptr, "adamw: state is NULL");
    for (uint32_t i = 0; i < args.num_params; ++i) {
      const std::string where = "adamw: parameter " + std::to_string(i);
      const DLTensor* p = args.params[i];
      const DLTensor* g = args.grads[i];
      Require(p != nullptr, where + " is NULL");
      Require(g != nullptr, where + ": its gradient is NULL");
      Require(
          p->device.device_type == kDLCUDA && g->device.device_type == kDLCUDA,
          where +
              ": parameter and gradient must be on a CUDA GPU (this "
              "adamw runs there; the CPU one is llmsys.optimizers')");
      Require(ParamDType(p->dtype, &dtypes[i]),
              where + ": dtype " + reference::DtypeName(p->dtype) +
                  " is not supported (float32, bfloat16, float16 or "
                  "float64)");
      Require(llmsys_dtype_equal(p->dtype, g->dtype),
              where + ": gradient dtype " + reference::DtypeName(g->dtype) +
                  " differs from the parameter's " +
                  reference::DtypeName(p->dtype));
      Require(SameShape(p, g),
              where + ": gradient shape " + sdk::ShapeString(g) +
                  " differs from the parameter's " + sdk::ShapeString(p));
      Require(llmsys_tensor_is_contiguous(p) && llmsys_tensor_is_contiguous(g),
              where + ": parameter and gradient must be contiguous");
      for (uint32_t s = 0; s < num_state; ++s) {
        const std::string& name = state[s].name;
        const DLTensor* b = args.state[i * num_state + s];
        Require(b != nullptr, where + ": its " + name + " is NULL");
        Require(b->device.device_type == kDLCUDA,
                where + ": " + name + " must be on a CUDA GPU");
        Require(llmsys_dtype_equal(b->dtype, state_dtype_),
                where + ": " + name + " dtype " +
                    reference::DtypeName(b->dtype) + " is not the declared " +
                    reference::DtypeName(state_dtype_));
        Require(SameShape(p, b),
                where + ": " + name + " shape " + sdk::ShapeString(b) +
                    " differs from the parameter's " + sdk::ShapeString(p));
        Require(llmsys_tensor_is_contiguous(b),
                where + ": " + name + " must be contiguous");
      }
    }
    return dtypes;
  }

  double beta1_;
  double beta2_;
  double eps_;
  double weight_decay_;
  bool amsgrad_;
  DLDataType state_dtype_ = LLMSYS_DTYPE_F32;
};

}  // namespace

void RegisterAdamW(sdk::Registry& registry) { registry.Add<AdamW>(); }

}  // namespace llmsys::cuda
