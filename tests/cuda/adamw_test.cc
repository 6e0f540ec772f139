// The CUDA adamw on the emulated device (tests/cuda/emu: cuda/adamw.cu
// compiled for the CPU, called through the plugin's step): its scalars and
// launch plan, its declaration (the CPU adamw's id, parameters and state),
// its update against torch.optim.AdamW's rule written out below for
// float32, bfloat16 (float32 state, rounded once) and float64 parameters,
// with no-decay parameters, AMSGrad and more parameters than one launch
// takes, and the checks that reject a step before anything changes.
#include "cuda/adamw.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "framework/config/experiment.h"
#include "framework/runtime/param_schema.h"
#include "framework/tensor/tensor.h"
#include "tests/cuda/cuda_test_util.h"

namespace llmsys::cuda_test {
namespace {

using tensor::kBF16;
using tensor::kF32;
using tensor::kF64;
using tensor::Tensor;
using Vec = std::vector<double>;

// ---- scalars and launches ----

TEST(AdamWPlanTest, ScalarsAreTheCpuAdamWsInDouble) {
  const cuda::AdamWScalars s =
      cuda::AdamWScalarsOf(1e-3, 10, 0.9, 0.999, 1e-8, 0.01, true);
  EXPECT_DOUBLE_EQ(s.one_minus_beta1, 1.0 - 0.9);
  EXPECT_DOUBLE_EQ(s.one_minus_beta2, 1.0 - 0.999);
  EXPECT_DOUBLE_EQ(s.bias_correction2_sqrt,
                   std::sqrt(1.0 - std::pow(0.999, 10)));
  EXPECT_DOUBLE_EQ(s.neg_step_size, -1e-3 / (1.0 - std::pow(0.9, 10)));
  EXPECT_DOUBLE_EQ(s.shrink, 1.0 - 1e-3 * 0.01);
  EXPECT_TRUE(s.amsgrad);
  // Step 1: bias corrections 1 - beta.
  const cuda::AdamWScalars one =
      cuda::AdamWScalarsOf(0.5, 1, 0.9, 0.99, 0.0, 0.0, false);
  EXPECT_DOUBLE_EQ(one.neg_step_size, -0.5 / (1.0 - 0.9));
  EXPECT_DOUBLE_EQ(one.bias_correction2_sqrt, std::sqrt(1.0 - 0.99));
  EXPECT_EQ(one.shrink, 1.0);
}

TEST(AdamWPlanTest, ParametersSplitIntoLaunchesOfAFixedTable) {
  EXPECT_EQ(cuda::AdamWLaunches(0), 0);
  EXPECT_EQ(cuda::AdamWLaunches(1), 1);
  EXPECT_EQ(cuda::AdamWLaunches(cuda::kAdamWTensorsPerLaunch), 1);
  EXPECT_EQ(cuda::AdamWLaunches(cuda::kAdamWTensorsPerLaunch + 1), 2);
  EXPECT_EQ(cuda::AdamWLaunches(3 * cuda::kAdamWTensorsPerLaunch), 3);
}

// ---- the component ----

const runtime::Component& AdamWComponent() {
  absl::StatusOr<const runtime::Component*> c =
      EmulatedPlugin().Find(LLMSYS_KIND_OPTIMIZER, "adamw", kDLCUDA);
  EXPECT_TRUE(c.ok()) << c.status();
  return **c;
}

// One instance driven through the C ABI, with its state on the device.
class Instance {
 public:
  explicit Instance(const runtime::AttrList& params) {
    const runtime::Component& c = AdamWComponent();
    opt_ = c.As<llmsys_optimizer_t>();
    absl::StatusOr<runtime::ParamPack> pack =
        runtime::ParamPack::Make(c.params, params);
    EXPECT_TRUE(pack.ok()) << pack.status();
    llmsys_error_t err{message_, sizeof(message_)};
    EXPECT_EQ(opt_->create(pack->c_params(), &instance_, &err),
              LLMSYS_STATUS_OK)
        << message_;
    const llmsys_state_spec_t* const* specs = nullptr;
    uint32_t n = 0;
    EXPECT_EQ(opt_->state(instance_, &specs, &n, &err), LLMSYS_STATUS_OK)
        << message_;
    for (uint32_t i = 0; i < n; ++i) {
      state_names.push_back(specs[i]->name);
      state_dtypes.push_back(specs[i]->dtype);
    }
  }
  ~Instance() {
    if (instance_ != nullptr) opt_->destroy(instance_);
  }

