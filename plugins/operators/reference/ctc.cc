// ctc_loss: connectionist temporal classification (Graves et al. 2006), with
// PyTorch's semantics (torch.nn.functional.ctc_loss): forward and backward
// by the alpha-beta recursion in log space.
//
// For sample n with T_n = input_lengths[n] frames and target
// l = targets[n, :U], U = target_lengths[n], the extended target is
// l' = (blank, l_1, blank, l_2, ..., l_U, blank), L = 2U + 1 symbols. With
// y_t(c) = log_probs[t, n, c] (log space throughout):
//   alpha_0(0) = y_0(blank), alpha_0(1) = y_0(l'_1), else -inf;
//   alpha_t(s) = y_t(l'_s) + lse(alpha_{t-1}(s), alpha_{t-1}(s-1),
//                                alpha_{t-1}(s-2) if l'_s != blank and
//                                l'_s != l'_{s-2});
//   log p = lse(alpha_{T_n-1}(L-1), alpha_{T_n-1}(L-2)),  loss_n = -log p.
// beta runs the same recursion backward from the last two symbols, also
// including y_t, so alpha_t(s) + beta_t(s) - y_t(l'_s) is the log
// probability of every alignment through symbol s at frame t, and
//   d loss_n / d y_t(c) = -exp(lse_{s: l'_s = c}(alpha_t(s) + beta_t(s))
//                              - y_t(c) - log p)
// for t < T_n, 0 for later frames. Unlike PyTorch's kernel (which returns
// that plus exp(y_t(c)), the gradient through a log_softmax before it), this
// is the plain derivative with respect to log_probs; the two agree after a
// log_softmax's backward. An infeasible sample (log p = -inf: the target
// needs more frames than it has, one per label and one per blank between
// repeats) gives loss inf, or 0 and gradient 0 with zero_infinity.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "plugins/operators/reference/common.h"

