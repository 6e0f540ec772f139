// Normalization ops over the last dim: layer_norm and rms_norm, each with an
// optional affine weight (and bias for layer_norm). The statistics (mean,
// rstd) are auxiliary outputs that backward reads back.
#include <cmath>
#include <string>
#include <vector>

#include "plugins/operators/reference/common.h"

namespace llmsys::reference {
namespace {

// layer_norm: out = (x - mean) * rstd * weight + bias over the last dim,
// rstd = 1 / sqrt(var + eps), var the biased variance.
class LayerNorm : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = "layer_norm.reference",
            .description =
                "reference layer_norm over the last dim (plain "
                "loops, double accumulation)",
            .op = "layer_norm",
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS |
                        LLMSYS_OP_BACKWARD_NEEDS_OUTPUTS};
  }
  explicit LayerNorm(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    const DLTensor* x = FloatArg(call, 0, "x");               // (..., C)
    const DLTensor* weight = OptionalArg(call, 1, "weight");  // (C) or absent
    const DLTensor* bias = OptionalArg(call, 2, "bias");      // (C) or absent
    if (weight != nullptr) FloatArg(call, 1, "weight");
    if (bias != nullptr) FloatArg(call, 2, "bias");
    CheckNormArgs(call, x, weight, "weight");
    const Shape stats = CheckNormArgs(call, x, bias, "bias");  // (...)
    const double eps = sdk::Params(&call.attrs).Float("eps");
    if (!(eps >= 0.0))
      ArgFail(call, "eps must be >= 0, got " + std::to_string(eps));
    return {SpecOf(call, x->dtype, ShapeOf(x)), SpecOf(call, x->dtype, stats),
            SpecOf(call, x->dtype, stats)};
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* x = call.inputs[0];       // (..., C)
    const DLTensor* weight = call.inputs[1];  // (C) or nullptr
    const DLTensor* bias = call.inputs[2];    // (C) or nullptr
    const double eps = sdk::Params(&call.attrs).Float("eps");
    const Shape xs = ShapeOf(x);
    const int64_t c = xs.back();
    const int64_t rows = Numel(Shape(xs.begin(), xs.end() - 1));
    ForFloat(x->dtype, [&]<class T>(T) {
      const T* px = sdk::Data<const T>(x);
      const T* pw = weight != nullptr ? sdk::Data<const T>(weight) : nullptr;
      const T* pb = bias != nullptr ? sdk::Data<const T>(bias) : nullptr;
      T* out = sdk::Data<T>(outputs[0]);   // (..., C)
      T* mean = sdk::Data<T>(outputs[1]);  // (...)
      T* rstd = sdk::Data<T>(outputs[2]);  // (...)
      for (int64_t r = 0; r < rows; ++r) {
        const T* row = px + r * c;
        double sum = 0;
        for (int64_t j = 0; j < c; ++j) sum += row[j];
        const double mu = sum / static_cast<double>(c);
        double sq = 0;
        for (int64_t j = 0; j < c; ++j) sq += (row[j] - mu) * (row[j] - mu);
        const double rs = 1.0 / std::sqrt(sq / static_cast<double>(c) + eps);
        for (int64_t j = 0; j < c; ++j) {
          double y = (row[j] - mu) * rs;
          if (pw != nullptr) y *= pw[j];
          if (pb != nullptr) y += pb[j];
          out[r * c + j] = static_cast<T>(y);
        }
        mean[r] = static_cast<T>(mu);
        rstd[r] = static_cast<T>(rs);
      }
    });
  }

  // With xhat = (x - mean) * rstd and gy = g * weight:
  //   dx = rstd * (gy - mean(gy) - xhat * mean(gy * xhat)),
  //   dweight = sum over rows of g * xhat, dbias = sum over rows of g.
  void Backward(const llmsys_op_call_t& call, const DLTensor* const* outputs,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    const DLTensor* x = call.inputs[0];       // (..., C)
    const DLTensor* weight = call.inputs[1];  // (C) or nullptr
    const DLTensor* g = grad_outputs[0];      // (..., C) or nullptr (zero)
    const DLTensor* mean = outputs[1];        // (...)
    const DLTensor* rstd = outputs[2];        // (...)
    DLTensor* gx = grad_inputs[0];            // (..., C) or nullptr
    DLTensor* gw = grad_inputs[1];            // (C) or nullptr
    DLTensor* gb = grad_inputs[2];            // (C) or nullptr
    const Shape xs = ShapeOf(x);
    const int64_t c = xs.back();
    const int64_t rows = Numel(Shape(xs.begin(), xs.end() - 1));
    ForFloat(x->dtype, [&]<class T>(T) {
      const T* px = sdk::Data<const T>(x);
      const T* pw = weight != nullptr ? sdk::Data<const T>(weight) : nullptr;
      const T* pg = g != nullptr ? sdk::Data<const T>(g) : nullptr;
      const T* pmean = sdk::Data<const T>(mean);
      const T* prstd = sdk::Data<const T>(rstd);
      std::vector<double> dw(static_cast<size_t>(c), 0.0);  // (C)
      std::vector<double> db(static_cast<size_t>(c), 0.0);  // (C)
      std::vector<double> xhat(static_cast<size_t>(c));     // one row
      std::vector<double> gy(static_cast<size_t>(c));       // one row
      for (int64_t r = 0; r < rows; ++r) {
        const double mu = pmean[r];
        const double rs = prstd[r];
        double mean_gy = 0, mean_gy_xhat = 0;
        for (int64_t j = 0; j < c; ++j) {
          const double gj = pg != nullptr ? double(pg[r * c + j]) : 0.0;
          xhat[j] = (px[r * c + j] - mu) * rs;
          gy[j] = pw != nullptr ? gj * pw[j] : gj;
          mean_gy += gy[j];
          mean_gy_xhat += gy[j] * xhat[j];
          dw[j] += gj * xhat[j];
          db[j] += gj;
        }
        mean_gy /= static_cast<double>(c);
        mean_gy_xhat /= static_cast<double>(c);
        if (gx == nullptr) continue;
        T* pgx = sdk::Data<T>(gx);
        for (int64_t j = 0; j < c; ++j)
          pgx[r * c + j] =
              static_cast<T>(rs * (gy[j] - mean_gy - xhat[j] * mean_gy_xhat));
      }
      if (gw != nullptr)
        for (int64_t j = 0; j < c; ++j)
          sdk::Data<T>(gw)[j] = static_cast<T>(dw[j]);
      if (gb != nullptr)
        for (int64_t j = 0; j < c; ++j)
          sdk::Data<T>(gb)[j] = static_cast<T>(db[j]);
    });
  }
};