  // Adds a parameter (on the device) with zero state.
  void Add(const Tensor& param, bool no_decay = false) {
    params.push_back(param);
    no_decay_.push_back(no_decay ? 1 : 0);
    for (DLDataType t : state_dtypes)
      state.push_back(*Tensor::Zeros(param.shape(), t, kCuda0));
  }

  // One step with these gradients; the status and message.
  llmsys_status_t Step(const std::vector<Tensor>& grads, int64_t step,
                       double lr) {
    std::vector<DLTensor> p(params.size()), g(grads.size()), s(state.size());
    std::vector<DLTensor*> pp, sp;
    std::vector<const DLTensor*> gp;
    for (size_t i = 0; i < params.size(); ++i) {
      p[i] = params[i].Dl();
      pp.push_back(&p[i]);
    }
    for (size_t i = 0; i < grads.size(); ++i) {
      g[i] = grads[i].Dl();
      gp.push_back(&g[i]);
    }
    for (size_t i = 0; i < state.size(); ++i) {
      s[i] = state[i].Dl();
      sp.push_back(&s[i]);
    }
    llmsys_call_context_t ctx;
    std::memset(&ctx, 0, sizeof(ctx));
    ctx.struct_size = sizeof(ctx);
    ctx.device = kCuda0;
    ctx.num_threads = 1;
    EmulatedDevice::Install();
    absl::StatusOr<tensor::DeviceBackend*> backend = tensor::BackendFor(kCuda0);
    EXPECT_TRUE(backend.ok()) << backend.status();
    if (!backend.ok()) return LLMSYS_STATUS_INTERNAL;
    EXPECT_TRUE((*backend)->FillContext(kCuda0, &ctx).ok());
    llmsys_optimizer_step_t args;
    std::memset(&args, 0, sizeof(args));
    args.struct_size = sizeof(args);
    args.ctx = &ctx;
    args.num_params = static_cast<uint32_t>(params.size());
    args.params = pp.data();
    args.grads = gp.data();
    args.state = sp.data();
    args.num_state = static_cast<uint32_t>(state_names.size());
    args.no_decay = no_decay_.data();
    args.step = step;
    args.lr = lr;
    message_[0] = '\0';
    llmsys_error_t err{message_, sizeof(message_)};
    return opt_->step(instance_, &args, &err);
  }
  std::string message() const { return message_; }

  std::vector<std::string> state_names;
  std::vector<DLDataType> state_dtypes;
  std::vector<Tensor> params, state;  // state parameter-major

 private:
  const llmsys_optimizer_t* opt_ = nullptr;
  void* instance_ = nullptr;
  std::vector<uint8_t> no_decay_;
  char message_[1024] = {};
};

TEST(AdamWTest, DeclaresTheCpuAdamWsParametersAndState) {
  const runtime::Component& c = AdamWComponent();
  EXPECT_EQ(c.device_type, kDLCUDA);
  std::vector<std::string> names;
  for (const auto& e : c.params) names.push_back(e.name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"beta1", "beta2", "eps", "weight_decay",
                                      "amsgrad", "state_dtype"}));
  Instance plain({});
  EXPECT_EQ(plain.state_names,
            (std::vector<std::string>{"exp_avg", "exp_avg_sq"}));
  EXPECT_TRUE(llmsys_dtype_equal(plain.state_dtypes[0], kF32));
  Instance ams({{"amsgrad", true}, {"state_dtype", std::string("float64")}});
  EXPECT_EQ(ams.state_names, (std::vector<std::string>{"exp_avg", "exp_avg_sq",
                                                       "max_exp_avg_sq"}));
  EXPECT_TRUE(llmsys_dtype_equal(ams.state_dtypes[2], kF64));
}

// adamw on the CPU (optimizers.so) and on CUDA share one id: a lookup on any
// device finds no conflict (the CPU's stands for both), each device finds
// its own, and an experiment whose only adamw is the CUDA one loads (the
// trainer asks for the run's device).
TEST(AdamWTest, OneIdOnTwoDevicesIsNoConflict) {
  const std::string builtin = LLMSYS_BUILTIN_PLUGIN_DIR;
  runtime::PluginRegistry cuda_only;
  ASSERT_TRUE(cuda_only.LoadFile(CudaPluginFile()).ok());
  ASSERT_TRUE(cuda_only.LoadFile(builtin + "/gpt.so").ok());
  absl::StatusOr<config::Experiment> e = config::Experiment::Parse(
      "[model]\nuse = \"gpt\"\n[optimizer]\nuse = \"adamw\"\n"
      "weight_decay = 0.05\n[train]\ndevice = \"cuda\"\n",
      "cuda_adamw.toml", {}, cuda_only);
  ASSERT_TRUE(e.ok()) << e.status();
  ASSERT_NE(e->optimizer(), nullptr);
  EXPECT_EQ(e->optimizer()->device_type, kDLCUDA);

  runtime::PluginRegistry both;
  ASSERT_TRUE(both.LoadFile(CudaPluginFile()).ok());
  ASSERT_TRUE(both.LoadFile(builtin + "/optimizers.so").ok());
  absl::StatusOr<const runtime::Component*> any =
      both.Find(LLMSYS_KIND_OPTIMIZER, "adamw", 0);
  ASSERT_TRUE(any.ok()) << any.status();
  EXPECT_EQ((*any)->device_type, kDLCPU);
  absl::StatusOr<const runtime::Component*> gpu =
      both.Find(LLMSYS_KIND_OPTIMIZER, "adamw", kDLCUDA);
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  EXPECT_EQ((*gpu)->device_type, kDLCUDA);
  for (const runtime::Conflict& c : both.Conflicts()) EXPECT_NE(c.id, "adamw");
}