namespace llmsys::reference {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// log(exp(a) + exp(b)), -inf when both are.
double LogAdd(double a, double b) {
  if (a == kNegInf) return b;
  if (b == kNegInf) return a;
  const double m = std::max(a, b);
  return m + std::log(std::exp(a - m) + std::exp(b - m));
}

// The sizes of a call, its shapes checked: log_probs (T, N, C), targets
// (N, S), input_lengths (N), target_lengths (N), blank in [0, C).
struct Sizes {
  int64_t t = 0, n = 0, c = 0, s = 0, blank = 0;
};

Sizes SizesOf(const llmsys_op_call_t& call) {
  const DLTensor* lp = FloatArg(call, 0, "log_probs");
  const DLTensor* targets = IndexArg(call, 1, "targets");
  const DLTensor* il = IndexArg(call, 2, "input_lengths");
  const DLTensor* tl = IndexArg(call, 3, "target_lengths");
  if (lp->ndim != 3)
    ArgFail(call, "log_probs must be (T, N, C), got " +
                      reference::Describe("log_probs", lp));
  Sizes z;
  z.t = lp->shape[0];
  z.n = lp->shape[1];
  z.c = lp->shape[2];
  if (z.c == 0)
    ArgFail(call, "log_probs must have at least one class (C > 0), got " +
                      reference::Describe("log_probs", lp));
  if (targets->ndim != 2 || targets->shape[0] != z.n)
    ArgFail(call, "targets must be (N, S) = (" + std::to_string(z.n) +
                      ", S) for " + reference::Describe("log_probs", lp) +
                      ", got " + reference::Describe("targets", targets));
  z.s = targets->shape[1];
  for (const auto& [t, name] :
       {std::pair{il, "input_lengths"}, std::pair{tl, "target_lengths"}})
    if (ShapeOf(t) != Shape{z.n})
      ArgFail(call, std::string(name) + " must be (N) = (" +
                        std::to_string(z.n) + ") for " +
                        reference::Describe("log_probs", lp) + ", got " +
                        reference::Describe(name, t));
  z.blank = sdk::Params(&call.attrs).Int("blank");
  if (z.blank < 0 || z.blank >= z.c)
    ArgFail(call, "blank " + std::to_string(z.blank) + " is out of range [0, " +
                      std::to_string(z.c) + ") for C = " + std::to_string(z.c) +
                      " classes");
  ReductionOf(call);
  return z;
}

// Sample n's lengths and target, checked against the sizes: 0 <= T_n <= T,
// 0 <= U <= S, every label in [0, C) and not blank. Entries of targets past
// U are padding and not read.
struct Sample {
  int64_t frames = 0;          // T_n
  std::vector<int64_t> label;  // l, U entries
};

Sample SampleOf(const llmsys_op_call_t& call, const Sizes& z, int64_t n) {
  Sample x;
  x.frames = IndexAt(call.inputs[2], n);
  const int64_t u = IndexAt(call.inputs[3], n);
  if (x.frames < 0 || x.frames > z.t)
    ArgFail(call, "input_lengths[" + std::to_string(n) + "] = " +
                      std::to_string(x.frames) + " is out of range [0, " +
                      std::to_string(z.t) + "] (T = log_probs.shape[0])");
  if (u < 0 || u > z.s)
    ArgFail(call, "target_lengths[" + std::to_string(n) +
                      "] = " + std::to_string(u) + " is out of range [0, " +
                      std::to_string(z.s) + "] (S = targets.shape[1])");
  for (int64_t i = 0; i < u; ++i) {
    const int64_t l = IndexAt(call.inputs[1], n * z.s + i);
    if (l < 0 || l >= z.c || l == z.blank)
      ArgFail(call, "target " + std::to_string(l) + " at targets[" +
                        std::to_string(n) + ", " + std::to_string(i) + "] is " +
                        (l == z.blank ? "the blank " + std::to_string(z.blank)
                                      : "out of range [0, " +
                                            std::to_string(z.c) + ")") +
                        "; labels are classes other than blank");
    x.label.push_back(l);
  }
  return x;
}

// One sample's recursion. y(t, c) is log_probs[t, n, c] as a double.
// Fills log p and, when `grad` is given, d(-log p) / d y into grad (T_n
// rows of C).
template <class Y>
double NegLogLikelihood(const Sample& x, int64_t blank, int64_t c, Y y,
                        std::vector<double>* grad) {
  const int64_t tn = x.frames;
  const int64_t u = static_cast<int64_t>(x.label.size());
  if (tn == 0) {  // no frames: only the empty target has an alignment
    if (grad != nullptr) grad->clear();
    return u == 0 ? 0.0 : std::numeric_limits<double>::infinity();
  }
  const int64_t len = 2 * u + 1;  // L
  auto sym = [&](int64_t s) { return s % 2 == 0 ? blank : x.label[s / 2]; };
  // May alignments skip from s - 2 to s (a label unlike the previous one)?
  auto skip = [&](int64_t s) {
    return s % 2 == 1 && s >= 3 && sym(s) != sym(s - 2);
  };
  std::vector<double> alpha(tn * len, kNegInf);  // (T_n, L)
  alpha[0] = y(0, sym(0));
  if (len > 1) alpha[1] = y(0, sym(1));
  for (int64_t t = 1; t < tn; ++t) {
    for (int64_t s = 0; s < len; ++s) {
      const double* prev = &alpha[(t - 1) * len];
      double a = prev[s];
      if (s >= 1) a = LogAdd(a, prev[s - 1]);
      if (skip(s)) a = LogAdd(a, prev[s - 2]);
      alpha[t * len + s] = a == kNegInf ? kNegInf : a + y(t, sym(s));
    }
  }
  const double* last = &alpha[(tn - 1) * len];
  const double log_p = LogAdd(last[len - 1], len > 1 ? last[len - 2] : kNegInf);
  if (grad == nullptr) return -log_p;

  std::vector<double> beta(tn * len, kNegInf);  // (T_n, L)
  beta[(tn - 1) * len + len - 1] = y(tn - 1, sym(len - 1));
  if (len > 1) beta[(tn - 1) * len + len - 2] = y(tn - 1, sym(len - 2));
  for (int64_t t = tn - 1; t-- > 0;) {
    for (int64_t s = 0; s < len; ++s) {
      const double* next = &beta[(t + 1) * len];
      double b = next[s];
      if (s + 1 < len) b = LogAdd(b, next[s + 1]);
      if (s + 2 < len && skip(s + 2)) b = LogAdd(b, next[s + 2]);
      beta[t * len + s] = b == kNegInf ? kNegInf : b + y(t, sym(s));
    }
  }
  grad->assign(tn * c, 0.0);
  if (log_p == kNegInf) return -log_p;  // the caller decides (inf or 0)
  std::vector<double> lcab(c);          // lse over s with l'_s = class
  for (int64_t t = 0; t < tn; ++t) {
    std::fill(lcab.begin(), lcab.end(), kNegInf);
    for (int64_t s = 0; s < len; ++s)
      lcab[sym(s)] =
          LogAdd(lcab[sym(s)], alpha[t * len + s] + beta[t * len + s]);
    for (int64_t k = 0; k < c; ++k)
      if (lcab[k] != kNegInf)
        (*grad)[t * c + k] = -std::exp(lcab[k] - y(t, k) - log_p);
  }
  return -log_p;
}

class CtcLoss : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = "ctc_loss.reference",
            .description =
                "reference ctc_loss: alpha-beta recursion in log "
                "space (double), PyTorch's reductions",
            .op = "ctc_loss",
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS};
  }
  explicit CtcLoss(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    const Sizes z = SizesOf(call);
    const Reduction r = ReductionOf(call);
    return {SpecOf(call, call.inputs[0]->dtype,
                   r == Reduction::kNone ? Shape{z.n} : Shape{})};
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const Sizes z = SizesOf(call);
    const Reduction r = ReductionOf(call);
    const bool zero_inf = sdk::Params(&call.attrs).Bool("zero_infinity");
    ForFloat(call.inputs[0]->dtype, [&]<class T>(T) {
      const T* lp = sdk::Data<const T>(call.inputs[0]);  // (T, N, C)
      T* out = sdk::Data<T>(outputs[0]);                 // (N) or ()
      double total = 0;
      for (int64_t n = 0; n < z.n; ++n) {
        const Sample x = SampleOf(call, z, n);
        auto y = [&](int64_t t, int64_t k) {
          return double(lp[(t * z.n + n) * z.c + k]);
        };
        double loss = NegLogLikelihood(x, z.blank, z.c, y, nullptr);
        if (zero_inf && std::isinf(loss)) loss = 0;
        if (r == Reduction::kNone) out[n] = static_cast<T>(loss);
        if (r == Reduction::kMean)
          loss /=
              static_cast<double>(std::max<size_t>(x.label.size(), size_t{1}));
        total += loss;
      }
      if (r == Reduction::kSum) out[0] = static_cast<T>(total);
      if (r == Reduction::kMean)
        out[0] = static_cast<T>(total / static_cast<double>(z.n));
    });
  }

  // dlog_probs[t, n, c] = s_n * d loss_n / d y_t(c), s_n the upstream
  // gradient of loss_n (divided by N * max(U, 1) for 'mean'); 0 for frames
  // past input_lengths[n] and for zeroed infeasible samples; NaN for an
  // infeasible sample without zero_infinity (its loss is inf).
  void Backward(const llmsys_op_call_t& call, const DLTensor* const*,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    DLTensor* gx = grad_inputs[0];  // (T, N, C)
    if (gx == nullptr) return;
    const Sizes z = SizesOf(call);
    const Reduction r = ReductionOf(call);
    const bool zero_inf = sdk::Params(&call.attrs).Bool("zero_infinity");
    const DLTensor* g = grad_outputs[0];  // (N) or (), or nullptr (zero)
    ForFloat(call.inputs[0]->dtype, [&]<class T>(T) {
      const T* lp = sdk::Data<const T>(call.inputs[0]);  // (T, N, C)
      const T* pg = g != nullptr ? sdk::Data<const T>(g) : nullptr;
      T* pgx = sdk::Data<T>(gx);
      std::vector<double> grad;  // (T_n, C)
      for (int64_t n = 0; n < z.n; ++n) {
        const Sample x = SampleOf(call, z, n);
        auto y = [&](int64_t t, int64_t k) {
          return double(lp[(t * z.n + n) * z.c + k]);
        };
        const double loss = NegLogLikelihood(x, z.blank, z.c, y, &grad);
        double s = 0;  // d total / d loss_n
        if (pg != nullptr)
          s = r == Reduction::kNone ? double(pg[n]) : double(pg[0]);
        if (r == Reduction::kMean)
          s /= static_cast<double>(z.n) *
               static_cast<double>(std::max<size_t>(x.label.size(), size_t{1}));
        const bool infeasible = std::isinf(loss);
        for (int64_t t = 0; t < z.t; ++t) {
          for (int64_t k = 0; k < z.c; ++k) {
            double d = 0;
            if (t < x.frames && infeasible && !zero_inf)
              d = std::numeric_limits<double>::quiet_NaN();
            else if (t < x.frames && !infeasible)
              d = s * grad[t * z.c + k];
            pgx[(t * z.n + n) * z.c + k] = static_cast<T>(d);
          }
        }
      }
    });
  }
};

}  // namespace

void RegisterCtc(sdk::Registry& registry) { registry.Add<CtcLoss>(); }

}  // namespace llmsys::reference
