#include "framework/train/schedule.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "framework/core/status_macros.h"
#include "framework/core/thread_pool.h"
#include "framework/tensor/device.h"

namespace llmsys::train {

double Schedule::At(int64_t step) const {
  if (warmup_steps > 0 && step <= warmup_steps)
    return lr * static_cast<double>(step) / static_cast<double>(warmup_steps);
  if (decay == "inverse_sqrt")
    return lr *
           std::sqrt(static_cast<double>(std::max<int64_t>(warmup_steps, 1)) /
                     static_cast<double>(step));
  const double span =
      static_cast<double>(std::max<int64_t>(total_steps - warmup_steps, 1));
  const double progress =
      std::clamp(static_cast<double>(step - warmup_steps) / span, 0.0, 1.0);
  if (decay == "cosine")
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + std::cos(M_PI * progress));
  if (decay == "linear") return lr - (lr - min_lr) * progress;
  return lr;  // constant
}

namespace {

constexpr int64_t kNormBlock = 8192;  // floats per partial sum

// Sum of squares of g[0, n) in double, eight lanes then added in order.
double SumSquares(const float* g, int64_t n) {
  double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j)
      lane[j] += static_cast<double>(g[i + j]) * g[i + j];
  double sum = 0;
  for (double l : lane) sum += l;
  for (; i < n; ++i) sum += static_cast<double>(g[i]) * g[i];
  return sum;
}

}  // namespace

absl::StatusOr<double> ClipGradNorm(const std::vector<autograd::Var>& params,
                                    double max_norm, int threads,
                                    double grad_scale,
                                    const NormOverRanks* over_ranks) {
  core::ThreadPool& pool = core::ThreadPool::Global();
  double sum = 0;
  // Gradients on a device: summed there, by device (one wait each).
  std::vector<std::pair<DLDevice, std::vector<tensor::DeviceView>>> on_device;
  for (size_t i = 0; i < params.size(); ++i) {
    const autograd::Var& p = params[i];
    if (!p->grad.defined()) continue;
    if (over_ranks != nullptr && !over_ranks->counted.at(i)) continue;
    const bool host = p->grad.device().device_type == kDLCPU;
    if (!host) {
      auto it = std::find_if(
          on_device.begin(), on_device.end(),
          [&](const auto& d) { return d.first == p->grad.device(); });
      if (it == on_device.end())
        it = on_device.insert(on_device.end(), {p->grad.device(), {}});
      it->second.push_back(p->grad.DeviceViewOf());
    } else if (p->grad.dtype() == tensor::kF32 && p->grad.is_contiguous()) {
      const float* g = p->grad.data_as<float>();
      const int64_t n = p->grad.numel();
      const int64_t blocks = (n + kNormBlock - 1) / kNormBlock;
      std::vector<double> partial(static_cast<size_t>(blocks));
      pool.Run(threads, blocks, [&](int64_t b) {
        const int64_t at = b * kNormBlock;
        partial[static_cast<size_t>(b)] =
            SumSquares(g + at, std::min(kNormBlock, n - at));
      });
      for (double s : partial) sum += s;
    } else {
      for (double g : p->grad.ToDoubles()) sum += g * g;
    }
  }
  for (const auto& [device, views] : on_device) {
    LLMSYS_ASSIGN_OR_RETURN(tensor::DeviceBackend * backend,
                            tensor::BackendFor(device));
    LLMSYS_ASSIGN_OR_RETURN(double squares,
                            backend->SumOfSquares(device, views));
    sum += squares;
  }
  if (over_ranks != nullptr) LLMSYS_RETURN_IF_ERROR(over_ranks->sum(&sum));
  const double norm = std::sqrt(sum) / grad_scale;
  double scale = 1.0 / grad_scale;
  if (max_norm > 0 && std::isfinite(norm) && norm > max_norm)
    scale *= max_norm / (norm + 1e-6);  // as torch.nn.utils
  if (scale != 1.0 && std::isfinite(norm)) {
    for (const autograd::Var& p : params) {
      if (!p->grad.defined()) continue;
      if (p->grad.device().device_type != kDLCPU) {
        LLMSYS_ASSIGN_OR_RETURN(tensor::DeviceBackend * backend,
                                tensor::BackendFor(p->grad.device()));
        LLMSYS_RETURN_IF_ERROR(
            backend->Scale(p->grad.device(), p->grad.DeviceViewOf(), scale));
      } else if (p->grad.dtype() == tensor::kF32 && p->grad.is_contiguous()) {
        float* g = p->grad.data_as<float>();
        const int64_t n = p->grad.numel();
        pool.Run(threads, (n + kNormBlock - 1) / kNormBlock, [&](int64_t b) {
          for (int64_t i = b * kNormBlock;
               i < std::min(n, (b + 1) * kNormBlock); ++i)
            g[i] = static_cast<float>(g[i] * scale);
        });
      } else {
        std::vector<double> v = p->grad.ToDoubles();
        for (double& x : v) x *= scale;
        LLMSYS_ASSIGN_OR_RETURN(
            tensor::Tensor t,
            tensor::Tensor::FromDoubles(p->grad.shape(), v, p->grad.dtype()));
        LLMSYS_RETURN_IF_ERROR(p->grad.CopyFrom(t));
      }
    }
  }
  return norm;
}

}  // namespace llmsys::train