// torch.optim.AdamW on one parameter, in double, rounding the parameter to
// `round` after each step and the state to float when `f32_state`.
struct Reference {
  Vec p, m, v, vmax;
  template <class Round>
  void Step(const Vec& g, int64_t t, double lr, double beta1, double beta2,
            double eps, double wd, bool amsgrad, bool f32_state, Round round) {
    const double bc1 = 1.0 - std::pow(beta1, double(t));
    const double bc2 = 1.0 - std::pow(beta2, double(t));
    auto st = [&](double x) { return f32_state ? double(float(x)) : x; };
    if (vmax.empty()) vmax.assign(p.size(), 0.0);
    for (size_t i = 0; i < p.size(); ++i) {
      const double pk = p[i] * (1.0 - lr * wd);
      m[i] = st(beta1 * m[i] + (1.0 - beta1) * g[i]);
      v[i] = st(beta2 * v[i] + (1.0 - beta2) * g[i] * g[i]);
      double vk = v[i];
      if (amsgrad) vk = vmax[i] = std::max(vmax[i], vk);
      p[i] =
          round(pk - lr / bc1 * m[i] / (std::sqrt(vk) / std::sqrt(bc2) + eps));
    }
  }
};

Vec Random(int64_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> dist(0.0, 1.0);
  Vec v(static_cast<size_t>(n));
  for (double& x : v) x = dist(gen);
  return v;
}

void ExpectNear(const Vec& got, const Vec& want, double rel,
                const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], want[i], rel * (1e-3 + std::abs(want[i])))
        << what << "[" << i << "]";
}

// Three steps of `count` parameters of `dtype` (every third one no-decay,
// one empty), against the reference.
void CheckSteps(DLDataType dtype, const runtime::AttrList& params, double beta1,
                double beta2, double eps, double wd, bool amsgrad,
                bool f32_state, int count, double rel) {
  Instance opt(params);
  std::vector<Reference> ref;
  for (int i = 0; i < count; ++i) {
    const int64_t n = i == 1 ? 0 : 3 + (i * 7) % 11;
    const Tensor p = OnDevice({n}, Random(n, 100 + i), dtype);
    opt.Add(p, /*no_decay=*/i % 3 == 2);
    ref.push_back({p.ToDoubles(), Vec(n, 0.0), Vec(n, 0.0), {}});
  }
  const bool bf16 = llmsys_dtype_equal(dtype, kBF16);
  const bool f32 = llmsys_dtype_equal(dtype, kF32);
  auto round = [&](double x) {
    if (bf16) return double(tensor::BF16ToFloat(tensor::FloatToBF16(float(x))));
    return f32 ? double(float(x)) : x;
  };
  for (int64_t t = 1; t <= 3; ++t) {
    const double lr = 1e-2 * double(t);
    std::vector<Tensor> grads;
    for (int i = 0; i < count; ++i) {
      const int64_t n = opt.params[i].shape()[0];
      grads.push_back(OnDevice({n}, Random(n, 1000 * t + i), dtype));
      ref[i].Step(grads.back().ToDoubles(), t, lr, beta1, beta2, eps,
                  i % 3 == 2 ? 0.0 : wd, amsgrad, f32_state, round);
    }
    ASSERT_EQ(opt.Step(grads, t, lr), LLMSYS_STATUS_OK) << opt.message();
  }
  const size_t ns = opt.state_names.size();
  for (int i = 0; i < count; ++i) {
    SCOPED_TRACE("parameter " + std::to_string(i));
    ExpectNear(opt.params[i].ToDoubles(), ref[i].p, rel, "param");
    ExpectNear(opt.state[i * ns + 0].ToDoubles(), ref[i].m, rel, "exp_avg");
    ExpectNear(opt.state[i * ns + 1].ToDoubles(), ref[i].v, rel, "exp_avg_sq");
    if (amsgrad)
      ExpectNear(opt.state[i * ns + 2].ToDoubles(), ref[i].vmax, rel,
                 "max_exp_avg_sq");
  }
}

