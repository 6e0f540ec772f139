// Softmax family: softmax and log_softmax along a dim, and cross_entropy
// (fused log-softmax + NLL over the last dim, with ignore_index, label
// smoothing and a reduction).
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "plugins/operators/reference/common.h"

namespace llmsys::reference {
namespace {

// softmax (kLog false) and log_softmax (kLog true) along `dim`, stable:
// the lane's max is subtracted before exp. Backward reads the output y:
//   softmax:     dx = y * (g - sum(g * y))
//   log_softmax: dx = g - exp(y) * sum(g)
template <bool kLog>
class Softmax : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static constexpr const char* kOp = kLog ? "log_softmax" : "softmax";
  static sdk::Info Describe() {
    return {.id = std::string(kOp) + ".reference",
            .description = std::string("reference ") + kOp +
                           " along a dim (max-subtracted, double sums)",
            .op = kOp,
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_OUTPUTS};
  }
  explicit Softmax(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    const DLTensor* x = FloatArg(call, 0, "x");  // any shape
    LanesOf(call, ShapeOf(x));                   // checks dim
    return {SpecOf(call, x->dtype, ShapeOf(x))};
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* x = call.inputs[0];  // any shape
    const Lanes l = LanesOf(call, ShapeOf(x));
    ForFloat(x->dtype, [&]<class T>(T) {
      const T* px = sdk::Data<const T>(x);
      T* py = sdk::Data<T>(outputs[0]);  // x's shape
      for (int64_t o = 0; o < l.outer; ++o) {
        for (int64_t i = 0; i < l.inner; ++i) {
          auto at = [&](int64_t j) { return (o * l.len + j) * l.inner + i; };
          double mx = -std::numeric_limits<double>::infinity();
          for (int64_t j = 0; j < l.len; ++j)
            mx = std::max(mx, double(px[at(j)]));
          double sum = 0;
          for (int64_t j = 0; j < l.len; ++j) sum += std::exp(px[at(j)] - mx);
          const double log_sum = std::log(sum);
          for (int64_t j = 0; j < l.len; ++j) {
            const double shifted = px[at(j)] - mx;
            py[at(j)] = static_cast<T>(kLog ? shifted - log_sum
                                            : std::exp(shifted) / sum);
          }
        }
      }
    });
  }

