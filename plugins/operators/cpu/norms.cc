// layer_norm.fused: one pass per row forward (mean, variance, normalize,
// affine) and backward (dx from two row sums; dweight and dbias summed over
// rows in double).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "plugins/operators/cpu/common.h"

namespace llmsys::cpu {
namespace {

template <class T>
LLMSYS_CPU_KERNEL void LayerNormForward(const T* x, const T* w, const T* b,
                                        T* out, T* mean, T* rstd, int64_t rows,
                                        int64_t c, double eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = x + r * c;
    T* y = out + r * c;
    T sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < c; ++j) sum += row[j];
    const T mu = sum / static_cast<T>(c);
    T sq = 0;
#pragma omp simd reduction(+ : sq)
    for (int64_t j = 0; j < c; ++j) sq += (row[j] - mu) * (row[j] - mu);
    const T rs = static_cast<T>(
        1.0 /
        std::sqrt(static_cast<double>(sq) / static_cast<double>(c) + eps));
    if (w != nullptr && b != nullptr) {
      for (int64_t j = 0; j < c; ++j) y[j] = (row[j] - mu) * rs * w[j] + b[j];
    } else if (w != nullptr) {
      for (int64_t j = 0; j < c; ++j) y[j] = (row[j] - mu) * rs * w[j];
    } else if (b != nullptr) {
      for (int64_t j = 0; j < c; ++j) y[j] = (row[j] - mu) * rs + b[j];
    } else {
      for (int64_t j = 0; j < c; ++j) y[j] = (row[j] - mu) * rs;
    }
    mean[r] = mu;
    rstd[r] = rs;
  }
}

// gx may be null; dw and db (C, double) accumulate over rows.
template <class T>
LLMSYS_CPU_KERNEL void LayerNormBackward(const T* x, const T* w, const T* g,
                                         const T* mean, const T* rstd, T* gx,
                                         double* dw, double* db, T* xhat,
                                         int64_t rows, int64_t c) {
  const T inv_c = T(1) / static_cast<T>(c);
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * c;
    const T* gr = g + r * c;
    const T mu = mean[r], rs = rstd[r];
    T sum_gy = 0, sum_gy_xhat = 0;
    if (w != nullptr) {
#pragma omp simd reduction(+ : sum_gy, sum_gy_xhat)
      for (int64_t j = 0; j < c; ++j) {
        const T xh = (xr[j] - mu) * rs;
        const T gy = gr[j] * w[j];
        xhat[j] = xh;
        sum_gy += gy;
        sum_gy_xhat += gy * xh;
      }
    } else {
#pragma omp simd reduction(+ : sum_gy, sum_gy_xhat)
      for (int64_t j = 0; j < c; ++j) {
        const T xh = (xr[j] - mu) * rs;
        xhat[j] = xh;
        sum_gy += gr[j];
        sum_gy_xhat += gr[j] * xh;
      }
    }
    for (int64_t j = 0; j < c; ++j) {
      dw[j] += static_cast<double>(gr[j] * xhat[j]);
      db[j] += static_cast<double>(gr[j]);
    }
    if (gx == nullptr) continue;
    const T mean_gy = sum_gy * inv_c, mean_gy_xhat = sum_gy_xhat * inv_c;
    T* gxr = gx + r * c;
    if (w != nullptr) {
      for (int64_t j = 0; j < c; ++j)
        gxr[j] = rs * (gr[j] * w[j] - mean_gy - xhat[j] * mean_gy_xhat);
    } else {
      for (int64_t j = 0; j < c; ++j)
        gxr[j] = rs * (gr[j] - mean_gy - xhat[j] * mean_gy_xhat);
    }
  }
}

