// cuda/adamw.h — the fused AdamW step of llmsys.cuda's `adamw` optimizer
// (plugins/cuda/adamw.cc): one kernel launch updates up to
// kAdamWTensorsPerLaunch parameters, their table of pointers and sizes
// passed by value as the kernel's argument (more parameters take more
// launches). The rule is the CPU adamw's (plugins/optimizers/
// optimizers.cc, torch.optim.AdamW), per element with t the step:
//
//   if decay:  p = p * (1 - lr * weight_decay)
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g * g
//   if amsgrad:  v_max = max(v_max, v), and v_max replaces v below
//   p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
//
// computed in the wider of the parameter's and the state's dtype (float,
// or double when either is float64), the parameter rounded once at the
// end (bfloat16 and float16 parameters keep float32 state). The scalar
// factors are computed on the host in double (AdamWScalarsOf), as the CPU
// optimizer does. Elementwise: the same bits on every run.
//
//   const AdamWScalars s = AdamWScalarsOf(lr, step, 0.9, 0.999, 1e-8, 0.01,
//                                         false);
//   LaunchAdamW(DType::kBF16, DType::kF32, tensors.data(), tensors.size(),
//               s, stream);
//
// Plain C++ (no CUDA syntax). Thread-safety: pure functions; the launcher
// may be called from any thread with its own stream.
#ifndef LLMSYS_CUDA_ADAMW_H_
#define LLMSYS_CUDA_ADAMW_H_

#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdint>

#include "cuda/launch.h"

namespace llmsys::cuda {

// One parameter: device pointers to the parameter, its gradient (same
// dtype) and its state (the state dtype; max_exp_avg_sq only with
// amsgrad, else nullptr), all compact with `numel` elements.
struct AdamWTensor {
  void* param = nullptr;
  const void* grad = nullptr;
  void* exp_avg = nullptr;
  void* exp_avg_sq = nullptr;
  void* max_exp_avg_sq = nullptr;
  int64_t numel = 0;
  bool decay = false;  // weight decay applies (not a no-decay parameter)
};

// The factors of one step, in double.
struct AdamWScalars {
  double beta1 = 0, beta2 = 0;
  double one_minus_beta1 = 0, one_minus_beta2 = 0;
  double bias_correction2_sqrt = 1;  // sqrt(1 - beta2^t)
  double eps = 0;
  double neg_step_size = 0;  // -lr / (1 - beta1^t)
  double shrink = 1;         // 1 - lr * weight_decay, for decaying params
  bool amsgrad = false;
};

inline AdamWScalars AdamWScalarsOf(double lr, int64_t step, double beta1,
                                   double beta2, double eps,
                                   double weight_decay, bool amsgrad) {
  const double t = static_cast<double>(step);
  AdamWScalars s;
  s.beta1 = beta1;
  s.beta2 = beta2;
  s.one_minus_beta1 = 1.0 - beta1;
  s.one_minus_beta2 = 1.0 - beta2;
  s.bias_correction2_sqrt = std::sqrt(1.0 - std::pow(beta2, t));
  s.eps = eps;
  s.neg_step_size = -(lr / (1.0 - std::pow(beta1, t)));
  s.shrink = 1.0 - lr * weight_decay;
  s.amsgrad = amsgrad;
  return s;
}

// Parameters per launch: the kernel argument carries their table (kept
// well under the 4 KiB every GPU and toolkit accepts).
constexpr int kAdamWTensorsPerLaunch = 48;

// Launches for `tensors` parameters (of one dtype).
inline int64_t AdamWLaunches(int64_t tensors) {
  return (tensors + kAdamWTensorsPerLaunch - 1) / kAdamWTensorsPerLaunch;
}

// Updates `count` parameters of dtype `param` (kF32, kF64, kBF16, kF16)
// with state of dtype `state` (kF32 or kF64), in AdamWLaunches(count)
// launches on `stream`. Parameters with numel 0 are skipped.
cudaError_t LaunchAdamW(DType param, DType state, const AdamWTensor* tensors,
                        int64_t count, const AdamWScalars& s,
                        cudaStream_t stream);

}  // namespace llmsys::cuda

#endif  // LLMSYS_CUDA_ADAMW_H_