  void Backward(const llmsys_op_call_t& call, const DLTensor* const* outputs,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    DLTensor* gx = grad_inputs[0];  // x's shape
    if (gx == nullptr) return;
    const DLTensor* y = outputs[0];       // x's shape
    const DLTensor* g = grad_outputs[0];  // x's shape, or nullptr (zero)
    const Lanes l = LanesOf(call, ShapeOf(y));
    ForFloat(y->dtype, [&]<class T>(T) {
      const T* py = sdk::Data<const T>(y);
      const T* pg = g != nullptr ? sdk::Data<const T>(g) : nullptr;
      T* pgx = sdk::Data<T>(gx);
      for (int64_t o = 0; o < l.outer; ++o) {
        for (int64_t i = 0; i < l.inner; ++i) {
          auto at = [&](int64_t j) { return (o * l.len + j) * l.inner + i; };
          auto grad = [&](int64_t j) {
            return pg != nullptr ? double(pg[at(j)]) : 0.0;
          };
          double sum = 0;  // sum(g * y) for softmax, sum(g) for log_softmax
          for (int64_t j = 0; j < l.len; ++j)
            sum += kLog ? grad(j) : grad(j) * py[at(j)];
          for (int64_t j = 0; j < l.len; ++j) {
            const double yj = py[at(j)];
            pgx[at(j)] = static_cast<T>(kLog ? grad(j) - std::exp(yj) * sum
                                             : yj * (grad(j) - sum));
          }
        }
      }
    });
  }
};

// cross_entropy(logits (..., V), targets (...)): per position, with
// logp = log_softmax(logits) and eps the label smoothing,
//   loss = (1 - eps) * -logp[t] + eps * mean_v(-logp[v]),
// 0 where t == ignore_index (excluded from the mean's count).
class CrossEntropy : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = "cross_entropy.reference",
            .description =
                "reference cross_entropy: log-softmax over the "
                "last dim + NLL, ignore_index, label smoothing",
            .op = "cross_entropy",
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS};
  }
  explicit CrossEntropy(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    const DLTensor* logits = FloatArg(call, 0, "logits");    // (..., V)
    const DLTensor* targets = IndexArg(call, 1, "targets");  // (...)
    const Shape ls = ShapeOf(logits);
    if (ls.empty() || ls.back() == 0)
      ArgFail(call, "logits must have a non-empty class dim (last), got " +
                        reference::Describe("logits", logits));
    const Shape positions(ls.begin(), ls.end() - 1);  // (...)
    if (ShapeOf(targets) != positions)
      ArgFail(call, "targets must have logits' shape without the class dim " +
                        Str(positions) + ", got " +
                        reference::Describe("logits", logits) + " and " +
                        reference::Describe("targets", targets));
    const Reduction r = ReductionOf(call);
    LabelSmoothingOf(call);
    return {SpecOf(call, logits->dtype,
                   r == Reduction::kNone ? positions : Shape{})};
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* logits = call.inputs[0];   // (..., V)
    const DLTensor* targets = call.inputs[1];  // (...)
    const Reduction r = ReductionOf(call);
    const double eps = LabelSmoothingOf(call);
    const int64_t ignore = sdk::Params(&call.attrs).Int("ignore_index");
    const int64_t v = ShapeOf(logits).back();
    const int64_t rows = llmsys_tensor_numel(targets);
    ForFloat(logits->dtype, [&]<class T>(T) {
      const T* px = sdk::Data<const T>(logits);
      T* out = sdk::Data<T>(outputs[0]);  // (...) for 'none', else ()
      double total = 0;
      int64_t count = 0;
      for (int64_t p = 0; p < rows; ++p) {
        const int64_t t = CheckedTarget(call, targets, p, v, ignore);
        double loss = 0;
        if (t != ignore) {
          const T* row = px + p * v;
          const double lse = LogSumExp(row, v);
          double sum_neg_logp = 0;  // sum_v -logp[v]
          for (int64_t j = 0; j < v; ++j) sum_neg_logp += lse - row[j];
          loss = (1 - eps) * (lse - row[t]) +
                 eps * sum_neg_logp / static_cast<double>(v);
          ++count;
        }
        total += loss;
        if (r == Reduction::kNone) out[p] = static_cast<T>(loss);
      }
      if (r == Reduction::kSum) out[0] = static_cast<T>(total);
      if (r == Reduction::kMean)
        out[0] = static_cast<T>(count > 0
                                    ? total / static_cast<double>(count)
                                    : std::numeric_limits<double>::quiet_NaN());
    });
  }

  // dlogits[v] = s * (softmax[v] - (1 - eps) * [v == t] - eps / V), s the
  // position's upstream gradient (divided by the count for 'mean'); 0 at
  // ignored positions.
  void Backward(const llmsys_op_call_t& call, const DLTensor* const*,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    DLTensor* gx = grad_inputs[0];  // (..., V)
    if (gx == nullptr) return;
    const DLTensor* logits = call.inputs[0];   // (..., V)
    const DLTensor* targets = call.inputs[1];  // (...)
    const DLTensor* g = grad_outputs[0];       // (...) or (), or nullptr (zero)
    const Reduction r = ReductionOf(call);
    const double eps = LabelSmoothingOf(call);
    const int64_t ignore = sdk::Params(&call.attrs).Int("ignore_index");
    const int64_t v = ShapeOf(logits).back();
    const int64_t rows = llmsys_tensor_numel(targets);
    int64_t count = 0;
    for (int64_t p = 0; p < rows; ++p)
      count += CheckedTarget(call, targets, p, v, ignore) != ignore;
    ForFloat(logits->dtype, [&]<class T>(T) {
      const T* px = sdk::Data<const T>(logits);
      const T* pg = g != nullptr ? sdk::Data<const T>(g) : nullptr;
      T* pgx = sdk::Data<T>(gx);
      for (int64_t p = 0; p < rows; ++p) {
        const int64_t t = IndexAt(targets, p);
        double s = 0;  // d total / d loss[p]
        if (pg != nullptr)
          s = r == Reduction::kNone ? double(pg[p]) : double(pg[0]);
        if (r == Reduction::kMean && count > 0) s /= static_cast<double>(count);
        const T* row = px + p * v;
        if (t == ignore) {
          for (int64_t j = 0; j < v; ++j) pgx[p * v + j] = T(0);
          continue;
        }
        const double lse = LogSumExp(row, v);
        for (int64_t j = 0; j < v; ++j) {
          double d = std::exp(row[j] - lse) - eps / static_cast<double>(v);
          if (j == t) d -= 1 - eps;
          pgx[p * v + j] = static_cast<T>(s * d);
        }
      }
    });
  }

 private:
  // log(sum_j exp(row[j])) over row[0 .. v), max-subtracted.
  template <class T>
  static double LogSumExp(const T* row, int64_t v) {
    double mx = -std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < v; ++j) mx = std::max(mx, double(row[j]));
    double sum = 0;
    for (int64_t j = 0; j < v; ++j) sum += std::exp(row[j] - mx);
    return mx + std::log(sum);
  }
};

}  // namespace

void RegisterSoftmax(sdk::Registry& registry) {
  registry.Add<Softmax<false>>();
  registry.Add<Softmax<true>>();
  registry.Add<CrossEntropy>();
}

}  // namespace llmsys::reference
