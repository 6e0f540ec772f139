// softmax.fused and log_softmax.fused along any dim (rows of the last dim
// vectorized; other dims through a strided lane loop), and
// cross_entropy.fused (log-softmax + NLL per row, backward straight from
// the logits).
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "plugins/operators/cpu/common.h"

namespace llmsys::cpu {
namespace {

// y = softmax or log_softmax of each row of `len`, rows contiguous.
template <class T, bool kLog>
LLMSYS_CPU_KERNEL void SoftmaxRows(const T* x, T* y, int64_t rows,
                                   int64_t len) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * len;
    T* yr = y + r * len;
    const T mx = RowMax(xr, len);
    T sum = 0;
    if constexpr (kLog) {
#pragma omp simd reduction(+ : sum)
      for (int64_t j = 0; j < len; ++j) sum += Exp(xr[j] - mx);
      const T shift = mx + static_cast<T>(std::log(sum));
      for (int64_t j = 0; j < len; ++j) yr[j] = xr[j] - shift;
    } else {
      for (int64_t j = 0; j < len; ++j) yr[j] = Exp(xr[j] - mx);
#pragma omp simd reduction(+ : sum)
      for (int64_t j = 0; j < len; ++j) sum += yr[j];
      const T inv = T(1) / sum;
      for (int64_t j = 0; j < len; ++j) yr[j] *= inv;
    }
  }
}

// softmax: dx = y (g - sum(g y)); log_softmax: dx = g - exp(y) sum(g).
template <class T, bool kLog>
LLMSYS_CPU_KERNEL void SoftmaxRowsBackward(const T* y, const T* g, T* gx,
                                           int64_t rows, int64_t len) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* yr = y + r * len;
    const T* gr = g + r * len;
    T* o = gx + r * len;
    T sum = 0;
    if constexpr (kLog) {
#pragma omp simd reduction(+ : sum)
      for (int64_t j = 0; j < len; ++j) sum += gr[j];
      for (int64_t j = 0; j < len; ++j) o[j] = gr[j] - Exp(yr[j]) * sum;
    } else {
#pragma omp simd reduction(+ : sum)
      for (int64_t j = 0; j < len; ++j) sum += gr[j] * yr[j];
      for (int64_t j = 0; j < len; ++j) o[j] = yr[j] * (gr[j] - sum);
    }
  }
}

template <bool kLog>
class Softmax : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static constexpr const char* kOp = kLog ? "log_softmax" : "softmax";
  static sdk::Info Describe() {
    return {.id = std::string(kOp) + ".fused",
            .description = std::string(kOp) +
                           " along a dim: max, exp-sum and normalize fused "
                           "per row, vectorized exp",
            .op = kOp,
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_OUTPUTS,
            .priority = 100};
  }
  explicit Softmax(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    const DLTensor* x = FloatArg(call, 0, "x");
    LanesOf(call, ShapeOf(x));
    return {SpecOf(call, x->dtype, ShapeOf(x))};
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* x = call.inputs[0];
    const Lanes l = LanesOf(call, ShapeOf(x));
    ForFloat(x->dtype, [&]<class T>(T) {
      const T* px = sdk::Data<const T>(x);
      T* py = sdk::Data<T>(outputs[0]);
      if (l.inner == 1)
        return ForRanges(call, l.outer, std::max<int64_t>(1, kGrain / l.len),
                         [&](int64_t r0, int64_t r1) {
                           SoftmaxRows<T, kLog>(px + r0 * l.len,
                                                py + r0 * l.len, r1 - r0,
                                                l.len);
                         });
      // A strided lane: gather, compute, scatter.
      std::vector<T> in(static_cast<size_t>(l.len)), out(in.size());
      for (int64_t o = 0; o < l.outer; ++o)
        for (int64_t i = 0; i < l.inner; ++i) {
          const int64_t base = o * l.len * l.inner + i;
          for (int64_t j = 0; j < l.len; ++j) in[j] = px[base + j * l.inner];
          SoftmaxRows<T, kLog>(in.data(), out.data(), 1, l.len);
          for (int64_t j = 0; j < l.len; ++j) py[base + j * l.inner] = out[j];
        }
    });
  }

  void Backward(const llmsys_op_call_t& call, const DLTensor* const* outputs,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    DLTensor* gx = grad_inputs[0];
    if (gx == nullptr) return;
    const DLTensor* g = grad_outputs[0];
    if (g == nullptr) return Zero(gx);
    const DLTensor* y = outputs[0];
    const Lanes l = LanesOf(call, ShapeOf(y));
    ForFloat(y->dtype, [&]<class T>(T) {
      const T* py = sdk::Data<const T>(y);
      const T* pg = sdk::Data<const T>(g);
      T* pgx = sdk::Data<T>(gx);
      if (l.inner == 1)
        return ForRanges(call, l.outer, std::max<int64_t>(1, kGrain / l.len),
                         [&](int64_t r0, int64_t r1) {
                           SoftmaxRowsBackward<T, kLog>(
                               py + r0 * l.len, pg + r0 * l.len,
                               pgx + r0 * l.len, r1 - r0, l.len);
                         });
      std::vector<T> yl(static_cast<size_t>(l.len)), gl(yl.size()),
          out(yl.size());
      for (int64_t o = 0; o < l.outer; ++o)
        for (int64_t i = 0; i < l.inner; ++i) {
          const int64_t base = o * l.len * l.inner + i;
          for (int64_t j = 0; j < l.len; ++j) {
            yl[j] = py[base + j * l.inner];
            gl[j] = pg[base + j * l.inner];
          }
          SoftmaxRowsBackward<T, kLog>(yl.data(), gl.data(), out.data(), 1,
                                       l.len);
          for (int64_t j = 0; j < l.len; ++j) pgx[base + j * l.inner] = out[j];
        }
    });
  }
};