// rms_norm: out = x * rstd * weight over the last dim,
// rstd = 1 / sqrt(mean(x^2) + eps).
class RmsNorm : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = "rms_norm.reference",
            .description =
                "reference rms_norm over the last dim (plain "
                "loops, double accumulation)",
            .op = "rms_norm",
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS |
                        LLMSYS_OP_BACKWARD_NEEDS_OUTPUTS};
  }
  explicit RmsNorm(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    const DLTensor* x = FloatArg(call, 0, "x");               // (..., C)
    const DLTensor* weight = OptionalArg(call, 1, "weight");  // (C) or absent
    if (weight != nullptr) FloatArg(call, 1, "weight");
    const Shape stats = CheckNormArgs(call, x, weight, "weight");  // (...)
    const double eps = sdk::Params(&call.attrs).Float("eps");
    if (!(eps >= 0.0))
      ArgFail(call, "eps must be >= 0, got " + std::to_string(eps));
    return {SpecOf(call, x->dtype, ShapeOf(x)), SpecOf(call, x->dtype, stats)};
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* x = call.inputs[0];       // (..., C)
    const DLTensor* weight = call.inputs[1];  // (C) or nullptr
    const double eps = sdk::Params(&call.attrs).Float("eps");
    const Shape xs = ShapeOf(x);
    const int64_t c = xs.back();
    const int64_t rows = Numel(Shape(xs.begin(), xs.end() - 1));
    ForFloat(x->dtype, [&]<class T>(T) {
      const T* px = sdk::Data<const T>(x);
      const T* pw = weight != nullptr ? sdk::Data<const T>(weight) : nullptr;
      T* out = sdk::Data<T>(outputs[0]);   // (..., C)
      T* rstd = sdk::Data<T>(outputs[1]);  // (...)
      for (int64_t r = 0; r < rows; ++r) {
        const T* row = px + r * c;
        double sq = 0;
        for (int64_t j = 0; j < c; ++j) sq += double(row[j]) * row[j];
        const double rs = 1.0 / std::sqrt(sq / static_cast<double>(c) + eps);
        for (int64_t j = 0; j < c; ++j) {
          double y = row[j] * rs;
          if (pw != nullptr) y *= pw[j];
          out[r * c + j] = static_cast<T>(y);
        }
        rstd[r] = static_cast<T>(rs);
      }
    });
  }

  // With gy = g * weight: dx = rstd * (gy - x * rstd^2 * mean(gy * x)),
  // dweight = sum over rows of g * x * rstd.
  void Backward(const llmsys_op_call_t& call, const DLTensor* const* outputs,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    const DLTensor* x = call.inputs[0];       // (..., C)
    const DLTensor* weight = call.inputs[1];  // (C) or nullptr
    const DLTensor* g = grad_outputs[0];      // (..., C) or nullptr (zero)
    const DLTensor* rstd = outputs[1];        // (...)
    DLTensor* gx = grad_inputs[0];            // (..., C) or nullptr
    DLTensor* gw = grad_inputs[1];            // (C) or nullptr
    const Shape xs = ShapeOf(x);
    const int64_t c = xs.back();
    const int64_t rows = Numel(Shape(xs.begin(), xs.end() - 1));
    ForFloat(x->dtype, [&]<class T>(T) {
      const T* px = sdk::Data<const T>(x);
      const T* pw = weight != nullptr ? sdk::Data<const T>(weight) : nullptr;
      const T* pg = g != nullptr ? sdk::Data<const T>(g) : nullptr;
      const T* prstd = sdk::Data<const T>(rstd);
      std::vector<double> dw(static_cast<size_t>(c), 0.0);  // (C)
      std::vector<double> gy(static_cast<size_t>(c));       // one row
      for (int64_t r = 0; r < rows; ++r) {
        const double rs = prstd[r];
        double mean_gy_x = 0;
        for (int64_t j = 0; j < c; ++j) {
          const double gj = pg != nullptr ? double(pg[r * c + j]) : 0.0;
          const double xj = px[r * c + j];
          gy[j] = pw != nullptr ? gj * pw[j] : gj;
          mean_gy_x += gy[j] * xj;
          dw[j] += gj * xj * rs;
        }
        mean_gy_x /= static_cast<double>(c);
        if (gx == nullptr) continue;
        T* pgx = sdk::Data<T>(gx);
        for (int64_t j = 0; j < c; ++j)
          pgx[r * c + j] = static_cast<T>(
              rs * (gy[j] - px[r * c + j] * rs * rs * mean_gy_x));
      }
      if (gw != nullptr)
        for (int64_t j = 0; j < c; ++j)
          sdk::Data<T>(gw)[j] = static_cast<T>(dw[j]);
    });
  }
};

}  // namespace

void RegisterNorms(sdk::Registry& registry) {
  registry.Add<LayerNorm>();
  registry.Add<RmsNorm>();
}

}  // namespace llmsys::reference
