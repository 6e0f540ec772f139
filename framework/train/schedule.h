// framework/train/schedule.h — the learning rate of each step, and gradient
// clipping by global norm.
//
//   Schedule s{.lr = 1e-3, .decay = "cosine", .warmup_steps = 100,
//              .min_lr = 1e-4, .total_steps = 2000};
//   double lr = s.At(step);   // step counts from 1
//
// Thread-safety: pure functions.
#ifndef LLMSYS_FRAMEWORK_TRAIN_SCHEDULE_H_
#define LLMSYS_FRAMEWORK_TRAIN_SCHEDULE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/autograd/autograd.h"

namespace llmsys::train {

struct Schedule {
  double lr = 1e-3;                // the peak
  std::string decay = "constant";  // constant | cosine | linear | inverse_sqrt
  int64_t warmup_steps = 0;        // linear from lr/warmup to lr
  double min_lr = 0.0;             // the floor of cosine and linear
  int64_t total_steps = 1;

  // The rate of step `step` (1-based): a linear warm-up over warmup_steps,
  // then the decay: cosine and linear go from lr to min_lr at total_steps;
  // inverse_sqrt is lr * sqrt(max(warmup, 1) / step) (continuous at the
  // end of the warm-up).
  double At(int64_t step) const;
};

// The global L2 norm of every defined gradient of `params`; if it exceeds
// `max_norm` (> 0), scales them all by max_norm / norm. Returns the norm
// before clipping (non-finite if any gradient is). Runs on `threads` of
// the host's pool; the sum goes by fixed blocks added in order, so the
// norm has the same bits for any thread count. Gradients on a GPU are
// summed and scaled there (DeviceBackend::SumOfSquares and Scale: one
// wait per device for the sum, no gradient copied to the host).
//
// `grad_scale`: the gradients hold grad_scale times the true ones (float16
// loss scaling); they are divided by it in the same pass, and the norm is
// the true gradients'.
//
// `over_ranks` (pipeline parallelism: each rank holds some parameters):
// the norm is of the gradients of every rank, `counted[i]` saying whether
// params[i]'s squares count here (a parameter several ranks hold counts on
// one), and `sum` adding a double over the ranks.
struct NormOverRanks {
  std::vector<bool> counted;
  std::function<absl::Status(double*)> sum;
};
absl::StatusOr<double> ClipGradNorm(const std::vector<autograd::Var>& params,
                                    double max_norm, int threads = 1,
                                    double grad_scale = 1.0,
                                    const NormOverRanks* over_ranks = nullptr);

}  // namespace llmsys::train

#endif  // LLMSYS_FRAMEWORK_TRAIN_SCHEDULE_H_