TEST(AdamWTest, Float32ParametersFollowTorchAdamW) {
  CheckSteps(kF32, {{"weight_decay", 0.1}}, 0.9, 0.999, 1e-8, 0.1, false, true,
             5, 1e-5);
}

TEST(AdamWTest, Bfloat16ParametersKeepFloat32StateAndRoundOnce) {
  // One bfloat16 ulp (2^-8 relative) of slack for the final rounding.
  CheckSteps(kBF16, {{"weight_decay", 0.05}}, 0.9, 0.999, 1e-8, 0.05, false,
             true, 4, 1.0 / 128);
}

TEST(AdamWTest, Float64ParametersWithFloat64StateAreExact) {
  CheckSteps(kF64,
             {{"state_dtype", std::string("float64")},
              {"amsgrad", true},
              {"beta1", 0.8},
              {"beta2", 0.95},
              {"eps", 1e-6}},
             0.8, 0.95, 1e-6, 0.01, true, false, 4, 1e-13);
}

TEST(AdamWTest, MoreParametersThanOneLaunchTakes) {
  CheckSteps(kF32, {{"amsgrad", true}}, 0.9, 0.999, 1e-8, 0.01, true, true,
             cuda::kAdamWTensorsPerLaunch * 2 + 3, 1e-5);
}

TEST(AdamWTest, MixedDtypesInOneStep) {
  Instance opt({});
  const Tensor a = OnDevice({4}, {1, 2, 3, 4}, kF32);
  const Tensor b = OnDevice({3}, {1, 2, 3}, kBF16);
  opt.Add(a);
  opt.Add(b);
  ASSERT_EQ(opt.Step({OnDevice({4}, {1, 1, 1, 1}, kF32),
                      OnDevice({3}, {1, 1, 1}, kBF16)},
                     1, 0.1),
            LLMSYS_STATUS_OK)
      << opt.message();
  // Step 1 with g = 1: m/bc1 = 1, sqrt(v/bc2) = 1, so p -= lr (after decay).
  for (double x : opt.params[0].ToDoubles()) EXPECT_LT(x, 4.0);
  const Vec pa = opt.params[0].ToDoubles();
  EXPECT_NEAR(pa[0], 1.0 * (1 - 0.1 * 0.01) - 0.1, 1e-6);
  const Vec pb = opt.params[1].ToDoubles();
  EXPECT_NEAR(pb[2], 3.0 * (1 - 0.1 * 0.01) - 0.1, 2e-2);
}

TEST(AdamWTest, BadStepsChangeNothingAndSayWhy) {
  Instance opt({});
  const Vec p0 = {1, 2, 3};
  opt.Add(OnDevice({3}, p0, kF32));
  const Tensor g = OnDevice({3}, {1, 1, 1}, kF32);
  struct Bad {
    std::vector<Tensor> grads;
    int64_t step;
    double lr;
    std::string says;
  };
  const std::vector<Bad> bad = {
      {{g}, 0, 0.1, "step must be >= 1"},
      {{g}, 1, -1.0, "learning rate must be finite"},
      {{OnDevice({4}, {1, 1, 1, 1}, kF32)}, 1, 0.1, "gradient shape"},
      {{OnDevice({3}, {1, 1, 1}, kF64)}, 1, 0.1, "gradient dtype"},
      {{*Tensor::FromDoubles({3}, {1, 1, 1}, kF32)},
       1,
       0.1,
       "must be on a CUDA GPU"},
  };
  for (const Bad& b : bad) {
    EXPECT_EQ(opt.Step(b.grads, b.step, b.lr), LLMSYS_STATUS_INVALID_ARGUMENT)
        << b.says;
    EXPECT_NE(opt.message().find(b.says), std::string::npos) << opt.message();
    EXPECT_EQ(opt.params[0].ToDoubles(), p0) << b.says;
  }
  // A state tensor of the wrong dtype.
  opt.state[0] = *Tensor::Zeros({3}, kF64, kCuda0);
  EXPECT_EQ(opt.Step({g}, 1, 0.1), LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(opt.message().find("exp_avg dtype float64 is not the declared "
                               "float32"),
            std::string::npos)
      << opt.message();
  EXPECT_EQ(opt.params[0].ToDoubles(), p0);
}

}  // namespace
}  // namespace llmsys::cuda_test
