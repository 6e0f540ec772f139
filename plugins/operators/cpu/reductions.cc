// sum.cpu and mean.cpu: fast paths when the reduced dims are a leading run
// (a bias gradient: sum over batch and time) or a trailing run (a row sum);
// other dim sets take the general loop. Sums accumulate in double, as the
// reference's do.
#include <string>
#include <vector>

#include "plugins/operators/cpu/common.h"

namespace llmsys::cpu {
namespace {

// x seen as (outer, len): kLeading reduces the outer rows (every reduced
// dim comes before every kept one), kTrailing the inner len.
struct Plan {
  enum Kind { kLeading, kTrailing, kGeneral } kind = kGeneral;
  int64_t outer = 1, len = 1, count = 1;  // count: elements per output
};

Plan PlanOf(const Shape& x, const std::vector<bool>& reduced) {
  Plan p;
  // Size-1 dims never matter for the layout.
  bool seen_kept = false, leading = true, seen_reduced = false, trailing = true;
  for (size_t d = 0; d < x.size(); ++d) {
    if (x[d] == 1) continue;
    if (reduced[d]) {
      if (seen_kept) leading = false;
      seen_reduced = true;
    } else {
      seen_kept = true;
      if (seen_reduced) trailing = false;
    }
  }
  int64_t red = 1, kept = 1;
  for (size_t d = 0; d < x.size(); ++d) (reduced[d] ? red : kept) *= x[d];
  p.count = red;
  if (trailing && (kept == 1 || !leading)) {  // a full sum is one row
    p.kind = Plan::kTrailing;
    p.outer = kept;
    p.len = red;
  } else if (leading) {
    p.kind = Plan::kLeading;
    p.outer = red;
    p.len = kept;
  }
  return p;
}

template <class T>
LLMSYS_CPU_KERNEL void SumLeading(const T* x, double* acc, int64_t outer,
                                  int64_t len) {
  for (int64_t r = 0; r < outer; ++r) {
    const T* row = x + r * len;
    for (int64_t j = 0; j < len; ++j) acc[j] += static_cast<double>(row[j]);
  }
}

template <class T>
LLMSYS_CPU_KERNEL double SumRow(const T* x, int64_t len) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < len; ++j) s += static_cast<double>(x[j]);
  return s;
}

struct SumFn {
  static constexpr const char* kOp = "sum";
  static constexpr bool kMean = false;
};
struct MeanFn {
  static constexpr const char* kOp = "mean";
  static constexpr bool kMean = true;
};

template <class Fn>
class SumLike : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = std::string(Fn::kOp) + ".cpu",
            .description = std::string(Fn::kOp) +
                           " over dims; vectorized leading-dim (bias "
                           "gradient) and row paths, double sums",
            .op = Fn::kOp,
            .op_flags = 0,
            .priority = 100};
  }
  explicit SumLike(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    const DLTensor* x = FloatArg(call, 0, "x");
    const std::vector<bool> reduced = ReducedDims(call, ShapeOf(x));
    const bool keepdim = sdk::Params(&call.attrs).Bool("keepdim");
    return {SpecOf(call, x->dtype, OutShape(ShapeOf(x), reduced, keepdim))};
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* x = call.inputs[0];
    const DLTensor* out = outputs[0];
    const Shape xs = ShapeOf(x);
    const std::vector<bool> reduced = ReducedDims(call, xs);
    const Plan plan = PlanOf(xs, reduced);
    const double count = static_cast<double>(plan.count);
    ForFloat(x->dtype, [&]<class T>(T) {
      const T* px = sdk::Data<const T>(x);
      T* po = sdk::Data<T>(out);
      const int64_t num_out = llmsys_tensor_numel(out);
      auto store = [&](int64_t k, double v) {
        po[k] = static_cast<T>(Fn::kMean ? v / count : v);  // 0/0: NaN
      };
      if (plan.kind == Plan::kTrailing) {
        for (int64_t r = 0; r < plan.outer; ++r)
          store(r, SumRow<T>(px + r * plan.len, plan.len));
        return;
      }
      std::vector<double> acc(static_cast<size_t>(num_out), 0.0);
      if (plan.kind == Plan::kLeading) {
        SumLeading<T>(px, acc.data(), plan.outer, plan.len);
      } else {
        const std::vector<int64_t> index =
            BroadcastIndex(KeptShape(xs, reduced), xs);
        for (size_t k = 0; k < index.size(); ++k) acc[index[k]] += px[k];
      }
      for (int64_t k = 0; k < num_out; ++k) store(k, acc[k]);
    });
  }

  void Backward(const llmsys_op_call_t& call, const DLTensor* const*,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    DLTensor* gx = grad_inputs[0];
    if (gx == nullptr) return;
    const DLTensor* g = grad_outputs[0];
    if (g == nullptr) return Zero(gx);
    const Shape xs = ShapeOf(gx);
    const std::vector<bool> reduced = ReducedDims(call, xs);
    const Plan plan = PlanOf(xs, reduced);
    const double count = static_cast<double>(plan.count);
    ForFloat(gx->dtype, [&]<class T>(T) {
      const T* pg = sdk::Data<const T>(g);
      T* pin = sdk::Data<T>(gx);
      auto value = [&](int64_t k) {
        const double v = pg[k];
        return static_cast<T>(Fn::kMean ? v / count : v);
      };
      if (plan.kind == Plan::kLeading) {
        std::vector<T> row(static_cast<size_t>(plan.len));
        for (int64_t j = 0; j < plan.len; ++j) row[j] = value(j);
        for (int64_t r = 0; r < plan.outer; ++r)
          std::memcpy(pin + r * plan.len, row.data(),
                      static_cast<size_t>(plan.len) * sizeof(T));
        return;
      }
      if (plan.kind == Plan::kTrailing) {
        for (int64_t r = 0; r < plan.outer; ++r) {
          const T v = value(r);
          T* dst = pin + r * plan.len;
          for (int64_t j = 0; j < plan.len; ++j) dst[j] = v;
        }
        return;
      }
      const std::vector<int64_t> index =
          BroadcastIndex(KeptShape(xs, reduced), xs);
      for (size_t k = 0; k < index.size(); ++k) pin[k] = value(index[k]);
    });
  }
};

}  // namespace

void RegisterReductions(sdk::Registry& registry) {
  registry.Add<SumLike<SumFn>>();
  registry.Add<SumLike<MeanFn>>();
}

}  // namespace llmsys::cpu