class LayerNorm : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = "layer_norm.fused",
            .description =
                "layer_norm over the last dim, fused and vectorized "
                "forward and backward",
            .op = "layer_norm",
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS |
                        LLMSYS_OP_BACKWARD_NEEDS_OUTPUTS,
            .priority = 100};
  }
  explicit LayerNorm(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    const DLTensor* x = FloatArg(call, 0, "x");
    const DLTensor* weight = OptionalArg(call, 1, "weight");
    const DLTensor* bias = OptionalArg(call, 2, "bias");
    if (weight != nullptr) FloatArg(call, 1, "weight");
    if (bias != nullptr) FloatArg(call, 2, "bias");
    CheckNormArgs(call, x, weight, "weight");
    const Shape stats = CheckNormArgs(call, x, bias, "bias");
    const double eps = sdk::Params(&call.attrs).Float("eps");
    if (!(eps >= 0.0))
      ArgFail(call, "eps must be >= 0, got " + std::to_string(eps));
    return {SpecOf(call, x->dtype, ShapeOf(x)), SpecOf(call, x->dtype, stats),
            SpecOf(call, x->dtype, stats)};
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* x = call.inputs[0];
    const DLTensor* weight = call.inputs[1];
    const DLTensor* bias = call.inputs[2];
    const double eps = sdk::Params(&call.attrs).Float("eps");
    const Shape xs = ShapeOf(x);
    const int64_t c = xs.back();
    const int64_t rows = Numel(Shape(xs.begin(), xs.end() - 1));
    ForFloat(x->dtype, [&]<class T>(T) {
      const T* px = sdk::Data<const T>(x);
      T* out = sdk::Data<T>(outputs[0]);
      T* mean = sdk::Data<T>(outputs[1]);
      T* rstd = sdk::Data<T>(outputs[2]);
      ForRanges(call, rows, std::max<int64_t>(1, kGrain / c),
                [&](int64_t r0, int64_t r1) {
                  LayerNormForward<T>(
                      px + r0 * c,
                      weight != nullptr ? sdk::Data<const T>(weight) : nullptr,
                      bias != nullptr ? sdk::Data<const T>(bias) : nullptr,
                      out + r0 * c, mean + r0, rstd + r0, r1 - r0, c, eps);
                });
    });
  }

  void Backward(const llmsys_op_call_t& call, const DLTensor* const* outputs,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    const DLTensor* x = call.inputs[0];
    const DLTensor* weight = call.inputs[1];
    const DLTensor* g = grad_outputs[0];
    DLTensor* gx = grad_inputs[0];
    DLTensor* gw = grad_inputs[1];
    DLTensor* gb = grad_inputs[2];
    if (g == nullptr) {
      for (DLTensor* t : {gx, gw, gb})
        if (t != nullptr) Zero(t);
      return;
    }
    const Shape xs = ShapeOf(x);
    const int64_t c = xs.back();
    const int64_t rows = Numel(Shape(xs.begin(), xs.end() - 1));
    ForFloat(x->dtype, [&]<class T>(T) {
      // Rows split in parts; each part sums its own dw, db, added in part
      // order after (the same bits for the same thread count).
      const int64_t parts =
          sdk::RangeParts(call.ctx, rows, std::max<int64_t>(1, kGrain / c));
      const size_t cs = static_cast<size_t>(c);
      std::vector<double> dw(cs * static_cast<size_t>(parts), 0.0);
      std::vector<double> db(cs * static_cast<size_t>(parts), 0.0);
      std::vector<T> xhat(cs * static_cast<size_t>(parts));
      const T* px = sdk::Data<const T>(x);
      const T* pg = sdk::Data<const T>(g);
      T* pgx = gx != nullptr ? sdk::Data<T>(gx) : nullptr;
      sdk::ParallelParts(
          call.ctx, rows, parts, [&](int64_t part, int64_t r0, int64_t r1) {
            const size_t at = cs * static_cast<size_t>(part);
            LayerNormBackward<T>(
                px + r0 * c,
                weight != nullptr ? sdk::Data<const T>(weight) : nullptr,
                pg + r0 * c, sdk::Data<const T>(outputs[1]) + r0,
                sdk::Data<const T>(outputs[2]) + r0,
                pgx != nullptr ? pgx + r0 * c : nullptr, dw.data() + at,
                db.data() + at, xhat.data() + at, r1 - r0, c);
          });
      for (int64_t part = 1; part < parts; ++part)
        for (size_t j = 0; j < cs; ++j) {
          dw[j] += dw[cs * static_cast<size_t>(part) + j];
          db[j] += db[cs * static_cast<size_t>(part) + j];
        }
      if (gw != nullptr)
        for (int64_t j = 0; j < c; ++j)
          sdk::Data<T>(gw)[j] = static_cast<T>(dw[static_cast<size_t>(j)]);
      if (gb != nullptr)
        for (int64_t j = 0; j < c; ++j)
          sdk::Data<T>(gb)[j] = static_cast<T>(db[static_cast<size_t>(j)]);
    });
  }
};

}  // namespace

void RegisterNorms(sdk::Registry& registry) { registry.Add<LayerNorm>(); }

}  // namespace llmsys::cpu