// ---- cross_entropy ----

// log sum_j exp(row[j]), max-subtracted.
template <class T>
LLMSYS_CPU_KERNEL T LogSumExp(const T* row, int64_t v) {
  const T mx = RowMax(row, v);
  T sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < v; ++j) sum += Exp(row[j] - mx);
  return mx + static_cast<T>(std::log(sum));
}

// Row of the gradient but its target's term: s * (softmax - eps / V), the
// softmax straight into `out` (SoftmaxRows), not a log-sum-exp pass and then
// a second pass of exps.
template <class T>
LLMSYS_CPU_KERNEL void CrossEntropyRowGrad(const T* row, T* out, int64_t v, T s,
                                           T smooth) {
  SoftmaxRows<T, false>(row, out, 1, v);
  for (int64_t j = 0; j < v; ++j) out[j] = s * (out[j] - smooth);
}

class CrossEntropy : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = "cross_entropy.fused",
            .description =
                "cross_entropy: log-softmax and NLL fused per row, "
                "backward straight from the logits, vectorized exp",
            .op = "cross_entropy",
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS,
            .priority = 100};
  }
  explicit CrossEntropy(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    const DLTensor* logits = FloatArg(call, 0, "logits");
    const DLTensor* targets = IndexArg(call, 1, "targets");
    const Shape ls = ShapeOf(logits);
    if (ls.empty() || ls.back() == 0)
      ArgFail(call, "logits must have a non-empty class dim (last), got " +
                        cpu::Describe("logits", logits));
    const Shape positions(ls.begin(), ls.end() - 1);
    if (ShapeOf(targets) != positions)
      ArgFail(call, "targets must have logits' shape without the class dim " +
                        Str(positions) + ", got " +
                        cpu::Describe("logits", logits) + " and " +
                        cpu::Describe("targets", targets));
    const Reduction r = ReductionOf(call);
    LabelSmoothingOf(call);
    return {SpecOf(call, logits->dtype,
                   r == Reduction::kNone ? positions : Shape{})};
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* logits = call.inputs[0];
    const DLTensor* targets = call.inputs[1];
    const Reduction r = ReductionOf(call);
    const double eps = LabelSmoothingOf(call);
    const int64_t ignore = sdk::Params(&call.attrs).Int("ignore_index");
    const int64_t v = ShapeOf(logits).back();
    const int64_t rows = llmsys_tensor_numel(targets);
    ForFloat(logits->dtype, [&]<class T>(T) {
      const T* px = sdk::Data<const T>(logits);
      T* out = sdk::Data<T>(outputs[0]);
      // Row losses in parallel, then summed in row order.
      std::vector<double> losses(static_cast<size_t>(rows), 0.0);
      for (int64_t p = 0; p < rows; ++p)
        CheckedTarget(call, targets, p, v, ignore);
      ForRanges(call, rows, std::max<int64_t>(1, kGrain / v),
                [&](int64_t p0, int64_t p1) {
                  for (int64_t p = p0; p < p1; ++p) {
                    const int64_t t = IndexAt(targets, p);
                    if (t == ignore) continue;
                    const T* row = px + p * v;
                    const double lse = LogSumExp(row, v);
                    double loss = lse - row[t];
                    if (eps != 0.0) {
                      double sum = 0;
                      for (int64_t j = 0; j < v; ++j) sum += row[j];
                      const double sum_neg_logp =
                          lse * static_cast<double>(v) - sum;
                      loss = (1 - eps) * (lse - row[t]) +
                             eps * sum_neg_logp / static_cast<double>(v);
                    }
                    losses[static_cast<size_t>(p)] = loss;
                  }
                });
      double total = 0;
      int64_t count = 0;
      for (int64_t p = 0; p < rows; ++p) {
        const double loss = losses[static_cast<size_t>(p)];
        count += IndexAt(targets, p) != ignore;
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

  void Backward(const llmsys_op_call_t& call, const DLTensor* const*,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    DLTensor* gx = grad_inputs[0];
    if (gx == nullptr) return;
    const DLTensor* logits = call.inputs[0];
    const DLTensor* targets = call.inputs[1];
    const DLTensor* g = grad_outputs[0];
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
      const T smooth = static_cast<T>(eps / static_cast<double>(v));
      ForRanges(call, rows, std::max<int64_t>(1, kGrain / v),
                [&](int64_t p0, int64_t p1) {
                  for (int64_t p = p0; p < p1; ++p) {
                    const int64_t t = IndexAt(targets, p);
                    T* o = pgx + p * v;
                    double s = 0;
                    if (pg != nullptr)
                      s = r == Reduction::kNone ? double(pg[p]) : double(pg[0]);
                    if (r == Reduction::kMean && count > 0)
                      s /= static_cast<double>(count);
                    if (t == ignore || pg == nullptr) {
                      std::fill(o, o + v, T(0));
                      continue;
                    }
                    const T* row = px + p * v;
                    CrossEntropyRowGrad<T>(row, o, v, static_cast<T>(s),
                                           smooth);
                    o[t] -= static_cast<T>(s * (1 - eps));
                  }
                });
    });
  }
};

}  // namespace

void RegisterSoftmax(sdk::Registry& registry) {
  registry.Add<Softmax<false>>();
  registry.Add<Softmax<true>>();
  registry.Add<CrossEntropy>();
}

}  // namespace llmsys::cpu
